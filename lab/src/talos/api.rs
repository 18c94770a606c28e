//! The Talos API a lab node serves on port 50000: `machine.MachineService`,
//! `storage.StorageService` and `cluster.ClusterService`, with the root
//! crate's generated bindings, so paths, messages and field numbers are a
//! real node's.
//!
//! Owns: per-call authorization as Talos does it (maintenance: no roles, only
//! what the maintenance server offers; configured: the client certificate's
//! roles, `PermissionDenied "not authorized"` otherwise), resolving the
//! targets `node` / `nodes` metadata name (this node, or another lab node of
//! the same cluster, as apid proxies; see `apid` for the one-to-many shape),
//! and each method's answers and errors with Talos's codes and texts; `Read`
//! serves the files clients read: `/system/state/config.yaml` and the boot ID.
//! Must not: bind sockets or decide lifecycles (it asks [`TalosNodes`]).

use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime};

use proxmox_talos::talos::api::{cluster, common, machine, storage};
use tonic::{Request, Response, Status};

use super::apid::{self, NodeMessage, Targets};
use super::machine_config::{self, ConfigError, MachineConfig};
use super::node::{self, NodeView, Phase};
use super::server::Peer;
use super::TalosNodes;
use machine::apply_configuration_request::Mode as ApplyMode;

/// Talos's role names.
const ADMIN: &str = "os:admin";
const OPERATOR: &str = "os:operator";
const READER: &str = "os:reader";

/// Where Talos keeps the machine configuration in effect (`Read` serves it).
const CONFIG_PATH: &str = "/system/state/config.yaml";
/// The kernel's boot ID, new at every boot (clients tell a reboot by it).
const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";
/// The chunk size of a `Read` stream.
const READ_CHUNK: usize = 4096;

/// Who may call a method (Talos's authz rules for the methods served here).
#[derive(Clone, Copy)]
enum Access {
    Admin,
    Operator,
    Reader,
}

impl Access {
    fn allows(self, roles: &[String]) -> bool {
        let allowed: &[&str] = match self {
            Access::Admin => &[ADMIN],
            Access::Operator => &[ADMIN, OPERATOR],
            Access::Reader => &[ADMIN, OPERATOR, READER],
        };
        roles.iter().any(|r| allowed.contains(&r.as_str()))
    }
}

/// The services of one node's listener.
#[derive(Clone)]
pub struct NodeApi {
    nodes: TalosNodes,
    vmid: u32,
}

/// The gRPC router for the node `vmid`.
pub fn router(nodes: TalosNodes, vmid: u32) -> tonic::transport::server::Router {
    use cluster::cluster_service_server::ClusterServiceServer;
    use machine::machine_service_server::MachineServiceServer;
    use storage::storage_service_server::StorageServiceServer;
    let api = NodeApi { nodes, vmid };
    tonic::transport::Server::builder()
        .add_service(MachineServiceServer::new(api.clone()))
        .add_service(StorageServiceServer::new(api.clone()))
        .add_service(ClusterServiceServer::new(api))
}

/// A call after authorization: the node that answers and the caller's roles.
#[derive(Clone)]
struct Call {
    node: NodeView,
    roles: Vec<String>,
}

impl Call {
    fn maintenance(&self) -> bool {
        matches!(self.node.phase, Phase::Maintenance)
    }

    /// The configuration of a configured node (callers checked maintenance first).
    fn config(&self) -> Result<&MachineConfig, Status> {
        self.node.config().map(|c| c.as_ref()).ok_or_else(|| Status::unavailable("the node is rebooting"))
    }
}

/// grpc-go's answer for a method a server does not implement.
fn not_implemented(method: &str) -> Status {
    Status::unimplemented(format!("method {method} not implemented"))
}

fn maintenance_admin_only() -> Status {
    Status::unimplemented("API is not implemented in maintenance mode")
}

