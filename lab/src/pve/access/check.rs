//! The permission step of the request pipeline, as PVE's
//! `check_api2_permissions` runs it before a handler: the schema's
//! `permissions` object of the endpoint (`check: ["perm", path, [privs],
//! "any", 1, "require_param", "pool"]`, `["and", ...]`, `["or", ...]`,
//! `["userid-param", "self"]`, `["perm-modify", path]`, `user: "all"` or
//! `"world"`; no object: root only); then, for the endpoints whose schema
//! only describes the check in prose, the check PVE's handler makes in code
//! ([`super::incode`]); after the handler, the silent filtering of list answers
//! ([`super::incode::filter`]). Refusals are `403 Permission check failed (/vms/101, VM.Audit)`.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::acl;
use crate::pve::auth::Principal;
use crate::pve::model::Model;
use crate::pve::server::{ApiError, PveState};

/// Who is asking, with the state to answer questions about privileges.
pub struct Checker<'a> {
    pub state: &'a PveState,
    /// `user@realm` or `user@realm!token`.
    pub who: String,
}

/// PVE's `raise_perm_exc`.
pub fn denied(what: Option<String>) -> ApiError {
    let message = match what {
        Some(what) => format!("Permission check failed ({what})"),
        None => "Permission check failed".to_string(),
    };
    ApiError::new(StatusCode::FORBIDDEN, message)
}

impl Checker<'_> {
    pub fn new<'a>(state: &'a PveState, principal: &Principal) -> Checker<'a> {
        Checker { state, who: principal.name() }
    }

    fn with_model<R>(&self, f: impl FnOnce(&Model) -> R) -> R {
        self.state.read(f)
    }

    /// Whether `who` has all of `privs` (any of them with `any`) on `path`.
    pub fn allowed(&self, path: &str, privs: &[&str], any: bool) -> bool {
        let path = acl::normalize_path(path).unwrap_or_else(|| path.to_string());
        let have = self.with_model(|m| acl::permissions(self.state.access(), m, &self.who, &path));
        if any {
            privs.iter().any(|p| have.contains(p))
        } else {
            privs.iter().all(|p| have.contains(p))
        }
    }

    /// PVE's `check_full`: `check` names the first missing privilege,
    /// `check_any` all of them joined by `|`.
    pub fn check(&self, path: &str, privs: &[&str], any: bool) -> Result<(), ApiError> {
        let norm = acl::normalize_path(path).unwrap_or_else(|| path.to_string());
        let have = self.with_model(|m| acl::permissions(self.state.access(), m, &self.who, &norm));
        if any {
            if privs.iter().any(|p| have.contains(p)) {
                return Ok(());
            }
            return Err(denied(Some(format!("{norm}, {}", privs.join("|")))));
        }
        match privs.iter().find(|p| !have.contains(*p)) {
            None => Ok(()),
            Some(p) => Err(denied(Some(format!("{norm}, {p}")))),
        }
    }

    /// PVE's `check_perm_modify`.
    pub fn check_perm_modify(&self, path: &str) -> Result<(), ApiError> {
        let norm = acl::normalize_path(path).unwrap_or_else(|| path.to_string());
        let mut privs = vec!["Permissions.Modify"];
        if norm.starts_with("/storage/") {
            privs.push("Datastore.Allocate");
        } else if norm.starts_with("/vms/") {
            privs.push("VM.Allocate");
        } else if norm.starts_with("/pool/") {
            privs.push("Pool.Allocate");
        }
        self.check(&norm, &privs, true)
    }

    /// `exec_api2_perm_check`: `Ok(false)` only with `noerr`.
    fn exec(&self, check: &Value, params: &Map<String, Value>, noerr: bool) -> Result<bool, ApiError> {
        let items = check.as_array().cloned().unwrap_or_default();
        let test = items.first().and_then(Value::as_str).unwrap_or("");
        let fail = |e: ApiError| if noerr { Ok(false) } else { Err(e) };
        match test {
            "or" => {
                for sub in &items[1..] {
                    if self.exec(sub, params, true)? {
                        return Ok(true);
                    }
                }
                fail(denied(None))
            }
            // PVE runs an `and`'s parts without `noerr`: the first refusal is the answer.
            "and" => {
                for sub in &items[1..] {
                    self.exec(sub, params, false)?;
                }
                Ok(true)
            }
            "perm" => {
                let template = items.get(1).and_then(Value::as_str).unwrap_or("/");
                let privs: Vec<&str> =
                    items.get(2).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
                let options = &items[3.min(items.len())..];
                let option = |name: &str| {
                    options.chunks(2).find(|kv| kv[0].as_str() == Some(name)).and_then(|kv| kv.get(1)).cloned()
                };
                let any = option("any").is_some_and(|v| v.as_i64() == Some(1) || v.as_bool() == Some(true));
                if let Some(required) = option("require_param").and_then(|v| v.as_str().map(str::to_string)) {
                    if !params.contains_key(&required) {
                        return fail(denied(None));
                    }
                }
                let path = template_replace(template, params);
                match self.check(&path, &privs, any) {
                    Ok(()) => Ok(true),
                    Err(e) => fail(e),
                }
            }
            "perm-modify" => {
                let path = template_replace(items.get(1).and_then(Value::as_str).unwrap_or("/"), params);
                match self.check_perm_modify(&path) {
                    Ok(()) => Ok(true),
                    Err(e) => fail(e),
                }
            }
            "userid-param" => {
                let userid = params.get("userid").and_then(Value::as_str).unwrap_or("");
                match items.get(1).and_then(Value::as_str) {
                    Some("self") if userid == self.who => Ok(true),
                    Some("self") => fail(denied(None)),
                    Some(privilege) => {
                        let realm = userid.rsplit_once('@').map(|(_, r)| r).unwrap_or("");
                        match self.check(&format!("/access/realm/{realm}"), &[privilege], false) {
                            Ok(()) => Ok(true),
                            Err(e) => fail(e),
                        }
                    }
                    None => fail(denied(None)),
                }
            }
            "userid-group" => {
                let privs: Vec<&str> =
                    items.get(1).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
                match self.check("/access/groups", &privs, true) {
                    Ok(()) => Ok(true),
                    Err(e) => fail(e),
                }
            }
            _ => fail(denied(None)),
        }
    }
}

