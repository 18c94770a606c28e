//! Copying and moving VMs: `POST .../clone` (task `qmclone`) and `POST
//! .../migrate` (task `qmigrate`).
//!
//! Owns: `clone_vm` (full and linked clones, `storage`/`format`/`target`
//! rules, "can't clone to non-shared storage", the new VM shown with `lock:
//! clone` while the task runs, new MACs, SMBIOS UUID and vmgenid, the
//! cloud-init drive always copied, each disk's `origin` kept) and offline or
//! online migration (`lock: migrate` while it runs, local disks moved to the
//! target node, `targetstorage` maps, local devices refused).
//! Must not: start or stop VMs.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::checks;
use super::drive::{self, Drive, Net};
use super::volume;
use super::{assert_config_on_node, check_lock, fail, on_failure, param_error, vm_on_node};
use crate::pve::cluster::node_of;
use crate::pve::model::{Model, Vm};
use crate::pve::server::{ApiError, Call, Handlers};
use crate::pve::state::PveState;
use crate::pve::tasks::{self, Worker};

pub fn register(h: &mut Handlers) {
    h.sync("POST", "/nodes/{node}/qemu/{vmid}/clone", clone);
    h.sync("POST", "/nodes/{node}/qemu/{vmid}/migrate", migrate);
}

fn shared(m: &Model, volid: &str) -> bool {
    drive::split_volid(volid).and_then(|(s, _)| m.storages.get(s)).is_some_and(|s| s.shared)
}

/// The format a full clone gets on `storage` (`resolve_dst_disk_format`).
fn clone_format(m: &Model, storage: &str, src: &str, wanted: Option<&str>) -> String {
    let dir = m.storages.get(storage).is_some_and(|s| s.kind == "dir");
    let want = wanted.unwrap_or(src);
    match (dir, want) {
        (true, f @ ("raw" | "qcow2" | "vmdk")) => f.to_string(),
        (true, _) => "qcow2".into(),
        (false, _) => "raw".into(),
    }
}

/// What a clone will do, checked before the worker (`$load_and_check`).
struct ClonePlan {
    full: bool,
    drives: Vec<(String, Drive)>,
}

#[allow(clippy::too_many_arguments)]
fn check_clone(
    m: &Model,
    vm: &Vm,
    newid: u32,
    storage: Option<&str>,
    format: Option<&str>,
    target: Option<&str>,
    full: Option<bool>,
) -> Result<ClonePlan, ApiError> {
    if let Some(t) = target {
        if !m.nodes.contains_key(t) {
            return Err(fail(format!("no such cluster node '{t}'")));
        }
    }
    if let Some(s) = storage {
        let scfg = m.storages.get(s).ok_or_else(|| fail(format!("storage '{s}' does not exist")))?;
        if !scfg.content.iter().any(|c| c == "images") {
            return Err(param_error("storage", format!("storage '{s}' does not support vm images")));
        }
        if target.is_some() && !scfg.shared {
            return Err(fail(format!("can't clone to non-shared storage '{s}'")));
        }
    }
    check_lock(vm).map_err(fail)?;
    let full = full.unwrap_or(!vm.is_template());
    if storage.is_some() && !full {
        return Err(fail("parameter 'storage' not allowed for linked clones"));
    }
    if format.is_some() && !full {
        return Err(fail("parameter 'format' not allowed for linked clones"));
    }
    let mut sharedvm = true;
    let mut drives = Vec::new();
    for (key, value) in vm.config.iter().filter(|(k, _)| drive::is_drive_key(k)) {
        let d = Drive::parse(value);
        if d.file.is_empty() || d.file == "none" {
            continue;
        }
        if drive::split_volid(&d.file).is_some() && !shared(m, &d.file) {
            sharedvm = false;
        }
        if d.is_cdrom() && !d.is_cloudinit() {
            continue;
        }
        if full && vm.running && key == "tpmstate0" {
            return Err(fail("cannot clone TPM state while VM is running"));
        }
        let copy = full || d.is_cloudinit() || key == "tpmstate0";
        if !copy && !volume::can_link(m, &d.file) {
            return Err(fail(format!("Linked clone feature is not supported for '{}' ({key})", d.file)));
        }
        drives.push((key.clone(), d));
    }
    if let (Some(t), false) = (target, sharedvm) {
        return Err(fail(format!("can't clone VM to node '{t}' (VM uses local storage)")));
    }
    if m.vms.contains_key(&newid) {
        return Err(fail(format!("unable to create VM {newid}: config file already exists")));
    }
    Ok(ClonePlan { full, drives })
}

