//! `cluster:Kubeconfig`: the admin kubeconfig of a Talos cluster, fetched from
//! a control-plane node with `MachineService/Kubeconfig` (Talos issues a new
//! admin client certificate from the Kubernetes CA on every call), and the
//! credentials in it (`kubernetesClientConfiguration`).
//!
//! Create waits, with progress lines, until the node answers with mutual TLS
//! (it may still be rebooting into its configuration) and the cluster is
//! bootstrapped (etcd has a member, seen through `EtcdMemberList`), then
//! fetches. Talos itself hands out a kubeconfig before bootstrap (it is
//! generated from the machine configuration), but one that no API server
//! answers yet; waiting makes the output usable when the resource is done,
//! and orders the fetch after a `machine:Bootstrap` in the same program
//! without `dependsOn`. Failures that waiting cannot fix (a worker node, a
//! refused client certificate or role) end the wait at once.
//!
//! Renewal: the recorded client certificate is compared with the clock in
//! Diff (`CustomResource::due_changes`): once it expires within
//! `certificateRenewalDuration` (default 720h), `pulumi preview` shows an
//! update of `kubeconfigRaw` and `up` fetches a new kubeconfig. A Diff-time
//! decision is used rather than terraform-provider-talos's Read-time one
//! (which clears outputs on refresh) because Pulumi runs Read only on
//! `refresh`: a plain `preview`/`up` would otherwise never renew.
//!
//! Owns: waiting for and fetching the kubeconfig, parsing it
//! ([`crate::talos::kubeconfig`]), and the renewal decision. Read returns the
//! recorded state (the kubeconfig exists nowhere else); Delete forgets it
//! (nothing on the node to remove). Must not: log or return key material in
//! messages; `kubeconfigRaw` and `clientKey` are secrets.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::waiting::{self, Deadline};
use crate::framework::{
    CheckFailure, CheckRequest, Context, CreateRequest, CreateResponse, CustomResource, ResourceError, UpdateRequest,
};
use crate::schema::PulumiType;
use crate::talos::api::machine;
use crate::talos::api_client::{self, Credentials, TalosApiError, TalosClient};
use crate::talos::kubeconfig::{self as kc, KubeconfigCredentials, DEFAULT_RENEWAL_DURATION};
use crate::talos::secrets::ClientConfiguration;
use crate::talos::talosconfig;

/// Inputs of `cluster:Kubeconfig`.
#[derive(Debug, Clone, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeconfigArgs {
    /// The admin client configuration (`os:admin`), e.g. `clientConfiguration` of `machine.Secrets`.
    #[pulumi(secret)]
    pub client_configuration: ClientConfiguration,
    /// The control-plane node to fetch the kubeconfig from: host name or IP address, without a
    /// port, e.g. `192.168.1.211`.
    pub node: String,
    /// The Talos API endpoint to connect through (defaults to `node`): a control-plane node or a
    /// load balancer in front of them, optionally with a port (default 50000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Renew the kubeconfig when its client certificate expires within this Go duration (default
    /// `720h`, 30 days): the next preview shows an update and `up` fetches a new kubeconfig. Talos
    /// issues admin certificates for a year unless `cluster.adminKubeconfig.certLifetime` says
    /// otherwise.
    #[pulumi(default = "\"720h\"")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_renewal_duration: Option<String>,
    /// How long create and update wait for the node and the bootstrap (Go durations, default `10m`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<KubeconfigTimeouts>,
}

/// How long `cluster:Kubeconfig` waits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "cluster:KubeconfigTimeouts")]
pub struct KubeconfigTimeouts {
    /// Create: a Go duration, e.g. `10m` (default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create: Option<String>,
    /// Update (a renewal or another node): a Go duration, e.g. `10m` (default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<String>,
}

