//! The nested input blocks of `vm:VirtualMachine` (`cpu`, `disks[]`,
//! `networkDevices[]`, `initialization`, `clone`, `hostpcis[]`, …) as typed Rust;
//! the schema types `vm:VirtualMachine<Block>` are derived from them. Re-exported
//! by `args`, which holds the top-level inputs and outputs.
//!
//! Must not: validate, encode or call anything.

use serde::{Deserialize, Serialize};

use crate::schema::PulumiType;

/// The guest operating system.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineOperatingSystem")]
pub struct OperatingSystem {
    /// `l26` (Linux 2.6+, use it for Talos), `other` (PVE default), `l24`, `win11`, `win10`,
    /// `win8`, `win7`, `wvista`, `w2k8`, `w2k3`, `w2k`, `wxp` or `solaris`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub os_type: Option<String>,
}

/// QEMU guest agent settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineAgent")]
pub struct Agent {
    /// Talk to a guest agent in the VM (PVE default false). Enable only if the guest runs one
    /// (Talos: the `qemu-guest-agent` extension), else reads and shutdowns wait for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// How long create and read wait for the agent's addresses, e.g. `15m` (default) or `90s`.
    #[pulumi(default = "\"15m\"")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Run fstrim after moving a disk or migrating (`fstrim_cloned_disks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trim: Option<bool>,
    /// Agent channel: `virtio` (PVE default) or `isa`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    /// Which addresses to wait for. Unset: any global unicast IPv4 or IPv6 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_for_ip: Option<WaitForIp>,
}

/// Which guest addresses create and read wait for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineAgentWaitForIp")]
pub struct WaitForIp {
    /// Wait for a global IPv4 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<bool>,
    /// Wait for a global IPv6 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<bool>,
    /// Do not wait or ask the agent at all; the address outputs stay empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
}

/// CPU settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineCpu")]
pub struct Cpu {
    /// Cores per socket (PVE default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<i64>,
    /// Sockets (PVE default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sockets: Option<i64>,
    /// Emulated CPU type, e.g. `host`, `x86-64-v2-AES` or `kvm64`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub cpu_type: Option<String>,
    /// CPU flags to add (`+aes`) or remove (`-pcid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<Vec<String>>,
    /// Enable NUMA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numa: Option<bool>,
    /// CPU time limit in CPUs (0 to 128, 0 = unlimited).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<f64>,
    /// CPU weight against other VMs (1 to 262144).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub units: Option<i64>,
}

/// Memory settings, in MB.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineMemory")]
pub struct Memory {
    /// Memory in MB (PVE default 512).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedicated: Option<i64>,
    /// Minimum memory with ballooning, in MB, at most `dedicated`; 0 turns the balloon
    /// device off. Unset: PVE's default (ballooning on, minimum = `dedicated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floating: Option<i64>,
    /// Shared memory (ivshmem) in MB; 0 removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<i64>,
}

/// A disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineDisk")]
pub struct Disk {
    /// Slot: `scsi0`..`scsi30`, `virtio0`..`virtio15`, `sata0`..`sata5` or `ide0`..`ide3`.
    pub interface: String,
    /// Storage of the disk (default for a new disk: `local-lvm`). Changing it moves the disk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datastore_id: Option<String>,
    /// Size in GB. A new disk without an import source gets 8. Growing resizes the disk;
    /// disks never shrink.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// A volume of `import` content copied into the disk at creation
    /// (`local:import/talos.raw`), as `importFrom` (the name bpg's provider uses). Other
    /// content (`local:iso/talos.img`) fails the check: PVE imports only `import` volumes
    /// through its API.
    #[pulumi(replace_on_changes)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// A volume of `import` content to import at creation (`local:import/talos-1.12.raw`),
    /// through the API (PVE 8.4 or later); then the disk grows to `size`.
    #[pulumi(replace_on_changes)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_from: Option<String>,
    /// Image format on file storages: `raw`, `qcow2` or `vmdk`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_format: Option<String>,
    /// Give the disk its own I/O thread (scsi with `virtio-scsi-single`, or virtio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iothread: Option<bool>,
    /// Present the disk as an SSD (not on virtio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssd: Option<bool>,
    /// Pass discard (TRIM) to the storage: `on` or `ignore`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub discard: Option<String>,
    /// Cache mode: `none`, `writethrough`, `writeback`, `unsafe` or `directsync`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// Asynchronous I/O: `io_uring`, `native` or `threads`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aio: Option<String>,
    /// Include the disk in backups (PVE default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<bool>,
    /// Include the disk in replication jobs (PVE default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicate: Option<bool>,
    /// Serial number reported to the guest (at most 20 bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
}

