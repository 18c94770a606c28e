//! The simulated cluster's state: what a real PVE keeps in `/etc/pve` and on
//! its storages, as plain data.
//!
//! Owns: nodes, storages, VMs (their config as PVE's `key: value` strings,
//! pending changes, run state, lock), disk volumes on block storages, worker
//! tasks, PCI resource mappings and DHCP leases; building the first state
//! from a [`LabConfig`]; saving and loading it (`pve-state.json` in the state
//! directory, written atomically). Files on `dir` storages (ISOs, snippets,
//! import images) are real files under the state directory, not in here.
//! Must not: know HTTP, locking or time (that is [`super::state`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::lab_config::{LabConfig, NodeConfig, StorageConfig};

/// The state file in the state directory.
pub const STATE_FILE: &str = "pve-state.json";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Model {
    pub nodes: BTreeMap<String, NodeConfig>,
    pub storages: BTreeMap<String, StorageConfig>,
    pub vms: BTreeMap<u32, Vm>,
    /// Disk volumes (VM disks, cloud-init drives, EFI vars) by volid.
    pub volumes: BTreeMap<String, Volume>,
    /// Worker tasks, oldest first (the newest [`MAX_TASKS`] are kept).
    pub tasks: Vec<Task>,
    /// `/cluster/mapping/pci` entries by id.
    pub pci_mappings: BTreeMap<String, PciMapping>,
    /// DHCP leases by MAC address.
    pub leases: BTreeMap<String, Ipv4Addr>,
    /// The last worker "pid" handed out (UPIDs carry it).
    pub last_pid: u32,
    /// The VMs the lab started with (its templates), not made by any program.
    #[serde(default)]
    pub seed_vmids: Vec<u32>,
    /// Resource pools (PVE's `user.cfg` `pool:` lines) by pool ID.
    #[serde(default)]
    pub pools: BTreeMap<String, Pool>,
}

/// A resource pool: its guests and storages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub vms: BTreeSet<u32>,
    #[serde(default)]
    pub storage: BTreeSet<String>,
}

/// How many finished tasks the lab remembers.
pub const MAX_TASKS: usize = 2000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Vm {
    pub vmid: u32,
    pub node: String,
    /// The VM config as PVE stores it (`cores: "2"`, `net0: "virtio=BC:24:11:..,bridge=vmbr0"`).
    pub config: BTreeMap<String, String>,
    /// Changes that take effect at the next start (`GET .../pending`).
    pub pending: BTreeMap<String, String>,
    /// Keys to be deleted at the next start.
    pub pending_delete: Vec<String>,
    pub running: bool,
    /// Milliseconds since the epoch when the VM was last started.
    pub started_at_ms: Option<u64>,
    /// The config lock (`create`, `clone`, `migrate`, ...), shown in status/current.
    pub lock: Option<String>,
    /// The task currently holding the VM's config lock (PVE's flock).
    pub busy: Option<String>,
    /// Paused (`status/suspend`): still `running`, `qmpstatus` is `paused`.
    #[serde(default)]
    pub paused: bool,
    /// PVE's `[special:cloudinit]` section: the values the current cloud-init
    /// image was made from, for options changed since (`added` lists new ones).
    #[serde(default)]
    pub cloudinit: BTreeMap<String, String>,
    /// Starts and resets so far: the guest lists its links in another order per boot.
    #[serde(default)]
    pub boots: u32,
}

impl Vm {
    pub fn is_template(&self) -> bool {
        self.config.get("template").is_some_and(|v| v == "1")
    }

