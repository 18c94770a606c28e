//! Decoding YAML into typed values the way machinery's config loader does:
//! go-yaml's `Decode` into the document's Go type, then siderolabs/gen's
//! `xyaml.CheckUnknownKeys`.
//!
//! Owns: scalar conversion rules (string fields take the source text, bools
//! accept `yes`/`on`, integers check range, durations parse Go syntax, text
//! types validate and canonicalise), type errors, and the unknown-key report
//! with machinery's wording.
//! Must not: merge, or know about documents beyond the one type it is given.

use std::fmt::Write as _;

use super::goscalar;
use super::schema::TypeExpr;
use super::value::{find_field, inline_map, shape, zero, Dyn, Shape, Value};
use super::yaml_read::{resolve, Raw, Resolved, Scalar};
use crate::talos::goyaml::{self, Flavour, Node};

/// Why a document could not be decoded; the text follows machinery's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

/// Decodes `raw` as a value of `ty`, strictly (unknown keys are an error).
pub fn decode(raw: &Raw, ty: &TypeExpr) -> Result<Value, DecodeError> {
    let mut d = Decoder::default();
    let value = d.value(raw, ty, "");
    if !d.errors.is_empty() {
        let mut msg = String::from("yaml: unmarshal errors:");
        for e in &d.errors {
            let _ = write!(msg, "\n  {e}");
        }
        return Err(DecodeError(msg));
    }
    if let Some(unknown) = d.unknown {
        return Err(DecodeError(format!(
            "unknown keys found during decoding:\n{}",
            goyaml::emit(&unknown.to_out(), Flavour::YamlV4)
        )));
    }
    Ok(value)
}

/// Go's view of a scalar: plain scalars resolve; a scalar `serde_norway`
/// read as a string is quoted unless it could only have been plain text.
pub fn effective(s: &Scalar) -> Resolved {
    let r = resolve(&s.text);
    if !s.string_like || r == Resolved::Str {
        return r;
    }
    // Plain text serde_norway would have resolved to a non-string must have been quoted.
    match serde_norway::from_str::<serde_norway::Value>(&s.text) {
        Ok(serde_norway::Value::String(_)) => r,
        _ => Resolved::Str,
    }
}

/// Unknown keys, shaped like the document.
#[derive(Debug)]
enum Unknown {
    Map(Vec<(String, Unknown)>),
    Seq(Vec<Unknown>),
    Leaf(Raw),
}

impl Unknown {
    fn to_out(&self) -> Node {
        match self {
            Unknown::Map(entries) => {
                let mut entries: Vec<_> = entries.iter().map(|(k, v)| (k.clone(), v.to_out())).collect();
                entries.sort_by(|a, b| goyaml::go_key_order(&a.0, &b.0));
                Node::Map(entries)
            }
            Unknown::Seq(items) => Node::Seq(items.iter().map(Unknown::to_out).collect()),
            Unknown::Leaf(raw) => raw_to_out(raw),
        }
    }
}

/// A raw node as go-yaml would print it back (source key order).
pub fn raw_to_out(raw: &Raw) -> Node {
    match raw {
        Raw::Map(entries) => Node::Map(entries.iter().map(|(k, v)| (k.clone(), raw_to_out(v))).collect()),
        Raw::Seq(items) => Node::Seq(items.iter().map(raw_to_out).collect()),
        Raw::Scalar(s) if effective(s) == Resolved::Str => Node::Str(s.text.clone()),
        Raw::Scalar(s) => Node::Plain(s.text.clone()),
    }
}

