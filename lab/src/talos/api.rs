//! The Talos API a lab node serves on port 50000: `machine.MachineService`,
//! `storage.StorageService` and `cluster.ClusterService`, with the root
//! crate's generated bindings, so paths, messages and field numbers are a
//! real node's.
//!
//! Owns: per-call authorization as Talos does it (maintenance: no roles, only
//! what the maintenance server offers; configured: the client certificate's
//! roles, `PermissionDenied "not authorized"` otherwise), `node` metadata
//! (this node, or another lab node of the same cluster, as apid proxies), and
//! each method's answers and errors with Talos's codes and texts; `Read`
//! serves the files clients read: `/system/state/config.yaml` and the boot ID.
//! Must not: bind sockets or decide lifecycles (it asks [`TalosNodes`]).

use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime};

use proxmox_talos::talos::api::{cluster, common, machine, storage};
use tonic::{Request, Response, Status};

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

impl NodeApi {
    /// Authorizes a call and resolves the node it is for.
    fn call<T>(&self, req: &Request<T>, access: Access) -> Result<Call, Status> {
        let roles = req.extensions().get::<Peer>().and_then(|p| p.roles.clone());
        let own = self.nodes.view(self.vmid).ok_or_else(|| Status::unavailable("the node went down"))?;
        if matches!(own.phase, Phase::Maintenance) {
            // The maintenance server has no apid: no roles, no proxying.
            return Ok(Call { node: own, roles: roles.unwrap_or_default() });
        }
        let roles = roles.unwrap_or_default();
        if !access.allows(&roles) {
            return Err(Status::permission_denied("not authorized"));
        }
        let target = req.metadata().get("node").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or_default();
        let is_self = target.is_empty()
            || target == own.hostname
            || own.address.is_some_and(|a| target == a.to_string() || target == format!("{a}:50000"));
        if is_self {
            return Ok(Call { node: own, roles });
        }
        // apid proxies one-to-one to another node of the cluster.
        let host = target.trim_end_matches(":50000");
        let same_cluster =
            |v: &NodeView| v.config().zip(own.config()).is_some_and(|(a, b)| a.os_ca.crt_pem == b.os_ca.crt_pem);
        match self.nodes.find(host).filter(same_cluster) {
            Some(node) => Ok(Call { node, roles }),
            None => Err(Status::unavailable(format!(
                "connection error: desc = \"transport: Error while dialing: dial tcp {host}:50000: connect: connection refused\""
            ))),
        }
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
        req: machine::ApplyConfigurationRequest,
    ) -> Result<Response<machine::ApplyConfigurationResponse>, Status> {
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
        one(machine::ApplyConfigurationResponse { messages: vec![reply] })
    }

    fn apply_configured(
        &self,
        call: &Call,
        req: machine::ApplyConfigurationRequest,
    ) -> Result<Response<machine::ApplyConfigurationResponse>, Status> {
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
            return one(machine::ApplyConfigurationResponse {
                messages: vec![machine::ApplyConfiguration {
                    mode: mode as i32,
                    mode_details: details,
                    ..Default::default()
                }],
            });
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
        one(machine::ApplyConfigurationResponse {
            messages: vec![machine::ApplyConfiguration {
                mode: mode as i32,
                mode_details: details + &suffix,
                ..Default::default()
            }],
        })
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
        let call = self.call(&request, Access::Admin)?;
        if call.maintenance() {
            self.apply_maintenance(&call, request.into_inner())
        } else {
            self.apply_configured(&call, request.into_inner())
        }
    }

    async fn bootstrap(
        &self,
        request: Request<machine::BootstrapRequest>,
    ) -> Result<Response<machine::BootstrapResponse>, Status> {
        let call = self.call(&request, Access::Admin)?;
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
        one(machine::BootstrapResponse { messages: vec![machine::Bootstrap::default()] })
    }

