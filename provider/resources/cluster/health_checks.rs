//! The Talos-level checks of `cluster:getHealth`, judged from what the nodes
//! answered in one round: pure, so every verdict is unit-tested.
//!
//! The checks, in the order they are judged (the first failing one is what
//! the health function waits for and reports):
//! 1. apid ready: every node answers `Version` with mutual TLS;
//! 2. etcd healthy: on every control plane the `etcd` service runs and is healthy;
//! 3. etcd members consistent: every control plane lists the same members, as
//!    many as there are control planes;
//! 4. etcd members are control planes: each member's address or hostname is
//!    one of `controlPlaneNodes`;
//! 5. services healthy: `apid`, `machined` and `kubelet` run on every node
//!    (and are healthy where Talos reports health);
//! 6. boot done: no service on any node is still starting (every service is
//!    Running, Finished or Skipped). Talos's own check reads the COSI
//!    `MachineStatus` resource, which the provider's Talos API subset does not
//!    include; a settled service list is what that stage implies.
//!
//! Node readiness in Kubernetes is deliberately not a check: it needs a CNI,
//! so it never passes for a `cni: none` cluster.
//!
//! Owns: [`Observation`], [`Check`] and [`evaluate`]. Must not: call anything.

use std::collections::BTreeSet;

/// What a node is in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    ControlPlane,
    Worker,
}

/// One service as `ServiceList` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub id: String,
    /// `Running`, `Preparing`, `Waiting`, `Finished`, `Failed`, …
    pub state: String,
    /// `None` when the service has no health check.
    pub healthy: Option<bool>,
}

/// One etcd member as `EtcdMemberList` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    pub id: u64,
    pub hostname: String,
    /// Peer and client URLs (`https://192.168.1.211:2380`).
    pub urls: Vec<String>,
}

/// What one node answered in a round; errors are already readable text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub node: String,
    pub role: Role,
    /// `Version` answered.
    pub apid: Result<(), String>,
    pub services: Result<Vec<Service>, String>,
    /// Control planes only: the members this node sees.
    pub etcd_members: Option<Result<Vec<EtcdMember>, String>>,
}

/// A check, in evaluation order (then the Kubernetes API, judged by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    ApidReady,
    EtcdHealthy,
    EtcdConsistent,
    EtcdMembersAreControlPlanes,
    ServicesHealthy,
    BootDone,
    KubernetesApiReady,
}

impl Check {
    /// Every Talos-level check, in order.
    pub const TALOS: [Check; 6] = [
        Check::ApidReady,
        Check::EtcdHealthy,
        Check::EtcdConsistent,
        Check::EtcdMembersAreControlPlanes,
        Check::ServicesHealthy,
        Check::BootDone,
    ];

    /// "waiting for …" text, in Talos's wording where it has one.
    pub fn describe(self) -> &'static str {
        match self {
            Check::ApidReady => "apid to be ready",
            Check::EtcdHealthy => "etcd to be healthy",
            Check::EtcdConsistent => "etcd members to be consistent across nodes",
            Check::EtcdMembersAreControlPlanes => "etcd members to be control plane nodes",
            Check::ServicesHealthy => "apid, machined and kubelet to be healthy",
            Check::BootDone => "all nodes to finish boot sequence",
            Check::KubernetesApiReady => "the Kubernetes API to be ready (/readyz)",
        }
    }
}

/// The first check that failed, on which node, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub check: Check,
    pub node: String,
    pub reason: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: node {}: {}", self.check.describe(), self.node, self.reason)
    }
}

const SETTLED: [&str; 3] = ["Running", "Finished", "Skipped"];

fn fail(check: Check, node: &str, reason: impl Into<String>) -> Failed {
    Failed { check, node: node.to_string(), reason: reason.into() }
}

/// The service `id` on a node, or why it cannot be judged.
fn service<'a>(check: Check, o: &'a Observation, id: &str) -> Result<&'a Service, Failed> {
    let services = o.services.as_ref().map_err(|e| fail(check, &o.node, e.clone()))?;
    services.iter().find(|s| s.id == id).ok_or_else(|| fail(check, &o.node, format!("the node lists no {id} service")))
}

/// `Running`, and healthy when `need_health` (else: not reported unhealthy).
fn running(check: Check, o: &Observation, id: &str, need_health: bool) -> Result<(), Failed> {
    let s = service(check, o, id)?;
    if s.state != "Running" {
        let hint = if id == "etcd" { " (is the cluster bootstrapped?)" } else { "" };
        return Err(fail(check, &o.node, format!("service {id} is {}, not Running{hint}", s.state)));
    }
    match s.healthy {
        Some(false) => Err(fail(check, &o.node, format!("service {id} is running but not healthy"))),
        None if need_health => Err(fail(check, &o.node, format!("service {id} has not reported health yet"))),
        _ => Ok(()),
    }
}

