//! End to end through the real `pulumi` CLI and YAML language host: the program
//! in `sdk-examples/yaml-machine-secrets` is previewed, deployed, previewed again
//! (no changes), refreshed (no drift), updated in place, imported and destroyed,
//! with a local file backend and plugin downloads disabled.
//!
//! Needs `pulumi` and `pulumi-language-yaml` on PATH (`tools/test.sh` installs
//! them); without them this test fails and says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Stack {
    dir: PathBuf,
    home: tempfile::TempDir,
}

impl Stack {
    fn new(example: &str) -> Stack {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("program");
        std::fs::create_dir_all(&dir).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk-examples").join(example);
        let plugin_dir = Path::new(env!("CARGO_BIN_EXE_pulumi-resource-proxmox-talos")).parent().unwrap();
        let program = std::fs::read_to_string(src.join("Pulumi.yaml")).unwrap();
        // Point plugins.providers at this build's binary.
        let program = program.replace("path: ../../target/debug", &format!("path: {}", plugin_dir.display()));
        assert!(program.contains(&plugin_dir.display().to_string()), "the example names its plugin path");
        std::fs::write(dir.join("Pulumi.yaml"), program).unwrap();
        std::fs::create_dir_all(home.path().join("state")).unwrap();
        let s = Stack { dir, home };
        s.ok(&["login", &format!("file://{}", s.home.path().join("state").display())]);
        s.ok(&["stack", "init", "dev"]);
        s
    }

    fn run(&self, args: &[&str]) -> Output {
        let pulumi = std::env::var("PULUMI").unwrap_or_else(|_| "pulumi".into());
        Command::new(&pulumi)
            .args(args)
            .arg("--non-interactive")
            .current_dir(&self.dir)
            .env("PULUMI_HOME", self.home.path().join("home"))
            .env("PULUMI_BACKEND_URL", format!("file://{}", self.home.path().join("state").display()))
            .env("PULUMI_CONFIG_PASSPHRASE", "proxmox-talos-tests")
            .env("PULUMI_SKIP_UPDATE_CHECK", "true")
            .env("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
            .env("PULUMI_SKIP_CONFIRMATIONS", "true")
            .env("TALOS_IMAGE_FACTORY_URL", "https://127.0.0.1:9443")
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run {pulumi:?} ({e}); run the tests with tools/test.sh, which installs it")
            })
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "pulumi {args:?} failed\n--- stdout\n{stdout}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn outputs(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["stack", "output", "--json", "--show-secrets"])).unwrap()
    }
}

#[test]
fn yaml_program_lifecycle() {
    let stack = Stack::new("yaml-machine-secrets");

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
    let stack = Stack::new("yaml-machine-secrets");
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
        stack.home.path().join("imported.yaml").to_str().unwrap(),
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
    let out = Command::new(&pulumi)
        .args(["schema", "check", schema.to_str().unwrap()])
        .env("PULUMI_SKIP_UPDATE_CHECK", "true")
        .env("PULUMI_HOME", tempfile::tempdir().unwrap().path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {pulumi:?} ({e}); run the tests with tools/test.sh, which installs it"));
    assert!(
        out.status.success(),
        "pulumi schema check failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
