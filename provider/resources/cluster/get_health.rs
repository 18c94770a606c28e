//! `cluster:getHealth`: waits until a Talos cluster is healthy, or fails
//! saying which check did not pass on which node.
//!
//! Each round connects to the first of `endpoints` that answers (mutual TLS
//! with the admin client configuration) and asks every node, through it
//! (`node` metadata, as `talosctl --nodes`), for `Version`, `ServiceList` and,
//! on control planes, `EtcdMemberList`; [`health_checks`] judges the answers
//! in Talos's order (apid, etcd healthy, etcd members consistent and control
//! planes, services, boot done). Then, unless `skipKubernetesChecks`, the
//! Kubernetes API's `/readyz` through the cluster endpoint: the server and CA
//! of the admin kubeconfig a control plane hands out, TLS verified against
//! that CA, authenticated with its client certificate. Kubernetes node
//! readiness is not checked (it needs a CNI), so a `cni: none` cluster passes.
//! Rounds repeat every half second with a progress line naming the check
//! waited for, until all pass or `timeouts.read` (default 10m) is up.
//!
//! Why per-node calls and not `ClusterService/HealthCheck`: the server-side
//! check always runs Talos's full default set (Kubernetes nodes Ready
//! included, which never passes without a CNI), reports progress as free
//! text, and runs on one node, so a failure could not be attributed to a
//! node nor `skipKubernetesChecks` honoured.
//!
//! Owns: gathering observations, the Kubernetes API probe, the wait.
//! Must not: change anything on the nodes; put key material in messages.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::health_checks::{self as checks, Check, EtcdMember, Failed, Observation, Role, Service};
use super::waiting::{self, Deadline};
use crate::framework::{CheckFailure, Context, Function, ResourceError};
use crate::schema::PulumiType;
use crate::talos::api::machine;
use crate::talos::api_client::{self, Credentials, TalosApiError, TalosClient};
use crate::talos::kubeconfig::{self as kc, KubeconfigCredentials};
use crate::talos::secrets::ClientConfiguration;
use crate::talos::talosconfig;

/// Waits until a Talos cluster is healthy: apid on every node, etcd healthy and consistent across
/// the control planes, Talos services running, boot finished and (unless `skipKubernetesChecks`)
/// the Kubernetes API ready through the cluster endpoint. Kubernetes nodes need not be Ready, so a
/// cluster without a CNI passes. Fails with the check that did not pass and the node.
#[derive(Debug, Clone, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetHealthArgs {
    /// The admin client configuration, e.g. `clientConfiguration` of `machine.Secrets` (`os:admin`;
    /// `os:reader` suffices with `skipKubernetesChecks`, as the kubeconfig needs the admin role).
    #[pulumi(secret)]
    pub client_configuration: ClientConfiguration,
    /// Every control-plane node: IP addresses (or host names), as etcd members name them. At least one.
    pub control_plane_nodes: Vec<String>,
    /// Every worker node: IP addresses or host names.
    pub worker_nodes: Option<Vec<String>>,
    /// Talos API endpoints to connect through (the first that answers is used): control-plane nodes
    /// or a load balancer in front of them, optionally with a port (default 50000). At least one.
    pub endpoints: Vec<String>,
    /// Run only the Talos-level checks, not the Kubernetes API's `/readyz` (default false).
    pub skip_kubernetes_checks: Option<bool>,
    /// How long to wait.
    pub timeouts: Option<HealthTimeouts>,
}

/// How long `cluster:getHealth` waits.
#[derive(Debug, Clone, Default, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "cluster:HealthTimeouts")]
pub struct HealthTimeouts {
    /// A Go duration, e.g. `10m` (default) or `90s`.
    pub read: Option<String>,
}

/// Result of `getHealth` (returned only when every check passed).
#[derive(Debug, Clone, Serialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct GetHealthResult {
    /// Always `cluster_health`.
    pub id: String,
    /// The control-plane nodes checked.
    pub control_plane_nodes: Vec<String>,
    /// The worker nodes checked.
    pub worker_nodes: Vec<String>,
    /// The endpoints asked for.
    pub endpoints: Vec<String>,
    /// Whether the Kubernetes API check was skipped.
    pub skip_kubernetes_checks: bool,
    /// The checks that passed, in order (`etcd to be healthy`, …).
    pub checks: Vec<String>,
    /// The Kubernetes API server that answered `/readyz` (absent when skipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_endpoint: Option<String>,
}

/// The `getHealth` function.
pub struct GetHealth;

