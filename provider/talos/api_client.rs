//! The provider's Talos API client (apid, port 50000), over the generated
//! bindings in [`api`](crate::talos::api).
//!
//! Owns: connecting the two ways Talos allows — **insecure** (maintenance
//! mode: TLS without verifying the node's self-signed certificate, no client
//! certificate) and **mutual TLS** with a [`ClientConfiguration`] (the node's
//! certificate must chain to `caCertificate`; the client presents
//! `clientCertificate`, whose Organization is its role); the `node` metadata
//! that targets a node through an endpoint; helpers for the calls the
//! provider makes (apply, bootstrap, kubeconfig, version, disks, read, reset); and errors
//! that say what went wrong in Talos terms ([`TalosApiError`]): unreachable,
//! a node certificate from another CA, a client certificate the node refuses,
//! a role that may not call a method.
//! Must not: retry or wait (callers decide), or verify nothing in mutual TLS.

use std::fmt;
use std::io::Read as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf};
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Code, Request, Status};

use crate::talos::api::{cluster, machine, storage};
use crate::talos::secrets::ClientConfiguration;
use cluster::cluster_service_client::ClusterServiceClient;
use machine::machine_service_client::MachineServiceClient;
use storage::storage_service_client::StorageServiceClient;

/// The Talos API port.
pub const APID_PORT: u16 = 50000;

/// Where a node keeps the machine configuration in effect (read with [`TalosClient::read_file`]).
pub const CONFIG_PATH: &str = "/system/state/config.yaml";

/// The kernel's boot ID on a node, new at every boot (read it to tell that a node rebooted).
pub const BOOT_ID_PATH: &str = "/proc/sys/kernel/random/boot_id";

/// How to authenticate.
#[derive(Clone, Copy)]
pub enum Credentials<'a> {
    /// Maintenance mode: no verification of the node, no client certificate.
    Insecure,
    /// A configured node: mutual TLS with a talosconfig's credentials.
    Mutual(&'a ClientConfiguration),
}

/// What failed, in Talos terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TalosApiError {
    /// Bad input (an endpoint or credentials that cannot be used).
    Invalid(String),
    /// Nothing answers at the endpoint (connection refused, timeout, reset).
    Unreachable { endpoint: String, reason: String },
    /// The node's certificate does not chain to the client configuration's CA.
    WrongCa { endpoint: String, reason: String },
    /// The node refused the client certificate (not from its OS CA).
    ClientCertificateRefused { endpoint: String, reason: String },
    /// The client certificate's role may not call the method.
    NotAuthorized { method: String, roles: Vec<String> },
    /// Any other gRPC status.
    Status { method: String, code: Code, message: String },
}

impl fmt::Display for TalosApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TalosApiError::Invalid(m) => write!(f, "{m}"),
            TalosApiError::Unreachable { endpoint, reason } => {
                write!(f, "cannot reach the Talos API at {endpoint}: {reason} (is the node up, and is this its address?)")
            }
            TalosApiError::WrongCa { endpoint, reason } => write!(
                f,
                "the Talos node at {endpoint} presented a certificate that is not signed by the client configuration's CA \
                 (caCertificate): it belongs to another cluster, or is still in maintenance mode ({reason})"
            ),
            TalosApiError::ClientCertificateRefused { endpoint, reason } => write!(
                f,
                "the Talos node at {endpoint} refused the client certificate: it is not signed by the node's OS CA \
                 (machine.ca), so the client configuration belongs to another cluster ({reason})"
            ),
            TalosApiError::NotAuthorized { method, roles } => write!(
                f,
                "{method}: not authorized: the client certificate's roles {roles:?} do not allow this call (it needs os:admin)"
            ),
            TalosApiError::Status { method, code, message } => write!(f, "{method}: {code:?}: {message}"),
        }
    }
}

impl std::error::Error for TalosApiError {}

