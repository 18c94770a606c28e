//! Proxmox VE value formats that `check`, `encode` and `decode` share: property
//! strings (`virtio=BC:24:11:00:00:01,bridge=vmbr0`), disk sizes with units,
//! the `urlencoded` format, bus and slot names, the identifier and address
//! syntaxes of PVE's API schema (`pve-node`, `pve-storage-id`, `pve-tag`,
//! `mac-addr`, HOSTPCIID, machine types), enums copied from that schema, and
//! Go-style durations (`15m`).
//!
//! Must not: know `VirtualMachineArgs`; everything here is about one value.

use std::net::IpAddr;
use std::time::Duration;

/// One GiB: PVE's `G` (sizes are binary).
pub const GIB: u64 = 1 << 30;

/// `bios` values.
pub const BIOS: &[&str] = &["seabios", "ovmf"];
/// `scsihw` values.
pub const SCSI_HARDWARE: &[&str] = &["lsi", "lsi53c810", "virtio-scsi-pci", "virtio-scsi-single", "megasas", "pvscsi"];
/// `ostype` values.
pub const OS_TYPES: &[&str] =
    &["other", "wxp", "w2k", "w2k3", "w2k8", "wvista", "win7", "win8", "win10", "win11", "l24", "l26", "solaris"];
/// `net[n]` models; each is also a key whose value is the MAC (`virtio=BC:24:11:..`).
pub const NET_MODELS: &[&str] = &[
    "e1000",
    "e1000-82540em",
    "e1000-82544gc",
    "e1000-82545em",
    "e1000e",
    "i82551",
    "i82557b",
    "i82559er",
    "ne2k_isa",
    "ne2k_pci",
    "pcnet",
    "rtl8139",
    "virtio",
    "vmxnet3",
];
/// Disk `cache` values.
pub const CACHE: &[&str] = &["none", "writethrough", "writeback", "unsafe", "directsync"];
/// Disk `aio` values.
pub const AIO: &[&str] = &["native", "threads", "io_uring"];
/// Disk `discard` values.
pub const DISCARD: &[&str] = &["ignore", "on"];
/// Image formats a disk, EFI disk or TPM state can be stored in.
pub const FILE_FORMATS: &[&str] = &["raw", "qcow2", "vmdk"];
/// `efidisk0` `efitype` values.
pub const EFI_TYPES: &[&str] = &["2m", "4m"];
/// `tpmstate0` `version` values.
pub const TPM_VERSIONS: &[&str] = &["v1.2", "v2.0"];
/// `citype` values.
pub const CI_TYPES: &[&str] = &["configdrive2", "nocloud", "opennebula"];
/// `agent` `type` values.
pub const AGENT_TYPES: &[&str] = &["virtio", "isa"];
/// `vga` `type` values.
pub const VGA_TYPES: &[&str] = &[
    "cirrus",
    "qxl",
    "qxl2",
    "qxl3",
    "qxl4",
    "none",
    "serial0",
    "serial1",
    "serial2",
    "serial3",
    "std",
    "virtio",
    "virtio-gl",
    "vmware",
];
/// `vga` `clipboard` values.
pub const VGA_CLIPBOARDS: &[&str] = &["vnc"];
/// `machine` `viommu` values.
pub const VIOMMU: &[&str] = &["intel", "virtio"];

/// Host PCI slots: `hostpci0`..`hostpci15`.
pub const MAX_HOSTPCI: u32 = 15;
/// Network devices: `net0`..`net31` (and `ipconfig0`..`ipconfig31`).
pub const MAX_NET: u32 = 31;
/// Serial ports: `serial0`..`serial3`.
pub const MAX_SERIAL: u32 = 3;

/// A property string as ordered `key=value` pairs; a part without `=` is the
/// value of the format's default key (`local-zfs:vm-100-disk-0` is `file`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropString {
    /// The pairs, in the order met.
    pub pairs: Vec<(String, String)>,
}

