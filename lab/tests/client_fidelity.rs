//! What clients other than the provider get from the lab, checked with
//! clients written from PVE's, Talos's and the tools' documented behaviour:
//!
//! - keys: the admin kubeconfig a lab Talos node hands out and the
//!   talosconfig the provider's `client:getConfiguration` builds load with
//!   OpenSSL (`openssl pkey`/`x509`) and with Go's `crypto/tls`
//!   (`tools/keycheck`);
//! - TLS: the API's certificate names the `--listen` address and every
//!   node's address and name (a verifying client connects to each);
//! - `up` with its state under /tmp says clearly that the nodes have no SSH,
//!   and `lab.env` then offers none; the lab CA's key loads with OpenSSL and Go;
//! - the factory's `.qcow2` is a real qcow2 that `download-url` into
//!   `import` accepts and `import-from` takes (and `qemu-img` checks, when
//!   installed);
//! - `GET /nodes/{node}/tasks` in PVE's list shape (`status` = `OK`, the
//!   error text or `RUNNING`) with PVE's filters.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use proxmox_talos::resources::client::get_configuration::{self, GetConfigurationArgs};
use proxmox_talos::talos::api::machine::apply_configuration_request::Mode;
use proxmox_talos::talos::api_client::Credentials;
use proxmox_talos::talos::config::MachineType;
use proxmox_talos::talos::schematic::VANILLA_SCHEMATIC_ID;
use proxmox_talos_lab::in_process::{self, InProcessLab};
use proxmox_talos_lab::pve::auth::Principal;
use proxmox_talos_lab::pve::lab_config::{LabConfig, Timing};
use proxmox_talos_lab::pve::qemu::guest_address;
use proxmox_talos_lab::pve::server::Call;
use proxmox_talos_lab::pve::tasks::{self, Worker};
use proxmox_talos_lab::talos_testbed::{cluster_secrets, machine_config, wait_answering, TalosTestbed};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_proxmox-talos-lab");

/// Runs `command` to completion within `secs`, killing its process group after that.
fn run(command: &mut Command, secs: u64) -> Output {
    proxmox_talos_lab::deadline::output_or_panic(command, Duration::from_secs(secs))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn b64_decode(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(text.trim()).unwrap()
}

// ---------------------------------------------------------------- keys

/// Loads `cert`/`key` (PEM files) with OpenSSL: the key with `openssl pkey`,
/// the certificate with `openssl x509`, and checks both carry the same public key.
fn openssl_loads(cert: &Path, key: &Path) {
    let pem = pem::parse(std::fs::read(key).unwrap()).unwrap();
    // OpenSSL picks its decoder by the PEM label, and `ED25519 PRIVATE KEY` (the
    // label Talos itself writes around PKCS#8, as in every real talosconfig) is not
    // one it knows; the DER inside is what it must load.
    let (key_arg, form) = if ["PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"].contains(&pem.tag()) {
        (key.to_path_buf(), "PEM")
    } else {
        let der = key.with_extension("der");
        std::fs::write(&der, pem.contents()).unwrap();
        (der, "DER")
    };
    let out = run(Command::new("openssl").args(["pkey", "-noout", "-inform", form, "-in"]).arg(&key_arg), 30);
    assert!(out.status.success(), "openssl pkey -in {}: {}", key.display(), text(&out));
    let out = run(Command::new("openssl").args(["x509", "-noout", "-subject", "-in"]).arg(cert), 30);
    assert!(out.status.success(), "openssl x509 -in {}: {}", cert.display(), text(&out));
    let from_key = run(Command::new("openssl").args(["pkey", "-pubout", "-inform", form, "-in"]).arg(&key_arg), 30);
    let from_cert = run(Command::new("openssl").args(["x509", "-noout", "-pubkey", "-in"]).arg(cert), 30);
    assert!(from_key.status.success() && from_cert.status.success(), "{}{}", text(&from_key), text(&from_cert));
    assert_eq!(from_key.stdout, from_cert.stdout, "{} does not belong to {}", key.display(), cert.display());
}

/// `tools/keycheck` built once (per test process) into cargo's test temp
/// dir; `None` (with the reason printed) when Go is not installed.
fn keycheck() -> Option<PathBuf> {
    static BUILT: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_keycheck).clone()
}

