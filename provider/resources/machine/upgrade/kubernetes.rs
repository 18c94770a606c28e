//! Kubernetes version rollouts by `machine:ConfigurationApply` (ADR 0012).
//!
//! A configuration whose Kubernetes component images change (`getConfiguration`'s
//! `kubernetesVersion`) reaches its node component by component, in the order Talos's own
//! `upgrade-k8s` uses: kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy, then
//! the kubelet. Each step is the configuration the node ran with one more component on its new
//! image, applied without a reboot, and followed by a health gate (every service with a health
//! check healthy again, so the kubelet has restarted onto its image; on control planes etcd with
//! all its members). Nodes take their cluster's rollout gate: one control plane and one worker
//! batch at a time. The resource then applies the whole new configuration as usual.
//!
//! Owns: which components changed, the step configurations, version-skew refusals, and the
//! steps on one node. Must not: change anything but component images in a step.

use super::super::apply_plan as plan;
use super::super::talos_node::{self, Deadline};
use super::{configured, etcd_members, gates, healthy, image, Failed, Request};
use crate::framework::{Context, Severity};
use crate::talos::api::machine::apply_configuration_request::Mode;
use serde_json::Value as Json;

/// The components, in rollout order: name, where its image is, and the patch that sets it.
const COMPONENTS: [(&str, &str, &str); 5] = [
    ("kube-apiserver", "/cluster/apiServer/image", "cluster:\n  apiServer:\n    image: "),
    ("kube-controller-manager", "/cluster/controllerManager/image", "cluster:\n  controllerManager:\n    image: "),
    ("kube-scheduler", "/cluster/scheduler/image", "cluster:\n  scheduler:\n    image: "),
    ("kube-proxy", "/cluster/proxy/image", "cluster:\n  proxy:\n    image: "),
    ("kubelet", "/machine/kubelet/image", "machine:\n  kubelet:\n    image: "),
];

fn v1alpha1(config: &str) -> Option<Json> {
    use serde::Deserialize as _;
    serde_norway::Deserializer::from_str(config)
        .filter_map(|d| Json::deserialize(d).ok())
        .find(|d| d.get("machine").is_some())
}

/// The image of each component the configuration names, in rollout order.
fn images(config: &str) -> Vec<(&'static str, Option<String>)> {
    let doc = v1alpha1(config);
    COMPONENTS
        .iter()
        .map(|(name, pointer, _)| {
            (*name, doc.as_ref().and_then(|d| d.pointer(pointer)).and_then(Json::as_str).map(str::to_string))
        })
        .collect()
}

fn tag(image: &str) -> Option<&str> {
    let (_, tag) = image.rsplit_once(':')?;
    (!tag.contains('/')).then_some(tag)
}

/// The Kubernetes version a configuration runs: its kubelet image's tag (`v1.35.0`).
pub fn version(config: &str) -> Option<String> {
    let images = images(config);
    let kubelet = images.iter().find(|(n, _)| *n == "kubelet").and_then(|(_, i)| i.as_deref());
    kubelet.and_then(tag).map(str::to_string)
}

/// Why going from `old` to `new` Kubernetes is refused: Kubernetes (and Talos's upgrade-k8s)
/// upgrades one minor release at a time and never downgrades across minors.
pub fn check_change(old_config: Option<&str>, new_config: &str) -> Result<(), String> {
    let parse = |c: &str| version(c).and_then(|v| image::Version::parse(&v));
    let (Some(old), Some(new)) = (old_config.and_then(parse), parse(new_config)) else { return Ok(()) };
    if (new.major, new.minor) < (old.major, old.minor) {
        return Err(format!(
            "Kubernetes cannot be downgraded across minor releases (from {old} to {new}); a patch release of \
             v{}.{} is possible",
            old.major, old.minor
        ));
    }
    if new.major != old.major || new.minor > old.minor + 1 {
        return Err(format!(
            "Kubernetes upgrades one minor release at a time (from {old} to {new}): go to v{}.{}.x first",
            old.major,
            old.minor + 1
        ));
    }
    Ok(())
}

/// The step configurations from `old` to `new`: `old` with one more changed component on its
/// new image each time, in rollout order. Empty when no component image changes.
pub fn steps(old: &str, new: &str) -> Result<Vec<(&'static str, String)>, String> {
    let (before, after) = (images(old), images(new));
    let mut steps = Vec::new();
    let mut current = old.to_string();
    for (((name, from), (_, to)), (_, _, patch)) in before.iter().zip(&after).zip(&COMPONENTS) {
        let Some(to) = to else { continue };
        if from.as_deref() == Some(to.as_str()) {
            continue;
        }
        current = plan::render(&current, &[format!("{patch}{to}\n")]).map_err(|f| f.reason)?;
        steps.push((*name, current.clone()));
    }
    Ok(steps)
}

