//! Round trips with Talos's own code: files the provider writes are read back
//! by Sidero's machinery (v1.12.4) through `tools/talos-fixtures`.
//!
//! - secrets generated for v1.12 and exported in the `talosctl gen secrets`
//!   format pass `check-secrets --talos-version v1.12 --canonical` (machinery
//!   loads, validates and re-marshals them to the same bytes);
//! - talosconfigs rendered by `talos::talosconfig` (and returned by the
//!   `client:getConfiguration` function over the wire) load with machinery's
//!   client config loader (`check-talosconfig`), authenticate against the OS CA,
//!   and re-marshal to the same bytes, including names Go's YAML must quote
//!   (and thousands of generated strings written by `talos::goyaml`);
//! - a `talosctl gen secrets` file imported into `machine:Secrets` comes back
//!   unchanged in its `talosctlSecretsYaml` output.
//!
//! The Go tool is built once per test run into `target/talos-fixtures`
//! (Go's build cache makes that a few seconds); `go` must be on PATH.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use proxmox_talos::rpc::proto::pulumirpc as rpc;
use proxmox_talos::talos::goyaml::{self, Value};
use proxmox_talos::talos::secrets::{self, ClientConfiguration, MachineSecrets, SystemClock, VersionContract};
use proxmox_talos::talos::talosconfig::Talosconfig;
use proxmox_talos::value::PropertyValue;
use support::*;

const FIXTURE: &str = "tests/fixtures/talosctl-secrets.yaml";

/// Runs the tool; returns its output whatever the exit status.
fn run_tool(args: &[&str], file: &Path) -> Output {
    support::run(Command::new(talos_fixtures_tool()).args(args).arg("--in").arg(file), 300)
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: machinery rejected it:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_temp(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// An ECDSA-service-account bundle (fast) and a fresh admin client configuration.
fn client_configuration() -> ClientConfiguration {
    let bundle: MachineSecrets =
        secrets::generate(VersionContract::V1_6, &SystemClock, &mut rand_core::OsRng).expect("bundle");
    secrets::client_configuration(&bundle, &SystemClock).expect("client configuration")
}

/// Checks a talosconfig with machinery and returns its JSON summary.
fn check_talosconfig(dir: &tempfile::TempDir, yaml: &str) -> serde_json::Value {
    let path = write_temp(dir, "talosconfig", yaml);
    let out = run_tool(&["check-talosconfig", "--canonical"], &path);
    assert_ok(&out, &format!("talosconfig\n{yaml}"));
    serde_json::from_slice(&out.stdout).expect("check-talosconfig prints JSON")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn v1_12_secrets_export_passes_machinery_checks_byte_for_byte() {
    let bundle = secrets::generate(VersionContract::V1_12, &SystemClock, &mut rand_core::OsRng).unwrap();
    let yaml = secrets::to_talosctl_yaml(&bundle).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "secrets.yaml", &yaml);
    let out = run_tool(&["check-secrets", "--talos-version", "v1.12", "--canonical"], &path);
    assert_ok(&out, "exported v1.12 secrets");

    // The machinery-written fixture survives import and export unchanged.
    let fixture = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE)).unwrap();
    let again = secrets::to_talosctl_yaml(&secrets::from_talosctl_yaml(&fixture).unwrap()).unwrap();
    assert_eq!(again, fixture);
}

#[test]
fn rendered_talosconfig_loads_with_machinery() {
    let client = client_configuration();
    let endpoints = strings(&["192.168.1.210", "[fd00::10]:50000", "cp.example.com:50000", "fd00::11"]);
    let nodes = strings(&["192.168.1.211", "fd00::12", "worker-1"]);
    let yaml = Talosconfig { context: "talos-cluster", client: &client, endpoints: &endpoints, nodes: &nodes }
        .render()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = check_talosconfig(&dir, &yaml);
    assert_eq!(summary["context"], "talos-cluster");
    assert_eq!(summary["contexts"], serde_json::json!(["talos-cluster"]));
    assert_eq!(summary["endpoints"], serde_json::json!(endpoints));
    assert_eq!(summary["nodes"], serde_json::json!(nodes));
    assert_eq!(summary["roles"], serde_json::json!(["os:admin"]));

    // Without nodes the key is omitted, as machinery does.
    let yaml =
        Talosconfig { context: "talos-cluster", client: &client, endpoints: &endpoints, nodes: &[] }.render().unwrap();
    assert_eq!(check_talosconfig(&dir, &yaml)["nodes"], serde_json::json!([]));

    // The checker has teeth: other indentation, or a certificate from another CA, fail.
    let two_spaces = yaml.replace("    ", "  ");
    let out = run_tool(&["check-talosconfig", "--canonical"], &write_temp(&dir, "indented", &two_spaces));
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("byte-identical"));
    let foreign = ClientConfiguration { ca_certificate: client_configuration().ca_certificate, ..client };
    let yaml =
        Talosconfig { context: "talos-cluster", client: &foreign, endpoints: &endpoints, nodes: &[] }.render().unwrap();
    let out = run_tool(&["check-talosconfig"], &write_temp(&dir, "foreign", &yaml));
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not a client certificate"));
}

