//! Authentication as pveproxy does it: API tokens and tickets with CSRF tokens.
//!
//! Owns: the lab's users (`user@realm` with a password) and API tokens
//! (`user@realm!id` with a secret), issuing tickets (`POST /access/ticket`,
//! also renewing: the password may be a valid ticket), and checking each
//! request: `Authorization: PVEAPIToken=user@realm!id=secret` (no CSRF), or
//! cookie `PVEAuthCookie=<ticket>` plus header `CSRFPreventionToken` on every
//! non-GET request (not for uploads). Messages follow PVE's `auth_handler`
//! and `PVE::AccessControl` ("No ticket", "invalid token value!",
//! "permission denied - invalid PVE ticket", "Permission denied - invalid csrf
//! token"). Tickets expire after two hours, as PVE's do. The lab's
//! credentials (`root@pam` password, token `root@pam!lab`) are random, made at
//! first start and kept in the state directory ([`LabCredentials`]).
//! Must not: check permissions (that is [`super::access`]) or know handlers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use serde::{Deserialize, Serialize};

/// The credentials file in the state directory.
pub const CREDENTIALS_FILE: &str = "pve-credentials.json";

/// The lab's login: a password for `user` and one API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabCredentials {
    /// `root@pam`.
    pub user: String,
    pub password: String,
    /// `root@pam!lab`.
    pub token_id: String,
    pub token_secret: String,
    /// The least-privilege token of the default access config
    /// (`pulumi@pve!lab`, see [`super::access::AccessConfig`]); added to
    /// older credentials files at the next start.
    #[serde(default)]
    pub limited_token_id: String,
    #[serde(default)]
    pub limited_token_secret: String,
}

impl LabCredentials {
    /// Loads `pve-credentials.json` from `state_dir`, creating it (mode 0600) at first start.
    pub fn load_or_create(state_dir: &Path) -> Result<LabCredentials, String> {
        let path = state_dir.join(CREDENTIALS_FILE);
        if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            let mut creds: LabCredentials =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            if creds.limited_token_id.is_empty() {
                creds.limited_token_id = super::access::LIMITED_TOKEN.into();
                creds.limited_token_secret = token_secret();
                let text = serde_json::to_string_pretty(&creds).map_err(|e| e.to_string())?;
                let tmp = state_dir.join(format!("{CREDENTIALS_FILE}.tmp"));
                let _ = std::fs::remove_file(&tmp);
                super::tls::write_private(&tmp, &(text + "\n"))?;
                std::fs::rename(&tmp, &path).map_err(|e| format!("renaming to {}: {e}", path.display()))?;
            }
            return Ok(creds);
        }
        let creds = LabCredentials {
            user: "root@pam".into(),
            password: random_hex(12),
            token_id: "root@pam!lab".into(),
            token_secret: token_secret(),
            limited_token_id: super::access::LIMITED_TOKEN.into(),
            limited_token_secret: token_secret(),
        };
        let text = serde_json::to_string_pretty(&creds).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(state_dir).map_err(|e| format!("creating {}: {e}", state_dir.display()))?;
        super::tls::write_private(&path, &(text + "\n"))?;
        Ok(creds)
    }

    /// The `Authorization` header value for the token.
    pub fn token_header(&self) -> String {
        format!("PVEAPIToken={}={}", self.token_id, self.token_secret)
    }

    /// The `Authorization` header value for the least-privilege token.
    pub fn limited_token_header(&self) -> String {
        format!("PVEAPIToken={}={}", self.limited_token_id, self.limited_token_secret)
    }

    /// An [`Auth`] that knows exactly these credentials.
    pub fn auth(&self) -> Auth {
        let auth = Auth::new().with_user(&self.user, &self.password).with_token(&self.token_id, &self.token_secret);
        if self.limited_token_id.is_empty() {
            return auth;
        }
        auth.with_token(&self.limited_token_id, &self.limited_token_secret)
    }
}

/// How long a ticket is valid.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(2 * 60 * 60);

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A ticket for `user@realm`.
    User(String),
    /// An API token `user@realm!id`.
    Token { user: String, token_id: String },
}

impl Principal {
    /// `user@realm` or `user@realm!id`.
    pub fn name(&self) -> String {
        match self {
            Principal::User(u) => u.clone(),
            Principal::Token { user, token_id } => format!("{user}!{token_id}"),
        }
    }
}

/// An authentication failure: HTTP 401 with this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError(pub String);

#[derive(Debug, Clone)]
struct Ticket {
    user: String,
    csrf: String,
    expires: SystemTime,
}

/// A newly issued ticket.
#[derive(Debug, Clone)]
pub struct Issued {
    pub username: String,
    pub ticket: String,
    pub csrf: String,
}

/// Users, tokens and live tickets.
#[derive(Debug, Default)]
pub struct Auth {
    passwords: HashMap<String, String>,
    tokens: HashMap<String, String>,
    tickets: Mutex<HashMap<String, Ticket>>,
}

impl Auth {
    /// An empty realm: nobody can log in.
    pub fn new() -> Auth {
        Auth::default()
    }

