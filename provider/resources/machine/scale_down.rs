//! Scale-down: a control plane whose `ConfigurationApply` is destroyed leaves etcd first, so the
//! cluster keeps its quorum and its member list stays true (ADR 0012).
//!
//! - The node answers: it leaves (`EtcdLeaveCluster`), unless it is the last member: that is
//!   refused, naming the ways out.
//! - It does not answer (powered off, broken): a control plane of its cluster that does removes
//!   its member by ID (`EtcdRemoveMemberByID`). The control planes tried are those this provider
//!   process saw in the program (every `ConfigurationApply` of a control plane registers at
//!   Check), `endpoint`, and the host of the configuration's `cluster.controlPlane.endpoint`.
//! - The whole cluster is being destroyed (its `machine:Bootstrap`, which depends on every
//!   node's configuration, was destroyed in this run): nobody leaves a cluster that is going.
//! - Not a member (a worker, a node that never joined or already left): nothing to do. A node
//!   that answers in maintenance mode (wiped, e.g. reset by an earlier destroy) runs no etcd:
//!   its member, if any is left, is removed through a peer when one answers, else a warning
//!   says how to remove it, and the destroy goes on.
//!
//! Must not: outlive the process (what it saw is for this run only) or leave etcd without the
//! last-member check.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use super::apply_plan as plan;
use super::configuration_apply::ConfigurationApplyArgs;
use super::talos_node::{self, Deadline, Probed, Target};
use super::upgrade::image as install;
use crate::framework::{Context, ResourceError, Severity};
use crate::talos::api::machine::EtcdMember;
use crate::talos::api_client::{Credentials, TalosApiError, TalosClient};
use crate::talos::secrets::ClientConfiguration;

/// How long the node itself is waited for before its member is removed through another.
const NODE_WAIT: Duration = Duration::from_secs(15);

/// Control planes seen per cluster (its Talos CA) in this process: their addresses.
static CONTROL_PLANES: LazyLock<Mutex<HashMap<String, BTreeSet<String>>>> = LazyLock::new(Default::default);
/// Clusters whose `machine:Bootstrap` was destroyed in this process.
static DESTROYED: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

fn cluster(client: &ClientConfiguration) -> String {
    client.ca_certificate.trim().to_string()
}

/// Records a control plane of the program (its node address and static addresses).
pub fn saw(args: &ConfigurationApplyArgs, config: &str) {
    if args.node.is_empty() || !install::is_control_plane(config) {
        return;
    }
    let mut map = CONTROL_PLANES.lock().unwrap_or_else(|e| e.into_inner());
    let set = map.entry(cluster(&args.client_configuration)).or_default();
    set.insert(args.node.clone());
    set.extend(plan::static_addresses(config));
}

/// The cluster of `client` is being destroyed: its control planes no longer leave etcd.
pub fn cluster_destroyed(client: &ClientConfiguration) {
    DESTROYED.lock().unwrap_or_else(|e| e.into_inner()).insert(cluster(client));
}

/// The host of a URL or `host:port`.
fn host_of(endpoint: &str) -> String {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6).to_string(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h).to_string(),
    }
}

/// Whether `member` is the node at one of `own` addresses.
fn is_own(member: &EtcdMember, own: &BTreeSet<String>) -> bool {
    member.peer_urls.iter().chain(&member.client_urls).any(|u| own.contains(&host_of(u)))
}

fn last_member(label: &str) -> ResourceError {
    ResourceError::Failed(format!(
        "{label}: is the last etcd member of its cluster: removing it would destroy the cluster's data. \
         Add another control plane first, or destroy the whole cluster (its machine:Bootstrap with it, as \
         `pulumi destroy` does), or set onDestroy.leaveEtcd: false to forget the node without leaving etcd"
    ))
}

