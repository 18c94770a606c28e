//! The `/access` read endpoints a client uses to find out what it may do:
//! `GET /access/permissions` (the caller's effective privileges, or another
//! user's with `Sys.Audit` on `/access`), `/access/users`, `/access/acl`,
//! `/access/roles` and `/access/roles/{roleid}`.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use serde_json::{json, Map, Value};

use super::check::Checker;
use super::{acl, roles};
use crate::pve::server::{ApiError, Call, Handlers, PveState};

pub fn register(h: &mut Handlers) {
    h.sync("GET", "/access", |_, _| {
        let dirs = ["users", "groups", "roles", "acl", "domains", "openid", "tfa", "ticket", "password", "permissions"];
        Ok(Value::Array(dirs.iter().map(|d| json!({ "subdir": d })).collect()))
    });
    h.sync("GET", "/access/permissions", permissions);
    h.sync("GET", "/access/users", users);
    h.sync("GET", "/access/acl", acl_list);
    h.sync("GET", "/access/roles", role_list);
    h.sync("GET", "/access/roles/{roleid}", role);
}

fn who(call: &Call) -> String {
    call.principal.as_ref().map(|p| p.name()).unwrap_or_default()
}

fn checker<'a>(state: &'a PveState, call: &Call) -> Option<Checker<'a>> {
    call.principal.as_ref().map(|p| Checker::new(state, p))
}

/// Paths PVE's `get_effective_permissions` reports: the top-level ones, the ACL paths and
/// the pools' members; each with the privileges (propagation flags are reported as 1).
fn permissions(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let me = who(call);
    let target = call.opt_str("userid").map(str::to_string).unwrap_or_else(|| me.clone());
    let own = target == me || target.split_once('!').is_some_and(|(user, _)| user == me);
    if !own && me != "root@pam" {
        if let Some(c) = checker(state, call) {
            c.check("/access", &["Sys.Audit"], false)?;
        }
    }
    let paths: BTreeSet<String> = match call.opt_str("path") {
        Some(path) => [acl::normalize_path(path).unwrap_or_else(|| path.to_string())].into(),
        None => {
            let mut paths: BTreeSet<String> =
                ["/", "/access", "/access/groups", "/nodes", "/pool", "/sdn", "/storage", "/vms"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
            paths.extend(state.access().acl.iter().map(|a| a.path.clone()));
            state.read(|m| {
                for pool in m.pools.values() {
                    paths.extend(pool.vms.iter().map(|v| format!("/vms/{v}")));
                    paths.extend(pool.storage.iter().map(|s| format!("/storage/{s}")));
                }
            });
            paths
        }
    };
    let mut out = Map::new();
    state.read(|m| {
        for path in paths {
            let privs = acl::permissions(state.access(), m, &target, &path);
            if !privs.is_empty() || call.params.contains_key("path") {
                out.insert(path, Value::Object(privs.into_iter().map(|p| (p.to_string(), json!(1))).collect()));
            }
        }
    });
    Ok(Value::Object(out))
}

fn users(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let me = who(call);
    let me_user = me.split('!').next().unwrap_or("").to_string();
    let all = me == "root@pam"
        || checker(state, call).is_some_and(|c| c.allowed("/access/groups", &["User.Modify", "Sys.Audit"], true));
    let full = call.flag("full");
    let enabled = call.params.get("enabled").map(|_| call.flag("enabled"));
    let mut out = Vec::new();
    for u in &state.access().users {
        if !(all || u.userid == me_user) || enabled.is_some_and(|e| e != u.enable) {
            continue;
        }
        let realm = u.userid.rsplit_once('@').map(|(_, r)| r).unwrap_or("");
        let mut v = json!({
            "userid": u.userid, "enable": u8::from(u.enable), "expire": 0,
            "realm-type": if realm == "pam" { "pam" } else { "pve" },
        });
        if let Some(c) = &u.comment {
            v["comment"] = json!(c);
        }
        if full {
            v["groups"] = json!("");
            v["tokens"] = Value::Array(
                u.tokens
                    .iter()
                    .map(|(id, privsep)| json!({ "tokenid": id, "privsep": u8::from(*privsep), "expire": 0 }))
                    .collect(),
            );
        }
        out.push(v);
    }
    Ok(Value::Array(out))
}

fn acl_list(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let c = checker(state, call);
    let audit = who(call) == "root@pam" || c.as_ref().is_some_and(|c| c.allowed("/access", &["Sys.Audit"], false));
    Ok(Value::Array(
        state
            .access()
            .acl
            .iter()
            .filter(|a| audit || c.as_ref().is_some_and(|c| c.check_perm_modify(&a.path).is_ok()))
            .map(|a| {
                json!({
                    "path": a.path, "ugid": a.ugid, "roleid": a.role, "propagate": u8::from(a.propagate),
                    "type": if a.ugid.contains('!') { "token" } else { "user" },
                })
            })
            .collect(),
    ))
}

fn role_list(_: &PveState, _: &Call) -> Result<Value, ApiError> {
    Ok(Value::Array(
        roles::names()
            .into_iter()
            .map(|r| {
                let privs: Vec<&str> = roles::privileges(&r).unwrap_or_default().into_iter().collect();
                json!({ "roleid": r, "privs": privs.join(","), "special": 1 })
            })
            .collect(),
    ))
}

fn role(_: &PveState, call: &Call) -> Result<Value, ApiError> {
    let id = call.str("roleid");
    let privs = roles::privileges(id)
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("role '{id}' does not exist")))?;
    Ok(Value::Object(privs.into_iter().map(|p| (p.to_string(), json!(1))).collect()))
}
