//! The PVE API's HTTP front: `https://127.0.0.1:PORT/api2/json/...`.
//!
//! Owns: the request pipeline every call goes through, in pveproxy's order:
//! authentication ([`super::auth`]; only `GET|POST /access/ticket` and
//! `GET /access/domains` are open), the schema lookup ([`super::apidoc`];
//! paths and methods PVE's schema lacks answer PVE's own
//! `501 Method 'GET /x' not implemented`; endpoints PVE has and the lab has
//! no handler for answer `501 Method 'GET /x' not implemented by the
//! proxmox-talos lab`, so a lab gap is never mistaken for PVE's answer), parameter verification
//! ([`super::validate`]; path parameters, the query string, and a form or JSON
//! body; a repeated path parameter must agree with the path; API tokens are
//! refused with 403 where the schema says `allowtoken: 0`; the schema's
//! `permissions` are checked before verification and PVE's in-code checks
//! after it, see [`super::access`]), then the handler table ([`handlers`]);
//! list answers are filtered to what the caller may see. Responses are always
//! `{"data": ...}`; errors add `message` (and `errors` for 400) and carry the
//! message in the HTTP reason phrase, as PVE does. Also the TLS listener.
//! Must not: implement resources itself beyond the proof-of-stack handlers
//! here (`/version`, `/nodes`, `/cluster/status`, `/access/ticket`); VMs,
//! storage and tasks get their own modules and register in [`handlers`].

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;

use super::apidoc::Lookup;
use super::auth::Principal;
use super::dice::FaultKind;
pub use super::state::PveState;
use super::validate::{self, ParamErrors, Raw};

/// The PVE release the lab claims to be by default (the schema is PVE 9.1's; `pveVersion` in
/// the lab config changes what it reports).
pub const PVE_VERSION: &str = "9.1.1";
/// The node of the single-node lab.
pub const DEFAULT_NODE: &str = "pve";

/// One validated call, as a handler sees it.
#[derive(Debug)]
pub struct Call {
    /// `None` only for the open endpoints (`/access/ticket`, `/access/domains`).
    pub principal: Option<Principal>,
    pub method: String,
    /// The schema path template, e.g. `/nodes/{node}/qemu/{vmid}`.
    pub template: String,
    /// The request path relative to `/api2/json`.
    pub path: String,
    /// Every parameter (path, query, body), typed by the schema.
    pub params: Map<String, Value>,
    /// The file part of a multipart upload, spooled to disk.
    pub file: Option<UploadedFile>,
    /// Top-level members of the answer besides `data` (PVE's `set_result_attrib`, e.g. the
    /// `total` of a task log or of a paged list).
    pub result_attribs: std::sync::Arc<std::sync::Mutex<Map<String, Value>>>,
}

/// An uploaded file, spooled to a temporary file in the state directory.
#[derive(Debug, Clone)]
pub struct UploadedFile {
    /// The name the client gave the file part.
    pub filename: String,
    pub path: std::path::PathBuf,
    pub size: u64,
}

impl Call {
    /// Adds a top-level member to the answer, beside `data`.
    pub fn set_result_attrib(&self, name: &str, value: Value) {
        self.result_attribs.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), value);
    }

    /// A string parameter (path parameters are always there), or "".
    pub fn str(&self, name: &str) -> &str {
        self.params.get(name).and_then(Value::as_str).unwrap_or("")
    }

    /// An optional string parameter.
    pub fn opt_str(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.params.get(name).and_then(Value::as_i64)
    }

    /// A boolean parameter (PVE booleans arrive as 0/1).
    pub fn flag(&self, name: &str) -> bool {
        self.params.get(name).is_some_and(|v| v.as_i64().map(|n| n != 0).or(v.as_bool()).unwrap_or(false))
    }

    /// The `{vmid}` path parameter.
    pub fn vmid(&self) -> u32 {
        self.int("vmid").unwrap_or(0) as u32
    }

    /// Whether the caller is `root@pam` with a ticket (PVE's root-only checks).
    pub fn is_root_ticket(&self) -> bool {
        matches!(&self.principal, Some(Principal::User(u)) if u == "root@pam")
    }
}

