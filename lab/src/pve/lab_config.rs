//! What the simulated cluster is made of and how it behaves: the lab config.
//!
//! Owns: the topology (nodes with their loopback addresses and PCI devices,
//! storages with their content types and sharing, bridges with the lab subnet
//! VMs get DHCP leases from, template VMs made at first start), the realism
//! knobs (task durations, boot and guest-agent delays, the config-lock wait)
//! fault injection rates, and access (users, tokens, ACLs, pools; see
//! [`super::access::AccessConfig`]). Read from a YAML or JSON file (`up --config`);
//! two presets: [`LabConfig::single_node`] (the default, node `pve`) and
//! [`LabConfig::seed_cluster`] (pve-ms01-01, pve-ms01-02, pve-aimax-01).
//! Must not: hold runtime state (that is [`super::model`]).

use std::net::Ipv4Addr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The whole lab description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabConfig {
    pub nodes: Vec<NodeConfig>,
    pub storages: Vec<StorageConfig>,
    pub bridges: Vec<BridgeConfig>,
    /// VMs that exist at first start (e.g. the Ubuntu template 90001).
    #[serde(default)]
    pub templates: Vec<TemplateConfig>,
    #[serde(default)]
    pub timing: Timing,
    #[serde(default)]
    pub faults: Faults,
    /// Users, API tokens, ACL entries and resource pools.
    #[serde(default)]
    pub access: super::access::AccessConfig,
    /// The release `GET /version` (and each node's `pveversion`) reports, e.g. `8.3.2`; default
    /// [`super::server::PVE_VERSION`]. Only what the lab reports changes (its API stays PVE
    /// 9.1's): it is there to try a program's version checks against an older release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pve_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeConfig {
    pub name: String,
    /// The node's own address (cluster/status `ip`, where its SSH listens).
    pub address: Ipv4Addr,
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// Memory in MiB.
    #[serde(default = "default_memory")]
    pub memory_mib: u64,
    #[serde(default)]
    pub pci_devices: Vec<PciDeviceConfig>,
}

fn default_cpus() -> u32 {
    16
}

fn default_memory() -> u64 {
    65536
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PciDeviceConfig {
    /// `0000:28:00.0`.
    pub id: String,
    pub vendor: String,
    pub device: String,
    pub vendor_name: String,
    pub device_name: String,
    #[serde(default)]
    pub iommu_group: i64,
}

/// A storage as `/storage` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StorageConfig {
    pub id: String,
    /// `dir`, `lvmthin`, `zfspool` or `rbd`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Content types, e.g. `iso`, `vztmpl`, `snippets`, `import`, `images`, `rootdir`.
    pub content: Vec<String>,
    #[serde(default)]
    pub shared: bool,
    /// Capacity in GiB.
    #[serde(default = "default_capacity")]
    pub capacity_gib: u64,
}

fn default_capacity() -> u64 {
    1024
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BridgeConfig {
    pub name: String,
    #[serde(default)]
    pub vlan_aware: bool,
    /// The lab subnet VMs on this bridge lease addresses from (a /24 in 127.0.0.0/8).
    pub subnet: Ipv4Addr,
    /// The gateway the leases name (`.1` of the subnet).
    pub gateway: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateConfig {
    pub vmid: u32,
    pub name: String,
    pub node: String,
    /// The template's disk: storage and size in GiB; its image boots as Ubuntu with cloud-init.
    pub storage: String,
    pub disk_gib: u64,
}

/// Realism knobs, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Timing {
    /// How long a worker task (create, clone, start, ...) runs.
    pub task_ms: u64,
    /// From start until the guest has booted (agent can answer, Talos listens).
    pub boot_ms: u64,
    /// After boot, until the guest agent answers.
    pub agent_ms: u64,
    /// How long a config change waits for a VM's lock before "got timeout".
    pub lock_wait_ms: u64,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing { task_ms: 300, boot_ms: 2000, agent_ms: 1000, lock_wait_ms: 10_000 }
    }
}

impl Timing {
    /// Zero delays (tests, benchmarks), with a short lock wait.
    pub fn instant() -> Timing {
        Timing { task_ms: 0, boot_ms: 0, agent_ms: 0, lock_wait_ms: 2000 }
    }
}

