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
//!
//! This module owns the types and the operations; Check's rules are in
//! `check.rs`, the transfer into the storage in `upload.rs`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::framework::{
    CheckFailure, CheckRequest, Context, CreateRequest, CreateResponse, CustomResource, DeleteRequest, ReadRequest,
    ReadResponse, ResourceError, Severity, UpdateRequest,
};
use crate::proxmox::storage::{self, ContentItem};
use crate::proxmox::version::Feature;
use crate::resources::{node_ssh, pve_resource};
use crate::schema::PulumiType;
use crate::ssh::sftp::join;

mod check;
mod upload;

use check::{check_args, file_name_of, file_sha256, infer_content_type, sha256_hex};
use upload::{await_listed, upload, usable_storage};

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
    #[pulumi(always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_id: Option<String>,
    /// The file name in the storage.
    #[pulumi(always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The file's size in bytes, as the storage lists it.
    #[pulumi(always)]
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

/// Snippets larger than this are compared by size only on refresh.
const READ_BACK_LIMIT: u64 = 16 << 20;

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

/// The volume a `storage:File` id names: `node/storage:content/file`, the file a plain name.
fn parse_id(id: &str) -> Option<pve_resource::NodeVolume> {
    pve_resource::parse_node_volume_id(id)
        .filter(|v| !v.node.is_empty() && !v.storage.is_empty() && !v.file.is_empty() && !v.file.contains('/'))
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
        let client = pve_resource::client(ctx)?;
        if plan.content == "import" {
            client.require(Feature::ImportContent).await.map_err(pve_resource::failed)?;
        }
        let info = usable_storage(&client, &a, &plan).await?;
        let existing = storage::find_volume(&client, &a.node_name, &a.datastore_id, &plan.content, &plan.volid)
            .await
            .map_err(pve_resource::failed)?;
        if existing.is_some() && a.overwrite == Some(false) {
            return Err(ResourceError::Failed(format!(
                "{} already exists on node {}: set `overwrite: true` (the default) to replace it, or `pulumi \
                 import` it (id {})",
                plan.volid,
                a.node_name,
                pve_resource::node_volume_id(&a.node_name, &plan.volid)
            )));
        }
        let uploaded = upload(ctx, &client, &a, &plan, &info).await?;
        let item = await_listed(ctx, &client, &a, &plan, uploaded.size).await?;
        let id = pve_resource::node_volume_id(&a.node_name, &plan.volid);
        Ok(CreateResponse { id, state: state_of(a, &plan, &item, Some(uploaded.sha256)) })
    }

    async fn read(
        &self,
        ctx: &Context,
        req: ReadRequest<FileArgs, FileState>,
    ) -> Result<Option<ReadResponse<FileArgs, FileState>>, ResourceError> {
        let named = parse_id(&req.id).ok_or_else(|| {
            ResourceError::Failed(format!(
                "{:?} is not a storage:File id; expected node/storage:content/file, e.g. \
                 pve/local:snippets/user-data.yaml",
                req.id
            ))
        })?;
        let pve_resource::NodeVolume { node, storage: storage_id, content, file } = named;
        let client = pve_resource::client(ctx)?;
        let volid = format!("{storage_id}:{content}/{file}");
        let found = match storage::find_volume(&client, &node, &storage_id, &content, &volid).await {
            Ok(found) => found,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(pve_resource::failed(e)),
        };
        let Some(item) = found else { return Ok(None) };
        let old = req.state;
        let mut sha = old.as_ref().and_then(|s| s.content_sha256.clone());
        let mut inputs = req.inputs;
        // Snippets are read back: the content itself is compared.
        let content_back = if content == "snippets" && item.size <= READ_BACK_LIMIT {
            let info = storage::info(&client, &storage_id).await.map_err(pve_resource::failed)?;
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
        Ok(Some(ReadResponse { id: pve_resource::node_volume_id(&node, &volid), inputs, state }))
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
        let client = pve_resource::client(ctx)?;
        let info = usable_storage(&client, &a, &plan).await?;
        let uploaded = upload(ctx, &client, &a, &plan, &info).await?;
        let item = await_listed(ctx, &client, &a, &plan, uploaded.size).await?;
        Ok(state_of(a, &plan, &item, Some(uploaded.sha256)))
    }

    async fn delete(&self, ctx: &Context, req: DeleteRequest<FileState>) -> Result<(), ResourceError> {
        let Some(volume) = parse_id(&req.id) else { return Ok(()) };
        let client = pve_resource::client(ctx)?;
        pve_resource::delete_volume(ctx, &client, &volume.node, &volume.storage, &volume.volid()).await
    }
}

#[cfg(test)]
mod tests;
