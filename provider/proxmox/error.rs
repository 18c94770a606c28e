//! What can go wrong talking to Proxmox VE, classified once so callers decide
//! on retries and "already gone" without string matching of their own.
//!
//! Owns: [`ProxmoxError`] (an API answer with PVE's status, reason phrase,
//! per-parameter `errors` and `message`; a transport failure; a failed task
//! with its log tail; an undecodable answer) and the classification of
//! PVE's texts: not found, lock timeout, refusals (500s that a retry never
//! changes), transient, already exists/running.
//! Must not: retry or log (callers do, with [`super::retry`]).

use std::collections::BTreeMap;
use std::fmt;

/// A failed Proxmox VE call.
#[derive(Debug, Clone, PartialEq)]
pub enum ProxmoxError {
    /// PVE answered with an error status.
    Api {
        method: String,
        path: String,
        status: u16,
        /// The reason phrase or `message` (PVE puts its message in both).
        message: String,
        /// Per-parameter errors of a 400 "Parameter verification failed."
        errors: BTreeMap<String, String>,
    },
    /// No answer: connection refused or dropped, TLS failure, timeout.
    Transport {
        method: String,
        path: String,
        reason: String,
        /// Whether the request may have reached PVE (a write may have taken effect).
        maybe_sent: bool,
    },
    /// A worker task ended with an error.
    Task { upid: String, exitstatus: String, log_tail: Vec<String> },
    /// The answer could not be decoded.
    Decode { method: String, path: String, reason: String },
    /// The client cannot be built (bad endpoint, unreadable CA file, ...).
    Config(String),
    /// The endpoint runs a Proxmox VE release older than a feature needs.
    TooOld { feature: String, needs: String, found: String, endpoint: String },
}

impl ProxmoxError {
    /// All texts PVE gave, for classification.
    fn text(&self) -> String {
        match self {
            ProxmoxError::Api { message, errors, .. } => {
                let mut t = message.clone();
                for e in errors.values() {
                    t.push('\n');
                    t.push_str(e);
                }
                t
            }
            ProxmoxError::Task { exitstatus, log_tail, .. } => format!("{exitstatus}\n{}", log_tail.join("\n")),
            ProxmoxError::Transport { reason, .. } | ProxmoxError::Decode { reason, .. } => reason.clone(),
            ProxmoxError::Config(m) => m.clone(),
            ProxmoxError::TooOld { feature, .. } => feature.clone(),
        }
    }

