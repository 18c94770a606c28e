//! Provider configuration: declared once as a typed struct (the schema's
//! `config` and `provider` sections come from it), coerced from the strings
//! stack config and SDK-built providers send, completed from the environment,
//! and validated with property paths. Proxmox settings are demanded only when a
//! Proxmox resource asks for them.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::framework::CheckFailure;
use crate::schema::{PulumiObject, PulumiType, TypeRegistry};

/// Image Factory used when none is configured.
pub const DEFAULT_IMAGE_FACTORY_URL: &str = "https://factory.talos.dev";

/// Configuration of the proxmox-talos provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct ProviderConfig {
    /// Proxmox VE API endpoint, e.g. `https://pve.example.com:8006/`.
    #[pulumi(env = "PROXMOX_VE_ENDPOINT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// API token, `user@realm!tokenid=secret`. Use either this or `username` and `password`.
    #[pulumi(secret, env = "PROXMOX_VE_API_TOKEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_token: Option<String>,
    /// User name with realm for ticket authentication, e.g. `root@pam` (needed for raw PCI passthrough).
    #[pulumi(env = "PROXMOX_VE_USERNAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password for `username`.
    #[pulumi(secret, env = "PROXMOX_VE_PASSWORD")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Skip TLS certificate verification of the Proxmox API (default false).
    #[pulumi(env = "PROXMOX_VE_INSECURE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Minimum TLS version towards the Proxmox API: `1.2` (default) or `1.3`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_tls: Option<String>,
    /// A CA certificate (PEM text, or the path of a PEM file) to trust for the Proxmox VE API
    /// besides the system roots: for a self-signed or private-CA PVE (and the lab) without
    /// turning verification off.
    #[pulumi(env = "PROXMOX_VE_CA_CERT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// SSH access to the nodes, used to upload snippets and files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh: Option<SshConfig>,
    /// Talos Image Factory base URL (default `https://factory.talos.dev`).
    #[pulumi(env = "TALOS_IMAGE_FACTORY_URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_factory_url: Option<String>,
}

/// SSH settings for uploads to Proxmox nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "config:Ssh")]
pub struct SshConfig {
    /// SSH user (default: the API user's name without realm).
    #[pulumi(env = "PROXMOX_VE_SSH_USERNAME")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// SSH password.
    #[pulumi(secret, env = "PROXMOX_VE_SSH_PASSWORD")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Unencrypted private key in OpenSSH or PEM format.
    #[pulumi(secret, env = "PROXMOX_VE_SSH_PRIVATE_KEY")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// Use the SSH agent at `SSH_AUTH_SOCK`.
    #[pulumi(env = "PROXMOX_VE_SSH_AGENT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<bool>,
    /// The nodes' SSH port (default 22); a `nodes[]` entry's `port` wins.
    #[pulumi(env = "PROXMOX_VE_SSH_PORT")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Addresses of nodes whose SSH address differs from the address `/cluster/status` gives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<Vec<SshNode>>,
}

/// Where to reach one node over SSH.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "config:SshNode")]
pub struct SshNode {
    /// Proxmox node name, e.g. `pve`.
    pub name: String,
    /// Address to connect to.
    pub address: String,
    /// Port (default: `ssh.port`, else 22).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// How the provider authenticates to Proxmox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxmoxAuth {
    /// `PVEAPIToken=...`.
    ApiToken(String),
    /// A ticket from `/access/ticket`.
    Password {
        /// `user@realm`.
        username: String,
        /// Its password.
        password: String,
    },
}

/// The Proxmox part of the configuration, once it is known to be complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxmoxSettings {
    /// API endpoint.
    pub endpoint: String,
    /// Credentials.
    pub auth: ProxmoxAuth,
    /// Skip TLS verification.
    pub insecure: bool,
    /// Extra CA certificate: PEM text or a file path.
    pub ca_certificate: Option<String>,
    /// Minimum TLS version: "1.2" or "1.3" (default "1.2").
    pub min_tls: Option<String>,
}

