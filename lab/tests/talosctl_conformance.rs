//! Conformance: the real `talosctl`, built from Talos's Go module, drives a
//! lab Talos node the way an operator drives a real one —
//! `apply-config --insecure` in maintenance mode, then with a talosconfig
//! (mutual TLS, `os:admin`) `version`, `bootstrap` (twice: the second is
//! Talos's AlreadyExists), `kubeconfig`, `service`, `etcd members`, `upgrade`, and
//! `etcd remove-member` / `etcd leave` with a second control plane.
//!
//! The binary: `$TALOSCTL`, else `talosctl` on PATH (`tools/test.sh` puts the
//! one `tools/install-talosctl.sh` builds there). Without it the test fails
//! with a message naming that script; it never skips. The pinned client is
//! v1.12.6, not the v1.12.4 of the lab's images: the Go module proxy does not
//! serve the Talos root module at v1.12.2–v1.12.5 (403), and v1.12.6 is the
//! same minor with the same machine API (see docs/adr/0005-talos-fidelity.md).
//!
//! Secrets and machine configuration come from the provider
//! (`talos::secrets`, `talos::config`), the talosconfig from
//! `talos::talosconfig`. Each talosctl run has a timeout and an isolated
//! HOME; a failure shows its stderr. The lab runs on its own random loopback
//! subnet.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use proxmox_talos::talos::api_client::Credentials;
use proxmox_talos::talos::config::MachineType;
use proxmox_talos::talos::talosconfig::Talosconfig;
use proxmox_talos_lab::pve::qemu::guest_address;
use proxmox_talos_lab::talos_testbed::{self, cluster_secrets, machine_config, TalosTestbed};

/// The lab image the node boots (its `Version` tag is the server's).
/// The client `tools/install-talosctl.sh` builds.
const TALOSCTL_VERSION: &str = "v1.12.6";
/// How long one talosctl command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The talosctl binary: `$TALOSCTL`, else the first `talosctl` on PATH.
fn talosctl_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TALOSCTL").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "TALOSCTL={} is not a file; build talosctl with tools/install-talosctl.sh",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("talosctl"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "talosctl not found (neither $TALOSCTL nor on PATH): build it with \
                 `PATH=\"$(tools/install-talosctl.sh | tail -1):$PATH\"` (tools/test.sh does this)"
            )
        })
}

/// Runs talosctl and the files it reads and writes, with an isolated HOME.
#[derive(Clone)]
struct Talosctl {
    binary: PathBuf,
    home: PathBuf,
    /// Arguments every run starts with (`--talosconfig F -n N -e E`).
    global: Vec<String>,
}

/// What a finished talosctl run printed.
struct Output {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Talosctl {
    /// The same binary, with `--talosconfig talosconfig -n node -e node` before every command.
    fn against(&self, talosconfig: &Path, node: &str) -> Talosctl {
        let global = ["--talosconfig", talosconfig.to_str().unwrap(), "-n", node, "-e", node];
        Talosctl { global: global.iter().map(|s| s.to_string()).collect(), ..self.clone() }
    }

    /// Runs `talosctl args…` with [`COMMAND_TIMEOUT`], off the async runtime.
    async fn run(&self, args: &[&str]) -> Output {
        let (binary, home) = (self.binary.clone(), self.home.clone());
        let args: Vec<String> = self.global.iter().cloned().chain(args.iter().map(|a| a.to_string())).collect();
        tokio::task::spawn_blocking(move || run_with_timeout(&binary, &home, &args, COMMAND_TIMEOUT))
            .await
            .expect("talosctl runner")
    }

    /// Runs a command that must succeed; returns its stdout (also printed,
    /// for the record of a failing test).
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        eprintln!("$ talosctl {}\n{}", args.join(" "), out.stdout);
        assert!(
            out.success,
            "`talosctl {} {}` failed\n--- stderr ---\n{}\n--- stdout ---\n{}",
            self.global.join(" "),
            args.join(" "),
            out.stderr,
            out.stdout
        );
        out.stdout
    }
}

