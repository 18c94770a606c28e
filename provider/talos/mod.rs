//! Talos Linux support for the provider.
//!
//! Owns: the module tree for everything Talos-specific (secrets bundle,
//! later machine configuration and API clients).
//! Must not: hold logic itself; each submodule documents its own contract.

pub mod config;
pub mod factory_client;
pub mod goyaml;
pub mod schematic;
pub mod secrets;
pub mod talosconfig;
