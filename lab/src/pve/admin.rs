//! The lab's own admin API (not part of PVE), beside `/api2/json` on the same
//! HTTPS port, authenticated like the PVE API:
//! - `GET|PUT /lab/faults`: fault injection rates and seed ([`Faults`]);
//! - `GET /lab/faults/stats`: faults injected by kind since they were last set;
//! - `GET|PUT /lab/timing`: task, boot, agent and lock-wait durations ([`Timing`]);
//! - `GET|DELETE /lab/requests`: the request log (proves "no API call was made");
//! - `GET /lab/inventory`: every VM and file the lab holds ([`inventory`]).
//!
//! Owns: those routes and the inventory listing (also used offline by
//! `proxmox-talos-lab inventory`). Must not: be reachable without credentials.

use std::path::Path;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};

use super::lab_config::{Faults, Timing};
use super::model::Model;
use super::server::ApiError;
use super::state::{storage_path, PveState};

pub fn router() -> Router<PveState> {
    Router::new()
        .route("/lab/faults", get(get_faults).put(put_faults))
        .route("/lab/faults/stats", get(get_fault_stats))
        .route("/lab/timing", get(get_timing).put(put_timing))
        .route("/lab/requests", get(get_requests).delete(delete_requests))
        .route("/lab/inventory", get(get_inventory))
}

fn authorized(state: &PveState, headers: &HeaderMap, write: bool) -> Result<(), Box<Response>> {
    state
        .auth()
        .authenticate(headers, write)
        .map(|_| ())
        .map_err(|e| Box::new(ApiError::new(StatusCode::UNAUTHORIZED, e.0).into_response()))
}

async fn get_faults(State(state): State<PveState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&state, &headers, false) {
        return *r;
    }
    Json(json!({ "data": state.faults() })).into_response()
}

async fn get_fault_stats(State(state): State<PveState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&state, &headers, false) {
        return *r;
    }
    Json(json!({ "data": { "injected": state.injected_faults() } })).into_response()
}

async fn put_faults(State(state): State<PveState>, headers: HeaderMap, Json(faults): Json<Faults>) -> Response {
    if let Err(r) = authorized(&state, &headers, true) {
        return *r;
    }
    if let Err(e) = faults.check() {
        return ApiError::new(StatusCode::BAD_REQUEST, e).into_response();
    }
    state.set_faults(faults);
    Json(json!({ "data": state.faults() })).into_response()
}

async fn get_timing(State(state): State<PveState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&state, &headers, false) {
        return *r;
    }
    Json(json!({ "data": state.timing() })).into_response()
}

async fn put_timing(State(state): State<PveState>, headers: HeaderMap, Json(timing): Json<Timing>) -> Response {
    if let Err(r) = authorized(&state, &headers, true) {
        return *r;
    }
    state.set_timing(timing);
    Json(json!({ "data": state.timing() })).into_response()
}

async fn get_requests(State(state): State<PveState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&state, &headers, false) {
        return *r;
    }
    let (total, recent) = state.requests();
    Json(json!({ "data": { "total": total, "requests": recent } })).into_response()
}

async fn delete_requests(State(state): State<PveState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&state, &headers, true) {
        return *r;
    }
    state.clear_requests();
    Json(json!({ "data": null })).into_response()
}

async fn get_inventory(State(state): State<PveState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&state, &headers, false) {
        return *r;
    }
    let inventory = state.read(|m| inventory(m, state.state_dir()));
    Json(json!({ "data": inventory })).into_response()
}

/// Everything the lab holds that a program could have made or left behind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inventory {
    pub vms: Vec<InventoryVm>,
    /// Volume ids with their node: `local:iso/x.iso`, `local-zfs:vm-100-disk-0`.
    pub files: Vec<InventoryFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InventoryVm {
    pub vmid: u32,
    pub node: String,
    pub name: String,
    pub status: String,
    pub template: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InventoryFile {
    pub node: Option<String>,
    pub volid: String,
    pub size: u64,
}

/// Where each content type lives in a `dir` storage, and its volid prefix.
pub const DIR_CONTENT: [(&str, &str); 5] = [
    ("iso", "template/iso"),
    ("vztmpl", "template/cache"),
    ("snippets", "snippets"),
    ("import", "import"),
    ("backup", "dump"),
];

/// The lab's VMs and files (volumes on block storages and files in `dir` storages).
pub fn inventory(model: &Model, state_dir: &Path) -> Inventory {
    let vms = model
        .vms
        .values()
        .map(|vm| InventoryVm {
            vmid: vm.vmid,
            node: vm.node.clone(),
            name: vm.config.get("name").cloned().unwrap_or_default(),
            status: if vm.running { "running" } else { "stopped" }.into(),
            template: vm.is_template(),
        })
        .collect();
    let mut files: Vec<InventoryFile> = model
        .volumes
        .values()
        .map(|v| InventoryFile { node: v.node.clone(), volid: v.volid.clone(), size: v.size })
        .collect();
    for node in model.nodes.keys() {
        for s in model.storages.values().filter(|s| s.kind == "dir") {
            let root =
                state_dir.join("nodes").join(node).join("root").join(storage_path(&s.id).trim_start_matches('/'));
            for (content, sub) in DIR_CONTENT {
                let Ok(entries) = std::fs::read_dir(root.join(sub)) else { continue };
                let mut names: Vec<(String, u64)> = entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter_map(|e| Some((e.file_name().into_string().ok()?, e.metadata().ok()?.len())))
                    .filter(|(name, _)| !name.starts_with('.'))
                    .collect();
                names.sort();
                files.extend(names.into_iter().map(|(name, size)| InventoryFile {
                    node: Some(node.clone()),
                    volid: format!("{}:{content}/{name}", s.id),
                    size,
                }));
            }
        }
    }
    Inventory { vms, files }
}

impl Inventory {
    /// What is left besides the lab's own starting contents (its seed templates and their disks).
    pub fn without_seed(&self, model: &Model) -> Inventory {
        let is_seed = |vmid: &u32| model.seed_vmids.contains(vmid);
        Inventory {
            vms: self.vms.iter().filter(|v| !is_seed(&v.vmid)).cloned().collect(),
            files: self
                .files
                .iter()
                .filter(|f| !model.volumes.get(&f.volid).is_some_and(|v| is_seed(&v.vmid)))
                .cloned()
                .collect(),
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}
