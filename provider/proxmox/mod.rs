//! A thin typed client for the Proxmox VE API, layered by API path as PVE
//! itself is (after bpg's `proxmox/` client; see docs/adr):
//! - [`client`]: HTTP, TLS, authentication, PVE's envelope and error shapes;
//! - [`error`]: one error type, classified (not found, lock timeout, transient);
//! - [`retry`]: backoff for transient failures;
//! - [`task`]: UPIDs and waiting for worker tasks;
//! - [`version`]: the release an endpoint runs and the features that need a newer one.
//!
//! Resources use these layers; none of them knows Pulumi types.

pub mod client;
pub mod cluster;
pub mod error;
pub mod qemu;
pub mod retry;
pub mod storage;
pub mod task;
pub mod version;

pub use client::{Params, PveClient};
pub use error::ProxmoxError;
