//! Resource pools (`/pools`), as pve-manager's `PVE::API2::Pool` (PVE 9)
//! answers: list (only pools with `Pool.Audit`; with `poolid` also the
//! members), create, read members (guests as `/cluster/resources` shows
//! them, storages per node), update (`vms`/`storage` added or, with
//! `delete`, removed; a guest in another pool moves only with `allow-move`;
//! `Permissions.Modify` or the object's allocate privilege on each object),
//! delete (only when empty). Both forms: `/pools/{poolid}` and the newer
//! `/pools?poolid=`. Errors carry PVE's texts, prefixed as
//! `lock_user_config` prefixes them ("update pools failed: ...").
//! Nested pools (`a/b`) are not simulated: a pool ID with `/` is refused.
//!
//! Owns: the pool handlers. Pools live in the model ([`crate::pve::model::Pool`]).
//! Must not: decide privileges (that is [`super::access`]).

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::access::check::Checker;
use super::model::{Model, Pool};
use super::server::{ApiError, Call, Handlers};
use super::state::PveState;

pub fn register(h: &mut Handlers) {
    h.sync("GET", "/pools", list);
    h.sync("POST", "/pools", create);
    h.sync("PUT", "/pools", update);
    h.sync("DELETE", "/pools", delete);
    h.sync("GET", "/pools/{poolid}", read);
    h.sync("PUT", "/pools/{poolid}", update);
    h.sync("DELETE", "/pools/{poolid}", delete);
}

fn fail(message: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
}

fn no_pool(pool: &str) -> String {
    format!("pool '{pool}' does not exist")
}

/// Pool entries; the `/pools` filter of [`super::access::incode::filter`] drops those without `Pool.Audit`.
fn list(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let wanted = call.opt_str("poolid");
    let kind = call.opt_str("type");
    state.read(|m| {
        if let Some(id) = wanted {
            if !m.pools.contains_key(id) {
                return Err(fail(no_pool(id)));
            }
        }
        Ok(Value::Array(
            m.pools
                .iter()
                .filter(|(id, _)| wanted.is_none_or(|w| w == id.as_str()))
                .map(|(id, p)| {
                    let mut v = json!({ "poolid": id });
                    if let Some(c) = &p.comment {
                        v["comment"] = json!(c);
                    }
                    if wanted.is_some() {
                        v["members"] = members(m, p, kind);
                    }
                    v
                })
                .collect(),
        ))
    })
}

fn members(m: &Model, pool: &Pool, kind: Option<&str>) -> Value {
    let mut out = Vec::new();
    if kind.is_none_or(|k| k == "qemu") {
        for vmid in &pool.vms {
            if let Some(vm) = m.vms.get(vmid) {
                out.push(super::cluster::vm_resource(m, vm));
            }
        }
    }
    if kind.is_none_or(|k| k == "storage") {
        let node = m.nodes.keys().next().cloned().unwrap_or_default();
        for id in &pool.storage {
            if let Some(s) = m.storages.get(id) {
                out.push(super::cluster::storage_resource(m, &node, s));
            }
        }
    }
    Value::Array(out)
}

fn read(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let id = call.str("poolid");
    state.read(|m| {
        let pool = m.pools.get(id).ok_or_else(|| fail(no_pool(id)))?;
        let mut v = json!({ "members": members(m, pool, call.opt_str("type")) });
        if let Some(c) = &pool.comment {
            v["comment"] = json!(c);
        }
        Ok(v)
    })
}

fn create(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let id = call.str("poolid").to_string();
    if id.contains('/') {
        return Err(fail(format!("create pool failed: nested pool '{id}' is not simulated by the lab")));
    }
    state.write(|m| {
        if m.pools.contains_key(&id) {
            return Err(fail(format!("create pool failed: pool '{id}' already exists")));
        }
        let comment = call.opt_str("comment").filter(|c| !c.is_empty()).map(str::to_string);
        m.pools.insert(id, Pool { comment, ..Pool::default() });
        Ok(Value::Null)
    })
}

fn update(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let id = call.str("poolid").to_string();
    let failed = |e: String| fail(format!("update pools failed: {e}"));
    let checker = call.principal.as_ref().map(|p| Checker::new(state, p));
    let vms: Vec<String> = call.opt_str("vms").map(super::validate::formats::split_list).unwrap_or_default();
    let storages: Vec<String> = call.opt_str("storage").map(super::validate::formats::split_list).unwrap_or_default();
    let (delete, allow_move) = (call.flag("delete"), call.flag("allow-move"));
    // Privileges first (they read the model themselves).
    if let Some(c) = &checker {
        for vmid in &vms {
            c.check_perm_modify(&format!("/vms/{vmid}")).map_err(|e| failed(e.message))?;
        }
        for s in &storages {
            c.check_perm_modify(&format!("/storage/{s}")).map_err(|e| failed(e.message))?;
        }
        if allow_move && !delete {
            let others: Vec<String> = state.read(|m| {
                vms.iter()
                    .filter_map(|v| v.parse::<u32>().ok())
                    .filter_map(|v| m.pool_of(v).filter(|p| *p != id).map(str::to_string))
                    .collect()
            });
            for other in others {
                c.check(&format!("/pool/{other}"), &["Pool.Allocate"], false).map_err(|e| failed(e.message))?;
            }
        }
    }
    state.write(|m| {
        let mut pools = m.pools.clone();
        let pool = pools.get_mut(&id).ok_or_else(|| failed(no_pool(&id)))?;
        if let Some(c) = call.opt_str("comment") {
            pool.comment = (!c.is_empty()).then(|| c.to_string());
        }
        for vmid in &vms {
            let n: u32 = vmid.parse().map_err(|_| failed(format!("invalid VMID '{vmid}'")))?;
            if delete {
                if !pool.vms.remove(&n) {
                    return Err(failed(format!("VM {n} is not a pool member")));
                }
                continue;
            }
            if pool.vms.contains(&n) {
                return Err(failed(format!("VM {n} is already a pool member")));
            }
            if let Some(existing) = m.pool_of(n).filter(|p| *p != id) {
                if !allow_move {
                    return Err(failed(format!(
                        "VM {n} belongs already to pool '{existing}' and 'allow-move' is not set"
                    )));
                }
            }
            pool.vms.insert(n);
        }
        for s in &storages {
            if delete {
                if !pool.storage.remove(s) {
                    return Err(failed(format!("Storage '{s}' is not a pool member")));
                }
            } else if !pool.storage.insert(s.clone()) {
                return Err(failed(format!("Storage '{s}' is already a pool member")));
            }
        }
        let moved: Vec<u32> = pool.vms.iter().copied().collect();
        // A guest is in one pool at most (allow-move took it from its old one).
        for (_, p) in pools.iter_mut().filter(|(k, _)| **k != id) {
            p.vms.retain(|v| !moved.contains(v));
        }
        m.pools = pools;
        Ok(Value::Null)
    })
}

fn delete(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let id = call.str("poolid").to_string();
    let failed = |e: String| fail(format!("delete pool failed: {e}"));
    state.write(|m| {
        let pool = m.pools.get(&id).ok_or_else(|| failed(no_pool(&id)))?;
        if let Some(vmid) = pool.vms.iter().find(|v| m.vms.contains_key(v)) {
            return Err(failed(format!("pool '{id}' is not empty (contains VM {vmid})")));
        }
        if let Some(s) = pool.storage.iter().find(|s| m.storages.contains_key(*s)) {
            return Err(failed(format!("pool '{id}' is not empty (contains storage '{s}')")));
        }
        m.pools.remove(&id);
        Ok(Value::Null)
    })
}
