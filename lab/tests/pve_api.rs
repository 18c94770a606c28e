//! The lab PVE API over real HTTPS on loopback: TLS verified against the lab
//! CA, API tokens, the ticket + CSRF flow, parameter verification before any
//! handler, and PVE's error shapes (status, reason phrase, `{"data": ...}`).

use std::net::SocketAddr;
use std::sync::Arc;

use proxmox_talos_lab::pve::apidoc::ApiDoc;
use proxmox_talos_lab::pve::auth::Auth;
use proxmox_talos_lab::pve::lab_config::LabConfig;
use proxmox_talos_lab::pve::server::{self, PveState};
use proxmox_talos_lab::pve::tls::LabCa;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const TOKEN: &str = "PVEAPIToken=root@pam!lab=00000000-1111-2222-3333-444444444444";

struct Lab {
    url: String,
    addr: SocketAddr,
    ca_pem: String,
    _state: tempfile::TempDir,
}

async fn start() -> Lab {
    let state_dir = tempfile::tempdir().unwrap();
    let ca = LabCa::load_or_create(state_dir.path()).unwrap();
    let apidoc = ApiDoc::load(&ApiDoc::locate().unwrap()).unwrap();
    let auth = Auth::new()
        .with_user("root@pam", "lab-password")
        .with_token("root@pam!lab", "00000000-1111-2222-3333-444444444444");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = ca.server_config().unwrap();
    let state = PveState::new(apidoc, auth, LabConfig::single_node(), state_dir.path()).unwrap();
    tokio::spawn(server::serve(listener, tls, state, std::future::pending()));
    Lab { url: server::base_url(addr), addr, ca_pem: ca.cert_pem().to_string(), _state: state_dir }
}

fn client(lab: &Lab) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(lab.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, serde_json::from_slice(&response.bytes().await.unwrap()).unwrap())
}

#[tokio::test]
async fn tls_is_verified_against_the_lab_ca() {
    let lab = start().await;
    let (status, body) =
        json(client(&lab).get(format!("{}/version", lab.url)).header("Authorization", TOKEN).send().await.unwrap())
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["version"], server::PVE_VERSION);
    // `localhost` is in the certificate too.
    let url = format!("https://localhost:{}/api2/json/version", lab.addr.port());
    assert_eq!(client(&lab).get(url).header("Authorization", TOKEN).send().await.unwrap().status(), 200);
    // Without the lab CA, verification fails.
    let plain = reqwest::Client::builder().build().unwrap();
    assert!(plain.get(format!("{}/version", lab.url)).send().await.is_err());
}

#[tokio::test]
async fn the_lab_ca_persists_in_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = LabCa::load_or_create(dir.path()).unwrap().cert_pem().to_string();
    let again = LabCa::load_or_create(dir.path()).unwrap();
    assert_eq!(first, again.cert_pem());
    assert!(again.cert_path().ends_with("pve-ca.pem"));
    again.server_config().unwrap();
}

#[tokio::test]
async fn api_tokens_authenticate_and_bad_ones_get_401() {
    let lab = start().await;
    let c = client(&lab);
    let (status, body) =
        json(c.get(format!("{}/nodes", lab.url)).header("Authorization", TOKEN).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"][0]["node"], "pve");
    let bad = "PVEAPIToken=root@pam!lab=wrong";
    let (status, body) =
        json(c.get(format!("{}/nodes", lab.url)).header("Authorization", bad).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(body["data"], Value::Null);
    assert_eq!(body["message"], "invalid token value!\n");
    let r = c
        .get(format!("{}/nodes", lab.url))
        .header("Authorization", "PVEAPIToken=root@pam!other=x")
        .send()
        .await
        .unwrap();
    assert_eq!(json(r).await.1["message"], "no such token 'other' for user 'root@pam'\n");
    let (status, body) = json(c.get(format!("{}/nodes", lab.url)).send().await.unwrap()).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("No ticket\n")));
    // `allowtoken: 0` endpoints refuse tokens with 403, before parameter verification.
    let r = c.put(format!("{}/access/password", lab.url)).header("Authorization", TOKEN).send().await.unwrap();
    let (status, body) = json(r).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        "Permission check failed (URI '/access/password' not available with API token, need proper ticket.\n)\n"
    );
    // A parameter repeating a path parameter must agree with it.
    let r =
        c.get(format!("{}/nodes/pve/qemu?node=other", lab.url)).header("Authorization", TOKEN).send().await.unwrap();
    let (status, body) = json(r).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"]["node"], "duplicate parameter (already defined in URI) with conflicting values!");
}

