//! Named formats (`"format": "pve-node"`, `"address-list"`,
//! `"pve-qm-ipconfig"`), checked as pve-common's `PVE::JSONSchema::check_format`
//! checks them, with the texts of the PVE 9 packages that register them
//! (pve-common, pve-storage, pve-access-control, qemu-server).
//!
//! Owns: the dispatch of a format name ([`check_format`]: the generic
//! `<format>-list` and `<format>-opt` suffixes, then either a property-string
//! format registered by name, see [`super::property_formats`], or a format
//! checked by code, see [`check_named_format`]), PVE's `split_list`, and
//! [`parse_named`], which handlers use to take a named property string apart.
//! Must not: know endpoints or handlers.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{property_formats, re};

/// Checks `s` against a named format as PVE's `check_format` does; `path`
/// (the parameter, e.g. `ipconfig0`) prefixes the keys of property-string
/// errors (`ipconfig0.gw: ...`). Returns the message that follows
/// "invalid format - ". Formats the lab does not know (see
/// [`is_known_format`]) are accepted unchecked.
pub fn check_format(path: &str, format: &str, s: &str) -> Result<(), String> {
    let (name, suffix) = split_format_name(format);
    if property_formats::named(name).is_some() {
        if let Some(suffix) = suffix {
            return Err(format!("'-{suffix}' format must have code ref, not hash\n"));
        }
        return property_formats::parse(path, name, s).map(|_| ());
    }
    match suffix {
        // "Note: we allow empty lists".
        Some("list") => split_list(s).iter().try_for_each(|item| check_named_format(name, item)),
        // Perl truthiness: "" and "0" are not checked.
        Some(_) if s.is_empty() || s == "0" => Ok(()),
        _ => check_named_format(name, s),
    }
}

/// `pve-configid-list` → (`pve-configid`, `list`); `email-opt` → (`email`, `opt`).
fn split_format_name(format: &str) -> (&str, Option<&str>) {
    for suffix in ["list", "opt"] {
        if let Some(name) = format.strip_suffix(suffix).and_then(|n| n.strip_suffix('-')) {
            return (name, Some(suffix));
        }
    }
    (format, None)
}

/// Whether the lab checks the named format (with or without `-list`/`-opt`).
pub fn is_known_format(format: &str) -> bool {
    let (name, _) = split_format_name(format);
    property_formats::named(name).is_some() || code_format(name, "").is_some()
}

/// PVE's `PVE::Tools::split_list`: items separated by NUL if there is one,
/// else by `,`, `;` or whitespace; empty items dropped.
pub fn split_list(s: &str) -> Vec<String> {
    if s.contains('\0') {
        let mut items: Vec<String> = s.split('\0').map(str::to_string).collect();
        while items.last().is_some_and(String::is_empty) {
            items.pop();
        }
        return items;
    }
    s.split(|c: char| c == ',' || c == ';' || c.is_whitespace()).filter(|i| !i.is_empty()).map(str::to_string).collect()
}

/// Takes a property string of a named format apart (PVE's
/// `parse_property_string('pve-qm-ipconfig', $value)`): its keys with their
/// values (default keys resolved, aliases applied, booleans as `1`/`0`), or
/// PVE's message. Also parses `pve-startup-order` (`order`, `up`, `down`).
/// Errors name keys without a parameter prefix (`gw: ...`).
pub fn parse_named(format: &str, s: &str) -> Result<BTreeMap<String, String>, String> {
    if property_formats::named(format).is_some() {
        return property_formats::parse("", format, s);
    }
    if format == "pve-startup-order" {
        return parse_startup_order(s).ok_or_else(|| "unable to parse startup options\n".to_string());
    }
    if is_known_format(format) {
        return Err("parse_property_string only accepts hash based named formats\n".to_string());
    }
    Err(format!("unknown format: {format}\n"))
}

/// PVE's `pve_parse_startup_order`: `[order=]N`, `up=N`, `down=N`, comma-separated.
fn parse_startup_order(s: &str) -> Option<BTreeMap<String, String>> {
    if s.is_empty() || s == "0" {
        return None;
    }
    let mut res = BTreeMap::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (key, value) = match part.split_once('=') {
            Some((k @ ("order" | "up" | "down"), v)) => (k, v),
            None => ("order", part),
            Some(_) => return None,
        };
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        res.insert(key.to_string(), value.to_string());
    }
    Some(res)
}

