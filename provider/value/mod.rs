//! The value model: what a Pulumi property bag means, independent of how it travels.
//!
//! Owns [`PropertyValue`], [`PropertyMap`], the signature constants and unknown sentinels of the
//! `google.protobuf.Struct` encoding, and re-exports the rest of the codec:
//!
//! - [`wire`]: `prost_types::Struct` <-> [`PropertyMap`], the only place that knows the
//!   protobuf encoding (sentinels, signature objects, base64 byte strings);
//! - [`json`]: [`PropertyMap`] <-> `serde_json::Value` plus the secret/unknown paths that the
//!   JSON view cannot carry, and `decode`/`encode` for typed structs;
//! - [`secrets`]: secret propagation and redaction helpers;
//! - [`PropertyPath`] (in `path.rs`) and [`Asset`]/[`Archive`] (in `asset.rs`).
//!
//! Must not: talk gRPC, know about resources or schemas, or do I/O. Everything here is pure data
//! conversion so that every RPC handler decodes and encodes values the same way.
//!
//! `PropertyMap` is a `BTreeMap`: a protobuf `Struct` is itself a sorted map (prost uses
//! `BTreeMap`), so the engine's field order carries no information worth preserving, and sorted
//! keys make encodings, logs and test expectations deterministic without an extra dependency.

#![deny(missing_docs)]

use std::collections::BTreeMap;

mod asset;
pub mod json;
mod path;
pub mod secrets;
pub mod wire;

#[cfg(test)]
mod tests;

pub use asset::{Archive, ArchiveSource, Asset, AssetOrArchive, AssetSource};
pub use json::{decode, encode, from_json, to_json, DecodeError, Projection};
pub use path::{PathParseError, PathSegment, PropertyPath};
pub use wire::{from_struct, to_struct, ValueError};

/// An object's properties, keyed by name, sorted (see the module docs for why a `BTreeMap`).
pub type PropertyMap = BTreeMap<String, PropertyValue>;

/// Key under which an object carries its signature, marking it as a special value.
pub const SIG_KEY: &str = "4dabf18193072939515e22adb298388d";
/// Signature of a secret: `{SIG_KEY: SECRET_SIG, "value": ...}`.
pub const SECRET_SIG: &str = "1b47061264138c4ac30d75fd1eb44270";
/// Signature of a resource reference: `urn`, optional `id` and `packageVersion`.
pub const RESOURCE_REFERENCE_SIG: &str = "5cf8f73096256a8f31e491e813e4eb8e";
/// Signature of an output value: optional `value`, `secret`, `dependencies`.
pub const OUTPUT_VALUE_SIG: &str = "d0e6a833031e9bbcd3f4e8bde6ca49a4";
/// Signature of an asset: `hash` and one of `text`, `path`, `uri`.
pub const ASSET_SIG: &str = "c44067f5952c0a294b673a41bacd8c17";
/// Signature of an archive: `hash` and one of `assets`, `path`, `uri`.
pub const ARCHIVE_SIG: &str = "0def7320c3a5731c473e5ecbe6d01bc7";
/// Signature of a byte string: base64 `value`. Only sent if the provider negotiated it.
pub const BYTE_STRING_SIG: &str = "803fd3297a5875dc03ca845dda5d2a98";

/// The generic unknown sentinel; the one we emit for every unknown.
pub const UNKNOWN: &str = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/// All unknown sentinels the engine may send (generic, bool, number, array, asset, archive,
/// object). The type hint carries nothing a provider can use, so all decode to
/// [`PropertyValue::Computed`].
pub const UNKNOWN_SENTINELS: [&str; 7] = [
    UNKNOWN,
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "030794c1-ac77-496b-92df-f27374a8bd58",
    "e48ece36-62e2-4504-bad9-02848725956a",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
];

/// True if `s` is one of the [`UNKNOWN_SENTINELS`].
pub fn is_unknown_sentinel(s: &str) -> bool {
    UNKNOWN_SENTINELS.contains(&s)
}

