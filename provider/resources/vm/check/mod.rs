//! Validation of `vm:VirtualMachine` inputs before any API call: every rule that
//! can be decided from the inputs alone (ranges, enums from PVE's API schema,
//! address syntax, conflicts between inputs, references between them), each
//! failure naming its property path (`disks[1].size`) and saying what is valid;
//! and [`normalise`], which puts inputs in the form read-back produces (sorted
//! tags, uppercase MACs) so order-only differences never show as changes.
//!
//! Must not: call the API, or decide what exists on the cluster (storages,
//! bridges, mappings, free ids): those errors come from PVE at create time.

use std::collections::BTreeMap;

use super::args::{Cdrom, Disk, HostPci, VirtualMachineArgs, DEFAULT_CDROM_INTERFACE, DEFAULT_CLOUD_INIT_INTERFACE};
use super::format::{self as f, Bus};
use crate::framework::CheckFailure;

/// Inputs as read-back reports them: tags sorted without duplicates, MAC addresses
/// upper case, SSH keys and CPU flags trimmed.
pub fn normalise(mut args: VirtualMachineArgs) -> VirtualMachineArgs {
    if let Some(tags) = &mut args.tags {
        *tags = sorted_tags(tags.iter().map(String::as_str));
    }
    for nic in args.network_devices.iter_mut().flatten() {
        if let Some(mac) = &mut nic.mac_address {
            *mac = mac.trim().to_ascii_uppercase();
        }
    }
    let keys = args.initialization.as_mut().and_then(|i| i.user_account.as_mut()).and_then(|u| u.keys.as_mut());
    for key in keys.into_iter().flatten() {
        *key = key.trim().to_string();
    }
    for flag in args.cpu.as_mut().and_then(|c| c.flags.as_mut()).into_iter().flatten() {
        *flag = flag.trim().to_string();
    }
    args
}

/// Tags as PVE keeps them: trimmed, sorted, without duplicates or empty ones.
pub fn sorted_tags<'a>(tags: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = tags.map(str::trim).filter(|t| !t.is_empty()).map(str::to_string).collect();
    out.sort();
    out.dedup();
    out
}

/// Every problem with `args`. `is_root_ticket`: whether the provider authenticates as
/// `root@pam` with a password (`Some(false)` for an API token or another user; `None`
/// when not known, which skips the root-only rules).
pub fn check(args: &VirtualMachineArgs, is_root_ticket: Option<bool>) -> Vec<CheckFailure> {
    let mut c = Checker { out: Vec::new(), root: is_root_ticket };
    c.top_level(args);
    c.agent_cpu_memory(args);
    c.disks(args);
    c.network(args);
    if let Some(init) = &args.initialization {
        c.initialization(args, init);
    }
    c.clone_source(args);
    c.hostpcis(args);
    c.devices_and_boot(args);
    c.out
}

struct Checker {
    out: Vec<CheckFailure>,
    root: Option<bool>,
}

fn list(values: &[&str]) -> String {
    values.join(", ")
}

impl Checker {
    fn fail(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.out.push(CheckFailure::new(path, reason));
    }

    fn one_of(&mut self, path: &str, value: &Option<String>, allowed: &[&str]) {
        if let Some(v) = value {
            if !allowed.contains(&v.as_str()) {
                self.fail(path, format!("{v:?} is not valid; use one of: {}", list(allowed)));
            }
        }
    }

    fn range(&mut self, path: &str, value: Option<i64>, min: i64, max: i64, what: &str) {
        if let Some(v) = value {
            if v < min || v > max {
                self.fail(path, format!("{v} is out of range: {what} must be {min} to {max}"));
            }
        }
    }

    fn storage(&mut self, path: &str, value: &Option<String>) {
        if let Some(s) = value {
            if !f::is_storage_id(s) {
                self.fail(
                    path,
                    format!(
                        "{s:?} is not a storage id: a letter, then letters, digits, '-', '_' or '.', e.g. local-zfs"
                    ),
                );
            }
        }
    }

