//! `imagefactory:getExtensionsVersions`: the official system extensions the
//! configured Image Factory offers for a Talos version
//! (`GET /version/:v/extensions/official`), filtered by name.

use serde::{Deserialize, Serialize};

use crate::framework::{CheckFailure, Context, Function, ResourceError};
use crate::schema::PulumiType;
use crate::talos::factory_client::{self, FactoryClient};
use crate::talos::secrets::VersionContract;

/// Arguments of `getExtensionsVersions`.
#[derive(Debug, Clone, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetExtensionsVersionsArgs {
    /// Talos version, e.g. `v1.12.4`.
    pub talos_version: String,
    /// Keep extensions whose name contains one of `names` (e.g. `nvidia`).
    pub filters: Option<ExtensionNameFilter>,
    /// Keep extensions whose name is one of `names` (e.g. `siderolabs/qemu-guest-agent`).
    pub exact_filters: Option<ExtensionNameFilter>,
}

/// Extension names to filter by; an empty list does not filter.
#[derive(Debug, Clone, Default, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "imagefactory:ExtensionNameFilter")]
pub struct ExtensionNameFilter {
    /// Extension names (or, in `filters`, parts of names).
    pub names: Vec<String>,
}

/// Result of `getExtensionsVersions`.
#[derive(Debug, Clone, Serialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct GetExtensionsVersionsResult {
    /// The Talos version asked for.
    pub talos_version: String,
    /// The matching extensions, in the factory's order.
    pub extensions_infos: Vec<ExtensionInfo>,
}

/// One official system extension.
#[derive(Debug, Clone, Serialize, PulumiType)]
#[serde(rename_all = "camelCase")]
#[pulumi(token = "imagefactory:ExtensionInfo")]
pub struct ExtensionInfo {
    /// Name, e.g. `siderolabs/qemu-guest-agent`; use it in a schematic's `officialExtensions`.
    pub name: String,
    /// Container image reference of the extension.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Image digest (`sha256:…`).
    pub digest: String,
    /// Author.
    pub author: String,
    /// Description.
    pub description: String,
}

/// The `getExtensionsVersions` function.
pub struct GetExtensionsVersions;

impl Function for GetExtensionsVersions {
    const TOKEN: &'static str = "proxmox-talos:imagefactory:getExtensionsVersions";
    type Args = GetExtensionsVersionsArgs;
    type Result = GetExtensionsVersionsResult;

    fn check(&self, _ctx: &Context, args: &GetExtensionsVersionsArgs) -> Vec<CheckFailure> {
        let v = &args.talos_version;
        if VersionContract::parse(v).is_err() || !v.starts_with('v') {
            return vec![CheckFailure::new(
                "talosVersion",
                format!("{v:?} is not a Talos version; expected e.g. v1.12.4"),
            )];
        }
        Vec::new()
    }

    async fn invoke(
        &self,
        ctx: &Context,
        args: GetExtensionsVersionsArgs,
    ) -> Result<GetExtensionsVersionsResult, ResourceError> {
        let client =
            FactoryClient::new(&ctx.config().image_factory_url()).map_err(|e| ResourceError::Failed(e.to_string()))?;
        let all =
            client.official_extensions(&args.talos_version).await.map_err(|e| ResourceError::Failed(e.to_string()))?;
        Ok(filter(all, args))
    }
}

/// Keeps the extensions that pass both filters.
pub fn filter(all: Vec<factory_client::ExtensionInfo>, args: GetExtensionsVersionsArgs) -> GetExtensionsVersionsResult {
    let names = |f: &Option<ExtensionNameFilter>| f.as_ref().map(|f| f.names.clone()).unwrap_or_default();
    let (partial, exact) = (names(&args.filters), names(&args.exact_filters));
    let extensions_infos = all
        .into_iter()
        .filter(|e| partial.is_empty() || partial.iter().any(|n| e.name.contains(n.as_str())))
        .filter(|e| exact.is_empty() || exact.iter().any(|n| &e.name == n))
        .map(|e| ExtensionInfo {
            name: e.name,
            reference: e.reference,
            digest: e.digest,
            author: e.author,
            description: e.description,
        })
        .collect();
    GetExtensionsVersionsResult { talos_version: args.talos_version, extensions_infos }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str) -> factory_client::ExtensionInfo {
        factory_client::ExtensionInfo {
            name: name.into(),
            reference: format!("ghcr.io/{name}:1"),
            digest: "sha256:00".into(),
            author: "Sidero Labs".into(),
            description: String::new(),
        }
    }

    fn names(r: &GetExtensionsVersionsResult) -> Vec<&str> {
        r.extensions_infos.iter().map(|e| e.name.as_str()).collect()
    }

    #[test]
    fn filters_match_parts_of_names_and_exact_filters_whole_names() {
        let all = || {
            vec![
                ext("siderolabs/iscsi-tools"),
                ext("siderolabs/nvidia-open-gpu-kernel-modules-production"),
                ext("siderolabs/qemu-guest-agent"),
            ]
        };
        let args = |filters: &[&str], exact: &[&str]| GetExtensionsVersionsArgs {
            talos_version: "v1.12.4".into(),
            filters: Some(ExtensionNameFilter { names: filters.iter().map(|s| s.to_string()).collect() }),
            exact_filters: Some(ExtensionNameFilter { names: exact.iter().map(|s| s.to_string()).collect() }),
        };
        assert_eq!(names(&filter(all(), args(&[], &[]))).len(), 3);
        assert_eq!(
            names(&filter(all(), args(&["nvidia", "iscsi"], &[]))),
            vec!["siderolabs/iscsi-tools", "siderolabs/nvidia-open-gpu-kernel-modules-production"]
        );
        assert_eq!(
            names(&filter(all(), args(&[], &["siderolabs/qemu-guest-agent", "qemu"]))),
            vec!["siderolabs/qemu-guest-agent"]
        );
        assert!(names(&filter(all(), args(&["iscsi"], &["siderolabs/qemu-guest-agent"]))).is_empty());
    }
}
