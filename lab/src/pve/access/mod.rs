//! Users, API tokens, roles and ACLs, and the permission checks PVE's
//! `PVE::RPCEnvironment` makes for every call.
//!
//! Layout:
//! - [`roles`]: PVE 9's built-in roles and their privileges.
//! - [`acl`]: the effective privileges of a user or token on a path (ACL
//!   propagation, the most specific path wins, a guest in a pool inherits
//!   `/pool/{id}`, privilege-separated tokens get the intersection with
//!   their user, `root@pam` has every privilege).
//! - [`check`]: the schema's `permissions` object of each endpoint evaluated
//!   in the request pipeline (`perm`, `and`, `or`, `userid-param`,
//!   `perm-modify`, `user: all|world`).
//! - [`incode`]: the checks PVE's handlers make in code where the schema only
//!   describes them, and the silent filtering of list answers.
//! - [`api`]: `/access/permissions`, `/access/users`, `/access/acl`, `/access/roles`.
//!
//! Owns (here): the access part of the lab config ([`AccessConfig`]) and
//! [`Access`], the users, tokens and ACL entries of the running lab.
//! Must not: authenticate (that is [`super::auth`]).

pub mod acl;
pub mod api;
pub mod check;
pub mod incode;
pub mod roles;

use serde::{Deserialize, Serialize};

/// The `access` section of the lab config: users with their tokens, ACL
/// entries and resource pools, as PVE keeps them in `user.cfg`. `root@pam`
/// (password and token `root@pam!lab` from the credentials file) always exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct AccessConfig {
    pub users: Vec<UserConfig>,
    pub acl: Vec<AclConfig>,
    pub pools: Vec<PoolConfig>,
}

impl Default for AccessConfig {
    /// A typical homelab role beside root: `pulumi@pve` may administer VMs
    /// (`PVEVMAdmin` on `/vms`), use storage (`PVEDatastoreUser` on
    /// `/storage`) and attach NICs to the node's bridges (`PVESDNUser` on
    /// `/sdn/zones/localnetwork`, which PVE 8+ requires for any NIC); its
    /// privilege-separated token `pulumi@pve!lab` has the same ACLs. The token's secret comes from the credentials file.
    fn default() -> AccessConfig {
        let acl = |path: &str, role: &str, ugid: &str| AclConfig {
            path: path.into(),
            role: role.into(),
            ugid: ugid.into(),
            propagate: true,
        };
        AccessConfig {
            users: vec![UserConfig {
                userid: LIMITED_USER.into(),
                password: None,
                enable: true,
                comment: Some("least-privilege homelab user".into()),
                tokens: vec![TokenConfig { id: "lab".into(), secret: None, privsep: true, comment: None }],
            }],
            acl: vec![
                acl("/vms", "PVEVMAdmin", LIMITED_USER),
                acl("/storage", "PVEDatastoreUser", LIMITED_USER),
                acl("/sdn/zones/localnetwork", "PVESDNUser", LIMITED_USER),
                acl("/vms", "PVEVMAdmin", LIMITED_TOKEN),
                acl("/storage", "PVEDatastoreUser", LIMITED_TOKEN),
                acl("/sdn/zones/localnetwork", "PVESDNUser", LIMITED_TOKEN),
            ],
            pools: Vec::new(),
        }
    }
}

/// The least-privilege user of the default access config.
pub const LIMITED_USER: &str = "pulumi@pve";
/// Its privilege-separated API token.
pub const LIMITED_TOKEN: &str = "pulumi@pve!lab";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserConfig {
    /// `name@realm`.
    pub userid: String,
    /// A password for `POST /access/ticket` (none: tokens only).
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default = "yes")]
    pub enable: bool,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TokenConfig {
    /// The token name (`lab` in `pulumi@pve!lab`).
    pub id: String,
    /// The secret (a UUID in PVE); none: taken from the credentials file.
    #[serde(default)]
    pub secret: Option<String>,
    /// Privilege separation (PVE's default for new tokens): the token's own
    /// ACLs, intersected with its user's privileges.
    #[serde(default = "yes")]
    pub privsep: bool,
    #[serde(default)]
    pub comment: Option<String>,
}

