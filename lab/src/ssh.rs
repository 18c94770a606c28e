//! A real OpenSSH server for a lab node: Debian's `/usr/sbin/sshd` on a
//! loopback address, with SFTP chrooted to the node's file system in the
//! state directory (`STATE/nodes/NODE/root`), so that a file a client puts to
//! `/var/lib/vz/snippets/x.yaml` lands where the lab's `local` storage lists
//! it, just as on a real node. Started with a [`ShellSetup`], sshd runs the
//! lab's node shell (`proxmox-talos-lab node-shell`, see
//! [`crate::node_shell`]) for every session: commands (`tee`, `pvesm path`,
//! `qm disk import`, ...) are interpreted there, and SFTP sessions go on to
//! OpenSSH's `internal-sftp` in a chrooted `sshd -i` ([`SFTP_CONFIG`]).
//! Without one it is SFTP only (`ForceCommand internal-sftp`).
//!
//! Owns: the server's files (`STATE/ssh/NODE/`: host key, `sshd_config`,
//! `authorized_keys`, pid file, `sshd.log`), starting `sshd -D -e -f CONFIG`
//! and stopping it when the [`NodeSshd`] handle is dropped, and the checks
//! that make its failures clear (sshd installed, running as root, the
//! ChrootDirectory ownership rules).
//! Must not: touch the system's SSH configuration or `/root/.ssh` (the only
//! system path it creates is sshd's privilege separation directory
//! `/run/sshd`, when missing), or listen on anything but loopback.

use std::fs;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Debian's OpenSSH server.
pub const SSHD: &str = "/usr/sbin/sshd";
const SSH_KEYGEN: &str = "ssh-keygen";

/// Whether the OpenSSH server and `ssh-keygen` are installed.
pub fn ssh_available() -> bool {
    Path::new(SSHD).is_file() && Command::new(SSH_KEYGEN).arg("-?").output().is_ok()
}

/// The chrooted SFTP server's config in `STATE/ssh/NODE` (shell mode).
pub const SFTP_CONFIG: &str = "sshd_sftp_config";
/// The key the node shell logs in to it with (its public half is the only authorized key).
pub const SFTP_KEY: &str = "sftp_key";
/// Its log (`sshd -E`).
pub const SFTP_LOG: &str = "sshd-sftp.log";

/// How sshd runs the node shell: the lab binary and the running lab's API.
#[derive(Debug, Clone)]
pub struct ShellSetup {
    /// The `proxmox-talos-lab` binary.
    pub exe: PathBuf,
    /// `https://127.0.0.1:8006/api2/json`.
    pub api: String,
}

/// A running `sshd` for one node; dropping it stops the server.
#[derive(Debug)]
pub struct NodeSshd {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl NodeSshd {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The `authorized_keys` file it reads for every user (`root` included).
    pub fn authorized_keys(&self) -> PathBuf {
        self.dir.join("authorized_keys")
    }