/// Every problem with the arguments, at its property path.
pub fn failures(args: &GetHealthArgs) -> Vec<CheckFailure> {
    let mut out: Vec<CheckFailure> = talosconfig::client_configuration_problems(&args.client_configuration)
        .into_iter()
        .map(|p| CheckFailure::new(p.field, p.reason))
        .collect();
    if args.control_plane_nodes.is_empty() {
        out.push(CheckFailure::new("controlPlaneNodes", "at least one control-plane node is required"));
    }
    if args.endpoints.is_empty() {
        out.push(CheckFailure::new(
            "endpoints",
            format!("at least one endpoint is required; {}", talosconfig::ENDPOINT_RULE),
        ));
    }
    let workers = args.worker_nodes.as_deref().unwrap_or_default();
    let lists = [("controlPlaneNodes", &args.control_plane_nodes[..]), ("workerNodes", workers)];
    let mut seen: Vec<&str> = Vec::new();
    for (field, nodes) in lists {
        for (i, n) in nodes.iter().enumerate() {
            if let Err(reason) = talosconfig::check_node(n) {
                out.push(CheckFailure::new(format!("{field}[{i}]"), reason));
            } else if seen.contains(&n.as_str()) {
                out.push(CheckFailure::new(format!("{field}[{i}]"), format!("{n} is listed more than once")));
            }
            seen.push(n);
        }
    }
    for (i, e) in args.endpoints.iter().enumerate() {
        if let Err(reason) = talosconfig::check_endpoint(e) {
            out.push(CheckFailure::new(format!("endpoints[{i}]"), reason));
        }
    }
    let read = args.timeouts.as_ref().and_then(|t| t.read.as_deref());
    out.extend(waiting::check_timeout("timeouts.read", read));
    out
}

impl Function for GetHealth {
    const TOKEN: &'static str = "proxmox-talos:cluster:getHealth";
    type Args = GetHealthArgs;
    type Result = GetHealthResult;

    fn check(&self, _ctx: &Context, args: &GetHealthArgs) -> Vec<CheckFailure> {
        failures(args)
    }

    async fn invoke(&self, ctx: &Context, args: GetHealthArgs) -> Result<GetHealthResult, ResourceError> {
        let limit = waiting::timeout(ctx, args.timeouts.as_ref().and_then(|t| t.read.as_deref()));
        let skip = args.skip_kubernetes_checks.unwrap_or(false);
        let kubernetes_endpoint = wait_healthy(ctx, &args, skip, Deadline::after(limit)).await?;
        let mut passed: Vec<String> = Check::TALOS.iter().map(|c| c.describe().to_string()).collect();
        if !skip {
            passed.push(Check::KubernetesApiReady.describe().to_string());
        }
        Ok(GetHealthResult {
            id: "cluster_health".into(),
            control_plane_nodes: args.control_plane_nodes,
            worker_nodes: args.worker_nodes.unwrap_or_default(),
            endpoints: args.endpoints,
            skip_kubernetes_checks: skip,
            checks: passed,
            kubernetes_endpoint,
        })
    }
}

/// Why a round did not pass: a check not passing yet (wait), or a failure waiting cannot fix.
enum Round {
    Waiting(Failed),
    Fatal(String),
}

/// Rounds until everything passes; returns the Kubernetes API server checked.
async fn wait_healthy(
    ctx: &Context,
    args: &GetHealthArgs,
    skip_kubernetes: bool,
    deadline: Deadline,
) -> Result<Option<String>, ResourceError> {
    let mut client: Option<TalosClient> = None;
    let mut kube: Option<KubeconfigCredentials> = None;
    loop {
        let outcome = round(args, skip_kubernetes, &deadline, &mut client, &mut kube).await;
        let failed = match outcome {
            Ok(()) => return Ok(kube.map(|k| k.host)),
            Err(Round::Fatal(message)) => return Err(ResourceError::Failed(format!("cluster health: {message}"))),
            Err(Round::Waiting(f)) => f,
        };
        if deadline.expired() {
            return Err(ResourceError::Failed(format!(
                "cluster health check timed out after {} waiting for {failed}",
                waiting::go_text(deadline.limit())
            )));
        }
        ctx.status(&format!("cluster health: waiting for {failed}, {}s", deadline.elapsed().as_secs()));
        deadline.pause(ctx).await?;
    }
}

