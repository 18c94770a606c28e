//! The Go, Python and TypeScript programs of `sdk-examples/` end to end through the real
//! `pulumi` CLI and the real Pulumi SDKs, against the lab:
//! - `python-rke2-clone`: six full clones of template 90001 with static addresses;
//! - `ts-ubuntu-nodes`: the Ubuntu cloud image downloaded, a cloud-init snippet per node
//!   over SFTP (a real sshd chrooted to the lab node), seven VMs importing the image, one
//!   with the GPU passed through as root@pam;
//! - `go-talos-cluster`: two Image Factory schematics and their images (the lab factory),
//!   seven VMs booting Talos, the configurations applied through the maintenance addresses,
//!   etcd bootstrapped, the cluster healthy; the kubeconfig and talosconfig outputs work.
//!
//! The go, python and nodejs language hosts cannot be built here, so each program runs through
//! its language's Automation API in inline mode (`tools/run-program-go`,
//! `tools/run-program.py`, `tools/run-program.js`: the program is the inline program, the CLI
//! runs with `--client`; docs/adr/0007-sdk-programs-via-automation.md). Per program: `up` on a
//! fresh lab, the lab's VMs checked, `preview` and `refresh` with no changes, no credential in
//! plain text in `pulumi stack export`, `destroy`, an empty lab inventory.
//!
//! Addresses and credentials are stack config (`proxmox-talos:*` and the program's own
//! keys); the caller's `PROXMOX_VE_*` variables are removed. Needs Go, Node.js, Python 3 and
//! the toolchain `tools/sdk-programs-env.sh` prepares (run first, once per test binary), and
//! for the TypeScript program Debian's openssh-server run as root.

mod support;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use proxmox_talos::talos::api_client::{self, Credentials};
use proxmox_talos::talos::secrets::ClientConfiguration;
use proxmox_talos_lab::pve::lab_config::{LabConfig, Timing};
use proxmox_talos_lab::pve::qemu::agent;
use proxmox_talos_lab::ssh;
use sha2::{Digest, Sha256};
use support::lab::{CliLab, TALOS_TIMING};
use support::pulumi::Stack;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What `tools/sdk-programs-env.sh` prepared: its `export K=V` lines.
fn programs_env() -> &'static HashMap<String, String> {
    static ENV: OnceLock<HashMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        // Cached by tools/test.sh before the tests; a cold run generates and compiles three SDKs.
        let out = support::run(&mut Command::new(Path::new(ROOT).join("tools/sdk-programs-env.sh")), 1800);
        assert!(out.status.success(), "tools/sdk-programs-env.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect()
    })
}

/// The environment every pulumi and runner process gets: the pinned toolchain first on PATH.
fn base_env() -> Vec<(String, String)> {
    let env = programs_env();
    let path = format!("{}:{}", env["PROXMOX_TALOS_PULUMI_BIN"], std::env::var("PATH").unwrap_or_default());
    vec![("PATH".into(), path), ("PROXMOX_TALOS_NODE_PROGRAMS".into(), env["PROXMOX_TALOS_NODE_PROGRAMS"].clone())]
}

#[derive(Clone, Copy)]
enum Runner {
    Go,
    Python,
    Node,
}

/// Runs `action` of the stack's program through its Automation API runner; demands success.
fn run(stack: &Stack, runner: Runner, action: &str, expect_no_changes: bool) -> String {
    let mut command = match runner {
        Runner::Go => stack.tool(&programs_env()["PROXMOX_TALOS_GO_RUNNER"]),
        Runner::Python => {
            let mut c = stack.tool(&programs_env()["PROXMOX_TALOS_PYTHON"]);
            c.arg(Path::new(ROOT).join("tools/run-program.py"));
            c
        }
        Runner::Node => {
            let mut c = stack.tool("node");
            c.arg(Path::new(ROOT).join("tools/run-program.js"));
            c
        }
    };
    if expect_no_changes {
        command.arg("--expect-no-changes");
    }
    command.arg(".").arg(action);
    let out = support::run(&mut command, 900);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{action} through the Automation API failed:\n{text}");
    text
}

fn lab(config: LabConfig, state_dir: tempfile::TempDir) -> CliLab {
    let mut config = config;
    config.timing = Timing { task_ms: 20, boot_ms: 200, agent_ms: 200, lock_wait_ms: 3000 };
    CliLab::start_in(config, state_dir)
}

/// `pulumi stack export` without `--show-secrets` holds none of `secrets`.
fn assert_no_plain_secrets(stack: &Stack, secrets: &[&str]) {
    let export = stack.ok(&["stack", "export"]);
    assert!(export.contains("\"resources\""), "{export}");
    for secret in secrets {
        assert!(!secret.is_empty() && !export.contains(secret), "the state holds {secret:?} in plain text");
    }
}

