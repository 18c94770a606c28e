//! Storage status of a node: `GET /nodes/{node}/storage` (PVE's
//! `storage_info` with the `content`, `enabled`, `storage`, `target` and
//! `format` options), `GET /nodes/{node}/storage/{storage}` (the directory
//! index) and `GET .../status`.
//!
//! Owns: the sizes the lab reports (capacity from the lab config; used =
//! the model's volumes on the storage plus, for `dir` storages, the real
//! files under the node's storage directory). Must not: change anything.

use std::path::Path;

use serde_json::{json, Value};

use super::super::cluster::node_of;
use super::super::lab_config::StorageConfig;
use super::super::server::{ApiError, Call, Handlers};
use super::super::state::PveState;
use super::has_path;

pub fn register(h: &mut Handlers) {
    h.sync("GET", "/nodes/{node}/storage", list);
    h.sync("GET", "/nodes/{node}/storage/{storage}", index);
    h.sync("GET", "/nodes/{node}/storage/{storage}/status", status);
}

/// Bytes in use on `s` as seen from `node`.
pub fn used_bytes(state: &PveState, node: &str, s: &StorageConfig) -> u64 {
    let volumes: u64 = state.read(|m| {
        m.volumes
            .values()
            .filter(|v| v.storage == s.id && (s.shared || v.node.as_deref().is_none_or(|n| n == node)))
            .map(|v| v.size)
            .sum()
    });
    let files = if has_path(s) { dir_size(&state.dir_storage_path(node, &s.id)) } else { 0 };
    volumes + files
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// One storage's status entry (PVE's `storage_info` item).
fn info(state: &PveState, node: &str, s: &StorageConfig) -> Value {
    let total = s.capacity_gib << 30;
    let used = used_bytes(state, node, s).min(total);
    json!({
        "type": s.kind, "content": s.content.join(","), "shared": u8::from(s.shared),
        "active": 1, "enabled": 1, "total": total, "used": used, "avail": total - used,
    })
}

/// Image formats a storage type supports and its default (`format=1`).
fn formats(s: &StorageConfig) -> (Vec<&'static str>, &'static str) {
    match s.kind.as_str() {
        "dir" => (vec!["qcow2", "raw", "subvol", "vmdk"], "raw"),
        "zfspool" => (vec!["raw", "subvol"], "raw"),
        _ => (vec!["raw"], "raw"),
    }
}

fn list(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    let wanted: Option<Vec<String>> = call
        .opt_str("content")
        .map(|c| c.split([',', ';', ' ']).filter(|s| !s.is_empty()).map(str::to_string).collect());
    let target = call.opt_str("target").filter(|t| *t != node && *t != "localhost");
    let storages: Vec<StorageConfig> = state.read(|m| {
        m.storages
            .values()
            .filter(|s| wanted.as_ref().is_none_or(|w| w.iter().any(|c| super::allows(s, c))))
            .cloned()
            .collect()
    });
    if let Some(id) = call.opt_str("storage") {
        if !storages.iter().any(|s| s.id == id) {
            return Err(ApiError::params([("storage".to_string(), "No such storage.".to_string())].into()));
        }
    }
    let mut out = Vec::new();
    for s in storages {
        if call.opt_str("storage").is_some_and(|id| id != s.id) || (target.is_some() && !s.shared) {
            continue;
        }
        let mut entry = info(state, &node, &s);
        let total = entry["total"].as_u64().unwrap_or(0);
        if total > 0 {
            entry["used_fraction"] = json!(entry["used"].as_u64().unwrap_or(0) as f64 / total as f64);
        }
        if call.flag("format") {
            let (supported, default) = formats(&s);
            let valid: serde_json::Map<String, Value> = supported.iter().map(|f| (f.to_string(), json!(1))).collect();
            entry["format"] = json!([valid, default]);
            entry["formats"] = json!({ "supported": supported, "default": default });
            entry["select_existing"] = json!(0);
        }
        entry["storage"] = json!(s.id);
        out.push(entry);
    }
    Ok(Value::Array(out))
}

fn index(_: &PveState, _: &Call) -> Result<Value, ApiError> {
    let subdirs = [
        "content",
        "download-url",
        "file-restore",
        "import-metadata",
        "oci-registry-pull",
        "prunebackups",
        "rrd",
        "rrddata",
        "status",
        "upload",
    ];
    Ok(Value::Array(subdirs.iter().map(|s| json!({ "subdir": s })).collect()))
}

fn status(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    let id = call.str("storage");
    let Some(s) = state.read(|m| m.storages.get(id).cloned()) else {
        return Err(ApiError::params([("storage".to_string(), "No such storage.".to_string())].into()));
    };
    Ok(info(state, &node, &s))
}
