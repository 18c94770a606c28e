//! The steps of a VM's life on Proxmox VE, each robust to what real clusters do
//! (research §3): VMID allocation serialised in the process and probed with
//! `/cluster/nextid`; create and clone retried on transient failures, with
//! "already exists" on a retry taken as our own earlier attempt (then waiting
//! for its `create`/`clone` lock to clear); a cross-node clone from local
//! storage done as clone + migrate; config changes retried on lock timeouts;
//! power actions where "already running" is success; a bounded wait for the
//! guest agent's first usable address, with an ephemeral progress line.
//! Must not: decide what to change (that is `encode`/`resource`).

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::args::VirtualMachineArgs;
use super::encode::{self, Config, Params};
use super::format as f;
use super::journal;
use crate::framework::{Context, Severity};
use crate::proxmox::qemu::{self, GuestInterface};
use crate::proxmox::retry::retry;
use crate::proxmox::task::Upid;
use crate::proxmox::{ProxmoxError, PveClient};
use crate::resources::pve_resource;

/// VMIDs this process handed out: PVE cannot reserve ids, so two VMs created at
/// once by this provider must not both be told "100 is free".
fn reserved() -> &'static tokio::sync::Mutex<BTreeSet<u32>> {
    static RESERVED: OnceLock<tokio::sync::Mutex<BTreeSet<u32>>> = OnceLock::new();
    RESERVED.get_or_init(Default::default)
}

/// A free VMID: PVE's proposal, moved past ids reserved in this process and
/// checked with `GET /cluster/nextid?vmid=N`.
pub async fn allocate_vmid(client: &PveClient) -> Result<u32, ProxmoxError> {
    let mut taken = reserved().lock().await;
    let mut candidate = qemu::next_id(client).await?;
    loop {
        if !taken.contains(&candidate) && qemu::is_free(client, candidate).await? {
            taken.insert(candidate);
            return Ok(candidate);
        }
        candidate += 1;
    }
}

/// Remembers an explicit VMID as in use by this process.
pub async fn reserve(vmid: u32) {
    reserved().lock().await.insert(vmid);
}

/// Seconds from an `i64` timeout input, with a default.
pub fn seconds(value: Option<i64>, default: i64) -> Duration {
    Duration::from_secs(value.unwrap_or(default).max(1) as u64)
}

/// Starts a VM-creating call (create or clone) with retries; "already exists" on
/// a retry is our earlier attempt: wait for its lock to clear instead of a task.
/// On the first attempt it is another VM holding the id: an error (a refusal, never
/// retried, so no later attempt can mistake that VM for ours).
pub async fn start_creation<F, Fut>(
    ctx: &Context,
    client: &PveClient,
    node: &str,
    vmid: u32,
    what: &str,
    timeout: Duration,
    call: F,
) -> Result<(), ProxmoxError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Upid, ProxmoxError>>,
{
    let label = format!("vm {vmid}: {what}");
    let started = retry(pve_resource::retry_policy(), pve_resource::on_retry(ctx, &label), |attempt| {
        let fut = call();
        async move {
            match fut.await {
                Ok(upid) => Ok(Some(upid)),
                Err(e) if attempt > 1 && e.is_already_exists() => Ok(None),
                Err(e) => Err(e),
            }
        }
    })
    .await?;
    match started {
        Some(upid) => pve_resource::wait(ctx, client, &upid, timeout, &label).await.map(|_| ()),
        None => wait_unlocked(ctx, client, node, vmid, timeout).await,
    }
}

