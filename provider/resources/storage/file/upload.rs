//! How `storage:File` puts a file into a storage: the storage's fitness for
//! the content type, snippets and backups written over SFTP, other content
//! streamed through PVE's upload API (inline data spooled to a temporary file
//! first) with its task awaited, progress on the status line, then the wait
//! until the storage lists the file with its size.
//!
//! Must not: decide whether to upload or validate inputs (the resource in
//! `file` and Check do), nor record state.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{source_digest, FileArgs, Plan, Route};
use crate::framework::{Context, ResourceError};
use crate::proxmox::retry::{retry, RetryPolicy};
use crate::proxmox::storage::{self, ContentItem, StorageInfo};
use crate::proxmox::PveClient;
use crate::resources::{node_ssh, pve_resource};
use crate::ssh::sftp::join;

/// How long the storage may take to list a file after it was written.
const LISTING_WAIT: Duration = Duration::from_secs(60);

/// `812 B`, `3.4 KiB`, `1.2 MiB`, `4.0 GiB`.
pub(super) fn size_text(bytes: u64) -> String {
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
pub(super) async fn usable_storage(
    client: &PveClient,
    a: &FileArgs,
    plan: &Plan,
) -> Result<StorageInfo, ResourceError> {
    let info = storage::info(client, &a.datastore_id).await.map_err(pve_resource::failed)?;
    // A block storage cannot take a file at all: enabling the content type would not help.
    if matches!(plan.route, Route::Sftp(_)) && info.path.as_deref().is_none_or(str::is_empty) {
        return Err(ResourceError::Failed(format!(
            "storage '{}' (type {}) is not file based: it has no directory to put {} into; use a directory, \
             NFS or CIFS storage such as `local`",
            a.datastore_id, info.kind, plan.content
        )));
    }
    if !info.content.contains(&plan.content) {
        let current = if info.content.is_empty() { String::new() } else { format!("{},", info.content.join(",")) };
        return Err(ResourceError::Failed(format!(
            "storage '{id}' does not allow content '{content}': enable it with `pvesm set {id} --content \
             {current}{content}` or in Datacenter → Storage → {id} → Content",
            id = a.datastore_id,
            content = plan.content
        )));
    }
    Ok(info)
}

/// What an upload did.
pub(super) struct Uploaded {
    pub(super) sha256: String,
    pub(super) size: u64,
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
pub(super) async fn upload(
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
            let send = retry(policy, pve_resource::on_retry(ctx, &label), |_| {
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
            pve_resource::wait(ctx, client, &upid, left, &label).await.map_err(|e| failed(format!("{label}: {e}")))?;
            Ok(Uploaded { sha256: expected_sha.clone(), size })
        }
    }
}

/// Polls the content list until it shows `plan.volid` with `size` bytes.
pub(super) async fn await_listed(
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
