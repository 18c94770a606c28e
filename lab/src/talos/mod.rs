//! Talos nodes: every lab VM that boots a Talos image becomes a Talos
//! machine with the Talos API (gRPC, port 50000) on its address.
//!
//! Life of a node (driven by the PVE model; see `supervisor`):
//! - The VM runs and has booted (`timing.bootMs` after start) from a disk or
//!   ISO whose origin names Talos: the node listens on the guest's address
//!   (its DHCP lease or `ipconfig0`), in **maintenance mode** — a fresh
//!   self-signed certificate, no client certificate, only what Talos's
//!   maintenance server offers (`Disks`, `ApplyConfiguration` in REBOOT, AUTO
//!   and TRY modes, `Version` refused without the admin role).
//! - `ApplyConfiguration` validates the configuration (machinery's loader and
//!   wording, see [`machine_config`]), writes it to the VM's system disk and
//!   "reboots": the node stops answering, and `timing.bootMs` later comes back
//!   **configured** on the static address its configuration gives (the first
//!   in 127.0.0.0/8; else the same address), with an apid certificate signed
//!   by the configuration's OS CA (`machine.ca`); from then on clients need a
//!   certificate from that CA whose Organization is their role (`os:admin`,
//!   `os:operator`, `os:reader`). Workers, whose configuration has no CA key,
//!   get theirs from a live control plane with the same CA and token (trustd);
//!   until one is up they do not answer.
//! - `Bootstrap` on a control plane (`timing.agentMs` after it came up) starts
//!   etcd; other live control planes of the cluster join. Once bootstrapped,
//!   a VIP from a control plane configuration answers as the Kubernetes API
//!   (`/readyz`, `/version`, see `kube_api`) with a certificate from the
//!   Kubernetes CA.
//! - Stopping the VM takes the node down; starting it boots what its disk holds.
//!
//! State: what Talos installs (configuration, staged configuration, etcd
//! data) lives on the disk volume in the PVE model (persisted with it). A VM
//! without a disk keeps an applied configuration in memory until it reboots.
//! Runtime state (listeners, reboot timers, TRY-mode timers) is in memory.
//!
//! Layout: [`machine_config`] (load and validate), [`pki`] (certificates,
//! TLS, kubeconfig), `node` (one machine), `server` (TLS listeners), `api`
//! (the gRPC services), `apid` (node / nodes routing, one-to-many answers),
//! `kube_api` (the VIP), `supervisor` (the loop).
//! Owns: [`TalosNodes`], the registry handlers and the supervisor share.
//! Must not: change VM configs; the only PVE state it writes is the disks'
//! Talos contents, DHCP leases (through the agent's address lookup) and, for
//! a Reset without reboot, the VM's power state.

pub mod api;
mod apid;
mod etcd;
mod kube_api;
pub mod machine_config;
mod node;
pub mod pki;
mod server;
mod supervisor;
mod upgrade;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use proxmox_talos::talos::api::storage;

use crate::pve::model::TalosInstall;
use crate::pve::qemu::drive::{self, Drive};
use crate::pve::state::PveState;
use machine_config::MachineConfig;
use node::{Node, NodeView, Phase};

/// The Talos API port (apid).
pub const APID_PORT: u16 = 50000;
/// The Kubernetes API port on a VIP when the cluster endpoint names another one.
pub const KUBERNETES_API_PORT: u16 = 6443;
/// How often the supervisor looks at the PVE model.
const TICK: Duration = Duration::from_millis(50);

/// A VIP's Kubernetes API: its holder (VMID), the listener, and the version `/version` reports.
type VipServer = (u32, server::Listener, Arc<Mutex<String>>);

/// The lab's Talos nodes (cheap to clone).
#[derive(Clone)]
pub struct TalosNodes {
    inner: Arc<Inner>,
}

struct Inner {
    pve: PveState,
    nodes: Mutex<BTreeMap<u32, Node>>,
    /// Kubernetes API listeners by VIP: the holder's VMID and the listener.
    vips: Mutex<BTreeMap<Ipv4Addr, VipServer>>,
    /// Every reboot a node was asked for, in order.
    reboots: Mutex<Vec<RebootRecord>>,
}

