//! VMs coming and going: `GET /nodes/{node}/qemu` (list), `POST
//! /nodes/{node}/qemu` (create, task `qmcreate`), `GET .../qemu/{vmid}`
//! (index) and `DELETE .../qemu/{vmid}` (destroy, task `qmdestroy`).
//!
//! Owns: `create_vm`'s order (parameter and permission checks, then
//! `create_and_lock_config`: the VMID is taken at once with `lock: create`,
//! so a second create of the same VMID fails "unable to create VM N - VM N
//! already exists on node 'X'"), what the worker adds (disks, `meta`,
//! `smbios1`, `vmgenid`, default `boot`, sorted tags, autostart), cleaning up
//! after a failed create, and `destroy_vm` (protection, running VMs, locks,
//! base volumes still used by linked clones, owned and unreferenced volumes,
//! DHCP leases).
//! Must not: know config updates or power actions beyond autostart.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::checks::{self, CREATE_EXTRA};
use super::drive::{self, Drive};
use super::power::{start_vm, vm_status};
use super::volume::{self, DiskTarget};
use super::{check_lock, fail, on_failure, root_only, vm_on_node};
use crate::pve::cluster::node_of;
use crate::pve::model::{Model, Vm};
use crate::pve::server::{ApiError, Call, Handlers};
use crate::pve::state::{now_secs, PveState};
use crate::pve::tasks::{self, Worker};

pub fn register(h: &mut Handlers) {
    h.sync("GET", "/nodes/{node}/qemu", list);
    h.sync("POST", "/nodes/{node}/qemu", create);
    h.sync("GET", "/nodes/{node}/qemu/{vmid}", index);
    h.sync("DELETE", "/nodes/{node}/qemu/{vmid}", destroy);
}

fn list(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    let full = call.flag("full");
    Ok(state.read(|m| m.vms.values().filter(|vm| vm.node == node).map(|vm| vm_status(vm, full)).collect()))
}

fn index(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    node_of(state, call)?;
    let subdirs = [
        "config",
        "cloudinit",
        "pending",
        "status",
        "unlink",
        "vncproxy",
        "termproxy",
        "migrate",
        "resize",
        "move",
        "rrd",
        "rrddata",
        "monitor",
        "agent",
        "snapshot",
        "spiceproxy",
        "sendkey",
        "firewall",
        "mtunnel",
        "remote_migrate",
    ];
    Ok(Value::Array(subdirs.iter().map(|s| json!({ "subdir": s })).collect()))
}

fn create(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    let vmid = call.vmid();
    if call.params.contains_key("archive") {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "restoring backups (archive) is not simulated by the lab",
        ));
    }
    let root = call.is_root_ticket();
    let storage = call.opt_str("storage").map(str::to_string);
    let start = call.flag("start");
    let mut set = checks::config_params(call, &CREATE_EXTRA);
    checks::validate_sshkeys(&set)?;
    let pool = call.opt_str("pool").map(str::to_string);
    if let Some(pool) = &pool {
        if !state.read(|m| m.pools.contains_key(pool)) {
            // `check_pool_exist`: a permission exception.
            return Err(crate::pve::access::check::denied(Some(format!("pool '{pool}' does not exist"))));
        }
    }
    if !set.is_empty() {
        state.read(|m| checks::check_storage_access(m, &set, storage.as_deref(), root))?;
        checks::check_modify_perm(root, set.keys())?;
        for (key, value) in &set {
            checks::check_device_perm(root, key, value)?;
        }
        state.read(|m| checks::check_drive_param(m, &mut set))?;
        state.read(|m| checks::add_macs(m, vmid, &mut set, &BTreeMap::new()));
    }
    // create_and_lock_config: the VMID is taken now.
    state.write(|m| {
        if let Some(existing) = m.vms.get(&vmid) {
            return Err(fail(format!(
                "unable to create VM {vmid} - VM {vmid} already exists on node '{}'",
                existing.node
            )));
        }
        m.vms.insert(vmid, Vm { vmid, node: node.clone(), lock: Some("create".into()), ..Vm::default() });
        Ok(())
    })?;
    let st = state.clone();
    let task_node = node.clone();
    let upid = tasks::start(
        state,
        call,
        Worker { node: node.clone(), kind: "qmcreate", id: vmid.to_string(), lock_vmid: Some(vmid) },
        move |log| async move {
            let result = st.write(|m| build(&st, m, &task_node, vmid, set, storage.as_deref()));
            let lines = result?;
            if let Some(pool) = &pool {
                st.write(|m| m.add_vm_to_pool(vmid, pool));
            }
            for line in lines {
                log.line(line);
            }
            if start {
                log.line("Execute autostart");
                if let Err(e) = st.write(|m| start_vm(&st, m, &task_node, vmid, false)) {
                    log.warn(&e);
                }
            }
            Ok(())
        },
    );
    // A create that fails (or never runs) leaves no config behind.
    on_failure(state, &upid, move |m| {
        if m.vms.get(&vmid).is_some_and(|vm| vm.lock.as_deref() == Some("create") && vm.config.is_empty()) {
            m.vms.remove(&vmid);
        }
    });
    Ok(json!(upid))
}

