//! The machine configuration a lab Talos node is given: loading, the lab's
//! subset of Talos's validation, and the facts the node acts on.
//!
//! Owns: [`load`] — loading exactly as machinery's `configloader` does (the
//! provider's `talos::config::Config::from_yaml`, with machinery's wording for
//! unparseable YAML, unknown keys and wrong types), then the v1alpha1 checks
//! below with machinery v1.12.4's messages and multi-error format (checked
//! against `talosctl validate`), then [`MachineConfig`]: machine type, the OS
//! and Kubernetes CAs, cluster identity and endpoint, hostname, certificate
//! SANs, the static address and the VIP (the first ones in 127.0.0.0/8; others
//! cannot be served on loopback).
//!
//! Validation (a subset of machinery's `Validate`): the install section in
//! "metal" mode; `machine.ca` (certificate required; key required on control
//! planes, refused on workers); the control plane endpoint; etcd and the
//! Kubernetes CA key only on control planes; the machine type; a
//! `HostnameConfig` document together with `machine.network.hostname`.
//! Machinery accepts what it does not check (any `version:` string, a control
//! plane without `cluster.ca`): so does the lab, and the node reports the
//! consequence later (no kubeconfig without a Kubernetes CA key).
//! Must not: touch node state or the network.

use std::net::Ipv4Addr;

use base64::Engine as _;
use proxmox_talos::talos::config::Config;
use serde_json::Value;

/// `machine.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineType {
    ControlPlane,
    /// The legacy first control plane (`init`): a control plane for the lab.
    Init,
    Worker,
}

impl MachineType {
    pub fn is_control_plane(self) -> bool {
        matches!(self, MachineType::ControlPlane | MachineType::Init)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MachineType::ControlPlane => "controlplane",
            MachineType::Init => "init",
            MachineType::Worker => "worker",
        }
    }
}

/// A certificate (PEM text) with its key when the config carries one.
#[derive(Debug, Clone, PartialEq)]
pub struct CertAndKey {
    pub crt_pem: String,
    pub key_pem: Option<String>,
}

/// The v1alpha1 facts a node acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineConfig {
    /// The configuration as applied.
    pub text: String,
    pub machine_type: MachineType,
    /// `machine.ca`: the Talos API (OS) CA.
    pub os_ca: CertAndKey,
    /// `cluster.ca`: the Kubernetes CA.
    pub kubernetes_ca: Option<CertAndKey>,
    /// `machine.token` (trustd: workers get their apid certificate with it).
    pub token: String,
    /// `cluster.id` (empty in old configs; then the cluster name).
    pub cluster_id: String,
    pub cluster_name: String,
    /// `cluster.controlPlane.endpoint` (`https://host:port`).
    pub endpoint: String,
    /// A static hostname (`HostnameConfig` with `auto: off`, or `machine.network.hostname`).
    pub hostname: Option<String>,
    /// `machine.certSANs`.
    pub cert_sans: Vec<String>,
    /// The first static address in 127.0.0.0/8 (`machine.network.interfaces[].addresses`,
    /// `LinkConfig.addresses[].address`).
    pub static_address: Option<Ipv4Addr>,
    /// The first VIP in 127.0.0.0/8 (`machine.network.interfaces[].vip.ip`, `Layer2VIPConfig.name`).
    pub vip: Option<Ipv4Addr>,
}

/// Platform mode, as `Validate` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Cloud,
    Metal,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Cloud => "cloud",
            Mode::Metal => "metal",
        }
    }
}

/// Why a configuration is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigError {
    /// It cannot be loaded (machinery's loader wording).
    Load(String),
    /// It loads but is invalid (machinery's multi-error text).
    Invalid(String),
}

/// A loaded configuration: `None` when it has no v1alpha1 document (a partial
/// configuration, which only maintenance mode accepts).
pub type Loaded = Option<MachineConfig>;

