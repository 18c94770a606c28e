//! Effective privileges, computed as pve-access-control computes them.
//!
//! `roles` (PVE's `PVE::AccessControl::roles`): ACL paths from `/` down to
//! the path asked about, in sorted order; at each, the entries for the token
//! (for a privilege-separated token) or the user replace what was found
//! above, provided the entry propagates or is on the path itself; `NoAccess`
//! wins over everything. `permissions` (`PVE::RPCEnvironment::permissions`):
//! `root@pam` has every privilege; a pool member's path (`/vms/{vmid}`,
//! `/storage/{id}`) also gets the roles on its pool's path; a token without privilege separation has its user's
//! privileges, one with it the intersection of its own and its user's.

use std::collections::{BTreeMap, BTreeSet};

use super::roles;
use super::Access;
use crate::pve::model::Model;

/// PVE's `normalize_path`: repeated and trailing slashes removed, a leading
/// one added; `None` for characters outside `[[:alnum:]._/-]`.
pub fn normalize_path(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    let mut p: String = String::with_capacity(path.len() + 1);
    for c in path.chars() {
        if c == '/' && p.ends_with('/') {
            continue;
        }
        p.push(c);
    }
    while p.len() > 1 && p.ends_with('/') {
        p.pop();
    }
    if p.is_empty() {
        p.push('/');
    }
    if !p.starts_with('/') {
        p.insert(0, '/');
    }
    p.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c)).then_some(p)
}

/// The roles of `ugid` (a user, or a token ID for a privilege-separated
/// token) on `path`, with their propagate flags.
fn roles_on(access: &Access, ugid: &str, path: &str) -> BTreeMap<String, bool> {
    let mut roles = BTreeMap::new();
    let mut paths: Vec<&str> = access.acl.iter().map(|a| a.path.as_str()).collect();
    paths.sort();
    paths.dedup();
    for p in paths {
        let last = p == path;
        if !(p == "/" || last || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/'))) {
            continue;
        }
        let found: BTreeMap<String, bool> = access
            .acl
            .iter()
            .filter(|a| a.path == p && a.ugid == ugid && (last || a.propagate))
            .map(|a| (a.role.clone(), a.propagate))
            .collect();
        if !found.is_empty() {
            roles = found;
        }
    }
    if let Some(p) = roles.get("NoAccess").copied() {
        return [("NoAccess".to_string(), p)].into();
    }
    roles
}

/// The roles a guest's or storage's path gets from the pools holding it
/// (the roles on `/pool/{id}`, for that exact path only).
fn pool_roles(access: &Access, model: &Model, ugid: &str, path: &str) -> BTreeMap<String, bool> {
    let mut roles = BTreeMap::new();
    for (id, pool) in &model.pools {
        let member = match path.strip_prefix("/vms/") {
            Some(vmid) => vmid.parse::<u32>().is_ok_and(|v| pool.vms.contains(&v)),
            None => path.strip_prefix("/storage/").is_some_and(|s| pool.storage.contains(s)),
        };
        if member {
            roles.extend(roles_on(access, ugid, &format!("/pool/{id}")).into_keys().map(|r| (r, false)));
        }
    }
    roles
}

/// PVE's `compile_acl_path`: the roles on `path` plus those its pools give
/// it (a `NoAccess` on the path wins; a pool's `NoAccess` wins over the
/// path's other roles), as privileges.
fn compute(access: &Access, model: &Model, ugid: &str, path: &str) -> BTreeSet<&'static str> {
    let mut roles = roles_on(access, ugid, path);
    let from_pools = pool_roles(access, model, ugid, path);
    if !from_pools.is_empty() && !roles.contains_key("NoAccess") {
        if from_pools.contains_key("NoAccess") {
            roles = [("NoAccess".to_string(), false)].into();
        } else {
            for role in from_pools.into_keys() {
                roles.entry(role).or_insert(false);
            }
        }
    }
    roles.keys().filter_map(|r| roles::privileges(r)).flatten().collect()
}