impl TalosApiError {
    /// Whether a call failing this way may still have taken effect: the
    /// connection dropped or the node stopped answering mid-call (a node that
    /// applies a configuration may switch its network before it replies).
    pub fn outcome_unknown(&self) -> bool {
        match self {
            TalosApiError::Unreachable { .. } => true,
            TalosApiError::Status { code: Code::Unavailable | Code::Cancelled | Code::DeadlineExceeded, .. } => true,
            // A transport failure after the request went out (tonic reports it as Unknown, or as
            // Internal when the HTTP/2 connection was torn down mid-stream).
            TalosApiError::Status { code: Code::Unknown | Code::Internal, message, .. } => {
                ["transport error", "h2 protocol error", "connection reset", "broken pipe", "stream closed"]
                    .iter()
                    .any(|m| message.to_ascii_lowercase().contains(m))
            }
            _ => false,
        }
    }

    /// The gRPC code of a call that reached the node.
    pub fn code(&self) -> Option<Code> {
        match self {
            TalosApiError::Status { code, .. } => Some(*code),
            TalosApiError::NotAuthorized { .. } => Some(Code::PermissionDenied),
            _ => None,
        }
    }
}

/// A connection to one endpoint, optionally targeting another `node` through it.
#[derive(Clone)]
pub struct TalosClient {
    channel: Channel,
    endpoint: String,
    node: Option<String>,
    roles: Vec<String>,
}

/// `host` or `host:port` (IPv6 in brackets) to a socket address string with the apid port.
fn endpoint_authority(endpoint: &str) -> Result<(String, String), TalosApiError> {
    let endpoint = endpoint.trim();
    let endpoint = endpoint.strip_prefix("https://").unwrap_or(endpoint).trim_end_matches('/');
    if endpoint.is_empty() {
        return Err(TalosApiError::Invalid("the Talos endpoint is empty".into()));
    }
    let (host, port) = if let Some(rest) = endpoint.strip_prefix('[') {
        let (h, tail) =
            rest.split_once(']').ok_or_else(|| TalosApiError::Invalid(format!("bad endpoint {endpoint:?}")))?;
        (h.to_string(), tail.strip_prefix(':').map(str::to_string))
    } else if endpoint.matches(':').count() == 1 {
        let (h, p) = endpoint.split_once(':').unwrap_or_default();
        (h.to_string(), Some(p.to_string()))
    } else {
        (endpoint.to_string(), None)
    };
    let port: u16 = match port {
        Some(p) => p.parse().map_err(|_| TalosApiError::Invalid(format!("bad port in endpoint {endpoint:?}")))?,
        None => APID_PORT,
    };
    let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    Ok((host, authority))
}

fn decode_pem_b64(field: &str, value: &str) -> Result<Vec<pem::Pem>, TalosApiError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .map_err(|e| TalosApiError::Invalid(format!("clientConfiguration.{field}: not base64: {e}")))?;
    pem::parse_many(&raw).map_err(|e| TalosApiError::Invalid(format!("clientConfiguration.{field}: not PEM: {e}")))
}