/// The EFI variables disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineEfiDisk")]
pub struct EfiDisk {
    /// Storage (default `local-lvm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datastore_id: Option<String>,
    /// Image format on file storages: `raw`, `qcow2` or `vmdk`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_format: Option<String>,
    /// OVMF variables size: `2m` (PVE default) or `4m` (needed for Secure Boot keys).
    /// Changing it replaces the VM.
    #[pulumi(replace_on_changes)]
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub efi_type: Option<String>,
    /// Enrol the distribution and Microsoft Secure Boot keys (Secure Boot on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_enrolled_keys: Option<bool>,
}

/// The TPM state volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineTpmState")]
pub struct TpmState {
    /// Storage (default `local-lvm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datastore_id: Option<String>,
    /// TPM version: `v2.0` (default) or `v1.2`. Changing it replaces the VM.
    #[pulumi(replace_on_changes)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// A network device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineNetworkDevice")]
pub struct NetworkDevice {
    /// Bridge or SDN VNet (default for a new device: `vmbr0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// Model: `virtio` (default for a new device), `e1000`, `e1000e`, `rtl8139`, `vmxnet3`, ….
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// VLAN tag (1 to 4094); 0 removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan_id: Option<i64>,
    /// MTU (virtio only): 1 means the bridge's MTU, else 576 to 65520; 0 removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtu: Option<i64>,
    /// Unicast MAC address, e.g. `BC:24:11:4A:2F:01`. Unset: PVE generates one (see `macAddresses`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Protect the device with the PVE firewall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<bool>,
    /// Link up (default true); false keeps the device but unplugs it (`link_down`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Rate limit in MB/s; 0 removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
    /// Packet queues (1 to 64, virtio multiqueue); 0 removes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queues: Option<i64>,
    /// VLANs passed through, `10;20;30-40`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trunks: Option<String>,
}

/// Cloud-init.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineInitialization")]
pub struct Initialization {
    /// Storage of the cloud-init drive (default `local-lvm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datastore_id: Option<String>,
    /// Slot of the cloud-init drive: `ide0`..`ide3` (default `ide2`), `sata0`..`sata5` or
    /// `scsi0`..`scsi30`. With OVMF prefer `scsi`/`sata`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Data source format: `nocloud` (PVE default for Linux), `configdrive2` or `opennebula`.
    /// Changing it replaces the VM.
    #[pulumi(replace_on_changes)]
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub ci_type: Option<String>,
    /// Addresses per network device, in `networkDevices` order (`ipconfig0`, …). When set,
    /// the list is complete and each entry is the whole configuration of its device: an
    /// entry without `ipv6` removes IPv6 settings; an empty entry means DHCP on IPv4.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_configs: Option<Vec<IpConfig>>,
    /// DNS servers and search domain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// The default user. Conflicts with `userDataFileId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_account: Option<UserAccount>,
    /// A snippet volume used as user-data (`local:snippets/cp-1.yaml`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_data_file_id: Option<String>,
    /// A snippet volume used as vendor-data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_data_file_id: Option<String>,
    /// A snippet volume used as meta-data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_data_file_id: Option<String>,
    /// A snippet volume used as network-config. Conflicts with `ipConfigs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_data_file_id: Option<String>,
    /// Upgrade packages at first boot (PVE default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<bool>,
    /// Any text that changes when the content of the snippet files changes, e.g. the
    /// `contentSha256` of the `storage:File` holding the user-data. The file ids stay the same
    /// when a snippet is edited in place, so without this the VM cannot know; a change
    /// regenerates the cloud-init drive and reboots a running VM (no replacement). Provider-side only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// Addresses of one network device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineInitializationIpConfig")]
pub struct IpConfig {
    /// IPv4: an address with prefix (`10.0.0.5/24`) or `dhcp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<IpAddressConfig>,
    /// IPv6: an address with prefix, `dhcp` or `auto` (SLAAC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<IpAddressConfig>,
}

/// An address and gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineInitializationIpAddress")]
pub struct IpAddressConfig {
    /// Address with prefix length, or `dhcp` (or, for IPv6, `auto`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Gateway, inside the address's subnet; not with `dhcp` or `auto`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

/// DNS settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineInitializationDns")]
pub struct Dns {
    /// DNS server addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub servers: Option<Vec<String>>,
    /// Search domain, e.g. `home.arpa`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// The default cloud-init user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineInitializationUserAccount")]
pub struct UserAccount {
    /// User name (the image's default user when unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password. PVE stores only a hash, so changes are applied but never read back.
    #[pulumi(secret)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// OpenSSH public keys, one per entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
}

/// The VM to clone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineClone")]
pub struct CloneSource {
    /// Id of the VM or template to clone, e.g. 90001.
    pub vm_id: i64,
    /// Node holding the source (default: `nodeName`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Full copy of the disks (default true); false makes a linked clone of a template.
    #[pulumi(default = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full: Option<bool>,
    /// Storage for the copied disks (full clones; default: the source's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datastore_id: Option<String>,
    /// Attempts when the clone task fails transiently (default 1). Changing it does nothing.
    #[pulumi(default = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// A host PCI device passed through.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineHostpci")]
pub struct HostPci {
    /// Slot: `hostpci0`..`hostpci15`.
    pub device: String,
    /// Host PCI address, `0000:28:00.0` or `28:00.0` (`28:00` for all functions; several
    /// joined with `;`). Needs `root@pam` with a password; otherwise use `mapping`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A cluster PCI resource mapping (Datacenter → Resource Mappings), usable with API tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping: Option<String>,
    /// Attach as PCI Express (needs a q35 `machine`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcie: Option<bool>,
    /// Make it the primary GPU (`x-vga`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xvga: Option<bool>,
    /// Expose the device ROM (PVE default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rombar: Option<bool>,
    /// A ROM file under `/usr/share/kvm/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rom_file: Option<String>,
    /// Mediated device type (vGPU), e.g. `nvidia-63`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mdev: Option<String>,
}

/// A serial port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineSerialDevice")]
pub struct SerialDevice {
    /// `socket` (a console socket on the host) or a host device such as `/dev/ttyS0`.
    pub device: String,
}

/// The VM's CD-ROM drive, e.g. with an installer ISO to boot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineCdrom")]
pub struct Cdrom {
    /// What is in the drive: a volume of `iso` content (`local:iso/talos-v1.12.4-metal-amd64.iso`,
    /// e.g. `volumeId` of a `download.File` with `contentType: iso`), `none` for an empty drive,
    /// or `cdrom` for the host's physical drive.
    pub file_id: String,
    /// Slot: `ide0`..`ide3` (default `ide3`), `sata0`..`sata5` or `scsi0`..`scsi30`; not one a
    /// disk or the cloud-init drive uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

/// The display.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineVga")]
pub struct Vga {
    /// `std` (PVE default), `serial0` (serial console), `virtio`, `qxl`, `none`, ….
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub vga_type: Option<String>,
    /// Video memory in MB (4 to 512).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Clipboard: `vnc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clipboard: Option<String>,
}

/// Start and shutdown order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "vm:VirtualMachineStartup")]
pub struct Startup {
    /// Position in the start order (lower first; shutdown is the reverse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<i64>,
    /// Seconds to wait after starting this VM before starting the next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub up_delay: Option<i64>,
    /// Seconds to wait after shutting this VM down before the next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub down_delay: Option<i64>,
}