/// An API error: status, message (also the reason phrase) and parameter errors.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub errors: Option<ParamErrors>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), errors: None }
    }

    /// `400 Parameter verification failed.` with per-parameter messages.
    pub fn params(errors: ParamErrors) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: "Parameter verification failed.".into(),
            errors: Some(errors),
        }
    }

    /// `501 Method 'GET /path' not implemented`: PVE's answer for a path or
    /// method its API does not have.
    pub fn not_implemented(method: &str, path: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, format!("Method '{method} {path}' not implemented"))
    }

    /// `501 Method 'GET /path' not implemented by the proxmox-talos lab`: an
    /// endpoint PVE has and the lab does not (a deliberate difference in text).
    pub fn not_in_lab(method: &str, path: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            format!("Method '{method} {path}' not implemented by the proxmox-talos lab"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "data": null, "message": format!("{}\n", self.message) });
        if let Some(errors) = &self.errors {
            body["errors"] = json!(errors);
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        let phrase: String =
            self.message.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { ' ' }).collect();
        if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(phrase.trim().to_string()) {
            response.extensions_mut().insert(phrase);
        }
        response
    }
}

/// A future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, ApiError>> + Send>>;

/// A handler: gets a validated call, returns the `data` value. Synchronous
/// handlers answer at once; asynchronous ones may wait (for a config lock, a task).
#[derive(Clone, Copy)]
pub enum Handler {
    Sync(fn(&PveState, &Call) -> Result<Value, ApiError>),
    Async(fn(PveState, Call) -> HandlerFuture),
}

/// The handler table, by (method, schema template). Unlisted schema endpoints
/// answer 501 ([`ApiError::not_in_lab`]).
#[derive(Default)]
pub struct Handlers(HashMap<(&'static str, &'static str), Handler>);

impl Handlers {
    pub fn sync(
        &mut self,
        method: &'static str,
        template: &'static str,
        f: fn(&PveState, &Call) -> Result<Value, ApiError>,
    ) {
        self.0.insert((method, template), Handler::Sync(f));
    }

    pub fn r#async(&mut self, method: &'static str, template: &'static str, f: fn(PveState, Call) -> HandlerFuture) {
        self.0.insert((method, template), Handler::Async(f));
    }

    pub fn get(&self, method: &str, template: &str) -> Option<Handler> {
        self.0.iter().find(|((m, t), _)| *m == method && *t == template).map(|(_, h)| *h)
    }

    /// Every (method, template) with a handler.
    pub fn endpoints(&self) -> Vec<(&'static str, &'static str)> {
        let mut all: Vec<_> = self.0.keys().copied().collect();
        all.sort();
        all
    }
}

/// Every endpoint the lab implements, by (method, schema template).
pub fn implemented_endpoints() -> Vec<(&'static str, &'static str)> {
    handlers().endpoints()
}

/// The handler table: each module registers its endpoints.
pub fn handlers() -> Handlers {
    let mut h = Handlers::default();
    h.sync("GET", "/version", version);
    h.sync("POST", "/access/ticket", create_ticket);
    h.sync("GET", "/access/ticket", |_, _| Ok(Value::Null));
    super::tasks::register(&mut h);
    super::cluster::register(&mut h);
    super::ha::register(&mut h);
    super::pools::register(&mut h);
    super::access::api::register(&mut h);
    super::storage::register(&mut h);
    super::qemu::register(&mut h);
    h
}

/// The router: everything under `/api2/json`, the lab's admin API under
/// `/lab` ([`super::admin`]), anything else 404. Bodies are not size-limited
/// (uploads).
pub fn router(state: PveState) -> Router {
    Router::new()
        .route("/api2/json", axum::routing::any(api))
        .route("/api2/json/", axum::routing::any(api))
        .route("/api2/json/{*rest}", axum::routing::any(api))
        .merge(super::admin::router())
        .merge(super::node_cli::router())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "Not found") })
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(state)
}

/// Calls that need no authentication (the explicit list in PVE's `auth_handler`).
fn is_open(method: &str, path: &str) -> bool {
    matches!(
        (method, path),
        ("GET" | "POST", "/access/ticket")
            | ("GET", "/access/domains")
            | ("POST", "/access/vncticket" | "/access/openid/login" | "/access/openid/auth-url")
    )
}

