//! Disk operations on a VM: `PUT .../resize` (PVE 9: a task, `resize`),
//! `POST .../move_disk` (to another storage, task `qmmove`) and
//! `POST .../template` (convert to a template, task `qmtemplate`).
//!
//! Owns: resize semantics (absolute `32G` or relative `+2G`, from the
//! volume's real size; grow only, "shrinking disks is not supported"; equal
//! size is a no-op) and template conversion (checks, `template: 1`, disks
//! renamed to base volumes; CD-ROMs and the cloud-init drive stay) and moves
//! (checked before the task as PVE does: lock, disk, CD-ROM, same storage and
//! format, target storage with `images`; the copy keeps size and contents, the
//! source becomes `unusedN` unless `delete`). Moving to another VM
//! (`target-vmid`) is not simulated and says so.
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
    h.sync("POST", "/nodes/{node}/qemu/{vmid}/move_disk", move_disk);
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

fn move_disk(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let (node, vmid) = vm_on_node(state, call)?;
    if call.opt_str("target-vmid").is_some() || call.opt_str("target-disk").is_some() {
        return Err(fail("the lab does not simulate moving a disk to another VM (target-vmid)"));
    }
    let disk = call.str("disk").to_string();
    let storage = call.opt_str("storage").map(str::to_string).ok_or_else(|| fail("storage: property is missing"))?;
    let format = call.opt_str("format").map(str::to_string);
    let digest = call.opt_str("digest").map(str::to_string);
    let delete = call.flag("delete");
    let check = {
        let (disk, storage, format) = (disk.clone(), storage.clone(), format.clone());
        move |m: &crate::pve::model::Model| -> Result<Drive, String> {
            let vm = &m.vms[&vmid];
            if digest.as_deref().is_some_and(|d| d != vm.digest()) {
                return Err("checksum mismatch (file change by other user?)".into());
            }
            check_lock(vm)?;
            let value = vm.config.get(&disk).ok_or_else(|| format!("disk '{disk}' does not exist"))?;
            let d = Drive::parse(value);
            if d.is_cdrom() {
                return Err("you can't move a cdrom".into());
            }
            let source = m.volumes.get(&d.file).ok_or_else(|| format!("volume '{}' does not exist", d.file))?;
            let scfg = m.storages.get(&storage).ok_or_else(|| format!("storage '{storage}' does not exist"))?;
            if !scfg.content.iter().any(|c| c == "images") {
                return Err(format!("storage '{storage}' does not support vm images"));
            }
            if source.storage == storage && format.as_deref().is_none_or(|f| f == source.format) {
                return Err("you can't move to the same storage with same format".into());
            }
            Ok(d)
        }
    };
    state.read(|m| check(m)).map_err(fail)?;
    let st = state.clone();
    let worker = Worker { node: node.clone(), kind: "qmmove", id: vmid.to_string(), lock_vmid: Some(vmid) };
    let upid = tasks::start(state, call, worker, move |log| async move {
        let line = st.write(|m| -> Result<String, String> {
            let mut d = check(m)?;
            let source = m.volumes[&d.file].clone();
            let target_format = format.clone().or_else(|| {
                let dir = m.storages.get(&storage).is_some_and(|s| s.kind == "dir");
                Some(if dir { source.format.clone() } else { "raw".to_string() })
            });
            let volid = volume::alloc(
                m,
                &storage,
                &node,
                vmid,
                None,
                target_format.as_deref(),
                source.size,
                source.origin.clone(),
            )?;
            if let Some(v) = m.volumes.get_mut(&volid) {
                v.talos = source.talos.clone();
            }
            let old = std::mem::replace(&mut d.file, volid.clone());
            let vm = vm_mut(m, vmid, &node)?;
            vm.config.insert(disk.clone(), d.print());
            if delete {
                m.volumes.remove(&old);
            } else {
                super::pending::add_unused(vm_mut(m, vmid, &node)?, &old);
            }
            Ok(format!("create full clone of drive {disk} ({old})\nmoved {disk} to {volid}"))
        })?;
        for l in line.lines() {
            log.line(l.to_string());
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