impl PropString {
    /// Parses `s`; the first part without `=` belongs to `default_key`.
    pub fn parse(s: &str, default_key: &str) -> Self {
        let mut out = PropString::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((k, v)) => out.set(k, v),
                None if out.get(default_key).is_none() => out.set(default_key, part),
                None => {}
            }
        }
        out
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets `key`, in place if present.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.pairs.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((key.to_string(), value)),
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.pairs.retain(|(k, _)| k != key);
    }

    /// Sets `key` to `value` when given; `Some("")` removes it; `None` leaves it.
    pub fn apply(&mut self, key: &str, value: Option<String>) {
        match value {
            Some(v) if v.is_empty() => self.remove(key),
            Some(v) => self.set(key, v),
            None => {}
        }
    }

    /// PVE's printed form: the default key's bare value first, then the other keys sorted.
    pub fn canonical(&self, default_key: &str) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(v) = self.get(default_key) {
            parts.push(v.to_string());
        }
        let mut rest: Vec<&(String, String)> = self.pairs.iter().filter(|(k, _)| k != default_key).collect();
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        parts.extend(rest.into_iter().map(|(k, v)| format!("{k}={v}")));
        parts.join(",")
    }

    /// The pairs with booleans as `0`/`1`, without the pairs equal to a default in
    /// `defaults`, sorted: two strings with equal `normalised` forms mean the same.
    pub fn normalised(&self, defaults: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .pairs
            .iter()
            .map(|(k, v)| (k.clone(), bool_like(v).map_or_else(|| v.clone(), |b| bit(b).to_string())))
            .filter(|(k, v)| !defaults.iter().any(|(dk, dv)| dk == k && dv == v))
            .collect();
        out.sort();
        out
    }
}

/// A boolean as PVE prints it.
pub fn bit(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

/// A PVE boolean (`1`, `0`, `yes`, `no`, `on`, `off`, `true`, `false`).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "on" | "true" => Some(true),
        "0" | "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// Like [`parse_bool`], but only for the words (not digits, which may be numbers).
fn bool_like(s: &str) -> Option<bool> {
    match s {
        "yes" | "on" | "true" => Some(true),
        "no" | "off" | "false" => Some(false),
        _ => None,
    }
}

/// A PVE disk size (`32G`, `3584M`, `512K`, `1T`, `1.5G`, bytes without a unit) in bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (number, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_uppercase()),
        _ => (s, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        'T' => 40,
        _ => return None,
    };
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let mut bytes = whole.checked_shl(shift)?;
    if whole.leading_zeros() < shift {
        return None;
    }
    if !frac.is_empty() {
        let frac_value: f64 = format!("0.{frac}").parse().ok()?;
        bytes += (frac_value * (1u64 << shift) as f64).round() as u64;
    }
    Some(bytes)
}

/// Whole GiB, rounding up: `3584M` is 4.
pub fn gib_ceil(bytes: u64) -> i64 {
    bytes.div_ceil(GIB) as i64
}

/// Percent-encodes `s` as PVE's `urlencoded` format takes it (and as
/// `encodeURIComponent` does): everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )` becomes
/// `%XX` (uppercase hex, per UTF-8 byte), so a space is `%20` and a newline `%0A`.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (a malformed escape stays as it is; `+` is not a space).
pub fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A disk bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    /// `ide0`..`ide3`.
    Ide,
    /// `sata0`..`sata5`.
    Sata,
    /// `scsi0`..`scsi30`.
    Scsi,
    /// `virtio0`..`virtio15`.
    Virtio,
}

impl Bus {
    /// All buses.
    pub const ALL: [Bus; 4] = [Bus::Scsi, Bus::Virtio, Bus::Sata, Bus::Ide];

    /// The key prefix.
    pub fn name(self) -> &'static str {
        match self {
            Bus::Ide => "ide",
            Bus::Sata => "sata",
            Bus::Scsi => "scsi",
            Bus::Virtio => "virtio",
        }
    }

    /// The highest slot index.
    pub fn max_index(self) -> u32 {
        match self {
            Bus::Ide => 3,
            Bus::Sata => 5,
            Bus::Scsi => 30,
            Bus::Virtio => 15,
        }
    }
}

/// `prefixN` split into the prefix and `N` (`None` unless `N` is a plain decimal).
pub fn split_slot(key: &str, prefix: &str) -> Option<u32> {
    let n = key.strip_prefix(prefix)?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    n.parse().ok()
}

/// The bus and index of a disk key such as `scsi0` (index not range-checked).
pub fn disk_slot(key: &str) -> Option<(Bus, u32)> {
    Bus::ALL.into_iter().find_map(|bus| split_slot(key, bus.name()).map(|n| (bus, n)))
}

/// Whether `key` is a disk slot within its bus's range.
pub fn is_disk_key(key: &str) -> bool {
    disk_slot(key).is_some_and(|(bus, n)| n <= bus.max_index())
}