    /// Adds user `userid` (`root@pam`) with `password`.
    pub fn with_user(mut self, userid: &str, password: &str) -> Auth {
        self.passwords.insert(userid.to_string(), password.to_string());
        self
    }

    /// Adds API token `tokenid` (`root@pam!lab`) with `secret`.
    pub fn with_token(mut self, tokenid: &str, secret: &str) -> Auth {
        self.tokens.insert(tokenid.to_string(), secret.to_string());
        self
    }

    /// `POST /access/ticket`: a password login, or a renewal when `password`
    /// is a valid ticket for the same user. PVE answers 401 "authentication failure".
    pub fn login(&self, username: &str, password: &str) -> Result<Issued, AuthError> {
        let failure = || AuthError("authentication failure".to_string());
        let by_password = self.passwords.get(username).is_some_and(|p| constant_eq(p, password));
        let by_ticket = self.ticket_user(password).is_some_and(|u| u == username);
        if !(by_password || by_ticket) {
            return Err(failure());
        }
        let now = SystemTime::now();
        let stamp = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let ticket = format!("PVE:{username}:{stamp:08X}::{}", random_hex(32));
        let csrf = format!("{stamp:08X}:{}", random_hex(16));
        let record = Ticket { user: username.to_string(), csrf: csrf.clone(), expires: now + TICKET_LIFETIME };
        self.tickets.lock().expect("tickets").insert(ticket.clone(), record);
        Ok(Issued { username: username.to_string(), ticket, csrf })
    }

    fn ticket_user(&self, ticket: &str) -> Option<String> {
        let tickets = self.tickets.lock().expect("tickets");
        tickets.get(ticket).filter(|t| t.expires > SystemTime::now()).map(|t| t.user.clone())
    }

    /// Authenticates a request. `write` is true when the CSRF token is required
    /// (every non-GET method except uploads; never for API tokens).
    pub fn authenticate(&self, headers: &HeaderMap, write: bool) -> Result<Principal, AuthError> {
        if let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            if let Some(token) = value.strip_prefix("PVEAPIToken=") {
                return self.check_token(token.trim());
            }
        }
        let Some(ticket) = cookie(headers, "PVEAuthCookie") else {
            return Err(AuthError("No ticket".to_string()));
        };
        let ticket = super::apidoc::percent_decode(&ticket);
        let record = {
            let tickets = self.tickets.lock().expect("tickets");
            tickets.get(&ticket).filter(|t| t.expires > SystemTime::now()).cloned()
        };
        let Some(record) = record else { return Err(AuthError("permission denied - invalid PVE ticket".to_string())) };
        if write {
            let sent = headers.get("CSRFPreventionToken").and_then(|v| v.to_str().ok());
            if sent != Some(record.csrf.as_str()) {
                return Err(AuthError("Permission denied - invalid csrf token".to_string()));
            }
        }
        Ok(Principal::User(record.user))
    }

    /// `user@realm!id=secret`, with PVE's `verify_token` messages.
    fn check_token(&self, value: &str) -> Result<Principal, AuthError> {
        let fail = |m: String| AuthError(m);
        let Some((tokenid, secret)) = value.rsplit_once('=') else {
            return Err(fail("no tokenid specified".into()));
        };
        let (user, token_id) = tokenid.split_once('!').unwrap_or((tokenid, ""));
        let user_known =
            self.passwords.contains_key(user) || self.tokens.keys().any(|t| t.split('!').next() == Some(user));
        if !user_known {
            return Err(fail(format!("no such user ('{user}')")));
        }
        match self.tokens.get(tokenid) {
            None => Err(fail(format!("no such token '{token_id}' for user '{user}'"))),
            Some(expected) if constant_eq(expected, secret) => {
                Ok(Principal::Token { user: user.to_string(), token_id: token_id.to_string() })
            }
            Some(_) => Err(fail("invalid token value!".into())),
        }
    }
}

/// The value of cookie `name`, if sent.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A token secret shaped like PVE's (a UUID).
fn token_secret() -> String {
    let s = random_hex(16);
    format!("{}-{}-{}-{}-{}", &s[..8], &s[8..12], &s[12..16], &s[16..20], &s[20..])
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).expect("the OS random source");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_credentials_file_gains_the_limited_token_once() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"user":"root@pam","password":"pw","token_id":"root@pam!lab","token_secret":"s"}"#;
        std::fs::write(dir.path().join(CREDENTIALS_FILE), old).unwrap();
        let first = LabCredentials::load_or_create(dir.path()).unwrap();
        assert_eq!((first.password.as_str(), first.token_secret.as_str()), ("pw", "s"));
        assert_eq!(first.limited_token_id, "pulumi@pve!lab");
        assert_eq!(first.limited_token_secret.len(), 36);
        let again = LabCredentials::load_or_create(dir.path()).unwrap();
        assert_eq!(again, first);
        let fresh = LabCredentials::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(fresh.limited_token_header().starts_with("PVEAPIToken=pulumi@pve!lab="));
    }
}