/// Uploads skip the CSRF check (native HTML forms cannot send the header).
fn is_upload(method: &str, path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    method == "POST" && matches!(parts.as_slice(), ["", "nodes", _, "storage", _, "upload"])
}

/// A dropped connection (fault injection): unwinding the connection's task
/// closes the socket without an answer. `resume_unwind` skips the panic hook.
struct DroppedConnection;

async fn api(State(state): State<PveState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().strip_prefix("/api2/json").unwrap_or("/").trim_end_matches('/').to_string();
    let path = if path.is_empty() { "/".to_string() } else { path };
    let injectable = !is_open(method.as_str(), &path);
    // Faults are decided by the request's identity and attempt, not by arrival order.
    let id = Identity::of(&state, method.as_str(), &path, &headers, &body);
    // A dropped connection happens before or after the call took effect, evenly.
    let dropped = injectable && id.roll(&state, FaultKind::DroppedConnection);
    let dropped_before = dropped && state.coin("droppedBefore", &id.method, &id.path, id.attempt);
    if dropped_before {
        state.log_request(method.as_str(), &path, 0);
        std::panic::resume_unwind(Box::new(DroppedConnection));
    }
    let mut attribs: std::sync::Arc<std::sync::Mutex<Map<String, Value>>> = Default::default();
    let result = match prepare(&state, method.as_str(), &path, &uri, &headers, &body) {
        Ok((call, handler)) => {
            // What the answer of a list endpoint is filtered by (PVE's handlers skip what the caller may not see).
            let seen_by = call.principal.as_ref().map(|p| (p.name(), call.template.clone(), call.params.clone()));
            // An upload's spooled file is gone after the request (a handler that keeps it moves it).
            let spooled = call.file.as_ref().map(|f| f.path.clone());
            attribs = call.result_attribs.clone();
            if let Some(edit) = state.take_interleave(&call.method, &call.path) {
                edit(&state);
            }
            let result = match injected_fault(&state, &call, &id) {
                Some(e) => Err(e),
                None => match handler {
                    Handler::Sync(f) => f(&state, &call),
                    Handler::Async(f) => f(state.clone(), call).await,
                },
            };
            if let Some(path) = spooled {
                let _ = std::fs::remove_file(path);
            }
            match (result, seen_by) {
                (Ok(data), Some((who, template, params))) if method == Method::GET => {
                    Ok(super::access::incode::filter(&state, &who, &template, &params, data))
                }
                (result, _) => result,
            }
        }
        Err(e) => Err(e),
    };
    let status = result.as_ref().map(|_| 200).unwrap_or_else(|e| e.status.as_u16());
    if dropped {
        // After the call took effect: the client cannot tell whether it did.
        state.log_request(method.as_str(), &path, 0);
        std::panic::resume_unwind(Box::new(DroppedConnection));
    }
    state.log_request(method.as_str(), &path, status);
    match result {
        Ok(data) => {
            let mut body = std::mem::take(&mut *attribs.lock().unwrap_or_else(|e| e.into_inner()));
            body.insert("data".into(), data);
            axum::Json(Value::Object(body)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Injected lock timeouts (VM-changing calls) and server errors.
fn injected_fault(state: &PveState, call: &Call, id: &Identity) -> Option<ApiError> {
    if call.method == "GET" {
        return None;
    }
    if call.template.starts_with("/nodes/{node}/qemu/{vmid}") && id.roll(state, FaultKind::LockTimeout) {
        return Some(super::state::lock_timeout(call.vmid()));
    }
    if id.roll(state, FaultKind::ServerError) {
        return Some(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "got no worker upid - start worker failed"));
    }
    None
}

/// A request as fault injection knows it: method, path (see
/// [`super::dice::identity`]) and how many times the lab has seen the pair.
struct Identity {
    method: String,
    path: String,
    attempt: u64,
}

impl Identity {
    fn of(state: &PveState, method: &str, path: &str, headers: &HeaderMap, body: &[u8]) -> Identity {
        let path = super::dice::identity(path, body_vmid(headers, body).as_deref());
        let attempt = state.attempt(method, &path);
        Identity { method: method.to_string(), path, attempt }
    }

    fn roll(&self, state: &PveState, kind: FaultKind) -> bool {
        state.roll(kind, &self.method, &self.path, self.attempt)
    }
}

/// The `vmid` a form or JSON body carries (a create names its VMID there).
fn body_vmid(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        form_urlencoded::parse(body).find(|(k, _)| k == "vmid").map(|(_, v)| v.into_owned())
    } else if content_type.starts_with("application/json") {
        let value: Value = serde_json::from_slice(body).ok()?;
        match value.get("vmid")? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    } else {
        None
    }
}

/// Authentication, schema lookup and parameter verification: the call and its handler.
fn prepare(
    state: &PveState,
    method: &str,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Call, Handler), ApiError> {
    let path = path.to_string();
    let principal = if is_open(method, &path) {
        None
    } else {
        let csrf = method != "GET" && !is_upload(method, &path);
        Some(state.auth().authenticate(headers, csrf).map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.0))?)
    };
    let matched = match state.apidoc().lookup(method, &path) {
        Lookup::Found(m) => m,
        Lookup::NoSuchMethod | Lookup::NoSuchPath => return Err(ApiError::not_implemented(method, &path)),
    };
    let mut input = Vec::new();
    if let Some(query) = uri.query() {
        input
            .extend(form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), Raw::Text(v.into_owned()))));
    }
    let mut file = None;
    if !body.is_empty() {
        let (params, uploaded) = body_params(state, headers, body, is_upload(method, &path))?;
        input.extend(params);
        file = uploaded;
    }
    let spooled = file.as_ref().map(|f: &UploadedFile| f.path.clone());
    let prepared = check_call(state, method, path, principal, matched, input, file);
    if let (Err(_), Some(spooled)) = (&prepared, spooled) {
        let _ = std::fs::remove_file(spooled);
    }
    prepared
}

