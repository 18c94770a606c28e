//! Round trips over realistic seed VMs: inputs → `create_params` (or a clone plus
//! `config_diff`) → the configuration as PVE stores it → `read_args` gives the
//! inputs back, `config_diff` is empty, and an import replaces nothing.
//!
//! [`Pve`] mimics what PVE does to stored values, as the lab and a real PVE do:
//! allocations (`local-zfs:32`, `:0,import-from=`, `:cloudinit`) become volumes
//! with a `size=`, `net[n]` is re-printed as `virtio=MAC,...` with a generated
//! MAC, drives are re-printed (file first, options sorted), and `meta`, `smbios1`,
//! `vmgenid` and a default `boot` are added.

use std::collections::BTreeMap;

use super::args::*;
use super::check;
use super::decode::read_args;
use super::encode::{self, Config, Params};
use super::format::{self as f, PropString};

/// The stored configuration of one VM, changed as PVE changes it.
struct Pve {
    vmid: i64,
    config: Config,
    next_disk: u32,
    /// Bytes of the images `import-from` reads.
    images: BTreeMap<&'static str, u64>,
}

fn size_text(bytes: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

impl Pve {
    fn new(vmid: i64) -> Self {
        let images = [("local:import/talos-v1.12.4-nocloud-amd64.raw", 1280u64 << 20)].into_iter().collect();
        Pve { vmid, config: Config::new(), next_disk: 0, images }
    }

    fn create(vmid: i64, params: &Params) -> Self {
        let mut pve = Pve::new(vmid);
        pve.put(params, &[]);
        pve.config.insert("meta".into(), "creation-qemu=9.2.0,ctime=1735689600".into());
        pve.config.insert("smbios1".into(), "uuid=7d9c7a38-1b37-4d2e-9d1e-3c1a8f0b2c11".into());
        pve.config.insert("vmgenid".into(), "5a2e0f7c-98a1-4c1e-b0b4-0d2f1e6a9c33".into());
        pve.config.entry("boot".into()).or_insert_with(|| "order=scsi0;ide2;net0".into());
        pve
    }

    fn store(&mut self, key: &str, value: &str) -> String {
        let is_drive = f::is_disk_key(key) || key == "efidisk0" || key == "tpmstate0";
        if key.starts_with("net") && f::split_slot(key, "net").is_some() {
            let mut p = f::net(value);
            if p.get("macaddr").is_none() {
                p.set("macaddr", format!("BC:24:11:{:02X}:{:02X}:{:02X}", self.vmid % 256, self.next_disk, key.len()));
            }
            return f::print_net(&p);
        }
        if !is_drive {
            return value.to_string();
        }
        let mut d = f::drive(value);
        let file = d.get("file").unwrap_or_default().to_string();
        let (storage, what) = file.split_once(':').unwrap();
        if what == "cloudinit" {
            d.set("file", format!("{storage}:vm-{}-cloudinit", self.vmid));
            d.set("media", "cdrom");
        } else if what.bytes().all(|b| b.is_ascii_digit()) {
            let bytes = match (key, d.get("import-from")) {
                ("efidisk0", _) => 528 << 10,
                ("tpmstate0", _) => 4 << 20,
                (_, Some(src)) => self.images[src],
                _ => what.parse::<u64>().unwrap() << 30,
            };
            d.remove("import-from");
            d.set("file", format!("{storage}:vm-{}-disk-{}", self.vmid, self.next_disk));
            d.set("size", size_text(bytes));
            self.next_disk += 1;
        }
        d.canonical("file")
    }

    /// `PUT .../config` (or the create).
    fn put(&mut self, set: &Params, delete: &[String]) {
        for key in delete {
            self.config.remove(key);
        }
        for (k, v) in set {
            if k == "vmid" || k == "pool" {
                continue;
            }
            let stored = self.store(k, v);
            self.config.insert(k.clone(), stored);
        }
    }

    /// `PUT .../resize`.
    fn resize(&mut self, disk: &str, size: &str) {
        let mut d = f::drive(&self.config[disk]);
        d.set("size", size);
        self.config.insert(disk.into(), d.canonical("file"));
    }

    /// What a provider would do after the create call: grow imported disks.
    fn settle(&mut self, args: &VirtualMachineArgs) {
        for (disk, size) in encode::resizes(&self.config, args) {
            self.resize(&disk, &size);
        }
    }
}

fn talos(name: &str, vmid: i64, cores: i64, memory: i64, disk_gb: i64, ip: &str) -> VirtualMachineArgs {
    let role = if name.contains("-cp-") { "controlplane" } else { "worker" };
    VirtualMachineArgs {
        node_name: "pve".into(),
        vm_id: Some(vmid),
        name: Some(name.into()),
        description: Some(format!("Talos {role}, managed by Pulumi")),
        tags: Some(vec!["talos".into(), role.into()]),
        on_boot: Some(true),
        started: Some(true),
        machine: Some("q35".into()),
        scsi_hardware: Some("virtio-scsi-single".into()),
        operating_system: Some(OperatingSystem { os_type: Some("l26".into()) }),
        agent: Some(Agent {
            enabled: Some(true),
            timeout: Some("15m".into()),
            trim: Some(true),
            wait_for_ip: Some(WaitForIp { ipv4: Some(true), ..Default::default() }),
            ..Default::default()
        }),
        cpu: Some(Cpu { cores: Some(cores), sockets: Some(1), cpu_type: Some("host".into()), ..Default::default() }),
        memory: Some(Memory { dedicated: Some(memory), floating: Some(0), ..Default::default() }),
        disks: Some(vec![Disk {
            interface: "scsi0".into(),
            datastore_id: Some("local-zfs".into()),
            size: Some(disk_gb),
            import_from: Some("local:import/talos-v1.12.4-nocloud-amd64.raw".into()),
            iothread: Some(true),
            ssd: Some(true),
            discard: Some("on".into()),
            ..Default::default()
        }]),
        network_devices: Some(vec![NetworkDevice {
            bridge: Some("vmbr0".into()),
            model: Some("virtio".into()),
            firewall: Some(false),
            ..Default::default()
        }]),
        initialization: Some(Initialization {
            datastore_id: Some("local-zfs".into()),
            ip_configs: Some(vec![IpConfig {
                ipv4: Some(IpAddressConfig { address: Some(format!("{ip}/24")), gateway: Some("10.0.0.1".into()) }),
                ipv6: None,
            }]),
            dns: Some(Dns {
                servers: Some(vec!["10.0.0.1".into(), "1.1.1.1".into()]),
                domain: Some("home.arpa".into()),
            }),
            ..Default::default()
        }),
        serial_devices: Some(vec![SerialDevice { device: "socket".into() }]),
        vga: Some(Vga { vga_type: Some("serial0".into()), ..Default::default() }),
        boot_orders: Some(vec!["scsi0".into()]),
        startup: Some(Startup {
            order: Some(if role == "worker" { 2 } else { 1 }),
            up_delay: Some(30),
            down_delay: None,
        }),
        stop_on_destroy: Some(true),
        timeout_start_vm: Some(600),
        ..Default::default()
    }
}

/// The 7-VM Talos design: 3 control planes, 4 workers, one with the GPU.
fn talos_cluster() -> Vec<VirtualMachineArgs> {
    let mut vms: Vec<VirtualMachineArgs> =
        (1..=3).map(|i| talos(&format!("talos-cp-{i}"), 100 + i, 2, 4096, 30, &format!("10.0.0.1{i}"))).collect();
    vms.extend((1..=4).map(|i| talos(&format!("talos-wk-{i}"), 200 + i, 4, 8192, 125, &format!("10.0.0.2{i}"))));
    vms[6].hostpcis = Some(vec![HostPci {
        device: "hostpci0".into(),
        id: Some("0000:28:00.0".into()),
        pcie: Some(true),
        xvga: Some(true),
        ..Default::default()
    }]);
    vms[6].tags.as_mut().unwrap().push("gpu".into());
    vms[0].cdrom = Some(Cdrom { file_id: "local:iso/talos-v1.12.4-metal-amd64.iso".into(), interface: None });
    vms.into_iter().map(check::normalise).collect()
}

const KEY_ED25519: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@laptop";
const KEY_RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7+/x= deploy@ci";

fn rke2() -> VirtualMachineArgs {
    check::normalise(VirtualMachineArgs {
        node_name: "pve".into(),
        vm_id: Some(301),
        name: Some("rke2-server-1".into()),
        tags: Some(vec!["rke2".into()]),
        on_boot: Some(true),
        started: Some(true),
        scsi_hardware: Some("virtio-scsi-pci".into()),
        clone: Some(CloneSource { vm_id: 90001, full: Some(true), ..Default::default() }),
        cpu: Some(Cpu { cores: Some(4), cpu_type: Some("host".into()), ..Default::default() }),
        memory: Some(Memory { dedicated: Some(8192), ..Default::default() }),
        disks: Some(vec![Disk {
            interface: "scsi0".into(),
            size: Some(64),
            iothread: Some(true),
            ..Default::default()
        }]),
        network_devices: Some(vec![NetworkDevice { bridge: Some("vmbr0".into()), ..Default::default() }]),
        initialization: Some(Initialization {
            ip_configs: Some(vec![IpConfig {
                ipv4: Some(IpAddressConfig { address: Some("10.0.1.10/24".into()), gateway: Some("10.0.1.1".into()) }),
                ipv6: None,
            }]),
            dns: Some(Dns { servers: Some(vec!["10.0.1.1".into()]), domain: None }),
            user_account: Some(UserAccount {
                username: Some("ubuntu".into()),
                password: Some("s3cret".into()),
                keys: Some(vec![KEY_ED25519.into(), KEY_RSA.into()]),
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Template 90001 as the lab seeds it (and as a hand-made Ubuntu template looks).
fn template_clone(newid: i64) -> Pve {
    let mut pve = Pve::new(newid);
    for (k, v) in [
        ("name", "rke2-server-1".to_string()),
        ("ostype", "l26".into()),
        ("cores", "2".into()),
        ("memory", "2048".into()),
        ("scsihw", "virtio-scsi-pci".into()),
        ("scsi0", format!("local-zfs:vm-{newid}-disk-0,size=10G")),
        ("ide2", format!("local-zfs:vm-{newid}-cloudinit,media=cdrom")),
        ("net0", "virtio=BC:24:11:5E:01:2D,bridge=vmbr0".into()),
        ("agent", "1".into()),
        ("boot", "order=scsi0".into()),
        ("serial0", "socket".into()),
        ("vga", "serial0".into()),
        ("meta", "creation-qemu=9.2.0,ctime=1735689600".into()),
    ] {
        pve.config.insert(k.into(), v);
    }
    pve.next_disk = 1;
    pve
}

#[test]
fn every_seed_vm_passes_check() {
    for vm in talos_cluster().iter().chain([rke2()].iter()) {
        assert_eq!(check::check(vm, Some(true)), vec![], "{:?}", vm.name);
    }
}

#[test]
fn talos_vms_round_trip_through_create_and_read() {
    for args in talos_cluster() {
        let vmid = args.vm_id.unwrap();
        let mut pve = Pve::create(vmid, &encode::create_params(&args, vmid));
        pve.settle(&args);
        let disk = f::drive(&pve.config["scsi0"]);
        assert_eq!(
            disk.get("size").map(f::parse_size),
            Some(f::parse_size(&format!("{}G", args.disks.as_ref().unwrap()[0].size.unwrap())))
        );
        assert_eq!(read_args(&pve.config, Some(&args)), args, "refresh of {:?}", args.name);
        assert_eq!(encode::config_diff(&pve.config, &args), (vec![], vec![]), "diff of {:?}", args.name);
        assert!(encode::resizes(&pve.config, &args).is_empty());
    }
}

#[test]
fn the_gpu_worker_is_stored_as_pve_shows_it() {
    let args = talos_cluster().pop().unwrap();
    let mut pve = Pve::create(204, &encode::create_params(&args, 204));
    pve.settle(&args);
    let c = &pve.config;
    assert_eq!(c["hostpci0"], "host=0000:28:00.0,pcie=1,x-vga=1");
    assert_eq!(c["scsi0"], "local-zfs:vm-204-disk-0,discard=on,iothread=1,size=125G,ssd=1");
    assert_eq!(c["ide2"], "local-zfs:vm-204-cloudinit,media=cdrom");
    assert_eq!(c["net0"], "virtio=BC:24:11:CC:01:04,bridge=vmbr0,firewall=0");
    assert_eq!(c["tags"], "gpu;talos;worker");
    assert_eq!(c["cpu"], "host");
    assert_eq!(c["agent"], "enabled=1,fstrim_cloned_disks=1");
    assert_eq!(c["ipconfig0"], "ip=10.0.0.24/24,gw=10.0.0.1");
    assert_eq!(c["nameserver"], "10.0.0.1 1.1.1.1");
    assert_eq!(c["startup"], "order=2,up=30");
}

#[test]
fn an_rke2_clone_converges_and_round_trips() {
    let args = rke2();
    let (source_node, source, params) = encode::clone_request(&args, 301).unwrap();
    assert_eq!((source_node.as_str(), source), ("pve", 90001));
    assert_eq!(
        params,
        vec![
            ("newid".to_string(), "301".to_string()),
            ("full".into(), "1".into()),
            ("name".into(), "rke2-server-1".into())
        ]
    );
    let mut pve = template_clone(301);
    let (set, delete) = encode::config_diff(&pve.config, &args);
    let keys: Vec<&str> = set.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        vec![
            "tags",
            "onboot",
            "cpu",
            "cores",
            "memory",
            "scsi0",
            "ipconfig0",
            "nameserver",
            "ciuser",
            "cipassword",
            "sshkeys"
        ]
    );
    assert_eq!(delete, Vec::<String>::new(), "the template's unmanaged keys stay");
    assert!(!encode::allocates(&set));
    let scsi0 = &set.iter().find(|(k, _)| k == "scsi0").unwrap().1;
    assert_eq!(scsi0, "local-zfs:vm-301-disk-0,iothread=1,size=10G", "template options kept, iothread added");
    pve.put(&set, &delete);
    assert_eq!(encode::resizes(&pve.config, &args), vec![("scsi0".to_string(), "64G".to_string())]);
    pve.settle(&args);
    assert_eq!(read_args(&pve.config, Some(&args)), args);
    // PVE returns the password masked: the diff leaves it alone.
    pve.config.insert("cipassword".into(), "**********".into());
    assert_eq!(encode::config_diff(&pve.config, &args), (vec![], vec![]));
    assert_eq!(read_args(&pve.config, Some(&args)), args);
}

#[test]
fn importing_replaces_nothing_and_an_update_adopts_the_vm() {
    let mut vms = talos_cluster();
    vms.push(rke2());
    for args in vms {
        let vmid = args.vm_id.unwrap();
        let mut pve = match args.clone {
            None => Pve::create(vmid, &encode::create_params(&args, vmid)),
            Some(_) => {
                let mut pve = template_clone(vmid);
                let (set, delete) = encode::config_diff(&pve.config, &args);
                pve.put(&set, &delete);
                pve
            }
        };
        pve.settle(&args);
        let mut imported = read_args(&pve.config, None);
        imported.node_name = "pve".into();
        imported.vm_id = Some(vmid);
        assert_eq!(replacement_paths(&imported, &args), Vec::<String>::new(), "{:?}", args.name);
        // The import reads what PVE holds, e.g. the generated MAC and the disk's storage.
        let nic = &imported.network_devices.as_ref().unwrap()[0];
        assert!(nic.mac_address.as_deref().is_some_and(|m| m.starts_with("BC:24:11:")));
        assert_eq!(imported.disks.as_ref().unwrap()[0].datastore_id.as_deref(), Some("local-zfs"));
        // The first update after adoption changes nothing on the VM (the password aside).
        let (set, delete) = encode::config_diff(&pve.config, &args);
        assert!(set.iter().all(|(k, _)| k == "cipassword") && delete.is_empty(), "{set:?} {delete:?}");
    }
}

#[test]
fn removing_a_nic_and_a_disk_deletes_them() {
    let mut args = talos_cluster().remove(3);
    args.network_devices.as_mut().unwrap().push(NetworkDevice {
        bridge: Some("vmbr1".into()),
        vlan_id: Some(20),
        ..Default::default()
    });
    args.disks.as_mut().unwrap().push(Disk {
        interface: "scsi1".into(),
        datastore_id: Some("local-zfs".into()),
        size: Some(200),
        ..Default::default()
    });
    args.initialization
        .as_mut()
        .unwrap()
        .ip_configs
        .as_mut()
        .unwrap()
        .push(IpConfig { ipv4: Some(IpAddressConfig { address: Some("dhcp".into()), gateway: None }), ipv6: None });
    let mut pve = Pve::create(201, &encode::create_params(&args, 201));
    pve.settle(&args);
    assert_eq!(pve.config["net1"], "virtio=BC:24:11:C9:02:04,bridge=vmbr1,tag=20");
    assert_eq!(pve.config["scsi1"], "local-zfs:vm-201-disk-1,size=200G");
    assert_eq!(read_args(&pve.config, Some(&args)), args);
    let mut smaller = args.clone();
    smaller.network_devices.as_mut().unwrap().pop();
    smaller.disks.as_mut().unwrap().pop();
    smaller.initialization.as_mut().unwrap().ip_configs.as_mut().unwrap().pop();
    let (set, delete) = encode::config_diff(&pve.config, &smaller);
    assert_eq!(set, vec![]);
    assert_eq!(delete, vec!["scsi1", "net1", "ipconfig1"]);
    pve.put(&set, &delete);
    assert_eq!(read_args(&pve.config, Some(&smaller)), smaller);
    // Unset lists are not managed: nothing is deleted.
    let mut unmanaged = smaller.clone();
    unmanaged.network_devices = None;
    unmanaged.disks = None;
    unmanaged.serial_devices = None;
    assert_eq!(encode::config_diff(&pve.config, &unmanaged), (vec![], vec![]));
}

#[test]
fn drift_shows_in_read_args() {
    let args = talos_cluster().remove(0);
    let mut pve = Pve::create(101, &encode::create_params(&args, 101));
    pve.settle(&args);
    pve.config.insert("cores".into(), "8".into());
    pve.config.insert("tags".into(), "talos".into());
    let mut d = PropString::parse(&pve.config["scsi0"], "file");
    d.set("size", "40G");
    pve.config.insert("scsi0".into(), d.canonical("file"));
    let read = read_args(&pve.config, Some(&args));
    assert_eq!(read.cpu.as_ref().unwrap().cores, Some(8));
    assert_eq!(read.tags, Some(vec!["talos".to_string()]));
    assert_eq!(read.disks.as_ref().unwrap()[0].size, Some(30), "an imported disk larger than asked is not drift");
    let (set, _) = encode::config_diff(&pve.config, &args);
    assert_eq!(set, vec![("tags".to_string(), "controlplane;talos".to_string()), ("cores".into(), "2".into())]);
}
