//! What PVE's handlers check in code for the endpoints the lab implements
//! whose schema `permissions` only describe it (`user: all` with a
//! description, or a `check` plus a description), and the silent filtering
//! of list answers PVE's list handlers do (`next if !$rpcenv->check(...,
//! 1)`): a caller never learns of a guest, storage, pool, mapping or task it
//! may not see. `GET /nodes/{node}/network` lists bridges with `SDN.Use` on
//! them and other interfaces with `Sys.Audit` on the node.
//!
//! In code (as qemu-server, pve-storage, pve-manager do):
//! - `POST /nodes/{node}/qemu`: `VM.Allocate` on `/vms/{vmid}`, or on
//!   `/pool/{pool}` when a pool is given; then, as for `PUT|POST .../config`,
//!   each option's privilege (`VM.Config.CPU` for `cores`, `VM.Config.Memory`
//!   for `memory`, `VM.Config.Disk` or `VM.Config.CDROM` for drives, ...;
//!   `$check_vm_modify_config_perm`) and `Datastore.AllocateSpace` on every
//!   storage a new or imported disk is allocated on.
//! - NICs on create, config updates and clone (the source's NICs): `SDN.Use`
//!   on `/sdn/zones/localnetwork/{bridge}[/{tag}]` (`check_bridge_access`).
//! - `POST .../clone` and `.../move_disk`: `Datastore.AllocateSpace` on the
//!   target `storage`.
//! - task endpoints: another user's task needs `Sys.Audit` on `/nodes/{node}`.
//! - volume `GET`/`DELETE` (`check_volume_access`, simplified): a storage
//!   privilege on `/storage/{storage}`; deleting a guest's volume also
//!   `VM.Config.Disk` on its `/vms/{vmid}`.

use serde_json::{Map, Value};

use super::check::Checker;
use crate::pve::qemu::drive;
use crate::pve::server::{ApiError, PveState};

fn text<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    params.get(name).and_then(Value::as_str)
}

