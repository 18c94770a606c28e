//! `vm:VirtualMachine` inputs to Proxmox VE parameters: the form of
//! `POST /nodes/{node}/qemu` ([`create_params`]), of the clone call
//! ([`clone_request`]), the changes to a VM's current configuration for
//! `PUT`/`POST .../config` ([`config_diff`]), and the follow-up calls a config
//! cannot express: disk resizes ([`resizes`]) and moves ([`disk_moves`]). Disk
//! images are imported by PVE itself (`import-from`).
//!
//! Rules: an unset input is not managed (left out of a create; never changed or
//! deleted by an update), the empty string or list clears; the lists `disks`,
//! `networkDevices`, `hostpcis`, `serialDevices` and `initialization.ipConfigs`
//! are complete when set (what is configured beyond them is deleted), and so is
//! `cdrom` (the one CD-ROM drive besides the cloud-init drive). Property
//! strings are merged: options an input leaves unset keep their current value
//! (a clone keeps its template's disk options). Values are written in PVE's own
//! printed form, and compared by meaning (key order, `1`/`on`, defaults), so an
//! unchanged VM yields an empty diff. Must not: call the API or validate (that is
//! `check`; inputs here are assumed checked).

use std::collections::BTreeMap;

use super::args::{self as a, Disk, VirtualMachineArgs};
use super::format::{self as f, PropString};

/// Form parameters, in order.
pub type Params = Vec<(String, String)>;

/// A VM configuration as `GET .../config` returns it, every value as a string.
pub type Config = BTreeMap<String, String>;

/// What an input wants for one configuration key.
enum Want {
    Set(String),
    Delete,
}

/// How two values of a key are compared: when equal, nothing is sent.
#[derive(Clone, Copy)]
enum Same {
    /// Equal strings; an absent current value counts as `default`.
    Literal(Option<&'static str>),
    /// Equal up to trailing whitespace (PVE may add a newline to descriptions).
    TrimEnd,
    /// A property string with this default key, ignoring options at these defaults.
    Prop(&'static str, &'static [(&'static str, &'static str)]),
    /// A network device.
    Net,
    /// The same set of words split on `;`, `,` or whitespace (tags, name servers).
    WordSet,
    /// The same SSH keys after URL decoding.
    SshKeys,
    /// The same `order=` list.
    Boot,
    /// A CD-ROM drive with the same file (PVE adds `size=` for an ISO).
    Cdrom,
    /// Never equal when absent; never compared when present (write-only secrets).
    SetOnce,
}

struct Plan<'c> {
    current: &'c Config,
    wants: Vec<(String, Want, Same)>,
}

impl<'c> Plan<'c> {
    fn want(&mut self, key: impl Into<String>, want: Want, same: Same) {
        self.wants.push((key.into(), want, same));
    }

    /// `Some("")` deletes, `Some(v)` sets, `None` is unmanaged.
    fn text(&mut self, key: &str, value: &Option<String>, same: Same) {
        match value.as_deref() {
            Some("") => self.want(key, Want::Delete, same),
            Some(v) => self.want(key, Want::Set(v.to_string()), same),
            None => {}
        }
    }

    fn flag(&mut self, key: &str, value: Option<bool>, default: &'static str) {
        if let Some(b) = value {
            self.want(key, Want::Set(f::bit(b).into()), Same::Literal(Some(default)));
        }
    }

    fn int(&mut self, key: &str, value: Option<i64>, default: Option<&'static str>) {
        if let Some(n) = value {
            self.want(key, Want::Set(n.to_string()), Same::Literal(default));
        }
    }

    fn current(&self, key: &str) -> Option<&'c str> {
        self.current.get(key).map(String::as_str)
    }
}

const DRIVE_DEFAULTS: &[(&str, &str)] = &[("backup", "1"), ("replicate", "1"), ("iothread", "0"), ("ssd", "0")];
const AGENT_DEFAULTS: &[(&str, &str)] =
    &[("enabled", "0"), ("fstrim_cloned_disks", "0"), ("type", "virtio"), ("freeze-fs-on-backup", "1")];
const HOSTPCI_DEFAULTS: &[(&str, &str)] = &[("rombar", "1"), ("pcie", "0"), ("x-vga", "0")];

fn opt_bit(b: Option<bool>) -> Option<String> {
    b.map(|b| f::bit(b).to_string())
}

