//! Machine configurations rendered by `talos::config`, checked by Sidero's own
//! machinery (v1.12.4) through `tools/talos-fixtures`:
//!
//! - `validate-config` loads each rendering with machinery's config loader and
//!   validates it in `metal` and `cloud` mode (as `talosctl validate` does);
//! - `compare-config` generates the same configuration with machinery's
//!   generator (the terraform provider's options, the same secrets and
//!   patches) and requires the same documents, keys and values; unpatched
//!   renderings must also be byte-identical;
//! - patches machinery rejects fail here too, with machinery's message.
//!
//! Cases: plain control plane and worker, and the seed cluster's nodes: all
//! with CNI `none` and kube-proxy disabled; control planes with the VIP
//! 192.168.1.210 on the DHCP physical interface; workers with the Longhorn
//! label and iSCSI/NBD kernel modules, the GPU worker also the NVIDIA modules;
//! every node its own hostname, static address, gateway and resolver in the
//! v1.12 multi-document form. The Go tool is built once into
//! `target/talos-fixtures`; `go` must be on PATH.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use proxmox_talos::rpc::proto::pulumirpc as rpc;
use proxmox_talos::talos::config::{render, ConfigError, GenerateInput, MachineType};
use proxmox_talos::talos::secrets::{from_talosctl_yaml, MachineSecrets};
use proxmox_talos::value::{json::from_json, PropertyValue};
use support::{client, launch, obj, props, s, secret, talos_fixtures_tool};

