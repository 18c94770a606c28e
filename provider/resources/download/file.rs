//! `download:File`: a file Proxmox VE downloads itself into a storage
//! (`POST /nodes/{node}/storage/{storage}/download-url`): ISOs, `import`
//! disk images for `disks[].importFrom`, container templates.
//!
//! Check refuses what PVE would refuse later (xz, which PVE cannot
//! decompress; decompression outside `iso`; checksums without an algorithm;
//! non-http URLs). Create resolves the file name (given, else the URL's
//! metadata, else its last path segment), refuses to clobber a file it does
//! not manage unless `overwriteUnmanaged`, starts the download with retries
//! on transient failures, and shows progress while the task runs. Every
//! input but `overwrite`, `overwriteUnmanaged` and `uploadTimeout` replaces,
//! deleting the old file first when the new one has the same volume id (an
//! imported file too: PVE does not record its URL, so the program's `url`
//! replaces the import's placeholder). If the wait for the download fails but
//! the file is there, it is recorded (partial state).
//! The id is `node/volid` (`pve/local:iso/talos.iso`), which is also what
//! `pulumi import` takes.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::super::pve_resource;
use crate::framework::{
    CheckFailure, CheckRequest, Context, CreateRequest, CreateResponse, CustomResource, DeleteRequest, ReadRequest,
    ReadResponse, ResourceError, Severity, UpdateRequest,
};
use crate::proxmox::retry::retry;
use crate::proxmox::storage;
use crate::proxmox::version::Feature;
use crate::schema::PulumiType;

/// Inputs of `download:File`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileArgs {
    /// The node that downloads the file (and whose storage receives it, for non-shared storages).
    #[pulumi(replace_on_changes)]
    pub node_name: String,
    /// The storage, e.g. `local`; it must allow `contentType`.
    #[pulumi(replace_on_changes)]
    pub datastore_id: String,
    /// `iso` (also raw `.img` images), `import` (disk images for `disks[].importFrom`; PVE 8.4+) or `vztmpl`.
    #[pulumi(replace_on_changes)]
    pub content_type: String,
    /// The URL PVE downloads from (`http://` or `https://`).
    #[pulumi(replace_on_changes)]
    pub url: String,
    /// The file name in the storage; default: the name the server gives, else the URL's last path segment.
    /// With `decompressionAlgorithm` this is the decompressed file's name.
    #[pulumi(replace_on_changes)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The expected checksum of the downloaded file; PVE verifies it.
    #[pulumi(replace_on_changes)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// `md5`, `sha1`, `sha224`, `sha256`, `sha384` or `sha512`; required with `checksum`.
    #[pulumi(replace_on_changes)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<String>,
    /// `gz`, `lzo`, `zst` or `bz2` (what PVE can decompress; not `xz`). Only for `iso` content.
    #[pulumi(replace_on_changes)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decompression_algorithm: Option<String>,
    /// Whether PVE verifies the URL's TLS certificate (default true).
    #[pulumi(replace_on_changes, default = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<bool>,
    /// Replace the file when it changed in the storage (default true).
    #[pulumi(default = "true")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overwrite: Option<bool>,
    /// Delete a file of the same name this program does not manage, then download (default false).
    #[pulumi(default = "false")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overwrite_unmanaged: Option<bool>,
    /// Seconds the whole download may take (default 600).
    #[pulumi(default = "600")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload_timeout: Option<u64>,
}

