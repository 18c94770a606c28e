//! Files in a Proxmox VE storage end to end through the real `pulumi` CLI:
//! `sdk-examples/yaml-proxmox-files` against the in-process lab and a real
//! OpenSSH server for node `pve` (chrooted to the lab node's file system).
//! A cloud-init snippet travels over SFTP, an ISO through PVE's upload API,
//! and a cloud image is downloaded by the lab from a loopback HTTP server.
//! The test checks the files in the lab (content API and disk), no changes
//! on preview and refresh, an in-place update of the snippet, drift found by
//! refresh and repaired by up, host-key pinning and a changed host key, an
//! import by `node/volid`, destroy, and that no key or secret reaches the
//! state in plain text.
//!
//! Needs `pulumi` and `pulumi-language-yaml` on PATH (`tools/test.sh`
//! installs them) and Debian's openssh-server, run as root (the lab's sshd
//! chroots); without them this test fails and says so.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
mod support;

use std::path::Path;

use proxmox_talos::config::{ProxmoxAuth, ProxmoxSettings};
use proxmox_talos::proxmox::{storage, PveClient};
use proxmox_talos_lab::in_process::{self, InProcessLab};
use proxmox_talos_lab::pve::lab_config::{LabConfig, Timing};
use proxmox_talos_lab::ssh;
use sha2::{Digest, Sha256};
use support::pulumi::Stack;

/// The lab's API on a runtime of its own (the test drives `pulumi` synchronously).
fn start_lab(state_dir: &Path) -> InProcessLab {
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = state_dir.to_path_buf();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let mut config = LabConfig::single_node();
            config.timing = Timing::instant();
            tx.send(in_process::start(config, &dir).await).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap().unwrap_or_else(|e| panic!("starting the lab: {e}"))
}

/// A loopback HTTP server answering GET and HEAD for `/NAME` with `body`; returns its base URL.
fn serve_file(name: &'static str, body: Vec<u8>) -> String {
    serve_file_held(name, body, None)
}

/// Holds a server's answers to GET until the test opens it, and says whether a GET came.
#[derive(Default)]
struct Hold {
    asked: std::sync::atomic::AtomicBool,
    open: std::sync::Mutex<bool>,
    opened: std::sync::Condvar,
}

impl Hold {
    fn asked(&self) -> bool {
        self.asked.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    /// Waits until opened.
    fn pass(&self) {
        self.asked.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
    }
}

/// As `serve_file`; with `hold`, a GET is answered once the hold is opened.
fn serve_file_held(name: &'static str, body: Vec<u8>, hold: Option<std::sync::Arc<Hold>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
            }
            let mut parts = request.split_whitespace();
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let found = path == format!("/{name}");
            if let (Some(hold), true, "GET") = (&hold, found, method) {
                hold.pass();
            }
            let head = if found {
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
            };
            let _ = stream.write_all(head.as_bytes());
            if found && method == "GET" {
                let _ = stream.write_all(&body);
            }
        }
    });
    url
}

/// Bytes that look like nothing in particular.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha256(data: &[u8]) -> String {
    Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// The volume ids the lab's content API lists for `local` on `pve`.
fn listed(rt: &tokio::runtime::Runtime, client: &PveClient) -> Vec<String> {
    rt.block_on(storage::content(client, "pve", "local", None)).unwrap().into_iter().map(|i| i.volid).collect()
}

