//! Who logs in to a node and how, from the provider's `ssh` settings.
//!
//! Owns: [`Credentials`] (the user name: `ssh.username`, else the API user's
//! name without its realm; and the methods to try in order: private key,
//! agent, password) and reading a private key (OpenSSH or PEM: PKCS#1,
//! PKCS#8, SEC1; ed25519, ecdsa, rsa), given as text or as a file path.
//! Must not: connect (see [`super::session`]) or show secrets in `Debug`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use russh::keys::PrivateKey;

use super::SshError;
use crate::config::SshConfig;

/// One way to authenticate.
#[derive(Clone)]
pub enum AuthMethod {
    /// A private key.
    Key(Arc<PrivateKey>),
    /// The agent at `SSH_AUTH_SOCK`.
    Agent,
    /// A password (also answered to keyboard-interactive prompts).
    Password(String),
}

impl AuthMethod {
    /// `publickey`, `agent` or `password`.
    pub fn name(&self) -> &'static str {
        match self {
            AuthMethod::Key(_) => "publickey",
            AuthMethod::Agent => "agent",
            AuthMethod::Password(_) => "password",
        }
    }
}

impl fmt::Debug for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthMethod::Key(k) => write!(f, "Key({})", k.algorithm()),
            AuthMethod::Agent => write!(f, "Agent"),
            AuthMethod::Password(_) => write!(f, "Password(..)"),
        }
    }
}

/// A user name and the methods to try, in order.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub username: String,
    pub methods: Vec<AuthMethod>,
}

/// What to set when nothing is.
pub const NOT_CONFIGURED: &str = "SSH is not configured: set `proxmox-talos:ssh.username` and `ssh.privateKey` \
     (secret; or `ssh.password`, or `ssh.agent: true` to use the agent at SSH_AUTH_SOCK), or the environment \
     variables PROXMOX_VE_SSH_USERNAME and PROXMOX_VE_SSH_PRIVATE_KEY (or PROXMOX_VE_SSH_PASSWORD, \
     PROXMOX_VE_SSH_AGENT=true)";

impl Credentials {
    /// From the `ssh` settings; `api_user` (`root@pam`, or a token's `root@pam!ci`) gives
    /// the user name when `ssh.username` is unset.
    pub fn from_config(ssh: Option<&SshConfig>, api_user: Option<&str>) -> Result<Credentials, SshError> {
        let ssh = ssh.cloned().unwrap_or_default();
        let mut methods = Vec::new();
        if let Some(key) = ssh.private_key.as_deref().filter(|k| !k.trim().is_empty()) {
            methods.push(AuthMethod::Key(Arc::new(parse_private_key(key)?)));
        }
        if ssh.agent == Some(true) {
            methods.push(AuthMethod::Agent);
        }
        if let Some(p) = ssh.password.filter(|p| !p.is_empty()) {
            methods.push(AuthMethod::Password(p));
        }
        if methods.is_empty() {
            return Err(SshError::NotConfigured(NOT_CONFIGURED.into()));
        }
        let username = ssh
            .username
            .filter(|u| !u.trim().is_empty())
            .or_else(|| api_user.and_then(|u| u.split(['@', '!']).next()).filter(|u| !u.is_empty()).map(str::to_string))
            .ok_or_else(|| {
                SshError::NotConfigured(
                    "no SSH user name: set `proxmox-talos:ssh.username` or PROXMOX_VE_SSH_USERNAME (e.g. root)".into(),
                )
            })?;
        Ok(Credentials { username, methods })
    }
}