/// Whether an etcd member is one of the control planes (by URL host or hostname).
fn is_control_plane(member: &EtcdMember, control_planes: &[String]) -> bool {
    let host_of = |url: &str| {
        let authority = url.split_once("://").map_or(url, |(_, rest)| rest).split('/').next().unwrap_or("");
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
        };
        host.to_string()
    };
    control_planes.iter().any(|cp| *cp == member.hostname || member.urls.iter().any(|u| host_of(u) == *cp))
}

/// Judges one round. `control_planes` is `controlPlaneNodes` as given.
pub fn evaluate(observations: &[Observation], control_planes: &[String]) -> Result<(), Failed> {
    let cps: Vec<&Observation> = observations.iter().filter(|o| o.role == Role::ControlPlane).collect();
    for o in observations {
        o.apid.as_ref().map_err(|e| fail(Check::ApidReady, &o.node, e.clone()))?;
    }
    for o in &cps {
        running(Check::EtcdHealthy, o, "etcd", true)?;
    }
    let mut first: Option<(String, BTreeSet<u64>)> = None;
    for o in &cps {
        let check = Check::EtcdConsistent;
        let members = match &o.etcd_members {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(fail(check, &o.node, e.clone())),
            None => return Err(fail(check, &o.node, "the node did not list etcd members")),
        };
        if members.len() != cps.len() {
            let names: Vec<&str> = members.iter().map(|m| m.hostname.as_str()).collect();
            return Err(fail(
                check,
                &o.node,
                format!(
                    "etcd has {} member(s) {names:?}, expected {} (one per control plane node)",
                    members.len(),
                    cps.len()
                ),
            ));
        }
        let ids: BTreeSet<u64> = members.iter().map(|m| m.id).collect();
        match &first {
            None => first = Some((o.node.clone(), ids)),
            Some((other, seen)) if *seen != ids => {
                return Err(fail(check, &o.node, format!("its etcd members differ from those {other} lists")))
            }
            Some(_) => {}
        }
        for m in members {
            if !is_control_plane(m, control_planes) {
                return Err(fail(
                    Check::EtcdMembersAreControlPlanes,
                    &o.node,
                    format!(
                        "etcd member {} ({}) is not one of controlPlaneNodes {control_planes:?}",
                        m.hostname,
                        m.urls.first().map(String::as_str).unwrap_or("no URL")
                    ),
                ));
            }
        }
    }
    for o in observations {
        running(Check::ServicesHealthy, o, "apid", false)?;
        running(Check::ServicesHealthy, o, "machined", false)?;
        running(Check::ServicesHealthy, o, "kubelet", true)?;
    }
    for o in observations {
        let services = o.services.as_ref().map_err(|e| fail(Check::BootDone, &o.node, e.clone()))?;
        if let Some(s) = services.iter().find(|s| !SETTLED.contains(&s.state.as_str())) {
            return Err(fail(Check::BootDone, &o.node, format!("service {} is {}", s.id, s.state)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(id: &str, state: &str, healthy: Option<bool>) -> Service {
        Service { id: id.into(), state: state.into(), healthy }
    }

    fn services(role: Role, etcd: &str) -> Vec<Service> {
        let mut out = vec![svc("apid", "Running", Some(true)), svc("machined", "Running", None)];
        if role == Role::ControlPlane {
            out.push(svc("etcd", etcd, (etcd == "Running").then_some(true)));
        }
        out.push(svc("kubelet", "Running", Some(true)));
        out
    }

    fn member(id: u64, ip: &str) -> EtcdMember {
        EtcdMember { id, hostname: format!("cp-{id}"), urls: vec![format!("https://{ip}:2380")] }
    }

    fn cp(node: &str, members: Vec<EtcdMember>) -> Observation {
        Observation {
            node: node.into(),
            role: Role::ControlPlane,
            apid: Ok(()),
            services: Ok(services(Role::ControlPlane, "Running")),
            etcd_members: Some(Ok(members)),
        }
    }

    fn worker(node: &str) -> Observation {
        Observation {
            node: node.into(),
            role: Role::Worker,
            apid: Ok(()),
            services: Ok(services(Role::Worker, "")),
            etcd_members: None,
        }
    }

    fn cps() -> Vec<String> {
        vec!["10.0.0.1".into(), "10.0.0.2".into()]
    }

    fn healthy() -> Vec<Observation> {
        let members = vec![member(1, "10.0.0.1"), member(2, "10.0.0.2")];
        vec![cp("10.0.0.1", members.clone()), cp("10.0.0.2", members), worker("10.0.0.9")]
    }

    #[test]
    fn a_healthy_cluster_passes_without_any_kubernetes_node_check() {
        assert_eq!(evaluate(&healthy(), &cps()), Ok(()));
    }

    #[test]
    fn an_unreachable_node_fails_apid_first() {
        let mut obs = healthy();
        obs[2].apid = Err("cannot reach the Talos API".into());
        obs[0].services = Err("also broken".into());
        let f = evaluate(&obs, &cps()).unwrap_err();
        assert_eq!((f.check, f.node.as_str()), (Check::ApidReady, "10.0.0.9"));
        assert_eq!(f.to_string(), "apid to be ready: node 10.0.0.9: cannot reach the Talos API");
    }

    #[test]
    fn before_bootstrap_etcd_is_not_healthy() {
        let mut obs = healthy();
        obs[1].services = Ok(services(Role::ControlPlane, "Preparing"));
        obs[1].etcd_members = Some(Err("etcdserver: no leader".into()));
        let f = evaluate(&obs, &cps()).unwrap_err();
        assert_eq!((f.check, f.node.as_str()), (Check::EtcdHealthy, "10.0.0.2"));
        assert!(f.reason.contains("etcd is Preparing") && f.reason.contains("bootstrapped"), "{}", f.reason);
    }

    #[test]
    fn etcd_members_must_match_the_control_planes() {
        // One control plane has not joined: each node sees one member.
        let mut obs = healthy();
        obs[0].etcd_members = Some(Ok(vec![member(1, "10.0.0.1")]));
        let f = evaluate(&obs, &cps()).unwrap_err();
        assert_eq!((f.check, f.node.as_str()), (Check::EtcdConsistent, "10.0.0.1"));
        assert!(f.reason.contains("1 member(s)") && f.reason.contains("expected 2"), "{}", f.reason);
        // Same count, different sets.
        let mut obs = healthy();
        obs[1].etcd_members = Some(Ok(vec![member(1, "10.0.0.1"), member(3, "10.0.0.2")]));
        let f = evaluate(&obs, &cps()).unwrap_err();
        assert_eq!((f.check, f.node.as_str()), (Check::EtcdConsistent, "10.0.0.2"));
        assert!(f.reason.contains("differ from those 10.0.0.1 lists"), "{}", f.reason);
        // A member that is not one of controlPlaneNodes (by address or hostname).
        let mut obs = healthy();
        let stray = vec![member(1, "10.0.0.1"), member(2, "10.0.0.7")];
        obs[0].etcd_members = Some(Ok(stray.clone()));
        obs[1].etcd_members = Some(Ok(stray));
        let f = evaluate(&obs, &cps()).unwrap_err();
        assert_eq!(f.check, Check::EtcdMembersAreControlPlanes);
        assert!(f.reason.contains("https://10.0.0.7:2380"), "{}", f.reason);
        let by_name = vec!["cp-1".to_string(), "cp-2".to_string(), "10.0.0.1".into(), "10.0.0.2".into()];
        assert_eq!(evaluate(&healthy(), &by_name), Ok(()));
    }

    #[test]
    fn services_must_run_and_boot_must_be_done() {
        let mut obs = healthy();
        obs[2].services = Ok(vec![
            svc("apid", "Running", Some(true)),
            svc("machined", "Running", None),
            svc("kubelet", "Running", Some(false)),
        ]);
        let f = evaluate(&obs, &cps()).unwrap_err();
        assert_eq!((f.check, f.node.as_str()), (Check::ServicesHealthy, "10.0.0.9"));
        assert_eq!(f.reason, "service kubelet is running but not healthy");
        let mut obs = healthy();
        obs[2].services.as_mut().unwrap().retain(|s| s.id != "machined");
        assert_eq!(evaluate(&obs, &cps()).unwrap_err().reason, "the node lists no machined service");
        let mut obs = healthy();
        obs[0].services.as_mut().unwrap().push(svc("udevd", "Waiting", None));
        obs[0].services.as_mut().unwrap().push(svc("install", "Finished", None));
        let f = evaluate(&obs, &cps()).unwrap_err();
        assert_eq!((f.check, f.node.as_str()), (Check::BootDone, "10.0.0.1"));
        assert_eq!(f.reason, "service udevd is Waiting");
    }

    #[test]
    fn ipv6_member_urls_match_bare_addresses() {
        let m = EtcdMember { id: 1, hostname: "x".into(), urls: vec!["https://[fd00::1]:2380".into()] };
        assert!(is_control_plane(&m, &["fd00::1".into()]));
        assert!(!is_control_plane(&m, &["fd00::2".into()]));
    }
}