const FIXTURE: &str = "tests/fixtures/talosctl-secrets.yaml";
const CLUSTER: &str = "talos-cluster";
const ENDPOINT: &str = "https://192.168.1.210:6443";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tool(args: &[&str]) -> Output {
    support::run(Command::new(talos_fixtures_tool()).args(args), 300)
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn secrets() -> MachineSecrets {
    from_talosctl_yaml(&std::fs::read_to_string(root().join(FIXTURE)).unwrap()).unwrap()
}

fn ours(machine_type: MachineType, patches: &[String]) -> Result<String, ConfigError> {
    let secrets = secrets();
    render(&GenerateInput::new(CLUSTER, ENDPOINT, machine_type, &secrets), patches)
}

const ALL_NODES: &str = "cluster:\n  network:\n    cni:\n      name: none\n  proxy:\n    disabled: true\n";

const CONTROL_PLANE_VIP: &str = "machine:
  network:
    interfaces:
      - deviceSelector:
          physical: true
        dhcp: true
        vip:
          ip: 192.168.1.210
";

const WORKER: &str = "machine:
  nodeLabels:
    node.longhorn.io/create-default-disk: config
  kernel:
    modules:
      - name: nbd
      - name: iscsi_tcp
      - name: iscsi_generic
      - name: configfs
";

const GPU: &str = "machine:
  kernel:
    modules:
      - name: nvidia
      - name: nvidia_uvm
      - name: nvidia_drm
      - name: nvidia_modeset
  sysctls:
    net.core.bpf_jit_harden: 1
";

/// A node's hostname, static address, gateway and resolver as v1.12 documents.
fn node_network(hostname: &str, address: &str) -> String {
    format!(
        "apiVersion: v1alpha1
kind: HostnameConfig
auto: off
hostname: {hostname}
---
apiVersion: v1alpha1
kind: LinkConfig
name: ens18
addresses:
  - address: {address}/24
routes:
  - gateway: 192.168.1.1
---
apiVersion: v1alpha1
kind: ResolverConfig
nameservers:
  - address: 192.168.1.1
"
    )
}

struct Case {
    name: String,
    machine_type: MachineType,
    patches: Vec<String>,
}

fn seed_cluster() -> Vec<Case> {
    let mut cases = vec![
        Case { name: "controlplane".into(), machine_type: MachineType::ControlPlane, patches: vec![] },
        Case { name: "worker".into(), machine_type: MachineType::Worker, patches: vec![] },
    ];
    for (i, ip) in ["192.168.1.211", "192.168.1.212", "192.168.1.213"].iter().enumerate() {
        cases.push(Case {
            name: format!("cp-{}", i + 1),
            machine_type: MachineType::ControlPlane,
            patches: vec![ALL_NODES.into(), CONTROL_PLANE_VIP.into(), node_network(&format!("cp-{}", i + 1), ip)],
        });
    }
    for (i, ip) in ["192.168.1.221", "192.168.1.222", "192.168.1.223"].iter().enumerate() {
        cases.push(Case {
            name: format!("worker-{}", i + 1),
            machine_type: MachineType::Worker,
            patches: vec![ALL_NODES.into(), WORKER.into(), node_network(&format!("worker-{}", i + 1), ip)],
        });
    }
    cases.push(Case {
        name: "gpu-worker".into(),
        machine_type: MachineType::Worker,
        patches: vec![ALL_NODES.into(), WORKER.into(), GPU.into(), node_network("gpu-worker", "192.168.1.224")],
    });
    cases
}

/// Writes `contents` under a per-test directory in target/.
fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn compare(dir: &Path, case: &Case, rendered: &str, extra: &[&str]) -> Output {
    let ours = write(dir, &format!("{}.yaml", case.name), rendered);
    let machinery = dir.join(format!("{}.machinery.yaml", case.name));
    let patch_files: Vec<PathBuf> =
        case.patches.iter().enumerate().map(|(i, p)| write(dir, &format!("{}.patch{i}.yaml", case.name), p)).collect();
    let mut args: Vec<String> = vec![
        "compare-config".into(),
        "--ours".into(),
        ours.display().to_string(),
        "--machinery-out".into(),
        machinery.display().to_string(),
        "--secrets".into(),
        root().join(FIXTURE).display().to_string(),
        "--type".into(),
        case.machine_type.as_str().into(),
        "--cluster".into(),
        CLUSTER.into(),
        "--endpoint".into(),
        ENDPOINT.into(),
    ];
    for p in &patch_files {
        args.push("--patch".into());
        args.push(p.display().to_string());
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    tool(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn out_dir(test: &str) -> PathBuf {
    root().join("target/talos-config-tests").join(test)
}

#[test]
fn seed_cluster_configs_match_machinery_and_validate() {
    let dir = out_dir("seed");
    for case in seed_cluster() {
        let rendered = ours(case.machine_type, &case.patches).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let out = compare(&dir, &case, &rendered, &[]);
        assert!(out.status.success(), "{}: differs from machinery:\n{}", case.name, text(&out));
        assert!(text(&out).contains("byte-identical: true"), "{}: {}", case.name, text(&out));
        let file = dir.join(format!("{}.yaml", case.name));
        for mode in ["metal", "cloud"] {
            let out = tool(&["validate-config", "--in", &file.display().to_string(), "--mode", mode]);
            assert!(out.status.success(), "{} ({mode}): machinery rejects it:\n{}", case.name, text(&out));
        }
    }
}

/// Merge rules, deletes, JSON patches and value forms, compared byte for byte.
fn semantics_cases() -> Vec<Case> {
    let control_plane = vec![
        "machine:
  network:
    interfaces:
      - interface: eth0
        addresses: [10.0.0.2/24]
        mtu: 1500
      - deviceSelector:
          driver: virtio_net
        dhcp: true
      - deviceSelector:
          physical: true
        dhcp: true
  kubelet:
    extraArgs:
      rotate-server-certificates: \"true\"
      v: 2
  time:
    bootTimeout: 2m
  files:
    - content: |
        hello
      permissions: 0644
      path: /var/etc/x
      op: create
  install:
    disk: /dev/vda
  nodeLabels:
    a: \"yes\"
    b: \"0755\"
    c: ~
    d: \"- x\"
    e: \"a: b\"
    f: \" lead\"
    g: 12:30
cluster:
  network:
    podSubnets: [10.32.0.0/16]
  apiServer:
    admissionControl:
      - name: PodSecurity
        configuration:
          defaults:
            enforce: privileged
          exemptions:
            namespaces: [longhorn-system]
    extraArgs:
      feature-gates: A=true
  inlineManifests:
    - name: ns
      contents: |

        apiVersion: v1
        kind: Namespace
        metadata:
          name: test
  allowSchedulingOnControlPlanes: true
"
        .to_owned(),
        "machine:
  network:
    interfaces:
      - interface: eth0
        mtu: 9000
        vlans:
          - vlanId: 10
            dhcp: true
      - deviceSelector:
          driver: virtio_net
        mtu: 1400
      - deviceSelector:
          physical: true
        mtu: 1300
  install:
    wipe: true
"
        .to_owned(),
        "machine:\n  nodeLabels:\n    b:\n      $patch: delete\n".to_owned(),
        "apiVersion: v1alpha1\nkind: HostnameConfig\n$patch: delete\n".to_owned(),
        r#"[{"op": "replace", "path": "/machine/install/disk", "value": "/dev/nvme0n1"}, {"op": "add", "path": "/machine/certSANs/-", "value": "10.0.0.1"}]"#.to_owned(),
        "- op: add\n  path: /machine/nodeLabels/zone\n  value: \"1\"\n".to_owned(),
        "machine:\n  network:\n    hostname: node-x\n".to_owned(),
    ];
    let worker = vec![
        "apiVersion: v1alpha1
kind: Layer2VIPConfig
name: 192.168.1.230
link: ens18
---
apiVersion: v1alpha1
kind: DHCPv4Config
name: ens18
---
apiVersion: v1alpha1
kind: LinkConfig
name: ens19
addresses:
  - address: 10.1.0.5/24
---
apiVersion: v1alpha1
kind: HostnameConfig
auto: Stable
"
        .to_owned(),
        "apiVersion: v1alpha1
kind: LinkConfig
name: ens19
mtu: 9000
addresses:
  - address: 2001:DB8::5/64
---
apiVersion: v1alpha1
kind: ResolverConfig
nameservers:
  - address: 2001:DB8::1
searchDomains:
  domains: [lab.example]
"
        .to_owned(),
        "machine:\n  nodeLabels:\n    t: \"true\"\n    n: \"123\"\n    hash: \"#c\"\n".to_owned(),
        "apiVersion: v1alpha1\nkind: DHCPv4Config\nname: ens18\n$patch: delete\n".to_owned(),
    ];
    let lists_and_deletes = vec![
        "machine:
  network:
    interfaces:
      - interface: eth0
        dhcp: true
      - interface: eth1
        dhcp: true
  kubelet:
    extraMounts:
      - destination: /var/mnt
        type: bind
        source: /var/mnt
        options: [bind, rshared, rw]
  certSANs: [a.example]
cluster:
  extraManifests: [https://example.com/a.yaml]
"
        .to_owned(),
        "machine:
  network:
    interfaces:
      - interface: eth0
        $patch: delete
  certSANs: [b.example]
  features:
    kubePrism:
      $patch: delete
cluster:
  extraManifests: [https://example.com/b.yaml]
  discovery:
    $patch: delete
"
        .to_owned(),
    ];
    vec![
        Case { name: "controlplane-semantics".into(), machine_type: MachineType::ControlPlane, patches: control_plane },
        Case { name: "worker-semantics".into(), machine_type: MachineType::Worker, patches: worker },
        Case { name: "lists-and-deletes".into(), machine_type: MachineType::ControlPlane, patches: lists_and_deletes },
    ]
}

#[test]
fn patch_semantics_match_machinery_byte_for_byte() {
    let dir = out_dir("semantics");
    for case in semantics_cases() {
        let rendered = ours(case.machine_type, &case.patches).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let out = compare(&dir, &case, &rendered, &[]);
        assert!(out.status.success(), "{}: differs from machinery:\n{}", case.name, text(&out));
        assert!(text(&out).contains("byte-identical: true"), "{}: {}", case.name, text(&out));
    }
}

#[test]
fn patches_machinery_rejects_fail_with_its_message() {
    let dir = out_dir("failing");
    let cases = [
        (
            "invalid-field",
            MachineType::ControlPlane,
            vec!["machine:\n  foo: bar\n".to_owned()],
            "error decoding document /v1alpha1/ (line 1): unknown keys found during decoding:\nmachine:\n    foo: bar\n",
        ),
        (
            "json-patch-multidoc",
            MachineType::Worker,
            vec![r#"[{"op": "add", "path": "/machine/install/disk", "value": "/dev/vda"}]"#.to_owned()],
            "JSON6902 patches are not supported for multi-document machine configuration",
        ),
    ];
    for (name, machine_type, patches, expected) in cases {
        let err = ours(machine_type, &patches).expect_err(name).to_string();
        assert!(err.contains(expected), "{name}: our error {err:?} lacks {expected:?}");
        assert!(err.contains("config patch 0"), "{name}: {err}");
        let case = Case { name: name.into(), machine_type, patches };
        let out = compare(&dir, &case, "", &["--expect-error"]);
        assert!(out.status.success(), "{name}: machinery accepted the patch:\n{}", text(&out));
        assert!(text(&out).contains(expected), "{name}: machinery says {:?}", text(&out));
    }
}

/// Drops what only one side has: machinery's wrapper and line numbers, our
/// patch index and field paths.
fn normalized(message: &str) -> String {
    let message = message.trim().trim_start_matches("error parsing config patch: ");
    let message = message
        .split_once("): ")
        .filter(|(head, _)| head.starts_with("config patch"))
        .map_or(message, |(_, rest)| rest);
    let mut out = String::new();
    for line in message.lines() {
        let line = match line.trim_start().split_once(": ") {
            Some((head, rest)) if head.starts_with("line ") => format!("  {rest}"),
            _ => line.to_owned(),
        };
        let line = match line.rfind(" (at ") {
            Some(i) if line.ends_with(')') => line[..i].to_owned(),
            _ => line,
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn more_rejected_patches_fail_like_machinery() {
    let dir = out_dir("rejected");
    let patches = [
        ("bool", "machine:\n  install:\n    wipe: maybe\n"),
        ("seq-into-string", "machine:\n  install:\n    image: [a]\n"),
        ("enum", "apiVersion: v1alpha1\nkind: HostnameConfig\nauto: sometimes\n"),
        ("unknown-kind", "apiVersion: v1alpha1\nkind: NoSuchConfig\nname: x\n"),
        ("missing-kind", "apiVersion: v1alpha1\nname: x\n"),
        ("nested-unknown", "machine:\n  network:\n    interfaces:\n      - interface: eth0\n        bogus: 1\n      - interface: eth1\n"),
        ("inner-delete", "machine:\n  kernel:\n    modules:\n      - name: x\n        y:\n          $patch: delete\n"),
        ("duplicate", "apiVersion: v1alpha1\nkind: LinkConfig\nname: a\n---\napiVersion: v1alpha1\nkind: LinkConfig\nname: a\n"),
        ("conflict", "apiVersion: v1alpha1\nkind: LinkConfig\nname: a\n---\napiVersion: v1alpha1\nkind: DummyLinkConfig\nname: a\n"),
    ];
    for (name, patch) in patches {
        let err = ours(MachineType::Worker, &[patch.to_owned()]).expect_err(name).to_string();
        let case = Case { name: name.into(), machine_type: MachineType::Worker, patches: vec![patch.to_owned()] };
        let out = compare(&dir, &case, "", &["--expect-error"]);
        assert!(out.status.success(), "{name}: machinery accepted it:\n{}", text(&out));
        let theirs = String::from_utf8_lossy(&out.stdout).to_string();
        let theirs =
            normalized(theirs.rsplit_once("error patching worker config: ").map_or(theirs.as_str(), |(_, t)| t));
        assert_eq!(normalized(&err), theirs, "{name}: ours {err:?}");
    }
}

#[test]
fn the_embedded_schema_is_machinerys() {
    let dir = out_dir("schema");
    std::fs::create_dir_all(&dir).unwrap();
    let dumped = dir.join("schema_v1_12.json");
    let out = tool(&["dump-schema", "--out", &dumped.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let committed = std::fs::read_to_string(root().join("provider/talos/config/schema_v1_12.json")).unwrap();
    assert!(
        std::fs::read_to_string(&dumped).unwrap() == committed,
        "provider/talos/config/schema_v1_12.json is stale: regenerate it with \
         `cd tools/talos-fixtures && go run . dump-schema --out ../../provider/talos/config/schema_v1_12.json`"
    );
}

#[test]
fn rendering_is_deterministic() {
    for case in seed_cluster() {
        let a = ours(case.machine_type, &case.patches).unwrap();
        let b = ours(case.machine_type, &case.patches).unwrap();
        assert_eq!(a.as_bytes(), b.as_bytes(), "{}", case.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_configuration_over_the_wire() {
    let plugin = launch(&[]);
    let mut c = client(plugin.port).await;
    let secrets_json = serde_json::to_value(secrets()).unwrap();
    let machine_secrets = secret(PropertyValue::Object(from_json(&secrets_json, &[])));
    let invoke = |endpoint: &str, patches: Vec<PropertyValue>| rpc::InvokeRequest {
        tok: "proxmox-talos:machine:getConfiguration".into(),
        args: Some(obj(&[
            ("clusterName", s(CLUSTER)),
            ("clusterEndpoint", s(endpoint)),
            ("machineType", s("worker")),
            ("machineSecrets", machine_secrets.clone()),
            ("configPatches", PropertyValue::Array(patches)),
        ])),
        preview: false,
    };
    let resp = c.invoke(invoke(ENDPOINT, vec![s(ALL_NODES), s(WORKER)])).await.unwrap().into_inner();
    assert!(resp.failures.is_empty(), "{:?}", resp.failures);
    let result = props(resp.r#return);
    assert!(result["machineConfiguration"].is_secret(), "machineConfiguration is a secret output");
    let yaml = result["machineConfiguration"].unwrap_secrets().as_str().unwrap();
    assert_eq!(yaml, ours(MachineType::Worker, &[ALL_NODES.into(), WORKER.into()]).unwrap());
    assert_eq!(result["talosVersion"].as_str(), Some("v1.12"));

    // A bad endpoint and a bad patch are refused at their paths.
    let resp = c.invoke(invoke("192.168.1.210", vec![s("machine:\n  foo: bar\n")])).await.unwrap().into_inner();
    let failures: Vec<(&str, &str)> = resp.failures.iter().map(|f| (f.property.as_str(), f.reason.as_str())).collect();
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(failures[0].0, "clusterEndpoint");
    assert!(failures[0].1.contains("try: \"https://192.168.1.210:6443\""), "{}", failures[0].1);
    assert_eq!(failures[1].0, "configPatches[0]");
    assert!(failures[1].1.contains("unknown keys found during decoding"), "{}", failures[1].1);
}
