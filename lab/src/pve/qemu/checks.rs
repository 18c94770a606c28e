//! What qemu-server checks about VM config parameters before it locks the
//! config or forks a worker (create and config updates share these).
//!
//! Owns: picking the config keys out of a call, the `cdrom` alias, SSH key
//! validation, `check_storage_access` (storages exist and hold images, volume
//! content types, `import-from` sources), `check_drive_param` (`import-from`
//! syntax, ISOs need `media=cdrom`), the root-only checks for tokens
//! (`check_vm_modify_config_perm`, serial/usb/hostpci), new MACs for NICs
//! without one, and PVE's tag normalisation. The named formats (`hostpci`,
//! `ipconfig`, ...) are checked by the schema validator ([`crate::pve::validate`]).
//! Must not: change the model (callers allocate and write).

use std::collections::BTreeMap;

use serde_json::Value;

use super::drive::{self, new_disk, split_volid, Drive, Net};
use super::volume::parse_volname;
use super::{fail, param_error, param_text};
use crate::pve::model::{lab_mac, Model};
use crate::pve::server::{ApiError, Call};
use crate::pve::state::PveState;

/// Parameters of `POST /nodes/{node}/qemu` that are not config keys.
pub const CREATE_EXTRA: [&str; 12] = [
    "node",
    "vmid",
    "archive",
    "storage",
    "force",
    "unique",
    "live-restore",
    "pool",
    "bwlimit",
    "start",
    "ha-managed",
    "import-working-storage",
];

/// Parameters of `PUT|POST .../config` that are not config keys.
pub const UPDATE_EXTRA: [&str; 10] = [
    "node",
    "vmid",
    "skiplock",
    "delete",
    "revert",
    "force",
    "digest",
    "background_delay",
    "import-working-storage",
    "skip_cloud_init",
];

/// The config keys of a call as text, `cdrom` resolved to `ide2` (`resolve_cdrom_alias`).
pub fn config_params(call: &Call, extra: &[&str]) -> BTreeMap<String, String> {
    let mut set: BTreeMap<String, String> = call
        .params
        .iter()
        .filter(|(k, _)| !extra.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), param_text(v)))
        .collect();
    if let Some(mut cdrom) = set.remove("cdrom") {
        if !cdrom.contains("media=") {
            cdrom.push_str(",media=cdrom");
        }
        set.insert("ide2".into(), cdrom);
    }
    set
}

/// Whether `key` is a VM config option (`option_exists`).
pub fn option_exists(state: &PveState, key: &str) -> bool {
    let Some(endpoint) = state.apidoc().endpoint("PUT", "/nodes/{node}/qemu/{vmid}/config") else { return false };
    let Some(props) = endpoint.parameters()["properties"].as_object() else { return false };
    if UPDATE_EXTRA.contains(&key) {
        return false;
    }
    if props.contains_key(key) {
        return true;
    }
    let prefix = key.trim_end_matches(|c: char| c.is_ascii_digit());
    prefix.len() < key.len() && (props.contains_key(&format!("{prefix}[n]")) || prefix == "unused")
}

/// `PVE::Tools::validate_ssh_public_keys` of the URL-decoded `sshkeys`.
pub fn validate_sshkeys(set: &BTreeMap<String, String>) -> Result<(), ApiError> {
    let Some(keys) = set.get("sshkeys") else { return Ok(()) };
    let decoded = crate::pve::apidoc::percent_decode(keys);
    for line in decoded.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let known = |t: &str| t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-");
        let base64 = |b: &str| b.len() >= 16 && b.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
        let ok = fields.iter().position(|f| known(f)).is_some_and(|i| fields.get(i + 1).is_some_and(|b| base64(b)));
        if !ok {
            return Err(fail("SSH public key validation error"));
        }
    }
    Ok(())
}

