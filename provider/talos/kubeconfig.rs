//! The admin kubeconfig a control plane hands out (`MachineService/Kubeconfig`).
//!
//! Owns: reading the current context's cluster and user out of a kubeconfig
//! (server URL, CA, client certificate and key, kept as base64 of PEM, the
//! form kubeconfig's `*-data` fields hold), the client certificate's expiry,
//! and the renewal decision (`certificateRenewalDuration`, a Go duration).
//! Must not: do IO or read the clock (callers pass `now`), or put key
//! material into error messages (YAML errors are reported by position only).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;
use time::OffsetDateTime;

/// The renewal window used when none is given (terraform-provider-talos's default).
pub const DEFAULT_RENEWAL_DURATION: &str = "720h";

/// What a client needs from a kubeconfig: the current context's cluster and user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigCredentials {
    /// The cluster entry's name (Talos: the cluster name).
    pub cluster_name: String,
    /// The API server URL, e.g. `https://192.168.1.210:6443`.
    pub host: String,
    /// The Kubernetes CA certificate: base64 of its PEM.
    pub ca_certificate: String,
    /// The client certificate: base64 of its PEM.
    pub client_certificate: String,
    /// The client key: base64 of its PEM.
    pub client_key: String,
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    clusters: Vec<Named<ClusterEntry>>,
    #[serde(default)]
    users: Vec<Named<UserEntry>>,
    #[serde(default)]
    contexts: Vec<Named<ContextEntry>>,
    #[serde(rename = "current-context", default)]
    current_context: String,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: T,
}

#[derive(Deserialize)]
struct ClusterEntry {
    #[serde(default)]
    server: String,
    #[serde(rename = "certificate-authority-data", default)]
    certificate_authority_data: String,
}

#[derive(Deserialize)]
struct UserEntry {
    #[serde(rename = "client-certificate-data", default)]
    client_certificate_data: String,
    #[serde(rename = "client-key-data", default)]
    client_key_data: String,
}

#[derive(Deserialize)]
struct ContextEntry {
    cluster: String,
    user: String,
}

/// Reads the current context's credentials out of `text`.
pub fn parse(text: &str) -> Result<KubeconfigCredentials, String> {
    let file: File = serde_norway::from_str(text).map_err(|e| match e.location() {
        Some(at) => format!("the kubeconfig is not a valid kubeconfig YAML document (line {})", at.line()),
        None => "the kubeconfig is not a valid kubeconfig YAML document".to_string(),
    })?;
    let context = match file.contexts.iter().find(|c| c.name == file.current_context) {
        Some(c) => &c.value,
        None if file.current_context.is_empty() && file.contexts.len() == 1 => &file.contexts[0].value,
        None => return Err(format!("the kubeconfig has no context {:?} (its current-context)", file.current_context)),
    };
    let cluster = file
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .ok_or_else(|| format!("the kubeconfig has no cluster {:?}", context.cluster))?;
    let user = file
        .users
        .iter()
        .find(|u| u.name == context.user)
        .ok_or_else(|| format!("the kubeconfig has no user {:?}", context.user))?;
    if !cluster.value.server.starts_with("https://") {
        return Err(format!("the kubeconfig's cluster {:?} has no https:// server", cluster.name));
    }
    let pem_field = |field: &str, value: &str, kind: &str| -> Result<String, String> {
        let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        let raw = STANDARD.decode(&compact).map_err(|_| format!("the kubeconfig's {field} is not base64"))?;
        let block = pem::parse(&raw).map_err(|_| format!("the kubeconfig's {field} is not a PEM block"))?;
        if !block.tag().ends_with(kind) {
            return Err(format!("the kubeconfig's {field} is a {} PEM block; expected {kind}", block.tag()));
        }
        Ok(compact)
    };
    Ok(KubeconfigCredentials {
        cluster_name: cluster.name.clone(),
        host: cluster.value.server.clone(),
        ca_certificate: pem_field(
            "certificate-authority-data",
            &cluster.value.certificate_authority_data,
            "CERTIFICATE",
        )?,
        client_certificate: pem_field("client-certificate-data", &user.value.client_certificate_data, "CERTIFICATE")?,
        client_key: pem_field("client-key-data", &user.value.client_key_data, "PRIVATE KEY")?,
    })
}

/// The expiry (`notAfter`) of a certificate given as base64 of its PEM.
pub fn certificate_not_after(b64_pem: &str) -> Result<OffsetDateTime, String> {
    let raw = STANDARD.decode(b64_pem.trim()).map_err(|_| "the certificate is not base64".to_string())?;
    let block = pem::parse(&raw).map_err(|_| "the certificate is not a PEM block".to_string())?;
    let (_, cert) = x509_parser::parse_x509_certificate(block.contents())
        .map_err(|_| "the certificate is not a valid X.509 certificate".to_string())?;
    Ok(cert.validity().not_after.to_datetime())
}

