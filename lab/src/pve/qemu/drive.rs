//! VM config values as qemu-server reads and writes them.
//!
//! Owns: the drive, NIC, `hostpci` and `ipconfig` property strings (parsed
//! leniently: the server has already checked them against the schema; printed
//! as `print_property_string` does, default key first and the rest sorted),
//! drive names and boot order, PVE's size notation (`format_size`/
//! `parse_size`), the `storage:SIZE` syntax and volume ids.
//! Must not: touch the model (volumes are `volume`'s).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;

/// qemu-server's `CLOUDINIT_DISK_SIZE`.
pub const CLOUDINIT_SIZE: u64 = 4 << 20;
/// qemu-server's `TPMSTATE_DISK_SIZE`.
pub const TPMSTATE_SIZE: u64 = 4 << 20;
/// OVMF vars sizes: `efitype=4m` (528K) and the legacy `2m` (128K).
pub const EFI_VARS_4M: u64 = 540_672;
pub const EFI_VARS_2M: u64 = 131_072;

/// NIC models (the keys that may carry the MAC: `virtio=BC:24:11:...`).
pub const NET_MODELS: [&str; 14] = [
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

pub(super) fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("built-in regex"))
}

/// `ide0`..`ide3`, `scsi0`..`scsi30`, `virtio0`..`virtio15`, `sata0`..`sata5`,
/// `efidisk0`, `tpmstate0` (qemu-server's `is_valid_drivename`).
pub fn is_drive_key(key: &str) -> bool {
    if key == "efidisk0" || key == "tpmstate0" {
        return true;
    }
    [("ide", 3), ("scsi", 30), ("virtio", 15), ("sata", 5)]
        .iter()
        .any(|(prefix, max)| index_of(key, prefix).is_some_and(|n| n <= *max))
}

/// `n` of `prefixN` (no leading zeros).
pub fn index_of(key: &str, prefix: &str) -> Option<u32> {
    let digits = key.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    digits.parse().ok()
}

/// Drive names in qemu-server's boot-disk search order (no EFI/TPM).
pub fn boot_drive_names() -> Vec<String> {
    let mut names = Vec::new();
    for (prefix, count) in [("ide", 4), ("scsi", 31), ("virtio", 16), ("sata", 6)] {
        names.extend((0..count).map(|i| format!("{prefix}{i}")));
    }
    names
}

/// The devices of `boot: order=a;b;c` (or the legacy `bootdisk`), as `get_bootdisks` reads them.
pub fn boot_order(config: &BTreeMap<String, String>) -> Vec<String> {
    let order = config
        .get("boot")
        .and_then(|b| parse_kv(b, Some("legacy"), &["order", "legacy"]).ok())
        .and_then(|m| m.get("order").cloned());
    match order {
        Some(order) => order.split([';', ' ']).filter(|d| !d.is_empty()).map(str::to_string).collect(),
        None => config.get("bootdisk").into_iter().cloned().collect(),
    }
}

/// `get_default_bootdevices`: the first disk, the first CD-ROM, the first NIC
/// (`print_bootorder`; nothing when there is no device).
pub fn default_boot(config: &BTreeMap<String, String>) -> Option<String> {
    let names = boot_drive_names();
    let first = |cdrom: bool| {
        names.iter().find(|n| config.get(n.as_str()).is_some_and(|v| Drive::parse(v).is_cdrom() == cdrom)).cloned()
    };
    let mut devices: Vec<String> = [first(false), first(true)].into_iter().flatten().collect();
    devices.extend((0..32).map(|i| format!("net{i}")).find(|n| config.contains_key(n)));
    (!devices.is_empty()).then(|| format!("order={}", devices.join(";")))
}

/// Booleans in drive strings, stored as `0`/`1` whatever the caller wrote.
const DRIVE_BOOLEANS: [&str; 10] = [
    "backup",
    "detect_zeroes",
    "iothread",
    "pre-enrolled-keys",
    "replicate",
    "ro",
    "scsiblock",
    "shared",
    "snapshot",
    "ssd",
];

fn bool01(v: &str) -> String {
    match crate::pve::validate::parse_boolean(v) {
        Some(b) => u8::from(b).to_string(),
        None => v.to_string(),
    }
}

