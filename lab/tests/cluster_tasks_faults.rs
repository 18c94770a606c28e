//! The lab's cluster endpoints, worker tasks and fault injection, over real
//! HTTPS: nextid's "already exists", PCI devices and mappings, storage
//! definitions, task status and log as PVE shapes them (running → stopped,
//! OK / WARNINGS / error, the config lock with "got timeout"), and the admin
//! API's faults (server errors, lock timeouts, dropped connections) and
//! request log.

use std::time::Duration;

use proxmox_talos_lab::pve::apidoc::ApiDoc;
use proxmox_talos_lab::pve::auth::{Auth, Principal};
use proxmox_talos_lab::pve::lab_config::{Faults, LabConfig, Timing};
use proxmox_talos_lab::pve::server::{self, Call, PveState};
use proxmox_talos_lab::pve::tasks::{self, Worker};
use proxmox_talos_lab::pve::tls::LabCa;
use serde_json::{json, Value};

const SECRET: &str = "00000000-1111-2222-3333-444444444444";

struct Lab {
    url: String,
    admin: String,
    state: PveState,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(config: LabConfig) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let ca = LabCa::load_or_create(dir.path()).unwrap();
    let apidoc = ApiDoc::load(&ApiDoc::locate().unwrap()).unwrap();
    let auth = Auth::new().with_user("root@pam", "lab-password").with_token("root@pam!lab", SECRET);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = PveState::new(apidoc, auth, config, dir.path()).unwrap();
    tokio::spawn(server::serve(listener, ca.server_config().unwrap(), state.clone(), std::future::pending()));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
        .default_headers(
            [(reqwest::header::AUTHORIZATION, format!("PVEAPIToken=root@pam!lab={SECRET}").parse().unwrap())]
                .into_iter()
                .collect(),
        )
        .build()
        .unwrap();
    Lab { url: server::base_url(addr), admin: format!("https://{addr}/lab"), state, client, _dir: dir }
}

fn fast() -> LabConfig {
    let mut config = LabConfig::seed_cluster();
    config.timing = Timing::instant();
    config
}

