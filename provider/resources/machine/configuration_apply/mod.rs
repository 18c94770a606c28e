//! `machine:ConfigurationApply`: applies a machine configuration (with patches)
//! to one Talos node over the Talos API, and waits until the node runs it.
//!
//! Create and Update probe the node: in maintenance mode (it answers without a
//! client certificate) the configuration goes over insecure TLS and the node
//! reboots onto the configuration's static address; a connection dropped
//! during that apply counts as possibly applied, and either way the node is
//! polled with mutual TLS (at `endpoint`/`node` and at the static addresses)
//! until its running configuration is the one applied. A configured node gets
//! the configuration over mutual TLS in `applyMode`; when it reboots, the same
//! wait follows. A node that already runs the configuration gets nothing.
//! Read fetches the running configuration (`/system/state/config.yaml`) and
//! reports a different one as drift; an unreachable node keeps its state.
//! Delete takes a control plane out of etcd first (scale-down, [`super::scale_down`]), then
//! resets the node when `onDestroy.reset` is set, else forgets it.
//! `node` changes replace, except when the new `node` is a static address the
//! applied configuration gave the same machine.
//!
//! Owns: the resource's types and operations. The pure parts are in
//! [`super::apply_plan`], node access and waits in [`super::talos_node`].

use serde::{Deserialize, Serialize};

use super::apply_plan::{self as plan, ApplyMode};
use super::talos_node::{self as talos_node, Awaited, Deadline, Probed};
use super::timeouts::{self, Operation, Timeouts};
use super::upgrade::{self, image as install, kubernetes};
use crate::framework::{
    CheckFailure, CheckRequest, Context, CreateRequest, CreateResponse, CustomResource, DeleteRequest, ReadRequest,
    ReadResponse, ResourceError, Severity, UpdateRequest,
};
use crate::schema::PulumiType;
use crate::talos::api::machine::apply_configuration_request::Mode;
use crate::talos::secrets::ClientConfiguration;

/// Inputs of `machine:ConfigurationApply`.
#[derive(Debug, Clone, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigurationApplyArgs {
    /// The admin client configuration (`clientConfiguration` of `machine.Secrets`), for mutual TLS
    /// with the configured node.
    pub client_configuration: ClientConfiguration,
    /// The machine configuration to apply, e.g. `machineConfiguration` of `machine.getConfiguration`.
    #[pulumi(secret)]
    pub machine_configuration_input: String,
    /// The node's address (IP or host name): where a node in maintenance mode answers, and the
    /// node a configured cluster is asked about. Changing it replaces the resource, unless the new
    /// address is a static address the applied configuration gave this node (a maintenance-mode
    /// DHCP address read from the guest agent becomes the configured one).
    pub node: String,
    /// The Talos API endpoint to reach the configured node through (another node, a load
    /// balancer); defaults to `node`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Patches applied to `machineConfigurationInput` in order, as Talos applies them (YAML
    /// strategic merge patches or RFC 6902 JSON patches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_patches: Option<Vec<String>>,
    /// How a configured node takes the configuration: `auto` (default; reboot only when needed),
    /// `reboot`, `no_reboot`, `staged` (at the next reboot) or `staged_if_needing_reboot`. A node in
    /// maintenance mode always reboots into its first configuration.
    #[pulumi(default = "\"auto\"")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply_mode: Option<String>,
    /// What destroying the resource does to the node (default: nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_destroy: Option<OnDestroy>,
    /// The installer image the node runs (`factory.talos.dev/nocloud-installer/<schematic>:v1.12.4`):
    /// by default the configuration's `machine.install.image`, which is what to change. A new one
    /// (another version or schematic) upgrades the node in place, one node of the cluster at a
    /// time (ADR 0012); the preview shows it from → to. Set it only to assert that image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installer_image: Option<String>,
    /// The Kubernetes version the node runs (`v1.35.0`): by default the tag of the
    /// configuration's kubelet image, which is what to change (`getConfiguration`'s
    /// `kubernetesVersion`). A new one rolls the node's Kubernetes components in place, one
    /// component at a time and one node of the cluster at a time (ADR 0012); the preview shows it
    /// from → to. Set it only to assert that version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// How in-place Talos upgrades and Kubernetes rollouts of this node's cluster proceed (when
    /// the configuration's `machine.install.image` or Kubernetes images change).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// How long create, update and delete wait for the node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<Timeouts>,
}

