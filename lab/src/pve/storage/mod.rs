//! Storage endpoints of a node: what `pvesm` and the GUI's storage views
//! answer, and the two ways files get onto a `dir` storage over the API
//! (`download-url` and `upload`).
//!
//! Layout:
//! - [`status`]: `GET /nodes/{node}/storage`, `.../storage/{storage}` and
//!   `.../storage/{storage}/status` (sizes, content types, filters).
//! - [`content`]: `GET|POST /nodes/{node}/storage/{storage}/content` and
//!   `GET|DELETE .../content/{volume}` (real files of `dir` storages, the
//!   model's volumes on block storages).
//! - [`download`]: `POST .../download-url` (a `download` task that really
//!   fetches the URL, loopback only) and `GET /nodes/{node}/query-url-metadata`.
//! - [`upload`]: `POST .../upload` (an `imgcopy` task moving the spooled
//!   multipart file into place).
//! - [`files`]: PVE's file-name rules, checksums, decompression (gz, lzo, zst,
//!   bz2) and the checks PVE makes on untrusted images.
//! - [`multipart`]: pveproxy's `multipart/form-data` reading, used by
//!   [`super::server`] to spool uploads.
//!
//! This module owns: the lookups every storage handler shares (the storage's
//! config, where a content type lives in a `dir` storage, volume names).
//! Must not: change VMs (that is `qemu/`) or know HTTP beyond [`Call`].

pub mod content;
pub mod download;
pub mod files;
pub mod multipart;
pub mod status;
pub mod upload;

use std::path::PathBuf;

use axum::http::StatusCode;

use super::lab_config::StorageConfig;
use super::server::{ApiError, Handlers};
use super::state::{storage_path, PveState};

pub fn register(h: &mut Handlers) {
    status::register(h);
    content::register(h);
    download::register(h);
    upload::register(h);
}

/// PVE's 500 for a storage id that is not in `storage.cfg`.
pub fn no_such_storage(id: &str) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("storage '{id}' does not exist"))
}

/// The storage's config (PVE's `storage_config`, 500 when unknown).
pub fn storage_config(state: &PveState, id: &str) -> Result<StorageConfig, ApiError> {
    state.read(|m| m.storages.get(id).cloned()).ok_or_else(|| no_such_storage(id))
}

/// Whether files live on the storage (PVE: the storage config has a `path`).
pub fn has_path(s: &StorageConfig) -> bool {
    s.kind == "dir"
}

/// Whether the storage allows `content`.
pub fn allows(s: &StorageConfig, content: &str) -> bool {
    s.content.iter().any(|c| c == content)
}

/// The sub-directory of a `dir` storage holding `content` (PVE's `vtype_subdirs`).
pub fn subdir(content: &str) -> Option<&'static str> {
    Some(match content {
        "images" => "images",
        "rootdir" => "private",
        "iso" => "template/iso",
        "vztmpl" => "template/cache",
        "backup" => "dump",
        "snippets" => "snippets",
        "import" => "import",
        _ => return None,
    })
}

/// A file of a `dir` storage: where the node sees it and where the lab keeps it.
#[derive(Debug, Clone)]
pub struct DirFile {
    /// `/var/lib/vz/template/iso/x.iso`, as PVE reports it.
    pub node_path: String,
    /// `STATE/nodes/NODE/root/var/lib/vz/template/iso/x.iso`.
    pub real_path: PathBuf,
}

/// The file `name` of `content` on `storage` of `node`.
pub fn dir_file(state: &PveState, node: &str, storage: &str, content: &str, name: &str) -> DirFile {
    let sub = subdir(content).unwrap_or(content);
    DirFile {
        node_path: format!("{}/{sub}/{name}", storage_path(storage)),
        real_path: state.dir_storage_path(node, storage).join(sub).join(name),
    }
}

/// Where the lab keeps a path of `node`'s file system (`/var/tmp/x` → `STATE/nodes/NODE/root/var/tmp/x`).
pub fn real_path(state: &PveState, node: &str, node_path: &str) -> PathBuf {
    state.node_root(node).join(node_path.trim_start_matches('/'))
}

/// PVE's `normalize_content_filename`: drop any directory part, replace
/// everything but `[a-zA-Z0-9_.-]` with `_`.
pub fn normalize_filename(name: &str) -> String {
    let name = name.strip_suffix('\n').unwrap_or(name);
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '_' }).collect()
}

