//! One simulated Talos machine: what it runs (image version and platform),
//! what its system disk holds, where it is in its life (maintenance,
//! configured, rebooting), and the addresses, hostname and certificates that
//! follow from that.
//!
//! Owns: [`Node`] and the read-only [`NodeView`] handlers work on; finding a
//! VM's system disk and what Talos installed there
//! ([`TalosInstall`](crate::pve::model::TalosInstall) on the disk volume); the
//! stable generated hostname (`talos-xxx-yyy`); the services a node reports.
//! Must not: bind sockets (the supervisor does) or speak gRPC (that is `api`).

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::machine_config::{self, MachineConfig, Mode};
use crate::pve::model::{Model, TalosInstall, Vm};
use crate::pve::qemu::drive::{self, Drive};

/// How long after answering an `ApplyConfiguration` (or `Reboot`) the node
/// goes down: long enough for the answer to reach the client.
pub const GOING_DOWN_MS: u64 = 200;

/// Where a node is in its life.
#[derive(Debug, Clone)]
pub enum Phase {
    /// Booted without a configuration: insecure API, waiting for one.
    Maintenance,
    /// Running a configuration.
    Configured(Arc<MachineConfig>),
}

/// A scheduled reboot: down at `down_at`, back at `up_at`.
#[derive(Debug, Clone, Copy)]
pub struct Reboot {
    pub down_at: Instant,
    pub up_at: Instant,
}

/// What the image is: `v1.12.4`, `nocloud` (cloud mode) or `metal`.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub tag: String,
    pub platform: &'static str,
    pub mode: Mode,
}

impl Image {
    /// From the boot disk's origin or ISO (`local:import/talos-v1.12.4-nocloud-amd64.raw`).
    pub fn from_origin(origin: &str) -> Image {
        let lower = origin.to_ascii_lowercase();
        let tag = regex::Regex::new(r"(\d+\.\d+\.\d+)")
            .ok()
            .and_then(|re| re.captures(&lower).map(|c| format!("v{}", &c[1])))
            .unwrap_or_else(|| "v1.12.4".into());
        let metal = lower.contains("metal");
        Image {
            tag,
            platform: if metal { "metal" } else { "nocloud" },
            mode: if metal { Mode::Metal } else { Mode::Cloud },
        }
    }

    /// What the machine runs with `install` on its disk: an upgrade's installer image names
    /// the version (the platform stays the machine's).
    pub fn installed(mut self, install: Option<&TalosInstall>) -> Image {
        if let Some(tag) = install.and_then(|i| i.image.as_deref()).and_then(|i| i.rsplit_once(':')).map(|(_, t)| t) {
            self.tag = tag.to_string();
        }
        self
    }
}

/// A running Talos machine.
pub struct Node {
    pub vmid: u32,
    /// The VM's `started_at_ms` when this node booted (a VM restart is a new boot).
    pub vm_started_at: Option<u64>,
    pub image: Image,
    /// The disk Talos installs to (volid), if the VM has one.
    pub system_disk: Option<String>,
    pub phase: Phase,
    /// Where the API listens (and answers, e.g. `Version`), while up.
    pub listener: Option<super::server::Listener>,
    /// The address and TLS identity the current listener was made for.
    pub listener_key: Option<ListenerKey>,
    /// When the node came up in its current phase (bootstrap readiness).
    pub up_since: Option<Instant>,
    pub reboot: Option<Reboot>,
    /// TRY mode: when to go back to the configuration on disk.
    pub try_until: Option<Instant>,
    /// A configuration applied to a machine without a system disk: it lives
    /// until the next reboot only.
    pub in_memory: Option<TalosInstall>,
    /// Why the node is not listening (reported once).
    pub last_error: Option<String>,
    /// Reset without reboot: when the machine powers off.
    pub power_off_at: Option<Instant>,
    /// The kernel's boot ID (`/proc/sys/kernel/random/boot_id`): new at every boot.
    pub boot_id: String,
    /// etcd was stopped by a leave (or the member removed): it starts again at the next boot.
    pub etcd_stopped: bool,
    /// A configuration applied without a reboot changed Kubernetes component images: the
    /// kubelet (and on control planes the static pods) restart until then.
    pub kube_restart_until: Option<Instant>,
}