/// Leaves etcd for a control plane whose `ConfigurationApply` is being destroyed (see the module).
pub async fn leave(
    ctx: &Context,
    args: &ConfigurationApplyArgs,
    recorded: &str,
    label: &str,
) -> Result<(), ResourceError> {
    if !install::is_control_plane(recorded) {
        return Ok(());
    }
    let key = cluster(&args.client_configuration);
    if DESTROYED.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
        ctx.log(Severity::Info, &format!("{label}: its cluster is being destroyed; not leaving etcd"));
        return Ok(());
    }
    let mut own: BTreeSet<String> = plan::static_addresses(recorded).into_iter().collect();
    own.insert(args.node.clone());
    let targets = plan::configured_targets(&args.node, args.endpoint.as_deref(), recorded);
    let wait = Deadline::after(NODE_WAIT);
    let client_cfg = &args.client_configuration;
    let mut wiped = false;
    loop {
        match talos_node::probe(&targets, &args.node, client_cfg).await {
            Ok(Probed::Configured(client, _)) => return leave_itself(ctx, &client, &own, label).await,
            Ok(Probed::Maintenance(_)) => {
                ctx.log(Severity::Info, &format!("{label}: in maintenance mode; removing its etcd member if left"));
                wiped = true;
                break;
            }
            Err(e) if talos_node::transient(&e) => {
                ctx.status(&format!("{label}: waiting for the node to leave etcd, {}s", wait.elapsed_secs()));
                if !wait.pause(ctx).await {
                    ctx.log(Severity::Info, &format!("{label}: the node does not answer ({e})"));
                    break;
                }
            }
            Err(e) => return Err(ResourceError::Failed(format!("{label}: cannot leave etcd: {e}"))),
        }
    }
    remove_through_peers(ctx, args, recorded, &own, label, wiped).await
}

async fn leave_itself(
    ctx: &Context,
    client: &TalosClient,
    own: &BTreeSet<String>,
    label: &str,
) -> Result<(), ResourceError> {
    let members = match client.etcd_members().await {
        Ok(m) => m,
        // etcd does not run here (never joined, already left): no member to take out.
        Err(e) if e.code() == Some(tonic::Code::Unavailable) => {
            ctx.log(Severity::Info, &format!("{label}: etcd does not run on the node; nothing to leave ({e})"));
            return Ok(());
        }
        Err(e) => return Err(ResourceError::Failed(format!("{label}: cannot list etcd members: {e}"))),
    };
    if !members.iter().any(|m| is_own(m, own)) {
        ctx.log(Severity::Info, &format!("{label}: not an etcd member; nothing to leave"));
        return Ok(());
    }
    if members.len() == 1 {
        return Err(last_member(label));
    }
    ctx.status(&format!("{label}: leaving etcd ({} members)", members.len()));
    match client.etcd_leave_cluster().await {
        Ok(()) => {
            ctx.log(Severity::Info, &format!("{label}: left etcd; {} members remain", members.len() - 1));
            Ok(())
        }
        Err(e) if e.to_string().contains("not enough started members") => Err(ResourceError::Failed(format!(
            "{label}: etcd refused the leave: the members that remain would not hold a quorum of started \
             members ({e}). Bring the other control planes up first"
        ))),
        Err(e) if e.outcome_unknown() => Err(ResourceError::Uncertain(format!("{label}: leaving etcd: {e}"))),
        Err(e) => Err(ResourceError::Failed(format!("{label}: leaving etcd: {e}"))),
    }
}

