//! The canonical writer for schematics: output byte-identical to
//! `gopkg.in/yaml.v3`'s `Marshal` (the encoder the Image Factory hashes) for the
//! node shapes a schematic can hold.
//!
//! Owns: yaml.v3's block layout (4-space steps rounded to multiples of 4, `- `
//! items whose content sits 2 columns in, `{}`/`[]` for empty collections),
//! its scalar styles (plain, single-quoted, double-quoted with escapes, literal
//! `|` blocks with indentation and chomping hints) and the analysis that picks
//! one, and its map key order. This is a re-implementation of the documented
//! behaviour, checked against the real encoder by the golden vectors in
//! `tests.rs`; no line is ever folded (yaml.v3 sets no width limit).
//! Must not: know the schematic model (see `super::nodes`) or parse YAML.

use std::cmp::Ordering;

/// A node of a document to write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// A Go string: written in the style yaml.v3 picks for it.
    Str(String),
    /// A scalar that is always written plain: numbers, booleans, `null`.
    Raw(String),
    /// A sequence (`[]` when empty).
    Seq(Vec<Node>),
    /// A mapping in the given key order (`{}` when empty).
    Map(Vec<(String, Node)>),
}

/// Writes the document whose root is the mapping `root`.
pub(crate) fn document(root: &[(String, Node)]) -> String {
    let mut e = Emitter { out: String::new(), column: 0, whitespace: true, indention: true };
    if root.is_empty() {
        e.flow_empty('{', '}');
    } else {
        e.block_map(root, -1, false);
    }
    // Document end: finish the last line.
    e.write_indent(0);
    e.out
}

