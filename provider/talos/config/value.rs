//! Typed configuration values: what machinery holds in its Go structs, with
//! the distinctions its merge and encoder care about (nil vs empty, absent
//! pointer vs pointer to zero).
//!
//! Owns: [`Value`] (a Go value of a schema type), [`Dyn`] (a value held in
//! an `any`), how each schema type is handled ([`Shape`]), zero values and
//! yaml's `isZero` (which decides `omitempty`).
//! Must not: parse or print YAML, or know document-level rules.

use super::schema::{FieldSpec, Schema, TypeExpr, TypeSpec};

/// A Go value; its type is known from the schema position it sits at.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A nil pointer, slice, map, interface or `[]byte`.
    Nil,
    /// A `bool`.
    Bool(bool),
    /// A signed integer (also enums with a signed kind and `time.Duration` in ns).
    Int(i64),
    /// An unsigned integer (also unsigned enums).
    Uint(u64),
    /// A string; for text and URL types their canonical text (`""` is zero),
    /// for base64 byte types the base64 of non-nil bytes.
    Str(String),
    /// A struct: one value per schema field, in order.
    Struct(Vec<Value>),
    /// A non-nil slice.
    Slice(Vec<Value>),
    /// A non-nil map (encoded with sorted keys).
    Map(Vec<(String, Value)>),
    /// A non-nil pointer.
    Ptr(Box<Value>),
    /// A non-nil value in an `any` (unstructured configuration).
    Dyn(Dyn),
}

/// A value in an `any`, as Go yaml decodes it.
#[derive(Debug, Clone, PartialEq)]
pub enum Dyn {
    /// `nil`.
    Null,
    /// `bool`.
    Bool(bool),
    /// `int`.
    Int(i64),
    /// `uint64`.
    Uint(u64),
    /// `float64`.
    Float(f64),
    /// `string`.
    Str(String),
    /// `[]any`.
    Seq(Vec<Dyn>),
    /// `map[string]any`.
    Map(Vec<(String, Dyn)>),
}