/// Loads and validates `text` for a node in `mode`.
pub fn load(text: &str, mode: Mode) -> Result<Loaded, ConfigError> {
    let typed = Config::from_yaml(text).map_err(ConfigError::Load)?;
    let docs = documents(text).map_err(ConfigError::Load)?;
    let v1 = docs.iter().find(|d| d.get("kind").is_none() && d.get("apiVersion").is_none());
    let mut errors = Vec::new();
    if let Some(v1) = v1 {
        let v1_errors = validate_v1alpha1(v1, mode);
        if !v1_errors.is_empty() {
            errors.push(format!("v1alpha1.Config: {}", multierror(&v1_errors)));
        }
    }
    let hostname_doc = docs.iter().find(|d| kind(d) == "HostnameConfig");
    if hostname_doc.is_some() && v1.is_some_and(|v1| !str_at(v1, &["machine", "network", "hostname"]).is_empty()) {
        errors.push("static hostname is already set in v1alpha1 config".into());
    }
    if !errors.is_empty() {
        return Err(ConfigError::Invalid(multierror(&errors)));
    }
    let (Some(v1), true) = (v1, typed.find("v1alpha1", None).is_some()) else { return Ok(None) };
    facts(text, v1, &docs).map(Some).map_err(ConfigError::Invalid)
}

/// hashicorp/go-multierror's text, as Talos prints validation errors.
pub fn multierror(errors: &[String]) -> String {
    let points: Vec<String> = errors.iter().map(|e| format!("* {e}")).collect();
    let head =
        if errors.len() == 1 { "1 error occurred".to_string() } else { format!("{} errors occurred", errors.len()) };
    format!("{head}:\n\t{}\n\n", points.join("\n\t"))
}

fn documents(text: &str) -> Result<Vec<Value>, String> {
    use serde::Deserialize as _;
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| format!("decode error: {e}"))?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

fn kind(doc: &Value) -> &str {
    doc.get("kind").and_then(Value::as_str).unwrap_or_default()
}

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn str_at(v: &Value, path: &[&str]) -> String {
    at(v, path).and_then(Value::as_str).unwrap_or_default().to_string()
}

fn present(v: &Value, path: &[&str]) -> bool {
    at(v, path).is_some_and(|v| !v.is_null())
}

/// The v1alpha1 checks, in machinery's order as far as the lab reproduces them.
fn validate_v1alpha1(v1: &Value, mode: Mode) -> Vec<String> {
    let mut errors = Vec::new();
    if mode == Mode::Metal && !present(v1, &["machine", "install"]) {
        errors.push("install instructions are required in \"metal\" mode".to_string());
    }
    let ca_present = present(v1, &["machine", "ca"]);
    if str_at(v1, &["machine", "ca", "crt"]).is_empty() {
        if at(v1, &["machine", "acceptedCAs"]).and_then(Value::as_array).is_none_or(|a| a.is_empty()) {
            errors.push("issuing CA or some accepted CAs are required (.machine.ca, machine.acceptedCAs)".into());
        }
        errors.push("issuing CA is required (.machine.ca)".into());
    }
    if str_at(v1, &["cluster", "controlPlane", "endpoint"]).is_empty() {
        errors.push("cluster controlplane endpoint is required".into());
    }
    let machine_type = str_at(v1, &["machine", "type"]);
    let control_plane = matches!(machine_type.as_str(), "controlplane" | "init");
    if !control_plane && present(v1, &["cluster", "etcd"]) {
        errors.push("etcd config is only allowed on control plane machines".into());
    }
    let cluster_ca_key = !str_at(v1, &["cluster", "ca", "key"]).is_empty();
    if !control_plane && cluster_ca_key {
        errors.push("cluster CA key is not allowed on non-controlplane nodes (.cluster.ca)".into());
    }
    match machine_type.as_str() {
        "controlplane" | "init" => {
            if ca_present && str_at(v1, &["machine", "ca", "key"]).is_empty() {
                errors.push("issuing CA key is required for controlplane nodes (.machine.ca.key)".into());
            }
        }
        "worker" => {
            if !str_at(v1, &["machine", "ca", "key"]).is_empty() {
                errors.push("issuing Talos API CA key is not allowed on non-controlplane nodes (.machine.ca)".into());
            }
            if cluster_ca_key {
                errors.push(
                    "issuing Kubernetes API CA key is not allowed on non-controlplane nodes (.cluster.ca)".into(),
                );
            }
        }
        other => errors.push(format!("unknown machine type {other:?}")),
    }
    errors
}