/// The `qmcreate` worker: disks, generated keys, the config.
fn build(
    state: &PveState,
    m: &mut Model,
    node: &str,
    vmid: u32,
    set: BTreeMap<String, String>,
    storage: Option<&str>,
) -> Result<Vec<String>, String> {
    let emsg = format!("unable to create VM {vmid} -");
    if m.vms.get(&vmid).is_none_or(|vm| vm.lock.as_deref() != Some("create")) {
        return Err(format!("{emsg} VM {vmid} is not being created"));
    }
    let mut conf = set;
    let template = conf.get("template").is_some_and(|t| t == "1");
    let target = DiskTarget { state, node, vmid, default_storage: storage, template };
    let mut created = Vec::new();
    let mut lines = Vec::new();
    let drives: Vec<String> = conf.keys().filter(|k| drive::is_drive_key(k)).cloned().collect();
    let mut ci_at: Option<String> = None;
    for key in drives {
        let value = conf[&key].clone();
        let result = if Drive::parse(&value).is_cloudinit() || value.ends_with(":cloudinit") || value == "cloudinit" {
            match &ci_at {
                Some(other) => Err(format!("{key} - cloud-init drive is already attached at '{other}'")),
                None => {
                    ci_at = Some(key.clone());
                    volume::create_disk(m, &target, &key, &value, &mut created, &mut lines)
                }
            }
        } else {
            volume::create_disk(m, &target, &key, &value, &mut created, &mut lines)
        };
        match result {
            Ok(v) => {
                conf.insert(key, v);
            }
            Err(e) => {
                for volid in &created {
                    m.volumes.remove(volid);
                }
                m.vms.remove(&vmid);
                return Err(format!("{emsg} {e}"));
            }
        }
    }
    conf.insert("meta".into(), format!("creation-qemu=10.1.2,ctime={}", now_secs()));
    if !conf.contains_key("boot") {
        if let Some(boot) = drive::default_boot(&conf) {
            conf.insert("boot".into(), boot);
        }
    }
    conf.entry("smbios1".into()).or_insert_with(|| format!("uuid={}", checks::random_uuid()));
    if conf.get("vmgenid").is_none_or(|v| v == "1") {
        conf.insert("vmgenid".into(), checks::random_uuid());
    }
    if let Some(tags) = conf.get("tags").cloned() {
        conf.insert("tags".into(), checks::unique_tags(&tags));
    }
    let vm = m.vms.get_mut(&vmid).ok_or_else(|| format!("{emsg} config vanished"))?;
    vm.config = conf;
    vm.lock = None;
    Ok(lines)
}

fn destroy(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    root_only(call, &["skiplock"])?;
    let (node, vmid) = vm_on_node(state, call)?;
    let skiplock = call.flag("skiplock");
    let purge = call.flag("purge");
    let unreferenced = call.flag("destroy-unreferenced-disks");
    state.read(|m| early_checks(&m.vms[&vmid])).map_err(fail)?;
    let st = state.clone();
    let upid = tasks::start(
        state,
        call,
        Worker { node: node.clone(), kind: "qmdestroy", id: vmid.to_string(), lock_vmid: Some(vmid) },
        move |log| async move {
            let (lines, warnings) = st.write(|m| destroy_vm(m, &node, vmid, skiplock, unreferenced, purge))?;
            for line in lines {
                log.line(line);
            }
            for w in warnings {
                log.warn(&w);
            }
            Ok(())
        },
    );
    Ok(json!(upid))
}

/// Protection and run state (checked before the worker and again in it).
fn early_checks(vm: &Vm) -> Result<(), String> {
    if vm.config.get("protection").is_some_and(|p| p == "1") {
        return Err(format!("can't remove VM {} - protection mode enabled", vm.vmid));
    }
    if vm.running {
        return Err(format!("VM {} is running - destroy failed", vm.vmid));
    }
    Ok(())
}

/// `destroy_vm`: returns log lines and warnings.
fn destroy_vm(
    m: &mut Model,
    node: &str,
    vmid: u32,
    skiplock: bool,
    unreferenced: bool,
    purge: bool,
) -> Result<(Vec<String>, Vec<String>), String> {
    let vm = super::vm_mut(m, vmid, node)?.clone();
    early_checks(&vm)?;
    if !skiplock {
        check_lock(&vm)?;
    }
    let drives = |map: &BTreeMap<String, String>| -> Vec<Drive> {
        map.iter()
            .filter(|(k, _)| drive::is_drive_key(k) || k.starts_with("unused"))
            .map(|(_, v)| Drive::parse(v))
            .collect()
    };
    let mut all = drives(&vm.config);
    all.extend(drives(&vm.pending));
    if vm.is_template() {
        for d in all.iter().filter(|d| !d.is_cdrom()) {
            if volume::linked_clones(m, &d.file).next().is_some() {
                return Err(format!("base volume '{}' is still in use by linked cloned", d.file));
            }
        }
    }
    let mut lines = Vec::new();
    let warnings = Vec::new();
    for d in all.iter().filter(|d| !d.is_cdrom() || d.is_cloudinit()) {
        if m.volumes.get(&d.file).is_some_and(|v| v.vmid == vmid) {
            m.volumes.remove(&d.file);
        }
    }
    if unreferenced {
        let orphans: Vec<String> = m
            .volumes
            .values()
            .filter(|v| v.vmid == vmid && v.node.as_deref().is_none_or(|n| n == node))
            .map(|v| v.volid.clone())
            .collect();
        for volid in orphans {
            m.volumes.remove(&volid);
        }
    }
    if purge {
        lines.push(format!("purging VM {vmid} from related configurations.."));
    }
    super::agent::release_leases(m, &vm);
    // `remove_vm_access`: the guest leaves its pool.
    m.remove_vm_from_pool(vmid);
    m.vms.remove(&vmid);
    Ok((lines, warnings))
}