fn all_chars(s: &str, ok: impl Fn(char) -> bool) -> bool {
    s.chars().all(ok)
}

/// `pve-node` (and DNS labels): letters, digits and inner `-`.
pub fn is_node_name(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('-') && !s.ends_with('-') && all_chars(s, |c| c.is_ascii_alphanumeric() || c == '-')
}

/// `dns-name`: dot-separated labels as [`is_node_name`].
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_node_name)
}

/// `pve-storage-id`: a letter, then letters, digits, `-`, `_`, `.`, ending in a letter or digit.
pub fn is_storage_id(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && s.len() >= 2
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
        && all_chars(s, |c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// `pve-configid` (resource mapping ids): a letter, then letters, digits, `_`, `-`.
pub fn is_config_id(s: &str) -> bool {
    s.len() >= 2
        && s.starts_with(|c: char| c.is_ascii_alphabetic())
        && all_chars(s, |c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `pve-poolid`.
pub fn is_pool_id(s: &str) -> bool {
    !s.is_empty() && all_chars(s, |c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `pve-tag`: a letter, digit or `_`, then also `-`, `+`, `.`.
pub fn is_tag(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && all_chars(s, |c| c.is_ascii_alphanumeric() || "_-+.".contains(c))
}

/// A Linux bridge or SDN VNet name (`pve-bridge-id`, at most 15 characters).
pub fn is_bridge(s: &str) -> bool {
    !s.is_empty() && s.len() <= 15 && all_chars(s, |c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// A volume id `storage:rest` and its parts.
pub fn split_volid(s: &str) -> Option<(&str, &str)> {
    let (storage, rest) = s.split_once(':')?;
    (is_storage_id(storage) && !rest.is_empty()).then_some((storage, rest))
}

/// The content type of a volume id whose name has one (`local:iso/x.img` is `iso`).
pub fn volid_content(s: &str) -> Option<&str> {
    let (_, rest) = split_volid(s)?;
    let (content, file) = rest.split_once('/')?;
    let known = ["iso", "import", "snippets", "vztmpl", "backup", "images"];
    (known.contains(&content) && !file.is_empty()).then_some(content)
}

/// A unicast MAC address `XX:XX:XX:XX:XX:XX`, as `Ok`, or what is wrong with it.
pub fn check_mac(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 || !parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit())) {
        return Err("must be six pairs of hexadecimal digits separated by colons, e.g. BC:24:11:4A:2F:01".into());
    }
    let first = u8::from_str_radix(parts[0], 16).unwrap_or(0);
    if first & 1 == 1 {
        return Err(
            "is a multicast address (the lowest bit of the first octet is set); use a unicast address such as \
                    BC:24:11:4A:2F:01"
                .into(),
        );
    }
    Ok(())
}

/// One host PCI id: `[domain:]bus:device[.function]` in hexadecimal (`0000:28:00.0`, `28:00.0`, `28:00`).
pub fn is_pci_id(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    let (addr, function) = match s.split_once('.') {
        Some((a, f)) => (a, Some(f)),
        None => (s, None),
    };
    if function.is_some_and(|f| !hex(f, 1)) {
        return false;
    }
    let parts: Vec<&str> = addr.split(':').collect();
    match parts.as_slice() {
        [bus, dev] => hex(bus, 2) && hex(dev, 2),
        [domain, bus, dev] => {
            domain.len() >= 4 && domain.chars().all(|c| c.is_ascii_hexdigit()) && hex(bus, 2) && hex(dev, 2)
        }
        _ => false,
    }
}

/// A machine type as PVE's `machine` pattern allows: `pc`, `q35`, `virt`,
/// `pc-i440fx-9.2`, `pc-q35-8.1+pve0`, `pc-q35-9.0.pxe`, `virt-9.0`.
pub fn is_machine_type(t: &str) -> bool {
    fn version(rest: &str, pxe: bool) -> bool {
        let rest = if pxe { rest.strip_suffix(".pxe").unwrap_or(rest) } else { rest };
        let (ver, pve) = match rest.split_once("+pve") {
            Some((v, p)) => (v, Some(p)),
            None => (rest, None),
        };
        let numbers: Vec<&str> = ver.split('.').collect();
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        numbers.len() >= 2 && numbers.iter().all(|n| digits(n)) && pve.is_none_or(digits)
    }
    if matches!(t, "pc" | "q35" | "virt") {
        return true;
    }
    if let Some(rest) = t.strip_prefix("virt") {
        if let Some(p) = rest.strip_prefix("+pve") {
            return !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        }
        return rest.strip_prefix('-').is_some_and(|r| version(r, false));
    }
    ["pc-q35-", "pc-i440fx-", "pc-"].iter().any(|p| t.strip_prefix(p).is_some_and(|r| version(r, true)))
}

/// Whether a `machine` value selects a q35 machine (needed for PCIe passthrough).
pub fn is_q35(machine: &str) -> bool {
    let t = PropString::parse(machine, "type");
    t.get("type").is_some_and(|t| t == "q35" || t.starts_with("pc-q35-"))
}

/// An address with a prefix length, `10.0.0.5/24`.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l as u32 <= if ip.is_ipv4() { 32 } else { 128 })?;
    Some((ip, len))
}

/// Whether `gateway` is inside `ip/len`.
pub fn in_subnet(ip: IpAddr, len: u8, gateway: IpAddr) -> bool {
    match (ip, gateway) {
        (IpAddr::V4(a), IpAddr::V4(g)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len as u32) };
            u32::from(a) & mask == u32::from(g) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(g)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len as u32) };
            u128::from(a) & mask == u128::from(g) & mask
        }
        _ => false,
    }
}

/// A Go-style duration (`15m`, `1h30m`, `90s`, `1.5h`, `500ms`), as the agent timeout takes.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let invalid =
        || format!("{s:?} is not a duration; use a number with a unit (ms, s, m, h), e.g. \"15m\" or \"1h30m\"");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(invalid)?;
        let number: f64 = rest[..n].parse().map_err(|_| invalid())?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += number * scale;
        rest = &rest[u..];
    }
    Ok(Duration::from_secs_f64(total))
}