/// Go's map key order for string keys (`sort.Sort` over yaml.v3's `keyList`):
/// letters in code point order, runs of digits compared as numbers, letters
/// after digits after other characters.
pub(crate) fn go_key_order(a: &str, b: &str) -> Ordering {
    if go_key_less(a, b) {
        Ordering::Less
    } else if go_key_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn go_key_less(a: &str, b: &str) -> bool {
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut digits = false;
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            digits = ar[i].is_ascii_digit();
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return if digits { al } else { bl };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if (ar[i] == '0' || br[i] == '0') && ar[..i].iter().rev().take_while(|c| c.is_ascii_digit()).any(|&c| c != '0')
        {
            (an, bn) = (1, 1);
        }
        let run = |r: &[char], n: &mut i64| {
            let mut end = i;
            while end < r.len() && r[end].is_ascii_digit() {
                *n = n.wrapping_mul(10).wrapping_add(i64::from(r[end] as u8 - b'0'));
                end += 1;
            }
            end
        };
        let (ai, bi) = (run(&ar, &mut an), run(&br, &mut bn));
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

/// yaml.v3's emitter state that matters for these documents.
struct Emitter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// The indentation of a node nested in a parent at `parent` (-1 at the root):
/// 2 columns in after a `- `, otherwise the next multiple of 4.
fn child_indent(parent: isize, in_sequence_item: bool) -> usize {
    match usize::try_from(parent) {
        Err(_) => 0,
        Ok(p) if in_sequence_item => p + 2,
        Ok(p) => 4 * ((p + 4) / 4),
    }
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
        self.indention = true;
    }

    /// A line break inside a scalar: `\n` is written as the break, the other
    /// YAML breaks (U+0085, U+2028, U+2029; `\r` never gets here) as themselves.
    fn write_break(&mut self, c: char) {
        self.out.push(c);
        self.column = 0;
        self.indention = true;
    }

    fn write_indent(&mut self, indent: usize) {
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
    }

    fn write_indicator(&mut self, indicator: &str, need_whitespace: bool, is_whitespace: bool, is_indention: bool) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn flow_empty(&mut self, open: char, close: char) {
        self.write_indicator(&open.to_string(), true, true, false);
        self.write_indicator(&close.to_string(), false, false, false);
    }

    fn block_map(&mut self, entries: &[(String, Node)], parent: isize, in_sequence_item: bool) {
        let indent = child_indent(parent, in_sequence_item);
        for (key, value) in entries {
            self.write_indent(indent);
            self.scalar(key, true, child_indent(indent as isize, false));
            self.write_indicator(":", false, false, false);
            self.node(value, indent as isize, false);
        }
    }

    fn block_seq(&mut self, items: &[Node], parent: isize, in_sequence_item: bool) {
        let indent = child_indent(parent, in_sequence_item);
        for item in items {
            self.write_indent(indent);
            self.write_indicator("-", true, false, true);
            self.node(item, indent as isize, true);
        }
    }

    fn node(&mut self, node: &Node, indent: isize, in_sequence_item: bool) {
        match node {
            Node::Str(s) => self.scalar(s, false, child_indent(indent, in_sequence_item)),
            Node::Raw(s) => self.plain(s),
            Node::Seq(items) if items.is_empty() => self.flow_empty('[', ']'),
            Node::Map(entries) if entries.is_empty() => self.flow_empty('{', '}'),
            Node::Seq(items) => self.block_seq(items, indent, in_sequence_item),
            Node::Map(entries) => self.block_map(entries, indent, in_sequence_item),
        }
    }

    fn scalar(&mut self, s: &str, simple_key: bool, indent: usize) {
        match select_style(s, simple_key) {
            Style::Plain => self.plain(s),
            Style::Single => self.single_quoted(s, indent),
            Style::Double => self.double_quoted(s),
            Style::Literal => self.literal(s, indent),
        }
    }

    fn plain(&mut self, s: &str) {
        if !s.is_empty() && !self.whitespace {
            self.put(' ');
        }
        for c in s.chars() {
            self.put(c);
        }
        if !s.is_empty() {
            self.whitespace = false;
        }
        self.indention = false;
    }

    fn single_quoted(&mut self, s: &str, indent: usize) {
        self.write_indicator("'", true, false, false);
        let mut breaks = false;
        for c in s.chars() {
            if c == ' ' {
                self.put(c);
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(indent);
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
    }

    fn double_quoted(&mut self, s: &str) {
        self.write_indicator("\"", true, false, false);
        // libyaml's byte-order-mark test looks at the start of the text, not at
        // the current character: after a leading BOM every character is escaped.
        let leading_bom = s.starts_with('\u{FEFF}');
        for c in s.chars() {
            if !is_printable(c) || leading_bom || is_break(c) || c == '"' || c == '\\' {
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
            } else {
                self.put(c);
            }
        }
        self.write_indicator("\"", false, false, false);
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.write_indicator("|", true, false, false);
        let chars: Vec<char> = s.chars().collect();
        if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.write_indicator("4", false, false, false);
        }
        let chomp = match chars.as_slice() {
            [] => Some("-"),
            [.., last] if !is_break(*last) => Some("-"),
            [_] => Some("+"),
            [.., before, _] if is_break(*before) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.whitespace = true;
        let mut breaks = true;
        for c in chars {
            if is_break(c) {
                self.write_break(c);
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(indent);
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// The style yaml.v3 writes `s` in: its encoder asks for a literal block when
/// there is a `\n`, plain when the text reads back as the same string, else
/// double quotes; the emitter then falls back when the text's characters do
/// not allow the style asked for.
fn select_style(s: &str, simple_key: bool) -> Style {
    let requested = if s.contains('\n') {
        Style::Literal
    } else if super::resolve::plain_reads_back_as_string(s) {
        Style::Plain
    } else {
        Style::Double
    };
    let a = analyze(s);
    let mut style = requested;
    if simple_key && a.multiline {
        style = Style::Double;
    }
    if style == Style::Plain && (!a.block_plain_allowed || (s.is_empty() && simple_key)) {
        style = Style::Single;
    }
    if style == Style::Single && !a.single_quoted_allowed {
        style = Style::Double;
    }
    if style == Style::Literal && (!a.block_allowed || simple_key) {
        style = Style::Double;
    }
    style
}

/// What the characters of a scalar allow (block context only: these documents
/// never hold a scalar inside a flow collection).
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = s.chars().collect();
    let last = chars.len() - 1;
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) = (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) = (false, false, false, false);
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = chars.get(i + 1).is_none_or(|&n| n == ' ' || n == '\t');
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
        } else if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= i == last;
            break_space |= previous_break;
            (previous_space, previous_break) = (true, false);
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= i == last;
            space_break |= previous_space;
            (previous_space, previous_break) = (false, true);
        } else {
            (previous_space, previous_break) = (false, false);
        }
        preceded_by_whitespace = c == ' ' || c == '\t' || c == '\0' || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break || line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    if trailing_space || space_break || special {
        a.block_allowed = false;
    }
    if break_space || space_break || tabs || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    a
}

/// YAML line breaks (as the emitter sees them).
fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// The characters YAML may write as they are: `\n`, printable ASCII, and the
/// Basic Multilingual Plane above U+009F except surrogates, U+FEFF, U+FFFE and
/// U+FFFF. (Like libyaml, characters beyond the BMP count as not printable.)
fn is_printable(c: char) -> bool {
    matches!(u32::from(c), 0x0A | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFEFE | 0xFF00..=0xFFFD)
}