/// PVE 9's privileges (pve-access-control's `$privgroups`; PVE 9 dropped
/// `VM.Monitor` and added `VM.GuestAgent.*` and `VM.Replicate`).
pub const PRIVILEGES: [&str; 47] = [
    "Datastore.Allocate",
    "Datastore.AllocateSpace",
    "Datastore.AllocateTemplate",
    "Datastore.Audit",
    "Group.Allocate",
    "Mapping.Audit",
    "Mapping.Modify",
    "Mapping.Use",
    "Permissions.Modify",
    "Pool.Allocate",
    "Pool.Audit",
    "Realm.Allocate",
    "Realm.AllocateUser",
    "SDN.Allocate",
    "SDN.Audit",
    "SDN.Use",
    "Sys.AccessNetwork",
    "Sys.Audit",
    "Sys.Console",
    "Sys.Incoming",
    "Sys.Modify",
    "Sys.PowerMgmt",
    "Sys.Syslog",
    "User.Modify",
    "VM.Allocate",
    "VM.Audit",
    "VM.Backup",
    "VM.Clone",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Cloudinit",
    "VM.Config.Disk",
    "VM.Config.HWType",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Options",
    "VM.Console",
    "VM.GuestAgent.Audit",
    "VM.GuestAgent.FileRead",
    "VM.GuestAgent.FileSystemMgmt",
    "VM.GuestAgent.FileWrite",
    "VM.GuestAgent.Unrestricted",
    "VM.Migrate",
    "VM.PowerMgmt",
    "VM.Replicate",
    "VM.Snapshot",
    "VM.Snapshot.Rollback",
];

/// Checks a value against one of the formats PVE checks by code (its
/// `register_format(NAME, \&verify_...)`). Texts follow the PVE 9 sources;
/// `pve-realm` and `pve-userid` are approximations, as is the text of
/// `pve-task-status-type` (its rule, `ok|error|warning|unknown` in any case,
/// is PVE's). Unknown formats pass.
pub fn check_named_format(format: &str, s: &str) -> Result<(), String> {
    code_format(format, s).unwrap_or(Ok(()))
}

