//! PVE 9's built-in roles, made as pve-access-control's `create_roles` makes
//! them: privileges in categories (VM, Sys, Datastore, SDN, User, Pool,
//! Mapping), each split into root-only, admin, user and audit groups.
//! `PVE<Cat>Admin` gets a category's admin, user and audit privileges,
//! `PVE<Cat>User` its user and audit ones (only for categories that have user
//! privileges), `PVEAuditor` every audit privilege, `PVEAdmin` everything but
//! the root-only ones, `Administrator` everything, `NoAccess` nothing,
//! `PVETemplateUser` `VM.Clone` and `VM.Audit`.

use std::collections::BTreeSet;

struct Category {
    name: &'static str,
    root: &'static [&'static str],
    admin: &'static [&'static str],
    user: &'static [&'static str],
    audit: &'static [&'static str],
}

const CATEGORIES: &[Category] = &[
    Category {
        name: "VM",
        root: &[],
        admin: &[
            "VM.Config.Disk",
            "VM.Config.CPU",
            "VM.Config.Memory",
            "VM.Config.Network",
            "VM.Config.HWType",
            "VM.Config.Options",
            "VM.Allocate",
            "VM.Clone",
            "VM.Migrate",
            "VM.Replicate",
            "VM.Snapshot",
            "VM.Snapshot.Rollback",
            "VM.GuestAgent.FileRead",
            "VM.GuestAgent.FileWrite",
            "VM.GuestAgent.FileSystemMgmt",
            "VM.GuestAgent.Unrestricted",
        ],
        user: &[
            "VM.Config.CDROM",
            "VM.Config.Cloudinit",
            "VM.Console",
            "VM.Backup",
            "VM.PowerMgmt",
            "VM.GuestAgent.Audit",
        ],
        audit: &["VM.Audit"],
    },
    Category {
        name: "Sys",
        root: &["Sys.PowerMgmt", "Sys.Modify", "Sys.Incoming", "Sys.AccessNetwork"],
        admin: &["Permissions.Modify", "Sys.Console", "Sys.Syslog"],
        user: &[],
        audit: &["Sys.Audit"],
    },
    Category {
        name: "Datastore",
        root: &[],
        admin: &["Datastore.Allocate", "Datastore.AllocateTemplate"],
        user: &["Datastore.AllocateSpace"],
        audit: &["Datastore.Audit"],
    },
    Category {
        name: "SDN",
        root: &[],
        admin: &["SDN.Allocate", "SDN.Audit"],
        user: &["SDN.Use"],
        audit: &["SDN.Audit"],
    },
    Category {
        name: "User",
        root: &["Realm.Allocate"],
        admin: &["User.Modify", "Group.Allocate", "Realm.AllocateUser"],
        user: &[],
        audit: &[],
    },
    Category { name: "Pool", root: &[], admin: &["Pool.Allocate"], user: &["Pool.Audit"], audit: &["Pool.Audit"] },
    Category {
        name: "Mapping",
        root: &[],
        admin: &["Mapping.Modify"],
        user: &["Mapping.Use"],
        audit: &["Mapping.Audit"],
    },
];

/// Every privilege PVE knows.
pub fn all_privileges() -> BTreeSet<&'static str> {
    CATEGORIES.iter().flat_map(|c| c.root.iter().chain(c.admin).chain(c.user).chain(c.audit).copied()).collect()
}

