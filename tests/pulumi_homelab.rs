//! The homelab program through the real `pulumi` CLI against the three-node seed
//! cluster (`sdk-examples/yaml-proxmox-cluster`): a cloud image PVE downloads, a
//! cloud-init snippet written over SFTP to a real OpenSSH server for node
//! pve-aimax-01, a GPU VM from the image with that user data and the GPU through
//! a PCI mapping, a two-NIC VLAN VM on a second node, a clone of template 90001
//! onto another node (clone + migrate). `up`; `preview` and `refresh` change
//! nothing; cpu, memory, tags and user-data edits update in place (the GPU VM
//! reboots with the new data); a node change migrates with `migrate` and replaces
//! without it; `pulumi import` of a VM made outside Pulumi; no secret in the
//! state; `destroy` leaves the lab inventory empty.
//!
//! Needs `pulumi` and `pulumi-language-yaml` on PATH (`tools/test.sh` installs
//! them) and Debian's openssh-server, run as root (the lab's sshd chroots).

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;

use proxmox_talos_lab::pve::lab_config::{LabConfig, Timing};
use proxmox_talos_lab::ssh;
use serde_json::Value;
use support::lab::{params, CliLab};
use support::pulumi::Stack;

/// The seed cluster, its state in a directory sshd accepts as a chroot's parent.
fn lab() -> CliLab {
    let dir = support::chroot_capable_dir("homelab-");
    let mut config = LabConfig::seed_cluster();
    config.timing = Timing { task_ms: 20, boot_ms: 200, agent_ms: 200, lock_wait_ms: 3000 };
    CliLab::start_in(config, dir)
}

