//! The control plane configuration: machinery's `Input.init()` with the
//! machine type set to `controlplane` (`config/generate/init.go`,
//! `controlplane.go`).
//!
//! Owns: the control-plane-only fields: the OS CA with its key, the
//! load-balancer exclusion label, and the full `cluster` section (API server
//! with PodSecurity admission and the default audit policy, controller
//! manager, proxy, scheduler, etcd, every CA and key, encryption secret).
//! Must not: hold fields workers share (see `generate`).

use super::container::Document;
use super::generate::{
    common_cluster, common_machine, finish, image, k8s_version, map, s, seq, v1alpha1, GenerateInput,
};
use super::yaml_read::Raw;

/// The documents of a control plane configuration.
pub(super) fn documents(input: &GenerateInput<'_>) -> Vec<Document> {
    let c = input.contract;
    let certs = &input.secrets.certs;
    let k8s = k8s_version(input);
    let mut b = v1alpha1();
    common_machine(&mut b, input, &k8s);
    b.set("machine.ca", map(&[("crt", s(&certs.os.cert)), ("key", s(&certs.os.key))]));
    if c.add_exclude_from_external_load_balancer() {
        b.set("machine.nodeLabels", map(&[("node.kubernetes.io/exclude-from-external-load-balancers", s(""))]));
    }

    common_cluster(&mut b, input);
    b.str("cluster.clusterName", &input.cluster_name);
    b.str("cluster.apiServer.image", &image("registry.k8s.io/kube-apiserver", &k8s));
    if c.pod_security_admission_enabled() {
        b.set("cluster.apiServer.admissionControl", seq(vec![pod_security()]));
    }
    if c.api_server_audit_policy_supported() {
        let rules = seq(vec![map(&[("level", s("Metadata"))])]);
        b.set(
            "cluster.apiServer.auditPolicy",
            map(&[("apiVersion", s("audit.k8s.io/v1")), ("kind", s("Policy")), ("rules", rules)]),
        );
    }
    if !c.hide_disable_psp() {
        b.bool("cluster.apiServer.disablePodSecurityPolicy", true);
    }
    b.str("cluster.controllerManager.image", &image("registry.k8s.io/kube-controller-manager", &k8s));
    b.str("cluster.proxy.image", &image("registry.k8s.io/kube-proxy", &k8s));
    b.str("cluster.scheduler.image", &image("registry.k8s.io/kube-scheduler", &k8s));
    b.set("cluster.etcd.ca", map(&[("crt", s(&certs.etcd.cert)), ("key", s(&certs.etcd.key))]));
    b.set("cluster.ca", map(&[("crt", s(&certs.k8s.cert)), ("key", s(&certs.k8s.key))]));
    b.set(
        "cluster.aggregatorCA",
        map(&[("crt", s(&certs.k8s_aggregator.cert)), ("key", s(&certs.k8s_aggregator.key))]),
    );
    b.set("cluster.serviceAccount", map(&[("key", s(&certs.k8s_serviceaccount.key))]));
    b.set("cluster.extraManifests", seq(Vec::new()));
    b.set("cluster.inlineManifests", seq(Vec::new()));
    let secrets = &input.secrets.secrets;
    if c.secretbox_encryption_supported() {
        b.str("cluster.secretboxEncryptionSecret", secrets.secretbox_encryption_secret.as_deref().unwrap_or_default());
    } else {
        b.str("cluster.aescbcEncryptionSecret", secrets.aescbc_encryption_secret.as_deref().unwrap_or_default());
    }
    finish(b, input)
}

/// The PodSecurity admission plugin with machinery's defaults.
fn pod_security() -> Raw {
    let defaults = map(&[
        ("enforce", s("baseline")),
        ("enforce-version", s("latest")),
        ("audit", s("restricted")),
        ("audit-version", s("latest")),
        ("warn", s("restricted")),
        ("warn-version", s("latest")),
    ]);
    let exemptions = map(&[
        ("usernames", seq(Vec::new())),
        ("runtimeClasses", seq(Vec::new())),
        ("namespaces", seq(vec![s("kube-system")])),
    ]);
    let configuration = map(&[
        ("apiVersion", s("pod-security.admission.config.k8s.io/v1alpha1")),
        ("kind", s("PodSecurityConfiguration")),
        ("defaults", defaults),
        ("exemptions", exemptions),
    ]);
    map(&[("name", s("PodSecurity")), ("configuration", configuration)])
}
