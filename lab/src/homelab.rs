//! The whole homelab as one service: the Proxmox VE API (HTTPS, lab CA), the
//! Talos nodes of its VMs and the Image Factory on loopback, plus the env file
//! that tests, examples and users source to reach them.
//!
//! Owns: starting the services from a [`LabConfig`] and a state directory,
//! the env file (`STATE/lab.env`: endpoint, API token, root@pam password,
//! CA certificate, factory URL, state dir), and the default locations
//! (`$PROXMOX_TALOS_LAB_STATE`, else `~/.cache/proxmox-talos/lab`).
//! Must not: parse command lines or daemonize (that is `main.rs`).

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::factory;
use crate::pve;
use crate::pve::lab_config::LabConfig;

/// The env file's name in the state directory.
pub const ENV_FILE: &str = "lab.env";
/// The default API address (PVE's port).
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:8006";
/// The default Image Factory address.
pub const DEFAULT_FACTORY_LISTEN: &str = "127.0.0.1:8080";

/// How to run the lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub config: LabConfig,
    pub state_dir: PathBuf,
    /// The PVE API schema file (official or compact); `None`: the embedded compact one.
    pub api_schema: Option<PathBuf>,
    pub api_listen: SocketAddr,
    pub factory_listen: SocketAddr,
}

/// The port each node's sshd listens on (at the node's own address).
pub const NODE_SSH_PORT: u16 = 2222;

/// Where the running lab answers, and its credentials.
#[derive(Debug, Clone)]
pub struct LabEndpoints {
    /// `https://127.0.0.1:8006/` (what `PROXMOX_VE_ENDPOINT` takes).
    pub endpoint: String,
    pub factory_url: String,
    pub ca_cert: PathBuf,
    pub credentials: pve::auth::LabCredentials,
    pub state_dir: PathBuf,
    /// Node name and address, in config order.
    pub nodes: Vec<(String, String)>,
    /// SSH to the nodes (root, key auth, port [`NODE_SSH_PORT`]), when sshd could be started.
    pub ssh: Option<LabSsh>,
    /// Why the nodes run without SSH, when they do (written to the env file).
    pub ssh_unavailable: Option<String>,
}

/// The env file line that says the nodes have no SSH, and why (a comment, so
/// sourcing the file sets nothing; `up` prints it).
pub const NO_SSH_MARKER: &str = "# PROXMOX_TALOS_LAB_SSH_UNAVAILABLE: ";

/// How to reach the nodes' real sshd.
#[derive(Debug, Clone)]
pub struct LabSsh {
    pub username: String,
    pub private_key_path: PathBuf,
    pub port: u16,
}

/// `$PROXMOX_TALOS_LAB_STATE`, else `~/.cache/proxmox-talos/lab`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PROXMOX_TALOS_LAB_STATE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache").join("proxmox-talos").join("lab")
}

/// Runs the lab until `shutdown` completes; calls `ready` once both services
/// listen and the env file is written.
pub async fn run(
    options: LabOptions,
    ready: impl FnOnce(&LabEndpoints),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let apidoc = pve::apidoc::ApiDoc::load_or_embedded(options.api_schema.as_deref()).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&options.state_dir)
        .map_err(|e| format!("creating {}: {e}", options.state_dir.display()))?;
    let ca = pve::tls::LabCa::load_or_create(&options.state_dir)?;
    let credentials = pve::auth::LabCredentials::load_or_create(&options.state_dir)?;
    let tls = ca.server_config_for(&pve::tls::certificate_names(&options.config, options.api_listen.ip()))?;
    let nodes = options.config.nodes.iter().map(|n| (n.name.clone(), n.address.to_string())).collect();
    let state = pve::server::PveState::new(apidoc, credentials.auth(), options.config.clone(), &options.state_dir)?;
    let api = bind(options.api_listen).await?;
    let factory_listener = bind(options.factory_listen).await?;
    let api_url = pve::server::base_url(api.local_addr().map_err(|e| e.to_string())?);
    let (sshds, ssh, ssh_unavailable) = match start_node_sshds(&options, &state, &api_url) {
        Ok((sshds, ssh)) => (sshds, Some(ssh), None),
        Err(e) => {
            eprintln!("proxmox-talos-lab: the nodes run without SSH (snippet uploads will fail): {e}");
            (Vec::new(), None, Some(e))
        }
    };
    let endpoints = LabEndpoints {
        endpoint: format!("https://{}/", api.local_addr().map_err(|e| e.to_string())?),
        factory_url: format!("http://{}", factory_listener.local_addr().map_err(|e| e.to_string())?),
        ca_cert: ca.cert_path().to_path_buf(),
        credentials,
        state_dir: options.state_dir.clone(),
        nodes,
        ssh,
        ssh_unavailable,
    };
    write_env_file(&endpoints)?;
    ready(&endpoints);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    // Talos nodes: one Talos API per running VM that boots a Talos image.
    let talos = crate::talos::start(state.clone());
    let api_task = tokio::spawn(pve::server::serve(api, tls, state, stopped(stop_rx.clone())));
    let factory_task =
        tokio::spawn(factory::serve(factory_listener, factory::FactoryState::new(), stopped(stop_rx.clone())));
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = api_task.await;
    let _ = factory_task.await;
    drop(talos);
    drop(sshds);
    let _ = std::fs::remove_file(options.state_dir.join(ENV_FILE));
    Ok(())
}