/// Whether `line` looks like an OpenSSH public key (`[options] type base64 [comment]`).
pub fn is_ssh_public_key(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    words.windows(2).any(|w| {
        let known = w[0].starts_with("ssh-") || w[0].starts_with("ecdsa-sha2-") || w[0].starts_with("sk-");
        known && w[1].len() >= 16 && w[1].chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c))
    })
}

/// A drive value (`local-zfs:vm-100-disk-0,iothread=1,size=32G`) as a property string.
pub fn drive(value: &str) -> PropString {
    PropString::parse(value, "file")
}

/// Whether a drive value is a CD-ROM (including an empty drive or the cloud-init drive).
pub fn is_cdrom(value: &str) -> bool {
    let d = drive(value);
    d.get("media") == Some("cdrom") || matches!(d.get("file"), Some("none" | "cdrom")) || is_cloud_init(value)
}

/// Whether a drive value is a cloud-init drive (`local-zfs:vm-100-cloudinit`, `local:100/vm-100-cloudinit.qcow2`).
pub fn is_cloud_init(value: &str) -> bool {
    drive(value).get("file").is_some_and(|f| f.contains("cloudinit"))
}

/// A network device value with the model alias resolved: `virtio=BC:24:11:..` becomes
/// `model=virtio` and `macaddr=BC:24:11:..` (upper case).
pub fn net(value: &str) -> PropString {
    let mut p = PropString::parse(value, "model");
    if let Some((model, mac)) = p.pairs.iter().find(|(k, _)| NET_MODELS.contains(&k.as_str())).cloned() {
        p.remove(&model);
        p.set("model", model);
        p.set("macaddr", mac);
    }
    if let Some(mac) = p.get("macaddr").map(str::to_ascii_uppercase) {
        p.set("macaddr", mac);
    }
    p
}

/// A network device as PVE prints it: `virtio=BC:24:11:..,bridge=vmbr0,...` (the MAC as the
/// model's value, or the bare model without one), then the other keys sorted.
pub fn print_net(p: &PropString) -> String {
    let mut rest = p.clone();
    rest.remove("model");
    rest.remove("macaddr");
    let head = match (p.get("model"), p.get("macaddr")) {
        (Some(m), Some(mac)) => format!("{m}={mac}"),
        (Some(m), None) => m.to_string(),
        (None, Some(mac)) => format!("macaddr={mac}"),
        (None, None) => String::new(),
    };
    let tail = rest.canonical("");
    [head, tail].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(",")
}

/// A number as PVE prints it: no `.0` on whole numbers.
pub fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
mod tests;
