//! VMs through the real `pulumi` CLI against the lab: a VM from a downloaded
//! cloud image (import-from, grown to its size, cloud-init with a static
//! address, guest agent) and a full clone of template 90001. `up`; a second
//! preview and a refresh change nothing; cpu/memory/tags edits update in
//! place, a disk's datastoreId moves it; drift made in the lab shows on refresh and is undone by `up`;
//! `destroy` leaves the lab empty. Import, bad inputs, GPU passthrough and the
//! three-node cluster are in `pulumi_vms_more.rs`.

mod support;

use std::collections::HashMap;

use proxmox_talos_lab::pve::lab_config::{LabConfig, Timing};
use support::lab::CliLab;
use support::pulumi::Stack;

fn lab() -> CliLab {
    let mut config = LabConfig::single_node();
    config.timing = Timing { task_ms: 20, boot_ms: 200, agent_ms: 200, lock_wait_ms: 3000 };
    CliLab::start(config)
}

#[test]
fn vms_from_an_image_and_a_clone_live_and_die_through_the_cli() {
    let lab = lab();
    let image = vec![0u8; 1 << 20];
    let base = lab.serve_files(HashMap::from([("noble.raw".to_string(), image)]));
    let stack = Stack::new("yaml-proxmox-vms", lab.token_env());
    stack.set("imageUrl", &format!("{base}/noble.raw"));

    stack.ok(&["up", "--yes", "--skip-preview"]);
    let out = stack.outputs();
    assert_eq!(out["imageVolume"], "local:import/noble-server-cloudimg-amd64.raw");
    assert_eq!(out["cloudNames"][0], "lo", "agent order, lo first: {out}");
    assert!(out["cloudNames"].as_array().unwrap().iter().any(|n| n == "docker0"), "links besides the NIC: {out}");
    assert_eq!(out["cloudIp"], "127.42.0.50", "net0's address, found by MAC: {out}");
    assert_eq!(out["cloneIp"], "127.42.0.61", "{out}");
    assert_eq!(out["cloneVmId"], 4102);
    let config = lab.lab.state.read(|m| m.vms[&4101].config.clone());
    assert!(config["scsi0"].contains("size=10G"), "grown after import: {config:?}");
    assert_eq!(config["ipconfig0"], "ip=127.42.0.50/24,gw=127.42.0.1");

    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["refresh", "--yes", "--expect-no-changes", "--skip-preview"]);

    // cpu, memory and tags change in place.
    stack.set("cores", "4");
    stack.set("memory", "4096");
    // Tag order does not matter: PVE keeps them sorted.
    for (i, tag) in ["ubuntu", "homelab", "edited"].iter().enumerate() {
        stack.ok(&["config", "set", "--path", &format!("tags[{i}]"), tag]);
    }
    let preview = stack.ok(&["preview", "--diff"]);
    assert!(!preview.contains("replace"), "{preview}");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    let config = lab.lab.state.read(|m| m.vms[&4101].config.clone());
    assert_eq!((config["cores"].as_str(), config["memory"].as_str()), ("4", "4096"), "{config:?}");
    assert_eq!(config["tags"], "edited;homelab;ubuntu");
    stack.ok(&["preview", "--expect-no-changes"]);

    // A disk's datastoreId moves the disk (move_disk), in place; the old volume goes.
    stack.set("diskStore", "ceph");
    let preview = stack.ok(&["preview", "--diff"]);
    assert!(!preview.contains("replace"), "{preview}");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    let (config, volumes) = lab.lab.state.read(|m| (m.vms[&4101].config.clone(), m.volumes.clone()));
    assert!(config["scsi0"].starts_with("ceph:vm-4101-disk-"), "{config:?}");
    assert!(config["scsi0"].contains("size=10G"), "{config:?}");
    assert!(!config.keys().any(|k| k.starts_with("unused")), "{config:?}");
    assert!(!volumes.keys().any(|v| v.starts_with("local-zfs:vm-4101-disk")), "{:?}", volumes.keys());
    stack.ok(&["preview", "--expect-no-changes"]);

    // Drift made in the lab shows on refresh.
    lab.lab.state.write(|m| {
        m.vms.get_mut(&4102).unwrap().config.insert("cores".into(), "8".into());
    });
    let refresh = stack.ok(&["refresh", "--yes", "--skip-preview", "--diff"]);
    assert!(refresh.contains("cores"), "{refresh}");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    assert_eq!(lab.lab.state.read(|m| m.vms[&4102].config["cores"].clone()), "2");

    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    let left = lab.inventory();
    assert!(left.vms.is_empty() && left.files.is_empty(), "{left:?}");
}
