//! A YAML writer whose output is byte-identical to `go.yaml.in/yaml/v4`'s
//! `Marshal`, the encoder talosctl and Talos's machinery use for
//! `talosctl gen secrets` files and talosconfig files.
//!
//! Owns: Go's block layout (4-space indentation, sequence items indented
//! under their key, `[]`/`{}` for empty collections) and its choice of scalar
//! style: plain when the text reads back as the same string, double-quoted
//! when it would read back as another type (see [`resolve`]), single-quoted
//! when it clashes with YAML syntax (indicators, edge spaces), double-quoted
//! with escapes when it holds characters YAML cannot write as they are.
//! Must not: parse YAML (reading uses `serde_norway`), wrap lines (Go's
//! encoder has no line width limit), or print values in errors (they may be
//! secret: errors name the key path only).
//!
//! Supported documents: nested mappings with string keys whose values are
//! strings, lists of strings or mappings, in the order given (Go writes struct
//! fields in declaration order). Strings must fit on one line, and keys must be
//! at most 128 bytes (Go writes longer keys in the explicit `? key` form).

mod resolve;

use std::fmt::Write as _;

/// A value in a document written by [`to_string`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// A string scalar.
    Str(&'a str),
    /// A sequence of string scalars.
    List(Vec<&'a str>),
    /// A mapping; entries keep their order.
    Map(Vec<(&'a str, Value<'a>)>),
}

/// Why a document cannot be written the way Go would write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write YAML at {path}: {reason}")]
pub struct GoYamlError {
    /// Dotted key path of the offending key or value (never the value itself).
    pub path: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Longest key Go writes in the simple `key: value` form.
pub const MAX_SIMPLE_KEY_BYTES: usize = 128;

/// Go's indentation step.
const INDENT: usize = 4;

/// Writes `doc` (the top-level mapping) exactly as Go's `yaml.Marshal` would.
pub fn to_string(doc: &[(&str, Value<'_>)]) -> Result<String, GoYamlError> {
    let mut out = String::new();
    if doc.is_empty() {
        out.push_str("{}\n");
        return Ok(out);
    }
    write_map(&mut out, doc, 0, "")?;
    Ok(out)
}

/// `s` as Go writes a scalar in block context (a value, a list item or a key).
pub fn scalar(s: &str) -> Result<String, &'static str> {
    if s.chars().any(is_line_break) {
        return Err("the text contains a line break");
    }
    Ok(match style(s) {
        Style::Plain => s.to_owned(),
        Style::Single => format!("'{}'", s.replace('\'', "''")),
        Style::Double => double_quoted(s),
    })
}

fn write_map(out: &mut String, entries: &[(&str, Value<'_>)], indent: usize, parent: &str) -> Result<(), GoYamlError> {
    for (key, value) in entries {
        let path = if parent.is_empty() { (*key).to_owned() } else { format!("{parent}.{key}") };
        let err = |reason| GoYamlError { path: path.clone(), reason };
        if key.len() > MAX_SIMPLE_KEY_BYTES {
            return Err(err("keys longer than 128 bytes are not supported"));
        }
        let key = scalar(key).map_err(err)?;
        let _ = write!(out, "{:indent$}{key}:", "");
        match value {
            Value::Str(s) => {
                let _ = writeln!(out, " {}", scalar(s).map_err(err)?);
            }
            Value::List(items) if items.is_empty() => out.push_str(" []\n"),
            Value::List(items) => {
                out.push('\n');
                for (i, item) in items.iter().enumerate() {
                    let item = scalar(item).map_err(|reason| GoYamlError { path: format!("{path}[{i}]"), reason })?;
                    let _ = writeln!(out, "{:width$}- {item}", "", width = indent + INDENT);
                }
            }
            Value::Map(m) if m.is_empty() => out.push_str(" {}\n"),
            Value::Map(m) => {
                out.push('\n');
                write_map(out, m, indent + INDENT, &path)?;
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
}

/// Go asks for plain style unless the text would read back as another type
/// (then double quotes); the emitter then downgrades plain to single quotes
/// when the text clashes with YAML syntax, and single to double quotes when it
/// holds tabs or unprintable characters.
fn style(s: &str) -> Style {
    if resolve::needs_quotes(s) {
        return Style::Double;
    }
    let needs_escapes = s.chars().any(|c| c == '\t' || !printable(c));
    if needs_escapes {
        Style::Double
    } else if clashes_with_syntax(s) {
        Style::Single
    } else {
        Style::Plain
    }
}

/// True when a plain scalar would be misread in block context: a leading
/// indicator, `: ` or ` #` inside, a document marker, or edge spaces.
fn clashes_with_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let blank_at = |i: usize| i >= b.len() || matches!(b[i], b' ' | b'\t');
    if b.starts_with(b"---") || b.starts_with(b"...") || b.first() == Some(&b' ') || b.last() == Some(&b' ') {
        return true;
    }
    let leading = match b.first() {
        Some(b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%')
        | Some(b'@' | b'`') => true,
        Some(b'?' | b':' | b'-') => blank_at(1),
        _ => false,
    };
    leading
        || b.iter().enumerate().skip(1).any(|(i, &c)| match c {
            b':' => blank_at(i + 1),
            b'#' => matches!(b[i - 1], b' ' | b'\t' | 0),
            _ => false,
        })
}

/// Characters Go's emitter writes as they are (YAML's printable set, except
/// that it treats everything beyond the Basic Multilingual Plane as unprintable).
fn printable(c: char) -> bool {
    matches!(u32::from(c), 0x0A | 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD) && c != '\u{FEFF}'
}

fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Double-quoted with Go's escapes. Go checks for a byte-order mark at the
/// start of the text rather than at each character, so text that starts with
/// one has every character escaped.
fn double_quoted(s: &str) -> String {
    let escape_all = s.starts_with('\u{FEFF}');
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if !(escape_all || !printable(c) || c == '"' || c == '\\') {
            out.push(c);
            continue;
        }
        let short = match c {
            '\0' => Some('0'),
            '\u{7}' => Some('a'),
            '\u{8}' => Some('b'),
            '\t' => Some('t'),
            '\n' => Some('n'),
            '\u{B}' => Some('v'),
            '\u{C}' => Some('f'),
            '\r' => Some('r'),
            '\u{1B}' => Some('e'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            '\u{85}' => Some('N'),
            '\u{A0}' => Some('_'),
            '\u{2028}' => Some('L'),
            '\u{2029}' => Some('P'),
            _ => None,
        };
        out.push('\\');
        match (short, u32::from(c)) {
            (Some(e), _) => out.push(e),
            (None, v @ 0..=0xFF) => {
                let _ = write!(out, "x{v:02X}");
            }
            (None, v @ 0..=0xFFFF) => {
                let _ = write!(out, "u{v:04X}");
            }
            (None, v) => {
                let _ = write!(out, "U{v:08X}");
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_go_marshal() {
        let doc = [
            ("context", Value::Str("talos-cluster")),
            (
                "contexts",
                Value::Map(vec![(
                    "talos-cluster",
                    Value::Map(vec![
                        ("endpoints", Value::List(vec!["192.168.1.210", "fd00::1"])),
                        ("nodes", Value::List(vec![])),
                        ("ca", Value::Str("Q0E=")),
                        ("auth", Value::Map(vec![])),
                    ]),
                )]),
            ),
        ];
        let expected = "context: talos-cluster\ncontexts:\n    talos-cluster:\n        endpoints:\n            \
                        - 192.168.1.210\n            - fd00::1\n        nodes: []\n        ca: Q0E=\n        auth: {}\n";
        assert_eq!(to_string(&doc).unwrap(), expected);
        assert_eq!(to_string(&[]).unwrap(), "{}\n");
    }

    #[test]
    fn scalar_styles() {
        let cases = [
            ("plain text", "plain text"),
            ("a:b", "a:b"),
            ("a#b", "a#b"),
            ("true", "\"true\""),
            ("123", "\"123\""),
            ("", "\"\""),
            ("yes", "\"yes\""),
            ("a: b", "'a: b'"),
            ("a #b", "'a #b'"),
            ("- x", "'- x'"),
            ("-x", "-x"),
            ("it's", "it's"),
            ("'q'", "'''q'''"),
            ("@home", "'@home'"),
            (" lead", "' lead'"),
            ("trail ", "'trail '"),
            ("---x", "'---x'"),
            ("a\tb", "\"a\\tb\""),
            ("say \"hi\"", "say \"hi\""),
            ("\"q\" \\", "'\"q\" \\'"),
            ("naïve", "naïve"),
            ("rocket 🚀", "\"rocket \\U0001F680\""),
            ("bell\u{7}", "\"bell\\a\""),
            ("\u{FEFF}ab", "\"\\uFEFF\\x61\\x62\""),
        ];
        for (input, want) in cases {
            assert_eq!(scalar(input).unwrap(), want, "{input:?}");
        }
        assert!(scalar("two\nlines").is_err());
    }

    #[test]
    fn errors_name_the_path_not_the_value() {
        let long = "k".repeat(129);
        let doc = [("a", Value::Map(vec![(long.as_str(), Value::Str("v"))]))];
        let err = to_string(&doc).unwrap_err();
        assert!(err.reason.contains("128"));
        let doc = [("a", Value::List(vec!["ok", "sec\nret"]))];
        let err = to_string(&doc).unwrap_err();
        assert_eq!(err.path, "a[1]");
        assert!(!err.to_string().contains("sec"));
    }
}
