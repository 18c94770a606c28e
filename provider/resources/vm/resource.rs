//! `vm:VirtualMachine`: create (from scratch or by clone), read, update in
//! place and delete, built on [`super::steps`] and the pure halves
//! ([`super::check`], [`super::encode`], [`super::decode`]).
//!
//! Once the VM exists every later failure (config, resize, template, start)
//! returns the state reached so far ([`ResourceError::InitFailed`]), so the
//! engine records the VM and the next `up` continues instead of orphaning it.
//! The id is the VMID; `pulumi import` takes `node/vmid` or `vmid`.

use std::time::Duration;

use super::addresses;
use super::args::{self as a, VirtualMachineArgs, VirtualMachineState};
use super::steps::{self, GuestNetwork};
use super::{check, decode, encode, journal};
use crate::framework::{
    CheckFailure, CheckRequest, Context, CreateRequest, CreateResponse, CustomResource, DeleteRequest, ReadRequest,
    ReadResponse, ResourceError, Severity, UpdateRequest,
};
use crate::proxmox::qemu;
use crate::proxmox::version::Feature;
use crate::proxmox::{ProxmoxError, PveClient};
use crate::resources::pve_resource;

/// The `vm:VirtualMachine` resource.
pub struct VirtualMachine;

fn id_of(vmid: u32) -> String {
    vmid.to_string()
}

/// `vmid` or `node/vmid`.
fn parse_id(id: &str) -> Option<(Option<String>, u32)> {
    match id.split_once('/') {
        Some((node, vmid)) => Some((Some(node.to_string()), vmid.parse().ok()?)),
        None => Some((None, id.parse().ok()?)),
    }
}

/// The state of VM `vmid` as it is now: inputs read back (shaped like `prior`),
/// status, and the guest agent's addresses (`network`, or the agent asked once).
async fn observe(
    client: &PveClient,
    node: &str,
    vmid: u32,
    prior: Option<&VirtualMachineArgs>,
    network: Option<GuestNetwork>,
) -> Result<VirtualMachineState, ProxmoxError> {
    let config = qemu::config(client, node, vmid).await?;
    let status = qemu::status(client, node, vmid).await?;
    let mut args = decode::read_args(&config, prior);
    args.node_name = node.to_string();
    args.vm_id = Some(i64::from(vmid));
    let running = status.status == "running";
    // `started` is the power state; a template is never started.
    if prior.is_none_or(|p| p.started.is_some()) || !running {
        let is_template = config.get("template").is_some_and(|t| t == "1");
        args.started = match prior.and_then(|p| p.started) {
            Some(_) => Some(running),
            None if is_template => None,
            None => Some(running),
        };
    }
    let agent_on = args.agent.as_ref().and_then(|a| a.enabled).unwrap_or(false);
    let network = match network {
        Some(n) => Some(n),
        None if running && agent_on => steps::guest_network_now(client, node, vmid).await,
        None => None,
    };
    let mut state = VirtualMachineState { args, status: Some(status.status), ..Default::default() };
    let nic_macs: Vec<String> =
        (0..32).filter_map(|i| config.get(&format!("net{i}"))).filter_map(|v| addresses::nic_mac(v)).collect();
    let net0_mac = config.get("net0").and_then(|v| addresses::nic_mac(v));
    match network {
        Some(n) => {
            state.network_interface_names = Some(n.interfaces.iter().map(|i| i.name.clone()).collect());
            state.ipv4_addresses =
                Some(n.interfaces.iter().map(|i| i.ipv4.iter().map(|(ip, _)| ip.clone()).collect()).collect());
            state.ipv6_addresses =
                Some(n.interfaces.iter().map(|i| i.ipv6.iter().map(|(ip, _)| ip.clone()).collect()).collect());
            state.mac_addresses =
                Some(n.interfaces.iter().map(|i| i.mac.clone().unwrap_or_default().to_ascii_uppercase()).collect());
            if let Some(mac) = &net0_mac {
                state.ipv4_address = addresses::primary_address(&n.interfaces, mac, false);
                state.ipv6_address = addresses::primary_address(&n.interfaces, mac, true);
            }
            state.ipv4_addresses_by_mac = Some(addresses::by_mac(&n.interfaces, false));
            state.ipv6_addresses_by_mac = Some(addresses::by_mac(&n.interfaces, true));
        }
        None => {
            state.mac_addresses = Some(nic_macs);
            state.network_interface_names = Some(vec![]);
            state.ipv4_addresses = Some(vec![]);
            state.ipv6_addresses = Some(vec![]);
            state.ipv4_addresses_by_mac = Some(Default::default());
            state.ipv6_addresses_by_mac = Some(Default::default());
        }
    }
    Ok(state)
}

