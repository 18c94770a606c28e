//! Reaching one Talos node for the machine resources: where to dial, telling
//! maintenance mode from a configured node, and the bounded waits with
//! progress lines (`talos 127.1.2.3: waiting for the node to come back
//! configured, 12s`).
//!
//! Owns: [`Target`] (an address to dial, with the `node` metadata when the
//! node is reached through another endpoint), [`probe`] (mutual TLS first,
//! then insecure: a node that answers without a client certificate is in
//! maintenance mode), the waits ([`wait_configured`], which tells a reboot by
//! the node's boot ID, and [`wait_down`]) and the comparison of configurations
//! ([`same_config`]).
//! Must not: decide what to apply or record state (the resources do), or
//! retry errors that say something is wrong (another CA, a refused role).

use std::time::{Duration, Instant};

use crate::framework::Context;
use crate::talos::api_client::{self, Credentials, TalosApiError, TalosClient, BOOT_ID_PATH, CONFIG_PATH};
use crate::talos::config::Config;
use crate::talos::secrets::ClientConfiguration;

/// How often a wait asks the node again.
pub const POLL: Duration = Duration::from_millis(500);

/// Where to dial, and which node to target through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host` or `host:port` (port 50000 by default).
    pub endpoint: String,
    /// The `node` metadata, when the endpoint is another node (apid proxies).
    pub node: Option<String>,
}

impl Target {
    /// The node itself, dialled directly.
    pub fn direct(address: &str) -> Target {
        Target { endpoint: address.to_string(), node: None }
    }

    /// `node` through `endpoint` (directly when they are the same).
    pub fn via(endpoint: Option<&str>, node: &str) -> Target {
        match endpoint.filter(|e| !e.is_empty() && *e != node) {
            Some(e) => Target { endpoint: e.to_string(), node: Some(node.to_string()) },
            None => Target::direct(node),
        }
    }

    /// Connects with `credentials` and targets the node.
    pub async fn connect(&self, credentials: Credentials<'_>) -> Result<TalosClient, TalosApiError> {
        let client = api_client::connect(&self.endpoint, credentials).await?;
        Ok(match &self.node {
            Some(n) => client.with_node(n.clone()),
            None => client,
        })
    }
}

/// Targets in order, without duplicates.
pub fn dedup(targets: impl IntoIterator<Item = Target>) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for t in targets {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// A deadline with the time it started, for progress lines.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    started: Instant,
    until: Instant,
}

impl Deadline {
    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Deadline {
        let started = Instant::now();
        Deadline { started, until: started + timeout }
    }

    /// Whole seconds since it started.
    pub fn elapsed_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The whole timeout, for messages.
    pub fn total(&self) -> Duration {
        self.until - self.started
    }

    pub fn expired(&self) -> bool {
        Instant::now() >= self.until
    }

    /// Sleeps [`POLL`] (less near the deadline); `false` when the deadline has passed or the
    /// engine asked to stop.
    pub async fn pause(&self, ctx: &Context) -> bool {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() || ctx.is_cancelled() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL.min(left)) => !ctx.is_cancelled(),
            _ = ctx.cancelled() => false,
        }
    }
}

/// What a node is.
pub enum Probed {
    /// It answers with mutual TLS through `target`.
    Configured(TalosClient, Target),
    /// It answers without a client certificate at the maintenance address.
    Maintenance(TalosClient),
}

/// Asks the node once: mutual TLS on each target, then insecure at
/// `maintenance` (the address a node in maintenance mode answers on). An
/// error that says something is wrong (another cluster, a role that may not
/// call) is returned as is; otherwise the last reason it could not be reached.
pub async fn probe(
    targets: &[Target],
    maintenance: &str,
    client: &ClientConfiguration,
) -> Result<Probed, TalosApiError> {
    let mut mutual_error = None;
    for target in targets {
        let answered = match target.connect(Credentials::Mutual(client)).await {
            Ok(c) => c.version().await.map(|_| c),
            Err(e) => Err(e),
        };
        match answered {
            Ok(c) => return Ok(Probed::Configured(c, target.clone())),
            Err(e @ (TalosApiError::NotAuthorized { .. } | TalosApiError::Invalid(_))) => return Err(e),
            Err(e) => {
                let keep = mutual_error.as_ref().is_none_or(|m| matches!(m, TalosApiError::Unreachable { .. }));
                if keep {
                    mutual_error = Some(e);
                }
            }
        }
    }
    let insecure = match api_client::connect(maintenance, Credentials::Insecure).await {
        Ok(c) => c.disks().await.map(|_| c),
        Err(e) => Err(e),
    };
    match (insecure, mutual_error) {
        (Ok(c), _) => Ok(Probed::Maintenance(c)),
        // Mutual TLS said what is wrong (another CA, a refused certificate, a status): that.
        (Err(_), Some(m)) if !matches!(m, TalosApiError::Unreachable { .. }) => Err(m),
        // A configured node (it wants a client certificate) that mutual TLS could not reach.
        (Err(TalosApiError::ClientCertificateRefused { .. }), Some(m)) => Err(m),
        (Err(e), _) => Err(e),
    }
}

/// Whether an error may go away by waiting (the node is down or rebooting).
pub fn transient(e: &TalosApiError) -> bool {
    e.outcome_unknown()
}