/// The rest of [`prepare`] once the parameters are read: path parameters,
/// API token rules, verification, the handler.
fn check_call(
    state: &PveState,
    method: &str,
    path: String,
    principal: Option<Principal>,
    matched: super::apidoc::Matched<'_>,
    mut input: Vec<(String, Raw)>,
    file: Option<UploadedFile>,
) -> Result<(Call, Handler), ApiError> {
    // PVE's rest_handler: a parameter may repeat a path parameter only with the same value.
    let mut conflicts = ParamErrors::new();
    for (k, v) in &matched.path_params {
        if input.iter().any(|(name, raw)| name == k && raw_text(raw).as_deref() != Some(v.as_str())) {
            conflicts.insert(k.clone(), "duplicate parameter (already defined in URI) with conflicting values!".into());
        }
    }
    if !conflicts.is_empty() {
        return Err(ApiError::params(conflicts));
    }
    input.retain(|(name, _)| !matched.path_params.iter().any(|(k, _)| k == name));
    input.extend(matched.path_params.iter().map(|(k, v)| (k.clone(), Raw::Text(v.clone()))));
    let token_refused = matched.endpoint.info.get("allowtoken").is_some_and(|v| !truthy_flag(v));
    if matches!(principal, Some(Principal::Token { .. })) && token_refused {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("Permission check failed (URI '{path}' not available with API token, need proper ticket.\n)"),
        ));
    }
    // pveproxy checks the schema's permissions before verifying parameters.
    let raw: Map<String, Value> =
        input.iter().filter_map(|(k, v)| Some((k.clone(), Value::String(raw_text(v)?)))).collect();
    let permissions = matched.endpoint.info.get("permissions");
    super::access::check::check_schema(state, principal.as_ref(), permissions, &raw)?;
    let params = validate::validate(matched.endpoint.parameters(), input).map_err(ApiError::params)?;
    let template = matched.endpoint.template.clone();
    super::access::check::check_in_code(state, principal.as_ref(), method, &template, &params)?;
    let call = Call {
        principal,
        method: method.to_string(),
        template,
        path,
        params,
        file,
        result_attribs: Default::default(),
    };
    match state.handlers().get(method, &call.template) {
        Some(handler) => Ok((call, handler)),
        None => Err(ApiError::not_in_lab(method, &call.path)),
    }
}

/// A raw value as PVE would see it in a form (JSON numbers and strings as text).
fn raw_text(raw: &Raw) -> Option<String> {
    match raw {
        Raw::Text(s) | Raw::Json(Value::String(s)) => Some(s.clone()),
        Raw::Json(Value::Number(n)) => Some(n.to_string()),
        Raw::Json(_) => None,
    }
}