/// How a schema type is decoded, merged and encoded.
#[derive(Debug, Clone, Copy)]
pub enum Shape<'s> {
    /// `*T`.
    Ptr(&'s TypeExpr),
    /// `[]T`; `merger` names a list type with its own merge (`v1alpha1.NetworkDeviceList`).
    Slice { elem: &'s TypeExpr, merger: Option<&'s str> },
    /// `map[string]T`.
    Map(&'s TypeExpr),
    /// A struct walked field by field.
    Struct { name: &'s str, spec: &'s TypeSpec },
    /// `string`.
    Str,
    /// `bool`.
    Bool,
    /// A signed integer of `bits`.
    Int { bits: u32 },
    /// An unsigned integer of `bits`.
    Uint { bits: u32 },
    /// `time.Duration`.
    Duration,
    /// An integer enum with text names (nethelpers, block types).
    Enum { name: &'s str, names: &'s [String], signed: bool },
    /// A text type backed by a Go struct or slice (IP addresses, prefixes,
    /// MAC addresses, sizes, CEL expressions).
    Text { name: &'s str },
    /// `x509.PEMEncoded*`: base64 fields (`crt`, `key`).
    Pem { fields: &'static [&'static str] },
    /// `v1alpha1.Base64Bytes`.
    Base64,
    /// `v1alpha1.Endpoint`, `meta.URL`.
    Url,
    /// `v1alpha1.FileMode`: an integer written in octal (`0o644`).
    FileMode,
    /// `network.PortRange`: a port or `lo-hi`.
    PortRange,
    /// `v1alpha1.ClusterInlineManifests`.
    InlineManifests { elem: &'s TypeExpr },
    /// A type this crate does not reproduce (`DiskSize`, `InstallDiskSizeMatcher`).
    Unsupported { name: &'s str },
    /// `any`.
    Any,
}

/// The fields of `x509.PEMEncodedCertificateAndKey`.
pub const PEM_CERT_AND_KEY: &[&str] = &["crt", "key"];

/// Integer width of a Go kind name.
fn int_bits(kind: &str) -> Option<(bool, u32)> {
    Some(match kind {
        "int" | "int64" => (true, 64),
        "int8" => (true, 8),
        "int16" => (true, 16),
        "int32" => (true, 32),
        "uint" | "uint64" => (false, 64),
        "uint8" => (false, 8),
        "uint16" => (false, 16),
        "uint32" => (false, 32),
        _ => return None,
    })
}

/// How values of `ty` are handled.
pub fn shape(ty: &TypeExpr) -> Shape<'_> {
    match ty {
        TypeExpr::Ptr { e } => Shape::Ptr(e),
        TypeExpr::Slice { e } => Shape::Slice { elem: e, merger: None },
        TypeExpr::Map { e } => Shape::Map(e),
        TypeExpr::Any => Shape::Any,
        TypeExpr::Scalar { n } => scalar_shape(n),
        TypeExpr::Named { n } => named_shape(n),
    }
}

fn scalar_shape(kind: &str) -> Shape<'static> {
    match kind {
        "string" => Shape::Str,
        "bool" => Shape::Bool,
        "bytes" => Shape::Base64,
        other => match int_bits(other) {
            Some((true, bits)) => Shape::Int { bits },
            Some((false, bits)) => Shape::Uint { bits },
            None => panic!("schema uses unsupported Go kind {other}"),
        },
    }
}

fn named_shape(name: &str) -> Shape<'_> {
    let spec = Schema::get().named(name);
    let name = Schema::get().types.get_key_value(name).map(|(k, _)| k.as_str()).unwrap_or_default();
    match name {
        "time.Duration" => return Shape::Duration,
        "x509.PEMEncodedCertificateAndKey" => return Shape::Pem { fields: PEM_CERT_AND_KEY },
        "x509.PEMEncodedCertificate" => return Shape::Pem { fields: &["crt"] },
        "x509.PEMEncodedKey" => return Shape::Pem { fields: &["key"] },
        "v1alpha1.Base64Bytes" => return Shape::Base64,
        "v1alpha1.Endpoint" | "meta.URL" => return Shape::Url,
        "v1alpha1.FileMode" => return Shape::FileMode,
        "network.PortRange" => return Shape::PortRange,
        "v1alpha1.ClusterInlineManifests" => {
            let Some(TypeExpr::Slice { e }) = &spec.underlying else { panic!("ClusterInlineManifests is a slice") };
            return Shape::InlineManifests { elem: e };
        }
        _ => {}
    }
    match spec.custom.as_deref() {
        Some("text") if !spec.r#enum.is_empty() => {
            let signed = matches!(&spec.underlying, Some(TypeExpr::Scalar { n }) if n.starts_with("int"));
            Shape::Enum { name, names: &spec.r#enum, signed }
        }
        Some("text") => Shape::Text { name },
        Some(_) => Shape::Unsupported { name },
        None => match &spec.underlying {
            None => Shape::Struct { name, spec },
            Some(TypeExpr::Slice { e }) => Shape::Slice { elem: e, merger: spec.merger.then_some(name) },
            Some(under) => shape(under),
        },
    }
}

/// The Go zero value of `ty`.
pub fn zero(ty: &TypeExpr) -> Value {
    match shape(ty) {
        Shape::Ptr(_)
        | Shape::Slice { .. }
        | Shape::Map(_)
        | Shape::Any
        | Shape::Base64
        | Shape::InlineManifests { .. } => Value::Nil,
        Shape::Struct { spec, .. } => Value::Struct(spec.fields.iter().map(|f| zero(&f.ty)).collect()),
        Shape::Pem { fields } => Value::Struct(fields.iter().map(|_| Value::Nil).collect()),
        Shape::Str | Shape::Text { .. } | Shape::Url | Shape::PortRange | Shape::Unsupported { .. } => {
            Value::Str(String::new())
        }
        Shape::Bool => Value::Bool(false),
        Shape::Int { .. } | Shape::Duration => Value::Int(0),
        Shape::Enum { signed: true, .. } => Value::Int(0),
        Shape::Uint { .. } | Shape::Enum { .. } | Shape::FileMode => Value::Uint(0),
    }
}