/// The privileges of built-in role `role`, or `None` for a role PVE does not have.
pub fn privileges(role: &str) -> Option<BTreeSet<&'static str>> {
    let non_root = |c: &Category| c.admin.iter().chain(c.user).chain(c.audit).copied().collect::<Vec<_>>();
    let set: BTreeSet<&'static str> = match role {
        "Administrator" => all_privileges(),
        "NoAccess" => BTreeSet::new(),
        "PVEAdmin" => CATEGORIES.iter().flat_map(non_root).collect(),
        "PVEAuditor" => CATEGORIES.iter().flat_map(|c| c.audit.iter().copied()).collect(),
        "PVETemplateUser" => ["VM.Clone", "VM.Audit"].into_iter().collect(),
        _ => {
            let (cat, kind) = role.strip_prefix("PVE").and_then(|r| {
                r.strip_suffix("Admin").map(|c| (c, "Admin")).or_else(|| r.strip_suffix("User").map(|c| (c, "User")))
            })?;
            let c = CATEGORIES.iter().find(|c| c.name == cat)?;
            match kind {
                "Admin" => non_root(c).into_iter().collect(),
                _ if !c.user.is_empty() => c.user.iter().chain(c.audit).copied().collect(),
                _ => return None,
            }
        }
    };
    Some(set)
}

/// The built-in role names, sorted.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = ["Administrator", "NoAccess", "PVEAdmin", "PVEAuditor", "PVETemplateUser"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for c in CATEGORIES {
        names.push(format!("PVE{}Admin", c.name));
        if !c.user.is_empty() {
            names.push(format!("PVE{}User", c.name));
        }
    }
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_roles_are_pves() {
        let expected = [
            "Administrator",
            "NoAccess",
            "PVEAdmin",
            "PVEAuditor",
            "PVEDatastoreAdmin",
            "PVEDatastoreUser",
            "PVEMappingAdmin",
            "PVEMappingUser",
            "PVEPoolAdmin",
            "PVEPoolUser",
            "PVESDNAdmin",
            "PVESDNUser",
            "PVESysAdmin",
            "PVETemplateUser",
            "PVEUserAdmin",
            "PVEVMAdmin",
            "PVEVMUser",
        ];
        assert_eq!(names(), expected);
        let vm_user = privileges("PVEVMUser").unwrap();
        assert!(vm_user.contains("VM.PowerMgmt") && vm_user.contains("VM.Audit"));
        assert!(!vm_user.contains("VM.Allocate"));
        let ds_user = privileges("PVEDatastoreUser").unwrap();
        assert_eq!(ds_user, ["Datastore.AllocateSpace", "Datastore.Audit"].into_iter().collect());
        assert!(!privileges("PVEAdmin").unwrap().contains("Sys.Modify"));
        assert!(privileges("Administrator").unwrap().contains("Sys.Modify"));
        assert!(privileges("PVESysUser").is_none());
    }

    #[test]
    fn the_privileges_are_the_47_of_the_pve_9_schema() {
        // The properties of `GET /access/roles/{roleid}`'s answer in PVE 9.1's API schema.
        let schema = "Datastore.Allocate Datastore.AllocateSpace Datastore.AllocateTemplate Datastore.Audit \
            Group.Allocate Mapping.Audit Mapping.Modify Mapping.Use Permissions.Modify Pool.Allocate Pool.Audit \
            Realm.Allocate Realm.AllocateUser SDN.Allocate SDN.Audit SDN.Use Sys.AccessNetwork Sys.Audit \
            Sys.Console Sys.Incoming Sys.Modify Sys.PowerMgmt Sys.Syslog User.Modify VM.Allocate VM.Audit \
            VM.Backup VM.Clone VM.Config.CDROM VM.Config.CPU VM.Config.Cloudinit VM.Config.Disk \
            VM.Config.HWType VM.Config.Memory VM.Config.Network VM.Config.Options VM.Console \
            VM.GuestAgent.Audit VM.GuestAgent.FileRead VM.GuestAgent.FileSystemMgmt VM.GuestAgent.FileWrite \
            VM.GuestAgent.Unrestricted VM.Migrate VM.PowerMgmt VM.Replicate VM.Snapshot VM.Snapshot.Rollback";
        let expected: BTreeSet<&str> = schema.split_whitespace().collect();
        assert_eq!(expected.len(), 47);
        assert_eq!(all_privileges(), expected);
    }
}