/// A missing or unusable setting, naming the config key and the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ProviderConfig {
    /// Decodes configuration as the engine sends it: stack config values are strings,
    /// so non-string properties are parsed from their JSON text first. `version` (added
    /// by the engine) is ignored.
    pub fn from_inputs(inputs: &Json) -> Result<Self, Vec<CheckFailure>> {
        let coerced = coerce(inputs)?;
        let config: ProviderConfig = crate::framework::adapter::decode(&coerced).map_err(|f| vec![f])?;
        let failures = config.validate();
        if failures.is_empty() {
            Ok(config)
        } else {
            Err(failures)
        }
    }

    /// Fills unset properties from the environment (`PROXMOX_VE_*`, `TALOS_IMAGE_FACTORY_URL`).
    ///
    /// Configured values win, per key and for the credentials as a set: a configured
    /// `username` or `password` means the login is configured, so no token is taken
    /// from the environment; a configured `apiToken` means no username or password is.
    pub fn with_environment(mut self, env: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        let login_configured = self.username.is_some() || self.password.is_some();
        let token_configured = self.api_token.is_some();
        self.endpoint = self.endpoint.or_else(|| get("PROXMOX_VE_ENDPOINT"));
        if !login_configured {
            self.api_token = self.api_token.or_else(|| get("PROXMOX_VE_API_TOKEN"));
        }
        if !token_configured {
            self.username = self.username.or_else(|| get("PROXMOX_VE_USERNAME"));
            self.password = self.password.or_else(|| get("PROXMOX_VE_PASSWORD"));
        }
        self.insecure = self.insecure.or_else(|| get("PROXMOX_VE_INSECURE").map(|v| is_true(&v)));
        self.ca_certificate = self.ca_certificate.or_else(|| get("PROXMOX_VE_CA_CERT"));
        self.image_factory_url = self.image_factory_url.or_else(|| get("TALOS_IMAGE_FACTORY_URL"));
        let mut ssh = self.ssh.take().unwrap_or_default();
        ssh.username = ssh.username.or_else(|| get("PROXMOX_VE_SSH_USERNAME"));
        ssh.password = ssh.password.or_else(|| get("PROXMOX_VE_SSH_PASSWORD"));
        ssh.private_key = ssh.private_key.or_else(|| get("PROXMOX_VE_SSH_PRIVATE_KEY"));
        ssh.agent = ssh.agent.or_else(|| get("PROXMOX_VE_SSH_AGENT").map(|v| is_true(&v)));
        // An unparsable port is left unset: the connection error then names port 22.
        ssh.port = ssh.port.or_else(|| get("PROXMOX_VE_SSH_PORT").and_then(|v| v.trim().parse().ok()));
        self.ssh = (ssh != SshConfig::default()).then_some(ssh);
        self
    }

    /// The Proxmox settings, or an error naming what to set.
    pub fn proxmox(&self) -> Result<ProxmoxSettings, ConfigError> {
        let endpoint = self.endpoint.clone().ok_or_else(|| {
            ConfigError(
                "the Proxmox VE endpoint is not configured: set `proxmox-talos:endpoint` \
                 (e.g. https://pve.example.com:8006/) or the PROXMOX_VE_ENDPOINT environment variable"
                    .into(),
            )
        })?;
        let auth = match (&self.api_token, &self.username, &self.password) {
            (Some(token), _, _) => ProxmoxAuth::ApiToken(token.clone()),
            (None, Some(u), Some(p)) => ProxmoxAuth::Password { username: u.clone(), password: p.clone() },
            (None, Some(_), None) => {
                return Err(ConfigError(
                    "`proxmox-talos:username` is set but no password: set `proxmox-talos:password` \
                     (secret) or PROXMOX_VE_PASSWORD"
                        .into(),
                ))
            }
            _ => {
                return Err(ConfigError(
                    "no Proxmox VE credentials are configured: set `proxmox-talos:apiToken` (secret) or \
                     PROXMOX_VE_API_TOKEN, or `proxmox-talos:username` and `proxmox-talos:password` \
                     (PROXMOX_VE_USERNAME, PROXMOX_VE_PASSWORD)"
                        .into(),
                ))
            }
        };
        Ok(ProxmoxSettings {
            endpoint,
            auth,
            insecure: self.insecure.unwrap_or(false),
            ca_certificate: self.ca_certificate.clone(),
            min_tls: self.min_tls.clone(),
        })
    }

    /// The Image Factory base URL, without a trailing slash.
    pub fn image_factory_url(&self) -> String {
        self.image_factory_url.as_deref().unwrap_or(DEFAULT_IMAGE_FACTORY_URL).trim_end_matches('/').to_string()
    }

    fn validate(&self) -> Vec<CheckFailure> {
        let mut f = Vec::new();
        if let Some(e) = &self.endpoint {
            if !(e.starts_with("https://") || e.starts_with("http://")) {
                f.push(CheckFailure::new(
                    "endpoint",
                    format!("{e:?} is not a URL; expected e.g. https://pve.example.com:8006/"),
                ));
            }
        }
        if let Some(t) = &self.api_token {
            let ok = t.split_once('!').is_some_and(|(user, rest)| user.contains('@') && rest.contains('='));
            if !ok {
                f.push(CheckFailure::new("apiToken", "expected `user@realm!tokenid=secret`, e.g. `root@pam!pulumi=…`"));
            }
        }
        if let Some(u) = &self.username {
            if !u.contains('@') {
                f.push(CheckFailure::new("username", format!("{u:?} has no realm; expected e.g. `root@pam`")));
            }
        }
        if let Some(v) = &self.min_tls {
            if v != "1.2" && v != "1.3" {
                f.push(CheckFailure::new("minTls", format!("{v:?} is not supported; expected \"1.2\" or \"1.3\"")));
            }
        }
        if let Some(u) = &self.image_factory_url {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                f.push(CheckFailure::new(
                    "imageFactoryUrl",
                    format!("{u:?} is not a URL; expected e.g. https://factory.talos.dev"),
                ));
            }
        }
        f
    }
}

