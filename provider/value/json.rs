//! The typed bridge: [`PropertyMap`] <-> `serde_json::Value`, and `serde_json::Value` <-> typed
//! Rust structs.
//!
//! Owns the JSON *projection* of a property bag, in which secrets and output values are
//! unwrapped, unknowns become the generic sentinel string, and resource references become ids,
//! so that resource code can deserialize inputs into plain structs. What JSON cannot carry
//! (which paths were secret, which were unknown) is returned beside it in [`Projection`], and
//! [`from_json`] puts secrets back from those paths.
//!
//! Must not: touch protobuf (that is `wire`), decide secret propagation policy (that is
//! `secrets`), or lose a secret silently: every unwrapped secret is recorded.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Number, Value};

use super::path::PathSegment;
use super::{
    Archive, Asset, OutputValue, PropertyMap, PropertyPath, PropertyValue, ResourceReference, ARCHIVE_SIG, ASSET_SIG,
    SIG_KEY, UNKNOWN,
};

/// A property bag seen as plain JSON, plus what the JSON alone cannot say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Projection {
    /// The JSON object. Secrets and output values are unwrapped, unknowns are the string
    /// [`UNKNOWN`], resource references are their id (or URN), assets and archives are their
    /// signature objects.
    pub value: Value,
    /// Outermost paths that were secret, in document order. A secret nested inside another
    /// secret is covered by the outer path and not listed again.
    pub secrets: Vec<PropertyPath>,
    /// Paths that were unknown, in document order (including unknowns inside secrets).
    pub unknowns: Vec<PropertyPath>,
}

impl Projection {
    /// True if `path` is, or lies under, one of the recorded secret paths.
    pub fn is_secret(&self, path: &PropertyPath) -> bool {
        self.secrets.iter().any(|s| s.is_prefix_of(path))
    }

    /// True if anything in the bag was unknown.
    pub fn has_unknowns(&self) -> bool {
        !self.unknowns.is_empty()
    }
}

/// Projects a property bag to JSON. See [`Projection`] for what happens to each kind of value.
pub fn to_json(map: &PropertyMap) -> Projection {
    let mut proj = Projection::default();
    let mut path = PropertyPath::root();
    let obj = project_map(map, &mut path, false, &mut proj);
    proj.value = Value::Object(obj);
    proj
}

fn project_map(
    map: &PropertyMap,
    path: &mut PropertyPath,
    in_secret: bool,
    proj: &mut Projection,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in map {
        path.push(PathSegment::Key(k.clone()));
        out.insert(k.clone(), project(v, path, in_secret, proj));
        path.pop();
    }
    out
}

fn project(v: &PropertyValue, path: &mut PropertyPath, in_secret: bool, proj: &mut Projection) -> Value {
    match v {
        PropertyValue::Null => Value::Null,
        PropertyValue::Bool(b) => Value::Bool(*b),
        PropertyValue::Number(n) => number(*n),
        PropertyValue::String(s) => Value::String(s.clone()),
        PropertyValue::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    path.push(PathSegment::Index(i));
                    let j = project(item, path, in_secret, proj);
                    path.pop();
                    j
                })
                .collect(),
        ),
        PropertyValue::Object(m) => Value::Object(project_map(m, path, in_secret, proj)),
        PropertyValue::Secret(inner) => {
            if !in_secret {
                proj.secrets.push(path.clone());
            }
            project(inner, path, true, proj)
        }
        PropertyValue::Computed => unknown(proj, path),
        PropertyValue::Output(OutputValue { value, secret, .. }) => {
            if *secret && !in_secret {
                proj.secrets.push(path.clone());
            }
            match value {
                Some(inner) => project(inner, path, in_secret || *secret, proj),
                None => unknown(proj, path),
            }
        }
        // What the engine itself sends a provider that does not accept references: the id of
        // a custom resource (unknown if not known yet), the URN of a component.
        PropertyValue::ResourceReference(ResourceReference { urn, id, .. }) => match id.as_deref() {
            None => Value::String(urn.clone()),
            Some(PropertyValue::String(s)) if s.is_empty() => unknown(proj, path),
            Some(id) => project(id, path, in_secret, proj),
        },
        PropertyValue::Asset(a) => serde_json::to_value(a).unwrap_or(Value::Null),
        PropertyValue::Archive(a) => serde_json::to_value(a).unwrap_or(Value::Null),
    }
}

