//! The provider's Proxmox VE client against the lab over real HTTPS: TLS
//! verified with the lab CA (and a clear error without it), API tokens and
//! root@pam tickets with CSRF, PVE's error shapes classified, transient
//! failures retried, and tasks awaited by UPID with their log on failure.

use std::time::Duration;

use proxmox_talos::config::{ProxmoxAuth, ProxmoxSettings};
use proxmox_talos::proxmox::retry::{retry, RetryPolicy};
use proxmox_talos::proxmox::task::{self, TaskWait, Upid};
use proxmox_talos::proxmox::{ProxmoxError, PveClient};
use proxmox_talos_lab::in_process::{self, InProcessLab};
use proxmox_talos_lab::pve::auth::Principal;
use proxmox_talos_lab::pve::dice::draw;
use proxmox_talos_lab::pve::lab_config::{Faults, LabConfig, Timing};
use proxmox_talos_lab::pve::server::Call;
use proxmox_talos_lab::pve::tasks::{self as lab_tasks, Worker};
use serde_json::Value;

async fn lab() -> (InProcessLab, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LabConfig::single_node();
    config.timing = Timing::instant();
    (in_process::start(config, dir.path()).await.unwrap(), dir)
}

fn settings(lab: &InProcessLab, auth: ProxmoxAuth) -> ProxmoxSettings {
    ProxmoxSettings {
        endpoint: lab.endpoint.clone(),
        auth,
        insecure: false,
        ca_certificate: Some(lab.ca_path.display().to_string()),
        min_tls: None,
    }
}

fn token(lab: &InProcessLab) -> ProxmoxAuth {
    ProxmoxAuth::ApiToken(lab.api_token())
}

fn root(lab: &InProcessLab) -> ProxmoxAuth {
    ProxmoxAuth::Password { username: "root@pam".into(), password: lab.credentials.password.clone() }
}

#[tokio::test]
async fn tls_is_verified_and_an_untrusted_certificate_says_what_to_do() {
    let (lab, _dir) = lab().await;
    let client = PveClient::new(&settings(&lab, token(&lab))).unwrap();
    let version: Value = client.get("/version", &[]).await.unwrap();
    assert_eq!(version["release"], "9.1");
    // The CA as PEM text works too.
    let mut pem = settings(&lab, token(&lab));
    pem.ca_certificate = Some(lab.ca_pem.clone());
    PveClient::new(&pem).unwrap().get::<Value>("/version", &[]).await.unwrap();

    let mut untrusted = settings(&lab, token(&lab));
    untrusted.ca_certificate = None;
    let e = PveClient::new(&untrusted).unwrap().get::<Value>("/version", &[]).await.unwrap_err();
    assert!(e.to_string().contains("caCertificate"), "{e}");
    untrusted.insecure = true;
    PveClient::new(&untrusted).unwrap().get::<Value>("/version", &[]).await.unwrap();

    let mut http = settings(&lab, token(&lab));
    http.endpoint = lab.endpoint.replace("https", "http");
    assert!(matches!(PveClient::new(&http), Err(ProxmoxError::Config(m)) if m.contains("https")));
}

#[tokio::test]
async fn tokens_and_root_tickets_authenticate_writes() {
    let (lab, _dir) = lab().await;
    let map =
        vec![("id".to_string(), "gpu".to_string()), ("map".into(), "node=pve,path=0000:28:00.0,id=10de:2684".into())];
    let as_root = PveClient::new(&settings(&lab, root(&lab))).unwrap();
    assert!(as_root.is_root_ticket());
    as_root.post("/cluster/mapping/pci", &map).await.unwrap();
    let as_token = PveClient::new(&settings(&lab, token(&lab))).unwrap();
    assert!(!as_token.is_root_ticket());
    as_token.delete("/cluster/mapping/pci/gpu", &vec![]).await.unwrap();

    let wrong = ProxmoxAuth::Password { username: "root@pam".into(), password: "nope".into() };
    let e = PveClient::new(&settings(&lab, wrong)).unwrap().get::<Value>("/version", &[]).await.unwrap_err();
    assert!(e.to_string().contains("refused the login"), "{e}");
}

#[tokio::test]
async fn pve_errors_keep_their_status_message_and_parameter_errors() {
    let (lab, _dir) = lab().await;
    let client = PveClient::new(&settings(&lab, token(&lab))).unwrap();
    let e = client.get::<Value>("/cluster/nextid", &[("vmid", "90001")]).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(e.is_already_exists());
    assert!(e.to_string().contains("vmid: VM 90001 already exists"), "{e}");
    let e = client.get::<Value>("/storage/missing", &[]).await.unwrap_err();
    assert_eq!(e.to_string(), "Proxmox VE GET /storage/missing: 500 storage 'missing' does not exist");
    assert!(e.is_not_found());
}

#[tokio::test]
async fn transient_server_errors_are_retried_until_they_pass() {
    let (lab, _dir) = lab().await;
    let client = PveClient::new(&settings(&lab, token(&lab))).unwrap();
    lab.state.set_faults(Faults { server_error: 0.5, seed: 3, ..Faults::default() });
    let policy =
        RetryPolicy { attempts: 30, first_delay: Duration::from_millis(1), max_delay: Duration::from_millis(5) };
    let mut retried = 0;
    for i in 0..10 {
        let map =
            vec![("id".to_string(), format!("m{i}")), ("map".into(), "node=pve,path=0000:28:00.0,id=10de:2684".into())];
        retry(policy, |_, _| retried += 1, |_| client.post("/cluster/mapping/pci", &map)).await.unwrap();
    }
    assert!(retried > 0, "a 50% failure rate must have caused retries");
    lab.state.set_faults(Faults::default());
    let maps: Vec<Value> = client.get("/cluster/mapping/pci", &[]).await.unwrap();
    assert_eq!(maps.len(), 10);
}

