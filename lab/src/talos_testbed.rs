//! An in-process lab for tests of Talos workflows: one node on a random
//! 127.X.Y.0/24 subnet (so parallel tests, and other labs on the machine, do
//! not share addresses), task and boot timing chosen by the test, and VMs that
//! boot a Talos disk image without going through the API. The lab's own tests
//! and the provider's use it; so can a user's tests of their own programs.
//!
//! Owns: the state directory (a temporary one, removed on drop).
//! Must not: configure Talos nodes (tests do that with the client they test).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use proxmox_talos::talos::api_client::{self, Credentials, TalosClient};
use proxmox_talos::talos::config::{self, GenerateInput, MachineType};
use proxmox_talos::talos::secrets::{self, ClientConfiguration, MachineSecrets, SystemClock, VersionContract};

use crate::in_process::{self, InProcessLab};
use crate::pve::lab_config::{LabConfig, Timing};
use crate::pve::model::{lab_mac, Vm, Volume};
use crate::pve::qemu::{guest_address, stopped};
use crate::pve::state::now_ms;

/// The Talos image a testbed VM boots (an `import` volume name, as the factory's).
pub const TALOS_IMAGE: &str = "local:import/talos-v1.12.4-nocloud-amd64.raw";

/// A running lab on its own loopback subnet.
pub struct TalosTestbed {
    pub lab: InProcessLab,
    subnet: [u8; 2],
    dir: PathBuf,
}

impl TalosTestbed {
    /// Starts a single-node lab on the current Tokio runtime. `boot_ms`: how long a
    /// (re)boot takes; `agent_ms`: how long after coming up the guest agent and
    /// Bootstrap answer.
    pub async fn start(boot_ms: u64, agent_ms: u64) -> Result<TalosTestbed, String> {
        let mut seed = [0u8; 4];
        getrandom::getrandom(&mut seed).map_err(|e| e.to_string())?;
        let subnet = [64 + seed[0] % 180, seed[1]];
        let mut config = LabConfig::single_node();
        config.bridges[0].subnet = Ipv4Addr::new(127, subnet[0], subnet[1], 0);
        config.bridges[0].gateway = Ipv4Addr::new(127, subnet[0], subnet[1], 1);
        config.timing = Timing { task_ms: 0, boot_ms, agent_ms, lock_wait_ms: 2000 };
        let dir = std::env::temp_dir().join(format!(
            "proxmox-talos-testbed-{}-{:02x}{:02x}{:02x}{:02x}",
            std::process::id(),
            seed[0],
            seed[1],
            seed[2],
            seed[3]
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let lab = in_process::start(config, &dir).await?;
        Ok(TalosTestbed { lab, subnet, dir })
    }

    /// `127.X.Y.<last>` in this lab's subnet.
    pub fn ip(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.subnet[0], self.subnet[1], last)
    }

    /// Puts in a running VM `vmid` named `name` that boots a Talos disk image; returns
    /// its DHCP address (leases start at `.100`).
    pub fn talos_vm(&self, vmid: u32, name: &str) -> Ipv4Addr {
        let volid = format!("local-zfs:vm-{vmid}-disk-0");
        let config = [
            ("name", name.to_string()),
            ("scsi0", format!("{volid},size=8G")),
            ("scsihw", "virtio-scsi-pci".into()),
            ("net0", format!("virtio={},bridge=vmbr0", lab_mac(vmid, 0))),
            ("boot", "order=scsi0".into()),
            ("agent", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        self.lab.state.write(|m| {
            let volume = Volume {
                volid: volid.clone(),
                storage: "local-zfs".into(),
                node: Some("pve".into()),
                vmid,
                size: 8 << 30,
                format: "raw".into(),
                origin: Some(TALOS_IMAGE.into()),
                talos: None,
            };
            m.volumes.insert(volid.clone(), volume);
            let vm =
                Vm { vmid, node: "pve".into(), config, running: true, started_at_ms: Some(now_ms()), ..Vm::default() };
            m.vms.insert(vmid, vm);
        });
        guest_address(&self.lab.state, vmid).expect("a testbed VM gets a DHCP lease")
    }

    /// Powers VM `vmid` off (its Talos node goes down).
    pub fn stop_vm(&self, vmid: u32) {
        self.lab.state.write(|m| stopped(m, vmid));
    }

    /// Powers VM `vmid` on (it boots what its disk holds).
    pub fn start_vm(&self, vmid: u32) {
        self.lab.state.write(|m| {
            let vm = m.vms.get_mut(&vmid).expect("a testbed VM");
            vm.running = true;
            vm.started_at_ms = Some(now_ms());
        });
    }

    /// Whether each Talos node is in maintenance mode, by VMID order.
    pub fn maintenance(&self) -> Vec<bool> {
        self.lab.talos.status().iter().map(|s| s.maintenance).collect()
    }
}

impl Drop for TalosTestbed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fresh machine secrets (version contract v1.6) and their admin client configuration.
pub fn cluster_secrets() -> Result<(MachineSecrets, ClientConfiguration), String> {
    let bundle =
        secrets::generate(VersionContract::V1_6, &SystemClock, &mut rand_core::OsRng).map_err(|e| e.to_string())?;
    let client = secrets::client_configuration(&bundle, &SystemClock).map_err(|e| e.to_string())?;
    Ok((bundle, client))
}

/// A v1.12 machine configuration of cluster `lab` with its endpoint on `vip`: the
/// static `address`/24 on eth0 and, on control planes, the VIP there too; then
/// `more_patches`.
pub fn machine_config(
    bundle: &MachineSecrets,
    kind: MachineType,
    address: Ipv4Addr,
    vip: Ipv4Addr,
    more_patches: &[&str],
) -> Result<String, String> {
    let input = GenerateInput::new("lab", &format!("https://{vip}:6443"), kind, bundle);
    let vip_patch = match kind {
        MachineType::ControlPlane => format!("\n        vip:\n          ip: {vip}"),
        MachineType::Worker => String::new(),
    };
    let mut patches = vec![format!(
        "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses:\n          - {address}/24{vip_patch}\n"
    )];
    patches.extend(more_patches.iter().map(|p| p.to_string()));
    config::render(&input, &patches).map_err(|e| e.to_string())
}

/// Connects to the Talos API at `address` until it answers `Disks` with `credentials`,
/// for at most `timeout`; the last error otherwise.
pub async fn wait_answering(
    address: Ipv4Addr,
    credentials: Credentials<'_>,
    timeout: std::time::Duration,
) -> Result<TalosClient, String> {
    let deadline = std::time::Instant::now() + timeout;
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        match api_client::connect(&address.to_string(), credentials).await {
            Ok(client) => match client.disks().await {
                Ok(_) => return Ok(client),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(format!("the Talos node at {address} did not answer within {timeout:?}: {last}"))
}