/// Records `path` as unknown and returns the sentinel that stands for it in the JSON.
fn unknown(proj: &mut Projection, path: &PropertyPath) -> Value {
    proj.unknowns.push(path.clone());
    Value::String(UNKNOWN.to_string())
}

/// Integral numbers within `i64` range become JSON integers so that they deserialize into
/// integer fields (serde_json refuses `2.0` for a `u32`). Non-finite numbers have no JSON
/// spelling and become `null`.
fn number(n: f64) -> Value {
    // 2^63 is exactly representable; the range is [-2^63, 2^63).
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if n.fract() == 0.0 && (-LIMIT..LIMIT).contains(&n) {
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

/// Turns a JSON object back into a property bag.
///
/// - the sentinel strings become [`PropertyValue::Computed`];
/// - asset and archive signature objects become [`PropertyValue::Asset`] /
///   [`PropertyValue::Archive`] (a malformed one stays a plain object);
/// - the value at each of `secret_paths` is wrapped in [`PropertyValue::Secret`]. Paths that do
///   not exist are ignored, as are paths that run through an unknown (the unknown stays
///   unknown) or through a value already made secret. Wildcards apply to every element.
///
/// A non-object `value` has no property bag to give and yields an empty map.
pub fn from_json(value: &Value, secret_paths: &[PropertyPath]) -> PropertyMap {
    let Value::Object(obj) = value else {
        return PropertyMap::new();
    };
    let mut map: PropertyMap = obj.iter().map(|(k, v)| (k.clone(), from_json_value(v))).collect();
    super::secrets::mark_secret_paths(&mut map, secret_paths);
    map
}

fn from_json_value(v: &Value) -> PropertyValue {
    match v {
        Value::Null => PropertyValue::Null,
        Value::Bool(b) => PropertyValue::Bool(*b),
        Value::Number(n) => PropertyValue::Number(n.as_f64().unwrap_or(0.0)),
        Value::String(s) if super::is_unknown_sentinel(s) => PropertyValue::Computed,
        Value::String(s) => PropertyValue::String(s.clone()),
        Value::Array(items) => PropertyValue::Array(items.iter().map(from_json_value).collect()),
        Value::Object(m) => {
            let parsed = match m.get(SIG_KEY).and_then(Value::as_str) {
                Some(ASSET_SIG) => serde_json::from_value::<Asset>(v.clone()).ok().map(PropertyValue::Asset),
                Some(ARCHIVE_SIG) => serde_json::from_value::<Archive>(v.clone()).ok().map(PropertyValue::Archive),
                _ => None,
            };
            parsed.unwrap_or_else(|| {
                PropertyValue::Object(m.iter().map(|(k, v)| (k.clone(), from_json_value(v))).collect())
            })
        }
    }
}

/// A JSON value that did not fit the target type, with where in the document it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct DecodeError {
    /// Path of the offending value (for a missing field, the object that lacks it).
    pub path: PropertyPath,
    /// serde's message, e.g. ``invalid type: string "big", expected u32``.
    pub message: String,
}

impl DecodeError {
    fn render(&self) -> String {
        if self.path.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.path, self.message)
        }
    }
}

/// Deserializes `value` into `T`, reporting the failing path as a [`PropertyPath`]
/// (`disks[1].size`) so it can be returned as a check failure against that property.
pub fn decode<T: DeserializeOwned>(value: &Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut path = PropertyPath::root();
        for seg in err.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => path.push(PathSegment::Index(*index)),
                serde_path_to_error::Segment::Map { key } => path.push(PathSegment::Key(key.clone())),
                // In JSON an externally tagged enum variant is an object key.
                serde_path_to_error::Segment::Enum { variant } => path.push(PathSegment::Key(variant.clone())),
                // Nothing addressable (e.g. inside a flattened or untagged part); skip it.
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        DecodeError { path, message: err.into_inner().to_string() }
    })
}

/// Serializes `value` to JSON.
///
/// # Panics
/// If `T`'s `Serialize` implementation fails, which for our data types only happens with a
/// map whose keys are not strings: a programming error, caught by any test that encodes the
/// type. Use [`try_encode`] for types where failure is data-dependent.
pub fn encode<T: Serialize>(value: &T) -> Value {
    match serde_json::to_value(value) {
        Ok(v) => v,
        Err(e) => panic!("value cannot be represented as JSON: {e}"),
    }
}

/// Serializes `value` to JSON, returning serde's error instead of panicking.
pub fn try_encode<T: Serialize>(value: &T) -> Result<Value, serde_json::Error> {
    serde_json::to_value(value)
}
