//! The provider's SSH/SFTP client (`provider/ssh`) against a real OpenSSH
//! server (the lab's chrooted sshd): ed25519 and RSA (PEM) keys, a refused
//! login, known and changed host keys, atomic writes that replace a file
//! (mode 0644, no temporary file left, a checksum mismatch leaves the old
//! file), bounded reads, stat and remove.
//!
//! Needs Debian's openssh-server and root (the sshd chroots); without them
//! this test fails and says so.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use proxmox_talos::config::SshConfig;
use proxmox_talos::ssh::{self, Credentials, HostKeyPolicy, HostKeyStatus, SshError, Target};
use proxmox_talos_lab::ssh as lab_ssh;

/// A new key of `kind` (`ed25519`, `rsa`) in `format` (`RFC4716` is OpenSSH's default; `PEM`).
fn key(dir: &Path, name: &str, args: &[&str]) -> (String, String) {
    let path = dir.join(name);
    let out =
        support::run(Command::new("ssh-keygen").args(["-q", "-N", "", "-C", name]).args(args).arg("-f").arg(&path), 60);
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
    (std::fs::read_to_string(&path).unwrap(), std::fs::read_to_string(path.with_extension("pub")).unwrap())
}

fn credentials(private_key: &str) -> Credentials {
    let config =
        SshConfig { username: Some("root".into()), private_key: Some(private_key.into()), ..Default::default() };
    Credentials::from_config(Some(&config), None).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_writes_reads_and_refuses_what_it_should() {
    support::require_sshd();
    let dir = support::chroot_capable_dir("ssh-client-");
    let root = dir.path().join("root");
    let snippets = root.join("var/lib/vz/snippets");
    std::fs::create_dir_all(&snippets).unwrap();
    let sshd = lab_ssh::start_sshd(dir.path(), "pve", &root, "127.0.0.1:0".parse().unwrap())
        .unwrap_or_else(|e| panic!("starting sshd: {e}"));
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (ed25519, ed25519_pub) = key(&keys, "ed25519", &["-t", "ed25519"]);
    let (rsa, rsa_pub) = key(&keys, "rsa", &["-t", "rsa", "-b", "2048", "-m", "PEM"]);
    sshd.authorize(&ed25519_pub).unwrap();
    sshd.authorize(&rsa_pub).unwrap();
    let target = Target { host: "127.0.0.1".into(), port: sshd.port() };
    let timeout = Duration::from_secs(20);
    let no_known_hosts = HostKeyPolicy::with_file(&dir.path().join("absent_known_hosts"));

    // An unknown host is accepted and its fingerprint reported.
    let session = ssh::connect(&target, &credentials(&ed25519), &no_known_hosts, timeout).await.unwrap();
    let HostKeyStatus::Unknown { fingerprint } = session.host_key.clone() else { panic!("{:?}", session.host_key) };
    assert!(fingerprint.starts_with("ssh-ed25519 SHA256:"), "{fingerprint}");
    let sftp = session.sftp().await.unwrap();

    // Atomic write, replacing; mode 0644 whatever the umask; nothing left behind.
    let dir_path = "/var/lib/vz/snippets";
    let noop = |_: u64| {};
    let first = sftp.write_atomic(dir_path, "a.yaml", &b"one\n"[..], 0o644, None, &noop).await.unwrap();
    assert_eq!(first.size, 4);
    let big: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
    let seen = std::sync::atomic::AtomicU64::new(0);
    let progress = |n: u64| seen.store(n, std::sync::atomic::Ordering::Relaxed);
    let second = sftp.write_atomic(dir_path, "a.yaml", &big[..], 0o644, None, &progress).await.unwrap();
    assert_eq!((second.size, seen.into_inner()), (big.len() as u64, big.len() as u64));
    assert_eq!(std::fs::read(snippets.join("a.yaml")).unwrap(), big);
    let mode = std::fs::metadata(snippets.join("a.yaml")).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    assert_eq!(sftp.read(&format!("{dir_path}/a.yaml"), 2 << 20).await.unwrap(), big);
    let e = sftp.read(&format!("{dir_path}/a.yaml"), 1000).await.unwrap_err();
    assert!(matches!(e, SshError::TooLarge { .. }), "{e}");

    // A content that does not match its checksum is not renamed into place.
    let e =
        sftp.write_atomic(dir_path, "a.yaml", &b"other"[..], 0o644, Some(&"0".repeat(64)), &noop).await.unwrap_err();
    assert!(matches!(e, SshError::Checksum { .. }), "{e}");
    assert_eq!(std::fs::read(snippets.join("a.yaml")).unwrap(), big);
    let names: Vec<String> =
        std::fs::read_dir(&snippets).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    assert_eq!(names, ["a.yaml"], "temporary files left behind");

    // Stat, mkdir, remove; a missing file is recognisable.
    assert!(sftp.stat(&format!("{dir_path}/a.yaml")).await.unwrap().is_some());
    assert!(sftp.stat(&format!("{dir_path}/nope")).await.unwrap().is_none());
    sftp.ensure_dir("/var/lib/vz/dump").await.unwrap();
    sftp.ensure_dir("/var/lib/vz/dump").await.unwrap();
    assert!(root.join("var/lib/vz/dump").is_dir());
    let e = sftp.read(&format!("{dir_path}/nope"), 10).await.unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(sftp.remove(&format!("{dir_path}/a.yaml")).await.unwrap());
    assert!(!sftp.remove(&format!("{dir_path}/a.yaml")).await.unwrap());
    sftp.close();
    session.close().await;

    // RSA keys in PEM form log in (rsa-sha2-*), and a pinned host key is verified.
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{} {}\n", sshd.port(), sshd.host_public_key().unwrap())).unwrap();
    let pinned = HostKeyPolicy::with_file(&known_hosts);
    let session = ssh::connect(&target, &credentials(&rsa), &pinned, timeout).await.unwrap();
    assert!(matches!(session.host_key, HostKeyStatus::Known { .. }), "{:?}", session.host_key);
    session.close().await;

    // A changed host key is refused, naming the host, the key and the known_hosts line.
    let (_, other_pub) = key(&keys, "other-host", &["-t", "ed25519"]);
    std::fs::write(&known_hosts, format!("[127.0.0.1]:{} {other_pub}", sshd.port())).unwrap();
    let e = ssh::connect(&target, &credentials(&ed25519), &HostKeyPolicy::with_file(&known_hosts), timeout)
        .await
        .err()
        .expect("a changed host key is refused");
    let text = e.to_string();
    assert!(matches!(e, SshError::HostKeyMismatch { .. }), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{}", sshd.port())) && text.contains("SHA256:"), "{text}");
    assert!(text.contains("line 1") && text.contains("ssh-keygen -R"), "{text}");

    // A key the server does not know is refused with what to check.
    let (stranger, _) = key(&keys, "stranger", &["-t", "ed25519"]);
    let e = ssh::connect(&target, &credentials(&stranger), &no_known_hosts, timeout)
        .await
        .err()
        .expect("an unknown key is refused");
    let text = e.to_string();
    assert!(matches!(e, SshError::AuthRefused { .. }), "{text}");
    assert!(text.contains("refused the login of \"root\"") && text.contains("authorized_keys"), "{text}");

    // Nothing listens: a connection error, which is worth retrying.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let e = ssh::connect(&Target { host: "127.0.0.1".into(), port }, &credentials(&ed25519), &no_known_hosts, timeout)
        .await
        .err()
        .expect("no server");
    assert!(e.is_transient(), "{e}");
    drop(sshd);
}
