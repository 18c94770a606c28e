//! The inputs and outputs of `vm:VirtualMachine` as typed Rust (the schema is
//! derived from them: doc comments become descriptions), the provider-side
//! defaults, and [`replacement_paths`], the one place that decides which input
//! changes replace the VM (with [`replacement_reuses_vmid`]: whether the old VM
//! must go first).
//!
//! Names, nesting and units follow pulumi-proxmoxve's `VirtualMachine` (camelCase,
//! sizes in GB, memory in MB, timeouts in seconds). Every integer is `i64` and
//! every enum a string so that `check` can say what is valid instead of a decode
//! error. Must not: validate, encode or call anything.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::blocks::*;
use crate::schema::PulumiType;

/// The resource token.
pub const TOKEN: &str = "proxmox-talos:vm:VirtualMachine";

/// Storage for new disks, the EFI disk, the TPM state and the cloud-init drive when unset.
pub const DEFAULT_DATASTORE: &str = "local-lvm";
/// Size of a new disk that has no `size` and nothing to import, in GB.
pub const DEFAULT_DISK_SIZE_GB: i64 = 8;
/// Bridge of a new network device without `bridge`.
pub const DEFAULT_BRIDGE: &str = "vmbr0";
/// Model of a new network device without `model`.
pub const DEFAULT_NET_MODEL: &str = "virtio";
/// SCSI controller of a VM created from scratch without `scsiHardware`.
pub const DEFAULT_SCSI_HARDWARE: &str = "virtio-scsi-pci";
/// EFI disk type when unset (PVE's default).
pub const DEFAULT_EFI_TYPE: &str = "2m";
/// TPM version of a new TPM state without `version`.
pub const DEFAULT_TPM_VERSION: &str = "v2.0";
/// Slot of a new cloud-init drive without `interface`.
pub const DEFAULT_CLOUD_INIT_INTERFACE: &str = "ide2";
/// Slot of the CD-ROM drive without `interface`.
pub const DEFAULT_CDROM_INTERFACE: &str = "ide3";
/// How long create and read wait for guest agent data when `agent.timeout` is unset.
pub const DEFAULT_AGENT_TIMEOUT: &str = "15m";
/// Default of every `timeout*` input except `timeoutStopVm`, in seconds.
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 1800;
/// Default of `timeoutStopVm`, in seconds.
pub const DEFAULT_TIMEOUT_STOP_SECONDS: i64 = 300;

