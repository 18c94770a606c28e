//! Storage content: `GET|POST /nodes/{node}/storage/{storage}/content` and
//! `GET|DELETE .../content/{volume}` (pve-storage's `API2/Storage/Content.pm`).
//!
//! Owns: listing a storage as `pvesm list` does (files of `dir` storages are
//! read from disk with PVE's name rules and `format` values; VM disks come
//! from the model's volumes, per node unless the storage is shared), volume
//! attributes, allocating a disk volume, and the `imgdel` task. Like PVE's
//! API (the GUI refuses, the API does not), deleting a disk of an existing VM
//! is allowed; it fails only where the storage would: a base volume still
//! used by linked clones, or a disk of a running VM on ZFS or Ceph.
//! Must not: change VM configs.

use std::os::unix::fs::MetadataExt as _;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use regex::Regex;
use serde_json::{json, Value};

use super::super::cluster::node_of;
use super::super::lab_config::StorageConfig;
use super::super::model::Volume;
use super::super::server::{ApiError, Call, Handlers};
use super::super::state::{storage_path, PveState};
use super::super::tasks::{self, Worker};
use super::files;
use super::{allows, block_path, dir_file, has_path, parse_dir_volname, storage_config, volume_id, DirVolume};

pub fn register(h: &mut Handlers) {
    h.sync("GET", "/nodes/{node}/storage/{storage}/content", list);
    h.sync("POST", "/nodes/{node}/storage/{storage}/content", alloc);
    h.sync("GET", "/nodes/{node}/storage/{storage}/content/{volume}", info);
    h.r#async("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}", |state, call| {
        Box::pin(delete(state, call))
    });
}

fn internal(msg: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, msg)
}

/// The content types a `dir` storage knows (PVE's `verify_content`).
const CONTENT_TYPES: [&str; 8] = ["images", "rootdir", "vztmpl", "iso", "backup", "snippets", "import", "none"];

fn list(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    if let Some(c) = call.opt_str("content").filter(|c| !CONTENT_TYPES.contains(c)) {
        return Err(ApiError::params([("content".to_string(), format!("invalid content type '{c}'"))].into()));
    }
    let s = storage_config(state, call.str("storage"))?;
    let vmid = call.int("vmid").map(|v| v as u32);
    let all = ["rootdir", "images", "vztmpl", "iso", "backup", "snippets", "import"];
    let wanted: Vec<&str> = match call.opt_str("content") {
        Some(c) => vec![c],
        None => all.to_vec(),
    };
    let mut items = Vec::new();
    for content in wanted.into_iter().filter(|c| allows(&s, c)) {
        match content {
            "images" => items.extend(state.read(|m| {
                m.volumes
                    .values()
                    .filter(|v| v.storage == s.id && (s.shared || v.node.as_deref().is_none_or(|n| n == node)))
                    .filter(|v| vmid.is_none_or(|id| v.vmid == id))
                    .map(|v| volume_item(&s, v))
                    .collect::<Vec<_>>()
            })),
            "rootdir" => {}
            _ if has_path(&s) => items.extend(dir_files(state, &node, &s, content, vmid)),
            _ => {}
        }
    }
    items.sort_by_key(|v| v["volid"].as_str().unwrap_or("").to_lowercase());
    Ok(Value::Array(items))
}

fn volume_item(s: &StorageConfig, v: &Volume) -> Value {
    let mut item = json!({
        "volid": v.volid, "format": v.format, "size": v.size, "vmid": v.vmid, "content": "images",
    });
    // Linked clones name their base: `local-zfs:base-90001-disk-0/vm-100-disk-0`.
    if let Some((base, _)) = v.volid.split_once(':').and_then(|(_, name)| name.rsplit_once('/')) {
        item["parent"] = json!(match s.kind.as_str() {
            "zfspool" | "rbd" => format!("{}@__base__", base.rsplit('/').next().unwrap_or(base)),
            _ => format!("../{base}"),
        });
    }
    item
}

fn backup_vmid_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"-([1-9][0-9]{2,8})-[^/]+$").expect("valid regex"))
}