/// The privileges `who` (`user@realm` or `user@realm!token`) has on `path`.
pub fn permissions(access: &Access, model: &Model, who: &str, path: &str) -> BTreeSet<&'static str> {
    if who == "root@pam" {
        return roles::all_privileges();
    }
    if let Some((user, token)) = who.split_once('!') {
        let user_privs = permissions(access, model, user, path);
        if !access.privsep(user, token) {
            return user_privs;
        }
        return compute(access, model, who, path).intersection(&user_privs).copied().collect();
    }
    if !access.user(who).is_some_and(|u| u.enable) {
        return BTreeSet::new();
    }
    compute(access, model, who, path)
}

#[cfg(test)]
mod tests {
    use super::super::{AccessConfig, AclConfig, TokenConfig, UserConfig};
    use super::*;

    fn access(acl: &[(&str, &str, &str, bool)]) -> Access {
        let user = |id: &str| UserConfig {
            userid: id.into(),
            password: None,
            enable: true,
            comment: None,
            tokens: vec![
                TokenConfig { id: "sep".into(), secret: None, privsep: true, comment: None },
                TokenConfig { id: "full".into(), secret: None, privsep: false, comment: None },
            ],
        };
        Access::new(&AccessConfig {
            users: vec![user("u@pve")],
            acl: acl
                .iter()
                .map(|(path, role, ugid, propagate)| AclConfig {
                    path: path.to_string(),
                    role: role.to_string(),
                    ugid: ugid.to_string(),
                    propagate: *propagate,
                })
                .collect(),
            pools: vec![],
        })
    }

    #[test]
    fn the_most_specific_path_wins_and_propagation_is_honoured() {
        let a = access(&[
            ("/", "PVEAuditor", "u@pve", true),
            ("/vms/101", "NoAccess", "u@pve", true),
            ("/storage", "PVEDatastoreUser", "u@pve", false),
        ]);
        let m = Model::default();
        assert!(permissions(&a, &m, "u@pve", "/vms/100").contains("VM.Audit"));
        assert!(permissions(&a, &m, "u@pve", "/vms/101").is_empty());
        // Not propagated: only /storage itself.
        assert!(permissions(&a, &m, "u@pve", "/storage").contains("Datastore.AllocateSpace"));
        let local = permissions(&a, &m, "u@pve", "/storage/local");
        assert!(local.contains("Datastore.Audit") && !local.contains("Datastore.AllocateSpace"));
        assert_eq!(normalize_path("//vms//101/").as_deref(), Some("/vms/101"));
    }

    #[test]
    fn tokens_pools_and_root() {
        let a = access(&[
            ("/vms", "PVEVMAdmin", "u@pve", true),
            ("/vms", "PVEVMUser", "u@pve!sep", true),
            ("/pool/prod", "PVEVMUser", "u@pve", true),
        ]);
        let mut m = Model::default();
        m.pools.insert("prod".into(), Default::default());
        m.add_vm_to_pool(200, "prod");
        let sep = permissions(&a, &m, "u@pve!sep", "/vms/100");
        assert!(sep.contains("VM.PowerMgmt") && !sep.contains("VM.Allocate"));
        assert!(permissions(&a, &m, "u@pve!full", "/vms/100").contains("VM.Allocate"));
        // A guest in a pool gets the pool's roles too.
        let b = access(&[("/pool/prod", "PVEVMUser", "u@pve", true)]);
        assert!(permissions(&b, &m, "u@pve", "/vms/200").contains("VM.Audit"));
        assert!(permissions(&b, &m, "u@pve", "/vms/100").is_empty());
        // A storage in a pool too; a NoAccess on the guest itself wins over the pool.
        m.pools.get_mut("prod").unwrap().storage.insert("local".into());
        let pool_storage = access(&[("/pool/prod", "PVEDatastoreUser", "u@pve", true)]);
        assert!(permissions(&pool_storage, &m, "u@pve", "/storage/local").contains("Datastore.AllocateSpace"));
        let denied = access(&[("/pool/prod", "PVEVMUser", "u@pve", true), ("/vms/200", "NoAccess", "u@pve", true)]);
        assert!(permissions(&denied, &m, "u@pve", "/vms/200").is_empty());
        assert!(permissions(&b, &m, "root@pam", "/anything").contains("Sys.Modify"));
        assert!(permissions(&b, &m, "nobody@pve", "/").is_empty());
    }
}
