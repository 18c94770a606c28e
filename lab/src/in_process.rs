//! The lab's Proxmox VE API started inside a test's own runtime: what the
//! provider's integration tests and benches use instead of `up`.
//!
//! Owns: [`InProcessLab`], started with [`start`] on `127.0.0.1:0` in a state
//! directory the caller owns, with the lab CA and random credentials, and the
//! Talos nodes of its VMs; it serves until the runtime ends. Must not: be used by `up` (that is
//! [`crate::homelab`]).

use std::path::{Path, PathBuf};

use crate::pve::apidoc::ApiDoc;
use crate::pve::auth::LabCredentials;
use crate::pve::lab_config::LabConfig;
use crate::pve::server::{self, PveState};
use crate::pve::tls::LabCa;
use crate::talos::TalosNodes;

/// A running in-process lab API.
#[derive(Clone)]
pub struct InProcessLab {
    /// The lab's state, for tests that inspect or change it directly.
    pub state: PveState,
    /// `https://127.0.0.1:PORT/` (as `PROXMOX_VE_ENDPOINT` takes it).
    pub endpoint: String,
    pub ca_path: PathBuf,
    pub ca_pem: String,
    pub credentials: LabCredentials,
    /// The Talos nodes (VMs booting a Talos image).
    pub talos: TalosNodes,
}

impl InProcessLab {
    /// `root@pam!lab=SECRET`, as the provider's `apiToken` takes it.
    pub fn api_token(&self) -> String {
        format!("{}={}", self.credentials.token_id, self.credentials.token_secret)
    }
}

/// Starts the API for `config` in `state_dir` on a free loopback port.
pub async fn start(config: LabConfig, state_dir: &Path) -> Result<InProcessLab, String> {
    let apidoc = ApiDoc::embedded();
    let ca = LabCa::load_or_create(state_dir)?;
    let credentials = LabCredentials::load_or_create(state_dir)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let tls = ca.server_config_for(&crate::pve::tls::certificate_names(&config, addr.ip()))?;
    let state = PveState::new(apidoc, credentials.auth(), config, state_dir)?;
    tokio::spawn(server::serve(listener, tls, state.clone(), std::future::pending()));
    let talos = crate::talos::start(state.clone());
    Ok(InProcessLab {
        state,
        endpoint: format!("https://{addr}/"),
        ca_path: ca.cert_path().to_path_buf(),
        ca_pem: ca.cert_pem().to_string(),
        credentials,
        talos,
    })
}
