//! Reading YAML (patches, multi-document configurations) the way Go's
//! `go.yaml.in/yaml/v4` sees it.
//!
//! Owns: parsing text into [`Raw`] trees that keep every scalar's source text
//! (Go decodes string fields and text types from the source text, not from a
//! resolved number), and Go's plain-scalar resolution ([`resolve`]: null, bool,
//! int with base prefixes and `_`, float, string; the float syntax is shared
//! with the writer's, [`goyaml`]).
//! Must not: know Talos types (that is `decode`).
//!
//! How: `serde_norway` parses each document twice. The first pass records the
//! shape and which scalars it read as strings; the second walks the same shape
//! asking for every scalar as a string, which `serde_norway` answers with the
//! source text. A scalar the first pass read as a string but Go would resolve
//! otherwise (`0755`, `1_000`) was either quoted or plain; it is taken as plain.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};

use crate::talos::goyaml;

/// A YAML node with source-text scalars.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// A scalar.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Raw>),
    /// A mapping, in source order.
    Map(Vec<(String, Raw)>),
}

/// A scalar as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// Source text (quotes and escapes removed).
    pub text: String,
    /// `serde_norway` read it as a string (it was quoted, or plain text).
    pub string_like: bool,
}

/// What Go resolves a plain scalar to.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    /// `~`, `null`, empty.
    Null,
    /// `true`, `False`, …
    Bool(bool),
    /// An integer that fits `int64`.
    Int(i64),
    /// An integer above `int64`.
    Uint(u64),
    /// A float.
    Float(f64),
    /// A string (including Go's timestamps, which this crate keeps as text).
    Str,
}

/// A parsed document: the line of its root node (1-based) and the root,
/// `None` for an empty document.
#[derive(Debug, Clone, PartialEq)]
pub struct RawDocument {
    /// Line of the root node.
    pub line: usize,
    /// Root node.
    pub root: Option<Raw>,
}

impl Raw {
    /// A plain string scalar.
    pub fn str(s: impl Into<String>) -> Raw {
        Raw::Scalar(Scalar { text: s.into(), string_like: true })
    }

    /// A plain scalar Go resolves by itself (a number, a bool, `null`).
    pub fn plain(s: impl Into<String>) -> Raw {
        let text = s.into();
        let string_like = resolve(&text) == Resolved::Str;
        Raw::Scalar(Scalar { text, string_like })
    }

    /// Whether this is a null scalar.
    pub fn is_null(&self) -> bool {
        matches!(self, Raw::Scalar(s) if s.resolved() == Resolved::Null)
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Raw> {
        match self {
            Raw::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a scalar.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Raw::Scalar(s) => Some(&s.text),
            _ => None,
        }
    }

    /// Go yaml's tag name for error messages (`!!str`, `!!map`, …).
    pub fn tag(&self) -> &'static str {
        match self {
            Raw::Seq(_) => "!!seq",
            Raw::Map(_) => "!!map",
            Raw::Scalar(s) => match s.resolved() {
                Resolved::Null => "!!null",
                Resolved::Bool(_) => "!!bool",
                Resolved::Int(_) | Resolved::Uint(_) => "!!int",
                Resolved::Float(_) => "!!float",
                Resolved::Str => "!!str",
            },
        }
    }
}

impl Scalar {
    /// Go's resolution of this scalar (see the module notes for quoted text).
    pub fn resolved(&self) -> Resolved {
        resolve(&self.text)
    }
}

/// Why YAML could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError(pub String);

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses every document of `text`.
pub fn parse_documents(text: &str) -> Result<Vec<RawDocument>, YamlError> {
    let err = |e: serde_norway::Error| YamlError(e.to_string());
    let mut shapes = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        shapes.push(doc.deserialize_any(ShapeVisitor).map_err(err)?);
    }
    let lines = document_lines(text);
    let mut out = Vec::new();
    for (i, (doc, shape)) in serde_norway::Deserializer::from_str(text).zip(&shapes).enumerate() {
        let raw = Guided(shape).deserialize(doc).map_err(err)?;
        let root = if raw.is_null() { None } else { Some(raw) };
        let line = if lines.len() == shapes.len() { lines[i] } else { 1 };
        out.push(RawDocument { line, root });
    }
    Ok(out)
}