    /// `digest`: sha1 of the config file as PVE writes it (with the lock and
    /// the `[PENDING]` section).
    pub fn digest(&self) -> String {
        use sha2::Digest as _;
        let mut text = String::new();
        if let Some(lock) = &self.lock {
            text.push_str(&format!("lock: {lock}\n"));
        }
        for (k, v) in &self.config {
            text.push_str(&format!("{k}: {v}\n"));
        }
        if !self.pending.is_empty() || !self.pending_delete.is_empty() {
            text.push_str("\n[PENDING]\n");
            if !self.pending_delete.is_empty() {
                text.push_str(&format!("delete: {}\n", self.pending_delete.join(",")));
            }
            for (k, v) in &self.pending {
                text.push_str(&format!("{k}: {v}\n"));
            }
        }
        let hash = sha2::Sha256::digest(text.as_bytes());
        hash[..20].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A disk volume on a storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    /// `local-zfs:vm-100-disk-0`, `local:100/vm-100-disk-0.qcow2`, `ceph:vm-100-cloudinit`.
    pub volid: String,
    pub storage: String,
    /// The node holding it; `None` on a shared storage.
    pub node: Option<String>,
    pub vmid: u32,
    /// Size in bytes.
    pub size: u64,
    /// `raw` or `qcow2`.
    pub format: String,
    /// What the disk holds, for deciding what boots: the image it was imported
    /// from (`local:import/talos-1.12.4.raw`), `template:<name>`, or `None` for a blank disk.
    pub origin: Option<String>,
    /// Talos installed on this disk by the lab's Talos nodes (`crate::talos`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talos: Option<TalosInstall>,
}

/// What a disk's Talos STATE and EPHEMERAL partitions hold, as the lab's
/// Talos nodes write it: it survives VM restarts and lab restarts, and goes
/// with the disk (a linked clone copies it, destroying the VM deletes it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TalosInstall {
    /// The machine configuration in effect (the YAML as applied).
    pub config: String,
    /// A configuration staged for the next boot (`ApplyConfiguration` STAGED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged: Option<String>,
    /// The etcd data directory is not empty (bootstrapped, or joined a bootstrapped cluster).
    #[serde(default)]
    pub etcd: bool,
    /// The installer image of the last `Upgrade` (`<registry>/<path>:<version>`): the system the
    /// disk boots since, whatever image the VM was created from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// A worker task (`UPID:node:pid:pstart:starttime:type:id:user:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub upid: String,
    pub node: String,
    /// `qmcreate`, `qmclone`, `qmstart`, `download`, ...
    pub kind: String,
    pub id: String,
    pub user: String,
    pub pid: u32,
    pub starttime: u64,
    pub endtime: Option<u64>,
    /// `None` while running; `OK`, `WARNINGS: n` or the error text once stopped.
    pub exitstatus: Option<String>,
    pub log: Vec<String>,
}