/// A downloaded file.
#[derive(Debug, Clone, Serialize, Deserialize, PulumiType)]
#[serde(rename_all = "camelCase")]
pub struct FileState {
    #[serde(flatten)]
    pub args: FileArgs,
    /// The volume id, `local:iso/talos.iso`: what `disks[].importFrom`, `cdrom` or `fileId` take.
    #[pulumi(always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_id: Option<String>,
    /// The file's size in bytes.
    #[pulumi(always)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// The `download:File` resource.
pub struct File;

const CONTENT_TYPES: [&str; 3] = ["iso", "import", "vztmpl"];
const DECOMPRESSION: [&str; 4] = ["gz", "lzo", "zst", "bz2"];
const CHECKSUMS: [&str; 6] = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"];

/// The URL's path, without query or fragment.
fn url_path(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

fn check_args(a: &FileArgs) -> Vec<CheckFailure> {
    let mut f = Vec::new();
    if a.node_name.trim().is_empty() {
        f.push(CheckFailure::new("nodeName", "a node name is required, e.g. \"pve\""));
    }
    if a.datastore_id.trim().is_empty() {
        f.push(CheckFailure::new("datastoreId", "a storage id is required, e.g. \"local\""));
    }
    if !CONTENT_TYPES.contains(&a.content_type.as_str()) {
        f.push(CheckFailure::new("contentType", format!("{:?} is not one of iso, import, vztmpl", a.content_type)));
    }
    if !(a.url.starts_with("http://") || a.url.starts_with("https://")) {
        f.push(CheckFailure::new("url", format!("{:?} is not an http:// or https:// URL", a.url)));
    } else if url_path(&a.url).ends_with(".xz") {
        f.push(CheckFailure::new(
            "url",
            format!(
                "{:?} is xz-compressed, which Proxmox VE cannot decompress (it supports gz, lzo, zst and bz2): \
                 download a `.qcow2` or uncompressed `.raw` image for `import` (imagefactory.getUrls gives \
                 `urls.diskImageQcow2` and `urls.diskImageRaw`), or a `.zst` one with \
                 `decompressionAlgorithm: zst` for `iso` (`urls.diskImageRawZst`)",
                a.url
            ),
        ));
    }
    if let Some(d) = &a.decompression_algorithm {
        if d == "xz" {
            f.push(CheckFailure::new(
                "decompressionAlgorithm",
                "Proxmox VE cannot decompress xz (it supports gz, lzo, zst and bz2): download an uncompressed or \
                 .zst image instead (the Talos Image Factory serves raw.zst and qcow2)",
            ));
        } else if !DECOMPRESSION.contains(&d.as_str()) {
            f.push(CheckFailure::new("decompressionAlgorithm", format!("{d:?} is not one of gz, lzo, zst, bz2")));
        } else if a.content_type != "iso" {
            f.push(CheckFailure::new(
                "decompressionAlgorithm",
                format!(
                    "Proxmox VE decompresses only `iso` content, not {:?}; download uncompressed for `import`",
                    a.content_type
                ),
            ));
        }
    }
    match (&a.checksum, &a.checksum_algorithm) {
        (Some(_), None) => f.push(CheckFailure::new("checksumAlgorithm", "required with `checksum`, e.g. \"sha256\"")),
        (None, Some(_)) => f.push(CheckFailure::new("checksum", "required with `checksumAlgorithm`")),
        (Some(sum), Some(alg)) => {
            if !CHECKSUMS.contains(&alg.as_str()) {
                f.push(CheckFailure::new(
                    "checksumAlgorithm",
                    format!("{alg:?} is not one of {}", CHECKSUMS.join(", ")),
                ));
            } else if !sum.chars().all(|c| c.is_ascii_hexdigit()) {
                f.push(CheckFailure::new("checksum", "a hexadecimal digest is expected"));
            }
        }
        (None, None) => {}
    }
    if let Some(name) = &a.file_name {
        if name.is_empty() || name.contains('/') {
            f.push(CheckFailure::new("fileName", format!("{name:?} is not a plain file name")));
        }
    }
    f
}

fn volid(a: &FileArgs, file_name: &str) -> String {
    format!("{}:{}/{file_name}", a.datastore_id, a.content_type)
}

/// The URL's last path segment, without a query.
fn url_file_name(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next()?;
    let name = path.rsplit('/').next()?;
    (!name.is_empty() && !name.contains(':')).then(|| name.to_string())
}

impl CustomResource for File {
    const TOKEN: &'static str = "proxmox-talos:download:File";
    type Args = FileArgs;
    type State = FileState;

    fn delete_before_replace(&self, old: &FileArgs, new: &FileArgs) -> bool {
        // The same volume id: the new download would find the old file in its way.
        let name = |a: &FileArgs| a.file_name.clone().or_else(|| url_file_name(&a.url));
        (&old.node_name, &old.datastore_id, &old.content_type, name(old))
            == (&new.node_name, &new.datastore_id, &new.content_type, name(new))
    }

    fn check(&self, _ctx: &Context, req: CheckRequest<'_, FileArgs>) -> Result<FileArgs, Vec<CheckFailure>> {
        let failures = check_args(&req.inputs);
        if failures.is_empty() {
            Ok(req.inputs)
        } else {
            Err(failures)
        }
    }

    async fn create(
        &self,
        ctx: &Context,
        req: CreateRequest<FileArgs>,
    ) -> Result<CreateResponse<FileState>, ResourceError> {
        let a = req.inputs;
        if req.preview {
            let volume_id = a.file_name.as_deref().map(|f| volid(&a, f));
            return Ok(CreateResponse { id: String::new(), state: FileState { args: a, volume_id, size: None } });
        }
        let client = pve_resource::client(ctx)?;
        if a.content_type == "import" {
            client.require(Feature::ImportContent).await.map_err(pve_resource::failed)?;
        }
        let verify = a.verify.unwrap_or(true);
        let file_name = match &a.file_name {
            Some(f) => f.clone(),
            None => {
                let meta = storage::url_metadata(&client, &a.node_name, &a.url, verify).await.ok();
                meta.and_then(|m| m.filename).or_else(|| url_file_name(&a.url)).ok_or_else(|| {
                    ResourceError::Failed(format!("cannot tell a file name from {:?}: set `fileName`", a.url))
                })?
            }
        };
        let volume = volid(&a, &file_name);
        let existing = storage::find_volume(&client, &a.node_name, &a.datastore_id, &a.content_type, &volume)
            .await
            .map_err(pve_resource::failed)?;
        let journal_dir = crate::resources::vm::journal::dir();
        let (endpoint, urn) = (client.endpoint().to_string(), ctx.urn().to_string());
        // This resource's own earlier create, interrupted (the journal says it started a
        // download of this very volume): not someone else's file.
        let interrupted = journal_dir
            .as_deref()
            .and_then(|d| super::journal::find(d, &endpoint, &urn))
            .is_some_and(|e| e.node == a.node_name && e.volume == volume);
        // With a checksum, an existing file is the declared one by identity: PVE's download-url
        // checks it and keeps it ("got correct file already"), or refuses a different one.
        let verified_by_pve = a.checksum.is_some() && a.checksum_algorithm.is_some();
        if existing.is_some() && verified_by_pve {
            ctx.log(
                Severity::Info,
                &format!("{volume} exists: Proxmox VE keeps it if its checksum is the declared one"),
            );
        } else if existing.is_some() {
            if interrupted {
                ctx.log(
                    Severity::Warning,
                    &format!(
                        "{volume}: an earlier create of this resource was interrupted while downloading it; \
                         deleting it and downloading again"
                    ),
                );
            } else if !a.overwrite_unmanaged.unwrap_or(false) {
                return Err(ResourceError::Failed(format!(
                    "{volume} already exists on node {} and is not managed by this program: set \
                     `overwriteUnmanaged: true` to replace it, set `checksum` to keep it if it is the same file, \
                     or `pulumi import` it (id {})",
                    a.node_name,
                    pve_resource::node_volume_id(&a.node_name, &volume)
                )));
            }
            ctx.status(&format!("deleting {volume}"));
            if let Some(upid) = storage::delete_volume(&client, &a.node_name, &a.datastore_id, &volume)
                .await
                .map_err(pve_resource::failed)?
            {
                pve_resource::wait(ctx, &client, &upid, Duration::from_secs(120), &format!("deleting {volume}"))
                    .await
                    .map_err(pve_resource::failed)?;
            }
        }
        let mut params = vec![
            ("content".to_string(), a.content_type.clone()),
            ("filename".to_string(), file_name.clone()),
            ("url".to_string(), a.url.clone()),
            ("verify-certificates".to_string(), if verify { "1" } else { "0" }.to_string()),
        ];
        if let (Some(sum), Some(alg)) = (&a.checksum, &a.checksum_algorithm) {
            params.push(("checksum".into(), sum.clone()));
            params.push(("checksum-algorithm".into(), alg.clone()));
        }
        if let Some(d) = &a.decompression_algorithm {
            params.push(("compression".into(), d.clone()));
        }
        let timeout = Duration::from_secs(a.upload_timeout.unwrap_or(600));
        let label = format!("downloading {file_name} to {} on {}", a.datastore_id, a.node_name);
        if let Some(dir) = &journal_dir {
            let entry = super::journal::Entry {
                urn: urn.clone(),
                endpoint: endpoint.clone(),
                node: a.node_name.clone(),
                volume: volume.clone(),
            };
            if let Err(e) = super::journal::record(dir, &entry) {
                ctx.log(
                    Severity::Warning,
                    &format!("{volume}: cannot write the create journal in {}: {e}", dir.display()),
                );
            }
        }
        let result = download(ctx, &client, a, &params, volume.clone(), timeout, &label).await;
        if let Some(dir) = &journal_dir {
            super::journal::clear(dir, &endpoint, &urn);
        }
        result
    }

    async fn read(
        &self,
        ctx: &Context,
        req: ReadRequest<FileArgs, FileState>,
    ) -> Result<Option<ReadResponse<FileArgs, FileState>>, ResourceError> {
        let named = pve_resource::parse_node_volume_id(&req.id).ok_or_else(|| {
            ResourceError::Failed(format!(
                "{:?} is not a download:File id; expected node/storage:content/file, e.g. pve/local:iso/talos.iso",
                req.id
            ))
        })?;
        let pve_resource::NodeVolume { node, storage: storage_id, content, file } = named;
        let client = pve_resource::client(ctx)?;
        let volume = format!("{storage_id}:{content}/{file}");
        let found = match storage::find_volume(&client, &node, &storage_id, &content, &volume).await {
            Ok(found) => found,
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(pve_resource::failed(e)),
        };
        let Some(found) = found else { return Ok(None) };
        let inputs = req.inputs.unwrap_or_else(|| FileArgs {
            node_name: node.clone(),
            datastore_id: storage_id.clone(),
            content_type: content.clone(),
            // PVE does not record where a file came from: an import keeps a placeholder URL
            // the program's own `url` replaces without a diff being forced on other inputs.
            url: req.state.as_ref().map(|s| s.args.url.clone()).unwrap_or_else(|| format!("file:///{file}")),
            file_name: Some(file.clone()),
            checksum: None,
            checksum_algorithm: None,
            decompression_algorithm: None,
            verify: None,
            overwrite: None,
            overwrite_unmanaged: None,
            upload_timeout: None,
        });
        let state = FileState { args: inputs.clone(), volume_id: Some(volume.clone()), size: Some(found.size) };
        Ok(Some(ReadResponse { id: pve_resource::node_volume_id(&node, &volume), inputs, state }))
    }

    async fn update(
        &self,
        _ctx: &Context,
        req: UpdateRequest<FileArgs, FileState>,
    ) -> Result<FileState, ResourceError> {
        // Only overwrite, overwriteUnmanaged and uploadTimeout update in place: they change nothing in PVE.
        Ok(FileState { args: req.inputs, volume_id: req.old_state.volume_id, size: req.old_state.size })
    }

    async fn delete(&self, ctx: &Context, req: DeleteRequest<FileState>) -> Result<(), ResourceError> {
        let Some(volume) = pve_resource::parse_node_volume_id(&req.id) else { return Ok(()) };
        let client = pve_resource::client(ctx)?;
        pve_resource::delete_volume(ctx, &client, &volume.node, &volume.storage, &volume.volid()).await
    }
}

/// Starts the download (retried by the rules of ADR 0008), waits for it and reads the file back.
async fn download(
    ctx: &Context,
    client: &std::sync::Arc<crate::proxmox::PveClient>,
    a: FileArgs,
    params: &crate::proxmox::Params,
    volume: String,
    timeout: Duration,
    label: &str,
) -> Result<CreateResponse<FileState>, ResourceError> {
    let attempts = std::sync::atomic::AtomicU32::new(0);
    let started = retry(pve_resource::retry_policy(), pve_resource::on_retry(ctx, label), |attempt| {
        let (client, a, params, volume) = (client.clone(), &a, &params, &volume);
        attempts.store(attempt, std::sync::atomic::Ordering::Relaxed);
        async move {
            match storage::download_url(&client, &a.node_name, &a.datastore_id, params).await {
                Ok(upid) => Ok(Some(upid)),
                // A retry after a lost answer: our first attempt's download is there.
                Err(e) if attempt > 1 && e.mentions("refusing to override existing file") => {
                    let found =
                        storage::find_volume(&client, &a.node_name, &a.datastore_id, &a.content_type, volume).await?;
                    if found.is_some() {
                        Ok(None)
                    } else {
                        Err(e)
                    }
                }
                Err(e) => Err(e),
            }
        }
    })
    .await
    .map_err(pve_resource::failed)?;
    let retried = attempts.load(std::sync::atomic::Ordering::Relaxed) > 1;
    let waited = match started {
        Some(upid) => match pve_resource::wait(ctx, client, &upid, timeout, label).await {
            // A retry's download found the file the first attempt (its answer lost) fetched meanwhile.
            Err(e) if retried && e.mentions("refusing to override existing file") => Ok(()),
            other => other.map(|_| ()),
        },
        None => Ok(()),
    };
    let id = pve_resource::node_volume_id(&a.node_name, &volume);
    let found = storage::find_volume(client, &a.node_name, &a.datastore_id, &a.content_type, &volume).await;
    match (waited, found) {
        (Ok(()), Ok(Some(found))) => {
            Ok(CreateResponse { id, state: FileState { args: a, volume_id: Some(volume), size: Some(found.size) } })
        }
        // The wait failed (its answers lost, the wait cancelled) but the file is there:
        // record it, so the next `up` does not find "a file this program does not manage".
        (Err(e), Ok(Some(found))) => {
            let state = FileState { args: a, volume_id: Some(volume), size: Some(found.size) };
            Err(ResourceError::init_failed(id, &state, vec![e.to_string()]))
        }
        (Err(e), _) => Err(pve_resource::failed(e)),
        (Ok(()), Ok(None)) => {
            Err(ResourceError::Uncertain(format!("the download finished but {volume} is not in the storage's content")))
        }
        (Ok(()), Err(e)) => Err(ResourceError::Uncertain(format!(
            "the download finished but the storage's content cannot be listed: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> FileArgs {
        FileArgs {
            node_name: "pve".into(),
            datastore_id: "local".into(),
            content_type: "iso".into(),
            url: "https://factory.talos.dev/image/x/v1.12.4/metal-amd64.iso".into(),
            file_name: None,
            checksum: None,
            checksum_algorithm: None,
            decompression_algorithm: None,
            verify: None,
            overwrite: None,
            overwrite_unmanaged: None,
            upload_timeout: None,
        }
    }

    fn paths(a: &FileArgs) -> Vec<String> {
        check_args(a).into_iter().map(|f| f.property).collect()
    }

    #[test]
    fn bad_inputs_name_their_property() {
        assert!(check_args(&args()).is_empty());
        let xz = FileArgs { decompression_algorithm: Some("xz".into()), ..args() };
        let failures = check_args(&xz);
        assert_eq!(failures[0].property, "decompressionAlgorithm");
        assert!(failures[0].reason.contains("cannot decompress xz"), "{}", failures[0].reason);
        let import_zst =
            FileArgs { content_type: "import".into(), decompression_algorithm: Some("zst".into()), ..args() };
        assert_eq!(paths(&import_zst), ["decompressionAlgorithm"]);
        assert_eq!(paths(&FileArgs { content_type: "images".into(), ..args() }), ["contentType"]);
        assert_eq!(paths(&FileArgs { url: "ftp://x/y.iso".into(), ..args() }), ["url"]);
        assert_eq!(paths(&FileArgs { checksum: Some("abc".into()), ..args() }), ["checksumAlgorithm"]);
        let bad_sum = FileArgs { checksum: Some("xyz".into()), checksum_algorithm: Some("sha256".into()), ..args() };
        assert_eq!(paths(&bad_sum), ["checksum"]);
        assert_eq!(paths(&FileArgs { file_name: Some("a/b.iso".into()), ..args() }), ["fileName"]);
    }

    #[test]
    fn an_xz_url_is_refused_with_what_to_download_instead() {
        let factory = "https://factory.talos.dev/image/x/v1.12.4/nocloud-amd64";
        for url in [format!("{factory}.raw.xz"), format!("{factory}.raw.xz?download=1")] {
            let failures = check_args(&FileArgs { content_type: "import".into(), url, ..args() });
            assert_eq!(failures.len(), 1, "{failures:?}");
            assert_eq!(failures[0].property, "url");
            let reason = &failures[0].reason;
            assert!(reason.contains("cannot decompress") && reason.contains("diskImageQcow2"), "{reason}");
            assert!(reason.contains("decompressionAlgorithm: zst"), "{reason}");
        }
        for ok in [".qcow2", ".raw"] {
            let a = FileArgs { content_type: "import".into(), url: format!("{factory}{ok}"), ..args() };
            assert!(check_args(&a).is_empty(), "{ok}");
        }
        let zst = FileArgs {
            url: format!("{factory}.raw.zst"),
            decompression_algorithm: Some("zst".into()),
            file_name: Some("talos.img".into()),
            ..args()
        };
        assert!(check_args(&zst).is_empty());
    }

    #[test]
    fn a_replacement_with_the_same_volume_id_deletes_first() {
        let program = FileArgs { file_name: Some("talos.iso".into()), ..args() };
        let moved = FileArgs { url: "https://example.com/v2/talos.iso".into(), ..program.clone() };
        assert!(File.delete_before_replace(&program, &moved), "same volume id: the old file is in the way");
        let imported = FileArgs { url: "file:///talos.iso".into(), ..program.clone() };
        assert!(File.delete_before_replace(&imported, &program));
        let renamed = FileArgs { file_name: Some("other.iso".into()), ..program.clone() };
        assert!(!File.delete_before_replace(&program, &renamed));
        // Named after the URL on both sides.
        assert!(File.delete_before_replace(&args(), &FileArgs { checksum: None, ..args() }));
    }

    #[test]
    fn file_names_from_urls() {
        assert_eq!(url_file_name("http://127.0.0.1:8080/a/b/noble.img?x=1").as_deref(), Some("noble.img"));
        assert_eq!(url_file_name("http://127.0.0.1:8080/"), None);
    }
}