/// Accepts any server certificate (maintenance mode), still checking the handshake signatures.
#[derive(Debug)]
struct AcceptAnyServerCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The rustls client config for `credentials`, and the roles of its certificate.
fn tls_config(credentials: Credentials<'_>) -> Result<(rustls::ClientConfig, Vec<String>), TalosApiError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TalosApiError::Invalid(format!("TLS: {e}")))?;
    let (mut config, roles) = match credentials {
        Credentials::Insecure => (
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyServerCertificate(provider)))
                .with_no_client_auth(),
            Vec::new(),
        ),
        Credentials::Mutual(client) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in decode_pem_b64("caCertificate", &client.ca_certificate)? {
                roots
                    .add(CertificateDer::from(ca.into_contents()))
                    .map_err(|e| TalosApiError::Invalid(format!("clientConfiguration.caCertificate: {e}")))?;
            }
            let chain: Vec<CertificateDer<'static>> = decode_pem_b64("clientCertificate", &client.client_certificate)?
                .into_iter()
                .map(|p| CertificateDer::from(p.into_contents()))
                .collect();
            let roles = chain.first().map(|c| organizations(c)).unwrap_or_default();
            let key = decode_pem_b64("clientKey", &client.client_key)?
                .into_iter()
                .next()
                .ok_or_else(|| TalosApiError::Invalid("clientConfiguration.clientKey: no PEM block".into()))?;
            // Talos writes Ed25519 keys as `ED25519 PRIVATE KEY` around PKCS#8.
            let key = match key.tag() {
                "EC PRIVATE KEY" => PrivateKeyDer::Sec1(key.into_contents().into()),
                "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(key.into_contents().into()),
                _ => PrivateKeyDer::Pkcs8(key.into_contents().into()),
            };
            let config = builder
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
                .map_err(|e| TalosApiError::Invalid(format!("clientConfiguration: {e}")))?;
            (config, roles)
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok((config, roles))
}

fn organizations(cert: &CertificateDer<'_>) -> Vec<String> {
    x509_parser::parse_x509_certificate(cert)
        .map(|(_, c)| c.subject().iter_organization().filter_map(|o| o.as_str().ok()).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Walks an error's sources for a TLS or IO cause and classifies it.
fn classify(endpoint: &str, err: &(dyn std::error::Error + 'static)) -> TalosApiError {
    let mut source = Some(err);
    let mut text = err.to_string();
    while let Some(e) = source {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return classify_tls(endpoint, tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                return classify_tls(endpoint, tls);
            }
            text = io.to_string();
        }
        source = e.source();
    }
    TalosApiError::Unreachable { endpoint: endpoint.to_string(), reason: text }
}

fn classify_tls(endpoint: &str, err: &rustls::Error) -> TalosApiError {
    use rustls::AlertDescription as A;
    let endpoint = endpoint.to_string();
    let reason = err.to_string();
    match err {
        rustls::Error::InvalidCertificate(_) => TalosApiError::WrongCa { endpoint, reason },
        // Go's TLS stack answers a client certificate from another CA with
        // bad_certificate, rustls with unknown_ca or (the CAs of two Talos
        // clusters share the subject `O=talos`) decrypt_error; a missing one
        // is certificate_required.
        rustls::Error::AlertReceived(
            A::BadCertificate | A::UnknownCA | A::CertificateRequired | A::AccessDenied | A::DecryptError,
        ) => TalosApiError::ClientCertificateRefused { endpoint, reason },
        _ => TalosApiError::Unreachable { endpoint, reason },
    }
}

/// A stream whose first bytes were already read (they are served again first).
struct Prefixed<S> {
    prefix: Vec<u8>,
    stream: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.drain(..n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Connects to `endpoint` (`host`, `host:port`; port 50000 by default).
pub async fn connect(endpoint: &str, credentials: Credentials<'_>) -> Result<TalosClient, TalosApiError> {
    let (host, authority) = endpoint_authority(endpoint)?;
    let (tls, roles) = tls_config(credentials)?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let server_name = ServerName::try_from(host.clone())
        .map_err(|e| TalosApiError::Invalid(format!("endpoint host {host:?}: {e}")))?
        .to_owned();
    let target = authority.clone();
    let connect = tower::service_fn(move |_: Uri| {
        let (connector, server_name, target) = (connector.clone(), server_name.clone(), target.clone());
        async move {
            let addr: SocketAddr = match target.parse() {
                Ok(a) => a,
                Err(_) => tokio::net::lookup_host(&target)
                    .await?
                    .next()
                    .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no address"))?,
            };
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let mut tls = connector.connect(server_name, tcp).await?;
            // In TLS 1.3 the node judges the client certificate after the
            // client's handshake is done: wait for its first bytes (the
            // HTTP/2 settings a gRPC server sends at once), so a refusal is a
            // connect error with the node's TLS alert, not a later reset.
            let mut first = vec![0u8; 256];
            let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut first)).await.map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "the node sent nothing after the TLS handshake")
            })??;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "the node closed the connection after the TLS handshake",
                ));
            }
            first.truncate(n);
            Ok::<_, std::io::Error>(TokioIo::new(Prefixed { prefix: first, stream: tls }))
        }
    });
    // The URI only names the authority; the connector does TCP and TLS.
    let channel = Endpoint::from_shared(format!("http://{authority}"))
        .map_err(|e| TalosApiError::Invalid(format!("endpoint {endpoint:?}: {e}")))?
        .connect_timeout(Duration::from_secs(10))
        .connect_with_connector(connect)
        .await
        .map_err(|e| classify(&authority, &e))?;
    Ok(TalosClient { channel, endpoint: authority, node: None, roles })
}

