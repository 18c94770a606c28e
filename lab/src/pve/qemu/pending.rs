//! Pending changes (a VM config's `[PENDING]` section) and how they take effect.
//!
//! Owns: the pending-delete list (`!key` marks a forced delete), dropping
//! pending values that equal the current ones (`cleanup_pending`), moving
//! replaced or detached disks to `unusedN` (`vmconfig_register_unused_drive`),
//! applying everything to a stopped VM (`vmconfig_apply_pending`: on config
//! changes, at start, after stop), the hotplug rules for a running VM
//! (`vmconfig_hotplug_pending` with PVE's default `hotplug=network,disk,usb`:
//! what applies now, what waits for the next start, what fails), and the
//! cloud-init record of values changed since the image was made.
//! Must not: check permissions or parameters (see `checks`), or take locks.

use std::collections::BTreeMap;

use super::checks::CLOUDINIT_OPTIONS;
use super::drive::{self, Drive, Net};
use crate::pve::lab_config::BridgeConfig;
use crate::pve::model::{Vm, Volume};

/// Options that never touch the running QEMU (`$fast_plug_option` plus the cloud-init options).
pub fn is_fast_plug(key: &str) -> bool {
    [
        "description",
        "hookscript",
        "lock",
        "migrate_downtime",
        "migrate_speed",
        "name",
        "onboot",
        "protection",
        "shares",
        "startup",
        "tags",
        "vmstatestorage",
    ]
    .contains(&key)
        || CLOUDINIT_OPTIONS.contains(&key)
        || drive::index_of(key, "ipconfig").is_some()
}

/// Keys whose changes the cloud-init image reflects (`cloudinit_pending_properties`).
fn is_cloudinit_property(key: &str) -> bool {
    CLOUDINIT_OPTIONS.contains(&key)
        || key == "name"
        || drive::index_of(key, "ipconfig").is_some()
        || drive::index_of(key, "net").is_some()
}

/// The pending deletes: (key, forced).
pub fn pending_deletes(vm: &Vm) -> Vec<(String, bool)> {
    vm.pending_delete
        .iter()
        .map(|d| match d.strip_prefix('!') {
            Some(k) => (k.to_string(), true),
            None => (d.clone(), false),
        })
        .collect()
}

pub fn add_pending_delete(vm: &mut Vm, key: &str, force: bool) {
    remove_pending_delete(vm, key);
    vm.pending_delete.push(if force { format!("!{key}") } else { key.to_string() });
}

pub fn remove_pending_delete(vm: &mut Vm, key: &str) {
    vm.pending_delete.retain(|d| d.trim_start_matches('!') != key);
}

/// Drops pending values equal to the current ones and deletes of unset keys.
pub fn cleanup_pending(vm: &mut Vm) -> bool {
    let before = (vm.pending.len(), vm.pending_delete.len());
    let config = vm.config.clone();
    vm.pending.retain(|k, v| config.get(k) != Some(v));
    vm.pending_delete.retain(|d| config.contains_key(d.trim_start_matches('!')));
    before != (vm.pending.len(), vm.pending_delete.len())
}

/// Whether a volume is referenced by a drive of the config or the pending values.
fn referenced(vm: &Vm, volid: &str) -> bool {
    vm.config
        .iter()
        .chain(vm.pending.iter())
        .filter(|(k, _)| drive::is_drive_key(k) || k.starts_with("unused"))
        .any(|(_, v)| Drive::parse(v).file == volid)
}

/// `add_unused_volume`: the lowest free `unusedN`.
pub(crate) fn add_unused(vm: &mut Vm, volid: &str) {
    if vm.config.iter().any(|(k, v)| k.starts_with("unused") && v == volid) {
        return;
    }
    if let Some(key) = (0..256).map(|i| format!("unused{i}")).find(|k| !vm.config.contains_key(k)) {
        vm.config.insert(key, volid.to_string());
    }
}

