//! Root's shell on a lab node over SSH, driven with Debian's real OpenSSH
//! `ssh` and `sftp` clients as a client of a PVE node would: snippet uploads
//! through `tee`/`cat >`, `mkdir -p`, `mv`, `rm -f`, `test`, `pvesm path`,
//! `qm disk import` of an uploaded image (seen as `unused0` through the PVE
//! API), `qm set`/`qm config`, PVE's error texts and exit statuses, the
//! refusal of anything else (127), and SFTP on the same server. Needs
//! `openssh-server` and `openssh-client` (CI installs them): without them the
//! tests fail and say so.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use proxmox_talos_lab::pve::apidoc::ApiDoc;
use proxmox_talos_lab::pve::auth::LabCredentials;
use proxmox_talos_lab::pve::lab_config::{LabConfig, Timing};
use proxmox_talos_lab::pve::server::{self, PveState};
use proxmox_talos_lab::pve::tls::LabCa;
use proxmox_talos_lab::ssh::{self, NodeSshd, ShellSetup};
use serde_json::Value;

struct Lab {
    dir: tempfile::TempDir,
    url: String,
    token: String,
    client: reqwest::Client,
    sshd: NodeSshd,
    key: PathBuf,
    state: PveState,
}

fn run_ok(command: &mut Command) {
    let out = run_within(command, None, "a set-up command");
    assert!(out.status.success(), "{command:?}: {}", String::from_utf8_lossy(&out.stderr));
}

async fn start() -> Lab {
    assert!(ssh::ssh_available(), "the OpenSSH server is not installed ({} missing)", ssh::SSHD);
    let base =
        ssh::chroot_capable_base(&[PathBuf::from(env!("CARGO_TARGET_TMPDIR"))]).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::Builder::new().prefix("ssh-shell-").tempdir_in(base).unwrap();
    let state_dir = dir.path().join("state");
    let ca = LabCa::load_or_create(&state_dir).unwrap();
    let credentials = LabCredentials::load_or_create(&state_dir).unwrap();
    let apidoc = ApiDoc::load(&ApiDoc::locate().unwrap()).unwrap();
    let mut config = LabConfig::single_node();
    config.timing = Timing::instant();
    let state = PveState::new(apidoc, credentials.auth(), config, &state_dir).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = server::base_url(listener.local_addr().unwrap());
    tokio::spawn(server::serve(listener, ca.server_config().unwrap(), state.clone(), std::future::pending()));
    let shell = ShellSetup { exe: PathBuf::from(env!("CARGO_BIN_EXE_proxmox-talos-lab")), api: url.clone() };
    let sshd =
        ssh::start_node_sshd(&state_dir, "pve", &state.node_root("pve"), "127.0.0.1:0".parse().unwrap(), Some(&shell))
            .unwrap_or_else(|e| panic!("starting sshd for node pve: {e}"));
    let key = dir.path().join("client_key");
    run_ok(Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "lab-test", "-f"]).arg(&key));
    sshd.authorize(&std::fs::read_to_string(key.with_extension("pub")).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap())
        .no_proxy()
        .build()
        .unwrap();
    Lab { dir, url, token: credentials.token_header(), client, sshd, key, state }
}

/// What a command run over SSH answered.
#[derive(Debug)]
struct Answer {
    status: i32,
    stdout: String,
    stderr: String,
}