/// A reboot a node went through (apply, `Reboot`, `Reset`, `Upgrade`): when it went down and
/// came back, as scheduled (the listener follows within one supervisor tick).
#[derive(Debug, Clone)]
pub struct RebootRecord {
    pub vmid: u32,
    /// `ApplyConfiguration`, `Reboot`, `Reset` or `Upgrade`; `Kubernetes` for component images
    /// applied without a reboot (the node stays up; its Kubernetes components restart).
    pub cause: &'static str,
    /// The cluster (`cluster.id`) of a control plane; `None` for workers and maintenance.
    pub control_plane_of: Option<String>,
    pub down_at: Instant,
    pub up_at: Instant,
}

/// A node as [`TalosNodes::status`] reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeStatus {
    pub vmid: u32,
    /// Where the API answers (`None` while down).
    pub address: Option<Ipv4Addr>,
    pub maintenance: bool,
    pub hostname: String,
    /// Why the node does not answer, if it should but cannot.
    pub error: Option<String>,
}

/// Starts the supervisor on the current Tokio runtime; it runs until the runtime ends.
pub fn start(pve: PveState) -> TalosNodes {
    let nodes = TalosNodes {
        inner: Arc::new(Inner {
            pve,
            nodes: Mutex::new(BTreeMap::new()),
            vips: Mutex::new(BTreeMap::new()),
            reboots: Mutex::new(Vec::new()),
        }),
    };
    let weak = Arc::downgrade(&nodes.inner);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let Some(inner) = weak.upgrade() else { return };
            supervisor::tick(&TalosNodes { inner });
        }
    });
    nodes
}

impl TalosNodes {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u32, Node>> {
        self.inner.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn pve(&self) -> &PveState {
        &self.inner.pve
    }

    /// Every node that exists (its VM runs a Talos image and has booted).
    pub fn status(&self) -> Vec<NodeStatus> {
        self.lock()
            .values()
            .map(|n| NodeStatus {
                vmid: n.vmid,
                address: n.listener.as_ref().and(n.listener_key.as_ref()).map(|k| k.address),
                maintenance: matches!(n.phase, Phase::Maintenance),
                hostname: n.hostname(),
                error: n.last_error.clone(),
            })
            .collect()
    }

    /// A snapshot of node `vmid`, if it is up.
    fn view(&self, vmid: u32) -> Option<NodeView> {
        let nodes = self.lock();
        let node = nodes.get(&vmid).filter(|n| n.listener.is_some())?;
        Some(self.inner.pve.read(|m| node.view(m)))
    }

    /// The live node answering at `host` (an address or a hostname).
    fn find(&self, host: &str) -> Option<NodeView> {
        let nodes = self.lock();
        let node = nodes
            .values()
            .filter(|n| n.listener.is_some())
            .find(|n| n.hostname() == host || n.listener_key.as_ref().is_some_and(|k| k.address.to_string() == host))?;
        Some(self.inner.pve.read(|m| node.view(m)))
    }

    /// What `/system/state/config.yaml` holds on node `vmid`: the configuration
    /// on its disk (or, without a disk, in memory), if any; a staged one is
    /// written there at once and takes effect at the next boot.
    fn config_file(&self, vmid: u32) -> Option<String> {
        let nodes = self.lock();
        let node = nodes.get(&vmid)?;
        self.inner.pve.read(|m| node.install(m)).map(|i| i.staged.unwrap_or(i.config))
    }

    /// Runs `f` on node `vmid` with the model (saved afterwards).
    fn with_node<R>(&self, vmid: u32, f: impl FnOnce(&mut Node, &mut crate::pve::model::Model) -> R) -> Option<R> {
        let mut nodes = self.lock();
        let node = nodes.get_mut(&vmid)?;
        Some(self.inner.pve.write(|m| f(node, m)))
    }

    /// Maintenance apply: installs `config` and reboots into it.
    fn install(&self, vmid: u32, config: String) {
        let boot_ms = self.inner.pve.timing().boot_ms;
        self.with_node(vmid, |node, m| {
            node.update_install(m, |i| *i = Some(TalosInstall { config, staged: None, etcd: false, image: None }));
            node.schedule_reboot(boot_ms);
            self.record_reboot(node, "ApplyConfiguration");
        });
    }