/// What destroying a `ConfigurationApply` does to the node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "machine:ConfigurationApplyOnDestroy")]
pub struct OnDestroy {
    /// Reset the node: wipe its configuration (STATE) and data (EPHEMERAL). Default false: the
    /// node keeps running its configuration.
    #[pulumi(default = "false")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset: Option<bool>,
    /// Leave etcd (control planes) and drain before the reset. Default true.
    #[pulumi(default = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graceful: Option<bool>,
    /// Reboot after the reset (into maintenance mode) instead of powering off. Default false.
    #[pulumi(default = "false")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reboot: Option<bool>,
    /// A control plane leaves etcd first (scale-down; when the node does not answer, another
    /// control plane removes its member), so the cluster keeps its quorum. Removing the last
    /// member is refused unless the whole cluster goes (its `machine:Bootstrap` is destroyed in
    /// the same run, as `pulumi destroy` does). Default true; false forgets the node as it is.
    #[pulumi(default = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leave_etcd: Option<bool>,
}

/// How a cluster's nodes take a new installer image (ADR 0012): control planes one at a time,
/// workers in batches, each healthy before the next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "machine:ConfigurationApplyRollout")]
pub struct Rollout {
    /// How many workers of the cluster upgrade at once (default 1). The first node of the
    /// cluster to upgrade in a run sets it for the run.
    #[pulumi(default = "1")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_batch_size: Option<u32>,
}

/// A machine configuration applied to a Talos node over the Talos API.
#[derive(Debug, Clone, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationApplyState {
    #[serde(flatten)]
    pub args: ConfigurationApplyArgs,
    /// The configuration applied: `machineConfigurationInput` with `configPatches` applied
    /// (known at preview).
    #[pulumi(secret, always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_configuration: Option<String>,
    /// Set while the configuration is only staged (`applyMode: staged`, or
    /// `staged_if_needing_reboot` choosing it): the node's boot ID when it was staged. The node
    /// runs its old configuration until it boots again; until then `refresh` says so and every
    /// `preview`/`up` shows an update that applies the configuration again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staged_boot_id: Option<String>,
    /// The Talos version the node runs (`Version`), as last seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub talos_version: Option<String>,
    /// The installer image the node was installed or upgraded with, as far as the provider
    /// knows: `installerImage` once the node runs its version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installed_image: Option<String>,
}

/// The `machine:ConfigurationApply` resource.
pub struct ConfigurationApply;

impl ConfigurationApplyArgs {
    fn patches(&self) -> &[String] {
        self.config_patches.as_deref().unwrap_or_default()
    }

    fn render(&self) -> Result<String, CheckFailure> {
        plan::render(&self.machine_configuration_input, self.patches())
    }

    fn label(&self) -> String {
        format!("talos {}", self.node)
    }

    fn worker_batch(&self) -> usize {
        self.rollout.as_ref().and_then(|r| r.worker_batch_size).unwrap_or(1) as usize
    }

    fn mode(&self) -> ApplyMode {
        ApplyMode::parse(self.apply_mode.as_deref()).unwrap_or(ApplyMode::Auto)
    }
}

