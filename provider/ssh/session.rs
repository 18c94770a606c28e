//! One SSH connection to a node: TCP, the handshake with the host-key check,
//! authentication, and the SFTP subsystem on top.
//!
//! Owns: [`connect`] (bounded by a timeout; keep-alives so long transfers
//! survive idle firewalls), trying each of the [`Credentials`]' methods in
//! order (a key, with `rsa-sha2-*` for RSA when the server offers it; each
//! identity of the agent; a password, also as the answer to
//! keyboard-interactive prompts), and [`Session::sftp`].
//! Must not: decide where files go (see [`super::sftp`] and the callers).

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{Algorithm, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Disconnect, MethodKind};

use super::auth::{AuthMethod, Credentials};
use super::host_keys::{HostKeyPolicy, HostKeyStatus};
use super::sftp::Sftp;
use super::SshError;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

struct Client {
    target: Target,
    policy: HostKeyPolicy,
    found: Arc<Mutex<Option<HostKeyStatus>>>,
}

#[derive(Debug)]
enum ClientError {
    Ssh(russh::Error),
    HostKey(SshError),
}

impl From<russh::Error> for ClientError {
    fn from(e: russh::Error) -> Self {
        ClientError::Ssh(e)
    }
}

impl client::Handler for Client {
    type Error = ClientError;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, ClientError> {
        let status =
            self.policy.check(&self.target.host, self.target.port, &key.public_key()).map_err(ClientError::HostKey)?;
        *self.found.lock().unwrap_or_else(|e| e.into_inner()) = Some(status);
        Ok(true)
    }
}

/// An authenticated connection.
pub struct Session {
    handle: Handle<Client>,
    target: Target,
    /// What the host-key check found (to log an accepted, unknown key).
    pub host_key: HostKeyStatus,
}

/// Connects to `target` and logs in; `timeout` bounds the connection and the login.
pub async fn connect(
    target: &Target,
    credentials: &Credentials,
    policy: &HostKeyPolicy,
    timeout: Duration,
) -> Result<Session, SshError> {
    let addr = target.to_string();
    let mut preferred = russh::Preferred::default();
    if let Some(algorithms) = policy.algorithms_for(&target.host, target.port) {
        preferred.key = algorithms.into();
    }
    let config = Arc::new(client::Config {
        preferred,
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 4,
        nodelay: true,
        ..Default::default()
    });
    let found = Arc::new(Mutex::new(None));
    let handler = Client { target: target.clone(), policy: policy.clone(), found: found.clone() };
    let connected =
        tokio::time::timeout(timeout, client::connect(config, (target.host.as_str(), target.port), handler)).await;
    let mut handle = match connected {
        Err(_) => return Err(SshError::Timeout { what: format!("SSH to {addr}"), seconds: timeout.as_secs() }),
        Ok(Err(ClientError::HostKey(e))) => return Err(e),
        Ok(Err(ClientError::Ssh(e))) => return Err(SshError::Connect { addr, reason: describe(&e) }),
        Ok(Ok(h)) => h,
    };
    let host_key = found.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or_else(|| SshError::Connect {
        addr: addr.clone(),
        reason: "the server's host key was never checked".into(),
    })?;
    match tokio::time::timeout(timeout, authenticate(&mut handle, target, credentials)).await {
        Err(_) => Err(SshError::Timeout { what: format!("SSH login to {addr}"), seconds: timeout.as_secs() }),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Ok(Session { handle, target: target.clone(), host_key }),
    }
}

fn describe(e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => io.to_string(),
        russh::Error::Disconnect => "the server closed the connection".into(),
        other => other.to_string(),
    }
}