/// Base64 of a PEM (how the config carries certificates and keys) to PEM text.
fn pem_field(v1: &Value, path: &[&str]) -> Result<Option<String>, String> {
    let b64 = str_at(v1, path);
    if b64.is_empty() {
        return Ok(None);
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!(".{}: not base64: {e}", path.join(".")))?;
    let text = String::from_utf8(bytes).map_err(|_| format!(".{}: not a PEM block", path.join(".")))?;
    pem::parse(&text).map_err(|e| format!(".{}: not a PEM block: {e}", path.join(".")))?;
    Ok(Some(text))
}

/// The first static address in 127.0.0.0/8 a configuration gives (what the
/// guest agent of a configured machine reports), without validating it.
pub fn static_address(text: &str) -> Option<Ipv4Addr> {
    let docs = documents(text).ok()?;
    let v1 = docs.iter().find(|d| d.get("kind").is_none() && d.get("apiVersion").is_none())?;
    static_address_of(v1, &docs)
}

fn loopback(s: &str) -> Option<Ipv4Addr> {
    s.split('/').next().and_then(|ip| ip.parse::<Ipv4Addr>().ok()).filter(|ip| ip.is_loopback())
}

fn interfaces(v1: &Value) -> Vec<Value> {
    at(v1, &["machine", "network", "interfaces"]).and_then(Value::as_array).cloned().unwrap_or_default()
}