    fn top_level(&mut self, a: &VirtualMachineArgs) {
        if a.node_name.trim().is_empty() {
            self.fail("nodeName", "required: the name of the Proxmox VE node to run the VM on, e.g. pve");
        } else if !f::is_node_name(&a.node_name) {
            self.fail(
                "nodeName",
                format!("{:?} is not a node name: letters, digits and inner '-', e.g. pve", a.node_name),
            );
        }
        self.range("vmId", a.vm_id, 100, 999_999_999, "a VM id");
        if let Some(name) = a.name.as_deref().filter(|n| !n.is_empty()) {
            if !f::is_dns_name(name) {
                self.fail("name", format!("{name:?} is not a DNS name: letters, digits, '-' and '.', e.g. talos-cp-1"));
            }
        }
        if a.description.as_ref().is_some_and(|d| d.len() > 8192) {
            self.fail("description", "is longer than 8192 characters, the most PVE stores");
        }
        for (i, tag) in a.tags.iter().flatten().enumerate() {
            if !f::is_tag(tag) {
                self.fail(
                    format!("tags[{i}]"),
                    format!("{tag:?} is not a tag: start with a letter, digit or '_', then also '-', '+' or '.'"),
                );
            }
        }
        if let Some(pool) = a.pool_id.as_deref().filter(|p| !p.is_empty() && !f::is_pool_id(p)) {
            self.fail("poolId", format!("{pool:?} is not a pool id: letters, digits, '-' and '_'"));
        }
        self.one_of("bios", &a.bios, f::BIOS);
        self.one_of("scsiHardware", &a.scsi_hardware, f::SCSI_HARDWARE);
        self.one_of("operatingSystem.type", &a.operating_system.as_ref().and_then(|o| o.os_type.clone()), f::OS_TYPES);
        if let Some(machine) = &a.machine {
            let p = f::PropString::parse(machine, "type");
            if !p.get("type").is_some_and(f::is_machine_type) {
                self.fail("machine", format!("{machine:?} is not a machine type; use pc, q35, a versioned type such as pc-q35-9.2, optionally with options (q35,viommu=virtio)"));
            }
            self.one_of("machine", &p.get("viommu").map(str::to_string), f::VIOMMU);
            for (k, _) in &p.pairs {
                if !["type", "viommu", "aw-bits", "enable-s3", "enable-s4"].contains(&k.as_str()) {
                    self.fail(
                        "machine",
                        format!("unknown machine option {k:?}; valid options: viommu, aw-bits, enable-s3, enable-s4"),
                    );
                }
            }
        }
        if a.template == Some(true) && a.started == Some(true) {
            self.fail("started", "a template cannot run: set started to false (or leave it unset) with template: true");
        }
        for (name, v) in [
            ("timeoutCreate", a.timeout_create),
            ("timeoutClone", a.timeout_clone),
            ("timeoutStartVm", a.timeout_start_vm),
            ("timeoutShutdownVm", a.timeout_shutdown_vm),
            ("timeoutStopVm", a.timeout_stop_vm),
            ("timeoutMigrate", a.timeout_migrate),
            ("timeoutReboot", a.timeout_reboot),
        ] {
            self.range(name, v, 1, 7 * 24 * 3600, "a timeout in seconds");
        }
        if let Some(s) = &a.startup {
            self.range("startup.order", s.order, 0, i64::from(u32::MAX), "the start order");
            self.range("startup.upDelay", s.up_delay, 0, i64::from(u32::MAX), "a delay in seconds");
            self.range("startup.downDelay", s.down_delay, 0, i64::from(u32::MAX), "a delay in seconds");
        }
    }

