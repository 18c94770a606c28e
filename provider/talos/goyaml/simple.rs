//! The checked front end for simple documents (talosconfig, the
//! `talosctl gen secrets` file): nested mappings with string keys whose values
//! are strings, lists of strings or mappings, in the order given (Go writes
//! struct fields in declaration order), printed by the yaml/v4 emitter.
//!
//! Owns: [`Value`] (borrowed, so callers need not copy secrets), [`to_string`],
//! [`scalar`], and the refusals: strings must fit on one line and keys must be
//! at most 128 bytes (Go writes longer keys in the explicit `? key` form,
//! which the emitter does not model). Errors name the key path only, never a
//! value (values may be secret).
//! Must not: choose styles or layout itself (see `emit`).

use super::{emit, Flavour, Node};

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

/// Writes `doc` (the top-level mapping) exactly as Go's `yaml.Marshal` would.
pub fn to_string(doc: &[(&str, Value<'_>)]) -> Result<String, GoYamlError> {
    Ok(emit(&map(doc, "")?, Flavour::YamlV4))
}

/// `s` as Go writes a scalar in block context (a value, a list item or a key).
pub fn scalar(s: &str) -> Result<String, &'static str> {
    one_line(s)?;
    let mut out = emit(&Node::Str(s.to_owned()), Flavour::YamlV4);
    out.pop();
    Ok(out)
}

fn one_line(s: &str) -> Result<(), &'static str> {
    if s.chars().any(is_line_break) {
        return Err("the text contains a line break");
    }
    Ok(())
}

fn is_line_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// The checked [`Node`] for a mapping at `parent` (a dotted key path).
fn map(entries: &[(&str, Value<'_>)], parent: &str) -> Result<Node, GoYamlError> {
    let mut out = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let path = if parent.is_empty() { (*key).to_owned() } else { format!("{parent}.{key}") };
        let err = |reason| GoYamlError { path: path.clone(), reason };
        if key.len() > MAX_SIMPLE_KEY_BYTES {
            return Err(err("keys longer than 128 bytes are not supported"));
        }
        one_line(key).map_err(err)?;
        let node = match value {
            Value::Str(s) => {
                one_line(s).map_err(err)?;
                Node::Str((*s).to_owned())
            }
            Value::List(items) => {
                let mut list = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    one_line(item).map_err(|reason| GoYamlError { path: format!("{path}[{i}]"), reason })?;
                    list.push(Node::Str((*item).to_owned()));
                }
                Node::Seq(list)
            }
            Value::Map(m) => map(m, &path)?,
        };
        out.push(((*key).to_owned(), node));
    }
    Ok(Node::Map(out))
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
