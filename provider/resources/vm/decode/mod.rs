//! A VM's Proxmox VE configuration (`GET .../config`: key to string) back to
//! `vm:VirtualMachine` inputs, for refresh, import and drift: [`read_args`].
//!
//! Normalisation, so that a refresh after an unchanged `up` yields the applied
//! inputs exactly and an import yields inputs that replace nothing:
//! - with prior inputs, an input they left unset reads back unset (it is not
//!   managed); a set one reads back as PVE has it, and as PVE's default when PVE
//!   omits the key (so explicitly asking for the default never shows drift);
//! - inputs PVE never echoes come from the prior inputs: `vmId`, `nodeName`,
//!   `started`, `poolId`, `clone`, `disks[].fileId`/`importFrom`, the password,
//!   `agent.timeout`/`waitForIp`, `migrate`, `*OnDestroy`, `timeout*`, and
//!   `fileFormat` when PVE omits `format=`; importing leaves them unset;
//! - disk sizes: PVE's `32G`/`3584M`/`512K` are bytes, reported in whole GB rounded
//!   up (3584M is 4). With a prior size S the result is S whenever PVE's size rounds
//!   up to S, and also when the disk is larger than S but came from an image or a
//!   template (`importFrom`, `fileId` or `clone`): disks never shrink, so a bigger
//!   image is not drift. Otherwise the rounded size shows the drift (e.g. grown);
//! - tags sorted, MACs upper case, `virtio=MAC` split into model and MAC, SSH keys
//!   URL-decoded one per line, descriptions compared without trailing whitespace;
//! - list order: disks and host PCI devices in the prior order, then others by slot;
//!   network devices, ipConfigs and serial ports by index.
//!
//! Must not: call the API, or guess values PVE does not hold.

use super::args::*;
use super::encode::{ssh_keys, Config};
use super::format::{self as f, PropString};

/// What the prior inputs say about one input.
enum Prior<'a, T> {
    /// No prior inputs: importing, report what PVE has.
    Import,
    /// The prior inputs left it unset: not managed.
    Unset,
    /// The prior inputs set it.
    Set(&'a T),
}

impl<T> Clone for Prior<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Prior<'_, T> {}

impl<'a, T> Prior<'a, T> {
    fn of(v: &'a Option<T>) -> Self {
        v.as_ref().map_or(Prior::Unset, Prior::Set)
    }

    fn field<U>(self, get: impl FnOnce(&'a T) -> &'a Option<U>) -> Prior<'a, U> {
        match self {
            Prior::Import => Prior::Import,
            Prior::Unset => Prior::Unset,
            Prior::Set(t) => Prior::of(get(t)),
        }
    }

    /// `read`, unless unmanaged; PVE's `default` when a managed key is absent.
    fn value(self, read: Option<T>, default: Option<T>) -> Option<T> {
        match self {
            Prior::Import => read,
            Prior::Unset => None,
            Prior::Set(_) => read.or(default),
        }
    }

    fn prior(self) -> Option<T>
    where
        T: Clone,
    {
        match self {
            Prior::Set(t) => Some(t.clone()),
            _ => None,
        }
    }

