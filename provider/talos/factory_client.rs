//! A thin typed client for the Talos Image Factory HTTP API: the only place
//! that builds factory URLs or makes factory requests.
//!
//! Owns: the endpoints the provider uses (`POST /schematics`,
//! `GET /schematics/:id`, `GET /versions`, `GET /version/:v/extensions/official`),
//! their request and response shapes, bounded timeouts, TLS (rustls with the
//! Mozilla and system roots; verification is always on), and one error type
//! that names the request's method, URL and HTTP status.
//! Must not: know Pulumi types, or compute schematic IDs (see
//! [`super::schematic`]).

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::{de::DeserializeOwned, Deserialize};

/// Time allowed to establish a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole request, response body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of an error response body is quoted in an error.
const ERROR_BODY_LIMIT: usize = 512;

/// An Image Factory at a base URL such as `https://factory.talos.dev`.
#[derive(Debug, Clone)]
pub struct FactoryClient {
    base: Url,
    http: reqwest::Client,
}

/// What `POST /schematics` answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CreatedSchematic {
    /// The schematic ID the factory computed.
    pub id: String,
    /// The canonical YAML it stored (absent from older factories).
    #[serde(default)]
    pub schematic: Option<String>,
}

/// One official system extension for a Talos version.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExtensionInfo {
    /// Name, e.g. `siderolabs/qemu-guest-agent`.
    pub name: String,
    /// Image reference, e.g. `ghcr.io/siderolabs/qemu-guest-agent:10.0.2`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Image digest, `sha256:…`.
    pub digest: String,
    /// Author.
    #[serde(default)]
    pub author: String,
    /// Description.
    #[serde(default)]
    pub description: String,
}

/// Why a factory request failed. Every variant names the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactoryError {
    /// The configured base URL cannot be used.
    #[error("the Image Factory URL {url:?} is not usable: {reason}")]
    InvalidUrl {
        /// The URL as configured.
        url: String,
        /// Why.
        reason: String,
    },
    /// No response: connection refused, TLS failure, timeout, …
    #[error("{method} {url} failed: {reason}")]
    Transport {
        /// HTTP method.
        method: String,
        /// Full request URL.
        url: String,
        /// The cause, with its chain.
        reason: String,
    },
    /// The factory answered with an unexpected status.
    #[error("{method} {url} returned HTTP {status}{}", body_suffix(.body))]
    Status {
        /// HTTP method.
        method: String,
        /// Full request URL.
        url: String,
        /// Status code and reason phrase, e.g. `400 Bad Request`.
        status: String,
        /// The start of the response body.
        body: String,
    },
    /// The response body is not what the endpoint returns.
    #[error("{method} {url} returned an unexpected body: {reason}")]
    Decode {
        /// HTTP method.
        method: String,
        /// Full request URL.
        url: String,
        /// What did not parse.
        reason: String,
    },
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

impl FactoryClient {
    /// A client for the factory at `base_url` (`http` or `https`, optionally with a path prefix).
    pub fn new(base_url: &str) -> Result<FactoryClient, FactoryError> {
        let invalid = |reason: String| FactoryError::InvalidUrl { url: base_url.to_string(), reason };
        let base = Url::parse(base_url.trim_end_matches('/')).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("expected an http:// or https:// URL".into()));
        }
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("proxmox-talos/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| invalid(chain(&e)))?;
        Ok(FactoryClient { base, http })
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// `POST /schematics` with `yaml`; the factory answers `201 {"id", "schematic"}`.
    pub async fn create_schematic(&self, yaml: &str) -> Result<CreatedSchematic, FactoryError> {
        let url = self.url(&["schematics"]);
        let req =
            self.http.post(url.clone()).header(reqwest::header::CONTENT_TYPE, "application/yaml").body(yaml.to_owned());
        let (status, body) = self.send(Method::POST, &url, req).await?;
        if !status.is_success() {
            return Err(status_error(Method::POST, &url, status, &body));
        }
        decode(Method::POST, &url, &body)
    }

    /// `GET /schematics/:id`: the stored YAML, or `None` when the factory does not know the ID.
    pub async fn schematic(&self, id: &str) -> Result<Option<String>, FactoryError> {
        let url = self.url(&["schematics", id]);
        let (status, body) = self.send(Method::GET, &url, self.http.get(url.clone())).await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(String::from_utf8_lossy(&body).into_owned())),
            s => Err(status_error(Method::GET, &url, s, &body)),
        }
    }

    /// `GET /versions`: the Talos versions the factory can build.
    pub async fn versions(&self) -> Result<Vec<String>, FactoryError> {
        self.get_json(&["versions"]).await
    }

    /// `GET /version/:version/extensions/official`.
    pub async fn official_extensions(&self, talos_version: &str) -> Result<Vec<ExtensionInfo>, FactoryError> {
        self.get_json(&["version", talos_version, "extensions", "official"]).await
    }

    async fn get_json<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, FactoryError> {
        let url = self.url(segments);
        let (status, body) = self.send(Method::GET, &url, self.http.get(url.clone())).await?;
        if !status.is_success() {
            return Err(status_error(Method::GET, &url, status, &body));
        }
        decode(Method::GET, &url, &body)
    }

    /// The base URL with `segments` appended, each percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut().expect("checked in new").pop_if_empty().extend(segments);
        url
    }

    async fn send(
        &self,
        method: Method,
        url: &Url,
        req: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), FactoryError> {
        let transport = |e: reqwest::Error| FactoryError::Transport {
            method: method.to_string(),
            url: url.to_string(),
            reason: chain(&e),
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(transport)?;
        Ok((status, body.to_vec()))
    }
}