fn number(params: &Map<String, Value>, name: &str) -> String {
    match params.get(name) {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

/// The in-code checks of `method template`, after the schema's.
pub fn check(c: &Checker, method: &str, template: &str, params: &Map<String, Value>) -> Result<(), ApiError> {
    match (method, template) {
        ("POST", "/nodes/{node}/qemu") => {
            let vmid = number(params, "vmid");
            let pool = text(params, "pool");
            check_pool_exist(c, pool)?;
            if let Some(storage) = text(params, "storage") {
                c.check(&format!("/storage/{storage}"), &["Datastore.AllocateSpace"], false)?;
            }
            vm_perm(c, &vmid, pool, &["VM.Allocate"], false)?;
            config_perm(c, &vmid, pool, params)?;
            for storage in allocated_storages(params) {
                c.check(&format!("/storage/{storage}"), &["Datastore.AllocateSpace"], false)?;
            }
            bridge_access(c, params.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or(""))))
        }
        ("PUT" | "POST", "/nodes/{node}/qemu/{vmid}/config") => {
            config_perm(c, &number(params, "vmid"), None, params)?;
            for storage in allocated_storages(params) {
                c.check(&format!("/storage/{storage}"), &["Datastore.AllocateSpace"], false)?;
            }
            bridge_access(c, params.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or(""))))
        }
        ("POST", "/nodes/{node}/qemu/{vmid}/clone") => {
            check_pool_exist(c, text(params, "pool"))?;
            if let Some(storage) = text(params, "storage") {
                c.check(&format!("/storage/{storage}"), &["Datastore.AllocateSpace"], false)?;
            }
            // The clone gets the source's NICs.
            let vmid: u32 = number(params, "vmid").parse().unwrap_or(0);
            let nets: Vec<(String, String)> = c
                .state
                .read(|m| m.vms.get(&vmid).map(|vm| vm.config.clone().into_iter().collect()).unwrap_or_default());
            bridge_access(c, nets.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        }
        ("POST", "/nodes/{node}/qemu/{vmid}/move_disk") => match text(params, "storage") {
            Some(storage) => c.check(&format!("/storage/{storage}"), &["Datastore.AllocateSpace"], false),
            None => Ok(()),
        },
        (_, "/nodes/{node}/tasks/{upid}" | "/nodes/{node}/tasks/{upid}/log" | "/nodes/{node}/tasks/{upid}/status") => {
            let upid = text(params, "upid").unwrap_or("");
            let owner = upid.split(':').nth(7).unwrap_or("").to_string();
            if owner == c.who {
                return Ok(());
            }
            let node = text(params, "node").unwrap_or("");
            c.check(&format!("/nodes/{node}"), &["Sys.Audit"], false)
        }
        ("GET", "/nodes/{node}/storage/{storage}/content/{volume}") => {
            let storage = text(params, "storage").unwrap_or("");
            let privs = ["Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.Audit"];
            c.check(&format!("/storage/{storage}"), &privs, true)
        }
        ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}") => {
            let storage = text(params, "storage").unwrap_or("");
            if c.allowed(&format!("/storage/{storage}"), &["Datastore.Allocate"], false) {
                return Ok(());
            }
            c.check(&format!("/storage/{storage}"), &["Datastore.AllocateSpace"], false)?;
            match volume_owner(text(params, "volume").unwrap_or("")) {
                Some(vmid) => c.check(&format!("/vms/{vmid}"), &["VM.Config.Disk"], false),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// PVE's `check_pool_exist`: a 403 naming the pool.
pub fn check_pool_exist(c: &Checker, pool: Option<&str>) -> Result<(), ApiError> {
    match pool {
        Some(pool) if !c.state.read(|m| m.pools.contains_key(pool)) => {
            Err(super::check::denied(Some(format!("pool '{pool}' does not exist"))))
        }
        _ => Ok(()),
    }
}

/// qemu-server's `check_vm_perm`: the pool's ACL will do, else the VM's is checked.
fn vm_perm(c: &Checker, vmid: &str, pool: Option<&str>, privs: &[&str], any: bool) -> Result<(), ApiError> {
    if pool.is_some_and(|p| c.allowed(&format!("/pool/{p}"), privs, any)) {
        return Ok(());
    }
    c.check(&format!("/vms/{vmid}"), privs, any)
}

/// The per-option privileges of a config change or create (`$check_vm_modify_config_perm`),
/// and for drives `VM.Config.CDROM` (media changes) or `VM.Config.Disk`, also for `delete`d ones.
fn config_perm(c: &Checker, vmid: &str, pool: Option<&str>, params: &Map<String, Value>) -> Result<(), ApiError> {
    let deleted: Vec<String> =
        text(params, "delete").map(crate::pve::validate::formats::split_list).unwrap_or_default();
    let set = params.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()));
    let all = set.chain(deleted.into_iter().map(|k| (k, String::new())));
    for (key, value) in all {
        if drive::is_drive_key(&key) {
            let cdrom = value.split(',').any(|p| p == "media=cdrom");
            let privs: &[&str] = if cdrom { &["VM.Config.CDROM"] } else { &["VM.Config.Disk"] };
            vm_perm(c, vmid, pool, privs, false)?;
        } else if let Some(privs) = crate::pve::qemu::checks::config_key_privileges(&key) {
            vm_perm(c, vmid, pool, privs, privs.len() > 1)?;
            if key == "startup" {
                c.check("/", &["Sys.Modify"], false)?;
            }
        }
    }
    Ok(())
}

/// qemu-server's `check_bridge_access`: `SDN.Use` on
/// `/sdn/zones/localnetwork/{bridge}` (with `/{tag}` for a VLAN) for every NIC.
fn bridge_access<'a>(c: &Checker, options: impl Iterator<Item = (&'a str, &'a str)>) -> Result<(), ApiError> {
    for (key, value) in options {
        if drive::index_of(key, "net").is_none() {
            continue;
        }
        let opt = |name: &str| value.split(',').find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')));
        let Some(bridge) = opt("bridge") else { continue };
        let mut path = format!("/sdn/zones/localnetwork/{bridge}");
        if let Some(tag) = opt("tag") {
            path.push_str(&format!("/{tag}"));
        }
        c.check(&path, &["SDN.Use"], false)?;
    }
    Ok(())
}