/// Everything wrong with `args`, by property path.
fn failures(args: &ConfigurationApplyArgs) -> Vec<CheckFailure> {
    let mut f = Vec::new();
    if args.node.trim().is_empty() {
        f.push(CheckFailure::new("node", "must not be empty; give the node's address, e.g. 192.168.1.211"));
    }
    if args.rollout.as_ref().and_then(|r| r.worker_batch_size) == Some(0) {
        f.push(CheckFailure::new("rollout.workerBatchSize", "must be at least 1"));
    }
    if args.endpoint.as_deref().is_some_and(|e| e.trim().is_empty()) {
        f.push(CheckFailure::new("endpoint", "must not be empty; leave it unset to reach the node at `node`"));
    }
    if let Err(e) = ApplyMode::parse(args.apply_mode.as_deref()) {
        f.push(CheckFailure::new("applyMode", e));
    }
    if let Err(e) = args.render() {
        f.push(e);
    }
    f.extend(timeouts::failures(args.timeouts.as_ref()));
    f
}

fn invalid(f: CheckFailure) -> ResourceError {
    ResourceError::Invalid(vec![f])
}

/// How far an apply got when it stopped.
enum Stopped {
    /// Nothing was applied.
    Clean(String),
    /// The node may run the configuration, or be on its way to it.
    Uncertain(String),
}

/// Applies `rendered` to the node and waits until it runs it; `Some(boot ID)` when it was only
/// staged (in effect after the next boot). `staged_at`: the boot ID a previous apply staged it
/// at, so a node still on that boot is not taken for running it.
async fn converge(
    ctx: &Context,
    args: &ConfigurationApplyArgs,
    rendered: &str,
    deadline: &Deadline,
    staged_at: Option<&str>,
) -> Result<Option<String>, Stopped> {
    let label = args.label();
    let client_cfg = &args.client_configuration;
    let targets = plan::configured_targets(&args.node, args.endpoint.as_deref(), rendered);
    let probed = loop {
        match talos_node::probe(&targets, &args.node, client_cfg).await {
            Ok(p) => break p,
            Err(e) if talos_node::transient(&e) => {
                ctx.status(&format!("{label}: waiting for the Talos API, {}s", deadline.elapsed_secs()));
                if !deadline.pause(ctx).await {
                    return Err(Stopped::Clean(format!("{label}: no answer within {:?}: {e}", deadline.total())));
                }
            }
            Err(e) => return Err(Stopped::Clean(format!("{label}: {e}"))),
        }
    };
    let waiting = "waiting for the node to come back configured";
    match probed {
        Probed::Maintenance(client) => {
            ctx.status(&format!("{label}: applying the configuration in maintenance mode"));
            match client.apply_configuration(rendered, args.mode().maintenance_wire(), false).await {
                Ok(_) => {}
                Err(e) if e.outcome_unknown() => ctx.log(
                    Severity::Info,
                    &format!(
                        "{label}: the connection dropped while applying ({e}); the node may have switched to its \
                         static address: checking whether it took the configuration"
                    ),
                ),
                Err(e) => return Err(Stopped::Clean(format!("{label}: {e}"))),
            }
            let awaited = Awaited { config: rendered, not_boot: None };
            talos_node::wait_configured(ctx, &targets, client_cfg, &awaited, deadline, &label, waiting)
                .await
                .map(|_| None)
                .map_err(Stopped::Uncertain)
        }
        Probed::Configured(client, _) => {
            let boot = talos_node::boot_id(&client).await;
            // The configuration file holds a staged configuration too: the same text is "running"
            // only once the node has booted since it was staged.
            let still_staged = staged_at.is_some() && staged_at == boot.as_deref();
            if !still_staged
                && talos_node::running_config(&client).await.is_ok_and(|r| talos_node::same_config(&r, rendered))
            {
                ctx.log(Severity::Debug, &format!("{label}: the node already runs this configuration"));
                return Ok(None);
            }
            let mode = match args.mode() {
                ApplyMode::StagedIfNeedingReboot => {
                    let dry = client.apply_configuration(rendered, Mode::Auto, true).await;
                    match dry {
                        Ok(r) if r.mode == Mode::Reboot as i32 => {
                            ctx.log(
                                Severity::Warning,
                                &format!(
                                    "{label}: this change needs a reboot: staged, in effect after the next reboot"
                                ),
                            );
                            Mode::Staged
                        }
                        _ => Mode::Auto,
                    }
                }
                m => m.wire(),
            };
            ctx.status(&format!("{label}: applying the configuration ({})", mode.as_str_name().to_lowercase()));
            let reply = match client.apply_configuration(rendered, mode, false).await {
                Ok(r) => r,
                Err(e) if e.outcome_unknown() => {
                    ctx.log(Severity::Info, &format!("{label}: the node stopped answering while applying ({e})"));
                    let awaited = Awaited { config: rendered, not_boot: None };
                    return talos_node::wait_configured(ctx, &targets, client_cfg, &awaited, deadline, &label, waiting)
                        .await
                        .map(|_| None)
                        .map_err(Stopped::Uncertain);
                }
                Err(e) => return Err(Stopped::Clean(format!("{label}: {e}"))),
            };
            for w in &reply.warnings {
                ctx.log(Severity::Warning, &format!("{label}: {w}"));
            }
            match Mode::try_from(reply.mode) {
                Ok(Mode::Reboot) => {
                    ctx.log(Severity::Info, &format!("{label}: rebooting to apply the configuration"));
                    // The configuration is on disk before the reboot: wait for a new boot ID too.
                    let awaited = Awaited { config: rendered, not_boot: boot.as_deref() };
                    let what = "waiting for the node to reboot into the configuration";
                    talos_node::wait_configured(ctx, &targets, client_cfg, &awaited, deadline, &label, what)
                        .await
                        .map(|_| None)
                        .map_err(Stopped::Uncertain)
                }
                Ok(Mode::Staged) => {
                    ctx.log(
                        Severity::Info,
                        &format!("{label}: configuration staged; it takes effect at the next reboot"),
                    );
                    // Unknown boot ID: any boot ID read later differs, so it counts as in effect.
                    Ok(Some(boot.unwrap_or_default()))
                }
                _ => Ok(None),
            }
        }
    }
}