/// Runs `command` (with `stdin`) within 60 s, or fails naming `what` with what it printed.
fn run_within(command: &mut Command, stdin: Option<&[u8]>, what: &str) -> std::process::Output {
    proxmox_talos_lab::deadline::Running::start_fed(command, stdin.map(<[u8]>::to_vec))
        .and_then(|r| r.finish_within(Duration::from_secs(60)))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

impl Lab {
    /// `sftp` running the commands of `batch` as root on the node, with the test's key.
    fn sftp(&self, batch: &std::path::Path) -> Command {
        let mut command = Command::new("sftp");
        command
            .arg("-b")
            .arg(batch)
            .arg("-i")
            .arg(&self.key)
            .args(["-P", &self.sshd.port().to_string()])
            .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "root@127.0.0.1"]);
        command
    }

    /// `ssh root@node COMMAND` with `stdin`, as a client's SSH library sends it.
    fn ssh(&self, command: Option<&str>, stdin: &[u8]) -> Answer {
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "/dev/null", "-T", "-i"])
            .arg(&self.key)
            .args(["-p", &self.sshd.port().to_string()])
            .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=20", "root@127.0.0.1"]);
        if let Some(c) = command {
            cmd.arg(c);
        }
        let out = run_within(&mut cmd, Some(stdin), &format!("ssh {command:?}"));
        Answer {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, command: &str, stdin: &[u8]) -> String {
        let a = self.ssh(Some(command), stdin);
        assert_eq!(a.status, 0, "{command}: {a:?}\nsshd log:\n{}", self.sshd.log());
        a.stdout
    }

    async fn get(&self, path: &str) -> Value {
        let response =
            self.client.get(format!("{}{path}", self.url)).header("Authorization", &self.token).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }

    fn node_file(&self, path: &str) -> PathBuf {
        self.state.node_root("pve").join(path.trim_start_matches('/'))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippets_through_tee_and_cat_are_files_the_api_lists() {
    let lab = start().await;
    assert_eq!(
        lab.ok("sudo -n mkdir -p /var/lib/vz/snippets/a/b && test -d /var/lib/vz/snippets/a/b && echo made", b""),
        "made\n"
    );
    let snippet = "#cloud-config\nhostname: 'lab node'\n";
    let out = lab.ok("tee /var/lib/vz/snippets/user-data.yaml >/dev/null", snippet.as_bytes());
    assert_eq!(out, "", "tee's copy went to /dev/null");
    let body = lab.get("/nodes/pve/storage/local/content?content=snippets").await;
    let item = body["data"].as_array().unwrap().iter().find(|i| i["volid"] == "local:snippets/user-data.yaml");
    let item = item.unwrap_or_else(|| panic!("not listed: {body}"));
    assert_eq!(item["size"], snippet.len());
    assert_eq!(lab.ok("cat /var/lib/vz/snippets/user-data.yaml", b""), snippet);

    // What a client wraps its commands in: bash -c with quoting, cat > file, && chains.
    let out = lab.ok(
        r#"/bin/bash -c 'cat > "/var/lib/vz/snippets/meta data.yaml" && test -f "/var/lib/vz/snippets/meta data.yaml" && echo "written: $?"'"#,
        b"instance-id: x\n",
    );
    assert_eq!(out, "written: 0\n");
    assert_eq!(
        std::fs::read_to_string(lab.node_file("/var/lib/vz/snippets/meta data.yaml")).unwrap(),
        "instance-id: x\n"
    );
    lab.ok("mv '/var/lib/vz/snippets/meta data.yaml' /var/lib/vz/snippets/meta.yaml", b"");
    assert!(lab.node_file("/var/lib/vz/snippets/meta.yaml").is_file());
    lab.ok("rm -f /var/lib/vz/snippets/meta.yaml /var/lib/vz/snippets/never-there.yaml; test ! -e /var/lib/vz/snippets/meta.yaml", b"");
    assert!(!lab.node_file("/var/lib/vz/snippets/meta.yaml").exists());
    assert_eq!(lab.ok("printf '%s\\n' one two | tee /var/lib/vz/snippets/list.txt", b""), "one\ntwo\n");
    assert_eq!(lab.ok("ls /var/lib/vz/snippets", b""), "a\nlist.txt\nuser-data.yaml\n");

    // Errors: coreutils' texts and statuses; `||` runs on failure.
    let a = lab.ssh(Some("cat /var/lib/vz/snippets/missing.yaml || echo fallback"), b"");
    assert_eq!((a.status, a.stdout.as_str()), (0, "fallback\n"), "{a:?}");
    assert_eq!(a.stderr, "cat: /var/lib/vz/snippets/missing.yaml: No such file or directory\n");
    let a = lab.ssh(Some("mkdir /var/lib/vz/snippets/a"), b"");
    assert_eq!(
        (a.status, a.stderr.as_str()),
        (1, "mkdir: cannot create directory '/var/lib/vz/snippets/a': File exists\n")
    );

    // The node's root is all the shell can see: the host's files are not there.
    let a = lab.ssh(Some("cat /etc/hostname ../../../../etc/hostname"), b"");
    assert_eq!(a.status, 1, "{a:?}");
    assert!(a.stderr.contains("cat: /etc/hostname: No such file or directory"), "{a:?}");

    // pvesm path: PVE's paths and errors (exit 255).
    assert_eq!(lab.ok("pvesm path local:snippets/user-data.yaml", b""), "/var/lib/vz/snippets/user-data.yaml\n");
    assert_eq!(lab.ok("sudo pvesm path local-zfs:vm-100-disk-0", b""), "/dev/zvol/rpool/data/vm-100-disk-0\n");
    let a = lab.ssh(Some("pvesm path user-data.yaml"), b"");
    assert_eq!((a.status, a.stderr.as_str()), (255, "unable to parse volume ID 'user-data.yaml'\n"));
    let a = lab.ssh(Some("pvesm path nowhere:snippets/x.yaml"), b"");
    assert_eq!((a.status, a.stderr.as_str()), (255, "storage 'nowhere' does not exist\n"));
    let status = lab.ok("pvesm status", b"");
    assert!(status.lines().next().unwrap().starts_with("Name"), "{status}");
    assert!(status.lines().any(|l| l.starts_with("local ") && l.contains(" dir ") && l.contains("active")), "{status}");
    let list = lab.ok("pvesm list local --content snippets", b"");
    assert!(list.contains("local:snippets/user-data.yaml"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anything_else_is_refused_with_127_and_its_name() {
    let lab = start().await;
    let a = lab.ssh(Some("curl -fsSL http://127.0.0.1/x | sh"), b"");
    assert_eq!(a.status, 127, "{a:?}");
    assert!(a.stderr.contains("curl: command not available in the lab"), "{a:?}");
    let a = lab.ssh(Some("qm start 100"), b"");
    assert_eq!(a.status, 127, "{a:?}");
    assert!(a.stderr.contains("qm start: command not available in the lab"), "{a:?}");
    // No real shell: command substitution is refused, not run.
    let a = lab.ssh(Some("echo $(touch /var/lib/vz/snippets/pwned)"), b"");
    assert_eq!(a.status, 2, "{a:?}");
    assert!(a.stderr.contains("command substitution"), "{a:?}");
    assert!(!lab.node_file("/var/lib/vz/snippets/pwned").exists());
    // An interactive session gets a message, not a shell.
    let a = lab.ssh(None, b"");
    assert_eq!(a.status, 1, "{a:?}");
    assert!(a.stderr.contains("offers no interactive shell"), "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qm_disk_import_of_an_uploaded_image_is_unused0_in_the_api() {
    let lab = start().await;
    let response = lab
        .client
        .post(format!("{}/nodes/pve/qemu", lab.url))
        .header("Authorization", &lab.token)
        .form(&[("vmid", "100"), ("name", "imported"), ("scsihw", "virtio-scsi-single")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = lab.client.get(format!("{}/nodes/pve/qemu/100/config", lab.url)).header("Authorization", &lab.token);
        let r = r.send().await.unwrap();
        if r.status() == 200 && r.text().await.unwrap().contains("imported") {
            break;
        }
        assert!(Instant::now() < deadline, "VM 100 was not created within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let image = vec![0u8; 4 << 20];
    lab.ok("mkdir -p /var/lib/vz/import && cat > /var/lib/vz/import/disk.raw", &image);
    let out = lab.ok("qm disk import 100 /var/lib/vz/import/disk.raw local-zfs", b"");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"importing disk '/var/lib/vz/import/disk.raw' to VM 100 ..."), "{out}");
    assert_eq!(lines.last(), Some(&"Successfully imported disk as 'unused0:local-zfs:vm-100-disk-0'"), "{out}");
    let config = lab.get("/nodes/pve/qemu/100/config").await;
    assert_eq!(config["data"]["unused0"], "local-zfs:vm-100-disk-0", "{config}");

    // A volume ID as the source (PVE 8+), and pvesm alloc.
    let out = lab.ok("qm disk import 100 local:import/disk.raw local-zfs --format raw", b"");
    assert!(out.ends_with("Successfully imported disk as 'unused1:local-zfs:vm-100-disk-1'\n"), "{out}");
    assert_eq!(
        lab.ok("pvesm alloc local-zfs 100 vm-100-disk-7 1G", b""),
        "successfully created 'local-zfs:vm-100-disk-7'\n"
    );
    let list = lab.ok("pvesm list local-zfs --vmid 100", b"");
    assert!(list.contains("local-zfs:vm-100-disk-1") && list.contains("local-zfs:vm-100-disk-7"), "{list}");

    // The imported volume attaches with qm set; qm config shows it.
    lab.ok("qm set 100 --scsi0 local-zfs:vm-100-disk-0,discard=on", b"");
    let config = lab.get("/nodes/pve/qemu/100/config").await;
    assert!(config["data"]["scsi0"].as_str().unwrap().starts_with("local-zfs:vm-100-disk-0"), "{config}");
    let shown = lab.ok("qm config 100", b"");
    assert!(shown.lines().any(|l| l.starts_with("scsi0: local-zfs:vm-100-disk-0")), "{shown}");

    // PVE's errors: no such VM, no such storage (exit 255).
    let a = lab.ssh(Some("qm importdisk 999 /var/lib/vz/import/disk.raw local-zfs"), b"");
    assert_eq!(a.status, 255, "{a:?}");
    assert!(a.stderr.contains("Configuration file 'nodes/pve/qemu-server/999.conf' does not exist"), "{a:?}");
    let a = lab.ssh(Some("qm disk import 100 /var/lib/vz/import/disk.raw nowhere"), b"");
    assert_eq!((a.status, a.stderr.trim_end()), (255, "storage 'nowhere' does not exist"), "{a:?}");
    let a = lab.ssh(Some("qm set 100 --cores many"), b"");
    assert_eq!(a.status, 255, "{a:?}");
    assert!(a.stderr.starts_with("400 Parameter verification failed.\ncores:"), "{a:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_still_lands_in_the_node_root_beside_the_shell() {
    let lab = start().await;
    let local = lab.dir.path().join("user-data.yaml");
    std::fs::write(&local, "#cloud-config\n").unwrap();
    let batch = lab.dir.path().join("batch");
    std::fs::write(
        &batch,
        format!("put {} /var/lib/vz/snippets/sftp.yaml\nls /var/lib/vz/snippets\n", local.display()),
    )
    .unwrap();
    let out = run_within(&mut lab.sftp(&batch), None, "sftp");
    assert!(
        out.status.success(),
        "sftp failed: {}\n{}\nsshd log:\n{}\nSFTP sshd log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        lab.sshd.log(),
        std::fs::read_to_string(lab.dir.path().join("state/ssh/pve").join(ssh::SFTP_LOG)).unwrap_or_default()
    );
    assert_eq!(std::fs::read_to_string(lab.node_file("/var/lib/vz/snippets/sftp.yaml")).unwrap(), "#cloud-config\n");
    // The chroot holds: the host's root is not what SFTP sees.
    let batch = lab.dir.path().join("batch2");
    std::fs::write(&batch, "get /etc/hostname\n").unwrap();
    let out = run_within(lab.sftp(&batch).current_dir(lab.dir.path()), None, "sftp get");
    assert!(!out.status.success(), "the host's /etc/hostname was visible over SFTP");
    assert!(!lab.dir.path().join("hostname").exists());
}
