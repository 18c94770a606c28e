//! The emitter: a [`Node`] printed byte-for-byte as Go's `yaml.Marshal`
//! prints it (libyaml's emitter as ported to Go, block style only).
//!
//! Owns: the block layout (4-space indentation steps rounded to multiples of
//! 4, sequences indented under their key, `- ` items whose mapping continues
//! two columns in, `{}`/`[]` for empty collections, the document's final line
//! break) and the writing of each scalar style (plain, single-quoted with
//! line folding, double-quoted with Go's escapes, literal `|` blocks with
//! indentation and chomping hints). No line is ever folded: Go's encoders set
//! no width limit.
//! Must not: decide which style a scalar gets (see `style`), sort keys or
//! know any document's schema.

use super::style::{self, is_break, is_printable, Style};
use super::value::Node;
use super::Flavour;

/// Go's indentation step.
const INDENT: i32 = 4;

/// Prints one document with root `root`, as `flavour`'s `Marshal` does.
pub fn emit(root: &Node, flavour: Flavour) -> String {
    let mut e = Emitter { flavour, out: String::new(), column: 0, indent: -1, whitespace: true, indention: true };
    e.node(root, Ctx::Root);
    // Document end. (`Marshal` clears the open-ended flag before the stream
    // end, so a trailing `|+` block is never followed by `...`.)
    e.indent = -1;
    e.write_indent();
    e.out
}

/// Where a node sits.
#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Root,
    SeqItem,
    MapKey,
    MapValue,
}