#[test]
fn files_program_lifecycle() {
    support::require_sshd();
    let root = support::chroot_capable_dir("pulumi-files-");
    let state_dir = root.path().join("lab");
    let lab = start_lab(&state_dir);
    let sshd = ssh::start_sshd(&state_dir, "pve", &lab.state.node_root("pve"), "127.0.0.1:0".parse().unwrap())
        .unwrap_or_else(|e| panic!("starting sshd for node pve: {e}"));
    let keys = root.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (private_key, public_key) = support::ssh_key_pair(&keys, "provider");
    sshd.authorize(&public_key).unwrap();

    let image = noise(1 << 20, 7);
    let files_url = serve_file("noble.img", image.clone());
    let iso = noise(3 << 20, 11);
    let iso_path = root.path().join("talos-test.iso");
    std::fs::write(&iso_path, &iso).unwrap();

    let env = vec![
        ("PROXMOX_VE_ENDPOINT".to_string(), lab.endpoint.clone()),
        ("PROXMOX_VE_API_TOKEN".to_string(), lab.api_token()),
        ("PROXMOX_VE_CA_CERT".to_string(), lab.ca_path.display().to_string()),
        ("PROXMOX_VE_SSH_USERNAME".to_string(), "root".to_string()),
        ("PROXMOX_VE_SSH_PRIVATE_KEY".to_string(), private_key.clone()),
        ("PROXMOX_VE_SSH_PORT".to_string(), sshd.port().to_string()),
    ];
    // Its own HOME: the provider reads ~/.ssh/known_hosts, this test's own.
    let stack = Stack::new("yaml-proxmox-files", env).with_own_home();
    stack.set("isoPath", iso_path.to_str().unwrap());
    stack.set("imageUrl", &format!("{files_url}/noble.img"));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = PveClient::new(&ProxmoxSettings {
        endpoint: lab.endpoint.clone(),
        auth: ProxmoxAuth::ApiToken(lab.api_token()),
        insecure: false,
        ca_certificate: Some(lab.ca_path.display().to_string()),
        min_tls: None,
    })
    .unwrap();
    let storage_dir = lab.state.dir_storage_path("pve", "local");
    let snippet_path = storage_dir.join("snippets/user-data.yaml");
    let snippet = |hostname: &str| format!("#cloud-config\nhostname: {hostname}\npackage_upgrade: false\n");
    let volumes = ["local:snippets/user-data.yaml", "local:iso/talos-test.iso", "local:iso/noble-cloudimg.img"];

    // Up: all three files are in the storage, as listed and on disk.
    let up = stack.ok(&["up", "--yes", "--skip-preview"]);
    assert!(up.contains("SSH host key of node pve") && up.contains("ssh-keyscan -p"), "{up}");
    let listed_now = listed(&rt, &client);
    for v in volumes {
        assert!(listed_now.iter().any(|l| l == v), "{v} is not listed: {listed_now:?}");
    }
    assert_eq!(std::fs::read_to_string(&snippet_path).unwrap(), snippet("ubuntu-1"));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&snippet_path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644);
    assert_eq!(std::fs::read(storage_dir.join("template/iso/talos-test.iso")).unwrap(), iso);
    assert_eq!(std::fs::read(storage_dir.join("template/iso/noble-cloudimg.img")).unwrap(), image);
    let leftovers: Vec<_> = std::fs::read_dir(storage_dir.join("snippets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let out = stack.outputs();
    assert_eq!(out["userDataVolume"], volumes[0]);
    assert_eq!(out["userDataSha256"], sha256(snippet("ubuntu-1").as_bytes()));
    assert_eq!(out["isoVolume"], volumes[1]);
    assert_eq!(out["isoSize"], iso.len());
    assert_eq!(out["isoSha256"], sha256(&iso));
    assert_eq!(out["imageVolume"], volumes[2]);

    // The snippet is a secret: not in the state in plain text.
    let export = stack.ok(&["stack", "export"]);
    assert!(!export.contains("hostname: ubuntu-1"), "the snippet is in the state in plain text");

    // Pin the host key: later SSH connections verify it (and log nothing about it).
    std::fs::create_dir_all(stack.known_hosts().parent().unwrap()).unwrap();
    let pinned = format!("[127.0.0.1]:{} {}\n", sshd.port(), sshd.host_public_key().unwrap());
    std::fs::write(stack.known_hosts(), &pinned).unwrap();

    // Nothing changes on a second preview, nor on refresh (which reads the snippet back over SFTP).
    stack.ok(&["preview", "--expect-no-changes"]);
    let refresh = stack.ok(&["refresh", "--yes", "--expect-no-changes", "--skip-preview"]);
    assert!(!refresh.contains("SSH host key of node pve"), "{refresh}");

    // New text is an in-place update of the same volume.
    stack.ok(&["config", "set", "hostname", "ubuntu-2"]);
    let preview = stack.ok(&["preview", "--diff"]);
    assert!(preview.contains("userData") && preview.contains("update"), "{preview}");
    assert!(!preview.contains("replace"), "{preview}");
    let booted = lab.state.read(|m| m.vms[&4501].started_at_ms);
    assert_eq!(lab.state.read(|m| m.vms[&4501].config["cicustom"].clone()), "user=local:snippets/user-data.yaml");
    let up = stack.ok(&["up", "--yes", "--skip-preview"]);
    // The snippet and the VM that uses it (through `revision`) update in place; the VM reboots.
    assert!(up.contains("2 updated") && !up.contains("replaced"), "{up}");
    assert_ne!(lab.state.read(|m| m.vms[&4501].started_at_ms), booted, "the VM rebooted with the new user data");
    assert_eq!(std::fs::read_to_string(&snippet_path).unwrap(), snippet("ubuntu-2"));
    assert_eq!(stack.outputs()["userDataSha256"], sha256(snippet("ubuntu-2").as_bytes()));
    stack.ok(&["preview", "--expect-no-changes"]);

    // A change made on the node: refresh records it, preview shows it, up repairs it.
    std::fs::write(&snippet_path, "#cloud-config\nhostname: tampered\n").unwrap();
    let refresh = stack.ok(&["refresh", "--yes", "--skip-preview"]);
    assert!(refresh.contains("1 updated") && refresh.contains("differs from what was uploaded"), "{refresh}");
    let drift = stack.fails(&["preview", "--expect-no-changes", "--diff"]);
    assert!(drift.contains("userData") && drift.contains("sourceRaw"), "{drift}");
    assert!(!drift.contains("replace"), "{drift}");
    stack.ok(&["up", "--yes", "--skip-preview"]);
    assert_eq!(std::fs::read_to_string(&snippet_path).unwrap(), snippet("ubuntu-2"));
    stack.ok(&["refresh", "--yes", "--expect-no-changes", "--skip-preview"]);

    // A host key other than the pinned one is refused, naming the host and the key.
    let (_, stranger) = support::ssh_key_pair(&keys, "stranger");
    std::fs::write(stack.known_hosts(), format!("[127.0.0.1]:{} {stranger}", sshd.port())).unwrap();
    let refused = stack.fails(&["refresh", "--yes", "--skip-preview"]);
    assert!(
        refused.contains("host key changed") && refused.contains(&format!("127.0.0.1:{}", sshd.port())),
        "{refused}"
    );
    assert!(refused.contains("SHA256:"), "{refused}");
    std::fs::write(stack.known_hosts(), &pinned).unwrap();

    // Import by node/volid: the snippet comes back with its content.
    let imported = root.path().join("imported.yaml");
    stack.ok(&[
        "import",
        "proxmox-talos:storage:File",
        "imported",
        "pve/local:snippets/user-data.yaml",
        "--yes",
        "--protect=false",
        "--skip-preview",
        "--out",
        imported.to_str().unwrap(),
    ]);
    let code = std::fs::read_to_string(&imported).unwrap();
    assert!(code.contains("hostname: ubuntu-2") && code.contains("user-data.yaml"), "{code}");

    // Destroy: none of the files is left, in the content list or on disk.
    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    let listed_now = listed(&rt, &client);
    for v in volumes {
        assert!(!listed_now.iter().any(|l| l == v), "{v} is still listed: {listed_now:?}");
    }
    assert!(!snippet_path.exists());
    assert!(!storage_dir.join("template/iso/talos-test.iso").exists());
    assert!(!storage_dir.join("template/iso/noble-cloudimg.img").exists());

    // The private key never reached the state (nor did the token).
    let export = stack.ok(&["stack", "export", "--show-secrets"]);
    let key_body = private_key.lines().nth(1).unwrap();
    assert!(!export.contains(key_body) && !export.contains("PRIVATE KEY"), "the SSH key is in the state");
    assert!(!export.contains(&lab.credentials.token_secret), "the API token is in the state");
    drop(sshd);
}

/// An image in `import` content on a Proxmox VE older than 8.4 (the lab reporting 8.3.2): the
/// create fails naming the feature, the release it needs and the release found, before any
/// call that changes something; nothing is left behind.
#[test]
fn import_content_on_an_older_pve_fails_at_create_naming_both_releases() {
    let mut config = LabConfig::single_node();
    config.timing = Timing::instant();
    config.pve_version = Some("8.3.2".into());
    let lab = support::lab::CliLab::start(config);
    let url = serve_file("talos.raw", noise(4096, 7));
    let program = format!(
        "name: old-pve\nruntime: yaml\nplugins:\n  providers:\n    - name: proxmox-talos\n      path: ../../target/debug\n\
         resources:\n  image:\n    type: proxmox-talos:download:File\n    properties:\n      nodeName: pve\n      \
         datastoreId: local\n      contentType: import\n      url: {url}/talos.raw\n      fileName: talos.raw\n"
    );
    let stack = Stack::from_program(&program, lab.token_env());
    lab.lab.state.clear_requests();
    let out = stack.fails(&["up", "--yes", "--skip-preview"]);
    assert!(out.contains("needs Proxmox VE 8.4 or later") && out.contains("runs 8.3.2"), "{out}");
    assert!(out.contains("`import` content"), "{out}");
    let (_, requests) = lab.lab.state.requests();
    let writes: Vec<_> = requests.iter().filter(|r| r.method != "GET").collect();
    assert!(writes.is_empty(), "no change may reach Proxmox VE: {writes:?}");
    assert!(requests.iter().any(|r| r.path == "/version"), "the release is read from /version: {requests:?}");
    lab.assert_empty();
}

/// A program of one `download:File` of `{url}/talos.raw` into `import` content, with `checksum`
/// (sha256) when given.
fn download_program(url: &str, checksum: Option<&str>) -> String {
    let verified =
        checksum.map(|sum| format!("      checksum: {sum}\n      checksumAlgorithm: sha256\n")).unwrap_or_default();
    format!(
        "name: interrupted\nruntime: yaml\nplugins:\n  providers:\n    - name: proxmox-talos\n      path: ../../target/debug\n\
         resources:\n  image:\n    type: proxmox-talos:download:File\n    properties:\n      nodeName: pve\n      \
         datastoreId: local\n      contentType: import\n      url: {url}/talos.raw\n      fileName: talos.raw\n{verified}"
    )
}

/// A create killed while Proxmox VE downloads its file (the plugin SIGKILLed; PVE's task goes
/// on and finishes). The next `up`:
/// - with the create journal: takes the file for what its own interrupted create left,
///   deletes it and downloads again (the test spoils the file to see that);
/// - with the journal wiped (as on another machine) and a checksum: keeps the file, which
///   PVE verifies against the checksum;
/// - with the journal wiped and no checksum: refuses the file it cannot tell from somebody
///   else's, saying how to keep it (`checksum`, `pulumi import`) or replace it.
#[test]
fn an_interrupted_download_is_finished_by_the_next_up() {
    let mut config = LabConfig::single_node();
    config.timing = Timing::instant();
    let lab = support::lab::CliLab::start(config);
    let body = noise(64 << 10, 5);
    let file = lab.lab.state.dir_storage_path("pve", "local").join("import/talos.raw");
    let killed_download = |checksum: Option<&str>| -> (Stack, tempfile::TempDir) {
        let hold = std::sync::Arc::new(Hold::default());
        let url = serve_file_held("talos.raw", body.clone(), Some(hold.clone()));
        let journal = tempfile::tempdir().unwrap();
        let mut stack = Stack::from_program(&download_program(&url, checksum), lab.token_env());
        stack.env.push(("PROXMOX_TALOS_JOURNAL_DIR".into(), journal.path().display().to_string()));
        stack.up_killed_when(std::time::Duration::from_secs(120), || hold.asked());
        hold.open();
        lab.wait_for_tasks(std::time::Duration::from_secs(60));
        assert_eq!(std::fs::read(&file).unwrap(), body, "PVE's download finished after the kill");
        stack.ok(&["refresh", "--yes", "--skip-preview", "--clear-pending-creates"]);
        (stack, journal)
    };
    let journal_entries = |dir: &Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);

    // The journal kept: the file is downloaded again.
    let (stack, journal) = killed_download(None);
    assert_eq!(journal_entries(journal.path()), 1, "the killed create left its journal entry");
    std::fs::write(&file, b"what an interrupted download left").unwrap();
    let up = stack.ok(&["up", "--yes", "--skip-preview"]);
    assert!(up.contains("interrupted while downloading it; deleting it and downloading again"), "{up}");
    assert_eq!(std::fs::read(&file).unwrap(), body, "downloaded again");
    assert_eq!(journal_entries(journal.path()), 0, "the entry is cleared once the create returns");
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    assert!(!file.exists());

    // The journal wiped, with a checksum: PVE finds the right file and keeps it.
    let (stack, journal) = killed_download(Some(&sha256(&body)));
    std::fs::remove_dir_all(journal.path()).unwrap();
    lab.lab.state.clear_requests();
    let up = stack.ok(&["up", "--yes", "--skip-preview"]);
    assert!(up.contains("Proxmox VE keeps it if its checksum is the declared one"), "{up}");
    let (_, requests) = lab.lab.state.requests();
    assert!(!requests.iter().any(|r| r.method == "DELETE"), "the verified file is kept: {requests:?}");
    assert_eq!(std::fs::read(&file).unwrap(), body);
    stack.ok(&["destroy", "--yes", "--skip-preview"]);
    assert!(!file.exists());

    // The journal wiped, no checksum: refused, naming the ways out; the file is untouched.
    let (stack, journal) = killed_download(None);
    std::fs::remove_dir_all(journal.path()).unwrap();
    let refused = stack.fails(&["up", "--yes", "--skip-preview"]);
    assert!(refused.contains("local:import/talos.raw already exists on node pve"), "{refused}");
    for way in ["overwriteUnmanaged: true", "set `checksum`", "`pulumi import` it (id pve/local:import/talos.raw)"] {
        assert!(refused.contains(way), "{way}: {refused}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), body);
}
