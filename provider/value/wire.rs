//! The protobuf codec: `prost_types::Struct` / `Value` <-> [`PropertyMap`] / [`PropertyValue`].
//!
//! Owns the reading and writing of the engine's `google.protobuf.Struct` conventions: unknown
//! sentinels, signature objects (secret, resource reference, output value, asset, archive,
//! byte string) and base64 byte strings.
//!
//! Must not: interpret values for a resource (no defaults, no schema, no JSON view); strip or
//! add secrets; swallow malformed input. Decoding is strict: anything carrying the signature
//! key that is not well formed is an error naming where it was, because silently treating it
//! as a plain object would, for a secret, write the plaintext into state.

use prost_types::value::Kind;
use prost_types::{ListValue, Struct, Value};

use super::path::PathSegment;
use super::{
    Archive, Asset, OutputValue, PropertyMap, PropertyPath, PropertyValue, ResourceReference, ARCHIVE_SIG, ASSET_SIG,
    BYTE_STRING_SIG, OUTPUT_VALUE_SIG, RESOURCE_REFERENCE_SIG, SECRET_SIG, SIG_KEY, UNKNOWN,
};

/// A `Struct` that does not follow the engine's value conventions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// An object carried the signature key with a signature this codec does not know.
    #[error("{}: unknown value signature {signature:?}", where_(.path))]
    UnknownSignature {
        /// Where the object was.
        path: PropertyPath,
        /// The unrecognised signature (or a description of the non-string value found).
        signature: String,
    },
    /// A signature object of a known kind was missing a field or had a field of the wrong type.
    #[error("{}: malformed {kind}: {reason}", where_(.path))]
    Malformed {
        /// Where the object was.
        path: PropertyPath,
        /// Which kind of signature object it was (`secret`, `asset`, ...).
        kind: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// A byte string whose bytes are not UTF-8; this provider has no use for binary values.
    #[error("{}: byte string is not valid UTF-8", where_(.path))]
    NonUtf8Bytes {
        /// Where the value was.
        path: PropertyPath,
    },
}

impl ValueError {
    /// Where in the input the problem was.
    pub fn path(&self) -> &PropertyPath {
        match self {
            Self::UnknownSignature { path, .. } | Self::Malformed { path, .. } | Self::NonUtf8Bytes { path } => path,
        }
    }
}

fn where_(path: &PropertyPath) -> String {
    if path.is_empty() {
        "(top level)".to_string()
    } else {
        path.to_string()
    }
}

/// Decodes a property bag sent by the engine.
pub fn from_struct(s: &Struct) -> Result<PropertyMap, ValueError> {
    let mut path = PropertyPath::root();
    decode_fields(s, &mut path)
}

/// Encodes a property bag for the engine. Unknowns become the generic sentinel.
pub fn to_struct(map: &PropertyMap) -> Struct {
    Struct { fields: map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect() }
}

/// Decodes a single value (for example `ConstructRequest.replacement_trigger`).
pub fn from_value(v: &Value) -> Result<PropertyValue, ValueError> {
    decode(v, &mut PropertyPath::root())
}

/// Encodes a single value.
pub fn to_value(v: &PropertyValue) -> Value {
    Value { kind: Some(encode_kind(v)) }
}

fn decode_fields(s: &Struct, path: &mut PropertyPath) -> Result<PropertyMap, ValueError> {
    let mut map = PropertyMap::new();
    for (k, v) in &s.fields {
        path.push(PathSegment::Key(k.clone()));
        let decoded = decode(v, path)?;
        path.pop();
        map.insert(k.clone(), decoded);
    }
    Ok(map)
}

fn decode(v: &Value, path: &mut PropertyPath) -> Result<PropertyValue, ValueError> {
    Ok(match &v.kind {
        // A Value with no kind set is what protobuf gives for an unset message; treat it as
        // null like the engine's own decoder does.
        None | Some(Kind::NullValue(_)) => PropertyValue::Null,
        Some(Kind::BoolValue(b)) => PropertyValue::Bool(*b),
        Some(Kind::NumberValue(n)) => PropertyValue::Number(*n),
        Some(Kind::StringValue(s)) if super::is_unknown_sentinel(s) => PropertyValue::Computed,
        Some(Kind::StringValue(s)) => PropertyValue::String(s.clone()),
        Some(Kind::ListValue(l)) => {
            let mut items = Vec::with_capacity(l.values.len());
            for (i, item) in l.values.iter().enumerate() {
                path.push(PathSegment::Index(i));
                items.push(decode(item, path)?);
                path.pop();
            }
            PropertyValue::Array(items)
        }
        Some(Kind::StructValue(s)) => match s.fields.get(SIG_KEY) {
            Some(sig) => decode_signature(sig, s, path)?,
            None => PropertyValue::Object(decode_fields(s, path)?),
        },
    })
}

