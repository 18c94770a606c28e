//! Lab Talos nodes for provider tests: a lab on its own random loopback
//! subnet with fast timing, VMs booting a Talos image, and nodes taken from
//! maintenance to configured (and bootstrapped) directly with the provider's
//! Talos API client, so tests of later steps need not go through the
//! resources that do that.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use proxmox_talos::talos::api::machine::apply_configuration_request::Mode;
use proxmox_talos::talos::api_client::{self, Credentials, TalosClient};
use proxmox_talos::talos::config::MachineType;
use proxmox_talos::talos::secrets::{ClientConfiguration, MachineSecrets};
use proxmox_talos_lab::in_process::InProcessLab;
use proxmox_talos_lab::pve::qemu::guest_address;
#[allow(unused_imports)]
pub use proxmox_talos_lab::talos_testbed::cluster_secrets;
use proxmox_talos_lab::talos_testbed::{machine_config, wait_answering, TalosTestbed};

/// The patch that leaves the cluster without a CNI (as the seed's programs do).
const CNI_NONE: &str = "cluster:\n  network:\n    cni:\n      name: none\n";
use tonic::Code;

/// A lab on a random 127.X.Y.0/24 subnet (started on the current runtime).
pub struct TalosLab {
    pub bed: TalosTestbed,
    pub lab: InProcessLab,
}

impl TalosLab {
    /// `boot_ms`: how long a (re)boot takes; `agent_ms`: how long after coming up Bootstrap is refused.
    pub async fn start(boot_ms: u64, agent_ms: u64) -> TalosLab {
        let bed = TalosTestbed::start(boot_ms, agent_ms).await.unwrap();
        TalosLab { lab: bed.lab.clone(), bed }
    }

    /// `127.X.Y.<last>` in this lab's subnet.
    pub fn ip(&self, last: u8) -> Ipv4Addr {
        self.bed.ip(last)
    }

    /// A running VM booting a Talos disk image (its NIC leases `.100` upwards).
    pub fn talos_vm(&self, vmid: u32, name: &str) {
        self.bed.talos_vm(vmid, name);
    }

    /// VM `vmid` booted from a Talos image, configured as `kind` on `.last` (VIP `.vip` on
    /// control planes) from its maintenance address; returns a client once it answers with
    /// mutual TLS. A worker answers only once a control plane of its cluster is up.
    pub async fn configured_node(
        &self,
        vmid: u32,
        kind: MachineType,
        last: u8,
        vip: u8,
        bundle: &MachineSecrets,
        client: &ClientConfiguration,
    ) -> TalosClient {
        self.talos_vm(vmid, &format!("node-{vmid}"));
        let deadline = Instant::now() + Duration::from_secs(20);
        let dhcp = loop {
            if let Some(a) = guest_address(&self.lab.state, vmid) {
                break a;
            }
            assert!(Instant::now() < deadline, "VM {vmid} got no address");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let maintenance = wait_for(dhcp, Credentials::Insecure, Duration::from_secs(20)).await;
        let config = machine_config(bundle, kind, self.ip(last), self.ip(vip), &[CNI_NONE]).unwrap();
        maintenance.apply_configuration(&config, Mode::Auto, false).await.unwrap();
        wait_for(self.ip(last), Credentials::Mutual(client), Duration::from_secs(20)).await
    }
}

/// A client configuration with `roles`, from the bundle's OS CA.
pub fn client_with_roles(bundle: &MachineSecrets, roles: &[&str]) -> ClientConfiguration {
    let pem_of = |b64: &str| String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap();
    let ca =
        proxmox_talos_lab::talos::pki::Ca::load(&pem_of(&bundle.certs.os.cert), &pem_of(&bundle.certs.os.key)).unwrap();
    let (cert, key) = proxmox_talos_lab::talos::pki::client_certificate(&ca, roles).unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    ClientConfiguration {
        ca_certificate: bundle.certs.os.cert.clone(),
        client_certificate: b64(&cert),
        client_key: b64(&key),
    }
}

/// Connects until the node answers `Disks`, or panics after `timeout`.
pub async fn wait_for(address: Ipv4Addr, credentials: Credentials<'_>, timeout: Duration) -> TalosClient {
    wait_answering(address, credentials, timeout).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Bootstraps etcd on `node`, retrying while it is not ready yet.
pub async fn bootstrap(node: &TalosClient) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match node.bootstrap().await {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline && e.code() == Some(Code::FailedPrecondition) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("bootstrap: {e}"),
        }
    }
}

/// `talosctl --talosconfig FILE version` when `talosctl` is on PATH: `None` when it is not.
fn talosctl_version(talosconfig: &str, dir: &std::path::Path) -> Option<std::process::Output> {
    let file = dir.join("talosconfig");
    std::fs::write(&file, talosconfig).unwrap();
    let mut command = std::process::Command::new("talosctl");
    command.arg("--talosconfig").arg(&file).arg("version");
    match proxmox_talos_lab::deadline::output_within(&mut command, Duration::from_secs(60)) {
        Err(e) if e.spawn_error.as_ref().is_some_and(|s| s.kind() == std::io::ErrorKind::NotFound) => None,
        other => Some(other.unwrap_or_else(|e| panic!("{e}"))),
    }
}

/// Demands that `talosctl version` with `talosconfig` reaches a node running `tag`, when
/// `talosctl` is on PATH (`tools/test.sh` installs it).
pub fn assert_talosctl_version(talosconfig: &str, tag: &str) {
    let scratch = tempfile::tempdir().unwrap();
    if let Some(run) = talosctl_version(talosconfig, scratch.path()) {
        let text = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
        assert!(run.status.success() && text.contains("Server:") && text.contains(tag), "talosctl version: {text}");
    }
}

/// Runs `f` on the lab's runtime (the Talos client needs a Tokio runtime).
pub fn on<T>(lab: &super::lab::CliLab, f: impl std::future::Future<Output = T>) -> T {
    lab.runtime.block_on(f)
}

/// The machine configuration the node at `address` runs (`/system/state/config.yaml`).
pub async fn running_config(address: Ipv4Addr, client: &ClientConfiguration) -> String {
    let c = api_client::connect(&address.to_string(), Credentials::Mutual(client)).await.unwrap();
    String::from_utf8(c.read_file(proxmox_talos::talos::api_client::CONFIG_PATH).await.unwrap()).unwrap()
}

/// Polls `f` every 100 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "{what} within {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
