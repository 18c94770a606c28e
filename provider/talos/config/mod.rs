//! Talos machine configuration: generation and patching, reproducing
//! machinery v1.12.4 (`config/generate`, `config/configpatcher`,
//! `config/merge`, `configloader`, and go-yaml's encoder) without IO.
//!
//! Owns: [`render`] (generate, apply patches in order, print), and the
//! modules behind it:
//! - `generate` (+ `controlplane`, `worker`): the documents machinery's
//!   generator builds, with the terraform provider's options; `contract`: the
//!   version-dependent choices (v1.12 only);
//! - `patch`: reading patches as Talos does (strategic merge or RFC 6902) and
//!   applying them (`merge`, `delete`, `jsonpatch`);
//! - `container`, `decode`, `encode`, `value`, `schema`: typed documents
//!   driven by a structural dump of machinery's Go types
//!   (`schema_v1_12.json`, from `tools/talos-fixtures dump-schema`);
//! - `yaml_read`, `goscalar`: YAML and scalar text exactly as go-yaml reads
//!   them (writing is [`goyaml`](crate::talos::goyaml)'s yaml/v4 flavour).
//!
//! Must not: do IO, read the clock or randomness (output is a pure function of
//! the input: identical inputs give identical bytes), or emit comments:
//! Talos's `docs`/`examples` comments are not reproduced.
//!
//! Known limits against machinery: patch values of the deprecated
//! `DiskSize`/`InstallDiskSizeMatcher` types are rejected; byte sizes and URLs
//! are kept as written (not re-validated); a plain scalar that only Go resolves
//! as a number or date (`0755`, `1_000`, `2024-01-01`) is read as Go reads it
//! plain, and a date in unstructured config stays text; a `$patch: delete`
//! for a document that is not there is an error (machinery would print `{}`).

mod container;
pub mod contract;
mod controlplane;
mod decode;
mod delete;
mod encode;
pub mod generate;
mod goscalar;
mod jsonpatch;
mod merge;
pub mod patch;
mod schema;
mod value;
mod worker;
mod yaml_read;

#[cfg(test)]
mod tests;

pub use container::{Config, Document};
pub use contract::{ConfigContract, UnsupportedContract};
pub use generate::{
    default_install_image, generate, validate_endpoint, GenerateError, GenerateInput, MachineType,
    DEFAULT_INSTALL_DISK, DEFAULT_KUBERNETES_VERSION, MACHINERY_VERSION,
};
pub use goscalar::parse_duration as parse_go_duration;
pub use jsonpatch::JsonPatchOp;
pub use patch::{apply_patches, Patch, PatchError};
pub use schema::SCHEMA_JSON;

/// Why a configuration could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Generation failed (an invalid endpoint).
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// A patch could not be read or applied.
    #[error(transparent)]
    Patch(#[from] PatchError),
}

/// Generates the configuration for `input`, applies `patches` in order and
/// prints it as machinery does with comments disabled.
pub fn render(input: &GenerateInput<'_>, patches: &[String]) -> Result<String, ConfigError> {
    let config = generate(input)?;
    let config = apply_patches(config, patches)?;
    Ok(config.to_yaml())
}

/// Checks patches without applying them (as the terraform provider's
/// validation does with `LoadPatches`).
pub fn check_patches(patches: &[String]) -> Result<(), PatchError> {
    patch::parse_patches(patches).map(drop)
}
