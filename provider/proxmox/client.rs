//! The HTTP layer of the Proxmox VE API: one place that builds URLs, sends
//! requests and turns answers into values or [`ProxmoxError`]s.
//!
//! Owns: TLS (rustls; system roots plus an optional extra CA; verification
//! on unless `insecure`; minimum TLS version), authentication (an API token
//! header, or a `root@pam`-style ticket from `POST /access/ticket`, renewed
//! before its two hours are up and once more on a 401, with the CSRF header
//! on writes; the login is retried on passing failures, being safe to resend), form encoding of parameters (PVE takes
//! `application/x-www-form-urlencoded`; GET and DELETE use the query string),
//! the `{"data": ...}` envelope, PVE's error shapes (status + reason phrase +
//! `errors` + `message`), bounded timeouts, and re-sending a GET whose
//! connection was lost (a GET changes nothing, so a few quick attempts are
//! always safe; PVE's own proxy errors 502/503/504/596 count as lost too).
//! Must not: retry writes (see [`super::retry`]: whether a write that may
//! have taken effect can be sent again is the caller's call), wait for tasks (see
//! [`super::task`]) or know what any endpoint means (see the typed layers
//! `cluster`, `qemu`, `storage`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::error::ProxmoxError;
use super::retry::{retry, RetryPolicy};
use crate::config::{ProxmoxAuth, ProxmoxSettings};

/// Time allowed to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for one call (task-starting calls return at once with a UPID).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// PVE tickets last two hours; renew well before.
const TICKET_RENEWAL: Duration = Duration::from_secs(90 * 60);
/// Attempts at a GET whose connection was lost, and the first pause between them (doubling).
const GET_ATTEMPTS: u32 = 5;
const GET_FIRST_PAUSE: Duration = Duration::from_millis(100);

/// Form parameters in order (`key=value` pairs; repeated keys allowed).
pub type Params = Vec<(String, String)>;

/// A client for one Proxmox VE endpoint.
pub struct PveClient {
    base: Url,
    http: reqwest::Client,
    auth: ProxmoxAuth,
    ticket: Mutex<Option<Ticket>>,
    /// `GET /version`, read once.
    version: tokio::sync::OnceCell<super::version::PveVersion>,
}

#[derive(Clone)]
struct Ticket {
    cookie: String,
    csrf: String,
    obtained: Instant,
}