/// Reads a private key given as PEM/OpenSSH text or as the path of a file holding it.
pub fn parse_private_key(given: &str) -> Result<PrivateKey, SshError> {
    let mut text = given.trim().to_string();
    // A key pasted into a single-line variable with literal `\n`s.
    if !text.contains('\n') && text.contains("\\n") {
        text = text.replace("\\n", "\n");
    }
    if !text.starts_with("-----BEGIN") && !text.starts_with("PuTTY-User-Key-File-") {
        let path = Path::new(&text);
        if text.len() < 4096 && path.is_file() {
            text = std::fs::read_to_string(path)
                .map_err(|e| SshError::BadKey(format!("ssh.privateKey: cannot read the key file {text:?}: {e}")))?;
        } else {
            return Err(SshError::BadKey(
                "ssh.privateKey is neither a private key (`-----BEGIN OPENSSH PRIVATE KEY-----` or a PEM block) \
                 nor the path of a file holding one"
                    .into(),
            ));
        }
    }
    russh::keys::decode_secret_key(&text, None).map_err(|e| match e {
        russh::keys::Error::KeyIsEncrypted => SshError::BadKey(
            "ssh.privateKey is encrypted with a passphrase: give an unencrypted key, or load it into an agent \
             (`ssh-add`) and set `ssh.agent: true`"
                .into(),
        ),
        other => SshError::BadKey(format!(
            "ssh.privateKey cannot be read as an OpenSSH or PEM private key (ed25519, ecdsa or rsa): {other}"
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // `ssh-keygen -t ed25519 -N '' -C test`: a throwaway key for these tests only.
    const ED25519: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACCsJAE9t0Hu64mmX+2u8/awGUjlJkYka092ypEJgfzlvAAAAJDrEDna6xA5
2gAAAAtzc2gtZWQyNTUxOQAAACCsJAE9t0Hu64mmX+2u8/awGUjlJkYka092ypEJgfzlvA
AAAEDijxjkLxiAtXRhRVBlsSQXf2x6KA2v2E6dQznzyc0TXawkAT23Qe7riaZf7a7z9rAZ
SOUmRiRrT3bKkQmB/OW8AAAACHRlc3Qta2V5AQIDBAU=
-----END OPENSSH PRIVATE KEY-----
";
    // `ssh-keygen -t ecdsa -m PEM -N ''`: SEC1 PEM.
    const ECDSA_PEM: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIGjffU4Sqn2LIPFsA+wdSPoFYQdUJxvNA7zUftiqMMJ5oAoGCCqGSM49
AwEHoUQDQgAEDpp+uIykIOPcRtyAGgsagSFfIGhOmhuhVtSBidu64YFF1N4ArKyv
0V6nDd9XEKZ+hyt94VDKdYufLOliAIHcNg==
-----END EC PRIVATE KEY-----
";

    #[test]
    fn credentials_take_the_api_user_and_try_key_agent_password_in_order() {
        let ssh = SshConfig {
            private_key: Some(ED25519.into()),
            password: Some("pw".into()),
            agent: Some(true),
            ..Default::default()
        };
        let c = Credentials::from_config(Some(&ssh), Some("root@pam!ci")).unwrap();
        assert_eq!(c.username, "root");
        let names: Vec<_> = c.methods.iter().map(AuthMethod::name).collect();
        assert_eq!(names, ["publickey", "agent", "password"]);
        assert!(!format!("{c:?}").contains("pw"), "Debug shows no secrets");
    }

    #[test]
    fn missing_or_bad_settings_say_what_to_set() {
        let e = Credentials::from_config(None, Some("root@pam")).unwrap_err().to_string();
        assert!(e.contains("proxmox-talos:ssh.username") && e.contains("PROXMOX_VE_SSH_PRIVATE_KEY"), "{e}");
        let ssh = SshConfig { password: Some("x".into()), ..Default::default() };
        let e = Credentials::from_config(Some(&ssh), None).unwrap_err().to_string();
        assert!(e.contains("PROXMOX_VE_SSH_USERNAME"), "{e}");
        let e = parse_private_key("not a key").unwrap_err().to_string();
        assert!(e.contains("neither a private key"), "{e}");
        let e = parse_private_key("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be read"), "{e}");
    }

    #[test]
    fn keys_are_read_from_text_escaped_text_or_a_file() {
        assert!(parse_private_key(ED25519).is_ok());
        assert!(parse_private_key(ECDSA_PEM).is_ok());
        assert!(parse_private_key(&ED25519.replace('\n', "\\n")).is_ok());
        let dir = std::env::temp_dir().join(format!("pt-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("id_ed25519");
        std::fs::write(&path, ED25519).unwrap();
        assert!(parse_private_key(path.to_str().unwrap()).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
