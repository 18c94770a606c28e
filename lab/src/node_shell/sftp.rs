//! SFTP sessions of a node whose sshd runs the node shell: handed to
//! OpenSSH's own `internal-sftp`, chrooted to the node's root exactly as an
//! SFTP-only node serves it. sshd applies `ChrootDirectory` to every session
//! of a connection and cannot tell SFTP from commands before it chroots, so
//! the chrooted `internal-sftp` runs in a second sshd started per session in
//! inetd mode (`sshd -i`, the config [`crate::ssh::SFTP_CONFIG`]), reached by
//! the real `ssh` client over a pipe (`ProxyCommand`) with the node's
//! internal key. The client's SFTP bytes pass through unchanged.

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Command;

use super::Options;
use crate::ssh;

/// `'text'` for `sh -c` (what runs `ProxyCommand`).
fn sh_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Replaces this process with the `ssh` client carrying the SFTP session.
pub fn run(options: &Options) -> i32 {
    let dir = options.state_dir.join("ssh").join(&options.node);
    // ssh runs it as `exec COMMAND` through /bin/sh.
    let proxy = format!(
        "{} -i -f {} -E {}",
        ssh::SSHD,
        sh_quote(&dir.join(ssh::SFTP_CONFIG)),
        sh_quote(&dir.join(ssh::SFTP_LOG))
    );
    let err = Command::new("ssh")
        .args(["-F", "/dev/null", "-T", "-q", "-s", "-i"])
        .arg(dir.join(ssh::SFTP_KEY))
        .args(["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"])
        .arg("-o")
        .arg(format!("ProxyCommand={proxy}"))
        .args(["-l", "root", &format!("sftp.{}.lab", options.node), "sftp"])
        .exec();
    eprintln!("proxmox-talos-lab: starting the ssh client for SFTP: {err}");
    1
}
