//! VM run state: `GET .../status`, `.../status/current` and the power
//! actions `start` (`qmstart`), `stop` (`qmstop`), `shutdown` (`qmshutdown`),
//! `reboot` (`qmreboot`), `reset` (`qmreset`), `suspend` (`qmpause`) and
//! `resume` (`qmresume`).
//!
//! Owns: `vmstatus` fields, what a start checks (template, lock, already
//! running, bridges, PCI devices and mappings, volumes, cloud-init snippets)
//! and does (pending changes applied, cloud-init regenerated, DHCP leases),
//! and how a shutdown goes: the agent or ACPI stop a booted guest; a guest
//! that has not booted ignores the request until the timeout ("VM
//! quit/powerdown failed - got timeout", or a forced stop with `forceStop`).
//! Stops apply pending changes (`vm_stop_cleanup`).
//! Must not: change configs beyond applying pending changes.

use std::time::Duration;

use serde_json::{json, Value};

use super::agent::{agent_enabled, agent_running, allocate_leases, booted};
use super::drive::{self, Drive, Net};
use super::volume;
use super::{check_lock, fail, param_error, vm_mut, vm_on_node};
use crate::pve::cluster::node_of;
use crate::pve::model::{Model, Vm};
use crate::pve::server::{ApiError, Call, Handlers};
use crate::pve::state::{now_ms, PveState};
use crate::pve::tasks::{self, TaskLog, Worker};

pub fn register(h: &mut Handlers) {
    h.sync("GET", "/nodes/{node}/qemu/{vmid}/status", index);
    h.sync("GET", "/nodes/{node}/qemu/{vmid}/status/current", current);
    h.sync("POST", "/nodes/{node}/qemu/{vmid}/status/start", start);
    h.sync("POST", "/nodes/{node}/qemu/{vmid}/status/stop", stop);
    h.sync("POST", "/nodes/{node}/qemu/{vmid}/status/shutdown", shutdown);
    h.sync("POST", "/nodes/{node}/qemu/{vmid}/status/reboot", reboot);
    h.sync("POST", "/nodes/{node}/qemu/{vmid}/status/reset", reset);
    h.sync("POST", "/nodes/{node}/qemu/{vmid}/status/suspend", suspend);
    h.sync("POST", "/nodes/{node}/qemu/{vmid}/status/resume", resume);
}

/// Memory in MiB of a config (`memory: 2048` or `memory: current=2048`).
pub fn memory_mib(vm: &Vm) -> u64 {
    vm.config
        .get("memory")
        .and_then(|m| m.trim_start_matches("current=").split(',').next()?.parse().ok())
        .unwrap_or(512)
}

/// `vmstatus` for one VM (`full` adds the QMP fields).
pub fn vm_status(vm: &Vm, full: bool) -> Value {
    let cfg = &vm.config;
    let num = |k: &str, d: u64| cfg.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
    let cpus = cfg.get("vcpus").and_then(|v| v.parse().ok()).unwrap_or(num("sockets", 1) * num("cores", 1));
    let maxmem = memory_mib(vm) << 20;
    let maxdisk = drive::boot_order(cfg)
        .iter()
        .filter_map(|k| cfg.get(k).map(|v| Drive::parse(v)))
        .find(|d| !d.is_cdrom() && !d.file.is_empty())
        .and_then(|d| d.size())
        .unwrap_or(0);
    let uptime = vm.started_at_ms.filter(|_| vm.running).map(|t| now_ms().saturating_sub(t) / 1000).unwrap_or(0);
    let mut s = json!({
        "vmid": vm.vmid, "name": cfg.get("name").cloned().unwrap_or_else(|| format!("VM {}", vm.vmid)),
        "status": if vm.running { "running" } else { "stopped" }, "cpus": cpus, "maxmem": maxmem,
        "maxdisk": maxdisk, "disk": 0, "mem": if vm.running { maxmem / 2 } else { 0 },
        "cpu": if vm.running { 0.01 } else { 0.0 }, "uptime": uptime,
        "netin": if vm.running { uptime * 1200 } else { 0 }, "netout": if vm.running { uptime * 400 } else { 0 },
        "diskread": 0, "diskwrite": 0,
    });
    if vm.running {
        s["pid"] = json!(10_000 + vm.vmid % 50_000);
        s["memhost"] = json!(maxmem / 2);
    }
    if full {
        s["qmpstatus"] = json!(match (vm.running, vm.paused) {
            (false, _) => "stopped",
            (true, true) => "paused",
            (true, false) => "running",
        });
        if vm.running {
            let machine = if cfg.get("machine").is_some_and(|x| x.contains("q35")) { "pc-q35" } else { "pc-i440fx" };
            s["running-machine"] = json!(format!("{machine}-10.1+pve0"));
            s["running-qemu"] = json!("10.1.2");
        }
    }
    if let Some(lock) = &vm.lock {
        s["lock"] = json!(lock);
    }
    if let Some(tags) = cfg.get("tags") {
        s["tags"] = json!(tags);
    }
    if vm.is_template() {
        s["template"] = json!(1);
    }
    if cfg.keys().any(|k| drive::index_of(k, "serial").is_some()) {
        s["serial"] = json!(1);
    }
    s
}

