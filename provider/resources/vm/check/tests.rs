//! Tests of `check` and `normalise`: one valid VM, then one broken input per case,
//! each asserting the property path and a word of the message.

use super::*;
use crate::resources::vm::args::*;

fn valid() -> VirtualMachineArgs {
    VirtualMachineArgs {
        node_name: "pve".into(),
        vm_id: Some(201),
        name: Some("talos-wk-1".into()),
        tags: Some(vec!["talos".into(), "worker".into()]),
        bios: Some("ovmf".into()),
        machine: Some("q35".into()),
        scsi_hardware: Some("virtio-scsi-single".into()),
        operating_system: Some(OperatingSystem { os_type: Some("l26".into()) }),
        agent: Some(Agent { enabled: Some(true), timeout: Some("15m".into()), ..Default::default() }),
        cpu: Some(Cpu {
            cores: Some(4),
            cpu_type: Some("host".into()),
            flags: Some(vec!["+aes".into()]),
            ..Default::default()
        }),
        memory: Some(Memory { dedicated: Some(8192), floating: Some(4096), ..Default::default() }),
        disks: Some(vec![Disk {
            interface: "scsi0".into(),
            datastore_id: Some("local-zfs".into()),
            size: Some(125),
            import_from: Some("local:import/talos-1.12.4-nocloud-amd64.raw".into()),
            iothread: Some(true),
            ssd: Some(true),
            discard: Some("on".into()),
            ..Default::default()
        }]),
        efi_disk: Some(EfiDisk { efi_type: Some("4m".into()), ..Default::default() }),
        network_devices: Some(vec![NetworkDevice {
            bridge: Some("vmbr0".into()),
            mac_address: Some("BC:24:11:00:02:01".into()),
            vlan_id: Some(10),
            mtu: Some(1),
            ..Default::default()
        }]),
        initialization: Some(Initialization {
            ip_configs: Some(vec![IpConfig {
                ipv4: Some(IpAddressConfig { address: Some("10.0.0.21/24".into()), gateway: Some("10.0.0.1".into()) }),
                ipv6: Some(IpAddressConfig { address: Some("auto".into()), gateway: None }),
            }]),
            dns: Some(Dns { servers: Some(vec!["10.0.0.1".into()]), domain: Some("home.arpa".into()) }),
            user_account: Some(UserAccount {
                username: Some("ops".into()),
                keys: Some(vec!["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkey ops@laptop".into()]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        hostpcis: Some(vec![HostPci {
            device: "hostpci0".into(),
            id: Some("0000:28:00.0".into()),
            pcie: Some(true),
            xvga: Some(true),
            ..Default::default()
        }]),
        boot_orders: Some(vec!["scsi0".into(), "net0".into()]),
        startup: Some(Startup { order: Some(2), up_delay: Some(10), down_delay: Some(30) }),
        ..Default::default()
    }
}

/// Asserts that `args` fails exactly at `path`, with `word` in the reason.
#[track_caller]
fn fails(args: VirtualMachineArgs, path: &str, word: &str) {
    fails_as(args, None, path, word);
}

#[track_caller]
fn fails_as(args: VirtualMachineArgs, root: Option<bool>, path: &str, word: &str) {
    let failures = check(&args, root);
    let hit = failures.iter().find(|f| f.property == path);
    assert!(hit.is_some(), "expected a failure at {path}, got {failures:?}");
    let reason = &hit.unwrap().reason;
    assert!(reason.contains(word), "failure at {path} should mention {word:?}: {reason}");
}

fn with(change: impl FnOnce(&mut VirtualMachineArgs)) -> VirtualMachineArgs {
    let mut a = valid();
    change(&mut a);
    a
}

fn disk0(a: &mut VirtualMachineArgs) -> &mut Disk {
    &mut a.disks.as_mut().unwrap()[0]
}

fn nic0(a: &mut VirtualMachineArgs) -> &mut NetworkDevice {
    &mut a.network_devices.as_mut().unwrap()[0]
}

fn init(a: &mut VirtualMachineArgs) -> &mut Initialization {
    a.initialization.as_mut().unwrap()
}

fn ip0(a: &mut VirtualMachineArgs) -> &mut IpConfig {
    &mut init(a).ip_configs.as_mut().unwrap()[0]
}

fn pci0(a: &mut VirtualMachineArgs) -> &mut HostPci {
    &mut a.hostpcis.as_mut().unwrap()[0]
}

#[test]
fn a_valid_vm_passes_with_a_root_ticket_and_when_unknown() {
    assert_eq!(check(&valid(), Some(true)), vec![]);
    assert_eq!(check(&valid(), None), vec![]);
    let minimal = VirtualMachineArgs { node_name: "pve".into(), ..Default::default() };
    assert_eq!(check(&minimal, Some(false)), vec![]);
}

#[test]
fn top_level_inputs() {
    fails(with(|a| a.node_name = String::new()), "nodeName", "required");
    fails(with(|a| a.node_name = "pve_1".into()), "nodeName", "not a node name");
    fails(with(|a| a.vm_id = Some(99)), "vmId", "100 to 999999999");
    fails(with(|a| a.vm_id = Some(1_000_000_000)), "vmId", "out of range");
    fails(with(|a| a.name = Some("talos cp".into())), "name", "DNS name");
    fails(with(|a| a.description = Some("x".repeat(8193))), "description", "8192");
    fails(with(|a| a.tags = Some(vec!["ok".into(), "no spaces".into()])), "tags[1]", "not a tag");
    fails(with(|a| a.pool_id = Some("lab/pool".into())), "poolId", "pool id");
    fails(with(|a| a.bios = Some("uefi".into())), "bios", "seabios, ovmf");
    fails(with(|a| a.scsi_hardware = Some("virtio".into())), "scsiHardware", "virtio-scsi-pci");
    fails(
        with(|a| a.operating_system = Some(OperatingSystem { os_type: Some("linux".into()) })),
        "operatingSystem.type",
        "l26",
    );
    fails(with(|a| a.machine = Some("q36".into())), "machine", "machine type");
    fails(with(|a| a.machine = Some("q35,viommu=amd".into())), "machine", "intel, virtio");
    fails(with(|a| a.template = Some(true)).with_started(), "started", "template cannot run");
    fails(with(|a| a.timeout_stop_vm = Some(0)), "timeoutStopVm", "timeout in seconds");
    fails(with(|a| a.startup.as_mut().unwrap().up_delay = Some(-1)), "startup.upDelay", "delay");
}

trait Started {
    fn with_started(self) -> Self;
}

impl Started for VirtualMachineArgs {
    fn with_started(mut self) -> Self {
        self.started = Some(true);
        self
    }
}

#[test]
fn agent_cpu_and_memory() {
    fails(with(|a| a.agent.as_mut().unwrap().timeout = Some("15 minutes".into())), "agent.timeout", "15m");
    fails(with(|a| a.agent.as_mut().unwrap().agent_type = Some("serial".into())), "agent.type", "virtio, isa");
    fails(with(|a| a.cpu.as_mut().unwrap().cores = Some(0)), "cpu.cores", "1 to 1024");
    fails(with(|a| a.cpu.as_mut().unwrap().sockets = Some(17)), "cpu.sockets", "1 to 16");
    fails(with(|a| a.cpu.as_mut().unwrap().cpu_type = Some("host,flags=+aes".into())), "cpu.type", "CPU type");
    fails(with(|a| a.cpu.as_mut().unwrap().flags = Some(vec!["+aes".into(), "pcid".into()])), "cpu.flags[1]", "+name");
    fails(with(|a| a.cpu.as_mut().unwrap().limit = Some(129.0)), "cpu.limit", "128");
    fails(with(|a| a.cpu.as_mut().unwrap().units = Some(0)), "cpu.units", "262144");
    fails(with(|a| a.memory.as_mut().unwrap().dedicated = Some(8)), "memory.dedicated", "16 to");
    fails(with(|a| a.memory.as_mut().unwrap().floating = Some(16384)), "memory.floating", "at most dedicated");
    fails(with(|a| a.memory.as_mut().unwrap().shared = Some(-1)), "memory.shared", "shared memory");
}

#[test]
fn disks() {
    fails(with(|a| disk0(a).interface = "nvme0".into()), "disks[0].interface", "scsi0-scsi30");
    fails(with(|a| disk0(a).interface = "scsi31".into()), "disks[0].interface", "scsi0 to scsi30");
    fails(with(|a| disk0(a).interface = "sata6".into()), "disks[0].interface", "sata0 to sata5");
    fails(with(|a| disk0(a).interface = "ide4".into()), "disks[0].interface", "ide0 to ide3");
    fails(with(|a| disk0(a).interface = "virtio16".into()), "disks[0].interface", "virtio0 to virtio15");
    let dup = with(|a| {
        let d = disk0(a).clone();
        a.disks.as_mut().unwrap().push(Disk { import_from: None, ..d });
    });
    fails(dup, "disks[1].interface", "also used by disks[0]");
    fails(with(|a| disk0(a).size = Some(0)), "disks[0].size", "positive number of GB");
    fails(with(|a| disk0(a).size = Some(-5)), "disks[0].size", "positive");
    fails(with(|a| disk0(a).file_id = Some("local:iso/talos.img".into())), "disks[0].importFrom", "not both");
    fails(
        with(|a| {
            disk0(a).import_from = None;
            disk0(a).file_id = Some("talos.img".into());
        }),
        "disks[0].fileId",
        "storage:import/file",
    );
    fails(
        with(|a| {
            disk0(a).import_from = None;
            disk0(a).file_id = Some("local:iso/talos.img".into());
        }),
        "disks[0].fileId",
        "only from volumes of import content",
    );
    fails(
        with(|a| disk0(a).import_from = Some("local:iso/talos.img".into())),
        "disks[0].importFrom",
        "content type import",
    );
    fails(with(|a| disk0(a).import_from = Some("talos.raw".into())), "disks[0].importFrom", "volume id");
    fails_as(
        with(|a| disk0(a).import_from = Some("/root/talos.raw".into())),
        Some(false),
        "disks[0].importFrom",
        "root@pam",
    );
    fails(with(|a| disk0(a).file_format = Some("qcow".into())), "disks[0].fileFormat", "raw, qcow2, vmdk");
    fails(with(|a| disk0(a).discard = Some("off".into())), "disks[0].discard", "ignore, on");
    fails(with(|a| disk0(a).cache = Some("wb".into())), "disks[0].cache", "writeback");
    fails(with(|a| disk0(a).aio = Some("uring".into())), "disks[0].aio", "io_uring");
    fails(with(|a| disk0(a).datastore_id = Some("local zfs".into())), "disks[0].datastoreId", "storage id");
    fails(with(|a| disk0(a).serial = Some("x".repeat(21))), "disks[0].serial", "20 bytes");
    fails(with(|a| disk0(a).interface = "sata0".into()), "disks[0].iothread", "scsi and virtio");
    fails(with(|a| disk0(a).interface = "virtio0".into()), "disks[0].ssd", "SSD");
    fails(with(|a| a.efi_disk.as_mut().unwrap().efi_type = Some("8m".into())), "efiDisk.type", "2m, 4m");
    fails(
        with(|a| a.tpm_state = Some(TpmState { version: Some("2.0".into()), ..Default::default() })),
        "tpmState.version",
        "v2.0",
    );
}

#[test]
fn network_devices() {
    fails(with(|a| nic0(a).bridge = Some("vmbr0 ".into())), "networkDevices[0].bridge", "bridge name");
    fails(with(|a| nic0(a).bridge = Some("averyverylongbridge".into())), "networkDevices[0].bridge", "15 characters");
    fails(with(|a| nic0(a).model = Some("virtio-net".into())), "networkDevices[0].model", "e1000");
    fails(with(|a| nic0(a).vlan_id = Some(4095)), "networkDevices[0].vlanId", "1 to 4094");
    fails(with(|a| nic0(a).vlan_id = Some(-1)), "networkDevices[0].vlanId", "0: untagged");
    let cleared = with(|a| {
        nic0(a).vlan_id = Some(0);
        nic0(a).mtu = Some(0);
        nic0(a).trunks = Some(String::new());
    });
    assert_eq!(check(&cleared, None), vec![], "0 and the empty string clear these options");
    fails(with(|a| nic0(a).mtu = Some(100)), "networkDevices[0].mtu", "576 to 65520");
    fails(with(|a| nic0(a).mtu = Some(65521)), "networkDevices[0].mtu", "576 to 65520");
    fails(with(|a| nic0(a).model = Some("e1000".into())), "networkDevices[0].mtu", "virtio");
    fails(
        with(|a| nic0(a).mac_address = Some("01:00:5E:00:00:01".into())),
        "networkDevices[0].macAddress",
        "multicast",
    );
    fails(with(|a| nic0(a).mac_address = Some("BC:24:11:00:02".into())), "networkDevices[0].macAddress", "six pairs");
    fails(with(|a| nic0(a).queues = Some(65)), "networkDevices[0].queues", "0 to 64");
    fails(with(|a| nic0(a).rate_limit = Some(-1.0)), "networkDevices[0].rateLimit", "0 or more");
    fails(with(|a| nic0(a).trunks = Some("10,20".into())), "networkDevices[0].trunks", "10;20;30-40");
    let dup = with(|a| {
        let n = nic0(a).clone();
        a.network_devices.as_mut().unwrap().push(n);
    });
    fails(dup, "networkDevices[1].macAddress", "also used by networkDevices[0]");
}

#[test]
fn cloud_init() {
    fails(
        with(|a| ip0(a).ipv4.as_mut().unwrap().address = Some("10.0.0.300/24".into())),
        "initialization.ipConfigs[0].ipv4.address",
        "10.0.0.5/24",
    );
    fails(
        with(|a| ip0(a).ipv4.as_mut().unwrap().address = Some("10.0.0.21".into())),
        "initialization.ipConfigs[0].ipv4.address",
        "prefix length",
    );
    fails(
        with(|a| ip0(a).ipv4.as_mut().unwrap().gateway = Some("10.0.1.1".into())),
        "initialization.ipConfigs[0].ipv4.gateway",
        "outside 10.0.0.21/24",
    );
    fails(
        with(|a| ip0(a).ipv4.as_mut().unwrap().address = Some("dhcp".into())),
        "initialization.ipConfigs[0].ipv4.gateway",
        "no gateway with dhcp",
    );
    fails(
        with(|a| ip0(a).ipv4.as_mut().unwrap().address = None),
        "initialization.ipConfigs[0].ipv4.gateway",
        "needs an address",
    );
    fails(
        with(|a| ip0(a).ipv4.as_mut().unwrap().address = Some("auto".into())),
        "initialization.ipConfigs[0].ipv4.address",
        "dhcp",
    );
    fails(
        with(|a| ip0(a).ipv6.as_mut().unwrap().gateway = Some("fd00::1".into())),
        "initialization.ipConfigs[0].ipv6.gateway",
        "no gateway with auto",
    );
    fails(
        with(|a| ip0(a).ipv6.as_mut().unwrap().address = Some("10.0.0.5/24".into())),
        "initialization.ipConfigs[0].ipv6.address",
        "IPv6",
    );
    fails(
        with(|a| {
            ip0(a).ipv6 = Some(IpAddressConfig { address: Some("fd00::5/64".into()), gateway: Some("10.0.0.1".into()) })
        }),
        "initialization.ipConfigs[0].ipv6.gateway",
        "not an IPv6 address",
    );
    fails(
        with(|a| init(a).ip_configs.as_mut().unwrap().push(IpConfig::default())),
        "initialization.ipConfigs[1]",
        "only 1 network devices",
    );
    fails(
        with(|a| init(a).dns.as_mut().unwrap().servers = Some(vec!["dns.google".into()])),
        "initialization.dns.servers[0]",
        "IP address",
    );
    fails(
        with(|a| init(a).dns.as_mut().unwrap().domain = Some("home arpa".into())),
        "initialization.dns.domain",
        "domain name",
    );
    fails(
        with(|a| init(a).user_data_file_id = Some("local:snippets/user.yaml".into())),
        "initialization.userDataFileId",
        "conflicts with userAccount",
    );
    fails(
        with(|a| init(a).network_data_file_id = Some("local:snippets/net.yaml".into())),
        "initialization.networkDataFileId",
        "conflicts with ipConfigs",
    );
    fails(
        with(|a| init(a).vendor_data_file_id = Some("local:iso/vendor.yaml".into())),
        "initialization.vendorDataFileId",
        "snippet volume",
    );
    fails(with(|a| init(a).ci_type = Some("cloud-init".into())), "initialization.type", "nocloud");
    fails(with(|a| init(a).interface = Some("virtio1".into())), "initialization.interface", "cannot be on virtio");
    fails(with(|a| init(a).interface = Some("scsi0".into())), "initialization.interface", "also used by disks[0]");
    fails(
        with(|a| init(a).user_account.as_mut().unwrap().keys = Some(vec!["AAAA my key".into()])),
        "initialization.userAccount.keys[0]",
        "OpenSSH",
    );
    fails(
        with(|a| init(a).user_account.as_mut().unwrap().username = Some("o ps".into())),
        "initialization.userAccount.username",
        "user name",
    );
}

#[test]
fn clone_source() {
    let cloned = |c: CloneSource| with(|a| a.clone = Some(c));
    fails(cloned(CloneSource { vm_id: 42, ..Default::default() }), "clone.vmId", "100 to 999999999");
    fails(cloned(CloneSource { vm_id: 201, ..Default::default() }), "clone.vmId", "own vmId");
    fails(
        cloned(CloneSource { vm_id: 90001, node_name: Some("pve 2".into()), ..Default::default() }),
        "clone.nodeName",
        "node name",
    );
    let linked =
        CloneSource { vm_id: 90001, full: Some(false), datastore_id: Some("local-zfs".into()), ..Default::default() };
    fails(cloned(linked), "clone.datastoreId", "full clones");
    fails(cloned(CloneSource { vm_id: 90001, retries: Some(-1), ..Default::default() }), "clone.retries", "retries");
}

#[test]
fn host_pci_passthrough() {
    fails(with(|a| pci0(a).device = "hostpci16".into()), "hostpcis[0].device", "hostpci0 to hostpci15");
    fails(with(|a| pci0(a).device = "pci0".into()), "hostpcis[0].device", "host PCI slot");
    fails(with(|a| pci0(a).id = Some("28:0.0".into())), "hostpcis[0].id", "0000:28:00.0 or 28:00.0");
    fails(with(|a| pci0(a).id = Some("0000:28:00.0;29".into())), "hostpcis[0].id", "PCI address");
    fails(with(|a| pci0(a).mapping = Some("gpu".into())), "hostpcis[0].mapping", "not both");
    fails(with(|a| pci0(a).id = None), "hostpcis[0].id", "set id");
    fails(with(|a| a.machine = Some("pc".into())), "hostpcis[0].pcie", "q35");
    fails(with(|a| a.machine = None), "hostpcis[0].pcie", "q35");
    fails(with(|a| pci0(a).mapping = Some("9gpu".into())).without_id(), "hostpcis[0].mapping", "mapping id");
    let dup = with(|a| {
        let h = pci0(a).clone();
        a.hostpcis.as_mut().unwrap().push(h);
    });
    fails(dup, "hostpcis[1].device", "also used by hostpcis[0]");
    // The same input with an API token: raw ids need a root ticket, mappings do not.
    fails_as(valid(), Some(false), "hostpcis[0].id", "raw PCI passthrough needs root@pam with a password (a ticket); use a PCI resource mapping (`mapping`) or configure `username: root@pam` and `password`");
    let mapped = with(|a| {
        pci0(a).id = None;
        pci0(a).mapping = Some("gpu".into());
    });
    assert_eq!(check(&mapped, Some(false)), vec![]);
}

trait WithoutId {
    fn without_id(self) -> Self;
}

impl WithoutId for VirtualMachineArgs {
    fn without_id(mut self) -> Self {
        self.hostpcis.as_mut().unwrap()[0].id = None;
        self
    }
}

#[test]
fn devices_and_boot_order() {
    fails(
        with(|a| a.serial_devices = Some(vec![SerialDevice { device: "ttyS0".into() }])),
        "serialDevices[0].device",
        "/dev/ttyS0",
    );
    fails(
        with(|a| a.serial_devices = Some(vec![SerialDevice { device: "socket".into() }; 5])),
        "serialDevices[4]",
        "at most 4",
    );
    fails(with(|a| a.vga = Some(Vga { vga_type: Some("vga".into()), ..Default::default() })), "vga.type", "serial0");
    fails(with(|a| a.vga = Some(Vga { memory: Some(1024), ..Default::default() })), "vga.memory", "4 to 512");
    fails(
        with(|a| a.vga = Some(Vga { clipboard: Some("spice".into()), ..Default::default() })),
        "vga.clipboard",
        "vnc",
    );
    fails(with(|a| a.boot_orders = Some(vec!["scsi1".into()])), "bootOrders[0]", "configured: scsi0, ide2");
    let cdrom = with(|a| a.boot_orders = Some(vec!["ide0".into(), "scsi0".into()]));
    assert_eq!(check(&cdrom, None), vec![], "ide slots may be CD-ROMs");
    fails(with(|a| a.boot_orders = Some(vec!["scsi0".into(), "net1".into()])), "bootOrders[1]", "there are 1");
    fails(with(|a| a.boot_orders = Some(vec!["scsi0".into(), "scsi0".into()])), "bootOrders[1]", "twice");
    fails(with(|a| a.boot_orders = Some(vec!["cdrom".into()])), "bootOrders[0]", "not a boot device");
    fails(with(|a| a.boot_orders = Some(vec!["hostpci3".into()])), "bootOrders[0]", "host PCI");
    // The cloud-init drive and an unmanaged disk list (a clone's template disks) are fine.
    let ok = with(|a| a.boot_orders = Some(vec!["ide2".into(), "scsi0".into()]));
    assert_eq!(check(&ok, None), vec![]);
    let clone = with(|a| {
        a.disks = None;
        a.boot_orders = Some(vec!["virtio0".into()]);
    });
    assert_eq!(check(&clone, None), vec![]);
}

#[test]
fn the_cdrom_holds_an_iso_on_a_free_slot() {
    let cdrom = |iface: Option<&str>, file: &str| {
        with(|a| a.cdrom = Some(Cdrom { file_id: file.into(), interface: iface.map(str::to_string) }))
    };
    assert_eq!(check(&cdrom(None, "local:iso/talos.iso"), None), vec![]);
    assert_eq!(check(&cdrom(Some("sata1"), "none"), None), vec![]);
    assert_eq!(check(&cdrom(Some("ide0"), "cdrom"), None), vec![]);
    fails(cdrom(None, "local:import/talos.raw"), "cdrom.fileId", "contentType: iso");
    fails(cdrom(None, "talos.iso"), "cdrom.fileId", "local:iso/");
    fails(cdrom(Some("virtio1"), "none"), "cdrom.interface", "cannot be on virtio");
    fails(cdrom(Some("ide4"), "none"), "cdrom.interface", "out of range");
    fails(cdrom(Some("scsi0"), "none"), "cdrom.interface", "disks[0]");
    fails(cdrom(Some("ide2"), "none"), "cdrom.interface", "the cloud-init drive");
    // Booting from it, on any bus.
    let boot = with(|a| {
        a.cdrom = Some(Cdrom { file_id: "none".into(), interface: Some("sata1".into()) });
        a.boot_orders = Some(vec!["scsi0".into(), "sata1".into()]);
    });
    assert_eq!(check(&boot, None), vec![]);
}

#[test]
fn normalise_sorts_tags_and_upper_cases_macs() {
    let a = normalise(with(|a| {
        a.tags = Some(vec!["worker".into(), " talos".into(), "worker".into(), String::new()]);
        nic0(a).mac_address = Some("bc:24:11:00:02:01".into());
        init(a).user_account.as_mut().unwrap().keys = Some(vec!["ssh-ed25519 AAAA me\n".into()]);
    }));
    assert_eq!(a.tags, Some(vec!["talos".to_string(), "worker".to_string()]));
    assert_eq!(a.network_devices.unwrap()[0].mac_address.as_deref(), Some("BC:24:11:00:02:01"));
    let keys = a.initialization.unwrap().user_account.unwrap().keys.unwrap();
    assert_eq!(keys, vec!["ssh-ed25519 AAAA me"]);
}

#[test]
fn failures_accumulate_in_input_order() {
    let broken =
        VirtualMachineArgs { node_name: String::new(), vm_id: Some(1), bios: Some("x".into()), ..Default::default() };
    let paths: Vec<String> = check(&broken, None).into_iter().map(|f| f.property).collect();
    assert_eq!(paths, vec!["nodeName", "vmId", "bios"]);
}
