//! The VM endpoints under `/nodes/{node}/qemu`, answering as qemu-server's
//! `PVE::API2::Qemu` (PVE 9.1) does: the same checks in the same order, the
//! same error texts, synchronous errors where PVE dies before forking a
//! worker and task errors where PVE dies inside one.
//!
//! Layout:
//! - [`checks`]: parameter, storage and root-only checks before locking.
//! - [`drive`]: property strings (drives, NICs, `hostpci`, `ipconfig`), sizes.
//! - [`volume`]: volume names, allocation, base volumes, linked clones, and
//!   `create_disks` (`storage:N`, `import-from`, cloud-init, EFI vars).
//! - [`create`]: list, create (`qmcreate`), index, destroy (`qmdestroy`).
//! - [`config`]: `GET|PUT|POST .../config`, `GET .../pending`, cloud-init.
//! - [`pending`]: pending changes: applying them to a stopped VM, hotplug
//!   rules for a running one, the cloud-init change record.
//! - [`disk`]: resize (`resize`) and convert to template (`qmtemplate`).
//! - [`power`]: status, start/stop/shutdown/reboot/reset/suspend/resume.
//! - [`clone`]: clone (`qmclone`) and migrate (`qmigrate`).
//! - [`agent`]: the guest agent and [`guest_address`], the address a guest
//!   has on the lab network (for the Talos node simulation).
//!
//! Owns (here): registration, the VM lookup every handler makes, PVE's config
//! lock check ("VM is locked (clone)"), root-only checks, task follow-ups.
//! Must not: parse HTTP (the server did), or change storage content other
//! than VM volumes (that is the storage module).

pub mod agent;
pub(crate) mod checks;
mod clone;
mod config;
mod create;
mod disk;
pub mod drive;
mod guest_links;
pub(crate) mod pending;
mod power;
pub(crate) mod volume;

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::StatusCode;
use serde_json::Value;

pub use agent::guest_address;
pub use power::stopped;

use super::cluster::node_of;
use super::model::{Model, Vm};
use super::server::{ApiError, Call, Handlers};
use super::state::{no_such_vm, PveState};

pub fn register(h: &mut Handlers) {
    create::register(h);
    config::register(h);
    disk::register(h);
    power::register(h);
    clone::register(h);
    agent::register(h);
}

/// A 500 with PVE's message (a plain `die` in qemu-server).
pub(crate) fn fail(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
}

/// A 400 "Parameter verification failed." for one parameter.
pub(crate) fn param_error(key: &str, message: impl Into<String>) -> ApiError {
    ApiError::params([(key.to_string(), message.into())].into())
}

/// The node and VMID of a VM-scoped call, if the VM's config is on that node
/// (`load_config`); else PVE's "Configuration file ... does not exist".
pub(crate) fn vm_on_node(state: &PveState, call: &Call) -> Result<(String, u32), ApiError> {
    let node = node_of(state, call)?;
    let vmid = call.vmid();
    let here = state.read(|m| m.vms.get(&vmid).is_some_and(|vm| vm.node == node));
    if here {
        Ok((node, vmid))
    } else {
        Err(no_such_vm(vmid, Some(&node)))
    }
}

/// `check_running`'s config check: "unable to find configuration file for VM N on node 'X'".
pub(crate) fn assert_config_on_node(state: &PveState, call: &Call) -> Result<(String, u32), ApiError> {
    let node = node_of(state, call)?;
    let vmid = call.vmid();
    if state.read(|m| m.vms.get(&vmid).is_some_and(|vm| vm.node == node)) {
        Ok((node, vmid))
    } else {
        Err(fail(format!("unable to find configuration file for VM {vmid} on node '{node}'")))
    }
}

/// PVE's `check_lock`.
pub(crate) fn check_lock(vm: &Vm) -> Result<(), String> {
    match &vm.lock {
        Some(lock) => Err(format!("VM is locked ({lock})")),
        None => Ok(()),
    }
}

/// The VM in a task (its config may have gone meanwhile).
pub(crate) fn vm_mut<'a>(m: &'a mut Model, vmid: u32, node: &str) -> Result<&'a mut Vm, String> {
    m.vms
        .get_mut(&vmid)
        .filter(|vm| vm.node == node)
        .ok_or_else(|| format!("Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"))
}

/// PVE's `raise_param_exc({ opt => "Only root may use this option." })` for root-only flags.
pub(crate) fn root_only(call: &Call, names: &[&str]) -> Result<(), ApiError> {
    for name in names {
        if call.flag(name) && !call.is_root_ticket() {
            return Err(param_error(name, "Only root may use this option."));
        }
    }
    Ok(())
}

/// A unique holder name for a synchronous handler taking a VM's config lock.
pub(crate) fn sync_holder(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{what}:{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Runs `cleanup` once the task `upid` has failed (also when it never got to
/// its work: stopped, lock timeout, injected failure), as qemu-server's
/// workers clean up after themselves.
pub(crate) fn on_failure(state: &PveState, upid: &str, cleanup: impl FnOnce(&mut Model) + Send + 'static) {
    // Decided in one model write with the task's state: a task that already failed is cleaned
    // up now; a running one when it fails, in the write that ends it.
    state.write(|m| match m.task(upid).map(|t| t.exitstatus.clone()) {
        Some(None) => state.keep_task_cleanup(upid, Box::new(cleanup)),
        Some(Some(s)) if !(s == "OK" || s.starts_with("WARNINGS")) => cleanup(m),
        _ => {}
    });
}

/// A config value as the API returns it: numbers for integer, number and
/// boolean properties (`"cores": 2`), strings otherwise (`"memory": "2048"`).
pub(crate) fn typed_value(state: &PveState, key: &str, value: &str) -> Value {
    let ty = state
        .apidoc()
        .endpoint("GET", "/nodes/{node}/qemu/{vmid}/config")
        .and_then(|e| {
            let props = e.info["returns"]["properties"].as_object()?;
            let schema = props.get(key).or_else(|| {
                let prefix = key.trim_end_matches(|c: char| c.is_ascii_digit());
                (prefix.len() < key.len()).then(|| props.get(&format!("{prefix}[n]"))).flatten()
            })?;
            schema["type"].as_str().map(str::to_string)
        })
        .unwrap_or_default();
    match ty.as_str() {
        "integer" | "boolean" => value.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(value)),
        "number" => value
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::from(value)),
        _ => Value::from(value),
    }
}

/// A parameter value as PVE writes it into the config (`2`, `0.5`, `1`, text).
pub(crate) fn param_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Bool(b) => u8::from(*b).to_string(),
        other => other.to_string(),
    }
}
