//! The worker configuration: machinery's `Input.worker()`
//! (`config/generate/worker.go`).
//!
//! Owns: the worker-only fields: the OS and Kubernetes CAs without keys, the
//! empty registry mirror map, and the reduced `cluster` section.
//! Must not: hold fields control planes share (see `generate`).

use super::container::Document;
use super::generate::{common_cluster, common_machine, finish, k8s_version, map, s, v1alpha1, GenerateInput};

/// The documents of a worker configuration.
pub(super) fn documents(input: &GenerateInput<'_>) -> Vec<Document> {
    let c = input.contract;
    let certs = &input.secrets.certs;
    let k8s = k8s_version(input);
    let mut b = v1alpha1();
    common_machine(&mut b, input, &k8s);
    b.set("machine.ca", map(&[("crt", s(&certs.os.cert))]));
    // Only contracts that write the k8s.gcr.io mirror (v1.2) fill it; the map itself is always made.
    b.set("machine.registries.mirrors", map(&[]));

    common_cluster(&mut b, input);
    b.set("cluster.ca", map(&[("crt", s(&certs.k8s.cert))]));
    if c.cluster_name_for_workers() {
        b.str("cluster.clusterName", &input.cluster_name);
    }
    finish(b, input)
}