fn build_keycheck() -> Option<PathBuf> {
    if proxmox_talos_lab::deadline::output_within(Command::new("go").arg("version"), Duration::from_secs(60)).is_err() {
        eprintln!("SKIPPED the Go crypto/tls check: `go` is not installed");
        return None;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/keycheck");
    let binary = Path::new(env!("CARGO_TARGET_TMPDIR")).join("keycheck");
    // No network: stdlib only, this machine's toolchain.
    let out = run(
        Command::new("go")
            .args(["build", "-o"])
            .arg(&binary)
            .arg(".")
            .current_dir(&source)
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .env("GOFLAGS", "-mod=mod"),
        300,
    );
    assert!(out.status.success(), "go build tools/keycheck: {}", text(&out));
    Some(binary)
}

/// Loads each (certificate, key) pair with Go's `tls.X509KeyPair`, if Go is installed.
fn go_loads(pairs: &[(&Path, &Path)]) {
    let Some(keycheck) = keycheck() else { return };
    let mut command = Command::new(keycheck);
    for (cert, key) in pairs {
        command.arg(cert).arg(key);
    }
    let out = run(&mut command, 30);
    assert!(out.status.success(), "Go's tls.X509KeyPair: {}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).matches("ok ").count(), pairs.len(), "{}", text(&out));
}

/// The admin kubeconfig a lab Talos control plane returns after bootstrap.
/// The provider's `cluster:Kubeconfig` resource returns exactly these bytes
/// (it fetches them with the node's `Kubeconfig` call), so checking them here
/// checks what a program writes to disk too.
async fn admin_kubeconfig(lab: &TalosTestbed) -> (String, proxmox_talos::talos::secrets::ClientConfiguration) {
    let (bundle, client) = cluster_secrets().unwrap();
    lab.talos_vm(100, "cp-1");
    let dhcp = guest_address(&lab.lab.state, 100).expect("a DHCP lease");
    let maintenance = wait_answering(dhcp, Credentials::Insecure, Duration::from_secs(20)).await.unwrap();
    let config = machine_config(&bundle, MachineType::ControlPlane, lab.ip(10), lab.ip(5), &[]).unwrap();
    maintenance.apply_configuration(&config, Mode::Auto, false).await.unwrap();
    let node = wait_answering(lab.ip(10), Credentials::Mutual(&client), Duration::from_secs(20)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match node.bootstrap().await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline && e.code() == Some(tonic::Code::FailedPrecondition) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("bootstrap: {e}"),
        }
    }
    (node.kubeconfig().await.unwrap(), client)
}

#[tokio::test(flavor = "multi_thread")]
async fn kubeconfig_and_talosconfig_keys_load_with_openssl_and_go() {
    let lab = TalosTestbed::start(100, 300).await.unwrap();
    let (kubeconfig, client) = admin_kubeconfig(&lab).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    // The resource's `kubernetesClientConfiguration` output: the provider's parse of those bytes.
    let credentials = proxmox_talos::talos::kubeconfig::parse(&kubeconfig).unwrap();
    let kube_cert = write("kube-client.crt", &b64_decode(&credentials.client_certificate));
    let kube_key = write("kube-client.key", &b64_decode(&credentials.client_key));
    assert_eq!(pem::parse(std::fs::read(&kube_key).unwrap()).unwrap().tag(), "EC PRIVATE KEY");

    // The talosconfig exactly as the provider's client:getConfiguration builds it.
    let built = get_configuration::build(GetConfigurationArgs {
        cluster_name: "lab".into(),
        client_configuration: client,
        endpoints: vec![lab.ip(10).to_string()],
        nodes: None,
    })
    .unwrap();
    let talosconfig: Value = serde_norway::from_str(&built.talos_config).unwrap();
    let context = &talosconfig["contexts"]["lab"];
    let talos_cert = write("talos-client.crt", &b64_decode(context["crt"].as_str().unwrap()));
    let talos_key = write("talos-client.key", &b64_decode(context["key"].as_str().unwrap()));

    openssl_loads(&kube_cert, &kube_key);
    openssl_loads(&talos_cert, &talos_key);
    go_loads(&[(&kube_cert, &kube_key), (&talos_cert, &talos_key)]);
}

// ---------------------------------------------------------------- up: TLS names and SSH

fn env_value(env: &[(String, String)], key: &str) -> Option<String> {
    env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// Connects to `addr` with TLS verified against `ca` for server name `name`.
async fn tls_handshake(ca: &[u8], addr: std::net::SocketAddr, name: &str) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pem::parse(ca).unwrap().into_contents().into()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `up --listen 127.66.0.1:0` with its state under /tmp (where sshd refuses to
/// chroot): the certificate names the listen address and the nodes; `up` warns
/// on stderr that the nodes have no SSH, and lab.env offers none.
#[tokio::test(flavor = "multi_thread")]
async fn up_names_its_addresses_in_the_certificate_and_says_when_ssh_is_off() {
    let state = tempfile::tempdir_in("/tmp").unwrap();
    let dir = state.path().to_str().unwrap();
    let up =
        ["up", "--state", dir, "--preset", "cluster", "--listen", "127.66.0.1:0", "--factory-listen", "127.0.0.1:0"];
    let out = run(Command::new(BIN).args(up), 120);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let env_file = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let stop = || run(Command::new(BIN).args(["down", "--state", dir]), 60);

    let env = proxmox_talos_lab::homelab::read_env_file(&env_file).unwrap();
    let checks = std::panic::catch_unwind(|| {
        assert!(stderr.contains("WARNING: the lab's nodes run WITHOUT SSH"), "{stderr}");
        assert!(stderr.contains("/tmp has mode 1777"), "the reason is named: {stderr}");
        assert!(env.iter().all(|(k, _)| !k.starts_with("PROXMOX_VE_SSH")), "{env:?}");
        let reason = proxmox_talos_lab::homelab::ssh_unavailable(&env_file).expect("lab.env says why");
        assert!(reason.contains("ChrootDirectory"), "{reason}");
    });
    let endpoint = env_value(&env, "PROXMOX_VE_ENDPOINT").unwrap();
    let ca = std::fs::read(env_value(&env, "PROXMOX_VE_CA_CERT").unwrap()).unwrap();
    let addr: std::net::SocketAddr = endpoint
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
    // A verifying HTTPS client at the listen address.
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .no_proxy()
        .build()
        .unwrap();
    let version = client.get(format!("{endpoint}api2/json/version")).send().await;
    let names: Vec<(String, Result<(), String>)> = {
        let mut names = vec!["127.66.0.1", "127.0.10.11", "127.0.10.12", "127.0.10.13", "pve-ms01-01", "localhost"];
        names.push("127.0.0.1");
        let mut results = Vec::new();
        for name in names {
            results.push((name.to_string(), tls_handshake(&ca, addr, name).await));
        }
        results
    };
    let unnamed = tls_handshake(&ca, addr, "127.66.0.2").await;
    // The lab CA's own key (a client may sign with it, e.g. to mint more certificates).
    let (ca_cert, ca_key) = (state.path().join("pve-ca.pem"), state.path().join("pve-ca-key.pem"));
    let ca_keys = std::panic::catch_unwind(|| {
        openssl_loads(&ca_cert, &ca_key);
        go_loads(&[(&ca_cert, &ca_key)]);
    });
    stop();
    checks.unwrap();
    ca_keys.unwrap();
    // Without a token the API answers 401: TLS itself verified.
    assert_eq!(version.map(|r| r.status().as_u16()).map_err(|e| format!("{e:?}")), Ok(401));
    for (name, result) in names {
        assert_eq!(result, Ok(()), "the certificate names {name}");
    }
    assert!(unnamed.is_err_and(|e| e.contains("certificate")), "an address it does not name fails");
}

// ---------------------------------------------------------------- in-process lab helpers

struct Lab {
    lab: InProcessLab,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start_lab(task_ms: u64) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LabConfig::single_node();
    config.timing = Timing { task_ms, ..Timing::instant() };
    let lab = in_process::start(config, dir.path()).await.unwrap();
    let token = format!("PVEAPIToken={}", lab.api_token());
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(lab.ca_pem.as_bytes()).unwrap())
        .default_headers([(reqwest::header::AUTHORIZATION, token.parse().unwrap())].into_iter().collect())
        .no_proxy()
        .build()
        .unwrap();
    Lab { lab, client, _dir: dir }
}

impl Lab {
    fn url(&self, path: &str) -> String {
        format!("{}api2/json{path}", self.lab.endpoint)
    }

    async fn get(&self, path: &str) -> Value {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
        body["data"].clone()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let response = self.client.post(self.url(path)).form(form).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "POST {path}: {body}");
        body["data"].clone()
    }

    /// Polls a task's status until it stops (20 s at most).
    async fn wait(&self, upid: &str) -> Value {
        let node = upid.split(':').nth(1).unwrap();
        let encoded: String = form_urlencoded::byte_serialize(upid.as_bytes()).collect();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let status = self.get(&format!("/nodes/{node}/tasks/{encoded}/status")).await;
            if status["status"] == "stopped" {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("task {upid} did not stop");
    }
}

// ---------------------------------------------------------------- qcow2

#[tokio::test(flavor = "multi_thread")]
async fn the_factory_qcow2_downloads_into_import_and_a_vm_imports_it() {
    let lab = start_lab(0).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let factory = format!("http://{}", listener.local_addr().unwrap());
    let state = proxmox_talos_lab::factory::FactoryState::new();
    tokio::spawn(proxmox_talos_lab::factory::serve(listener, state, std::future::pending()));
    let url = format!("{factory}/image/{VANILLA_SCHEMATIC_ID}/v1.12.4/nocloud-amd64.qcow2");
    let name = "talos-v1.12.4-nocloud-amd64.qcow2";
    let form = [("url", url.as_str()), ("content", "import"), ("filename", name)];
    let upid = lab.post("/nodes/pve/storage/local/download-url", &form).await;
    let status = lab.wait(upid.as_str().unwrap()).await;
    assert_eq!(status["exitstatus"], "OK", "{status}");
    let file = lab.lab.state.node_root("pve").join("var/lib/vz/import").join(name);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..4], b"QFI\xfb", "a real qcow2");
    let header = proxmox_talos_lab::factory::images::identify(&bytes).expect("the lab reads the disk inside");
    assert_eq!((header.schematic.as_str(), header.image.as_str()), (VANILLA_SCHEMATIC_ID, "nocloud-amd64"));
    let listed = lab.get("/nodes/pve/storage/local/content?content=import").await;
    let item = listed.as_array().unwrap().iter().find(|i| i["volid"] == format!("local:import/{name}")).cloned();
    assert_eq!(item.as_ref().and_then(|i| i["format"].as_str()), Some("qcow2"), "{listed}");

    let scsi0 = format!("local-zfs:0,import-from=local:import/{name}");
    let upid = lab.post("/nodes/pve/qemu", &[("vmid", "100"), ("scsi0", scsi0.as_str())]).await;
    let status = lab.wait(upid.as_str().unwrap()).await;
    assert_eq!(status["exitstatus"], "OK", "{status}");
    let config = lab.get("/nodes/pve/qemu/100/config").await;
    // The qcow2's virtual size (64 KiB), not its file size (24 KiB).
    assert_eq!(config["scsi0"], "local-zfs:vm-100-disk-0,size=64K", "{config}");

    let Ok(version) =
        proxmox_talos_lab::deadline::output_within(Command::new("qemu-img").arg("--version"), Duration::from_secs(30))
    else {
        eprintln!("SKIPPED the qemu-img checks: qemu-img is not installed (Debian: apt-get install qemu-utils)");
        return;
    };
    assert!(version.status.success());
    let out = run(Command::new("qemu-img").args(["check", "-f", "qcow2"]).arg(&file), 30);
    assert!(out.status.success(), "qemu-img check: {}", text(&out));
    let out = run(Command::new("qemu-img").args(["info", "--output=json", "-f", "qcow2"]).arg(&file), 30);
    assert!(out.status.success(), "{}", text(&out));
    let info: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((info["format"].as_str(), info["virtual-size"].as_u64()), (Some("qcow2"), Some(65536)), "{info}");
    // And the lab's reader takes what qemu-img writes (64 KiB clusters, its own layout).
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("disk.raw");
    let mut disk = vec![0u8; 3 << 20];
    disk[..12].copy_from_slice(b"first sector");
    disk[(2 << 20) + 5..(2 << 20) + 10].copy_from_slice(b"later");
    std::fs::File::create(&raw).unwrap().write_all(&disk).unwrap();
    let converted = dir.path().join("disk.qcow2");
    let out = run(Command::new("qemu-img").args(["convert", "-f", "raw", "-O", "qcow2"]).arg(&raw).arg(&converted), 30);
    assert!(out.status.success(), "{}", text(&out));
    let back = proxmox_talos_lab::factory::qcow2::read(&std::fs::read(&converted).unwrap(), u64::MAX).unwrap();
    assert!(back == disk, "the lab's qcow2 reader reads qemu-img's image");
}

