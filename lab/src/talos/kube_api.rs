//! The Kubernetes API as the lab offers it on a control plane VIP: just
//! enough for readiness checks, `/readyz`, `/livez`, `/healthz` (`ok`) and
//! `/version` (the apiserver image's version, following the VIP holder's configuration as its
//! apiserver is upgraded), which Kubernetes serves to
//! anonymous clients; everything else is 403 for anonymous callers, as a
//! real apiserver answers.
//!
//! Owns: the axum router of that API. The supervisor decides when and where
//! it runs (after bootstrap, on the VIP of the cluster's first live control
//! plane) and with which serving certificate (from the Kubernetes CA).
//! Must not: hold state.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

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

/// The Kubernetes components a machine configuration runs and their images: the kubelet (every
/// node) and, where the configuration names them, the apiserver, controller manager, scheduler
/// and kube-proxy.
pub fn component_images(text: &str) -> BTreeMap<&'static str, String> {
    use serde::Deserialize as _;
    let mut out = BTreeMap::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let Ok(v) = serde_json::Value::deserialize(doc) else { continue };
        if v.get("machine").is_none() {
            continue;
        }
        for (name, pointer) in [
            ("kubelet", "/machine/kubelet/image"),
            ("kube-apiserver", "/cluster/apiServer/image"),
            ("kube-controller-manager", "/cluster/controllerManager/image"),
            ("kube-scheduler", "/cluster/scheduler/image"),
            ("kube-proxy", "/cluster/proxy/image"),
        ] {
            if let Some(image) = v.pointer(pointer).and_then(serde_json::Value::as_str) {
                out.insert(name, image.to_string());
            }
        }
    }
    out
}

/// The router for an apiserver whose version (`v1.35.0`) the supervisor keeps in `version`.
pub fn router(version: Arc<Mutex<String>>) -> axum::Router {
    let ok = || async { ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok") };
    axum::Router::new()
        .route("/readyz", get(ok))
        .route("/livez", get(ok))
        .route("/healthz", get(ok))
        .route(
            "/version",
            get(move || {
                let version = version.lock().unwrap_or_else(|e| e.into_inner()).clone();
                async move { axum::Json(version_info(&version)) }
            }),
        )
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

/// `/version`'s body for `version`.
fn version_info(version: &str) -> serde_json::Value {
    let (major, minor) = {
        let mut parts = version.trim_start_matches('v').split('.');
        (parts.next().unwrap_or("1").to_string(), parts.next().unwrap_or("35").to_string())
    };
    json!({
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

    #[test]
    fn component_images_of_a_control_plane() {
        let text = "version: v1alpha1\nmachine:\n  kubelet:\n    image: ghcr.io/siderolabs/kubelet:v1.35.1\n\
                    cluster:\n  apiServer:\n    image: registry.k8s.io/kube-apiserver:v1.35.1\n\
                    ---\napiVersion: v1alpha1\nkind: HostnameConfig\nhostname: a\n";
        let images = component_images(text);
        assert_eq!(images["kubelet"], "ghcr.io/siderolabs/kubelet:v1.35.1");
        assert_eq!(images["kube-apiserver"], "registry.k8s.io/kube-apiserver:v1.35.1");
        assert_eq!(images.len(), 2);
    }
}