fn clone(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    let vmid = call.vmid();
    let newid = call.int("newid").unwrap_or(0) as u32;
    let pool = call.opt_str("pool").map(str::to_string);
    if let Some(pool) = &pool {
        if !state.read(|m| m.pools.contains_key(pool)) {
            // `check_pool_exist`: a permission exception.
            return Err(crate::pve::access::check::denied(Some(format!("pool '{pool}' does not exist"))));
        }
    }
    let storage = call.opt_str("storage").map(str::to_string);
    let format = call.opt_str("format").map(str::to_string);
    let target = call.opt_str("target").filter(|t| *t != node && *t != "localhost").map(str::to_string);
    let full = call.params.get("full").map(|_| call.flag("full"));
    let name = call.opt_str("name").map(str::to_string);
    let description = call.opt_str("description").map(str::to_string);
    assert_config_on_node(state, call)?;
    let plan = state.write(|m| {
        let plan =
            check_clone(m, &m.vms[&vmid], newid, storage.as_deref(), format.as_deref(), target.as_deref(), full)?;
        // The temporary config `lock: clone`, so the new VMID is taken.
        m.vms.insert(newid, Vm { vmid: newid, node: node.clone(), lock: Some("clone".into()), ..Vm::default() });
        Ok::<_, ApiError>(plan)
    })?;
    let st = state.clone();
    let worker = Worker { node: node.clone(), kind: "qmclone", id: vmid.to_string(), lock_vmid: Some(newid) };
    let upid = tasks::start(state, call, worker, move |log| async move {
        log.line(format!("creating a clone of VM {vmid} with ID {newid}"));
        let (lines, warnings) = st.write(|m| {
            let args = CloneArgs { vmid, newid, node: &node, storage: storage.as_deref(), format: format.as_deref() };
            let result = do_clone(m, &args, &plan, target.as_deref(), name, description);
            if result.is_err() {
                m.vms.remove(&newid);
            } else if let Some(pool) = &pool {
                m.add_vm_to_pool(newid, pool);
            }
            result
        })?;
        for line in lines {
            log.line(line);
        }
        for w in warnings {
            log.warn(&w);
        }
        Ok(())
    });
    on_failure(state, &upid, move |m| {
        if m.vms.get(&newid).is_some_and(|vm| vm.lock.as_deref() == Some("clone") && vm.config.is_empty()) {
            m.vms.remove(&newid);
        }
    });
    Ok(json!(upid))
}

struct CloneArgs<'a> {
    vmid: u32,
    newid: u32,
    node: &'a str,
    storage: Option<&'a str>,
    format: Option<&'a str>,
}

