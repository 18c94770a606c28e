//! Pure generation of the Talos machine secrets bundle, byte-compatible in
//! shape and algorithms with Talos's `pkg/machinery/config/generate/secrets`.
//!
//! Owns: the version contract, the bundle types (`machineSecrets` /
//! `clientConfiguration` outputs), generation of the bundle and of the admin
//! Talos API client certificate, and the `talosctl gen secrets` YAML format.
//! Must not: do IO, touch the network, spawn tasks or read the wall clock or
//! OS randomness on its own: callers inject a [`Clock`] and an RNG, so every
//! function here is deterministic given its inputs.

pub mod bundle;
pub mod contract;
pub mod generate;
mod pki;
pub mod talosctl_yaml;

#[cfg(test)]
mod tests;

pub use bundle::{CertAndKey, Certs, ClientConfiguration, Cluster, KeyOnly, MachineSecrets, Secrets, TrustdInfo};
pub use contract::{ContractError, VersionContract};
pub use generate::{
    client_certificate_needs_renewal, client_configuration, generate, Clock, FixedClock, SystemClock, ADMIN_ROLE,
    CLIENT_CERTIFICATE_RENEWAL_THRESHOLD_DAYS, CLIENT_CERTIFICATE_VALIDITY,
};
pub use talosctl_yaml::{from_talosctl_yaml, import_contract, to_talosctl_yaml};

/// Why secrets could not be generated, loaded or converted.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The Talos version is not a valid contract.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// Key generation or key encoding failed.
    #[error("failed to generate {what}: {reason}")]
    Key { what: &'static str, reason: String },
    /// A certificate could not be built.
    #[error("failed to build the {what} certificate: {reason}")]
    Certificate { what: &'static str, reason: String },
    /// A bundle field is missing or malformed; `field` is its path.
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The `talosctl gen secrets` YAML could not be read or written.
    #[error("talosctl secrets YAML: {0}")]
    Yaml(String),
    /// The bundle uses a form this provider does not handle.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl SecretsError {
    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::Invalid { field: field.to_owned(), reason: reason.into() }
    }

    pub(crate) fn key(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Key { what, reason: reason.to_string() }
    }

    pub(crate) fn certificate(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Certificate { what, reason: reason.to_string() }
    }
}
