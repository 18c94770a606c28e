//! The Pulumi package schema as plain data: the subset of the metaschema
//! (`pkg/codegen/schema/pulumi.json`) this provider emits. Owns serialisation
//! only; what goes into it is decided by [`super::package`].

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value as Json;

/// A whole package: the document written to `schema.json`.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PackageSpec {
    /// Package name, the first segment of every token.
    pub name: String,
    /// Human-readable name.
    pub display_name: String,
    /// Package version (semver).
    pub version: String,
    /// Markdown description.
    pub description: String,
    /// Search keywords.
    pub keywords: Vec<String>,
    /// Project homepage.
    pub homepage: String,
    /// SPDX licence.
    pub license: String,
    /// Source repository.
    pub repository: String,
    /// Publisher shown in the registry.
    pub publisher: String,
    /// How tokens map to modules.
    pub meta: Meta,
    /// Provider configuration variables.
    pub config: ConfigSpec,
    /// Named object and enum types.
    pub types: BTreeMap<String, TypeDefinition>,
    /// The provider resource (explicit provider instances).
    pub provider: ResourceSpec,
    /// Custom resources by token.
    pub resources: BTreeMap<String, ResourceSpec>,
    /// Functions by token.
    pub functions: BTreeMap<String, FunctionSpec>,
    /// Per-language codegen settings.
    pub language: BTreeMap<String, Json>,
}

/// `meta` section.
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// Regex extracting the module from a token's middle segment.
    pub module_format: String,
    /// Generate complete packages (go.mod, versions stamped) from the schema alone.
    pub support_pack: bool,
}

/// `config` section: stack configuration keys of the package.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ConfigSpec {
    /// Each configuration variable.
    pub variables: BTreeMap<String, PropertySpec>,
}

/// The shape of a value: a primitive, a list, a map, or a reference.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct TypeSpec {
    /// `string`, `integer`, `number`, `boolean`, `array` or `object`; absent with `$ref`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Element type of an array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<TypeSpec>>,
    /// Value type of a map (an `object` without properties).
    #[serde(rename = "additionalProperties", skip_serializing_if = "Option::is_none")]
    pub additional_properties: Option<Box<TypeSpec>>,
    /// Reference to a named type, `#/types/<token>` or `pulumi.json#/Asset`.
    #[serde(rename = "$ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl TypeSpec {
    /// A primitive type by its schema name.
    pub fn primitive(kind: &'static str) -> Self {
        TypeSpec { kind: Some(kind), ..Default::default() }
    }
    /// A list of `items`.
    pub fn array(items: TypeSpec) -> Self {
        TypeSpec { kind: Some("array"), items: Some(Box::new(items)), ..Default::default() }
    }
    /// A string-keyed map of `values`.
    pub fn map(values: TypeSpec) -> Self {
        TypeSpec { kind: Some("object"), additional_properties: Some(Box::new(values)), ..Default::default() }
    }
    /// A reference to a named type or a built-in (`pulumi.json#/Asset`).
    pub fn reference(target: impl Into<String>) -> Self {
        TypeSpec { reference: Some(target.into()), ..Default::default() }
    }
    /// The token of the named object type this refers to, if any.
    pub fn referenced_type_token(&self) -> Option<&str> {
        self.reference.as_deref().and_then(|r| r.strip_prefix("#/types/"))
    }
}

/// A property of an object, resource, function or the config.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PropertySpec {
    /// Its type.
    #[serde(flatten)]
    pub type_spec: TypeSpec,
    /// Markdown description, from the Rust doc comment.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Default value when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Json>,
    /// Environment variables consulted when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_info: Option<DefaultInfo>,
    /// Always stored and shown as a secret.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// A change to this property replaces the resource.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replace_on_changes: bool,
    /// Deprecation note.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deprecation_message: Option<String>,
}

/// `defaultInfo`: where a default comes from.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct DefaultInfo {
    /// Environment variables, first set one wins.
    pub environment: Vec<String>,
}

/// A named type: an object with properties, or a string enum.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TypeDefinition {
    /// `object` or `string` (for enums).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Markdown description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Properties of an object type.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, PropertySpec>,
    /// Required property names of an object type.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    /// Values of an enum type.
    #[serde(rename = "enum", skip_serializing_if = "Vec::is_empty")]
    pub enum_values: Vec<EnumValue>,
}

/// One value of an enum type.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EnumValue {
    /// Name used by generated SDKs.
    pub name: String,
    /// Wire value.
    pub value: String,
    /// Markdown description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// A custom resource (or the provider resource).
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSpec {
    /// Markdown description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Output properties (state).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, PropertySpec>,
    /// Output properties always present.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
    /// Input properties (args).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub input_properties: BTreeMap<String, PropertySpec>,
    /// Input properties that must be set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required_inputs: Vec<String>,
}

/// A function (`Invoke` target).
#[derive(Debug, Clone, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FunctionSpec {
    /// Markdown description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Arguments object.
    pub inputs: ObjectSpec,
    /// Result object.
    pub outputs: ObjectSpec,
}

/// An anonymous object type: function inputs and outputs.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ObjectSpec {
    /// Always `object`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Its properties.
    pub properties: BTreeMap<String, PropertySpec>,
    /// Required property names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<String>,
}