fn index(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    vm_on_node(state, call)?;
    let subdirs = ["current", "start", "stop", "reset", "shutdown", "suspend", "reboot"];
    Ok(Value::Array(subdirs.iter().map(|s| json!({ "subdir": s })).collect()))
}

fn current(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let (_, vmid) = vm_on_node(state, call)?;
    Ok(state.read(|m| {
        let vm = &m.vms[&vmid];
        let mut s = vm_status(vm, true);
        s["ha"] = json!({ "managed": 0 });
        if agent_enabled(&vm.config) {
            s["agent"] = json!(1);
        }
        if vm.config.get("vga").is_some_and(|v| v.starts_with("qxl") || v.starts_with("virtio")) {
            s["spice"] = json!(1);
        }
        s
    }))
}

/// PVE's `$get_root_param`: a root-only parameter given by someone else.
fn root_params(call: &Call, names: &[&str]) -> Result<(), ApiError> {
    for name in names {
        let given = call.params.get(*name).is_some_and(|v| match v {
            Value::String(s) => !s.is_empty() && s != "0",
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::Bool(b) => *b,
            _ => false,
        });
        if given && !call.is_root_ticket() {
            return Err(param_error(name, "Only root may use this option."));
        }
    }
    Ok(())
}

/// The worker of a power action; the config lock only if the config is here
/// (else the work fails with PVE's "does not exist").
fn worker(state: &PveState, node: &str, kind: &'static str, vmid: u32) -> Worker {
    let here = state.read(|m| m.vms.get(&vmid).is_some_and(|vm| vm.node == node));
    Worker { node: node.to_string(), kind, id: vmid.to_string(), lock_vmid: here.then_some(vmid) }
}

fn log_lines(log: &TaskLog, lines: Vec<String>) {
    for line in lines {
        log.line(line);
    }
}

/// `vm_start`: checks, pending changes, cloud-init, DHCP; the VM runs.
pub fn start_vm(state: &PveState, m: &mut Model, node: &str, vmid: u32, skiplock: bool) -> Result<(), String> {
    let vm = vm_mut(m, vmid, node)?;
    if vm.is_template() {
        return Err("you can't start a vm if it's a template".into());
    }
    if !skiplock {
        check_lock(vm)?;
    }
    if vm.running {
        return Err(format!("VM {vmid} already running"));
    }
    let mut vm = vm.clone();
    if !vm.pending.is_empty() || !vm.pending_delete.is_empty() {
        super::pending::apply_pending(&mut vm, &mut m.volumes);
    }
    for value in vm.config.iter().filter(|(k, _)| drive::index_of(k, "net").is_some()).map(|(_, v)| v) {
        if let Some(bridge) = Net::parse(value).bridge() {
            if !state.bridges().iter().any(|b| b.name == bridge) {
                let bridge = bridge.to_string();
                m.vms.insert(vmid, vm);
                return Err(format!("bridge '{bridge}' does not exist"));
            }
        }
    }
    if let Err(e) = check_devices(m, &vm, node).and_then(|_| check_volumes(state, m, &vm, node)) {
        m.vms.insert(vmid, vm);
        return Err(e);
    }
    vm.cloudinit.clear();
    vm.running = true;
    vm.paused = false;
    vm.started_at_ms = Some(now_ms());
    vm.boots = vm.boots.wrapping_add(1);
    m.vms.insert(vmid, vm);
    allocate_leases(m, state.bridges(), vmid);
    Ok(())
}