/// The parameters of `POST /nodes/{node}/qemu` creating `args` from scratch as `vmid`.
/// Not included: `template` (convert with `POST .../template` afterwards) and starting.
pub fn create_params(args: &VirtualMachineArgs, vmid: i64) -> Params {
    let empty = Config::new();
    let mut out: Params = vec![("vmid".into(), vmid.to_string())];
    if let Some(pool) = args.pool_id.as_deref().filter(|p| !p.is_empty()) {
        out.push(("pool".into(), pool.into()));
    }
    if args.scsi_hardware.is_none() {
        out.push(("scsihw".into(), a::DEFAULT_SCSI_HARDWARE.into()));
    }
    for (key, want, _) in plan(args, &empty).wants {
        if let Want::Set(v) = want {
            out.push((key, v));
        }
    }
    out
}

/// The changes that bring `current` (the VM's configuration, pending values
/// included, as `GET .../config` returns it) to `args`: parameters to set, and keys
/// for `delete=`. Empty when nothing differs.
///
/// `cipassword` is set only when the VM has none (PVE never returns it): when the
/// password input changed, the caller adds it. Pool membership is not part of the
/// configuration (use the pools API), nor are sizes ([`resizes`]) or storages
/// ([`disk_moves`]). Use `POST .../config` when [`allocates`] says so.
pub fn config_diff(current: &Config, args: &VirtualMachineArgs) -> (Params, Vec<String>) {
    let mut set = Params::new();
    let mut delete = Vec::new();
    for (key, want, same) in plan(args, current).wants {
        let cur = current.get(&key).map(String::as_str);
        match want {
            Want::Set(v) if !equal(same, cur, &v) => set.push((key, v)),
            Want::Delete if cur.is_some() => delete.push(key),
            _ => {}
        }
    }
    (set, delete)
}

fn equal(same: Same, cur: Option<&str>, new: &str) -> bool {
    let words = |s: &str| -> Vec<String> {
        let mut w: Vec<String> =
            s.split([';', ',', ' ', '\t', '\n']).filter(|w| !w.is_empty()).map(str::to_string).collect();
        w.sort();
        w.dedup();
        w
    };
    match (same, cur) {
        (Same::Literal(default), None) => default == Some(new),
        (Same::Literal(_), Some(c)) => c == new,
        (Same::SetOnce, c) => c.is_some(),
        (Same::TrimEnd, c) => c.is_some_and(|c| c.trim_end() == new.trim_end()),
        (Same::Prop(key, defaults), c) => {
            PropString::parse(c.unwrap_or(""), key).normalised(defaults)
                == PropString::parse(new, key).normalised(defaults)
        }
        (Same::Net, c) => {
            let d = &[("firewall", "0"), ("link_down", "0")];
            c.is_some_and(|c| f::net(c).normalised(d) == f::net(new).normalised(d))
        }
        (Same::WordSet, c) => c.is_some_and(|c| words(c) == words(new)),
        (Same::SshKeys, c) => c.is_some_and(|c| ssh_keys(c) == ssh_keys(new)),
        (Same::Cdrom, c) => c.is_some_and(|c| {
            let (cur, new) = (f::drive(c), f::drive(new));
            f::is_cdrom(c) && cur.get("file") == new.get("file")
        }),
        (Same::Boot, c) => c.is_some_and(|c| {
            PropString::parse(c, "legacy").get("order") == PropString::parse(new, "legacy").get("order")
        }),
    }
}