fn one<T>(message: T) -> Result<Response<T>, Status> {
    Ok(Response::new(message))
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

fn actor_id() -> String {
    node::random_uuid()
}

/// One target of a streaming call: its name (one to many only) and its call or failure.
type StreamCall = (Option<String>, Result<Call, Status>);

/// Where an authorized call is answered.
enum Route {
    /// This node, or the one `node` metadata names: errors are gRPC errors.
    One(Call),
    /// `nodes` metadata: every target answers, or fails, in band.
    Many(Vec<(String, Result<Call, Status>)>),
}

impl NodeApi {
    /// Authorizes a call and resolves the nodes it is for.
    fn route<T>(&self, req: &Request<T>, access: Access) -> Result<Route, Status> {
        let roles = req.extensions().get::<Peer>().and_then(|p| p.roles.clone());
        let own = self.nodes.view(self.vmid).ok_or_else(|| Status::unavailable("the node went down"))?;
        if matches!(own.phase, Phase::Maintenance) {
            // The maintenance server has no apid: no roles, no proxying.
            return Ok(Route::One(Call { node: own, roles: roles.unwrap_or_default() }));
        }
        let roles = roles.unwrap_or_default();
        if !access.allows(&roles) {
            return Err(Status::permission_denied("not authorized"));
        }
        Ok(match apid::targets(req.metadata())? {
            Targets::Local => Route::One(Call { node: own, roles }),
            Targets::One(target) => Route::One(self.resolve(&own, &target, &roles)?),
            Targets::Many(targets) => Route::Many(
                targets
                    .into_iter()
                    .map(|target| {
                        let call = self.resolve(&own, &target, &roles);
                        (target, call)
                    })
                    .collect(),
            ),
        })
    }

    /// The node `target` names: this one, or (apid proxies) another node of the cluster.
    fn resolve(&self, own: &NodeView, target: &str, roles: &[String]) -> Result<Call, Status> {
        let is_self = target == own.hostname
            || own.address.is_some_and(|a| target == a.to_string() || target == format!("{a}:50000"));
        if is_self {
            return Ok(Call { node: own.clone(), roles: roles.to_vec() });
        }
        let host = target.trim_end_matches(":50000");
        let same_cluster =
            |v: &NodeView| v.config().zip(own.config()).is_some_and(|(a, b)| a.os_ca.crt_pem == b.os_ca.crt_pem);
        match self.nodes.find(host).filter(same_cluster) {
            Some(node) => Ok(Call { node, roles: roles.to_vec() }),
            None => Err(Status::unavailable(format!(
                "connection error: desc = \"transport: Error while dialing: dial tcp {host}:50000: connect: connection refused\""
            ))),
        }
    }

    /// Answers a unary call on each node it is routed to (one to many: the
    /// answers stamped and concatenated, failures in band).
    fn unary<T, M: NodeMessage>(
        &self,
        req: &Request<T>,
        access: Access,
        answer: impl Fn(&Call) -> Result<Vec<M>, Status>,
    ) -> Result<Vec<M>, Status> {
        match self.route(req, access)? {
            Route::One(call) => answer(&call),
            Route::Many(targets) => Ok(targets
                .into_iter()
                .flat_map(|(target, call)| apid::unary_answer(&target, call.and_then(|c| answer(&c))))
                .collect()),
        }
    }

    /// The calls a streaming method serves: one without a target name, or
    /// per target (`nodes`) a call or its failure.
    fn streams<T>(&self, req: &Request<T>, access: Access) -> Result<Vec<StreamCall>, Status> {
        Ok(match self.route(req, access)? {
            Route::One(call) => vec![(None, Ok(call))],
            Route::Many(targets) => targets.into_iter().map(|(t, call)| (Some(t), call)).collect(),
        })
    }

    /// The files `Read` serves: the running configuration and the boot ID.
    fn file(&self, call: &Call, path: &str) -> Result<String, Status> {
        if call.maintenance() {
            return Err(not_implemented("Read"));
        }
        match path {
            CONFIG_PATH => {
                self.nodes.config_file(call.node.vmid).or_else(|| call.config().ok().map(|c| c.text.clone()))
            }
            BOOT_ID_PATH => Some(format!("{}\n", call.node.boot_id)),
            _ => None,
        }
        .ok_or_else(|| Status::unknown(format!("open {path}: no such file or directory")))
    }
}

fn mode_flag(mode: i32) -> String {
    match ApplyMode::try_from(mode) {
        Ok(m) => m.as_str_name().to_ascii_lowercase().replace('_', "-"),
        Err(_) => mode.to_string(),
    }
}

fn line_diff(old: &str, new: &str) -> String {
    if old == new {
        return "No changes.".into();
    }
    let (old_lines, new_lines): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    let mut out = String::new();
    for l in old_lines.iter().filter(|l| !new_lines.contains(l)) {
        out.push_str(&format!("-{l}\n"));
    }
    for l in new_lines.iter().filter(|l| !old_lines.contains(l)) {
        out.push_str(&format!("+{l}\n"));
    }
    out
}

impl NodeApi {
    fn apply_maintenance(
        &self,
        call: &Call,
        req: &machine::ApplyConfigurationRequest,
    ) -> Result<Vec<machine::ApplyConfiguration>, Status> {
        if !matches!(ApplyMode::try_from(req.mode), Ok(ApplyMode::Reboot | ApplyMode::Auto | ApplyMode::Try)) {
            return Err(Status::unimplemented(format!(
                "apply configuration --mode='{}' is not supported in maintenance mode",
                mode_flag(req.mode)
            )));
        }
        let text = String::from_utf8_lossy(&req.data).into_owned();
        let loaded = machine_config::load(&text, call.node.image.mode).map_err(|e| match e {
            ConfigError::Load(e) => Status::unknown(format!("failed to parse config: {e}")),
            ConfigError::Invalid(e) => Status::invalid_argument(format!("configuration validation failed: {e}")),
        })?;
        let mut reply = machine::ApplyConfiguration::default();
        if req.dry_run {
            reply.mode_details =
                "Dry run summary:\nNode is running in maintenance mode and does not have a config yet.".into();
        } else if loaded.is_some() {
            self.nodes.install(call.node.vmid, text);
        }
        Ok(vec![reply])
    }

    fn apply_configured(
        &self,
        call: &Call,
        req: &machine::ApplyConfigurationRequest,
    ) -> Result<Vec<machine::ApplyConfiguration>, Status> {
        let current = call.config()?.clone();
        let text = String::from_utf8_lossy(&req.data).into_owned();
        let new = match machine_config::load(&text, call.node.image.mode) {
            Err(ConfigError::Load(e) | ConfigError::Invalid(e)) => return Err(Status::invalid_argument(e)),
            Ok(None) => {
                return Err(Status::invalid_argument(
                    "the applied machine configuration doesn't contain v1alpha1 config, did you mean to patch the machine config instead?",
                ))
            }
            Ok(Some(c)) => c,
        };
        let needs_reboot = current.needs_reboot_for(&new);
        let requested = ApplyMode::try_from(req.mode).map_err(|_| {
            Status::unknown(format!("incorrect mode '{}' specified for the apply config call", req.mode))
        })?;
        let (mode, mut details, suffix) = match requested {
            ApplyMode::Try | ApplyMode::NoReboot => {
                if let Some(reason) = &needs_reboot {
                    return Err(Status::invalid_argument(reason.clone()));
                }
                (requested, "Applied configuration without a reboot".to_string(), String::new())
            }
            ApplyMode::Staged => {
                (requested, "Staged configuration to be applied after the next reboot".to_string(), String::new())
            }
            ApplyMode::Reboot => (requested, "Applied configuration with a reboot".to_string(), String::new()),
            ApplyMode::Auto => match &needs_reboot {
                Some(reason) => {
                    (ApplyMode::Reboot, "Applied configuration with a reboot".to_string(), format!(": {reason}"))
                }
                None => (ApplyMode::NoReboot, "Applied configuration without a reboot".to_string(), String::new()),
            },
        };
        if req.dry_run {
            let diff = line_diff(&current.text, &text);
            let details = format!("Dry run summary:\n{details} (skipped in dry-run).\nConfig diff:\n\n{diff}");
            return Ok(vec![machine::ApplyConfiguration {
                mode: mode as i32,
                mode_details: details,
                ..Default::default()
            }]);
        }
        match mode {
            ApplyMode::Try => {
                let timeout = req
                    .try_mode_timeout
                    .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32))
                    .unwrap_or(Duration::from_secs(60));
                details.push_str(&format!(
                    "\nThe config is applied in 'try' mode and will be automatically reverted back in {}",
                    go_duration(timeout)
                ));
                self.nodes.apply_live(call.node.vmid, new, Some(timeout));
            }
            ApplyMode::NoReboot => {
                self.nodes.persist(call.node.vmid, text.clone(), false);
                self.nodes.apply_live(call.node.vmid, new, None);
            }
            ApplyMode::Staged => self.nodes.persist(call.node.vmid, text, true),
            _ => {
                self.nodes.persist(call.node.vmid, text, false);
                self.nodes.reboot(call.node.vmid);
            }
        }
        Ok(vec![machine::ApplyConfiguration {
            mode: mode as i32,
            mode_details: details + &suffix,
            ..Default::default()
        }])
    }
}

