//! Tests of `read_args`: importing a configuration as PVE returns it, the
//! disk-size rule, and the prior-shaped read (unset stays unset, defaults fill in).

use super::*;

fn config(pairs: &[(&str, &str)]) -> Config {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A VM made in the web UI, as `GET .../config` returns it.
fn hand_made() -> Config {
    config(&[
        ("agent", "1,fstrim_cloned_disks=1"),
        ("boot", "order=scsi0;ide2;net0"),
        ("cores", "4"),
        ("cpu", "x86-64-v2-AES,flags=+aes"),
        ("description", "hand made\n"),
        ("efidisk0", "local-zfs:vm-150-disk-1,efitype=4m,pre-enrolled-keys=1,size=528K"),
        ("hostpci0", "0000:28:00.0,pcie=1,x-vga=1"),
        ("ide2", "local-zfs:vm-150-cloudinit,media=cdrom"),
        ("ide0", "none,media=cdrom"),
        ("ipconfig0", "gw=10.0.0.1,ip=10.0.0.50/24"),
        ("machine", "q35"),
        ("memory", "8192"),
        ("meta", "creation-qemu=9.2.0,ctime=1735689600"),
        ("name", "legacy"),
        ("net0", "virtio=bc:24:11:aa:bb:cc,bridge=vmbr0,tag=30"),
        ("numa", "0"),
        ("onboot", "1"),
        ("ostype", "l26"),
        ("scsi0", "local-zfs:vm-150-disk-0,iothread=1,size=3584M"),
        ("scsi1", "local-zfs:vm-150-disk-2,backup=0,serial=data%2001,size=100G"),
        ("scsihw", "virtio-scsi-single"),
        ("sshkeys", "ssh-ed25519%20AAAAC3Nz%2Bx%3D%20a%40b%0A"),
        ("startup", "order=3,up=15"),
        ("tags", "b;a;c"),
        ("tpmstate0", "local-zfs:vm-150-disk-3,size=4M,version=v2.0"),
        ("cicustom", "user=local:snippets/u.yaml,vendor=local:snippets/v.yaml"),
        ("citype", "nocloud"),
        ("ciuser", "admin"),
        ("cipassword", "**********"),
        ("vga", "serial0"),
        ("serial0", "socket"),
        ("unused0", "local-zfs:vm-150-disk-9"),
    ])
}

#[test]
fn an_import_reads_everything_pve_holds() {
    let a = read_args(&hand_made(), None);
    assert_eq!(a.name.as_deref(), Some("legacy"));
    assert_eq!(a.description.as_deref(), Some("hand made\n"));
    assert_eq!(a.tags, Some(vec!["a".to_string(), "b".into(), "c".into()]));
    assert_eq!(a.on_boot, Some(true));
    let agent = a.agent.unwrap();
    assert_eq!((agent.enabled, agent.trim, agent.agent_type, agent.timeout), (Some(true), Some(true), None, None));
    let cpu = a.cpu.unwrap();
    assert_eq!(cpu.cpu_type.as_deref(), Some("x86-64-v2-AES"));
    assert_eq!(cpu.flags, Some(vec!["+aes".to_string()]));
    assert_eq!((cpu.cores, cpu.numa, cpu.sockets), (Some(4), Some(false), None));
    assert_eq!(a.memory.unwrap().dedicated, Some(8192));
    let disks = a.disks.unwrap();
    assert_eq!(
        disks.iter().map(|d| d.interface.as_str()).collect::<Vec<_>>(),
        vec!["scsi0", "scsi1"],
        "CD-ROMs and the cloud-init drive are not disks"
    );
    assert_eq!(
        (disks[0].size, disks[0].iothread, disks[0].datastore_id.as_deref()),
        (Some(4), Some(true), Some("local-zfs"))
    );
    assert_eq!((disks[1].size, disks[1].backup, disks[1].serial.as_deref()), (Some(100), Some(false), Some("data 01")));
    assert_eq!(disks[0].import_from, None);
    let efi = a.efi_disk.unwrap();
    assert_eq!((efi.efi_type.as_deref(), efi.pre_enrolled_keys), (Some("4m"), Some(true)));
    assert_eq!(a.tpm_state.unwrap().version.as_deref(), Some("v2.0"));
    let nic = &a.network_devices.unwrap()[0];
    assert_eq!((nic.model.as_deref(), nic.mac_address.as_deref()), (Some("virtio"), Some("BC:24:11:AA:BB:CC")));
    assert_eq!((nic.bridge.as_deref(), nic.vlan_id, nic.firewall), (Some("vmbr0"), Some(30), None));
    let init = a.initialization.unwrap();
    assert_eq!((init.interface.as_deref(), init.datastore_id.as_deref()), (Some("ide2"), Some("local-zfs")));
    let ip = init.ip_configs.unwrap()[0].ipv4.clone().unwrap();
    assert_eq!((ip.address.as_deref(), ip.gateway.as_deref()), (Some("10.0.0.50/24"), Some("10.0.0.1")));
    let user = init.user_account.unwrap();
    assert_eq!(user.username.as_deref(), Some("admin"));
    assert_eq!(user.password, None, "PVE never returns it");
    assert_eq!(user.keys, Some(vec!["ssh-ed25519 AAAAC3Nz+x= a@b".to_string()]));
    assert_eq!(init.user_data_file_id.as_deref(), Some("local:snippets/u.yaml"));
    assert_eq!(init.vendor_data_file_id.as_deref(), Some("local:snippets/v.yaml"));
    assert_eq!(init.ci_type.as_deref(), Some("nocloud"));
    let pci = &a.hostpcis.unwrap()[0];
    assert_eq!((pci.id.as_deref(), pci.pcie, pci.xvga), (Some("0000:28:00.0"), Some(true), Some(true)));
    assert_eq!(a.boot_orders, Some(vec!["scsi0".to_string(), "ide2".into(), "net0".into()]));
    let st = a.startup.unwrap();
    assert_eq!((st.order, st.up_delay, st.down_delay), (Some(3), Some(15), None));
    assert_eq!(a.vga.unwrap().vga_type.as_deref(), Some("serial0"));
    assert_eq!(a.serial_devices.unwrap()[0].device, "socket");
    assert_eq!((a.clone, a.started, a.vm_id), (None, None, None));
}

#[test]
fn an_empty_config_imports_as_empty_inputs() {
    let a = read_args(&Config::new(), None);
    assert_eq!(a, VirtualMachineArgs::default());
}

#[test]
fn unset_inputs_stay_unset_and_set_ones_get_pve_defaults() {
    let prior = VirtualMachineArgs {
        node_name: "pve".into(),
        vm_id: Some(150),
        on_boot: Some(false),
        bios: Some("seabios".into()),
        cpu: Some(Cpu { sockets: Some(1), flags: Some(vec![]), ..Default::default() }),
        network_devices: Some(vec![NetworkDevice {
            firewall: Some(false),
            enabled: Some(true),
            vlan_id: Some(30),
            ..Default::default()
        }]),
        disks: Some(vec![Disk {
            interface: "scsi1".into(),
            replicate: Some(true),
            cache: Some("none".into()),
            ..Default::default()
        }]),
        timeout_create: Some(60),
        ..Default::default()
    };
    let c = hand_made();
    let a = read_args(&c, Some(&prior));
    assert_eq!((a.node_name.as_str(), a.vm_id, a.timeout_create), ("pve", Some(150), Some(60)));
    assert_eq!(a.on_boot, Some(true), "drift: PVE has onboot=1");
    let mut c2 = c.clone();
    c2.insert("onboot".into(), "0".into());
    assert_eq!(read_args(&c2, Some(&prior)).on_boot, Some(false));
    c2.remove("onboot");
    assert_eq!(read_args(&c2, Some(&prior)).on_boot, Some(false), "absent is PVE's default");
    assert_eq!(a.bios.as_deref(), Some("seabios"));
    assert_eq!(a.name, None, "not managed");
    assert_eq!(a.cpu, Some(Cpu { sockets: Some(1), flags: Some(vec!["+aes".into()]), ..Default::default() }));
    let nic = &a.network_devices.as_ref().unwrap()[0];
    assert_eq!(
        (nic.firewall, nic.enabled, nic.vlan_id, nic.mac_address.as_deref()),
        (Some(false), Some(true), Some(30), None)
    );
    // Disks in the prior order, then the others by slot; unknown disks are read in full.
    let disks = a.disks.unwrap();
    assert_eq!(
        disks[0],
        Disk { interface: "scsi1".into(), replicate: Some(true), cache: Some("none".into()), ..Default::default() }
    );
    assert_eq!(disks[1].interface, "scsi0");
    assert_eq!(disks[1].size, Some(4));
    assert_eq!((a.agent, a.initialization, a.hostpcis, a.efi_disk), (None, None, None, None));
}

#[test]
fn disk_sizes_follow_the_documented_rule() {
    let with = |size: &str| config(&[("scsi0", &format!("local-zfs:vm-1-disk-0,size={size}"))]);
    let prior = |size: i64, import: bool| VirtualMachineArgs {
        node_name: "pve".into(),
        disks: Some(vec![Disk {
            interface: "scsi0".into(),
            size: Some(size),
            import_from: import.then(|| "local:import/talos.raw".to_string()),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let size = |c: Config, p: Option<VirtualMachineArgs>| read_args(&c, p.as_ref()).disks.unwrap()[0].size;
    // Import: whole GB rounded up.
    assert_eq!(size(with("3584M"), None), Some(4));
    assert_eq!(size(with("32G"), None), Some(32));
    assert_eq!(size(with("1T"), None), Some(1024));
    assert_eq!(size(with("33554432K"), None), Some(32));
    // Rounding is not drift.
    assert_eq!(size(with("3584M"), Some(prior(4, false))), Some(4));
    // An image larger than asked is not drift (it cannot shrink) ...
    assert_eq!(size(with("3584M"), Some(prior(2, true))), Some(2));
    // ... but a blank disk that grew is, and so is a disk smaller than asked.
    assert_eq!(size(with("40G"), Some(prior(32, false))), Some(40));
    assert_eq!(size(with("16G"), Some(prior(32, true))), Some(16));
    // A managed disk without a size stays unmanaged; no size= keeps the prior size.
    assert_eq!(
        size(
            with("40G"),
            Some(prior(32, false)).map(|mut p| {
                p.disks.as_mut().unwrap()[0].size = None;
                p
            })
        ),
        None
    );
    let no_size = config(&[("scsi0", "local-zfs:vm-1-disk-0")]);
    assert_eq!(size(no_size, Some(prior(32, false))), Some(32));
}

#[test]
fn descriptions_and_removed_devices() {
    let prior = VirtualMachineArgs {
        node_name: "pve".into(),
        description: Some("hand made".into()),
        efi_disk: Some(EfiDisk { efi_type: Some("4m".into()), ..Default::default() }),
        tags: Some(vec![]),
        ..Default::default()
    };
    let mut c = hand_made();
    let a = read_args(&c, Some(&prior));
    assert_eq!(a.description.as_deref(), Some("hand made"), "PVE's trailing newline is not drift");
    assert_eq!(a.efi_disk.as_ref().unwrap().efi_type.as_deref(), Some("4m"));
    c.remove("efidisk0");
    c.remove("tags");
    let a = read_args(&c, Some(&prior));
    assert_eq!(a.efi_disk, Some(EfiDisk::default()), "gone: shows as a change that re-adds it, never as a type change");
    assert_eq!(a.tags, Some(vec![]));
    assert!(replacement_paths(&a, &prior).is_empty());
}

#[test]
fn the_cdrom_reads_back_at_its_slot() {
    // Importing: the first CD-ROM drive that is not the cloud-init drive.
    let imported = read_args(&hand_made(), None).cdrom;
    assert_eq!(imported, Some(Cdrom { file_id: "none".into(), interface: Some("ide0".into()) }));
    let prior = VirtualMachineArgs {
        node_name: "pve".into(),
        cdrom: Some(Cdrom { file_id: "local:iso/talos.iso".into(), interface: None }),
        ..Default::default()
    };
    let stored = config(&[("ide3", "local:iso/talos.iso,media=cdrom,size=64K")]);
    assert_eq!(read_args(&stored, Some(&prior)).cdrom, prior.cdrom);
    // Ejected, or the drive removed, outside Pulumi: drift.
    let ejected = read_args(&config(&[("ide3", "none,media=cdrom")]), Some(&prior)).cdrom.unwrap();
    assert_eq!(ejected.file_id, "none");
    assert_eq!(read_args(&config(&[]), Some(&prior)).cdrom.unwrap().file_id, "");
    // Unmanaged stays unmanaged.
    let unmanaged = VirtualMachineArgs { node_name: "pve".into(), ..Default::default() };
    assert_eq!(read_args(&stored, Some(&unmanaged)).cdrom, None);
}