/// After the apply: upgrades the node in place when its configuration's installer image asks for
/// another Talos (ADR 0012). Returns the version it runs and the image it runs, if known.
async fn upgrade_step(
    ctx: &Context,
    args: &ConfigurationApplyArgs,
    rendered: &str,
    recorded: Option<&str>,
    deadline: &Deadline,
) -> Result<(Option<String>, Option<String>), Stopped> {
    let Some(image) = install::install_image(rendered) else { return Ok((None, None)) };
    let (label, targets) = (args.label(), plan::configured_targets(&args.node, args.endpoint.as_deref(), rendered));
    let req = upgrade::Request {
        label: &label,
        targets: &targets,
        maintenance_address: &args.node,
        client: &args.client_configuration,
        rendered,
        image: &image,
        recorded,
        worker_batch: args.worker_batch(),
    };
    match upgrade::upgrade_node(ctx, &req, deadline).await {
        Ok(version) => {
            let runs_it = install::Image::parse(&image).is_ok_and(|i| i.version.text == version);
            Ok((Some(version), runs_it.then_some(image)))
        }
        Err(upgrade::Failed::Clean(m)) => Err(Stopped::Clean(m)),
        Err(upgrade::Failed::Uncertain(m)) => Err(Stopped::Uncertain(m)),
    }
}

/// Before any call to the node: an installer image from the provider's Image Factory must name
/// a version and a schematic the factory has.
async fn check_factory(ctx: &Context, label: &str, image: &str) -> Result<(), ResourceError> {
    let Ok(wanted) = install::Image::parse(image) else { return Ok(()) };
    let base = ctx.config().image_factory_url();
    let host = base.split("://").nth(1).unwrap_or(&base).split('/').next().unwrap_or_default().to_string();
    if wanted.host() != host {
        return Ok(());
    }
    let factory = crate::talos::factory_client::FactoryClient::new(&base)
        .map_err(|e| ResourceError::Failed(format!("{label}: {e}")))?;
    let versions = factory.versions().await.map_err(|e| ResourceError::Failed(format!("{label}: {e}")))?;
    if !versions.contains(&wanted.version.text) {
        return Err(ResourceError::Failed(format!(
            "{label}: the Image Factory at {base} has no Talos {} (installer image {image}); no node was touched",
            wanted.version
        )));
    }
    if let Some(id) = &wanted.schematic {
        if factory.schematic(id).await.map_err(|e| ResourceError::Failed(format!("{label}: {e}")))?.is_none() {
            return Err(ResourceError::Failed(format!(
                "{label}: the Image Factory at {base} has no schematic {id} (installer image {image}); no node \
                 was touched"
            )));
        }
    }
    Ok(())
}

