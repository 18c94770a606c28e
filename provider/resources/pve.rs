//! What every Proxmox resource shares: one [`PveClient`] per provider
//! configuration (so a ticket is reused), task waits that show an ephemeral
//! progress line and honour cancellation, and the mapping of
//! [`ProxmoxError`]s onto [`ResourceError`]s.
//!
//! Must not: know any one resource's args.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::config::ProxmoxSettings;
use crate::framework::{Context, ResourceError};
use crate::proxmox::retry::RetryPolicy;
use crate::proxmox::task::{self, TaskOutcome, TaskWait, Upid};
use crate::proxmox::{ProxmoxError, PveClient};

/// The clients made so far, by the settings they were made from.
type ClientCache = Mutex<Vec<(ProxmoxSettings, Arc<PveClient>)>>;

/// The client for the configured endpoint, shared by every operation with the same settings.
pub fn client(ctx: &Context) -> Result<Arc<PveClient>, ResourceError> {
    static CLIENTS: OnceLock<ClientCache> = OnceLock::new();
    let settings = ctx.config().proxmox().map_err(|e| ResourceError::Failed(e.to_string()))?;
    let mut clients = CLIENTS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, c)) = clients.iter().find(|(s, _)| *s == settings) {
        return Ok(c.clone());
    }
    let client = Arc::new(PveClient::new(&settings).map_err(|e| ResourceError::Failed(e.to_string()))?);
    clients.push((settings, client.clone()));
    Ok(client)
}

/// Waits for a task, showing "`label`, 12s" while it runs.
pub async fn wait(
    ctx: &Context,
    client: &PveClient,
    upid: &Upid,
    timeout: Duration,
    label: &str,
) -> Result<TaskOutcome, ProxmoxError> {
    let progress = |waited: Duration| ctx.status(&format!("{label}, {}s", waited.as_secs()));
    let cancelled = || ctx.is_cancelled();
    let outcome = task::wait(client, upid, &TaskWait { timeout, progress: &progress, cancelled: &cancelled }).await?;
    for w in &outcome.warnings {
        ctx.log(crate::framework::Severity::Warning, &format!("{label}: {w}"));
    }
    Ok(outcome)
}

/// Retries for calls that start tasks or change config: transient errors, backoff up to ~1 min.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy { attempts: 8, first_delay: Duration::from_millis(250), max_delay: Duration::from_secs(8) }
}

/// Says on the progress line that a transient failure is being retried.
pub fn on_retry<'a>(ctx: &'a Context, what: &'a str) -> impl FnMut(u32, &ProxmoxError) + 'a {
    move |attempt, e| ctx.status(&format!("{what}: retrying after a transient error (attempt {attempt}): {e}"))
}

/// A Proxmox error as a resource error (nothing is known to have changed).
pub fn failed(e: ProxmoxError) -> ResourceError {
    ResourceError::Failed(e.to_string())
}