fn decode_signature(sig: &Value, s: &Struct, path: &mut PropertyPath) -> Result<PropertyValue, ValueError> {
    let Some(Kind::StringValue(sig)) = &sig.kind else {
        return Err(ValueError::UnknownSignature {
            path: path.clone(),
            signature: format!("<{} instead of a string>", kind_name(&sig.kind)),
        });
    };
    let field = |name: &str| s.fields.get(name);
    match sig.as_str() {
        SECRET_SIG => {
            let inner = field("value").ok_or_else(|| malformed(path, "secret", "missing \"value\""))?;
            Ok(PropertyValue::Secret(Box::new(decode(inner, path)?)))
        }
        RESOURCE_REFERENCE_SIG => {
            const KIND: &str = "resource reference";
            let urn =
                opt_string(field("urn"), path, KIND, "urn")?.ok_or_else(|| malformed(path, KIND, "missing \"urn\""))?;
            // An id present but empty means "custom resource, id not known yet"; an absent id
            // means the resource has none (a component). The two must stay distinct.
            let id = match field("id") {
                None => None,
                Some(v) => Some(Box::new(match decode(v, path)? {
                    PropertyValue::String(s) if s.is_empty() => PropertyValue::Computed,
                    other @ (PropertyValue::String(_) | PropertyValue::Computed) => other,
                    other => {
                        let reason = format!("\"id\" is a {}, expected a string", other.type_name());
                        return Err(malformed(path, KIND, &reason));
                    }
                })),
            };
            let package_version = opt_string(field("packageVersion"), path, KIND, "packageVersion")?;
            Ok(PropertyValue::ResourceReference(ResourceReference {
                urn,
                id,
                package_version: package_version.unwrap_or_default(),
            }))
        }
        OUTPUT_VALUE_SIG => {
            const KIND: &str = "output value";
            let value = match field("value") {
                None => None,
                // A sentinel in the value slot is just another way to say "unknown".
                Some(v) => match decode(v, path)? {
                    PropertyValue::Computed => None,
                    known => Some(Box::new(known)),
                },
            };
            let secret = match field("secret").map(|v| &v.kind) {
                None | Some(None) | Some(Some(Kind::NullValue(_))) => false,
                Some(Some(Kind::BoolValue(b))) => *b,
                Some(other) => {
                    let reason = format!("\"secret\" is a {}, expected a bool", kind_name(other));
                    return Err(malformed(path, KIND, &reason));
                }
            };
            let dependencies = match field("dependencies").map(|v| &v.kind) {
                None | Some(None) | Some(Some(Kind::NullValue(_))) => Vec::new(),
                Some(Some(Kind::ListValue(l))) => l
                    .values
                    .iter()
                    .map(|d| match &d.kind {
                        Some(Kind::StringValue(s)) => Ok(s.clone()),
                        other => Err(malformed(
                            path,
                            KIND,
                            &format!("a dependency is a {}, expected a URN string", kind_name(other)),
                        )),
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => {
                    let reason = format!("\"dependencies\" is a {}, expected a list", kind_name(other));
                    return Err(malformed(path, KIND, &reason));
                }
            };
            Ok(PropertyValue::Output(OutputValue { value, secret, dependencies }))
        }
        ASSET_SIG => serde_json::from_value::<Asset>(plain_json_struct(s))
            .map(PropertyValue::Asset)
            .map_err(|e| malformed(path, "asset", &e.to_string())),
        ARCHIVE_SIG => serde_json::from_value::<Archive>(plain_json_struct(s))
            .map(PropertyValue::Archive)
            .map_err(|e| malformed(path, "archive", &e.to_string())),
        BYTE_STRING_SIG => {
            const KIND: &str = "byte string";
            let text = opt_string(field("value"), path, KIND, "value")?
                .ok_or_else(|| malformed(path, KIND, "missing \"value\""))?;
            let bytes = decode_base64(&text).ok_or_else(|| malformed(path, KIND, "invalid base64"))?;
            String::from_utf8(bytes)
                .map(PropertyValue::String)
                .map_err(|_| ValueError::NonUtf8Bytes { path: path.clone() })
        }
        other => Err(ValueError::UnknownSignature { path: path.clone(), signature: other.to_string() }),
    }
}

fn malformed(path: &PropertyPath, kind: &'static str, reason: &str) -> ValueError {
    ValueError::Malformed { path: path.clone(), kind, reason: reason.to_string() }
}

fn opt_string(
    v: Option<&Value>,
    path: &PropertyPath,
    kind: &'static str,
    name: &str,
) -> Result<Option<String>, ValueError> {
    match v.map(|v| &v.kind) {
        None | Some(None) | Some(Some(Kind::NullValue(_))) => Ok(None),
        Some(Some(Kind::StringValue(s))) => Ok(Some(s.clone())),
        Some(other) => Err(malformed(path, kind, &format!("{name:?} is a {}, expected a string", kind_name(other)))),
    }
}

fn kind_name(kind: &Option<Kind>) -> &'static str {
    match kind {
        None | Some(Kind::NullValue(_)) => "null",
        Some(Kind::NumberValue(_)) => "number",
        Some(Kind::StringValue(_)) => "string",
        Some(Kind::BoolValue(_)) => "bool",
        Some(Kind::StructValue(_)) => "object",
        Some(Kind::ListValue(_)) => "list",
    }
}

fn encode_kind(v: &PropertyValue) -> Kind {
    match v {
        PropertyValue::Null => Kind::NullValue(0),
        PropertyValue::Bool(b) => Kind::BoolValue(*b),
        PropertyValue::Number(n) => Kind::NumberValue(*n),
        PropertyValue::String(s) => Kind::StringValue(s.clone()),
        PropertyValue::Computed => Kind::StringValue(UNKNOWN.to_string()),
        PropertyValue::Array(items) => Kind::ListValue(ListValue { values: items.iter().map(to_value).collect() }),
        PropertyValue::Object(m) => Kind::StructValue(to_struct(m)),
        PropertyValue::Secret(inner) => signature_object(SECRET_SIG, [("value", to_value(inner))]),
        PropertyValue::Output(o) => {
            let mut fields = Vec::new();
            if let Some(value) = &o.value {
                fields.push(("value", to_value(value)));
            }
            if o.secret {
                fields.push(("secret", Value { kind: Some(Kind::BoolValue(true)) }));
            }
            if !o.dependencies.is_empty() {
                let deps = o.dependencies.iter().map(|d| string_value(d)).collect();
                fields.push(("dependencies", Value { kind: Some(Kind::ListValue(ListValue { values: deps })) }));
            }
            signature_object(OUTPUT_VALUE_SIG, fields)
        }
        PropertyValue::ResourceReference(r) => {
            let mut fields = vec![("urn", string_value(&r.urn))];
            match r.id.as_deref() {
                None => {}
                // The wire spelling of an unknown id is the empty string, not a sentinel.
                Some(PropertyValue::Computed) => fields.push(("id", string_value(""))),
                Some(id) => fields.push(("id", to_value(id))),
            }
            if !r.package_version.is_empty() {
                fields.push(("packageVersion", string_value(&r.package_version)));
            }
            signature_object(RESOURCE_REFERENCE_SIG, fields)
        }
        PropertyValue::Asset(a) => plain_struct_json(&to_json_or_null(a)),
        PropertyValue::Archive(a) => plain_struct_json(&to_json_or_null(a)),
    }
}

fn string_value(s: &str) -> Value {
    Value { kind: Some(Kind::StringValue(s.to_string())) }
}

fn signature_object<'a>(sig: &str, fields: impl IntoIterator<Item = (&'a str, Value)>) -> Kind {
    let mut s = Struct::default();
    s.fields.insert(SIG_KEY.to_string(), string_value(sig));
    s.fields.extend(fields.into_iter().map(|(k, v)| (k.to_string(), v)));
    Kind::StructValue(s)
}