/// `pulumi config set --secret [--path] KEY` with the value on stdin (it may start with `-`).
fn set_secret(stack: &Stack, key: &str, value: &str, path: bool) {
    let mut args = vec!["config", "set", "--secret", key];
    if path {
        args.push("--path");
    }
    let out = support::run_fed(&mut stack.command(&args), value.as_bytes(), 120);
    assert!(out.status.success(), "setting {key}: {}", String::from_utf8_lossy(&out.stderr));
}

const OPERATOR_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq7qAq6m1gSt1dTQhvYzM6OqRUp1vA7x0xIfv2N0kZf ops@example";

#[test]
fn python_rke2_clone_program_lifecycle() {
    let lab = lab(LabConfig::single_node(), tempfile::tempdir().unwrap());
    let stack = Stack::from_dir("python-rke2-clone", base_env());
    stack.set("proxmox-talos:endpoint", &lab.lab.endpoint);
    set_secret(&stack, "proxmox-talos:apiToken", &lab.lab.api_token(), false);
    stack.set("proxmox-talos:caCertificate", &lab.lab.ca_path.display().to_string());
    stack.set("gateway", "127.42.0.1");
    stack.ok(&["config", "set", "--path", "dnsServers[0]", "127.0.0.53"]);
    stack.set("dnsDomain", "lab.internal");
    for i in 0..3 {
        stack.ok(&["config", "set", "--path", &format!("masterAddresses[{i}]"), &format!("127.42.0.{}/24", 101 + i)]);
        stack.ok(&["config", "set", "--path", &format!("workerAddresses[{i}]"), &format!("127.42.0.{}/24", 111 + i)]);
    }
    stack.ok(&["config", "set", "--path", "sshPublicKeys[0]", OPERATOR_KEY]);

    let up = run(&stack, Runner::Python, "up", false);
    assert!(up.contains("up succeeded") && up.contains("'create': 7"), "{up}");

    for (vmid, name, cores, memory, disk, address) in [
        (1001, "rke2-master-1", "2", "4096", "50G", "127.42.0.101"),
        (1002, "rke2-master-2", "2", "4096", "50G", "127.42.0.102"),
        (1003, "rke2-master-3", "2", "4096", "50G", "127.42.0.103"),
        (1011, "rke2-worker-1", "3", "12288", "100G", "127.42.0.111"),
        (1012, "rke2-worker-2", "3", "12288", "100G", "127.42.0.112"),
        (1013, "rke2-worker-3", "3", "12288", "100G", "127.42.0.113"),
    ] {
        let c = lab.vm_config(vmid);
        let role = if vmid < 1010 { "master" } else { "worker" };
        assert_eq!(c["name"], name, "{c:?}");
        assert_eq!((c["cores"].as_str(), c["memory"].as_str(), c["cpu"].as_str()), (cores, memory, "host"), "{c:?}");
        assert_eq!((c["scsihw"].as_str(), c["onboot"].as_str()), ("virtio-scsi-pci", "1"), "{c:?}");
        // PVE keeps tags sorted.
        let tags = if role == "master" { "master;rke2" } else { "rke2;worker" };
        assert_eq!(c["tags"], tags, "{c:?}");
        // A full clone: its own disk on local-zfs, grown to the size asked, with an iothread.
        let scsi0 = &c["scsi0"];
        assert!(scsi0.starts_with(&format!("local-zfs:vm-{vmid}-disk-")), "{c:?}");
        assert!(scsi0.contains(&format!("size={disk}")) && scsi0.contains("iothread=1"), "{c:?}");
        assert_eq!(c["ipconfig0"], format!("ip={address}/24,gw=127.42.0.1"), "{c:?}");
        assert_eq!((c["nameserver"].as_str(), c["searchdomain"].as_str()), ("127.0.0.53", "lab.internal"), "{c:?}");
        assert_eq!(c["ciuser"], "rke2", "{c:?}");
        assert!(c["sshkeys"].contains("AAAAC3NzaC1lZDI1NTE5AAAAIGq7qAq6m1gSt1dTQhvYzM6OqRUp1vA7x0xIfv2N0kZf"), "{c:?}");
        let running = lab.lab.state.read(|m| m.vms[&vmid].running);
        assert!(running, "VM {vmid} is not running");
    }
    let outputs = stack.outputs();
    assert_eq!(outputs["masterIps"]["rke2-master-2"], "127.42.0.102", "{outputs}");
    assert_eq!(outputs["workerIps"]["rke2-worker-3"], "127.42.0.113", "{outputs}");
    assert_eq!(outputs["workerVmIds"], serde_json::json!([1011, 1012, 1013]), "{outputs}");

    let preview = run(&stack, Runner::Python, "preview", true);
    assert!(preview.contains("'same': 7"), "{preview}");
    let refresh = run(&stack, Runner::Python, "refresh", true);
    assert!(refresh.contains("'same': 7"), "{refresh}");
    assert_no_plain_secrets(&stack, &[&lab.lab.credentials.token_secret]);

    let destroy = run(&stack, Runner::Python, "destroy", false);
    assert!(destroy.contains("'delete': 7"), "{destroy}");
    lab.assert_empty();
}

