//! The package schema, derived from Rust types.
//!
//! Layout: [`spec`] is the schema document as data; this module holds the traits a
//! type implements to describe itself (usually through `#[derive(PulumiType)]`)
//! and the [`TypeRegistry`] that collects named types; [`package`] assembles the
//! whole package from the resource and function registry; [`paths`] answers the
//! questions the runtime asks of a schema (which paths are secret, which replace).
//! Nothing here does IO.

pub mod package;
pub mod paths;
pub mod python_names;
pub mod spec;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

pub use proxmox_talos_derive::PulumiType;
pub use spec::{PropertySpec, TypeDefinition, TypeSpec};

/// The package name: the first segment of every token.
pub const PACKAGE: &str = "proxmox-talos";

/// One property as a type declares it.
#[derive(Debug, Clone)]
pub struct Property {
    /// Wire name (camelCase).
    pub name: &'static str,
    /// Its type.
    pub type_spec: TypeSpec,
    /// Must be present (the field is not an `Option`).
    pub required: bool,
    /// Markdown description from the doc comment.
    pub description: &'static str,
    /// Always a secret.
    pub secret: bool,
    /// A change replaces the resource.
    pub replace_on_changes: bool,
    /// Default as JSON text.
    pub default_json: Option<&'static str>,
    /// Environment variables consulted when absent.
    pub env: &'static [&'static str],
}

impl Property {
    /// The schema form of this property.
    pub fn to_spec(&self) -> PropertySpec {
        PropertySpec {
            type_spec: self.type_spec.clone(),
            description: self.description.to_string(),
            default: self.default_json.map(|d| serde_json::from_str(d).expect("derive checked default is JSON")),
            default_info: (!self.env.is_empty())
                .then(|| spec::DefaultInfo { environment: self.env.iter().map(|e| e.to_string()).collect() }),
            secret: self.secret,
            replace_on_changes: self.replace_on_changes,
            deprecation_message: None,
        }
    }
}

/// A type that can be the type of a property.
pub trait PulumiType {
    /// How a property of this type is typed; named types register themselves in `reg`.
    fn type_spec(reg: &mut TypeRegistry) -> TypeSpec;
    /// Whether a property of this type may be absent.
    const OPTIONAL: bool = false;
}

/// A struct whose fields are properties: resource args and state, function
/// arguments and results, nested object types.
pub trait PulumiObject {
    /// Markdown description (the type's doc comment).
    fn description() -> &'static str;
    /// Its properties, in declaration order.
    fn properties(reg: &mut TypeRegistry) -> Vec<Property>;
}

/// Named types met while describing resources and functions.
#[derive(Debug, Default)]
pub struct TypeRegistry {
    types: BTreeMap<String, TypeDefinition>,
    origin: HashMap<String, &'static str>,
}

impl TypeRegistry {
    /// Registers the object type `T` under `proxmox-talos:<token>` and returns a reference to it.
    pub fn object<T: PulumiObject>(&mut self, token: &str) -> TypeSpec {
        let full = format!("{PACKAGE}:{token}");
        let rust_name = std::any::type_name::<T>();
        match self.origin.get(&full) {
            Some(existing) if *existing != rust_name => {
                panic!("schema token {full} is declared by both {existing} and {rust_name}")
            }
            Some(_) => {}
            None => {
                self.origin.insert(full.clone(), rust_name);
                // Placeholder first, so a recursive type terminates.
                self.types.insert(full.clone(), object_definition(String::new(), Vec::new()));
                let props = T::properties(self);
                let def = object_definition(T::description().to_string(), props);
                self.types.insert(full.clone(), def);
            }
        }
        TypeSpec::reference(format!("#/types/{full}"))
    }

    /// Registers a string enum under `proxmox-talos:<token>`.
    pub fn enumeration(&mut self, token: &str, description: &str, values: &[(&str, &str, &str)]) -> TypeSpec {
        let full = format!("{PACKAGE}:{token}");
        self.types.entry(full.clone()).or_insert_with(|| TypeDefinition {
            kind: "string",
            description: description.to_string(),
            properties: BTreeMap::new(),
            required: Vec::new(),
            enum_values: values
                .iter()
                .map(|(name, value, d)| spec::EnumValue {
                    name: name.to_string(),
                    value: value.to_string(),
                    description: d.to_string(),
                })
                .collect(),
        });
        TypeSpec::reference(format!("#/types/{full}"))
    }

    /// The full tokens of the types registered so far.
    pub fn tokens(&self) -> std::collections::BTreeSet<String> {
        self.types.keys().cloned().collect()
    }

    /// Clears the published `replaceOnChanges` marks of every type registered since
    /// `known` was taken (see `CustomResource::REPLACEMENTS_BY_VALUE`).
    pub fn clear_replace_marks_except(&mut self, known: &std::collections::BTreeSet<String>) {
        for (_, def) in self.types.iter_mut().filter(|(t, _)| !known.contains(*t)) {
            def.properties.values_mut().for_each(|p| p.replace_on_changes = false);
        }
    }

    /// A registered named type by its full token.
    pub fn get(&self, token: &str) -> Option<&TypeDefinition> {
        self.types.get(token)
    }

    /// All registered types.
    pub fn into_types(self) -> BTreeMap<String, TypeDefinition> {
        self.types
    }
}

/// The schema form of `props`, by name.
pub fn property_specs(props: &[Property]) -> BTreeMap<String, PropertySpec> {
    props.iter().map(|p| (p.name.to_string(), p.to_spec())).collect()
}

/// The names of the required properties among `props`.
pub fn required_names(props: &[Property]) -> Vec<String> {
    props.iter().filter(|p| p.required).map(|p| p.name.to_string()).collect()
}

fn object_definition(description: String, props: Vec<Property>) -> TypeDefinition {
    TypeDefinition {
        kind: "object",
        description,
        required: required_names(&props),
        properties: property_specs(&props),
        enum_values: Vec::new(),
    }
}

macro_rules! primitive {
    ($kind:literal: $($t:ty),*) => {$(
        impl PulumiType for $t {
            fn type_spec(_: &mut TypeRegistry) -> TypeSpec { TypeSpec::primitive($kind) }
        }
    )*};
}
primitive!("string": String);
primitive!("boolean": bool);
primitive!("integer": i8, i16, i32, i64, u8, u16, u32, u64, usize);
primitive!("number": f32, f64);

impl<T: PulumiType> PulumiType for Option<T> {
    fn type_spec(reg: &mut TypeRegistry) -> TypeSpec {
        T::type_spec(reg)
    }
    const OPTIONAL: bool = true;
}

impl<T: PulumiType> PulumiType for Vec<T> {
    fn type_spec(reg: &mut TypeRegistry) -> TypeSpec {
        TypeSpec::array(T::type_spec(reg))
    }
}

impl<T: PulumiType> PulumiType for BTreeMap<String, T> {
    fn type_spec(reg: &mut TypeRegistry) -> TypeSpec {
        TypeSpec::map(T::type_spec(reg))
    }
}

impl PulumiType for serde_json::Value {
    fn type_spec(_: &mut TypeRegistry) -> TypeSpec {
        TypeSpec::reference("pulumi.json#/Any")
    }
}