/// The files of one content type of a `dir` storage, as `list_volumes` reports them.
fn dir_files(state: &PveState, node: &str, s: &StorageConfig, content: &str, vmid: Option<u32>) -> Vec<Value> {
    if vmid.is_some() && matches!(content, "iso" | "vztmpl") {
        return Vec::new();
    }
    let Some(sub) = super::subdir(content) else { return Vec::new() };
    let Ok(entries) = std::fs::read_dir(state.dir_storage_path(node, &s.id).join(sub)) else {
        return Vec::new();
    };
    let mut items = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else { continue };
        // Perl's `<$path/*>` skips dot files; stat follows symlinks.
        let Ok(meta) = std::fs::metadata(entry.path()) else { continue };
        if name.starts_with('.') || meta.is_dir() {
            continue;
        }
        let mut item = json!({ "volid": format!("{}:{content}/{name}", s.id), "content": content });
        match content {
            "iso" if files::is_iso_name(&name) => item["format"] = json!("iso"),
            "vztmpl" => match files::vztmpl_ext(&name) {
                Some(ext) => item["format"] = json!(format!("t{ext}")),
                None => continue,
            },
            "backup" => {
                let Some(format) = files::backup_format(&name) else { continue };
                if vmid.is_some_and(|id| !name.contains(&format!("-{id}-"))) {
                    continue;
                }
                item["format"] = json!(format);
                let subtype = ["qemu", "lxc", "openvz"]
                    .into_iter()
                    .find(|t| name.starts_with(&format!("vzdump-{t}-")))
                    .unwrap_or("unknown");
                item["subtype"] = json!(subtype);
                if let Some(id) = vmid.or_else(|| backup_vmid_re().captures(&name).and_then(|c| c[1].parse().ok())) {
                    item["vmid"] = json!(id);
                }
            }
            "snippets" => item["format"] = json!("snippet"),
            "import" => match files::import_format(&name) {
                Some(format) => item["format"] = json!(format),
                None => continue,
            },
            _ => continue,
        }
        item["size"] = json!(meta.len());
        item["ctime"] = json!(meta.ctime().max(0));
        items.push(item);
    }
    items
}

/// A block storage volume name as the ZFS and RBD plugins parse it.
fn check_block_volname(s: &StorageConfig, volname: &str) -> Result<(), ApiError> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"^(((base|vm)-\d+-\S+)/)?((base)?(vm|base|subvol|basevol)-\d+-\S+)$").expect("valid regex")
    });
    if s.kind == "lvmthin" {
        crate::pve::qemu::volume::lvm_name(volname).map_err(internal)?;
        let owner = volname.strip_prefix("vm-").or_else(|| volname.strip_prefix("base-"));
        if owner.and_then(|r| r.split_once('-')).is_some_and(|(id, rest)| id.parse::<u32>().is_ok() && !rest.is_empty())
        {
            return Ok(());
        }
        return Err(internal(format!("unable to parse lvm volume name '{volname}'")));
    }
    if re.is_match(volname) {
        return Ok(());
    }
    let kind = if s.kind == "zfspool" { "zfs" } else { s.kind.as_str() };
    Err(internal(format!("unable to parse {kind} volume name '{volname}'")))
}

/// A block volume missing from the storage, with the storage tool's text.
fn missing_block(s: &StorageConfig, volname: &str, opening: bool) -> String {
    let name = volname.rsplit('/').next().unwrap_or(volname);
    match (s.kind.as_str(), opening) {
        ("zfspool", _) => format!("zfs error: cannot open '{}': dataset does not exist", block_path(s, name)),
        ("lvmthin", _) => format!("no such logical volume {}", block_path(s, name)),
        (_, true) => format!("rbd error: rbd: error opening image {name}: (2) No such file or directory"),
        (_, false) => format!("rbd rm '{name}' error: rbd: delete error: (2) No such file or directory"),
    }
}