/// What a listener was built for; a different key means a new listener.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerKey {
    pub address: Ipv4Addr,
    /// `None` in maintenance; else the OS CA, hostname and SANs of apid's certificate.
    pub apid: Option<(String, String, Vec<String>)>,
}

/// A snapshot of a node for one API call.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub vmid: u32,
    pub image: Image,
    pub phase: Phase,
    pub address: Option<Ipv4Addr>,
    pub hostname: String,
    pub up_since: Option<Instant>,
    /// The etcd data directory is not empty.
    pub etcd: bool,
    pub boot_id: String,
    /// The kubelet is restarting onto new Kubernetes images.
    pub kubelet_restarting: bool,
}

impl NodeView {
    pub fn config(&self) -> Option<&Arc<MachineConfig>> {
        match &self.phase {
            Phase::Configured(c) => Some(c),
            Phase::Maintenance => None,
        }
    }
}

impl Node {
    /// A fresh boot of `vm`: configured if its disk holds a configuration
    /// (a staged one takes effect now), else in maintenance.
    pub fn boot(m: &mut Model, vm: &Vm, origin: &str) -> Node {
        let system_disk = system_disk(m, vm);
        let installed = system_disk.as_ref().and_then(|d| m.volumes.get(d)).and_then(|v| v.talos.as_ref());
        let image = Image::from_origin(origin).installed(installed);
        let phase = boot_phase(m, system_disk.as_deref(), &image);
        Node {
            vmid: vm.vmid,
            vm_started_at: vm.started_at_ms,
            image,
            system_disk,
            phase,
            listener: None,
            listener_key: None,
            up_since: None,
            reboot: None,
            try_until: None,
            in_memory: None,
            last_error: None,
            power_off_at: None,
            boot_id: random_uuid(),
            etcd_stopped: false,
            kube_restart_until: None,
        }
    }

    /// Comes back from a reboot: the disk decides the phase again. Leaving
    /// maintenance is no real reboot (the machine goes on booting with the
    /// configuration it received), so a disk-less machine keeps it then.
    pub fn reboot_done(&mut self, m: &mut Model) {
        if matches!(self.phase, Phase::Configured(_)) {
            self.in_memory = None;
        }
        self.try_until = None;
        self.reboot = None;
        self.etcd_stopped = false;
        self.boot_id = random_uuid();
        self.image = self.image.clone().installed(self.install(m).as_ref());
        self.phase = match &self.system_disk {
            Some(disk) => boot_phase(m, Some(disk), &self.image),
            None => phase_of(self.in_memory.as_ref(), &self.image),
        };
    }

    /// Goes down after [`GOING_DOWN_MS`] and comes back `boot_ms` later.
    pub fn schedule_reboot(&mut self, boot_ms: u64) {
        let down_at = Instant::now() + Duration::from_millis(GOING_DOWN_MS);
        self.reboot = Some(Reboot { down_at, up_at: down_at + Duration::from_millis(boot_ms) });
    }

    /// What the node's disk (or memory) holds.
    pub fn install(&self, m: &Model) -> Option<TalosInstall> {
        if let Some(i) = &self.in_memory {
            return Some(i.clone());
        }
        self.system_disk.as_ref().and_then(|d| m.volumes.get(d)).and_then(|v| v.talos.clone())
    }

    /// Changes what the node's disk (or, without one, its memory) holds.
    pub fn update_install(&mut self, m: &mut Model, f: impl FnOnce(&mut Option<TalosInstall>)) {
        match self.system_disk.as_ref().and_then(|d| m.volumes.get_mut(d)) {
            Some(volume) => f(&mut volume.talos),
            None => {
                let mut install = self.in_memory.take();
                f(&mut install);
                self.in_memory = install;
            }
        }
    }

