//! Generating a machine configuration as machinery's `generate.NewInput` +
//! `Input.Config` do, with the options terraform-provider-talos's
//! `talos_machine_configuration` passes (cluster discovery on, DNS domain
//! `cluster.local`, install disk and image, the given secrets and contract).
//!
//! Owns: [`GenerateInput`] and its defaults (Kubernetes 1.35.0 and installer
//! `ghcr.io/siderolabs/installer:v1.12.4`, as machinery v1.12.4 has them),
//! cluster endpoint validation with the terraform provider's messages and a
//! suggested fix, the parts common to both machine types, and the builder the
//! per-type files use to fill documents field by field like the Go code.
//! Must not: apply patches, or do IO.

use super::container::{Config, Document};
use super::contract::ConfigContract;
use super::decode::decode;
use super::schema::TypeExpr;
use super::value::{find_field, shape, zero, Shape, Value};
use super::yaml_read::Raw;
use crate::talos::secrets::MachineSecrets;

/// The machinery release whose generator this module reproduces.
pub const MACHINERY_VERSION: &str = "v1.12.4";
/// machinery v1.12.4's `constants.DefaultKubernetesVersion`.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.35.0";
/// The install disk the terraform provider passes.
pub const DEFAULT_INSTALL_DISK: &str = "/dev/sda";
/// The control plane port suggested for an endpoint without one.
pub const DEFAULT_CONTROL_PLANE_PORT: u16 = 6443;

/// The installer image the terraform provider passes: machinery's own release.
pub fn default_install_image() -> String {
    format!("ghcr.io/siderolabs/installer:{MACHINERY_VERSION}")
}

/// `controlplane` or `worker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineType {
    /// A control plane node.
    ControlPlane,
    /// A worker node.
    Worker,
}

impl MachineType {
    /// Parses `controlplane` or `worker`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "controlplane" => Some(Self::ControlPlane),
            "worker" => Some(Self::Worker),
            _ => None,
        }
    }

    /// The `machine.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ControlPlane => "controlplane",
            Self::Worker => "worker",
        }
    }
}

/// Everything generation needs.
#[derive(Debug, Clone)]
pub struct GenerateInput<'a> {
    /// `cluster.clusterName`.
    pub cluster_name: String,
    /// `https://host:port`.
    pub cluster_endpoint: String,
    /// Machine type.
    pub machine_type: MachineType,
    /// The cluster's secrets bundle.
    pub secrets: &'a MachineSecrets,
    /// Kubernetes version (`1.35.0`; a leading `v` is dropped as the terraform provider does).
    pub kubernetes_version: String,
    /// Version contract.
    pub contract: ConfigContract,
    /// `machine.install.disk`.
    pub install_disk: String,
    /// `machine.install.image`.
    pub install_image: String,
}

/// Why a configuration could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    /// The cluster endpoint is not `https://host:port`.
    #[error("{0}")]
    Endpoint(String),
    /// The configuration is not a valid container (cannot happen for generated documents).
    #[error("{0}")]
    Container(String),
}

impl<'a> GenerateInput<'a> {
    /// Input with the terraform provider's defaults for the rest.
    pub fn new(
        cluster_name: &str,
        cluster_endpoint: &str,
        machine_type: MachineType,
        secrets: &'a MachineSecrets,
    ) -> Self {
        GenerateInput {
            cluster_name: cluster_name.to_owned(),
            cluster_endpoint: cluster_endpoint.to_owned(),
            machine_type,
            secrets,
            kubernetes_version: DEFAULT_KUBERNETES_VERSION.to_owned(),
            contract: ConfigContract::V1_12,
            install_disk: DEFAULT_INSTALL_DISK.to_owned(),
            install_image: default_install_image(),
        }
    }
}

/// Generates the configuration documents.
pub fn generate(input: &GenerateInput<'_>) -> Result<Config, GenerateError> {
    validate_endpoint(&input.cluster_endpoint).map_err(GenerateError::Endpoint)?;
    let docs = match input.machine_type {
        MachineType::ControlPlane => super::controlplane::documents(input),
        MachineType::Worker => super::worker::documents(input),
    };
    Config::new(docs).map_err(GenerateError::Container)
}