fn state_of(args: &ConfigurationApplyArgs, rendered: String) -> ConfigurationApplyState {
    ConfigurationApplyState {
        args: args.clone(),
        machine_configuration: Some(rendered),
        staged_boot_id: None,
        talos_version: None,
        installed_image: None,
    }
}

impl CustomResource for ConfigurationApply {
    const TOKEN: &'static str = "proxmox-talos:machine:ConfigurationApply";
    type Args = ConfigurationApplyArgs;
    type State = ConfigurationApplyState;

    fn check(
        &self,
        _ctx: &Context,
        req: CheckRequest<'_, ConfigurationApplyArgs>,
    ) -> Result<ConfigurationApplyArgs, Vec<CheckFailure>> {
        let f = failures(&req.inputs);
        if !f.is_empty() {
            return Err(f);
        }
        let mut inputs = req.inputs;
        let old_config = req.olds.as_ref().and_then(|o| o.render().ok());
        // A resource recorded before an input that Check fills existed gets it only when its
        // value changes: a provider upgrade alone shows no diff.
        let old_has = |f: fn(&ConfigurationApplyArgs) -> bool| req.olds.as_ref().is_none_or(f);
        let fill = |old_had: bool, old: &Option<String>, new: &str| old_had || old.as_deref() != Some(new);
        let old_image = old_config.as_deref().and_then(install::install_image);
        let old_k8s = old_config.as_deref().and_then(kubernetes::version);
        if let Ok(new_config) = inputs.render() {
            super::scale_down::saw(&inputs, &new_config);
            let image = install::install_image(&new_config);
            match (&inputs.installer_image, &image) {
                (Some(set), Some(configured)) if set.trim() != configured => {
                    return Err(vec![CheckFailure::new(
                        "installerImage",
                        format!(
                            "{set:?} is not the configuration's machine.install.image {configured:?}: change the \
                             image in the configuration (e.g. getConfiguration's installImage) and leave \
                             installerImage unset"
                        ),
                    )]);
                }
                (None, Some(configured)) if fill(old_has(|o| o.installer_image.is_some()), &old_image, configured) => {
                    inputs.installer_image = Some(configured.clone())
                }
                _ => {}
            }
            if let Err(e) = install::check_change(old_config.as_deref(), &new_config) {
                return Err(vec![CheckFailure::new("installerImage", e)]);
            }
            match (&inputs.kubernetes_version, kubernetes::version(&new_config)) {
                (Some(set), Some(configured)) if set.trim() != configured => {
                    return Err(vec![CheckFailure::new(
                        "kubernetesVersion",
                        format!(
                            "{set:?} is not the version of the configuration's kubelet image ({configured:?}): \
                             change getConfiguration's kubernetesVersion and leave kubernetesVersion unset"
                        ),
                    )]);
                }
                (None, Some(configured))
                    if fill(old_has(|o| o.kubernetes_version.is_some()), &old_k8s, &configured) =>
                {
                    inputs.kubernetes_version = Some(configured)
                }
                _ => {}
            }
            if let Err(e) = kubernetes::check_change(old_config.as_deref(), &new_config) {
                return Err(vec![CheckFailure::new("kubernetesVersion", e)]);
            }
        }
        // The same machine, now reached on a static address its configuration gave it (a VM's
        // guest-agent address moves from its DHCP lease to it after the apply): keep the node
        // it was applied through, so the move is no change at all. Every call also tries the
        // configuration's static addresses.
        if let Some(old) = &req.olds {
            let old_config = old.render().ok();
            if old.node != inputs.node && plan::same_machine(&old.node, old_config.as_deref(), &inputs.node) {
                inputs.node = old.node.clone();
            }
        }
        Ok(inputs)
    }