/// The state to record when the VM exists but a later step failed.
fn partial(args: &VirtualMachineArgs, vmid: u32, e: ProxmoxError) -> ResourceError {
    let mut args = args.clone();
    args.vm_id = Some(i64::from(vmid));
    let state = VirtualMachineState { args, ..Default::default() };
    ResourceError::init_failed(id_of(vmid), &state, vec![e.to_string()])
}

/// Everything after the VM exists: config, disks, template, power, agent.
/// How often a configuration write is computed again after PVE says another client changed
/// the configuration since it was read.
const CONCURRENT_EDIT_ATTEMPTS: u32 = 5;

async fn converge(
    ctx: &Context,
    client: &PveClient,
    args: &VirtualMachineArgs,
    vmid: u32,
    old: Option<&VirtualMachineArgs>,
) -> Result<Option<GuestNetwork>, ProxmoxError> {
    let node = args.node_name.as_str();
    // PVE never returns the cloud-init password: send it when it is new or changed.
    let password = |a: &VirtualMachineArgs| {
        a.initialization.as_ref().and_then(|i| i.user_account.as_ref()).and_then(|u| u.password.clone())
    };
    let mut attempt = 1;
    let cloud_init_changed = loop {
        let current = qemu::config(client, node, vmid).await?;
        let (mut set, delete) = encode::config_diff(&current, args);
        if let Some(p) = password(args) {
            let changed = old.is_none_or(|o| password(o).as_deref() != Some(p.as_str()));
            if changed && !set.iter().any(|(k, _)| k == "cipassword") {
                set.push(("cipassword".into(), p));
            }
        }
        let cloud_init_changed = old.is_some_and(|o| o.initialization != args.initialization)
            || set.iter().any(|(k, _)| is_cloud_init_key(k))
            || delete.iter().any(|k| is_cloud_init_key(k));
        // The write carries the digest of this read: if someone changed the configuration
        // since, PVE refuses it and the changes are computed again from a fresh read, so
        // their edit (an option inside a disk or NIC string, say) is kept, not overwritten.
        let digest = current.get("digest").cloned();
        match steps::apply_config(ctx, client, node, vmid, set, delete, digest).await {
            Err(e) if e.is_concurrent_edit() && attempt < CONCURRENT_EDIT_ATTEMPTS => {
                ctx.log(
                    Severity::Info,
                    &format!("vm {vmid}: the configuration changed while it was being updated; reading it again"),
                );
                attempt += 1;
            }
            other => {
                other?;
                break cloud_init_changed;
            }
        }
    };
    let current = qemu::config(client, node, vmid).await?;
    steps::resize_disks(ctx, client, node, vmid, &current, args).await?;
    steps::move_disks(ctx, client, node, vmid, args).await?;
    let is_template = current.get("template").is_some_and(|t| t == "1");
    if args.template.unwrap_or(false) && !is_template {
        let status = qemu::status(client, node, vmid).await?;
        if status.status == "running" {
            steps::stop_vm(ctx, client, node, vmid, args).await?;
        }
        if let Some(upid) = qemu::convert_to_template(client, node, vmid).await? {
            pve_resource::wait(
                ctx,
                client,
                &upid,
                Duration::from_secs(600),
                &format!("vm {vmid}: converting to a template"),
            )
            .await?;
        }
        return Ok(None);
    }
    if is_template || args.template.unwrap_or(false) {
        return Ok(None);
    }
    let status = qemu::status(client, node, vmid).await?;
    let running = status.status == "running";
    let start_timeout = steps::seconds(args.timeout_start_vm, a::DEFAULT_TIMEOUT_SECONDS);
    match (args.started.unwrap_or(true), running) {
        (true, false) => steps::power(ctx, client, node, vmid, "start", vec![], start_timeout).await?,
        (false, true) => steps::stop_vm(ctx, client, node, vmid, args).await?,
        (true, true) => {
            // Changes PVE keeps pending (cpu, machine, cloud-init) apply at the next boot.
            let pending = qemu::pending(client, node, vmid).await?;
            if !pending.is_empty() || (cloud_init_changed && old.is_some()) {
                let keys: Vec<String> = pending.iter().map(|p| p.key.clone()).collect();
                ctx.log(
                    Severity::Info,
                    &format!("vm {vmid}: rebooting to apply pending changes ({})", keys.join(", ")),
                );
                if cloud_init_changed {
                    qemu::regenerate_cloudinit(client, node, vmid).await?;
                }
                let reboot = steps::seconds(args.timeout_reboot, a::DEFAULT_TIMEOUT_SECONDS);
                steps::stop_vm(ctx, client, node, vmid, args).await?;
                steps::power(ctx, client, node, vmid, "start", vec![], reboot).await?;
            }
        }
        (false, false) => {}
    }
    if args.started.unwrap_or(true) {
        let net0_mac = current.get("net0").and_then(|v| addresses::nic_mac(v));
        return steps::wait_for_guest_network(ctx, client, node, vmid, args, net0_mac.as_deref()).await;
    }
    Ok(None)
}

