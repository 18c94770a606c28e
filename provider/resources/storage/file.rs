//! `storage:File`: a file the program puts into a Proxmox VE storage: a
//! cloud-init snippet from inline text (`sourceRaw`), or an ISO, container
//! template, `import` disk image or backup from a local file (`sourceFile`).
//!
//! How it gets there depends on the content type, because PVE's upload API
//! (`POST .../upload`) takes only `iso`, `vztmpl` and `import`: those are
//! streamed through it (inline data is spooled to a temporary file first)
//! and the `imgcopy` task awaited; `snippets` and `backup` are written over
//! SFTP into the storage's directory (`GET /storage/{id}` `path` +
//! `snippets/` or `dump/`) under a hidden temporary name, given mode 0644 and
//! renamed into place, as bpg's provider does (research §1.3, §3 item 6).
//! Either way the storage's content list is then polled until it shows the
//! file with its size.
//!
//! Check fills in what it can know: `contentType` from the file name,
//! `sourceFile.fileName` from the path, and `sourceFile.checksum` (SHA-256,
//! verified when given) from the file, so an edited file shows as a change.
//! A changed content re-uploads in place (same volume); a new file name,
//! node, storage or content type replaces. Read finds drift: snippets are
//! read back over SFTP (a different content comes back as the inputs'
//! `sourceRaw.data`, or as `sourceFile.checksum`), uploaded types by size.
//! The id is `node/volid` (`pve/local:snippets/user-data.yaml`), which
//! `pulumi import` takes (a snippet is imported with its content).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::super::{node_ssh, pve};
use crate::framework::{
    CheckFailure, CheckRequest, Context, CreateRequest, CreateResponse, CustomResource, DeleteRequest, ReadRequest,
    ReadResponse, ResourceError, Severity, UpdateRequest,
};
use crate::proxmox::retry::{retry, RetryPolicy};
use crate::proxmox::storage::{self, ContentItem, StorageInfo};
use crate::proxmox::PveClient;
use crate::schema::PulumiType;
use crate::ssh::sftp::{hex, join};

/// Inline content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "storage:FileSourceRaw")]
pub struct FileSourceRaw {
    /// The file's content (text). Stays secret when given as a secret.
    pub data: String,
    /// The file name in the storage, e.g. `user-data.yaml`.
    #[pulumi(replace_on_changes)]
    pub file_name: String,
}

/// A local file to upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[pulumi(token = "storage:FileSourceFile")]
pub struct FileSourceFile {
    /// The local file's path (relative to the project directory, or absolute).
    pub path: String,
    /// The file name in the storage; default: the path's last component.
    #[pulumi(replace_on_changes)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The file's SHA-256 (hex). When given it is verified before the upload; when not,
    /// it is computed, so an edited file shows as a change that uploads it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// Inputs of `storage:File`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileArgs {
    /// The node whose storage receives the file.
    #[pulumi(replace_on_changes)]
    pub node_name: String,
    /// The storage, e.g. `local`; it must allow `contentType` (and be file based for snippets).
    #[pulumi(replace_on_changes)]
    pub datastore_id: String,
    /// `snippets`, `iso`, `vztmpl`, `import` or `backup`; default: from the file name
    /// (`.yaml`, `.yml`, `.json`, `.txt`, `.cfg`, `.sh` → snippets; `.iso`, `.img` → iso;
    /// `.tar.gz`, `.tar.xz`, `.tar.zst` → vztmpl; `.qcow2`, `.raw`, `.vmdk`, `.ova` → import).
    #[pulumi(replace_on_changes)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Inline content; exactly one of `sourceRaw` and `sourceFile` is required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_raw: Option<FileSourceRaw>,
    /// A local file; exactly one of `sourceRaw` and `sourceFile` is required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_file: Option<FileSourceFile>,
    /// Replace a file of the same name that is already in the storage (default true);
    /// false makes creating over an existing file an error.
    #[pulumi(default = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overwrite: Option<bool>,
    /// Seconds the upload may take, transfer and PVE's task together (default 1800).
    #[pulumi(default = "1800")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_upload: Option<u64>,
}