/// The first bytes of a qcow2 image of `virtual_size` bytes (what the lab reads the size from).
fn qcow2_image(virtual_size: u64) -> Vec<u8> {
    let mut image = vec![0u8; 1 << 20];
    image[..4].copy_from_slice(b"QFI\xfb");
    image[4..8].copy_from_slice(&3u32.to_be_bytes());
    image[24..32].copy_from_slice(&virtual_size.to_be_bytes());
    image
}

/// VM `vmid` has the seed design's shape: `name`, `cores`, `memory`, l26, a `disk`-sized scsi0
/// on local-zfs, a virtio NIC on vmbr0. Returns its configuration.
fn assert_seed_vm(
    lab: &CliLab,
    vmid: u32,
    name: &str,
    cores: &str,
    memory: &str,
    disk: &str,
) -> std::collections::BTreeMap<String, String> {
    let c = lab.vm_config(vmid);
    assert_eq!(c["name"], name, "{c:?}");
    assert_eq!((c["cores"].as_str(), c["memory"].as_str(), c["ostype"].as_str()), (cores, memory, "l26"), "{c:?}");
    let scsi0 = &c["scsi0"];
    assert!(scsi0.starts_with(&format!("local-zfs:vm-{vmid}-disk-")) && scsi0.contains(&format!("size={disk}")));
    assert!(c["net0"].starts_with("virtio=") && c["net0"].contains("bridge=vmbr0"), "{c:?}");
    c
}

#[test]
fn ts_ubuntu_nodes_program_lifecycle() {
    support::require_sshd();
    let root = support::chroot_capable_dir("sdk-programs-");
    let state = tempfile::Builder::new().prefix("lab-").tempdir_in(root.path()).unwrap();
    let state_dir = state.path().to_path_buf();
    let lab = lab(LabConfig::single_node(), state);
    let sshd = ssh::start_sshd(&state_dir, "pve", &lab.lab.state.node_root("pve"), "127.0.0.1:0".parse().unwrap())
        .unwrap_or_else(|e| panic!("starting sshd for node pve: {e}"));
    let keys = root.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (private_key, public_key) = support::ssh_key_pair(&keys, "provider");
    sshd.authorize(&public_key).unwrap();
    let image = qcow2_image(3584 << 20);
    let checksum: String = Sha256::digest(&image).iter().map(|b| format!("{b:02x}")).collect();
    let base = lab.serve_files(HashMap::from([("noble-server-cloudimg-amd64.img".to_string(), image)]));

    // The provider reads ~/.ssh/known_hosts: this test's own (empty).
    let home = root.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut env = base_env();
    env.push(("HOME".to_string(), home.display().to_string()));
    let stack = Stack::from_dir("ts-ubuntu-nodes", env);
    // Raw PCI passthrough (k8s-worker4's GPU) needs root@pam with a password.
    stack.set("proxmox-talos:endpoint", &lab.lab.endpoint);
    stack.set("proxmox-talos:username", "root@pam");
    set_secret(&stack, "proxmox-talos:password", &lab.lab.credentials.password, false);
    stack.set("proxmox-talos:caCertificate", &lab.lab.ca_path.display().to_string());
    stack.ok(&["config", "set", "--path", "proxmox-talos:ssh.username", "root"]);
    set_secret(&stack, "proxmox-talos:ssh.privateKey", &private_key, true);
    stack.ok(&["config", "set", "--path", "proxmox-talos:ssh.port", &sshd.port().to_string()]);
    stack.set("imageUrl", &format!("{base}/noble-server-cloudimg-amd64.img"));
    stack.set("imageChecksum", &checksum);
    stack.ok(&["config", "set", "--path", "sshPublicKeys[0]", OPERATOR_KEY]);

    let up = run(&stack, Runner::Node, "up", false);
    assert!(up.contains("up succeeded") && up.contains("\"create\":16"), "{up}");

    let snippets = lab.lab.state.dir_storage_path("pve", "local").join("snippets");
    let machines = [
        (1101, "k8s-controller1", "2", "4096", "30G"),
        (1102, "k8s-controller2", "2", "4096", "30G"),
        (1103, "k8s-controller3", "2", "4096", "30G"),
        (1201, "k8s-worker1", "4", "8192", "125G"),
        (1202, "k8s-worker2", "4", "8192", "125G"),
        (1203, "k8s-worker3", "4", "8192", "125G"),
        (1204, "k8s-worker4", "4", "8192", "125G"),
    ];
    for (vmid, name, cores, memory, disk) in machines {
        let c = assert_seed_vm(&lab, vmid, name, cores, memory, disk);
        assert_eq!(c["cicustom"], format!("user=local:snippets/{name}-user-data.yaml"), "{c:?}");
        assert_eq!(c["ipconfig0"], "ip=dhcp", "{c:?}");
        let user_data = std::fs::read_to_string(snippets.join(format!("{name}-user-data.yaml"))).unwrap();
        assert!(user_data.starts_with("#cloud-config\n") && user_data.contains(&format!("hostname: {name}\n")));
        assert!(user_data.contains(OPERATOR_KEY), "{user_data}");
        let gpu = c.get("hostpci0").map(String::as_str);
        if vmid == 1204 {
            assert_eq!((gpu, c["machine"].as_str()), (Some("host=0000:28:00.0,pcie=1"), "q35"), "{c:?}");
        } else {
            assert_eq!(gpu, None, "{c:?}");
        }
    }
    let outputs = stack.outputs();
    assert_eq!(outputs["imageVolume"], "local:import/noble-server-cloudimg-amd64.qcow2", "{outputs}");
    let mut ips: Vec<String> = ["controllerIps", "workerIps"]
        .iter()
        .flat_map(|k| outputs[k].as_object().unwrap().values().map(|v| v.as_str().unwrap().to_string()))
        .collect();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 7, "{outputs}");
    assert!(ips.iter().all(|ip| ip.starts_with("127.42.0.")), "{outputs}");

    let preview = run(&stack, Runner::Node, "preview", true);
    assert!(preview.contains("\"same\":16"), "{preview}");
    let refresh = run(&stack, Runner::Node, "refresh", true);
    assert!(refresh.contains("\"same\":16"), "{refresh}");
    let key_body = private_key.lines().nth(1).unwrap();
    assert_no_plain_secrets(
        &stack,
        &[&lab.lab.credentials.password, key_body, "PRIVATE KEY", "hostname: k8s-controller1"],
    );

    let destroy = run(&stack, Runner::Node, "destroy", false);
    assert!(destroy.contains("\"delete\":16"), "{destroy}");
    lab.assert_empty();
    drop(sshd);
}

