//! `machine:getConfiguration`: a Talos machine configuration generated
//! locally (no request is made) from the cluster's secrets, exactly as
//! terraform-provider-talos's `talos_machine_configuration` generates it with
//! Talos machinery v1.12.4, with config patches applied as Talos applies them.

use serde::{Deserialize, Serialize};

use crate::framework::{CheckFailure, Context, Function, ResourceError};
use crate::schema::PulumiType;
use crate::talos::config::{self, ConfigContract, GenerateInput, MachineType};
use crate::talos::secrets::{MachineSecrets, VersionContract};

use super::secrets::DEFAULT_TALOS_VERSION;

/// A Talos machine configuration for a control plane or worker node, generated locally (no request
/// is made) from the cluster's secrets exactly as the Terraform provider's `talos_machine_configuration`
/// generates it with Talos machinery v1.12.4, with config patches applied as Talos applies them.
#[derive(Debug, Clone, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetConfigurationArgs {
    /// Cluster name (`cluster.clusterName`).
    pub cluster_name: String,
    /// Kubernetes API endpoint of the cluster, `https://host:port` (e.g. `https://192.168.1.210:6443`).
    pub cluster_endpoint: String,
    /// `controlplane` or `worker`.
    pub machine_type: String,
    /// The cluster's secrets bundle, e.g. `machineSecrets` of `machine.Secrets`.
    pub machine_secrets: MachineSecrets,
    /// Config patches applied in order, as Talos applies them: YAML strategic merge patches
    /// (possibly several documents, e.g. `HostnameConfig` or `LinkConfig`; `$patch: delete`
    /// removes), or RFC 6902 JSON patches (a list of operations; Talos refuses these on the
    /// multi-document configurations of contract v1.12). Pass patch contents: Talos would read a
    /// patch without spaces or line breaks as a file name.
    pub config_patches: Option<Vec<String>>,
    /// Kubernetes version (default `1.35.0`, Talos 1.12.4's default; Talos 1.12 supports 1.30 to 1.35).
    pub kubernetes_version: Option<String>,
    /// Talos version contract the configuration is generated for (default `v1.12`, the only one supported).
    pub talos_version: Option<String>,
    /// Install disk (`machine.install.disk`, default `/dev/sda`).
    pub install_disk: Option<String>,
    /// Installer image (`machine.install.image`; default `ghcr.io/siderolabs/installer:v1.12.4`, as the
    /// Terraform provider sets it). Image Factory installers come from `imagefactory.getUrls`.
    pub install_image: Option<String>,
    /// Whether to include Talos's documentation comments (default false). Only `false` is supported: this
    /// provider does not reproduce Talos's comments, and `true` fails the check.
    pub docs: Option<bool>,
    /// Whether to include Talos's commented examples (default false). Only `false` is supported: this
    /// provider does not reproduce Talos's comments, and `true` fails the check.
    pub examples: Option<bool>,
}

/// Result of `getConfiguration`.
#[derive(Debug, Clone, Serialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct GetConfigurationResult {
    /// The cluster name asked for.
    pub cluster_name: String,
    /// The machine type asked for.
    pub machine_type: String,
    /// The Kubernetes version used.
    pub kubernetes_version: String,
    /// The version contract used.
    pub talos_version: String,
    /// The machine configuration: the YAML documents (a v1alpha1 configuration, then `HostnameConfig`
    /// and any documents the patches add), byte for byte as Talos machinery writes them without comments.
    #[pulumi(secret)]
    pub machine_configuration: String,
}

/// The `getConfiguration` function.
pub struct GetConfiguration;

const DEFAULT_INSTALL_IMAGE: &str = "ghcr.io/siderolabs/installer:v1.12.4";

impl GetConfigurationArgs {
    fn kubernetes_version(&self) -> &str {
        self.kubernetes_version.as_deref().unwrap_or(config::DEFAULT_KUBERNETES_VERSION)
    }

    fn talos_version(&self) -> &str {
        self.talos_version.as_deref().unwrap_or(DEFAULT_TALOS_VERSION)
    }

    fn patches(&self) -> &[String] {
        self.config_patches.as_deref().unwrap_or_default()
    }
}

fn contract(args: &GetConfigurationArgs) -> Result<ConfigContract, String> {
    let version = VersionContract::parse(args.talos_version()).map_err(|e| e.to_string())?;
    ConfigContract::new(version).map_err(|e| e.to_string())
}

/// Everything wrong with `args`, by property path.
fn failures(args: &GetConfigurationArgs) -> Vec<CheckFailure> {
    let mut f = Vec::new();
    if args.cluster_name.is_empty() {
        f.push(CheckFailure::new("clusterName", "must not be empty"));
    }
    if let Err(e) = config::validate_endpoint(&args.cluster_endpoint) {
        f.push(CheckFailure::new("clusterEndpoint", e.replace('\n', "; ")));
    }
    if MachineType::parse(&args.machine_type).is_none() {
        f.push(CheckFailure::new(
            "machineType",
            format!("{:?} is not a machine type; expected \"controlplane\" or \"worker\"", args.machine_type),
        ));
    }
    if let Err(e) = args.machine_secrets.validate() {
        f.push(CheckFailure::new("machineSecrets", e.to_string()));
    }
    match contract(args) {
        Err(e) => f.push(CheckFailure::new("talosVersion", e)),
        Ok(c) => {
            if let Err(e) = c.check_kubernetes_version(args.kubernetes_version()) {
                f.push(CheckFailure::new("kubernetesVersion", e));
            }
        }
    }
    if let Err(e) = config::check_patches(args.patches()) {
        f.push(CheckFailure::new(format!("configPatches[{}]", e.first), e.to_string()));
    }
    for (name, value) in [("docs", args.docs), ("examples", args.examples)] {
        if value == Some(true) {
            f.push(CheckFailure::new(
                name,
                "only false is supported: this provider does not reproduce Talos's configuration comments",
            ));
        }
    }
    f
}