/// `$check_storage_access`: storages of new disks exist and hold `images`,
/// attached volumes are images or ISOs, `import-from` sources are images or imports.
pub fn check_storage_access(
    model: &Model,
    set: &BTreeMap<String, String>,
    default_storage: Option<&str>,
    root: bool,
) -> Result<(), ApiError> {
    for (key, value) in set.iter().filter(|(k, _)| drive::is_drive_key(k)) {
        let d = Drive::parse(value);
        let volname = split_volid(&d.file).map(|(_, n)| n);
        if d.file.is_empty() || d.file == "none" || d.file == "cloudinit" || volname == Some("cloudinit") {
            // nothing to check
        } else if d.is_cdrom() && d.file == "cdrom" {
            // the host's drive: Sys.Console
        } else if let (false, Some((storage, _))) = (d.is_cdrom(), new_disk(&d.file)) {
            let storage = storage
                .or(default_storage.map(str::to_string))
                .ok_or_else(|| fail("no storage ID specified (and no default storage)"))?;
            let scfg =
                model.storages.get(&storage).ok_or_else(|| fail(format!("storage '{storage}' does not exist")))?;
            if !scfg.content.iter().any(|c| c == "images") {
                return Err(param_error("storage", format!("storage '{storage}' does not support vm images")));
            }
        } else if d.file.starts_with('/') {
            if !root {
                return Err(fail("only root can pass arbitrary filesystem paths"));
            }
        } else if split_volid(&d.file).is_some() {
            let info = parse_volname(model, &d.file).map_err(fail)?;
            if info.vtype != "images" && info.vtype != "iso" {
                return Err(param_error(key, "content type needs to be 'images' or 'iso'"));
            }
        }
        if let Some(source) = d.opts.get("import-from") {
            if source.starts_with('/') {
                if !root {
                    return Err(fail("only root can pass arbitrary filesystem paths"));
                }
                continue;
            }
            let info = parse_volname(model, source).map_err(fail)?;
            if info.vtype != "images" && info.vtype != "import" {
                return Err(param_error(
                    key,
                    format!("{source} has wrong type '{}' - needs to be 'images' or 'import'", info.vtype),
                ));
            }
        }
    }
    for (key, value) in set.iter().filter(|(k, _)| k.starts_with("unused")) {
        if split_volid(&Drive::parse(value).file).is_none() {
            return Err(param_error(key, format!("not a valid volid: {value}")));
        }
    }
    Ok(())
}

/// `$check_drive_param`: `import-from` needs `<storage>:0`, ISOs need
/// `media=cdrom`; returns the drives normalised (`print_drive`).
pub fn check_drive_param(model: &Model, set: &mut BTreeMap<String, String>) -> Result<(), ApiError> {
    let keys: Vec<String> = set.keys().filter(|k| drive::is_drive_key(k)).cloned().collect();
    for key in keys {
        let d = Drive::parse(&set[&key]);
        if d.opts.contains_key("import-from") {
            if new_disk(&d.file).is_none_or(|(_, size)| size != 0.0) {
                return Err(param_error(
                    &key,
                    "'import-from' requires special syntax - use <storage ID>:0,import-from=<source>",
                ));
            }
            if key == "efidisk0" {
                for required in ["efitype", "pre-enrolled-keys"] {
                    if !d.opts.contains_key(required) {
                        return Err(param_error(
                            &key,
                            format!("need to specify '{required}' when using 'import-from'"),
                        ));
                    }
                }
            } else if key == "tpmstate0" && !d.opts.contains_key("version") {
                return Err(param_error(&key, "need to specify 'version' when using 'import-from'"));
            }
        }
        let volname = split_volid(&d.file).map(|(_, n)| n);
        if volname.is_some() && new_disk(&d.file).is_none() && volname != Some("cloudinit") {
            let vtype = parse_volname(model, &d.file).map(|i| i.vtype).unwrap_or_default();
            if vtype == "iso" && !d.is_cdrom() {
                return Err(param_error(&key, "explicit 'media=cdrom' is required for iso images"));
            }
        }
        set.insert(key, d.print());
    }
    Ok(())
}