fn status_error(method: Method, url: &Url, status: StatusCode, body: &[u8]) -> FactoryError {
    let text = String::from_utf8_lossy(body);
    let mut body: String = text.trim().chars().take(ERROR_BODY_LIMIT).collect();
    if text.trim().chars().count() > ERROR_BODY_LIMIT {
        body.push('…');
    }
    FactoryError::Status { method: method.to_string(), url: url.to_string(), status: status.to_string(), body }
}

fn decode<T: DeserializeOwned>(method: Method, url: &Url, body: &[u8]) -> Result<T, FactoryError> {
    serde_json::from_slice(body).map_err(|e| FactoryError::Decode {
        method: method.to_string(),
        url: url.to_string(),
        reason: e.to_string(),
    })
}

/// An error and its causes, `outer: inner: innermost` (reqwest's own message
/// alone does not say "connection refused" or "certificate").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_built_under_the_base_and_segments_are_encoded() {
        let c = FactoryClient::new("https://factory.example.com/prefix/").unwrap();
        assert_eq!(c.base_url(), "https://factory.example.com/prefix");
        assert_eq!(c.url(&["schematics"]).as_str(), "https://factory.example.com/prefix/schematics");
        assert_eq!(
            c.url(&["version", "v1.12.4", "extensions", "official"]).as_str(),
            "https://factory.example.com/prefix/version/v1.12.4/extensions/official"
        );
        assert_eq!(c.url(&["schematics", "a/b?c"]).as_str(), "https://factory.example.com/prefix/schematics/a%2Fb%3Fc");
        let root = FactoryClient::new("http://127.0.0.1:8080").unwrap();
        assert_eq!(root.url(&["versions"]).as_str(), "http://127.0.0.1:8080/versions");
    }

    #[test]
    fn unusable_urls_are_rejected() {
        for bad in ["factory.talos.dev", "ftp://factory.talos.dev", "mailto:x@y"] {
            let e = FactoryClient::new(bad).unwrap_err();
            assert!(matches!(e, FactoryError::InvalidUrl { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn errors_name_the_request_and_the_status() {
        let url = Url::parse("https://f.example/schematics").unwrap();
        let e = status_error(Method::POST, &url, StatusCode::BAD_REQUEST, b"yaml: unmarshal errors\n");
        assert_eq!(
            e.to_string(),
            "POST https://f.example/schematics returned HTTP 400 Bad Request: yaml: unmarshal errors"
        );
        let e = decode::<CreatedSchematic>(Method::POST, &url, b"<html>").unwrap_err();
        assert!(e.to_string().starts_with("POST https://f.example/schematics returned an unexpected body"), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_factory_is_a_transport_error_naming_the_url() {
        // Port 1 on loopback: nothing listens there.
        let c = FactoryClient::new("http://127.0.0.1:1").unwrap();
        let e = c.versions().await.unwrap_err();
        assert!(matches!(e, FactoryError::Transport { .. }), "{e}");
        assert!(e.to_string().starts_with("GET http://127.0.0.1:1/versions failed"), "{e}");
    }
}
