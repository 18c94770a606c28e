//! Assets and archives, and their one serialised form: the signature object.
//!
//! Owns [`Asset`], [`Archive`], [`AssetOrArchive`] and their serde implementations, which read
//! and write exactly the object the engine uses (`{"4dabf1...": "c44067...", "hash": ..,
//! "text": ..}`). The wire codec reuses these implementations, so the protobuf and JSON forms
//! cannot drift apart, and a resource's typed input struct can hold an `Asset` field directly.
//!
//! Must not: read files, fetch URIs or compute hashes; that is the engine's and the resource's
//! business. These are descriptions, not contents.

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ARCHIVE_SIG, ASSET_SIG, SIG_KEY};

/// Where an asset's contents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetSource {
    /// Inline text.
    Text(String),
    /// A file path, relative to the program's working directory.
    Path(String),
    /// A `file://`, `http://` or `https://` URI.
    Uri(String),
}

/// A single blob, described by its source and/or its SHA-256 hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AssetRepr", into = "AssetRepr")]
pub struct Asset {
    /// Lower-case hex SHA-256 of the contents, if the engine computed it.
    pub hash: Option<String>,
    /// The contents' source. `None` for a hash-only asset: the engine uses those as
    /// placeholders whose contents are not known here.
    pub source: Option<AssetSource>,
}

/// Where an archive's contents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveSource {
    /// Named members, each an asset or a nested archive.
    Assets(BTreeMap<String, AssetOrArchive>),
    /// A file path (a `.tar`, `.tgz`, `.zip`, `.jar` file, or a directory).
    Path(String),
    /// A URI of such a file.
    Uri(String),
}

/// A collection of files, described by its source and/or its SHA-256 hash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ArchiveRepr", into = "ArchiveRepr")]
pub struct Archive {
    /// Lower-case hex SHA-256 of the contents, if the engine computed it.
    pub hash: Option<String>,
    /// The contents' source; `None` for a hash-only placeholder.
    pub source: Option<ArchiveSource>,
}

/// A member of an asset archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssetOrArchive {
    /// A file.
    Asset(Asset),
    /// A nested archive, expanded under the member's name.
    Archive(Archive),
}

impl Asset {
    /// A text asset without a hash (the engine fills hashes in).
    pub fn text(text: impl Into<String>) -> Self {
        Self { hash: None, source: Some(AssetSource::Text(text.into())) }
    }

    /// A file asset without a hash.
    pub fn path(path: impl Into<String>) -> Self {
        Self { hash: None, source: Some(AssetSource::Path(path.into())) }
    }

    /// A remote asset without a hash.
    pub fn uri(uri: impl Into<String>) -> Self {
        Self { hash: None, source: Some(AssetSource::Uri(uri.into())) }
    }
}

impl Archive {
    /// An archive of named members, without a hash.
    pub fn assets(members: BTreeMap<String, AssetOrArchive>) -> Self {
        Self { hash: None, source: Some(ArchiveSource::Assets(members)) }
    }

    /// A file archive without a hash.
    pub fn path(path: impl Into<String>) -> Self {
        Self { hash: None, source: Some(ArchiveSource::Path(path.into())) }
    }

    /// A remote archive without a hash.
    pub fn uri(uri: impl Into<String>) -> Self {
        Self { hash: None, source: Some(ArchiveSource::Uri(uri.into())) }
    }
}

/// The signature object of an asset, field for field. serde's `rename` needs a literal, so
/// the signature key is spelled out here; a unit test checks it against [`SIG_KEY`].
#[derive(Serialize, Deserialize)]
struct AssetRepr {
    #[serde(rename = "4dabf18193072939515e22adb298388d")]
    sig: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ArchiveRepr {
    #[serde(rename = "4dabf18193072939515e22adb298388d")]
    sig: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    assets: Option<BTreeMap<String, AssetOrArchive>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
}

/// Empty strings count as absent: the engine omits empty fields when it writes these objects
/// and ignores empty `path`/`uri` when it reads them.
fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

impl TryFrom<AssetRepr> for Asset {
    type Error = String;

    fn try_from(r: AssetRepr) -> Result<Self, String> {
        if r.sig != ASSET_SIG {
            return Err(format!("signature {:?} is not the asset signature", r.sig));
        }
        // Same precedence as the engine: a path or URI wins over text. Text may legitimately
        // be empty, so only its presence matters.
        let source = if let Some(p) = non_empty(r.path) {
            Some(AssetSource::Path(p))
        } else if let Some(u) = non_empty(r.uri) {
            Some(AssetSource::Uri(u))
        } else {
            r.text.map(AssetSource::Text)
        };
        Ok(Self { hash: non_empty(r.hash), source })
    }
}

impl From<Asset> for AssetRepr {
    fn from(a: Asset) -> Self {
        let mut r = AssetRepr { sig: ASSET_SIG.into(), hash: a.hash, text: None, path: None, uri: None };
        match a.source {
            Some(AssetSource::Text(t)) => r.text = Some(t),
            Some(AssetSource::Path(p)) => r.path = Some(p),
            Some(AssetSource::Uri(u)) => r.uri = Some(u),
            None => {}
        }
        r
    }
}

impl TryFrom<ArchiveRepr> for Archive {
    type Error = String;

    fn try_from(r: ArchiveRepr) -> Result<Self, String> {
        if r.sig != ARCHIVE_SIG {
            return Err(format!("signature {:?} is not the archive signature", r.sig));
        }
        let source = if let Some(p) = non_empty(r.path) {
            Some(ArchiveSource::Path(p))
        } else if let Some(u) = non_empty(r.uri) {
            Some(ArchiveSource::Uri(u))
        } else {
            r.assets.map(ArchiveSource::Assets)
        };
        Ok(Self { hash: non_empty(r.hash), source })
    }
}

impl From<Archive> for ArchiveRepr {
    fn from(a: Archive) -> Self {
        let mut r = ArchiveRepr { sig: ARCHIVE_SIG.into(), hash: a.hash, assets: None, path: None, uri: None };
        match a.source {
            Some(ArchiveSource::Assets(m)) => r.assets = Some(m),
            Some(ArchiveSource::Path(p)) => r.path = Some(p),
            Some(ArchiveSource::Uri(u)) => r.uri = Some(u),
            None => {}
        }
        r
    }
}

impl Serialize for AssetOrArchive {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Asset(a) => a.serialize(s),
            Self::Archive(a) => a.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for AssetOrArchive {
    /// Dispatches on the signature rather than trying each type in turn, so a malformed member
    /// reports its own problem instead of "matched no variant".
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match v.get(SIG_KEY).and_then(|s| s.as_str()) {
            Some(ASSET_SIG) => serde_json::from_value(v).map(Self::Asset).map_err(D::Error::custom),
            Some(ARCHIVE_SIG) => serde_json::from_value(v).map(Self::Archive).map_err(D::Error::custom),
            _ => Err(D::Error::custom("archive member is not an asset or archive")),
        }
    }
}