impl Task {
    pub fn running(&self) -> bool {
        self.exitstatus.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PciMapping {
    pub id: String,
    pub description: Option<String>,
    /// `node=pve,path=0000:28:00.0,id=10de:2684,iommugroup=28` entries.
    pub map: Vec<String>,
}

impl Model {
    /// The state of a freshly installed lab.
    pub fn from_config(config: &LabConfig) -> Model {
        let mut model = Model {
            nodes: config.nodes.iter().map(|n| (n.name.clone(), n.clone())).collect(),
            storages: config.storages.iter().map(|s| (s.id.clone(), s.clone())).collect(),
            ..Model::default()
        };
        for p in &config.access.pools {
            let pool = Pool {
                comment: p.comment.clone(),
                vms: p.vms.iter().copied().collect(),
                storage: p.storage.iter().cloned().collect(),
            };
            model.pools.insert(p.id.clone(), pool);
        }
        for t in &config.templates {
            model.seed_vmids.push(t.vmid);
            let volid = format!("{}:base-{}-disk-0", t.storage, t.vmid);
            let shared = model.storages.get(&t.storage).is_some_and(|s| s.shared);
            model.volumes.insert(
                volid.clone(),
                Volume {
                    volid: volid.clone(),
                    storage: t.storage.clone(),
                    node: (!shared).then(|| t.node.clone()),
                    vmid: t.vmid,
                    size: t.disk_gib << 30,
                    format: "raw".into(),
                    origin: Some(format!("template:{}", t.name)),
                    talos: None,
                },
            );
            let bridge = config.bridges.first().map(|b| b.name.as_str()).unwrap_or("vmbr0");
            let config: BTreeMap<String, String> = [
                ("name", t.name.clone()),
                ("template", "1".into()),
                ("ostype", "l26".into()),
                ("cores", "2".into()),
                ("memory", "2048".into()),
                ("scsihw", "virtio-scsi-pci".into()),
                ("scsi0", format!("{volid},size={}G", t.disk_gib)),
                ("ide2", format!("{}:vm-{}-cloudinit,media=cdrom", t.storage, t.vmid)),
                ("net0", format!("virtio={},bridge={bridge}", lab_mac(t.vmid, 0))),
                ("agent", "1".into()),
                ("boot", "order=scsi0".into()),
                ("serial0", "socket".into()),
                ("vga", "serial0".into()),
                ("meta", "creation-qemu=9.2.0,ctime=1735689600".into()),
                ("smbios1", format!("uuid={}", lab_uuid(t.vmid))),
                ("vmgenid", lab_uuid(t.vmid + 1)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
            let ci = format!("{}:vm-{}-cloudinit", t.storage, t.vmid);
            model.volumes.insert(
                ci.clone(),
                Volume {
                    volid: ci,
                    storage: t.storage.clone(),
                    node: (!shared).then(|| t.node.clone()),
                    vmid: t.vmid,
                    size: 4 << 20,
                    format: "raw".into(),
                    origin: None,
                    talos: None,
                },
            );
            model.vms.insert(
                t.vmid,
                Vm {
                    vmid: t.vmid,
                    node: t.node.clone(),
                    config,
                    pending: BTreeMap::new(),
                    pending_delete: Vec::new(),
                    running: false,
                    started_at_ms: None,
                    lock: None,
                    busy: None,
                    paused: false,
                    cloudinit: BTreeMap::new(),
                    boots: 0,
                },
            );
        }
        model
    }

    /// Loads the state file, or `None` when the lab has never run in `dir`.
    /// Tasks that were running when the lab stopped end as PVE's do when
    /// their worker dies; locks they held are released.
    pub fn load(dir: &Path) -> Result<Option<Model>, String> {
        let path = dir.join(STATE_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let mut model: Model = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        for task in model.tasks.iter_mut().filter(|t| t.running()) {
            task.exitstatus = Some("unexpected status".into());
            task.endtime = Some(task.starttime);
        }
        for vm in model.vms.values_mut() {
            vm.busy = None;
        }
        Ok(Some(model))
    }

    /// Writes the state file atomically (temp file, then rename).
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(STATE_FILE);
        let tmp: PathBuf = dir.join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_vec(self).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("renaming to {}: {e}", path.display()))
    }

    pub fn task(&self, upid: &str) -> Option<&Task> {
        self.tasks.iter().rev().find(|t| t.upid == upid)
    }

    pub fn task_mut(&mut self, upid: &str) -> Option<&mut Task> {
        self.tasks.iter_mut().rev().find(|t| t.upid == upid)
    }

    /// Whether `storage` is usable on `node` (shared storages are usable everywhere).
    pub fn storage_on(&self, storage: &str, node: &str) -> Option<&StorageConfig> {
        self.storages.get(storage).filter(|_| self.nodes.contains_key(node))
    }

    /// The pool guest `vmid` belongs to (PVE's `$usercfg->{vms}->{$vmid}`).
    pub fn pool_of(&self, vmid: u32) -> Option<&str> {
        self.pools.iter().find(|(_, p)| p.vms.contains(&vmid)).map(|(id, _)| id.as_str())
    }

    /// `add_vm_to_pool`: a no-op when the pool is gone.
    pub fn add_vm_to_pool(&mut self, vmid: u32, pool: &str) {
        if let Some(p) = self.pools.get_mut(pool) {
            p.vms.insert(vmid);
        }
    }

    /// `remove_vm_access`'s pool part: the guest leaves its pool.
    pub fn remove_vm_from_pool(&mut self, vmid: u32) {
        for p in self.pools.values_mut() {
            p.vms.remove(&vmid);
        }
    }

    /// Volumes a VM owns (disks, cloud-init drive, EFI vars).
    pub fn volumes_of(&self, vmid: u32) -> impl Iterator<Item = &Volume> {
        self.volumes.values().filter(move |v| v.vmid == vmid)
    }
}

/// A MAC in Proxmox's `BC:24:11` range, derived from the VMID and NIC index.
pub fn lab_mac(vmid: u32, index: u32) -> String {
    let n = vmid.wrapping_mul(37).wrapping_add(index.wrapping_mul(7919));
    format!("BC:24:11:{:02X}:{:02X}:{:02X}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

/// A stable UUID-shaped identifier for SMBIOS and vmgenid.
pub fn lab_uuid(seed: u32) -> String {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(seed.to_be_bytes());
    let hex: String = h[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_lab_has_the_seed_template_and_survives_a_save_and_load() {
        let model = Model::from_config(&LabConfig::seed_cluster());
        let template = &model.vms[&90001];
        assert!(template.is_template());
        assert_eq!(template.config["name"], "pkr-ubuntu-noble-1");
        assert_eq!(model.volumes_of(90001).count(), 2);
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let back = Model::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.vms, model.vms);
        assert_eq!(back.volumes, model.volumes);
    }

    #[test]
    fn tasks_running_at_shutdown_end_and_release_their_locks() {
        let mut model = Model::from_config(&LabConfig::single_node());
        model.tasks.push(Task {
            upid: "UPID:pve:00000001:00000001:00000001:qmstart:90001:root@pam:".into(),
            node: "pve".into(),
            kind: "qmstart".into(),
            id: "90001".into(),
            user: "root@pam".into(),
            pid: 1,
            starttime: 1,
            endtime: None,
            exitstatus: None,
            log: vec![],
        });
        model.vms.get_mut(&90001).unwrap().busy = Some(model.tasks[0].upid.clone());
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let back = Model::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.tasks[0].exitstatus.as_deref(), Some("unexpected status"));
        assert_eq!(back.vms[&90001].busy, None);
    }

    #[test]
    fn lab_macs_are_unicast_and_distinct_per_nic() {
        let a = lab_mac(100, 0);
        assert!(a.starts_with("BC:24:11:"));
        assert_ne!(a, lab_mac(100, 1));
        assert_ne!(a, lab_mac(101, 0));
    }
}