/// Runs `sdk-examples/python-automation/drive.py` on the project in `stack.dir`: provider
/// settings from a lab.env file of `vars` (written like proxmox-talos-lab's), `--root` when
/// the project's directory is to be used as is, program config from `sets`. Demands success
/// and the four phases in order (up, preview, refresh, destroy); returns the output.
fn drive(stack: &Stack, vars: &[(&str, String)], root: bool, sets: &[String]) -> String {
    let env_file = stack.dir.parent().unwrap().join("lab.env");
    let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let text: String = vars.iter().map(|(k, v)| format!("export {k}={}\n", q(v))).collect();
    std::fs::write(&env_file, format!("# written like proxmox-talos-lab's lab.env\n{text}")).unwrap();
    let mut command = stack.tool(&programs_env()["PROXMOX_TALOS_PYTHON"]);
    command.arg(Path::new(ROOT).join("sdk-examples/python-automation/drive.py"));
    command.arg("--lab-env").arg(&env_file);
    if root {
        command.arg("--root");
    }
    for set in sets {
        command.args(["--set", set]);
    }
    command.arg(".");
    let out = support::run(&mut command, 1200);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "drive.py failed:\n{text}");
    println!("{text}"); // shown with --nocapture
                        // Each phase ran and succeeded, in order.
    let phases: Vec<&str> = text.lines().filter_map(|l| l.split("== ").nth(1)).collect();
    assert_eq!(phases, ["up", "up ok", "preview", "preview ok", "refresh", "refresh ok", "destroy", "destroy ok"]);
    text
}

