//! The simulated homelab: loopback stand-ins for the services the provider
//! talks to, for tests and demos that must not touch real infrastructure.
//!
//! Layout (each service is a self-contained module with a `router` and a
//! `serve` function):
//! - [`factory`]: the Talos Image Factory (schematics, versions, extensions,
//!   small generated disk images).
//! - [`pve`]: the Proxmox VE API foundation (schema-driven validation, auth,
//!   TLS with a lab CA); VMs, storage and tasks build on it.
//! - [`ssh`]: a real OpenSSH server per node (SFTP into the node's storage
//!   directories, as clients upload snippets to a real PVE).
//!
//! The Talos nodes land with the lab issue.

pub mod factory;
pub mod homelab;
pub mod in_process;
pub mod pve;
pub mod ssh;
