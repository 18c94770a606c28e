//! End to end through the real `pulumi` CLI and YAML language host: the program
//! in `sdk-examples/yaml-machine-secrets` is previewed, deployed, previewed again
//! (no changes), refreshed (no drift), updated in place, imported and destroyed,
//! with a local file backend and plugin downloads disabled.
//!
//! Needs `pulumi` and `pulumi-language-yaml` on PATH (`tools/test.sh` installs
//! them); without them this test fails and says so.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::pulumi::Stack;

/// A stack of `example`; the factory URL is one nothing listens on unless given.
fn stack(example: &str) -> Stack {
    with_factory(example, "https://127.0.0.1:9443")
}

fn with_factory(example: &str, factory_url: &str) -> Stack {
    Stack::new(example, vec![("TALOS_IMAGE_FACTORY_URL".into(), factory_url.into())])
}

#[test]
fn yaml_program_lifecycle() {
    let stack = stack("yaml-machine-secrets");

    let preview = stack.ok(&["preview", "--diff"]);
    assert!(preview.contains("proxmox-talos:machine:Secrets"), "{preview}");

    stack.ok(&["up", "--yes", "--skip-preview"]);
    let out = stack.outputs();
    let cluster_id = out["clusterId"].as_str().unwrap().to_string();
    assert!(cluster_id.len() >= 40, "cluster id {cluster_id:?}");
    assert_eq!(out["talosVersion"], "v1.12");
    assert!(out["osCaCertificate"].as_str().unwrap().len() > 100);
    assert_eq!(
        out["diskImage"],
        "https://127.0.0.1:9443/image/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba/v1.12.4/nocloud-amd64.raw.xz"
    );

    // Secrets are secrets: hidden in plain output, encrypted in the state file.
    let plain = stack.ok(&["stack", "output", "--json"]);
    assert!(plain.contains("[secret]") && !plain.contains(&cluster_id), "{plain}");
    let export = stack.ok(&["stack", "export"]);
    assert!(!export.contains(&cluster_id), "the cluster id is stored in plain text");
    assert!(export.contains("ciphertext"));

    // Nothing changes on a second preview, nor on refresh.
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["refresh", "--yes", "--expect-no-changes", "--skip-preview"]);

    // A new contract is an in-place update that keeps the secrets.
    stack.ok(&["config", "set", "talosVersion", "v1.13"]);
    let preview = stack.ok(&["preview", "--diff"]);
    assert!(preview.contains("~ talosVersion") || preview.contains("talosVersion:"), "{preview}");
    assert!(!preview.contains("replace"), "{preview}");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    let out = stack.outputs();
    assert_eq!(out["talosVersion"], "v1.13");
    assert_eq!(out["clusterId"], cluster_id.as_str(), "an update must not regenerate the secrets");

    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    let resources = stack.ok(&["stack", "--show-urns"]);
    assert!(!resources.contains("machine:Secrets"), "{resources}");
}

#[test]
fn import_from_a_talosctl_secrets_file() {
    let stack = stack("yaml-machine-secrets");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/talosctl-secrets.yaml");
    let out = stack.ok(&[
        "import",
        "proxmox-talos:machine:Secrets",
        "imported",
        fixture.to_str().unwrap(),
        "--yes",
        "--protect=false",
        "--skip-preview",
        "--out",
        stack.dir.join("imported.yaml").to_str().unwrap(),
    ]);
    assert!(out.contains("imported"), "{out}");
    let export = stack.ok(&["stack", "export", "--show-secrets"]);
    let fixture_text = std::fs::read_to_string(&fixture).unwrap();
    let id_line = fixture_text.lines().find(|l| l.trim_start().starts_with("id:")).unwrap();
    let id = id_line.split_once(':').unwrap().1.trim();
    assert!(export.contains(id), "imported cluster id {id} in state");
    stack.ok(&["destroy", "--yes", "--skip-preview"]);
}