/// The `qmclone` worker: the new config and its disks. Returns log lines and warnings.
fn do_clone(
    m: &mut Model,
    a: &CloneArgs,
    plan: &ClonePlan,
    target: Option<&str>,
    name: Option<String>,
    description: Option<String>,
) -> Result<(Vec<String>, Vec<String>), String> {
    let src = super::vm_mut(m, a.vmid, a.node)?.clone();
    let (mut lines, mut warnings) = (Vec::new(), Vec::new());
    let mut conf: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in &src.config {
        if key.starts_with("unused") || plan.drives.iter().any(|(k, _)| k == key) {
            continue;
        }
        if let Some(index) = drive::index_of(key, "net") {
            let mut net = Net::parse(value);
            net.mac = Some(checks::new_mac(m, a.newid, index, net.mac.as_deref()));
            conf.insert(key.clone(), net.print());
        } else {
            conf.insert(key.clone(), value.clone());
        }
    }
    let smbios: Vec<String> = conf
        .get("smbios1")
        .map(|s| s.split(',').filter(|p| !p.starts_with("uuid=") && !p.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let mut smbios1 = format!("uuid={}", checks::random_uuid());
    for part in smbios {
        smbios1.push(',');
        smbios1.push_str(&part);
    }
    conf.insert("smbios1".into(), smbios1);
    if conf.contains_key("vmgenid") {
        conf.insert("vmgenid".into(), checks::random_uuid());
    }
    conf.remove("template");
    let src_name = src.config.get("name").cloned().unwrap_or_else(|| a.vmid.to_string());
    conf.insert("name".into(), name.unwrap_or_else(|| format!("Copy-of-VM-{src_name}")));
    if let Some(d) = description {
        conf.insert("description".into(), d);
    }
    let mut created = Vec::new();
    for (key, d) in &plan.drives {
        let result = clone_disk(m, a, plan.full, key, d);
        match result {
            Ok((drive, line)) => {
                created.push(drive.file.clone());
                conf.insert(key.clone(), drive.print());
                lines.push(line);
            }
            Err(e) => {
                for volid in created {
                    m.volumes.remove(&volid);
                }
                return Err(format!("clone failed: {e}"));
            }
        }
    }
    let pending: Vec<&String> = src.pending.keys().collect();
    if !pending.is_empty() {
        let keys: Vec<&str> = pending.iter().map(|k| k.as_str()).collect();
        warnings.push(format!("found pending changes for '{}', discarding for clone", keys.join(",")));
    }
    let vm = m.vms.get_mut(&a.newid).ok_or("clone failed: the new VM's config vanished")?;
    vm.config = conf;
    vm.lock = None;
    if let Some(t) = target {
        vm.node = t.to_string();
    }
    Ok((lines, warnings))
}

/// `clone_disk` for one drive: (the new drive, a log line).
fn clone_disk(m: &mut Model, a: &CloneArgs, full: bool, key: &str, d: &Drive) -> Result<(Drive, String), String> {
    let src = m.volumes.get(&d.file).cloned().ok_or_else(|| format!("volume '{}' does not exist", d.file))?;
    if src.node.as_deref().is_some_and(|n| n != a.node) {
        return Err(format!("volume '{}' does not exist", d.file));
    }
    let mut new = d.clone();
    if d.is_cloudinit() {
        let storage = a.storage.unwrap_or(&src.storage);
        let format = clone_format(m, storage, &src.format, a.format);
        let name = format!("vm-{}-cloudinit", a.newid);
        new.file = volume::alloc(m, storage, a.node, a.newid, Some(&name), Some(&format), drive::CLOUDINIT_SIZE, None)?;
        return Ok((new, format!("create full clone of drive {key} ({})", d.file)));
    }
    if full || key == "tpmstate0" {
        let storage = a.storage.unwrap_or(&src.storage);
        let format = clone_format(m, storage, &src.format, a.format);
        new.file = volume::alloc(m, storage, a.node, a.newid, None, Some(&format), src.size, src.origin.clone())?;
        new.set_size(src.size);
        Ok((new, format!("create full clone of drive {key} ({})", d.file)))
    } else {
        new.file = volume::linked_clone(m, &d.file, a.newid)?;
        Ok((new, format!("create linked clone of drive {key} ({})", d.file)))
    }
}

/// `targetstorage`: `1` (identity), `target` (all), or `src:dst,...`.
fn storage_map(spec: Option<&str>) -> (BTreeMap<String, String>, Option<String>) {
    let mut map = BTreeMap::new();
    let mut default = None;
    for part in spec.unwrap_or("1").split(',').filter(|p| !p.is_empty()) {
        match part.split_once(':') {
            Some((s, d)) => {
                map.insert(s.to_string(), d.to_string());
            }
            None if part == "1" => {}
            None => default = Some(part.to_string()),
        }
    }
    (map, default)
}

fn migrate(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    let target = call.str("target").to_string();
    if target == node {
        return Err(param_error("target", "target is local node."));
    }
    if !state.read(|m| m.nodes.contains_key(&target)) {
        return Err(fail(format!("no such cluster node '{target}'")));
    }
    for name in ["force", "migration_type", "migration_network"] {
        if call.params.contains_key(name) && !call.is_root_ticket() && (name != "force" || call.flag(name)) {
            return Err(param_error(name, "Only root may use this option."));
        }
    }
    let (_, vmid) = vm_on_node(state, call)?;
    let online = call.flag("online");
    let with_local = call.flag("with-local-disks");
    let force = call.flag("force");
    let (map, default) = storage_map(call.opt_str("targetstorage"));
    let running = state.read(|m| -> Result<bool, ApiError> {
        let vm = &m.vms[&vmid];
        check_lock(vm).map_err(fail)?;
        for storage in map.values().chain(default.iter()) {
            let scfg = m.storages.get(storage).ok_or_else(|| fail(format!("storage '{storage}' does not exist")))?;
            if !scfg.content.iter().any(|c| c == "images") {
                return Err(fail(format!("storage '{storage}' does not support vm images")));
            }
        }
        Ok(vm.running)
    })?;
    if running && !online {
        return Err(fail("can't migrate running VM without --online"));
    }
    // The worker sets `lock: migrate` under the config lock at once; the
    // flock is only held for that (PVE's migration lock is a separate one).
    state.write(|m| {
        if let Some(vm) = m.vms.get_mut(&vmid).filter(|vm| vm.busy.is_none()) {
            vm.lock = Some("migrate".into());
        }
    });
    let st = state.clone();
    let worker = Worker { node: node.clone(), kind: "qmigrate", id: vmid.to_string(), lock_vmid: None };
    let started = std::time::Instant::now();
    let upid = tasks::start(state, call, worker, move |log| async move {
        if online && !running {
            log.line("VM isn't running. Doing offline migration instead.");
        }
        st.lock_vm(vmid, log.upid()).await.map_err(|e| e.message)?;
        st.write(|m| {
            if let Some(vm) = m.vms.get_mut(&vmid) {
                vm.lock = Some("migrate".into());
            }
        });
        st.unlock_vm(vmid, log.upid());
        let ip = st.read(|m| m.nodes.get(&target).map(|n| n.address.to_string()).unwrap_or_default());
        log.line(format!("starting migration of VM {vmid} to node '{target}' ({ip})"));
        let lines = st.write(|m| {
            let moves = MoveArgs {
                vmid,
                node: &node,
                target: &target,
                running,
                with_local,
                force,
                map: &map,
                default: default.as_deref(),
            };
            move_vm(m, &moves)
        })?;
        for line in lines {
            log.line(line);
        }
        let secs = started.elapsed().as_secs();
        log.line(format!(
            "migration finished successfully (duration {:02}:{:02}:{:02})",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        ));
        Ok(())
    });
    on_failure(state, &upid, move |m| {
        if let Some(vm) = m.vms.get_mut(&vmid).filter(|vm| vm.lock.as_deref() == Some("migrate")) {
            vm.lock = None;
        }
    });
    Ok(json!(upid))
}

struct MoveArgs<'a> {
    vmid: u32,
    node: &'a str,
    target: &'a str,
    running: bool,
    with_local: bool,
    force: bool,
    map: &'a BTreeMap<String, String>,
    default: Option<&'a str>,
}

/// The migration itself (`PVE::QemuMigrate`): checks, disks, the config.
fn move_vm(m: &mut Model, a: &MoveArgs) -> Result<Vec<String>, String> {
    let vm = super::vm_mut(m, a.vmid, a.node)?.clone();
    let mut lines = Vec::new();
    let local_devices: Vec<&String> = vm
        .config
        .iter()
        .filter(|(k, v)| {
            (drive::index_of(k, "hostpci").is_some() && !v.contains("mapping="))
                || (drive::index_of(k, "usb").is_some() && !v.contains("mapping=") && !v.contains("spice"))
        })
        .map(|(k, _)| k)
        .collect();
    if !local_devices.is_empty() && !a.force {
        let keys: Vec<&str> = local_devices.iter().map(|k| k.as_str()).collect();
        return Err(format!("can't migrate VM which uses local devices: {}", keys.join(", ")));
    }
    let mut local: Vec<(String, Drive)> = Vec::new();
    for (key, value) in vm.config.iter().filter(|(k, _)| drive::is_drive_key(k) || k.starts_with("unused")) {
        let d = Drive::parse(value);
        let Some((storage, _)) = drive::split_volid(&d.file) else { continue };
        if m.storages.get(storage).is_some_and(|s| s.shared) {
            continue;
        }
        if d.is_cdrom() && !d.is_cloudinit() {
            return Err(format!("can't migrate local cdrom drive (referenced in '{key}': {})", d.file));
        }
        local.push((key.clone(), d));
    }
    let attached = local.iter().any(|(k, d)| !k.starts_with("unused") && !d.is_cloudinit());
    if a.running && attached && !a.with_local {
        return Err("can't live migrate attached local disks without with-local-disks option".into());
    }
    let mut config = vm.config.clone();
    for (key, d) in local {
        let Some(vol) = m.volumes.get(&d.file).cloned() else { continue };
        let dest = a.map.get(&vol.storage).map(String::as_str).or(a.default).unwrap_or(&vol.storage).to_string();
        let mut new = d.clone();
        if dest == vol.storage {
            if let Some(v) = m.volumes.get_mut(&d.file) {
                v.node = Some(a.target.to_string());
            }
        } else {
            let name = d.is_cloudinit().then(|| format!("vm-{}-cloudinit", a.vmid));
            new.file = volume::alloc(m, &dest, a.target, a.vmid, name.as_deref(), None, vol.size, vol.origin.clone())?;
            m.volumes.remove(&d.file);
        }
        lines.push(format!("{key}: start migration of '{}' to node '{}' as '{}'", d.file, a.target, new.file));
        config.insert(key, new.print());
    }
    let vm = super::vm_mut(m, a.vmid, a.node)?;
    vm.config = config;
    vm.node = a.target.to_string();
    vm.lock = None;
    Ok(lines)
}