impl TalosClient {
    /// Targets `node` through this endpoint (gRPC metadata `node`, as talosctl's `--nodes` with one node).
    pub fn with_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// A request with the `node` metadata when one is targeted.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut req = Request::new(message);
        if let Some(node) = self.node.as_ref().and_then(|n| n.parse().ok()) {
            req.metadata_mut().insert("node", node);
        }
        req
    }

    pub fn machine(&self) -> MachineServiceClient<Channel> {
        MachineServiceClient::new(self.channel.clone()).max_decoding_message_size(32 << 20)
    }

    pub fn storage(&self) -> StorageServiceClient<Channel> {
        StorageServiceClient::new(self.channel.clone())
    }

    pub fn cluster(&self) -> ClusterServiceClient<Channel> {
        ClusterServiceClient::new(self.channel.clone())
    }

    /// Turns a failed call's status into a [`TalosApiError`].
    pub fn error(&self, method: &str, status: Status) -> TalosApiError {
        if status.code() == Code::PermissionDenied {
            return TalosApiError::NotAuthorized { method: method.to_string(), roles: self.roles.clone() };
        }
        if status.code() == Code::Unavailable || status.code() == Code::Unknown {
            if let Some(source) = std::error::Error::source(&status) {
                let classified = classify(&self.endpoint, source);
                if !matches!(classified, TalosApiError::Unreachable { .. }) || status.code() == Code::Unavailable {
                    return classified;
                }
            }
        }
        TalosApiError::Status { method: method.to_string(), code: status.code(), message: status.message().to_string() }
    }

    /// `MachineService/Version`.
    pub async fn version(&self) -> Result<machine::Version, TalosApiError> {
        let reply = self.machine().version(self.request(())).await.map_err(|s| self.error("Version", s))?;
        first("Version", reply.into_inner().messages)
    }

    /// `StorageService/Disks` (also the maintenance-mode probe terraform-provider-talos uses).
    pub async fn disks(&self) -> Result<Vec<storage::Disk>, TalosApiError> {
        let reply = self.storage().disks(self.request(())).await.map_err(|s| self.error("Disks", s))?;
        Ok(first("Disks", reply.into_inner().messages)?.disks)
    }

    /// `MachineService/ApplyConfiguration`.
    pub async fn apply_configuration(
        &self,
        config: &str,
        mode: machine::apply_configuration_request::Mode,
        dry_run: bool,
    ) -> Result<machine::ApplyConfiguration, TalosApiError> {
        let req = machine::ApplyConfigurationRequest {
            data: config.as_bytes().to_vec(),
            mode: mode as i32,
            dry_run,
            try_mode_timeout: None,
        };
        let reply = self
            .machine()
            .apply_configuration(self.request(req))
            .await
            .map_err(|s| self.error("ApplyConfiguration", s))?;
        first("ApplyConfiguration", reply.into_inner().messages)
    }

    /// `MachineService/EtcdMemberList` (cluster-wide, not only the node's own view): the
    /// members' hostnames.
    pub async fn etcd_member_names(&self) -> Result<Vec<String>, TalosApiError> {
        let req = self.request(machine::EtcdMemberListRequest { query_local: false });
        let reply = self.machine().etcd_member_list(req).await.map_err(|s| self.error("EtcdMemberList", s))?;
        Ok(reply.into_inner().messages.into_iter().flat_map(|m| m.members).map(|m| m.hostname).collect())
    }

    /// `MachineService/EtcdMemberList` (cluster-wide): every member, down ones too.
    pub async fn etcd_members(&self) -> Result<Vec<machine::EtcdMember>, TalosApiError> {
        let req = self.request(machine::EtcdMemberListRequest { query_local: false });
        let reply = self.machine().etcd_member_list(req).await.map_err(|s| self.error("EtcdMemberList", s))?;
        Ok(reply.into_inner().messages.into_iter().flat_map(|m| m.members).collect())
    }

    /// `MachineService/EtcdLeaveCluster`: the node's member leaves etcd and its etcd stops.
    pub async fn etcd_leave_cluster(&self) -> Result<(), TalosApiError> {
        let req = self.request(machine::EtcdLeaveClusterRequest {});
        self.machine().etcd_leave_cluster(req).await.map_err(|s| self.error("EtcdLeaveCluster", s))?;
        Ok(())
    }

    /// `MachineService/EtcdRemoveMemberByID`: removes member `id` (e.g. of a node that is gone)
    /// through this node.
    pub async fn etcd_remove_member_by_id(&self, id: u64) -> Result<(), TalosApiError> {
        let req = self.request(machine::EtcdRemoveMemberByIdRequest { member_id: id });
        self.machine().etcd_remove_member_by_id(req).await.map_err(|s| self.error("EtcdRemoveMemberByID", s))?;
        Ok(())
    }

    /// `MachineService/Bootstrap`.
    pub async fn bootstrap(&self) -> Result<(), TalosApiError> {
        self.machine()
            .bootstrap(self.request(machine::BootstrapRequest::default()))
            .await
            .map_err(|s| self.error("Bootstrap", s))?;
        Ok(())
    }

    /// `MachineService/Read`: the contents of the file at `path` on the node
    /// (e.g. [`CONFIG_PATH`], the machine configuration in effect).
    pub async fn read_file(&self, path: &str) -> Result<Vec<u8>, TalosApiError> {
        let req = machine::ReadRequest { path: path.to_string() };
        let mut stream = self.machine().read(self.request(req)).await.map_err(|s| self.error("Read", s))?.into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await.map_err(|s| self.error("Read", s))? {
            bytes.extend_from_slice(&chunk.bytes);
        }
        Ok(bytes)
    }

    /// `MachineService/Reset`: wipes the STATE and EPHEMERAL partitions (the
    /// configuration and etcd data), leaving etcd first when `graceful`, then
    /// reboots into maintenance mode (`reboot`) or powers off.
    pub async fn reset(&self, graceful: bool, reboot: bool) -> Result<(), TalosApiError> {
        let wipe = |label: &str| machine::ResetPartitionSpec { label: label.to_string(), wipe: true };
        let req = machine::ResetRequest {
            graceful,
            reboot,
            system_partitions_to_wipe: vec![wipe("STATE"), wipe("EPHEMERAL")],
            ..Default::default()
        };
        self.machine().reset(self.request(req)).await.map_err(|s| self.error("Reset", s))?;
        Ok(())
    }

    /// `MachineService/Upgrade`: the node validates (pulls) the installer `image`, installs it
    /// and reboots into it. A control plane first checks that every etcd member is healthy.
    pub async fn upgrade(&self, image: &str) -> Result<(), TalosApiError> {
        let req = machine::UpgradeRequest { image: image.to_string(), ..Default::default() };
        self.machine().upgrade(self.request(req)).await.map_err(|s| self.error("Upgrade", s))?;
        Ok(())
    }

    /// `MachineService/ServiceList`: each service's id, state and health (`None`: no health check).
    pub async fn services(&self) -> Result<Vec<(String, String, Option<bool>)>, TalosApiError> {
        let reply = self.machine().service_list(self.request(())).await.map_err(|s| self.error("ServiceList", s))?;
        let list = first("ServiceList", reply.into_inner().messages)?;
        Ok(list
            .services
            .into_iter()
            .map(|s| {
                let healthy = s.health.filter(|h| !h.unknown).map(|h| h.healthy);
                (s.id, s.state, healthy)
            })
            .collect())
    }

    /// `MachineService/Kubeconfig`: the admin kubeconfig, out of its tar.gz.
    pub async fn kubeconfig(&self) -> Result<String, TalosApiError> {
        let mut stream =
            self.machine().kubeconfig(self.request(())).await.map_err(|s| self.error("Kubeconfig", s))?.into_inner();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.message().await.map_err(|s| self.error("Kubeconfig", s))? {
            bytes.extend_from_slice(&chunk.bytes);
        }
        single_file_from_tar_gz(&bytes).map_err(|e| TalosApiError::Status {
            method: "Kubeconfig".into(),
            code: Code::DataLoss,
            message: e,
        })
    }
}