/// PCI passthrough at start (`parse_hostpci`, `reserve_pci_usage`).
fn check_devices(m: &Model, vm: &Vm, node: &str) -> Result<(), String> {
    for (key, value) in vm.config.iter().filter(|(k, _)| drive::index_of(k, "hostpci").is_some()) {
        let d = crate::pve::validate::parse_named("pve-qm-hostpci", value).map_err(|e| format!("{key}: {e}"))?;
        let ids: Vec<String> = match (d.get("host"), d.get("mapping")) {
            (Some(_), Some(_)) => return Err("Cannot set both 'host' and 'mapping'.".into()),
            (None, Some(mapping)) => {
                let paths: Vec<String> = m
                    .pci_mappings
                    .get(mapping)
                    .map(|p| {
                        p.map
                            .iter()
                            .filter_map(|e| {
                                drive::parse_kv(
                                    e,
                                    None,
                                    &["node", "path", "id", "iommugroup", "subsystem-id", "description"],
                                )
                                .ok()
                            })
                            .filter(|e| e.get("node").is_some_and(|n| n == node))
                            .filter_map(|e| e.get("path").cloned())
                            .collect()
                    })
                    .unwrap_or_default();
                if paths.is_empty() {
                    return Err(format!("PCI device mapping not found for '{mapping}'"));
                }
                paths
            }
            (Some(host), None) => host.split(';').map(normalize_pci).collect(),
            (None, None) => return Err("either 'host' or 'mapping' must be set.".into()),
        };
        for id in &ids {
            let on_node = m.nodes.get(node).is_some_and(|n| n.pci_devices.iter().any(|p| p.id == *id));
            if !on_node {
                return Err(format!("no PCI device found for '{id}'"));
            }
            let user = m
                .vms
                .values()
                .find(|o| o.vmid != vm.vmid && o.running && o.node == node && uses_pci(m, o, node).contains(id));
            if let Some(other) = user {
                return Err(format!("PCI device '{id}' already in use by VMID '{}'", other.vmid));
            }
        }
    }
    Ok(())
}

/// `0000:28:00.0` for `28:00.0` or `28:00`.
fn normalize_pci(id: &str) -> String {
    let id = if id.matches(':').count() == 1 { format!("0000:{id}") } else { id.to_string() };
    if id.contains('.') {
        id
    } else {
        format!("{id}.0")
    }
}

/// The host PCI devices a VM passes through on `node`.
fn uses_pci(m: &Model, vm: &Vm, node: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for value in vm.config.iter().filter(|(k, _)| drive::index_of(k, "hostpci").is_some()).map(|(_, v)| v) {
        let Ok(d) = crate::pve::validate::parse_named("pve-qm-hostpci", value) else { continue };
        if let Some(host) = d.get("host") {
            ids.extend(host.split(';').map(normalize_pci));
        } else if let Some(p) = d.get("mapping").and_then(|id| m.pci_mappings.get(id)) {
            for e in &p.map {
                if e.contains(&format!("node={node}")) {
                    ids.extend(e.split(',').filter_map(|kv| kv.strip_prefix("path=")).map(str::to_string));
                }
            }
        }
    }
    ids
}

/// `activate_volumes`: every attached volume exists where the VM runs;
/// cloud-init snippets exist.
fn check_volumes(state: &PveState, m: &Model, vm: &Vm, node: &str) -> Result<(), String> {
    for (key, value) in vm.config.iter().filter(|(k, _)| drive::is_drive_key(k)) {
        let d = Drive::parse(value);
        let Some((storage, _)) = drive::split_volid(&d.file) else { continue };
        let info = volume::parse_volname(m, &d.file)?;
        let exists = match &info.file {
            Some(file) => state.dir_storage_path(node, storage).join(file).is_file(),
            None => m.volumes.get(&d.file).is_some_and(|v| v.node.as_deref().is_none_or(|n| n == node)),
        };
        if !exists {
            return Err(format!("{key}: volume '{}' does not exist", d.file));
        }
    }
    if let Some(cicustom) = vm.config.get("cicustom") {
        let parts = drive::parse_kv(cicustom, None, &["meta", "network", "user", "vendor"]).unwrap_or_default();
        for volid in parts.values() {
            let info = volume::parse_volname(m, volid)?;
            let (storage, _) = drive::split_volid(volid).unwrap_or_default();
            let found = info.file.is_some_and(|f| state.dir_storage_path(node, storage).join(f).is_file());
            if !found {
                return Err(format!("volume '{volid}' does not exist"));
            }
        }
    }
    Ok(())
}