/// Inputs of `vm:VirtualMachine`. An unset input is not managed: a VM created from
/// scratch gets PVE's default (or the default stated), a clone keeps its template's
/// value, and updates leave it alone. To clear a value, set the empty string or the
/// empty list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VirtualMachineArgs {
    /// The Proxmox VE node the VM runs on, e.g. `pve`. Changing it replaces the VM,
    /// unless `migrate` is true: then the VM is migrated.
    pub node_name: String,
    /// The VM id (100 to 999999999). Unset: the next free id. Changing it replaces the VM.
    #[pulumi(replace_on_changes)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vm_id: Option<i64>,
    /// The VM name, a DNS name such as `talos-cp-1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-text notes shown in the web UI (at most 8192 characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags (letters, digits, `_`, `-`, `+`, `.`). Order does not matter: they are kept sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Start the VM when the node boots (PVE default: false).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_boot: Option<bool>,
    /// Keep the VM running (default true; false for a template). Read back from the VM's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
    /// Convert the VM into a template after creating it. Converting back is not possible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<bool>,
    /// The resource pool to put the VM in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_id: Option<String>,
    /// Firmware: `seabios` (PVE default) or `ovmf` (UEFI, with `efiDisk`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bios: Option<String>,
    /// Machine type: `pc` (PVE default), `q35` (needed for PCIe passthrough), a versioned
    /// type such as `pc-q35-9.2`, optionally with options (`q35,viommu=virtio`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// SCSI controller: `lsi`, `lsi53c810`, `virtio-scsi-pci` (default for a new VM),
    /// `virtio-scsi-single`, `megasas` or `pvscsi`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scsi_hardware: Option<String>,
    /// Guest operating system, which tunes PVE's defaults for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operating_system: Option<OperatingSystem>,
    /// QEMU guest agent settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<Agent>,
    /// CPU settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    /// Memory settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// Disks, by interface. When set, the list is complete: disks of the VM not listed
    /// (other than the EFI disk, TPM state, cloud-init drive and CD-ROMs) are detached.
    /// Unset: a clone keeps its template's disks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disks: Option<Vec<Disk>>,
    /// The CD-ROM drive and what is in it. When set, it is the VM's only CD-ROM drive besides the
    /// cloud-init drive: others are removed. Changes apply in place; removing it leaves the drive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cdrom: Option<Cdrom>,
    /// The EFI variables disk (with `bios: ovmf`). Added in place; removing it leaves it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub efi_disk: Option<EfiDisk>,
    /// The TPM state volume (e.g. for Windows 11). Added in place; removing it leaves it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tpm_state: Option<TpmState>,
    /// Network devices `net0`, `net1`, … in order. When set, the list is complete:
    /// further devices are removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_devices: Option<Vec<NetworkDevice>>,
    /// Cloud-init: the drive, network configuration, DNS, user and custom files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initialization: Option<Initialization>,
    /// Create the VM as a clone of another VM or template instead of from scratch.
    /// Changing the source replaces the VM.
    #[pulumi(replace_on_changes)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone: Option<CloneSource>,
    /// Host PCI devices passed through (`hostpci0`..`hostpci15`). When set, the list is complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostpcis: Option<Vec<HostPci>>,
    /// Serial ports `serial0`..`serial3` in order. When set, the list is complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial_devices: Option<Vec<SerialDevice>>,
    /// The display.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vga: Option<Vga>,
    /// Boot devices in order, e.g. `["scsi0", "ide3", "net0"]`: each a configured disk, the
    /// cloud-init drive, a CD-ROM (`cdrom.interface`, or any `ideN`), a network device (`netN`) or a
    /// host PCI device. Empty: PVE's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_orders: Option<Vec<String>>,
    /// Start and shutdown order when the node boots or shuts down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub startup: Option<Startup>,
    /// Migrate the VM when `nodeName` changes, instead of replacing it (default false).
    #[pulumi(default = "false")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrate: Option<bool>,
    /// On destroy, stop the VM at once instead of shutting it down (default false).
    /// Use it when the guest has no agent or ignores ACPI.
    #[pulumi(default = "false")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_on_destroy: Option<bool>,
    /// On destroy, also remove the VM from backup jobs, replication and HA (default true).
    #[pulumi(default = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge_on_destroy: Option<bool>,
    /// Seconds to wait for the create task (default 1800).
    #[pulumi(default = "1800")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_create: Option<i64>,
    /// Seconds to wait for the clone task (default 1800).
    #[pulumi(default = "1800")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_clone: Option<i64>,
    /// Seconds to wait for the VM to start (default 1800).
    #[pulumi(default = "1800")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_start_vm: Option<i64>,
    /// Seconds to wait for a clean shutdown before stopping the VM (default 1800).
    #[pulumi(default = "1800")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_shutdown_vm: Option<i64>,
    /// Seconds to wait for the VM to stop (default 300).
    #[pulumi(default = "300")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_stop_vm: Option<i64>,
    /// Seconds to wait for a migration (default 1800).
    #[pulumi(default = "1800")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_migrate: Option<i64>,
    /// Seconds to wait for a reboot (default 1800).
    #[pulumi(default = "1800")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_reboot: Option<i64>,
}

