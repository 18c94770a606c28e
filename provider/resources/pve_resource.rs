//! The resource layer's half of talking to Proxmox VE (the API client layer, with the paths,
//! PVE's error texts and the retry rules, is `crate::proxmox`; this module never builds a path).
//! What every Proxmox resource shares: one [`PveClient`] per provider
//! configuration (so a ticket is reused), task waits that show an ephemeral
//! progress line and honour cancellation, and the mapping of
//! [`ProxmoxError`]s onto [`ResourceError`]s. For the resources that are a
//! file in a storage (`storage:File`, `download:File`): their `node/volid`
//! ids and the deletion of their volume.
//!
//! Must not: know any one resource's args.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::config::ProxmoxSettings;
use crate::framework::{Context, ResourceError};
use crate::proxmox::retry::{retry, RetryPolicy};
use crate::proxmox::storage;
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

/// Starts a task with the retry rules and waits for it, showing "`label`, 12s". `call`
/// (given the attempt number) answers `None` when there is nothing to start, e.g. when a
/// retry finds that a call whose answer was lost did the work.
pub async fn retried_task<F, Fut>(
    ctx: &Context,
    client: &PveClient,
    label: &str,
    timeout: Duration,
    call: F,
) -> Result<(), ProxmoxError>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Upid>, ProxmoxError>>,
{
    if let Some(upid) = retry(retry_policy(), on_retry(ctx, label), call).await? {
        wait(ctx, client, &upid, timeout, label).await?;
    }
    Ok(())
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

/// A volume on a node, as the id `node/storage:content/file` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeVolume {
    pub node: String,
    pub storage: String,
    pub content: String,
    pub file: String,
}

impl NodeVolume {
    /// The volume id, `storage:content/file`.
    pub fn volid(&self) -> String {
        format!("{}:{}/{}", self.storage, self.content, self.file)
    }
}

/// The id of a resource that is the volume `volid` on `node`: `node/volid` (`pve/local:iso/talos.iso`).
pub fn node_volume_id(node: &str, volid: &str) -> String {
    format!("{node}/{volid}")
}

/// `node/storage:content/file` → its parts; `None` when `id` does not have that form.
pub fn parse_node_volume_id(id: &str) -> Option<NodeVolume> {
    let (node, volid) = id.split_once('/')?;
    let (storage, rest) = volid.split_once(':')?;
    let (content, file) = rest.split_once('/')?;
    Some(NodeVolume { node: node.into(), storage: storage.into(), content: content.into(), file: file.into() })
}

/// Deletes `volid` from `storage_id` on `node`, retrying transient failures, and awaits the
/// deletion's task (PVE 9 has one); a volume or task that is not there counts as deleted.
pub async fn delete_volume(
    ctx: &Context,
    client: &PveClient,
    node: &str,
    storage_id: &str,
    volid: &str,
) -> Result<(), ResourceError> {
    let label = format!("deleting {volid}");
    let deleted =
        retry(retry_policy(), on_retry(ctx, &label), |_| storage::delete_volume(client, node, storage_id, volid)).await;
    match deleted {
        Ok(Some(upid)) => match wait(ctx, client, &upid, Duration::from_secs(300), &label).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(failed(e)),
        },
        Ok(None) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(failed(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_volume_ids() {
        let talos =
            NodeVolume { node: "pve".into(), storage: "local".into(), content: "iso".into(), file: "talos.iso".into() };
        assert_eq!(parse_node_volume_id("pve/local:iso/talos.iso"), Some(talos.clone()));
        assert_eq!(talos.volid(), "local:iso/talos.iso");
        assert_eq!(node_volume_id("pve", &talos.volid()), "pve/local:iso/talos.iso");
        // The file keeps what follows the content's '/': callers decide whether a sub-path is theirs.
        assert_eq!(
            parse_node_volume_id("pve/local:import/vm.ova/disk.vmdk").map(|v| v.file).as_deref(),
            Some("vm.ova/disk.vmdk")
        );
        for bad in ["nonsense", "pve/local", "pve/local:iso", "local:iso/talos.iso"] {
            assert_eq!(parse_node_volume_id(bad), None, "{bad}");
        }
    }
}