/// Rolls the node from the configuration it ran (`old`) to `req.rendered`'s Kubernetes
/// components, one component at a time, inside its cluster's rollout gate.
pub async fn roll(ctx: &Context, req: &Request<'_>, old: &str, deadline: &Deadline) -> Result<(), Failed> {
    let label = req.label;
    let steps = steps(old, req.rendered).map_err(|e| Failed::Clean(format!("{label}: {e}")))?;
    if steps.is_empty() {
        return Ok(());
    }
    let (from, to) = (version(old).unwrap_or_default(), version(req.rendered).unwrap_or_default());
    let control_plane = image::is_control_plane(req.rendered);
    let rollout = gates::rollout(&image::cluster_key(req.rendered), req.worker_batch);
    let _turn = rollout.turn(ctx, label, control_plane, deadline).await.map_err(Failed::Clean)?;
    let client = configured(ctx, req, deadline).await.map_err(Failed::Clean)?;
    let running = talos_node::running_config(&client).await.ok();
    let etcd_ran = control_plane
        && client.services().await.is_ok_and(|s| s.iter().any(|(id, state, _)| id == "etcd" && state == "Running"));
    let members_before = if etcd_ran { etcd_members(&client).await.ok() } else { None };
    // A rollout that stopped midway resumes after the step the node runs.
    let done = running.as_deref().and_then(|r| steps.iter().rposition(|(_, s)| talos_node::same_config(r, s)));
    let total = steps.len();
    for (i, (component, step)) in steps.iter().enumerate().skip(done.map_or(0, |d| d + 1)) {
        ctx.log(Severity::Info, &format!("{label}: Kubernetes {from} → {to}: {component} ({}/{total})", i + 1));
        match client.apply_configuration(step, Mode::NoReboot, false).await {
            Ok(_) => {}
            Err(e) if e.outcome_unknown() => {
                return Err(rollout.stop(Failed::Uncertain(format!(
                    "{label}: the node stopped answering while {component} was applied ({e})"
                ))))
            }
            Err(e) => return Err(rollout.stop(Failed::Clean(format!("{label}: {component}: {e}")))),
        }
        healthy(ctx, &client, label, etcd_ran, members_before.as_deref(), deadline).await.map_err(|e| {
            rollout.stop(Failed::Uncertain(format!(
                "{e} (after {component} went to {to}); the Kubernetes rollout of this cluster stops here"
            )))
        })?;
    }
    ctx.log(Severity::Info, &format!("{label}: runs Kubernetes {to} and is healthy"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(version: &str, control_plane: bool) -> String {
        let mut text = format!(
            "version: v1alpha1\nmachine:\n  type: {}\n  kubelet:\n    image: ghcr.io/siderolabs/kubelet:{version}\n\
             cluster:\n  id: abc\n",
            if control_plane { "controlplane" } else { "worker" }
        );
        if control_plane {
            for (c, key) in [
                ("kube-apiserver", "apiServer"),
                ("kube-controller-manager", "controllerManager"),
                ("kube-scheduler", "scheduler"),
                ("kube-proxy", "proxy"),
            ] {
                text.push_str(&format!("  {key}:\n    image: registry.k8s.io/{c}:{version}\n"));
            }
        }
        text
    }

    #[test]
    fn a_control_plane_steps_through_every_component_in_talos_order() {
        let steps = steps(&config("v1.35.0", true), &config("v1.35.1", true)).unwrap();
        let names: Vec<_> = steps.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "kubelet"]);
        // Each step changes one more component; the last runs every new image.
        let first = images(&steps[0].1);
        assert_eq!(first[0].1.as_deref(), Some("registry.k8s.io/kube-apiserver:v1.35.1"));
        assert_eq!(first[1].1.as_deref(), Some("registry.k8s.io/kube-controller-manager:v1.35.0"));
        assert_eq!(first[4].1.as_deref(), Some("ghcr.io/siderolabs/kubelet:v1.35.0"));
        assert_eq!(images(&steps[4].1), images(&config("v1.35.1", true)));
        assert_eq!(version(&steps[4].1).as_deref(), Some("v1.35.1"));
    }

    #[test]
    fn a_worker_steps_through_its_kubelet_and_nothing_else_is_a_step() {
        let steps = steps(&config("v1.35.0", false), &config("v1.35.1", false)).unwrap();
        assert_eq!(steps.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["kubelet"]);
        assert!(super::steps(&config("v1.35.0", true), &config("v1.35.0", true)).unwrap().is_empty());
    }

    #[test]
    fn skew_rules_refuse_minor_jumps_and_minor_downgrades() {
        let c = |v: &str| config(v, true);
        assert!(check_change(Some(&c("v1.34.2")), &c("v1.35.0")).is_ok());
        assert!(check_change(Some(&c("v1.35.1")), &c("v1.35.0")).is_ok(), "a patch downgrade");
        let jump = check_change(Some(&c("v1.33.0")), &c("v1.35.0")).unwrap_err();
        assert!(jump.contains("one minor release at a time") && jump.contains("v1.34.x"), "{jump}");
        let down = check_change(Some(&c("v1.35.0")), &c("v1.34.2")).unwrap_err();
        assert!(down.contains("cannot be downgraded across minor releases"), "{down}");
        assert!(check_change(None, &c("v1.35.0")).is_ok());
    }
}