/// The VM's QEMU is gone: stopped, pending changes applied (`vm_stop_cleanup`).
pub fn stopped(m: &mut Model, vmid: u32) {
    let Some(mut vm) = m.vms.get(&vmid).cloned() else { return };
    vm.running = false;
    vm.paused = false;
    vm.started_at_ms = None;
    super::pending::apply_pending(&mut vm, &mut m.volumes);
    m.vms.insert(vmid, vm);
}

fn start(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    root_params(
        call,
        &[
            "stateuri",
            "skiplock",
            "migratedfrom",
            "migration_type",
            "migration_network",
            "targetstorage",
            "force-cpu",
            "with-conntrack-state",
            "nets-host-mtu",
        ],
    )?;
    let vmid = call.vmid();
    let skiplock = call.flag("skiplock");
    let st = state.clone();
    let upid = tasks::start(state, call, worker(state, &node, "qmstart", vmid), move |_log| async move {
        st.write(|m| start_vm(&st, m, &node, vmid, skiplock))
    });
    Ok(json!(upid))
}

fn stop(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    root_params(call, &["skiplock", "keepActive", "migratedfrom"])?;
    let vmid = call.vmid();
    let skiplock = call.flag("skiplock");
    let mut overruled = Vec::new();
    if call.flag("overrule-shutdown") {
        // abort_guest_tasks: running shutdowns of this VM end before the stop takes the lock.
        overruled = state.write(|m| {
            let mut aborted = Vec::new();
            for t in m.tasks.iter_mut().filter(|t| t.running() && t.kind == "qmshutdown" && t.id == vmid.to_string()) {
                t.log.push("received interrupt".into());
                t.log.push("TASK ERROR: interrupted by signal".into());
                t.exitstatus = Some("interrupted by signal".into());
                t.endtime = Some(crate::pve::state::now_secs());
                aborted.push(t.upid.clone());
            }
            aborted
        });
    }
    let st = state.clone();
    let upid = tasks::start(state, call, worker(state, &node, "qmstop", vmid), move |log| async move {
        if !overruled.is_empty() {
            log.line(format!("overruled qmshutdown tasks: {}", overruled.join(", ")));
        }
        st.write(|m| {
            let vm = vm_mut(m, vmid, &node)?;
            if !vm.running {
                return Ok(());
            }
            if !skiplock {
                check_lock(vm)?;
            }
            stopped(m, vmid);
            Ok(())
        })
    });
    Ok(json!(upid))
}

/// How a guest reacts to a shutdown request.
enum Powerdown {
    NotRunning,
    /// The agent's `guest-shutdown` or ACPI: the guest stops.
    Stops,
    /// Nobody handles the request.
    Ignored,
}