    fn agent_cpu_memory(&mut self, a: &VirtualMachineArgs) {
        if let Some(agent) = &a.agent {
            if let Some(t) = &agent.timeout {
                if let Err(e) = f::parse_duration(t) {
                    self.fail("agent.timeout", e);
                }
            }
            self.one_of("agent.type", &agent.agent_type, f::AGENT_TYPES);
        }
        if let Some(cpu) = &a.cpu {
            self.range("cpu.cores", cpu.cores, 1, 1024, "cores per socket");
            self.range("cpu.sockets", cpu.sockets, 1, 16, "sockets");
            if let Some(t) = &cpu.cpu_type {
                if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                    self.fail(
                        "cpu.type",
                        format!("{t:?} is not a CPU type: a model such as host, x86-64-v2-AES, kvm64 or custom-<name>"),
                    );
                }
            }
            for (i, flag) in cpu.flags.iter().flatten().enumerate() {
                let name = flag.strip_prefix(['+', '-']);
                if !name
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
                {
                    self.fail(
                        format!("cpu.flags[{i}]"),
                        format!(
                            "{flag:?} is not a CPU flag: +name to add it or -name to remove it, e.g. +aes or -pcid"
                        ),
                    );
                }
            }
            if let Some(limit) = cpu.limit {
                if !(0.0..=128.0).contains(&limit) {
                    self.fail("cpu.limit", format!("{limit} is out of range: the limit must be 0 (none) to 128 CPUs"));
                }
            }
            self.range("cpu.units", cpu.units, 1, 262_144, "CPU units");
        }
        if let Some(m) = &a.memory {
            self.range("memory.dedicated", m.dedicated, 16, 4_194_304, "memory in MB");
            self.range("memory.floating", m.floating, 0, 4_194_304, "the balloon minimum in MB");
            if let (Some(fl), Some(d)) = (m.floating, m.dedicated) {
                if fl > d {
                    self.fail("memory.floating", format!("{fl} MB is more than dedicated ({d} MB): the balloon minimum must be at most dedicated, or 0 to turn ballooning off"));
                }
            }
            self.range("memory.shared", m.shared, 0, 4_194_304, "shared memory in MB");
        }
    }

    fn disks(&mut self, a: &VirtualMachineArgs) {
        let mut used: BTreeMap<String, String> = BTreeMap::new();
        for (i, d) in a.disks.iter().flatten().enumerate() {
            let at = |k: &str| format!("disks[{i}].{k}");
            self.disk_interface(&at("interface"), &d.interface, false);
            if let Some(prev) = used.insert(d.interface.clone(), format!("disks[{i}]")) {
                self.fail(
                    at("interface"),
                    format!("{} is also used by {prev}; each disk needs its own interface", d.interface),
                );
            }
            self.disk(i, d);
        }
        if let Some(e) = &a.efi_disk {
            self.storage("efiDisk.datastoreId", &e.datastore_id);
            self.one_of("efiDisk.fileFormat", &e.file_format, f::FILE_FORMATS);
            self.one_of("efiDisk.type", &e.efi_type, f::EFI_TYPES);
        }
        if let Some(t) = &a.tpm_state {
            self.storage("tpmState.datastoreId", &t.datastore_id);
            self.one_of("tpmState.version", &t.version, f::TPM_VERSIONS);
        }
        if let Some(iface) = a.initialization.as_ref().and_then(|i| i.interface.as_ref()) {
            self.disk_interface("initialization.interface", iface, true);
            if let Some(prev) = used.get(iface) {
                self.fail(
                    "initialization.interface",
                    format!("{iface} is also used by {prev}; put the cloud-init drive on a free slot such as ide2"),
                );
            }
        }
        if let Some(c) = &a.cdrom {
            self.cdrom(a, c, &used);
        }
    }

    fn cdrom(&mut self, a: &VirtualMachineArgs, c: &Cdrom, disks: &BTreeMap<String, String>) {
        let slot = c.interface.as_deref().unwrap_or(DEFAULT_CDROM_INTERFACE);
        if c.interface.is_some() {
            self.disk_interface("cdrom.interface", slot, false);
            if slot.starts_with("virtio") {
                self.fail(
                    "cdrom.interface",
                    "a CD-ROM cannot be on virtio; use ide0-ide3 (default ide3), sataN or scsiN",
                );
            }
        }
        let cloud_init =
            a.initialization.as_ref().map(|i| i.interface.as_deref().unwrap_or(DEFAULT_CLOUD_INIT_INTERFACE));
        let taken =
            disks.get(slot).cloned().or_else(|| (cloud_init == Some(slot)).then(|| "the cloud-init drive".into()));
        if let Some(by) = taken {
            let path = if c.interface.is_some() { "cdrom.interface" } else { "cdrom" };
            self.fail(path, format!("{slot} is also used by {by}; put the CD-ROM on a free slot such as ide3"));
        }
        let id = c.file_id.as_str();
        if !matches!(id, "none" | "cdrom") && f::volid_content(id) != Some("iso") {
            self.fail(
                "cdrom.fileId",
                format!(
                    "{id:?} is not an ISO: use a volume of iso content such as local:iso/talos-v1.12.4-metal-amd64.iso \
                     (volumeId of a download.File with contentType: iso), none for an empty drive, or cdrom for \
                     the host's drive"
                ),
            );
        }
    }

    fn disk_interface(&mut self, path: &str, iface: &str, cloud_init: bool) {
        match f::disk_slot(iface) {
            None => self.fail(
                path,
                format!(
                    "{iface:?} is not a disk interface; use scsi0-scsi30, virtio0-virtio15, sata0-sata5 or ide0-ide3"
                ),
            ),
            Some((bus, n)) if n > bus.max_index() => {
                let b = bus.name();
                self.fail(path, format!("{iface} is out of range: {b} disks are {b}0 to {b}{}", bus.max_index()))
            }
            Some((Bus::Virtio, _)) if cloud_init => self.fail(
                path,
                "the cloud-init drive is a CD-ROM and cannot be on virtio; use ide2 (default), sataN or scsiN",
            ),
            Some(_) => {}
        }
    }

    fn disk(&mut self, i: usize, d: &Disk) {
        let at = |k: &str| format!("disks[{i}].{k}");
        self.storage(&at("datastoreId"), &d.datastore_id);
        if let Some(size) = d.size {
            if size <= 0 {
                self.fail(at("size"), format!("{size} is not a size: give a positive number of GB, e.g. 32"));
            }
        }
        if d.file_id.is_some() && d.import_from.is_some() {
            self.fail(at("importFrom"), "set either fileId or importFrom, not both");
        }
        if let Some(id) = &d.file_id {
            match f::volid_content(id) {
                None => self.fail(
                    at("fileId"),
                    format!("{id:?} is not a file volume id: storage:import/file, e.g. local:import/talos-nocloud-amd64.raw"),
                ),
                Some("import") => {}
                Some(content) => self.fail(
                    at("fileId"),
                    format!(
                        "{id:?} is of {content} content: Proxmox VE imports disk images through its API only from \
                         volumes of import content (this provider does not run `qm disk import` over SSH); download \
                         the image with contentType: import (download:File) and pass its volumeId, e.g. \
                         local:import/talos-nocloud-amd64.raw"
                    ),
                ),
            }
        }
        if let Some(src) = &d.import_from {
            if src.starts_with('/') {
                if self.root == Some(false) {
                    self.fail(at("importFrom"), "importing from an absolute path needs root@pam with a password; use a volume of import content, e.g. local:import/talos.raw");
                }
            } else if f::split_volid(src).is_none() {
                self.fail(
                    at("importFrom"),
                    format!("{src:?} is not a volume id: storage:import/file, e.g. local:import/talos-1.12.raw"),
                );
            } else if f::volid_content(src) == Some("iso") {
                self.fail(at("importFrom"), format!("{src} is an ISO volume, which PVE cannot import; download the image with content type import (local:import/...), or use fileId"));
            }
        }
        self.one_of(&at("fileFormat"), &d.file_format, f::FILE_FORMATS);
        self.one_of(&at("discard"), &d.discard, f::DISCARD);
        self.one_of(&at("cache"), &d.cache, f::CACHE);
        self.one_of(&at("aio"), &d.aio, f::AIO);
        if d.serial.as_ref().is_some_and(|s| s.len() > 20) {
            self.fail(at("serial"), "is longer than 20 bytes, the most a disk serial can be");
        }
        let bus = f::disk_slot(&d.interface).map(|(b, _)| b);
        if d.iothread == Some(true) && matches!(bus, Some(Bus::Ide | Bus::Sata)) {
            self.fail(at("iothread"), "I/O threads work only on scsi and virtio disks");
        }
        if d.ssd == Some(true) && bus == Some(Bus::Virtio) {
            self.fail(at("ssd"), "virtio disks cannot be presented as SSDs; use a scsi interface");
        }
    }

    fn clone_source(&mut self, a: &VirtualMachineArgs) {
        let Some(c) = &a.clone else { return };
        self.range("clone.vmId", Some(c.vm_id), 100, 999_999_999, "a VM id");
        if a.vm_id == Some(c.vm_id) {
            self.fail("clone.vmId", "is the VM's own vmId; clone another VM or template");
        }
        if let Some(n) = c.node_name.as_deref().filter(|n| !f::is_node_name(n)) {
            self.fail("clone.nodeName", format!("{n:?} is not a node name, e.g. pve"));
        }
        self.storage("clone.datastoreId", &c.datastore_id);
        if c.full == Some(false) && c.datastore_id.is_some() {
            self.fail(
                "clone.datastoreId",
                "applies only to full clones: a linked clone stays on the template's storage",
            );
        }
        self.range("clone.retries", c.retries, 0, 100, "clone retries");
    }

    fn hostpcis(&mut self, a: &VirtualMachineArgs) {
        let q35 = a.machine.as_deref().is_some_and(f::is_q35);
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, h) in a.hostpcis.iter().flatten().enumerate() {
            self.hostpci(i, h, q35);
            if let Some(j) = seen.insert(h.device.as_str(), i) {
                self.fail(format!("hostpcis[{i}].device"), format!("{} is also used by hostpcis[{j}]", h.device));
            }
        }
    }

    fn hostpci(&mut self, i: usize, h: &HostPci, q35: bool) {
        let at = |k: &str| format!("hostpcis[{i}].{k}");
        match f::split_slot(&h.device, "hostpci") {
            Some(n) if n <= f::MAX_HOSTPCI => {}
            _ => self.fail(
                at("device"),
                format!("{:?} is not a host PCI slot; use hostpci0 to hostpci{}", h.device, f::MAX_HOSTPCI),
            ),
        }
        match (&h.id, &h.mapping) {
            (Some(_), Some(_)) => {
                self.fail(at("mapping"), "set either id (a host PCI address) or mapping (a resource mapping), not both")
            }
            (None, None) => self
                .fail(at("id"), "set id (a host PCI address such as 0000:28:00.0) or mapping (a PCI resource mapping)"),
            _ => {}
        }
        if let Some(id) = &h.id {
            if !id.split(';').all(f::is_pci_id) {
                self.fail(at("id"), format!("{id:?} is not a PCI address: [domain:]bus:device[.function] in hex, e.g. 0000:28:00.0 or 28:00.0"));
            } else if self.root == Some(false) {
                self.fail(at("id"), "raw PCI passthrough needs root@pam with a password (a ticket); use a PCI resource mapping (`mapping`) or configure `username: root@pam` and `password`");
            }
        }
        if let Some(m) = h.mapping.as_deref().filter(|m| !f::is_config_id(m)) {
            self.fail(at("mapping"), format!("{m:?} is not a mapping id: a letter, then letters, digits, '-' or '_'"));
        }
        if h.pcie == Some(true) && !q35 {
            self.fail(
                at("pcie"),
                "PCI Express passthrough needs a q35 machine: set machine to q35 (or pc-q35-<version>)",
            );
        }
        if let Some(r) = h.rom_file.as_deref().filter(|r| r.is_empty() || r.contains("..")) {
            self.fail(at("romFile"), format!("{r:?} is not a ROM file name under /usr/share/kvm"));
        }
        if let Some(m) = h.mdev.as_deref().filter(|m| m.is_empty() || m.contains([',', '=', ' '])) {
            self.fail(at("mdev"), format!("{m:?} is not a mediated device type, e.g. nvidia-63"));
        }
    }

    fn devices_and_boot(&mut self, a: &VirtualMachineArgs) {
        let serials = a.serial_devices.as_deref().unwrap_or_default();
        if serials.len() > f::MAX_SERIAL as usize + 1 {
            self.fail(
                format!("serialDevices[{}]", f::MAX_SERIAL + 1),
                "a VM has at most 4 serial ports (serial0 to serial3)",
            );
        }
        for (i, s) in serials.iter().enumerate() {
            if !(s.device == "socket" || s.device.strip_prefix("/dev/").is_some_and(|d| !d.is_empty())) {
                self.fail(
                    format!("serialDevices[{i}].device"),
                    format!("{:?} is not a serial device: socket, or a host device such as /dev/ttyS0", s.device),
                );
            }
        }
        if let Some(v) = &a.vga {
            self.one_of("vga.type", &v.vga_type, f::VGA_TYPES);
            self.range("vga.memory", v.memory, 4, 512, "video memory in MB");
            self.one_of("vga.clipboard", &v.clipboard, f::VGA_CLIPBOARDS);
        }
        let ci = a
            .initialization
            .as_ref()
            .map(|i| i.interface.as_deref().unwrap_or(super::args::DEFAULT_CLOUD_INIT_INTERFACE));
        let cdrom = a.cdrom.as_ref().map(|c| c.interface.as_deref().unwrap_or(DEFAULT_CDROM_INTERFACE));
        let mut seen: Vec<&str> = Vec::new();
        for (i, dev) in a.boot_orders.iter().flatten().enumerate() {
            let at = format!("bootOrders[{i}]");
            if seen.contains(&dev.as_str()) {
                self.fail(&at, format!("{dev} is listed twice"));
            }
            seen.push(dev);
            if cdrom == Some(dev.as_str()) {
                // The CD-ROM drive.
            } else if f::is_disk_key(dev) {
                // ide slots are often CD-ROMs, which these inputs do not describe.
                if let Some(disks) = a.disks.as_ref().filter(|_| !dev.starts_with("ide") || ci == Some(dev.as_str())) {
                    if !disks.iter().any(|d| &d.interface == dev) && ci != Some(dev.as_str()) {
                        let have: Vec<&str> = disks.iter().map(|d| d.interface.as_str()).chain(ci).collect();
                        self.fail(&at, format!("{dev} is not a configured disk; configured: {}", list(&have)));
                    }
                }
            } else if let Some(n) = f::split_slot(dev, "net") {
                if let Some(nics) = &a.network_devices {
                    if n as usize >= nics.len() {
                        self.fail(
                            &at,
                            format!(
                                "{dev} is not a configured network device; there are {} (net0 to net{})",
                                nics.len(),
                                nics.len().saturating_sub(1)
                            ),
                        );
                    }
                }
            } else if f::split_slot(dev, "hostpci").is_some() {
                if !a.hostpcis.iter().flatten().any(|h| &h.device == dev) && a.hostpcis.is_some() {
                    self.fail(&at, format!("{dev} is not a configured host PCI device"));
                }
            } else {
                self.fail(&at, format!("{dev:?} is not a boot device: a disk (scsi0), the cloud-init drive, a network device (net0) or a host PCI device (hostpci0)"));
            }
        }
    }
}

mod net;
#[cfg(test)]
mod tests;