/// A Pulumi property value, as the engine means it.
#[derive(Debug, Clone, PartialEq)]
pub enum PropertyValue {
    /// `null` (also what an absent `Value.kind` decodes to).
    Null,
    /// A boolean.
    Bool(bool),
    /// A number; the protocol only has doubles.
    Number(f64),
    /// A UTF-8 string.
    String(String),
    /// An ordered list.
    Array(Vec<PropertyValue>),
    /// A nested object.
    Object(PropertyMap),
    /// A value the engine must keep encrypted in state and mask in output.
    Secret(Box<PropertyValue>),
    /// An unknown value (preview only), whatever its sentinel's type hint.
    Computed,
    /// An output value with dependencies (Construct/Call only).
    Output(OutputValue),
    /// A reference to another resource.
    ResourceReference(ResourceReference),
    /// A single blob (text, file or URI).
    Asset(Asset),
    /// A collection of assets and archives, a file archive, or a remote archive.
    Archive(Archive),
}

/// An output value: a possibly-unknown, possibly-secret value with the resources it came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutputValue {
    /// The value; `None` means unknown.
    pub value: Option<Box<PropertyValue>>,
    /// Whether the value is secret.
    pub secret: bool,
    /// URNs of the resources the value depends on.
    pub dependencies: Vec<String>,
}

/// A reference to a resource.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceReference {
    /// The referenced resource's URN.
    pub urn: String,
    /// The resource's id. `None`: the resource has no id (a component resource).
    /// `Some(Computed)`: a custom resource whose id is not known yet; on the wire that is an
    /// empty `id` string, and an empty string decodes to this.
    pub id: Option<Box<PropertyValue>>,
    /// Version of the package defining the resource; empty if not sent.
    pub package_version: String,
}

impl PropertyValue {
    /// A secret wrapping `value`.
    pub fn secret(value: PropertyValue) -> Self {
        Self::Secret(Box::new(value))
    }

    /// Short name of the variant, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "bool",
            Self::Number(_) => "number",
            Self::String(_) => "string",
            Self::Array(_) => "array",
            Self::Object(_) => "object",
            Self::Secret(_) => "secret",
            Self::Computed => "unknown",
            Self::Output(_) => "output",
            Self::ResourceReference(_) => "resource reference",
            Self::Asset(_) => "asset",
            Self::Archive(_) => "archive",
        }
    }

    /// True for [`PropertyValue::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// True for a secret, or an output value marked secret.
    pub fn is_secret(&self) -> bool {
        match self {
            Self::Secret(_) => true,
            Self::Output(o) => o.secret,
            _ => false,
        }
    }

    /// True if the value itself is unknown: `Computed`, or an output value without a value.
    /// Looks through secrets (a secret unknown is still unknown). Does not look inside arrays
    /// or objects; see [`secrets::contains_unknowns`] for that.
    pub fn is_computed(&self) -> bool {
        match self.unwrap_secrets() {
            Self::Computed => true,
            Self::Output(o) => o.value.is_none(),
            _ => false,
        }
    }

    /// The value with any number of secret wrappers removed.
    pub fn unwrap_secrets(&self) -> &PropertyValue {
        let mut v = self;
        while let Self::Secret(inner) = v {
            v = inner;
        }
        v
    }

    /// The value with secret wrappers and known output values looked through: what a path
    /// segment beneath this value indexes into.
    pub fn unwrap_wrappers(&self) -> &PropertyValue {
        let mut v = self;
        loop {
            v = match v {
                Self::Secret(inner) => inner,
                Self::Output(OutputValue { value: Some(inner), .. }) => inner,
                _ => return v,
            };
        }
    }

    /// The string, if this is a plain string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The map, if this is a plain object.
    pub fn as_object(&self) -> Option<&PropertyMap> {
        match self {
            Self::Object(m) => Some(m),
            _ => None,
        }
    }
}

impl From<bool> for PropertyValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<f64> for PropertyValue {
    fn from(v: f64) -> Self {
        Self::Number(v)
    }
}

impl From<&str> for PropertyValue {
    fn from(v: &str) -> Self {
        Self::String(v.to_string())
    }
}

impl From<String> for PropertyValue {
    fn from(v: String) -> Self {
        Self::String(v)
    }
}

impl From<Vec<PropertyValue>> for PropertyValue {
    fn from(v: Vec<PropertyValue>) -> Self {
        Self::Array(v)
    }
}

impl From<PropertyMap> for PropertyValue {
    fn from(v: PropertyMap) -> Self {
        Self::Object(v)
    }
}
