//! A node's real OpenSSH server: a snippet put with the real `sftp` client
//! to `/var/lib/vz/snippets/` lands in the lab's `local` storage and is
//! listed by the API. Needs `openssh-server` (CI installs it): without it
//! the test fails and says so, it does not skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use proxmox_talos_lab::pve::apidoc::ApiDoc;
use proxmox_talos_lab::pve::auth::Auth;
use proxmox_talos_lab::pve::lab_config::{LabConfig, Timing};
use proxmox_talos_lab::pve::server::{self, PveState};
use proxmox_talos_lab::pve::tls::LabCa;
use proxmox_talos_lab::ssh;
use serde_json::Value;

const TOKEN: &str = "PVEAPIToken=root@pam!lab=00000000-1111-2222-3333-444444444444";

/// A state directory sshd accepts as a chroot's parent (root-owned, not
/// group/world-writable all the way up; `/tmp` is not).
fn chroot_capable_dir() -> tempfile::TempDir {
    let base =
        ssh::chroot_capable_base(&[PathBuf::from(env!("CARGO_TARGET_TMPDIR"))]).unwrap_or_else(|e| panic!("{e}"));
    tempfile::Builder::new().prefix("ssh-sftp-").tempdir_in(base).unwrap()
}

fn run(command: &mut Command) -> std::process::Output {
    let out = proxmox_talos_lab::deadline::output_or_panic(command, std::time::Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn client_key(dir: &Path) -> PathBuf {
    let key = dir.join("client_key");
    run(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "lab-test", "-f"]).arg(&key));
    key
}

#[tokio::test]
async fn a_snippet_put_over_sftp_is_listed_by_the_api() {
    assert!(
        ssh::ssh_available(),
        "the OpenSSH server is not installed ({} missing): install openssh-server and openssh-sftp-server",
        ssh::SSHD
    );
    let dir = chroot_capable_dir();
    let state_dir = dir.path().join("state");
    let ca = LabCa::load_or_create(&state_dir).unwrap();
    let apidoc = ApiDoc::load(&ApiDoc::locate().unwrap()).unwrap();
    let auth = Auth::new().with_token("root@pam!lab", "00000000-1111-2222-3333-444444444444");
    let mut config = LabConfig::single_node();
    config.timing = Timing::instant();
    let state = PveState::new(apidoc, auth, config, &state_dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = server::base_url(listener.local_addr().unwrap());
    tokio::spawn(server::serve(listener, ca.server_config().unwrap(), state.clone(), std::future::pending()));

    let sshd = ssh::start_sshd(&state_dir, "pve", &state.node_root("pve"), "127.0.0.1:0".parse().unwrap())
        .unwrap_or_else(|e| panic!("starting sshd for node pve: {e}"));
    let key = client_key(dir.path());
    sshd.authorize(&std::fs::read_to_string(key.with_extension("pub")).unwrap()).unwrap();

    let snippet = "#cloud-config\nhostname: lab-node\n";
    let local = dir.path().join("user-data.yaml");
    std::fs::write(&local, snippet).unwrap();
    let batch = dir.path().join("batch");
    std::fs::write(
        &batch,
        format!("put {} /var/lib/vz/snippets/user-data.yaml\nls -l /var/lib/vz/snippets\n", local.display()),
    )
    .unwrap();
    let sftp = |batch: &Path, key: &Path| {
        proxmox_talos_lab::deadline::output_or_panic(
            Command::new("sftp")
                .arg("-b")
                .arg(batch)
                .arg("-i")
                .arg(key)
                .args(["-P", &sshd.port().to_string()])
                .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
                .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "root@127.0.0.1"]),
            std::time::Duration::from_secs(60),
        )
    };
    let out = sftp(&batch, &key);
    assert!(
        out.status.success(),
        "sftp failed ({}):\n{}\n{}\nsshd log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        sshd.log()
    );
    let on_disk = state.dir_storage_path("pve", "local").join("snippets/user-data.yaml");
    assert_eq!(std::fs::read_to_string(&on_disk).unwrap(), snippet);

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
        .no_proxy()
        .build()
        .unwrap();
    let response = client
        .get(format!("{url}/nodes/pve/storage/local/content?content=snippets"))
        .header("Authorization", TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let item = body["data"].as_array().unwrap().iter().find(|i| i["volid"] == "local:snippets/user-data.yaml");
    let item = item.unwrap_or_else(|| panic!("not listed: {body}"));
    assert_eq!(item["size"], snippet.len());
    assert_eq!(item["format"], "snippet");

    // Only keys in the lab's authorized_keys get in.
    let stranger = dir.path().join("stranger");
    std::fs::create_dir_all(&stranger).unwrap();
    let out = sftp(&batch, &client_key(&stranger));
    assert!(!out.status.success(), "an unknown key logged in");
}