impl PveClient {
    /// A client for `settings.endpoint` (`https://host:8006/`; `/api2/json` is added).
    pub fn new(settings: &ProxmoxSettings) -> Result<PveClient, ProxmoxError> {
        let mut endpoint = settings.endpoint.trim_end_matches('/').to_string();
        if let Some(stripped) = endpoint.strip_suffix("/api2/json") {
            endpoint = stripped.to_string();
        }
        let base = Url::parse(&format!("{endpoint}/api2/json/")).map_err(|e| {
            ProxmoxError::Config(format!("the Proxmox VE endpoint {:?} is not a URL: {e}", settings.endpoint))
        })?;
        if base.scheme() != "https" {
            return Err(ProxmoxError::Config(format!(
                "the Proxmox VE endpoint {:?} must use https (PVE serves its API on https://HOST:8006/)",
                settings.endpoint
            )));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .danger_accept_invalid_certs(settings.insecure)
            .min_tls_version(match settings.min_tls.as_deref() {
                Some("1.3") => reqwest::tls::Version::TLS_1_3,
                _ => reqwest::tls::Version::TLS_1_2,
            });
        if let Some(ca) = &settings.ca_certificate {
            let pem = if ca.trim_start().starts_with("-----BEGIN") {
                ca.as_bytes().to_vec()
            } else {
                std::fs::read(ca).map_err(|e| {
                    ProxmoxError::Config(format!("caCertificate: cannot read the CA certificate file {ca:?}: {e}"))
                })?
            };
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ProxmoxError::Config(format!("caCertificate: not a PEM certificate: {e}")))?;
            if certs.is_empty() {
                return Err(ProxmoxError::Config("caCertificate: no certificate found in the PEM text".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| ProxmoxError::Config(format!("building the HTTP client: {e}")))?;
        Ok(PveClient {
            base,
            http,
            auth: settings.auth.clone(),
            ticket: Mutex::new(None),
            version: tokio::sync::OnceCell::new(),
        })
    }

    /// The Proxmox VE release the endpoint runs (`GET /version`, read once per client).
    pub async fn version(&self) -> Result<super::version::PveVersion, ProxmoxError> {
        self.version
            .get_or_try_init(|| async {
                let data: Value = self.get("/version", &[]).await?;
                super::version::PveVersion::from_answer(&data)
            })
            .await
            .copied()
    }

    /// An error naming both releases when the endpoint is older than `feature` needs.
    pub async fn require(&self, feature: super::version::Feature) -> Result<(), ProxmoxError> {
        feature.check(self.version().await?, self.base.as_str().trim_end_matches("api2/json/"))
    }

    /// Whether calls run as `root@pam` with a ticket: what PVE's root-only
    /// checks (raw `hostpci`, `args`, hugepages) demand; a token never counts.
    pub fn is_root_ticket(&self) -> bool {
        matches!(&self.auth, ProxmoxAuth::Password { username, .. } if username == "root@pam")
    }

    /// `GET path` decoded into `T`; sent again (up to [`GET_ATTEMPTS`] times)
    /// when the connection is lost before an answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, &str)]) -> Result<T, ProxmoxError> {
        let (data, _) = self.get_with_attribs(path, query).await?;
        Ok(data)
    }

    /// [`PveClient::get`] that also returns the answer's other top-level members (PVE's result
    /// attributes, e.g. a task log's `total`).
    pub async fn get_with_attribs<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(T, Map<String, Value>), ProxmoxError> {
        let params: Params = query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut pause = GET_FIRST_PAUSE;
        let mut attempt = 1;
        let body = loop {
            match self.call_body(Method::GET, path, &params).await {
                Err(e) if attempt < GET_ATTEMPTS && lost(&e) => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
                other => break other?,
            }
        };
        let mut attribs = match body {
            Value::Object(o) => o,
            _ => Map::new(),
        };
        let data = attribs.remove("data").unwrap_or(Value::Null);
        Ok((decode("GET", path, data)?, attribs))
    }

    /// The API base URL this client talks to.
    pub fn endpoint(&self) -> &str {
        self.base.as_str()
    }

    /// `POST path` with form parameters; the `data` (often a UPID).
    pub async fn post(&self, path: &str, params: &Params) -> Result<Value, ProxmoxError> {
        self.call(Method::POST, path, params).await
    }

    /// `PUT path` with form parameters.
    pub async fn put(&self, path: &str, params: &Params) -> Result<Value, ProxmoxError> {
        self.call(Method::PUT, path, params).await
    }

    /// `DELETE path` with query parameters.
    pub async fn delete(&self, path: &str, params: &Params) -> Result<Value, ProxmoxError> {
        self.call(Method::DELETE, path, params).await
    }

    /// One call, renewing the ticket once if PVE says it is no longer valid.
    pub async fn call(&self, method: Method, path: &str, params: &Params) -> Result<Value, ProxmoxError> {
        let body = self.call_body(method, path, params).await?;
        Ok(body.get("data").cloned().unwrap_or(Value::Null))
    }

    /// [`PveClient::call`] answering the whole body (`data` and the result attributes).
    async fn call_body(&self, method: Method, path: &str, params: &Params) -> Result<Value, ProxmoxError> {
        match self.call_once(method.clone(), path, params).await {
            Err(ProxmoxError::Api { status: 401, .. }) if matches!(self.auth, ProxmoxAuth::Password { .. }) => {
                *self.ticket.lock().await = None;
                self.call_once(method, path, params).await
            }
            other => other,
        }
    }

    async fn call_once(&self, method: Method, path: &str, params: &Params) -> Result<Value, ProxmoxError> {
        let url = self.url(path)?;
        let mut request = self.http.request(method.clone(), url);
        request = if method == Method::GET || method == Method::DELETE {
            request.query(params)
        } else {
            request.form(params)
        };
        request = match &self.auth {
            ProxmoxAuth::ApiToken(token) => request.header("Authorization", format!("PVEAPIToken={token}")),
            ProxmoxAuth::Password { .. } => {
                let ticket = self.ticket().await?;
                let request = request.header("Cookie", format!("PVEAuthCookie={}", ticket.cookie));
                if method == Method::GET {
                    request
                } else {
                    request.header("CSRFPreventionToken", ticket.csrf)
                }
            }
        };
        let response = request.send().await.map_err(|e| transport(&method, path, &e))?;
        envelope_body(method.as_str(), path, response).await
    }

    /// The full URL of an API path such as `/nodes/pve/qemu`.
    pub fn url(&self, path: &str) -> Result<Url, ProxmoxError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ProxmoxError::Config(format!("bad API path {path:?}: {e}")))
    }

    /// The HTTP client (for uploads, which stream a body).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Authentication headers for a request built elsewhere (uploads skip CSRF as PVE allows).
    pub async fn auth_headers(&self) -> Result<Vec<(String, String)>, ProxmoxError> {
        Ok(match &self.auth {
            ProxmoxAuth::ApiToken(token) => vec![("Authorization".into(), format!("PVEAPIToken={token}"))],
            ProxmoxAuth::Password { .. } => {
                let ticket = self.ticket().await?;
                vec![
                    ("Cookie".into(), format!("PVEAuthCookie={}", ticket.cookie)),
                    ("CSRFPreventionToken".into(), ticket.csrf),
                ]
            }
        })
    }