/// The first content line of each document of `text` (the line Go reports
/// for a document's root node).
fn document_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let (mut current, mut explicit, mut separator) = (None, false, 0);
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim_end();
        if t == "---" || t.starts_with("--- ") || t.starts_with("---\t") || t == "..." {
            if explicit || current.is_some() {
                lines.push(current.unwrap_or(separator));
            }
            (current, explicit, separator) = (None, t != "...", n);
            let rest = t.get(3..).unwrap_or("").trim();
            if explicit && !rest.is_empty() && !rest.starts_with('#') {
                current = Some(n);
            }
            continue;
        }
        let content = t.trim_start();
        if current.is_none() && !content.is_empty() && !content.starts_with('#') && !content.starts_with('%') {
            current = Some(n);
        }
    }
    if explicit || current.is_some() {
        lines.push(current.unwrap_or(separator));
    }
    lines
}

/// The shape of a node from the first pass.
#[derive(Debug)]
enum Shape {
    Scalar { string_like: bool },
    Seq(Vec<Shape>),
    Map(Vec<Shape>),
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML node")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Scalar { string_like: false })
    }
    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Scalar { string_like: false })
    }
    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Scalar { string_like: false })
    }
    fn visit_i128<E>(self, _: i128) -> Result<Shape, E> {
        Ok(Shape::Scalar { string_like: false })
    }
    fn visit_u128<E>(self, _: u128) -> Result<Shape, E> {
        Ok(Shape::Scalar { string_like: false })
    }
    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Scalar { string_like: false })
    }
    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Scalar { string_like: true })
    }
    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape::Scalar { string_like: false })
    }
    fn visit_none<E>(self) -> Result<Shape, E> {
        Ok(Shape::Scalar { string_like: false })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ShapeSeed)? {
            items.push(item);
        }
        Ok(Shape::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut values = Vec::new();
        while map.next_key_seed(ShapeSeed)?.is_some() {
            values.push(map.next_value_seed(ShapeSeed)?);
        }
        Ok(Shape::Map(values))
    }
    fn visit_enum<A: EnumAccess<'de>>(self, _: A) -> Result<Shape, A::Error> {
        Err(serde::de::Error::custom("YAML tags (`!tag value`) are not supported in machine configuration patches"))
    }
}

struct ShapeSeed;

impl<'de> DeserializeSeed<'de> for ShapeSeed {
    type Value = Shape;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Shape, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

/// Second pass: the same node, scalars read as source text.
struct Guided<'a>(&'a Shape);

impl<'de> DeserializeSeed<'de> for Guided<'_> {
    type Value = Raw;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        match self.0 {
            Shape::Scalar { string_like } => {
                let text = d.deserialize_str(TextVisitor)?;
                Ok(Raw::Scalar(Scalar { text, string_like: *string_like }))
            }
            Shape::Seq(items) => d.deserialize_seq(GuidedSeq(items)),
            Shape::Map(values) => d.deserialize_map(GuidedMap(values)),
        }
    }
}

struct TextVisitor;

impl Visitor<'_> for TextVisitor {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a scalar")
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
}

struct GuidedSeq<'a>(&'a [Shape]);

impl<'de> Visitor<'de> for GuidedSeq<'_> {
    type Value = Raw;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::with_capacity(self.0.len());
        for shape in self.0 {
            match seq.next_element_seed(Guided(shape))? {
                Some(item) => items.push(item),
                None => return Err(serde::de::Error::custom("sequence changed between passes")),
            }
        }
        Ok(Raw::Seq(items))
    }
}

struct GuidedMap<'a>(&'a [Shape]);

