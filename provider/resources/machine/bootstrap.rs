//! `machine:Bootstrap`: starts etcd on the cluster's first control plane
//! (`MachineService/Bootstrap`), once.
//!
//! Create is idempotent: `AlreadyExists` ("etcd data directory is not empty")
//! means the cluster is bootstrapped, which is success. A node that is not
//! ready yet (`FailedPrecondition`) or not answering (`Unavailable`, rebooting
//! into its configuration) is asked again with progress lines until the
//! create timeout; a worker, another cluster's CA or a role that may not
//! bootstrap fail at once, saying which. Bootstrap never runs twice: create
//! first asks the node for the cluster's etcd members (`EtcdMemberList`) and
//! records a cluster that has any as bootstrapped; only an answer that etcd has
//! no members (or Talos's own `AlreadyExists` check) lets the call go out.
//! Read keeps the state (asking etcd is not worth a refresh), updates only
//! record the new inputs (`node` too: a bootstrapped cluster is not
//! bootstrapped again because the program now names another control plane),
//! and Delete forgets (etcd cannot be un-bootstrapped) and tells the control
//! planes' deletes in this run that the whole cluster goes: they do not leave
//! etcd then (it depends on every node's configuration, so it goes first).

use serde::{Deserialize, Serialize};
use tonic::Code;

use super::talos_node::{Deadline, Target};
use super::timeouts::{self, Operation, Timeouts};
use crate::framework::{
    CheckFailure, CheckRequest, Context, CreateRequest, CreateResponse, CustomResource, DeleteRequest, ResourceError,
    Severity, UpdateRequest,
};
use crate::schema::PulumiType;
use crate::talos::api_client::{Credentials, TalosApiError};
use crate::talos::secrets::ClientConfiguration;

/// Inputs of `machine:Bootstrap`.
#[derive(Debug, Clone, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootstrapArgs {
    /// The admin client configuration (`clientConfiguration` of `machine.Secrets`).
    pub client_configuration: ClientConfiguration,
    /// The control plane node to bootstrap (its address). Changing it later only records the new
    /// address: a cluster is bootstrapped once.
    pub node: String,
    /// The Talos API endpoint to reach `node` through; defaults to `node`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// How long create waits for the node to accept the bootstrap (`create`, default 10m).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// etcd bootstrapped on a Talos control plane node.
#[derive(Debug, Clone, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapState {
    #[serde(flatten)]
    pub args: BootstrapArgs,
}

/// The `machine:Bootstrap` resource.
pub struct Bootstrap;

fn failures(args: &BootstrapArgs) -> Vec<CheckFailure> {
    let mut f = Vec::new();
    if args.node.trim().is_empty() {
        f.push(CheckFailure::new("node", "must not be empty; give the control plane node's address"));
    }
    if args.endpoint.as_deref().is_some_and(|e| e.trim().is_empty()) {
        f.push(CheckFailure::new("endpoint", "must not be empty; leave it unset to reach the node at `node`"));
    }
    f.extend(timeouts::failures(args.timeouts.as_ref()));
    f
}

/// What one Bootstrap call means for the resource.
#[derive(Debug, PartialEq)]
enum Answer {
    /// etcd runs (now, or it already did).
    Done { already: bool },
    /// Ask again later, for this reason.
    Retry(String),
    /// Give up: nothing will change by waiting.
    Fail(String),
}

/// Classifies the result of a Bootstrap call (or of connecting for it).
fn classify(result: Result<(), TalosApiError>) -> Answer {
    let e = match result {
        Ok(()) => return Answer::Done { already: false },
        Err(e) => e,
    };
    match (&e, e.code()) {
        (_, Some(Code::AlreadyExists)) => Answer::Done { already: true },
        (TalosApiError::Status { message, .. }, Some(Code::FailedPrecondition))
            if message.contains("control plane") =>
        {
            Answer::Fail(format!("{e} (bootstrap a control plane node, not a worker)"))
        }
        (_, Some(Code::FailedPrecondition)) => Answer::Retry(e.to_string()),
        _ if e.outcome_unknown() => Answer::Retry(e.to_string()),
        _ => Answer::Fail(e.to_string()),
    }
}

/// Whether an `EtcdMemberList` error is the node's etcd not answering (not bootstrapped, not
/// started, not joined: a status from apid), as opposed to not reaching the node or not being
/// allowed to ask, which are retried or fail as before.
fn etcd_silent(e: &TalosApiError) -> bool {
    matches!(e, TalosApiError::Status { .. })
        && !matches!(e.code(), Some(Code::PermissionDenied | Code::Unauthenticated))
}