/// Whether two machine configurations are the same: equal text, or the same
/// documents once both are printed as machinery prints them.
pub fn same_config(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (Config::from_yaml(a), Config::from_yaml(b)) {
        (Ok(x), Ok(y)) => x.to_yaml() == y.to_yaml(),
        _ => false,
    }
}

/// The machine configuration in effect on the node behind `client`.
pub async fn running_config(client: &TalosClient) -> Result<String, TalosApiError> {
    let bytes = client.read_file(CONFIG_PATH).await?;
    String::from_utf8(bytes).map_err(|_| TalosApiError::Status {
        method: "Read".into(),
        code: tonic::Code::DataLoss,
        message: format!("{CONFIG_PATH} is not UTF-8 text"),
    })
}

/// The node's boot ID, if it tells.
pub async fn boot_id(client: &TalosClient) -> Option<String> {
    let bytes = client.read_file(BOOT_ID_PATH).await.ok()?;
    Some(String::from_utf8_lossy(&bytes).trim().to_string()).filter(|id| !id.is_empty())
}

/// What [`wait_configured`] waits for.
pub struct Awaited<'a> {
    /// The configuration the node must run.
    pub config: &'a str,
    /// A boot ID the node must no longer have (it was to reboot), if known.
    pub not_boot: Option<&'a str>,
}

/// Waits until the node answers with mutual TLS on one of `targets` running
/// `awaited.config` (after a reboot, when `awaited.not_boot` is set); returns
/// that client and target. Progress goes to `ctx.status` as `{label}: {what}, Ns`.
pub async fn wait_configured(
    ctx: &Context,
    targets: &[Target],
    client: &ClientConfiguration,
    awaited: &Awaited<'_>,
    deadline: &Deadline,
    label: &str,
    what: &str,
) -> Result<(TalosClient, Target), String> {
    let expected = awaited.config;
    let mut last = String::from("it has not answered yet");
    loop {
        for target in targets {
            let c = match target.connect(Credentials::Mutual(client)).await {
                Ok(c) => c,
                Err(e @ TalosApiError::NotAuthorized { .. }) => return Err(e.to_string()),
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            match running_config(&c).await {
                Ok(running) if !same_config(&running, expected) => {
                    last = format!("{} answers with another configuration in effect", target.endpoint)
                }
                // After a reboot: only a boot ID read and new proves it (a node going down may
                // still answer the configuration, then fail the boot ID read).
                Ok(_) => match (awaited.not_boot, boot_id(&c).await) {
                    (None, _) => return Ok((c, target.clone())),
                    (Some(old), Some(now)) if now != old => return Ok((c, target.clone())),
                    (Some(_), Some(_)) => last = format!("{} has not rebooted yet", target.endpoint),
                    (Some(_), None) => last = format!("{} did not say its boot ID", target.endpoint),
                },
                Err(e @ TalosApiError::NotAuthorized { .. }) => return Err(e.to_string()),
                Err(e) => last = e.to_string(),
            }
        }
        ctx.status(&format!("{label}: {what}, {}s", deadline.elapsed_secs()));
        if !deadline.pause(ctx).await {
            let tried: Vec<&str> = targets.iter().map(|t| t.endpoint.as_str()).collect();
            return Err(format!(
                "{label}: the node did not answer configured within {:?} (tried {}): {last}",
                deadline.total(),
                tried.join(", ")
            ));
        }
    }
}

/// Waits until `target` stops answering with mutual TLS (a reboot or reset has
/// begun), for at most `limit`; `true` when it went down.
pub async fn wait_down(
    ctx: &Context,
    target: &Target,
    client: &ClientConfiguration,
    limit: &Deadline,
    label: &str,
    what: &str,
) -> bool {
    loop {
        let up = match target.connect(Credentials::Mutual(client)).await {
            Ok(c) => c.version().await.is_ok(),
            Err(_) => false,
        };
        if !up {
            return true;
        }
        ctx.status(&format!("{label}: {what}, {}s", limit.elapsed_secs()));
        if !limit.pause(ctx).await {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_go_through_the_endpoint_only_when_it_differs() {
        assert_eq!(Target::via(None, "127.0.0.5"), Target::direct("127.0.0.5"));
        assert_eq!(Target::via(Some("127.0.0.5"), "127.0.0.5"), Target::direct("127.0.0.5"));
        assert_eq!(
            Target::via(Some("127.0.0.9"), "127.0.0.5"),
            Target { endpoint: "127.0.0.9".into(), node: Some("127.0.0.5".into()) }
        );
        let d = dedup([Target::direct("a"), Target::direct("b"), Target::direct("a")]);
        assert_eq!(d, vec![Target::direct("a"), Target::direct("b")]);
    }

    #[test]
    fn configurations_compare_as_machinery_prints_them() {
        let a = "version: v1alpha1\nmachine:\n    type: worker\n";
        assert!(same_config(a, a));
        assert!(same_config(a, "version: v1alpha1\nmachine:\n  type: worker\n"), "indentation is not a difference");
        assert!(!same_config(a, "version: v1alpha1\nmachine:\n    type: controlplane\n"));
        assert!(!same_config("not: [yaml", a));
    }
}