/// The automation example (`sdk-examples/python-automation/drive.py`, issue 7's program 5 for
/// the Python program we have): provider settings from a lab.env file, program config from
/// `--set`, then up, preview, refresh and destroy in one Automation API process, with the
/// engine's events shown as progress.
#[test]
fn automation_driver_streams_progress_through_a_program_lifecycle() {
    let lab = lab(LabConfig::single_node(), tempfile::tempdir().unwrap());
    let stack = Stack::from_dir("python-rke2-clone", base_env());
    let vars = [
        ("PROXMOX_VE_ENDPOINT", lab.lab.endpoint.clone()),
        ("PROXMOX_VE_API_TOKEN", lab.lab.api_token()),
        ("PROXMOX_VE_CA_CERT", lab.lab.ca_path.display().to_string()),
    ];
    let mut sets = vec!["gateway=127.42.0.1".to_string(), "dnsServers[0]=127.0.0.53".to_string()];
    for i in 0..3 {
        sets.push(format!("masterAddresses[{i}]=127.42.0.{}/24", 121 + i));
        sets.push(format!("workerAddresses[{i}]=127.42.0.{}/24", 131 + i));
    }
    sets.push(format!("sshPublicKeys[0]={OPERATOR_KEY}"));
    let text = drive(&stack, &vars, false, &sets);

    // Steps as they start and end, the provider's status lines, outputs and summaries.
    for expected in [
        "create   vm:VirtualMachine rke2-master-1",
        "done     vm:VirtualMachine rke2-master-1 (create, ",
        "status   rke2-worker-3: vm 1013: ",
        "output   masterIps = {'rke2-master-1': '127.42.0.121'",
        "summary  create 7 in ",
        "summary  same 7 in ",
        "delete   vm:VirtualMachine rke2-worker-2",
        "summary  delete 7 in ",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    // The token went to the stack config as a secret.
    let config = std::fs::read_to_string(stack.dir.join("Pulumi.dev.yaml")).unwrap();
    assert!(config.contains("proxmox-talos:apiToken:\n    secure: "), "{config}");
    assert!(!config.contains(&lab.lab.credentials.token_secret), "{config}");
    lab.assert_empty();
}

/// The automation example driving talos-cluster (its YAML form, which the CLI runs with the
/// YAML host): root@pam and the factory from a lab.env, addresses from `--set`; up, preview,
/// refresh and destroy with progress; the lab is empty afterwards.
#[test]
fn automation_driver_runs_the_talos_cluster_lifecycle() {
    let (lab, ip, factory_url) = talos_lab();
    let stack = Stack::from_dir("yaml-talos-cluster", base_env());
    let vars = [
        ("PROXMOX_VE_ENDPOINT", lab.lab.endpoint.clone()),
        ("PROXMOX_VE_USERNAME", "root@pam".to_string()),
        ("PROXMOX_VE_PASSWORD", lab.lab.credentials.password.clone()),
        ("PROXMOX_VE_CA_CERT", lab.lab.ca_path.display().to_string()),
        ("TALOS_IMAGE_FACTORY_URL", factory_url.clone()),
    ];
    let mut sets = vec![
        format!("factoryUrl={factory_url}"),
        format!("vip={}", ip(10)),
        format!("gateway={}", ip(1)),
        format!("nameservers[0]={}", ip(1)),
    ];
    sets.extend((0..3u8).map(|i| format!("controllerIps[{i}]={}", ip(11 + i))));
    sets.extend((0..4u8).map(|i| format!("workerIps[{i}]={}", ip(21 + i))));
    let text = drive(&stack, &vars, true, &sets);
    for expected in ["create   vm:VirtualMachine controller1", "output   kubeconfig = [secret]", "summary  delete "] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    lab.assert_empty();
}

/// A lab on a random loopback /24 of its own (Talos nodes listen on their addresses, so tests
/// running at the same time must not share them), with the lab Image Factory: (lab, its
/// address `.n` maker, the factory URL).
fn talos_lab() -> (CliLab, impl Fn(u8) -> Ipv4Addr, String) {
    let (lab, subnet) = CliLab::single_node_on_own_subnet(TALOS_TIMING);
    let (factory_url, _) = lab.factory();
    (lab, move |last: u8| subnet.ip(last), factory_url)
}

fn yaml(text: &str) -> serde_json::Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("not YAML ({e}):\n{text}"))
}

/// `value` of `pulumi stack export --show-secrets` with each secret (`{sig, plaintext}`) replaced
/// by its value.
fn revealed(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(m) => match m.get("plaintext").and_then(Value::as_str) {
            Some(text) => revealed(&serde_json::from_str(text).unwrap()),
            None => Value::Object(m.iter().map(|(k, v)| (k.clone(), revealed(v))).collect()),
        },
        Value::Array(items) => Value::Array(items.iter().map(revealed).collect()),
        other => other.clone(),
    }
}

fn base64_text(b64: &str) -> String {
    use base64::Engine as _;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}