async fn bootstrap(ctx: &Context, args: &BootstrapArgs) -> Result<(), ResourceError> {
    let label = format!("talos {}", args.node);
    let deadline = Deadline::after(timeouts::resolve(ctx, args.timeouts.as_ref(), Operation::Create));
    let target = Target::via(args.endpoint.as_deref(), &args.node);
    loop {
        let result = match target.connect(Credentials::Mutual(&args.client_configuration)).await {
            Ok(client) => match client.etcd_member_names().await {
                // The cluster has etcd already: record it, never bootstrap a second one.
                Ok(members) if !members.is_empty() => {
                    ctx.log(
                        Severity::Info,
                        &format!(
                            "{label}: etcd already runs with members {}; not bootstrapping again",
                            members.join(", ")
                        ),
                    );
                    return Ok(());
                }
                // No members, or etcd does not answer on this node (not bootstrapped, not started,
                // not joined): Talos's own guard decides — Bootstrap answers AlreadyExists when
                // the node's etcd data directory is not empty.
                Ok(_) => client.bootstrap().await,
                Err(e) if etcd_silent(&e) => client.bootstrap().await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match classify(result) {
            Answer::Done { already: true } => {
                ctx.log(Severity::Info, &format!("{label}: etcd is already bootstrapped"));
                return Ok(());
            }
            Answer::Done { already: false } => return Ok(()),
            Answer::Fail(m) => return Err(ResourceError::Failed(format!("{label}: {m}"))),
            Answer::Retry(why) => {
                ctx.status(&format!("{label}: waiting to bootstrap etcd, {}s ({why})", deadline.elapsed_secs()));
                if !deadline.pause(ctx).await {
                    return Err(ResourceError::Failed(format!(
                        "{label}: the node did not accept the bootstrap within {:?}: {why}",
                        deadline.total()
                    )));
                }
            }
        }
    }
}

impl CustomResource for Bootstrap {
    const TOKEN: &'static str = "proxmox-talos:machine:Bootstrap";
    type Args = BootstrapArgs;
    type State = BootstrapState;

    fn check(&self, _ctx: &Context, req: CheckRequest<'_, BootstrapArgs>) -> Result<BootstrapArgs, Vec<CheckFailure>> {
        let f = failures(&req.inputs);
        if f.is_empty() {
            Ok(req.inputs)
        } else {
            Err(f)
        }
    }

    async fn create(
        &self,
        ctx: &Context,
        req: CreateRequest<BootstrapArgs>,
    ) -> Result<CreateResponse<BootstrapState>, ResourceError> {
        let args = req.inputs;
        if !req.preview {
            bootstrap(ctx, &args).await?;
        }
        Ok(CreateResponse { id: args.node.clone(), state: BootstrapState { args } })
    }

    async fn update(
        &self,
        _ctx: &Context,
        req: UpdateRequest<BootstrapArgs, BootstrapState>,
    ) -> Result<BootstrapState, ResourceError> {
        Ok(BootstrapState { args: req.inputs })
    }

    async fn delete(&self, _ctx: &Context, req: DeleteRequest<BootstrapState>) -> Result<(), ResourceError> {
        super::scale_down::cluster_destroyed(&req.state.args.client_configuration);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: Code, message: &str) -> Result<(), TalosApiError> {
        Err(TalosApiError::Status { method: "Bootstrap".into(), code, message: message.into() })
    }

    #[test]
    fn answers_decide_between_done_retry_and_fail() {
        assert_eq!(classify(Ok(())), Answer::Done { already: false });
        assert_eq!(
            classify(status(Code::AlreadyExists, "etcd data directory is not empty")),
            Answer::Done { already: true }
        );
        assert!(matches!(
            classify(status(Code::FailedPrecondition, "bootstrap is not available yet")),
            Answer::Retry(_)
        ));
        assert!(matches!(classify(status(Code::Unavailable, "the node went down")), Answer::Retry(_)));
        let unreachable =
            Err(TalosApiError::Unreachable { endpoint: "127.0.0.5:50000".into(), reason: "refused".into() });
        assert!(matches!(classify(unreachable), Answer::Retry(_)));
        let worker =
            classify(status(Code::FailedPrecondition, "bootstrap can only be performed on a control plane node"));
        assert!(matches!(&worker, Answer::Fail(m) if m.contains("not a worker")), "{worker:?}");
        let role = Err(TalosApiError::NotAuthorized { method: "Bootstrap".into(), roles: vec!["os:reader".into()] });
        assert!(matches!(classify(role), Answer::Fail(m) if m.contains("not authorized")));
        let ca = Err(TalosApiError::WrongCa { endpoint: "e".into(), reason: "r".into() });
        assert!(matches!(classify(ca), Answer::Fail(m) if m.contains("not signed by the client configuration's CA")));
    }

    #[test]
    fn an_etcd_that_does_not_answer_is_left_to_talos_own_guard_but_not_reaching_the_node_is_not() {
        assert!(etcd_silent(&TalosApiError::Status {
            method: "EtcdMemberList".into(),
            code: Code::Unavailable,
            message: "etcdserver: no leader".into()
        }));
        assert!(!etcd_silent(&TalosApiError::Status {
            method: "EtcdMemberList".into(),
            code: Code::PermissionDenied,
            message: "not authorized".into()
        }));
        assert!(!etcd_silent(&TalosApiError::Unreachable {
            endpoint: "127.0.0.5:50000".into(),
            reason: "refused".into()
        }));
    }

    #[test]
    fn check_names_bad_inputs() {
        let args = BootstrapArgs {
            client_configuration: ClientConfiguration {
                ca_certificate: "a".into(),
                client_certificate: "b".into(),
                client_key: "c".into(),
            },
            node: "".into(),
            endpoint: Some(" ".into()),
            timeouts: Some(Timeouts { create: Some("later".into()), ..Default::default() }),
        };
        let f = failures(&args);
        let paths: Vec<&str> = f.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(paths, ["node", "endpoint", "timeouts.create"]);
    }
}