/// The credentials in a kubeconfig, for Kubernetes clients and providers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "cluster:KubernetesClientConfiguration")]
pub struct KubernetesClientConfiguration {
    /// The Kubernetes API server URL (the cluster endpoint), e.g. `https://192.168.1.210:6443`.
    pub host: String,
    /// The Kubernetes CA certificate: base64 of its PEM.
    pub ca_certificate: String,
    /// The admin client certificate (`O=system:masters`): base64 of its PEM.
    pub client_certificate: String,
    /// The admin client key: base64 of its PEM.
    #[pulumi(secret)]
    pub client_key: String,
}

impl From<KubeconfigCredentials> for KubernetesClientConfiguration {
    fn from(c: KubeconfigCredentials) -> Self {
        KubernetesClientConfiguration {
            host: c.host,
            ca_certificate: c.ca_certificate,
            client_certificate: c.client_certificate,
            client_key: c.client_key,
        }
    }
}

/// The admin kubeconfig of a Talos cluster, fetched from a control-plane node once the cluster
/// is bootstrapped, and renewed when its client certificate nears expiry.
#[derive(Debug, Clone, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct KubeconfigState {
    #[serde(flatten)]
    pub args: KubeconfigArgs,
    /// The kubeconfig YAML (context `admin@<cluster>`): write it to a file for `kubectl --kubeconfig`.
    #[pulumi(secret, always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig_raw: Option<String>,
    /// The credentials in the kubeconfig.
    #[pulumi(always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_client_configuration: Option<KubernetesClientConfiguration>,
}

/// The `cluster:Kubeconfig` resource.
pub struct Kubeconfig;

/// Every problem with the inputs, at its property path.
pub fn failures(args: &KubeconfigArgs) -> Vec<CheckFailure> {
    let mut out: Vec<CheckFailure> = talosconfig::client_configuration_problems(&args.client_configuration)
        .into_iter()
        .map(|p| CheckFailure::new(p.field, p.reason))
        .collect();
    if let Err(reason) = talosconfig::check_node(&args.node) {
        out.push(CheckFailure::new("node", reason));
    }
    if let Some(Err(reason)) = args.endpoint.as_deref().map(talosconfig::check_endpoint) {
        out.push(CheckFailure::new("endpoint", reason));
    }
    if let Some(Err(reason)) = args.certificate_renewal_duration.as_deref().map(kc::renewal_window) {
        out.push(CheckFailure::new("certificateRenewalDuration", reason));
    }
    let timeouts = args.timeouts.clone().unwrap_or_default();
    out.extend(waiting::check_timeout("timeouts.create", timeouts.create.as_deref()));
    out.extend(waiting::check_timeout("timeouts.update", timeouts.update.as_deref()));
    out
}

/// Whether the recorded kubeconfig must be fetched again at `now`: its client certificate
/// expires within the renewal window (or cannot be read, or is missing).
pub fn renewal_due(state: &KubeconfigState, args: &KubeconfigArgs, now: OffsetDateTime) -> bool {
    let window = args.certificate_renewal_duration.as_deref().unwrap_or(DEFAULT_RENEWAL_DURATION);
    let Ok(window) = kc::renewal_window(window) else { return false };
    match state.kubernetes_client_configuration.as_ref().map(|c| kc::certificate_not_after(&c.client_certificate)) {
        Some(Ok(not_after)) => kc::renewal_due(not_after, now, window),
        _ => true,
    }
}

/// Whether a change of inputs points at another node or other credentials.
fn source_changed(old: &KubeconfigArgs, new: &KubeconfigArgs) -> bool {
    old.node != new.node
        || old.endpoint.as_deref().unwrap_or(&old.node) != new.endpoint.as_deref().unwrap_or(&new.node)
        || old.client_configuration != new.client_configuration
}

/// What the wait is at, for progress lines and the timeout error.
#[derive(Clone, Copy)]
enum Stage {
    Connect,
    Bootstrap,
    Fetch,
}

impl Stage {
    fn waiting_for(self) -> &'static str {
        match self {
            Stage::Connect => "the node to answer with mutual TLS",
            Stage::Bootstrap => "the cluster to be bootstrapped (etcd to have a member)",
            Stage::Fetch => "the kubeconfig",
        }
    }
}