    async fn ticket(&self) -> Result<Ticket, ProxmoxError> {
        let mut slot = self.ticket.lock().await;
        if let Some(t) = slot.as_ref().filter(|t| t.obtained.elapsed() < TICKET_RENEWAL) {
            return Ok(t.clone());
        }
        let ProxmoxAuth::Password { username, password } = &self.auth else {
            return Err(ProxmoxError::Config("no password to log in with".into()));
        };
        let path = "/access/ticket";
        let url = self.url(path)?;
        // A login changes nothing but the ticket it hands out: sending it again is always
        // safe, so passing failures (a dropped connection, "got no worker upid", a cfs-lock
        // timeout) are retried like any call's; a refusal or other error surfaces at once.
        let login = || async {
            let response = self
                .http
                .post(url.clone())
                .form(&[("username", username.as_str()), ("password", password.as_str())])
                .send()
                .await
                .map_err(|e| transport(&Method::POST, path, &e))?;
            envelope("POST", path, response).await
        };
        let data = retry(RetryPolicy::default(), |_, _| {}, |_| login()).await.map_err(|e| match e {
            ProxmoxError::Api { status: 401, .. } => ProxmoxError::Config(format!(
                "Proxmox VE refused the login of {username:?} (401): check `proxmox-talos:username` and `proxmox-talos:password`"
            )),
            other => other,
        })?;
        if data.get("NeedTFA").is_some_and(|v| v.as_i64() == Some(1) || v.as_bool() == Some(true)) {
            return Err(ProxmoxError::Config(format!(
                "the Proxmox VE account {username:?} needs a second factor; use an API token instead"
            )));
        }
        let field = |k: &str| {
            data.get(k).and_then(Value::as_str).map(str::to_string).ok_or_else(|| ProxmoxError::Decode {
                method: "POST".into(),
                path: path.into(),
                reason: format!("the answer has no {k}"),
            })
        };
        let ticket = Ticket { cookie: field("ticket")?, csrf: field("CSRFPreventionToken")?, obtained: Instant::now() };
        *slot = Some(ticket.clone());
        Ok(ticket)
    }
}

/// No answer came back (a dropped connection, PVE's proxy failing to reach a
/// node); not an untrusted certificate or a call that already used its whole timeout.
fn lost(e: &ProxmoxError) -> bool {
    match e {
        ProxmoxError::Transport { reason, .. } => !reason.contains("certificate") && !reason.contains("timed out"),
        ProxmoxError::Api { status, .. } => matches!(status, 502 | 503 | 504 | 596),
        _ => false,
    }
}

fn transport(method: &Method, path: &str, e: &reqwest::Error) -> ProxmoxError {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    if reason.contains("certificate") || reason.contains("UnknownIssuer") {
        reason.push_str(
            " (the server's TLS certificate is not trusted: set `proxmox-talos:caCertificate` to its CA, \
             or `proxmox-talos:insecure` to skip verification)",
        );
    }
    // A connect failure never reached PVE; anything later might have.
    ProxmoxError::Transport { method: method.to_string(), path: path.into(), reason, maybe_sent: !e.is_connect() }
}

/// `{"data": ...}` on success; PVE's error shapes otherwise.
pub(crate) async fn envelope(method: &str, path: &str, response: reqwest::Response) -> Result<Value, ProxmoxError> {
    let body = envelope_body(method, path, response).await?;
    Ok(body.get("data").cloned().unwrap_or(Value::Null))
}

/// The whole answer of a successful call (`data` and PVE's result attributes), or its error.
async fn envelope_body(method: &str, path: &str, response: reqwest::Response) -> Result<Value, ProxmoxError> {
    let status = response.status();
    let reason = response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .and_then(|r| std::str::from_utf8(r.as_bytes()).ok().map(str::to_string))
        .or_else(|| status.canonical_reason().map(str::to_string))
        .unwrap_or_default();
    let bytes = response.bytes().await.map_err(|e| ProxmoxError::Transport {
        method: method.into(),
        path: path.into(),
        reason: format!("reading the answer: {e}"),
        maybe_sent: true,
    })?;
    let body: Value =
        if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
    if status.is_success() {
        return Ok(body);
    }
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .unwrap_or(reason);
    let errors: BTreeMap<String, String> = body
        .get("errors")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Err(ProxmoxError::Api { method: method.into(), path: path.into(), status: status.as_u16(), message, errors })
}

fn decode<T: DeserializeOwned>(method: &str, path: &str, value: Value) -> Result<T, ProxmoxError> {
    serde_json::from_value(value).map_err(|e| ProxmoxError::Decode {
        method: method.into(),
        path: path.into(),
        reason: e.to_string(),
    })
}

/// PVE booleans and numbers arrive as numbers or strings: read either.
pub fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}