/// Go's `time.Duration.String()` for whole and fractional seconds (`1m0s`, `30s`, `1.5s`).
fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let frac = d.subsec_nanos();
    let s = if frac == 0 {
        format!("{}s", secs % 60)
    } else {
        let f = format!("{:.9}", frac as f64 / 1e9);
        format!("{}{}s", secs % 60, f.trim_start_matches('0').trim_end_matches('0'))
    };
    match (secs / 3600, (secs % 3600) / 60) {
        (0, 0) => s,
        (0, m) => format!("{m}m{s}"),
        (h, m) => format!("{h}h{m}m{s}"),
    }
}

/// `kubeconfig` (mode 0600) in a gzipped tar, as Talos wraps it.
fn kubeconfig_tarball(contents: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let put = |h: &mut [u8; 512], at: usize, s: &[u8]| h[at..at + s.len()].copy_from_slice(s);
    put(&mut header, 0, b"kubeconfig");
    put(&mut header, 100, b"0000600\0");
    put(&mut header, 108, b"0000000\0");
    put(&mut header, 116, b"0000000\0");
    put(&mut header, 124, format!("{:011o}\0", contents.len()).as_bytes());
    let mtime = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
    put(&mut header, 136, format!("{mtime:011o}\0").as_bytes());
    put(&mut header, 148, b"        ");
    header[156] = b'0';
    put(&mut header, 257, b"ustar\0");
    put(&mut header, 263, b"00");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    put(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(contents);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = gz.write_all(&tar);
    gz.finish().unwrap_or_default()
}

#[tonic::async_trait]
impl machine::machine_service_server::MachineService for NodeApi {
    async fn apply_configuration(
        &self,
        request: Request<machine::ApplyConfigurationRequest>,
    ) -> Result<Response<machine::ApplyConfigurationResponse>, Status> {
        let req = request.get_ref();
        let messages = self.unary(&request, Access::Admin, |call| {
            if call.maintenance() {
                self.apply_maintenance(call, req)
            } else {
                self.apply_configured(call, req)
            }
        })?;
        one(machine::ApplyConfigurationResponse { messages })
    }

    async fn bootstrap(
        &self,
        request: Request<machine::BootstrapRequest>,
    ) -> Result<Response<machine::BootstrapResponse>, Status> {
        let messages = self.unary(&request, Access::Admin, |call| {
            if call.maintenance() {
                return Err(not_implemented("Bootstrap"));
            }
            let ready_after = Duration::from_millis(self.nodes.pve().timing().agent_ms);
            if call.node.up_since.is_none_or(|t| t.elapsed() < ready_after) {
                return Err(Status::failed_precondition("bootstrap is not available yet"));
            }
            if !call.config()?.machine_type.is_control_plane() {
                return Err(Status::failed_precondition("bootstrap can only be performed on a control plane node"));
            }
            if call.node.etcd {
                return Err(Status::already_exists("etcd data directory is not empty"));
            }
            self.nodes.bootstrap(call.node.vmid);
            Ok(vec![machine::Bootstrap::default()])
        })?;
        one(machine::BootstrapResponse { messages })
    }

    async fn etcd_member_list(
        &self,
        request: Request<machine::EtcdMemberListRequest>,
    ) -> Result<Response<machine::EtcdMemberListResponse>, Status> {
        let query_local = request.get_ref().query_local;
        let messages = self.unary(&request, Access::Reader, |call| {
            if call.maintenance() {
                return Err(not_implemented("EtcdMemberList"));
            }
            let config = call.config()?;
            if !config.machine_type.is_control_plane() {
                return Err(Status::unimplemented("member list is only available on control plane nodes"));
            }
            if query_local && !call.node.etcd {
                return Err(Status::unavailable("etcd is not running on this node"));
            }
            // Every member, down ones too, as etcd lists them; a cluster without a started member
            // has no leader to ask.
            let roster = self.nodes.etcd_roster(&config.cluster_id);
            if !roster.iter().any(|m| m.started) {
                return Err(Status::unavailable("etcdserver: no leader (the cluster is not bootstrapped)"));
            }
            let url = |a: Option<std::net::Ipv4Addr>, port: u16| a.map(|a| format!("https://{a}:{port}")).into_iter();
            let members: Vec<machine::EtcdMember> = roster
                .into_iter()
                .map(|m| machine::EtcdMember {
                    id: super::etcd::member_id(&config.cluster_id, m.vmid),
                    hostname: m.hostname,
                    peer_urls: url(m.address, 2380).collect(),
                    client_urls: url(m.address, 2379).collect(),
                    is_learner: false,
                })
                .collect();
            Ok(vec![machine::EtcdMembers {
                metadata: None,
                legacy_members: members.iter().map(|m| m.hostname.clone()).collect(),
                members,
            }])
        })?;
        one(machine::EtcdMemberListResponse { messages })
    }

    async fn etcd_leave_cluster(
        &self,
        request: Request<machine::EtcdLeaveClusterRequest>,
    ) -> Result<Response<machine::EtcdLeaveClusterResponse>, Status> {
        let messages = self.unary(&request, Access::Admin, |call| {
            let config = etcd_node(call, "EtcdLeaveCluster")?;
            self.nodes.etcd_leave(call.node.vmid, &config.cluster_id)?;
            Ok(vec![machine::EtcdLeaveCluster { metadata: None }])
        })?;
        one(machine::EtcdLeaveClusterResponse { messages })
    }

    async fn etcd_remove_member_by_id(
        &self,
        request: Request<machine::EtcdRemoveMemberByIdRequest>,
    ) -> Result<Response<machine::EtcdRemoveMemberByIdResponse>, Status> {
        let id = request.get_ref().member_id;
        let messages = self.unary(&request, Access::Admin, |call| {
            let config = etcd_node(call, "EtcdRemoveMemberByID")?;
            if !call.node.etcd {
                return Err(Status::unavailable("etcd is not running on this node"));
            }
            self.nodes.etcd_remove_member(&config.cluster_id, id)?;
            Ok(vec![machine::EtcdRemoveMemberById { metadata: None }])
        })?;
        one(machine::EtcdRemoveMemberByIdResponse { messages })
    }

    type KubeconfigStream = tokio_stream::Iter<std::vec::IntoIter<Result<common::Data, Status>>>;

    async fn kubeconfig(&self, request: Request<()>) -> Result<Response<Self::KubeconfigStream>, Status> {
        let mut stream = Vec::new();
        for (target, call) in self.streams(&request, Access::Admin)? {
            match (call.and_then(|c| admin_kubeconfig_tarball(&c)), target) {
                (Ok(bytes), target) => {
                    let mut data = common::Data { metadata: None, bytes };
                    if let Some(target) = target {
                        apid::stamp(&mut data, &target);
                    }
                    stream.push(Ok(data));
                }
                (Err(status), Some(target)) => stream.push(Ok(apid::error_message(&target, &status))),
                (Err(status), None) => return Err(status),
            }
        }
        Ok(Response::new(tokio_stream::iter(stream)))
    }

    type ReadStream = tokio_stream::Iter<std::vec::IntoIter<Result<common::Data, Status>>>;

    async fn read(&self, request: Request<machine::ReadRequest>) -> Result<Response<Self::ReadStream>, Status> {
        let path = request.get_ref().path.clone();
        let mut stream = Vec::new();
        for (target, call) in self.streams(&request, Access::Admin)? {
            match (call.and_then(|c| self.file(&c, &path)), target) {
                // Talos streams files in chunks; so does the lab, to keep clients honest.
                (Ok(contents), target) => {
                    for chunk in contents.as_bytes().chunks(READ_CHUNK) {
                        let mut data = common::Data { metadata: None, bytes: chunk.to_vec() };
                        if let Some(target) = &target {
                            apid::stamp(&mut data, target);
                        }
                        stream.push(Ok(data));
                    }
                }
                (Err(status), Some(target)) => stream.push(Ok(apid::error_message(&target, &status))),
                (Err(status), None) => return Err(status),
            }
        }
        Ok(Response::new(tokio_stream::iter(stream)))
    }

    async fn reboot(
        &self,
        request: Request<machine::RebootRequest>,
    ) -> Result<Response<machine::RebootResponse>, Status> {
        let messages = self.unary(&request, Access::Operator, |call| {
            if call.maintenance() {
                return Err(not_implemented("Reboot"));
            }
            self.nodes.reboot(call.node.vmid);
            Ok(vec![machine::Reboot { metadata: None, actor_id: actor_id() }])
        })?;
        one(machine::RebootResponse { messages })
    }

    async fn reset(&self, request: Request<machine::ResetRequest>) -> Result<Response<machine::ResetResponse>, Status> {
        let req = request.get_ref();
        let labels: Vec<&str> =
            req.system_partitions_to_wipe.iter().filter(|p| p.wipe).map(|p| p.label.as_str()).collect();
        let wipe_all = labels.is_empty() && req.mode != machine::reset_request::WipeMode::UserDisks as i32;
        let messages = self.unary(&request, Access::Admin, |call| {
            if call.maintenance() {
                return Err(maintenance_admin_only());
            }
            self.nodes.reset(
                call.node.vmid,
                wipe_all || labels.contains(&"STATE"),
                wipe_all || labels.contains(&"EPHEMERAL"),
                req.reboot,
            );
            Ok(vec![machine::Reset { metadata: None, actor_id: actor_id() }])
        })?;
        one(machine::ResetResponse { messages })
    }

    async fn service_list(&self, request: Request<()>) -> Result<Response<machine::ServiceListResponse>, Status> {
        let messages = self.unary(&request, Access::Reader, |call| {
            if call.maintenance() {
                return Err(not_implemented("ServiceList"));
            }
            let bootstrapped = !self.nodes.etcd_members(&call.config()?.cluster_id).is_empty();
            Ok(vec![machine::ServiceList { metadata: None, services: service_infos(&call.node, bootstrapped) }])
        })?;
        one(machine::ServiceListResponse { messages })
    }

    async fn upgrade(
        &self,
        request: Request<machine::UpgradeRequest>,
    ) -> Result<Response<machine::UpgradeResponse>, Status> {
        let req = request.get_ref();
        let messages = self.unary(&request, Access::Admin, |call| {
            if call.maintenance() {
                return Err(not_implemented("Upgrade"));
            }
            super::upgrade::upgrade(&self.nodes, &call.node, call.config()?, req)?;
            Ok(vec![machine::Upgrade { metadata: None, ack: "Upgrade request received".into(), actor_id: actor_id() }])
        })?;
        one(machine::UpgradeResponse { messages })
    }

    async fn version(&self, request: Request<()>) -> Result<Response<machine::VersionResponse>, Status> {
        let messages = self.unary(&request, Access::Reader, |call| {
            let maintenance = call.maintenance();
            if maintenance && !Access::Admin.allows(&call.roles) {
                return Err(maintenance_admin_only());
            }
            let image = &call.node.image;
            Ok(vec![machine::Version {
                metadata: None,
                version: Some(machine::VersionInfo {
                    tag: image.tag.clone(),
                    sha: "fc8e600ba".into(),
                    built: String::new(),
                    go_version: "go1.25.7".into(),
                    os: "linux".into(),
                    arch: "amd64".into(),
                }),
                platform: Some(machine::PlatformInfo { name: image.platform.into(), mode: image.mode.as_str().into() }),
                features: (!maintenance).then_some(machine::FeaturesInfo { rbac: true }),
            }])
        })?;
        one(machine::VersionResponse { messages })
    }
}

/// The admin kubeconfig of a control plane, in Talos's tarball.
/// The configuration of a control plane an etcd call may go to.
fn etcd_node<'c>(call: &'c Call, method: &str) -> Result<&'c MachineConfig, Status> {
    if call.maintenance() {
        return Err(not_implemented(method));
    }
    let config = call.config()?;
    if !config.machine_type.is_control_plane() {
        return Err(Status::unimplemented("etcd is only available on control plane nodes"));
    }
    Ok(config)
}

