//! The simulated Proxmox VE API (`https://127.0.0.1:PORT/api2/json`), driven
//! by PVE's own API schema so that every request is checked as a real PVE
//! checks it before any handler runs.
//!
//! Layout:
//! - [`apidoc`]: the schema (embedded compact form of `pve-apidoc.json`, or
//!   `--api-schema FILE`), indexed by (method, path template); matches concrete paths.
//! - [`validate`]: parameter verification with PVE's error texts; the
//!   `returns` shape check tests use.
//! - [`auth`]: API tokens, tickets and CSRF tokens.
//! - [`tls`]: the lab CA (kept in the state directory) and server certificates.
//! - [`server`]: the pipeline (auth → schema lookup → validation → handler),
//!   PVE's response and error shapes, the TLS listener, the handler table.
//! - [`storage`]: node storage status and content, `download-url`,
//!   `query-url-metadata` and multipart `upload`.
//!
//! - [`qemu`]: the VM endpoints (`/nodes/{node}/qemu/...`).
//! - [`pools`]: resource pools (`/pools`).
//! - [`access`]: users, tokens, roles, ACLs and the permission checks.
//! - [`ha`]: the HA read side (`/cluster/ha/...`; nothing is HA-managed).
//!
//! Adding an endpoint: write a [`server::Handler`] in a new module (e.g.
//! `pve/qemu/`) and register it in `server::handlers` under the schema's
//! template; its parameters arrive already validated and typed, and the
//! schema's `permissions` already checked. Privileges PVE's handler checks in
//! code, and list filtering, go in [`access::incode`]. A GET is then checked
//! against the schema's `returns` by `lab/tests/returns_shapes.rs` (add a
//! `FIXTURE` value if it has a path parameter no other endpoint has).

pub mod access;
pub mod admin;
pub mod apidoc;
pub mod auth;
pub mod cluster;
pub mod dice;
pub mod ha;
pub mod lab_config;
pub mod model;
pub mod node_cli;
pub mod pools;
pub mod qemu;
pub mod server;
pub mod state;
pub mod storage;
pub mod tasks;
pub mod tls;
pub mod validate;

#[cfg(test)]
mod tests;