fn first<T>(method: &str, messages: Vec<T>) -> Result<T, TalosApiError> {
    messages.into_iter().next().ok_or_else(|| TalosApiError::Status {
        method: method.into(),
        code: Code::Internal,
        message: "the node answered with no message".into(),
    })
}

/// The contents of the first regular file in a gzipped tar.
pub fn single_file_from_tar_gz(bytes: &[u8]) -> Result<String, String> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut tar).map_err(|e| format!("not gzip: {e}"))?;
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let size_field = std::str::from_utf8(&header[124..136]).map_err(|_| "bad tar header")?;
        let size = usize::from_str_radix(size_field.trim_matches(['\0', ' ']), 8).map_err(|_| "bad tar size")?;
        let body = tar.get(at + 512..at + 512 + size).ok_or("truncated tar")?;
        if matches!(header[156], b'0' | 0) {
            return String::from_utf8(body.to_vec()).map_err(|_| "the file is not UTF-8".into());
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    Err("the archive holds no file".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_connections_leave_the_outcome_unknown() {
        let status = |code, message: &str| TalosApiError::Status { method: "M".into(), code, message: message.into() };
        assert!(status(Code::Unknown, "transport error").outcome_unknown(), "tonic's text for a dropped connection");
        assert!(status(Code::Unavailable, "the node is rebooting").outcome_unknown());
        assert!(status(Code::Internal, "h2 protocol error: http2 error").outcome_unknown(), "a node powering off");
        assert!(!status(Code::Internal, "failed to install").outcome_unknown());
        assert!(TalosApiError::Unreachable { endpoint: "e".into(), reason: "reset".into() }.outcome_unknown());
        assert!(!status(Code::Unknown, "failed to parse config: unknown keys").outcome_unknown());
        assert!(!status(Code::InvalidArgument, "configuration validation failed").outcome_unknown());
        assert!(!TalosApiError::WrongCa { endpoint: "e".into(), reason: "r".into() }.outcome_unknown());
    }

    #[test]
    fn endpoints_get_the_apid_port() {
        assert_eq!(endpoint_authority("127.0.0.5").unwrap(), ("127.0.0.5".into(), "127.0.0.5:50000".into()));
        assert_eq!(endpoint_authority("127.0.0.5:50001").unwrap().1, "127.0.0.5:50001");
        assert_eq!(endpoint_authority("[fd00::1]:50000").unwrap(), ("fd00::1".into(), "[fd00::1]:50000".into()));
        assert_eq!(endpoint_authority("fd00::1").unwrap().1, "[fd00::1]:50000");
        assert!(endpoint_authority(" ").is_err());
    }
}
