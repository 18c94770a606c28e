//! Talos Linux support for the provider.
//!
//! Owns: the module tree for everything Talos-specific (secrets bundle,
//! machine configuration, talosconfig, the admin kubeconfig, schematics, the Image Factory client,
//! the Talos API bindings and client).
//! Must not: hold logic itself; each submodule documents its own contract.

pub mod api;
pub mod api_client;
pub mod config;
pub mod factory_client;
pub mod goyaml;
pub mod kubeconfig;
pub mod schematic;
pub mod secrets;
pub mod talosconfig;