/// `vmconfig_register_unused_drive`: a cloud-init drive is freed, a CD-ROM
/// dropped, a disk the VM owns kept as `unusedN` (unless still referenced).
pub fn register_unused(vm: &mut Vm, volumes: &mut BTreeMap<String, Volume>, value: &str) {
    let d = Drive::parse(value);
    if d.is_cloudinit() {
        volumes.remove(&d.file);
        vm.cloudinit.clear();
    } else if !d.is_cdrom() && volumes.get(&d.file).is_some_and(|v| v.vmid == vm.vmid) && !referenced(vm, &d.file) {
        add_unused(vm, &d.file);
    }
}

/// `vmconfig_delete_or_detach_drive`: forced deletes free the volume.
fn delete_or_detach(vm: &mut Vm, volumes: &mut BTreeMap<String, Volume>, key: &str, force: bool) {
    let Some(value) = vm.config.remove(key) else { return };
    let d = Drive::parse(&value);
    if force {
        if (!d.is_cdrom() || d.is_cloudinit()) && volumes.get(&d.file).is_some_and(|v| v.vmid == vm.vmid) {
            volumes.remove(&d.file);
        }
    } else {
        register_unused(vm, volumes, &value);
    }
}

/// `vmconfig_apply_pending`: everything pending takes effect (stopped VM).
pub fn apply_pending(vm: &mut Vm, volumes: &mut BTreeMap<String, Volume>) {
    for (key, force) in pending_deletes(vm) {
        if drive::is_drive_key(&key) {
            delete_or_detach(vm, volumes, &key, force);
        } else {
            vm.config.remove(&key);
        }
        remove_pending_delete(vm, &key);
    }
    cleanup_pending(vm);
    for (key, value) in std::mem::take(&mut vm.pending) {
        if drive::is_drive_key(&key) {
            if let Some(old) = vm.config.insert(key.clone(), value.clone()) {
                if Drive::parse(&old).file != Drive::parse(&value).file {
                    register_unused(vm, volumes, &old);
                }
            }
            if Drive::parse(&value).is_cloudinit() {
                vm.cloudinit.clear();
            }
        } else {
            vm.config.insert(key, value);
        }
    }
}

/// The features of a `hotplug` value (`parse_hotplug_features`; unset = `1`).
fn hotplug_features(vm: &Vm) -> Vec<String> {
    let value = vm.config.get("hotplug").map(String::as_str).unwrap_or("1");
    match value {
        "1" => vec!["network".into(), "disk".into(), "usb".into()],
        "0" | "" => Vec::new(),
        list => list.split(',').map(str::to_string).collect(),
    }
}

/// The `cloudinit_record_changed` bookkeeping: what the current image was made from.
fn record_cloudinit(vm: &mut Vm, key: &str, old: Option<&str>, new: Option<&str>) {
    if !is_cloudinit_property(key) {
        return;
    }
    let ci = &mut vm.cloudinit;
    let mut added: Vec<String> =
        ci.remove("added").map(|a| a.split(',').map(str::to_string).collect()).unwrap_or_default();
    let recorded = ci.get(key).cloned();
    let was_added = added.iter().any(|a| a == key);
    match (old, new) {
        (_, Some(new)) if recorded.as_deref() == Some(new) => {
            ci.remove(key);
            added.retain(|a| a != key);
        }
        (Some(old), Some(_)) if recorded.is_none() && !was_added => {
            ci.insert(key.to_string(), old.to_string());
        }
        (None, Some(_)) if recorded.is_none() && !was_added => added.push(key.to_string()),
        (Some(old), None) if recorded.is_none() => {
            if was_added {
                added.retain(|a| a != key);
            } else {
                ci.insert(key.to_string(), old.to_string());
            }
        }
        _ => {}
    }
    added.sort();
    if !added.is_empty() {
        ci.insert("added".into(), added.join(","));
    }
}