/// Runs `binary args…` with HOME = `home`, killing its process group after `timeout` (the
/// run then fails, with what it printed).
fn run_with_timeout(binary: &Path, home: &Path, args: &[String], timeout: Duration) -> Output {
    let mut command = Command::new(binary);
    command.args(args).env("HOME", home).env_remove("TALOSCONFIG");
    match proxmox_talos_lab::deadline::output_within(&mut command, timeout) {
        Ok(out) => Output {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Err(e) if e.spawn_error.is_some() => panic!("cannot run {}: {e}", binary.display()),
        Err(e) => Output { success: false, stdout: String::new(), stderr: e.to_string() },
    }
}

/// Waits until the node at `address` answers (maintenance: insecure; else mutual TLS).
async fn wait_answering(lab: &TalosTestbed, address: Ipv4Addr, credentials: Credentials<'_>) {
    if let Err(e) = talos_testbed::wait_answering(address, credentials, Duration::from_secs(20)).await {
        panic!("{e}; {:?}", lab.lab.talos.status());
    }
}

fn pem_of(b64: &str) -> String {
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64.trim()).unwrap()).unwrap()
}

/// The rows of a talosctl table (header first), split on runs of 2+ spaces.
fn table(stdout: &str) -> Vec<Vec<String>> {
    let splitter = regex::Regex::new(r"\s{2,}").unwrap();
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| splitter.split(l.trim()).map(str::to_string).collect())
        .collect()
}

/// `talosctl version` fields (`Tag:`, `NODE:`, …) of the block after `section`.
fn version_field<'a>(stdout: &'a str, section: &str, field: &str) -> Option<&'a str> {
    stdout
        .lines()
        .skip_while(|l| l.trim() != section)
        .skip(1)
        .take_while(|l| l.starts_with('\t') || l.starts_with(' '))
        .find_map(|l| l.trim().strip_prefix(field).map(str::trim))
}

