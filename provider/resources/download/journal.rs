//! The create journal of `download:File` (the VMs' is `vm::journal`; same directory, same
//! file naming by endpoint and URN): which volume a create started downloading, kept until the
//! create returns. A create that finds its own entry and the volume takes the volume for what
//! its interrupted predecessor left (deleted and downloaded again), not for somebody else's
//! file (refused unless `overwriteUnmanaged`).
//!
//! Must not: delete anything itself, or fail a create because it cannot be written.

use serde::{Deserialize, Serialize};

/// What a create recorded before its download started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub urn: String,
    pub endpoint: String,
    pub node: String,
    /// `local:iso/talos.iso`.
    pub volume: String,
}

/// Records `entry` (atomically: a temporary file renamed into place).
pub fn record(dir: &std::path::Path, entry: &Entry) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let target = crate::resources::vm::journal::path(dir, &entry.endpoint, &entry.urn);
    let tmp = target.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(entry).map_err(std::io::Error::other)?)?;
    std::fs::rename(tmp, target)
}

/// The entry a create of `urn` against `endpoint` left, if any.
pub fn find(dir: &std::path::Path, endpoint: &str, urn: &str) -> Option<Entry> {
    let bytes = std::fs::read(crate::resources::vm::journal::path(dir, endpoint, urn)).ok()?;
    serde_json::from_slice::<Entry>(&bytes).ok().filter(|e| e.urn == urn && e.endpoint == endpoint)
}

/// Forgets the entry of `urn` (gone already is fine).
pub fn clear(dir: &std::path::Path, endpoint: &str, urn: &str) {
    let _ = std::fs::remove_file(crate::resources::vm::journal::path(dir, endpoint, urn));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_found_by_endpoint_and_urn_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let entry = Entry {
            urn: "urn:pulumi:dev::p::proxmox-talos:download:File::image".into(),
            endpoint: "https://127.0.0.1:8006/api2/json/".into(),
            node: "pve".into(),
            volume: "local:import/talos.raw".into(),
        };
        record(dir.path(), &entry).unwrap();
        assert_eq!(find(dir.path(), &entry.endpoint, &entry.urn), Some(entry.clone()));
        assert_eq!(find(dir.path(), "https://other:8006/api2/json/", &entry.urn), None);
        clear(dir.path(), &entry.endpoint, &entry.urn);
        assert_eq!(find(dir.path(), &entry.endpoint, &entry.urn), None);
    }
}
