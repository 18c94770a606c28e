//! The calls a VM configuration cannot express, derived from the inputs and the
//! current configuration: disk resizes, disk moves, whether a config change
//! allocates storage, and the clone call. Part of `encode` (re-exported there).
//!
//! Must not: call the API.

use super::super::args::VirtualMachineArgs;
use super::super::format as f;
use super::{Config, Params};

/// Disks to grow with `PUT .../resize` (`disk`, `size` such as `32G`): those whose
/// `size` input is larger than the size in `current`. Disks never shrink.
pub fn resizes(current: &Config, args: &VirtualMachineArgs) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in args.disks.iter().flatten() {
        let (Some(size), Some(value)) = (d.size, current.get(&d.interface)) else { continue };
        let have = f::drive(value).get("size").and_then(f::parse_size);
        if have.is_some_and(|have| size > 0 && (size as u64) * f::GIB > have) {
            out.push((d.interface.clone(), format!("{size}G")));
        }
    }
    out
}

/// Disks to move with `POST .../move_disk` (`disk`, target storage): those whose
/// `datastoreId` differs from the storage they are on.
pub fn disk_moves(current: &Config, args: &VirtualMachineArgs) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in args.disks.iter().flatten() {
        let (Some(target), Some(value)) = (&d.datastore_id, current.get(&d.interface)) else { continue };
        let file = f::drive(value).get("file").map(str::to_string).unwrap_or_default();
        match f::split_volid(&file) {
            Some((storage, _)) if storage != target && !f::is_cdrom(value) => {
                out.push((d.interface.clone(), target.clone()))
            }
            _ => {}
        }
    }
    out
}

/// Whether applying `set` allocates storage (new disks, imports, EFI/TPM volumes, a
/// cloud-init drive): PVE then wants the asynchronous `POST .../config` (a task).
pub fn allocates(set: &Params) -> bool {
    set.iter().any(|(k, v)| {
        let file = f::drive(v).get("file").map(str::to_string).unwrap_or_default();
        let allocation = file
            .split_once(':')
            .is_some_and(|(_, n)| n == "cloudinit" || (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())));
        (f::is_disk_key(k) || k == "efidisk0" || k == "tpmstate0") && (allocation || v.contains("import-from="))
    })
}

/// The clone call for `args` as `newid`: the source node, the source VM id and the
/// parameters of `POST /nodes/{source node}/qemu/{source}/clone`. `None` without `clone`.
/// `target` is set when the source is on another node (PVE allows that only from
/// shared storage; otherwise clone on the source node and migrate).
pub fn clone_request(args: &VirtualMachineArgs, newid: i64) -> Option<(String, i64, Params)> {
    let c = args.clone.as_ref()?;
    let source_node = c.node_name.clone().unwrap_or_else(|| args.node_name.clone());
    let full = c.full.unwrap_or(true);
    let mut params: Params = vec![("newid".into(), newid.to_string()), ("full".into(), f::bit(full).into())];
    if let Some(name) = args.name.as_deref().filter(|n| !n.is_empty()) {
        params.push(("name".into(), name.into()));
    }
    if let Some(pool) = args.pool_id.as_deref().filter(|p| !p.is_empty()) {
        params.push(("pool".into(), pool.into()));
    }
    if let (true, Some(storage)) = (full, &c.datastore_id) {
        params.push(("storage".into(), storage.clone()));
    }
    if source_node != args.node_name {
        params.push(("target".into(), args.node_name.clone()));
    }
    Some((source_node, c.vm_id, params))
}