/// Checks the endpoint as the terraform provider does; messages end with a
/// `try: "https://host:port"` suggestion.
pub fn validate_endpoint(endpoint: &str) -> Result<(), String> {
    let (scheme, rest) = match endpoint.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("", endpoint),
    };
    let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    let (host, port) = split_host_port(authority);
    let fixed = || {
        let port = port.map_or(DEFAULT_CONTROL_PLANE_PORT.to_string(), str::to_owned);
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
        format!("{:?}", format!("https://{host}:{port}{path}"))
    };
    if scheme.is_empty() {
        let what = if port.is_none() { "no scheme and port" } else { "no scheme" };
        return Err(format!("{what} specified for the cluster endpoint URL\ntry: {}", fixed()));
    }
    if scheme != "https" {
        return Err(format!("the control plane endpoint URL should have scheme https://\ntry: {}", fixed()));
    }
    let invalid = |why: &str| Err(format!("error validating the cluster endpoint URL: {why}"));
    if authority.matches(':').count() > 2 && !(authority.contains('[') && authority.contains(']')) {
        return invalid("IPv6 addresses MUST be enclosed by square brackets");
    }
    if host.is_empty() || host == "[]" {
        return invalid("hostname must not be blank");
    }
    if let Some(p) = port.filter(|p| !p.is_empty()) {
        match p.parse::<u32>() {
            Err(_) => return invalid("port number must be numeric"),
            Ok(n) if !(1..=65535).contains(&n) => return invalid("port number must be between 1 and 65535"),
            Ok(_) => {}
        }
    }
    Ok(())
}

fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(end) = authority.find(']').filter(|_| authority.starts_with('[')) {
        let port = authority[end + 1..].strip_prefix(':');
        return (&authority[..=end], port);
    }
    if authority.matches(':').count() == 1 {
        let (h, p) = authority.split_once(':').expect("one colon");
        return (h, Some(p));
    }
    (authority, None)
}

/// The Kubernetes version without a leading `v`.
pub(super) fn k8s_version(input: &GenerateInput<'_>) -> String {
    input.kubernetes_version.strip_prefix('v').unwrap_or(&input.kubernetes_version).to_owned()
}

/// `emptyIf`: an image reference unless the Kubernetes version is empty.
pub(super) fn image(repository: &str, k8s: &str) -> String {
    if k8s.is_empty() {
        String::new()
    } else {
        format!("{repository}:v{k8s}")
    }
}

/// Pod and service subnets: machinery picks IPv6 ones when the endpoint itself parses as an IPv6 address.
pub(super) fn subnets(endpoint: &str) -> (&'static str, &'static str) {
    match endpoint.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(_)) => ("fc00:db8:10::/56", "fc00:db8:20::/112"),
        _ => ("10.244.0.0/16", "10.96.0.0/12"),
    }
}

/// Fills a document field by field, the way machinery's generator sets Go struct fields.
pub(super) struct Builder {
    doc: Document,
}

impl Builder {
    /// A builder for an empty document of `kind`.
    pub fn new(kind: &str) -> Self {
        Builder { doc: Document::new(kind) }
    }

    /// Sets the field at dotted `path` (pointers and structs on the way are
    /// allocated) to `raw` decoded at the field's type.
    pub fn set(&mut self, path: &str, raw: Raw) -> &mut Self {
        let keys: Vec<&str> = path.split('.').collect();
        let ty = self.doc.ty();
        set_at(&mut self.doc.value, &ty, &keys, &raw, path);
        self
    }

    /// Sets a string field.
    pub fn str(&mut self, path: &str, s: &str) -> &mut Self {
        self.set(path, Raw::str(s))
    }

    /// Sets a bool field.
    pub fn bool(&mut self, path: &str, b: bool) -> &mut Self {
        self.set(path, Raw::plain(b.to_string()))
    }

    /// The finished document.
    pub fn build(self) -> Document {
        self.doc
    }
}

fn set_at(v: &mut Value, ty: &TypeExpr, keys: &[&str], raw: &Raw, full: &str) {
    let Some((key, rest)) = keys.split_first() else {
        *v = decode(raw, ty).unwrap_or_else(|e| panic!("generator value for {full} does not decode: {}", e.0));
        return;
    };
    match shape(ty) {
        Shape::Ptr(elem) => {
            if matches!(v, Value::Nil) {
                *v = Value::Ptr(Box::new(zero(elem)));
            }
            let Value::Ptr(inner) = v else { unreachable!() };
            set_at(inner, elem, keys, raw, full);
        }
        Shape::Struct { spec, .. } => {
            let (path, field) = find_field(spec, key).unwrap_or_else(|| panic!("no field {key} on the way to {full}"));
            set_at(v.field_mut(&path), &field.ty, rest, raw, full);
        }
        Shape::Map(elem) => {
            if matches!(v, Value::Nil) {
                *v = Value::Map(Vec::new());
            }
            let Value::Map(entries) = v else { unreachable!() };
            if !entries.iter().any(|(k, _)| k == key) {
                entries.push(((*key).to_owned(), zero(elem)));
            }
            let slot = &mut entries.iter_mut().find(|(k, _)| k == key).expect("inserted").1;
            set_at(slot, elem, rest, raw, full);
        }
        other => panic!("cannot descend into {other:?} at {key} of {full}"),
    }
}