#[test]
fn the_homelab_program_lives_and_dies_through_the_cli() {
    support::require_sshd();
    let lab = lab();
    let client = lab.api();
    let mapping = params(&[("id", "rtx4090"), ("map", "node=pve-aimax-01,path=0000:28:00.0,id=10de:2684")]);
    lab.runtime.block_on(async { client.post("/cluster/mapping/pci", &mapping).await.unwrap() });
    let base = lab.serve_files(HashMap::from([("noble.raw".to_string(), vec![0u8; 1 << 20])]));
    // A real sshd for the GPU node, on the node's own address, chrooted to its file system.
    let node_address = lab.lab.state.read(|m| m.nodes["pve-aimax-01"].address);
    let sshd = ssh::start_sshd(
        lab.state_dir.path(),
        "pve-aimax-01",
        &lab.lab.state.node_root("pve-aimax-01"),
        SocketAddr::new(node_address.into(), 0),
    )
    .unwrap_or_else(|e| panic!("starting sshd for pve-aimax-01: {e}"));
    let keys = tempfile::tempdir().unwrap();
    let (private_key, public_key) = support::ssh_key_pair(keys.path(), "provider");
    sshd.authorize(&public_key).unwrap();
    let mut env = lab.token_env();
    env.extend([
        ("PROXMOX_VE_SSH_USERNAME".to_string(), "root".to_string()),
        ("PROXMOX_VE_SSH_PRIVATE_KEY".to_string(), private_key.clone()),
        ("PROXMOX_VE_SSH_PORT".to_string(), sshd.port().to_string()),
    ]);
    // Its own HOME: the provider reads ~/.ssh/known_hosts, this test's own.
    let stack = Stack::new("yaml-proxmox-cluster", env).with_own_home();
    stack.set("imageUrl", &format!("{base}/noble.raw"));
    let snippet = lab.lab.state.dir_storage_path("pve-aimax-01", "local").join("snippets/ai-worker-1-user-data.yaml");

    stack.ok(&["up", "--yes", "--skip-preview"]);
    let gpu = lab.vm_config(4301);
    assert_eq!(gpu["cicustom"], "user=local:snippets/ai-worker-1-user-data.yaml", "{gpu:?}");
    assert!(std::fs::read_to_string(&snippet).unwrap().contains("hostname: ai-worker-1"));
    assert_eq!(gpu["hostpci0"], "mapping=rtx4090,pcie=1,x-vga=1", "{gpu:?}");
    assert_eq!((gpu["machine"].as_str(), lab.vm_node(4301).as_str()), ("q35", "pve-aimax-01"));
    assert!(gpu["scsi0"].contains("size=12G"), "{gpu:?}");
    let router = lab.vm_config(4302);
    assert!(router["net0"].contains("tag=10") && router["net1"].contains("tag=20"), "{router:?}");
    assert!(router["net1"].contains("firewall=1") && router["scsi0"].starts_with("ceph:"), "{router:?}");
    assert_eq!(router["ipconfig1"], "ip=127.42.20.72/24");
    assert_eq!(lab.vm_node(4302), "pve-ms01-02");
    assert_eq!(lab.vm_node(4303), "pve-ms01-02", "cloned from pve-ms01-01, then migrated");
    // PVE refuses a cross-node clone from local storage once (no retries), then clone + migrate.
    let calls = lab.lab.state.request_counts();
    assert_eq!(calls.get("POST /nodes/pve-ms01-01/qemu/90001/clone"), Some(&2), "{calls:?}");
    assert_eq!(calls.get("POST /nodes/pve-ms01-01/qemu/4303/migrate"), Some(&1), "{calls:?}");
    let out = stack.outputs();
    assert!(out["workerIp"].to_string().contains("127.42.0.73"), "{out}");
    assert_eq!(out["routerMacs"].as_array().map(Vec::len), Some(2), "{out}");

    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["refresh", "--yes", "--expect-no-changes", "--skip-preview"]);

    // cpu, memory, tags and user data change in place; the GPU VM reboots with the new data.
    let booted = lab.lab.state.read(|m| m.vms[&4301].started_at_ms);
    stack.set("hostname", "ai-worker-one");
    stack.set("cores", "4");
    stack.set("memory", "4096");
    for (i, tag) in ["homelab", "ai"].iter().enumerate() {
        stack.ok(&["config", "set", "--path", &format!("tags[{i}]"), tag]);
    }
    let preview = stack.ok(&["preview", "--diff"]);
    assert!(!preview.contains("replace"), "{preview}");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    let gpu = lab.vm_config(4301);
    assert_eq!((gpu["cores"].as_str(), gpu["memory"].as_str(), gpu["tags"].as_str()), ("4", "4096", "ai;homelab"));
    assert!(std::fs::read_to_string(&snippet).unwrap().contains("hostname: ai-worker-one"));
    assert_ne!(lab.lab.state.read(|m| m.vms[&4301].started_at_ms), booted, "rebooted with the new user data");
    stack.ok(&["preview", "--expect-no-changes"]);

    // With `migrate`, a new node migrates the VM in place.
    stack.set("cloneNode", "pve-ms01-01");
    let preview = stack.ok(&["preview", "--diff"]);
    assert!(!preview.contains("replace") && preview.contains("nodeName"), "{preview}");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    assert_eq!(lab.vm_node(4303), "pve-ms01-01");
    stack.ok(&["preview", "--expect-no-changes"]);

    // Without it, the VM is replaced (deleted first: the new one takes the same VMID).
    stack.set("cloneMigrate", "false");
    stack.set("cloneNode", "pve-aimax-01");
    let preview = stack.ok(&["preview", "--diff"]);
    assert!(preview.contains("replace"), "{preview}");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    assert_eq!(lab.vm_node(4303), "pve-aimax-01");
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["refresh", "--yes", "--expect-no-changes", "--skip-preview"]);

    // A VM made outside Pulumi comes in with `pulumi import` (node/vmid); destroy takes it too.
    lab.runtime.block_on(async {
        let create = params(&[
            ("vmid", "4310"),
            ("name", "legacy-1"),
            ("cores", "2"),
            ("memory", "2048"),
            ("scsi0", "ceph:4"),
            ("net0", "virtio,bridge=vmbr0,tag=30"),
        ]);
        client.post("/nodes/pve-ms01-01/qemu", &create).await.unwrap();
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !lab.lab.state.read(|m| m.vms.get(&4310).is_some_and(|vm| vm.lock.is_none() && vm.busy.is_none())) {
        assert!(std::time::Instant::now() < deadline, "VM 4310 was not created and unlocked within 10 s");
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    let code = keys.path().join("imported.yaml");
    let import = ["import", "proxmox-talos:vm:VirtualMachine", "legacy", "pve-ms01-01/4310", "--yes"];
    stack.ok(&[&import[..], &["--protect=false", "--skip-preview", "--out", code.to_str().unwrap()]].concat());
    let code = std::fs::read_to_string(&code).unwrap();
    assert!(code.contains("legacy-1") && code.contains("vlanId: 30"), "{code}");

    // No secret reaches the state in plain text: the snippet, the SSH key, the token.
    let export = stack.ok(&["stack", "export"]);
    assert!(!export.contains("ai-worker-one"), "the user data is in the state in plain text");
    let export = stack.ok(&["stack", "export", "--show-secrets"]);
    assert!(!export.contains(private_key.lines().nth(1).unwrap()), "the SSH key is in the state");
    assert!(!export.contains(&lab.lab.credentials.token_secret), "the API token is in the state");

    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    lab.assert_empty();
    assert!(!snippet.exists(), "the snippet is gone from the node");
    let mappings: Value = lab.runtime.block_on(async { client.get("/cluster/mapping/pci", &[]).await.unwrap() });
    assert_eq!(mappings.as_array().map(Vec::len), Some(1), "the mapping is not the program's: {mappings}");
    drop(sshd);
}