const CPU_OPTIONS: [&str; 9] =
    ["cores", "cpu", "runningcpu", "cpulimit", "cpuunits", "numa", "smp", "sockets", "vcpus"];
const MEMORY_OPTIONS: [&str; 4] = ["memory", "balloon", "shares", "allow-ksm"];
const HWTYPE_OPTIONS: [&str; 12] = [
    "acpi",
    "hotplug",
    "kvm",
    "machine",
    "runningmachine",
    "scsihw",
    "smbios1",
    "tablet",
    "vga",
    "watchdog",
    "audio0",
    "rng0",
];
const GENERAL_OPTIONS: [&str; 17] = [
    "agent",
    "autostart",
    "bios",
    "description",
    "keyboard",
    "localtime",
    "migrate_downtime",
    "migrate_speed",
    "name",
    "onboot",
    "ostype",
    "protection",
    "reboot",
    "startdate",
    "startup",
    "tdf",
    "template",
];
/// Cloud-init options (qemu-server's `$cloudinitoptions`).
pub const CLOUDINIT_OPTIONS: [&str; 8] =
    ["cicustom", "cipassword", "citype", "ciuser", "ciupgrade", "nameserver", "searchdomain", "sshkeys"];

/// The privileges (any of them) qemu-server's `$check_vm_modify_config_perm`
/// asks for option `key` on the VM (or its pool); `None` where PVE checks
/// elsewhere (drives, `cdrom`, `unused`/`serial`/`usb`/`hostpci`, `tags`) or
/// only root may set the option ([`check_modify_perm`]).
pub fn config_key_privileges(key: &str) -> Option<&'static [&'static str]> {
    if drive::is_drive_key(key)
        || key == "cdrom"
        || key == "tags"
        || indexed(key, &["unused", "serial", "usb", "hostpci"])
    {
        return None;
    }
    Some(if CPU_OPTIONS.contains(&key) || indexed(key, &["numa"]) {
        &["VM.Config.CPU"]
    } else if MEMORY_OPTIONS.contains(&key) {
        &["VM.Config.Memory"]
    } else if HWTYPE_OPTIONS.contains(&key) {
        &["VM.Config.HWType"]
    } else if GENERAL_OPTIONS.contains(&key) {
        &["VM.Config.Options"]
    } else if key == "freeze" {
        &["VM.PowerMgmt"]
    } else if ["boot", "bootdisk", "vmstatestorage"].contains(&key) {
        &["VM.Config.Disk"]
    } else if indexed(key, &["net"]) {
        &["VM.Config.Network"]
    } else if CLOUDINIT_OPTIONS.contains(&key) || indexed(key, &["ipconfig"]) {
        &["VM.Config.Cloudinit", "VM.Config.Network"]
    } else {
        return None;
    })
}

fn indexed(key: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| drive::index_of(key, p).is_some())
}

/// `$check_vm_modify_config_perm`: options outside every privilege class
/// (`args`, `hookscript`, `vmgenid`, `affinity`, ...) are root-only.
pub fn check_modify_perm<'a>(root: bool, keys: impl IntoIterator<Item = &'a String>) -> Result<(), ApiError> {
    if root {
        return Ok(());
    }
    for key in keys {
        let k = key.as_str();
        let known = drive::is_drive_key(k)
            || k == "cdrom"
            || k == "tags"
            || indexed(k, &["unused", "serial", "usb", "hostpci", "virtiofs", "numa", "net", "ipconfig"])
            || CPU_OPTIONS.contains(&k)
            || MEMORY_OPTIONS.contains(&k)
            || HWTYPE_OPTIONS.contains(&k)
            || GENERAL_OPTIONS.contains(&k)
            || CLOUDINIT_OPTIONS.contains(&k)
            || ["freeze", "boot", "bootdisk", "vmstatestorage", "running-nets-host-mtu", "vmstate"].contains(&k);
        if !known {
            return Err(fail(format!("only root can set '{k}' config")));
        }
    }
    Ok(())
}

