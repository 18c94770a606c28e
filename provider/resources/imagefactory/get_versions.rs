//! `imagefactory:getVersions`: the Talos versions the configured Image Factory
//! can build images for (`GET /versions`), optionally only stable releases.

use serde::{Deserialize, Serialize};

use crate::framework::{Context, Function, ResourceError};
use crate::schema::PulumiType;
use crate::talos::factory_client::FactoryClient;

/// Arguments of `getVersions`.
#[derive(Debug, Clone, Default, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetVersionsArgs {
    /// Filters applied to the factory's list.
    pub filters: Option<VersionFilters>,
}

/// Filters for `getVersions`.
#[derive(Debug, Clone, Default, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "imagefactory:VersionFilters")]
pub struct VersionFilters {
    /// Keep only stable releases: drop pre-releases such as `v1.13.0-alpha.1` (default false).
    pub stable_versions_only: Option<bool>,
}

/// Result of `getVersions`.
#[derive(Debug, Clone, Serialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct GetVersionsResult {
    /// Talos versions, in the factory's order (oldest first), e.g. `v1.12.4`.
    pub talos_versions: Vec<String>,
}

/// The `getVersions` function.
pub struct GetVersions;

impl Function for GetVersions {
    const TOKEN: &'static str = "proxmox-talos:imagefactory:getVersions";
    type Args = GetVersionsArgs;
    type Result = GetVersionsResult;

    async fn invoke(&self, ctx: &Context, args: GetVersionsArgs) -> Result<GetVersionsResult, ResourceError> {
        let client =
            FactoryClient::new(&ctx.config().image_factory_url()).map_err(|e| ResourceError::Failed(e.to_string()))?;
        let versions = client.versions().await.map_err(|e| ResourceError::Failed(e.to_string()))?;
        Ok(filter(versions, &args))
    }
}

/// Applies `args.filters` to the factory's list.
pub fn filter(versions: Vec<String>, args: &GetVersionsArgs) -> GetVersionsResult {
    let stable_only = args.filters.as_ref().and_then(|f| f.stable_versions_only).unwrap_or(false);
    let talos_versions = versions.into_iter().filter(|v| !stable_only || is_stable(v)).collect();
    GetVersionsResult { talos_versions }
}

/// A release without a pre-release suffix (`v1.12.4`, not `v1.13.0-beta.0`).
fn is_stable(version: &str) -> bool {
    !version.contains('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_filter_drops_pre_releases() {
        let all = vec!["v1.11.5".to_string(), "v1.12.4".into(), "v1.13.0-alpha.1".into()];
        assert_eq!(filter(all.clone(), &GetVersionsArgs::default()).talos_versions, all);
        let stable = GetVersionsArgs { filters: Some(VersionFilters { stable_versions_only: Some(true) }) };
        assert_eq!(filter(all, &stable).talos_versions, vec!["v1.11.5", "v1.12.4"]);
    }
}
