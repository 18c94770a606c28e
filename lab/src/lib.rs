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
//! - [`node_shell`]: root's commands over SSH (`tee`, `pvesm path`, `qm disk
//!   import`, ...) interpreted on the node's files and the lab's state.
//! - [`talos`]: a Talos machine for every VM that boots a Talos image (the
//!   Talos API on port 50000 of its address; maintenance mode, configuration,
//!   mutual TLS, bootstrap, kubeconfig; the Kubernetes API on a VIP).

pub mod deadline;
pub mod factory;
pub mod homelab;
pub mod in_process;
pub mod node_shell;
pub mod pve;
pub mod ssh;
pub mod talos;
pub mod talos_testbed;