/// A drive (`scsi0`, `ide2`, `efidisk0`, `unused0`): its volume and options.
#[derive(Debug, Clone, PartialEq)]
pub struct Drive {
    pub file: String,
    pub opts: BTreeMap<String, String>,
}

impl Drive {
    pub fn parse(value: &str) -> Drive {
        let mut file = String::new();
        let mut opts = BTreeMap::new();
        for part in value.split(',').filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some(("file" | "volume", v)) => file = v.to_string(),
                Some((k, v)) => {
                    let v = if DRIVE_BOOLEANS.contains(&k) {
                        bool01(v)
                    } else if k == "size" {
                        parse_size(v).map(format_size).unwrap_or_else(|| v.to_string())
                    } else {
                        v.to_string()
                    };
                    opts.insert(k.to_string(), v);
                }
                None => file = part.to_string(),
            }
        }
        Drive { file, opts }
    }

    pub fn print(&self) -> String {
        let mut s = self.file.clone();
        for (k, v) in &self.opts {
            s.push_str(&format!(",{k}={v}"));
        }
        s
    }

    pub fn is_cdrom(&self) -> bool {
        self.opts.get("media").is_some_and(|m| m == "cdrom")
    }

    /// qemu-server's `drive_is_cloudinit`.
    pub fn is_cloudinit(&self) -> bool {
        static RE: OnceLock<Regex> = OnceLock::new();
        re(&RE, r"[:/](?:vm-\d+-)?cloudinit(?:\.(?:raw|qcow|qcow2|qed|vmdk|cloop))?$").is_match(&self.file)
    }

    pub fn size(&self) -> Option<u64> {
        self.opts.get("size").and_then(|s| parse_size(s))
    }

    pub fn set_size(&mut self, bytes: u64) {
        self.opts.insert("size".into(), format_size(bytes));
    }

    /// The volume id, if the drive names a storage volume.
    pub fn volid(&self) -> Option<&str> {
        split_volid(&self.file).map(|_| self.file.as_str())
    }
}

/// A NIC (`net0`): model, MAC and the other options.
#[derive(Debug, Clone, PartialEq)]
pub struct Net {
    pub model: String,
    pub mac: Option<String>,
    pub opts: BTreeMap<String, String>,
}

impl Net {
    pub fn parse(value: &str) -> Net {
        let mut net = Net { model: "virtio".into(), mac: None, opts: BTreeMap::new() };
        for part in value.split(',').filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((k, v)) if NET_MODELS.contains(&k) => {
                    net.model = k.to_string();
                    net.mac = Some(v.to_string());
                }
                Some(("model", v)) => net.model = v.to_string(),
                Some(("macaddr", v)) => net.mac = Some(v.to_string()),
                Some((k @ ("firewall" | "link_down"), v)) => {
                    net.opts.insert(k.to_string(), bool01(v));
                }
                Some((k, v)) => {
                    net.opts.insert(k.to_string(), v.to_string());
                }
                None => net.model = part.to_string(),
            }
        }
        net
    }

    /// `virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1`, as `print_net` writes it.
    pub fn print(&self) -> String {
        let mut s = match &self.mac {
            Some(mac) => format!("{}={mac}", self.model),
            None => self.model.clone(),
        };
        for (k, v) in &self.opts {
            s.push_str(&format!(",{k}={v}"));
        }
        s
    }

    pub fn bridge(&self) -> Option<&str> {
        self.opts.get("bridge").map(String::as_str)
    }

    pub fn link_down(&self) -> bool {
        self.opts.get("link_down").is_some_and(|v| v == "1")
    }
}

/// A simple property string (`hostpci`, `ipconfig`, `agent`, `boot`) with its
/// default key, or an error text as `parse_property_string` gives it.
pub fn parse_kv(value: &str, default_key: Option<&str>, allowed: &[&str]) -> Result<BTreeMap<String, String>, String> {
    let mut res = BTreeMap::new();
    for part in value.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => (k.to_string(), v.to_string()),
            Some(_) => return Err("missing key in comma-separated list property".into()),
            None => match default_key {
                Some(d) => (d.to_string(), part.to_string()),
                None => return Err("value without key, but schema does not define a default key".into()),
            },
        };
        if !allowed.contains(&k.as_str()) {
            return Err(format!("invalid key in comma-separated list property: {k}"));
        }
        if res.insert(k.clone(), v).is_some() {
            return Err(format!("duplicate key in comma-separated list property: {k}"));
        }
    }
    Ok(res)
}

