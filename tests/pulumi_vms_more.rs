//! More VMs through the real `pulumi` CLI against the lab:
//! - `pulumi import` of a VM made outside Pulumi (`node/vmid`), then the generated
//!   program previews with no changes, a hand-written subset updates in place;
//! - bad inputs (59 of them, in three resources) fail `preview` with their property
//!   path and what is valid, and the lab's request log shows no API call;
//! - raw GPU passthrough: refused at preview with an API token (saying to use a PCI
//!   mapping or root@pam), created as root@pam with a password;
//!
//! The whole homelab program (three nodes, snippet over SSH, GPU, VLANs, clone and
//! migration) is `pulumi_homelab.rs`.
//!
//! Each ends with `destroy` and an empty lab inventory.

mod support;

use proxmox_talos_lab::pve::lab_config::{LabConfig, Timing};
use support::lab::{params, CliLab};
use support::pulumi::Stack;

fn lab(mut config: LabConfig) -> CliLab {
    config.timing = Timing { task_ms: 20, boot_ms: 200, agent_ms: 200, lock_wait_ms: 3000 };
    CliLab::start(config)
}

/// Waits until the lab's VM `vmid` exists without a lock.
/// A program with `resources_before` (YAML resources, indented by two) and VM `vmid` on node
/// `pve` with `properties` (lines indented by six).
fn vm_program(resources_before: &str, vmid: u32, properties: &str) -> String {
    format!(
        "{HEADER}resources:\n{resources_before}  vm:\n    type: proxmox-talos:vm:VirtualMachine\n    properties:\n      \
         nodeName: pve\n      vmId: {vmid}\n{properties}"
    )
}

fn wait_unlocked(lab: &CliLab, vmid: u32) {
    for _ in 0..200 {
        if lab.lab.state.read(|m| m.vms.get(&vmid).is_some_and(|vm| vm.lock.is_none() && vm.busy.is_none())) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("vm {vmid} did not settle");
}

const HEADER: &str = "name: vms-more
runtime: yaml
plugins:
  providers:
    - name: proxmox-talos
      path: ../../target/debug
";

#[test]
fn an_imported_vm_replaces_nothing_and_updates_in_place() {
    let lab = lab(LabConfig::single_node());
    let client = lab.api();
    lab.runtime.block_on(async {
        let create = params(&[
            ("vmid", "4201"),
            ("name", "legacy-1"),
            ("tags", "legacy;homelab"),
            ("ostype", "l26"),
            ("cores", "2"),
            ("memory", "2048"),
            ("agent", "1"),
            ("scsihw", "virtio-scsi-single"),
            ("scsi0", "local-zfs:4,iothread=1,discard=on"),
            ("net0", "virtio,bridge=vmbr0,tag=30"),
            ("ide2", "local-zfs:cloudinit"),
            ("ipconfig0", "ip=127.42.0.81/24,gw=127.42.0.1"),
            ("boot", "order=scsi0;net0"),
        ]);
        client.post("/nodes/pve/qemu", &create).await.unwrap();
    });
    wait_unlocked(&lab, 4201);
    lab.runtime.block_on(async { client.post("/nodes/pve/qemu/4201/status/start", &vec![]).await.unwrap() });
    wait_unlocked(&lab, 4201);

    let stack = Stack::from_program(HEADER, lab.token_env());
    let import = ["import", "proxmox-talos:vm:VirtualMachine", "legacy", "pve/4201", "--yes", "--protect=false"];
    stack.ok(&[&import[..], &["--out", "imported.yaml"]].concat());
    let generated = std::fs::read_to_string(stack.dir.join("imported.yaml")).unwrap();
    assert!(generated.contains("vmId: 4201") && generated.contains("nodeName: pve"), "{generated}");

    // The generated program, as `pulumi import` printed it, changes nothing.
    stack.write_program(&format!("{HEADER}{generated}"));
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["refresh", "--yes", "--expect-no-changes", "--skip-preview"]);

    // A hand-written program naming only some inputs updates in place: the rest is unmanaged.
    stack.write_program(&format!(
        "{HEADER}resources:
  legacy:
    type: proxmox-talos:vm:VirtualMachine
    properties:
      nodeName: pve
      vmId: 4201
      name: legacy-1
      stopOnDestroy: true
      tags: [homelab, legacy, imported]
      cpu:
        cores: 4
"
    ));
    let preview = stack.ok(&["preview", "--diff"]);
    assert!(!preview.contains("replace"), "{preview}");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    let config = lab.vm_config(4201);
    assert_eq!(config["cores"], "4", "{config:?}");
    assert_eq!(config["tags"], "homelab;imported;legacy");
    assert!(config["net0"].contains("tag=30") && config["scsi0"].contains("local-zfs:vm-4201-disk"), "{config:?}");
    stack.ok(&["preview", "--expect-no-changes"]);

    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    lab.assert_empty();
}