/// One round: Talos-level checks, then the Kubernetes API.
async fn round(
    args: &GetHealthArgs,
    skip_kubernetes: bool,
    deadline: &Deadline,
    client: &mut Option<TalosClient>,
    kube: &mut Option<KubeconfigCredentials>,
) -> Result<(), Round> {
    if client.is_none() {
        *client = Some(connect_any(args, deadline).await?);
    }
    let Some(c) = client.clone() else { return Err(Round::Fatal("no Talos API client".into())) };
    let observations = observe_all(&c, args, deadline).await?;
    if observations.iter().any(|o| o.apid.is_err()) {
        // The endpoint itself may have gone; connect afresh next round.
        *client = None;
    }
    checks::evaluate(&observations, &args.control_plane_nodes).map_err(Round::Waiting)?;
    if skip_kubernetes {
        return Ok(());
    }
    let first_cp = &args.control_plane_nodes[0];
    if kube.is_none() {
        let target = c.clone().with_node(first_cp.clone());
        let raw = deadline.call(first_cp, target.kubeconfig()).await.map_err(|e| kubeconfig_failure(first_cp, e))?;
        let parsed = kc::parse(&raw).map_err(|reason| Round::Fatal(format!("node {first_cp}: {reason}")))?;
        *kube = Some(parsed);
    }
    let Some(k) = kube.as_ref() else { return Ok(()) };
    readyz(k, deadline.call_bound())
        .await
        .map_err(|reason| Round::Waiting(Failed { check: Check::KubernetesApiReady, node: k.host.clone(), reason }))
}

/// A failed kubeconfig fetch (for the Kubernetes check) as a round outcome: final failures
/// (a role without `os:admin`) end the wait.
fn kubeconfig_failure(node: &str, e: TalosApiError) -> Round {
    if waiting::retriable(&e) {
        let reason = format!("fetching the kubeconfig: {e}");
        Round::Waiting(Failed { check: Check::KubernetesApiReady, node: node.to_string(), reason })
    } else {
        Round::Fatal(format!("fetching the kubeconfig from node {node} for the Kubernetes API check: {e}"))
    }
}

/// Connects to the first endpoint that answers.
async fn connect_any(args: &GetHealthArgs, deadline: &Deadline) -> Result<TalosClient, Round> {
    let credentials = Credentials::Mutual(&args.client_configuration);
    let mut last = Failed { check: Check::ApidReady, node: String::new(), reason: "no endpoint".into() };
    for endpoint in &args.endpoints {
        match deadline.call(endpoint, api_client::connect(endpoint, credentials)).await {
            Ok(c) => return Ok(c),
            Err(e) if !waiting::retriable(&e) => return Err(Round::Fatal(format!("endpoint {endpoint}: {e}"))),
            Err(e) => last = Failed { check: Check::ApidReady, node: endpoint.clone(), reason: e.to_string() },
        }
    }
    Err(Round::Waiting(last))
}

/// Observes every node concurrently; a final failure (refused certificate, role) ends the round.
async fn observe_all(
    client: &TalosClient,
    args: &GetHealthArgs,
    deadline: &Deadline,
) -> Result<Vec<Observation>, Round> {
    let roles = args
        .control_plane_nodes
        .iter()
        .map(|n| (n.clone(), Role::ControlPlane))
        .chain(args.worker_nodes.iter().flatten().map(|n| (n.clone(), Role::Worker)));
    let mut tasks = JoinSet::new();
    let mut order = Vec::new();
    for (i, (node, role)) in roles.enumerate() {
        order.push(node.clone());
        let (target, deadline) = (client.clone().with_node(node.clone()), *deadline);
        tasks.spawn(async move { (i, observe(&target, node, role, &deadline).await) });
    }
    let mut found: Vec<Option<Observation>> = vec![None; order.len()];
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.map_err(|e| Round::Fatal(format!("a node check stopped: {e}")))?;
        found[i] = Some(result?);
    }
    Ok(found.into_iter().flatten().collect())
}

/// What one node answers; final failures are returned as such.
async fn observe(client: &TalosClient, node: String, role: Role, deadline: &Deadline) -> Result<Observation, Round> {
    let judge = |e: TalosApiError| -> Result<String, Round> {
        match e {
            e if waiting::retriable(&e) => Ok(e.to_string()),
            TalosApiError::Status { .. } => Ok(e.to_string()),
            e => Err(Round::Fatal(format!("node {node}: {e}"))),
        }
    };
    let apid = match deadline.call(&node, client.version()).await {
        Ok(_) => Ok(()),
        Err(e) => Err(judge(e)?),
    };
    let services = match deadline.call(&node, service_list(client)).await {
        Ok(s) => Ok(s),
        Err(e) => Err(judge(e)?),
    };
    let etcd_members = match role {
        Role::Worker => None,
        Role::ControlPlane => Some(match deadline.call(&node, etcd_members(client)).await {
            Ok(m) => Ok(m),
            Err(e) if e.code() == Some(tonic::Code::Unimplemented) => {
                return Err(Round::Fatal(format!("node {node} is listed in controlPlaneNodes but is not one: {e}")))
            }
            Err(e) => Err(judge(e)?),
        }),
    };
    Ok(Observation { node, role, apid, services, etcd_members })
}

