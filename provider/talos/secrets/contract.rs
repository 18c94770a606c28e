//! Talos version contracts (`talosVersion` inputs such as `v1.12`).
//!
//! Owns: parsing a Talos version string into a major.minor contract the way
//! Talos's `config.ParseContractFromVersion` does, and the feature questions
//! whose answers change how the secrets bundle is generated.
//! Must not: know about certificates, keys or serialisation; generation code
//! asks this module questions and never compares version numbers itself.

use std::fmt;
use std::str::FromStr;

/// A Talos machinery version contract: the `major.minor` a bundle or machine
/// configuration is generated for. Comparison is by major, then minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionContract {
    major: u32,
    minor: u32,
}

/// A Talos version string that is not a valid version contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid Talos version {input:?}: expected \"v<major>.<minor>\", \"<major>.<minor>\" \
     or a full release version \"v<major>.<minor>.<patch>\" (for example \"v1.12\", \"1.12\" or \"v1.12.4\")"
)]
pub struct ContractError {
    input: String,
}

impl VersionContract {
    /// Talos v1.2: the last contract that generates an AES-CBC etcd encryption secret.
    pub const V1_2: Self = Self::new(1, 2);
    /// Talos v1.6: the last contract that generates an ECDSA service-account key.
    pub const V1_6: Self = Self::new(1, 6);
    /// Talos v1.12: the contract this provider targets by default.
    pub const V1_12: Self = Self::new(1, 12);
    /// Talos v1.13: the last release whose `talosctl gen secrets` writes the
    /// cluster ID in URL-safe base64.
    pub const V1_13: Self = Self::new(1, 13);

    /// Builds a contract from its parts.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Major version number.
    pub const fn major(self) -> u32 {
        self.major
    }

    /// Minor version number.
    pub const fn minor(self) -> u32 {
        self.minor
    }

    /// Parses `v1.12`, `1.12`, `v1.12.4` (anything after the minor must start
    /// with a `.`, as in Talos: `v1.12.0-alpha.1` is accepted, `v1.12-rc` is not).
    pub fn parse(version: &str) -> Result<Self, ContractError> {
        let err = || ContractError { input: version.to_owned() };
        let rest = version.strip_prefix('v').unwrap_or(version);
        let (major, rest) = leading_number(rest).ok_or_else(err)?;
        let rest = rest.strip_prefix('.').ok_or_else(err)?;
        let (minor, rest) = leading_number(rest).ok_or_else(err)?;
        if !(rest.is_empty() || rest.starts_with('.')) {
            return Err(err());
        }
        Ok(Self::new(major, minor))
    }

    /// Talos `Greater`: strictly newer by major.minor.
    pub fn is_newer_than(self, other: Self) -> bool {
        self > other
    }

    /// Whether etcd secrets are encrypted with secretbox (`secretboxEncryptionSecret`);
    /// older contracts use AES-CBC (`aescbcEncryptionSecret`). True for contracts > 1.2.
    pub fn secretbox_encryption_supported(self) -> bool {
        self.is_newer_than(Self::V1_2)
    }

    /// Whether the Kubernetes service-account signing key is RSA-4096 (PKCS#1);
    /// older contracts use ECDSA P-256. True for contracts > 1.6.
    pub fn service_account_key_is_rsa(self) -> bool {
        self.is_newer_than(Self::V1_6)
    }

    /// Whether the cluster ID is written in URL-safe base64 (with padding), as
    /// `talosctl gen secrets` did before Talos 1.14; from 1.14 it is standard base64.
    /// Talos ties this to its release rather than the contract and never decodes
    /// the ID, so either form is valid; this provider follows the contract.
    pub fn cluster_id_uses_url_safe_base64(self) -> bool {
        !self.is_newer_than(Self::V1_13)
    }
}

/// Splits a non-empty run of leading ASCII digits off `s` and parses it.
fn leading_number(s: &str) -> Option<(u32, &str)> {
    let end = s.bytes().take_while(u8::is_ascii_digit).count();
    if end == 0 {
        return None;
    }
    let value = s[..end].parse().ok()?;
    Some((value, &s[end..]))
}

impl fmt::Display for VersionContract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}", self.major, self.minor)
    }
}

impl FromStr for VersionContract {
    type Err = ContractError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_talos_accepts() {
        let cases = [
            ("v1.12", (1, 12)),
            ("1.12", (1, 12)),
            ("v1.12.4", (1, 12)),
            ("v1.12.0-alpha.1", (1, 12)),
            ("v0.14", (0, 14)),
            ("2.0", (2, 0)),
        ];
        for (input, (major, minor)) in cases {
            let contract = VersionContract::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((contract.major(), contract.minor()), (major, minor), "{input}");
        }
    }

    #[test]
    fn rejects_garbage_naming_the_valid_forms() {
        for input in
            ["", "v", "1", "v1", "v1.", "1.x", "v1.12-rc", "v1.12x", "vv1.12", "latest", " v1.12", "v99999999999.1"]
        {
            let err = VersionContract::parse(input).expect_err(input).to_string();
            assert!(err.contains(&format!("{input:?}")), "{err}");
            for form in ["\"v1.12\"", "\"1.12\"", "\"v1.12.4\""] {
                assert!(err.contains(form), "error for {input:?} should name {form}: {err}");
            }
        }
    }

    #[test]
    fn displays_as_v_major_minor() {
        assert_eq!(VersionContract::parse("1.12.4").unwrap().to_string(), "v1.12");
        assert_eq!("v1.6".parse::<VersionContract>().unwrap(), VersionContract::V1_6);
    }

    #[test]
    fn feature_switches_follow_the_talos_thresholds() {
        // (contract, secretbox, rsa service-account key, url-safe cluster id)
        let cases = [
            ("v1.2", false, false, true),
            ("v1.3", true, false, true),
            ("v1.6", true, false, true),
            ("v1.7", true, true, true),
            ("v1.12", true, true, true),
            ("v1.13", true, true, true),
            ("v1.14", true, true, false),
            ("v2.0", true, true, false),
        ];
        for (input, secretbox, rsa, url_id) in cases {
            let c = VersionContract::parse(input).unwrap();
            assert_eq!(c.secretbox_encryption_supported(), secretbox, "{input} secretbox");
            assert_eq!(c.service_account_key_is_rsa(), rsa, "{input} rsa");
            assert_eq!(c.cluster_id_uses_url_safe_base64(), url_id, "{input} cluster id");
        }
    }
}