/// go-yaml's `isZero` for a value of `ty` (what `omitempty` omits).
pub fn is_zero(v: &Value, ty: &TypeExpr) -> bool {
    match (shape(ty), v) {
        (_, Value::Nil) => true,
        (Shape::Ptr(_) | Shape::Any, _) => false,
        (Shape::Slice { .. } | Shape::Base64 | Shape::InlineManifests { .. }, Value::Slice(items)) => items.is_empty(),
        (Shape::Base64, Value::Str(s)) => s.is_empty(),
        (Shape::Map(_), Value::Map(entries)) => entries.is_empty(),
        (Shape::Text { name }, Value::Str(s)) => {
            // Structs with only private fields (netip.*) always look zero to go-yaml.
            let spec = Schema::get().named(name);
            if spec.iszero || !spec.opaque {
                s.is_empty()
            } else {
                true
            }
        }
        (Shape::Struct { name, spec }, Value::Struct(fields)) => struct_is_zero(name, spec, fields),
        (Shape::Pem { .. }, Value::Struct(fields)) => {
            fields.iter().all(|f| matches!(f, Value::Nil) || matches!(f, Value::Str(s) if s.is_empty()))
        }
        (_, Value::Str(s)) => s.is_empty(),
        (_, Value::Bool(b)) => !b,
        (_, Value::Int(i)) => *i == 0,
        (_, Value::Uint(u)) => *u == 0,
        _ => false,
    }
}

fn struct_is_zero(name: &str, spec: &TypeSpec, fields: &[Value]) -> bool {
    let field = |key: &str| {
        let i = spec.fields.iter().position(|f| f.yaml == key).expect("IsZero field in schema");
        (&fields[i], &spec.fields[i].ty)
    };
    let zero_at = |key: &str| {
        let (v, ty) = field(key);
        is_zero(v, ty)
    };
    // block types with their own IsZero.
    match name {
        "block.EncryptionSpec" => zero_at("provider") && zero_at("keys"),
        "block.FilesystemSpec" => zero_at("type") && zero_at("projectQuotaSupport"),
        "block.ProvisioningSpec" => {
            let (selector, _) = field("diskSelector");
            let match_zero = match selector {
                Value::Struct(inner) => matches!(&inner[0], Value::Str(s) if s.is_empty()),
                _ => true,
            };
            zero_at("grow") && zero_at("maxSize") && zero_at("minSize") && match_zero
        }
        _ => spec.fields.iter().zip(fields).all(|(f, v)| is_zero(v, &f.ty)),
    }
}

/// The index of the field with YAML key `key` in a walked struct.
pub fn field_index(spec: &TypeSpec, key: &str) -> Option<usize> {
    spec.fields.iter().position(|f| f.yaml == key && !f.inline)
}

/// Finds `key` in a struct, looking into inline structs: returns the path of
/// field indexes and the field.
pub fn find_field<'s>(spec: &'s TypeSpec, key: &str) -> Option<(Vec<usize>, &'s FieldSpec)> {
    for (i, f) in spec.fields.iter().enumerate() {
        if f.inline {
            if let Shape::Struct { spec: inner, .. } = shape(&f.ty) {
                if let Some((mut path, field)) = find_field(inner, key) {
                    path.insert(0, i);
                    return Some((path, field));
                }
            }
        } else if f.yaml == key {
            return Some((vec![i], f));
        }
    }
    None
}

/// The inline `map[string]any` field of a struct (`v1alpha1.Unstructured`).
pub fn inline_map(spec: &TypeSpec) -> Option<usize> {
    spec.fields.iter().position(|f| f.inline && matches!(f.ty, TypeExpr::Map { .. }))
}

impl Value {
    /// The field at `path` (indexes into nested structs).
    pub fn field_mut(&mut self, path: &[usize]) -> &mut Value {
        let mut v = self;
        for &i in path {
            match v {
                Value::Struct(fields) => v = &mut fields[i],
                other => panic!("not a struct: {other:?}"),
            }
        }
        v
    }

    /// The field at `path` (indexes into nested structs).
    pub fn field(&self, path: &[usize]) -> &Value {
        let mut v = self;
        for &i in path {
            match v {
                Value::Struct(fields) => v = &fields[i],
                other => panic!("not a struct: {other:?}"),
            }
        }
        v
    }

    /// Follows a non-nil pointer.
    pub fn deref(&self) -> &Value {
        match self {
            Value::Ptr(inner) => inner.deref(),
            other => other,
        }
    }

    /// The string of a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self.deref() {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}
