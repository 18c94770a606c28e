//! Which host keys to trust.
//!
//! Owns: the policy, OpenSSH's "accept new" with a report: when
//! `~/.ssh/known_hosts` (or the file given) has entries for the host
//! (`host`, or `[host]:port` off port 22; hashed `|1|` entries, `*`/`?`
//! wildcards and `!` negations as OpenSSH reads them), the server's key must
//! be one of them (an entry whose key cannot be parsed still counts as
//! recorded, so it never turns a host into an unknown one), a key marked
//! `@revoked` is refused, and the algorithms recorded are the ones
//! negotiated, as `ssh` does; a host it does not know is accepted and its
//! fingerprint returned so the caller can log it and say how to pin it. The
//! parsing is ours: russh's skips comment lines when numbering and gives up
//! on the first line it cannot parse.
//! Must not: write to `known_hosts` or log.

use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use russh::keys::{Algorithm, HashAlg, PublicKey};
use sha1::Sha1;

use super::SshError;

/// Where known host keys are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyPolicy {
    /// The `known_hosts` file; `None` when there is no home directory.
    pub known_hosts: Option<PathBuf>,
}

/// What the host-key check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyStatus {
    /// The key is one `known_hosts` records for the host.
    Known { fingerprint: String },
    /// `known_hosts` does not know the host: the key was accepted.
    Unknown { fingerprint: String },
}

impl HostKeyStatus {
    pub fn fingerprint(&self) -> &str {
        match self {
            HostKeyStatus::Known { fingerprint } | HostKeyStatus::Unknown { fingerprint } => fingerprint,
        }
    }
}

/// `ssh-ed25519 SHA256:...`, as `ssh-keygen -lf` shows a key.
pub fn fingerprint(key: &PublicKey) -> String {
    format!("{} {}", key.algorithm().as_str(), key.fingerprint(HashAlg::Sha256))
}

/// One `known_hosts` line that names the host.
#[derive(Debug)]
struct Entry {
    /// 1-based line number.
    line: usize,
    revoked: bool,
    /// `None` when the key cannot be parsed (an unsupported type, a damaged line).
    key: Option<PublicKey>,
}

/// `host` on port 22, `[host]:port` otherwise, as `known_hosts` names hosts.
fn host_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// OpenSSH's `match_pattern`: `*` any run, `?` one character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..])),
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p.eq_ignore_ascii_case(t) => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

/// Whether `|1|salt|hash` is HMAC-SHA1(salt, name).
fn hashed_matches(entry: &str, name: &str) -> bool {
    use base64::Engine as _;
    let mut parts = entry.trim_start_matches("|1|").splitn(2, '|');
    let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else { return false };
    let b64 = base64::engine::general_purpose::STANDARD;
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else { return false };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&salt) else { return false };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// Whether the hosts field (comma-separated patterns) names `name`; a matching `!` pattern vetoes.
fn hosts_match(field: &str, name: &str) -> bool {
    if field.starts_with("|1|") {
        return hashed_matches(field, name);
    }
    let mut matched = false;
    for pattern in field.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(negated.as_bytes(), name.as_bytes()) {
                return false;
            }
        } else if glob(pattern.as_bytes(), name.as_bytes()) {
            matched = true;
        }
    }
    matched
}

/// The entries of `text` for `name`.
fn entries(text: &str, name: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let marker = first.strip_prefix('@').map(str::to_string);
        if marker.is_some() {
            first = fields.next().unwrap_or_default();
        }
        // Certificate authorities vouch for certificates, which this client does not ask for.
        if marker.as_deref() == Some("cert-authority") || !hosts_match(first, name) {
            continue;
        }
        let (_kind, blob) = (fields.next(), fields.next());
        let key = blob.and_then(|b| russh::keys::parse_public_key_base64(b).ok());
        out.push(Entry { line: i + 1, revoked: marker.as_deref() == Some("revoked"), key });
    }
    out
}

impl HostKeyPolicy {
    /// `$HOME/.ssh/known_hosts`.
    pub fn user_default() -> HostKeyPolicy {
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        HostKeyPolicy { known_hosts: home.map(|h| h.join(".ssh").join("known_hosts")) }
    }

    /// Keys from `path` only.
    pub fn with_file(path: &Path) -> HostKeyPolicy {
        HostKeyPolicy { known_hosts: Some(path.to_path_buf()) }
    }

    fn recorded(&self, host: &str, port: u16) -> Result<Vec<Entry>, SshError> {
        let Some(path) = &self.known_hosts else { return Ok(Vec::new()) };
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(entries(&text, &host_name(host, port))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(SshError::Connect {
                addr: format!("{host}:{port}"),
                reason: format!("reading {}: {e}", path.display()),
            }),
        }
    }

    /// The host-key algorithms to offer, most preferred first: those recorded for the host
    /// (so the server shows a key that can be compared), else `None` for the defaults.
    pub fn algorithms_for(&self, host: &str, port: u16) -> Option<Vec<Algorithm>> {
        let mut algorithms: Vec<Algorithm> = Vec::new();
        for entry in self.recorded(host, port).ok()?.into_iter().filter(|e| !e.revoked) {
            let Some(key) = entry.key else { continue };
            let wanted = match key.algorithm() {
                Algorithm::Rsa { .. } => vec![
                    Algorithm::Rsa { hash: Some(HashAlg::Sha512) },
                    Algorithm::Rsa { hash: Some(HashAlg::Sha256) },
                    Algorithm::Rsa { hash: None },
                ],
                other => vec![other],
            };
            for a in wanted {
                if !algorithms.contains(&a) {
                    algorithms.push(a);
                }
            }
        }
        (!algorithms.is_empty()).then_some(algorithms)
    }

