//! Cross-module tests of generation and patching (no IO; the comparisons
//! with machinery itself are in `tests/talos_config.rs`).

use super::*;
use crate::talos::secrets::{from_talosctl_yaml, MachineSecrets};

fn secrets() -> MachineSecrets {
    from_talosctl_yaml(include_str!("../../../tests/fixtures/talosctl-secrets.yaml")).unwrap()
}

fn render_with(machine_type: MachineType, patches: &[&str]) -> Result<String, ConfigError> {
    let secrets = secrets();
    let input = GenerateInput::new("talos-cluster", "https://192.168.1.210:6443", machine_type, &secrets);
    let patches: Vec<String> = patches.iter().map(|p| (*p).to_owned()).collect();
    render(&input, &patches)
}

#[test]
fn worker_layout_is_machinerys() {
    let out = render_with(MachineType::Worker, &[]).unwrap();
    assert!(out.starts_with("version: v1alpha1\ndebug: false\npersist: true\nmachine:\n    type: worker\n"), "{out}");
    assert!(out.contains("\n    certSANs: []\n    kubelet:\n        image: ghcr.io/siderolabs/kubelet:v1.35.0\n"));
    assert!(out.contains("\n    ca:\n        crt: ") && out.contains("\n        key: \"\"\n"));
    assert!(out.contains("\n    discovery:\n        enabled: true\n        registries:\n            kubernetes:\n                disabled: true\n            service: {}\n"));
    assert!(out.ends_with("\n---\napiVersion: v1alpha1\nkind: HostnameConfig\nauto: stable\n"));
    assert!(!out.contains("nodeLabels") && !out.contains("aggregatorCA"));
}

