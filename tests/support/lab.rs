//! The lab for CLI tests: the Proxmox VE API on its own runtime thread (so a
//! test can block on `pulumi` while the lab serves the plugin), a loopback HTTP
//! file server for downloads, and the environment the plugin reads.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use proxmox_talos::config::{ProxmoxAuth, ProxmoxSettings};
use proxmox_talos::proxmox::PveClient;
use proxmox_talos_lab::factory::{self, FactoryState};
use proxmox_talos_lab::in_process::{self, InProcessLab};
use proxmox_talos_lab::pve::admin;
use proxmox_talos_lab::pve::lab_config::{LabConfig, Timing};

/// Lab timing for Talos programs: quick tasks; boots and guest agents that take a moment.
pub const TALOS_TIMING: Timing = Timing { task_ms: 20, boot_ms: 300, agent_ms: 300, lock_wait_ms: 3000 };

/// A loopback /24 of a lab's own (127.a.b.0/24, a.b random), so the addresses
/// of its Talos nodes never meet another test's.
#[derive(Clone, Copy, Debug)]
pub struct Subnet(pub [u8; 2]);

impl Subnet {
    pub fn random() -> Subnet {
        use rand_core::RngCore as _;
        let mut rng = rand_core::OsRng;
        Subnet([64 + (rng.next_u32() % 180) as u8, (rng.next_u32() % 256) as u8])
    }

    pub fn ip(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(127, self.0[0], self.0[1], last)
    }

    /// `127.a.b.`, what every address of the subnet starts with.
    pub fn prefix(&self) -> String {
        format!("127.{}.{}.", self.0[0], self.0[1])
    }
}

/// A running lab and the runtime serving it.
pub struct CliLab {
    pub lab: InProcessLab,
    pub runtime: tokio::runtime::Runtime,
    pub state_dir: tempfile::TempDir,
}

impl CliLab {
    pub fn start(config: LabConfig) -> CliLab {
        Self::start_in(config, tempfile::tempdir().unwrap())
    }

    pub fn start_in(config: LabConfig, state_dir: tempfile::TempDir) -> CliLab {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let lab = runtime.block_on(in_process::start(config, state_dir.path())).unwrap();
        CliLab { lab, runtime, state_dir }
    }

    /// The single-node seed lab (it has the GPU) on a subnet of its own (gateway `.1`).
    pub fn single_node_on_own_subnet(timing: Timing) -> (CliLab, Subnet) {
        let subnet = Subnet::random();
        let mut config = LabConfig::single_node();
        config.bridges[0].subnet = subnet.ip(0);
        config.bridges[0].gateway = subnet.ip(1);
        config.timing = timing;
        (CliLab::start(config), subnet)
    }

    /// The lab's Image Factory, served on the lab's runtime: its URL and its state.
    pub fn factory(&self) -> (String, FactoryState) {
        let listener = self.runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = FactoryState::new();
        self.runtime.spawn(factory::serve(listener, state.clone(), std::future::pending()));
        (url, state)
    }

    /// What the plugin needs to reach the lab with an API token.
    pub fn token_env(&self) -> Vec<(String, String)> {
        vec![
            ("PROXMOX_VE_ENDPOINT".into(), self.lab.endpoint.clone()),
            ("PROXMOX_VE_API_TOKEN".into(), self.lab.api_token()),
            ("PROXMOX_VE_CA_CERT".into(), self.lab.ca_path.display().to_string()),
        ]
    }

    /// A client of the lab's API with its token, for what a test makes outside Pulumi.
    pub fn api(&self) -> PveClient {
        PveClient::new(&ProxmoxSettings {
            endpoint: self.lab.endpoint.clone(),
            auth: ProxmoxAuth::ApiToken(self.lab.api_token()),
            insecure: false,
            ca_certificate: Some(self.lab.ca_path.display().to_string()),
            min_tls: None,
        })
        .unwrap()
    }

    /// What the lab holds besides its seed (template VMs, seed files).
    pub fn inventory(&self) -> admin::Inventory {
        self.lab.state.read(|m| admin::inventory(m, self.lab.state.state_dir()).without_seed(m))
    }

    /// No VM and no file besides the seed's.
    /// Waits (polling, up to `within`) until no task runs in the lab: what a
    /// killed plugin started finishes before the test looks at the result.
    pub fn wait_for_tasks(&self, within: std::time::Duration) {
        let deadline = std::time::Instant::now() + within;
        while self.lab.state.read(|m| m.tasks.iter().any(|t| t.running())) {
            assert!(std::time::Instant::now() < deadline, "lab tasks still running after {within:?}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn assert_empty(&self) {
        let left = self.inventory();
        assert!(left.vms.is_empty() && left.files.is_empty(), "left behind: {left:?}");
    }

    /// The configuration of the lab's VM `vmid`.
    pub fn vm_config(&self, vmid: u32) -> std::collections::BTreeMap<String, String> {
        self.lab.state.read(|m| m.vms.get(&vmid).map(|vm| vm.config.clone())).unwrap_or_else(|| panic!("no VM {vmid}"))
    }

    /// The node the lab's VM `vmid` is on.
    pub fn vm_node(&self, vmid: u32) -> String {
        self.lab.state.read(|m| m.vms.get(&vmid).map(|vm| vm.node.clone())).unwrap_or_else(|| panic!("no VM {vmid}"))
    }

    /// Serves `files` (name → bytes) over HTTP on 127.0.0.1; returns the base URL.
    pub fn serve_files(&self, files: HashMap<String, Vec<u8>>) -> String {
        let files = Arc::new(files);
        let listener = self.runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        self.runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let files = files.clone();
                tokio::spawn(serve_one(stream, files));
            }
        });
        format!("http://{addr}")
    }
}

/// API parameters from pairs.
pub fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn serve_one(mut stream: tokio::net::TcpStream, files: Arc<HashMap<String, Vec<u8>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    let name = path.trim_start_matches('/').split('?').next().unwrap_or("");
    let response = match files.get(name) {
        Some(body) => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            if method != "HEAD" {
                r.extend_from_slice(body);
            }
            r
        }
        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}
