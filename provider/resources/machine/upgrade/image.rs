//! Installer images and Talos versions: what a configuration asks a node to run, and whether a
//! change of it is an upgrade, a schematic change, or a downgrade Talos does not support.

use serde_json::Value as Json;

/// A Talos version `vMAJOR.MINOR.PATCH` (with an optional `-pre` suffix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub text: String,
}

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let core = text.strip_prefix('v')?;
        let core = core.split_once('-').map(|(c, _)| c).unwrap_or(core);
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
        parts.next().is_none().then(|| Version { major, minor, patch, text: text.to_string() })
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// An installer image `<registry>/<path>:<version>`; an Image Factory one names its schematic
/// (`factory.talos.dev/nocloud-installer/<schematic>:v1.12.4`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub repository: String,
    pub version: Version,
    /// The factory schematic ID, when the path has one.
    pub schematic: Option<String>,
}

impl Image {
    pub fn parse(image: &str) -> Result<Image, String> {
        let image = image.trim();
        let (repository, tag) =
            image.rsplit_once(':').filter(|(r, t)| !r.is_empty() && !t.contains('/')).ok_or_else(|| {
                format!(
                    "installer image {image:?} has no version tag; expected e.g. ghcr.io/siderolabs/installer:v1.12.4"
                )
            })?;
        let version = Version::parse(tag).ok_or_else(|| {
            format!("installer image {image:?}: the tag {tag:?} is not a Talos version such as v1.12.4")
        })?;
        let mut path = repository.rsplit('/');
        let (last, parent) = (path.next().unwrap_or_default(), path.next().unwrap_or_default());
        let schematic =
            (parent.ends_with("installer") && last.len() == 64 && last.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| last.to_string());
        Ok(Image { repository: repository.to_string(), version, schematic })
    }

    /// The registry host (`factory.talos.dev`, `127.0.0.1:8443`).
    pub fn host(&self) -> &str {
        self.repository.split('/').next().unwrap_or_default()
    }
}

/// The v1alpha1 document of a configuration, as JSON.
fn v1alpha1(config: &str) -> Option<Json> {
    use serde::Deserialize as _;
    serde_norway::Deserializer::from_str(config)
        .filter_map(|doc| Json::deserialize(doc).ok())
        .find(|d| d.get("kind").is_none() && d.get("version").is_some())
}

/// `machine.install.image` of a configuration.
pub fn install_image(config: &str) -> Option<String> {
    v1alpha1(config)?
        .pointer("/machine/install/image")?
        .as_str()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Whether the configuration is a control plane's.
pub fn is_control_plane(config: &str) -> bool {
    v1alpha1(config)
        .and_then(|d| d.pointer("/machine/type").and_then(Json::as_str).map(str::to_string))
        .is_some_and(|t| t == "controlplane" || t == "init")
}

/// What names the cluster a configuration belongs to: `cluster.id`, else its CA certificate.
pub fn cluster_key(config: &str) -> String {
    let doc = v1alpha1(config);
    let get = |p: &str| doc.as_ref().and_then(|d| d.pointer(p)).and_then(Json::as_str).map(str::to_string);
    get("/cluster/id").or_else(|| get("/cluster/ca/crt")).unwrap_or_default()
}

/// The configuration's `cluster.controlPlane.endpoint` (the Kubernetes API URL).
pub fn control_plane_endpoint(config: &str) -> Option<String> {
    v1alpha1(config)?.pointer("/cluster/controlPlane/endpoint").and_then(Json::as_str).map(str::to_string)
}

/// Whether a node running `running` must be upgraded to `wanted`: another version, or (same
/// version) another image than the one recorded (a schematic change).
pub fn needs_upgrade(running: &str, wanted: &Image, recorded: Option<&str>) -> bool {
    if running != wanted.version.text {
        return true;
    }
    let recorded = recorded.and_then(|r| Image::parse(r).ok());
    recorded.is_some_and(|r| r.repository != wanted.repository)
}

/// Why going from `running` to `wanted` is refused: Talos supports downgrades within a minor
/// release only (a downgrade across minors meets newer on-disk formats).
pub fn downgrade_refusal(running: &str, wanted: &Version) -> Option<String> {
    let running = Version::parse(running)?;
    ((wanted.major, wanted.minor) < (running.major, running.minor)).then(|| {
        format!(
            "refusing to downgrade Talos from {running} to {wanted} across minor releases: Talos supports \
             downgrades within a minor release only; use an installer image of v{}.{}.x or newer",
            running.major, running.minor
        )
    })
}

/// Check's view of an install-image change between the old and new configuration: a malformed
/// image, or a downgrade across minors.
pub fn check_change(old_config: Option<&str>, new_config: &str) -> Result<(), String> {
    let Some(new) = install_image(new_config) else { return Ok(()) };
    let wanted = Image::parse(&new)?;
    let old = old_config.and_then(install_image).and_then(|o| Image::parse(&o).ok());
    match old.and_then(|o| downgrade_refusal(&o.version.text, &wanted.version)) {
        Some(refusal) => Err(refusal),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba";

    #[test]
    fn images_name_their_version_and_schematic() {
        let i = Image::parse(&format!("factory.talos.dev/nocloud-installer/{ID}:v1.12.4")).unwrap();
        assert_eq!(
            (i.version.text.as_str(), i.schematic.as_deref(), i.host()),
            ("v1.12.4", Some(ID), "factory.talos.dev")
        );
        let i = Image::parse("127.0.0.1:8443/installer/abc:v1.13.0-alpha.1").unwrap();
        assert_eq!((i.version.minor, i.schematic.as_deref(), i.host()), (13, None, "127.0.0.1:8443"));
        assert!(Image::parse("ghcr.io/siderolabs/installer").unwrap_err().contains("no version tag"));
        assert!(Image::parse("ghcr.io/siderolabs/installer:latest").unwrap_err().contains("not a Talos version"));
    }

    #[test]
    fn upgrades_are_version_or_schematic_changes_and_minor_downgrades_are_refused() {
        let wanted = Image::parse(&format!("f.example/installer/{ID}:v1.12.5")).unwrap();
        assert!(needs_upgrade("v1.12.4", &wanted, None));
        assert!(!needs_upgrade("v1.12.5", &wanted, Some(&format!("f.example/installer/{ID}:v1.12.4"))));
        assert!(needs_upgrade("v1.12.5", &wanted, Some("f.example/installer/other:v1.12.5")));
        assert_eq!(downgrade_refusal("v1.12.4", &Version::parse("v1.12.1").unwrap()), None);
        let refused = downgrade_refusal("v1.12.4", &Version::parse("v1.11.5").unwrap()).unwrap();
        assert!(refused.contains("from v1.12.4 to v1.11.5") && refused.contains("v1.12.x"), "{refused}");
    }

    #[test]
    fn configurations_say_image_role_and_cluster() {
        let c = "version: v1alpha1\nmachine:\n  type: controlplane\n  install:\n    image: i:v1.12.4\ncluster:\n  id: abc\n";
        assert_eq!(install_image(c).as_deref(), Some("i:v1.12.4"));
        assert!(is_control_plane(c));
        assert_eq!(cluster_key(c), "abc");
        let older = c.replace("v1.12.4", "v1.11.2");
        assert!(check_change(Some(c), &older).unwrap_err().contains("refusing to downgrade"));
        assert!(check_change(Some(&older), c).is_ok());
        assert!(check_change(None, &c.replace("v1.12.4", "latest")).is_err());
    }
}