fn is_cloud_init_key(k: &str) -> bool {
    k.starts_with("ipconfig")
        || matches!(
            k,
            "cicustom" | "ciuser" | "cipassword" | "sshkeys" | "nameserver" | "searchdomain" | "citype" | "ciupgrade"
        )
}

impl CustomResource for VirtualMachine {
    const TOKEN: &'static str = a::TOKEN;
    type Args = VirtualMachineArgs;
    type State = VirtualMachineState;
    const REPLACEMENTS_BY_VALUE: bool = true;

    fn check(
        &self,
        ctx: &Context,
        req: CheckRequest<'_, VirtualMachineArgs>,
    ) -> Result<VirtualMachineArgs, Vec<CheckFailure>> {
        let root = ctx.config().proxmox().ok().map(
            |s| matches!(&s.auth, crate::config::ProxmoxAuth::Password { username, .. } if username == "root@pam"),
        );
        let args = check::normalise(req.inputs);
        let failures = check::check(&args, root);
        if failures.is_empty() {
            Ok(args)
        } else {
            Err(failures)
        }
    }

    fn replacements(&self, old: &VirtualMachineArgs, new: &VirtualMachineArgs) -> Option<Vec<String>> {
        Some(a::replacement_paths(old, new))
    }

    fn delete_before_replace(&self, old: &VirtualMachineArgs, new: &VirtualMachineArgs) -> bool {
        a::replacement_reuses_vmid(old, new)
    }