/// A volume as the storage API names it: `storage:volname`, or a bare
/// volname when the storage is given separately (PVE's `real_volume_id`).
pub fn volume_id(storage: Option<&str>, volume: &str) -> Result<(String, String), ApiError> {
    let param = |msg: String| ApiError::params([("volume".to_string(), msg)].into());
    if volume.contains(':') {
        let Some((sid, volname)) = parse_volume_id(volume) else {
            return Err(param(format!("unable to parse volume ID '{volume}'\n")));
        };
        if let Some(storage) = storage.filter(|s| *s != sid) {
            return Err(param(format!("storage ID mismatch ({sid} != {storage})\n")));
        }
        Ok((sid.to_string(), volname.to_string()))
    } else {
        match storage {
            Some(storage) => Ok((storage.to_string(), volume.to_string())),
            None => Err(param("no storage specified - incomplete volume ID".to_string())),
        }
    }
}

/// `storage:volname` split as PVE's `parse_volume_id` does.
pub fn parse_volume_id(volid: &str) -> Option<(&str, &str)> {
    let (sid, volname) = volid.split_once(':')?;
    let ok = sid.len() >= 2
        && sid.starts_with(|c: char| c.is_ascii_alphabetic())
        && sid.ends_with(|c: char| c.is_ascii_alphanumeric())
        && sid.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !volname.is_empty();
    ok.then_some((sid, volname))
}

/// A volume name of a `dir` storage, as PVE's `Plugin::parse_volname` reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum DirVolume {
    /// `100/vm-100-disk-0.qcow2`, or a linked clone `90001/base-90001-disk-0.raw/100/vm-100-disk-0.qcow2`.
    Image { vmid: u32 },
    /// `iso/x.iso`, `vztmpl/x.tar.zst`, `backup/...`, `snippets/x.yaml`, `import/x.qcow2`.
    File { content: &'static str, name: String },
}

/// Parses a `dir` storage volume name, or PVE's error text.
pub fn parse_dir_volname(volname: &str) -> Result<DirVolume, String> {
    let err = || format!("unable to parse directory volume name '{volname}'");
    let parts: Vec<&str> = volname.split('/').collect();
    let image = |vmid: &str, name: &str| -> Result<DirVolume, String> {
        let vmid: u32 = vmid.parse().map_err(|_| err())?;
        files::parse_image_name(name)?;
        Ok(DirVolume::Image { vmid })
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [b, base, v, name] if digits(b) && digits(v) && !base.is_empty() => {
            files::parse_image_name(base)?;
            image(v, name)
        }
        [v, name] if digits(v) => image(v, name),
        [kind, name] if !name.is_empty() => {
            let content = match *kind {
                "iso" if files::is_iso_name(name) => "iso",
                "vztmpl" if files::vztmpl_ext(name).is_some() => "vztmpl",
                "backup" if files::backup_format(name).is_some() => "backup",
                "snippets" => "snippets",
                "import" if files::import_format(name).is_some() => "import",
                _ => return Err(err()),
            };
            Ok(DirVolume::File { content, name: name.to_string() })
        }
        _ => Err(err()),
    }
}

/// What a block storage calls its dataset/image for a volume name (for PVE's error texts).
pub fn block_path(s: &StorageConfig, volname: &str) -> String {
    match s.kind.as_str() {
        "zfspool" => format!("rpool/data/{volname}"),
        "lvmthin" => format!("pve/{volname}"),
        _ => volname.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_normalized_as_pve_does() {
        assert_eq!(normalize_filename("talos v1.12 (amd64).iso"), "talos_v1.12__amd64_.iso");
        assert_eq!(normalize_filename("C:\\Users\\me\\x.iso"), "x.iso");
        assert_eq!(normalize_filename("/tmp/a/b.qcow2"), "b.qcow2");
    }

    #[test]
    fn volume_ids_follow_real_volume_id() {
        assert_eq!(volume_id(Some("local"), "iso/x.iso").unwrap(), ("local".into(), "iso/x.iso".into()));
        assert_eq!(volume_id(None, "local:iso/x.iso").unwrap(), ("local".into(), "iso/x.iso".into()));
        let e = volume_id(Some("other"), "local:iso/x.iso").unwrap_err();
        assert_eq!(e.errors.unwrap()["volume"], "storage ID mismatch (local != other)\n");
        assert!(volume_id(None, "iso/x.iso").is_err());
    }

    #[test]
    fn dir_volume_names_parse_as_pve_does() {
        assert_eq!(parse_dir_volname("iso/x.ISO").unwrap(), DirVolume::File { content: "iso", name: "x.ISO".into() });
        assert_eq!(parse_dir_volname("100/vm-100-disk-0.qcow2").unwrap(), DirVolume::Image { vmid: 100 });
        assert_eq!(
            parse_dir_volname("import/talos.raw").unwrap(),
            DirVolume::File { content: "import", name: "talos.raw".into() }
        );
        assert_eq!(
            parse_dir_volname("iso/x.qcow2").unwrap_err(),
            "unable to parse directory volume name 'iso/x.qcow2'"
        );
        assert!(parse_dir_volname("100/disk.img").is_err());
    }
}
