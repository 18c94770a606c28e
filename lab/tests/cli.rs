//! The `proxmox-talos-lab factory` command: prints its URL first, serves the
//! factory, stops cleanly on SIGINT, and refuses non-loopback addresses.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_proxmox-talos-lab");

#[tokio::test]
async fn factory_prints_its_url_serves_and_stops_on_sigint() {
    let mut child = Command::new(BIN)
        .args(["factory", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
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
    let out = Command::new(BIN).args(["factory", "--listen", "0.0.0.0:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(BIN).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
