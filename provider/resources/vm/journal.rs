//! The create journal: which VMID a create of a resource allocated, kept on
//! the machine running Pulumi until the engine has the VM in its state.
//!
//! Why: a VM whose VMID was allocated (`vmId` unset) is found by nothing but
//! that number. If the provider dies (SIGKILL, a crash, a lost machine) after
//! PVE made the VM but before the engine recorded it, the next `up` allocates
//! another VMID and the first VM is an orphan that no program owns. So before
//! the create call the provider writes `{endpoint, urn} → {node, vmid, name,
//! time}` to a small file, and removes it once the create returns (with the
//! VM in the state, or a partial state). A create that finds an entry for its
//! URN deletes the VM left at that VMID — only when it still looks like the
//! one that create made (same name; unnamed: made no earlier than the entry) — before
//! creating anew.
//!
//! Where: `$PROXMOX_TALOS_JOURNAL_DIR`, else `$XDG_CACHE_HOME/proxmox-talos/vm-journal`,
//! else `~/.cache/proxmox-talos/vm-journal`. Entries hold no secret.
//! Must not: delete anything itself (the caller does), or fail a create
//! because the journal cannot be written (it warns instead).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a create recorded before its VM existed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub urn: String,
    pub endpoint: String,
    pub node: String,
    pub vmid: u32,
    pub name: Option<String>,
    /// Seconds since the epoch when the create started.
    pub started: u64,
}

/// The journal directory.
pub fn dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PROXMOX_TALOS_JOURNAL_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("proxmox-talos").join("vm-journal"))
}

/// The journal file of a create of `urn` against `endpoint` (VMs and downloaded files alike:
/// their URNs differ).
pub fn path(dir: &std::path::Path, endpoint: &str, urn: &str) -> PathBuf {
    let digest = Sha256::digest(format!("{endpoint}\n{urn}").as_bytes());
    let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("{name}.json"))
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Records `entry` (atomically: a temporary file renamed into place).
pub fn record(dir: &std::path::Path, entry: &Entry) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let target = path(dir, &entry.endpoint, &entry.urn);
    let tmp = target.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(entry).map_err(std::io::Error::other)?)?;
    std::fs::rename(tmp, target)
}

/// The entry a create of `urn` against `endpoint` left, if any.
pub fn find(dir: &std::path::Path, endpoint: &str, urn: &str) -> Option<Entry> {
    let bytes = std::fs::read(path(dir, endpoint, urn)).ok()?;
    serde_json::from_slice::<Entry>(&bytes).ok().filter(|e| e.urn == urn && e.endpoint == endpoint)
}

/// Forgets the entry of `urn` (gone already is fine).
pub fn clear(dir: &std::path::Path, endpoint: &str, urn: &str) {
    let _ = std::fs::remove_file(path(dir, endpoint, urn));
}