fn admin_kubeconfig_tarball(call: &Call) -> Result<Vec<u8>, Status> {
    if call.maintenance() {
        return Err(not_implemented("Kubeconfig"));
    }
    let config = call.config()?;
    if !config.machine_type.is_control_plane() {
        return Err(Status::unimplemented("kubeconfig is only available on control plane nodes"));
    }
    let ca = config
        .kubernetes_ca
        .as_ref()
        .and_then(|ca| ca.key_pem.as_ref().map(|key| (ca.crt_pem.as_str(), key.as_str())))
        .ok_or_else(|| {
            Status::unknown(
                "failed to generate the admin kubeconfig: the configuration has no Kubernetes CA key (.cluster.ca)",
            )
        })?;
    let ca = super::pki::Ca::load(ca.0, ca.1).map_err(|e| Status::unknown(format!("Kubernetes CA: {e}")))?;
    let kubeconfig =
        super::pki::admin_kubeconfig(&ca, &config.cluster_name, &config.endpoint).map_err(Status::unknown)?;
    Ok(kubeconfig_tarball(kubeconfig.as_bytes()))
}

/// A service's events, oldest first: started (or waiting), then the health check's success.
fn service_events(state: &str, healthy: Option<bool>, since: SystemTime) -> Vec<machine::ServiceEvent> {
    let event = |msg: &str| machine::ServiceEvent { msg: msg.into(), state: state.into(), ts: Some(timestamp(since)) };
    match (state, healthy) {
        ("Running", Some(true)) => vec![event("Service started"), event("Health check successful")],
        ("Running", _) => vec![event("Service started")],
        _ => vec![event("Waiting for etcd bootstrap")],
    }
}

