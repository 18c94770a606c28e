//! `client:getConfiguration`: the talosconfig file `talosctl` reads, rendered
//! locally from the admin client configuration (no request is made). One
//! context named after the cluster, made current, byte for byte as
//! `talosctl gen config` writes it (terraform-provider-talos's
//! `talos_client_configuration`).

use serde::{Deserialize, Serialize};

use crate::framework::{CheckFailure, Context, Function, ResourceError};
use crate::schema::PulumiType;
use crate::talos::secrets::ClientConfiguration;
use crate::talos::talosconfig::Talosconfig;

/// The talosconfig file `talosctl` reads, rendered locally from the admin client configuration
/// (as `talosctl gen config` writes it): one context named after the cluster, made current.
#[derive(Debug, Clone, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetConfigurationArgs {
    /// Cluster name; it names the talosconfig context, which is also made the current one.
    /// 1 to 128 bytes of printable text on one line.
    pub cluster_name: String,
    /// The admin client configuration, e.g. `clientConfiguration` of `machine.Secrets`.
    pub client_configuration: ClientConfiguration,
    /// Talos API endpoints talosctl connects to: host names or IP addresses of control-plane
    /// nodes (or of a load balancer in front of them), optionally with a port (default 50000),
    /// e.g. `192.168.1.210`, `192.168.1.210:50000`, `fd00::10` or `[fd00::10]:50000`.
    /// Not URLs, and not the Kubernetes endpoint (`https://…:6443`). At least one.
    pub endpoints: Vec<String>,
    /// Nodes talosctl commands target by default: host names or IP addresses, without a port.
    pub nodes: Option<Vec<String>>,
}

/// Result of `getConfiguration`.
#[derive(Debug, Clone, Serialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct GetConfigurationResult {
    /// The cluster (and context) name asked for.
    pub cluster_name: String,
    /// The endpoints asked for.
    pub endpoints: Vec<String>,
    /// The nodes asked for (empty when none were given).
    pub nodes: Vec<String>,
    /// The talosconfig YAML: write it to a file and pass it with `talosctl --talosconfig FILE`,
    /// or merge it into `~/.talos/config` with `talosctl config merge FILE`.
    #[pulumi(secret)]
    pub talos_config: String,
}

/// The `getConfiguration` function.
pub struct GetConfiguration;

impl GetConfigurationArgs {
    fn talosconfig(&self) -> Talosconfig<'_> {
        Talosconfig {
            context: &self.cluster_name,
            client: &self.client_configuration,
            endpoints: &self.endpoints,
            nodes: self.nodes.as_deref().unwrap_or_default(),
        }
    }
}

impl Function for GetConfiguration {
    const TOKEN: &'static str = "proxmox-talos:client:getConfiguration";
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
        build(args)
    }
}

/// Every problem with `args`, at its property path, saying what is valid.
pub fn failures(args: &GetConfigurationArgs) -> Vec<CheckFailure> {
    args.talosconfig().problems().into_iter().map(|p| CheckFailure::new(p.field, p.reason)).collect()
}

/// Renders the talosconfig for `args`.
pub fn build(args: GetConfigurationArgs) -> Result<GetConfigurationResult, ResourceError> {
    let talos_config =
        args.talosconfig().render().map_err(|e| ResourceError::Invalid(vec![CheckFailure::new(e.field, e.reason)]))?;
    Ok(GetConfigurationResult {
        talos_config,
        nodes: args.nodes.unwrap_or_default(),
        cluster_name: args.cluster_name,
        endpoints: args.endpoints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn args(endpoints: &[&str]) -> GetConfigurationArgs {
        let pem = |tag: &str| {
            base64::engine::general_purpose::STANDARD
                .encode(format!("-----BEGIN {tag}-----\nAAECAw==\n-----END {tag}-----\n"))
        };
        GetConfigurationArgs {
            cluster_name: "talos-cluster".into(),
            client_configuration: ClientConfiguration {
                ca_certificate: pem("CERTIFICATE"),
                client_certificate: pem("CERTIFICATE"),
                client_key: pem("ED25519 PRIVATE KEY"),
            },
            endpoints: endpoints.iter().map(|s| (*s).to_owned()).collect(),
            nodes: None,
        }
    }

    #[test]
    fn renders_one_current_context_named_after_the_cluster() {
        let r = build(args(&["192.168.1.210"])).unwrap();
        assert!(r
            .talos_config
            .starts_with("context: talos-cluster\ncontexts:\n    talos-cluster:\n        endpoints:\n"));
        assert!(r.nodes.is_empty());
    }

    #[test]
    fn check_names_the_argument_and_what_is_valid() {
        let f = failures(&args(&["https://192.168.1.210:6443"]));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].property, "endpoints[0]");
        assert!(f[0].reason.contains("did you mean 192.168.1.210?"), "{}", f[0].reason);
        let f = failures(&GetConfigurationArgs { cluster_name: String::new(), ..args(&[]) });
        let props: Vec<&str> = f.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(props, ["clusterName", "endpoints"]);
    }
}