fn info(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    let (sid, volname) = volume_id(call.opt_str("storage"), call.str("volume"))?;
    let s = storage_config(state, &sid)?;
    let volid = format!("{sid}:{volname}");
    let failed = || internal(format!("volume_size_info on '{volid}' failed"));
    if !has_path(&s) {
        check_block_volname(&s, &volname)?;
        let v = state
            .read(|m| m.volumes.get(&volid).cloned())
            .ok_or_else(|| internal(missing_block(&s, &volname, true)))?;
        let name = volname.rsplit('/').next().unwrap_or(&volname);
        let path = match s.kind.as_str() {
            "zfspool" => format!("/dev/zvol/{}", block_path(&s, name)),
            "lvmthin" => format!("/dev/{}", block_path(&s, name)),
            _ => {
                format!("rbd:{}/{name}:conf=/etc/pve/ceph.conf:id=admin:keyring=/etc/pve/priv/ceph/{sid}.keyring", s.id)
            }
        };
        return Ok(json!({ "path": path, "size": v.size, "used": v.size, "format": v.format }));
    }
    match parse_dir_volname(&volname).map_err(internal)? {
        DirVolume::Image { vmid } => {
            let v = state.read(|m| m.volumes.get(&volid).cloned()).ok_or_else(failed)?;
            let name = volname.rsplit('/').next().unwrap_or(&volname);
            let path = format!("{}/images/{vmid}/{name}", storage_path(&sid));
            Ok(json!({ "path": path, "size": v.size, "used": v.size, "format": v.format }))
        }
        DirVolume::File { content, name } => {
            let file = dir_file(state, &node, &sid, content, &name);
            let format = match content {
                "import" => files::import_format(&name).unwrap_or_default(),
                _ => "raw".to_string(),
            };
            let meta = std::fs::metadata(&file.real_path).map_err(|_| failed())?;
            let image = files::image_info(&file.real_path, &format).ok_or_else(failed)?;
            if image.size == 0 {
                return Err(failed());
            }
            Ok(
                json!({ "path": file.node_path, "size": image.size, "used": meta.blocks() * 512, "format": image.format }),
            )
        }
    }
}

/// What a delete removes: a model volume, or a file of a `dir` storage.
enum Target {
    Volume { volid: String, owner: u32 },
    File { volid: String, real: std::path::PathBuf, shown: String },
}

async fn delete(state: PveState, call: Call) -> Result<Value, ApiError> {
    let node = node_of(&state, &call)?;
    let (sid, volname) = volume_id(call.opt_str("storage"), call.str("volume"))?;
    let s = storage_config(&state, &sid)?;
    let volid = format!("{sid}:{volname}");
    let target = if has_path(&s) {
        match parse_dir_volname(&volname).map_err(internal)? {
            DirVolume::Image { vmid } => Target::Volume { volid: volid.clone(), owner: vmid },
            DirVolume::File { content, name } => {
                let file = dir_file(&state, &node, &sid, content, &name);
                Target::File { volid: volid.clone(), real: file.real_path, shown: file.node_path }
            }
        }
    } else {
        check_block_volname(&s, &volname)?;
        let owner = volname.rsplit('/').next().and_then(|n| n.split('-').nth(1)).and_then(|v| v.parse().ok());
        Target::Volume { volid: volid.clone(), owner: owner.unwrap_or(0) }
    };
    // The task id names the owning VM: a disk's, or a backup's (`vzdump-qemu-100-...`).
    let owner = match &target {
        Target::Volume { owner, .. } => Some(*owner).filter(|o| *o > 0),
        Target::File { .. } => volname
            .strip_prefix("backup/")
            .and_then(|name| backup_vmid_re().captures(name))
            .and_then(|c| c[1].parse::<u32>().ok()),
    };
    let id = owner.map(|o| format!("{o}@{sid}")).unwrap_or_else(|| sid.clone());
    let worker = Worker { node: node.clone(), kind: "imgdel", id, lock_vmid: None };
    let upid = tasks::start(&state, &call, worker, move |log| async move {
        let state = log.state().clone();
        match target {
            Target::Volume { volid, .. } => free_volume(&state, &s, &volname, &volid, &log)?,
            Target::File { volid, real, shown } => {
                match std::fs::remove_file(&real) {
                    Ok(()) => {
                        let _ = std::fs::remove_file(format!("{}.notes", real.display()));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        log.line(format!("disk image '{shown}' does not exist"));
                    }
                    Err(e) => return Err(format!("unlink '{shown}' failed - {e}")),
                }
                log.line(format!("Removed volume '{volid}'"));
            }
        }
        Ok(())
    });
    let Some(delay) = call.int("delay") else { return Ok(json!(upid)) };
    match tokio::time::timeout(Duration::from_secs(delay as u64), tasks::wait(&state, &upid)).await {
        Err(_) => Ok(json!(upid)),
        Ok(Ok(())) => Ok(Value::Null),
        Ok(Err(status)) => Err(internal(status)),
    }
}