    /// Adds an OpenSSH public key line (`ssh-ed25519 AAAA... comment`).
    pub fn authorize(&self, public_key: &str) -> Result<(), String> {
        let path = self.authorized_keys();
        let mut file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        writeln!(file, "{}", public_key.trim()).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The host's public key (`ssh-ed25519 AAAA...`), for a known_hosts entry.
    pub fn host_public_key(&self) -> Result<String, String> {
        let path = self.dir.join("ssh_host_ed25519_key.pub");
        fs::read_to_string(&path).map(|s| s.trim().to_string()).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// What sshd logged so far (`sshd -e` writes its log to stderr).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for NodeSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(self.dir.join("sshd.pid"));
    }
}

/// Checks the rule sshd enforces for `ChrootDirectory`: every directory from
/// `/` down to `root` owned by root and not writable by group or others.
pub fn check_chroot_path(root: &Path) -> Result<(), String> {
    let root = root.canonicalize().map_err(|e| format!("chroot directory {}: {e}", root.display()))?;
    let mut path = PathBuf::new();
    for component in root.components() {
        path.push(component);
        let meta = fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let problem = if meta.uid() != 0 {
            Some(format!("is owned by uid {}", meta.uid()))
        } else if meta.mode() & 0o022 != 0 {
            Some(format!("has mode {:o} (writable by group or others)", meta.mode() & 0o7777))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(format!(
                "sshd refuses ChrootDirectory {}: every directory on that path must be owned by root and not \
                 writable by group or others, but {} {problem}. Keep the lab's state directory on such a path \
                 (for example under /var/lib or a cargo target directory, not under /tmp), or fix it with \
                 `chown root:root {1} && chmod go-w {1}`",
                root.display(),
                path.display(),
            ));
        }
    }
    Ok(())
}

fn effective_uid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command.output().map_err(|e| format!("running {command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A directory a test can put a lab state in that sshd accepts as a chroot's
/// parent: the first of `preferred` (e.g. cargo's `CARGO_TARGET_TMPDIR`) or
/// `/var/lib/proxmox-talos-lab-tests` that is root-owned and not group/world
/// writable all the way up (`/tmp` is not); the reasons otherwise.
pub fn chroot_capable_base(preferred: &[PathBuf]) -> Result<PathBuf, String> {
    let mut reasons = Vec::new();
    let fallback = PathBuf::from("/var/lib/proxmox-talos-lab-tests");
    for base in preferred.iter().chain(std::iter::once(&fallback)) {
        if let Err(e) = std::fs::create_dir_all(base) {
            reasons.push(format!("{}: {e}", base.display()));
            continue;
        }
        match check_chroot_path(base) {
            Ok(()) => return Ok(base.clone()),
            Err(e) => reasons.push(e),
        }
    }
    Err(format!("no directory for the lab state satisfies sshd's ChrootDirectory rules:\n{}", reasons.join("\n")))
}

/// A path in `sshd_config` syntax (quoted).
fn quoted(path: &Path) -> String {
    format!("\"{}\"", path.display())
}

/// A word for the shell sshd runs `ForceCommand` with.
fn sh_word(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The settings every config of a node's sshd shares.
fn common_config(host_key: &Path, keys: &Path) -> String {
    format!(
        "HostKey {host_key}\n\
         AuthorizedKeysFile {keys}\n\
         PermitRootLogin prohibit-password\n\
         PubkeyAuthentication yes\n\
         AuthenticationMethods publickey\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         AllowTcpForwarding no\n\
         AllowAgentForwarding no\n\
         X11Forwarding no\n\
         PermitTTY no\n\
         PrintMotd no\n\
         LogLevel VERBOSE\n",
        host_key = quoted(host_key),
        keys = quoted(keys),
    )
}

fn keygen(path: &Path, comment: &str) -> Result<(), String> {
    if path.exists() {
        return Ok(());
    }
    run(Command::new(SSH_KEYGEN).args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"]).arg(path))
}

/// Starts sshd for `node` on `listen` (a loopback address; port 0 picks a
/// free one), chrooted to `root` (the node's file system, e.g.
/// `PveState::node_root`), with its files in `STATE/ssh/NODE`.
pub fn start_sshd(state_dir: &Path, node: &str, root: &Path, listen: SocketAddr) -> Result<NodeSshd, String> {
    start_node_sshd(state_dir, node, root, listen, None)
}

/// [`start_sshd`], with the node shell for commands when `shell` is given.
pub fn start_node_sshd(
    state_dir: &Path,
    node: &str,
    root: &Path,
    listen: SocketAddr,
    shell: Option<&ShellSetup>,
) -> Result<NodeSshd, String> {
    if !Path::new(SSHD).is_file() {
        return Err(format!(
            "the lab's node SSH needs the OpenSSH server at {SSHD}; install it with \
             `apt-get install openssh-server openssh-sftp-server`"
        ));
    }
    if !listen.ip().is_loopback() {
        return Err(format!("sshd for node {node}: {listen} is not a loopback address"));
    }
    let uid = effective_uid();
    if uid != Some(0) {
        let uid = uid.map(|u| u.to_string()).unwrap_or_else(|| "unknown".into());
        return Err(format!(
            "sshd for node {node}: a chrooting sshd must be started as root; the lab runs as uid {uid}"
        ));
    }
    fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    check_chroot_path(root)?;
    let root = root.canonicalize().map_err(|e| format!("{}: {e}", root.display()))?;
    let dir = state_dir.join("ssh").join(node);
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir = dir.canonicalize().map_err(|e| format!("{}: {e}", dir.display()))?;
    let host_key = dir.join("ssh_host_ed25519_key");
    keygen(&host_key, &format!("root@{node}"))?;
    let authorized_keys = dir.join("authorized_keys");
    if !authorized_keys.exists() {
        fs::write(&authorized_keys, "").map_err(|e| format!("{}: {e}", authorized_keys.display()))?;
        let _ = fs::set_permissions(&authorized_keys, fs::Permissions::from_mode(0o600));
    }
    let addr = if listen.port() == 0 {
        let probe = TcpListener::bind(listen).map_err(|e| format!("finding a free port on {listen}: {e}"))?;
        probe.local_addr().map_err(|e| e.to_string())?
    } else {
        listen
    };
    let config = dir.join("sshd_config");
    let head = format!("ListenAddress {addr}\nPidFile {}\n", quoted(&dir.join("sshd.pid")));
    let sftp_only =
        format!("ChrootDirectory {}\nForceCommand internal-sftp\nSubsystem sftp internal-sftp\n", quoted(&root));
    let text = match shell {
        None => format!(
            "# proxmox-talos-lab: the SSH server of node {node} (SFTP only, chrooted to the node's file system)\n\
             {head}{}{sftp_only}",
            common_config(&host_key, &authorized_keys)
        ),
        Some(shell) => {
            // The chrooted SFTP server the node shell hands SFTP sessions to (`sshd -i`).
            let key = dir.join(SFTP_KEY);
            keygen(&key, &format!("node-shell@{node}"))?;
            let sftp_keys = dir.join("sftp_authorized_keys");
            let public = fs::read_to_string(key.with_extension("pub")).map_err(|e| e.to_string())?;
            fs::write(&sftp_keys, public).map_err(|e| format!("{}: {e}", sftp_keys.display()))?;
            let sftp_config = dir.join(SFTP_CONFIG);
            let sftp_text = format!(
                "# proxmox-talos-lab: SFTP of node {node}, chrooted to the node's file system (run as sshd -i)\n{}{sftp_only}",
                common_config(&host_key, &sftp_keys)
            );
            fs::write(&sftp_config, sftp_text).map_err(|e| format!("{}: {e}", sftp_config.display()))?;
            let command = [
                sh_word(&shell.exe.display().to_string()),
                "node-shell".into(),
                "--state".into(),
                sh_word(&state_dir.canonicalize().map_err(|e| e.to_string())?.display().to_string()),
                "--node".into(),
                sh_word(node),
                "--root".into(),
                sh_word(&root.display().to_string()),
                "--api".into(),
                sh_word(&shell.api),
            ]
            .join(" ");
            format!(
                "# proxmox-talos-lab: the SSH server of node {node} (root's commands run in the lab's node shell; \
                 SFTP chrooted to the node's file system)\n\
                 {head}{}ForceCommand {command}\nSubsystem sftp internal-sftp\n",
                common_config(&host_key, &authorized_keys)
            )
        }
    };
    fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
    // sshd's privilege separation directory (Debian makes it at boot; containers may lack it).
    if !Path::new("/run/sshd").is_dir() {
        fs::create_dir_all("/run/sshd").map_err(|e| format!("creating /run/sshd: {e}"))?;
        let _ = fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755));
    }
    let log_path = dir.join("sshd.log");
    let log = fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let child = Command::new(SSHD)
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting {SSHD}: {e}"))?;
    let mut sshd = NodeSshd { child, addr, dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = sshd.child.try_wait() {
            return Err(format!("sshd for node {node} exited ({status}): {}", sshd.log().trim()));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(sshd);
        }
        if Instant::now() >= deadline {
            return Err(format!("sshd for node {node} did not listen on {addr} within 10s: {}", sshd.log().trim()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_writable_paths_are_refused_with_a_clear_message() {
        // /tmp is 1777 on every Linux: the check must name it.
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        let err = check_chroot_path(dir.path()).unwrap_err();
        assert!(err.contains("/tmp has mode 1777"), "{err}");
        assert!(err.contains("not under /tmp"), "{err}");
    }
}