/// Storages a create allocates on: `STORAGE:SIZE` disks and `import-from` targets.
fn allocated_storages(params: &Map<String, Value>) -> Vec<String> {
    let default = text(params, "storage");
    let mut out = Vec::new();
    for (key, value) in params {
        let Some(value) = value.as_str() else { continue };
        if !drive::is_drive_key(key) {
            continue;
        }
        let file = value.split(',').next().unwrap_or("");
        let imported = value.split(',').any(|p| p.starts_with("import-from="));
        let new_disk = file.split_once(':').is_some_and(|(_, size)| size.parse::<f64>().is_ok());
        if new_disk || imported {
            match file.split_once(':') {
                Some((storage, _)) => out.push(storage.to_string()),
                None => out.extend(default.map(str::to_string)),
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The guest owning a volume name (`vm-101-disk-0`, `101/vm-101-disk-0.qcow2`, `base-100-disk-0`).
fn volume_owner(volume: &str) -> Option<u32> {
    let name = volume.rsplit_once(':').map_or(volume, |(_, n)| n);
    let name = name.rsplit('/').next().unwrap_or(name);
    let rest = name.strip_prefix("vm-").or_else(|| name.strip_prefix("base-"))?;
    rest.split('-').next()?.parse().ok()
}

/// The answer of a list endpoint, without what the caller may not see.
pub fn filter(state: &PveState, who: &str, template: &str, params: &Map<String, Value>, data: Value) -> Value {
    if state.access().is_root(who) {
        return data;
    }
    let Value::Array(items) = data else { return data };
    let principal = match who.split_once('!') {
        Some((user, token)) => {
            crate::pve::auth::Principal::Token { user: user.to_string(), token_id: token.to_string() }
        }
        None => crate::pve::auth::Principal::User(who.to_string()),
    };
    let c = Checker::new(state, &principal);
    let field = |item: &Value, name: &str| match &item[name] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    };
    let datastore = ["Datastore.Audit", "Datastore.AllocateSpace"];
    let keep = |item: &mut Value| -> bool {
        match template {
            "/cluster/resources" => match item["type"].as_str().unwrap_or("") {
                "qemu" | "lxc" => c.allowed(&format!("/vms/{}", field(item, "vmid")), &["VM.Audit"], false),
                "storage" => c.allowed(&format!("/storage/{}", field(item, "storage")), &["Datastore.Audit"], false),
                "pool" => c.allowed(&format!("/pool/{}", field(item, "pool")), &["Pool.Audit"], false),
                "node" => {
                    if !c.allowed(&format!("/nodes/{}", field(item, "node")), &["Sys.Audit"], false) {
                        strip_node_stats(item);
                    }
                    true
                }
                _ => true,
            },
            // Every node, with usage figures only for a caller with Sys.Audit on it.
            "/nodes" => {
                if !c.allowed(&format!("/nodes/{}", field(item, "node")), &["Sys.Audit"], false) {
                    strip_node_stats(item);
                }
                true
            }
            "/nodes/{node}/qemu" => c.allowed(&format!("/vms/{}", field(item, "vmid")), &["VM.Audit"], false),
            "/storage" | "/nodes/{node}/storage" => {
                c.allowed(&format!("/storage/{}", field(item, "storage")), &datastore, true)
            }
            "/pools" => c.allowed(&format!("/pool/{}", field(item, "poolid")), &["Pool.Audit"], false),
            "/cluster/mapping/pci" => c.allowed(
                &format!("/mapping/pci/{}", field(item, "id")),
                &["Mapping.Audit", "Mapping.Use", "Mapping.Modify"],
                true,
            ),
            // Bridges need SDN.Use on them, other interfaces Sys.Audit on the node.
            "/nodes/{node}/network" => match item["type"].as_str() {
                Some("bridge" | "OVSBridge") => {
                    c.allowed(&format!("/sdn/zones/localnetwork/{}", field(item, "iface")), &["SDN.Use"], false)
                }
                _ => c.allowed(&format!("/nodes/{}", text(params, "node").unwrap_or("")), &["Sys.Audit"], false),
            },
            "/nodes/{node}/tasks" => {
                field(item, "user") == who
                    || c.allowed(&format!("/nodes/{}", text(params, "node").unwrap_or("")), &["Sys.Audit"], false)
            }
            _ => true,
        }
    };
    Value::Array(items.into_iter().filter_map(|mut item| keep(&mut item).then_some(item)).collect())
}

/// A node entry without `Sys.Audit`: no usage figures.
fn strip_node_stats(item: &mut Value) {
    if let Value::Object(map) = item {
        let kept: Map<String, Value> = map
            .iter()
            .filter(|(k, _)| {
                matches!(k.as_str(), "id" | "type" | "node" | "status" | "level" | "cgroup-mode" | "ssl_fingerprint")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        *map = kept;
    }
}