/// PVE's `template_replace`: `{name}` → the parameter's value.
fn template_replace(template: &str, params: &Map<String, Value>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else { break };
        let name = &rest[start + 1..start + end];
        match params.get(name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(Value::Number(n)) => out.push_str(&n.to_string()),
            Some(other) => out.push_str(&other.to_string()),
            None => {}
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

/// The schema's `permissions` for a call, checked as PVE's
/// `check_api2_permissions` does, before parameter verification (with the
/// raw parameters: path, query and body).
pub fn check_schema(
    state: &PveState,
    principal: Option<&Principal>,
    permissions: Option<&Value>,
    params: &Map<String, Value>,
) -> Result<(), ApiError> {
    let world = permissions.and_then(|p| p.get("user")).and_then(Value::as_str) == Some("world");
    let Some(principal) = principal else {
        return if world { Ok(()) } else { Err(denied(Some("user != null".into()))) };
    };
    if principal.name() == "root@pam" {
        return Ok(());
    }
    let Some(permissions) = permissions.filter(|p| p.is_object()) else {
        // Only root@pam itself passes an endpoint without permissions, not its tokens.
        return Err(denied(Some("user != root@pam".into())));
    };
    if matches!(permissions.get("user").and_then(Value::as_str), Some("all" | "world"))
        || state.access().is_root(&principal.name())
    {
        return Ok(());
    }
    let Some(check) = permissions.get("check") else { return Err(denied(None)) };
    if Checker::new(state, principal).exec(check, params, false)? {
        Ok(())
    } else {
        Err(denied(None))
    }
}

/// The in-code checks of PVE's handler, after verification ([`super::incode::check`]).
pub fn check_in_code(
    state: &PveState,
    principal: Option<&Principal>,
    method: &str,
    template: &str,
    params: &Map<String, Value>,
) -> Result<(), ApiError> {
    match principal {
        Some(p) if !state.access().is_root(&p.name()) => {
            super::incode::check(&Checker::new(state, p), method, template, params)
        }
        _ => Ok(()),
    }
}
