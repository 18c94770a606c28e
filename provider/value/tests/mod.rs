//! Unit tests for the value codec, one file per module under test, sharing the builders below.
//!
//! The fixtures are written out as the engine would send them (literal sentinels and
//! signatures, not the crate's constants) so that a typo in a constant fails a test instead of
//! being mirrored by it.

mod json;
mod path;
mod secrets;
mod wire;

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};

use super::{PropertyMap, PropertyPath, PropertyValue};

pub(super) const SIG: &str = "4dabf18193072939515e22adb298388d";

pub(super) fn s(v: &str) -> Value {
    Value { kind: Some(Kind::StringValue(v.to_string())) }
}

pub(super) fn n(v: f64) -> Value {
    Value { kind: Some(Kind::NumberValue(v)) }
}

pub(super) fn b(v: bool) -> Value {
    Value { kind: Some(Kind::BoolValue(v)) }
}

pub(super) fn null() -> Value {
    Value { kind: Some(Kind::NullValue(0)) }
}

pub(super) fn list(items: Vec<Value>) -> Value {
    Value { kind: Some(Kind::ListValue(ListValue { values: items })) }
}

pub(super) fn strct(fields: Vec<(&str, Value)>) -> Struct {
    Struct { fields: fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
}

pub(super) fn obj(fields: Vec<(&str, Value)>) -> Value {
    Value { kind: Some(Kind::StructValue(strct(fields))) }
}

/// A signature object: `{SIG: sig, ...fields}`.
pub(super) fn sig_obj(sig: &str, mut fields: Vec<(&str, Value)>) -> Value {
    fields.push((SIG, s(sig)));
    obj(fields)
}

pub(super) fn map(entries: Vec<(&str, PropertyValue)>) -> PropertyMap {
    entries.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

pub(super) fn pstr(v: &str) -> PropertyValue {
    PropertyValue::String(v.to_string())
}

pub(super) fn path(text: &str) -> PropertyPath {
    text.parse().unwrap_or_else(|e| panic!("bad test path {text:?}: {e}"))
}

pub(super) fn paths(texts: &[&str]) -> Vec<PropertyPath> {
    texts.iter().map(|t| path(t)).collect()
}