/// PVE's `format_size`: bytes in the largest exact unit (`32G`, `3584M`, `528K`).
pub fn format_size(bytes: u64) -> String {
    let kb = bytes / 1024;
    if kb * 1024 != bytes {
        return bytes.to_string();
    }
    let mb = kb / 1024;
    if mb * 1024 != kb {
        return format!("{kb}K");
    }
    let gb = mb / 1024;
    if gb * 1024 != mb {
        return format!("{mb}M");
    }
    let tb = gb / 1024;
    if tb * 1024 != gb {
        return format!("{gb}G");
    }
    format!("{tb}T")
}

/// PVE's `parse_size` (`32G`, `1.5T`, `512`); `None` if it is not a size.
pub fn parse_size(s: &str) -> Option<u64> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let caps = re(&RE, r"^(\d+(?:\.\d+)?)([KMGT])?$").captures(s)?;
    let n: f64 = caps[1].parse().ok()?;
    let unit = match caps.get(2).map(|m| m.as_str()) {
        Some("K") => 1u64 << 10,
        Some("M") => 1 << 20,
        Some("G") => 1 << 30,
        Some("T") => 1 << 40,
        _ => 1,
    };
    Some((n * unit as f64) as u64)
}

/// qemu-server's `NEW_DISK_RE`: `storage:SIZE_IN_GiB` (or just the size): (storage, GiB).
pub fn new_disk(file: &str) -> Option<(Option<String>, f64)> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let caps = re(&RE, r"^(?:([^/:\s]+):)?(\d+(?:\.\d+)?)$").captures(file)?;
    Some((caps.get(1).map(|m| m.as_str().to_string()), caps[2].parse().ok()?))
}

/// `storage:volname` (PVE's `parse_volume_id`).
pub fn split_volid(volid: &str) -> Option<(&str, &str)> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let caps = re(&RE, r"(?i)^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$").captures(volid)?;
    Some((caps.get(1)?.as_str(), caps.get(2)?.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_print_and_parse_as_pve_does() {
        assert_eq!(format_size(32 << 30), "32G");
        assert_eq!(format_size(3584 << 20), "3584M");
        assert_eq!(format_size(EFI_VARS_4M), "528K");
        assert_eq!(format_size(1 << 40), "1T");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(parse_size("1.5G"), Some(3 << 29));
        assert_eq!(parse_size("+2G"), None);
        assert_eq!(new_disk("local-zfs:32"), Some((Some("local-zfs".into()), 32.0)));
        assert_eq!(new_disk("0.5"), Some((None, 0.5)));
        assert_eq!(new_disk("local-zfs:vm-100-disk-0"), None);
    }

    #[test]
    fn drives_and_nics_print_default_key_first_then_sorted() {
        let d = Drive::parse("file=local-zfs:vm-100-disk-0,ssd=true,iothread=on,discard=on,size=34359738368");
        assert_eq!(d.print(), "local-zfs:vm-100-disk-0,discard=on,iothread=1,size=32G,ssd=1");
        assert!(Drive::parse("local-zfs:vm-100-cloudinit,media=cdrom").is_cloudinit());
        assert!(Drive::parse("local:100/vm-100-cloudinit.qcow2,media=cdrom").is_cloudinit());
        assert!(!Drive::parse("local:iso/cloudinit-test.iso,media=cdrom").is_cloudinit());
        let n = Net::parse("model=virtio,bridge=vmbr0,firewall=yes,macaddr=BC:24:11:00:00:01,tag=10");
        assert_eq!(n.print(), "virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1,tag=10");
        assert_eq!(Net::parse("e1000=AA:BB:CC:DD:EE:FF,bridge=vmbr1").model, "e1000");
    }

    #[test]
    fn drive_names_are_checked() {
        assert!(
            is_drive_key("scsi30") && !is_drive_key("scsi31") && !is_drive_key("scsi01") && is_drive_key("efidisk0")
        );
    }
}