/// One ACL entry: `role` for `ugid` (a user `name@realm` or a token
/// `name@realm!id`) on `path` (`/`, `/vms/101`, `/pool/prod`, `/storage/local`,
/// `/nodes/pve`, `/mapping/pci/gpu`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AclConfig {
    pub path: String,
    pub role: String,
    pub ugid: String,
    #[serde(default = "yes")]
    pub propagate: bool,
}

/// A resource pool that exists at first start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PoolConfig {
    pub id: String,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub vms: Vec<u32>,
    #[serde(default)]
    pub storage: Vec<String>,
}

fn yes() -> bool {
    true
}

impl AccessConfig {
    /// Consistency: known roles, users and tokens in ACLs, valid paths.
    pub fn check(&self) -> Result<(), String> {
        for (i, u) in self.users.iter().enumerate() {
            if !u.userid.contains('@') || u.userid.contains('!') {
                return Err(format!("access.users[{i}].userid: {:?} is not name@realm", u.userid));
            }
        }
        for (i, a) in self.acl.iter().enumerate() {
            if roles::privileges(&a.role).is_none() {
                return Err(format!(
                    "access.acl[{i}].role: {:?} is not a built-in role ({})",
                    a.role,
                    roles::names().join(", ")
                ));
            }
            if acl::normalize_path(&a.path).is_none() {
                return Err(format!("access.acl[{i}].path: {:?} is not an ACL path", a.path));
            }
            let (user, token) = a.ugid.split_once('!').map_or((a.ugid.as_str(), None), |(u, t)| (u, Some(t)));
            let known = user == "root@pam"
                || self
                    .users
                    .iter()
                    .any(|u| u.userid == user && token.is_none_or(|t| u.tokens.iter().any(|tok| tok.id == t)));
            if !known {
                return Err(format!("access.acl[{i}].ugid: no user or token {:?} in access.users", a.ugid));
            }
        }
        for (i, p) in self.pools.iter().enumerate() {
            if self.pools[..i].iter().any(|q| q.id == p.id) {
                return Err(format!("access.pools[{i}].id: {} appears twice", p.id));
            }
        }
        Ok(())
    }
}

/// One user as the running lab knows it.
#[derive(Debug, Clone)]
pub struct User {
    pub userid: String,
    pub enable: bool,
    pub comment: Option<String>,
    /// Token name → privilege separation.
    pub tokens: Vec<(String, bool)>,
}

/// The running lab's users, tokens and ACL entries (fixed at start).
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub users: Vec<User>,
    pub acl: Vec<AclConfig>,
}

impl Access {
    pub fn new(config: &AccessConfig) -> Access {
        let mut users = vec![User { userid: "root@pam".into(), enable: true, comment: None, tokens: Vec::new() }];
        for u in &config.users {
            users.push(User {
                userid: u.userid.clone(),
                enable: u.enable,
                comment: u.comment.clone(),
                tokens: u.tokens.iter().map(|t| (t.id.clone(), t.privsep)).collect(),
            });
        }
        let acl = config
            .acl
            .iter()
            .map(|a| AclConfig { path: acl::normalize_path(&a.path).unwrap_or_default(), ..a.clone() })
            .collect();
        Access { users, acl }
    }

    pub fn user(&self, userid: &str) -> Option<&User> {
        self.users.iter().find(|u| u.userid == userid)
    }

    /// Whether `who` has root's privileges everywhere: `root@pam` or one of
    /// its tokens without privilege separation.
    pub fn is_root(&self, who: &str) -> bool {
        match who.split_once('!') {
            None => who == "root@pam",
            Some((user, token)) => user == "root@pam" && !self.privsep(user, token),
        }
    }

    /// Whether token `user!id` separates privileges. Tokens the access
    /// config does not declare (such as `root@pam!lab`) carry their user's
    /// full privileges.
    pub fn privsep(&self, user: &str, token: &str) -> bool {
        self.user(user).and_then(|u| u.tokens.iter().find(|(t, _)| t == token)).is_some_and(|(_, p)| *p)
    }
}
