//! `storage:File`'s Check: the inputs validated before any API call, each
//! failure naming its property path and what would be valid, and what Check
//! fills in (`contentType` from the file name, `sourceFile.fileName` from the
//! path, `sourceFile.checksum` from the file); with the file-name and
//! content-type rules of Proxmox VE and the SHA-256 of local files they need.
//!
//! Must not: call the API or the node.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

use super::FileArgs;
use crate::framework::CheckFailure;
use crate::ssh::sftp::hex;

const CONTENT_TYPES: [&str; 5] = ["snippets", "iso", "vztmpl", "import", "backup"];

/// The content type a file name implies.
pub(super) fn infer_content_type(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let ends = |exts: &[&str]| exts.iter().any(|e| lower.len() > e.len() && lower.ends_with(e));
    if ends(&[".yaml", ".yml", ".json", ".txt", ".cfg", ".sh"]) {
        Some("snippets")
    } else if ends(&[".iso", ".img"]) {
        Some("iso")
    } else if ends(&[".tar.gz", ".tar.xz", ".tar.zst"]) {
        Some("vztmpl")
    } else if ends(&[".qcow2", ".raw", ".vmdk", ".ova"]) {
        Some("import")
    } else {
        None
    }
}

/// Whether PVE takes `name` for `content` (its upload and listing rules); why not otherwise.
fn name_fits(content: &str, name: &str) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    let ends = |exts: &[&str]| exts.iter().any(|e| lower.len() > e.len() && lower.ends_with(e));
    let ok = match content {
        "iso" => ends(&[".iso", ".img"]),
        "vztmpl" => ends(&[".tar.gz", ".tar.xz", ".tar.zst", ".tar.bz2"]),
        // PVE's upload matches these case-sensitively.
        "import" => [".qcow2", ".raw", ".vmdk", ".ova"].iter().any(|e| name.len() > e.len() && name.ends_with(e)),
        "backup" => {
            let comp = ["", ".gz", ".lzo", ".zst", ".bz2"];
            lower.ends_with(".tgz") || ["vma", "tar"].iter().any(|b| comp.iter().any(|c| ends(&[&format!(".{b}{c}")])))
        }
        _ => true,
    };
    if ok {
        return Ok(());
    }
    Err(match content {
        "iso" => format!("{name:?}: Proxmox VE keeps `iso` content only as .iso or .img files"),
        "vztmpl" => format!("{name:?}: container templates must be .tar.gz, .tar.xz, .tar.zst or .tar.bz2"),
        "import" => format!("{name:?}: `import` images must be .qcow2, .raw, .vmdk or .ova (lower case)"),
        _ => format!("{name:?}: backups must be .vma, .tar or .tgz files (optionally .gz, .lzo, .zst or .bz2)"),
    })
}

/// Why `name` cannot be a file name in a storage, if it cannot.
fn bad_file_name(name: &str) -> Option<String> {
    if name.trim().is_empty() {
        Some("a file name is required, e.g. \"user-data.yaml\"".into())
    } else if name.contains('/') || name.contains('\0') {
        Some(format!("{name:?} is not a plain file name (no '/')"))
    } else if name.starts_with('.') {
        Some(format!("{name:?} starts with '.': Proxmox VE does not list hidden files"))
    } else {
        None
    }
}

fn basename(path: &str) -> Option<String> {
    Path::new(path).file_name().and_then(|n| n.to_str()).map(str::to_string)
}

/// The file name in the storage and the input path that sets it.
pub(super) fn file_name_of(a: &FileArgs) -> Option<(String, &'static str)> {
    if let Some(raw) = &a.source_raw {
        return Some((raw.file_name.clone(), "sourceRaw.fileName"));
    }
    let f = a.source_file.as_ref()?;
    match &f.file_name {
        Some(n) => Some((n.clone(), "sourceFile.fileName")),
        None => basename(&f.path).map(|n| (n, "sourceFile.path")),
    }
}

/// `sourceFile.fileName` as given.
fn src_name_given(a: &FileArgs) -> Option<String> {
    a.source_file.as_ref().and_then(|f| f.file_name.clone())
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

pub(super) fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// SHA-256 of a local file, remembered per (path, size, mtime) for this process.
pub(super) fn file_sha256(path: &Path) -> std::io::Result<String> {
    type Key = (PathBuf, u64, Option<std::time::SystemTime>);
    static CACHE: OnceLock<Mutex<HashMap<Key, String>>> = OnceLock::new();
    let meta = std::fs::metadata(path)?;
    let key = (path.to_path_buf(), meta.len(), meta.modified().ok());
    let cache = CACHE.get_or_init(Default::default);
    if let Some(sum) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(sum.clone());
    }
    let hash = || -> std::io::Result<String> {
        use std::io::Read as _;
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hex(&hasher.finalize()))
    };
    // Check runs on the runtime: hashing a large image must not stall its other tasks.
    let sum = match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(hash)?,
        _ => hash()?,
    };
    cache.lock().unwrap_or_else(|e| e.into_inner()).insert(key, sum.clone());
    Ok(sum)
}

