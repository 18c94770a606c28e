//! The talosconfig file `talosctl` reads (`~/.talos/config`, `--talosconfig`).
//!
//! Owns: rendering one context (named after the cluster) from a
//! [`ClientConfiguration`], endpoints and nodes, byte for byte as Talos's
//! `pkg/machinery/client/config` marshals it (`context`, then `contexts` →
//! name → `endpoints`, `nodes` (left out when empty), `ca`, `crt`, `key`, the
//! last three base64 of PEM); and the rules for what a context name, an
//! endpoint and a node may be.
//! Must not: do IO, or put any key material into error messages.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::goyaml::{self, Value};
use super::secrets::ClientConfiguration;

/// The Talos API (apid) port `talosctl` adds to an endpoint without one.
pub const APID_PORT: u16 = 50000;

/// What endpoints may be, for error messages and documentation.
pub const ENDPOINT_RULE: &str = "an endpoint is the host name or IP address of a control-plane node or of a load \
     balancer in front of them, optionally with a port (default 50000): e.g. 192.168.1.210, 192.168.1.210:50000, \
     talos.example.com, fd00::10 or [fd00::10]:50000; it is not a URL";

/// What nodes may be, for error messages and documentation.
pub const NODE_RULE: &str = "a node is the host name or IP address of a machine, without a port or scheme \
     (the endpoint forwards requests to it): e.g. 192.168.1.211 or fd00::11";

/// What a context (cluster) name may be.
pub const CONTEXT_NAME_RULE: &str = "the name must be 1 to 128 bytes of printable text on one line";

/// Why a talosconfig cannot be rendered. `field` is the argument path
/// (`clusterName`, `endpoints[1]`, `clientConfiguration.clientKey`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct TalosconfigError {
    /// The argument at fault.
    pub field: String,
    /// Why, and what would be valid.
    pub reason: String,
}

impl TalosconfigError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { field: field.into(), reason: reason.into() }
    }
}

/// One talosconfig context, as `talosctl gen config` and
/// terraform-provider-talos's `talos_client_configuration` produce it.
#[derive(Debug, Clone, Copy)]
pub struct Talosconfig<'a> {
    /// Context name; by convention the cluster name. It is also the current context.
    pub context: &'a str,
    /// CA, client certificate and key (base64 of PEM).
    pub client: &'a ClientConfiguration,
    /// Addresses `talosctl` connects to.
    pub endpoints: &'a [String],
    /// Machines commands target by default (may be empty).
    pub nodes: &'a [String],
}

impl Talosconfig<'_> {
    /// Every problem with the inputs, each naming its argument path.
    pub fn problems(&self) -> Vec<TalosconfigError> {
        let mut out = Vec::new();
        if let Err(reason) = check_context_name(self.context) {
            out.push(TalosconfigError::new("clusterName", reason));
        }
        if self.endpoints.is_empty() {
            out.push(TalosconfigError::new("endpoints", format!("at least one endpoint is required; {ENDPOINT_RULE}")));
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            if let Err(reason) = check_endpoint(e) {
                out.push(TalosconfigError::new(format!("endpoints[{i}]"), reason));
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if let Err(reason) = check_node(n) {
                out.push(TalosconfigError::new(format!("nodes[{i}]"), reason));
            }
        }
        out.extend(client_configuration_problems(self.client));
        out
    }

    /// The talosconfig YAML. Fails with the first of [`Self::problems`].
    pub fn render(&self) -> Result<String, TalosconfigError> {
        fn list(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        if let Some(first) = self.problems().into_iter().next() {
            return Err(first);
        }
        // Talos stores the PEM bytes and writes them in standard base64: canonicalise.
        let b64 = |v: &str, kind| canonical_pem_b64(v, kind).unwrap_or_default();
        let (ca, crt, key) = (
            b64(&self.client.ca_certificate, "CERTIFICATE"),
            b64(&self.client.client_certificate, "CERTIFICATE"),
            b64(&self.client.client_key, "PRIVATE KEY"),
        );
        let mut context = vec![("endpoints", Value::List(list(self.endpoints)))];
        if !self.nodes.is_empty() {
            context.push(("nodes", Value::List(list(self.nodes))));
        }
        context.extend([("ca", Value::Str(&ca)), ("crt", Value::Str(&crt)), ("key", Value::Str(&key))]);
        let doc = [
            ("context", Value::Str(self.context)),
            ("contexts", Value::Map(vec![(self.context, Value::Map(context))])),
        ];
        goyaml::to_string(&doc).map_err(|e| TalosconfigError::new("clusterName", e.reason))
    }
}

/// Every problem with a client configuration: each field must be base64 of a
/// PEM block of its kind. Fields are named `clientConfiguration.<field>`.
pub fn client_configuration_problems(client: &ClientConfiguration) -> Vec<TalosconfigError> {
    let pems = [
        ("caCertificate", &client.ca_certificate, "CERTIFICATE"),
        ("clientCertificate", &client.client_certificate, "CERTIFICATE"),
        ("clientKey", &client.client_key, "PRIVATE KEY"),
    ];
    pems.into_iter()
        .filter_map(|(name, value, kind)| {
            canonical_pem_b64(value, kind)
                .err()
                .map(|r| TalosconfigError::new(format!("clientConfiguration.{name}"), r))
        })
        .collect()
}

/// Checks a context (cluster) name: non-empty, at most 128 bytes, one line of
/// printable text (no control characters or byte-order mark).
pub fn check_context_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > goyaml::MAX_SIMPLE_KEY_BYTES {
        return Err(format!("{CONTEXT_NAME_RULE} (got {} bytes)", name.len()));
    }
    if name.chars().any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')) {
        return Err(format!("{CONTEXT_NAME_RULE} (it contains a control character or line break)"));
    }
    Ok(())
}