    async fn create(
        &self,
        ctx: &Context,
        req: CreateRequest<VirtualMachineArgs>,
    ) -> Result<CreateResponse<VirtualMachineState>, ResourceError> {
        let args = req.inputs;
        if req.preview {
            return Ok(CreateResponse { id: String::new(), state: VirtualMachineState { args, ..Default::default() } });
        }
        let client = pve_resource::client(ctx)?;
        let imports = args.disks.iter().flatten().filter_map(|d| d.import_from.as_deref());
        if imports.into_iter().any(|v| v.split_once(':').is_some_and(|(_, rest)| rest.starts_with("import/"))) {
            client.require(Feature::ImportContent).await.map_err(pve_resource::failed)?;
        }
        let journal_dir = journal::dir();
        let (endpoint, urn) = (client.endpoint().to_string(), ctx.urn().to_string());
        if let Some(left) = journal_dir.as_deref().and_then(|d| journal::find(d, &endpoint, &urn)) {
            let guard = steps::vm_guard(left.vmid);
            let _held = guard.lock().await;
            steps::remove_leftover(ctx, &client, &left).await.map_err(pve_resource::failed)?;
        }
        // Leftovers of an interrupted create of this resource that no local journal knows
        // (another machine, a wiped cache): they carry this URN's create marker.
        let marker = journal::marker(&urn);
        let mut marked = qemu::tagged(&client, &marker).await.map_err(pve_resource::failed)?;
        // A clone carries it as its description's last line (PVE's clone takes no tags).
        if let (Some(_), Some(name)) = (&args.clone, &args.name) {
            for (vmid, node) in qemu::named(&client, name).await.map_err(pve_resource::failed)? {
                let description =
                    qemu::config(&client, &node, vmid).await.ok().and_then(|c| c.get("description").cloned());
                if description.is_some_and(|d| d.lines().any(|l| l.trim() == marker))
                    && !marked.iter().any(|(v, _)| *v == vmid)
                {
                    marked.push((vmid, node));
                }
            }
        }
        for (left, node) in marked {
            let guard = steps::vm_guard(left);
            let _held = guard.lock().await;
            ctx.log(
                Severity::Warning,
                &format!(
                    "vm {left} on {node} carries this resource's create marker ({marker}): an earlier create was \
                     interrupted before Pulumi recorded it; deleting it before creating anew"
                ),
            );
            steps::destroy_vm(ctx, &client, left, &args).await.map_err(pve_resource::failed)?;
        }
        let vmid = match args.vm_id {
            Some(v) => {
                steps::reserve(v as u32).await;
                v as u32
            }
            None => steps::allocate_vmid(&client).await.map_err(pve_resource::failed)?,
        };
        let guard = steps::vm_guard(vmid);
        let _held = guard.lock().await;
        if let Some(dir) = &journal_dir {
            let entry = journal::Entry {
                urn: urn.clone(),
                endpoint: endpoint.clone(),
                node: args.node_name.clone(),
                vmid,
                name: args.name.clone(),
                started: journal::now(),
            };
            if let Err(e) = journal::record(dir, &entry) {
                ctx.log(
                    Severity::Warning,
                    &format!("vm {vmid}: cannot write the create journal in {}: {e}", dir.display()),
                );
            }
        }
        let result = create_vm(ctx, &client, &args, vmid, &marker).await;
        if let Some(dir) = &journal_dir {
            journal::clear(dir, &endpoint, &urn);
        }
        result
    }
    async fn read(
        &self,
        ctx: &Context,
        req: ReadRequest<VirtualMachineArgs, VirtualMachineState>,
    ) -> Result<Option<ReadResponse<VirtualMachineArgs, VirtualMachineState>>, ResourceError> {
        let (node_hint, vmid) = parse_id(&req.id).ok_or_else(|| {
            ResourceError::Failed(format!("{:?} is not a VM id; expected a VMID such as 101, or node/vmid", req.id))
        })?;
        let client = pve_resource::client(ctx)?;
        // The VM may have moved (HA, a manual migration): find it wherever it is. Not seeing it
        // is not its absence: `locate` asks the node it was on before saying it is gone.
        let known_node = node_hint.clone().or_else(|| req.state.as_ref().map(|s| s.args.node_name.clone()));
        let Some(location) = qemu::locate(&client, vmid, known_node.as_deref()).await.map_err(pve_resource::failed)?
        else {
            return Ok(None);
        };
        if let Some(hint) = node_hint.filter(|h| *h != location.node) {
            ctx.log(Severity::Info, &format!("vm {vmid} is on node {}, not {hint}", location.node));
        }
        let prior = req.inputs.as_ref();
        let mut state = match observe(&client, &location.node, vmid, prior, None).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(pve_resource::failed(e)),
        };
        // Without an answer from the agent now, keep the addresses last seen.
        if let Some(old) = &req.state {
            if state.ipv4_addresses.as_ref().is_none_or(Vec::is_empty) && state.status.as_deref() == Some("running") {
                state.ipv4_addresses = old.ipv4_addresses.clone();
                state.ipv6_addresses = old.ipv6_addresses.clone();
                state.ipv4_address = old.ipv4_address.clone();
                state.ipv6_address = old.ipv6_address.clone();
                state.ipv4_addresses_by_mac = old.ipv4_addresses_by_mac.clone();
                state.ipv6_addresses_by_mac = old.ipv6_addresses_by_mac.clone();
                state.network_interface_names = old.network_interface_names.clone();
                state.mac_addresses = old.mac_addresses.clone().or(state.mac_addresses);
            }
        }
        let mut inputs = state.args.clone();
        // An allocated VMID is an output, not an input the program gave: were it
        // read back into the inputs, the next `up` would see `vmId` removed and replace the VM.
        if prior.is_some_and(|p| p.vm_id.is_none()) {
            inputs.vm_id = None;
        }
        Ok(Some(ReadResponse { id: id_of(vmid), inputs, state }))
    }

    async fn update(
        &self,
        ctx: &Context,
        req: UpdateRequest<VirtualMachineArgs, VirtualMachineState>,
    ) -> Result<VirtualMachineState, ResourceError> {
        let (_, vmid) = parse_id(&req.id).ok_or_else(|| ResourceError::Failed(format!("bad VM id {:?}", req.id)))?;
        let args = with_id(&req.inputs, vmid);
        if req.preview {
            let mut state = req.old_state.clone();
            state.args = args;
            return Ok(state);
        }
        let client = pve_resource::client(ctx)?;
        let guard = steps::vm_guard(vmid);
        let _held = guard.lock().await;
        let location = qemu::locate(&client, vmid, Some(&req.old_state.args.node_name))
            .await
            .map_err(pve_resource::failed)?
            .ok_or_else(|| ResourceError::Failed(format!("vm {vmid} no longer exists: run `pulumi refresh`")))?;
        if location.node != args.node_name {
            let timeout = steps::seconds(args.timeout_migrate, a::DEFAULT_TIMEOUT_SECONDS);
            steps::migrate_vm(ctx, &client, &location.node, vmid, &args.node_name, location.running, timeout)
                .await
                .map_err(pve_resource::failed)?;
        }
        let network = converge(ctx, &client, &args, vmid, Some(&req.old_inputs))
            .await
            .map_err(|e| ResourceError::Failed(e.to_string()))?;
        // A create that could not remove its marker left it for the next update.
        steps::clear_marker(ctx, &client, &args.node_name, vmid).await.map_err(pve_resource::failed)?;
        let state =
            observe(&client, &args.node_name, vmid, Some(&args), network).await.map_err(pve_resource::failed)?;
        Ok(VirtualMachineState { args, ..state })
    }

    async fn delete(&self, ctx: &Context, req: DeleteRequest<VirtualMachineState>) -> Result<(), ResourceError> {
        let Some((_, vmid)) = parse_id(&req.id) else { return Ok(()) };
        let client = pve_resource::client(ctx)?;
        let guard = steps::vm_guard(vmid);
        let _held = guard.lock().await;
        steps::destroy_vm(ctx, &client, vmid, &req.state.args).await.map_err(pve_resource::failed)
    }
}