    /// PVE's message of an API error.
    pub fn message(&self) -> Option<&str> {
        match self {
            ProxmoxError::Api { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ProxmoxError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The thing asked for does not exist (404, or PVE's 500 texts for a missing VM or volume).
    pub fn is_not_found(&self) -> bool {
        if self.status() == Some(404) {
            return true;
        }
        let t = self.text();
        matches!(self, ProxmoxError::Api { status: 500, .. })
            && (t.contains("does not exist")
                || t.contains("no such")
                || t.contains("unable to find configuration file"))
    }

    /// "can't lock file '/var/lock/qemu-server/lock-N.conf' - got timeout".
    pub fn is_lock_timeout(&self) -> bool {
        let t = self.text();
        t.contains("can't lock file") || t.contains("got timeout")
    }

    /// A refusal PVE gives the same way every time, though with a 500 status (PVE answers
    /// every `die` of an API handler with 500): the thing already exists or already runs, a
    /// clone or migration that the VM's storage or state rules out, a root-only setting.
    /// Retrying only delays the answer — and a retried create that took "already exists"
    /// for its own earlier attempt would adopt somebody else's VM.
    pub fn is_refusal(&self) -> bool {
        const REFUSALS: [&str; 8] = [
            "already exists",
            "already running",
            "can't clone",
            "can't migrate",
            "uses local storage",
            "non-shared storage",
            "only root can",
            "not allowed for",
        ];
        let t = self.text();
        matches!(self, ProxmoxError::Api { status: 500, .. }) && REFUSALS.iter().any(|r| t.contains(r))
    }

    /// Worth retrying with backoff, by allow-list (proxmox-anchors §3): dropped
    /// connections, PVE's proxy failing to reach a node (502/503/504/595/596/599), and
    /// the texts of passing contention — lock timeouts ("got timeout", "got lock request
    /// timeout", "can't lock file", pmxcfs's "cfs-lock"), a VM locked by another operation
    /// ("VM is locked (clone)"), "got no worker upid", "Resource temporarily unavailable" —
    /// whatever their status, and in failed tasks too. Every other error is permanent and
    /// surfaces at once: a 500 of PVE is its API handler's `die`, and sending the call again
    /// repeats it.
    pub fn is_transient(&self) -> bool {
        const CONTENTION: [&str; 8] = [
            "got timeout",
            "got lock request timeout",
            "got no worker upid",
            "can't lock file",
            "cfs-lock",
            "cfs lock",
            "is locked",
            "Resource temporarily unavailable",
        ];
        match self {
            ProxmoxError::Transport { .. } => true,
            ProxmoxError::Api { status: 502 | 503 | 504 | 595 | 596 | 599, .. } => true,
            ProxmoxError::Api { .. } | ProxmoxError::Task { .. } => {
                let t = self.text();
                CONTENTION.iter().any(|needle| t.contains(needle))
            }
            ProxmoxError::Decode { .. } | ProxmoxError::Config(_) | ProxmoxError::TooOld { .. } => false,
        }
    }

    /// PVE refused a write computed from an older read: the configuration's digest changed
    /// ("checksum mismatch (file change by other user?)").
    pub fn is_concurrent_edit(&self) -> bool {
        let t = self.text();
        t.contains("checksum mismatch")
            || t.contains("checksum missmatch")
            || t.contains("detected modified configuration")
    }

    /// A retried create or clone found its own earlier attempt: "already exists".
    pub fn is_already_exists(&self) -> bool {
        self.text().contains("already exists")
    }

    /// A retried start found the VM running.
    pub fn is_already_running(&self) -> bool {
        self.text().contains("already running")
    }

    /// Whether the error text contains `needle`.
    pub fn mentions(&self, needle: &str) -> bool {
        self.text().contains(needle)
    }
}

impl fmt::Display for ProxmoxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxmoxError::Api { method, path, status, message, errors } => {
                write!(f, "Proxmox VE {method} {path}: {status} {}", message.trim())?;
                for (k, v) in errors {
                    write!(f, "; {k}: {}", v.trim())?;
                }
                Ok(())
            }
            ProxmoxError::Transport { method, path, reason, .. } => write!(f, "Proxmox VE {method} {path}: {reason}"),
            ProxmoxError::Task { upid, exitstatus, log_tail } => {
                write!(f, "Proxmox VE task {upid} failed: {exitstatus}")?;
                if !log_tail.is_empty() {
                    write!(f, "\ntask log (last lines):\n  {}", log_tail.join("\n  "))?;
                }
                Ok(())
            }
            ProxmoxError::Decode { method, path, reason } => {
                write!(f, "Proxmox VE {method} {path}: unexpected answer: {reason}")
            }
            ProxmoxError::Config(m) => write!(f, "{m}"),
            ProxmoxError::TooOld { feature, needs, found, endpoint } => write!(
                f,
                "{feature} needs Proxmox VE {needs} or later; {endpoint} runs {found} (read from GET /version): \
                 upgrade Proxmox VE or use another content type"
            ),
        }
    }
}

impl std::error::Error for ProxmoxError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, message: &str) -> ProxmoxError {
        ProxmoxError::Api {
            method: "PUT".into(),
            path: "/nodes/pve/qemu/100/config".into(),
            status,
            message: message.into(),
            errors: BTreeMap::new(),
        }
    }

    #[test]
    fn pve_texts_are_classified() {
        let lock = api(500, "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout");
        assert!(lock.is_lock_timeout() && lock.is_transient() && !lock.is_not_found());
        let gone = api(500, "Configuration file 'nodes/pve/qemu-server/100.conf' does not exist");
        assert!(gone.is_not_found() && !gone.is_transient());
        assert!(api(404, "Not found").is_not_found());
        assert!(api(500, "got no worker upid - start worker failed").is_transient());
        assert!(!api(400, "Parameter verification failed.").is_transient());
        assert!(api(500, "VM is locked (clone)").is_transient());
        assert!(api(596, "Connection timed out").is_transient());
        // A `die` of PVE's API handlers is a 500 too, and sending it again repeats it.
        let taken = api(500, "unable to create VM 100 - VM 100 already exists on node 'pve'");
        assert!(taken.is_already_exists() && !taken.is_transient());
        assert!(!api(500, "VM 100 already running").is_transient());
        assert!(!api(500, "can't clone to non-shared storage 'local-zfs'").is_transient());
        let task = ProxmoxError::Task {
            upid: "UPID:pve:1:1:1:qmstart:100:root@pam:".into(),
            exitstatus: "VM 100 already running".into(),
            log_tail: vec![],
        };
        assert!(task.is_already_running() && !task.is_transient());
        // PVE's refusals come as 500s but never change on a retry.
        let exists = api(500, "unable to create VM 100: config file already exists");
        assert!(exists.is_already_exists() && exists.is_refusal() && !exists.is_transient());
        assert!(!api(500, "can't clone VM to node 'pve2' (VM uses local storage)").is_transient());
        assert!(!api(500, "can't migrate running VM without --online").is_transient());
        assert!(!api(500, "only root can set 'hostpci0' config for non-mapped devices").is_transient());
        // Only contention is retried: any other 500 is permanent.
        assert!(!api(500, "unexpected error").is_transient() && !api(500, "unexpected error").is_refusal());
        assert!(!api(500, "can't remove VM 100 - protection mode enabled").is_transient());
        assert!(api(500, "cfs-lock 'file-user_cfg' error: got lock request timeout").is_transient());
        assert!(api(500, "can't lock file '/run/lock/lxc/pve-config-100.lock' - Resource temporarily unavailable")
            .is_transient());
        assert!(api(599, "Too many redirections").is_transient() && api(595, "No route to host").is_transient());
        assert!(api(503, "proxy: no route to node").is_transient());
    }

    #[test]
    fn messages_name_the_call_and_every_parameter_error() {
        let mut e = api(400, "Parameter verification failed.");
        if let ProxmoxError::Api { errors, .. } = &mut e {
            errors.insert("net0".into(), "invalid format - bridge 'vmbr9' does not exist\n".into());
        }
        assert_eq!(
            e.to_string(),
            "Proxmox VE PUT /nodes/pve/qemu/100/config: 400 Parameter verification failed.; net0: invalid format - \
             bridge 'vmbr9' does not exist"
        );
    }
}