/// A Proxmox VE virtual machine, created from scratch (disks new or imported with
/// `importFrom`) or cloned, with cloud-init, passthrough and guest agent outputs.
///
/// | Change | Effect |
/// |---|---|
/// | `vmId` (both set, different) | replace |
/// | `clone.vmId`, `clone.nodeName`, `clone.full`, `clone.datastoreId` (both set, different) | replace |
/// | `disks[].fileId` / `disks[].importFrom` of a disk that exists (both set, different) | replace |
/// | `disks[].interface` of a disk with `importFrom`/`fileId` (the same source on a new interface, the old one gone) | replace |
/// | `efiDisk.type`, `tpmState.version`, `initialization.type` (both set, different) | replace |
/// | `nodeName` | replace, or migrate when `migrate` is true |
/// | adding or removing `clone`, an import source, the EFI disk, the TPM state or cloud-init | in place |
/// | everything else: cpu, memory, disks (added, detached, grown, options, moved to `datastoreId`), the CD-ROM, network devices, cloud-init settings, passthrough, tags, boot order, `started`, `template` (false to true) | in place; some apply at the next reboot |
/// | `timeout*`, `stopOnDestroy`, `purgeOnDestroy`, `migrate`, `agent.timeout`, `agent.waitForIp`, `clone.retries` | provider-side only |
///
/// A replacement creates the new VM before deleting the old one, except when `vmId`
/// is set and unchanged: the VMID is unique, so the old VM is deleted first.
///
/// Disks never shrink: a disk larger than `size` (an image or template disk bigger
/// than asked) keeps its size and shows no difference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct VirtualMachineState {
    #[serde(flatten)]
    pub args: VirtualMachineArgs,
    /// Power state: `running` or `stopped`.
    #[pulumi(always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The first usable IPv4 address of the guest interface whose MAC is `net0`'s
    /// (not link-local, unspecified or multicast), as the guest agent reports it; the
    /// address to connect to. Unset without a running agent or such an address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    /// The first usable IPv6 address (not link-local) of `net0`'s guest interface.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    /// Usable IPv4 addresses per guest interface MAC address (upper case, as in
    /// `networkDevices[].macAddress`), e.g. `{"BC:24:11:4A:2F:01": ["192.168.1.50"]}`;
    /// the loopback interface is left out. Empty without a running agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_addresses_by_mac: Option<BTreeMap<String, Vec<String>>>,
    /// Usable IPv6 addresses (no link-local) per guest interface MAC address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_addresses_by_mac: Option<BTreeMap<String, Vec<String>>>,
    /// IPv4 addresses per guest interface, in the order the guest agent lists them,
    /// which differs between guests and may change after a reboot: use `ipv4Address`
    /// or `ipv4AddressesByMac` rather than an index. Empty without a running agent.
    #[pulumi(always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_addresses: Option<Vec<Vec<String>>>,
    /// IPv6 addresses per guest interface, in agent order.
    #[pulumi(always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_addresses: Option<Vec<Vec<String>>>,
    /// MAC address per guest interface from the agent; without it, of `net0`, `net1`, ….
    #[pulumi(always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_addresses: Option<Vec<String>>,
    /// Guest interface names (`lo`, `eth0`, …), in agent order.
    #[pulumi(always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_interface_names: Option<Vec<String>>,
}

