//! Test support: launch the plugin binary as the engine does, a fake engine that
//! records Log calls, and property-map builders.

#![allow(dead_code)]

pub mod lab;
pub mod pulumi;
pub mod talos;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proxmox_talos::rpc::proto::pulumirpc::{
    engine_server::{Engine, EngineServer},
    resource_provider_client::ResourceProviderClient,
    LogRequest,
};
use proxmox_talos::value::{wire, PropertyMap, PropertyValue};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Channel;

/// A temporary directory sshd accepts as a chroot's parent, for a lab state whose
/// nodes run sshd (root-owned and not group/world writable all the way up; `/tmp` is not).
pub fn chroot_capable_dir(prefix: &str) -> tempfile::TempDir {
    let base = proxmox_talos_lab::ssh::chroot_capable_base(&[PathBuf::from(env!("CARGO_TARGET_TMPDIR"))])
        .unwrap_or_else(|e| panic!("{e}"));
    tempfile::Builder::new().prefix(prefix).tempdir_in(base).unwrap()
}

/// A new ed25519 key pair in `dir`: (private key text, public key line).
pub fn ssh_key_pair(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let out = run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"]).arg(&path), 60);
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
    (std::fs::read_to_string(&path).unwrap(), std::fs::read_to_string(path.with_extension("pub")).unwrap())
}

/// What a resource logged when a test drives it directly (no engine): (severity, message,
/// ephemeral).
#[derive(Default)]
pub struct Sink(pub Mutex<Vec<(proxmox_talos::framework::Severity, String, bool)>>);

impl proxmox_talos::framework::LogSink for Sink {
    fn log(&self, severity: proxmox_talos::framework::Severity, _urn: &str, message: &str, ephemeral: bool) {
        self.0.lock().unwrap().push((severity, message.to_string(), ephemeral));
    }
}

impl Sink {
    /// Whether any message contains `needle`.
    pub fn any(&self, needle: &str) -> bool {
        self.0.lock().unwrap().iter().any(|(_, m, _)| m.contains(needle))
    }

    /// The ephemeral (status line) messages.
    pub fn status_lines(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().filter(|(_, _, e)| *e).map(|(_, m, _)| m.clone()).collect()
    }
}

/// Runs `command` to the end within `secs` seconds, stdin closed: past that it is killed with
/// its process group and the test fails with what it printed. Every child process a test runs
/// goes through here, [`run_fed`] or [`pulumi::Stack`]; none is waited for without a deadline.
pub fn run(command: &mut Command, secs: u64) -> Output {
    proxmox_talos_lab::deadline::output_or_panic(command, Duration::from_secs(secs))
}

/// [`run`] with `input` on the child's stdin.
pub fn run_fed(command: &mut Command, input: &[u8], secs: u64) -> Output {
    proxmox_talos_lab::deadline::Running::start_fed(command, Some(input.to_vec()))
        .and_then(|r| r.finish_within(Duration::from_secs(secs)))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Demands Debian's OpenSSH server (the lab's nodes run real sshd).
pub fn require_sshd() {
    assert!(
        proxmox_talos_lab::ssh::ssh_available(),
        "the OpenSSH server is not installed ({} missing): install openssh-server and openssh-sftp-server \
         (tools/ensure-sshd.sh)",
        proxmox_talos_lab::ssh::SSHD
    );
}

/// Log messages the fake engine received.
#[derive(Clone, Default)]
pub struct Logs(pub Arc<Mutex<Vec<LogRequest>>>);

impl Logs {
    pub fn messages(&self) -> Vec<LogRequest> {
        self.0.lock().unwrap().clone()
    }
}

#[tonic::async_trait]
impl Engine for Logs {
    async fn log(&self, req: tonic::Request<LogRequest>) -> Result<tonic::Response<()>, tonic::Status> {
        self.0.lock().unwrap().push(req.into_inner());
        Ok(tonic::Response::new(()))
    }
}

/// Starts a fake engine on 127.0.0.1:0 and returns its address.
pub async fn fake_engine() -> (String, Logs) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let logs = Logs::default();
    let service = EngineServer::new(logs.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    (addr, logs)
}

/// The plugin process; killed when dropped.
pub struct Plugin {
    pub child: Child,
    pub port: u16,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Launches the built plugin with `args` and reads its port line.
pub fn launch(args: &[&str]) -> Plugin {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulumi-resource-proxmox-talos"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env_remove("PROXMOX_VE_ENDPOINT")
        .env_remove("PROXMOX_VE_API_TOKEN")
        .spawn()
        .expect("plugin starts");
    // The port line, within a deadline: a plugin that hangs before it listens fails the test.
    let line = proxmox_talos_lab::deadline::first_line_within(&mut child, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("plugin: {e}"));
    let port = line.trim().parse().unwrap_or_else(|_| panic!("first stdout line is the port, got {line:?}"));
    Plugin { child, port }
}

pub async fn client(port: u16) -> ResourceProviderClient<Channel> {
    ResourceProviderClient::connect(format!("http://127.0.0.1:{port}")).await.unwrap()
}

/// `{k: v, ...}` as a Struct.
pub fn obj(pairs: &[(&str, PropertyValue)]) -> prost_types::Struct {
    wire::to_struct(&map(pairs))
}

pub fn map(pairs: &[(&str, PropertyValue)]) -> PropertyMap {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

pub fn s(v: &str) -> PropertyValue {
    PropertyValue::String(v.to_string())
}

pub fn secret(v: PropertyValue) -> PropertyValue {
    PropertyValue::Secret(Box::new(v))
}

/// Decodes a Struct the plugin returned.
pub fn props(s: Option<prost_types::Struct>) -> PropertyMap {
    wire::from_struct(&s.unwrap_or_default()).unwrap()
}

/// Builds the Talos machinery Go tool (`tools/talos-fixtures`) once per test
/// binary, to a temporary name then renamed, so parallel test binaries never
/// run a half-written file; returns its path.
pub fn talos_fixtures_tool() -> &'static std::path::Path {
    static TOOL: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    TOOL.get_or_init(|| {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = root.join("target");
        std::fs::create_dir_all(&target).unwrap();
        let tmp = target.join(format!("talos-fixtures.{}.tmp", std::process::id()));
        // A cold module cache downloads Talos machinery's dependencies first.
        let out = run(
            Command::new("go").args(["build", "-o"]).arg(&tmp).arg(".").current_dir(root.join("tools/talos-fixtures")),
            1200,
        );
        assert!(
            out.status.success(),
            "building tools/talos-fixtures failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tool = target.join("talos-fixtures");
        std::fs::rename(&tmp, &tool).unwrap();
        tool
    })
}
