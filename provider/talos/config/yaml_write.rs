//! Writing YAML byte-for-byte as `go.yaml.in/yaml/v4`'s `Marshal` does
//! (machinery encodes every document with it when comments are off).
//!
//! Owns: [`Out`] (a document ready to print: ordered mappings, sequences,
//! strings and preformatted plain scalars) and its emitter: 4-space
//! indentation, sequences indented under their key, `- ` items whose mapping
//! continues two columns in, `{}`/`[]` for empty collections, and go-yaml's
//! choice between plain, single-quoted, double-quoted and literal strings.
//! Must not: know Talos types or decide what is printed (see `encode`).

use super::yaml_read::{resolve, Resolved};

/// A node to print.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// A mapping in the order given.
    Map(Vec<(String, Out)>),
    /// A sequence.
    Seq(Vec<Out>),
    /// A Go string: quoted when plain text would read back as something else.
    Str(String),
    /// A scalar printed as is (numbers, booleans, `null`).
    Plain(String),
}

const INDENT: i32 = 4;

/// Prints one document the way go-yaml's `Marshal` does.
pub fn emit(root: &Out) -> String {
    let mut e = Emitter { out: String::new(), column: 0, indent: -1, whitespace: true, indention: true };
    e.node(root, Ctx::Root);
    // Document end. (`Marshal` clears the open-ended flag before the stream
    // end, so a trailing `|+` block is never followed by `...`.)
    e.indent = -1;
    e.write_indent();
    e.out
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    Root,
    SeqItem,
    MapKey,
    MapValue,
}

struct Emitter {
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

    /// libyaml's indentation step for a block collection or scalar in `ctx`.
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

    fn node(&mut self, node: &Out, ctx: Ctx) {
        match node {
            Out::Map(entries) if entries.is_empty() => self.empty("{", "}", ctx),
            Out::Seq(items) if items.is_empty() => self.empty("[", "]", ctx),
            Out::Map(entries) => {
                let saved = self.indent;
                self.indent = self.increased(ctx, false);
                for (key, value) in entries {
                    self.write_indent();
                    self.scalar(&Out::Str(key.clone()), Ctx::MapKey);
                    self.indicator(":", false, false, false);
                    self.node(value, Ctx::MapValue);
                }
                self.indent = saved;
            }
            Out::Seq(items) => {
                let saved = self.indent;
                self.indent = self.increased(ctx, false);
                for item in items {
                    self.write_indent();
                    self.indicator("-", true, false, true);
                    self.node(item, Ctx::SeqItem);
                }
                self.indent = saved;
            }
            scalar => self.scalar(scalar, ctx),
        }
    }

    fn empty(&mut self, open: &str, close: &str, ctx: Ctx) {
        self.indicator(open, true, true, false);
        let saved = self.indent;
        self.indent = self.increased(ctx, true);
        self.indent = saved;
        if self.column == 0 {
            self.write_indent();
        }
        self.indicator(close, false, false, false);
    }

    fn scalar(&mut self, node: &Out, ctx: Ctx) {
        let (value, requested) = match node {
            Out::Plain(s) => (s.as_str(), Style::Plain),
            Out::Str(s) => (s.as_str(), string_style(s)),
            _ => unreachable!("collections are not scalars"),
        };
        let a = analyze(value);
        let simple_key = ctx == Ctx::MapKey;
        let mut style = requested;
        if simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain && (!a.block_plain_allowed || (value.is_empty() && simple_key)) {
            style = Style::Single;
        }
        if style == Style::Single && !a.single_quoted_allowed {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_allowed || simple_key) {
            style = Style::Double;
        }
        let saved = self.indent;
        self.indent = self.increased(ctx, true);
        match style {
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
        for c in value.chars() {
            if c == '\'' {
                self.put('\'');
            }
            self.put(c);
        }
        self.indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn double(&mut self, value: &str) {
        self.indicator("\"", true, false, false);
        for c in value.chars() {
            if !printable(c) || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                let escaped = match c {
                    '\0' => "0".to_owned(),
                    '\x07' => "a".to_owned(),
                    '\x08' => "b".to_owned(),
                    '\t' => "t".to_owned(),
                    '\n' => "n".to_owned(),
                    '\x0b' => "v".to_owned(),
                    '\x0c' => "f".to_owned(),
                    '\r' => "r".to_owned(),
                    '\x1b' => "e".to_owned(),
                    '"' => "\"".to_owned(),
                    '\\' => "\\".to_owned(),
                    '\u{85}' => "N".to_owned(),
                    '\u{a0}' => "_".to_owned(),
                    '\u{2028}' => "L".to_owned(),
                    '\u{2029}' => "P".to_owned(),
                    c if (c as u32) <= 0xFF => format!("x{:02X}", c as u32),
                    c if (c as u32) <= 0xFFFF => format!("u{:04X}", c as u32),
                    c => format!("U{:08X}", c as u32),
                };
                for e in escaped.chars() {
                    self.put(e);
                }
            } else {
                self.put(c);
            }
        }
        self.indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn literal(&mut self, value: &str) {
        self.indicator("|", true, false, false);
        let first = value.chars().next();
        if first.is_some_and(|c| c == ' ' || is_break(c)) {
            self.indicator(&INDENT.to_string(), false, false, false);
        }
        let chars: Vec<char> = value.chars().collect();
        let chomp = match chars.len() {
            0 => Some("-"),
            n if !is_break(chars[n - 1]) => Some("-"),
            1 => Some("+"),
            n if is_break(chars[n - 2]) => Some("+"),
            _ => None,
        };
        if let Some(hint) = chomp {
            self.indicator(hint, false, false, false);
        }
        self.line_break();
        self.whitespace = true;
        let mut breaks = true;
        for c in chars {
            if is_break(c) {
                self.line_break();
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

#[derive(Debug, Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// go-yaml's `stringv`: the style it asks the emitter for.
fn string_style(s: &str) -> Style {
    let plain_ok = resolve(s) == Resolved::Str && !is_base60_float(s) && !is_old_bool(s) && s != "<<";
    if s.contains('\n') {
        if s.chars().count() >= 2 && s.chars().any(|c| !c.is_whitespace()) {
            Style::Literal
        } else {
            Style::Double
        }
    } else if plain_ok {
        Style::Plain
    } else {
        Style::Double
    }
}

fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF"
    )
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    i += 1;
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        let start = i;
        if b.get(i).is_some_and(|c| (b'0'..=b'5').contains(c)) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            i += 2;
        } else if b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

fn printable(c: char) -> bool {
    matches!(c as u32, 0x0A | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD) && c != '\u{FEFF}'
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

/// libyaml's `analyzeScalar` (block context).
fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = value.chars().collect();
    let mut block_indicators = value.starts_with("---") || value.starts_with("...");
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) = (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = chars.get(i + 1).is_none_or(|n| *n == ' ' || *n == '\t');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' => {
                    block_indicators = true
                }
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        } else if !printable(c) {
            special = true;
        }
        let last = i + 1 == chars.len();
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= previous_break;
            (previous_space, previous_break) = (true, false);
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= previous_space;
            (previous_space, previous_break) = (false, true);
        } else {
            (previous_space, previous_break) = (false, false);
        }
        preceded_by_whitespace = c == ' ' || c == '\t' || is_break(c) || c == '\0';
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space || space_break || tabs || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

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
