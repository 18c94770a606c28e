//! The PVE API's HTTP front: `https://127.0.0.1:PORT/api2/json/...`.
//!
//! Owns: the request pipeline every call goes through, in pveproxy's order:
//! authentication ([`super::auth`]; only `GET|POST /access/ticket` and
//! `GET /access/domains` are open), the schema lookup ([`super::apidoc`];
//! unknown paths and methods answer `501 Method 'GET /x' not implemented`,
//! exactly like paths the lab has no handler for yet), parameter verification
//! ([`super::validate`]; path parameters, the query string, and a form or JSON
//! body; a repeated path parameter must agree with the path; API tokens are
//! refused with 403 where the schema says `allowtoken: 0`), then the handler
//! table ([`handlers`]). Responses are always
//! `{"data": ...}`; errors add `message` (and `errors` for 400) and carry the
//! message in the HTTP reason phrase, as PVE does. Also the TLS listener.
//! Must not: implement resources itself beyond the proof-of-stack handlers
//! here (`/version`, `/nodes`, `/cluster/status`, `/access/ticket`); VMs,
//! storage and tasks get their own modules and register in [`handlers`].

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
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

use super::apidoc::{ApiDoc, Lookup};
use super::auth::{Auth, Principal};
use super::validate::{self, ParamErrors, Raw};

/// The PVE release the lab claims to be (the schema is PVE 9.1's).
pub const PVE_VERSION: &str = "9.1.1";
/// The lab's single node.
pub const DEFAULT_NODE: &str = "pve";

/// The API's shared state.
#[derive(Clone)]
pub struct PveState {
    inner: Arc<Inner>,
}

struct Inner {
    apidoc: ApiDoc,
    auth: Auth,
    nodes: Vec<String>,
    handlers: HashMap<(&'static str, &'static str), Handler>,
}

impl PveState {
    /// A lab with one node, [`DEFAULT_NODE`].
    pub fn new(apidoc: ApiDoc, auth: Auth) -> PveState {
        PveState::with_nodes(apidoc, auth, vec![DEFAULT_NODE.to_string()])
    }

    /// A lab with the given node names.
    pub fn with_nodes(apidoc: ApiDoc, auth: Auth, nodes: Vec<String>) -> PveState {
        PveState { inner: Arc::new(Inner { apidoc, auth, nodes, handlers: handlers() }) }
    }

    pub fn apidoc(&self) -> &ApiDoc {
        &self.inner.apidoc
    }

    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    pub fn nodes(&self) -> &[String] {
        &self.inner.nodes
    }
}

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

    /// `501 Method 'GET /path' not implemented`.
    pub fn not_implemented(method: &str, path: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_IMPLEMENTED, format!("Method '{method} {path}' not implemented"))
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

/// A handler: gets a validated call, returns the `data` value.
pub type Handler = fn(&PveState, &Call) -> Result<Value, ApiError>;

/// The handler table, by (method, template). Unlisted schema endpoints answer 501.
fn handlers() -> HashMap<(&'static str, &'static str), Handler> {
    let mut h: HashMap<(&'static str, &'static str), Handler> = HashMap::new();
    h.insert(("GET", "/version"), version);
    h.insert(("GET", "/nodes"), nodes);
    h.insert(("GET", "/cluster/status"), cluster_status);
    h.insert(("POST", "/access/ticket"), create_ticket);
    h.insert(("GET", "/access/ticket"), |_, _| Ok(Value::Null));
    h
}

/// The router: everything under `/api2/json`, anything else 404.
pub fn router(state: PveState) -> Router {
    Router::new()
        .route("/api2/json", axum::routing::any(api))
        .route("/api2/json/", axum::routing::any(api))
        .route("/api2/json/{*rest}", axum::routing::any(api))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "Not found") })
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

async fn api(State(state): State<PveState>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    match handle(&state, method.as_str(), &uri, &headers, &body) {
        Ok(data) => axum::Json(json!({ "data": data })).into_response(),
        Err(e) => e.into_response(),
    }
}

fn handle(state: &PveState, method: &str, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let rel = uri.path().strip_prefix("/api2/json").unwrap_or("/");
    let path = if rel.is_empty() { "/".to_string() } else { rel.trim_end_matches('/').to_string() };
    let path = if path.is_empty() { "/".to_string() } else { path };
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
    if !body.is_empty() {
        input.extend(body_params(headers, body)?);
    }
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
    let params = validate::validate(matched.endpoint.parameters(), input).map_err(ApiError::params)?;
    let template = matched.endpoint.template.clone();
    let call = Call { principal, method: method.to_string(), template, path, params };
    match state.inner.handlers.get(&(method, call.template.as_str())) {
        Some(handler) => handler(state, &call),
        None => Err(ApiError::not_implemented(method, &call.path)),
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

/// A form (`application/x-www-form-urlencoded`, the default) or JSON object body.
fn body_params(headers: &HeaderMap, body: &[u8]) -> Result<Vec<(String, Raw)>, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/json") {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("unable to parse JSON body: {e}")))?;
        let Value::Object(map) = value else {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "JSON body is not an object"));
        };
        return Ok(map.into_iter().map(|(k, v)| (k, Raw::Json(v))).collect());
    }
    if content_type.starts_with("multipart/") {
        return Err(ApiError::new(StatusCode::NOT_IMPLEMENTED, "multipart uploads are not implemented in the lab yet"));
    }
    Ok(form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), Raw::Text(v.into_owned()))).collect())
}

fn version(_: &PveState, _: &Call) -> Result<Value, ApiError> {
    Ok(json!({ "version": PVE_VERSION, "release": "9.1", "repoid": "lab00000" }))
}

fn nodes(state: &PveState, _: &Call) -> Result<Value, ApiError> {
    let nodes: Vec<Value> = state
        .nodes()
        .iter()
        .map(|n| {
            json!({
                "node": n, "id": format!("node/{n}"), "type": "node", "status": "online", "level": "",
                "cpu": 0.01, "maxcpu": 8, "mem": 2_147_483_648u64, "maxmem": 34_359_738_368u64,
                "disk": 4_294_967_296u64, "maxdisk": 107_374_182_400u64, "uptime": 3600,
            })
        })
        .collect();
    Ok(Value::Array(nodes))
}

fn cluster_status(state: &PveState, _: &Call) -> Result<Value, ApiError> {
    let nodes: Vec<Value> = state
        .nodes()
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({
                "type": "node", "name": n, "id": format!("node/{n}"), "nodeid": i + 1,
                "ip": "127.0.0.1", "online": 1, "local": u8::from(i == 0), "level": "",
            })
        })
        .collect();
    Ok(Value::Array(nodes))
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