fn method_names(set: &russh::MethodSet) -> Vec<String> {
    set.iter().map(|m| <&'static str>::from(m).to_string()).collect()
}

async fn authenticate(handle: &mut Handle<Client>, target: &Target, c: &Credentials) -> Result<(), SshError> {
    let addr = target.to_string();
    let ssh_err = |e: russh::Error| SshError::Connect { addr: addr.clone(), reason: describe(&e) };
    let user = c.username.clone();
    let mut tried = Vec::new();
    let mut offered: Vec<String> = Vec::new();
    for method in &c.methods {
        tried.push(method.name().to_string());
        let outcome = match method {
            AuthMethod::Key(key) => {
                let hash = if matches!(key.algorithm(), Algorithm::Rsa { .. }) {
                    handle.best_supported_rsa_hash().await.map_err(ssh_err)?.flatten()
                } else {
                    None
                };
                let key = PrivateKeyWithHashAlg::new(key.clone(), hash);
                handle.authenticate_publickey(user.clone(), key).await.map_err(ssh_err)?
            }
            AuthMethod::Agent => {
                let mut agent = AgentClient::connect_env().await.map_err(|e| {
                    SshError::Agent(format!(
                        "`ssh.agent` is true but the SSH agent cannot be reached ({e}): start one and `ssh-add` \
                         the key, or set `ssh.privateKey`"
                    ))
                })?;
                let identities = agent
                    .request_identities()
                    .await
                    .map_err(|e| SshError::Agent(format!("asking the SSH agent for its keys: {e}")))?;
                let mut last = None;
                for identity in identities {
                    let AgentIdentity::PublicKey { key, .. } = identity else { continue };
                    let hash = if matches!(key.algorithm(), Algorithm::Rsa { .. }) {
                        handle.best_supported_rsa_hash().await.map_err(ssh_err)?.flatten()
                    } else {
                        None
                    };
                    let r = handle
                        .authenticate_publickey_with(user.clone(), key, hash, &mut agent)
                        .await
                        .map_err(|e| SshError::Agent(format!("signing with the SSH agent: {e}")))?;
                    let done = r.success();
                    last = Some(r);
                    if done {
                        break;
                    }
                }
                match last {
                    Some(r) => r,
                    None => return Err(SshError::Agent("the SSH agent holds no keys: `ssh-add` one".into())),
                }
            }
            AuthMethod::Password(password) => {
                let r = handle.authenticate_password(user.clone(), password.clone()).await.map_err(ssh_err)?;
                match &r {
                    russh::client::AuthResult::Failure { remaining_methods, .. }
                        if remaining_methods.contains(&MethodKind::KeyboardInteractive) =>
                    {
                        keyboard_interactive(handle, &user, password).await.map_err(ssh_err)?.unwrap_or(r)
                    }
                    _ => r,
                }
            }
        };
        match outcome {
            russh::client::AuthResult::Success => return Ok(()),
            russh::client::AuthResult::Failure { remaining_methods, .. } => {
                offered = method_names(&remaining_methods);
            }
        }
    }
    Err(SshError::AuthRefused { user, addr, tried, offered })
}

/// Answers every keyboard-interactive prompt with the password (PAM's "Password:").
async fn keyboard_interactive(
    handle: &mut Handle<Client>,
    user: &str,
    password: &str,
) -> Result<Option<russh::client::AuthResult>, russh::Error> {
    let mut response = handle.authenticate_keyboard_interactive_start(user, None).await?;
    for _ in 0..5 {
        match response {
            KeyboardInteractiveAuthResponse::Success => return Ok(Some(russh::client::AuthResult::Success)),
            KeyboardInteractiveAuthResponse::Failure { remaining_methods, partial_success } => {
                return Ok(Some(russh::client::AuthResult::Failure { remaining_methods, partial_success }))
            }
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => {
                let answers = prompts.iter().map(|_| password.to_string()).collect();
                response = handle.authenticate_keyboard_interactive_respond(answers).await?;
            }
        }
    }
    Ok(None)
}

impl Session {
    /// Where this session is connected.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Opens the SFTP subsystem.
    pub async fn sftp(&self) -> Result<Sftp, SshError> {
        let addr = self.target.to_string();
        let err = |e: russh::Error| SshError::Sftp { op: "start", path: addr.clone(), reason: describe(&e) };
        let channel = self.handle.channel_open_session().await.map_err(err)?;
        channel.request_subsystem(true, "sftp").await.map_err(err)?;
        Sftp::start(channel.into_stream(), &addr).await
    }

    /// Says goodbye (best effort).
    pub async fn close(self) {
        let _ = self.handle.disconnect(Disconnect::ByApplication, "", "en").await;
    }
}