/// SSH keys from an `sshkeys` value: URL-decoded, one per non-empty line, trimmed.
pub fn ssh_keys(value: &str) -> Vec<String> {
    f::url_decode(value).lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// The `sshkeys` value for `keys`: joined with newlines, then URL-encoded (`%20` for a
/// space, `%0A` between keys), as PVE's `urlencoded` format takes it. The form body
/// encodes it once more, so PVE receives `%2520`.
pub fn sshkeys_value(keys: &[String]) -> String {
    f::url_encode(&keys.iter().map(|k| k.trim()).collect::<Vec<_>>().join("\n"))
}

fn plan<'c>(args: &VirtualMachineArgs, current: &'c Config) -> Plan<'c> {
    let mut p = Plan { current, wants: Vec::new() };
    p.text("name", &args.name, Same::Literal(None));
    // A clone's create marker (a line of the description) stays until the create removes it.
    let marker_line =
        p.current("description").and_then(|d| d.lines().map(str::trim).find(|l| super::journal::is_marker(l)));
    match (args.description.as_deref(), marker_line) {
        (Some(d), Some(m)) if !d.is_empty() => p.want("description", Want::Set(format!("{d}\n{m}")), Same::TrimEnd),
        (Some(_), Some(m)) => p.want("description", Want::Set(m.to_string()), Same::TrimEnd),
        _ => p.text("description", &args.description, Same::TrimEnd),
    }
    if let Some(tags) = &args.tags {
        // A create's marker stays until the create (or the next update) removes it.
        let markers = p
            .current("tags")
            .into_iter()
            .flat_map(|t| t.split([';', ',', ' ']))
            .filter(|t| super::journal::is_marker(t));
        let tags = super::check::sorted_tags(tags.iter().map(String::as_str).chain(markers));
        let want = if tags.is_empty() { Want::Delete } else { Want::Set(tags.join(";")) };
        p.want("tags", want, Same::WordSet);
    }
    p.flag("onboot", args.on_boot, "0");
    p.text("bios", &args.bios, Same::Literal(Some("seabios")));
    p.text("machine", &args.machine, Same::Prop("type", &[]));
    p.text("scsihw", &args.scsi_hardware, Same::Literal(Some("lsi")));
    p.text("ostype", &args.operating_system.as_ref().and_then(|o| o.os_type.clone()), Same::Literal(Some("other")));
    agent_cpu_memory(&mut p, args);
    disks(&mut p, args);
    network(&mut p, args);
    cloud_init(&mut p, args);
    cdrom(&mut p, args);
    devices(&mut p, args);
    p
}

/// The CD-ROM drive at its slot, and no other CD-ROM drive but the cloud-init drive.
fn cdrom(p: &mut Plan<'_>, args: &VirtualMachineArgs) {
    let Some(c) = &args.cdrom else { return };
    let slot = c.interface.as_deref().unwrap_or(a::DEFAULT_CDROM_INTERFACE);
    let others: Vec<String> = p
        .current
        .iter()
        .filter(|(k, v)| f::is_disk_key(k) && k.as_str() != slot && f::is_cdrom(v) && !f::is_cloud_init(v))
        .map(|(k, _)| k.clone())
        .collect();
    for key in others {
        p.want(key, Want::Delete, Same::Cdrom);
    }
    p.want(slot, Want::Set(format!("{},media=cdrom", c.file_id)), Same::Cdrom);
}

/// Merges `options` into the current property string of `key` (or an empty one).
fn merged(p: &Plan<'_>, key: &str, default_key: &str, options: Vec<(&str, Option<String>)>) -> PropString {
    let mut prop = PropString::parse(p.current(key).unwrap_or(""), default_key);
    for (k, v) in options {
        prop.apply(k, v);
    }
    prop
}

/// Prints with the default key written out first (`enabled=1,...`), then the rest sorted.
fn keyed(prop: &PropString, first: &str) -> String {
    let mut rest = prop.clone();
    rest.remove(first);
    let head = prop.get(first).map(|v| format!("{first}={v}"));
    head.into_iter().chain(Some(rest.canonical("")).filter(|s| !s.is_empty())).collect::<Vec<_>>().join(",")
}

fn agent_cpu_memory(p: &mut Plan<'_>, args: &VirtualMachineArgs) {
    if let Some(agent) = &args.agent {
        let options = vec![
            ("enabled", opt_bit(agent.enabled)),
            ("fstrim_cloned_disks", opt_bit(agent.trim)),
            ("type", agent.agent_type.clone()),
        ];
        if options.iter().any(|(_, v)| v.is_some()) {
            let prop = merged(p, "agent", "enabled", options);
            p.want("agent", Want::Set(keyed(&prop, "enabled")), Same::Prop("enabled", AGENT_DEFAULTS));
        }
    }
    if let Some(cpu) = &args.cpu {
        if cpu.cpu_type.is_some() || cpu.flags.is_some() {
            let flags = cpu.flags.as_ref().map(|fl| fl.join(";"));
            let prop = merged(p, "cpu", "cputype", vec![("cputype", cpu.cpu_type.clone()), ("flags", flags)]);
            let want = if prop.pairs.is_empty() { Want::Delete } else { Want::Set(prop.canonical("cputype")) };
            p.want("cpu", want, Same::Prop("cputype", &[]));
        }
        p.int("cores", cpu.cores, Some("1"));
        p.int("sockets", cpu.sockets, Some("1"));
        p.flag("numa", cpu.numa, "0");
        if let Some(limit) = cpu.limit {
            p.want("cpulimit", Want::Set(f::number(limit)), Same::Literal(Some("0")));
        }
        p.int("cpuunits", cpu.units, None);
    }
    if let Some(m) = &args.memory {
        if let Some(d) = m.dedicated {
            p.want("memory", Want::Set(d.to_string()), Same::Prop("current", &[("current", "512")]));
        }
        p.int("balloon", m.floating, None);
        match m.shared {
            Some(0) => p.want("ivshmem", Want::Delete, Same::Literal(None)),
            Some(n) => {
                let prop = merged(p, "ivshmem", "size", vec![("size", Some(n.to_string()))]);
                p.want("ivshmem", Want::Set(keyed(&prop, "size")), Same::Prop("size", &[]));
            }
            None => {}
        }
    }
}