/// Bridge check of `tap_plug`.
fn plug_net(value: &str, bridges: &[BridgeConfig]) -> Result<(), String> {
    let net = Net::parse(value);
    match net.bridge() {
        Some(b) if !bridges.iter().any(|x| x.name == b) => Err(format!("bridge '{b}' does not exist")),
        _ => Ok(()),
    }
}

/// What happens to one pending change on a running VM: applied now
/// (`Ok(true)`), left pending (`Ok(false)`, PVE's "skip"), or an error.
fn hotplug_change(
    vm: &Vm,
    key: &str,
    value: &str,
    features: &[String],
    bridges: &[BridgeConfig],
) -> Result<bool, String> {
    let has = |f: &str| features.iter().any(|x| x == f);
    let old = vm.config.get(key);
    if key == "hotplug" {
        let cur = vm.config.get("hotplug").map(String::as_str).unwrap_or("");
        return Ok(!(value.contains("memory")
            || cur.contains("memory")
            || value.contains("cpu")
            || cur.contains("cpu")));
    }
    if key == "tablet" {
        return Ok(has("usb"));
    }
    if drive::index_of(key, "usb").is_some() {
        return Ok(has("usb") && vm.config.get("ostype").is_some_and(|o| o == "l26"));
    }
    if key == "vcpus" {
        return Ok(has("cpu"));
    }
    if key == "balloon" {
        let on = |v: Option<&String>| v.is_none_or(|b| b != "0");
        return Ok(on(old) == on(Some(&value.to_string())));
    }
    if drive::index_of(key, "net").is_some() {
        let new = Net::parse(value);
        if let Some(old) = old.map(|o| Net::parse(o)) {
            let replug = old.model != new.model
                || old.mac.as_deref().map(str::to_ascii_uppercase) != new.mac.as_deref().map(str::to_ascii_uppercase)
                || old.opts.get("queues") != new.opts.get("queues")
                || old.opts.get("mtu") != new.opts.get("mtu")
                || old.bridge().is_none()
                || new.bridge().is_none();
            if !replug {
                if old.bridge() != new.bridge() || old.opts.get("tag") != new.opts.get("tag") {
                    plug_net(value, bridges)?;
                }
                return Ok(true);
            }
        }
        if !has("network") {
            return Ok(false);
        }
        plug_net(value, bridges)?;
        return Ok(true);
    }
    if drive::is_drive_key(key) {
        if key == "efidisk0" || key == "tpmstate0" {
            return Ok(false);
        }
        let new = Drive::parse(value);
        if let Some(old) = old.map(|o| Drive::parse(o)) {
            if new.opts.get("media").map(String::as_str).unwrap_or("disk")
                != old.opts.get("media").map(String::as_str).unwrap_or("disk")
            {
                return Err("unable to change media type".into());
            }
            if old.is_cdrom() {
                return Ok(true);
            }
            if new.file != old.file {
                return Ok(has("disk"));
            }
            let fixed = ["aio", "discard", "iothread", "queues", "product", "cache", "ssd", "vendor", "ro"];
            return Ok(fixed.iter().all(|k| old.opts.get(*k) == new.opts.get(*k)));
        }
        return Ok(has("disk") && !key.starts_with("ide") && !key.starts_with("sata"));
    }
    if key == "memory" {
        return Ok(has("memory"));
    }
    if key == "cpuunits" || key == "cpulimit" {
        return Ok(true);
    }
    if key == "agent" {
        let Some(old) = old else { return Ok(false) };
        let parse = |v: &str| {
            let mut m =
                drive::parse_kv(v, Some("enabled"), &["enabled", "freeze-fs-on-backup", "fstrim_cloned_disks", "type"])
                    .unwrap_or_default();
            m.remove("fstrim_cloned_disks");
            m
        };
        return Ok(parse(old) == parse(value));
    }
    Ok(false)
}