/// Polls `status/current` until the VM has no `lock` (create, clone, migrate).
pub async fn wait_unlocked(
    ctx: &Context,
    client: &PveClient,
    node: &str,
    vmid: u32,
    timeout: Duration,
) -> Result<(), ProxmoxError> {
    let started = Instant::now();
    loop {
        match qemu::status(client, node, vmid).await {
            Ok(s) if s.lock.as_deref().is_none_or(str::is_empty) => return Ok(()),
            Ok(s) => ctx.status(&format!(
                "vm {vmid}: waiting for its '{}' lock, {}s",
                s.lock.unwrap_or_default(),
                started.elapsed().as_secs()
            )),
            Err(e) if e.is_transient() => {}
            Err(e) => return Err(e),
        }
        if started.elapsed() > timeout {
            return Err(ProxmoxError::Config(format!(
                "vm {vmid}: still locked after {}s (timeout)",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Clones on the source node. With `target` set and a source on local storage,
/// PVE refuses; then clone on the source node and migrate the copy.
pub async fn clone_vm(
    ctx: &Context,
    client: &PveClient,
    args: &VirtualMachineArgs,
    vmid: u32,
    marker: &str,
) -> Result<(), ProxmoxError> {
    let Some((source_node, source, mut params)) = encode::clone_request(args, i64::from(vmid)) else { return Ok(()) };
    // PVE's clone takes no tags: the create marker is the description's last line.
    params.retain(|(k, _)| k != "description");
    params.push(("description".into(), marker.to_string()));
    let source = source as u32;
    let timeout = seconds(args.timeout_clone, super::args::DEFAULT_TIMEOUT_SECONDS);
    let what = format!("cloning {source} on {source_node}");
    let attempt = start_creation(ctx, client, &source_node, vmid, &what, timeout, || {
        qemu::clone(client, &source_node, source, &params)
    })
    .await;
    match attempt {
        Err(e) if e.mentions("non-shared storage") || e.mentions("uses local storage") => {
            let local: Params = params.into_iter().filter(|(k, _)| k != "target").collect();
            let what = format!("cloning {source} on {source_node} (local storage: migrating afterwards)");
            start_creation(ctx, client, &source_node, vmid, &what, timeout, || {
                qemu::clone(client, &source_node, source, &local)
            })
            .await?;
            let migrate = seconds(args.timeout_migrate, super::args::DEFAULT_TIMEOUT_SECONDS);
            migrate_vm(ctx, client, &source_node, vmid, &args.node_name, false, migrate).await
        }
        other => other,
    }
}

/// Migrates to `target` (online when running; local disks move along).
pub async fn migrate_vm(
    ctx: &Context,
    client: &PveClient,
    node: &str,
    vmid: u32,
    target: &str,
    online: bool,
    timeout: Duration,
) -> Result<(), ProxmoxError> {
    let mut params = vec![("target".to_string(), target.to_string())];
    if online {
        params.push(("online".into(), "1".into()));
        params.push(("with-local-disks".into(), "1".into()));
    }
    let label = format!("vm {vmid}: migrating from {node} to {target}");
    pve_resource::retried_task(ctx, client, &label, timeout, |_| async {
        qemu::migrate(client, node, vmid, &params).await.map(Some)
    })
    .await
}

/// Applies config changes: `POST` (a task) when they allocate storage, else `PUT`; retried.
/// `digest`: that of the read the changes were computed from; PVE refuses the write
/// ("checksum mismatch") when the configuration changed since.
pub async fn apply_config(
    ctx: &Context,
    client: &PveClient,
    node: &str,
    vmid: u32,
    set: Params,
    delete: Vec<String>,
    digest: Option<String>,
) -> Result<(), ProxmoxError> {
    if set.is_empty() && delete.is_empty() {
        return Ok(());
    }
    let allocates = encode::allocates(&set);
    let mut params = set;
    if !delete.is_empty() {
        params.push(("delete".into(), delete.join(",")));
    }
    if let Some(d) = digest {
        params.push(("digest".into(), d));
    }
    let label = format!("vm {vmid}: updating its configuration");
    if allocates {
        pve_resource::retried_task(ctx, client, &label, Duration::from_secs(1800), |_| async {
            qemu::update_config(client, node, vmid, &params).await.map(Some)
        })
        .await
    } else {
        retry(pve_resource::retry_policy(), pve_resource::on_retry(ctx, &label), |_| {
            qemu::set_config(client, node, vmid, &params)
        })
        .await
    }
}

/// Removes create markers (see [`journal::marker`]) from the VM's tags and description, if it
/// has any. Each attempt reads the configuration first, so a write whose answer was lost (or a
/// concurrent edit, refused by the digest) is judged on a fresh read; transient errors retry.
pub async fn clear_marker(ctx: &Context, client: &PveClient, node: &str, vmid: u32) -> Result<(), ProxmoxError> {
    let label = format!("vm {vmid}: removing its create marker");
    retry(pve_resource::retry_policy(), pve_resource::on_retry(ctx, &label), |_| async {
        let config = qemu::config(client, node, vmid).await?;
        let Some(params) = unmarked(&config) else { return Ok(()) };
        match qemu::set_config(client, node, vmid, &params).await {
            // Someone (or this write, answered too late) changed it since the read: read again.
            Err(e) if e.is_concurrent_edit() => Err(ProxmoxError::Transport {
                method: "PUT".into(),
                path: format!("/nodes/{node}/qemu/{vmid}/config"),
                reason: format!("{e} (reading the configuration again)"),
                maybe_sent: false,
            }),
            other => other,
        }
    })
    .await
}

/// The config write that removes the create markers of `config`, with its digest; `None` when
/// it has none.
fn unmarked(config: &Config) -> Option<Params> {
    let mut params: Params = Vec::new();
    let mut deletes: Vec<&str> = Vec::new();
    if let Some(tags) = config.get("tags") {
        let words: Vec<&str> = tags.split([';', ',', ' ']).filter(|t| !t.is_empty()).collect();
        if words.iter().any(|t| journal::is_marker(t)) {
            let kept: Vec<&str> = words.into_iter().filter(|t| !journal::is_marker(t)).collect();
            if kept.is_empty() {
                deletes.push("tags");
            } else {
                params.push(("tags".into(), kept.join(";")));
            }
        }
    }
    if let Some(description) = config.get("description") {
        let (kept, had) = journal::without_marker_lines(description);
        if had && kept.is_empty() {
            deletes.push("description");
        } else if had {
            params.push(("description".into(), kept));
        }
    }
    if params.is_empty() && deletes.is_empty() {
        return None;
    }
    if !deletes.is_empty() {
        params.push(("delete".into(), deletes.join(",")));
    }
    if let Some(d) = config.get("digest") {
        params.push(("digest".into(), d.clone()));
    }
    Some(params)
}

/// Grows disks to their `size` (never shrinks).
pub async fn resize_disks(
    ctx: &Context,
    client: &PveClient,
    node: &str,
    vmid: u32,
    current: &Config,
    args: &VirtualMachineArgs,
) -> Result<(), ProxmoxError> {
    for (disk, size) in encode::resizes(current, args) {
        let label = format!("vm {vmid}: growing {disk} to {size}");
        pve_resource::retried_task(ctx, client, &label, Duration::from_secs(600), |_| {
            qemu::resize(client, node, vmid, &disk, &size)
        })
        .await?;
    }
    Ok(())
}

/// Moves disks whose `datastoreId` changed to that storage (`move_disk`, the source
/// volume deleted after the copy). A call whose answer was lost is checked against the
/// configuration before it is sent again: a disk already on its target is done.
pub async fn move_disks(
    ctx: &Context,
    client: &PveClient,
    node: &str,
    vmid: u32,
    args: &VirtualMachineArgs,
) -> Result<(), ProxmoxError> {
    let current = qemu::config(client, node, vmid).await?;
    for (disk, storage) in encode::disk_moves(&current, args) {
        let label = format!("vm {vmid}: moving {disk} to {storage}");
        pve_resource::retried_task(ctx, client, &label, Duration::from_secs(3600), |attempt| {
            let (disk, storage) = (disk.clone(), storage.clone());
            async move {
                if attempt > 1 {
                    let now = qemu::config(client, node, vmid).await?;
                    if !encode::disk_moves(&now, args).iter().any(|(d, _)| *d == disk) {
                        return Ok(None);
                    }
                }
                qemu::move_disk(client, node, vmid, &disk, &storage).await.map(Some)
            }
        })
        .await?;
    }
    Ok(())
}

/// Stops (as configured: shutdown then stop, or stop) and destroys VM `vmid` with
/// purge, wherever it is; a VM already gone is success.
pub async fn destroy_vm(
    ctx: &Context,
    client: &PveClient,
    vmid: u32,
    args: &VirtualMachineArgs,
) -> Result<(), ProxmoxError> {
    // Gone only when confirmed: a VM this token cannot see is an error, never "destroyed".
    let Some(location) = qemu::locate(client, vmid, Some(&args.node_name)).await? else { return Ok(()) };
    let node = location.node;
    if location.running {
        match stop_vm(ctx, client, &node, vmid, args).await {
            Err(e) if e.is_not_found() => return Ok(()),
            other => other?,
        }
    }
    let label = format!("vm {vmid}: destroying");
    let upid = match retry(pve_resource::retry_policy(), pve_resource::on_retry(ctx, &label), |_| {
        qemu::destroy(client, &node, vmid)
    })
    .await
    {
        Ok(u) => u,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    };
    match pve_resource::wait(ctx, client, &upid, Duration::from_secs(600), &label).await {
        Err(e) if !e.is_not_found() => Err(e),
        _ => Ok(()),
    }
}

/// Deletes the VM an interrupted create of this resource left (see [`journal`]),
/// when it still looks like that create's VM; otherwise leaves it and says so.
pub async fn remove_leftover(ctx: &Context, client: &PveClient, entry: &journal::Entry) -> Result<(), ProxmoxError> {
    let vmid = entry.vmid;
    let Some(location) = qemu::locate(client, vmid, Some(&entry.node)).await? else { return Ok(()) };
    let config = qemu::config(client, &location.node, vmid).await?;
    let (name, meta) = (config.get("name").map(String::as_str), config.get("meta").map(String::as_str));
    if !journal::is_leftover(entry, name, meta) {
        ctx.log(
            Severity::Warning,
            &format!(
                "vm {vmid}: an earlier create of this resource was interrupted after choosing VMID {vmid}, but the VM \
                 there now is not the one it made (name {name:?}); leaving it alone"
            ),
        );
        return Ok(());
    }
    ctx.log(
        Severity::Warning,
        &format!(
            "vm {vmid}: left by an earlier create of this resource that was interrupted before Pulumi recorded it; \
             deleting it and creating the VM anew"
        ),
    );
    // No guest to wait for: stop at once.
    let args = VirtualMachineArgs { stop_on_destroy: Some(true), ..Default::default() };
    destroy_vm(ctx, client, vmid, &args).await
}

/// A power action awaited; "already running" (start) and "not running" (stop) are success.
pub async fn power(
    ctx: &Context,
    client: &PveClient,
    node: &str,
    vmid: u32,
    action: &str,
    params: Params,
    timeout: Duration,
) -> Result<(), ProxmoxError> {
    let label = format!("vm {vmid}: {action}");
    let benign = |e: &ProxmoxError| match action {
        "start" => e.is_already_running(),
        "stop" | "shutdown" => e.mentions("not running"),
        _ => false,
    };
    let upid = retry(pve_resource::retry_policy(), pve_resource::on_retry(ctx, &label), |_| {
        qemu::power(client, node, vmid, action, &params)
    })
    .await;
    let upid = match upid {
        Ok(u) => u,
        Err(e) if benign(&e) => return Ok(()),
        Err(e) => return Err(e),
    };
    match pve_resource::wait(ctx, client, &upid, timeout, &label).await {
        Err(e) if benign(&e) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Stops a running VM for destroy or a node move: shutdown with a forced stop after the
/// timeout, or an immediate stop with `stopOnDestroy`.
pub async fn stop_vm(
    ctx: &Context,
    client: &PveClient,
    node: &str,
    vmid: u32,
    args: &VirtualMachineArgs,
) -> Result<(), ProxmoxError> {
    let stop_timeout = seconds(args.timeout_stop_vm, super::args::DEFAULT_TIMEOUT_STOP_SECONDS);
    if args.stop_on_destroy.unwrap_or(false) {
        return power(ctx, client, node, vmid, "stop", vec![], stop_timeout).await;
    }
    let shutdown = seconds(args.timeout_shutdown_vm, super::args::DEFAULT_TIMEOUT_SECONDS);
    let params =
        vec![("forceStop".to_string(), "1".to_string()), ("timeout".to_string(), shutdown.as_secs().to_string())];
    power(ctx, client, node, vmid, "shutdown", params, shutdown + stop_timeout).await
}

/// The guest agent's view of the network, once it reports a usable address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestNetwork {
    pub interfaces: Vec<GuestInterface>,
}

impl GuestNetwork {
    /// Whether the guest reports a usable address of the wanted family on the
    /// interface with `mac` (net0's), or on any non-loopback interface when it
    /// lists none with that MAC (see [`super::addresses`]).
    pub fn usable(&self, mac: Option<&str>, want_v4: bool, want_v6: bool) -> bool {
        super::addresses::has_usable(&self.interfaces, mac, want_v4, want_v6)
    }
}

/// Waits (bounded by `agent.timeout`) for the guest agent to report a usable
/// address, showing "vm 101: waiting for guest agent, 12s". A timeout is a
/// warning, not an error: the VM exists and runs; its address outputs stay empty.
pub async fn wait_for_guest_network(
    ctx: &Context,
    client: &PveClient,
    node: &str,
    vmid: u32,
    args: &VirtualMachineArgs,
    net0_mac: Option<&str>,
) -> Result<Option<GuestNetwork>, ProxmoxError> {
    let agent = args.agent.clone().unwrap_or_default();
    let wait = agent.wait_for_ip.clone().unwrap_or_default();
    if !agent.enabled.unwrap_or(false) || wait.disabled.unwrap_or(false) {
        return Ok(None);
    }
    // The same parser as `check`, so every timeout check accepts is honoured.
    let timeout = agent.timeout.as_deref().and_then(|t| f::parse_duration(t).ok()).unwrap_or(Duration::from_secs(900));
    let (want_v4, want_v6) = (wait.ipv4.unwrap_or(false), wait.ipv6.unwrap_or(false));
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut last: Option<GuestNetwork> = None;
    loop {
        match qemu::guest_interfaces(client, node, vmid).await {
            Ok(interfaces) => {
                let net = GuestNetwork { interfaces };
                if net.usable(net0_mac, want_v4, want_v6) {
                    return Ok(Some(net));
                }
                last = Some(net);
            }
            Err(e) if qemu::agent_not_ready(&e) || e.is_transient() => {}
            Err(e) => return Err(e),
        }
        if ctx.is_cancelled() {
            return Ok(last);
        }
        if started.elapsed() >= timeout {
            ctx.log(
                Severity::Warning,
                &format!(
                    "vm {vmid}: the guest agent reported no usable address within {}s; the address outputs stay \
                     empty (is the agent installed and running in the guest?)",
                    timeout.as_secs()
                ),
            );
            return Ok(last);
        }
        ctx.status(&format!("vm {vmid}: waiting for guest agent, {}s", started.elapsed().as_secs()));
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// One attempt at the agent's interfaces (refresh must not wait).
pub async fn guest_network_now(client: &PveClient, node: &str, vmid: u32) -> Option<GuestNetwork> {
    qemu::guest_interfaces(client, node, vmid).await.ok().map(|interfaces| GuestNetwork { interfaces })
}

/// Serialises calls per VM within the process (PVE's own lock would otherwise time out).
pub fn vm_guard(vmid: u32) -> std::sync::Arc<tokio::sync::Mutex<()>> {
    static GUARDS: OnceLock<Mutex<std::collections::HashMap<u32, std::sync::Arc<tokio::sync::Mutex<()>>>>> =
        OnceLock::new();
    let mut guards = GUARDS.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    guards.entry(vmid).or_default().clone()
}
