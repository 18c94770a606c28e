//! `/storage/...` and `/nodes/{node}/storage/...`: the storage calls the
//! provider makes, typed.
//!
//! Owns: a storage's definition (type, content types, path), content lists,
//! deleting a volume, `download-url` (PVE fetches the URL itself),
//! `query-url-metadata`, and the streamed multipart `upload` (iso, vztmpl and
//! import only: PVE's upload endpoint takes nothing else; the file is streamed
//! from disk with its length known, so memory stays constant and PVE, which
//! refuses chunked uploads, gets a Content-Length).
//! Must not: retry, wait for tasks, or know Pulumi args.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::client::{as_u64, Params, PveClient};
use super::error::ProxmoxError;
use super::task::Upid;

/// A storage as `GET /storage/{storage}` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageInfo {
    pub id: String,
    /// `dir`, `zfspool`, `rbd`, `lvmthin`, `nfs`, ...
    pub kind: String,
    pub content: Vec<String>,
    /// The directory of file-based storages (`/var/lib/vz`).
    pub path: Option<String>,
    pub shared: bool,
}

/// `GET /storage/{storage}`.
pub async fn info(client: &PveClient, storage: &str) -> Result<StorageInfo, ProxmoxError> {
    let v: Value = client.get(&format!("/storage/{storage}"), &[]).await?;
    Ok(StorageInfo {
        id: storage.to_string(),
        kind: v.get("type").and_then(Value::as_str).unwrap_or_default().to_string(),
        content: v
            .get("content")
            .and_then(Value::as_str)
            .map(|c| c.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default(),
        path: v.get("path").and_then(Value::as_str).map(str::to_string),
        shared: v.get("shared").and_then(as_u64) == Some(1),
    })
}

/// One volume in a storage's content list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ContentItem {
    /// `local:iso/talos.iso`.
    pub volid: String,
    pub content: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub ctime: Option<u64>,
    #[serde(default)]
    pub vmid: Option<u32>,
}

/// `GET /nodes/{node}/storage/{storage}/content[?content=TYPE]`.
pub async fn content(
    client: &PveClient,
    node: &str,
    storage: &str,
    content_type: Option<&str>,
) -> Result<Vec<ContentItem>, ProxmoxError> {
    let path = format!("/nodes/{node}/storage/{storage}/content");
    let query: Vec<(&str, &str)> = content_type.map(|c| vec![("content", c)]).unwrap_or_default();
    client.get(&path, &query).await
}

/// The volume `volid` in `node`'s view of `storage`, if it is there.
pub async fn find_volume(
    client: &PveClient,
    node: &str,
    storage: &str,
    content_type: &str,
    volid: &str,
) -> Result<Option<ContentItem>, ProxmoxError> {
    if let Some(item) = content(client, node, storage, Some(content_type)).await?.into_iter().find(|i| i.volid == volid)
    {
        return Ok(Some(item));
    }
    // Not listed: PVE leaves out what the caller may not see (a hidden VM's images), so the
    // volume is asked for directly; only "does not exist" (for a file, PVE's "volume_size_info
    // on '...' failed") is gone, a 403 or any other failure is an error.
    let path = format!("/nodes/{node}/storage/{storage}/content/{}", super::task::encode(volid));
    match client.get::<serde_json::Value>(&path, &[]).await {
        Ok(info) => Ok(Some(ContentItem {
            volid: volid.to_string(),
            content: content_type.to_string(),
            size: info.get("size").and_then(super::client::as_u64).unwrap_or(0),
            format: info.get("format").and_then(serde_json::Value::as_str).map(str::to_string),
            ctime: None,
            vmid: None,
        })),
        Err(e) if e.is_not_found() || (e.status() == Some(500) && e.mentions("volume_size_info on")) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `DELETE /nodes/{node}/storage/{storage}/content/{volid}`; a task on PVE 9, `null` before.
pub async fn delete_volume(
    client: &PveClient,
    node: &str,
    storage: &str,
    volid: &str,
) -> Result<Option<Upid>, ProxmoxError> {
    let path = format!("/nodes/{node}/storage/{storage}/content/{}", super::task::encode(volid));
    let data = client.delete(&path, &Vec::new()).await?;
    Ok(data.as_str().and_then(Upid::parse))
}

/// `POST /nodes/{node}/storage/{storage}/download-url`; returns the task.
pub async fn download_url(
    client: &PveClient,
    node: &str,
    storage: &str,
    params: &Params,
) -> Result<Upid, ProxmoxError> {
    let path = format!("/nodes/{node}/storage/{storage}/download-url");
    let data = client.post(&path, params).await?;
    Upid::from_data(&data, "POST", &path)
}

/// What `GET /nodes/{node}/query-url-metadata` tells about a URL.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UrlMetadata {
    pub filename: Option<String>,
    pub size: Option<u64>,
    pub mimetype: Option<String>,
}

/// `GET /nodes/{node}/query-url-metadata?url=...&verify-certificates=0|1`.
pub async fn url_metadata(
    client: &PveClient,
    node: &str,
    url: &str,
    verify: bool,
) -> Result<UrlMetadata, ProxmoxError> {
    let path = format!("/nodes/{node}/query-url-metadata");
    let verify = if verify { "1" } else { "0" };
    let v: Value = client.get(&path, &[("url", url), ("verify-certificates", verify)]).await?;
    Ok(UrlMetadata {
        filename: v.get("filename").and_then(Value::as_str).map(str::to_string),
        size: v.get("size").and_then(as_u64),
        mimetype: v.get("mimetype").and_then(Value::as_str).map(str::to_string),
    })
}

/// `POST /nodes/{node}/storage/{storage}/upload`: streams `file` as `file_name`
/// with content type `content` (iso, vztmpl or import); returns the task.
pub async fn upload(
    client: &PveClient,
    node: &str,
    storage: &str,
    content: &str,
    file: &Path,
    file_name: &str,
    checksum: Option<(&str, &str)>,
) -> Result<Upid, ProxmoxError> {
    let path = format!("/nodes/{node}/storage/{storage}/upload");
    let io = |e: std::io::Error| ProxmoxError::Config(format!("reading {}: {e}", file.display()));
    let handle = tokio::fs::File::open(file).await.map_err(io)?;
    let length = handle.metadata().await.map_err(io)?.len();
    let stream = tokio_util::io::ReaderStream::with_capacity(handle, 256 * 1024);
    let part = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), length)
        .file_name(file_name.to_string())
        .mime_str("application/octet-stream")
        .map_err(|e| ProxmoxError::Config(e.to_string()))?;
    let mut form = reqwest::multipart::Form::new().text("content", content.to_string());
    if let Some((algorithm, sum)) = checksum {
        form = form.text("checksum-algorithm", algorithm.to_string()).text("checksum", sum.to_string());
    }
    let form = form.part("filename", part);
    let mut request =
        client.http().post(client.url(&path)?).multipart(form).timeout(std::time::Duration::from_secs(24 * 3600));
    for (k, v) in client.auth_headers().await? {
        request = request.header(k, v);
    }
    let response = request.send().await.map_err(|e| ProxmoxError::Transport {
        method: "POST".into(),
        path: path.clone(),
        reason: e.to_string(),
        maybe_sent: !e.is_connect(),
    })?;
    let data = super::client::envelope("POST", &path, response).await?;
    Upid::from_data(&data, "POST", &path)
}