/// One real sshd per node, chrooted to the node's file system, on the node's
/// address; a client key for root made once in `STATE/ssh/client_key`.
fn start_node_sshds(
    options: &LabOptions,
    state: &pve::server::PveState,
    api_url: &str,
) -> Result<(Vec<crate::ssh::NodeSshd>, LabSsh), String> {
    crate::ssh::check_chroot_path(&options.state_dir)?;
    let key_dir = options.state_dir.join("ssh");
    std::fs::create_dir_all(&key_dir).map_err(|e| format!("creating {}: {e}", key_dir.display()))?;
    let key = key_dir.join("client_key");
    if !key.exists() {
        let out = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "proxmox-talos-lab", "-f"])
            .arg(&key)
            .output()
            .map_err(|e| format!("running ssh-keygen: {e}"))?;
        if !out.status.success() {
            return Err(format!("ssh-keygen failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    let public = std::fs::read_to_string(key.with_extension("pub")).map_err(|e| e.to_string())?;
    // Root's commands run in the node shell of this binary (`proxmox-talos-lab
    // node-shell`); a lab run inside another program (a test) keeps SFTP only.
    let shell = std::env::current_exe()
        .ok()
        .filter(|exe| exe.file_name().is_some_and(|n| n == "proxmox-talos-lab"))
        .map(|exe| crate::ssh::ShellSetup { exe, api: api_url.to_string() });
    let mut sshds = Vec::new();
    for node in &options.config.nodes {
        let listen = SocketAddr::new(std::net::IpAddr::V4(node.address), NODE_SSH_PORT);
        let root = state.node_root(&node.name);
        let sshd = crate::ssh::start_node_sshd(&options.state_dir, &node.name, &root, listen, shell.as_ref())?;
        sshd.authorize(public.trim())?;
        sshds.push(sshd);
    }
    Ok((sshds, LabSsh { username: "root".into(), private_key_path: key, port: NODE_SSH_PORT }))
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    if !addr.ip().is_loopback() {
        return Err(format!("{addr}: the lab only listens on loopback (127.0.0.0/8 or ::1)"));
    }
    tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("listening on {addr}: {e}"))
}

/// Writes `STATE/lab.env` (mode 0600: it holds the password and tokens) atomically.
pub fn write_env_file(lab: &LabEndpoints) -> Result<PathBuf, String> {
    let path = lab.state_dir.join(ENV_FILE);
    let q = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let nodes: Vec<String> = lab.nodes.iter().map(|(n, a)| format!("{n}={a}")).collect();
    let lines = [
        "# The proxmox-talos lab. Source this file: . ".to_string() + &path.display().to_string(),
        format!("export PROXMOX_VE_ENDPOINT={}", q(&lab.endpoint)),
        format!(
            "export PROXMOX_VE_API_TOKEN={}",
            q(&format!("{}={}", lab.credentials.token_id, lab.credentials.token_secret))
        ),
        format!(
            "export PROXMOX_LAB_LIMITED_API_TOKEN={}",
            q(&format!("{}={}", lab.credentials.limited_token_id, lab.credentials.limited_token_secret))
        ),
        format!("export PROXMOX_VE_USERNAME={}", q(&lab.credentials.user)),
        format!("export PROXMOX_VE_PASSWORD={}", q(&lab.credentials.password)),
        format!("export PROXMOX_VE_CA_CERT={}", q(&lab.ca_cert.display().to_string())),
        format!("export TALOS_IMAGE_FACTORY_URL={}", q(&lab.factory_url)),
        format!("export PROXMOX_TALOS_LAB_STATE={}", q(&lab.state_dir.display().to_string())),
        format!("export PROXMOX_TALOS_LAB_NODES={}", q(&nodes.join(","))),
    ];
    let mut lines = lines.to_vec();
    if let Some(ssh) = &lab.ssh {
        let key = std::fs::read_to_string(&ssh.private_key_path).map_err(|e| e.to_string())?;
        lines.push(format!("export PROXMOX_VE_SSH_USERNAME={}", q(&ssh.username)));
        lines.push(format!("export PROXMOX_VE_SSH_PRIVATE_KEY={}", q(key.trim_end())));
        lines.push(format!("export PROXMOX_VE_SSH_PORT={}", q(&ssh.port.to_string())));
    }
    if let (None, Some(reason)) = (&lab.ssh, &lab.ssh_unavailable) {
        lines.push(format!("{NO_SSH_MARKER}{}", reason.split_whitespace().collect::<Vec<_>>().join(" ")));
    }
    // Written whole, then renamed: `up` reads it as soon as it exists.
    let tmp = lab.state_dir.join(format!("{ENV_FILE}.tmp"));
    let _ = std::fs::remove_file(&tmp);
    pve::tls::write_private(&tmp, &(lines.join("\n") + "\n"))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("renaming to {}: {e}", path.display()))?;
    Ok(path)
}

/// Why the lab of env file `path` runs without SSH to its nodes, if it does.
pub fn ssh_unavailable(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| l.strip_prefix(NO_SSH_MARKER)).map(str::to_string)
}

/// Reads `KEY=value` pairs back from an env file (for tests and `inventory`).
pub fn read_env_file(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').replace(r"'\''", "'")))
        .collect())
}
