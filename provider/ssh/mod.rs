//! SSH and SFTP to Proxmox VE nodes: what the provider needs where PVE's API
//! stops (its upload endpoint takes only `iso`, `vztmpl` and `import`, so
//! snippets and backups are written into the storage's directory over SFTP,
//! as bpg's provider does). Pure Rust (`russh` on `ring`, `russh-sftp`).
//!
//! Layout:
//! - [`auth`]: who logs in and how: [`Credentials`] from the provider's `ssh`
//!   settings (private key in OpenSSH or PEM form, password, agent);
//! - [`host_keys`]: the host-key policy (`~/.ssh/known_hosts` when it knows
//!   the host, a mismatch is an error; otherwise accepted, the fingerprint
//!   reported back for the caller to log);
//! - [`session`]: connecting, authenticating, opening the SFTP subsystem;
//! - [`sftp`]: the file operations the provider makes: an atomic write
//!   (temporary name, mode, `posix-rename`), bounded reads, stat, remove;
//! - [`error`]: [`SshError`], one type with texts that say what to do.
//!
//! Must not: know Pulumi types, resources or the Proxmox API (callers resolve
//! node addresses and storage paths), log (callers do, from what is returned),
//! or read configuration other than the [`crate::config::SshConfig`] handed in.

pub mod auth;
pub mod error;
pub mod host_keys;
pub mod session;
pub mod sftp;

pub use auth::{AuthMethod, Credentials};
pub use error::SshError;
pub use host_keys::{HostKeyPolicy, HostKeyStatus};
pub use session::{connect, Session, Target};
pub use sftp::{Sftp, Written};
