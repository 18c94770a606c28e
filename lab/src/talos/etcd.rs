//! etcd membership in the lab. A control plane is a member of its cluster's etcd while its disk
//! holds etcd data (`TalosInstall::etcd`: it bootstrapped, or joined a bootstrapped cluster),
//! whether its VM runs or not; a member is *started* while its node is up and its etcd was not
//! stopped by a leave. `EtcdLeaveCluster` and `EtcdRemoveMemberByID` follow etcd's strict
//! reconfiguration check: the members that remain must hold a quorum of started members, so the
//! last member never leaves and a removal never costs the cluster its quorum. A member that
//! leaves loses its etcd data (Talos wipes the directory) and stays out until its node boots
//! again, when it joins like a new control plane.
//!
//! Owns: [`Member`], the roster and the two membership changes. Must not: speak gRPC beyond
//! the `Status` it returns.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use tonic::Status;

use super::node::{self, Image, Node};
use super::{machine_config, TalosNodes};
use crate::pve::model::Model;
use crate::pve::qemu::agent;

/// One member of a cluster's etcd.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub vmid: u32,
    pub hostname: String,
    /// The peer address: the live listener's, else the configuration's static address.
    pub address: Option<Ipv4Addr>,
    pub started: bool,
}

/// etcd's answer when a membership change would leave too few started members.
pub const NOT_ENOUGH_STARTED: &str = "etcdserver: re-configuration failed due to not enough started members";

/// The members of `cluster_id`'s etcd, up or down.
fn roster(nodes: &BTreeMap<u32, Node>, m: &Model, cluster_id: &str) -> Vec<Member> {
    let mut out = Vec::new();
    for vm in m.vms.values() {
        if let Some(n) = nodes.get(&vm.vmid) {
            let Some(c) = n.config() else { continue };
            if c.cluster_id == cluster_id && c.machine_type.is_control_plane() && n.install(m).is_some_and(|i| i.etcd) {
                let address = n.listener_key.as_ref().map(|k| k.address).or(c.static_address);
                let started = n.listener.is_some() && !n.etcd_stopped;
                out.push(Member { vmid: vm.vmid, hostname: n.hostname(), address, started });
            }
            continue;
        }
        // Not running: what its disk holds.
        let Some(install) = node::system_disk(m, vm).and_then(|d| m.volumes.get(&d)?.talos.clone()) else {
            continue;
        };
        if !install.etcd {
            continue;
        }
        let mode = agent::guest_os(m, vm).map(|o| Image::from_origin(&o).mode).unwrap_or(machine_config::Mode::Cloud);
        let Ok(Some(c)) = machine_config::load(&install.config, mode) else { continue };
        if c.cluster_id == cluster_id && c.machine_type.is_control_plane() {
            let hostname = c.hostname.clone().unwrap_or_else(|| node::stable_hostname(vm.vmid));
            out.push(Member { vmid: vm.vmid, hostname, address: c.static_address, started: false });
        }
    }
    out
}

/// etcd's strict reconfiguration check for removing `vmid` from `roster`; before it, a change
/// needs a leader, which needs a quorum of started members now.
fn check_quorum_after_removing(roster: &[Member], vmid: u32) -> Result<(), Status> {
    if roster.iter().filter(|m| m.started).count() < roster.len() / 2 + 1 {
        return Err(Status::unavailable("etcdserver: no leader"));
    }
    let remaining: Vec<&Member> = roster.iter().filter(|m| m.vmid != vmid).collect();
    let started = remaining.iter().filter(|m| m.started).count();
    if remaining.is_empty() || started < remaining.len() / 2 + 1 {
        return Err(Status::failed_precondition(NOT_ENOUGH_STARTED));
    }
    Ok(())
}

/// `vmid` is no member any more: its etcd data is gone and, if it runs, its etcd stops.
fn drop_member(nodes: &mut BTreeMap<u32, Node>, m: &mut Model, vmid: u32) {
    if let Some(n) = nodes.get_mut(&vmid) {
        n.update_install(m, |i| {
            if let Some(i) = i {
                i.etcd = false;
            }
        });
        n.etcd_stopped = true;
        return;
    }
    let disk = m.vms.get(&vmid).and_then(|vm| node::system_disk(m, vm));
    if let Some(install) = disk.and_then(|d| m.volumes.get_mut(&d)).and_then(|v| v.talos.as_mut()) {
        install.etcd = false;
    }
}

/// The member ID etcd gave a node of a cluster (stable in the lab).
pub fn member_id(cluster_id: &str, vmid: u32) -> u64 {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(format!("{cluster_id}/{vmid}").as_bytes());
    u64::from_be_bytes(h[..8].try_into().unwrap_or_default())
}

impl TalosNodes {
    /// Every member of the cluster's etcd, up or down.
    pub(super) fn etcd_roster(&self, cluster_id: &str) -> Vec<Member> {
        let nodes = self.lock();
        self.pve().read(|m| roster(&nodes, m, cluster_id))
    }

    /// `EtcdLeaveCluster` on `vmid`: its member leaves, its etcd stops and its data is wiped.
    pub(super) fn etcd_leave(&self, vmid: u32, cluster_id: &str) -> Result<(), Status> {
        let mut nodes = self.lock();
        self.pve().write(|m| {
            let roster = roster(&nodes, m, cluster_id);
            if !roster.iter().any(|r| r.vmid == vmid && r.started) {
                return Err(Status::failed_precondition("etcd is not running on this node"));
            }
            check_quorum_after_removing(&roster, vmid)
                .map_err(|s| Status::new(s.code(), format!("failed to leave cluster: {}", s.message())))?;
            drop_member(&mut nodes, m, vmid);
            Ok(())
        })
    }

    /// `EtcdRemoveMemberByID` through a member of `cluster_id`: the member `id` is removed (its
    /// node may be down).
    pub(super) fn etcd_remove_member(&self, cluster_id: &str, id: u64) -> Result<(), Status> {
        let mut nodes = self.lock();
        self.pve().write(|m| {
            let roster = roster(&nodes, m, cluster_id);
            let Some(member) = roster.iter().find(|r| member_id(cluster_id, r.vmid) == id) else {
                return Err(Status::not_found("etcdserver: member not found"));
            };
            check_quorum_after_removing(&roster, member.vmid)?;
            drop_member(&mut nodes, m, member.vmid);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(vmid: u32, started: bool) -> Member {
        Member { vmid, hostname: format!("cp{vmid}"), address: None, started }
    }

    #[test]
    fn strict_reconfiguration_keeps_a_quorum_of_started_members() {
        // The last member cannot go.
        assert!(check_quorum_after_removing(&[member(1, true)], 1).is_err());
        // Three started: any one may go.
        let three = [member(1, true), member(2, true), member(3, true)];
        assert!(check_quorum_after_removing(&three, 2).is_ok());
        // One of three down: it may be removed (two started of two), a started one may not
        // (one started of two is no quorum).
        let one_down = [member(1, true), member(2, true), member(3, false)];
        assert!(check_quorum_after_removing(&one_down, 3).is_ok());
        let err = check_quorum_after_removing(&one_down, 1).unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert_eq!(err.message(), NOT_ENOUGH_STARTED);
        // Two members, both started: one may leave (one of one).
        assert!(check_quorum_after_removing(&[member(1, true), member(2, true)], 1).is_ok());
        // Two members, one down: no quorum now, so no leader to make any change.
        let err = check_quorum_after_removing(&[member(1, true), member(2, false)], 2).unwrap_err();
        assert_eq!(err.code(), tonic::Code::Unavailable);
    }
}