/// Fault injection: each rate is a probability in [0, 1] per eligible request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Faults {
    pub seed: u64,
    /// A VM-changing call answers 500 "can't lock file ... got timeout".
    pub lock_timeout: f64,
    /// A call answers 500 (writes: "got no worker upid - start worker failed").
    pub server_error: f64,
    /// The connection is closed without an answer, before or after the call took effect.
    pub dropped_connection: f64,
    /// A worker task ends with an error instead of OK.
    pub task_failure: f64,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults { seed: 1, lock_timeout: 0.0, server_error: 0.0, dropped_connection: 0.0, task_failure: 0.0 }
    }
}

impl Faults {
    /// No fault at all.
    pub fn off() -> Faults {
        Faults::default()
    }

    /// The mix our fault runs use (issue 7's): 10% lock timeouts, 5% dropped
    /// connections, 2% failed tasks, 1% server errors, from `seed`.
    pub fn issue_mix(seed: u64) -> Faults {
        Faults { seed, lock_timeout: 0.10, dropped_connection: 0.05, task_failure: 0.02, server_error: 0.01 }
    }

    pub fn check(&self) -> Result<(), String> {
        for (name, rate) in [
            ("lockTimeout", self.lock_timeout),
            ("serverError", self.server_error),
            ("droppedConnection", self.dropped_connection),
            ("taskFailure", self.task_failure),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("faults.{name}: {rate} is not a probability between 0 and 1"));
            }
        }
        Ok(())
    }
}

impl LabConfig {
    /// One node `pve` (127.0.0.1) with the seed's storages, bridge, GPU and template.
    pub fn single_node() -> LabConfig {
        LabConfig {
            nodes: vec![node("pve", Ipv4Addr::new(127, 0, 0, 1), true)],
            storages: seed_storages(),
            bridges: vec![seed_bridge()],
            templates: vec![seed_template("pve")],
            timing: Timing::default(),
            faults: Faults::default(),
            access: super::access::AccessConfig::default(),
            pve_version: None,
        }
    }

    /// The seed's three-node cluster; the GPU is in pve-aimax-01.
    pub fn seed_cluster() -> LabConfig {
        LabConfig {
            nodes: vec![
                node("pve-ms01-01", Ipv4Addr::new(127, 0, 10, 11), false),
                node("pve-ms01-02", Ipv4Addr::new(127, 0, 10, 12), false),
                node("pve-aimax-01", Ipv4Addr::new(127, 0, 10, 13), true),
            ],
            storages: seed_storages(),
            bridges: vec![seed_bridge()],
            templates: vec![seed_template("pve-ms01-01")],
            timing: Timing::default(),
            faults: Faults::default(),
            access: super::access::AccessConfig::default(),
            pve_version: None,
        }
    }

    /// Reads a YAML (or JSON, which is YAML) config file and checks it.
    pub fn load(path: &Path) -> Result<LabConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let config: LabConfig = serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        config.check().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(config)
    }

    /// Consistency: loopback addresses only, known nodes and storages, unique names.
    pub fn check(&self) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("nodes: at least one node is needed".into());
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if !n.address.is_loopback() {
                return Err(format!(
                    "nodes[{i}].address: {} is not in 127.0.0.0/8; the lab is loopback only",
                    n.address
                ));
            }
            if self.nodes[..i].iter().any(|m| m.name == n.name) {
                return Err(format!("nodes[{i}].name: {} appears twice", n.name));
            }
        }
        for (i, s) in self.storages.iter().enumerate() {
            if !matches!(s.kind.as_str(), "dir" | "lvmthin" | "zfspool" | "rbd") {
                return Err(format!("storages[{i}].type: {:?} is not one of dir, lvmthin, zfspool, rbd", s.kind));
            }
            // Block storages hold disk images and container volumes only (the plugins' `plugindata`).
            if let Some(c) = s.content.iter().find(|c| s.kind != "dir" && !matches!(c.as_str(), "images" | "rootdir")) {
                return Err(format!(
                    "storages[{i}].content: a {} storage holds images and rootdir only, not {c:?}",
                    s.kind
                ));
            }
        }
        for (i, b) in self.bridges.iter().enumerate() {
            if !b.subnet.is_loopback() || !b.gateway.is_loopback() {
                return Err(format!("bridges[{i}]: subnet and gateway must be in 127.0.0.0/8"));
            }
        }
        for (i, t) in self.templates.iter().enumerate() {
            if !self.nodes.iter().any(|n| n.name == t.node) {
                return Err(format!("templates[{i}].node: no node named {:?}", t.node));
            }
            if !self.storages.iter().any(|s| s.id == t.storage) {
                return Err(format!("templates[{i}].storage: no storage named {:?}", t.storage));
            }
        }
        if let Some(v) = &self.pve_version {
            let parts: Vec<&str> = v.split('.').collect();
            if !(2..=3).contains(&parts.len())
                || parts.iter().any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(format!("pveVersion: {v:?} is not a release such as 8.3.2 or 9.1"));
            }
        }
        self.access.check()?;
        for (i, p) in self.access.pools.iter().enumerate() {
            if let Some(s) = p.storage.iter().find(|s| !self.storages.iter().any(|c| &c.id == *s)) {
                return Err(format!("access.pools[{i}].storage: no storage named {s:?}"));
            }
        }
        self.faults.check()
    }
}