/// `ServiceList`'s entries: state, events and health of each service.
fn service_infos(node: &NodeView, bootstrapped: bool) -> Vec<machine::ServiceInfo> {
    let since = node.up_since.map(|t| SystemTime::now() - t.elapsed()).unwrap_or_else(SystemTime::now);
    node::services(node, bootstrapped)
        .into_iter()
        .map(|(id, state, healthy)| machine::ServiceInfo {
            id: id.into(),
            state: state.into(),
            events: Some(machine::ServiceEvents { events: service_events(state, healthy, since) }),
            health: Some(machine::ServiceHealth {
                unknown: healthy.is_none(),
                healthy: healthy.unwrap_or(false),
                last_message: String::new(),
                last_change: Some(timestamp(since)),
            }),
        })
        .collect()
}

#[tonic::async_trait]
impl storage::storage_service_server::StorageService for NodeApi {
    async fn disks(&self, request: Request<()>) -> Result<Response<storage::DisksResponse>, Status> {
        let messages = self.unary(&request, Access::Reader, |call| {
            Ok(vec![storage::Disks { metadata: None, disks: self.nodes.disks(call.node.vmid) }])
        })?;
        one(storage::DisksResponse { messages })
    }
}

#[tonic::async_trait]
impl cluster::cluster_service_server::ClusterService for NodeApi {
    type HealthCheckStream = tokio_stream::wrappers::ReceiverStream<Result<cluster::HealthCheckProgress, Status>>;