/// `None` for a format the lab does not know.
fn code_format(format: &str, s: &str) -> Option<Result<(), String>> {
    let ok = |cond: bool, msg: String| if cond { Ok(()) } else { Err(format!("{msg}\n")) };
    Some(match format {
        // `register_format('string', sub {})`, so that `string-list` exists.
        "string" => Ok(()),
        "pve-vmid" => ok(re("[1-9][0-9]{2,8}").is_match(s), "value does not look like a valid VM ID".into()),
        "pve-node" => ok(
            re("(?i:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)").is_match(s),
            "value does not look like a valid node name".into(),
        ),
        "pve-storage-id" => ok(storage_id(s), format!("storage ID '{s}' contains illegal characters")),
        "pve-configid" => ok(re("(?i:[a-z][a-z0-9_-]+)").is_match(s), format!("invalid configuration ID '{s}'")),
        // pve-access-control: pools nest up to three levels (`a/b/c`) since PVE 8.1.
        "pve-poolid" => ok(
            re(r"[A-Za-z0-9.\-_]+(?:/[A-Za-z0-9.\-_]+){0,2}").is_match(s),
            format!("pool name '{s}' contains invalid characters"),
        ),
        // pve-ha-manager: `vm:100`, `ct:100`, or a bare VMID (`100`).
        "pve-ha-resource-id" => {
            ok(re(r"[a-z]+:\S+").is_match(s), "value does not look like a valid ha resource id".into())
        }
        "pve-ha-resource-or-vm-id" => {
            ok(re(r"(?:[a-z]+:\S+|\d+)").is_match(s), "value does not look like a valid ha resource id".into())
        }
        // pve-access-control's `verify_rolename`.
        "pve-roleid" => ok(re(r"[A-Za-z0-9.\-_]+").is_match(s), format!("role name '{s}' contains invalid characters")),
        "pve-realm" => {
            ok(re(r"[A-Za-z][A-Za-z0-9.\-_]+").is_match(s), format!("realm name '{s}' contains illegal characters"))
        }
        "pve-userid" => ok(
            re(r"[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+").is_match(s) && s.len() <= 64,
            format!("value '{s}' does not look like a valid user name"),
        ),
        "pve-iface" => ok(
            re(r"(?i:[a-z][a-z0-9_]{1,20}(?:[:.]\d+)?)").is_match(s),
            format!("invalid network interface name '{s}'"),
        ),
        "pve-bridge-id" => ok(re(r"[-_.\w\d]+").is_match(s), format!("invalid bridge ID '{s}'")),
        "mac-addr" => ok(
            re("(?i:[a-f0-9][02468ace](?::[a-f0-9]{2}){5})").is_match(s),
            "value does not look like a valid unicast MAC address".into(),
        ),
        "ipv4" => ok(s.parse::<Ipv4Addr>().is_ok(), "value does not look like a valid IPv4 address".into()),
        "ipv6" => ok(s.parse::<Ipv6Addr>().is_ok(), "value does not look like a valid IPv6 address".into()),
        "ip" => ok(s.parse::<IpAddr>().is_ok(), "value does not look like a valid IP address".into()),
        "ipv4mask" => ok(netmask(s), "value does not look like a valid IP netmask".into()),
        "CIDR" => ok(cidr(s, None), "value does not look like a valid CIDR network".into()),
        "CIDRv4" => ok(cidr(s, Some(false)), "value does not look like a valid IPv4 CIDR network".into()),
        "CIDRv6" => ok(cidr(s, Some(true)), "value does not look like a valid IPv6 CIDR network".into()),
        "pve-ipv4-config" => ok(
            matches!(s, "dhcp" | "manual") || cidr(s, Some(false)),
            "value does not look like a valid ipv4 network configuration".into(),
        ),
        "pve-ipv6-config" => ok(
            matches!(s, "auto" | "dhcp" | "manual") || cidr(s, Some(true)),
            "value does not look like a valid ipv6 network configuration".into(),
        ),
        "dns-name" => ok(dns_name(s), "value does not look like a valid DNS name".into()),
        "address" => {
            ok(s.parse::<IpAddr>().is_ok() || dns_name(s), format!("value does not look like a valid address: {s}"))
        }
        "disk-size" => {
            ok(re(r"(\d+(\.\d+)?)([KMGT])?").is_match(s), format!("value does not look like a valid disk size: {s}"))
        }
        "pve-tag" => ok(re(r"(?i:[a-z0-9_][a-z0-9_\-+.]*)").is_match(s), "invalid characters in tag".into()),
        "pve-startup-order" => ok(parse_startup_order(s).is_some(), "unable to parse startup options".into()),
        "urlencoded" => ok(re(r"[-%a-zA-Z0-9_.!~*'()]*").is_match(s), format!("invalid urlencoded string: {s}")),
        "pve-volume-id" => ok(volume_id(s), format!("unable to parse volume ID '{s}'")),
        "pve-volume-id-or-qm-path" => ok(
            volume_id(s) || s.starts_with('/') || s == "none" || s == "cdrom",
            format!("unable to parse volume ID '{s}'"),
        ),
        "pve-volume-id-or-absolute-path" => {
            ok(volume_id(s) || s.starts_with('/'), format!("unable to parse volume ID '{s}'"))
        }
        // pve-storage: every content type of the `dir` plugin, plus `import`.
        "pve-storage-content" => ok(
            matches!(s, "images" | "rootdir" | "vztmpl" | "iso" | "backup" | "snippets" | "none" | "import"),
            format!("invalid content type '{s}'"),
        ),
        "pve-task-status-type" => ok(
            ["ok", "error", "warning", "unknown"].iter().any(|t| t.eq_ignore_ascii_case(s)),
            format!("invalid status '{s}'"),
        ),
        "storage-pair" => id_pair(s, "pve-storage-id"),
        "bridge-pair" => id_pair(s, "pve-bridge-id"),
        // qemu-server.
        "pve-qm-bootdev" => ok(boot_device(s), format!("invalid boot device '{s}'")),
        "pve-qm-bootdisk" => ok(drive_name(s), format!("invalid boot disk '{s}'")),
        "pve-cpuset" => ok(cpuset(s), "unable to parse cpuset option".into()),
        "pve-hotplug-features" => hotplug_features(s),
        // pve-access-control's `verify_privname`: one of PVE 9's privileges.
        "pve-priv" => ok(PRIVILEGES.contains(&s), format!("invalid privilege '{s}'")),
        "pve-phys-bits" => ok(
            s == "host" || (re(r"\d{1,2}").is_match(s) && s.parse::<u8>().is_ok_and(|n| (8..=64).contains(&n))),
            "value must be an integer between 8 and 64 or 'host'".into(),
        ),
        _ => return None,
    })
}