#[test]
fn go_talos_cluster_program_lifecycle() {
    let (lab, ip, factory_url) = talos_lab();
    let stack = Stack::from_dir("go-talos-cluster", base_env());
    // Raw PCI passthrough (k8s-worker4's GPU) needs root@pam with a password.
    stack.set("proxmox-talos:endpoint", &lab.lab.endpoint);
    stack.set("proxmox-talos:username", "root@pam");
    set_secret(&stack, "proxmox-talos:password", &lab.lab.credentials.password, false);
    stack.set("proxmox-talos:caCertificate", &lab.lab.ca_path.display().to_string());
    stack.set("proxmox-talos:imageFactoryUrl", &factory_url);
    stack.set("vip", &ip(5).to_string());
    stack.set("gateway", &ip(1).to_string());
    stack.ok(&["config", "set", "--path", "dnsServers[0]", &ip(1).to_string()]);
    for i in 0..4u8 {
        if i < 3 {
            stack.ok(&["config", "set", "--path", &format!("controllerAddresses[{i}]"), &format!("{}/24", ip(11 + i))]);
        }
        stack.ok(&["config", "set", "--path", &format!("workerAddresses[{i}]"), &format!("{}/24", ip(21 + i))]);
    }

    let started = std::time::Instant::now();
    let up = run(&stack, Runner::Go, "up", false);
    // 2 schematics, 2 images, the secrets, 7 VMs, 7 applies, the bootstrap, the kubeconfig, the stack.
    assert!(up.contains("up succeeded: {\"create\":22}"), "{up}");
    println!("go-talos-cluster: up took {:?}", started.elapsed());

    let machines = [
        (1101, "k8s-controller1", "2", "4096", "30G", ip(11)),
        (1102, "k8s-controller2", "2", "4096", "30G", ip(12)),
        (1103, "k8s-controller3", "2", "4096", "30G", ip(13)),
        (1201, "k8s-worker1", "4", "8192", "125G", ip(21)),
        (1202, "k8s-worker2", "4", "8192", "125G", ip(22)),
        (1203, "k8s-worker3", "4", "8192", "125G", ip(23)),
        (1204, "k8s-worker4", "4", "8192", "125G", ip(24)),
    ];
    let outputs = stack.outputs();
    let schematic = |image: &str| outputs["schematicIds"][image].as_str().unwrap().to_string();
    for (vmid, name, cores, memory, disk, _) in machines {
        let c = assert_seed_vm(&lab, vmid, name, cores, memory, disk);
        let gpu = c.get("hostpci0").map(String::as_str);
        let image = lab.lab.state.read(|m| agent::guest_os(m, &m.vms[&vmid])).unwrap_or_default();
        if vmid == 1204 {
            assert_eq!((gpu, c["machine"].as_str()), (Some("host=0000:28:00.0,pcie=1"), "q35"), "{c:?}");
            assert!(image.contains(&schematic("gpu")[..12]), "{image}");
        } else {
            assert_eq!(gpu, None, "{c:?}");
            assert!(image.contains(&schematic("base")[..12]), "{image}");
        }
    }
    // Every node configured, at its static address, with its hostname.
    let mut status: Vec<_> =
        lab.lab.talos.status().into_iter().map(|s| (s.vmid, s.address, s.hostname, s.maintenance)).collect();
    status.sort();
    let expected: Vec<_> = machines.iter().map(|m| (m.0, Some(m.5), m.1.to_string(), false)).collect();
    assert_eq!(status, expected);
    for (_, name, .., address) in machines {
        assert_eq!(outputs["nodeIps"][name], address.to_string(), "{outputs}");
    }
    let vip = format!("https://{}:6443", ip(5));
    assert_eq!(outputs["kubernetesEndpoint"], vip.as_str(), "{outputs}");
    assert!(outputs["healthChecks"].as_array().is_some_and(|c| c.len() > 3), "{outputs}");

    // The kubeconfig's server answers /version over TLS verified with the kubeconfig's CA.
    let kubeconfig = yaml(outputs["kubeconfig"].as_str().unwrap());
    let cluster = &kubeconfig["clusters"][0]["cluster"];
    assert_eq!(cluster["server"], vip.as_str(), "{kubeconfig}");
    let ca = base64_text(cluster["certificate-authority-data"].as_str().unwrap());
    let version: serde_json::Value = lab.runtime.block_on(async {
        let https = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .no_proxy()
            .build()
            .unwrap();
        let body = https.get(format!("{vip}/version")).send().await.unwrap().text().await.unwrap();
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/version: {e}: {body}"))
    });
    assert_eq!(version["gitVersion"], "v1.35.0", "{version}");

    // The talosconfig's credentials work: each node answers Version through the first endpoint
    // (`talosctl version`).
    let talosconfig = yaml(outputs["talosconfig"].as_str().unwrap());
    let context = &talosconfig["contexts"][talosconfig["context"].as_str().unwrap()];
    assert_eq!(talosconfig["context"], "talos-cluster", "{talosconfig}");
    let client = ClientConfiguration {
        ca_certificate: context["ca"].as_str().unwrap().to_string(),
        client_certificate: context["crt"].as_str().unwrap().to_string(),
        client_key: context["key"].as_str().unwrap().to_string(),
    };
    let endpoint = context["endpoints"][0].as_str().unwrap().to_string();
    assert_eq!(endpoint, ip(11).to_string());
    for (_, name, .., address) in machines {
        let reply = lab.runtime.block_on(async {
            let c = api_client::connect(&endpoint, Credentials::Mutual(&client)).await.unwrap();
            c.with_node(address.to_string()).version().await.unwrap()
        });
        assert_eq!(reply.version.map(|v| v.tag).as_deref(), Some("v1.12.4"), "{name}");
    }
    support::talos::assert_talosctl_version(outputs["talosconfig"].as_str().unwrap(), "v1.12.4");

    let preview = run(&stack, Runner::Go, "preview", true);
    assert!(preview.contains("preview succeeded: {\"same\":22}"), "{preview}");
    let refresh = run(&stack, Runner::Go, "refresh", true);
    assert!(refresh.contains("refresh succeeded: {\"same\":22}"), "{refresh}");
    // The refreshed VMs report the nodes' static addresses now; the provider knows each for the
    // machine its apply configured, so the program still changes nothing.
    let state = stack.export();
    let resources = state["deployment"]["resources"].as_array().unwrap().clone();
    let worker1 =
        resources.iter().find(|r| r["urn"].as_str().unwrap().ends_with("VirtualMachine::k8s-worker1")).unwrap();
    assert_eq!(worker1["outputs"]["ipv4Address"], ip(21).to_string(), "{worker1}");
    let preview = run(&stack, Runner::Go, "preview", true);
    assert!(preview.contains("preview succeeded: {\"same\":22}"), "{preview}");

    // Day 2, in place: Talos v1.12.4 -> v1.12.5 (the two images are downloaded again, the seven
    // nodes upgraded, no VM replaced), then Kubernetes 1.35.0 -> 1.35.1 (seven updates, no
    // reboot); the VIP's apiserver reports the new version.
    stack.set("talosVersion", "v1.12.5");
    let up = run(&stack, Runner::Go, "up", false);
    assert!(up.contains("\"update\":7") && up.contains("\"replace\":2"), "{up}");
    for (_, name, .., address) in machines {
        let reply = lab.runtime.block_on(async {
            let c = api_client::connect(&endpoint, Credentials::Mutual(&client)).await.unwrap();
            c.with_node(address.to_string()).version().await.unwrap()
        });
        assert_eq!(reply.version.map(|v| v.tag).as_deref(), Some("v1.12.5"), "{name}");
    }
    stack.set("kubernetesVersion", "1.35.1");
    let up = run(&stack, Runner::Go, "up", false);
    assert!(up.contains("up succeeded: {\"same\":15,\"update\":7}"), "{up}");
    let version: serde_json::Value = lab.runtime.block_on(async {
        let https = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .no_proxy()
            .build()
            .unwrap();
        let body = https.get(format!("{vip}/version")).send().await.unwrap().text().await.unwrap();
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("/version: {e}: {body}"))
    });
    assert_eq!(version["gitVersion"], "v1.35.1", "{version}");
    let preview = run(&stack, Runner::Go, "preview", true);
    assert!(preview.contains("preview succeeded: {\"same\":22}"), "{preview}");

    // No credential and no machine configuration in plain text.
    let secrets = resources.iter().find(|r| r["type"] == "proxmox-talos:machine:Secrets").unwrap();
    let bundle = revealed(&secrets["outputs"]["machineSecrets"]);
    let kube_key = kubeconfig["users"][0]["user"]["client-key-data"].as_str().unwrap().to_string();
    assert_no_plain_secrets(
        &stack,
        &[
            &lab.lab.credentials.password,
            &client.client_key,
            &kube_key,
            bundle["secrets"]["bootstrapToken"].as_str().unwrap(),
            bundle["trustdinfo"]["token"].as_str().unwrap(),
            bundle["certs"]["os"]["key"].as_str().unwrap(),
            "PRIVATE KEY",
            "version: v1alpha1",
        ],
    );

    let destroy = run(&stack, Runner::Go, "destroy", false);
    assert!(destroy.contains("destroy succeeded: {\"delete\":22}"), "{destroy}");
    lab.assert_empty();
    println!("go-talos-cluster: the lifecycle took {:?}", started.elapsed());
}