#[tokio::test]
async fn tickets_need_the_csrf_token_on_writes() {
    let lab = start().await;
    let c = client(&lab);
    let login = [("username", "root@pam"), ("password", "lab-password")];
    let (status, body) = json(c.post(format!("{}/access/ticket", lab.url)).form(&login).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let ticket = body["data"]["ticket"].as_str().unwrap().to_string();
    let csrf = body["data"]["CSRFPreventionToken"].as_str().unwrap().to_string();
    assert!(ticket.starts_with("PVE:root@pam:"));
    let cookie = format!("PVEAuthCookie={ticket}");

    let (status, body) =
        json(c.get(format!("{}/cluster/status", lab.url)).header("Cookie", &cookie).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"][0]["type"], "node");

    let create = format!("{}/nodes/pve/qemu", lab.url);
    let r = c.post(&create).header("Cookie", &cookie).form(&[("vmid", "100")]).send().await.unwrap();
    let (status, body) = json(r).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("Permission denied - invalid csrf token\n")));
    // With the CSRF token the call passes auth and validation and starts the create task.
    let r = c
        .post(&create)
        .header("Cookie", &cookie)
        .header("CSRFPreventionToken", &csrf)
        .form(&[("vmid", "100")])
        .send()
        .await
        .unwrap();
    let (status, body) = json(r).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"].as_str().unwrap().starts_with("UPID:pve:"), "{body}");

    // The ticket renews itself; a wrong password does not.
    let renew = [("username", "root@pam"), ("password", ticket.as_str())];
    assert_eq!(c.post(format!("{}/access/ticket", lab.url)).form(&renew).send().await.unwrap().status(), 200);
    let wrong = [("username", "root@pam"), ("password", "nope")];
    let (status, body) = json(c.post(format!("{}/access/ticket", lab.url)).form(&wrong).send().await.unwrap()).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("authentication failure\n")));
    let forged = "PVEAuthCookie=PVE:root@pam:00000000::forged";
    let (status, body) = json(c.get(format!("{}/nodes", lab.url)).header("Cookie", forged).send().await.unwrap()).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("permission denied - invalid PVE ticket\n")));
}