/// Asset and archive serialisation cannot fail (string fields and maps with string keys only).
fn to_json_or_null<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Converts a Struct to JSON verbatim, with no sentinel or signature interpretation, for
/// handing asset/archive objects to their serde implementations.
fn plain_json_struct(s: &Struct) -> serde_json::Value {
    serde_json::Value::Object(s.fields.iter().map(|(k, v)| (k.clone(), plain_json(v))).collect())
}

fn plain_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match &v.kind {
        None | Some(Kind::NullValue(_)) => J::Null,
        Some(Kind::BoolValue(b)) => J::Bool(*b),
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n).map_or(J::Null, J::Number),
        Some(Kind::StringValue(s)) => J::String(s.clone()),
        Some(Kind::ListValue(l)) => J::Array(l.values.iter().map(plain_json).collect()),
        Some(Kind::StructValue(s)) => plain_json_struct(s),
    }
}

/// The inverse of [`plain_json`], for writing asset/archive objects.
fn plain_struct_json(v: &serde_json::Value) -> Kind {
    use serde_json::Value as J;
    match v {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(|i| Value { kind: Some(plain_struct_json(i)) }).collect(),
        }),
        J::Object(m) => Kind::StructValue(Struct {
            fields: m.iter().map(|(k, v)| (k.clone(), Value { kind: Some(plain_struct_json(v)) })).collect(),
        }),
    }
}

/// Standard-alphabet base64 (what the engine writes), padding optional. Returns `None` on any
/// character outside the alphabet or a dangling single character. Hand-rolled because this is
/// the only place that needs it and it is not worth a dependency.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.as_bytes().chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut acc = 0u32;
        for &c in chunk {
            acc = (acc << 6) | sextet(c)?;
        }
        // Left-align the bits of a short final chunk, then take the whole bytes it holds.
        acc <<= 6 * (4 - chunk.len() as u32);
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}
