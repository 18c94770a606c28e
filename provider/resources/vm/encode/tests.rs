//! Tests of `encode`: exact PVE encodings, the sshkeys double encoding, merges
//! into a clone's configuration, deletes, resizes, moves and the clone call.

use super::*;
use crate::resources::vm::args::*;

fn config(pairs: &[(&str, &str)]) -> Config {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn get<'a>(params: &'a Params, key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn full() -> VirtualMachineArgs {
    VirtualMachineArgs {
        node_name: "pve".into(),
        name: Some("talos-wk-4".into()),
        description: Some("GPU worker".into()),
        tags: Some(vec!["worker".into(), "gpu".into()]),
        on_boot: Some(true),
        pool_id: Some("talos".into()),
        bios: Some("ovmf".into()),
        machine: Some("q35".into()),
        operating_system: Some(OperatingSystem { os_type: Some("l26".into()) }),
        agent: Some(Agent {
            enabled: Some(true),
            trim: Some(false),
            agent_type: Some("virtio".into()),
            ..Default::default()
        }),
        cpu: Some(Cpu {
            cores: Some(4),
            sockets: Some(1),
            cpu_type: Some("host".into()),
            flags: Some(vec!["+aes".into(), "-pcid".into()]),
            numa: Some(true),
            limit: Some(2.5),
            units: Some(200),
        }),
        memory: Some(Memory { dedicated: Some(8192), floating: Some(4096), shared: Some(64) }),
        disks: Some(vec![
            Disk {
                interface: "scsi0".into(),
                datastore_id: Some("local-zfs".into()),
                size: Some(125),
                import_from: Some("local:import/talos.raw".into()),
                iothread: Some(true),
                ssd: Some(true),
                discard: Some("on".into()),
                ..Default::default()
            },
            Disk {
                interface: "virtio1".into(),
                datastore_id: Some("tank".into()),
                size: Some(32),
                file_format: Some("qcow2".into()),
                cache: Some("writeback".into()),
                aio: Some("native".into()),
                backup: Some(false),
                replicate: Some(false),
                serial: Some("data 01".into()),
                ..Default::default()
            },
        ]),
        efi_disk: Some(EfiDisk {
            datastore_id: Some("local-zfs".into()),
            efi_type: Some("4m".into()),
            ..Default::default()
        }),
        tpm_state: Some(TpmState { datastore_id: Some("local-zfs".into()), version: None }),
        network_devices: Some(vec![NetworkDevice {
            bridge: Some("vmbr0".into()),
            mac_address: Some("BC:24:11:4A:2F:01".into()),
            firewall: Some(true),
            vlan_id: Some(10),
            mtu: Some(1),
            queues: Some(4),
            rate_limit: Some(12.5),
            trunks: Some("20;30".into()),
            enabled: Some(false),
            ..Default::default()
        }]),
        initialization: Some(Initialization {
            datastore_id: Some("local-zfs".into()),
            ci_type: Some("nocloud".into()),
            ip_configs: Some(vec![IpConfig {
                ipv4: Some(IpAddressConfig { address: Some("10.0.0.5/24".into()), gateway: Some("10.0.0.1".into()) }),
                ipv6: Some(IpAddressConfig { address: Some("fd00::5/64".into()), gateway: Some("fd00::1".into()) }),
            }]),
            dns: Some(Dns {
                servers: Some(vec!["10.0.0.1".into(), "1.1.1.1".into()]),
                domain: Some("home.arpa".into()),
            }),
            user_account: Some(UserAccount {
                username: Some("ops".into()),
                password: Some("pw".into()),
                keys: Some(vec!["ssh-ed25519 AAAA+/= a@b".into(), "ssh-rsa BBBB c@d".into()]),
            }),
            vendor_data_file_id: Some("local:snippets/vendor.yaml".into()),
            upgrade: Some(false),
            ..Default::default()
        }),
        hostpcis: Some(vec![
            HostPci {
                device: "hostpci0".into(),
                id: Some("0000:28:00.0".into()),
                pcie: Some(true),
                xvga: Some(true),
                ..Default::default()
            },
            HostPci {
                device: "hostpci1".into(),
                mapping: Some("nic".into()),
                rombar: Some(false),
                ..Default::default()
            },
        ]),
        serial_devices: Some(vec![SerialDevice { device: "socket".into() }]),
        vga: Some(Vga { vga_type: Some("std".into()), memory: Some(32), clipboard: Some("vnc".into()) }),
        boot_orders: Some(vec!["scsi0".into(), "net0".into()]),
        startup: Some(Startup { order: Some(1), up_delay: Some(10), down_delay: Some(30) }),
        ..Default::default()
    }
}

#[test]
fn create_params_use_exact_pve_encodings() {
    let p = create_params(&full(), 204);
    let expect = [
        ("vmid", "204"),
        ("pool", "talos"),
        ("scsihw", "virtio-scsi-pci"),
        ("name", "talos-wk-4"),
        ("description", "GPU worker"),
        ("tags", "gpu;worker"),
        ("onboot", "1"),
        ("bios", "ovmf"),
        ("machine", "q35"),
        ("ostype", "l26"),
        ("agent", "enabled=1,fstrim_cloned_disks=0,type=virtio"),
        ("cpu", "host,flags=+aes;-pcid"),
        ("cores", "4"),
        ("sockets", "1"),
        ("numa", "1"),
        ("cpulimit", "2.5"),
        ("cpuunits", "200"),
        ("memory", "8192"),
        ("balloon", "4096"),
        ("ivshmem", "size=64"),
        ("scsi0", "local-zfs:0,discard=on,import-from=local:import/talos.raw,iothread=1,ssd=1"),
        ("virtio1", "tank:32,aio=native,backup=0,cache=writeback,format=qcow2,replicate=0,serial=data%2001"),
        ("efidisk0", "local-zfs:1,efitype=4m,pre-enrolled-keys=0"),
        ("tpmstate0", "local-zfs:1,version=v2.0"),
        (
            "net0",
            "virtio=BC:24:11:4A:2F:01,bridge=vmbr0,firewall=1,link_down=1,mtu=1,queues=4,rate=12.5,tag=10,trunks=20;30",
        ),
        ("ide2", "local-zfs:cloudinit"),
        ("ipconfig0", "ip=10.0.0.5/24,gw=10.0.0.1,ip6=fd00::5/64,gw6=fd00::1"),
        ("nameserver", "10.0.0.1 1.1.1.1"),
        ("searchdomain", "home.arpa"),
        ("ciuser", "ops"),
        ("cipassword", "pw"),
        ("sshkeys", "ssh-ed25519%20AAAA%2B%2F%3D%20a%40b%0Assh-rsa%20BBBB%20c%40d"),
        ("citype", "nocloud"),
        ("ciupgrade", "0"),
        ("cicustom", "vendor=local:snippets/vendor.yaml"),
        ("hostpci0", "host=0000:28:00.0,pcie=1,x-vga=1"),
        ("hostpci1", "mapping=nic,rombar=0"),
        ("serial0", "socket"),
        ("vga", "std,clipboard=vnc,memory=32"),
        ("boot", "order=scsi0;net0"),
        ("startup", "order=1,up=10,down=30"),
    ];
    let got: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(got, expect);
    assert!(allocates(&p));
}

#[test]
fn a_minimal_vm_gets_the_documented_defaults_for_new_devices() {
    let args = VirtualMachineArgs {
        node_name: "pve".into(),
        disks: Some(vec![Disk { interface: "scsi0".into(), ..Default::default() }]),
        network_devices: Some(vec![NetworkDevice::default()]),
        efi_disk: Some(EfiDisk::default()),
        initialization: Some(Initialization::default()),
        ..Default::default()
    };
    let p = create_params(&args, 100);
    assert_eq!(get(&p, "scsihw"), Some("virtio-scsi-pci"));
    assert_eq!(get(&p, "scsi0"), Some("local-lvm:8"));
    assert_eq!(get(&p, "net0"), Some("virtio,bridge=vmbr0"));
    assert_eq!(get(&p, "efidisk0"), Some("local-lvm:1,efitype=2m,pre-enrolled-keys=0"));
    assert_eq!(get(&p, "ide2"), Some("local-lvm:cloudinit"));
    assert_eq!(p.len(), 6, "nothing unset is sent: {p:?}");
}

#[test]
fn sshkeys_are_url_encoded_once_here_and_again_by_the_form() {
    let keys = vec!["ssh-ed25519 AAAAC3Nz+k/x= me@host".to_string(), " ssh-rsa AAAAB3Nz deploy@ci \n".to_string()];
    let value = sshkeys_value(&keys);
    assert_eq!(value, "ssh-ed25519%20AAAAC3Nz%2Bk%2Fx%3D%20me%40host%0Assh-rsa%20AAAAB3Nz%20deploy%40ci");
    assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-%_.!~*'()".contains(&b)), "PVE's urlencoded pattern");
    // The form body (as reqwest's `.form()` writes it) encodes the `%` again.
    let mut url = reqwest::Url::parse("http://pve/").unwrap();
    url.query_pairs_mut().append_pair("sshkeys", &value);
    assert_eq!(url.query(), Some("sshkeys=ssh-ed25519%2520AAAAC3Nz%252Bk%252Fx%253D%2520me%2540host%250Assh-rsa%2520AAAAB3Nz%2520deploy%2540ci"));
    assert_eq!(ssh_keys(&value), vec!["ssh-ed25519 AAAAC3Nz+k/x= me@host", "ssh-rsa AAAAB3Nz deploy@ci"]);
}

#[test]
fn config_diff_merges_into_existing_values_and_compares_by_meaning() {
    let current = config(&[
        ("agent", "1"),
        ("tags", "b;a"),
        ("onboot", "1"),
        ("scsi0", "local-zfs:vm-100-disk-0,cache=none,iothread=1,size=32G"),
        ("net0", "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=0"),
        ("description", "notes\n"),
        ("sshkeys", "ssh-ed25519%20AAAA%20x%0A"),
        ("memory", "current=2048"),
    ]);
    let args = VirtualMachineArgs {
        node_name: "pve".into(),
        agent: Some(Agent { enabled: Some(true), agent_type: Some("virtio".into()), ..Default::default() }),
        tags: Some(vec!["a".into(), "b".into()]),
        on_boot: Some(true),
        description: Some("notes".into()),
        disks: Some(vec![Disk { interface: "scsi0".into(), ssd: Some(true), ..Default::default() }]),
        network_devices: Some(vec![NetworkDevice {
            model: Some("e1000".into()),
            bridge: Some("vmbr0".into()),
            ..Default::default()
        }]),
        initialization: Some(Initialization {
            user_account: Some(UserAccount { keys: Some(vec!["ssh-ed25519 AAAA x".into()]), ..Default::default() }),
            ..Default::default()
        }),
        memory: Some(Memory { dedicated: Some(2048), ..Default::default() }),
        ..Default::default()
    };
    let (set, delete) = config_diff(&current, &args);
    assert_eq!(
        set,
        vec![
            ("scsi0".to_string(), "local-zfs:vm-100-disk-0,cache=none,iothread=1,size=32G,ssd=1".to_string()),
            ("net0".into(), "e1000=BC:24:11:00:00:01,bridge=vmbr0,firewall=0".into()),
            ("ide2".into(), "local-lvm:cloudinit".into()),
        ],
        "agent, tags, description, keys and memory are unchanged in meaning; the MAC is kept"
    );
    assert!(delete.is_empty());
}

#[test]
fn clearing_values_deletes_keys_and_unset_values_are_left_alone() {
    let current = config(&[
        ("description", "old"),
        ("tags", "a"),
        ("boot", "order=scsi0"),
        ("nameserver", "1.1.1.1"),
        ("ivshmem", "size=32"),
        ("hostpci0", "host=0000:28:00.0"),
        ("hostpci3", "mapping=gpu"),
        ("serial0", "socket"),
        ("serial1", "/dev/ttyS1"),
        ("cores", "4"),
    ]);
    let args = VirtualMachineArgs {
        node_name: "pve".into(),
        description: Some(String::new()),
        tags: Some(vec![]),
        boot_orders: Some(vec![]),
        memory: Some(Memory { shared: Some(0), ..Default::default() }),
        initialization: Some(Initialization {
            dns: Some(Dns { servers: Some(vec![]), ..Default::default() }),
            interface: Some("ide2".into()),
            ..Default::default()
        }),
        hostpcis: Some(vec![HostPci { device: "hostpci0".into(), mapping: Some("gpu".into()), ..Default::default() }]),
        serial_devices: Some(vec![SerialDevice { device: "socket".into() }]),
        ..Default::default()
    };
    let (set, delete) = config_diff(&current, &args);
    assert_eq!(
        set,
        vec![("ide2".to_string(), "local-lvm:cloudinit".to_string()), ("hostpci0".into(), "mapping=gpu".into())]
    );
    assert_eq!(delete, vec!["description", "tags", "ivshmem", "nameserver", "hostpci3", "serial1", "boot"]);
}

#[test]
fn the_cloud_init_drive_moves_when_its_interface_changes() {
    let current =
        config(&[("ide2", "local-zfs:vm-100-cloudinit,media=cdrom"), ("scsi0", "local-zfs:vm-100-disk-0,size=8G")]);
    let moved = VirtualMachineArgs {
        node_name: "pve".into(),
        initialization: Some(Initialization { interface: Some("scsi1".into()), ..Default::default() }),
        ..Default::default()
    };
    assert_eq!(
        config_diff(&current, &moved),
        (vec![("scsi1".to_string(), "local-zfs:cloudinit".to_string())], vec!["ide2".to_string()])
    );
    let kept = VirtualMachineArgs {
        node_name: "pve".into(),
        initialization: Some(Initialization::default()),
        ..Default::default()
    };
    assert_eq!(config_diff(&current, &kept), (vec![], vec![]));
}

#[test]
fn the_cdrom_holds_its_iso_and_is_the_only_cdrom_besides_the_cloud_init_drive() {
    let with_cdrom = |file: &str, iface: Option<&str>| VirtualMachineArgs {
        node_name: "pve".into(),
        cdrom: Some(Cdrom { file_id: file.into(), interface: iface.map(str::to_string) }),
        ..Default::default()
    };
    let iso = with_cdrom("local:iso/talos.iso", None);
    assert_eq!(get(&create_params(&iso, 100), "ide3"), Some("local:iso/talos.iso,media=cdrom"));
    // PVE adds the ISO's size: no change. Another CD-ROM goes; the cloud-init drive stays.
    let current = config(&[
        ("ide0", "none,media=cdrom"),
        ("ide2", "local-zfs:vm-100-cloudinit,media=cdrom"),
        ("ide3", "local:iso/talos.iso,media=cdrom,size=64K"),
    ]);
    assert_eq!(config_diff(&current, &iso), (vec![], vec!["ide0".to_string()]));
    // Another ISO on another slot.
    let moved = with_cdrom("local:iso/other.iso", Some("sata0"));
    let (set, delete) = config_diff(&current, &moved);
    assert_eq!(set, vec![("sata0".to_string(), "local:iso/other.iso,media=cdrom".to_string())]);
    assert_eq!(delete, vec!["ide0".to_string(), "ide3".to_string()]);
    // Ejected.
    let (set, _) = config_diff(&current, &with_cdrom("none", None));
    assert_eq!(set, vec![("ide3".to_string(), "none,media=cdrom".to_string())]);
}

#[test]
fn resizes_grow_only_and_read_unit_sizes() {
    let current = config(&[
        ("scsi0", "local-zfs:vm-100-disk-0,size=3584M"),
        ("scsi1", "local-zfs:vm-100-disk-1,size=32G"),
        ("scsi2", "local-zfs:vm-100-disk-2,size=1T"),
    ]);
    let disk = |i: &str, size: i64| Disk { interface: i.into(), size: Some(size), ..Default::default() };
    let args = VirtualMachineArgs {
        node_name: "pve".into(),
        disks: Some(vec![disk("scsi0", 4), disk("scsi1", 32), disk("scsi2", 512), disk("scsi3", 8)]),
        ..Default::default()
    };
    assert_eq!(resizes(&current, &args), vec![("scsi0".to_string(), "4G".to_string())]);
}

#[test]
fn moves_imports_and_the_clone_call() {
    let current =
        config(&[("scsi0", "local-lvm:vm-100-disk-0,size=8G"), ("ide2", "local-lvm:vm-100-cloudinit,media=cdrom")]);
    let args = VirtualMachineArgs {
        node_name: "pve2".into(),
        name: Some("rke2".into()),
        disks: Some(vec![
            Disk { interface: "scsi0".into(), datastore_id: Some("local-zfs".into()), ..Default::default() },
            Disk {
                interface: "scsi1".into(),
                file_id: Some("local:import/talos.img".into()),
                iothread: Some(true),
                ..Default::default()
            },
            Disk { interface: "scsi2".into(), file_id: Some("local:import/talos.qcow2".into()), ..Default::default() },
        ]),
        clone: Some(CloneSource {
            vm_id: 90001,
            node_name: Some("pve".into()),
            datastore_id: Some("local-zfs".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(disk_moves(&current, &args), vec![("scsi0".to_string(), "local-zfs".to_string())]);
    let (set, _) = config_diff(&current, &args);
    assert_eq!(get(&set, "scsi1"), Some("local-lvm:0,import-from=local:import/talos.img,iothread=1"));
    assert_eq!(get(&set, "scsi2"), Some("local-lvm:0,import-from=local:import/talos.qcow2"));
    let (node, vmid, params) = clone_request(&args, 301).unwrap();
    assert_eq!((node.as_str(), vmid), ("pve", 90001));
    let expect: Params =
        [("newid", "301"), ("full", "1"), ("name", "rke2"), ("storage", "local-zfs"), ("target", "pve2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(params, expect);
}