/// Checks a Talos API endpoint: `host`, `host:port`, bare IPv6 or `[IPv6]:port`.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    if let Some(url_problem) = url_problem(endpoint) {
        return Err(format!("{url_problem}; {ENDPOINT_RULE}"));
    }
    let (host, port) = split_host_port(endpoint).map_err(|why| format!("{endpoint:?} {why}; {ENDPOINT_RULE}"))?;
    check_host(host).map_err(|why| format!("{endpoint:?}: {why}; {ENDPOINT_RULE}"))?;
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err(format!("{endpoint:?}: the port must be a number from 1 to 65535; {ENDPOINT_RULE}")),
        }
    }
    Ok(())
}

/// Checks a node: a host name or IP address, with no port.
pub fn check_node(node: &str) -> Result<(), String> {
    if let Some(url_problem) = url_problem(node) {
        return Err(format!("{url_problem}; {NODE_RULE}"));
    }
    if node.parse::<Ipv6Addr>().is_ok() {
        return Ok(());
    }
    if node.contains([':', '[', ']']) {
        return Err(format!("{node:?} has a port or brackets; {NODE_RULE}"));
    }
    check_host(node).map_err(|why| format!("{node:?}: {why}; {NODE_RULE}"))
}

/// A URL (or URL-ish text) where an address was expected, with a suggestion.
fn url_problem(value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("the value is empty".into());
    }
    if let Some((scheme, rest)) = value.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let host = match split_host_port(authority) {
            Ok((host, _)) if check_host(host).is_ok() => Some(host),
            _ => None,
        };
        let hint = host.map(|h| format!(" (did you mean {h}?)")).unwrap_or_default();
        return Some(format!("{value:?} is a {scheme} URL{hint}"));
    }
    if value.contains(|c: char| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '@' | '%' | ',')) {
        return Some(format!("{value:?} contains characters that cannot appear in an address"));
    }
    None
}

/// Splits `host[:port]`, `[ipv6]:port` or a bare IPv6 address the way Talos's
/// client does before adding the default port.
fn split_host_port(s: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else { return Err("has an unclosed '['") };
        if inner.parse::<Ipv6Addr>().is_err() {
            return Err("has brackets around something that is not an IPv6 address");
        }
        return match after.strip_prefix(':') {
            Some(port) => Ok((inner, Some(port))),
            None if after.is_empty() => Err("is a bracketed IPv6 address without a port (write it without brackets)"),
            None => Err("has text after ']'"),
        };
    }
    if s.parse::<Ipv6Addr>().is_ok() {
        return Ok((s, None));
    }
    match s.split_once(':') {
        Some((_, port)) if port.contains(':') => Err("has more than one ':' but is not an IPv6 address"),
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((s, None)),
    }
}

/// An IP address or a DNS host name (letters, digits, `-`, `_`, dots between labels).
fn check_host(host: &str) -> Result<(), String> {
    if host.parse::<Ipv4Addr>().is_ok() || host.parse::<Ipv6Addr>().is_ok() {
        return Ok(());
    }
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.len() > 253 {
        return Err("the host name is longer than 253 characters".into());
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.iter().all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit())) {
        return Err("not a valid IPv4 address".into());
    }
    for label in labels {
        let ok = (1..=63).contains(&label.len())
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err("not a valid IP address or host name".into());
        }
    }
    Ok(())
}

/// `value` decoded from standard base64 must be a PEM block whose type ends
/// with `kind`; returns it re-encoded in canonical standard base64.
fn canonical_pem_b64(value: &str, kind: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("is required".into());
    }
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let raw = STANDARD.decode(compact).map_err(|_| "is not standard base64 (expected base64 of a PEM block)")?;
    let block = pem::parse(&raw).map_err(|_| "does not decode to a PEM block")?;
    if !block.tag().ends_with(kind) {
        return Err(format!("is a {} PEM block; expected {kind}", block.tag()));
    }
    Ok(STANDARD.encode(raw))
}

#[cfg(test)]
mod tests;