fn is_true(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// Parses string values of non-string properties as JSON (stack config sends
/// `"true"`, SDK-built providers send objects as JSON text) and drops `version`.
fn coerce(inputs: &Json) -> Result<Json, Vec<CheckFailure>> {
    let Json::Object(map) = inputs else { return Ok(inputs.clone()) };
    let mut reg = TypeRegistry::default();
    let props = ProviderConfig::properties(&mut reg);
    let mut out = serde_json::Map::new();
    let mut failures = Vec::new();
    for (key, value) in map {
        if key == "version" {
            continue;
        }
        let kind = props.iter().find(|p| p.name == key).map(|p| (p.type_spec.kind, p.type_spec.reference.is_some()));
        let wants_non_string =
            matches!(kind, Some((Some(k), _)) if k != "string") || matches!(kind, Some((None, true)));
        match value {
            Json::String(s) if wants_non_string => match serde_json::from_str::<Json>(s) {
                Ok(parsed) => {
                    out.insert(key.clone(), parsed);
                }
                Err(_) => failures.push(CheckFailure::new(
                    key.clone(),
                    format!("{s:?} is not a valid {}", describe_kind(kind.and_then(|k| k.0))),
                )),
            },
            other => {
                out.insert(key.clone(), other.clone());
            }
        }
    }
    if failures.is_empty() {
        Ok(Json::Object(out))
    } else {
        Err(failures)
    }
}

fn describe_kind(kind: Option<&str>) -> &'static str {
    match kind {
        Some("boolean") => "boolean (true or false)",
        Some("integer") => "integer",
        Some("number") => "number",
        Some("array") => "list (JSON array)",
        _ => "object (JSON object)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_from_stack_config_are_coerced() {
        let c = ProviderConfig::from_inputs(&json!({
            "insecure": "true",
            "ssh": "{\"username\":\"root\",\"nodes\":[{\"name\":\"pve\",\"address\":\"127.0.0.1\",\"port\":2222}]}",
            "version": "0.1.0"
        }))
        .unwrap();
        assert_eq!(c.insecure, Some(true));
        let ssh = c.ssh.unwrap();
        assert_eq!(ssh.username.as_deref(), Some("root"));
        assert_eq!(ssh.nodes.unwrap()[0].port, Some(2222));
    }

    #[test]
    fn bad_values_fail_with_their_path() {
        let err = ProviderConfig::from_inputs(&json!({"insecure": "maybe"})).unwrap_err();
        assert_eq!(err[0].property, "insecure");
        assert!(err[0].reason.contains("boolean"), "{}", err[0].reason);
        let err =
            ProviderConfig::from_inputs(&json!({"ssh": {"nodes": [{"name": "pve", "address": "a", "port": "x"}]}}))
                .unwrap_err();
        assert_eq!(err[0].property, "ssh.nodes[0].port");
        let err = ProviderConfig::from_inputs(&json!({"apiToken": "nope", "minTls": "1.1"})).unwrap_err();
        let props: Vec<_> = err.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(props, vec!["apiToken", "minTls"]);
    }

    #[test]
    fn environment_fills_only_unset_values() {
        let env = |k: &str| match k {
            "PROXMOX_VE_ENDPOINT" => Some("https://127.0.0.1:8006/".to_string()),
            "PROXMOX_VE_API_TOKEN" => Some("root@pam!ci=abc".to_string()),
            "PROXMOX_VE_SSH_USERNAME" => Some("root".to_string()),
            "PROXMOX_VE_SSH_PORT" => Some("2222".to_string()),
            "PROXMOX_VE_SSH_AGENT" => Some("true".to_string()),
            _ => None,
        };
        let c =
            ProviderConfig { endpoint: Some("https://pve:8006/".into()), ..Default::default() }.with_environment(env);
        assert_eq!(c.endpoint.as_deref(), Some("https://pve:8006/"));
        assert_eq!(c.proxmox().unwrap().auth, ProxmoxAuth::ApiToken("root@pam!ci=abc".into()));
        let ssh = c.ssh.unwrap();
        assert_eq!((ssh.username.as_deref(), ssh.port, ssh.agent), (Some("root"), Some(2222), Some(true)));
    }

    #[test]
    fn configured_credentials_win_over_the_environment_as_a_set() {
        let env = |k: &str| match k {
            "PROXMOX_VE_API_TOKEN" => Some("root@pam!ci=abc".to_string()),
            "PROXMOX_VE_USERNAME" => Some("ci@pve".to_string()),
            "PROXMOX_VE_PASSWORD" => Some("env-password".to_string()),
            _ => None,
        };
        let base = || ProviderConfig { endpoint: Some("https://pve:8006/".into()), ..Default::default() };
        let login = |u: &str, p: &str| ProxmoxAuth::Password { username: u.into(), password: p.into() };
        // A configured login: the token in the environment is not picked up.
        let c = ProviderConfig { username: Some("root@pam".into()), password: Some("pw".into()), ..base() };
        let c = c.with_environment(env);
        assert_eq!(c.api_token, None);
        assert_eq!(c.proxmox().unwrap().auth, login("root@pam", "pw"));
        // A configured user name alone is still the login; its password may come from the environment.
        let c = ProviderConfig { username: Some("root@pam".into()), ..base() }.with_environment(env);
        assert_eq!(c.proxmox().unwrap().auth, login("root@pam", "env-password"));
        // A configured password alone: the user name comes from the environment, not the token.
        let c = ProviderConfig { password: Some("pw".into()), ..base() }.with_environment(env);
        assert_eq!(c.proxmox().unwrap().auth, login("ci@pve", "pw"));
        // A configured token: no user name or password from the environment.
        let c = ProviderConfig { api_token: Some("ops@pve!t=x".into()), ..base() }.with_environment(env);
        assert_eq!((c.username.as_deref(), c.password.as_deref()), (None, None));
        assert_eq!(c.proxmox().unwrap().auth, ProxmoxAuth::ApiToken("ops@pve!t=x".into()));
        // Nothing configured: the environment's token, as before.
        let c = base().with_environment(env);
        assert_eq!(c.proxmox().unwrap().auth, ProxmoxAuth::ApiToken("root@pam!ci=abc".into()));
    }

    #[test]
    fn missing_proxmox_settings_name_the_key_and_the_variable() {
        let e = ProviderConfig::default().proxmox().unwrap_err().0;
        assert!(e.contains("proxmox-talos:endpoint") && e.contains("PROXMOX_VE_ENDPOINT"), "{e}");
        let c = ProviderConfig { endpoint: Some("https://x:8006".into()), ..Default::default() };
        let e = c.proxmox().unwrap_err().0;
        assert!(e.contains("proxmox-talos:apiToken") && e.contains("PROXMOX_VE_API_TOKEN"), "{e}");
    }
}