/// One attempt: connect, see etcd, fetch. Errors carry the stage they happened at.
async fn attempt(
    args: &KubeconfigArgs,
    endpoint: &str,
    deadline: &Deadline,
) -> Result<(String, KubeconfigCredentials), (Stage, TalosApiError)> {
    let creds = Credentials::Mutual(&args.client_configuration);
    let client: TalosClient =
        deadline.call(endpoint, api_client::connect(endpoint, creds)).await.map_err(|e| (Stage::Connect, e))?;
    let client = if endpoint == args.node { client } else { client.with_node(args.node.clone()) };
    let members = deadline
        .call(endpoint, async {
            let req = client.request(machine::EtcdMemberListRequest { query_local: false });
            let reply = client.machine().etcd_member_list(req).await.map_err(|s| client.error("EtcdMemberList", s))?;
            Ok(reply.into_inner().messages.into_iter().flat_map(|m| m.members).count())
        })
        .await
        .map_err(|e| (Stage::Bootstrap, e))?;
    if members == 0 {
        return Err((
            Stage::Bootstrap,
            TalosApiError::Status {
                method: "EtcdMemberList".into(),
                code: tonic::Code::Unavailable,
                message: "etcd has no members yet".into(),
            },
        ));
    }
    let raw = deadline.call(endpoint, client.kubeconfig()).await.map_err(|e| (Stage::Fetch, e))?;
    let parsed = kc::parse(&raw).map_err(|reason| {
        (
            Stage::Fetch,
            TalosApiError::Status { method: "Kubeconfig".into(), code: tonic::Code::DataLoss, message: reason },
        )
    })?;
    Ok((raw, parsed))
}

/// Waits until the cluster is bootstrapped and fetches the kubeconfig, within `limit`.
async fn fetch(
    ctx: &Context,
    args: &KubeconfigArgs,
    limit: std::time::Duration,
) -> Result<(String, KubeconfigCredentials), ResourceError> {
    let endpoint = args.endpoint.clone().unwrap_or_else(|| args.node.clone());
    let via = if endpoint == args.node { String::new() } else { format!(" (through {endpoint})") };
    let deadline = Deadline::after(limit);
    loop {
        let (stage, err) = match attempt(args, &endpoint, &deadline).await {
            Ok(found) => return Ok(found),
            Err(failed) => failed,
        };
        if !waiting::retriable(&err) {
            return Err(ResourceError::Failed(match err.code() {
                Some(tonic::Code::Unimplemented) => {
                    format!("cannot fetch the kubeconfig from {}{via}: {err} (is it a control-plane node?)", args.node)
                }
                _ => format!("cannot fetch the kubeconfig from {}{via}: {err}", args.node),
            }));
        }
        if deadline.expired() {
            return Err(ResourceError::Failed(format!(
                "timed out after {} waiting for {} on {}{via}: {err}",
                waiting::go_text(deadline.limit()),
                stage.waiting_for(),
                args.node
            )));
        }
        ctx.status(&format!(
            "kubeconfig: waiting for {} on {}{via}, {}s: {err}",
            stage.waiting_for(),
            args.node,
            deadline.elapsed().as_secs()
        ));
        deadline.pause(ctx).await?;
    }
}

fn fetched(args: KubeconfigArgs, raw: String, creds: KubeconfigCredentials) -> KubeconfigState {
    KubeconfigState { args, kubeconfig_raw: Some(raw), kubernetes_client_configuration: Some(creds.into()) }
}

fn invalid(args: &KubeconfigArgs) -> Result<(), ResourceError> {
    let f = failures(args);
    if f.is_empty() {
        Ok(())
    } else {
        Err(ResourceError::Invalid(f))
    }
}

impl CustomResource for Kubeconfig {
    const TOKEN: &'static str = "proxmox-talos:cluster:Kubeconfig";
    type Args = KubeconfigArgs;
    type State = KubeconfigState;

    fn check(
        &self,
        _ctx: &Context,
        req: CheckRequest<'_, KubeconfigArgs>,
    ) -> Result<KubeconfigArgs, Vec<CheckFailure>> {
        let f = failures(&req.inputs);
        if f.is_empty() {
            Ok(req.inputs)
        } else {
            Err(f)
        }
    }

