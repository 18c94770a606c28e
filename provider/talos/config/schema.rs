//! The structure of every Talos v1.12 machine configuration document type,
//! read by reflection from machinery v1.12.4 and embedded as data.
//!
//! Owns: loading `schema_v1_12.json` (written by
//! `cd tools/talos-fixtures && go run . dump-schema --out ../../provider/talos/config/schema_v1_12.json`;
//! a test keeps it in sync) and answering questions about it: a document
//! kind's Go type, a struct's fields in declaration order (which is the key
//! order machinery's encoder writes), `omitempty`, `merge:"replace"`, custom
//! mergers, custom YAML/text marshalling and enum values.
//! Must not: know how values are decoded, merged or encoded (see `decode`,
//! `merge`, `encode`).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// The schema file, as generated.
pub const SCHEMA_JSON: &str = include_str!("schema_v1_12.json");

/// The whole schema: document kinds and named Go types.
#[derive(Debug, Deserialize)]
pub struct Schema {
    /// The machinery release the schema was read from (`v1.12.4`).
    #[cfg_attr(not(test), allow(dead_code))]
    pub machinery: String,
    /// Every registered document kind.
    pub documents: Vec<DocumentSpec>,
    /// Named Go types by `package.Name`.
    pub types: HashMap<String, TypeSpec>,
}

/// A registered document kind.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentSpec {
    /// `kind:` (`v1alpha1` for the legacy document, which has none).
    pub kind: String,
    /// `apiVersion:` (empty for the legacy document).
    pub api_version: String,
    /// Go type name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Whether documents of this kind are identified by their `name`.
    pub named: bool,
    /// Kinds that may not share a name with this one.
    #[serde(default)]
    pub conflicts: Vec<String>,
}

/// A named Go type.
#[derive(Debug, Default, Deserialize)]
pub struct TypeSpec {
    /// Struct fields in declaration order.
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
    /// `yaml` (own MarshalYAML/UnmarshalYAML) or `text` (TextMarshaler).
    #[serde(default)]
    pub custom: Option<String>,
    /// Implements config/merge's `Merge` itself.
    #[serde(default)]
    pub merger: bool,
    /// For a named non-struct type: what it is underneath.
    #[serde(default)]
    pub underlying: Option<TypeExpr>,
    /// Implements yaml's `IsZeroer`.
    #[serde(default)]
    pub iszero: bool,
    /// A struct without exported fields.
    #[serde(default)]
    pub opaque: bool,
    /// For an integer text type: the text of values 0, 1, 2, ….
    #[serde(default)]
    pub r#enum: Vec<String>,
}

/// A struct field.
#[derive(Debug, Deserialize)]
pub struct FieldSpec {
    /// YAML key.
    pub yaml: String,
    /// Tagged `omitempty`.
    #[serde(default)]
    pub omitempty: bool,
    /// Tagged `inline`.
    #[serde(default)]
    pub inline: bool,
    /// Tagged `merge:"replace"`.
    #[serde(default)]
    pub replace: bool,
    /// Field type.
    #[serde(rename = "type")]
    pub ty: TypeExpr,
}

/// A Go type expression.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "k", rename_all = "lowercase")]
pub enum TypeExpr {
    /// `*T`.
    Ptr {
        /// Pointee.
        e: Box<TypeExpr>,
    },
    /// `[]T`.
    Slice {
        /// Element.
        e: Box<TypeExpr>,
    },
    /// `map[string]T`.
    Map {
        /// Value.
        e: Box<TypeExpr>,
    },
    /// A named type (`v1alpha1.MachineConfig`).
    Named {
        /// `package.Name`.
        n: String,
    },
    /// A Go basic kind: `string`, `bool`, `int`…`uint64`, or `bytes`.
    Scalar {
        /// Kind name.
        n: String,
    },
    /// `any`.
    Any,
}

impl Schema {
    /// The embedded schema.
    pub fn get() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| serde_json::from_str(SCHEMA_JSON).expect("embedded schema_v1_12.json is valid"))
    }

    /// The named type `name`; every name the schema mentions is defined in it.
    pub fn named(&self, name: &str) -> &TypeSpec {
        self.types.get(name).unwrap_or_else(|| panic!("schema has no type {name}"))
    }

    /// The document kind registered as `kind`.
    pub fn document(&self, kind: &str) -> Option<&DocumentSpec> {
        self.documents.iter().find(|d| d.kind == kind)
    }

    /// The legacy `v1alpha1` document.
    pub fn v1alpha1(&self) -> &DocumentSpec {
        self.document("v1alpha1").expect("schema has the v1alpha1 document")
    }
}

impl TypeExpr {
    /// The named type `n`.
    pub fn named(n: &str) -> Self {
        TypeExpr::Named { n: n.to_owned() }
    }

    /// Follows named non-struct, non-custom types to what they are made of
    /// (`v1alpha1.NetworkDeviceList` → `[]*v1alpha1.Device`); returns the
    /// expression itself otherwise.
    pub fn resolved(&self) -> &TypeExpr {
        let mut ty = self;
        while let TypeExpr::Named { n } = ty {
            let spec = Schema::get().named(n);
            match (&spec.custom, &spec.underlying) {
                (None, Some(under)) => ty = under,
                _ => break,
            }
        }
        ty
    }

    /// The name of the outermost named type, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            TypeExpr::Named { n } => Some(n),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_schema_describes_machinery_v1_12() {
        let s = Schema::get();
        assert_eq!(s.machinery, "v1.12.4");
        let v1 = s.v1alpha1();
        assert_eq!(v1.type_name, "v1alpha1.Config");
        let keys: Vec<_> = s.named("v1alpha1.Config").fields.iter().map(|f| f.yaml.as_str()).collect();
        assert_eq!(keys, ["version", "debug", "persist", "machine", "cluster"]);
        let hostname = s.document("HostnameConfig").unwrap();
        assert!(!hostname.named);
        assert_eq!(s.named("nethelpers.AutoHostnameKind").r#enum, ["off", "talos-addr", "stable"]);
        assert!(s.document("Layer2VIPConfig").unwrap().conflicts.contains(&"HCloudVIPConfig".to_owned()));
    }

    #[test]
    fn every_named_type_is_defined() {
        fn check(e: &TypeExpr) {
            match e {
                TypeExpr::Ptr { e } | TypeExpr::Slice { e } | TypeExpr::Map { e } => check(e),
                TypeExpr::Named { n } => {
                    Schema::get().named(n);
                }
                TypeExpr::Scalar { .. } | TypeExpr::Any => {}
            }
        }
        for spec in Schema::get().types.values() {
            spec.fields.iter().for_each(|f| check(&f.ty));
            spec.underlying.iter().for_each(check);
        }
    }
}
