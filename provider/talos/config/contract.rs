//! The version contracts machine configuration generation supports, and the
//! version-dependent choices machinery's generator makes.
//!
//! Owns: [`ConfigContract`], a [`VersionContract`] this module can generate
//! faithfully (only v1.12: the generator, the embedded schema and the tests
//! against machinery are all v1.12.4), and its feature questions, named and
//! thresholded as machinery's `config.VersionContract` methods.
//! Must not: build configuration values (see `generate`).

use std::fmt;

use crate::talos::secrets::VersionContract;

/// A contract the generator supports. Built with [`ConfigContract::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigContract(VersionContract);

/// A contract the generator does not reproduce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Talos version contract {0} is not supported for machine configuration: this provider generates \
     configurations exactly as Talos machinery v1.12.4 does for contract v1.12 and no other \
     (older contracts emit different fields, newer ones need a newer machinery); use talosVersion \"v1.12\""
)]
pub struct UnsupportedContract(pub VersionContract);

const fn v(minor: u32) -> VersionContract {
    VersionContract::new(1, minor)
}

impl ConfigContract {
    /// Talos v1.12, the supported contract.
    pub const V1_12: Self = Self(VersionContract::V1_12);

    /// Accepts `contract` if the generator reproduces it.
    pub fn new(contract: VersionContract) -> Result<Self, UnsupportedContract> {
        if contract == VersionContract::V1_12 {
            Ok(Self(contract))
        } else {
            Err(UnsupportedContract(contract))
        }
    }

    /// The underlying contract.
    pub fn contract(self) -> VersionContract {
        self.0
    }

    fn newer_than(self, minor: u32) -> bool {
        self.0.is_newer_than(v(minor))
    }

    /// PodSecurity admission plugin configuration (> 1.0).
    pub fn pod_security_admission_enabled(self) -> bool {
        self.newer_than(0)
    }
    /// `machine.features.stableHostname` (> 1.1; replaced by `HostnameConfig` with multidoc).
    pub fn stable_hostname_enabled(self) -> bool {
        self.newer_than(1)
    }
    /// `machine.kubelet.defaultRuntimeSeccompProfileEnabled` (> 1.1).
    pub fn kubelet_default_runtime_seccomp_profile_enabled(self) -> bool {
        self.newer_than(1)
    }
    /// `k8s.gcr.io` mirror of registry.k8s.io (1.2 only).
    pub fn kubernetes_alternate_image_registries(self) -> bool {
        self.newer_than(1) && !self.newer_than(2)
    }
    /// `allowSchedulingOnControlPlanes` instead of `allowSchedulingOnMasters` (> 1.1).
    pub fn kubernetes_allow_scheduling_on_control_planes(self) -> bool {
        self.newer_than(1)
    }
    /// Discovery's Kubernetes registry disabled (> 1.1).
    pub fn kubernetes_discovery_backend_disabled(self) -> bool {
        self.newer_than(1)
    }
    /// `machine.features.apidCheckExtKeyUsage` (> 1.2).
    pub fn apid_ext_key_usage_check_enabled(self) -> bool {
        self.newer_than(2)
    }
    /// `cluster.apiServer.auditPolicy` (> 1.2).
    pub fn api_server_audit_policy_supported(self) -> bool {
        self.newer_than(2)
    }
    /// `machine.kubelet.disableManifestsDirectory` (> 1.2).
    pub fn kubelet_manifests_directory_disabled(self) -> bool {
        self.newer_than(2)
    }
    /// `cluster.secretboxEncryptionSecret` instead of `aescbcEncryptionSecret` (> 1.2).
    pub fn secretbox_encryption_supported(self) -> bool {
        self.newer_than(2)
    }
    /// `machine.features.diskQuotaSupport` (> 1.4).
    pub fn disk_quota_support_enabled(self) -> bool {
        self.newer_than(4)
    }
    /// KubePrism on port 7445 (> 1.5).
    pub fn kube_prism_enabled(self) -> bool {
        self.newer_than(5)
    }
    /// `machine.features.hostDNS` (> 1.6).
    pub fn host_dns_enabled(self) -> bool {
        self.newer_than(6)
    }
    /// `cluster.clusterName` in worker configurations (> 1.7).
    pub fn cluster_name_for_workers(self) -> bool {
        self.newer_than(7)
    }
    /// `hostDNS.forwardKubeDNSToHost` (> 1.7).
    pub fn host_dns_forward_kube_dns_to_host(self) -> bool {
        self.newer_than(7)
    }
    /// Control-plane label `node.kubernetes.io/exclude-from-external-load-balancers` (> 1.7).
    pub fn add_exclude_from_external_load_balancer(self) -> bool {
        self.newer_than(7)
    }
    /// Multi-document network configuration: a `HostnameConfig` document, registry documents (> 1.11).
    pub fn multidoc_network_config_supported(self) -> bool {
        self.newer_than(11)
    }
    /// `cluster.apiServer.disablePodSecurityPolicy` no longer written (> 1.11).
    pub fn hide_disable_psp(self) -> bool {
        self.newer_than(11)
    }
    /// `machine.features.rbac` and `apidCheckExtKeyUsage` no longer written (> 1.11).
    pub fn hide_rbac_and_key_usage(self) -> bool {
        self.newer_than(11)
    }
    /// The endpoint host copied into `cluster.apiServer.certSANs` (up to 1.11).
    pub fn populate_cluster_sans_from_endpoint(self) -> bool {
        !self.newer_than(11)
    }
    /// `machine.install.grubUseUKICmdline: true` (> 1.11).
    pub fn grub_use_uki_cmdline_default(self) -> bool {
        self.newer_than(11)
    }
}