    /// Checks the key `host:port` presented.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Result<HostKeyStatus, SshError> {
        let fingerprint = fingerprint(key);
        let recorded = self.recorded(host, port)?;
        let same = |e: &Entry| e.key.as_ref().is_some_and(|k| k.key_data() == key.key_data());
        let file = || self.known_hosts.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        if let Some(revoked) = recorded.iter().find(|e| e.revoked && same(e)) {
            return Err(SshError::HostKeyMismatch {
                addr: format!("{host}:{port}"),
                fingerprint: format!("{fingerprint} (marked @revoked)"),
                known_hosts: file(),
                line: revoked.line,
            });
        }
        let pinned: Vec<&Entry> = recorded.iter().filter(|e| !e.revoked).collect();
        if pinned.is_empty() {
            return Ok(HostKeyStatus::Unknown { fingerprint });
        }
        if pinned.iter().any(|e| same(e)) {
            return Ok(HostKeyStatus::Known { fingerprint });
        }
        Err(SshError::HostKeyMismatch {
            addr: format!("{host}:{port}"),
            fingerprint,
            known_hosts: file(),
            line: pinned[0].line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKwkAT23Qe7riaZf7a7z9rAZSOUmRiRrT3bKkQmB/OW8";
    const B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

    fn key(line: &str) -> PublicKey {
        russh::keys::parse_public_key_base64(line.split_whitespace().nth(1).unwrap()).unwrap()
    }

    fn policy(text: &str) -> (HostKeyPolicy, PathBuf) {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pt-known-hosts-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("known_hosts");
        std::fs::write(&file, text).unwrap();
        (HostKeyPolicy::with_file(&file), dir)
    }

    #[test]
    fn known_unknown_and_changed_keys() {
        let (policy, dir) = policy(&format!("# comment\n\n[127.0.0.1]:2222 {A}\npve.lan,10.0.0.5\t{A} root@pve\n"));
        let known = policy.check("127.0.0.1", 2222, &key(A)).unwrap();
        assert!(matches!(known, HostKeyStatus::Known { .. }), "{known:?}");
        assert!(known.fingerprint().starts_with("ssh-ed25519 SHA256:"), "{known:?}");
        assert!(matches!(policy.check("127.0.0.1", 22, &key(B)).unwrap(), HostKeyStatus::Unknown { .. }));
        assert!(matches!(policy.check("10.0.0.5", 22, &key(A)).unwrap(), HostKeyStatus::Known { .. }));

        let e = policy.check("127.0.0.1", 2222, &key(B)).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("127.0.0.1:2222") && text.contains(&fingerprint(&key(B))), "{text}");
        assert!(text.contains("line 3") && text.contains(policy.known_hosts.as_ref().unwrap().to_str().unwrap()));

        assert_eq!(policy.algorithms_for("pve.lan", 22), Some(vec![Algorithm::Ed25519]));
        assert_eq!(policy.algorithms_for("other", 22), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn patterns_hashes_revocations_and_damaged_lines() {
        // `ssh-keygen -H` of "pve.lan": |1|base64(salt)|base64(HMAC-SHA1(salt, host)).
        use base64::Engine as _;
        let salt = [7u8; 20];
        let mut mac = Hmac::<Sha1>::new_from_slice(&salt).unwrap();
        mac.update(b"pve.lan");
        let b64 = base64::engine::general_purpose::STANDARD;
        let hashed = format!("|1|{}|{}", b64.encode(salt), b64.encode(mac.finalize().into_bytes()));
        let (p, dir) = policy(&format!(
            "{hashed} {A}\n*.lab,!bad.lab {B}\n@revoked rogue.lan {B}\n@cert-authority *.lan {B}\nbroken.lan ssh-ed25519 AAAA!!\n"
        ));
        assert!(matches!(p.check("pve.lan", 22, &key(A)).unwrap(), HostKeyStatus::Known { .. }));
        assert!(p.check("pve.lan", 22, &key(B)).is_err());
        assert!(matches!(p.check("node1.lab", 22, &key(B)).unwrap(), HostKeyStatus::Known { .. }));
        assert!(matches!(p.check("bad.lab", 22, &key(A)).unwrap(), HostKeyStatus::Unknown { .. }));
        let revoked = p.check("rogue.lan", 22, &key(B)).unwrap_err().to_string();
        assert!(revoked.contains("@revoked") && revoked.contains("line 3"), "{revoked}");
        assert!(matches!(p.check("rogue.lan", 22, &key(A)).unwrap(), HostKeyStatus::Unknown { .. }));
        // A line that names the host but cannot be parsed still pins it: never "unknown".
        let damaged = p.check("broken.lan", 22, &key(A)).unwrap_err().to_string();
        assert!(damaged.contains("line 5"), "{damaged}");
        assert!(glob(b"pve-*-0?", b"pve-ms01-01") && !glob(b"pve-*-0?", b"pve-ms01-1"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