    /// Writes a configuration to the disk (as the one in effect, or staged).
    fn persist(&self, vmid: u32, config: String, staged: bool) {
        self.with_node(vmid, |node, m| {
            node.update_install(m, |i| {
                let install = i.get_or_insert_with(TalosInstall::default);
                if staged {
                    install.staged = Some(config);
                } else {
                    install.config = config;
                    install.staged = None;
                }
            })
        });
    }

    /// Puts `config` in effect without a reboot; with `try_for`, only until then. New
    /// Kubernetes component images restart them (the kubelet reports it for half a boot delay,
    /// recorded like a reboot so tests see how many control planes were disrupted at once).
    fn apply_live(&self, vmid: u32, config: MachineConfig, try_for: Option<Duration>) {
        let restart = Duration::from_millis((self.inner.pve.timing().boot_ms / 2).max(2 * TICK.as_millis() as u64));
        let mut nodes = self.lock();
        if let Some(node) = nodes.get_mut(&vmid) {
            let before = node.config().map(|c| kube_api::component_images(&c.text)).unwrap_or_default();
            if before != kube_api::component_images(&config.text) {
                let now = Instant::now();
                node.kube_restart_until = Some(now + restart);
                let control_plane_of = config.machine_type.is_control_plane().then(|| config.cluster_id.clone());
                let record =
                    RebootRecord { vmid, cause: "Kubernetes", control_plane_of, down_at: now, up_at: now + restart };
                self.inner.reboots.lock().unwrap_or_else(|e| e.into_inner()).push(record);
            }
            node.phase = Phase::Configured(Arc::new(config));
            node.try_until = try_for.map(|d| Instant::now() + d);
        }
    }

    fn reboot(&self, vmid: u32) {
        let boot_ms = self.inner.pve.timing().boot_ms;
        self.with_node(vmid, |node, _| {
            node.schedule_reboot(boot_ms);
            self.record_reboot(node, "Reboot");
        });
    }

    /// `Upgrade`: the installer image goes to the disk and the node reboots into it (with
    /// `stage`, at its next reboot instead).
    fn upgrade(&self, vmid: u32, image: String, stage: bool) {
        let boot_ms = self.inner.pve.timing().boot_ms;
        self.with_node(vmid, |node, m| {
            node.update_install(m, |i| upgrade::install_image(i, image));
            if !stage {
                node.schedule_reboot(boot_ms);
                self.record_reboot(node, "Upgrade");
            }
        });
    }

    fn record_reboot(&self, node: &Node, cause: &'static str) {
        let Some(reboot) = node.reboot else { return };
        let control_plane_of =
            node.config().filter(|c| c.machine_type.is_control_plane()).map(|c| c.cluster_id.clone());
        let record =
            RebootRecord { vmid: node.vmid, cause, control_plane_of, down_at: reboot.down_at, up_at: reboot.up_at };
        self.inner.reboots.lock().unwrap_or_else(|e| e.into_inner()).push(record);
    }