impl ConfigContract {
    /// Checks that Talos of this contract runs `kubernetes` (a `1.35.0`-style
    /// version, `v` prefix and missing patch tolerated), as the terraform
    /// provider does with machinery's `compatibility` package: Talos 1.12
    /// supports Kubernetes 1.30.0 up to (not including) 1.35.99.
    pub fn check_kubernetes_version(self, kubernetes: &str) -> Result<(), String> {
        let parsed = parse_tolerant(kubernetes)
            .ok_or_else(|| format!("{kubernetes:?} is not a Kubernetes version; expected e.g. 1.35.0"))?;
        let (min, max) = ((1, 30, 0), (1, 35, 99));
        let shown = format!("{}.{}.{}", parsed.0, parsed.1, parsed.2);
        let talos = format!("{}.{}.0", self.0.major(), self.0.minor());
        if parsed < min {
            return Err(format!("version of Kubernetes {shown} is too old to be used with Talos {talos}"));
        }
        if parsed >= max {
            return Err(format!("version of Kubernetes {shown} is too new to be used with Talos {talos}"));
        }
        Ok(())
    }
}

/// semver's `ParseTolerant` core: optional `v`, one to three numeric parts
/// (missing ones are 0), an optional `-pre`/`+build` suffix.
fn parse_tolerant(v: &str) -> Option<(u64, u64, u64)> {
    let v = v.trim();
    let v = v.strip_prefix('v').unwrap_or(v);
    let core = v.split(['-', '+']).next()?;
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut nums = [0u64; 3];
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        nums[i] = p.parse().ok()?;
    }
    Some((nums[0], nums[1], nums[2]))
}

impl fmt::Display for ConfigContract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_v1_12_is_supported_and_the_error_says_so() {
        assert!(ConfigContract::new(VersionContract::parse("v1.12.4").unwrap()).is_ok());
        for other in ["v1.11", "v1.13", "v1.6"] {
            let err = ConfigContract::new(VersionContract::parse(other).unwrap()).unwrap_err().to_string();
            assert!(err.contains(other) && err.contains("v1.12"), "{err}");
        }
    }

    #[test]
    fn kubernetes_versions_follow_talos_1_12_support() {
        let c = ConfigContract::V1_12;
        for ok in ["1.35.0", "v1.35.0", "1.30.0", "1.35", "v1.33.4"] {
            assert_eq!(c.check_kubernetes_version(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            c.check_kubernetes_version("1.36.0").unwrap_err(),
            "version of Kubernetes 1.36.0 is too new to be used with Talos 1.12.0"
        );
        assert!(c.check_kubernetes_version("1.29.9").unwrap_err().contains("too old"));
        assert!(c.check_kubernetes_version("latest").unwrap_err().contains("not a Kubernetes version"));
    }

    #[test]
    fn v1_12_features_match_machinery() {
        let c = ConfigContract::V1_12;
        assert!(
            c.multidoc_network_config_supported() && c.grub_use_uki_cmdline_default() && c.hide_rbac_and_key_usage()
        );
        assert!(c.host_dns_forward_kube_dns_to_host() && c.cluster_name_for_workers() && c.kube_prism_enabled());
        assert!(!c.populate_cluster_sans_from_endpoint() && !c.kubernetes_alternate_image_registries());
    }
}