    async fn etcd_member_list(
        &self,
        request: Request<machine::EtcdMemberListRequest>,
    ) -> Result<Response<machine::EtcdMemberListResponse>, Status> {
        let call = self.call(&request, Access::Reader)?;
        if call.maintenance() {
            return Err(not_implemented("EtcdMemberList"));
        }
        let config = call.config()?;
        if !config.machine_type.is_control_plane() {
            return Err(Status::unimplemented("member list is only available on control plane nodes"));
        }
        if request.get_ref().query_local && !call.node.etcd {
            return Err(Status::unavailable("etcd is not running on this node"));
        }
        let members = self.nodes.etcd_members(&config.cluster_id);
        if members.is_empty() {
            return Err(Status::unavailable("etcdserver: no leader (the cluster is not bootstrapped)"));
        }
        let members: Vec<machine::EtcdMember> = members
            .into_iter()
            .map(|(vmid, hostname, address)| machine::EtcdMember {
                id: member_id(&config.cluster_id, vmid),
                hostname,
                peer_urls: vec![format!("https://{address}:2380")],
                client_urls: vec![format!("https://{address}:2379")],
                is_learner: false,
            })
            .collect();
        one(machine::EtcdMemberListResponse {
            messages: vec![machine::EtcdMembers {
                metadata: None,
                legacy_members: members.iter().map(|m| m.hostname.clone()).collect(),
                members,
            }],
        })
    }

    type KubeconfigStream = tokio_stream::Iter<std::vec::IntoIter<Result<common::Data, Status>>>;

    async fn kubeconfig(&self, request: Request<()>) -> Result<Response<Self::KubeconfigStream>, Status> {
        let call = self.call(&request, Access::Admin)?;
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
        let data = common::Data { metadata: None, bytes: kubeconfig_tarball(kubeconfig.as_bytes()) };
        Ok(Response::new(tokio_stream::iter(vec![Ok(data)])))
    }

    type ReadStream = tokio_stream::Iter<std::vec::IntoIter<Result<common::Data, Status>>>;

    async fn read(&self, request: Request<machine::ReadRequest>) -> Result<Response<Self::ReadStream>, Status> {
        let call = self.call(&request, Access::Admin)?;
        if call.maintenance() {
            return Err(not_implemented("Read"));
        }
        let path = request.get_ref().path.as_str();
        let contents = match path {
            CONFIG_PATH => {
                self.nodes.config_file(call.node.vmid).or_else(|| call.config().ok().map(|c| c.text.clone()))
            }
            BOOT_ID_PATH => Some(format!("{}\n", call.node.boot_id)),
            _ => None,
        }
        .ok_or_else(|| Status::unknown(format!("open {path}: no such file or directory")))?;
        // Talos streams files in chunks; so does the lab, to keep clients honest.
        let chunks: Vec<Result<common::Data, Status>> = contents
            .as_bytes()
            .chunks(READ_CHUNK)
            .map(|c| Ok(common::Data { metadata: None, bytes: c.to_vec() }))
            .collect();
        Ok(Response::new(tokio_stream::iter(chunks)))
    }

    async fn reboot(
        &self,
        request: Request<machine::RebootRequest>,
    ) -> Result<Response<machine::RebootResponse>, Status> {
        let call = self.call(&request, Access::Operator)?;
        if call.maintenance() {
            return Err(not_implemented("Reboot"));
        }
        self.nodes.reboot(call.node.vmid);
        one(machine::RebootResponse { messages: vec![machine::Reboot { metadata: None, actor_id: actor_id() }] })
    }

    async fn reset(&self, request: Request<machine::ResetRequest>) -> Result<Response<machine::ResetResponse>, Status> {
        let call = self.call(&request, Access::Admin)?;
        if call.maintenance() {
            return Err(maintenance_admin_only());
        }
        let req = request.into_inner();
        let labels: Vec<&str> =
            req.system_partitions_to_wipe.iter().filter(|p| p.wipe).map(|p| p.label.as_str()).collect();
        let wipe_all = labels.is_empty() && req.mode != machine::reset_request::WipeMode::UserDisks as i32;
        self.nodes.reset(
            call.node.vmid,
            wipe_all || labels.contains(&"STATE"),
            wipe_all || labels.contains(&"EPHEMERAL"),
            req.reboot,
        );
        one(machine::ResetResponse { messages: vec![machine::Reset { metadata: None, actor_id: actor_id() }] })
    }