#[derive(Default)]
struct Decoder {
    errors: Vec<String>,
    unknown: Option<Unknown>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Records `leaf` at `path` (dotted keys and `[i]` elements) in the unknown tree.
fn insert_unknown(root: &mut Option<Unknown>, steps: &[Step], leaf: Raw) {
    let node = root.get_or_insert_with(|| match steps.first() {
        Some(Step::Index) => Unknown::Seq(Vec::new()),
        _ => Unknown::Map(Vec::new()),
    });
    insert_into(node, steps, leaf);
}

fn insert_into(node: &mut Unknown, steps: &[Step], leaf: Raw) {
    let Some((step, rest)) = steps.split_first() else { return };
    let fresh = |rest: &[Step]| match rest.first() {
        None => Unknown::Leaf(leaf.clone()),
        Some(Step::Index) => Unknown::Seq(Vec::new()),
        Some(Step::Key(_)) => Unknown::Map(Vec::new()),
    };
    match (node, step) {
        (Unknown::Map(entries), Step::Key(k)) => {
            if !entries.iter().any(|(key, _)| key == k) {
                entries.push((k.clone(), fresh(rest)));
            }
            let child = &mut entries.iter_mut().find(|(key, _)| key == k).expect("just inserted").1;
            insert_into(child, rest, leaf);
        }
        (Unknown::Seq(items), Step::Index) => {
            items.push(fresh(rest));
            let child = items.last_mut().expect("just pushed");
            insert_into(child, rest, leaf);
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    /// A sequence element that has unknown keys (machinery lists only those).
    Index,
}

impl Decoder {
    fn type_error(&mut self, raw: &Raw, into: &str, path: &str) {
        let shown = match raw {
            Raw::Scalar(s) => format!("{} `{}`", raw.tag(), s.text),
            _ => raw.tag().to_owned(),
        };
        let at = if path.is_empty() { String::new() } else { format!(" (at {path})") };
        self.errors.push(format!("cannot unmarshal {shown} into {into}{at}"));
    }

    fn error(&mut self, path: &str, msg: impl std::fmt::Display) {
        let at = if path.is_empty() { String::new() } else { format!(" (at {path})") };
        self.errors.push(format!("{msg}{at}"));
    }

    fn value(&mut self, raw: &Raw, ty: &TypeExpr, path: &str) -> Value {
        let mut steps = Vec::new();
        self.value_at(raw, ty, path, &mut steps)
    }

    fn value_at(&mut self, raw: &Raw, ty: &TypeExpr, path: &str, steps: &mut Vec<Step>) -> Value {
        if raw.is_null_for_go() {
            return zero(ty);
        }
        match shape(ty) {
            Shape::Ptr(elem) => Value::Ptr(Box::new(self.value_at(raw, elem, path, steps))),
            Shape::Struct { name, spec } => {
                let Raw::Map(entries) = raw else {
                    self.type_error(raw, name, path);
                    return zero(ty);
                };
                let mut value = zero(ty);
                for (key, item) in entries {
                    let item_path = join(path, key);
                    steps.push(Step::Key(key.clone()));
                    if let Some((field_path, field)) = find_field(spec, key) {
                        let v = self.value_at(item, &field.ty, &item_path, steps);
                        *value.field_mut(&field_path) = v;
                    } else if let Some(i) = inline_map(spec) {
                        let dynamic = to_dyn(item);
                        match value.field_mut(&[i]) {
                            Value::Map(m) => m.push((key.clone(), Value::Dyn(dynamic))),
                            slot => *slot = Value::Map(vec![(key.clone(), Value::Dyn(dynamic))]),
                        }
                    } else {
                        insert_unknown(&mut self.unknown, steps, item.clone());
                    }
                    steps.pop();
                }
                value
            }
            Shape::Slice { elem, .. } => self.slice(raw, elem, ty, path, steps),
            Shape::InlineManifests { elem } => {
                let mut v = self.slice(raw, elem, ty, path, steps);
                if let Value::Slice(items) = &mut v {
                    for item in items {
                        if let Value::Struct(fields) = item {
                            if let Value::Str(contents) = &mut fields[1] {
                                *contents = contents.trim_start_matches(['\t', '\n', '\x0b', '\x0c', '\r']).to_owned();
                            }
                        }
                    }
                }
                v
            }
            Shape::Map(elem) => {
                let Raw::Map(entries) = raw else {
                    self.type_error(raw, "map", path);
                    return zero(ty);
                };
                let mut out = Vec::with_capacity(entries.len());
                for (key, item) in entries {
                    steps.push(Step::Key(key.clone()));
                    let v = self.value_at(item, elem, &join(path, key), steps);
                    steps.pop();
                    out.retain(|(k, _): &(String, Value)| k != key);
                    out.push((key.clone(), v));
                }
                Value::Map(out)
            }
            Shape::Any => Value::Dyn(to_dyn(raw)),
            Shape::Pem { fields } => {
                let Raw::Map(entries) = raw else {
                    self.type_error(raw, "x509 certificate and key", path);
                    return zero(ty);
                };
                let mut values: Vec<Value> = fields.iter().map(|_| Value::Str(String::new())).collect();
                for (key, item) in entries {
                    steps.push(Step::Key(key.clone()));
                    match fields.iter().position(|f| f == key) {
                        Some(i) => {
                            if let Some(text) = self.string(item, &join(path, key)) {
                                match goscalar::canonical_base64(&text) {
                                    Ok(b64) => values[i] = Value::Str(b64),
                                    Err(e) => self.error(&join(path, key), e),
                                }
                            }
                        }
                        None => insert_unknown(&mut self.unknown, steps, item.clone()),
                    }
                    steps.pop();
                }
                Value::Struct(values)
            }
            other => self.scalar(raw, other, ty, path, steps),
        }
    }

    fn slice(&mut self, raw: &Raw, elem: &TypeExpr, ty: &TypeExpr, path: &str, steps: &mut Vec<Step>) -> Value {
        let Raw::Seq(items) = raw else {
            self.type_error(raw, "slice", path);
            return zero(ty);
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            steps.push(Step::Index);
            out.push(self.value_at(item, elem, &format!("{path}[{i}]"), steps));
            steps.pop();
        }
        Value::Slice(out)
    }

    /// A string the way go-yaml fills a `string` field: the source text of any scalar.
    fn string(&mut self, raw: &Raw, path: &str) -> Option<String> {
        match raw {
            Raw::Scalar(s) if effective(s) == Resolved::Null => Some(String::new()),
            Raw::Scalar(s) => Some(s.text.clone()),
            _ => {
                self.type_error(raw, "string", path);
                None
            }
        }
    }

    fn scalar(&mut self, raw: &Raw, shape: Shape<'_>, ty: &TypeExpr, path: &str, steps: &mut Vec<Step>) -> Value {
        let scalar = match raw {
            Raw::Scalar(s) => s,
            Raw::Map(entries) if matches!(shape, Shape::Text { .. }) => {
                // go-yaml fills the (private) struct silently; CheckUnknownKeys reports every key.
                for (key, item) in entries {
                    steps.push(Step::Key(key.clone()));
                    insert_unknown(&mut self.unknown, steps, item.clone());
                    steps.pop();
                }
                return zero(ty);
            }
            _ => {
                self.type_error(raw, &go_type_name(ty), path);
                return zero(ty);
            }
        };
        let resolved = effective(scalar);
        let text = scalar.text.as_str();
        let result: Result<Value, String> = match shape {
            Shape::Str | Shape::Url => Ok(Value::Str(text.to_owned())),
            Shape::Bool => match (&resolved, text) {
                (Resolved::Bool(b), _) => Ok(Value::Bool(*b)),
                (Resolved::Str, "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON") => Ok(Value::Bool(true)),
                (Resolved::Str, "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF") => Ok(Value::Bool(false)),
                _ => Err(String::new()),
            },
            Shape::Int { bits } => go_int(&resolved, bits).map(Value::Int).ok_or_default(),
            Shape::Uint { bits } => go_uint(&resolved, bits).map(Value::Uint).ok_or_default(),
            Shape::FileMode => go_uint(&resolved, 32).map(Value::Uint).ok_or_default(),
            Shape::Duration => match resolved {
                Resolved::Str => goscalar::parse_duration(text).map(Value::Int).map_err(|e| format!("\0{e}")),
                _ => Err(String::new()),
            },
            Shape::Enum { name, names, signed } => {
                let lower = text.to_lowercase();
                let index = names.iter().position(|n| n == text).or_else(|| names.iter().position(|n| *n == lower));
                match index {
                    Some(i) if signed => Ok(Value::Int(i as i64)),
                    Some(i) => Ok(Value::Uint(i as u64)),
                    None => Err(format!("\0{text} does not belong to {} values", short_name(name))),
                }
            }
            Shape::Text { name } => goscalar::canonical_text(name, text).map(Value::Str).map_err(|e| format!("\0{e}")),
            Shape::Base64 => goscalar::canonical_base64(text).map(Value::Str).map_err(|e| format!("\0{e}")),
            Shape::PortRange => match go_uint(&resolved, 16) {
                Some(port) => Ok(Value::Str(port.to_string())),
                None => goscalar::port_range(text).map(Value::Str).map_err(|e| format!("\0{e}")),
            },
            Shape::Unsupported { name } => {
                Err(format!("\0values of Talos type {name} are not supported by this provider's configuration patcher"))
            }
            _ => unreachable!("non-scalar shape {shape:?}"),
        };
        match result {
            Ok(v) => v,
            Err(msg) if msg.is_empty() => {
                self.type_error(raw, &go_type_name(ty), path);
                zero(ty)
            }
            Err(msg) => {
                self.error(path, msg.trim_start_matches('\0'));
                zero(ty)
            }
        }
    }
}

trait OkOrDefault<T> {
    fn ok_or_default(self) -> Result<T, String>;
}

impl<T> OkOrDefault<T> for Option<T> {
    fn ok_or_default(self) -> Result<T, String> {
        self.ok_or_else(String::new)
    }
}

impl Raw {
    /// A null scalar as Go sees it (`~`, `null`, empty; not a quoted `"null"`).
    fn is_null_for_go(&self) -> bool {
        matches!(self, Raw::Scalar(s) if effective(s) == Resolved::Null)
    }
}

/// go-yaml's signed integer conversion (floats truncate).
fn go_int(r: &Resolved, bits: u32) -> Option<i64> {
    let v = match *r {
        Resolved::Int(i) => i,
        Resolved::Uint(u) => i64::try_from(u).ok()?,
        Resolved::Float(f) if f.is_finite() && f <= i64::MAX as f64 && f >= i64::MIN as f64 => f as i64,
        _ => return None,
    };
    let (min, max) = if bits == 64 { (i64::MIN, i64::MAX) } else { (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1) };
    (min..=max).contains(&v).then_some(v)
}

/// go-yaml's unsigned integer conversion (floats truncate).
fn go_uint(r: &Resolved, bits: u32) -> Option<u64> {
    let v = match *r {
        Resolved::Int(i) => u64::try_from(i).ok()?,
        Resolved::Uint(u) => u,
        Resolved::Float(f) if f.is_finite() && f >= 0.0 && f <= u64::MAX as f64 => f as u64,
        _ => return None,
    };
    (bits == 64 || v < (1u64 << bits)).then_some(v)
}

fn short_name(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// A Go type name for messages (`int`, `*bool`, `nethelpers.BondMode`).
fn go_type_name(ty: &TypeExpr) -> String {
    match ty {
        TypeExpr::Ptr { e } => format!("*{}", go_type_name(e)),
        TypeExpr::Slice { e } => format!("[]{}", go_type_name(e)),
        TypeExpr::Map { e } => format!("map[string]{}", go_type_name(e)),
        TypeExpr::Named { n } => n.clone(),
        TypeExpr::Scalar { n } if n == "bytes" => "[]uint8".to_owned(),
        TypeExpr::Scalar { n } => n.clone(),
        TypeExpr::Any => "interface {}".to_owned(),
    }
}

/// A YAML node as an untyped value, scalars resolved as Go reads them.
pub(super) fn to_dyn(raw: &Raw) -> Dyn {
    match raw {
        Raw::Map(entries) => Dyn::Map(entries.iter().map(|(k, v)| (k.clone(), to_dyn(v))).collect()),
        Raw::Seq(items) => Dyn::Seq(items.iter().map(to_dyn).collect()),
        Raw::Scalar(s) => match effective(s) {
            Resolved::Null => Dyn::Null,
            Resolved::Bool(b) => Dyn::Bool(b),
            Resolved::Int(i) => Dyn::Int(i),
            Resolved::Uint(u) => Dyn::Uint(u),
            Resolved::Float(f) => Dyn::Float(f),
            Resolved::Str => Dyn::Str(s.text.clone()),
        },
    }
}