    /// A staged configuration is not in effect: every preview shows it as an update until the
    /// node has rebooted into it (refresh clears the mark then).
    /// A node that runs another Talos version than the recorded configuration's installer image
    /// names (a refresh saw it, or a rollout stopped) shows as an update too: `up` upgrades it.
    fn due_changes(&self, state: &ConfigurationApplyState, _inputs: &ConfigurationApplyArgs) -> Vec<String> {
        let mut due = Vec::new();
        if state.staged_boot_id.is_some() {
            due.push("stagedBootId".into());
        }
        let recorded = state.machine_configuration.as_deref().and_then(install::install_image);
        let recorded = recorded.and_then(|i| install::Image::parse(&i).ok());
        if let (Some(running), Some(recorded)) = (&state.talos_version, &recorded) {
            if *running != recorded.version.text {
                due.push("talosVersion".into());
            }
        }
        due
    }

    fn replacements(&self, old: &ConfigurationApplyArgs, new: &ConfigurationApplyArgs) -> Option<Vec<String>> {
        let old_config = old.render().ok();
        let same = plan::same_machine(&old.node, old_config.as_deref(), &new.node);
        Some(if same { vec![] } else { vec!["node".into()] })
    }

    async fn create(
        &self,
        ctx: &Context,
        req: CreateRequest<ConfigurationApplyArgs>,
    ) -> Result<CreateResponse<ConfigurationApplyState>, ResourceError> {
        let args = req.inputs;
        let rendered = args.render().map_err(invalid)?;
        if req.preview {
            return Ok(CreateResponse { id: String::new(), state: state_of(&args, rendered) });
        }
        let deadline = Deadline::after(timeouts::resolve(ctx, args.timeouts.as_ref(), Operation::Create));
        if let Some(image) = install::install_image(&rendered) {
            check_factory(ctx, &args.label(), &image).await?;
        }
        let converged = match converge(ctx, &args, &rendered, &deadline, None).await {
            Ok(None) => upgrade_step(ctx, &args, &rendered, None, &deadline).await.map(|v| (None, v)),
            Ok(staged) => Ok((staged, (None, None))),
            Err(e) => Err(e),
        };
        match converged {
            Ok((staged, (talos_version, installed_image))) => Ok(CreateResponse {
                id: args.node.clone(),
                state: ConfigurationApplyState {
                    staged_boot_id: staged,
                    talos_version,
                    installed_image,
                    ..state_of(&args, rendered)
                },
            }),
            Err(Stopped::Clean(m)) => Err(ResourceError::Failed(m)),
            // Record the resource: the next `up` continues with an update instead of losing it.
            Err(Stopped::Uncertain(m)) => {
                Err(ResourceError::init_failed(args.node.clone(), &state_of(&args, rendered), vec![m]))
            }
        }
    }