/// PVE's `vdisk_free` for a volume the model holds.
fn free_volume(
    state: &PveState,
    s: &StorageConfig,
    volname: &str,
    volid: &str,
    log: &tasks::TaskLog,
) -> Result<(), String> {
    state.write(|m| {
        let prefix = format!("{volid}/");
        if m.volumes.keys().any(|k| k.starts_with(&prefix)) {
            return Err(format!("base volume '{volname}' is still in use by linked clones"));
        }
        let Some(v) = m.volumes.get(volid) else {
            if has_path(s) {
                let name = volname.rsplit('/').next().unwrap_or(volname);
                let vmid = volname.split('/').rev().nth(1).unwrap_or("0");
                log.line(format!("disk image '{}/images/{vmid}/{name}' does not exist", storage_path(&s.id)));
                return Ok(());
            }
            // LvmThinPlugin's free_image removes the LV only if it exists.
            if s.kind == "lvmthin" {
                return Ok(());
            }
            return Err(missing_block(s, volname, false));
        };
        let running = m.vms.get(&v.vmid).is_some_and(|vm| vm.running);
        let name = volname.rsplit('/').next().unwrap_or(volname);
        match s.kind.as_str() {
            "zfspool" if running => {
                return Err(format!("zfs error: cannot destroy '{}': dataset is busy", block_path(s, name)));
            }
            "rbd" if running => return Err(format!("rbd rm '{name}' error: rbd: error: image still has watchers")),
            "lvmthin" if running => {
                let lv = block_path(s, name);
                return Err(format!("lvremove '{lv}' error:   Logical volume {lv} in use."));
            }
            _ => {}
        }
        m.volumes.remove(volid);
        Ok(())
    })?;
    log.line(format!("Removed volume '{volid}'"));
    Ok(())
}

/// `POST .../content`: allocates a disk volume (`vdisk_alloc`).
fn alloc(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let node = node_of(state, call)?;
    let s = storage_config(state, call.str("storage"))?;
    let name = call.str("filename").to_string();
    let vmid = call.vmid();
    let size = call.str("size");
    let kib: u64 = match size.strip_suffix('G').or_else(|| size.strip_suffix('M')) {
        Some(n) => n.parse::<u64>().unwrap_or(0) * if size.ends_with('G') { 1 << 20 } else { 1 << 10 },
        None => size.parse().unwrap_or(0),
    };
    let mut format = call.opt_str("format").map(str::to_string);
    if let Some((_, ext)) = name.rsplit_once('.').filter(|(_, e)| ["raw", "qcow2", "vmdk"].contains(e)) {
        if let Some(f) = format.as_deref().filter(|f| *f != ext) {
            return Err(ApiError::params(
                [("format".to_string(), format!("different storage formats ({f} != {ext})"))].into(),
            ));
        }
        format = Some(ext.to_string());
    }
    let format = format.unwrap_or_else(|| "raw".to_string());
    let volid = if has_path(&s) {
        let (_, name_format) = files::parse_image_name(&name).map_err(internal)?;
        if name_format != format {
            return Err(internal(format!(
                "illegal name '{name}' - wrong extension for format ('{name_format} != '{format}')"
            )));
        }
        let volid = format!("{}:{vmid}/{name}", s.id);
        if state.read(|m| m.volumes.contains_key(&volid)) {
            let path = format!("{}/images/{vmid}/{name}", storage_path(&s.id));
            return Err(internal(format!("disk image '{path}' already exists")));
        }
        volid
    } else {
        let allowed: &[&str] = if s.kind == "zfspool" { &["raw", "subvol"] } else { &["raw"] };
        if !allowed.contains(&format.as_str()) {
            return Err(internal(format!("unsupported format '{format}'")));
        }
        if !name.starts_with(&format!("vm-{vmid}-")) {
            return Err(internal(format!("illegal name '{name}' - should be 'vm-{vmid}-*'")));
        }
        let volid = format!("{}:{name}", s.id);
        if state.read(|m| m.volumes.contains_key(&volid)) {
            return Err(internal(match s.kind.as_str() {
                "zfspool" => format!("zfs error: cannot create '{}': dataset already exists", block_path(&s, &name)),
                "lvmthin" => crate::pve::qemu::volume::lvm_exists(&name),
                _ => format!("rbd create '{name}' error: rbd: create error: (17) File exists"),
            }));
        }
        volid
    };
    let volume = Volume {
        volid: volid.clone(),
        storage: s.id.clone(),
        node: (!s.shared).then(|| node.clone()),
        vmid,
        size: kib << 10,
        format,
        origin: None,
        talos: None,
    };
    state.write(|m| m.volumes.insert(volid.clone(), volume));
    Ok(json!(volid))
}
