//! Disk operations on a VM: `PUT .../resize` (PVE 9: a task, `resize`) and
//! `POST .../template` (convert to a template, task `qmtemplate`).
//!
//! Owns: resize semantics (absolute `32G` or relative `+2G`, from the
//! volume's real size; grow only, "shrinking disks is not supported"; equal
//! size is a no-op) and template conversion (checks, `template: 1`, disks
//! renamed to base volumes; CD-ROMs and the cloud-init drive stay).
//! Must not: allocate new volumes (see `drive`).

use serde_json::{json, Value};

use super::drive::{self, Drive};
use super::volume;
use super::{check_lock, fail, root_only, vm_mut, vm_on_node};
use crate::pve::cluster::node_of;
use crate::pve::server::{ApiError, Call, Handlers};
use crate::pve::state::PveState;
use crate::pve::tasks::{self, Worker};

pub fn register(h: &mut Handlers) {
    h.sync("PUT", "/nodes/{node}/qemu/{vmid}/resize", resize);
    h.sync("POST", "/nodes/{node}/qemu/{vmid}/template", template);
}

fn resize(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    root_only(call, &["skiplock"])?;
    let vmid = call.vmid();
    let disk = call.str("disk").to_string();
    let size = call.str("size").to_string();
    let digest = call.opt_str("digest").map(str::to_string);
    let skiplock = call.flag("skiplock");
    let here = state.read(|m| m.vms.get(&vmid).is_some_and(|vm| vm.node == node));
    let worker = Worker { node: node.clone(), kind: "resize", id: vmid.to_string(), lock_vmid: here.then_some(vmid) };
    let st = state.clone();
    let upid = tasks::start(state, call, worker, move |log| async move {
        let line = st.write(|m| -> Result<Option<String>, String> {
            let vm = vm_mut(m, vmid, &node)?;
            if digest.as_deref().is_some_and(|d| d != vm.digest()) {
                return Err("checksum mismatch (file change by other user?)".into());
            }
            if !skiplock {
                check_lock(vm)?;
            }
            let value = vm.config.get(&disk).cloned().ok_or_else(|| format!("disk '{disk}' does not exist"))?;
            let mut d = Drive::parse(&value);
            if d.file.is_empty() || d.file == "none" {
                return Err(format!("disk '{disk}' has no associated volume"));
            }
            if d.is_cdrom() {
                return Err("you can't resize a cdrom".into());
            }
            let current = m
                .volumes
                .get(&d.file)
                .map(|v| v.size)
                .ok_or_else(|| format!("Could not determine current size of volume '{}'", d.file))?;
            let (relative, amount) = match size.strip_prefix('+') {
                Some(rest) => (true, rest),
                None => (false, size.as_str()),
            };
            let amount = drive::parse_size(amount).ok_or("internal error")?;
            let new = if relative { current + amount } else { amount };
            if new < current {
                return Err("shrinking disks is not supported".into());
            }
            if new == current {
                return Ok(None);
            }
            if disk == "efidisk0" {
                return Err("resizing of efidisks is not supported".into());
            }
            if let Some(v) = m.volumes.get_mut(&d.file) {
                v.size = new;
            }
            d.set_size(new);
            let vm = vm_mut(m, vmid, &node)?;
            vm.config.insert(disk.clone(), d.print());
            Ok(Some(format!("Image resized to {}.", drive::format_size(new))))
        })?;
        if let Some(line) = line {
            log.line(line);
        }
        Ok(())
    });
    Ok(json!(upid))
}

fn template(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let (node, vmid) = vm_on_node(state, call)?;
    let disk = call.opt_str("disk").map(str::to_string);
    let check = move |vm: &crate::pve::model::Vm| -> Result<(), String> {
        check_lock(vm)?;
        if vm.is_template() && disk.is_none() {
            return Err("you can't convert a template to a template".into());
        }
        if vm.running {
            return Err("you can't convert a VM to template if VM is running".into());
        }
        Ok(())
    };
    state.read(|m| check(&m.vms[&vmid])).map_err(fail)?;
    let only = call.opt_str("disk").map(str::to_string);
    let st = state.clone();
    let worker = Worker { node: node.clone(), kind: "qmtemplate", id: vmid.to_string(), lock_vmid: Some(vmid) };
    let upid = tasks::start(state, call, worker, move |_log| async move {
        st.write(|m| -> Result<(), String> {
            let vm = vm_mut(m, vmid, &node)?;
            check(vm)?;
            vm.config.insert("template".into(), "1".into());
            let drives: Vec<(String, String)> = vm
                .config
                .iter()
                .filter(|(k, _)| drive::is_drive_key(k) && only.as_ref().is_none_or(|o| o == *k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (key, value) in drives {
                let mut d = Drive::parse(&value);
                if d.is_cdrom() || volume::is_base(&d.file) || !m.volumes.contains_key(&d.file) {
                    continue;
                }
                d.file = volume::create_base(m, &d.file)?;
                vm_mut(m, vmid, &node)?.config.insert(key, d.print());
            }
            Ok(())
        })
    });
    Ok(json!(upid))
}