/// `_do_vm_stop` with `shutdown`: the request, then waiting up to `timeout`.
async fn powerdown(
    state: &PveState,
    log: &TaskLog,
    node: &str,
    vmid: u32,
    timeout: Option<u64>,
    force: bool,
) -> Result<bool, String> {
    let (how, lines, timeout) = state.read(|m| -> Result<_, String> {
        let vm = m
            .vms
            .get(&vmid)
            .filter(|vm| vm.node == node)
            .ok_or_else(|| format!("Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"))?;
        if !vm.running {
            return Ok((Powerdown::NotRunning, Vec::new(), 0));
        }
        check_lock(vm)?;
        let down = vm
            .config
            .get("startup")
            .and_then(|s| s.split(',').find_map(|p| p.strip_prefix("down=")).and_then(|d| d.parse().ok()));
        let timeout = timeout.or(down).unwrap_or(60);
        let mut lines = Vec::new();
        if agent_enabled(&vm.config) && agent_running(state, m, vm) {
            return Ok((Powerdown::Stops, lines, timeout));
        }
        if agent_enabled(&vm.config) {
            lines.push(format!(
                "QEMU Guest Agent is not running - VM {vmid} qga command 'guest-ping' failed - got timeout"
            ));
        }
        let how = if booted(state, m, vm) { Powerdown::Stops } else { Powerdown::Ignored };
        Ok((how, lines, timeout))
    })?;
    log_lines(log, lines);
    match how {
        Powerdown::NotRunning => return Ok(false),
        Powerdown::Stops => {}
        Powerdown::Ignored => {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
            while tokio::time::Instant::now() < deadline {
                if state.read(|m| m.task(log.upid()).is_none_or(|t| !t.running())) {
                    return Err("interrupted by signal".into());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !force {
                return Err("VM quit/powerdown failed - got timeout".into());
            }
            log.line("VM still running - terminating now with SIGTERM");
        }
    }
    state.write(|m| stopped(m, vmid));
    Ok(true)
}

fn paused(state: &PveState, vmid: u32) -> bool {
    state.read(|m| m.vms.get(&vmid).is_some_and(|vm| vm.running && vm.paused))
}

fn shutdown(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    root_params(call, &["skiplock", "keepActive"])?;
    let vmid = call.vmid();
    let force = call.flag("forceStop");
    let mut hard = false;
    if paused(state, vmid) {
        if !force {
            return Err(fail("VM is paused - cannot shutdown"));
        }
        hard = true;
    }
    let timeout = call.int("timeout").map(|t| t.max(0) as u64);
    let skiplock = call.flag("skiplock");
    let st = state.clone();
    let upid = tasks::start(state, call, worker(state, &node, "qmshutdown", vmid), move |log| async move {
        if hard {
            log.line("VM is paused - stop instead of shutdown");
            return st.write(|m| {
                let vm = vm_mut(m, vmid, &node)?;
                if !skiplock {
                    check_lock(vm)?;
                }
                stopped(m, vmid);
                Ok(())
            });
        }
        powerdown(&st, &log, &node, vmid, timeout, force).await.map(|_| ())
    });
    Ok(json!(upid))
}

/// "VM N not running" (after `check_running`'s config check).
fn assert_running(state: &PveState, call: &Call) -> Result<(String, u32), ApiError> {
    let (node, vmid) = super::assert_config_on_node(state, call)?;
    if !state.read(|m| m.vms[&vmid].running) {
        return Err(fail(format!("VM {vmid} not running")));
    }
    Ok((node, vmid))
}

fn reboot(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    node_of(state, call)?;
    if paused(state, call.vmid()) {
        return Err(fail("VM is paused - cannot shutdown"));
    }
    let (node, vmid) = assert_running(state, call)?;
    let timeout = call.int("timeout").map(|t| t.max(0) as u64);
    let st = state.clone();
    let upid = tasks::start(state, call, worker(state, &node, "qmreboot", vmid), move |log| async move {
        if powerdown(&st, &log, &node, vmid, timeout, false).await? {
            // qmeventd starts it again (applying what was pending).
            if let Err(e) = st.write(|m| start_vm(&st, m, &node, vmid, false)) {
                log.line(format!("start failed: {e}"));
            }
        }
        Ok(())
    });
    Ok(json!(upid))
}

/// A task that changes a running VM under its lock.
fn running_action(state: &PveState, call: &Call, kind: &'static str, change: fn(&mut Vm)) -> Result<Value, ApiError> {
    node_of(state, call)?;
    root_params(call, &["skiplock", "nocheck"])?;
    let (node, vmid) = assert_running(state, call)?;
    let skiplock = call.flag("skiplock");
    let st = state.clone();
    let upid = tasks::start(state, call, worker(state, &node, kind, vmid), move |_log| async move {
        st.write(|m| {
            let vm = vm_mut(m, vmid, &node)?;
            if !skiplock {
                check_lock(vm)?;
            }
            if !vm.running {
                return Err(format!("VM {vmid} not running"));
            }
            change(vm);
            Ok(())
        })
    });
    Ok(json!(upid))
}

fn reset(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    running_action(state, call, "qmreset", |vm| {
        vm.started_at_ms = Some(now_ms());
        vm.boots = vm.boots.wrapping_add(1);
        vm.paused = false;
    })
}

fn suspend(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    if call.flag("todisk") {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "suspend to disk (todisk=1) is not simulated by the lab",
        ));
    }
    running_action(state, call, "qmpause", |vm| vm.paused = true)
}

fn resume(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    running_action(state, call, "qmresume", |vm| vm.paused = false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_ids_are_normalised() {
        assert_eq!(normalize_pci("28:00.0"), "0000:28:00.0");
        assert_eq!(normalize_pci("0000:28:00"), "0000:28:00.0");
    }
}