#[test]
fn control_plane_has_the_full_cluster_section() {
    let out = render_with(MachineType::ControlPlane, &[]).unwrap();
    for needle in [
        "    nodeLabels:\n        node.kubernetes.io/exclude-from-external-load-balancers: \"\"\n",
        "    apiServer:\n        image: registry.k8s.io/kube-apiserver:v1.35.0\n        admissionControl:\n            - name: PodSecurity\n",
        "        auditPolicy:\n            apiVersion: audit.k8s.io/v1\n            kind: Policy\n            rules:\n                - level: Metadata\n",
        "    secretboxEncryptionSecret: 3Nls8Luj9m1kVuAtHEOHyajFzj3MOoYyzuNAIydPCLs=\n",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
}

#[test]
fn identical_inputs_give_identical_bytes() {
    let patches = ["machine:\n  nodeLabels:\n    b: x\n    a: y\n", "cluster:\n  proxy:\n    disabled: true\n"];
    let a = render_with(MachineType::Worker, &patches).unwrap();
    let b = render_with(MachineType::Worker, &patches).unwrap();
    assert_eq!(a.as_bytes(), b.as_bytes());
    // Map keys are written sorted, whatever the patch order.
    assert!(a.contains("    nodeLabels:\n        a: \"y\"\n        b: x\n"), "{a}");
}

#[test]
fn patches_are_told_apart_like_talos() {
    let strategic = Patch::parse("machine:\n  install:\n    disk: /dev/vda\n").unwrap();
    assert!(matches!(&strategic, Patch::StrategicMerge(docs) if docs.len() == 1));
    let multi = Patch::parse("apiVersion: v1alpha1\nkind: HostnameConfig\nauto: off\nhostname: a\n---\nmachine:\n  install:\n    wipe: true\n").unwrap();
    assert!(matches!(&multi, Patch::StrategicMerge(docs) if docs.len() == 2));
    let json = Patch::parse(r#"[{"op": "add", "path": "/machine/certSANs/-", "value": "x"}]"#).unwrap();
    assert!(matches!(&json, Patch::JsonPatch(ops) if ops.len() == 1 && ops[0].op == "add"));
    let yaml_ops = Patch::parse("- op: remove\n  path: /machine/certSANs/0\n").unwrap();
    assert!(matches!(&yaml_ops, Patch::JsonPatch(ops) if ops[0].path == "/machine/certSANs/0"));
    let err = Patch::parse("patch.yaml").unwrap_err();
    assert!(err.contains("file") && err.contains("pass the patch contents"), "{err}");
    let err = Patch::parse("machine:\n  foo: bar\n").unwrap_err();
    assert_eq!(
        err,
        "error decoding document /v1alpha1/ (line 1): unknown keys found during decoding:\nmachine:\n    foo: bar\n"
    );
    let err = Patch::parse("[not json").unwrap_err();
    assert!(!err.contains("unknown keys"), "a text starting with [ reports the JSON error: {err}");
}

#[test]
fn errors_name_the_patch_and_consecutive_json_patches_go_together() {
    let ok = "machine:\n  install:\n    wipe: true\n";
    let err =
        render_with(MachineType::Worker, &[ok, "machine:\n  install:\n    wipe: maybe\n"]).unwrap_err().to_string();
    assert!(err.starts_with("config patch 1 (patch): "), "{err}");
    assert!(err.contains("error decoding  to *v1alpha1.Config: yaml: unmarshal errors:\n  cannot unmarshal !!str `maybe` into bool (at machine.install.wipe)"), "{err}");
    let op = r#"[{"op": "add", "path": "/machine/certSANs/-", "value": "x"}]"#;
    let err = render_with(MachineType::Worker, &[ok, op, op]).unwrap_err();
    let ConfigError::Patch(p) = &err else { panic!("{err}") };
    assert_eq!((p.first, p.last, p.kind), (1, 2, "JSON patch"));
    assert!(err.to_string().contains("JSON6902 patches are not supported for multi-document machine configuration"));
}

#[test]
fn json_patches_apply_once_the_configuration_is_single_document() {
    let out = render_with(
        MachineType::Worker,
        &[
            "apiVersion: v1alpha1\nkind: HostnameConfig\n$patch: delete\n",
            r#"[{"op": "replace", "path": "/machine/install/disk", "value": "/dev/vda"}]"#,
        ],
    )
    .unwrap();
    assert!(out.contains("        disk: /dev/vda\n") && !out.contains("HostnameConfig"), "{out}");
}

#[test]
fn interfaces_merge_by_name_and_subnets_are_replaced() {
    let out = render_with(
        MachineType::ControlPlane,
        &[
            "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        dhcp: true\ncluster:\n  network:\n    podSubnets: [10.1.0.0/16]\n",
            "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        vip:\n          ip: 192.168.1.210\n      - interface: eth1\n        dhcp: false\n",
        ],
    )
    .unwrap();
    assert!(out.contains("        interfaces:\n            - interface: eth0\n              dhcp: true\n              vip:\n                ip: 192.168.1.210\n            - interface: eth1\n              dhcp: false\n"), "{out}");
    assert!(out.contains("        podSubnets:\n            - 10.1.0.0/16\n        serviceSubnets:"), "{out}");
}

#[test]
fn new_documents_are_appended_and_matching_ones_merged() {
    let out = render_with(
        MachineType::Worker,
        &[
            "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: off\nhostname: w1\n---\napiVersion: v1alpha1\nkind: ResolverConfig\nnameservers:\n  - address: 192.168.1.1\n",
            "apiVersion: v1alpha1\nkind: ResolverConfig\nnameservers:\n  - address: 1.1.1.1\n",
        ],
    )
    .unwrap();
    let tail = out.split("\n---\n").skip(1).collect::<Vec<_>>().join("\n---\n");
    assert_eq!(
        tail,
        "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: \"off\"\nhostname: w1\n---\napiVersion: v1alpha1\nkind: ResolverConfig\nnameservers:\n    - address: 192.168.1.1\n    - address: 1.1.1.1\n"
    );
}

#[test]
fn endpoint_errors_suggest_the_fix() {
    let cases = [
        (
            "192.168.1.210",
            "no scheme and port specified for the cluster endpoint URL\ntry: \"https://192.168.1.210:6443\"",
        ),
        ("192.168.1.210:6443", "no scheme specified for the cluster endpoint URL\ntry: \"https://192.168.1.210:6443\""),
        (
            "http://k8s.lan:6443",
            "the control plane endpoint URL should have scheme https://\ntry: \"https://k8s.lan:6443\"",
        ),
        ("https://:6443", "error validating the cluster endpoint URL: hostname must not be blank"),
        ("https://k8s.lan:99999", "error validating the cluster endpoint URL: port number must be between 1 and 65535"),
    ];
    for (endpoint, expected) in cases {
        assert_eq!(validate_endpoint(endpoint).unwrap_err(), expected, "{endpoint}");
    }
    for ok in ["https://192.168.1.210:6443", "https://k8s.lan", "https://[fd00::1]:6443"] {
        assert_eq!(validate_endpoint(ok), Ok(()), "{ok}");
    }
}

#[test]
fn unsupported_value_types_are_refused_clearly() {
    let err = render_with(MachineType::Worker, &["machine:\n  install:\n    diskSelector:\n      size: '>= 1TB'\n"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("InstallDiskSizeMatcher") && err.contains("not supported"), "{err}");
}