// ---------------------------------------------------------------- task list

fn task_call() -> Call {
    Call {
        principal: Some(Principal::Token { user: "root@pam".into(), token_id: "lab".into() }),
        method: "POST".into(),
        template: "/nodes/{node}/qemu/{vmid}/status/start".into(),
        path: "/nodes/pve/qemu/100/status/start".into(),
        params: serde_json::Map::new(),
        file: None,
        result_attribs: Default::default(),
    }
}

fn owned(upids: &[&String]) -> Vec<String> {
    upids.iter().map(|u| u.to_string()).collect()
}

fn upids(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|t| t["upid"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_task_list_has_pves_shape_and_filters() {
    let lab = start_lab(0).await;
    let state = &lab.lab.state;
    let worker = |kind, id: &str| Worker { node: "pve".into(), kind, id: id.into(), lock_vmid: None };
    let ok = tasks::start(state, &task_call(), worker("qmstart", "100"), |_| async { Ok(()) });
    lab.wait(&ok).await;
    let warned = tasks::start(state, &task_call(), worker("qmstart", "101"), |log| async move {
        log.warn("no efidisk configured! Using temporary efivars disk.");
        Ok(())
    });
    lab.wait(&warned).await;
    let failed = tasks::start(state, &task_call(), worker("qmcreate", "100"), |_| async {
        Err("unable to create VM 100 - VM 100 already exists on node 'pve'".into())
    });
    lab.wait(&failed).await;
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let running = tasks::start(state, &task_call(), worker("download", "local"), |_| async move {
        let _ = released.await;
        Ok(())
    });

    // Archived (default): finished tasks, newest first; status is the exit status.
    let list = lab.get("/nodes/pve/tasks").await;
    assert_eq!(upids(&list), owned(&[&failed, &warned, &ok]));
    let statuses: Vec<&str> = list.as_array().unwrap().iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["unable to create VM 100 - VM 100 already exists on node 'pve'", "WARNINGS: 1", "OK"]);
    let first = list[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    // The schema's item fields (endtime and status optional), plus the token PVE splits off the user.
    assert_eq!(
        keys,
        ["endtime", "id", "node", "pid", "pstart", "starttime", "status", "tokenid", "type", "upid", "user"]
    );
    assert_eq!((first["user"].as_str(), first["tokenid"].as_str()), (Some("root@pam"), Some("lab")));
    assert_eq!((first["type"].as_str(), first["id"].as_str()), (Some("qmcreate"), Some("100")));
    assert!(first["endtime"].as_u64().unwrap() >= first["starttime"].as_u64().unwrap());

    // Active: the running task, status RUNNING, no end time; all: active first.
    let active = lab.get("/nodes/pve/tasks?source=active").await;
    assert_eq!(upids(&active), owned(&[&running]));
    assert_eq!(active[0]["status"], "RUNNING");
    assert!(active[0].get("endtime").is_none(), "{active}");
    assert_eq!(upids(&lab.get("/nodes/pve/tasks?source=all").await), owned(&[&running, &failed, &warned, &ok]));

    // Filters as PVE's node_tasks applies them.
    let cases: [(&str, Vec<&String>); 12] = [
        ("typefilter=qmstart", vec![&warned, &ok]),
        ("vmid=100", vec![&failed, &ok]),
        ("errors=1", vec![&failed, &warned]),
        ("statusfilter=OK;Warning", vec![&warned, &ok]),
        ("statusfilter=error", vec![&failed]),
        ("errors=1&statusfilter=ok", vec![&failed, &warned]),
        ("start=1&limit=1", vec![&warned]),
        ("limit=0", vec![]),
        ("userfilter=ROOT%40PAM", vec![&failed, &warned, &ok]),
        ("userfilter=lab", vec![]),
        ("since=4000000000", vec![]),
        ("until=1", vec![]),
    ];
    for (query, expected) in cases {
        assert_eq!(upids(&lab.get(&format!("/nodes/pve/tasks?{query}")).await), owned(&expected), "{query}");
    }
    let bad = lab.client.get(lab.url("/nodes/pve/tasks?statusfilter=ok,done")).send().await.unwrap();
    assert_eq!(bad.status(), 400, "statusfilter items are ok, warning, error or unknown");
    let body: Value = bad.json().await.unwrap();
    assert!(body["errors"]["statusfilter"].as_str().unwrap().contains("done"), "{body}");
    assert_eq!(
        upids(&lab.get("/nodes/pve/tasks?source=all&statusfilter=unknown").await),
        owned(&[&running]),
        "a running task's status type is unknown"
    );

    // Only .../status says running/stopped with exitstatus.
    let encoded: String = form_urlencoded::byte_serialize(running.as_bytes()).collect();
    let status = lab.get(&format!("/nodes/pve/tasks/{encoded}/status")).await;
    assert_eq!(status["status"], "running");
    assert!(status.get("exitstatus").is_none() && status.get("endtime").is_none(), "{status}");
    release.send(()).unwrap();
    let done = lab.wait(&running).await;
    assert_eq!((done["status"].as_str(), done["exitstatus"].as_str()), (Some("stopped"), Some("OK")));
    assert_eq!(done["user"], "root@pam");
    assert_eq!(lab.get("/nodes/pve/tasks?limit=1").await[0]["upid"], json!(running));
}
