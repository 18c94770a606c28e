//! What the lab's node shell (`proxmox-talos-lab node-shell`, run by a
//! node's sshd for `ssh root@node 'pvesm path ...'`) asks the running lab
//! for, where PVE's command-line tools act on the node itself and the PVE
//! API has no equivalent. Lab-only routes beside `/lab/...`, authenticated
//! like the PVE API:
//! - `GET /lab/nodes/{node}/pvesm/path?volume=VOLID`: `pvesm path` (PVE's
//!   `PVE::Storage::path`: the file or device of a volume on that node);
//! - `POST /lab/nodes/{node}/qm/importdisk` `{vmid, source, storage, format?,
//!   target-disk?}`: `qm disk import` (allocates a volume from the source and
//!   adds it as `unused0` or `target-disk`, under the VM's config lock).
//!
//! Errors come back as PVE's texts (`500` with `message`), so the shell
//! prints exactly what `pvesm`/`qm` print. Must not: duplicate the volume
//! rules (`qemu::volume` owns them).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::qemu::drive::{split_volid, Drive};
use super::qemu::volume::{self, DiskTarget};
use super::server::ApiError;
use super::state::{storage_path, PveState};

pub fn router() -> Router<PveState> {
    Router::new()
        .route("/lab/nodes/{node}/pvesm/path", get(pvesm_path))
        .route("/lab/nodes/{node}/qm/importdisk", post(importdisk))
}

fn fail(message: impl Into<String>) -> Response {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message).into_response()
}

fn authorized(state: &PveState, headers: &HeaderMap, write: bool) -> Result<(), ApiError> {
    state.auth().authenticate(headers, write).map(|_| ()).map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.0))
}

fn known_node(state: &PveState, node: &str) -> Result<(), ApiError> {
    if state.nodes().iter().any(|n| n == node) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("no such cluster node '{node}'")))
    }
}

/// PVE's `PVE::Storage::path` for the storage kinds the lab has.
pub fn volume_path(state: &PveState, volid: &str) -> Result<String, String> {
    state.read(|m| {
        let info = volume::parse_volname(m, volid)?;
        let (storage, name) = split_volid(volid).ok_or_else(|| format!("unable to parse volume ID '{volid}'"))?;
        let scfg = m.storages.get(storage).ok_or_else(|| format!("storage '{storage}' does not exist"))?;
        // The image's own name: the last part of `base-9000-disk-0/vm-101-disk-0`.
        let last = name.rsplit('/').next().unwrap_or(name);
        Ok(match scfg.kind.as_str() {
            "dir" => match (&info.file, info.owner) {
                (Some(file), _) => format!("{}/{file}", storage_path(storage)),
                (None, Some(vmid)) => format!("{}/images/{vmid}/{last}", storage_path(storage)),
                (None, None) => format!("{}/{name}", storage_path(storage)),
            },
            "zfspool" => format!("/dev/zvol/rpool/data/{last}"),
            "lvmthin" | "lvm" => format!("/dev/pve/{last}"),
            "rbd" => format!(
                "rbd:{storage}/{last}:conf=/etc/pve/ceph.conf:id=admin:keyring=/etc/pve/priv/ceph/{storage}.keyring"
            ),
            other => return Err(format!("storage type '{other}' has no path in the lab")),
        })
    })
}

async fn pvesm_path(
    State(state): State<PveState>,
    headers: HeaderMap,
    Path(node): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(r) = authorized(&state, &headers, false).and_then(|()| known_node(&state, &node)) {
        return r.into_response();
    }
    let volume = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "volume")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    match volume_path(&state, &volume) {
        Ok(path) => Json(json!({ "data": path })).into_response(),
        Err(e) => fail(e),
    }
}

#[derive(Deserialize)]
struct ImportDisk {
    vmid: u32,
    source: String,
    storage: String,
    format: Option<String>,
    #[serde(rename = "target-disk")]
    target_disk: Option<String>,
}

async fn importdisk(
    State(state): State<PveState>,
    headers: HeaderMap,
    Path(node): Path<String>,
    Json(req): Json<ImportDisk>,
) -> Response {
    if let Err(r) = authorized(&state, &headers, true).and_then(|()| known_node(&state, &node)) {
        return r.into_response();
    }
    let vmid = req.vmid;
    let conf_missing = format!("Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist");
    if !state.read(|m| m.vms.get(&vmid).is_some_and(|vm| vm.node == node)) {
        return fail(conf_missing);
    }
    if let Some(f) = req.format.as_deref().filter(|f| !["raw", "qcow2", "vmdk"].contains(f)) {
        return fail(format!("format: value '{f}' does not have a value in the enumeration 'raw, qcow2, vmdk'"));
    }
    if let Err(e) = state.lock_vm(vmid, "importdisk").await {
        return e.into_response();
    }
    let result = state.write(|m| -> Result<(String, String, u64), String> {
        if !m.storages.contains_key(&req.storage) {
            return Err(format!("storage '{}' does not exist", req.storage));
        }
        let vm = m.vms.get(&vmid).filter(|vm| vm.node == node).ok_or_else(|| conf_missing.clone())?;
        super::qemu::check_lock(vm)?;
        if let Some(key) = &req.target_disk {
            if vm.config.contains_key(key) {
                return Err(format!("target-disk: drive '{key}' is already in use"));
            }
        }
        let template = vm.config.get("template").is_some_and(|t| t == "1");
        let target = DiskTarget { state: &state, node: &node, vmid, default_storage: None, template };
        let (size, origin) = volume::import_source(m, &target, &req.source)?;
        let volid = volume::alloc(m, &req.storage, &node, vmid, None, req.format.as_deref(), size, origin)?;
        let vm = m.vms.get_mut(&vmid).ok_or_else(|| conf_missing.clone())?;
        let key = match &req.target_disk {
            Some(key) => {
                let mut drive = Drive::parse(&volid);
                drive.set_size(size);
                vm.config.insert(key.clone(), drive.print());
                key.clone()
            }
            None => {
                super::qemu::pending::add_unused(vm, &volid);
                vm.config
                    .iter()
                    .find(|(k, v)| k.starts_with("unused") && **v == volid)
                    .map(|(k, _)| k.clone())
                    .unwrap_or_default()
            }
        };
        Ok((key, volid, size))
    });
    state.unlock_vm(vmid, "importdisk");
    match result {
        Ok((key, volid, size)) => Json(json!({ "data": { "key": key, "volid": volid, "size": size } })).into_response(),
        Err(e) => fail(e),
    }
}