fn storage_id(s: &str) -> bool {
    re(r"(?i:[a-z][a-z0-9\-_.]*[a-z0-9])").is_match(s)
}

fn volume_id(s: &str) -> bool {
    re(r"(?i:[a-z][a-z0-9\-_.]*[a-z0-9]):.+").is_match(s)
}

fn dns_name(s: &str) -> bool {
    re(r"(?i:(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)").is_match(s)
}

/// `CIDRv4`/`CIDRv6`: a prefix length from 8 up (`v6`: `None` for either family).
fn cidr(s: &str, v6: Option<bool>) -> bool {
    let Some((ip, mask)) = s.split_once('/') else { return false };
    if mask.is_empty() || !mask.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mask: u32 = mask.parse().unwrap_or(u32::MAX);
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => v6 != Some(true) && (8..=32).contains(&mask),
        Ok(IpAddr::V6(_)) => v6 != Some(false) && (8..=128).contains(&mask),
        Err(_) => false,
    }
}

/// A dotted IPv4 netmask (`255.255.255.0`).
fn netmask(s: &str) -> bool {
    s.parse::<Ipv4Addr>().is_ok_and(|ip| {
        let bits = u32::from(ip);
        bits.leading_ones() + bits.trailing_zeros() == 32
    })
}

/// `storage-pair`/`bridge-pair` (one `storage-pair-list` item, PVE's
/// `parse_idmap` of one entry): `1`, `SOURCE:TARGET` or a default target.
fn id_pair(entry: &str, id_format: &str) -> Result<(), String> {
    let check = |id: &str| check_named_format(id_format, id);
    let result = if entry == "1" {
        Ok(())
    } else if let Some((source, target)) =
        entry.split_once(':').filter(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains(':'))
    {
        check(source).and_then(|()| check(target))
    } else {
        check(entry)
    };
    // `die "entry '$entry' contains invalid ID - $@\n"`, re-raised as `die "$@\n"`.
    result.map_err(|e| format!("entry '{entry}' contains invalid ID - {e}\n\n"))
}

/// A drive key qemu-server knows (`is_valid_drivename`).
pub(crate) fn drive_name(s: &str) -> bool {
    indexed(s, "ide", 4)
        || indexed(s, "sata", 6)
        || indexed(s, "scsi", 31)
        || indexed(s, "virtio", 16)
        || s == "efidisk0"
        || s == "tpmstate0"
}

/// `verify_bootdev`: a drive (but not `efidisk0`/`tpmstate0`), a NIC, a USB or a PCI device.
fn boot_device(s: &str) -> bool {
    (drive_name(s) && !s.starts_with("efidisk") && !s.starts_with("tpmstate"))
        || indexed(s, "net", 32)
        || indexed(s, "usb", 14)
        || indexed(s, "hostpci", 16)
}

/// `prefixN` with `N < count` (no leading zeros).
fn indexed(s: &str, prefix: &str, count: u32) -> bool {
    s.strip_prefix(prefix).is_some_and(|n| {
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && (n == "0" || !n.starts_with('0'))
            && n.parse::<u32>().is_ok_and(|n| n < count)
    })
}

/// `PVE::CpuSet::parse_cpuset`: `N` or `N-M` items, comma-separated.
fn cpuset(s: &str) -> bool {
    let mut parts: Vec<&str> = s.split(',').collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts.iter().all(|part| {
        let part = part.trim();
        let (from, to) = part.split_once('-').unwrap_or((part, part));
        let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
        digits(from) && digits(to) && from.parse::<u64>().ok() <= to.parse::<u64>().ok()
    })
}

/// `parse_hotplug_features`: `0`, `1` or a list of features; its own error
/// for an unknown feature reaches the client.
fn hotplug_features(s: &str) -> Result<(), String> {
    if s == "0" || s == "1" {
        return Ok(());
    }
    for feature in split_list(s) {
        if !matches!(feature.as_str(), "network" | "disk" | "cpu" | "memory" | "usb" | "cloudinit") {
            return Err(format!("invalid hotplug feature '{feature}'\n"));
        }
    }
    Ok(())
}