/// Parses a renewal window: a non-negative Go duration (`720h`, `2160h`, `1h30m`).
pub fn renewal_window(text: &str) -> Result<Duration, String> {
    let nanos = super::config::parse_go_duration(text).map_err(|e| {
        format!("{e}; expected a Go duration with units h, m, s (e.g. \"720h\" for 30 days, \"2160h\" for 90 days)")
    })?;
    u64::try_from(nanos)
        .map(Duration::from_nanos)
        .map_err(|_| format!("{text:?} is negative; expected a duration of zero or more (e.g. \"720h\")"))
}

/// Whether a certificate that expires at `not_after` is inside the renewal
/// `window` at `now` (it expires within `window`, or already has).
pub fn renewal_due(not_after: OffsetDateTime, now: OffsetDateTime, window: Duration) -> bool {
    match time::Duration::try_from(window) {
        Ok(w) => now.checked_add(w).is_none_or(|renew_from| renew_from >= not_after),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    fn kubeconfig(current: &str, server: &str) -> String {
        let ca = b64("-----BEGIN CERTIFICATE-----\nAAECAw==\n-----END CERTIFICATE-----\n");
        let key = b64("-----BEGIN EC PRIVATE KEY-----\nAAECAw==\n-----END EC PRIVATE KEY-----\n");
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n    - name: other\n      cluster:\n        server: https://10.0.0.1:6443\n        certificate-authority-data: {ca}\n    - name: lab\n      cluster:\n        server: {server}\n        certificate-authority-data: {ca}\nusers:\n    - name: admin@lab\n      user:\n        client-certificate-data: {ca}\n        client-key-data: {key}\ncontexts:\n    - context:\n        cluster: lab\n        namespace: default\n        user: admin@lab\n      name: admin@lab\ncurrent-context: {current}\n"
        )
    }

    #[test]
    fn reads_the_current_contexts_cluster_and_user() {
        let c = parse(&kubeconfig("admin@lab", "https://127.0.0.5:6443")).unwrap();
        assert_eq!(c.cluster_name, "lab");
        assert_eq!(c.host, "https://127.0.0.5:6443");
        assert!(String::from_utf8(STANDARD.decode(&c.client_key).unwrap()).unwrap().contains("EC PRIVATE KEY"));
        assert!(String::from_utf8(STANDARD.decode(&c.ca_certificate).unwrap()).unwrap().contains("CERTIFICATE"));
    }

    #[test]
    fn names_what_is_missing_without_quoting_secrets() {
        let err = parse(&kubeconfig("admin@other", "https://127.0.0.5:6443")).unwrap_err();
        assert_eq!(err, "the kubeconfig has no context \"admin@other\" (its current-context)");
        let err = parse(&kubeconfig("admin@lab", "http://127.0.0.5:6443")).unwrap_err();
        assert!(err.contains("no https:// server"), "{err}");
        let broken =
            kubeconfig("admin@lab", "https://127.0.0.5:6443").replace("client-key-data: ", "client-key-data: !!");
        let err = parse(&broken).unwrap_err();
        assert!(!err.contains("BEGIN") && !err.contains("LS0t"), "{err}");
        let err = parse("clusters: [").unwrap_err();
        assert!(err.starts_with("the kubeconfig is not a valid kubeconfig YAML document"), "{err}");
    }

    #[test]
    fn renewal_windows_are_non_negative_go_durations() {
        assert_eq!(renewal_window("720h").unwrap(), Duration::from_secs(720 * 3600));
        assert_eq!(renewal_window("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(renewal_window("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(renewal_window("0").unwrap(), Duration::ZERO);
        let err = renewal_window("30d").unwrap_err();
        assert!(err.contains("unknown unit \"d\"") && err.contains("\"720h\""), "{err}");
        assert!(renewal_window("720").unwrap_err().contains("missing unit"));
        assert!(renewal_window("").is_err());
        assert!(renewal_window("-1h").unwrap_err().contains("negative"));
    }

    #[test]
    fn reads_a_certificates_expiry() {
        use crate::talos::secrets::{self, FixedClock, VersionContract};
        let issued = OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap();
        let clock = FixedClock(issued);
        let bundle = secrets::generate(VersionContract::V1_6, &clock, &mut rand_core::OsRng).unwrap();
        let client = secrets::client_configuration(&bundle, &clock).unwrap();
        let not_after = certificate_not_after(&client.client_certificate).unwrap();
        assert_eq!(not_after, issued + secrets::CLIENT_CERTIFICATE_VALIDITY);
        assert!(certificate_not_after(&client.client_key).is_err());
        assert!(certificate_not_after("%%%").is_err());
    }

    #[test]
    fn renewal_is_due_inside_the_window() {
        let not_after = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let day = Duration::from_secs(86_400);
        let days_before = |d: i64| not_after - time::Duration::days(d);
        assert!(!renewal_due(not_after, days_before(31), 30 * day));
        assert!(renewal_due(not_after, days_before(30), 30 * day));
        assert!(renewal_due(not_after, days_before(29), 30 * day));
        assert!(renewal_due(not_after, not_after + time::Duration::days(1), Duration::ZERO), "expired");
        assert!(!renewal_due(not_after, days_before(1), Duration::ZERO));
        assert!(renewal_due(not_after, days_before(1), Duration::MAX), "a window past any date");
    }
}
