//! Assembles the package schema from the registry and the provider config type.
//! `schema.json` is this function's output, committed and checked for staleness.

use serde_json::json;

use super::spec::{ConfigSpec, Meta, PackageSpec, ResourceSpec};
use super::{PulumiObject, TypeRegistry, PACKAGE};
use crate::config::ProviderConfig;
use crate::framework::Registry;

/// The package version written into the schema and reported by GetPluginInfo.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Builds the whole package schema.
pub fn package(registry: &Registry) -> PackageSpec {
    let mut reg = TypeRegistry::default();
    let config_props = ProviderConfig::properties(&mut reg);
    let config_specs = super::property_specs(&config_props);
    let resources = registry.resources().map(|r| (r.token().to_string(), r.describe(&mut reg))).collect();
    let functions = registry.functions().map(|f| (f.token().to_string(), f.describe(&mut reg))).collect();
    PackageSpec {
        name: PACKAGE.to_string(),
        display_name: "Proxmox VE + Talos Linux".to_string(),
        version: VERSION.to_string(),
        description: "From bare Proxmox VE to a running Talos Linux (or cloud-init) Kubernetes cluster: \
                      images, cloud-init snippets, virtual machines, Talos machine secrets and configs, \
                      bootstrap, health and credentials."
            .to_string(),
        keywords: ["pulumi", "proxmox", "talos", "kubernetes", "homelab", "category/infrastructure", "kind/native"]
            .map(String::from)
            .to_vec(),
        homepage: "https://github.com/proxmox-talos/pulumi-proxmox-talos".to_string(),
        license: "Apache-2.0".to_string(),
        repository: "https://github.com/proxmox-talos/pulumi-proxmox-talos".to_string(),
        publisher: "proxmox-talos".to_string(),
        meta: Meta { module_format: "(.*)".to_string(), support_pack: true },
        config: ConfigSpec { variables: config_specs.clone() },
        provider: ResourceSpec {
            description: "The provider type for the proxmox-talos package.".to_string(),
            input_properties: config_specs,
            ..Default::default()
        },
        resources,
        functions,
        types: reg.into_types(),
        language: [
            ("nodejs".to_string(), json!({"packageName": "@proxmox-talos/pulumi", "respectSchemaVersion": true})),
            (
                "python".to_string(),
                json!({"packageName": "pulumi_proxmox_talos", "respectSchemaVersion": true, "pyproject": {"enabled": true}}),
            ),
            (
                "go".to_string(),
                json!({
                    "importBasePath": "github.com/proxmox-talos/pulumi-proxmox-talos/sdk/go/proxmoxtalos",
                    "generateResourceContainerTypes": true,
                    "respectSchemaVersion": true
                }),
            ),
        ]
        .into_iter()
        .collect(),
    }
}

/// The schema as the pretty JSON text committed in `schema.json` (with a trailing newline).
pub fn to_json_text(registry: &Registry) -> String {
    let mut text = serde_json::to_string_pretty(&package(registry)).expect("schema serialises");
    text.push('\n');
    text
}