    /// An object input: unset stays unset; an imported object that reads empty is unset.
    fn object(self, build: impl FnOnce(Prior<'a, T>) -> T) -> Option<T>
    where
        T: Default + PartialEq,
    {
        match self {
            Prior::Unset => None,
            Prior::Set(_) => Some(build(self)),
            Prior::Import => Some(build(self)).filter(|t| *t != T::default()),
        }
    }
}

fn s(v: Option<&str>) -> Option<String> {
    v.map(str::to_string)
}

fn num<T: std::str::FromStr>(v: Option<&str>) -> Option<T> {
    v.and_then(|v| v.trim().parse().ok())
}

fn boolean(v: Option<&str>) -> Option<bool> {
    v.and_then(f::parse_bool)
}

fn storage_of(volid: Option<&str>) -> Option<String> {
    volid.and_then(f::split_volid).map(|(s, _)| s.to_string())
}

/// The inputs that reproduce the VM configured as `config`, shaped like `prior` (the
/// inputs last applied; `None` when importing). `nodeName` and `vmId` are `prior`'s:
/// when importing, the caller sets them (set `vmId` to the imported id).
pub fn read_args(config: &Config, prior: Option<&VirtualMachineArgs>) -> VirtualMachineArgs {
    let get = |k: &str| config.get(k).map(String::as_str);
    macro_rules! prior_of {
        ($field:ident) => {
            prior.map_or(Prior::Import, |p| Prior::of(&p.$field))
        };
    }
    let unmarked = get("description").map(|d| super::journal::without_marker_lines(d).0);
    let description = match (prior_of!(description), unmarked.as_deref().filter(|d| !d.is_empty())) {
        (Prior::Set(d), Some(read)) if d.trim_end() == read.trim_end() => Some(d.clone()),
        (p, read) => p.value(s(read), Some(String::new())),
    };
    // A create's marker is the provider's, not the program's.
    let tags = get("tags")
        .map(|t| super::check::sorted_tags(t.split([';', ',', ' ']).filter(|t| !super::journal::is_marker(t))));
    VirtualMachineArgs {
        node_name: prior.map(|p| p.node_name.clone()).unwrap_or_default(),
        vm_id: prior.and_then(|p| p.vm_id),
        name: prior_of!(name).value(s(get("name")), Some(String::new())),
        description,
        tags: prior_of!(tags).value(tags, Some(Vec::new())),
        on_boot: prior_of!(on_boot).value(boolean(get("onboot")), Some(false)),
        started: prior.and_then(|p| p.started),
        template: prior_of!(template).value(boolean(get("template")), Some(false)),
        pool_id: prior.and_then(|p| p.pool_id.clone()),
        bios: prior_of!(bios).value(s(get("bios")), Some("seabios".into())),
        machine: prior_of!(machine).value(s(get("machine")), None),
        scsi_hardware: prior_of!(scsi_hardware).value(s(get("scsihw")), Some("lsi".into())),
        operating_system: prior_of!(operating_system).object(|p| OperatingSystem {
            os_type: p.field(|o| &o.os_type).value(s(get("ostype")), Some("other".into())),
        }),
        agent: prior_of!(agent).object(|p| {
            let agent = PropString::parse(get("agent").unwrap_or(""), "enabled");
            Agent {
                enabled: p.field(|a| &a.enabled).value(boolean(agent.get("enabled")), Some(false)),
                timeout: p.field(|a| &a.timeout).prior(),
                trim: p.field(|a| &a.trim).value(boolean(agent.get("fstrim_cloned_disks")), Some(false)),
                agent_type: p.field(|a| &a.agent_type).value(s(agent.get("type")), Some("virtio".into())),
                wait_for_ip: p.field(|a| &a.wait_for_ip).prior(),
            }
        }),
        cpu: prior_of!(cpu).object(|p| {
            let cpu = PropString::parse(get("cpu").unwrap_or(""), "cputype");
            let flags =
                cpu.get("flags").map(|fl| fl.split(';').filter(|x| !x.is_empty()).map(str::to_string).collect());
            Cpu {
                cores: p.field(|c| &c.cores).value(num(get("cores")), Some(1)),
                sockets: p.field(|c| &c.sockets).value(num(get("sockets")), Some(1)),
                cpu_type: p.field(|c| &c.cpu_type).value(s(cpu.get("cputype")), None),
                flags: p.field(|c| &c.flags).value(flags, Some(Vec::new())),
                numa: p.field(|c| &c.numa).value(boolean(get("numa")), Some(false)),
                limit: p.field(|c| &c.limit).value(num(get("cpulimit")), Some(0.0)),
                units: p.field(|c| &c.units).value(num(get("cpuunits")), None),
            }
        }),
        memory: prior_of!(memory).object(|p| Memory {
            dedicated: p
                .field(|m| &m.dedicated)
                .value(num(PropString::parse(get("memory").unwrap_or(""), "current").get("current")), Some(512)),
            floating: p.field(|m| &m.floating).value(num(get("balloon")), None),
            shared: p
                .field(|m| &m.shared)
                .value(num(PropString::parse(get("ivshmem").unwrap_or(""), "size").get("size")), Some(0)),
        }),
        disks: read_disks(config, prior),
        cdrom: read_cdrom(config, prior),
        efi_disk: prior_of!(efi_disk).object(|p| {
            let e = f::drive(get("efidisk0").unwrap_or(""));
            if get("efidisk0").is_none() && matches!(p, Prior::Set(_)) {
                return EfiDisk::default();
            }
            EfiDisk {
                datastore_id: p.field(|e| &e.datastore_id).value(storage_of(e.get("file")), None),
                file_format: p.field(|e| &e.file_format).value(s(e.get("format")), p.field(|e| &e.file_format).prior()),
                efi_type: p.field(|e| &e.efi_type).value(s(e.get("efitype")), Some("2m".into())),
                pre_enrolled_keys: p
                    .field(|e| &e.pre_enrolled_keys)
                    .value(boolean(e.get("pre-enrolled-keys")), Some(false)),
            }
        }),
        tpm_state: prior_of!(tpm_state).object(|p| {
            let t = f::drive(get("tpmstate0").unwrap_or(""));
            if get("tpmstate0").is_none() && matches!(p, Prior::Set(_)) {
                return TpmState::default();
            }
            TpmState {
                datastore_id: p.field(|t| &t.datastore_id).value(storage_of(t.get("file")), None),
                version: p.field(|t| &t.version).value(s(t.get("version")), Some("v1.2".into())),
            }
        }),
        network_devices: read_nics(config, prior),
        initialization: read_cloud_init(config, prior),
        clone: prior.and_then(|p| p.clone.clone()),
        hostpcis: read_hostpcis(config, prior),
        serial_devices: match prior {
            Some(p) if p.serial_devices.is_none() => None,
            _ => {
                let ports = indexed(config, "serial", f::MAX_SERIAL, 0).into_iter();
                let list: Vec<SerialDevice> =
                    ports.map(|(_, v)| SerialDevice { device: v.unwrap_or_default() }).collect();
                Some(list).filter(|l| prior.is_some() || !l.is_empty())
            }
        },
        vga: prior_of!(vga).object(|p| {
            let v = PropString::parse(get("vga").unwrap_or(""), "type");
            Vga {
                vga_type: p.field(|v| &v.vga_type).value(s(v.get("type")), Some("std".into())),
                memory: p.field(|v| &v.memory).value(num(v.get("memory")), None),
                clipboard: p.field(|v| &v.clipboard).value(s(v.get("clipboard")), None),
            }
        }),
        boot_orders: prior_of!(boot_orders).value(
            PropString::parse(get("boot").unwrap_or(""), "legacy")
                .get("order")
                .map(|o| o.split(';').map(str::to_string).collect()),
            Some(Vec::new()),
        ),
        startup: prior_of!(startup).object(|p| {
            let st = PropString::parse(get("startup").unwrap_or(""), "order");
            Startup {
                order: p.field(|s| &s.order).value(num(st.get("order")), None),
                up_delay: p.field(|s| &s.up_delay).value(num(st.get("up")), None),
                down_delay: p.field(|s| &s.down_delay).value(num(st.get("down")), None),
            }
        }),
        migrate: prior.and_then(|p| p.migrate),
        stop_on_destroy: prior.and_then(|p| p.stop_on_destroy),
        purge_on_destroy: prior.and_then(|p| p.purge_on_destroy),
        timeout_create: prior.and_then(|p| p.timeout_create),
        timeout_clone: prior.and_then(|p| p.timeout_clone),
        timeout_start_vm: prior.and_then(|p| p.timeout_start_vm),
        timeout_shutdown_vm: prior.and_then(|p| p.timeout_shutdown_vm),
        timeout_stop_vm: prior.and_then(|p| p.timeout_stop_vm),
        timeout_migrate: prior.and_then(|p| p.timeout_migrate),
        timeout_reboot: prior.and_then(|p| p.timeout_reboot),
    }
}

/// The CD-ROM drive: with prior inputs, the drive at their slot (an empty `fileId` when the slot
/// holds no CD-ROM); when importing, the first CD-ROM drive that is not the cloud-init drive.
fn read_cdrom(config: &Config, prior: Option<&VirtualMachineArgs>) -> Option<Cdrom> {
    let file_at = |slot: &str| {
        let value = config.get(slot).filter(|v| f::is_cdrom(v) && !f::is_cloud_init(v))?;
        f::drive(value).get("file").map(str::to_string)
    };
    match prior {
        Some(p) => {
            let c = p.cdrom.as_ref()?;
            let slot = c.interface.as_deref().unwrap_or(DEFAULT_CDROM_INTERFACE);
            Some(Cdrom { file_id: file_at(slot).unwrap_or_default(), interface: c.interface.clone() })
        }
        None => {
            let mut slots: Vec<&String> = config.keys().filter(|k| f::is_disk_key(k)).collect();
            slots.sort_by_key(|k| f::disk_slot(k).map(|(bus, n)| (bus.name(), n)));
            slots.into_iter().find_map(|k| Some(Cdrom { file_id: file_at(k)?, interface: Some(k.clone()) }))
        }
    }
}

/// `prefix0`..`prefix{max}` up to the last present or `min_len - 1`, gaps as `None`.
fn indexed(config: &Config, prefix: &str, max: u32, min_len: usize) -> Vec<(String, Option<String>)> {
    let last = (0..=max).filter(|n| config.contains_key(&format!("{prefix}{n}"))).max().map_or(0, |n| n as usize + 1);
    (0..last.max(min_len)).map(|n| format!("{prefix}{n}")).map(|k| (k.clone(), config.get(&k).cloned())).collect()
}

/// Disk sizes per the module rule: GB rounded up, or the prior size when it explains PVE's.
fn disk_size(p: Prior<'_, Disk>, bytes: Option<u64>, from_image: bool) -> Option<i64> {
    let read = bytes.map(f::gib_ceil);
    match p.field(|d| &d.size) {
        Prior::Import => read,
        Prior::Unset => None,
        Prior::Set(&want) => match bytes {
            None => Some(want),
            Some(b) if f::gib_ceil(b) == want => Some(want),
            Some(b) if from_image && want > 0 && b > (want as u64) * f::GIB => Some(want),
            Some(_) => read,
        },
    }
}

fn read_disks(config: &Config, prior: Option<&VirtualMachineArgs>) -> Option<Vec<Disk>> {
    let prior_disks = match prior {
        Some(p) => Some(p.disks.as_ref()?),
        None => None,
    };
    let mut keys: Vec<&String> =
        config.iter().filter(|(k, v)| f::is_disk_key(k) && !f::is_cdrom(v)).map(|(k, _)| k).collect();
    keys.sort_by_key(|k| {
        let at = prior_disks.and_then(|l| l.iter().position(|d| &d.interface == *k)).unwrap_or(usize::MAX);
        let (bus, n) = f::disk_slot(k).expect("a disk key");
        (at, f::Bus::ALL.iter().position(|b| *b == bus), n)
    });
    let cloned = prior.is_some_and(|p| p.clone.is_some());
    let disks = keys.into_iter().map(|k| {
        let d = f::drive(&config[k]);
        let p = match prior_disks {
            None => Prior::Import,
            Some(l) => l.iter().find(|d| &d.interface == k).map_or(Prior::Import, Prior::Set),
        };
        let from_image = cloned || matches!(p, Prior::Set(d) if d.import_from.is_some() || d.file_id.is_some());
        let field = |get: fn(&Disk) -> &Option<String>, key: &str, default: Option<&str>| {
            p.field(get).value(s(d.get(key)), default.map(str::to_string))
        };
        let flag = |get: fn(&Disk) -> &Option<bool>, key: &str, default: bool| {
            p.field(get).value(boolean(d.get(key)), Some(default))
        };
        Disk {
            interface: k.clone(),
            datastore_id: p.field(|d| &d.datastore_id).value(storage_of(d.get("file")), None),
            size: disk_size(p, d.get("size").and_then(f::parse_size), from_image),
            file_id: p.field(|d| &d.file_id).prior(),
            import_from: p.field(|d| &d.import_from).prior(),
            file_format: p.field(|d| &d.file_format).value(s(d.get("format")), p.field(|d| &d.file_format).prior()),
            iothread: flag(|d| &d.iothread, "iothread", false),
            ssd: flag(|d| &d.ssd, "ssd", false),
            discard: field(|d| &d.discard, "discard", Some("ignore")),
            cache: field(|d| &d.cache, "cache", Some("none")),
            aio: field(|d| &d.aio, "aio", Some("io_uring")),
            backup: flag(|d| &d.backup, "backup", true),
            replicate: flag(|d| &d.replicate, "replicate", true),
            serial: p.field(|d| &d.serial).value(d.get("serial").map(f::url_decode), None),
        }
    });
    Some(disks.collect::<Vec<_>>()).filter(|l| prior.is_some() || !l.is_empty())
}

fn read_nics(config: &Config, prior: Option<&VirtualMachineArgs>) -> Option<Vec<NetworkDevice>> {
    let prior_nics = match prior {
        Some(p) => Some(p.network_devices.as_ref()?),
        None => None,
    };
    let nics = indexed(config, "net", f::MAX_NET, 0).into_iter().enumerate().map(|(i, (_, value))| {
        let n = f::net(value.as_deref().unwrap_or(""));
        let p = match prior_nics {
            None => Prior::Import,
            Some(l) => l.get(i).map_or(Prior::Import, Prior::Set),
        };
        NetworkDevice {
            bridge: p.field(|n| &n.bridge).value(s(n.get("bridge")), None),
            model: p.field(|n| &n.model).value(s(n.get("model")), None),
            vlan_id: p.field(|n| &n.vlan_id).value(num(n.get("tag")), Some(0)),
            mtu: p.field(|n| &n.mtu).value(num(n.get("mtu")), Some(0)),
            mac_address: p.field(|n| &n.mac_address).value(s(n.get("macaddr")), None),
            firewall: p.field(|n| &n.firewall).value(boolean(n.get("firewall")), Some(false)),
            enabled: p.field(|n| &n.enabled).value(boolean(n.get("link_down")).map(|down| !down), Some(true)),
            rate_limit: p.field(|n| &n.rate_limit).value(num(n.get("rate")), Some(0.0)),
            queues: p.field(|n| &n.queues).value(num(n.get("queues")), Some(0)),
            trunks: p.field(|n| &n.trunks).value(s(n.get("trunks")), Some(String::new())),
        }
    });
    Some(nics.collect::<Vec<_>>()).filter(|l| prior.is_some() || !l.is_empty())
}

fn read_cloud_init(config: &Config, prior: Option<&VirtualMachineArgs>) -> Option<Initialization> {
    let get = |k: &str| config.get(k).map(String::as_str);
    let drive = config.iter().find(|(k, v)| f::is_disk_key(k) && f::is_cloud_init(v));
    let p = prior.map_or(Prior::Import, |p| Prior::of(&p.initialization));
    let custom = PropString::parse(get("cicustom").unwrap_or(""), "");
    let file = |pick: fn(&Initialization) -> &Option<String>, key: &str| {
        p.field(pick).value(s(custom.get(key)), Some(String::new()))
    };
    p.object(|p| Initialization {
        datastore_id: p
            .field(|i| &i.datastore_id)
            .value(drive.and_then(|(_, v)| storage_of(f::drive(v).get("file"))), None),
        interface: p.field(|i| &i.interface).value(drive.map(|(k, _)| k.clone()), None),
        ci_type: p.field(|i| &i.ci_type).value(s(get("citype")), None),
        ip_configs: match p.field(|i| &i.ip_configs) {
            Prior::Unset => None,
            pc => {
                let min = if let Prior::Set(l) = pc { l.len() } else { 0 };
                let configs: Vec<IpConfig> = indexed(config, "ipconfig", f::MAX_NET, min)
                    .into_iter()
                    .map(|(_, v)| {
                        let ip = PropString::parse(v.as_deref().unwrap_or(""), "");
                        let pair = |a: &str, g: &str| {
                            let c = IpAddressConfig { address: s(ip.get(a)), gateway: s(ip.get(g)) };
                            Some(c).filter(|c| *c != IpAddressConfig::default())
                        };
                        IpConfig { ipv4: pair("ip", "gw"), ipv6: pair("ip6", "gw6") }
                    })
                    .collect();
                Some(configs).filter(|c| matches!(pc, Prior::Set(_)) || !c.is_empty())
            }
        },
        dns: p.field(|i| &i.dns).object(|p| Dns {
            servers: p
                .field(|d| &d.servers)
                .value(get("nameserver").map(|n| n.split_whitespace().map(str::to_string).collect()), Some(Vec::new())),
            domain: p.field(|d| &d.domain).value(s(get("searchdomain")), Some(String::new())),
        }),
        user_account: p.field(|i| &i.user_account).object(|p| UserAccount {
            username: p.field(|u| &u.username).value(s(get("ciuser")), Some(String::new())),
            password: p.field(|u| &u.password).prior(),
            keys: p.field(|u| &u.keys).value(get("sshkeys").map(ssh_keys), Some(Vec::new())),
        }),
        user_data_file_id: file(|i| &i.user_data_file_id, "user"),
        vendor_data_file_id: file(|i| &i.vendor_data_file_id, "vendor"),
        meta_data_file_id: file(|i| &i.meta_data_file_id, "meta"),
        network_data_file_id: file(|i| &i.network_data_file_id, "network"),
        upgrade: p.field(|i| &i.upgrade).value(boolean(get("ciupgrade")), Some(true)),
        // Never stored in PVE: kept from the inputs last applied.
        revision: p.field(|i| &i.revision).prior(),
    })
}

fn read_hostpcis(config: &Config, prior: Option<&VirtualMachineArgs>) -> Option<Vec<HostPci>> {
    let prior_list = match prior {
        Some(p) => Some(p.hostpcis.as_ref()?),
        None => None,
    };
    let mut keys: Vec<&String> = config.keys().filter(|k| f::split_slot(k, "hostpci").is_some()).collect();
    keys.sort_by_key(|k| {
        let at = prior_list.and_then(|l| l.iter().position(|h| &h.device == *k)).unwrap_or(usize::MAX);
        (at, f::split_slot(k, "hostpci"))
    });
    let list = keys.into_iter().map(|k| {
        let h = PropString::parse(&config[k], "host");
        let p = prior_list.and_then(|l| l.iter().find(|h| &h.device == k)).map_or(Prior::Import, Prior::Set);
        HostPci {
            device: k.clone(),
            id: p.field(|h| &h.id).value(s(h.get("host")), None),
            mapping: p.field(|h| &h.mapping).value(s(h.get("mapping")), None),
            pcie: p.field(|h| &h.pcie).value(boolean(h.get("pcie")), Some(false)),
            xvga: p.field(|h| &h.xvga).value(boolean(h.get("x-vga")), Some(false)),
            rombar: p.field(|h| &h.rombar).value(boolean(h.get("rombar")), Some(true)),
            rom_file: p.field(|h| &h.rom_file).value(s(h.get("romfile")), None),
            mdev: p.field(|h| &h.mdev).value(s(h.get("mdev")), None),
        }
    });
    Some(list.collect::<Vec<_>>()).filter(|l| prior.is_some() || !l.is_empty())
}

#[cfg(test)]
mod tests;