/// libyaml's emitter state that matters for block documents.
struct Emitter {
    flavour: Flavour,
    out: String,
    column: i32,
    indent: i32,
    whitespace: bool,
    indention: bool,
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn line_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
        self.indention = true;
    }

    /// A line break inside a scalar: `\n` is written as the break, the other
    /// YAML breaks (U+0085, U+2028, U+2029) as themselves.
    fn write_break(&mut self, c: char) {
        self.out.push(c);
        self.column = 0;
        self.indention = true;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.line_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
    }

    fn indicator(&mut self, s: &str, need_whitespace: bool, is_whitespace: bool, is_indention: bool) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in s.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    /// libyaml's indentation for a block collection (or, `flow`, a scalar) in `ctx`.
    fn increased(&self, ctx: Ctx, flow: bool) -> i32 {
        if self.indent < 0 {
            if flow {
                INDENT
            } else {
                0
            }
        } else if ctx == Ctx::SeqItem {
            self.indent + 2
        } else {
            INDENT * ((self.indent + INDENT) / INDENT)
        }
    }

    fn node(&mut self, node: &Node, ctx: Ctx) {
        match node {
            Node::Map(entries) if entries.is_empty() => self.empty("{", "}"),
            Node::Seq(items) if items.is_empty() => self.empty("[", "]"),
            Node::Map(entries) => {
                let saved = self.indent;
                self.indent = self.increased(ctx, false);
                for (key, value) in entries {
                    self.write_indent();
                    self.scalar(key, style::requested(key, self.flavour), Ctx::MapKey);
                    self.indicator(":", false, false, false);
                    self.node(value, Ctx::MapValue);
                }
                self.indent = saved;
            }
            Node::Seq(items) => {
                let saved = self.indent;
                self.indent = self.increased(ctx, false);
                for item in items {
                    self.write_indent();
                    self.indicator("-", true, false, true);
                    self.node(item, Ctx::SeqItem);
                }
                self.indent = saved;
            }
            Node::Str(s) => self.scalar(s, style::requested(s, self.flavour), ctx),
            Node::Plain(s) => self.scalar(s, Style::Plain, ctx),
        }
    }

    fn empty(&mut self, open: &str, close: &str) {
        self.indicator(open, true, true, false);
        self.indicator(close, false, false, false);
    }

    /// A scalar in the style the emitter settles on when `requested` was asked for.
    fn scalar(&mut self, value: &str, requested: Style, ctx: Ctx) {
        let saved = self.indent;
        self.indent = self.increased(ctx, true);
        match style::select(value, requested, ctx == Ctx::MapKey) {
            Style::Plain => self.plain(value),
            Style::Single => self.single(value),
            Style::Double => self.double(value),
            Style::Literal => self.literal(value),
        }
        self.indent = saved;
    }

    fn plain(&mut self, value: &str) {
        if !value.is_empty() && !self.whitespace {
            self.put(' ');
        }
        for c in value.chars() {
            self.put(c);
        }
        if !value.is_empty() {
            self.whitespace = false;
        }
        self.indention = false;
    }

    fn single(&mut self, value: &str) {
        self.indicator("'", true, false, false);
        let mut breaks = false;
        for c in value.chars() {
            if c == ' ' {
                self.put(c);
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.line_break();
                }
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
        self.indicator("'", false, false, false);
    }

    fn double(&mut self, value: &str) {
        self.indicator("\"", true, false, false);
        // libyaml's byte-order-mark test looks at the start of the text, not at
        // the current character: after a leading BOM every character is escaped.
        let leading_bom = value.starts_with('\u{FEFF}');
        for c in value.chars() {
            if !(leading_bom || !is_printable(c) || is_break(c) || c == '"' || c == '\\') {
                self.put(c);
                continue;
            }
            self.put('\\');
            let short = match c {
                '\0' => Some('0'),
                '\x07' => Some('a'),
                '\x08' => Some('b'),
                '\t' => Some('t'),
                '\n' => Some('n'),
                '\x0B' => Some('v'),
                '\x0C' => Some('f'),
                '\r' => Some('r'),
                '\x1B' => Some('e'),
                '"' => Some('"'),
                '\\' => Some('\\'),
                '\u{85}' => Some('N'),
                '\u{A0}' => Some('_'),
                '\u{2028}' => Some('L'),
                '\u{2029}' => Some('P'),
                _ => None,
            };
            let escaped = match (short, u32::from(c)) {
                (Some(e), _) => e.to_string(),
                (None, v) if v <= 0xFF => format!("x{v:02X}"),
                (None, v) if v <= 0xFFFF => format!("u{v:04X}"),
                (None, v) => format!("U{v:08X}"),
            };
            escaped.chars().for_each(|e| self.put(e));
        }
        self.indicator("\"", false, false, false);
    }

    fn literal(&mut self, value: &str) {
        self.indicator("|", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.indicator(&INDENT.to_string(), false, false, false);
        }
        let chomp = match chars.as_slice() {
            [] => Some("-"),
            [.., last] if !is_break(*last) => Some("-"),
            [_] => Some("+"),
            [.., before, _] if is_break(*before) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.indicator(chomp, false, false, false);
        }
        // yaml/v4 ends the header line here; yaml.v3 leaves it to the first
        // line of content (so a leading empty line is lost).
        if self.flavour == Flavour::YamlV4 {
            self.line_break();
        }
        self.whitespace = true;
        let mut breaks = true;
        for c in chars {
            if is_break(c) {
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    // Moved from `config::yaml_write` (the machine-config writer) unchanged.
    use super::*;

    type Out = Node;

    fn emit(root: &Out) -> String {
        super::emit(root, Flavour::YamlV4)
    }

    fn s(v: &str) -> Out {
        Out::Str(v.to_owned())
    }

    #[test]
    fn block_layout_matches_go_yaml() {
        let doc = Out::Map(vec![
            ("version".into(), s("v1alpha1")),
            ("debug".into(), Out::Plain("false".into())),
            ("empty".into(), Out::Map(vec![])),
            ("list".into(), Out::Seq(vec![])),
            (
                "machine".into(),
                Out::Map(vec![
                    ("certSANs".into(), Out::Seq(vec![s("a"), s("b")])),
                    (
                        "items".into(),
                        Out::Seq(vec![Out::Map(vec![
                            ("name".into(), s("PodSecurity")),
                            ("configuration".into(), Out::Map(vec![("x".into(), Out::Seq(vec![s("kube-system")]))])),
                        ])]),
                    ),
                    ("label".into(), s("")),
                ]),
            ),
        ]);
        let expected = "version: v1alpha1\ndebug: false\nempty: {}\nlist: []\nmachine:\n    certSANs:\n        - a\n        - b\n    items:\n        - name: PodSecurity\n          configuration:\n            x:\n                - kube-system\n    label: \"\"\n";
        assert_eq!(emit(&doc), expected);
    }

    #[test]
    fn strings_are_quoted_like_go_yaml() {
        let cases = [
            ("plain", "plain"),
            ("true", "\"true\""),
            ("yes", "\"yes\""),
            ("123", "\"123\""),
            ("1.5", "\"1.5\""),
            ("- x", "'- x'"),
            ("a: b", "'a: b'"),
            ("#x", "'#x'"),
            ("it's: x", "'it''s: x'"),
            (" lead", "' lead'"),
            ("tab\there", "\"tab\\there\""),
            ("12:30", "\"12:30\""),
            ("~", "\"~\""),
            ("https://x:6443", "https://x:6443"),
        ];
        for (input, shown) in cases {
            assert_eq!(emit(&Out::Map(vec![("k".into(), s(input))])), format!("k: {shown}\n"), "{input:?}");
        }
    }

    #[test]
    fn multiline_strings_use_literal_blocks() {
        let doc = Out::Map(vec![("m".into(), Out::Map(vec![("contents".into(), s("a: 1\n\nb: 2\n"))]))]);
        assert_eq!(emit(&doc), "m:\n    contents: |\n        a: 1\n\n        b: 2\n");
        let doc = Out::Map(vec![("c".into(), s("no newline\nat end"))]);
        assert_eq!(emit(&doc), "c: |-\n    no newline\n    at end\n");
        let doc = Out::Map(vec![("c".into(), s("keep\n\n"))]);
        assert_eq!(emit(&doc), "c: |+\n    keep\n\n");
    }
}