    pub fn config(&self) -> Option<&Arc<MachineConfig>> {
        match &self.phase {
            Phase::Configured(c) => Some(c),
            Phase::Maintenance => None,
        }
    }

    pub fn hostname(&self) -> String {
        self.config().and_then(|c| c.hostname.clone()).unwrap_or_else(|| stable_hostname(self.vmid))
    }

    pub fn view(&self, m: &Model) -> NodeView {
        NodeView {
            vmid: self.vmid,
            image: self.image.clone(),
            phase: self.phase.clone(),
            address: self.listener_key.as_ref().map(|k| k.address),
            hostname: self.hostname(),
            up_since: self.up_since,
            etcd: self.install(m).is_some_and(|i| i.etcd),
            boot_id: self.boot_id.clone(),
            kubelet_restarting: self.kube_restart_until.is_some_and(|t| Instant::now() < t),
        }
    }
}

fn boot_phase(m: &mut Model, system_disk: Option<&str>, image: &Image) -> Phase {
    let Some(volume) = system_disk.and_then(|d| m.volumes.get_mut(d)) else { return Phase::Maintenance };
    let Some(install) = volume.talos.as_mut() else { return Phase::Maintenance };
    if let Some(staged) = install.staged.take() {
        install.config = staged;
    }
    phase_of(Some(install), image)
}

/// The phase a machine runs in with `install` on its disk.
pub fn phase_of(install: Option<&TalosInstall>, image: &Image) -> Phase {
    match install.map(|i| machine_config::load(&i.config, image.mode)) {
        Some(Ok(Some(config))) => Phase::Configured(Arc::new(config)),
        // A configuration on disk was valid when applied; if the lab can no
        // longer read it, the machine boots as if it had none.
        _ => Phase::Maintenance,
    }
}

/// The disk Talos installs to: the first disk in boot order that is a
/// volume (not a CD-ROM, not the cloud-init drive), else the first such disk.
pub fn system_disk(m: &Model, vm: &Vm) -> Option<String> {
    let mut names = drive::boot_order(&vm.config);
    names.extend(drive::boot_drive_names());
    names
        .iter()
        .filter_map(|k| vm.config.get(k))
        .map(|v| Drive::parse(v))
        .find(|d| !d.is_cdrom() && !d.is_cloudinit() && m.volumes.contains_key(&d.file))
        .map(|d| d.file)
}

/// A random version-4-shaped UUID (boot IDs, actor IDs).
pub fn random_uuid() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::getrandom(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Talos's stable hostname shape (`talos-` and two short tokens), derived from the VMID.
pub fn stable_hostname(vmid: u32) -> String {
    use sha2::Digest as _;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let h = sha2::Sha256::digest(format!("talos-lab-{vmid}").as_bytes());
    let token = |bytes: &[u8]| bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect::<String>();
    format!("talos-{}-{}", token(&h[..3]), token(&h[3..6]))
}

/// The services a node reports (`ServiceList`), with their state and health.
pub fn services(view: &NodeView, cluster_bootstrapped: bool) -> Vec<(&'static str, &'static str, Option<bool>)> {
    let control_plane = view.config().is_some_and(|c| c.machine_type.is_control_plane());
    let mut out = vec![
        ("apid", "Running", Some(true)),
        ("auditd", "Running", Some(true)),
        ("containerd", "Running", Some(true)),
        ("cri", "Running", Some(true)),
        ("dashboard", "Running", None),
    ];
    if control_plane {
        let etcd_running = view.etcd && cluster_bootstrapped;
        out.push(("etcd", if etcd_running { "Running" } else { "Preparing" }, etcd_running.then_some(true)));
    }
    // Restarting onto new images: started, its health check not passing yet.
    out.push(if view.kubelet_restarting {
        ("kubelet", "Starting", Some(false))
    } else {
        ("kubelet", "Running", Some(true))
    });
    out.push(("machined", "Running", None));
    out.push(("syslogd", "Running", None));
    if control_plane {
        out.push(("trustd", "Running", Some(true)));
    }
    out.push(("udevd", "Running", Some(true)));
    out
}