/// Bad inputs, several per resource (the engine stops a preview at the first resource
/// that fails Check, and reports all of that resource's failures): each program below
/// is previewed alone and must report every (property path, part of the message that
/// says what is valid) listed with it.
const BAD: &[(&str, &[(&str, &str)])] = &[
    (
        "  top:
    type: proxmox-talos:vm:VirtualMachine
    properties:
      nodeName: pve_01
      vmId: 99
      name: web_1
      tags: [bad tag]
      poolId: my pool
      bios: uefi
      machine: q36
      scsiHardware: virtio
      operatingSystem: {type: linux}
      template: true
      started: true
      timeoutCreate: 0
      agent: {enabled: true, timeout: 5 minutes}
      cpu: {cores: 0, sockets: 17, flags: [aes]}
      memory: {dedicated: 8}
      disks:
        - {interface: nvme0, size: -5}
        - {interface: virtio16}
        - {interface: scsi0, fileId: talos.img, cache: fast}
        - {interface: scsi0}
        - {interface: scsi1, importFrom: 'local:iso/talos.iso'}
        - {interface: virtio0, ssd: true}
        - {interface: scsi2, datastoreId: 1-zfs}
      efiDisk: {type: 8m}
      tpmState: {version: v3}
      serialDevices: [{device: tty0}]
      vga: {type: fancy}
      bootOrders: [scsi9]
",
        &[
            ("nodeName", "letters, digits and inner '-', e.g. pve"),
            ("vmId", "a VM id must be 100 to 999999999"),
            ("name", "is not a DNS name: letters, digits, '-' and '.'"),
            ("tags[0]", "start with a letter, digit or '_'"),
            ("poolId", "letters, digits, '-' and '_'"),
            ("bios", "use one of: seabios, ovmf"),
            ("machine", "use pc, q35, a versioned type such as pc-q35-9.2"),
            ("scsiHardware", "use one of: lsi, lsi53c810, virtio-scsi-pci"),
            ("operatingSystem.type", "use one of: other, wxp"),
            ("started", "set started to false (or leave it unset) with template: true"),
            ("timeoutCreate", "a timeout in seconds must be 1 to 604800"),
            ("agent.timeout", "use a number with a unit (ms, s, m, h)"),
            ("cpu.cores", "cores per socket must be 1 to 1024"),
            ("cpu.sockets", "sockets must be 1 to 16"),
            ("cpu.flags[0]", "+name to add it or -name to remove it"),
            ("memory.dedicated", "memory in MB must be 16 to"),
            ("disks[0].interface", "use scsi0-scsi30, virtio0-virtio15, sata0-sata5 or ide0-ide3"),
            ("disks[0].size", "give a positive number of GB"),
            ("disks[1].interface", "virtio disks are virtio0 to virtio15"),
            ("disks[2].fileId", "storage:import/file, e.g. local:import/"),
            ("disks[2].cache", "use one of: none, writethrough"),
            ("disks[3].interface", "each disk needs its own interface"),
            ("disks[4].importFrom", "download the image with content type import"),
            ("disks[5].ssd", "use a scsi interface"),
            ("disks[6].datastoreId", "a letter, then letters, digits"),
            ("efiDisk.type", "use one of: 2m, 4m"),
            ("tpmState.version", "use one of: v1.2, v2.0"),
            ("serialDevices[0].device", "socket, or a host device such as /dev/ttyS0"),
            ("vga.type", "use one of: cirrus, qxl"),
            ("bootOrders[0]", "is not a configured disk; configured: nvme0, virtio16, scsi0"),
        ],
    ),
    (
        "  devices:
    type: proxmox-talos:vm:VirtualMachine
    properties:
      nodeName: ''
      vmId: 1000000000
      memory: {dedicated: 1024, floating: 2048}
      networkDevices:
        - {macAddress: 'BC:24:11:4A:2F'}
        - {macAddress: '01:00:5E:00:00:01'}
        - {vlanId: 4095}
        - {model: virtio2}
        - {mtu: 100}
        - {bridge: vmbr 0}
        - {trunks: 10;abc}
      initialization:
        interface: virtio0
        ipConfigs:
          - ipv4: {address: 10.0.0.5/33}
          - ipv4: {address: 10.0.0.5/24, gateway: 10.0.1.1}
          - ipv6: {address: auto, gateway: 'fd00::1'}
          - {}
          - {}
          - {}
          - {}
          - {}
        dns: {servers: [1.1.1]}
        userAccount: {keys: [not-a-key]}
        userDataFileId: 'local:iso/user.yaml'
      clone: {vmId: 5, full: false, datastoreId: ceph}
      hostpcis:
        - {device: hostpci16, mapping: gpu}
        - {device: hostpci1, id: '0000:28:00.g'}
        - {device: hostpci2, id: '0000:28:00.0', pcie: true, xvga: true}
        - {device: hostpci3, mapping: gpu, pcie: true}
",
        &[
            ("nodeName", "required: the name of the Proxmox VE node to run the VM on"),
            ("vmId", "a VM id must be 100 to 999999999"),
            ("memory.floating", "must be at most dedicated, or 0 to turn ballooning off"),
            ("networkDevices[0].macAddress", "six pairs of hexadecimal digits separated by colons"),
            ("networkDevices[1].macAddress", "use a unicast address such as"),
            ("networkDevices[2].vlanId", "a VLAN tag must be 1 to 4094"),
            ("networkDevices[3].model", "use one of: e1000"),
            ("networkDevices[4].mtu", "use 1 (the bridge's MTU) or 576 to 65520"),
            ("networkDevices[5].bridge", "a Linux bridge or SDN VNet such as vmbr0"),
            ("networkDevices[6].trunks", "e.g. 10;20;30-40"),
            ("initialization.interface", "cannot be on virtio; use ide2 (default), sataN or scsiN"),
            ("initialization.ipConfigs[0].ipv4.address", "use e.g. 10.0.0.5/24 or dhcp"),
            ("initialization.ipConfigs[1].ipv4.gateway", "the gateway must be in the address's subnet"),
            ("initialization.ipConfigs[2].ipv6.gateway", "no gateway with auto: it comes from the network"),
            ("initialization.ipConfigs[7]", "ipConfigs[N] configures networkDevices[N]"),
            ("initialization.dns.servers[0]", "e.g. 1.1.1.1"),
            ("initialization.userAccount.keys[0]", "e.g. ssh-ed25519 AAAAC3Nza"),
            ("initialization.userDataFileId", "storage:snippets/file"),
            ("initialization.userDataFileId", "put the user in the user-data file or remove userAccount"),
            ("clone.vmId", "a VM id must be 100 to 999999999"),
            ("clone.datastoreId", "applies only to full clones"),
            ("hostpcis[0].device", "use hostpci0 to hostpci15"),
            ("hostpcis[1].id", "in hex, e.g. 0000:28:00.0 or 28:00.0"),
            ("hostpcis[2].id", "use a PCI resource mapping (`mapping`) or configure `username: root@pam`"),
            ("hostpcis[2].pcie", "set machine to q35"),
            ("hostpcis[3].pcie", "set machine to q35"),
        ],
    ),
    (
        "  image:
    type: proxmox-talos:download:File
    properties:
      nodeName: pve
      datastoreId: local
      contentType: images
      url: ftp://127.0.0.1/talos.raw.xz
      decompressionAlgorithm: xz
",
        &[
            ("contentType", "is not one of iso, import, vztmpl"),
            ("url", "is not an http:// or https:// URL"),
            ("decompressionAlgorithm", "cannot decompress xz (it supports gz, lzo, zst and bz2)"),
        ],
    ),
    (
        "  factoryImage:
    type: proxmox-talos:download:File
    properties:
      nodeName: pve
      datastoreId: local
      contentType: import
      url: http://127.0.0.1:9/image/abc/v1.12.4/nocloud-amd64.raw.xz
",
        &[("url", "is xz-compressed, which Proxmox VE cannot decompress")],
    ),
];