/// The Python form of go-talos-cluster: object outputs of `machine:Secrets` go into
/// getConfiguration, getHealth and client getConfiguration as they are (Python key names,
/// docs/adr/0011), the images' URLs come from getUrls. Up on a fresh lab, the nodes configured
/// at their static addresses, the kubeconfig's and talosconfig's credentials work, preview and
/// refresh change nothing, no secret in plain text, destroy leaves the lab empty.
#[test]
fn python_talos_cluster_program_lifecycle() {
    let (lab, ip, factory_url) = talos_lab();
    let stack = Stack::from_dir("python-talos-cluster", base_env());
    let source = std::fs::read_to_string(stack.dir.join("__main__.py")).unwrap();
    assert!(source.contains("machine_secrets=secrets.machine_secrets"), "the program passes the output as it is");
    assert!(!source.contains("/image/") && !source.contains(".xz"), "no hand-built factory URL");
    stack.set("proxmox-talos:endpoint", &lab.lab.endpoint);
    stack.set("proxmox-talos:username", "root@pam");
    set_secret(&stack, "proxmox-talos:password", &lab.lab.credentials.password, false);
    stack.set("proxmox-talos:caCertificate", &lab.lab.ca_path.display().to_string());
    stack.set("proxmox-talos:imageFactoryUrl", &factory_url);
    stack.set("vip", &ip(5).to_string());
    stack.set("gateway", &ip(1).to_string());
    stack.ok(&["config", "set", "--path", "dnsServers[0]", &ip(1).to_string()]);
    for i in 0..4u8 {
        if i < 3 {
            stack.ok(&["config", "set", "--path", &format!("controllerAddresses[{i}]"), &format!("{}/24", ip(11 + i))]);
        }
        stack.ok(&["config", "set", "--path", &format!("workerAddresses[{i}]"), &format!("{}/24", ip(21 + i))]);
    }

    let up = run(&stack, Runner::Python, "up", false);
    assert!(up.contains("up succeeded") && up.contains("'create': 22"), "{up}");
    let names = ["controller1", "controller2", "controller3", "worker1", "worker2", "worker3", "worker4"];
    let addresses = [11u8, 12, 13, 21, 22, 23, 24];
    let mut status: Vec<_> =
        lab.lab.talos.status().into_iter().map(|s| (s.vmid, s.address, s.hostname, s.maintenance)).collect();
    status.sort();
    let expected: Vec<_> = [1101, 1102, 1103, 1201, 1202, 1203, 1204]
        .iter()
        .zip(names.iter().zip(addresses))
        .map(|(vmid, (name, last))| (*vmid, Some(ip(last)), format!("k8s-{name}"), false))
        .collect();
    assert_eq!(status, expected);
    let gpu = lab.vm_config(1204);
    assert_eq!(gpu.get("hostpci0").map(String::as_str), Some("host=0000:28:00.0,pcie=1"), "{gpu:?}");
    let outputs = stack.outputs();
    assert_eq!(outputs["kubernetesEndpoint"], format!("https://{}:6443", ip(5)).as_str(), "{outputs}");
    assert_eq!(outputs["nodeIps"]["k8s-worker2"], ip(22).to_string(), "{outputs}");
    let kubeconfig = yaml(outputs["kubeconfig"].as_str().unwrap());
    assert_eq!(kubeconfig["clusters"][0]["cluster"]["server"], format!("https://{}:6443", ip(5)).as_str());
    support::talos::assert_talosctl_version(outputs["talosconfig"].as_str().unwrap(), "v1.12.4");

    let preview = run(&stack, Runner::Python, "preview", true);
    assert!(preview.contains("'same': 22"), "{preview}");
    let refresh = run(&stack, Runner::Python, "refresh", true);
    assert!(refresh.contains("'same': 22"), "{refresh}");
    let key = kubeconfig["users"][0]["user"]["client-key-data"].as_str().unwrap().to_string();
    assert_no_plain_secrets(&stack, &[&lab.lab.credentials.password, &key, "PRIVATE KEY", "version: v1alpha1"]);

    let destroy = run(&stack, Runner::Python, "destroy", false);
    assert!(destroy.contains("'delete': 22"), "{destroy}");
    lab.assert_empty();
}

