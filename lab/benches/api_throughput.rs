//! Lab API throughput on loopback: requests per second for the calls a
//! provider makes most (cluster resources, VM list, task status), over HTTPS
//! with keep-alive, by several concurrent clients. The lab must never be what
//! a benchmark of the provider measures (target: ≥ 500 requests/s).
//!
//! `cargo bench -p proxmox-talos-lab --bench api_throughput [-- --requests N --clients C]`

use std::time::Instant;

use proxmox_talos_lab::pve::apidoc::ApiDoc;
use proxmox_talos_lab::pve::auth::Auth;
use proxmox_talos_lab::pve::lab_config::{LabConfig, Timing};
use proxmox_talos_lab::pve::server::{self, PveState};
use proxmox_talos_lab::pve::tls::LabCa;

const SECRET: &str = "00000000-1111-2222-3333-444444444444";

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let requests = arg("--requests", 4000);
    let clients = arg("--clients", 8);
    let dir = tempfile::tempdir().unwrap();
    let ca = LabCa::load_or_create(dir.path()).unwrap();
    let apidoc = ApiDoc::load(&ApiDoc::locate().unwrap()).unwrap();
    let auth = Auth::new().with_token("root@pam!lab", SECRET);
    let mut config = LabConfig::seed_cluster();
    config.timing = Timing::instant();
    let state = PveState::new(apidoc, auth, config, dir.path()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = server::base_url(listener.local_addr().unwrap());
    tokio::spawn(server::serve(listener, ca.server_config().unwrap(), state, std::future::pending()));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let paths = ["/cluster/resources?type=vm", "/nodes/pve-ms01-01/status", "/version", "/cluster/nextid"];
    // Warm up the connections.
    for p in paths {
        get(&client, &url, p).await;
    }
    let started = Instant::now();
    let mut workers = Vec::new();
    for c in 0..clients {
        let (client, url) = (client.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            for i in 0..requests / clients {
                get(&client, &url, paths[(i + c) % paths.len()]).await;
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    let done = (requests / clients) * clients;
    println!(
        "lab api: {done} requests by {clients} clients in {:.2} s = {:.0} requests/s (HTTPS, keep-alive, schema-validated)",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64()
    );
}

async fn get(client: &reqwest::Client, url: &str, path: &str) {
    let response = client
        .get(format!("{url}{path}"))
        .header("Authorization", format!("PVEAPIToken=root@pam!lab={SECRET}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.bytes().await.unwrap();
}
