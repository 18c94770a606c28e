//! The Kubernetes API as the lab offers it on a control plane VIP: just
//! enough for readiness checks, `/readyz`, `/livez`, `/healthz` (`ok`) and
//! `/version` (the apiserver image's version), which Kubernetes serves to
//! anonymous clients; everything else is 403 for anonymous callers, as a
//! real apiserver answers.
//!
//! Owns: the axum router of that API. The supervisor decides when and where
//! it runs (after bootstrap, on the VIP of the cluster's first live control
//! plane) and with which serving certificate (from the Kubernetes CA).
//! Must not: hold state.

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

/// The Kubernetes version of a control plane configuration (its apiserver
/// image tag, else Talos v1.12's default).
pub fn kubernetes_version(config_text: &str) -> String {
    config_text
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("image:").map(str::trim).filter(|i| i.contains("kube-apiserver:")))
        .and_then(|i| i.rsplit(':').next().map(str::to_string))
        .filter(|v| v.starts_with('v'))
        .unwrap_or_else(|| "v1.35.0".into())
}

/// The router for an apiserver of `version` (`v1.35.0`).
pub fn router(version: String) -> axum::Router {
    let ok = || async { ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok") };
    let (major, minor) = {
        let mut parts = version.trim_start_matches('v').split('.');
        (parts.next().unwrap_or("1").to_string(), parts.next().unwrap_or("35").to_string())
    };
    let info = json!({
        "major": major,
        "minor": minor,
        "emulationMajor": major,
        "emulationMinor": minor,
        "minCompatibilityMajor": major,
        "minCompatibilityMinor": minor,
        "gitVersion": version,
        "gitCommit": "66452049f3d692768c39c797b21b793dce80314e",
        "gitTreeState": "clean",
        "buildDate": "2025-12-17T12:32:06Z",
        "goVersion": "go1.25.5",
        "compiler": "gc",
        "platform": "linux/amd64",
    });
    axum::Router::new()
        .route("/readyz", get(ok))
        .route("/livez", get(ok))
        .route("/healthz", get(ok))
        .route("/version", get(move || async move { axum::Json(info) }))
        .fallback(|uri: axum::http::Uri| async move {
            let body = json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": format!("forbidden: User \"system:anonymous\" cannot get path \"{}\"", uri.path()),
                "reason": "Forbidden",
                "details": {},
                "code": 403,
            });
            (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_comes_from_the_apiserver_image() {
        let text = "cluster:\n    apiServer:\n        image: registry.k8s.io/kube-apiserver:v1.34.2\n";
        assert_eq!(kubernetes_version(text), "v1.34.2");
        assert_eq!(kubernetes_version("machine: {}\n"), "v1.35.0");
    }
}