    async fn read(
        &self,
        ctx: &Context,
        req: ReadRequest<ConfigurationApplyArgs, ConfigurationApplyState>,
    ) -> Result<Option<ReadResponse<ConfigurationApplyArgs, ConfigurationApplyState>>, ResourceError> {
        let (Some(mut inputs), Some(mut state)) = (req.inputs, req.state) else {
            return Err(ResourceError::Failed(format!(
                "{} cannot be imported: its inputs (the configuration and patches) cannot be read back from \
                 the node; declare the resource and run `pulumi up`, which applies nothing when the node already \
                 runs the configuration",
                Self::TOKEN
            )));
        };
        let label = inputs.label();
        let recorded = state.machine_configuration.clone().map(Ok).unwrap_or_else(|| inputs.render());
        let recorded = recorded.map_err(invalid)?;
        let targets = plan::configured_targets(&inputs.node, inputs.endpoint.as_deref(), &recorded);
        let running = match talos_node::probe(&targets, &inputs.node, &inputs.client_configuration).await {
            Ok(Probed::Configured(client, _)) => {
                if let Ok(version) = upgrade::running_version(&client).await {
                    if state.talos_version.as_ref().is_some_and(|v| *v != version) {
                        ctx.log(Severity::Info, &format!("{label}: runs Talos {version}"));
                        state.installed_image = None;
                    }
                    state.talos_version = Some(version);
                }
                if let Some(staged_at) = state.staged_boot_id.clone() {
                    match talos_node::boot_id(&client).await {
                        Some(now) if now == staged_at => ctx.log(
                            Severity::Warning,
                            &format!(
                                "{label}: the configuration is staged, not running: the node runs its previous \
                                 configuration until it reboots; `up` applies it again"
                            ),
                        ),
                        // Booted since: the staged configuration is the running one now.
                        Some(_) => state.staged_boot_id = None,
                        None => {}
                    }
                }
                talos_node::running_config(&client).await
            }
            Ok(Probed::Maintenance(_)) => {
                ctx.log(
                    Severity::Warning,
                    &format!(
                        "{label}: the node is in maintenance mode: its configuration is gone; `up` applies it again"
                    ),
                );
                return Ok(None);
            }
            Err(e) => Err(e),
        };
        match running {
            Ok(running) if !talos_node::same_config(&running, &recorded) => {
                ctx.log(
                    Severity::Warning,
                    &format!(
                        "{label}: the node runs another configuration than the one applied; `up` applies it again"
                    ),
                );
                // Inputs that reproduce what the node runs, so the program's own show as a change.
                inputs.machine_configuration_input = running.clone();
                inputs.config_patches = None;
                state.args = inputs.clone();
                state.machine_configuration = Some(running);
            }
            Ok(_) => {}
            Err(e) => ctx.log(
                Severity::Warning,
                &format!("{label}: cannot read the node's configuration, keeping the recorded state: {e}"),
            ),
        }
        Ok(Some(ReadResponse { id: req.id, inputs, state }))
    }

    async fn update(
        &self,
        ctx: &Context,
        req: UpdateRequest<ConfigurationApplyArgs, ConfigurationApplyState>,
    ) -> Result<ConfigurationApplyState, ResourceError> {
        let args = req.inputs;
        let rendered = args.render().map_err(invalid)?;
        let old = &req.old_state;
        if req.preview {
            let kept = ConfigurationApplyState {
                talos_version: old.talos_version.clone(),
                installed_image: old.installed_image.clone(),
                ..state_of(&args, rendered)
            };
            return Ok(kept);
        }
        if let Some(image) = install::install_image(&rendered) {
            if old.installed_image.as_deref() != Some(image.as_str()) {
                check_factory(ctx, &args.label(), &image).await?;
            }
        }
        let deadline = Deadline::after(timeouts::resolve(ctx, args.timeouts.as_ref(), Operation::Update));
        // Until the upgrade is confirmed the state keeps what the node ran before.
        let partial = ConfigurationApplyState {
            talos_version: old.talos_version.clone(),
            installed_image: old.installed_image.clone(),
            ..state_of(&args, rendered.clone())
        };
        // New Kubernetes images: component by component first, then the whole configuration.
        if let Some(ran) = old.machine_configuration.as_deref().filter(|_| old.staged_boot_id.is_none()) {
            let (label, targets) = (args.label(), plan::configured_targets(&args.node, args.endpoint.as_deref(), ran));
            let k8s = upgrade::Request {
                label: &label,
                targets: &targets,
                maintenance_address: &args.node,
                client: &args.client_configuration,
                rendered: &rendered,
                image: "",
                recorded: None,
                worker_batch: args.worker_batch(),
            };
            match kubernetes::roll(ctx, &k8s, ran, &deadline).await {
                Ok(()) => {}
                Err(upgrade::Failed::Clean(m)) => return Err(ResourceError::Failed(m)),
                // Recorded as still running the old configuration: the next `up` resumes the
                // rollout after the last component the node runs.
                Err(upgrade::Failed::Uncertain(m)) => {
                    let during = ConfigurationApplyState { machine_configuration: Some(ran.to_string()), ..partial };
                    return Err(ResourceError::init_failed(req.id, &during, vec![m]));
                }
            }
        }
        let staged = match converge(ctx, &args, &rendered, &deadline, old.staged_boot_id.as_deref()).await {
            Ok(staged) => staged,
            Err(Stopped::Clean(m)) => return Err(ResourceError::Failed(m)),
            Err(Stopped::Uncertain(m)) => return Err(ResourceError::init_failed(req.id, &partial, vec![m])),
        };
        if staged.is_some() {
            return Ok(ConfigurationApplyState { staged_boot_id: staged, ..partial });
        }
        match upgrade_step(ctx, &args, &rendered, old.installed_image.as_deref(), &deadline).await {
            Ok((talos_version, installed_image)) => {
                Ok(ConfigurationApplyState { talos_version, installed_image, ..state_of(&args, rendered) })
            }
            Err(Stopped::Clean(m) | Stopped::Uncertain(m)) => {
                Err(ResourceError::init_failed(req.id, &partial, vec![m]))
            }
        }
    }