    /// Every reboot so far, in the order asked.
    pub fn reboots(&self) -> Vec<RebootRecord> {
        self.inner.reboots.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The most control planes of one cluster that were down (or restarting Kubernetes
    /// components) at the same moment: a reboot counts until one supervisor tick after it was
    /// due back, a component restart until it was over (its node answers all along).
    pub fn max_control_planes_down_at_once(&self) -> usize {
        let reboots = self.reboots();
        let back = |r: &RebootRecord| if r.cause == "Kubernetes" { r.up_at } else { r.up_at + TICK };
        let windows: Vec<_> =
            reboots.iter().filter_map(|r| Some((r.control_plane_of.as_deref()?, r.down_at, back(r)))).collect();
        windows
            .iter()
            .map(|(cluster, at, _)| {
                windows.iter().filter(|(c, from, to)| c == cluster && from <= at && at < to).count()
            })
            .max()
            .unwrap_or(0)
    }

    fn bootstrap(&self, vmid: u32) {
        self.with_node(vmid, |node, m| {
            node.update_install(m, |i| i.get_or_insert_with(TalosInstall::default).etcd = true)
        });
    }

    /// Reset: wipes STATE (the configuration) and/or EPHEMERAL (etcd data),
    /// then reboots, or powers the VM off.
    fn reset(&self, vmid: u32, wipe_state: bool, wipe_ephemeral: bool, reboot: bool) {
        let boot_ms = self.inner.pve.timing().boot_ms;
        self.with_node(vmid, |node, m| {
            node.update_install(m, |i| {
                if wipe_state {
                    *i = None;
                } else if let (Some(install), true) = (i.as_mut(), wipe_ephemeral) {
                    install.etcd = false;
                }
            });
            if reboot {
                node.schedule_reboot(boot_ms);
                self.record_reboot(node, "Reset");
            } else {
                node.power_off_at = Some(Instant::now() + Duration::from_millis(node::GOING_DOWN_MS));
            }
        });
    }

    /// The live etcd members of a cluster: VMID, hostname, address.
    fn etcd_members(&self, cluster_id: &str) -> Vec<(u32, String, Ipv4Addr)> {
        let nodes = self.lock();
        self.inner.pve.read(|m| {
            nodes
                .values()
                .filter(|n| n.listener.is_some() && !n.etcd_stopped)
                .filter(|n| n.config().is_some_and(|c| c.cluster_id == cluster_id && c.machine_type.is_control_plane()))
                .filter(|n| n.install(m).is_some_and(|i| i.etcd))
                .filter_map(|n| Some((n.vmid, n.hostname(), n.listener_key.as_ref()?.address)))
                .collect()
        })
    }

    /// The control planes of a cluster that hold etcd data (members, up or down).
    fn etcd_member_vmids(&self, cluster_id: &str) -> Vec<u32> {
        let nodes = self.lock();
        self.inner.pve.read(|m| {
            nodes
                .values()
                .filter(|n| n.config().is_some_and(|c| c.cluster_id == cluster_id && c.machine_type.is_control_plane()))
                .filter(|n| n.install(m).is_some_and(|i| i.etcd))
                .map(|n| n.vmid)
                .collect()
        })
    }

    /// The VM's disks as Talos lists them.
    fn disks(&self, vmid: u32) -> Vec<storage::Disk> {
        let system = self.lock().get(&vmid).and_then(|n| n.system_disk.clone());
        self.inner.pve.read(|m| {
            let Some(vm) = m.vms.get(&vmid) else { return Vec::new() };
            let mut out = Vec::new();
            let (mut sd, mut vd) = (0u8, 0u8);
            for key in drive::boot_drive_names() {
                let Some(d) = vm.config.get(&key).map(|v| Drive::parse(v)) else { continue };
                if d.is_cloudinit() {
                    continue;
                }
                let cdrom = d.is_cdrom();
                let name = if cdrom {
                    format!(
                        "sr{}",
                        out.iter().filter(|x: &&storage::Disk| x.r#type == storage::disk::DiskType::Cd as i32).count()
                    )
                } else if key.starts_with("virtio") {
                    vd += 1;
                    format!("vd{}", (b'a' + vd - 1) as char)
                } else {
                    sd += 1;
                    format!("sd{}", (b'a' + sd - 1) as char)
                };
                let size = m.volumes.get(&d.file).map(|v| v.size).or_else(|| d.size()).unwrap_or(0);
                let ssd = d.opts.get("ssd").is_some_and(|v| v == "1");
                out.push(storage::Disk {
                    size,
                    model: if cdrom {
                        "QEMU DVD-ROM".into()
                    } else if key.starts_with("virtio") {
                        String::new()
                    } else {
                        "QEMU HARDDISK".into()
                    },
                    device_name: format!("/dev/{name}"),
                    name: name.clone(),
                    serial: d.opts.get("serial").cloned().unwrap_or_default(),
                    modalias: String::new(),
                    uuid: String::new(),
                    wwid: d.opts.get("wwn").cloned().unwrap_or_default(),
                    r#type: if cdrom {
                        storage::disk::DiskType::Cd
                    } else if ssd {
                        storage::disk::DiskType::Ssd
                    } else {
                        storage::disk::DiskType::Hdd
                    } as i32,
                    bus_path: format!("/pci0000:00/{key}"),
                    system_disk: system.as_deref() == Some(d.file.as_str()),
                    subsystem: "/sys/class/block".into(),
                    readonly: cdrom,
                });
            }
            out
        })
    }
}