fn static_address_of(v1: &Value, docs: &[Value]) -> Option<Ipv4Addr> {
    let link_addresses = docs
        .iter()
        .filter(|d| kind(d) == "LinkConfig")
        .flat_map(|d| d.get("addresses").and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|a| a.get("address").and_then(Value::as_str).map(str::to_string));
    interfaces(v1)
        .iter()
        .flat_map(|i| i.get("addresses").and_then(Value::as_array).cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .chain(link_addresses)
        .find_map(|a| loopback(&a))
}

fn facts(text: &str, v1: &Value, docs: &[Value]) -> Result<MachineConfig, String> {
    let machine_type = match str_at(v1, &["machine", "type"]).as_str() {
        "controlplane" => MachineType::ControlPlane,
        "init" => MachineType::Init,
        _ => MachineType::Worker,
    };
    let os_ca = CertAndKey {
        crt_pem: pem_field(v1, &["machine", "ca", "crt"])?.unwrap_or_default(),
        key_pem: pem_field(v1, &["machine", "ca", "key"])?,
    };
    let kubernetes_ca = pem_field(v1, &["cluster", "ca", "crt"])?
        .map(|crt_pem| Ok::<_, String>(CertAndKey { crt_pem, key_pem: pem_field(v1, &["cluster", "ca", "key"])? }))
        .transpose()?;
    let static_address = static_address_of(v1, docs);
    let vip = interfaces(v1)
        .iter()
        .filter_map(|i| at(i, &["vip", "ip"]).and_then(Value::as_str).map(str::to_string))
        .chain(docs.iter().filter(|d| kind(d) == "Layer2VIPConfig").map(|d| str_at(d, &["name"])))
        .find_map(|a| loopback(&a));
    let hostname = docs
        .iter()
        .find(|d| kind(d) == "HostnameConfig" && d.get("auto").and_then(Value::as_str) == Some("off"))
        .map(|d| str_at(d, &["hostname"]))
        .or_else(|| Some(str_at(v1, &["machine", "network", "hostname"])))
        .filter(|h| !h.is_empty());
    let cert_sans = at(v1, &["machine", "certSANs"])
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let cluster_name = str_at(v1, &["cluster", "clusterName"]);
    let cluster_id = Some(str_at(v1, &["cluster", "id"])).filter(|s| !s.is_empty()).unwrap_or(cluster_name.clone());
    Ok(MachineConfig {
        text: text.to_string(),
        machine_type,
        os_ca,
        kubernetes_ca,
        token: str_at(v1, &["machine", "token"]),
        cluster_id,
        cluster_name,
        endpoint: str_at(v1, &["cluster", "controlPlane", "endpoint"]),
        hostname,
        cert_sans,
        static_address,
        vip,
    })
}

impl MachineConfig {
    /// Whether moving from `self` to `new` needs a reboot (the lab's stand-in
    /// for Talos's `CanApplyImmediate`): a different machine type, OS CA or
    /// trustd token, or a different cluster.
    pub fn needs_reboot_for(&self, new: &MachineConfig) -> Option<String> {
        let mut changed = Vec::new();
        if self.machine_type != new.machine_type {
            changed.push(".machine.type");
        }
        if self.os_ca != new.os_ca {
            changed.push(".machine.ca");
        }
        if self.token != new.token {
            changed.push(".machine.token");
        }
        if self.cluster_id != new.cluster_id {
            changed.push(".cluster.id");
        }
        (!changed.is_empty())
            .then(|| format!("this config change can't be applied in immediate mode: {}", changed.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    //! Expected texts are machinery v1.12.4's (`talos-fixtures validate-config
    //! --mode cloud|metal` on the same edits of generated configurations).

    use super::*;
    use proxmox_talos::talos::config::{render, GenerateInput, MachineType as Kind};
    use proxmox_talos::talos::secrets::{self, SystemClock, VersionContract};

    fn generated(kind: Kind) -> String {
        let bundle = secrets::generate(VersionContract::V1_6, &SystemClock, &mut rand_core::OsRng).unwrap();
        let patch = "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        addresses:\n          - 127.9.9.10/24\n        vip:\n          ip: 127.9.9.5\n";
        render(&GenerateInput::new("lab", "https://127.9.9.5:6443", kind, &bundle), &[patch.to_string()]).unwrap()
    }

    /// `text` without the `header` line (its `nth` occurrence) and the lines indented below it.
    fn without_block(text: &str, header: &str, nth: usize) -> String {
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.iter().enumerate().filter(|(_, l)| **l == header).nth(nth).unwrap().0;
        let indent = header.len() - header.trim_start().len();
        let end = (start + 1..lines.len())
            .find(|i| lines[*i].len() - lines[*i].trim_start().len() <= indent)
            .unwrap_or(lines.len());
        let mut out: Vec<&str> = lines[..start].to_vec();
        out.extend(&lines[end..]);
        out.join("\n") + "\n"
    }

    fn invalid(text: &str, mode: Mode) -> String {
        match load(text, mode) {
            Err(ConfigError::Invalid(e)) => e,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_generated_control_plane_config_gives_its_facts() {
        let config = load(&generated(Kind::ControlPlane), Mode::Cloud).unwrap().unwrap();
        assert_eq!(config.machine_type, MachineType::ControlPlane);
        assert!(config.os_ca.key_pem.as_deref().is_some_and(|k| k.contains("ED25519 PRIVATE KEY")));
        assert!(config.kubernetes_ca.as_ref().is_some_and(|ca| ca.key_pem.is_some()));
        assert_eq!(config.static_address, Some(Ipv4Addr::new(127, 9, 9, 10)));
        assert_eq!(config.vip, Some(Ipv4Addr::new(127, 9, 9, 5)));
        assert_eq!((config.cluster_name.as_str(), config.endpoint.as_str()), ("lab", "https://127.9.9.5:6443"));
        assert_eq!(config.hostname, None, "HostnameConfig auto: stable");
        assert_eq!(static_address(&config.text), config.static_address);
        let worker = load(&generated(Kind::Worker), Mode::Cloud).unwrap().unwrap();
        assert_eq!(worker.machine_type, MachineType::Worker);
        assert_eq!(worker.os_ca.key_pem, None);
    }

    #[test]
    fn validation_errors_read_as_machinery_writes_them() {
        let cp = generated(Kind::ControlPlane);
        assert_eq!(
            invalid(&cp.replacen("type: controlplane", "type: foo", 1), Mode::Cloud),
            "1 error occurred:\n\t* v1alpha1.Config: 3 errors occurred:\n\t* etcd config is only allowed on control plane \
             machines\n\t* cluster CA key is not allowed on non-controlplane nodes (.cluster.ca)\n\t* unknown machine type \
             \"foo\"\n\n\n\n"
        );
        assert_eq!(
            invalid(&cp.replacen("type: controlplane", "type: worker", 1), Mode::Cloud),
            "1 error occurred:\n\t* v1alpha1.Config: 4 errors occurred:\n\t* etcd config is only allowed on control plane \
             machines\n\t* cluster CA key is not allowed on non-controlplane nodes (.cluster.ca)\n\t* issuing Talos API CA \
             key is not allowed on non-controlplane nodes (.machine.ca)\n\t* issuing Kubernetes API CA key is not allowed \
             on non-controlplane nodes (.cluster.ca)\n\n\n\n"
        );
        assert_eq!(
            invalid(&without_block(&cp, "    ca:", 0), Mode::Cloud),
            "1 error occurred:\n\t* v1alpha1.Config: 2 errors occurred:\n\t* issuing CA or some accepted CAs are required \
             (.machine.ca, machine.acceptedCAs)\n\t* issuing CA is required (.machine.ca)\n\n\n\n"
        );
        let worker = generated(Kind::Worker);
        assert_eq!(
            invalid(&worker.replacen("type: worker", "type: controlplane", 1), Mode::Cloud),
            "1 error occurred:\n\t* v1alpha1.Config: 1 error occurred:\n\t* issuing CA key is required for controlplane \
             nodes (.machine.ca.key)\n\n\n\n"
        );
        assert_eq!(
            invalid(&without_block(&cp, "    controlPlane:", 0), Mode::Cloud),
            "1 error occurred:\n\t* v1alpha1.Config: 1 error occurred:\n\t* cluster controlplane endpoint is required\n\n\n\n"
        );
        assert_eq!(
            invalid(&without_block(&cp, "    install:", 0), Mode::Metal),
            "1 error occurred:\n\t* v1alpha1.Config: 1 error occurred:\n\t* install instructions are required in \"metal\" \
             mode\n\n\n\n"
        );
        assert!(load(&without_block(&cp, "    install:", 0), Mode::Cloud).is_ok());
        let hostname = cp.replacen("    network:\n", "    network:\n        hostname: foo\n", 1);
        assert_eq!(
            invalid(&hostname, Mode::Cloud),
            "1 error occurred:\n\t* static hostname is already set in v1alpha1 config\n\n"
        );
    }

    #[test]
    fn loader_errors_and_partial_configs() {
        let cp = generated(Kind::ControlPlane);
        match load(&cp.replacen("    token: ", "    tokn: ", 1), Mode::Cloud) {
            Err(ConfigError::Load(e)) => assert!(e.contains("unknown keys found during decoding"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(load("machine: [\n", Mode::Cloud), Err(ConfigError::Load(_))));
        // Machinery accepts a configuration without v1alpha1 (maintenance applies it as is).
        assert_eq!(load("apiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n", Mode::Cloud), Ok(None));
    }
}