async fn call(lab: &Lab, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> (u16, String, Value) {
    let url = format!("{}{path}", lab.url);
    let request = if method == reqwest::Method::GET {
        lab.client.get(url).query(form)
    } else {
        lab.client.request(method, url).form(form)
    };
    let response = request.send().await.unwrap();
    let status = response.status();
    let reason = status.canonical_reason().unwrap_or("").to_string();
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let message = body["message"].as_str().map(|m| m.trim().to_string()).unwrap_or(reason);
    (status.as_u16(), message, body)
}

async fn get(lab: &Lab, path: &str) -> Value {
    let (status, message, body) = call(lab, reqwest::Method::GET, path, &[]).await;
    assert_eq!(status, 200, "GET {path}: {message}");
    body["data"].clone()
}

#[tokio::test]
async fn nextid_refuses_a_used_vmid_as_pve_does() {
    let lab = start(fast()).await;
    assert_eq!(get(&lab, "/cluster/nextid").await, "100");
    assert_eq!(get(&lab, "/cluster/nextid?vmid=4242").await, "4242");
    let (status, message, body) = call(&lab, reqwest::Method::GET, "/cluster/nextid", &[("vmid", "90001")]).await;
    assert_eq!((status, message.as_str()), (400, "Parameter verification failed."));
    assert_eq!(body["errors"], json!({ "vmid": "VM 90001 already exists" }));
}

#[tokio::test]
async fn cluster_nodes_storage_and_pci_describe_the_seed_hardware() {
    let lab = start(fast()).await;
    let status = get(&lab, "/cluster/status").await;
    assert_eq!(status[0]["type"], "cluster");
    let ips: Vec<&str> = status.as_array().unwrap()[1..].iter().map(|n| n["ip"].as_str().unwrap()).collect();
    assert!(ips.iter().all(|ip| ip.starts_with("127.")), "{ips:?}");
    let local = get(&lab, "/storage/local").await;
    assert_eq!(local["path"], "/var/lib/vz");
    assert!(local["content"].as_str().unwrap().split(',').any(|c| c == "snippets"));
    assert_eq!(get(&lab, "/storage/ceph").await["shared"], 1);
    let (status, message, _) = call(&lab, reqwest::Method::GET, "/storage/nope", &[]).await;
    assert_eq!((status, message.as_str()), (500, "storage 'nope' does not exist"));
    let pci = get(&lab, "/nodes/pve-aimax-01/hardware/pci").await;
    assert_eq!(pci[0]["id"], "0000:28:00.0");
    assert_eq!(get(&lab, "/nodes/pve-ms01-01/hardware/pci").await, json!([]));
    let net = get(&lab, "/nodes/pve-ms01-01/network?type=bridge").await;
    assert_eq!(net[0]["iface"], "vmbr0");
    assert_eq!(net[0]["bridge_vlan_aware"], 1);
    let (status, message, _) = call(&lab, reqwest::Method::GET, "/nodes/ghost/status", &[]).await;
    assert_eq!(status, 500);
    assert!(message.starts_with("hostname lookup 'ghost' failed"), "{message}");
    assert!(get(&lab, "/nodes/pve-ms01-02/status").await["pveversion"].as_str().unwrap().starts_with("pve-manager/9"));
}

#[tokio::test]
async fn pci_mappings_are_created_listed_and_deleted() {
    let lab = start(fast()).await;
    let map = "node=pve-aimax-01,path=0000:28:00.0,id=10de:2684,iommugroup=28";
    let (status, message, _) =
        call(&lab, reqwest::Method::POST, "/cluster/mapping/pci", &[("id", "gpu"), ("map", map)]).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(get(&lab, "/cluster/mapping/pci").await[0]["map"][0], map);
    let (status, message, _) =
        call(&lab, reqwest::Method::POST, "/cluster/mapping/pci", &[("id", "gpu"), ("map", map)]).await;
    assert_eq!((status, message.as_str()), (500, "pci mapping 'gpu' already defined"));
    let wrong = "node=pve-ms01-01,path=0000:28:00.0,id=10de:2684";
    let (status, message, _) =
        call(&lab, reqwest::Method::POST, "/cluster/mapping/pci", &[("id", "gpu2"), ("map", wrong)]).await;
    assert_eq!(status, 500, "{message}");
    assert_eq!(call(&lab, reqwest::Method::DELETE, "/cluster/mapping/pci/gpu", &[]).await.0, 200);
    assert_eq!(call(&lab, reqwest::Method::GET, "/cluster/mapping/pci/gpu", &[]).await.0, 404);
}

fn task_call() -> Call {
    Call {
        principal: Some(Principal::Token { user: "root@pam".into(), token_id: "lab".into() }),
        method: "POST".into(),
        template: "/nodes/{node}/qemu/{vmid}/status/start".into(),
        path: "/nodes/pve-ms01-01/qemu/90001/status/start".into(),
        params: serde_json::Map::new(),
        file: None,
        result_attribs: Default::default(),
    }
}

async fn wait_task(lab: &Lab, upid: &str) -> Value {
    let node = upid.split(':').nth(1).unwrap();
    let path = format!("/nodes/{node}/tasks/{}/status", urlencode(upid));
    for _ in 0..500 {
        let status = get(lab, &path).await;
        if status["status"] == "stopped" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {upid} did not stop");
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn tasks_run_then_stop_with_ok_warnings_or_the_error_and_keep_a_log() {
    let lab = start(fast()).await;
    let worker = |kind| Worker { node: "pve-ms01-01".into(), kind, id: "90001".into(), lock_vmid: Some(90001) };
    lab.state.set_timing(Timing { task_ms: 200, ..Timing::instant() });
    let ok = tasks::start(&lab.state, &task_call(), worker("qmstart"), |log| async move {
        log.line("starting");
        Ok(())
    });
    assert!(ok.starts_with("UPID:pve-ms01-01:"), "{ok}");
    assert!(ok.ends_with(":qmstart:90001:root@pam!lab:"), "{ok}");
    let running = get(&lab, &format!("/nodes/pve-ms01-01/tasks/{}/status", urlencode(&ok))).await;
    assert_eq!(running["status"], "running");
    assert!(running.get("exitstatus").is_none());
    // The task holds the VM's config lock: a second locking task waits for it.
    lab.state.set_timing(Timing { task_ms: 0, ..Timing::instant() });
    let second = tasks::start(&lab.state, &task_call(), worker("qmconfig"), |_| async { Ok(()) });
    assert_eq!(wait_task(&lab, &ok).await["exitstatus"], "OK");
    assert_eq!(wait_task(&lab, &second).await["exitstatus"], "OK");
    let log = get(&lab, &format!("/nodes/pve-ms01-01/tasks/{}/log", urlencode(&ok))).await;
    assert_eq!(log, json!([{ "n": 1, "t": "starting" }, { "n": 2, "t": "TASK OK" }]));
    // A page of the log, with the whole log's length beside it (PVE's `total` result attribute).
    let path = format!("/nodes/pve-ms01-01/tasks/{}/log", urlencode(&ok));
    let (status, _, body) = call(&lab, reqwest::Method::GET, &path, &[("start", "1"), ("limit", "1")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "data": [{ "n": 2, "t": "TASK OK" }], "total": 2 }));

    let warned = tasks::start(&lab.state, &task_call(), worker("qmstart"), |log| async move {
        log.warn("no efidisk configured! Using temporary efivars disk.");
        Ok(())
    });
    assert_eq!(wait_task(&lab, &warned).await["exitstatus"], "WARNINGS: 1");
    let failed =
        tasks::start(&lab.state, &task_call(), worker("qmstart"), |_| async { Err("VM 90001 already running".into()) });
    assert_eq!(wait_task(&lab, &failed).await["exitstatus"], "VM 90001 already running");
    let log = get(&lab, &format!("/nodes/pve-ms01-01/tasks/{}/log", urlencode(&failed))).await;
    assert_eq!(log[0]["t"], "TASK ERROR: VM 90001 already running");
    let listed = get(&lab, "/nodes/pve-ms01-01/tasks?vmid=90001").await;
    assert_eq!(listed.as_array().unwrap().len(), 4);
    let (status, _, body) = call(&lab, reqwest::Method::GET, "/nodes/pve-ms01-01/tasks/nonsense/status", &[]).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_lock_held_past_the_lock_wait_fails_with_pves_text() {
    let lab = start(fast()).await;
    lab.state.set_timing(Timing { task_ms: 1500, lock_wait_ms: 100, ..Timing::instant() });
    let worker = |kind| Worker { node: "pve-ms01-01".into(), kind, id: "90001".into(), lock_vmid: Some(90001) };
    let long = tasks::start(&lab.state, &task_call(), worker("qmclone"), |_| async { Ok(()) });
    // The long task holds the lock before the second one starts.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while lab.state.read(|m| m.vms[&90001].busy.as_deref() != Some(long.as_str())) {
        assert!(std::time::Instant::now() < deadline, "the long task never took the lock");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let blocked = tasks::start(&lab.state, &task_call(), worker("qmstart"), |_| async { Ok(()) });
    let status = wait_task(&lab, &blocked).await;
    assert_eq!(status["exitstatus"], "can't lock file '/var/lock/qemu-server/lock-90001.conf' - got timeout");
    let err = lab.state.lock_vm(90001, "sync-put").await.unwrap_err();
    assert_eq!(err.status.as_u16(), 500);
    assert_eq!(err.message, "can't lock file '/var/lock/qemu-server/lock-90001.conf' - got timeout");
    let stopped =
        call(&lab, reqwest::Method::DELETE, &format!("/nodes/pve-ms01-01/tasks/{}", urlencode(&long)), &[]).await;
    assert_eq!(stopped.0, 200);
    assert_eq!(wait_task(&lab, &long).await["exitstatus"], "interrupted by signal");
}

#[tokio::test]
async fn faults_are_set_at_runtime_and_injected_with_pves_texts() {
    let lab = start(fast()).await;
    let faults = lab.client.get(format!("{}/faults", lab.admin)).send().await.unwrap();
    assert_eq!(faults.json::<Value>().await.unwrap()["data"]["lockTimeout"], 0.0);
    let set = |f: Faults| lab.client.put(format!("{}/faults", lab.admin)).json(&f).send();
    let bad = set(Faults { lock_timeout: 2.0, ..Faults::default() }).await.unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(
        lab.client.get(format!("{}/faults", lab.admin)).header("Authorization", "").send().await.unwrap().status(),
        401
    );

    set(Faults { server_error: 1.0, ..Faults::default() }).await.unwrap();
    let map = "node=pve-aimax-01,path=0000:28:00.0,id=10de:2684";
    let (status, message, _) =
        call(&lab, reqwest::Method::POST, "/cluster/mapping/pci", &[("id", "gpu"), ("map", map)]).await;
    assert_eq!((status, message.as_str()), (500, "got no worker upid - start worker failed"));
    assert_eq!(get(&lab, "/cluster/mapping/pci").await, json!([]), "a refused call changes nothing");

    set(Faults { lock_timeout: 1.0, ..Faults::default() }).await.unwrap();
    let (status, message, _) =
        call(&lab, reqwest::Method::POST, "/nodes/pve-ms01-01/qemu/90001/status/start", &[]).await;
    assert_eq!(
        (status, message.as_str()),
        (500, "can't lock file '/var/lock/qemu-server/lock-90001.conf' - got timeout")
    );

    set(Faults { dropped_connection: 1.0, ..Faults::default() }).await.unwrap();
    let dropped = lab.client.get(format!("{}/version", lab.url)).send().await;
    assert!(dropped.is_err(), "the connection is closed without an answer: {dropped:?}");

    // Rates are honoured with a seed: about half of 400 calls fail at 0.5.
    set(Faults { server_error: 0.5, seed: 7, ..Faults::default() }).await.unwrap();
    let mut failed = 0;
    for _ in 0..400 {
        if call(&lab, reqwest::Method::DELETE, "/cluster/mapping/pci/none", &[]).await.0 == 500 {
            failed += 1;
        }
    }
    assert!((150..250).contains(&failed), "{failed} of 400 failed at rate 0.5");
    let stats: Value =
        lab.client.get(format!("{}/faults/stats", lab.admin)).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["data"]["injected"]["serverError"], json!(failed), "injected faults are counted by kind");
    assert_eq!(stats["data"]["injected"]["lockTimeout"], 0, "counts start over when faults are set");
    set(Faults::default()).await.unwrap();

    let log: Value = lab.client.get(format!("{}/requests", lab.admin)).send().await.unwrap().json().await.unwrap();
    let requests = log["data"]["requests"].as_array().unwrap();
    assert!(requests.iter().any(|r| r["path"] == "/version" && r["status"] == 0), "dropped calls are logged");
    assert_eq!(lab.client.delete(format!("{}/requests", lab.admin)).send().await.unwrap().status(), 200);
    let log: Value = lab.client.get(format!("{}/requests", lab.admin)).send().await.unwrap().json().await.unwrap();
    assert_eq!(log["data"]["total"], 0);
}

/// One request's outcome: the status and message, or "dropped".
async fn outcome(client: reqwest::Client, url: String, method: reqwest::Method) -> String {
    match client.request(method, url).form(&[("timeout", "1")]).send().await {
        Err(_) => "dropped".to_string(),
        Ok(r) => {
            let status = r.status().as_u16();
            let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null);
            format!("{status} {}", body["message"].as_str().unwrap_or("").trim())
        }
    }
}

/// The same requests, one by one in one order and all at once in the
/// reverse order, meet the same faults under the same seed: each decision is
/// made from (seed, kind, method, path, attempt), never from arrival order.
#[tokio::test]
async fn the_same_seed_injects_the_same_faults_whatever_the_arrival_order() {
    let lab = start(fast()).await;
    let mut requests = Vec::new();
    for i in 0..6 {
        for _ in 0..3 {
            requests.push((reqwest::Method::DELETE, format!("/cluster/mapping/pci/none{i}")));
            requests.push((reqwest::Method::POST, format!("/nodes/pve-ms01-01/qemu/9990{i}/status/start")));
        }
    }
    let faults =
        |seed| Faults { seed, lock_timeout: 0.2, server_error: 0.2, dropped_connection: 0.2, task_failure: 0.0 };
    for seed in [1, 2, 3] {
        let mut runs = Vec::new();
        for concurrent in [false, true] {
            lab.state.set_faults(faults(seed));
            let mut outcomes: Vec<(String, String)> = Vec::new();
            if concurrent {
                let handles: Vec<_> = requests
                    .iter()
                    .rev()
                    .map(|(m, p)| {
                        let (client, url, method, key) =
                            (lab.client.clone(), format!("{}{p}", lab.url), m.clone(), format!("{m} {p}"));
                        tokio::spawn(async move { (key, outcome(client, url, method).await) })
                    })
                    .collect();
                for h in handles {
                    outcomes.push(h.await.unwrap());
                }
            } else {
                for (m, p) in &requests {
                    let o = outcome(lab.client.clone(), format!("{}{p}", lab.url), m.clone()).await;
                    outcomes.push((format!("{m} {p}"), o));
                }
            }
            // Identical requests are told apart only by their attempt: compare as multisets.
            outcomes.sort();
            runs.push((outcomes, lab.state.injected_faults()));
        }
        let (one_by_one, counts) = &runs[0];
        let (at_once, counts_at_once) = &runs[1];
        assert_eq!(one_by_one, at_once, "seed {seed}");
        assert_eq!(counts, counts_at_once, "seed {seed}");
        for kind in ["lockTimeout", "serverError", "droppedConnection"] {
            assert!(counts[kind] > 0, "seed {seed}: no {kind} was injected: {counts:?}");
        }
        eprintln!("seed {seed}: {counts:?}");
    }
    lab.state.set_faults(Faults::off());
}