#[test]
fn schema_passes_pulumi_schema_check() {
    let pulumi = std::env::var("PULUMI").unwrap_or_else(|_| "pulumi".into());
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.json");
    let home = tempfile::tempdir().unwrap();
    let mut command = Command::new(&pulumi);
    command
        .args(["schema", "check", schema.to_str().unwrap()])
        .env("PULUMI_SKIP_UPDATE_CHECK", "true")
        .env("PULUMI_HOME", home.path());
    let out =
        proxmox_talos_lab::deadline::output_within(&mut command, Duration::from_secs(300)).unwrap_or_else(|e| match e
            .spawn_error
        {
            Some(_) => panic!("cannot run {pulumi:?} ({e}); run the tests with tools/test.sh, which installs it"),
            None => panic!("{e}"),
        });
    assert!(
        out.status.success(),
        "pulumi schema check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the lab's Image Factory on a background runtime; returns its URL and state.
fn lab_factory() -> (String, proxmox_talos_lab::factory::FactoryState) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let state = proxmox_talos_lab::factory::FactoryState::new();
            tx.send((url, state.clone())).unwrap();
            proxmox_talos_lab::factory::serve(listener, state, std::future::pending()).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

#[test]
fn talos_configs_program_for_the_seed_cluster() {
    let (factory, state) = lab_factory();
    let stack = with_factory("yaml-talos-configs", &factory);
    stack.ok(&["up", "--yes", "--skip-preview"]);

    let base = "88d1f7a5c4f1d3aba7df787c448c1d3d008ed29cfb34af53fa0df4336a56040b";
    assert!(state.schematic_ids().contains(&base.to_string()), "the schematic was posted to the factory");
    let out = stack.outputs();
    assert_eq!(out["schematicId"], base);
    assert!(out["installerImage"].as_str().unwrap().ends_with(&format!("/nocloud-installer/{base}:v1.12.4")));
    let nodes = ["controller1", "controller2", "controller3", "worker1", "worker2", "worker3", "worker4"];
    for node in nodes {
        let config = out[format!("{node}Config")].as_str().unwrap_or_else(|| panic!("{node}Config output"));
        assert!(config.contains(&format!("hostname: k8s-{node}")), "{node}: hostname");
        assert!(config.contains("name: none"), "{node}: cni none");
        assert!(config.contains("kind: HostnameConfig"), "{node}: multi-document form");
        let controlplane = node.starts_with("controller");
        assert_eq!(config.contains("ip: 192.168.1.210"), controlplane, "{node}: VIP only on control planes");
        assert_eq!(config.contains("name: iscsi_tcp"), !controlplane, "{node}: worker modules");
        assert_eq!(config.contains("name: nvidia_uvm"), node == "worker4", "{node}: GPU modules");
    }
    let talosconfig = out["talosconfig"].as_str().unwrap();
    assert!(talosconfig.contains("context: talos-cluster") && talosconfig.contains("192.168.1.211"));

    // Configs, keys and tokens are secrets: hidden in output, never plain in state.
    let plain = stack.ok(&["stack", "output", "--json"]);
    assert!(!plain.contains("HostnameConfig") && !plain.contains("talos-cluster"), "{plain}");
    let export = stack.ok(&["stack", "export"]);
    for needle in ["LS0tLS1CRUdJTi", "-----BEGIN", "HostnameConfig", "bootstrapToken\": \"", "context: talos-cluster"] {
        assert!(!export.contains(needle), "{needle:?} is in the state in plain text");
    }

    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["destroy", "--yes", "--skip-preview"]);
}

/// The README's sequence for a program without `plugins.providers`: `pulumi plugin install
/// resource proxmox-talos <version> --file <binary>`, then `pulumi install` (no download: the
/// plugin is installed) and `up` work; before the plugin install, `pulumi install` tries to
/// download it and `preview` finds no plugin.
#[test]
fn the_documented_plugin_install_sequence_works() {
    let stack = stack("yaml-machine-secrets");
    let program = "name: yaml-machine-secrets\nruntime: yaml\nresources:\n  secrets:\n    type: proxmox-talos:machine:Secrets\n    properties: {talosVersion: v1.12}\n\
                   outputs:\n  version: ${secrets.talosVersion}\n";
    std::fs::write(stack.dir.join("Pulumi.yaml"), program).unwrap();
    let out = stack.fails(&["preview"]);
    assert!(out.contains("no resource plugin 'pulumi-resource-proxmox-talos' found"), "{out}");
    let binary = support::pulumi::plugin_dir().join("pulumi-resource-proxmox-talos");
    let version = env!("CARGO_PKG_VERSION");
    stack.ok(&["plugin", "install", "resource", "proxmox-talos", version, "--file", binary.to_str().unwrap()]);
    stack.ok(&["install"]);
    stack.ok(&["up", "--yes", "--skip-preview"]);
    assert_eq!(stack.outputs()["version"], "v1.12");
    stack.ok(&["destroy", "--yes", "--skip-preview"]);
}

/// The admin client certificate inside its renewal window (here: issued 350 days ago, so 15 of
/// its 365 days are left) shows as an update in a plain `preview` and is renewed by a plain
/// `up`, without a `refresh`; the renewed one is valid for a year again and still a secret.
#[test]
fn a_client_certificate_in_its_renewal_window_is_renewed_by_a_plain_up() {
    use proxmox_talos::talos::secrets::{self as talos, FixedClock, MachineSecrets};
    let stack = stack("yaml-machine-secrets");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    stack.ok(&["preview", "--expect-no-changes"]);

    // Age the recorded certificate: re-issue it from the same CA as of 350 days ago.
    let mut deployment = stack.export();
    let resources = deployment["deployment"]["resources"].as_array_mut().unwrap();
    let secrets = resources
        .iter_mut()
        .find(|r| r["type"] == "proxmox-talos:machine:Secrets")
        .expect("the Secrets resource is in the state");
    let plaintext = |v: &serde_json::Value| -> serde_json::Value {
        serde_json::from_str(v["plaintext"].as_str().expect("a secret shown with --show-secrets")).unwrap()
    };
    let bundle: MachineSecrets = serde_json::from_value(plaintext(&secrets["outputs"]["machineSecrets"])).unwrap();
    let issued = time::OffsetDateTime::now_utc() - time::Duration::days(350);
    let old = talos::client_configuration(&bundle, &FixedClock(issued)).unwrap();
    let mut wrapped = secrets["outputs"]["clientConfiguration"].clone();
    wrapped["plaintext"] = serde_json::Value::String(serde_json::to_string(&old).unwrap());
    secrets["outputs"]["clientConfiguration"] = wrapped;
    let file = stack.dir.join("aged.json");
    std::fs::write(&file, serde_json::to_vec(&deployment).unwrap()).unwrap();
    stack.ok(&["stack", "import", "--file", file.to_str().unwrap()]);

    let preview = stack.ok(&["preview", "--diff"]);
    assert!(preview.contains("~ proxmox-talos:machine:Secrets") || preview.contains("~ secrets"), "{preview}");
    assert!(preview.contains("clientConfiguration"), "{preview}");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    let after = stack.export();
    let secrets = after["deployment"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "proxmox-talos:machine:Secrets")
        .unwrap()
        .clone();
    let renewed: talos::ClientConfiguration =
        serde_json::from_value(plaintext(&secrets["outputs"]["clientConfiguration"])).unwrap();
    assert_ne!(renewed.client_certificate, old.client_certificate, "the certificate was renewed");
    assert!(!talos::client_certificate_needs_renewal(&renewed, time::OffsetDateTime::now_utc(), 300));
    stack.ok(&["preview", "--expect-no-changes"]);
    let export = stack.ok(&["stack", "export"]);
    assert!(!export.contains(&renewed.client_key), "the renewed key is stored in plain text");
    stack.ok(&["destroy", "--yes", "--skip-preview"]);
}
