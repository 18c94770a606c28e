//! The HA read side (`/cluster/ha/...`), answering as pve-ha-manager (PVE 9)
//! does on a cluster where HA manages nothing: no resources, no groups, no
//! rules, a manager status without a master, and the quorum entry of
//! `status/current`.
//!
//! Owns: the HA GET endpoints and PVE's `parse_sid` rules (`101` alone means
//! `vm:101` when VM 101 exists, else "unable do detect SID from VMID - VM/CT
//! 101 does not exist"; anything else must be `type:name`).
//! Must not: change anything; creating HA resources, groups and rules is a
//! later issue (those methods answer the lab's 501).

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::server::{ApiError, Call, Handlers};
use super::state::PveState;

pub fn register(h: &mut Handlers) {
    h.sync("GET", "/cluster/ha", |_, _| {
        Ok(json!([{ "id": "status" }, { "id": "resources" }, { "id": "groups" }, { "id": "rules" }]))
    });
    h.sync("GET", "/cluster/ha/resources", |_, _| Ok(json!([])));
    h.sync("GET", "/cluster/ha/resources/{sid}", read_resource);
    h.sync("GET", "/cluster/ha/groups", |_, _| Ok(json!([])));
    h.sync("GET", "/cluster/ha/groups/{group}", read_group);
    h.sync("GET", "/cluster/ha/rules", |_, _| Ok(json!([])));
    h.sync("GET", "/cluster/ha/rules/{rule}", read_rule);
    h.sync("GET", "/cluster/ha/status", |_, _| Ok(json!([{ "name": "current" }, { "name": "manager_status" }])));
    h.sync("GET", "/cluster/ha/status/current", status_current);
    h.sync("GET", "/cluster/ha/status/manager_status", manager_status);
}

fn fail(message: String) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
}

/// PVE's `parse_sid`: the full SID (`vm:101`), its type and name.
pub fn parse_sid(state: &PveState, sid: &str) -> Result<(String, String, String), ApiError> {
    if !sid.is_empty() && sid.bytes().all(|b| b.is_ascii_digit()) {
        let exists = sid.parse::<u32>().is_ok_and(|vmid| state.read(|m| m.vms.contains_key(&vmid)));
        if !exists {
            return Err(fail(format!("unable do detect SID from VMID - VM/CT {sid} does not exist")));
        }
        return Ok((format!("vm:{sid}"), "vm".into(), sid.to_string()));
    }
    match sid.split_once(':') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() && !sid.contains(char::is_whitespace) => {
            Ok((sid.to_string(), kind.to_string(), name.to_string()))
        }
        _ => Err(fail(format!("unable to parse service id '{sid}'"))),
    }
}

/// No resource is HA-managed: every well-formed SID is "no such resource".
fn read_resource(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let (sid, _, _) = parse_sid(state, call.str("sid"))?;
    Err(fail(format!("no such resource '{sid}'")))
}

fn read_group(_: &PveState, call: &Call) -> Result<Value, ApiError> {
    Err(fail(format!("no such ha group '{}'", call.str("group"))))
}

fn read_rule(_: &PveState, call: &Call) -> Result<Value, ApiError> {
    Err(fail(format!("no such ha rule '{}'", call.str("rule"))))
}

/// The node answering (the lab's first node).
fn local_node(state: &PveState) -> String {
    state.nodes().into_iter().next().unwrap_or_else(|| super::server::DEFAULT_NODE.to_string())
}

/// Only the quorum entry: no CRM master, no LRM, no services.
fn status_current(state: &PveState, _: &Call) -> Result<Value, ApiError> {
    Ok(json!([{ "id": "quorum", "type": "quorum", "node": local_node(state), "status": "OK", "quorate": 1 }]))
}

fn manager_status(state: &PveState, _: &Call) -> Result<Value, ApiError> {
    Ok(json!({ "manager_status": {}, "quorum": { "node": local_node(state), "quorate": 1 } }))
}
