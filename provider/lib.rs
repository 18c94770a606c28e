//! proxmox-talos: a Pulumi native resource provider for Proxmox VE and Talos Linux.
//!
//! Layout (dependencies point downwards; nothing below `rpc` sees gRPC types):
//! - [`rpc`]: the Pulumi protocol — generated bindings, the ResourceProvider
//!   server, error statuses, engine logging, plugin launch;
//! - [`resources`]: one module per resource and function, and the registry of them;
//! - [`framework`]: the traits resource modules implement and the adapter that
//!   erases them to property maps (decode, diff, preview, secrets);
//! - [`schema`]: the package schema, derived from the Rust types;
//! - [`value`]: the codec between `google.protobuf.Struct` and typed values;
//! - [`config`]: provider configuration;
//! - [`proxmox`]: the typed Proxmox VE API client;
//! - [`ssh`]: SSH/SFTP to the nodes (snippets, which PVE's API cannot upload);
//! - [`talos`]: Talos machinery without IO (secrets bundle, schematics, …) and
//!   the Talos-side clients, `talos::factory_client` (Image Factory HTTP) and
//!   `talos::api_client` (the Talos API over gRPC, bindings in `talos::api`);
//! - [`bench`]: the `bench` command.

extern crate self as proxmox_talos;

pub mod bench;
pub mod config;
pub mod framework;
pub mod proxmox;
pub mod resources;
pub mod rpc;
pub mod rusage;
pub mod schema;
pub mod ssh;
pub mod talos;
pub mod value;
