//! The Proxmox VE release an endpoint runs, and the features that need a newer one.
//!
//! Owns: parsing `GET /version` (`{"version": "8.3.2", "release": "8.3", ...}`), the
//! per-feature floor table, and the error that names the feature, the release it needs and
//! the one found. The client reads `/version` once and keeps it ([`super::PveClient::version`]).
//! Must not: guess a version it could not read (a failed read is that error, not "new enough").

use std::fmt;

use serde_json::Value;

use super::error::ProxmoxError;

/// A Proxmox VE release, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PveVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl PveVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> PveVersion {
        PveVersion { major, minor, patch }
    }

    /// `8.3.2`, `9.1`, `8.4-1` (missing parts are 0; a suffix after the numbers is ignored).
    pub fn parse(text: &str) -> Option<PveVersion> {
        let mut parts = text.trim().split(['.', '-', '~', '+']).map(|p| p.parse::<u32>());
        let major = parts.next()?.ok()?;
        let minor = parts.next().and_then(Result::ok).unwrap_or(0);
        let patch = parts.next().and_then(Result::ok).unwrap_or(0);
        Some(PveVersion { major, minor, patch })
    }

    /// The `version` of a `GET /version` answer.
    pub fn from_answer(data: &Value) -> Result<PveVersion, ProxmoxError> {
        let text = data.get("version").and_then(Value::as_str).unwrap_or_default();
        PveVersion::parse(text).ok_or_else(|| ProxmoxError::Decode {
            method: "GET".into(),
            path: "/version".into(),
            reason: format!("expected a release such as \"9.1.1\" in `version`, got {data}"),
        })
    }
}

impl fmt::Display for PveVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What the provider uses that older Proxmox VE releases lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// Disk images in a storage's `import` content (download-url, upload, `import-from` an
    /// `import` volume).
    ImportContent,
}

impl Feature {
    /// The first release that has it.
    pub fn floor(self) -> PveVersion {
        match self {
            Feature::ImportContent => PveVersion::new(8, 4, 0),
        }
    }

    /// What it is, for the error.
    pub fn describe(self) -> &'static str {
        match self {
            Feature::ImportContent => {
                "disk images in `import` content (contentType: import, importFrom an import volume)"
            }
        }
    }

    /// An error when `found` is older than the feature's floor.
    pub fn check(self, found: PveVersion, endpoint: &str) -> Result<(), ProxmoxError> {
        if found >= self.floor() {
            return Ok(());
        }
        let floor = self.floor();
        Err(ProxmoxError::TooOld {
            feature: self.describe().into(),
            needs: format!("{}.{}", floor.major, floor.minor),
            found: found.to_string(),
            endpoint: endpoint.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_parse_and_order() {
        assert_eq!(PveVersion::parse("8.3.2"), Some(PveVersion::new(8, 3, 2)));
        assert_eq!(PveVersion::parse("9.1"), Some(PveVersion::new(9, 1, 0)));
        assert_eq!(PveVersion::parse("8.4-1"), Some(PveVersion::new(8, 4, 1)));
        assert_eq!(PveVersion::parse("pve"), None);
        assert!(PveVersion::new(8, 3, 9) < PveVersion::new(8, 4, 0));
        assert!(PveVersion::new(9, 0, 0) > PveVersion::new(8, 4, 17));
    }

    #[test]
    fn a_feature_below_its_floor_names_both_releases() {
        let e = Feature::ImportContent.check(PveVersion::new(8, 3, 2), "https://pve:8006/").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("needs Proxmox VE 8.4 or later") && text.contains("runs 8.3.2"), "{text}");
        assert!(Feature::ImportContent.check(PveVersion::new(8, 4, 0), "x").is_ok());
        assert!(Feature::ImportContent.check(PveVersion::new(9, 1, 1), "x").is_ok());
    }

    #[test]
    fn an_answer_without_a_release_is_an_error_not_a_guess() {
        assert!(PveVersion::from_answer(&serde_json::json!({ "release": "9.1" })).is_err());
        assert_eq!(
            PveVersion::from_answer(&serde_json::json!({ "version": "9.1.1", "release": "9.1" })).unwrap(),
            PveVersion::new(9, 1, 1)
        );
    }
}