/// The input paths whose change from `old` to `new` replaces the VM (empty: update
/// in place), per the table on [`VirtualMachineState`]. Only a change between two set
/// values replaces, so adopting an imported VM (whose read-back inputs lack `clone`
/// and import sources) never does.
pub fn replacement_paths(old: &VirtualMachineArgs, new: &VirtualMachineArgs) -> Vec<String> {
    fn differ<T: PartialEq>(a: &Option<T>, b: &Option<T>) -> bool {
        matches!((a, b), (Some(a), Some(b)) if a != b)
    }
    let mut out = Vec::new();
    if old.node_name != new.node_name && !new.migrate.unwrap_or(false) {
        out.push("nodeName".to_string());
    }
    if differ(&old.vm_id, &new.vm_id) {
        out.push("vmId".to_string());
    }
    if let (Some(o), Some(n)) = (&old.clone, &new.clone) {
        let source = |c: &CloneSource| (c.vm_id, c.node_name.clone(), c.full.unwrap_or(true), c.datastore_id.clone());
        if source(o) != source(n) {
            out.push("clone".to_string());
        }
    }
    if let (Some(old_disks), Some(new_disks)) = (&old.disks, &new.disks) {
        for (i, d) in new_disks.iter().enumerate() {
            let Some(o) = old_disks.iter().find(|o| o.interface == d.interface) else { continue };
            if differ(&o.file_id, &d.file_id) {
                out.push(format!("disks[{i}].fileId"));
            }
            if differ(&o.import_from, &d.import_from) {
                out.push(format!("disks[{i}].importFrom"));
            }
        }
        // A disk with an image source moved to another interface (scsi0 → virtio0): to PVE that
        // is a new disk imported afresh and the old one (with whatever was written to it)
        // detached and destroyed, so the VM is replaced, and the preview says why.
        let source = |d: &Disk| d.import_from.clone().or_else(|| d.file_id.clone());
        for (i, d) in new_disks.iter().enumerate() {
            let Some(src) = source(d) else { continue };
            if old_disks.iter().any(|o| o.interface == d.interface) {
                continue;
            }
            let moved = old_disks
                .iter()
                .any(|o| source(o).as_ref() == Some(&src) && !new_disks.iter().any(|n| n.interface == o.interface));
            if moved {
                out.push(format!("disks[{i}].interface"));
            }
        }
    }
    if let (Some(o), Some(n)) = (&old.efi_disk, &new.efi_disk) {
        if differ(&o.efi_type, &n.efi_type) {
            out.push("efiDisk.type".to_string());
        }
    }
    if let (Some(o), Some(n)) = (&old.tpm_state, &new.tpm_state) {
        if differ(&o.version, &n.version) {
            out.push("tpmState.version".to_string());
        }
    }
    if let (Some(o), Some(n)) = (&old.initialization, &new.initialization) {
        if differ(&o.ci_type, &n.ci_type) {
            out.push("initialization.type".to_string());
        }
    }
    out
}

