//! The `proxmox-talos-lab factory` command: prints its URL first, serves the
//! factory, stops cleanly on SIGINT, and refuses non-loopback addresses.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_proxmox-talos-lab");

/// Runs the lab binary to the end, within a minute.
fn run(command: &mut Command) -> std::process::Output {
    proxmox_talos_lab::deadline::output_or_panic(command, Duration::from_secs(60))
}

#[tokio::test]
async fn factory_prints_its_url_serves_and_stops_on_sigint() {
    let mut child = Command::new(BIN)
        .args(["factory", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let line = proxmox_talos_lab::deadline::first_line_within(&mut child, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let url = line.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "first stdout line is the URL, got {line:?}");

    let body = reqwest::get(format!("{url}/versions")).await.unwrap().bytes().await.unwrap();
    let versions: Vec<String> = serde_json::from_slice(&body).unwrap();
    assert!(versions.contains(&"v1.12.4".to_string()));

    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "clean exit on SIGINT, got {status:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the lab did not stop on SIGINT");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn only_loopback_addresses_are_accepted() {
    let out = run(Command::new(BIN).args(["factory", "--listen", "0.0.0.0:0"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&mut Command::new(BIN));
    assert_eq!(out.status.code(), Some(2));
}

fn lab(args: &[&str]) -> std::process::Output {
    let out = run(Command::new(BIN).args(args));
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn env_value(env_file: &str, key: &str) -> String {
    let env = proxmox_talos_lab::homelab::read_env_file(std::path::Path::new(env_file)).unwrap();
    env.into_iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_else(|| panic!("{key} missing from {env_file}"))
}

async fn api_get(env_file: &str, path: &str) -> serde_json::Value {
    let (status, body) = api_get_as(env_file, "PROXMOX_VE_API_TOKEN", path).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A GET with the token the env file exports as `token_key`: (status, body).
async fn api_get_as(env_file: &str, token_key: &str, path: &str) -> (u16, serde_json::Value) {
    let ca = std::fs::read(env_value(env_file, "PROXMOX_VE_CA_CERT")).unwrap();
    let client =
        reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap()).build().unwrap();
    let url = format!("{}api2/json{path}", env_value(env_file, "PROXMOX_VE_ENDPOINT"));
    let token = format!("PVEAPIToken={}", env_value(env_file, token_key));
    let response = client.get(url).header("Authorization", token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_slice(&response.bytes().await.unwrap()).unwrap())
}

/// `up` starts the lab in the background and prints the env file; the API
/// answers with TLS verified against the CA it names; `inventory` lists the
/// seed template only with `--all`; `down` stops it; state survives `up` again.
#[tokio::test]
async fn up_inventory_down_and_state_survives_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().to_str().unwrap();
    let up =
        ["up", "--state", dir, "--preset", "cluster", "--listen", "127.0.0.1:0", "--factory-listen", "127.0.0.1:0"];
    let out = lab(&up);
    let env_file = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(env_file.ends_with("lab.env"), "{env_file}");
    let nodes = api_get(&env_file, "/nodes").await;
    let names: Vec<&str> = nodes["data"].as_array().unwrap().iter().map(|n| n["node"].as_str().unwrap()).collect();
    assert_eq!(names, ["pve-aimax-01", "pve-ms01-01", "pve-ms01-02"]);
    // The least-privilege token (pulumi@pve!lab: PVEVMAdmin on /vms, PVEDatastoreUser on /storage).
    let limited = env_value(&env_file, "PROXMOX_LAB_LIMITED_API_TOKEN");
    assert!(limited.starts_with("pulumi@pve!lab="), "{limited}");
    let (status, vms) = api_get_as(&env_file, "PROXMOX_LAB_LIMITED_API_TOKEN", "/cluster/resources?type=vm").await;
    assert_eq!((status, &vms["data"][0]["vmid"]), (200, &serde_json::json!(90001)), "{vms}");
    let (status, net) = api_get_as(&env_file, "PROXMOX_LAB_LIMITED_API_TOKEN", "/nodes/pve-ms01-01/network").await;
    assert_eq!((status, &net["data"][0]["iface"]), (200, &serde_json::json!("vmbr0")), "SDN.Use on the bridge: {net}");
    let (status, refused) = api_get_as(&env_file, "PROXMOX_LAB_LIMITED_API_TOKEN", "/cluster/status").await;
    assert_eq!((status, refused["message"].as_str()), (403, Some("Permission check failed (/, Sys.Audit)\n")));
    let factory = env_value(&env_file, "TALOS_IMAGE_FACTORY_URL");
    assert_eq!(reqwest::get(format!("{factory}/versions")).await.unwrap().status(), 200);
    // A second `up` finds it running.
    assert_eq!(String::from_utf8(lab(&up).stdout).unwrap().trim(), env_file);

    let inventory: serde_json::Value =
        serde_json::from_slice(&lab(&["inventory", "--state", dir, "--json"]).stdout).unwrap();
    assert_eq!(inventory, serde_json::json!({ "vms": [], "files": [] }));
    let all: serde_json::Value =
        serde_json::from_slice(&lab(&["inventory", "--state", dir, "--json", "--all"]).stdout).unwrap();
    assert_eq!(all["vms"][0]["vmid"], 90001);
    assert_eq!(all["vms"][0]["name"], "pkr-ubuntu-noble-1");

    // A file dropped into the `local` storage shows up everywhere.
    let iso = state.path().join("nodes/pve-ms01-01/root/var/lib/vz/template/iso/extra.iso");
    std::fs::write(&iso, b"iso").unwrap();
    let content = api_get(&env_file, "/cluster/resources?type=storage").await;
    assert!(content["data"].as_array().unwrap().len() >= 9);
    let inventory: serde_json::Value =
        serde_json::from_slice(&lab(&["inventory", "--state", dir, "--json"]).stdout).unwrap();
    assert_eq!(inventory["files"][0]["volid"], "local:iso/extra.iso");

    lab(&["down", "--state", dir]);
    assert!(!std::path::Path::new(&env_file).exists(), "down removes the env file");
    let restarted = String::from_utf8(lab(&up).stdout).unwrap().trim().to_string();
    let vms = api_get(&restarted, "/cluster/resources?type=vm").await;
    assert_eq!(vms["data"][0]["vmid"], 90001);
    lab(&["down", "--state", dir]);
}