#[tokio::test]
async fn parameters_are_verified_before_any_handler() {
    let lab = start().await;
    let c = client(&lab);
    let form = [("vmid", "50"), ("sockets", "0"), ("bogus", "1"), ("net0", "model=virtio,foo=1"), ("ostype", "dos")];
    let r =
        c.post(format!("{}/nodes/pve/qemu", lab.url)).header("Authorization", TOKEN).form(&form).send().await.unwrap();
    let (status, body) = json(r).await;
    assert_eq!(status, 400);
    assert_eq!(body["data"], Value::Null);
    let errors = &body["errors"];
    assert_eq!(errors["vmid"], "invalid format - value does not look like a valid VM ID\n");
    assert_eq!(errors["sockets"], "value must have a minimum value of 1");
    assert_eq!(
        errors["bogus"],
        "property is not defined in schema and the schema does not allow additional properties"
    );
    assert_eq!(errors["net0"], "invalid format - invalid key in comma-separated list property: foo\n");
    assert!(errors["ostype"]
        .as_str()
        .unwrap()
        .starts_with("value 'dos' does not have a value in the enumeration 'other, "));

    // Query parameters on GET, and path parameters, are verified too.
    let r = c.get(format!("{}/nodes/pve/qemu?bogus=1", lab.url)).header("Authorization", TOKEN).send().await.unwrap();
    assert_eq!(
        json(r).await.1["errors"]["bogus"],
        "property is not defined in schema and the schema does not allow additional properties"
    );
    let r = c.get(format!("{}/nodes/pve/qemu/42/config", lab.url)).header("Authorization", TOKEN).send().await.unwrap();
    assert_eq!(json(r).await.1["errors"]["vmid"], "invalid format - value does not look like a valid VM ID\n");
    // A schema without `properties` is not checked at all (PVE's check_prop), so this is accepted.
    let r = c.get(format!("{}/cluster/status?full=1", lab.url)).header("Authorization", TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // JSON bodies are accepted like forms.
    let r = c
        .post(format!("{}/nodes/pve/qemu", lab.url))
        .header("Authorization", TOKEN)
        .header("Content-Type", "application/json")
        .body(serde_json::json!({ "vmid": 100, "onboot": true, "cores": "x" }).to_string())
        .send()
        .await
        .unwrap();
    let (status, body) = json(r).await;
    assert_eq!(status, 400);
    assert_eq!(body["errors"], serde_json::json!({ "cores": "type check ('integer') failed - got 'x'" }));
}

#[tokio::test]
async fn unknown_paths_answer_501_with_the_message_in_the_reason_phrase() {
    let lab = start().await;
    let c = client(&lab);
    let r = c.get(format!("{}/no/such/path", lab.url)).header("Authorization", TOKEN).send().await.unwrap();
    let (status, body) = json(r).await;
    assert_eq!((status, body["message"].as_str()), (501, Some("Method 'GET /no/such/path' not implemented\n")));
    // A method PVE does not have on a path it has: PVE's own answer too.
    let r = c.delete(format!("{}/version", lab.url)).header("Authorization", TOKEN).send().await.unwrap();
    let (status, body) = json(r).await;
    assert_eq!((status, body["message"].as_str()), (501, Some("Method 'DELETE /version' not implemented\n")));
    // An endpoint PVE has and the lab does not: the answer names the lab.
    let r = c.get(format!("{}/nodes/pve/lxc", lab.url)).header("Authorization", TOKEN).send().await.unwrap();
    let (status, body) = json(r).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (501, Some("Method 'GET /nodes/pve/lxc' not implemented by the proxmox-talos lab\n"))
    );
    assert_eq!(c.get(format!("https://127.0.0.1:{}/other", lab.addr.port())).send().await.unwrap().status(), 404);

    // The reason phrase, read off the wire.
    let mut roots = rustls::RootCertStore::empty();
    let ca = pem::parse(&lab.ca_pem).unwrap();
    roots.add(rustls::pki_types::CertificateDer::from(ca.contents().to_vec())).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(lab.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    let request = format!("GET /api2/json/nodes/pve/lxc HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {TOKEN}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 501 Method 'GET /nodes/pve/lxc' not implemented by the proxmox-talos lab\r\n"),
        "{}",
        response.lines().next().unwrap_or("")
    );
}

#[tokio::test]
async fn the_pve_command_serves_with_its_state_directory_and_stops_on_sigint() {
    use std::process::{Command, Stdio};
    const BIN: &str = env!("CARGO_BIN_EXE_proxmox-talos-lab");
    let state = tempfile::tempdir().unwrap();
    // No --api-schema: the embedded compact schema.
    let mut child = Command::new(BIN)
        .args(["pve", "--state-dir", state.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let line = proxmox_talos_lab::deadline::first_line_within(&mut child, std::time::Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let url = line.trim().to_string();
    assert!(url.starts_with("https://127.0.0.1:") && url.ends_with("/api2/json"), "{line:?}");

    let creds = proxmox_talos_lab::pve::auth::LabCredentials::load_or_create(state.path()).unwrap();
    let ca = std::fs::read(state.path().join("pve-ca.pem")).unwrap();
    let c =
        reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap()).build().unwrap();
    let r = c.get(format!("{url}/version")).header("Authorization", creds.token_header()).send().await.unwrap();
    assert_eq!(r.status(), 200);

    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "clean exit on SIGINT, got {status:?}");
            break;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "the lab did not stop on SIGINT");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // A missing schema is a clear error, exit code 2.
    let out = proxmox_talos_lab::deadline::output_or_panic(
        Command::new(BIN).args([
            "pve",
            "--api-schema",
            "/nonexistent/pve-apidoc.json",
            "--state-dir",
            state.path().to_str().unwrap(),
        ]),
        std::time::Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("reading the PVE API schema /nonexistent/pve-apidoc.json"));
}