/// Whether a pending delete can happen on the running VM.
fn hotplug_delete(vm: &Vm, key: &str, features: &[String]) -> bool {
    let has = |f: &str| features.iter().any(|x| x == f);
    match key {
        "hotplug" => !vm.config.get("hotplug").is_some_and(|h| h.contains("cpu") || h.contains("memory")),
        "tablet" => has("usb"),
        "vcpus" => has("cpu"),
        "balloon" => vm.config.get("balloon").is_none_or(|b| b != "0"),
        "memory" => has("memory"),
        "cpuunits" | "cpulimit" => true,
        k if is_fast_plug(k) => true,
        k if drive::index_of(k, "usb").is_some() => has("usb"),
        k if drive::index_of(k, "net").is_some() => has("network"),
        k if drive::is_drive_key(k) => {
            has("disk") && !["efidisk", "ide", "sata", "tpmstate"].iter().any(|p| k.starts_with(p))
        }
        _ => false,
    }
}

/// `vmconfig_hotplug_pending`: applies what a running VM can take now; the
/// rest stays pending. Returns PVE's per-option errors ("hotplug problem - ...").
pub fn hotplug_pending(
    vm: &mut Vm,
    volumes: &mut BTreeMap<String, Volume>,
    bridges: &[BridgeConfig],
) -> BTreeMap<String, String> {
    let mut errors = BTreeMap::new();
    let fast: Vec<String> = vm.pending.keys().filter(|k| is_fast_plug(k)).cloned().collect();
    for key in fast {
        if let Some(new) = vm.pending.remove(&key) {
            let old = vm.config.get(&key).cloned();
            record_cloudinit(vm, &key, old.as_deref(), Some(&new));
            vm.config.insert(key, new);
        }
    }
    let features = hotplug_features(vm);
    for (key, force) in pending_deletes(vm) {
        if !hotplug_delete(vm, &key, &features) {
            continue;
        }
        if drive::is_drive_key(&key) {
            if drive::boot_order(&vm.config).contains(&key) {
                errors.insert(key.clone(), format!("hotplug problem - can't unplug bootdisk '{key}'\n"));
                continue;
            }
            let old = vm.config.get(&key).cloned();
            delete_or_detach(vm, volumes, &key, force);
            record_cloudinit(vm, &key, old.as_deref(), None);
        } else {
            let old = vm.config.remove(&key);
            record_cloudinit(vm, &key, old.as_deref(), None);
        }
        remove_pending_delete(vm, &key);
    }
    let mut cloudinit_drive = None;
    for (key, value) in vm.pending.clone() {
        if drive::is_drive_key(&key) && Drive::parse(&value).is_cloudinit() {
            cloudinit_drive = Some((key, value));
            continue;
        }
        match hotplug_change(vm, &key, &value, &features, bridges) {
            Ok(true) => {
                let old = vm.config.insert(key.clone(), value.clone());
                if drive::is_drive_key(&key) {
                    if let Some(old) = &old {
                        if Drive::parse(old).file != Drive::parse(&value).file {
                            register_unused(vm, volumes, old);
                        }
                    }
                }
                record_cloudinit(vm, &key, old.as_deref(), Some(&value));
                vm.pending.remove(&key);
            }
            Ok(false) => {}
            Err(e) => {
                errors.insert(key, format!("hotplug problem - {e}\n"));
            }
        }
    }
    if let Some((key, value)) = cloudinit_drive {
        match vm.config.get(&key).map(|o| Drive::parse(o)) {
            Some(old) if !old.is_cdrom() => {
                errors.insert(key, "hotplug problem - unable to change media type\n".into());
            }
            old => {
                if let Some(old) = old.filter(|o| o.file != Drive::parse(&value).file) {
                    register_unused(vm, volumes, &old.print());
                }
                vm.config.insert(key.clone(), value);
                vm.pending.remove(&key);
                vm.cloudinit.clear();
            }
        }
    }
    errors
}