    async fn service_list(&self, request: Request<()>) -> Result<Response<machine::ServiceListResponse>, Status> {
        let call = self.call(&request, Access::Reader)?;
        if call.maintenance() {
            return Err(not_implemented("ServiceList"));
        }
        let bootstrapped = !self.nodes.etcd_members(&call.config()?.cluster_id).is_empty();
        let since = call.node.up_since.map(|t| SystemTime::now() - t.elapsed()).unwrap_or_else(SystemTime::now);
        let services = node::services(&call.node, bootstrapped)
            .into_iter()
            .map(|(id, state, healthy)| machine::ServiceInfo {
                id: id.into(),
                state: state.into(),
                events: Some(machine::ServiceEvents {
                    events: vec![machine::ServiceEvent {
                        msg: if state == "Running" {
                            "Service started".into()
                        } else {
                            "Waiting for etcd bootstrap".into()
                        },
                        state: state.into(),
                        ts: Some(timestamp(since)),
                    }],
                }),
                health: Some(machine::ServiceHealth {
                    unknown: healthy.is_none(),
                    healthy: healthy.unwrap_or(false),
                    last_message: String::new(),
                    last_change: Some(timestamp(since)),
                }),
            })
            .collect();
        one(machine::ServiceListResponse { messages: vec![machine::ServiceList { metadata: None, services }] })
    }

    async fn version(&self, request: Request<()>) -> Result<Response<machine::VersionResponse>, Status> {
        let call = self.call(&request, Access::Reader)?;
        let maintenance = call.maintenance();
        if maintenance && !Access::Admin.allows(&call.roles) {
            return Err(maintenance_admin_only());
        }
        let image = &call.node.image;
        one(machine::VersionResponse {
            messages: vec![machine::Version {
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
            }],
        })
    }
}

/// A stable etcd member ID for a node of a cluster.
fn member_id(cluster_id: &str, vmid: u32) -> u64 {
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(format!("{cluster_id}/{vmid}").as_bytes());
    u64::from_be_bytes(h[..8].try_into().unwrap_or_default())
}

#[tonic::async_trait]
impl storage::storage_service_server::StorageService for NodeApi {
    async fn disks(&self, request: Request<()>) -> Result<Response<storage::DisksResponse>, Status> {
        let call = self.call(&request, Access::Reader)?;
        let disks = self.nodes.disks(call.node.vmid);
        one(storage::DisksResponse { messages: vec![storage::Disks { metadata: None, disks }] })
    }
}

#[tonic::async_trait]
impl cluster::cluster_service_server::ClusterService for NodeApi {
    type HealthCheckStream = tokio_stream::wrappers::ReceiverStream<Result<cluster::HealthCheckProgress, Status>>;

    async fn health_check(
        &self,
        request: Request<cluster::HealthCheckRequest>,
    ) -> Result<Response<Self::HealthCheckStream>, Status> {
        let call = self.call(&request, Access::Reader)?;
        if call.maintenance() {
            return Err(Status::unimplemented("unknown service cluster.ClusterService"));
        }
        let cluster_id = call.config()?.cluster_id.clone();
        let wait = request
            .get_ref()
            .wait_timeout
            .map(|d| Duration::from_secs(d.seconds.max(0) as u64))
            .unwrap_or(Duration::from_secs(600));
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let nodes = self.nodes.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + wait;
            let say = |m: String| cluster::HealthCheckProgress { metadata: None, message: m };
            let _ = tx.send(Ok(say("discovered nodes: the lab's running nodes of this cluster".into()))).await;
            let _ = tx.send(Ok(say("waiting for etcd to be healthy: ...".into()))).await;
            loop {
                if !nodes.etcd_members(&cluster_id).is_empty() {
                    break;
                }
                if Instant::now() >= deadline {
                    let _ = tx
                        .send(Err(Status::deadline_exceeded("etcd is not healthy: the cluster is not bootstrapped")))
                        .await;
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
                let _ = tx.send(Ok(say(format!("waiting for {check}: OK")))).await;
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(rx)))
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
