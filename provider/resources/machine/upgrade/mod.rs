//! In-place Talos upgrades by `machine:ConfigurationApply` (ADR 0012).
//!
//! The installer image a node should run is its configuration's `machine.install.image`. When
//! an update changes it (a new version, or another schematic) the node is upgraded through
//! `MachineService/Upgrade`, one node at a time per cluster: at most one control plane, and
//! workers in batches of `rollout.workerBatchSize`, with etcd healthy before and the node
//! healthy after (running the new version, every checked service healthy, a control plane back
//! in etcd). A failed node stops the rest of its cluster's rollout in this run.
//!
//! Owns: the pure decisions ([`image`]: parsing, downgrades, what changed) and the per-cluster
//! gates ([`gates`]), and [`upgrade_node`], the steps on one node; Kubernetes version rollouts
//! through the same gates in [`kubernetes`].
//! Must not: apply configurations (the resource does, before the upgrade).

pub mod gates;
pub mod image;
pub mod kubernetes;

use super::talos_node::{self, Awaited, Deadline, Probed, Target};
use crate::framework::{Context, Severity};
use crate::talos::api_client::{TalosApiError, TalosClient};
use crate::talos::secrets::ClientConfiguration;

/// One node's upgrade, as the resource asks for it.
pub struct Request<'a> {
    pub label: &'a str,
    pub targets: &'a [Target],
    pub maintenance_address: &'a str,
    pub client: &'a ClientConfiguration,
    /// The configuration the node runs (already applied).
    pub rendered: &'a str,
    /// The installer image to run.
    pub image: &'a str,
    /// The installer image the state records (what the node was installed or upgraded with).
    pub recorded: Option<&'a str>,
    pub worker_batch: usize,
}

/// What stopped an upgrade.
pub enum Failed {
    /// Nothing was done to the node.
    Clean(String),
    /// The node was told to upgrade; it may be on its way.
    Uncertain(String),
}

/// Upgrades the node when it does not run `req.image`; returns the version it runs.
pub async fn upgrade_node(ctx: &Context, req: &Request<'_>, deadline: &Deadline) -> Result<String, Failed> {
    let label = req.label;
    let client = configured(ctx, req, deadline).await.map_err(Failed::Clean)?;
    let running = running_version(&client).await.map_err(|e| Failed::Clean(format!("{label}: Version: {e}")))?;
    let wanted = image::Image::parse(req.image).map_err(|e| Failed::Clean(format!("{label}: {e}")))?;
    if !image::needs_upgrade(&running, &wanted, req.recorded) {
        return Ok(running);
    }
    if let Some(refusal) = image::downgrade_refusal(&running, &wanted.version) {
        return Err(Failed::Clean(format!("{label}: {refusal}")));
    }
    let control_plane = image::is_control_plane(req.rendered);
    let rollout = gates::rollout(&image::cluster_key(req.rendered), req.worker_batch);
    let _turn = rollout.turn(ctx, label, control_plane, deadline).await.map_err(Failed::Clean)?;
    // The gate may have waited for other nodes: ask again.
    let client = configured(ctx, req, deadline).await.map_err(Failed::Clean)?;
    let running = running_version(&client).await.map_err(|e| Failed::Clean(format!("{label}: Version: {e}")))?;
    if !image::needs_upgrade(&running, &wanted, req.recorded) {
        return Ok(running);
    }
    // etcd is gated only where it runs (a control plane before the bootstrap has none yet).
    let etcd_ran = control_plane
        && client.services().await.is_ok_and(|s| s.iter().any(|(id, state, _)| id == "etcd" && state == "Running"));
    let members_before = if etcd_ran { etcd_members(&client).await.ok() } else { None };
    let boot = talos_node::boot_id(&client).await;
    ctx.log(Severity::Info, &format!("{label}: upgrading Talos {running} → {} ({})", wanted.version, req.image));
    loop {
        match client.upgrade(req.image).await {
            Ok(()) => break,
            // Talos refuses while an etcd member is unhealthy (another control plane rebooting).
            Err(e) if e.to_string().contains("error validating etcd for upgrade") => {
                ctx.status(&format!(
                    "{label}: waiting for etcd to be healthy before upgrading, {}s",
                    deadline.elapsed_secs()
                ));
                if !deadline.pause(ctx).await {
                    return Err(rollout.stop(Failed::Clean(format!("{label}: {e}"))));
                }
            }
            Err(e) if e.outcome_unknown() => {
                ctx.log(Severity::Info, &format!("{label}: the node stopped answering during Upgrade ({e})"));
                break;
            }
            Err(e) => return Err(rollout.stop(Failed::Clean(format!("{label}: {e}")))),
        }
    }
    let awaited = Awaited { config: req.rendered, not_boot: boot.as_deref() };
    let what = format!("waiting for the node to reboot into Talos {}", wanted.version);
    let (mut client, _) = talos_node::wait_configured(ctx, req.targets, req.client, &awaited, deadline, label, &what)
        .await
        .map_err(|e| rollout.stop(Failed::Uncertain(e)))?;
    // A node that just came back may drop a call (a listener rebuilt): ask again while it may.
    let now = loop {
        match running_version(&client).await {
            Ok(v) => break v,
            Err(e) if talos_node::transient(&e) && deadline.pause(ctx).await => {
                client = configured(ctx, req, deadline).await.map_err(|e| rollout.stop(Failed::Uncertain(e)))?;
            }
            Err(e) => return Err(rollout.stop(Failed::Uncertain(format!("{label}: {e}")))),
        }
    };
    if now != wanted.version.text {
        return Err(rollout.stop(Failed::Uncertain(format!(
            "{label}: the node came back running Talos {now}, not {} (a failed upgrade boots the previous \
             version again); the rollout of this cluster stops here",
            wanted.version
        ))));
    }
    healthy(ctx, &client, label, etcd_ran, members_before.as_deref(), deadline)
        .await
        .map_err(|e| rollout.stop(Failed::Uncertain(format!("{e}; the rollout of this cluster stops here"))))?;
    ctx.log(Severity::Info, &format!("{label}: runs Talos {now} and is healthy"));
    Ok(now)
}