#[test]
fn bad_inputs_fail_at_preview_with_their_path_and_no_api_call() {
    assert!(BAD.iter().map(|(_, cases)| cases.len()).sum::<usize>() >= 30);
    let lab = lab(LabConfig::single_node());
    let stack = Stack::from_program(HEADER, lab.token_env());
    lab.lab.state.clear_requests();
    for (resources, cases) in BAD {
        stack.write_program(&format!("{HEADER}resources:\n{resources}"));
        let out = stack.fails(&["preview"]);
        let name = resources.trim().split(':').next().unwrap();
        let errors: Vec<&str> = out.lines().filter(|l| l.contains(&format!("resource '{name}': property "))).collect();
        // e.g. `error: ... resource 'top': property vmId value {99} has a problem: 99 is out of range: ...`
        let missing: Vec<String> = cases
            .iter()
            .filter(|(path, hint)| {
                !errors.iter().any(|l| l.contains(&format!("property {path} value")) && l.contains(hint))
            })
            .map(|(path, hint)| format!("{path}: {hint}"))
            .collect();
        assert!(missing.is_empty(), "not reported:\n{}\n--- output\n{out}", missing.join("\n"));
    }
    let (requests, log) = lab.lab.state.requests();
    assert_eq!(requests, 0, "bad inputs reached the API: {log:?}");

    // Without nodeName at all, Pulumi YAML refuses the program before the provider sees it.
    stack.write_program(&format!(
        "{HEADER}resources:\n  noNode:\n    type: proxmox-talos:vm:VirtualMachine\n    properties: {{vmId: 4500}}\n"
    ));
    let out = stack.fails(&["preview"]);
    assert!(out.contains("nodeName: Missing required property 'nodeName'"), "{out}");
    assert_eq!(lab.lab.state.requests().0, 0);
}