/// A file in a Proxmox VE storage.
#[derive(Debug, Clone, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct FileState {
    #[serde(flatten)]
    pub args: FileArgs,
    /// The volume id, `local:snippets/user-data.yaml`: what `cicustom`, `cdrom` or `importFrom` take.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_id: Option<String>,
    /// The file name in the storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The file's size in bytes, as the storage lists it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    /// When the file last changed in the storage (RFC 3339, UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_modification_date: Option<String>,
    /// SHA-256 (hex) of the content that was uploaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_sha256: Option<String>,
}

/// The `storage:File` resource.
pub struct File;

const CONTENT_TYPES: [&str; 5] = ["snippets", "iso", "vztmpl", "import", "backup"];
/// Snippets larger than this are compared by size only on refresh.
const READ_BACK_LIMIT: u64 = 16 << 20;
/// How long the storage may take to list a file after it was written.
const LISTING_WAIT: Duration = Duration::from_secs(60);

/// How a content type reaches the storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Written over SFTP into this sub-directory of the storage's path.
    Sftp(&'static str),
    /// `POST .../upload`.
    Upload,
}

fn route(content: &str) -> Route {
    match content {
        "snippets" => Route::Sftp("snippets"),
        "backup" => Route::Sftp("dump"),
        _ => Route::Upload,
    }
}