fn truthy_flag(v: &Value) -> bool {
    v.as_i64().map(|n| n != 0).or(v.as_bool()).unwrap_or(false)
}

/// A form (`application/x-www-form-urlencoded`, the default) or JSON object
/// body; for uploads a `multipart/form-data` body as pveproxy reads it
/// ([`super::storage::multipart`]): its text fields become parameters, the
/// file part is spooled to the state directory (`call.file`), its client
/// file name becomes `filename` and the spool file `tmpfilename`.
#[allow(clippy::type_complexity)]
fn body_params(
    state: &PveState,
    headers: &HeaderMap,
    body: &[u8],
    upload: bool,
) -> Result<(Vec<(String, Raw)>, Option<UploadedFile>), ApiError> {
    // pveproxy reads bodies by Content-Length only.
    if let Some(te) = headers.get(header::TRANSFER_ENCODING).and_then(|v| v.to_str().ok()) {
        let message = if te.eq_ignore_ascii_case("chunked") {
            "chunked transfer encoding not supported".to_string()
        } else {
            format!("Unknown transfer encoding '{te}'")
        };
        return Err(ApiError::new(StatusCode::NOT_IMPLEMENTED, message));
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if upload {
        use super::storage::multipart;
        let not_implemented = |msg: String| ApiError::new(StatusCode::NOT_IMPLEMENTED, msg);
        let parsed = multipart::parse(content_type, body).map_err(not_implemented)?;
        let (path, shown) = multipart::spool(state.state_dir(), &body[parsed.data.clone()]).map_err(not_implemented)?;
        let mut params: Vec<(String, Raw)> = parsed.fields.into_iter().map(|(k, v)| (k, Raw::Text(v))).collect();
        params.push(("filename".into(), Raw::Text(parsed.filename.clone())));
        params.push(("tmpfilename".into(), Raw::Text(shown)));
        let size = parsed.data.len() as u64;
        return Ok((params, Some(UploadedFile { filename: parsed.filename, path, size })));
    }
    if content_type.starts_with("application/json") {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("unable to parse JSON body: {e}")))?;
        let Value::Object(map) = value else {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "JSON body is not an object"));
        };
        return Ok((map.into_iter().map(|(k, v)| (k, Raw::Json(v))).collect(), None));
    }
    if super::storage::multipart::is_multipart(content_type) {
        let status = StatusCode::from_u16(506).unwrap_or(StatusCode::NOT_IMPLEMENTED);
        return Err(ApiError::new(status, format!("upload 'Content-Type '{content_type}' not implemented")));
    }
    Ok((form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), Raw::Text(v.into_owned()))).collect(), None))
}

fn version(state: &PveState, _: &Call) -> Result<Value, ApiError> {
    let version = state.pve_version();
    let release: Vec<&str> = version.split('.').take(2).collect();
    Ok(json!({ "version": version, "release": release.join("."), "repoid": "lab00000" }))
}

fn create_ticket(state: &PveState, call: &Call) -> Result<Value, ApiError> {
    let text = |k: &str| call.params.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (mut username, password) = (text("username"), text("password"));
    if let Some(realm) = call.params.get("realm").and_then(Value::as_str) {
        if !username.contains('@') {
            username = format!("{username}@{realm}");
        }
    }
    let issued = state.auth().login(&username, &password).map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.0))?;
    Ok(json!({ "username": issued.username, "ticket": issued.ticket, "CSRFPreventionToken": issued.csrf }))
}

/// A listener that hands axum TLS streams; handshakes run in their own tasks
/// so one slow client cannot stall the others.
struct TlsListener {
    streams: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.streams.recv().await {
            Some(stream) => stream,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// Serves the API over TLS on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: PveState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let (tx, rx) = mpsc::channel(64);
    let accepting = tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    let _ = tx.send((stream, peer)).await;
                }
            });
        }
    });
    let result = axum::serve(TlsListener { streams: rx, local }, router(state)).with_graceful_shutdown(shutdown).await;
    accepting.abort();
    result
}

/// `https://127.0.0.1:PORT/api2/json` for a bound address.
pub fn base_url(addr: SocketAddr) -> String {
    format!("https://{addr}/api2/json")
}
