//! What every resource that reaches a Proxmox VE node over SSH shares:
//! credentials from the provider's `ssh` settings, the node's address
//! (`ssh.nodes[]` for that node name, else its `ip` in `/cluster/status`; the
//! port from its entry, else `ssh.port`/`PROXMOX_VE_SSH_PORT`, else 22),
//! connecting with retries on connection failures, and logging a host key
//! that `known_hosts` did not know (once per host and process).
//!
//! Must not: know any one resource's args, or move files (see [`crate::ssh`]).

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::framework::{Context, ResourceError, Severity};
use crate::proxmox::{cluster, PveClient};
use crate::ssh::{self, Credentials, HostKeyPolicy, HostKeyStatus, Session, SshError, Target};

/// Time allowed to connect and log in.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Connection attempts (connection refused or dropped only).
const ATTEMPTS: u32 = 3;

/// Where and as whom to reach `node`, and why the address is that one (for error texts).
pub async fn target(ctx: &Context, client: &PveClient, node: &str) -> Result<(Target, String), ResourceError> {
    let ssh = ctx.config().ssh.clone().unwrap_or_default();
    let default_port = ssh.port.unwrap_or(22);
    if let Some(n) = ssh.nodes.as_ref().and_then(|nodes| nodes.iter().find(|n| n.name == node)) {
        let target = Target { host: n.address.clone(), port: n.port.unwrap_or(default_port) };
        return Ok((target, format!("node {node}'s address from `proxmox-talos:ssh.nodes`")));
    }
    let ip = cluster::node_address(client, node).await.map_err(|e| {
        ResourceError::Failed(format!(
            "finding node {node}'s SSH address in /cluster/status: {e}; or set `proxmox-talos:ssh.nodes` to \
             [{{name: {node}, address: ...}}]"
        ))
    })?;
    let ip = ip.filter(|ip| !ip.is_empty()).ok_or_else(|| {
        ResourceError::Failed(format!(
            "cannot tell node {node}'s SSH address: /cluster/status lists no address for it; set \
             `proxmox-talos:ssh.nodes` to [{{name: {node}, address: ..., port: 22}}]"
        ))
    })?;
    Ok((
        Target { host: ip, port: default_port },
        format!("node {node}'s address from /cluster/status; set `proxmox-talos:ssh.nodes` to use another"),
    ))
}

/// The credentials, or an error that starts with `why` (what needs SSH) and says what to set.
pub fn credentials(ctx: &Context, why: &str) -> Result<Credentials, ResourceError> {
    let config = ctx.config();
    let api_user = config
        .username
        .clone()
        .or_else(|| config.api_token.as_deref().and_then(|t| t.split_once('!')).map(|(u, _)| u.to_string()));
    Credentials::from_config(config.ssh.as_ref(), api_user.as_deref())
        .map_err(|e| ResourceError::Failed(format!("{why}: {e}")))
}

/// Connects to `node` over SSH; `why` starts the error when SSH is not configured.
pub async fn connect(ctx: &Context, client: &PveClient, node: &str, why: &str) -> Result<Session, ResourceError> {
    let credentials = credentials(ctx, why)?;
    let (target, source) = target(ctx, client, node).await?;
    let policy = HostKeyPolicy::user_default();
    let mut delay = Duration::from_millis(500);
    let mut attempt = 1;
    let session = loop {
        match ssh::connect(&target, &credentials, &policy, CONNECT_TIMEOUT).await {
            Ok(s) => break s,
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                ctx.status(&format!("SSH to node {node} ({target}): retrying after: {e}"));
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(e @ (SshError::Connect { .. } | SshError::Timeout { .. })) => {
                return Err(ResourceError::Failed(format!("node {node}: {e} ({source})")))
            }
            Err(e) => return Err(ResourceError::Failed(format!("node {node}: {e}"))),
        }
    };
    if let HostKeyStatus::Unknown { fingerprint } = &session.host_key {
        log_unknown_host_key(ctx, node, &target, fingerprint, &policy);
    }
    Ok(session)
}

fn log_unknown_host_key(ctx: &Context, node: &str, target: &Target, fingerprint: &str, policy: &HostKeyPolicy) {
    static LOGGED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let key = format!("{target} {fingerprint}");
    if !LOGGED.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner()).insert(key) {
        return;
    }
    let file =
        policy.known_hosts.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "~/.ssh/known_hosts".into());
    let scan = if target.port == 22 {
        format!("ssh-keyscan {}", target.host)
    } else {
        format!("ssh-keyscan -p {} {}", target.port, target.host)
    };
    ctx.log(
        Severity::Info,
        &format!(
            "SSH host key of node {node} ({target}) is not in {file}; accepted {fingerprint}. To pin it, compare it \
             with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the node and add it: `{scan} >> {file}` \
             (a different key is then refused)"
        ),
    );
}