async fn remove_through_peers(
    ctx: &Context,
    args: &ConfigurationApplyArgs,
    recorded: &str,
    own: &BTreeSet<String>,
    label: &str,
    wiped: bool,
) -> Result<(), ResourceError> {
    let mut peers: Vec<String> = CONTROL_PLANES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&cluster(&args.client_configuration))
        .map(|s| s.iter().filter(|a| !own.contains(*a)).cloned().collect())
        .unwrap_or_default();
    peers.extend(args.endpoint.iter().filter(|e| !own.contains(*e)).cloned());
    if let Some(h) = install::control_plane_endpoint(recorded).map(|e| host_of(&e)).filter(|h| !own.contains(h)) {
        peers.push(h);
    }
    peers.dedup();
    let mut tried = Vec::new();
    for peer in &peers {
        match remove_through(ctx, &args.client_configuration, peer, own, label).await {
            Ok(()) => return Ok(()),
            Err(Tried::Refused(e)) => return Err(e),
            Err(Tried::NoAnswer(e)) => tried.push(format!("{peer}: {e}")),
        }
    }
    let tried = if tried.is_empty() { "none known".to_string() } else { tried.join("; ") };
    if wiped {
        // The node answered, wiped: it runs no etcd and holds no data. What may be left is its
        // entry in a cluster nobody here can reach (often one being torn down): say so, go on.
        ctx.log(
            Severity::Warning,
            &format!(
                "{label}: the node is in maintenance mode (wiped) and no other control plane of its cluster \
                 answered (tried: {tried}); if its etcd member is still listed, remove it with `talosctl etcd \
                 remove-member`"
            ),
        );
        return Ok(());
    }
    Err(ResourceError::Failed(format!(
        "{label}: the node does not answer and no other control plane of its cluster removed its etcd member \
         (tried: {tried}). Bring the node back, or set onDestroy.leaveEtcd: false to forget it and remove the \
         member yourself (talosctl etcd remove-member)"
    )))
}

enum Tried {
    /// The peer answered and said no (the last member, quorum): final.
    Refused(ResourceError),
    /// The peer did not help; try the next.
    NoAnswer(TalosApiError),
}

async fn remove_through(
    ctx: &Context,
    client_cfg: &ClientConfiguration,
    peer: &str,
    own: &BTreeSet<String>,
    label: &str,
) -> Result<(), Tried> {
    let client = Target::direct(peer).connect(Credentials::Mutual(client_cfg)).await.map_err(Tried::NoAnswer)?;
    let members = client.etcd_members().await.map_err(Tried::NoAnswer)?;
    let Some(member) = members.iter().find(|m| is_own(m, own)) else {
        ctx.log(Severity::Info, &format!("{label}: not an etcd member (asked {peer}); nothing to remove"));
        return Ok(());
    };
    if members.len() == 1 {
        return Err(Tried::Refused(last_member(label)));
    }
    let id = member.id;
    ctx.status(&format!("{label}: removing etcd member {id:x} ({}) through {peer}", member.hostname));
    match client.etcd_remove_member_by_id(id).await {
        Ok(()) => {
            ctx.log(
                Severity::Info,
                &format!("{label}: removed its etcd member {id:x} ({}) through {peer}", member.hostname),
            );
            Ok(())
        }
        Err(e) if e.code() == Some(tonic::Code::NotFound) => Ok(()),
        Err(e) if e.to_string().contains("not enough started members") => Err(Tried::Refused(ResourceError::Failed(
            format!("{label}: etcd refused to remove its member {id:x}: {e}"),
        ))),
        Err(e) => Err(Tried::NoAnswer(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_urls_and_endpoints() {
        assert_eq!(host_of("https://10.0.0.1:2380"), "10.0.0.1");
        assert_eq!(host_of("https://[fd00::1]:2380"), "fd00::1");
        assert_eq!(host_of("https://cp.lab:6443/"), "cp.lab");
        assert_eq!(host_of("10.0.0.9"), "10.0.0.9");
        assert_eq!(host_of("10.0.0.9:50000"), "10.0.0.9");
    }

    #[test]
    fn a_member_is_its_node_by_peer_or_client_address() {
        let m = EtcdMember {
            id: 1,
            hostname: "cp3".into(),
            peer_urls: vec!["https://10.0.0.3:2380".into()],
            client_urls: vec![],
            is_learner: false,
        };
        assert!(is_own(&m, &["10.0.0.3".to_string()].into()));
        assert!(!is_own(&m, &["10.0.0.30".to_string()].into()));
    }
}