/// The root-only device checks (serial, usb, hostpci) for one value.
pub fn check_device_perm(root: bool, key: &str, value: &str) -> Result<(), ApiError> {
    if root {
        return Ok(());
    }
    if drive::index_of(key, "serial").is_some() && value != "socket" {
        return Err(fail(format!("only root can set '{key}' config for real devices")));
    }
    if drive::index_of(key, "usb").is_some() {
        let d = drive::parse_kv(value, Some("host"), &["host", "mapping", "usb3"]).unwrap_or_default();
        match (d.get("host"), d.get("mapping")) {
            (Some(h), _) if !h.eq_ignore_ascii_case("spice") => {
                return Err(fail(format!("only root can set '{key}' config for real devices")))
            }
            (None, None) => return Err(fail("either 'host' or 'mapping' must be set.")),
            _ => {}
        }
    }
    if drive::index_of(key, "hostpci").is_some() {
        let d = crate::pve::validate::parse_named("pve-qm-hostpci", value).unwrap_or_default();
        if d.contains_key("host") {
            return Err(fail(format!("only root can set '{key}' config for non-mapped devices")));
        }
        if !d.contains_key("mapping") {
            return Err(fail("either 'host' or 'mapping' must be set."));
        }
        if d.contains_key("romfile") {
            return Err(param_error(key, "only root@pam can set 'romfile' option"));
        }
    }
    Ok(())
}

/// Every MAC any VM uses (config and pending).
fn used_macs(model: &Model) -> Vec<String> {
    model
        .vms
        .values()
        .flat_map(|vm| vm.config.iter().chain(vm.pending.iter()))
        .filter(|(k, _)| drive::index_of(k, "net").is_some())
        .filter_map(|(_, v)| Net::parse(v).mac.map(|m| m.to_ascii_uppercase()))
        .collect()
}

/// A MAC for NIC `index` of `vmid` that no VM uses and that differs from `old`
/// (PVE draws a random one in `BC:24:11`; the lab derives it from the VMID).
pub fn new_mac(model: &Model, vmid: u32, index: u32, old: Option<&str>) -> String {
    let used = used_macs(model);
    (0u32..)
        .map(|k| lab_mac(vmid, index.wrapping_add(k.wrapping_mul(64))))
        .find(|m| !used.contains(m) && old.is_none_or(|o| !o.eq_ignore_ascii_case(m)))
        .unwrap_or_else(|| lab_mac(vmid, index))
}

/// NICs without a MAC get one (`add_random_macs` / `parse_net`).
pub fn add_macs(model: &Model, vmid: u32, set: &mut BTreeMap<String, String>, current: &BTreeMap<String, String>) {
    let keys: Vec<String> = set.keys().filter(|k| drive::index_of(k, "net").is_some()).cloned().collect();
    for key in keys {
        let mut net = Net::parse(&set[&key]);
        if net.mac.is_none() {
            let index = drive::index_of(&key, "net").unwrap_or(0);
            let old = current.get(&key).and_then(|v| Net::parse(v).mac);
            net.mac = Some(new_mac(model, vmid, index, old.as_deref()));
        }
        set.insert(key, net.print());
    }
}

/// `get_unique_tags`: split on `;`, `,` and spaces, deduplicated, sorted, `;`-joined.
pub fn unique_tags(tags: &str) -> String {
    let mut list: Vec<&str> = tags.split([';', ',', ' ']).filter(|t| !t.is_empty()).collect();
    list.sort_unstable();
    list.dedup();
    list.join(";")
}

/// A random UUID (`generate_uuid`).
pub fn random_uuid() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        b = crate::pve::state::now_ms().to_be_bytes().repeat(2).try_into().unwrap_or_default();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// The string value of a JSON parameter (for `delete`, `revert` lists).
pub fn split_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_str)
        .map(|s| s.split([',', ';', ' ', '\0']).filter(|x| !x.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}