/// The function table: every function called from Python, TypeScript and Go with resource
/// outputs as arguments (`sdk-examples/{python,ts,go}-functions`: machine:Secrets' outputs into
/// machine and client getConfiguration, a Schematic's id into getUrls, getVersions and
/// getExtensionsVersions), each result checked. getHealth takes the same client configuration
/// in the talos-cluster programs (it needs a cluster).
#[test]
fn every_function_takes_resource_outputs_in_every_language() {
    let (_lab, _, factory_url) = talos_lab();
    for (example, runner) in
        [("python-functions", Runner::Python), ("ts-functions", Runner::Node), ("go-functions", Runner::Go)]
    {
        let stack = Stack::from_dir(example, base_env());
        stack.set("proxmox-talos:imageFactoryUrl", &factory_url);
        let up = run(&stack, runner, "up", false);
        assert!(up.contains("up succeeded"), "{example}: {up}");
        let out = stack.outputs();
        let config = out["machineConfiguration"].as_str().unwrap_or_default();
        // The v1alpha1 document first, then the multi-doc ones.
        let parsed = yaml(config.split("\n---\n").next().unwrap_or_default());
        assert_eq!(parsed["cluster"]["clusterName"], "fn-table", "{example}: {config}");
        assert_eq!(parsed["machine"]["type"], "controlplane", "{example}: {config}");
        let talosconfig = yaml(out["talosconfig"].as_str().unwrap_or_default());
        assert_eq!(talosconfig["context"], "fn-table", "{example}: {talosconfig:?}");
        let id = out["schematicId"].as_str().unwrap();
        let raw = format!("{factory_url}/image/{id}/v1.12.4/nocloud-amd64.raw");
        assert_eq!(out["diskImageRaw"], raw.as_str(), "{example}: {out}");
        let versions = out["talosVersions"].as_array().unwrap();
        assert!(versions.iter().any(|v| v == "v1.12.4"), "{example}: {out}");
        let extensions = out["extensions"].as_array().unwrap();
        assert!(extensions.iter().any(|e| e == "siderolabs/qemu-guest-agent"), "{example}: {out}");
        run(&stack, runner, "preview", true);
        run(&stack, runner, "destroy", false);
    }
}