fn root_env(lab: &CliLab) -> Vec<(String, String)> {
    vec![
        ("PROXMOX_VE_ENDPOINT".into(), lab.lab.endpoint.clone()),
        ("PROXMOX_VE_USERNAME".into(), "root@pam".into()),
        ("PROXMOX_VE_PASSWORD".into(), lab.lab.credentials.password.clone()),
        ("PROXMOX_VE_CA_CERT".into(), lab.lab.ca_path.display().to_string()),
    ]
}

#[test]
fn raw_gpu_passthrough_needs_root_and_then_creates() {
    let lab = lab(LabConfig::seed_cluster());
    let mut stack = Stack::new("yaml-proxmox-gpu", lab.token_env());
    lab.lab.state.clear_requests();
    let out = stack.fails(&["preview"]);
    assert!(
        out.contains("resource 'gpu': property hostpcis[0].id value")
            && out.contains("raw PCI passthrough needs root@pam with a password")
            && out.contains("use a PCI resource mapping (`mapping`) or configure `username: root@pam` and `password`"),
        "{out}"
    );
    assert_eq!(lab.lab.state.requests().0, 0, "{:?}", lab.lab.state.requests().1);

    stack.env = root_env(&lab);
    stack.ok(&["up", "--yes", "--skip-preview"]);
    let config = lab.vm_config(4401);
    assert_eq!(config["machine"], "q35", "{config:?}");
    assert_eq!(config["hostpci0"], "host=0000:28:00.0,pcie=1,x-vga=1", "{config:?}");
    assert_eq!(lab.vm_node(4401), "pve-aimax-01");
    assert_eq!(stack.outputs()["status"], "running");
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["refresh", "--yes", "--expect-no-changes", "--skip-preview"]);
    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    lab.assert_empty();
}