impl<'de> Visitor<'de> for GuidedMap<'_> {
    type Value = Raw;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut entries = Vec::with_capacity(self.0.len());
        for shape in self.0 {
            let Some(key) = map.next_key_seed(KeySeed)? else {
                return Err(serde::de::Error::custom("mapping changed between passes"));
            };
            entries.push((key, map.next_value_seed(Guided(shape))?));
        }
        Ok(Raw::Map(entries))
    }
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(TextVisitor)
            .map_err(|_| serde::de::Error::custom("mapping keys must be scalars in machine configuration"))
    }
}

/// Go yaml's resolution of a plain scalar (`resolve` in go.yaml.in/yaml/v4).
pub fn resolve(s: &str) -> Resolved {
    match s {
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Resolved::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        "-0" | "-0.0" => return Resolved::Float(-0.0),
        _ => {}
    }
    let first = s.as_bytes()[0];
    match first {
        b'.' => s.parse::<f64>().map_or(Resolved::Str, Resolved::Float),
        b'0'..=b'9' | b'+' | b'-' => {
            if looks_like_timestamp(s) {
                return Resolved::Str;
            }
            let plain: String = s.chars().filter(|&c| c != '_').collect();
            if let Some(v) = go_parse_int(&plain) {
                return v;
            }
            if goyaml::is_yaml_float(&plain) {
                if let Ok(f) = plain.parse::<f64>() {
                    return Resolved::Float(f);
                }
            }
            Resolved::Str
        }
        _ => Resolved::Str,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`, falling back to `ParseUint`.
fn go_parse_int(s: &str) -> Option<Resolved> {
    let (neg, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if magnitude <= i64::MAX as u64 + 1 {
            return Some(Resolved::Int((magnitude as i128).wrapping_neg() as i64));
        }
        return None;
    }
    if magnitude <= i64::MAX as u64 {
        Some(Resolved::Int(magnitude as i64))
    } else if s.starts_with('+') {
        // ParseUint takes no sign.
        None
    } else {
        Some(Resolved::Uint(magnitude))
    }
}

/// Go yaml's timestamp shapes: four digits, `-`, then a date (and time).
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..].iter().all(|c| c.is_ascii_digit() || b"-:.tTzZ+ ".contains(c))
        && b[5].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_plain_scalars_like_go_yaml() {
        let cases = [
            ("~", Resolved::Null),
            ("", Resolved::Null),
            ("True", Resolved::Bool(true)),
            ("yes", Resolved::Str),
            ("0x1F", Resolved::Int(31)),
            ("0755", Resolved::Int(0o755)),
            ("0o17", Resolved::Int(15)),
            ("1_000", Resolved::Int(1000)),
            ("+5", Resolved::Int(5)),
            ("-12", Resolved::Int(-12)),
            ("18446744073709551615", Resolved::Uint(u64::MAX)),
            ("1.10", Resolved::Float(1.1)),
            ("1e3", Resolved::Float(1000.0)),
            (".5", Resolved::Float(0.5)),
            ("99999999999999999999", Resolved::Float(1e20)),
            ("2024-01-01", Resolved::Str),
            ("1.2.3", Resolved::Str),
            ("192.168.1.10/24", Resolved::Str),
            ("-", Resolved::Str),
        ];
        for (input, expected) in cases {
            assert_eq!(resolve(input), expected, "{input:?}");
        }
    }

    #[test]
    fn keeps_source_text_of_every_scalar() {
        let docs =
            parse_documents("a: 1.10\nb: '0755'\nc: [x, 99999999999999999999]\n---\n# c\n\n---\nkind: K\n").unwrap();
        assert_eq!(docs.len(), 3);
        let a = docs[0].root.as_ref().unwrap();
        assert_eq!(a.get("a").unwrap().as_text(), Some("1.10"));
        assert_eq!(a.get("b"), Some(&Raw::Scalar(Scalar { text: "0755".into(), string_like: true })));
        let Raw::Seq(items) = a.get("c").unwrap() else { panic!() };
        assert_eq!(items[1].as_text(), Some("99999999999999999999"));
        assert_eq!(docs[1].root, None);
        assert_eq!((docs[0].line, docs[2].line), (1, 8));
    }
}