    async fn health_check(
        &self,
        request: Request<cluster::HealthCheckRequest>,
    ) -> Result<Response<Self::HealthCheckStream>, Status> {
        let wait = request
            .get_ref()
            .wait_timeout
            .map(|d| Duration::from_secs(d.seconds.max(0) as u64))
            .unwrap_or(Duration::from_secs(600));
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        for (target, call) in self.streams(&request, Access::Reader)? {
            let cluster_id = call.and_then(|call| {
                if call.maintenance() {
                    return Err(Status::unimplemented("unknown service cluster.ClusterService"));
                }
                Ok(call.config()?.cluster_id.clone())
            });
            match (cluster_id, target) {
                (Ok(cluster_id), target) => {
                    tokio::spawn(health_check(self.nodes.clone(), cluster_id, wait, target, tx.clone()));
                }
                (Err(status), Some(target)) => {
                    let _ = tx.send(Ok(apid::error_message(&target, &status))).await;
                }
                (Err(status), None) => return Err(status),
            }
        }
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }
}

/// Streams the cluster health check's progress for `cluster_id` (stamped
/// with `target` and failing in band when called one to many).
async fn health_check(
    nodes: TalosNodes,
    cluster_id: String,
    wait: Duration,
    target: Option<String>,
    tx: tokio::sync::mpsc::Sender<Result<cluster::HealthCheckProgress, Status>>,
) {
    let deadline = Instant::now() + wait;
    let say = |m: String| {
        let mut progress = cluster::HealthCheckProgress { metadata: None, message: m };
        if let Some(target) = &target {
            apid::stamp(&mut progress, target);
        }
        Ok(progress)
    };
    let _ = tx.send(say("discovered nodes: the lab's running nodes of this cluster".into())).await;
    let _ = tx.send(say("waiting for etcd to be healthy: ...".into())).await;
    while nodes.etcd_members(&cluster_id).is_empty() {
        if Instant::now() >= deadline {
            let status = Status::deadline_exceeded("etcd is not healthy: the cluster is not bootstrapped");
            let _ = tx.send(target.as_ref().map(|t| apid::error_message(t, &status)).ok_or(status)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for check in [
        "etcd to be healthy",
        "etcd members to be consistent across nodes",
        "apid to be ready",
        "kubelet to be healthy",
        "all nodes to finish boot sequence",
    ] {
        let _ = tx.send(say(format!("waiting for {check}: OK"))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(60)), "1m0s");
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(3725)), "1h2m5s");
    }

    #[test]
    fn kubeconfig_tarball_is_a_gzipped_ustar_with_one_file() {
        use std::io::Read as _;
        let gz = kubeconfig_tarball(b"apiVersion: v1\n");
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut tar).unwrap();
        assert_eq!(&tar[..10], b"kubeconfig");
        assert_eq!(&tar[257..262], b"ustar");
        let size = usize::from_str_radix(std::str::from_utf8(&tar[124..135]).unwrap(), 8).unwrap();
        assert_eq!(&tar[512..512 + size], b"apiVersion: v1\n");
        assert_eq!(tar.len() % 512, 0);
    }
}