/// Whether a replacement of `old` by `new` would create the new VM with the VMID the
/// old one still holds (`vmId` set and not changed): then the old VM must be deleted
/// first, as PVE refuses a second VM with the same id.
pub fn replacement_reuses_vmid(old: &VirtualMachineArgs, new: &VirtualMachineArgs) -> bool {
    new.vm_id.is_some() && old.vm_id.is_none_or(|o| Some(o) == new.vm_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{paths, PulumiObject, TypeRegistry};

    fn base() -> VirtualMachineArgs {
        VirtualMachineArgs { node_name: "pve".into(), vm_id: Some(100), ..Default::default() }
    }

    #[test]
    fn moving_an_imported_disk_to_another_interface_replaces_the_vm() {
        let disk = |interface: &str, import: Option<&str>| Disk {
            interface: interface.into(),
            import_from: import.map(str::to_string),
            ..Default::default()
        };
        let old = VirtualMachineArgs { disks: Some(vec![disk("scsi0", Some("local:import/talos.raw"))]), ..base() };
        let renamed =
            VirtualMachineArgs { disks: Some(vec![disk("virtio0", Some("local:import/talos.raw"))]), ..base() };
        assert_eq!(replacement_paths(&old, &renamed), vec!["disks[0].interface".to_string()]);
        // A second disk added beside the first is no rename; nor is an empty disk moving.
        let added = VirtualMachineArgs {
            disks: Some(vec![
                disk("scsi0", Some("local:import/talos.raw")),
                disk("virtio0", Some("local:import/talos.raw")),
            ]),
            ..base()
        };
        assert!(replacement_paths(&old, &added).is_empty());
        let empty_old = VirtualMachineArgs { disks: Some(vec![disk("scsi0", None)]), ..base() };
        let empty_new = VirtualMachineArgs { disks: Some(vec![disk("virtio0", None)]), ..base() };
        assert!(replacement_paths(&empty_old, &empty_new).is_empty());
    }

    #[test]
    fn the_schema_derives_with_camel_case_names_secrets_and_replace_paths() {
        let mut reg = TypeRegistry::default();
        let props = VirtualMachineArgs::properties(&mut reg);
        let names: Vec<&str> = props.iter().map(|p| p.name).collect();
        for n in ["nodeName", "vmId", "scsiHardware", "networkDevices", "bootOrders", "timeoutShutdownVm"] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        assert_eq!(props.iter().filter(|p| p.required).map(|p| p.name).collect::<Vec<_>>(), vec!["nodeName"]);
        let secrets: Vec<String> = paths::secret_patterns(&props, &reg).iter().map(|p| p.to_string()).collect();
        assert_eq!(secrets, vec!["initialization.userAccount.password"]);
        let mut replace: Vec<String> = paths::replace_patterns(&props, &reg).iter().map(|p| p.to_string()).collect();
        replace.sort();
        assert_eq!(
            replace,
            vec![
                "clone",
                "disks[*].fileId",
                "disks[*].importFrom",
                "efiDisk.type",
                "initialization.type",
                "tpmState.version",
                "vmId"
            ]
        );
        let state = VirtualMachineState::properties(&mut reg);
        assert!(state.iter().any(|p| p.name == "ipv4Addresses") && state.iter().any(|p| p.name == "nodeName"));
        assert!(VirtualMachineState::description().contains("| `nodeName` | replace, or migrate"));
    }

    #[test]
    fn json_names_follow_pulumi_proxmoxve() {
        let args: VirtualMachineArgs = serde_json::from_value(serde_json::json!({
            "nodeName": "pve", "operatingSystem": {"type": "l26"}, "cpu": {"type": "host", "cores": 2},
            "efiDisk": {"type": "4m"}, "agent": {"enabled": true, "waitForIp": {"ipv4": true}},
            "initialization": {"type": "nocloud", "userAccount": {"keys": ["k"]}},
            "hostpcis": [{"device": "hostpci0", "id": "0000:28:00.0", "xvga": true}]
        }))
        .unwrap();
        assert_eq!(args.operating_system.unwrap().os_type.as_deref(), Some("l26"));
        assert_eq!(args.efi_disk.unwrap().efi_type.as_deref(), Some("4m"));
        let unknown = serde_json::from_value::<VirtualMachineArgs>(serde_json::json!({"nodeName": "pve", "cpus": 2}));
        assert!(unknown.is_err());
    }

    #[test]
    fn only_changes_between_set_values_replace() {
        let mut old = base();
        old.disks = Some(vec![Disk { interface: "scsi0".into(), import_from: None, ..Default::default() }]);
        old.efi_disk = Some(EfiDisk { efi_type: Some("2m".into()), ..Default::default() });
        // Adopting: the program adds clone and an import source, and drops vmId.
        let mut new = old.clone();
        new.vm_id = None;
        new.clone = Some(CloneSource { vm_id: 90001, ..Default::default() });
        new.disks.as_mut().unwrap()[0].import_from = Some("local:import/a.raw".into());
        assert!(replacement_paths(&old, &new).is_empty());
        // Real changes.
        let mut changed = new.clone();
        changed.vm_id = Some(101);
        changed.clone = Some(CloneSource { vm_id: 90002, ..Default::default() });
        changed.disks.as_mut().unwrap()[0].import_from = Some("local:import/b.raw".into());
        changed.efi_disk.as_mut().unwrap().efi_type = Some("4m".into());
        changed.node_name = "pve2".into();
        let mut with_vmid = new.clone();
        with_vmid.vm_id = Some(100);
        assert_eq!(
            replacement_paths(&with_vmid, &changed),
            vec!["nodeName", "vmId", "clone", "disks[0].importFrom", "efiDisk.type"]
        );
        changed.migrate = Some(true);
        assert!(!replacement_paths(&with_vmid, &changed).contains(&"nodeName".to_string()));
        // Retries is provider-side only.
        let mut retried = new.clone();
        retried.clone.as_mut().unwrap().retries = Some(5);
        assert!(replacement_paths(&new, &retried).is_empty());
    }

    #[test]
    fn a_replacement_keeping_the_vmid_deletes_first() {
        let fixed = base();
        let moved = VirtualMachineArgs { node_name: "pve2".into(), ..base() };
        assert!(replacement_reuses_vmid(&fixed, &moved));
        let other_id = VirtualMachineArgs { vm_id: Some(101), ..moved.clone() };
        assert!(!replacement_reuses_vmid(&fixed, &other_id));
        let allocated = VirtualMachineArgs { vm_id: None, ..moved };
        assert!(!replacement_reuses_vmid(&allocated, &allocated));
    }
}