#[test]
fn talosconfig_quoting_matches_machinery_for_unusual_cluster_names() {
    let client = client_configuration();
    let endpoints = strings(&["192.168.1.210"]);
    let long = "n".repeat(128);
    let names = [
        "2024",
        "true",
        "yes",
        "null",
        "0x1F",
        "1_000",
        "1:20",
        "2001-12-14",
        "2001-12-14T21:59:43Z",
        "1e999",
        "my cluster",
        "a: b",
        "a:b",
        "x #y",
        "#lab",
        "'quoted'",
        "\"dq\"",
        "back\\slash",
        "- item",
        "-dash",
        "@home",
        "---",
        "naïve",
        "🚀 rocket",
        "trailing ",
        " leading",
        "<<",
        long.as_str(),
    ];
    let dir = tempfile::tempdir().unwrap();
    for name in names {
        let yaml = Talosconfig { context: name, client: &client, endpoints: &endpoints, nodes: &[] }.render().unwrap();
        let summary = check_talosconfig(&dir, &yaml);
        assert_eq!(summary["context"], name, "{yaml}");
    }
}

/// Thousands of strings that stress Go's implicit typing and quoting, as list
/// items: machinery must read every one back unchanged and re-marshal the file
/// to the same bytes. Deterministic (xorshift), so a failure reproduces.
#[test]
fn goyaml_scalars_match_machinery_marshalling() {
    const ALPHABETS: [&str; 3] = [
        "0123456789-+._:eExXoObB TtZ,#'\"!&*[]{}|>%@`?yYnN~af\tü🚀\u{a0}\u{feff}\\\u{7}",
        "0123456789-_.:eE+xob TZt",
        "0123456789-T:Z+ .,",
    ];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut values: Vec<String> = Vec::new();
    for i in 0..3000 {
        let alphabet: Vec<char> = ALPHABETS[i % ALPHABETS.len()].chars().collect();
        let len = 1 + (next() % 14) as usize;
        values.push((0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect());
    }
    values.extend(
        ["", "~", "<<", "-0", "0x", "1_", "1e999", ".5_5", "2000-2-29", "2001-2-29", "2001-12-14 1:2:3"]
            .map(String::from),
    );
    let cfg = client_configuration();
    let items: Vec<&str> = values.iter().map(String::as_str).collect();
    let context = Value::Map(vec![
        ("endpoints", Value::List(vec!["192.168.1.210"])),
        ("nodes", Value::List(items)),
        ("ca", Value::Str(&cfg.ca_certificate)),
        ("crt", Value::Str(&cfg.client_certificate)),
        ("key", Value::Str(&cfg.client_key)),
    ]);
    let yaml =
        goyaml::to_string(&[("context", Value::Str("lab")), ("contexts", Value::Map(vec![("lab", context)]))]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let summary = check_talosconfig(&dir, &yaml);
    assert_eq!(summary["nodes"], serde_json::json!(values), "every string reads back unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_configuration_and_secrets_export_over_the_wire() {
    let plugin = launch(&[]);
    let mut c = client(plugin.port).await;
    let dir = tempfile::tempdir().unwrap();

    // client:getConfiguration with a secret client configuration.
    let cfg = client_configuration();
    let client_obj = PropertyValue::Object(map(&[
        ("caCertificate", s(&cfg.ca_certificate)),
        ("clientCertificate", s(&cfg.client_certificate)),
        ("clientKey", s(&cfg.client_key)),
    ]));
    let invoke = |endpoint: &str| rpc::InvokeRequest {
        tok: "proxmox-talos:client:getConfiguration".into(),
        args: Some(obj(&[
            ("clusterName", s("talos-cluster")),
            ("clientConfiguration", secret(client_obj.clone())),
            ("endpoints", PropertyValue::Array(vec![s(endpoint)])),
            ("nodes", PropertyValue::Array(vec![s("192.168.1.211")])),
        ])),
        preview: false,
    };
    let resp = c.invoke(invoke("192.168.1.210")).await.unwrap().into_inner();
    assert!(resp.failures.is_empty(), "{:?}", resp.failures);
    let result = props(resp.r#return);
    assert!(result["talosConfig"].is_secret(), "talosConfig is a secret output");
    let yaml = result["talosConfig"].unwrap_secrets().as_str().unwrap().to_owned();
    let summary = check_talosconfig(&dir, &yaml);
    assert_eq!(summary["endpoints"], serde_json::json!(["192.168.1.210"]));
    assert_eq!(summary["nodes"], serde_json::json!(["192.168.1.211"]));

    // A URL (the Kubernetes endpoint) is refused at its path, with the fix.
    let resp = c.invoke(invoke("https://192.168.1.210:6443")).await.unwrap().into_inner();
    assert_eq!(resp.failures.len(), 1, "{:?}", resp.failures);
    assert_eq!(resp.failures[0].property, "endpoints[0]");
    assert!(resp.failures[0].reason.contains("did you mean 192.168.1.210?"), "{}", resp.failures[0].reason);

    // machine:Secrets import of a talosctl file: talosctlSecretsYaml is the same file.
    let fixture_path = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    let read = c
        .read(rpc::ReadRequest {
            id: fixture_path.to_str().unwrap().into(),
            urn: "urn:pulumi:dev::homelab::proxmox-talos:machine:Secrets::imported".into(),
            r#type: "proxmox-talos:machine:Secrets".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let state = props(read.properties);
    assert!(state["talosctlSecretsYaml"].is_secret());
    let exported = state["talosctlSecretsYaml"].unwrap_secrets().as_str().unwrap();
    assert_eq!(exported, std::fs::read_to_string(&fixture_path).unwrap());
}