/// The content type a file name implies.
fn infer_content_type(name: &str) -> Option<&'static str> {
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
fn file_name_of(a: &FileArgs) -> Option<(String, &'static str)> {
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

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// SHA-256 of a local file, remembered per (path, size, mtime) for this process.
fn file_sha256(path: &Path) -> std::io::Result<String> {
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
fn check_args(mut a: FileArgs) -> Result<FileArgs, Vec<CheckFailure>> {
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

/// What every operation derives from checked inputs.
#[derive(Debug, Clone)]
struct Plan {
    content: String,
    file_name: String,
    volid: String,
    route: Route,
}

impl Plan {
    fn of(a: &FileArgs) -> Result<Plan, ResourceError> {
        let (file_name, _) = file_name_of(a)
            .ok_or_else(|| ResourceError::Failed("the inputs name no file: run `pulumi up` again".into()))?;
        let content = match &a.content_type {
            Some(c) => c.clone(),
            None => infer_content_type(&file_name).map(str::to_string).ok_or_else(|| {
                ResourceError::Failed(format!("cannot tell the content type of {file_name:?}: set `contentType`"))
            })?,
        };
        let volid = format!("{}:{content}/{file_name}", a.datastore_id);
        Ok(Plan { route: route(&content), content, file_name, volid })
    }
}

/// SHA-256 and size of the source, as known locally.
fn source_digest(a: &FileArgs) -> Result<(String, u64), ResourceError> {
    if let Some(raw) = &a.source_raw {
        return Ok((sha256_hex(raw.data.as_bytes()), raw.data.len() as u64));
    }
    let src = a.source_file.as_ref().ok_or_else(|| ResourceError::Failed("no source".into()))?;
    let io = |e: std::io::Error| ResourceError::Failed(format!("sourceFile.path {:?}: {e}", src.path));
    let size = std::fs::metadata(&src.path).map_err(io)?.len();
    let sum = match &src.checksum {
        Some(s) => s.to_ascii_lowercase(),
        None => file_sha256(Path::new(&src.path)).map_err(io)?,
    };
    Ok((sum, size))
}

fn id_of(node: &str, volid: &str) -> String {
    format!("{node}/{volid}")
}

/// `node/storage:content/file` → (node, storage, content, file).
fn parse_id(id: &str) -> Option<(String, String, String, String)> {
    let (node, volid) = id.split_once('/')?;
    let (storage, rest) = volid.split_once(':')?;
    let (content, file) = rest.split_once('/')?;
    if node.is_empty() || storage.is_empty() || file.is_empty() || file.contains('/') {
        return None;
    }
    Some((node.into(), storage.into(), content.into(), file.into()))
}

/// Seconds since the epoch as RFC 3339 UTC (`2026-01-31T12:00:00Z`).
fn rfc3339(secs: u64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
    Some(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// `812 B`, `3.4 KiB`, `1.2 MiB`, `4.0 GiB`.
fn size_text(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.1} MiB", b / 1_048_576.0),
        _ => format!("{:.1} GiB", b / 1_073_741_824.0),
    }
}

fn failed(e: impl std::fmt::Display) -> ResourceError {
    ResourceError::Failed(e.to_string())
}

/// The storage's definition, refusing what cannot take `content` with what to change.
async fn usable_storage(client: &PveClient, a: &FileArgs, plan: &Plan) -> Result<StorageInfo, ResourceError> {
    let info = storage::info(client, &a.datastore_id).await.map_err(pve::failed)?;
    if !info.content.contains(&plan.content) {
        let current = if info.content.is_empty() { String::new() } else { format!("{},", info.content.join(",")) };
        return Err(ResourceError::Failed(format!(
            "storage '{id}' does not allow content '{content}': enable it with `pvesm set {id} --content \
             {current}{content}` or in Datacenter → Storage → {id} → Content",
            id = a.datastore_id,
            content = plan.content
        )));
    }
    if matches!(plan.route, Route::Sftp(_)) && info.path.as_deref().is_none_or(str::is_empty) {
        return Err(ResourceError::Failed(format!(
            "storage '{}' (type {}) is not file based: it has no directory to put {} into; use a directory, \
             NFS or CIFS storage such as `local`",
            a.datastore_id, info.kind, plan.content
        )));
    }
    Ok(info)
}

/// What an upload did.
struct Uploaded {
    sha256: String,
    size: u64,
}

/// A temporary file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A status line at most once a second.
struct Throttle(Mutex<Option<Instant>>);

impl Throttle {
    fn new() -> Throttle {
        Throttle(Mutex::new(None))
    }

    fn due(&self) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

/// Puts the source into the storage as `plan.file_name` (replacing a file of that name).
async fn upload(
    ctx: &Context,
    client: &PveClient,
    a: &FileArgs,
    plan: &Plan,
    info: &StorageInfo,
) -> Result<Uploaded, ResourceError> {
    let (expected_sha, _) = source_digest(a)?;
    let timeout = Duration::from_secs(a.timeout_upload.unwrap_or(1800));
    match plan.route {
        Route::Sftp(subdir) => {
            let dir = join(info.path.as_deref().unwrap_or_default(), subdir);
            let why = format!(
                "storage:File uploads {} over SSH (Proxmox VE's upload API takes only iso, vztmpl and import)",
                plan.content
            );
            let session = node_ssh::connect(ctx, client, &a.node_name, &why).await?;
            let label = format!("uploading {} to {}:{dir} over SFTP", plan.file_name, a.node_name);
            let throttle = Throttle::new();
            let progress = |n: u64| {
                if throttle.due() {
                    ctx.status(&format!("{label}, {}", size_text(n)));
                }
            };
            let write = async {
                let sftp = session.sftp().await?;
                sftp.ensure_dir(&dir).await?;
                let written = match (&a.source_raw, &a.source_file) {
                    (Some(raw), _) => {
                        sftp.write_atomic(&dir, &plan.file_name, raw.data.as_bytes(), 0o644, None, &progress).await?
                    }
                    (None, Some(src)) => {
                        let file = tokio::fs::File::open(&src.path).await.map_err(|e| crate::ssh::SshError::Sftp {
                            op: "write",
                            path: src.path.clone(),
                            reason: format!("opening the local file: {e}"),
                        })?;
                        sftp.write_atomic(&dir, &plan.file_name, file, 0o644, Some(&expected_sha), &progress).await?
                    }
                    (None, None) => unreachable!("checked: one source is set"),
                };
                sftp.close();
                Ok::<_, crate::ssh::SshError>(written)
            };
            let written = match tokio::time::timeout(timeout, write).await {
                Err(_) => {
                    return Err(ResourceError::Failed(format!(
                        "{label}: not done after {}s (`timeoutUpload`)",
                        timeout.as_secs()
                    )))
                }
                Ok(r) => r.map_err(|e| {
                    let hint = if e.to_string().contains("Permission denied") {
                        format!(
                            " (the SSH user must be able to write {dir}: log in as root, as bpg's SFTP mode also \
                             requires, or give the user write access to that directory)"
                        )
                    } else {
                        String::new()
                    };
                    ResourceError::Failed(format!("{label}: {e}{hint}"))
                })?,
            };
            session.close().await;
            Ok(Uploaded { sha256: written.sha256, size: written.size })
        }
        Route::Upload => {
            let _spool;
            let path = match (&a.source_raw, &a.source_file) {
                (Some(raw), _) => {
                    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let p = std::env::temp_dir().join(format!("proxmox-talos-upload-{}-{n}", std::process::id()));
                    std::fs::write(&p, raw.data.as_bytes())
                        .map_err(|e| failed(format!("spooling sourceRaw.data to {}: {e}", p.display())))?;
                    _spool = TempFile(p.clone());
                    p
                }
                (None, Some(src)) => PathBuf::from(&src.path),
                (None, None) => unreachable!("checked: one source is set"),
            };
            let size = std::fs::metadata(&path).map_err(|e| failed(format!("{}: {e}", path.display())))?.len();
            let label =
                format!("uploading {} ({}) to {} on {}", plan.file_name, size_text(size), a.datastore_id, a.node_name);
            let started = Instant::now();
            let policy =
                RetryPolicy { attempts: 3, first_delay: Duration::from_secs(1), max_delay: Duration::from_secs(5) };
            let send = retry(policy, pve::on_retry(ctx, &label), |_| {
                storage::upload(
                    client,
                    &a.node_name,
                    &a.datastore_id,
                    &plan.content,
                    &path,
                    &plan.file_name,
                    Some(("sha256", expected_sha.as_str())),
                )
            });
            tokio::pin!(send);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            let upid = loop {
                tokio::select! {
                    r = &mut send => break r.map_err(|e| failed(format!("{label}: {e}")))?,
                    _ = tick.tick() => ctx.status(&format!("{label}, {}s", started.elapsed().as_secs())),
                    _ = &mut deadline => {
                        return Err(ResourceError::Failed(format!(
                            "{label}: not done after {}s (`timeoutUpload`)",
                            timeout.as_secs()
                        )))
                    }
                }
            };
            let left = timeout.saturating_sub(started.elapsed()).max(Duration::from_secs(30));
            pve::wait(ctx, client, &upid, left, &label).await.map_err(|e| failed(format!("{label}: {e}")))?;
            Ok(Uploaded { sha256: expected_sha.clone(), size })
        }
    }
}

/// Polls the content list until it shows `plan.volid` with `size` bytes.
async fn await_listed(
    ctx: &Context,
    client: &PveClient,
    a: &FileArgs,
    plan: &Plan,
    size: u64,
) -> Result<ContentItem, ResourceError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(50);
    let mut last = None;
    loop {
        match storage::find_volume(client, &a.node_name, &a.datastore_id, &plan.content, &plan.volid).await {
            Ok(Some(item)) if item.size == size => return Ok(item),
            Ok(other) => last = other,
            Err(e) if e.is_transient() => {}
            Err(e) => {
                return Err(ResourceError::Uncertain(format!("{} was written, but listing it failed: {e}", plan.volid)))
            }
        }
        if started.elapsed() > LISTING_WAIT {
            return Err(ResourceError::Uncertain(match last {
                Some(item) => format!(
                    "{} was written ({size} bytes) but the storage lists it with {} bytes after {}s",
                    plan.volid,
                    item.size,
                    LISTING_WAIT.as_secs()
                ),
                None => format!(
                    "{} was written but the storage did not list it within {}s",
                    plan.volid,
                    LISTING_WAIT.as_secs()
                ),
            }));
        }
        if started.elapsed() > Duration::from_secs(1) {
            ctx.status(&format!("waiting for {} to be listed, {}s", plan.volid, started.elapsed().as_secs()));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

fn state_of(args: FileArgs, plan: &Plan, item: &ContentItem, sha256: Option<String>) -> FileState {
    FileState {
        args,
        volume_id: Some(plan.volid.clone()),
        file_name: Some(plan.file_name.clone()),
        file_size: Some(item.size),
        file_modification_date: item.ctime.and_then(rfc3339),
        content_sha256: sha256,
    }
}

/// The state preview can tell: everything but what the storage reports.
fn predicted(args: FileArgs, old: Option<&FileState>) -> Result<FileState, ResourceError> {
    let plan = Plan::of(&args)?;
    let (sha, size) = source_digest(&args)?;
    let unchanged = old.is_some_and(|o| o.content_sha256.as_deref() == Some(sha.as_str()));
    Ok(FileState {
        args,
        volume_id: Some(plan.volid.clone()),
        file_name: Some(plan.file_name.clone()),
        file_size: if unchanged { old.and_then(|o| o.file_size) } else { Some(size) },
        file_modification_date: if unchanged { old.and_then(|o| o.file_modification_date.clone()) } else { None },
        content_sha256: Some(sha),
    })
}

impl CustomResource for File {
    const TOKEN: &'static str = "proxmox-talos:storage:File";
    type Args = FileArgs;
    type State = FileState;

    fn check(&self, _ctx: &Context, req: CheckRequest<'_, FileArgs>) -> Result<FileArgs, Vec<CheckFailure>> {
        check_args(req.inputs)
    }

    async fn create(
        &self,
        ctx: &Context,
        req: CreateRequest<FileArgs>,
    ) -> Result<CreateResponse<FileState>, ResourceError> {
        let a = req.inputs;
        if req.preview {
            return Ok(CreateResponse { id: String::new(), state: predicted(a, None)? });
        }
        let plan = Plan::of(&a)?;
        let client = pve::client(ctx)?;
        let info = usable_storage(&client, &a, &plan).await?;
        let existing = storage::find_volume(&client, &a.node_name, &a.datastore_id, &plan.content, &plan.volid)
            .await
            .map_err(pve::failed)?;
        if existing.is_some() && a.overwrite == Some(false) {
            return Err(ResourceError::Failed(format!(
                "{} already exists on node {}: set `overwrite: true` (the default) to replace it, or `pulumi \
                 import` it (id {})",
                plan.volid,
                a.node_name,
                id_of(&a.node_name, &plan.volid)
            )));
        }
        let uploaded = upload(ctx, &client, &a, &plan, &info).await?;
        let item = await_listed(ctx, &client, &a, &plan, uploaded.size).await?;
        let id = id_of(&a.node_name, &plan.volid);
        Ok(CreateResponse { id, state: state_of(a, &plan, &item, Some(uploaded.sha256)) })
    }

    async fn read(
        &self,
        ctx: &Context,
        req: ReadRequest<FileArgs, FileState>,
    ) -> Result<Option<ReadResponse<FileArgs, FileState>>, ResourceError> {
        let (node, storage_id, content, file) = parse_id(&req.id).ok_or_else(|| {
            ResourceError::Failed(format!(
                "{:?} is not a storage:File id; expected node/storage:content/file, e.g. \
                 pve/local:snippets/user-data.yaml",
                req.id
            ))
        })?;
        let client = pve::client(ctx)?;
        let volid = format!("{storage_id}:{content}/{file}");
        let found = match storage::find_volume(&client, &node, &storage_id, &content, &volid).await {
            Ok(found) => found,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(pve::failed(e)),
        };
        let Some(item) = found else { return Ok(None) };
        let old = req.state;
        let mut sha = old.as_ref().and_then(|s| s.content_sha256.clone());
        let mut inputs = req.inputs;
        // Snippets are read back: the content itself is compared.
        let content_back = if content == "snippets" && item.size <= READ_BACK_LIMIT {
            let info = storage::info(&client, &storage_id).await.map_err(pve::failed)?;
            let dir = join(info.path.as_deref().unwrap_or("/var/lib/vz"), "snippets");
            let why = "storage:File reads snippets back over SSH to find changes made on the node";
            let session = node_ssh::connect(ctx, &client, &node, why).await?;
            let read = async {
                let sftp = session.sftp().await?;
                let data = sftp.read(&join(&dir, &file), READ_BACK_LIMIT).await;
                sftp.close();
                data
            };
            let data = read.await;
            session.close().await;
            match data {
                Ok(d) => Some(d),
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(ResourceError::Failed(format!("node {node}: {e}"))),
            }
        } else {
            None
        };
        match (&mut inputs, &content_back) {
            (Some(i), Some(data)) => {
                let actual = sha256_hex(data);
                if sha.as_deref() != Some(actual.as_str()) {
                    ctx.log(
                        Severity::Warning,
                        &format!(
                            "{volid} on node {node} differs from what was uploaded: the next update writes it again"
                        ),
                    );
                    if let Some(raw) = &mut i.source_raw {
                        raw.data = String::from_utf8_lossy(data).into_owned();
                    } else if let Some(src) = &mut i.source_file {
                        src.checksum = Some(actual.clone());
                    }
                }
                sha = Some(actual);
            }
            (Some(i), None) => {
                let recorded = old.as_ref().and_then(|s| s.file_size);
                if recorded.is_some_and(|r| r != item.size) {
                    ctx.log(
                        Severity::Warning,
                        &format!(
                            "{volid} on node {node} has {} bytes, not the {} uploaded: the next update uploads it again",
                            item.size,
                            recorded.unwrap_or_default()
                        ),
                    );
                    sha = None;
                    // Make the program's source differ from the recorded inputs, so preview shows the drift.
                    if let Some(src) = &mut i.source_file {
                        src.checksum = None;
                    } else if let Some(raw) = &mut i.source_raw {
                        raw.data = String::new();
                    }
                }
            }
            (None, data) => {
                // Import: inputs that reproduce the file.
                let source_raw = match data {
                    Some(d) => Some(FileSourceRaw {
                        data: String::from_utf8(d.clone()).map_err(|_| {
                            ResourceError::Failed(format!(
                                "{volid} is not UTF-8 text, so it cannot be imported as `sourceRaw.data`"
                            ))
                        })?,
                        file_name: file.clone(),
                    }),
                    None => None,
                };
                sha = data.as_ref().map(|d| sha256_hex(d));
                // PVE does not record where an uploaded file came from: a placeholder path the
                // program's own `sourceFile` replaces (the next update uploads it again).
                let source_file = source_raw.is_none().then(|| FileSourceFile {
                    path: file.clone(),
                    file_name: Some(file.clone()),
                    checksum: None,
                });
                inputs = Some(FileArgs {
                    node_name: node.clone(),
                    datastore_id: storage_id.clone(),
                    content_type: Some(content.clone()),
                    source_raw,
                    source_file,
                    overwrite: None,
                    timeout_upload: None,
                });
            }
        }
        let inputs = inputs.unwrap_or_else(|| unreachable!("set above"));
        let state = FileState {
            args: inputs.clone(),
            volume_id: Some(volid.clone()),
            file_name: Some(file.clone()),
            file_size: Some(item.size),
            file_modification_date: item.ctime.and_then(rfc3339),
            content_sha256: sha,
        };
        Ok(Some(ReadResponse { id: id_of(&node, &volid), inputs, state }))
    }

    async fn update(&self, ctx: &Context, req: UpdateRequest<FileArgs, FileState>) -> Result<FileState, ResourceError> {
        let a = req.inputs;
        if req.preview {
            return predicted(a, Some(&req.old_state));
        }
        let plan = Plan::of(&a)?;
        let (sha, _) = source_digest(&a)?;
        let old = req.old_state;
        if old.content_sha256.as_deref() == Some(sha.as_str()) && old.file_size.is_some() {
            // Only settings changed (or a checksum that was filled in): nothing to upload.
            return Ok(FileState { args: a, ..old });
        }
        let client = pve::client(ctx)?;
        let info = usable_storage(&client, &a, &plan).await?;
        let uploaded = upload(ctx, &client, &a, &plan, &info).await?;
        let item = await_listed(ctx, &client, &a, &plan, uploaded.size).await?;
        Ok(state_of(a, &plan, &item, Some(uploaded.sha256)))
    }

    async fn delete(&self, ctx: &Context, req: DeleteRequest<FileState>) -> Result<(), ResourceError> {
        let Some((node, storage_id, content, file)) = parse_id(&req.id) else { return Ok(()) };
        let client = pve::client(ctx)?;
        let volume = format!("{storage_id}:{content}/{file}");
        let label = format!("deleting {volume}");
        let deleted = retry(pve::retry_policy(), pve::on_retry(ctx, &label), |_| {
            storage::delete_volume(&client, &node, &storage_id, &volume)
        })
        .await;
        match deleted {
            Ok(Some(upid)) => match pve::wait(ctx, &client, &upid, Duration::from_secs(300), &label).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(pve::failed(e)),
            },
            Ok(None) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(pve::failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(name: &str) -> FileArgs {
        FileArgs {
            node_name: "pve".into(),
            datastore_id: "local".into(),
            content_type: None,
            source_raw: Some(FileSourceRaw { data: "#cloud-config\n".into(), file_name: name.into() }),
            source_file: None,
            overwrite: None,
            timeout_upload: None,
        }
    }

    fn from_file(path: &Path) -> FileArgs {
        FileArgs {
            source_raw: None,
            source_file: Some(FileSourceFile { path: path.display().to_string(), file_name: None, checksum: None }),
            ..raw("x")
        }
    }

    fn paths(r: Result<FileArgs, Vec<CheckFailure>>) -> Vec<String> {
        r.err().unwrap_or_default().into_iter().map(|f| f.property).collect()
    }

    #[test]
    fn content_types_are_inferred_from_file_names() {
        for (name, want) in [
            ("user-data.yaml", Some("snippets")),
            ("net.YML", Some("snippets")),
            ("meta.json", Some("snippets")),
            ("hook.sh", Some("snippets")),
            ("x.cfg", Some("snippets")),
            ("notes.txt", Some("snippets")),
            ("talos.iso", Some("iso")),
            ("noble.img", Some("iso")),
            ("debian.tar.zst", Some("vztmpl")),
            ("alpine.tar.xz", Some("vztmpl")),
            ("ct.tar.gz", Some("vztmpl")),
            ("disk.qcow2", Some("import")),
            ("disk.raw", Some("import")),
            ("disk.vmdk", Some("import")),
            ("vm.ova", Some("import")),
            ("blob.bin", None),
            (".yaml", None),
        ] {
            assert_eq!(infer_content_type(name), want, "{name}");
        }
        let checked = check_args(raw("user-data.yaml")).unwrap();
        assert_eq!(checked.content_type.as_deref(), Some("snippets"));
        let plan = Plan::of(&checked).unwrap();
        assert_eq!((plan.volid.as_str(), plan.route), ("local:snippets/user-data.yaml", Route::Sftp("snippets")));
        let iso = Plan::of(&FileArgs { content_type: Some("iso".into()), ..raw("a.iso") }).unwrap();
        assert_eq!(iso.route, Route::Upload);
        assert_eq!(route("backup"), Route::Sftp("dump"));
    }

    #[test]
    fn bad_inputs_name_their_property() {
        let both = FileArgs {
            source_file: Some(FileSourceFile { path: "/etc/hostname".into(), file_name: None, checksum: None }),
            ..raw("a.yaml")
        };
        assert_eq!(paths(check_args(both)), ["sourceFile"]);
        assert_eq!(paths(check_args(FileArgs { source_raw: None, ..raw("a.yaml") })), ["sourceRaw"]);
        assert_eq!(paths(check_args(raw(""))), ["sourceRaw.fileName"]);
        assert_eq!(paths(check_args(raw("a/b.yaml"))), ["sourceRaw.fileName"]);
        assert_eq!(paths(check_args(raw(".hidden.yaml"))), ["sourceRaw.fileName"]);
        let unknown = check_args(raw("blob.bin")).unwrap_err();
        assert_eq!(unknown[0].property, "contentType");
        assert!(unknown[0].reason.contains("set `contentType`") && unknown[0].reason.contains("snippets"));
        assert!(check_args(FileArgs { content_type: Some("snippets".into()), ..raw("blob.bin") }).is_ok());
        assert_eq!(
            paths(check_args(FileArgs { content_type: Some("images".into()), ..raw("a.yaml") })),
            ["contentType"]
        );
        let iso_name = check_args(FileArgs { content_type: Some("iso".into()), ..raw("a.yaml") }).unwrap_err();
        assert_eq!(iso_name[0].property, "sourceRaw.fileName");
        assert!(iso_name[0].reason.contains(".iso or .img"), "{}", iso_name[0].reason);
        assert_eq!(
            paths(check_args(FileArgs { content_type: Some("import".into()), ..raw("a.QCOW2") })),
            ["sourceRaw.fileName"]
        );
        assert!(check_args(FileArgs { content_type: Some("backup".into()), ..raw("vzdump-qemu-100.vma.zst") }).is_ok());
        assert_eq!(paths(check_args(FileArgs { timeout_upload: Some(0), ..raw("a.yaml") })), ["timeoutUpload"]);
        assert_eq!(paths(check_args(FileArgs { node_name: " ".into(), ..raw("a.yaml") })), ["nodeName"]);
        let missing = check_args(from_file(Path::new("/nonexistent/dir/talos.iso"))).unwrap_err();
        assert_eq!(missing[0].property, "sourceFile.path");
        assert!(missing[0].reason.contains("cannot be read"), "{}", missing[0].reason);
        assert_eq!(paths(check_args(from_file(Path::new("/")))), ["sourceFile.path", "sourceFile.fileName"]);
    }

    #[test]
    fn source_files_get_a_name_and_a_verified_checksum() {
        let dir = std::env::temp_dir().join(format!("pt-storage-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("talos.iso");
        std::fs::write(&path, b"hello").unwrap();
        let sum = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

        let checked = check_args(from_file(&path)).unwrap();
        let src = checked.source_file.as_ref().unwrap();
        assert_eq!((src.file_name.as_deref(), src.checksum.as_deref()), (Some("talos.iso"), Some(sum)));
        assert_eq!(checked.content_type.as_deref(), Some("iso"));
        assert_eq!(source_digest(&checked).unwrap(), (sum.to_string(), 5));

        let mut given = from_file(&path);
        given.source_file.as_mut().unwrap().checksum = Some(sum.to_uppercase());
        assert_eq!(check_args(given).unwrap().source_file.unwrap().checksum.as_deref(), Some(sum));
        let mut wrong = from_file(&path);
        wrong.source_file.as_mut().unwrap().checksum = Some("0".repeat(64));
        let e = check_args(wrong).unwrap_err();
        assert_eq!(e[0].property, "sourceFile.checksum");
        assert!(e[0].reason.contains(sum), "{}", e[0].reason);
        let mut not_hex = from_file(&path);
        not_hex.source_file.as_mut().unwrap().checksum = Some("xyz".into());
        assert_eq!(paths(check_args(not_hex)), ["sourceFile.checksum"]);

        // An edited file gets a new checksum: the diff shows it.
        std::thread::sleep(Duration::from_millis(10));
        std::fs::write(&path, b"hello, world").unwrap();
        let again = check_args(from_file(&path)).unwrap();
        assert_ne!(again.source_file.unwrap().checksum.as_deref(), Some(sum));
        let mut renamed = from_file(&path);
        renamed.source_file.as_mut().unwrap().file_name = Some("other.bin".into());
        assert_eq!(paths(check_args(renamed)), ["contentType"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ids_dates_and_predictions() {
        assert_eq!(
            parse_id("pve/local:snippets/user-data.yaml"),
            Some(("pve".into(), "local".into(), "snippets".into(), "user-data.yaml".into()))
        );
        assert_eq!(parse_id("pve/local:snippets/a/b.yaml"), None);
        assert_eq!(parse_id("nonsense"), None);
        assert_eq!(id_of("pve", "local:iso/talos.iso"), "pve/local:iso/talos.iso");
        assert_eq!(rfc3339(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(rfc3339(1_767_225_600).as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(
            (size_text(812), size_text(3500), size_text(3 << 20)),
            ("812 B".into(), "3.4 KiB".into(), "3.0 MiB".into())
        );

        let checked = check_args(raw("user-data.yaml")).unwrap();
        let p = predicted(checked.clone(), None).unwrap();
        assert_eq!(p.volume_id.as_deref(), Some("local:snippets/user-data.yaml"));
        assert_eq!(p.content_sha256, Some(sha256_hex(b"#cloud-config\n")));
        assert_eq!((p.file_size, p.file_modification_date.as_deref()), (Some(14), None));
        let old = FileState { file_modification_date: Some("2026-01-01T00:00:00Z".into()), ..p.clone() };
        let same = predicted(checked, Some(&old)).unwrap();
        assert_eq!(same.file_modification_date, old.file_modification_date);
    }
}