fn node(name: &str, address: Ipv4Addr, gpu: bool) -> NodeConfig {
    let pci_devices = if gpu {
        vec![PciDeviceConfig {
            id: "0000:28:00.0".into(),
            vendor: "0x10de".into(),
            device: "0x2684".into(),
            vendor_name: "NVIDIA Corporation".into(),
            device_name: "AD102 [GeForce RTX 4090]".into(),
            iommu_group: 28,
        }]
    } else {
        Vec::new()
    };
    NodeConfig { name: name.into(), address, cpus: default_cpus(), memory_mib: default_memory(), pci_devices }
}

fn seed_storages() -> Vec<StorageConfig> {
    let content = |c: &[&str]| c.iter().map(|s| s.to_string()).collect();
    vec![
        StorageConfig {
            id: "local".into(),
            kind: "dir".into(),
            content: content(&["iso", "vztmpl", "snippets", "import", "backup"]),
            shared: false,
            capacity_gib: 100,
        },
        // A fresh PVE install on ext4/xfs: the `pve` volume group's thin pool `data`.
        StorageConfig {
            id: "local-lvm".into(),
            kind: "lvmthin".into(),
            content: content(&["images", "rootdir"]),
            shared: false,
            capacity_gib: 512,
        },
        StorageConfig {
            id: "local-zfs".into(),
            kind: "zfspool".into(),
            content: content(&["images", "rootdir"]),
            shared: false,
            capacity_gib: 2048,
        },
        StorageConfig {
            id: "ceph".into(),
            kind: "rbd".into(),
            content: content(&["images", "rootdir"]),
            shared: true,
            capacity_gib: 8192,
        },
    ]
}

fn seed_bridge() -> BridgeConfig {
    BridgeConfig {
        name: "vmbr0".into(),
        vlan_aware: true,
        subnet: Ipv4Addr::new(127, 42, 0, 0),
        gateway: Ipv4Addr::new(127, 42, 0, 1),
    }
}

fn seed_template(node: &str) -> TemplateConfig {
    TemplateConfig {
        vmid: 90001,
        name: "pkr-ubuntu-noble-1".into(),
        node: node.into(),
        storage: "local-zfs".into(),
        disk_gib: 20,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_consistent_and_round_trip_through_yaml() {
        for config in [LabConfig::single_node(), LabConfig::seed_cluster()] {
            config.check().unwrap();
            let yaml = serde_norway::to_string(&config).unwrap();
            let back: LabConfig = serde_norway::from_str(&yaml).unwrap();
            assert_eq!(back, config);
        }
    }

    #[test]
    fn non_loopback_addresses_and_bad_rates_are_refused() {
        let mut config = LabConfig::single_node();
        config.nodes[0].address = Ipv4Addr::new(10, 0, 0, 1);
        assert!(config.check().unwrap_err().contains("nodes[0].address"));
        let mut config = LabConfig::single_node();
        config.faults.lock_timeout = 1.5;
        assert!(config.check().unwrap_err().contains("faults.lockTimeout"));
        let mut config = LabConfig::single_node();
        let lvm = config.storages.iter().position(|s| s.kind == "lvmthin").unwrap();
        config.storages[lvm].content.push("iso".into());
        assert!(config.check().unwrap_err().contains(&format!("storages[{lvm}].content")));
    }
}