/// Whether the VM now at the entry's VMID is the one that create made: the same
/// name, when the create gave one; else made no earlier than the create started
/// (PVE's `meta: ...,ctime=SECONDS`). The creation time does not decide for a named
/// VM: a clone may carry its template's `meta`. A VM with neither to tell it by is
/// never taken for it.
pub fn is_leftover(entry: &Entry, name: Option<&str>, meta: Option<&str>) -> bool {
    let ctime = meta
        .and_then(|m| m.split(',').find_map(|kv| kv.strip_prefix("ctime=")).and_then(|v| v.trim().parse::<u64>().ok()));
    match (&entry.name, name) {
        (Some(want), have) => have == Some(want.as_str()),
        // A minute of slack for clocks between this machine and the node.
        (None, _) => ctime.is_some_and(|c| c + 60 >= entry.started),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: Option<&str>) -> Entry {
        Entry {
            urn: "urn:pulumi:dev::p::proxmox-talos:vm:VirtualMachine::w1".into(),
            endpoint: "https://127.0.0.1:8006".into(),
            node: "pve".into(),
            vmid: 105,
            name: name.map(str::to_string),
            started: 1_800_000_000,
        }
    }

    #[test]
    fn entries_round_trip_per_endpoint_and_urn() {
        let dir = tempfile::tempdir().unwrap();
        let e = entry(Some("w1"));
        record(dir.path(), &e).unwrap();
        assert_eq!(find(dir.path(), &e.endpoint, &e.urn), Some(e.clone()));
        assert_eq!(find(dir.path(), "https://127.0.0.2:8006", &e.urn), None);
        assert_eq!(find(dir.path(), &e.endpoint, "urn:other"), None);
        clear(dir.path(), &e.endpoint, &e.urn);
        assert_eq!(find(dir.path(), &e.endpoint, &e.urn), None);
        clear(dir.path(), &e.endpoint, &e.urn);
    }

    #[test]
    fn only_a_vm_that_looks_like_the_interrupted_create_counts() {
        let named = entry(Some("w1"));
        assert!(is_leftover(&named, Some("w1"), Some("creation-qemu=10.1.2,ctime=1800000005")));
        assert!(is_leftover(&named, Some("w1"), None));
        assert!(!is_leftover(&named, Some("other"), Some("ctime=1800000005")));
        assert!(!is_leftover(&named, None, Some("ctime=1800000005")));
        assert!(
            is_leftover(&named, Some("w1"), Some("creation-qemu=9.2.0,ctime=1735689600")),
            "a clone's template meta"
        );
        let unnamed = entry(None);
        assert!(is_leftover(&unnamed, None, Some("ctime=1800000001")));
        assert!(!is_leftover(&unnamed, None, Some("ctime=1735689600")), "made long before");
        assert!(!is_leftover(&unnamed, None, None), "nothing to tell it by");
    }
}

/// The tag a create puts on its VM in the create call itself and removes once the VM is in
/// the state: `pt-creating-` and 12 hex digits of the URN's SHA-256 (PVE tags are lower-case
/// `[a-z0-9_][a-z0-9_+.-]*`). A VM found with it was left by an interrupted create of this
/// resource — on any machine, journal or not — since a finished create or update has removed it.
pub fn marker(urn: &str) -> String {
    let hash: String = Sha256::digest(urn.as_bytes()).iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{MARKER_PREFIX}{hash}")
}

/// The prefix of every create marker.
pub const MARKER_PREFIX: &str = "pt-creating-";

/// `text` without its create-marker lines (a clone carries its marker in the description, as
/// PVE's clone call takes no tags), and whether it had any.
pub fn without_marker_lines(text: &str) -> (String, bool) {
    let lines: Vec<&str> = text.lines().collect();
    let kept: Vec<&str> = lines.iter().copied().filter(|l| !is_marker(l.trim())).collect();
    if kept.len() == lines.len() {
        return (text.to_string(), false);
    }
    (kept.join("\n").trim_end().to_string(), true)
}

/// Whether a tag is a create marker (of any resource).
pub fn is_marker(tag: &str) -> bool {
    tag.strip_prefix(MARKER_PREFIX).is_some_and(|h| h.len() == 12 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod marker_tests {
    use super::*;

    #[test]
    fn markers_are_valid_pve_tags_derived_from_the_urn() {
        let a = marker("urn:pulumi:dev::p::proxmox-talos:vm:VirtualMachine::a");
        let b = marker("urn:pulumi:dev::p::proxmox-talos:vm:VirtualMachine::b");
        assert_ne!(a, b);
        assert_eq!(a, marker("urn:pulumi:dev::p::proxmox-talos:vm:VirtualMachine::a"));
        assert!(is_marker(&a) && a.len() == MARKER_PREFIX.len() + 12, "{a}");
        assert!(a.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'));
        assert!(!is_marker("pt-creating-xyz") && !is_marker("homelab"));
    }
}