    fn due_changes(&self, state: &KubeconfigState, inputs: &KubeconfigArgs) -> Vec<String> {
        if renewal_due(state, inputs, OffsetDateTime::now_utc()) {
            vec!["kubeconfigRaw".into(), "kubernetesClientConfiguration".into()]
        } else {
            Vec::new()
        }
    }

    async fn create(
        &self,
        ctx: &Context,
        req: CreateRequest<KubeconfigArgs>,
    ) -> Result<CreateResponse<KubeconfigState>, ResourceError> {
        invalid(&req.inputs)?;
        if req.preview {
            let state =
                KubeconfigState { args: req.inputs, kubeconfig_raw: None, kubernetes_client_configuration: None };
            return Ok(CreateResponse { id: String::new(), state });
        }
        let limit = waiting::timeout(ctx, req.inputs.timeouts.as_ref().and_then(|t| t.create.as_deref()));
        let (raw, creds) = fetch(ctx, &req.inputs, limit).await?;
        Ok(CreateResponse { id: creds.cluster_name.clone(), state: fetched(req.inputs, raw, creds) })
    }

    async fn update(
        &self,
        ctx: &Context,
        req: UpdateRequest<KubeconfigArgs, KubeconfigState>,
    ) -> Result<KubeconfigState, ResourceError> {
        invalid(&req.inputs)?;
        let old = req.old_state;
        let refetch = source_changed(&req.old_inputs, &req.inputs)
            || old.kubeconfig_raw.is_none()
            || renewal_due(&old, &req.inputs, OffsetDateTime::now_utc());
        if !refetch {
            return Ok(KubeconfigState { args: req.inputs, ..old });
        }
        if req.preview {
            // Unknown until fetched (absent would show as removed in the preview).
            let unknown = || crate::value::UNKNOWN.to_string();
            return Ok(KubeconfigState {
                args: req.inputs,
                kubeconfig_raw: Some(unknown()),
                kubernetes_client_configuration: Some(KubernetesClientConfiguration {
                    host: unknown(),
                    ca_certificate: unknown(),
                    client_certificate: unknown(),
                    client_key: unknown(),
                }),
            });
        }
        if old.kubeconfig_raw.is_some() && !source_changed(&req.old_inputs, &req.inputs) {
            ctx.log(
                crate::framework::Severity::Info,
                "renewing the kubeconfig: its client certificate expires within certificateRenewalDuration",
            );
        }
        let limit = waiting::timeout(ctx, req.inputs.timeouts.as_ref().and_then(|t| t.update.as_deref()));
        let (raw, creds) = fetch(ctx, &req.inputs, limit).await?;
        Ok(fetched(req.inputs, raw, creds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn pem_b64(tag: &str) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("-----BEGIN {tag}-----\nAAECAw==\n-----END {tag}-----\n"))
    }

    fn args() -> KubeconfigArgs {
        KubeconfigArgs {
            client_configuration: ClientConfiguration {
                ca_certificate: pem_b64("CERTIFICATE"),
                client_certificate: pem_b64("CERTIFICATE"),
                client_key: pem_b64("ED25519 PRIVATE KEY"),
            },
            node: "192.168.1.211".into(),
            endpoint: None,
            certificate_renewal_duration: None,
            timeouts: None,
        }
    }

    /// A state holding a real client certificate valid from `issued` for a year.
    fn state_issued_at(issued: OffsetDateTime) -> KubeconfigState {
        use crate::talos::secrets::{self, FixedClock, VersionContract};
        let clock = FixedClock(issued);
        let bundle = secrets::generate(VersionContract::V1_6, &clock, &mut rand_core::OsRng).unwrap();
        let client = secrets::client_configuration(&bundle, &clock).unwrap();
        KubeconfigState {
            args: args(),
            kubeconfig_raw: Some("apiVersion: v1\n".into()),
            kubernetes_client_configuration: Some(KubernetesClientConfiguration {
                host: "https://192.168.1.210:6443".into(),
                ca_certificate: bundle.certs.k8s.cert,
                client_certificate: client.client_certificate,
                client_key: client.client_key,
            }),
        }
    }

    #[test]
    fn check_names_each_bad_input() {
        let bad = KubeconfigArgs {
            node: "https://192.168.1.211:50000".into(),
            endpoint: Some("192.168.1.210:99999".into()),
            certificate_renewal_duration: Some("30d".into()),
            timeouts: Some(KubeconfigTimeouts { create: Some("0s".into()), update: None }),
            client_configuration: ClientConfiguration { client_key: "nope".into(), ..args().client_configuration },
        };
        let f = failures(&bad);
        let paths: Vec<&str> = f.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(
            paths,
            ["clientConfiguration.clientKey", "node", "endpoint", "certificateRenewalDuration", "timeouts.create"]
        );
        assert!(f[3].reason.contains("unknown unit \"d\""), "{}", f[3].reason);
        assert!(failures(&args()).is_empty());
    }

    #[test]
    fn renewal_is_due_only_inside_the_window() {
        let issued = OffsetDateTime::now_utc() - time::Duration::days(300);
        let state = state_issued_at(issued);
        // 65 days left: outside the default 30-day window, inside a 90-day one.
        assert!(!renewal_due(&state, &args(), OffsetDateTime::now_utc()));
        let wide = KubeconfigArgs { certificate_renewal_duration: Some("2160h".into()), ..args() };
        assert!(renewal_due(&state, &wide, OffsetDateTime::now_utc()));
        assert!(renewal_due(&state, &args(), issued + time::Duration::days(340)));
        assert_eq!(Kubeconfig.due_changes(&state, &wide), vec!["kubeconfigRaw", "kubernetesClientConfiguration"]);
        assert!(Kubeconfig.due_changes(&state, &args()).is_empty());
        // Nothing recorded (an old or partial state): fetch.
        let empty = KubeconfigState { kubernetes_client_configuration: None, ..state };
        assert!(renewal_due(&empty, &args(), OffsetDateTime::now_utc()));
    }

    #[test]
    fn diff_reports_a_due_renewal_as_an_output_update() {
        use crate::framework::adapter::{encode, DiffInputs, DynResource, ResourceAdapter};
        let state = state_issued_at(OffsetDateTime::now_utc() - time::Duration::days(300));
        let adapter = ResourceAdapter(Kubeconfig);
        let diff = |args: &KubeconfigArgs| {
            let (inputs, old) = (encode(args, &[], &[]), encode(&state, &[], &[]));
            adapter
                .diff(DiffInputs { old_inputs: &inputs, old_state: &old, news: &inputs, ignore_changes: &[] })
                .unwrap()
        };
        assert!(!diff(&args()).has_changes());
        let wide = KubeconfigArgs { certificate_renewal_duration: Some("2160h".into()), ..args() };
        let due = diff(&wide);
        let found: Vec<(String, bool, bool)> =
            due.diffs.iter().map(|d| (d.path.to_string(), d.input, d.replace)).collect();
        assert_eq!(
            found,
            [("kubeconfigRaw".to_string(), false, false), ("kubernetesClientConfiguration".to_string(), false, false)]
        );
    }

    #[test]
    fn another_node_endpoint_or_credentials_refetch() {
        let a = args();
        assert!(!source_changed(&a, &KubeconfigArgs { endpoint: Some(a.node.clone()), ..a.clone() }));
        assert!(!source_changed(&a, &KubeconfigArgs { certificate_renewal_duration: Some("1h".into()), ..a.clone() }));
        assert!(source_changed(&a, &KubeconfigArgs { node: "192.168.1.212".into(), ..a.clone() }));
        assert!(source_changed(&a, &KubeconfigArgs { endpoint: Some("192.168.1.200".into()), ..a.clone() }));
        let other = ClientConfiguration { client_key: pem_b64("EC PRIVATE KEY"), ..a.client_configuration.clone() };
        assert!(source_changed(&a, &KubeconfigArgs { client_configuration: other, ..a.clone() }));
    }
}
