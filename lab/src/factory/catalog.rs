//! What the lab factory offers: a fixed list of Talos versions and, for each,
//! the official extensions the homelab seed uses (with stable, made-up
//! references and digests).

use sha2::{Digest, Sha256};

/// Talos versions the lab factory "builds", oldest first, including a pre-release.
pub const VERSIONS: &[&str] = &[
    "v1.10.0",
    "v1.10.7",
    "v1.11.0",
    "v1.11.5",
    "v1.12.0",
    "v1.12.1",
    "v1.12.2",
    "v1.12.3",
    "v1.12.4",
    "v1.12.5",
    "v1.12.6",
    "v1.13.0-alpha.1",
];

/// Official extensions: name, image tag, description.
const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("siderolabs/amd-ucode", "20250708", "AMD CPU microcode updates."),
    ("siderolabs/intel-ucode", "20250512", "Intel CPU microcode updates."),
    ("siderolabs/iscsi-tools", "v0.2.0", "Open-iSCSI initiator tools (iscsid, iscsiadm)."),
    (
        "siderolabs/nvidia-container-toolkit-production",
        "570.172.08-v1.17.8",
        "NVIDIA container toolkit, production driver branch.",
    ),
    (
        "siderolabs/nvidia-open-gpu-kernel-modules-production",
        "570.172.08-v1.12.4",
        "NVIDIA open GPU kernel modules, production driver branch.",
    ),
    ("siderolabs/qemu-guest-agent", "10.0.2", "QEMU guest agent: lets the hypervisor see addresses and shut down."),
    ("siderolabs/util-linux-tools", "2.41.1", "util-linux tools (fstrim, lsblk, …) for storage add-ons."),
];

/// Whether the lab factory offers `version`.
pub fn has_version(version: &str) -> bool {
    VERSIONS.contains(&version)
}

/// The official extensions for `version`, as `GET /version/:v/extensions/official` returns them.
pub fn extensions(version: &str) -> Vec<serde_json::Value> {
    EXTENSIONS
        .iter()
        .map(|(name, tag, description)| {
            let digest: String =
                Sha256::digest(format!("{name}@{tag}/{version}")).iter().map(|b| format!("{b:02x}")).collect();
            serde_json::json!({
                "name": name,
                "ref": format!("ghcr.io/{name}:{tag}"),
                "digest": format!("sha256:{digest}"),
                "author": "Sidero Labs",
                "description": description,
            })
        })
        .collect()
}
