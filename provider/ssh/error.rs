//! What can go wrong reaching a node over SSH, in texts that name the host,
//! the setting to change or the command to run.
//!
//! Owns: [`SshError`]. Must not: retry or log.

use std::fmt;

/// A failed SSH or SFTP step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshError {
    /// No usable credentials are configured.
    NotConfigured(String),
    /// The configured private key cannot be used.
    BadKey(String),
    /// No TCP connection, or the SSH handshake failed.
    Connect { addr: String, reason: String },
    /// The host presented a key other than the one `known_hosts` records.
    HostKeyMismatch { addr: String, fingerprint: String, known_hosts: String, line: usize },
    /// The server refused every method tried.
    AuthRefused { user: String, addr: String, tried: Vec<String>, offered: Vec<String> },
    /// The SSH agent could not be used.
    Agent(String),
    /// An SFTP operation failed.
    Sftp { op: &'static str, path: String, reason: String },
    /// A file's content did not match its expected checksum.
    Checksum { path: String, expected: String, actual: String },
    /// A remote file is larger than the caller accepts.
    TooLarge { path: String, size: u64, limit: u64 },
    /// The step did not finish in time.
    Timeout { what: String, seconds: u64 },
}

impl SshError {
    /// Worth another try: the connection failed or dropped (not auth, host keys or SFTP answers).
    pub fn is_transient(&self) -> bool {
        matches!(self, SshError::Connect { .. })
    }

    /// The SFTP server said the path does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, SshError::Sftp { reason, .. } if reason.starts_with("No such file"))
    }
}

impl fmt::Display for SshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SshError::NotConfigured(m) | SshError::BadKey(m) | SshError::Agent(m) => write!(f, "{m}"),
            SshError::Connect { addr, reason } => write!(f, "SSH to {addr}: {reason}"),
            SshError::HostKeyMismatch { addr, fingerprint, known_hosts, line } => write!(
                f,
                "SSH to {addr}: the host key changed: the server presented {fingerprint}, which is not the key \
                 {known_hosts} records for it (line {line}). If the node was reinstalled, remove the old entry with \
                 `ssh-keygen -R {}` and connect once to record the new key; otherwise someone may be intercepting \
                 the connection",
                keygen_host(addr)
            ),
            SshError::AuthRefused { user, addr, tried, offered } => {
                write!(f, "SSH to {addr}: the server refused the login of {user:?} (tried {}", tried.join(", "))?;
                if !offered.is_empty() {
                    write!(f, "; it accepts {}", offered.join(", "))?;
                }
                write!(
                    f,
                    "): check `proxmox-talos:ssh.username` and the key, password or agent (the key's public half \
                     must be in the user's ~/.ssh/authorized_keys on the node)"
                )
            }
            SshError::Sftp { op, path, reason } => write!(f, "SFTP {op} {path}: {reason}"),
            SshError::Checksum { path, expected, actual } => {
                write!(f, "{path}: sha256 is {actual}, expected {expected}; the file changed while it was read")
            }
            SshError::TooLarge { path, size, limit } => {
                write!(f, "{path} has {size} bytes, more than the {limit} this operation reads")
            }
            SshError::Timeout { what, seconds } => write!(f, "{what}: no answer within {seconds}s"),
        }
    }
}

impl std::error::Error for SshError {}

/// `host:port` as `ssh-keygen -R` takes it: `host` on port 22, `[host]:port` otherwise.
fn keygen_host(addr: &str) -> String {
    match addr.rsplit_once(':') {
        Some((host, "22")) => host.to_string(),
        Some((host, port)) => format!("'[{host}]:{port}'"),
        None => addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_say_what_to_do() {
        let e = SshError::HostKeyMismatch {
            addr: "10.0.0.5:2222".into(),
            fingerprint: "ED25519 SHA256:abc".into(),
            known_hosts: "/root/.ssh/known_hosts".into(),
            line: 3,
        };
        let t = e.to_string();
        assert!(t.contains("10.0.0.5:2222") && t.contains("SHA256:abc") && t.contains("line 3"), "{t}");
        assert!(t.contains("ssh-keygen -R '[10.0.0.5]:2222'"), "{t}");
        let e = SshError::AuthRefused {
            user: "root".into(),
            addr: "pve:22".into(),
            tried: vec!["publickey".into()],
            offered: vec!["publickey".into(), "password".into()],
        };
        let t = e.to_string();
        assert!(t.contains("refused the login of \"root\"") && t.contains("it accepts publickey, password"), "{t}");
        assert!(SshError::Sftp { op: "stat", path: "/x".into(), reason: "No such file".into() }.is_not_found());
    }
}