/// The node's client with mutual TLS, waiting while it is down.
async fn configured(ctx: &Context, req: &Request<'_>, deadline: &Deadline) -> Result<TalosClient, String> {
    loop {
        match talos_node::probe(req.targets, req.maintenance_address, req.client).await {
            Ok(Probed::Configured(c, _)) => return Ok(c),
            Ok(Probed::Maintenance(_)) => {
                return Err(format!("{}: the node is in maintenance mode: nothing to upgrade", req.label))
            }
            Err(e) if talos_node::transient(&e) => {
                ctx.status(&format!("{}: waiting for the Talos API, {}s", req.label, deadline.elapsed_secs()));
                if !deadline.pause(ctx).await {
                    return Err(format!("{}: no answer within {:?}: {e}", req.label, deadline.total()));
                }
            }
            Err(e) => return Err(format!("{}: {e}", req.label)),
        }
    }
}

/// The Talos version (`v1.12.4`) the node runs.
pub async fn running_version(client: &TalosClient) -> Result<String, TalosApiError> {
    Ok(client.version().await?.version.map(|v| v.tag).unwrap_or_default())
}

async fn etcd_members(client: &TalosClient) -> Result<Vec<String>, TalosApiError> {
    let mut names = client.etcd_member_names().await?;
    names.sort();
    Ok(names)
}

/// Waits until every service with a health check is healthy and, where etcd ran before the
/// upgrade, etcd runs and has every member it had before.
async fn healthy(
    ctx: &Context,
    client: &TalosClient,
    label: &str,
    etcd_ran: bool,
    members_before: Option<&[String]>,
    deadline: &Deadline,
) -> Result<(), String> {
    loop {
        let problem = match client.services().await {
            Err(e) => Some(format!("ServiceList: {e}")),
            Ok(services) => {
                let unhealthy: Vec<String> = services
                    .iter()
                    .filter(|(_, state, healthy)| *healthy == Some(false) || state == "Failed")
                    .map(|(id, state, _)| format!("{id} ({state})"))
                    .collect();
                let etcd_down = etcd_ran && !services.iter().any(|(id, state, _)| id == "etcd" && state == "Running");
                if !unhealthy.is_empty() {
                    Some(format!("unhealthy services: {}", unhealthy.join(", ")))
                } else if etcd_down {
                    Some("etcd is not running".to_string())
                } else if let Some(before) = members_before {
                    match etcd_members(client).await {
                        Ok(now) if before.iter().all(|m| now.contains(m)) => None,
                        Ok(now) => Some(format!("etcd members {now:?}, before the upgrade {before:?}")),
                        Err(e) => Some(format!("EtcdMemberList: {e}")),
                    }
                } else {
                    None
                }
            }
        };
        let Some(problem) = problem else { return Ok(()) };
        ctx.status(&format!("{label}: waiting for the node to be healthy ({problem}), {}s", deadline.elapsed_secs()));
        if !deadline.pause(ctx).await {
            return Err(format!("{label}: not healthy after its upgrade within {:?}: {problem}", deadline.total()));
        }
    }
}