/// Validates and fills in `contentType`, `sourceFile.fileName` and `sourceFile.checksum`.
pub(super) fn check_args(mut a: FileArgs) -> Result<FileArgs, Vec<CheckFailure>> {
    let mut f = Vec::new();
    if a.node_name.trim().is_empty() {
        f.push(CheckFailure::new("nodeName", "a node name is required, e.g. \"pve\""));
    }
    if a.datastore_id.trim().is_empty() {
        f.push(CheckFailure::new("datastoreId", "a storage id is required, e.g. \"local\""));
    }
    match (&a.source_raw, &a.source_file) {
        (Some(_), Some(_)) => {
            f.push(CheckFailure::new("sourceFile", "set either `sourceRaw` or `sourceFile`, not both"))
        }
        (None, None) => f.push(CheckFailure::new(
            "sourceRaw",
            "one of `sourceRaw` ({data, fileName}) or `sourceFile` ({path}) is required",
        )),
        _ => {}
    }
    if let Some(raw) = &a.source_raw {
        if let Some(why) = bad_file_name(&raw.file_name) {
            f.push(CheckFailure::new("sourceRaw.fileName", why));
        }
    }
    let mut local_file = None;
    if let Some(src) = &a.source_file {
        if let Some(name) = &src.file_name {
            if let Some(why) = bad_file_name(name) {
                f.push(CheckFailure::new("sourceFile.fileName", why));
            }
        }
        if let Some(sum) = &src.checksum {
            if !is_sha256(sum) {
                f.push(CheckFailure::new("sourceFile.checksum", "a SHA-256 digest is expected: 64 hexadecimal digits"));
            }
        }
        if src.path.trim().is_empty() {
            f.push(CheckFailure::new("sourceFile.path", "the path of a local file is required"));
        } else {
            match std::fs::metadata(&src.path) {
                Ok(m) if m.is_file() => local_file = Some(PathBuf::from(&src.path)),
                Ok(_) => f.push(CheckFailure::new("sourceFile.path", format!("{:?} is not a regular file", src.path))),
                Err(e) => f.push(CheckFailure::new(
                    "sourceFile.path",
                    format!(
                        "{:?} cannot be read ({e}); relative paths start at the project directory ({})",
                        src.path,
                        std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default()
                    ),
                )),
            }
        }
    }
    // The file name: `sourceRaw.fileName`, `sourceFile.fileName`, else the path's last component.
    let name = file_name_of(&a);
    if let (Some(src), None) = (&a.source_file, src_name_given(&a)) {
        match &name {
            None if !src.path.trim().is_empty() => f.push(CheckFailure::new(
                "sourceFile.fileName",
                format!("cannot tell a file name from {:?}: set it", src.path),
            )),
            Some((n, _)) => {
                if let Some(why) = bad_file_name(n) {
                    f.push(CheckFailure::new(
                        "sourceFile.fileName",
                        format!("set it: the path's last component: {why}"),
                    ));
                }
            }
            None => {}
        }
    }
    // Only a usable name is inferred from and checked against the content type (bad ones are reported).
    let name = name.filter(|(n, _)| bad_file_name(n).is_none());
    let content = match &a.content_type {
        Some(c) if CONTENT_TYPES.contains(&c.as_str()) => Some(c.clone()),
        Some(c) => {
            f.push(CheckFailure::new("contentType", format!("{c:?} is not one of {}", CONTENT_TYPES.join(", "))));
            None
        }
        None => match &name {
            Some((n, _)) => match infer_content_type(n) {
                Some(c) => Some(c.to_string()),
                None => {
                    f.push(CheckFailure::new(
                        "contentType",
                        format!(
                            "cannot tell the content type from the file name {n:?}: set `contentType` to one of {}",
                            CONTENT_TYPES.join(", ")
                        ),
                    ));
                    None
                }
            },
            None => None,
        },
    };
    if let (Some(c), Some((n, at))) = (&content, &name) {
        if let Err(why) = name_fits(c, n) {
            let at = if *at == "sourceFile.path" { "sourceFile.fileName" } else { at };
            f.push(CheckFailure::new(at, why));
        }
    }
    if a.timeout_upload == Some(0) {
        f.push(CheckFailure::new("timeoutUpload", "must be at least 1 (seconds)"));
    }
    if !f.is_empty() {
        return Err(f);
    }
    a.content_type = content;
    if let (Some(src), Some(path)) = (a.source_file.as_mut(), local_file) {
        src.file_name = name.map(|(n, _)| n);
        let actual = file_sha256(&path).map_err(|e| {
            vec![CheckFailure::new("sourceFile.path", format!("reading {:?} to hash it: {e}", src.path))]
        })?;
        match &src.checksum {
            Some(given) if !given.eq_ignore_ascii_case(&actual) => {
                return Err(vec![CheckFailure::new(
                    "sourceFile.checksum",
                    format!("the file {:?} has SHA-256 {actual}, not {}", src.path, given.to_ascii_lowercase()),
                )])
            }
            _ => src.checksum = Some(actual),
        }
    }
    Ok(a)
}