async fn service_list(client: &TalosClient) -> Result<Vec<Service>, TalosApiError> {
    let reply = client.machine().service_list(client.request(())).await.map_err(|s| client.error("ServiceList", s))?;
    Ok(reply
        .into_inner()
        .messages
        .into_iter()
        .flat_map(|m| m.services)
        .map(|s| Service {
            healthy: s.health.as_ref().and_then(|h| (!h.unknown).then_some(h.healthy)),
            id: s.id,
            state: s.state,
        })
        .collect())
}

async fn etcd_members(client: &TalosClient) -> Result<Vec<EtcdMember>, TalosApiError> {
    let req = client.request(machine::EtcdMemberListRequest { query_local: false });
    let reply = client.machine().etcd_member_list(req).await.map_err(|s| client.error("EtcdMemberList", s))?;
    Ok(reply
        .into_inner()
        .messages
        .into_iter()
        .flat_map(|m| m.members)
        .map(|m| EtcdMember {
            id: m.id,
            hostname: m.hostname,
            urls: m.peer_urls.into_iter().chain(m.client_urls).collect(),
        })
        .collect())
}

/// `GET /readyz` on the kubeconfig's server, trusting only its CA, with its client certificate.
async fn readyz(k: &KubeconfigCredentials, bound: Duration) -> Result<(), String> {
    use base64::Engine as _;
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.decode(v).unwrap_or_default();
    let ca = reqwest::Certificate::from_pem(&b64(&k.ca_certificate))
        .map_err(|_| "the kubeconfig's CA certificate cannot be used".to_string())?;
    let mut identity = b64(&k.client_certificate);
    identity.extend_from_slice(&b64(&k.client_key));
    let identity = reqwest::Identity::from_pem(&identity)
        .map_err(|_| "the kubeconfig's client certificate and key cannot be used".to_string())?;
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .identity(identity)
        .no_proxy()
        .connect_timeout(bound)
        .timeout(bound)
        .build()
        .map_err(|e| format!("cannot build an HTTPS client: {}", error_chain(&e)))?;
    let url = format!("{}/readyz", k.host.trim_end_matches('/'));
    let response = http.get(&url).send().await.map_err(|e| error_chain(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(200).collect();
    Err(format!("GET {url}: HTTP {status}: {}", body.trim()))
}

/// An error and its causes on one line, without repeating a cause already in its parent's text.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn args(cps: &[&str], workers: &[&str], endpoints: &[&str]) -> GetHealthArgs {
        let pem = |tag: &str| {
            base64::engine::general_purpose::STANDARD
                .encode(format!("-----BEGIN {tag}-----\nAAECAw==\n-----END {tag}-----\n"))
        };
        GetHealthArgs {
            client_configuration: ClientConfiguration {
                ca_certificate: pem("CERTIFICATE"),
                client_certificate: pem("CERTIFICATE"),
                client_key: pem("ED25519 PRIVATE KEY"),
            },
            control_plane_nodes: cps.iter().map(|s| s.to_string()).collect(),
            worker_nodes: Some(workers.iter().map(|s| s.to_string()).collect()),
            endpoints: endpoints.iter().map(|s| s.to_string()).collect(),
            skip_kubernetes_checks: None,
            timeouts: None,
        }
    }

    #[test]
    fn check_names_each_bad_argument() {
        assert!(failures(&args(&["10.0.0.1"], &["10.0.0.9"], &["10.0.0.1"])).is_empty());
        let mut bad = args(&[], &["10.0.0.9:50000", "10.0.0.8", "10.0.0.8"], &[]);
        bad.timeouts = Some(HealthTimeouts { read: Some("soon".into()) });
        let f = failures(&bad);
        let paths: Vec<&str> = f.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(paths, ["controlPlaneNodes", "endpoints", "workerNodes[0]", "workerNodes[2]", "timeouts.read"]);
        assert!(f[3].reason.contains("more than once"), "{}", f[3].reason);
        let f = failures(&args(&["10.0.0.1"], &[], &["https://10.0.0.1:6443"]));
        assert_eq!(f[0].property, "endpoints[0]");
        assert!(f[0].reason.contains("did you mean 10.0.0.1?"), "{}", f[0].reason);
    }

    #[test]
    fn error_chains_do_not_repeat_causes() {
        let inner = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(error_chain(&inner), "connection refused");
    }
}
