//! The lab's Talos Image Factory: the HTTP API of `siderolabs/image-factory`
//! that the provider uses, served from memory on loopback.
//!
//! Owns: `POST /schematics` (YAML or JSON; `201 {"id","schematic"}`, `400`
//! with the factory's plain-text message for invalid schematics),
//! `GET /schematics/{id}` (`404` when unknown), `GET /versions`,
//! `GET /version/{v}/extensions/official` and `GET`/`HEAD
//! /image/{id}/{version}/{file}` with small generated images (see [`images`]).
//! Schematic IDs come from the provider's own `talos::schematic`, so the lab
//! and the provider cannot disagree by construction; the provider's golden
//! tests tie that module to the real factory's encoder.
//! Must not: listen anywhere but loopback (the caller binds the listener).

pub mod catalog;
pub mod images;
pub mod qcow2;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use proxmox_talos::talos::schematic::{Schematic, SchematicError, VANILLA_SCHEMATIC_ID};

/// The factory's memory: the schematics it has been given, by ID.
#[derive(Debug, Clone)]
pub struct FactoryState {
    schematics: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Default for FactoryState {
    fn default() -> Self {
        Self::new()
    }
}

impl FactoryState {
    /// A factory that knows only the vanilla schematic (as the public one does).
    pub fn new() -> Self {
        let vanilla = Schematic::default().canonical_yaml();
        let schematics = BTreeMap::from([(VANILLA_SCHEMATIC_ID.to_string(), vanilla)]);
        FactoryState { schematics: Arc::new(Mutex::new(schematics)) }
    }

    /// The canonical YAML of schematic `id`, if the factory has it.
    pub fn schematic(&self, id: &str) -> Option<String> {
        self.schematics.lock().expect("factory state").get(id).cloned()
    }

    /// Every schematic ID the factory has.
    pub fn schematic_ids(&self) -> Vec<String> {
        self.schematics.lock().expect("factory state").keys().cloned().collect()
    }

    /// Stores a schematic and returns its ID and canonical YAML.
    pub fn register(&self, schematic: &Schematic) -> (String, String) {
        let (id, canonical) = (schematic.id(), schematic.canonical_yaml());
        self.schematics.lock().expect("factory state").insert(id.clone(), canonical.clone());
        (id, canonical)
    }
}

/// The factory's routes over `state`.
pub fn router(state: FactoryState) -> Router {
    Router::new()
        .route("/schematics", post(create_schematic))
        .route("/schematics/{id}", get(get_schematic))
        .route("/versions", get(versions))
        .route("/version/{version}/extensions/official", get(extensions))
        .route("/image/{schematic}/{version}/{file}", get(image))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

/// Serves the factory on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: FactoryState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}

/// A plain-text error as the factory writes them (Go's `http.Error`).
fn text_error(status: StatusCode, message: &str) -> Response {
    let headers = [(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::X_CONTENT_TYPE_OPTIONS, "nosniff")];
    (status, headers, format!("{message}\n")).into_response()
}

async fn create_schematic(State(state): State<FactoryState>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return text_error(StatusCode::BAD_REQUEST, "yaml: invalid leading UTF-8 octet");
    };
    if text.trim().is_empty() {
        // Go's decoder reports an empty body as end of input.
        return text_error(StatusCode::BAD_REQUEST, "EOF");
    }
    let schematic = match Schematic::parse(text) {
        Ok(s) => s,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, &go_message(&e)),
    };
    let (id, canonical) = state.register(&schematic);
    (StatusCode::CREATED, Json(serde_json::json!({ "id": id, "schematic": canonical }))).into_response()
}

async fn get_schematic(State(state): State<FactoryState>, Path(id): Path<String>) -> Response {
    match state.schematic(&id) {
        Some(yaml) => ([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response(),
        None => text_error(StatusCode::NOT_FOUND, "schematic not found"),
    }
}

async fn versions() -> Json<&'static [&'static str]> {
    Json(catalog::VERSIONS)
}

async fn extensions(Path(version): Path<String>) -> Response {
    if !catalog::has_version(&version) {
        return text_error(StatusCode::NOT_FOUND, &format!("version {version} not found"));
    }
    Json(catalog::extensions(&version)).into_response()
}

async fn image(
    State(state): State<FactoryState>,
    Path((schematic, version, file)): Path<(String, String, String)>,
) -> Response {
    if state.schematic(&schematic).is_none() {
        return text_error(StatusCode::NOT_FOUND, "schematic not found");
    }
    if !catalog::has_version(&version) {
        return text_error(StatusCode::NOT_FOUND, &format!("version {version} not found"));
    }
    let Some(bytes) = images::render(&schematic, &version, &file) else {
        return text_error(StatusCode::NOT_FOUND, &format!("image {file} is not served by the lab factory"));
    };
    let disposition = format!("attachment; filename=\"{file}\"");
    let headers =
        [(header::CONTENT_TYPE, "application/octet-stream".to_string()), (header::CONTENT_DISPOSITION, disposition)];
    (headers, bytes).into_response()
}

/// The factory's wording for a schematic it cannot read: yaml.v3's
/// `unmarshal errors` list, naming the line and the Go type.
fn go_message(e: &SchematicError) -> String {
    let line = e.line.map(|l| format!("line {l}: ")).unwrap_or_default();
    match &e.unknown_field {
        Some(field) => {
            let parent = e.path.strip_suffix(field.as_str()).unwrap_or("").trim_end_matches('.');
            format!("yaml: unmarshal errors:\n  {line}field {field} not found in type schematic.{}", go_type(parent))
        }
        None => format!("yaml: unmarshal errors:\n  {line}{}: {}", e.path, e.reason),
    }
}

/// The Go type at a schematic path (`customization.meta[0]` → `MetaValue`).
fn go_type(path: &str) -> &'static str {
    let path = path.split('[').next().unwrap_or(path);
    match path {
        "" => "Schematic",
        "overlay" => "Overlay",
        "customization" => "Customization",
        "customization.meta" => "MetaValue",
        "customization.systemExtensions" => "SystemExtensions",
        "customization.secureboot" => "SecureBootCustomization",
        "customization.diskImage" => "DiskImage",
        _ => "Schematic",
    }
}

#[cfg(test)]
mod tests;