/// Generates the configuration for checked arguments.
pub fn build(args: &GetConfigurationArgs) -> Result<GetConfigurationResult, ResourceError> {
    let invalid = |property: String, reason: String| ResourceError::Invalid(vec![CheckFailure::new(property, reason)]);
    let contract = contract(args).map_err(|e| invalid("talosVersion".into(), e))?;
    let machine_type = MachineType::parse(&args.machine_type)
        .ok_or_else(|| invalid("machineType".into(), "expected \"controlplane\" or \"worker\"".into()))?;
    let input = GenerateInput {
        cluster_name: args.cluster_name.clone(),
        cluster_endpoint: args.cluster_endpoint.clone(),
        machine_type,
        secrets: &args.machine_secrets,
        kubernetes_version: args.kubernetes_version().to_owned(),
        contract,
        install_disk: args.install_disk.clone().unwrap_or_else(|| config::DEFAULT_INSTALL_DISK.to_owned()),
        install_image: args.install_image.clone().unwrap_or_else(|| DEFAULT_INSTALL_IMAGE.to_owned()),
    };
    let yaml = config::render(&input, args.patches()).map_err(|e| match e {
        config::ConfigError::Patch(p) => invalid(format!("configPatches[{}]", p.first), p.to_string()),
        config::ConfigError::Generate(g) => invalid("clusterEndpoint".into(), g.to_string()),
    })?;
    Ok(GetConfigurationResult {
        cluster_name: args.cluster_name.clone(),
        machine_type: args.machine_type.clone(),
        kubernetes_version: args.kubernetes_version().to_owned(),
        talos_version: args.talos_version().to_owned(),
        machine_configuration: yaml,
    })
}

impl Function for GetConfiguration {
    const TOKEN: &'static str = "proxmox-talos:machine:getConfiguration";
    type Args = GetConfigurationArgs;
    type Result = GetConfigurationResult;

    fn check(&self, _ctx: &Context, args: &GetConfigurationArgs) -> Vec<CheckFailure> {
        failures(args)
    }

    async fn invoke(
        &self,
        _ctx: &Context,
        args: GetConfigurationArgs,
    ) -> Result<GetConfigurationResult, ResourceError> {
        build(&args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> MachineSecrets {
        let yaml = include_str!("../../../tests/fixtures/talosctl-secrets.yaml");
        crate::talos::secrets::from_talosctl_yaml(yaml).unwrap()
    }

    fn args() -> GetConfigurationArgs {
        GetConfigurationArgs {
            cluster_name: "talos-cluster".into(),
            cluster_endpoint: "https://192.168.1.210:6443".into(),
            machine_type: "worker".into(),
            machine_secrets: secrets(),
            config_patches: Some(vec!["cluster:\n  proxy:\n    disabled: true\n".into()]),
            kubernetes_version: None,
            talos_version: None,
            install_disk: None,
            install_image: None,
            docs: Some(false),
            examples: None,
        }
    }

    #[test]
    fn the_default_image_is_machinerys_installer() {
        assert_eq!(DEFAULT_INSTALL_IMAGE, config::default_install_image());
    }

    #[test]
    fn generates_with_the_terraform_defaults() {
        let a = args();
        assert!(failures(&a).is_empty(), "{:?}", failures(&a));
        let r = build(&a).unwrap();
        assert_eq!((r.kubernetes_version.as_str(), r.talos_version.as_str()), ("1.35.0", "v1.12"));
        assert!(r
            .machine_configuration
            .contains("    install:\n        disk: /dev/sda\n        image: ghcr.io/siderolabs/installer:v1.12.4\n"));
        assert!(r.machine_configuration.contains("    proxy:\n        disabled: true\n"));
        assert!(r.machine_configuration.ends_with("kind: HostnameConfig\nauto: stable\n"));
    }

    #[test]
    fn check_names_each_bad_argument() {
        let mut a = args();
        a.cluster_endpoint = "192.168.1.210".into();
        a.machine_type = "init".into();
        a.talos_version = Some("v1.11".into());
        a.config_patches = Some(vec!["cluster:\n  proxy:\n    disabled: true\n".into(), "machine:\n  foo: 1\n".into()]);
        a.docs = Some(true);
        let f = failures(&a);
        let props: Vec<&str> = f.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(props, ["clusterEndpoint", "machineType", "talosVersion", "configPatches[1]", "docs"]);
        assert!(f[0].reason.contains("try: \"https://192.168.1.210:6443\""), "{}", f[0].reason);
        assert!(f[2].reason.contains("v1.12"), "{}", f[2].reason);
        assert!(f[3].reason.contains("unknown keys found during decoding"), "{}", f[3].reason);
    }

    #[test]
    fn a_patch_failing_on_apply_is_an_input_error() {
        let mut a = args();
        a.config_patches = Some(vec![r#"[{"op": "remove", "path": "/machine/install"}]"#.into()]);
        let Err(ResourceError::Invalid(f)) = build(&a) else { panic!("expected an input error") };
        assert_eq!(f[0].property, "configPatches[0]");
        assert!(f[0].reason.contains("JSON6902 patches are not supported for multi-document"), "{}", f[0].reason);
    }
}