/// A login in stack config wins over an API token in the environment (as `lab.env` and
/// most shells set it): raw passthrough, which PVE allows only to root@pam with a ticket, works.
#[test]
fn a_configured_login_wins_over_a_token_in_the_environment() {
    let lab = lab(LabConfig::seed_cluster());
    // The test harness removes the caller's PROXMOX_VE_*; this test sets the token on purpose.
    let stack = Stack::new("yaml-proxmox-gpu", lab.token_env());
    stack.set("proxmox-talos:username", "root@pam");
    stack.ok(&["config", "set", "--secret", "proxmox-talos:password", &lab.lab.credentials.password]);
    stack.ok(&["up", "--yes", "--skip-preview"]);
    assert_eq!(lab.vm_config(4401)["hostpci0"], "host=0000:28:00.0,pcie=1,x-vga=1");
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    lab.assert_empty();
}

/// A VM the token cannot see is not gone. `blind@pve!lab` may administer only VM 4999: PVE
/// leaves VM 4310 out of its `/cluster/resources`, and the direct call answers 403. `refresh`
/// fails naming the path and privilege and keeps the VM in the state; `destroy` fails and
/// the VM stays; with a token that sees it, refresh changes nothing and destroy removes it.
#[test]
fn a_vm_hidden_from_the_token_is_an_error_not_gone() {
    use proxmox_talos_lab::pve::access::{AclConfig, TokenConfig, UserConfig};
    const SECRET: &str = "5d0c7e0a-8c4b-4a55-9f39-6f0f2b6d1c11";
    let mut config = LabConfig::single_node();
    config.access.users.push(UserConfig {
        userid: "blind@pve".into(),
        password: None,
        enable: true,
        comment: None,
        tokens: vec![TokenConfig { id: "lab".into(), secret: Some(SECRET.into()), privsep: true, comment: None }],
    });
    for ugid in ["blind@pve", "blind@pve!lab"] {
        config.access.acl.push(AclConfig {
            path: "/vms/4999".into(),
            role: "PVEVMAdmin".into(),
            ugid: ugid.into(),
            propagate: true,
        });
    }
    let lab = lab(config);
    let mut stack = Stack::from_program(
        &vm_program("", 4310, "      name: hidden-1\n      started: false\n      memory: {dedicated: 512}\n"),
        lab.token_env(),
    );
    stack.ok(&["up", "--yes", "--skip-preview"]);
    wait_unlocked(&lab, 4310);

    let admin = stack.env.clone();
    stack.env = admin
        .iter()
        .map(|(k, v)| match k.as_str() {
            "PROXMOX_VE_API_TOKEN" => (k.clone(), format!("blind@pve!lab={SECRET}")),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let out = stack.fails(&["refresh", "--yes", "--skip-preview"]);
    assert!(out.contains("403 Permission check failed (/vms/4310, VM.Audit)"), "{out}");
    assert!(out.contains("grant the token VM.Audit on /vms/4310"), "{out}");
    let urns: Vec<String> = stack.export()["deployment"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    assert!(urns.iter().any(|id| id.ends_with("4310")), "the VM must stay in the state: {urns:?}");

    let out = stack.fails(&["destroy", "--yes", "--skip-preview"]);
    assert!(out.contains("VM.Audit"), "{out}");
    assert!(lab.lab.state.read(|m| m.vms.contains_key(&4310)), "destroy must not succeed while the VM may exist");

    stack.env = admin;
    stack.ok(&["refresh", "--yes", "--skip-preview", "--expect-no-changes"]);
    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    lab.assert_empty();
}

/// Moving a disk that was imported from an image to another interface (scsi0 → virtio0) is not
/// a rename to PVE but a fresh import and the old disk's destruction: the preview shows the VM
/// replaced and why (`disks[0].interface`), never a quiet in-place update.
#[test]
fn moving_an_imported_disk_to_another_interface_is_previewed_as_a_replacement() {
    let lab = lab(LabConfig::single_node());
    let image: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let url = lab.serve_files(std::collections::HashMap::from([("disk.raw".to_string(), image)]));
    let program = |interface: &str| {
        vm_program(
            &format!(
                "  image:\n    type: proxmox-talos:download:File\n    properties:\n      nodeName: pve\n      \
                 datastoreId: local\n      contentType: import\n      url: {url}/disk.raw\n      fileName: disk.raw\n"
            ),
            4320,
            &format!(
                "      started: false\n      disks:\n        - interface: {interface}\n          \
                 datastoreId: local-zfs\n          importFrom: ${{image.volumeId}}\n"
            ),
        )
    };
    let stack = Stack::from_program(&program("scsi0"), lab.token_env());
    stack.ok(&["up", "--yes", "--skip-preview"]);
    wait_unlocked(&lab, 4320);
    assert!(lab.vm_config(4320).contains_key("scsi0"));

    stack.write_program(&program("virtio0"));
    let out = stack.ok(&["preview", "--diff"]);
    assert!(out.contains("+-proxmox-talos:vm:VirtualMachine: (replace)"), "{out}");
    let out = stack.ok(&["preview", "--json"]);
    let preview: serde_json::Value = serde_json::from_str(&out).unwrap();
    let step = preview["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["urn"].as_str().is_some_and(|u| u.ends_with("::vm")) && s["op"] == "replace")
        .unwrap_or_else(|| panic!("no replace step for the VM: {out}"));
    let reasons: Vec<&str> = step["replaceReasons"].as_array().unwrap().iter().filter_map(|k| k.as_str()).collect();
    assert_eq!(reasons, ["disks"], "{step}");
    let detailed = step["detailedDiff"].as_object().unwrap();
    assert!(
        detailed
            .iter()
            .any(|(k, v)| k.starts_with("disks[0]") && v["kind"].as_str().is_some_and(|k| k.ends_with("replace"))),
        "{step}"
    );
    // Nothing changed yet.
    assert!(lab.vm_config(4320).contains_key("scsi0"));
    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    lab.assert_empty();
}

/// A concurrent edit between the provider's read and its write is kept. The program changes
/// net0's VLAN tag; just before the provider's config write reaches the lab, another client
/// sets a rate limit inside the same net0 string. The write carried the digest of the older
/// read, so PVE refuses it; the provider reads again and writes net0 with both the new tag and
/// the other client's rate.
#[test]
fn a_concurrent_edit_between_read_and_write_is_kept() {
    let lab = lab(LabConfig::single_node());
    let program = |tag: u32| {
        vm_program(
            "",
            4330,
            &format!(
                "      started: false\n      networkDevices:\n        - bridge: vmbr0\n          model: virtio\n          \
                 vlanId: {tag}\n"
            ),
        )
    };
    let stack = Stack::from_program(&program(30), lab.token_env());
    stack.ok(&["up", "--yes", "--skip-preview"]);
    wait_unlocked(&lab, 4330);
    let before = lab.vm_config(4330)["net0"].clone();
    assert!(before.contains("tag=30"), "{before}");

    lab.lab.state.interleave_before("PUT", "/nodes/pve/qemu/4330/config", |state| {
        state.write(|m| {
            let vm = m.vms.get_mut(&4330).unwrap();
            let net0 = vm.config["net0"].clone();
            vm.config.insert("net0".into(), format!("{net0},rate=50"));
        });
    });
    stack.write_program(&program(40));
    let up = stack.ok(&["up", "--yes", "--skip-preview"]);
    let after = lab.vm_config(4330)["net0"].clone();
    assert!(after.contains("tag=40") && after.contains("rate=50"), "the other client's rate was lost: {after}\n{up}");
    let mac = before.split(',').next().unwrap();
    assert!(after.starts_with(mac), "same NIC: {before} -> {after}");
    let refused: Vec<_> = lab
        .lab
        .state
        .requests()
        .1
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/4330/config"))
        .collect();
    assert!(refused.iter().any(|r| r.status == 500), "the stale write was refused: {refused:?}");
    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    lab.assert_empty();
}