fn disk_options(d: &Disk) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("aio", d.aio.clone()),
        ("backup", opt_bit(d.backup)),
        ("cache", d.cache.clone()),
        ("discard", d.discard.clone()),
        ("iothread", opt_bit(d.iothread)),
        ("replicate", opt_bit(d.replicate)),
        ("serial", d.serial.as_deref().map(f::url_encode)),
        ("ssd", opt_bit(d.ssd)),
    ]
}

/// The import source of a disk (`import-from`): `importFrom`, or `fileId` (Check
/// admits only volumes of `import` content there, the ones PVE imports itself).
fn api_import_source(d: &Disk) -> Option<&str> {
    d.import_from.as_deref().or(d.file_id.as_deref())
}

fn disks(p: &mut Plan<'_>, args: &VirtualMachineArgs) {
    if let Some(disks) = &args.disks {
        for d in disks {
            let existing = p.current(&d.interface).filter(|v| !f::is_cdrom(v));
            let prop = match existing {
                Some(_) => merged(p, &d.interface, "file", disk_options(d)),
                None => {
                    let storage = d.datastore_id.as_deref().unwrap_or(a::DEFAULT_DATASTORE);
                    let mut prop = PropString::default();
                    match api_import_source(d) {
                        Some(src) => {
                            prop.set("file", format!("{storage}:0"));
                            prop.set("import-from", src);
                        }
                        None => prop.set("file", format!("{storage}:{}", d.size.unwrap_or(a::DEFAULT_DISK_SIZE_GB))),
                    }
                    prop.apply("format", d.file_format.clone());
                    for (k, v) in disk_options(d) {
                        prop.apply(k, v);
                    }
                    prop
                }
            };
            p.want(d.interface.clone(), Want::Set(prop.canonical("file")), Same::Prop("file", DRIVE_DEFAULTS));
        }
        // The cloud-init drive's slot is set by `cloud_init`; never also delete it.
        let ci = cloud_init_interface(p.current, args);
        let extra: Vec<String> = p
            .current
            .iter()
            .filter(|(k, v)| f::is_disk_key(k) && !f::is_cdrom(v) && Some(k.as_str()) != ci.as_deref())
            .filter(|(k, _)| !disks.iter().any(|d| &d.interface == *k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in extra {
            p.want(k, Want::Delete, Same::Literal(None));
        }
    }
    if let Some(e) = &args.efi_disk {
        let prop = match p.current("efidisk0") {
            Some(_) => merged(
                p,
                "efidisk0",
                "file",
                vec![("efitype", e.efi_type.clone()), ("pre-enrolled-keys", opt_bit(e.pre_enrolled_keys))],
            ),
            None => {
                let mut prop = PropString::default();
                prop.set("file", format!("{}:1", e.datastore_id.as_deref().unwrap_or(a::DEFAULT_DATASTORE)));
                prop.set("efitype", e.efi_type.as_deref().unwrap_or(a::DEFAULT_EFI_TYPE));
                prop.apply("format", e.file_format.clone());
                prop.set("pre-enrolled-keys", f::bit(e.pre_enrolled_keys.unwrap_or(false)));
                prop
            }
        };
        let defaults = &[("efitype", "2m"), ("pre-enrolled-keys", "0")];
        p.want("efidisk0", Want::Set(prop.canonical("file")), Same::Prop("file", defaults));
    }
    if let Some(t) = &args.tpm_state {
        let prop = match p.current("tpmstate0") {
            Some(_) => merged(p, "tpmstate0", "file", vec![("version", t.version.clone())]),
            None => {
                let mut prop = PropString::default();
                prop.set("file", format!("{}:1", t.datastore_id.as_deref().unwrap_or(a::DEFAULT_DATASTORE)));
                prop.set("version", t.version.as_deref().unwrap_or(a::DEFAULT_TPM_VERSION));
                prop
            }
        };
        p.want("tpmstate0", Want::Set(prop.canonical("file")), Same::Prop("file", &[("version", "v1.2")]));
    }
}

fn network(p: &mut Plan<'_>, args: &VirtualMachineArgs) {
    let Some(nics) = &args.network_devices else { return };
    for (i, n) in nics.iter().enumerate() {
        let key = format!("net{i}");
        let mut prop = f::net(p.current(&key).unwrap_or(""));
        let new = prop.pairs.is_empty();
        let zero_clears = |v: Option<i64>| v.map(|v| if v == 0 { String::new() } else { v.to_string() });
        prop.apply("model", n.model.clone().or_else(|| new.then(|| a::DEFAULT_NET_MODEL.to_string())));
        prop.apply("macaddr", n.mac_address.as_ref().map(|m| m.to_ascii_uppercase()));
        prop.apply("bridge", n.bridge.clone().or_else(|| new.then(|| a::DEFAULT_BRIDGE.to_string())));
        prop.apply("firewall", opt_bit(n.firewall));
        prop.apply("link_down", n.enabled.map(|e| if e { String::new() } else { "1".into() }));
        prop.apply("tag", zero_clears(n.vlan_id));
        prop.apply("mtu", zero_clears(n.mtu));
        prop.apply("rate", n.rate_limit.map(|r| if r == 0.0 { String::new() } else { f::number(r) }));
        prop.apply("queues", zero_clears(n.queues));
        prop.apply("trunks", n.trunks.clone());
        p.want(key, Want::Set(f::print_net(&prop)), Same::Net);
    }
    delete_beyond(p, "net", nics.len(), f::MAX_NET);
}

/// Deletes `prefixN` for every configured N at or beyond `len`.
fn delete_beyond(p: &mut Plan<'_>, prefix: &str, len: usize, max: u32) {
    for n in len as u32..=max {
        let key = format!("{prefix}{n}");
        if p.current.contains_key(&key) {
            p.want(key, Want::Delete, Same::Literal(None));
        }
    }
}

/// Where the cloud-init drive is or goes: the input, else the current drive, else `ide2`
/// (`None` without `initialization`: then the current drive is simply left alone).
fn cloud_init_interface(current: &Config, args: &VirtualMachineArgs) -> Option<String> {
    let existing = || current.iter().find(|(k, v)| f::is_disk_key(k) && f::is_cloud_init(v)).map(|(k, _)| k.clone());
    match &args.initialization {
        Some(init) => init.interface.clone().or_else(existing).or_else(|| Some(a::DEFAULT_CLOUD_INIT_INTERFACE.into())),
        None => existing(),
    }
}

fn cloud_init(p: &mut Plan<'_>, args: &VirtualMachineArgs) {
    let Some(init) = &args.initialization else { return };
    let iface = cloud_init_interface(p.current, args).unwrap_or_else(|| a::DEFAULT_CLOUD_INIT_INTERFACE.into());
    let existing =
        p.current.iter().find(|(k, v)| f::is_disk_key(k) && f::is_cloud_init(v)).map(|(k, v)| (k.clone(), v.clone()));
    let storage_of = |v: &str| f::drive(v).get("file").and_then(|f| f.split_once(':')).map(|(s, _)| s.to_string());
    match &existing {
        Some((k, v)) if *k == iface && init.datastore_id.as_ref().is_none_or(|s| Some(s) == storage_of(v).as_ref()) => {
        }
        _ => {
            if let Some((k, _)) = existing.as_ref().filter(|(k, _)| *k != iface) {
                p.want(k.clone(), Want::Delete, Same::Literal(None));
            }
            let storage = init.datastore_id.clone().or_else(|| existing.as_ref().and_then(|(_, v)| storage_of(v)));
            let storage = storage.unwrap_or_else(|| a::DEFAULT_DATASTORE.into());
            p.want(iface, Want::Set(format!("{storage}:cloudinit")), Same::Literal(None));
        }
    }
    if let Some(configs) = &init.ip_configs {
        for (i, c) in configs.iter().enumerate() {
            let mut prop = PropString::default();
            for (v, ip, gw) in [(&c.ipv4, "ip", "gw"), (&c.ipv6, "ip6", "gw6")] {
                prop.apply(ip, v.as_ref().and_then(|v| v.address.clone()));
                prop.apply(gw, v.as_ref().and_then(|v| v.gateway.clone()));
            }
            let text = prop.pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            let want = if text.is_empty() { Want::Delete } else { Want::Set(text) };
            p.want(format!("ipconfig{i}"), want, Same::Prop("ip", &[]));
        }
        delete_beyond(p, "ipconfig", configs.len(), f::MAX_NET);
    }
    if let Some(dns) = &init.dns {
        if let Some(servers) = &dns.servers {
            let want = if servers.is_empty() { Want::Delete } else { Want::Set(servers.join(" ")) };
            p.want("nameserver", want, Same::WordSet);
        }
        p.text("searchdomain", &dns.domain, Same::Literal(None));
    }
    if let Some(user) = &init.user_account {
        p.text("ciuser", &user.username, Same::Literal(None));
        p.text("cipassword", &user.password, Same::SetOnce);
        if let Some(keys) = &user.keys {
            let want = if keys.is_empty() { Want::Delete } else { Want::Set(sshkeys_value(keys)) };
            p.want("sshkeys", want, Same::SshKeys);
        }
    }
    p.text("citype", &init.ci_type, Same::Literal(None));
    p.flag("ciupgrade", init.upgrade, "1");
    let files = [
        ("user", &init.user_data_file_id),
        ("vendor", &init.vendor_data_file_id),
        ("network", &init.network_data_file_id),
        ("meta", &init.meta_data_file_id),
    ];
    if files.iter().any(|(_, v)| v.is_some()) {
        let prop = merged(p, "cicustom", "", files.iter().map(|(k, v)| (*k, (*v).clone())).collect());
        let text = prop.pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let want = if text.is_empty() { Want::Delete } else { Want::Set(text) };
        p.want("cicustom", want, Same::Prop("", &[]));
    }
}

fn devices(p: &mut Plan<'_>, args: &VirtualMachineArgs) {
    if let Some(pcis) = &args.hostpcis {
        for h in pcis {
            let mut prop = PropString::parse(p.current(&h.device).unwrap_or(""), "host");
            if let Some(id) = &h.id {
                prop.remove("mapping");
                prop.set("host", id.clone());
            }
            if let Some(m) = &h.mapping {
                prop.remove("host");
                prop.set("mapping", m.clone());
            }
            prop.apply("pcie", opt_bit(h.pcie));
            prop.apply("x-vga", opt_bit(h.xvga));
            prop.apply("rombar", opt_bit(h.rombar));
            prop.apply("romfile", h.rom_file.clone());
            prop.apply("mdev", h.mdev.clone());
            let first = if prop.get("mapping").is_some() { "mapping" } else { "host" };
            p.want(h.device.clone(), Want::Set(keyed(&prop, first)), Same::Prop("host", HOSTPCI_DEFAULTS));
        }
        let extra: Vec<String> = p
            .current
            .keys()
            .filter(|k| f::split_slot(k, "hostpci").is_some() && !pcis.iter().any(|h| &h.device == *k))
            .cloned()
            .collect();
        for k in extra {
            p.want(k, Want::Delete, Same::Literal(None));
        }
    }
    if let Some(serials) = &args.serial_devices {
        for (i, s) in serials.iter().enumerate() {
            p.want(format!("serial{i}"), Want::Set(s.device.clone()), Same::Literal(None));
        }
        delete_beyond(p, "serial", serials.len(), f::MAX_SERIAL);
    }
    if let Some(v) = &args.vga {
        let options = vec![
            ("type", v.vga_type.clone()),
            ("memory", v.memory.map(|m| m.to_string())),
            ("clipboard", v.clipboard.clone()),
        ];
        if options.iter().any(|(_, v)| v.is_some()) {
            let prop = merged(p, "vga", "type", options);
            p.want("vga", Want::Set(prop.canonical("type")), Same::Prop("type", &[("type", "std")]));
        }
    }
    if let Some(order) = &args.boot_orders {
        let want = if order.is_empty() { Want::Delete } else { Want::Set(format!("order={}", order.join(";"))) };
        p.want("boot", want, Same::Boot);
    }
    if let Some(s) = &args.startup {
        let options = vec![
            ("order", s.order.map(|n| n.to_string())),
            ("up", s.up_delay.map(|n| n.to_string())),
            ("down", s.down_delay.map(|n| n.to_string())),
        ];
        if options.iter().any(|(_, v)| v.is_some()) {
            let prop = merged(p, "startup", "order", options);
            let text = ["order", "up", "down"]
                .iter()
                .filter_map(|k| prop.get(k).map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(",");
            p.want("startup", Want::Set(text), Same::Prop("order", &[]));
        }
    }
}

mod calls;
pub use calls::{allocates, clone_request, disk_moves, resizes};

#[cfg(test)]
mod tests;