    async fn delete(&self, ctx: &Context, req: DeleteRequest<ConfigurationApplyState>) -> Result<(), ResourceError> {
        let args = &req.state.args;
        let on_destroy = args.on_destroy.clone().unwrap_or_default();
        let label = args.label();
        let recorded = req.state.machine_configuration.clone().or_else(|| args.render().ok()).unwrap_or_default();
        if on_destroy.leave_etcd.unwrap_or(true) {
            super::scale_down::leave(ctx, args, &recorded, &label).await?;
        }
        if !on_destroy.reset.unwrap_or(false) {
            return Ok(());
        }
        let client_cfg = &args.client_configuration;
        let targets = plan::configured_targets(&args.node, args.endpoint.as_deref(), &recorded);
        let deadline = Deadline::after(timeouts::resolve(ctx, args.timeouts.as_ref(), Operation::Delete));
        let (client, target) = loop {
            match talos_node::probe(&targets, &args.node, client_cfg).await {
                Ok(Probed::Configured(c, t)) => break (c, t),
                Ok(Probed::Maintenance(_)) => {
                    ctx.log(Severity::Info, &format!("{label}: already in maintenance mode, nothing to reset"));
                    return Ok(());
                }
                Err(e) if talos_node::transient(&e) => {
                    ctx.status(&format!(
                        "{label}: waiting for the Talos API to reset the node, {}s",
                        deadline.elapsed_secs()
                    ));
                    if !deadline.pause(ctx).await {
                        return Err(ResourceError::Failed(format!("{label}: cannot reset the node: {e}")));
                    }
                }
                Err(e) => return Err(ResourceError::Failed(format!("{label}: cannot reset the node: {e}"))),
            }
        };
        let (graceful, reboot) = (on_destroy.graceful.unwrap_or(true), on_destroy.reboot.unwrap_or(false));
        ctx.status(&format!("{label}: resetting the node"));
        match client.reset(graceful, reboot).await {
            Ok(()) => {}
            Err(e) if e.outcome_unknown() => {
                ctx.log(Severity::Info, &format!("{label}: the node stopped answering during the reset ({e})"))
            }
            Err(e) => return Err(ResourceError::Failed(format!("{label}: reset: {e}"))),
        }
        let what = "waiting for the node to go down for the reset";
        if !talos_node::wait_down(ctx, &target, client_cfg, &deadline, &label, what).await {
            return Err(ResourceError::Uncertain(format!(
                "{label}: the node accepted the reset but still answers after {:?}",
                deadline.total()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