/// A mapping node.
pub(super) fn map(entries: &[(&str, Raw)]) -> Raw {
    Raw::Map(entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

/// A sequence node.
pub(super) fn seq(items: Vec<Raw>) -> Raw {
    Raw::Seq(items)
}

/// A string scalar.
pub(super) fn s(text: &str) -> Raw {
    Raw::str(text)
}

/// The `machine` fields both machine types share, in machinery's order of assignment.
pub(super) fn common_machine(b: &mut Builder, input: &GenerateInput<'_>, k8s: &str) {
    let c = input.contract;
    b.str("machine.type", input.machine_type.as_str());
    b.str("machine.token", &input.secrets.trustdinfo.token);
    b.set("machine.certSANs", seq(Vec::new()));
    b.str("machine.kubelet.image", &image("ghcr.io/siderolabs/kubelet", k8s));
    b.set("machine.network", map(&[]));
    b.str("machine.install.disk", &input.install_disk);
    b.str("machine.install.image", &input.install_image);
    b.bool("machine.install.wipe", false);
    b.set("machine.features", map(&[]));
    if c.grub_use_uki_cmdline_default() {
        b.bool("machine.install.grubUseUKICmdline", true);
    }
    if c.stable_hostname_enabled() && !c.multidoc_network_config_supported() {
        b.bool("machine.features.stableHostname", true);
    }
    if !c.hide_rbac_and_key_usage() {
        b.bool("machine.features.rbac", true);
        if c.apid_ext_key_usage_check_enabled() {
            b.bool("machine.features.apidCheckExtKeyUsage", true);
        }
    }
    if c.disk_quota_support_enabled() {
        b.bool("machine.features.diskQuotaSupport", true);
    }
    if c.kube_prism_enabled() {
        b.set("machine.features.kubePrism", map(&[("enabled", Raw::plain("true")), ("port", Raw::plain("7445"))]));
    }
    if c.kubelet_default_runtime_seccomp_profile_enabled() {
        b.bool("machine.kubelet.defaultRuntimeSeccompProfileEnabled", true);
    }
    if c.kubelet_manifests_directory_disabled() {
        b.bool("machine.kubelet.disableManifestsDirectory", true);
    }
    if c.host_dns_enabled() {
        b.bool("machine.features.hostDNS.enabled", true);
        if c.host_dns_forward_kube_dns_to_host() {
            b.bool("machine.features.hostDNS.forwardKubeDNSToHost", true);
        }
    }
}

/// The `cluster` fields both machine types share.
pub(super) fn common_cluster(b: &mut Builder, input: &GenerateInput<'_>) {
    let secrets = input.secrets;
    let (pod, service) = subnets(&input.cluster_endpoint);
    b.str("cluster.id", &secrets.cluster.id);
    b.str("cluster.secret", &secrets.cluster.secret);
    b.str("cluster.token", &secrets.secrets.bootstrap_token);
    b.str("cluster.controlPlane.endpoint", &input.cluster_endpoint);
    b.set(
        "cluster.network",
        map(&[
            ("dnsDomain", s("cluster.local")),
            ("podSubnets", seq(vec![s(pod)])),
            ("serviceSubnets", seq(vec![s(service)])),
        ]),
    );
    b.bool("cluster.discovery.enabled", true);
    if input.contract.kubernetes_discovery_backend_disabled() {
        b.bool("cluster.discovery.registries.kubernetes.disabled", true);
    }
}

/// The v1alpha1 document and the documents after it (`HostnameConfig` with `auto: stable`).
pub(super) fn finish(b: Builder, input: &GenerateInput<'_>) -> Vec<Document> {
    let mut docs = vec![b.build()];
    if input.contract.multidoc_network_config_supported() {
        let mut hostname = Builder::new("HostnameConfig");
        hostname.str("auto", "stable");
        docs.push(hostname.build());
    }
    docs
}

/// The version and top-level flags of the v1alpha1 document.
pub(super) fn v1alpha1() -> Builder {
    let mut b = Builder::new("v1alpha1");
    b.str("version", "v1alpha1").bool("debug", false).bool("persist", true);
    b
}