#[tokio::test(flavor = "multi_thread")]
async fn real_talosctl_drives_a_lab_node_from_maintenance_to_a_bootstrapped_control_plane() {
    let started = Instant::now();
    let home = tempfile::tempdir().unwrap();
    let talosctl = Talosctl { binary: talosctl_binary(), home: home.path().to_path_buf(), global: Vec::new() };
    let client_version = talosctl.ok(&["version", "--client"]).await;
    assert_eq!(
        version_field(&client_version, "Client:", "Tag:"),
        Some(TALOSCTL_VERSION),
        "expected the talosctl tools/install-talosctl.sh builds:\n{client_version}"
    );

    let lab = TalosTestbed::start(200, 0).await.unwrap();
    let (bundle, client) = cluster_secrets().unwrap();
    let (node_ip, vip) = (lab.ip(10), lab.ip(5));
    let node = node_ip.to_string();

    // Maintenance mode: apply the configuration without credentials.
    lab.talos_vm(100, "cp-1");
    let dhcp = guest_address(&lab.lab.state, 100).expect("a DHCP lease").to_string();
    wait_answering(&lab, dhcp.parse().unwrap(), Credentials::Insecure).await;
    let config_path = home.path().join("controlplane.yaml");
    std::fs::write(&config_path, machine_config(&bundle, MachineType::ControlPlane, node_ip, vip, &[]).unwrap())
        .unwrap();
    let config_arg = config_path.to_str().unwrap();
    talosctl.ok(&["apply-config", "--insecure", "-n", &dhcp, "-e", &dhcp, "--file", config_arg]).await;

    // The node reboots onto its static address with apid's mutual TLS.
    wait_answering(&lab, node_ip, Credentials::Mutual(&client)).await;
    let status = lab.lab.talos.status();
    assert!(!status[0].maintenance && status[0].address == Some(node_ip), "{status:?}");
    let hostname = status[0].hostname.clone();

    let talosconfig = Talosconfig {
        context: "lab",
        client: &client,
        endpoints: std::slice::from_ref(&node),
        nodes: std::slice::from_ref(&node),
    }
    .render()
    .unwrap();
    let talosconfig_path = home.path().join("talosconfig");
    std::fs::write(&talosconfig_path, talosconfig).unwrap();
    let insecure = talosctl.clone();
    let talosctl = talosctl.against(&talosconfig_path, &node);

    // version: the client's and the node's (through apid, with its name).
    let version = talosctl.ok(&["version"]).await;
    assert_eq!(version_field(&version, "Client:", "Tag:"), Some(TALOSCTL_VERSION), "{version}");
    assert_eq!(version_field(&version, "Server:", "NODE:"), Some(node.as_str()), "{version}");
    assert_eq!(version_field(&version, "Server:", "Tag:"), Some("v1.12.4"), "{version}");
    assert_eq!(version_field(&version, "Server:", "OS/Arch:"), Some("linux/amd64"), "{version}");
    assert_eq!(version_field(&version, "Server:", "Enabled:"), Some("RBAC"), "{version}");

    // bootstrap: once, then Talos's AlreadyExists.
    talosctl.ok(&["bootstrap"]).await;
    let again = talosctl.run(&["bootstrap"]).await;
    assert!(!again.success, "a second bootstrap succeeded:\n{}", again.stdout);
    // Through apid one to many (`-n`), the node's failure arrives in band, named by node.
    assert!(
        again
            .stderr
            .contains(&format!("{node}: rpc error: code = AlreadyExists desc = etcd data directory is not empty")),
        "{}",
        again.stderr
    );

    // kubeconfig: the admin kubeconfig for the cluster endpoint, trusting the Kubernetes CA.
    let kubeconfig_path = home.path().join("kubeconfig");
    talosctl.ok(&["kubeconfig", kubeconfig_path.to_str().unwrap(), "--force"]).await;
    let kubeconfig: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(&kubeconfig_path).unwrap()).unwrap();
    let cluster = &kubeconfig["clusters"][0]["cluster"];
    assert_eq!(cluster["server"].as_str(), Some(format!("https://{vip}:6443").as_str()), "{kubeconfig:?}");
    assert_eq!(pem_of(cluster["certificate-authority-data"].as_str().unwrap()), pem_of(&bundle.certs.k8s.cert));
    assert_eq!(kubeconfig["current-context"].as_str(), Some("admin@lab"));
    let user = &kubeconfig["users"][0]["user"];
    assert!(pem_of(user["client-certificate-data"].as_str().unwrap()).starts_with("-----BEGIN CERTIFICATE-----"));

    // service: the node's services, etcd running and healthy after bootstrap.
    let services = table(&talosctl.ok(&["service"]).await);
    assert_eq!(services[0][..5], ["NODE", "SERVICE", "STATE", "HEALTH", "LAST CHANGE"], "{services:?}");
    for id in ["apid", "etcd", "kubelet", "machined", "trustd"] {
        let row = services.iter().find(|r| r.get(1).map(String::as_str) == Some(id));
        let row = row.unwrap_or_else(|| panic!("no {id} in {services:?}"));
        assert_eq!((row[0].as_str(), row[2].as_str()), (node.as_str(), "Running"), "{row:?}");
    }
    let etcd = services.iter().find(|r| r[1] == "etcd").unwrap();
    assert_eq!((etcd[3].as_str(), etcd[5].as_str()), ("OK", "Health check successful"), "{etcd:?}");

    // etcd members: this node, alone, with its peer and client URLs.
    let members = table(&talosctl.ok(&["etcd", "members"]).await);
    assert_eq!(members[0], ["NODE", "ID", "HOSTNAME", "PEER URLS", "CLIENT URLS", "LEARNER"], "{members:?}");
    assert_eq!(members.len(), 2, "{members:?}");
    let member = &members[1];
    assert_eq!(member[0], node);
    assert!(member[1].len() == 16 && member[1].chars().all(|c| c.is_ascii_hexdigit()), "{member:?}");
    assert_eq!(member[2], hostname);
    assert_eq!(member[3], format!("https://{node}:2380"));
    assert_eq!(member[4], format!("https://{node}:2379"));
    assert_eq!(member[5], "false");

    // upgrade: an installer image that cannot be pulled is refused before anything happens; a
    // known one is acknowledged, the node reboots and comes back running its version.
    let reboots_before = lab.lab.talos.reboots().len();
    let bad = talosctl.run(&["upgrade", "--image", "ghcr.io/siderolabs/installer:v1.12.99", "--wait=false"]).await;
    assert!(!bad.success, "an unknown installer image was accepted:\n{}", bad.stdout);
    assert!(bad.stderr.contains("error validating installer image"), "{}", bad.stderr);
    assert_eq!(lab.lab.talos.reboots().len(), reboots_before, "a refused upgrade reboots nothing");
    let acked = talosctl.ok(&["upgrade", "--image", "ghcr.io/siderolabs/installer:v1.12.5", "--wait=false"]).await;
    assert!(acked.contains("Upgrade request received"), "{acked}");
    let upgraded = Instant::now();
    loop {
        let version = talosctl.run(&["version"]).await;
        if version.success && version_field(&version.stdout, "Server:", "Tag:") == Some("v1.12.5") {
            break;
        }
        assert!(
            upgraded.elapsed() < Duration::from_secs(60),
            "still not v1.12.5:\n{}{}",
            version.stdout,
            version.stderr
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(lab.lab.talos.reboots().last().map(|r| r.cause), Some("Upgrade"));

    // etcd: a second control plane joins; `etcd remove-member` with the ID `etcd members`
    // prints removes it (a second removal is etcd's "member not found"), and the last member
    // cannot leave (`etcd leave`: etcd's strict reconfiguration check).
    lab.talos_vm(101, "cp-2");
    let dhcp2 = guest_address(&lab.lab.state, 101).expect("a DHCP lease").to_string();
    wait_answering(&lab, dhcp2.parse().unwrap(), Credentials::Insecure).await;
    let config2 = home.path().join("controlplane-2.yaml");
    std::fs::write(&config2, machine_config(&bundle, MachineType::ControlPlane, lab.ip(11), vip, &[]).unwrap())
        .unwrap();
    insecure.ok(&["apply-config", "--insecure", "-n", &dhcp2, "-e", &dhcp2, "--file", config2.to_str().unwrap()]).await;
    let joined = Instant::now();
    let second = loop {
        let members = table(&talosctl.run(&["etcd", "members"]).await.stdout);
        if let Some(m) = members.iter().skip(1).find(|m| m.get(3) == Some(&format!("https://{}:2380", lab.ip(11)))) {
            break m.clone();
        }
        assert!(joined.elapsed() < Duration::from_secs(60), "the second control plane never joined: {members:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    talosctl.ok(&["etcd", "remove-member", &second[1]]).await;
    let members = table(&talosctl.ok(&["etcd", "members"]).await);
    assert_eq!(members.len(), 2, "only the first member is left: {members:?}");
    let again = talosctl.run(&["etcd", "remove-member", &second[1]]).await;
    assert!(!again.success && again.stderr.contains("member not found"), "{}", again.stderr);
    let leave = talosctl.run(&["etcd", "leave"]).await;
    assert!(!leave.success, "the last etcd member left:\n{}", leave.stdout);
    assert!(leave.stderr.contains("not enough started members"), "{}", leave.stderr);
    assert_eq!(table(&talosctl.ok(&["etcd", "members"]).await).len(), 2, "the last member is still there");

    eprintln!("talosctl conformance: done in {:?}", started.elapsed());
}