/// The ticket login is retried on a passing failure (the lab's "got no worker
/// upid" 500 on the first `POST /access/ticket`, the second passing: a seed
/// chosen from the lab's fault dice), while a permanent 500 (a protected VM's
/// destroy) surfaces at once under the default policy, not after its backoff.
#[tokio::test]
async fn the_login_is_retried_on_contention_and_a_permanent_500_surfaces_at_once() {
    let (lab, _dir) = lab().await;
    let hits = |seed, attempt| draw(seed, "serverError", "POST", "/access/ticket", attempt) < 0.5;
    let seed = (1..).find(|&s| hits(s, 1) && !hits(s, 2)).unwrap();
    lab.state.set_faults(Faults { server_error: 0.5, seed, ..Faults::default() });
    lab.state.clear_requests();
    let client = PveClient::new(&settings(&lab, root(&lab))).unwrap();
    let version: Value = client.get("/version", &[]).await.unwrap();
    assert_eq!(version["release"], "9.1");
    let logins: Vec<u16> =
        lab.state.requests().1.iter().filter(|r| r.path == "/access/ticket").map(|r| r.status).collect();
    assert_eq!(logins, vec![500, 200], "the first login met the injected 500 and was sent again");
    assert_eq!(lab.state.injected_faults()["serverError"], 1);
    lab.state.set_faults(Faults::off());

    client.put("/nodes/pve/qemu/90001/config", &vec![("protection".into(), "1".into())]).await.unwrap();
    let started = std::time::Instant::now();
    let mut retries = 0;
    let none = Vec::new();
    let e = retry(RetryPolicy::default(), |_, _| retries += 1, |_| client.delete("/nodes/pve/qemu/90001", &none))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(e.to_string().contains("protection mode enabled") && e.status() == Some(500), "{e}");
    assert!(!e.is_transient(), "{e}");
    assert_eq!(retries, 0, "a permanent error is not retried");
    assert!(took < Duration::from_secs(1), "a permanent 500 took {took:?} to surface");
}

fn lab_call() -> Call {
    Call {
        principal: Some(Principal::Token { user: "root@pam".into(), token_id: "lab".into() }),
        method: "POST".into(),
        template: String::new(),
        path: String::new(),
        params: serde_json::Map::new(),
        file: None,
        result_attribs: Default::default(),
    }
}

#[tokio::test]
async fn tasks_are_awaited_and_a_failure_carries_its_log() {
    let (lab, _dir) = lab().await;
    let client = PveClient::new(&settings(&lab, token(&lab))).unwrap();
    lab.state.set_timing(Timing { task_ms: 300, ..Timing::instant() });
    let worker = || Worker { node: "pve".into(), kind: "qmstart", id: "90001".into(), lock_vmid: None };
    let ok = lab_tasks::start(&lab.state, &lab_call(), worker(), |log| async move {
        log.warn("unused volume");
        Ok(())
    });
    let progress = std::sync::Mutex::new(Vec::new());
    let report = |d: Duration| progress.lock().unwrap().push(d);
    let how = TaskWait { timeout: Duration::from_secs(10), progress: &report, cancelled: &|| false };
    let outcome = task::wait(&client, &Upid::parse(&ok).unwrap(), &how).await.unwrap();
    assert_eq!(outcome.warnings, vec!["WARN: unused volume".to_string()]);

    let failed = lab_tasks::start(&lab.state, &lab_call(), worker(), |log| async move {
        log.line("trying to acquire lock...");
        Err("VM 90001 already running".into())
    });
    let e = task::wait(&client, &Upid::parse(&failed).unwrap(), &how).await.unwrap_err();
    assert!(e.is_already_running());
    let text = e.to_string();
    assert!(text.contains("failed: VM 90001 already running") && text.contains("trying to acquire lock..."), "{text}");

    // A long log (a migration's or a download's progress) shows its end, where the reason is.
    let long = lab_tasks::start(&lab.state, &lab_call(), worker(), |log| async move {
        for i in 1..=1200 {
            log.line(format!("progress line {i}"));
        }
        log.line("the reason is at the end");
        Err("migration aborted".into())
    });
    let e = task::wait(&client, &Upid::parse(&long).unwrap(), &how).await.unwrap_err();
    let ProxmoxError::Task { log_tail, .. } = &e else { panic!("{e}") };
    assert_eq!(log_tail.len(), task::TAIL_LINES as usize, "{log_tail:?}");
    assert_eq!(log_tail.last().map(String::as_str), Some("TASK ERROR: migration aborted"), "{log_tail:?}");
    assert!(log_tail.contains(&"the reason is at the end".to_string()), "{log_tail:?}");
    assert!(log_tail.contains(&"progress line 1200".to_string()), "{log_tail:?}");
    assert!(!log_tail.iter().any(|l| l == "progress line 1"), "{log_tail:?}");

    lab.state.set_timing(Timing { task_ms: 5000, ..Timing::instant() });
    let slow = lab_tasks::start(&lab.state, &lab_call(), worker(), |_| async { Ok(()) });
    let short = TaskWait { timeout: Duration::from_millis(1500), progress: &report, cancelled: &|| false };
    let e = task::wait(&client, &Upid::parse(&slow).unwrap(), &short).await.unwrap_err();
    assert!(e.to_string().contains("still running after 1s"), "{e}");
    assert!(!progress.lock().unwrap().is_empty(), "progress was reported while waiting");
}