/// Creates VM `vmid` (from scratch or by clone), converges it to `args` and reads it
/// back. A failure after the VM exists returns it as partial state.
async fn create_vm(
    ctx: &Context,
    client: &PveClient,
    args: &VirtualMachineArgs,
    vmid: u32,
    marker: &str,
) -> Result<CreateResponse<VirtualMachineState>, ResourceError> {
    let node = args.node_name.clone();
    let created = if args.clone.is_some() {
        steps::clone_vm(ctx, client, args, vmid, marker).await
    } else {
        let mut params = encode::create_params(args, i64::from(vmid));
        // The create call itself marks the VM, so it is never without the marker while
        // Pulumi does not know it.
        match params.iter_mut().find(|(k, _)| k == "tags") {
            Some((_, tags)) => *tags = format!("{tags};{marker}"),
            None => params.push(("tags".into(), marker.to_string())),
        }
        let timeout = steps::seconds(args.timeout_create, a::DEFAULT_TIMEOUT_SECONDS);
        steps::start_creation(ctx, client, &node, vmid, &format!("creating on {node}"), timeout, || {
            qemu::create(client, &node, &params)
        })
        .await
    };
    if let Err(e) = created {
        // "already exists" answered to a first attempt: the VMID is another VM's. Never adopt it.
        if matches!(e, ProxmoxError::Api { .. }) && e.is_already_exists() {
            return Err(pve_resource::failed(e));
        }
        // Did the VM come to exist anyway (a task that failed late)? Then keep it in state.
        return match qemu::locate(client, vmid, Some(&node)).await {
            Ok(Some(_)) => Err(partial(args, vmid, e)),
            _ => Err(pve_resource::failed(e)),
        };
    }
    let network = converge(ctx, client, args, vmid, None).await.map_err(|e| partial(args, vmid, e))?;
    steps::clear_marker(ctx, client, &node, vmid).await.map_err(|e| partial(args, vmid, e))?;
    let state = observe(client, &node, vmid, Some(args), network).await.map_err(|e| partial(args, vmid, e))?;
    Ok(CreateResponse { id: id_of(vmid), state: VirtualMachineState { args: with_id(args, vmid), ..state } })
}

fn with_id(args: &VirtualMachineArgs, vmid: u32) -> VirtualMachineArgs {
    let mut args = args.clone();
    if args.vm_id.is_none() {
        args.vm_id = Some(i64::from(vmid));
    }
    args
}
