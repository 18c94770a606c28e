//! The root shell of a lab node: what `ssh root@node 'COMMAND'` runs.
//!
//! A node's sshd (see [`crate::ssh`]) runs `proxmox-talos-lab node-shell
//! --state DIR --node NODE --root ROOT --api URL` for every session, with the client's
//! command in `$SSH_ORIGINAL_COMMAND`:
//! - an SFTP session (`internal-sftp`) is handed to OpenSSH's own
//!   `internal-sftp`, chrooted to the node's root as before ([`sftp`]);
//! - a command line is parsed by [`parse`] (a small POSIX-sh subset; no
//!   real shell ever runs) and interpreted here after this process has
//!   chrooted itself to the node's root (`STATE/nodes/NODE/root`), so no
//!   file outside it can be touched; `pvesm` and `qm` act through the
//!   running lab's API ([`pve_cli`]) so the API sees every change at once;
//! - anything else answers `command not available in the lab`, exit 127;
//! - a session without a command (an interactive shell) is refused with a
//!   message.
//!
//! Owns: the interpreter (sequences, pipes, redirections, `sudo` and
//! `sh -c` wrappers, `set -e`, `exit`). Must not: spawn a shell, or touch
//! files before the chroot (except the state's credentials and CA).

mod files;
pub mod parse;
mod pve_cli;
mod sftp;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use parse::{Connector, Redir, Script, Simple};

/// What `node-shell` needs from its command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub state_dir: PathBuf,
    pub node: String,
    /// The node's file system (`STATE/nodes/NODE/root`), what SFTP is chrooted to.
    pub root: PathBuf,
    /// The lab's API base, `https://127.0.0.1:8006/api2/json`.
    pub api: String,
}

/// The text for a command the lab does not offer (exit status 127).
pub fn not_available(name: &str) -> String {
    format!("{name}: command not available in the lab (proxmox-talos-lab node shell)\n")
}

/// Runs one SSH session's command; returns the exit status.
pub fn main(options: &Options, command: Option<&str>) -> i32 {
    let Some(command) = command else {
        eprintln!(
            "proxmox-talos-lab: node {} offers no interactive shell; run a command instead, \
             e.g. ssh root@{} 'pvesm status'",
            options.node, options.node
        );
        return 1;
    };
    if command.trim() == "internal-sftp" {
        return sftp::run(options);
    }
    let api = match pve_cli::Api::connect(options) {
        Ok(api) => Some(api),
        Err(e) => {
            eprintln!("proxmox-talos-lab: the lab's API is not reachable from the node shell: {e}");
            None
        }
    };
    if let Err(e) = enter_root(&options.root) {
        eprintln!("proxmox-talos-lab: {e}");
        return 1;
    }
    let mut shell = Shell { node: options.node.clone(), api, errexit: false, last: 0, exit: None };
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let status = shell.run_line(command, &mut stdin, &mut stdout, &mut stderr);
    let _ = stdout.flush();
    let _ = stderr.flush();
    status
}

/// Confines this process to the node's root (chroot; the shell runs as
/// root under sshd), starting in `/root` as a login does.
fn enter_root(root: &Path) -> Result<(), String> {
    std::fs::create_dir_all(root.join("root")).map_err(|e| format!("{}: {e}", root.display()))?;
    std::os::unix::fs::chroot(root).map_err(|e| format!("chroot to the node's root {}: {e}", root.display()))?;
    std::env::set_current_dir("/root").map_err(|e| format!("chdir /root: {e}"))
}

/// The interpreter's state for one session.
pub struct Shell {
    pub node: String,
    api: Option<pve_cli::Api>,
    errexit: bool,
    last: i32,
    /// Set by `exit`: stop and answer this status.
    exit: Option<i32>,
}

/// Where a command's output goes after its redirections.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Out,
    Err,
    Null,
    File(usize),
}

/// An I/O error as coreutils prints it (`No such file or directory`).
pub fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

impl Shell {
    /// Parses and runs a command line.
    pub fn run_line(&mut self, line: &str, input: &mut dyn Read, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
        match parse::parse(line, self.last) {
            Ok(script) => self.run_script(&script, input, out, err),
            Err(e) => {
                let _ = writeln!(err, "bash: {e}");
                2
            }
        }
    }

    fn run_script(&mut self, script: &Script, input: &mut dyn Read, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
        let mut status = 0;
        let n = script.items.len();
        for (i, (connector, pipeline)) in script.items.iter().enumerate() {
            let skip = match connector {
                Connector::Always => false,
                Connector::And => status != 0,
                Connector::Or => status == 0,
            };
            if skip {
                continue;
            }
            let mut previous: Option<Vec<u8>> = None;
            for (j, command) in pipeline.commands.iter().enumerate() {
                let mut buffer = Vec::new();
                let mut errors = Vec::new();
                let last = j + 1 == pipeline.commands.len();
                status = match previous.take() {
                    Some(bytes) => self.run_simple(command, &mut std::io::Cursor::new(bytes), &mut buffer, &mut errors),
                    None => self.run_simple(command, input, &mut buffer, &mut errors),
                };
                let _ = err.write_all(&errors);
                if last {
                    let _ = out.write_all(&buffer);
                    let _ = out.flush();
                } else {
                    previous = Some(buffer);
                }
                if self.exit.is_some() {
                    break;
                }
            }
            self.last = status;
            if let Some(code) = self.exit {
                return code;
            }
            // `set -e`: a failing command that is not tested by `&&`/`||` ends the script.
            let tested = script.items.get(i + 1).is_some_and(|(c, _)| *c != Connector::Always);
            if self.errexit && status != 0 && !tested && i + 1 < n {
                return status;
            }
        }
        status
    }

    /// Runs one command with its redirections applied.
    fn run_simple(&mut self, command: &Simple, input: &mut dyn Read, out: &mut Vec<u8>, err: &mut Vec<u8>) -> i32 {
        let mut files: Vec<std::fs::File> = Vec::new();
        let (mut o, mut e) = (Target::Out, Target::Err);
        let mut redirected_input: Option<Box<dyn Read>> = None;
        for redir in &command.redirs {
            match redir {
                Redir::Dup { from: 2, to: 1 } => e = o,
                Redir::Dup { from: 1, to: 2 } => o = e,
                Redir::Dup { .. } => {}
                Redir::In { path } => {
                    if path == "/dev/null" {
                        redirected_input = Some(Box::new(std::io::empty()));
                        continue;
                    }
                    match std::fs::File::open(path) {
                        Ok(f) => redirected_input = Some(Box::new(f)),
                        Err(x) => {
                            let _ = writeln!(err, "bash: {path}: {}", io_text(&x));
                            return 1;
                        }
                    }
                }
                Redir::Out { fd, path, append } => {
                    let target = match path.as_str() {
                        "/dev/null" => Target::Null,
                        "/dev/stdout" => o,
                        "/dev/stderr" => e,
                        _ => {
                            let opened = std::fs::OpenOptions::new()
                                .create(true)
                                .write(true)
                                .append(*append)
                                .truncate(!*append)
                                .open(path);
                            match opened {
                                Ok(f) => {
                                    files.push(f);
                                    Target::File(files.len() - 1)
                                }
                                Err(x) => {
                                    let _ = writeln!(err, "bash: {path}: {}", io_text(&x));
                                    return 1;
                                }
                            }
                        }
                    };
                    if *fd == 2 {
                        e = target;
                    } else {
                        o = target;
                    }
                }
            }
        }
        if command.argv.is_empty() {
            return 0;
        }
        let mut cout = Vec::new();
        let mut cerr = Vec::new();
        let status = match redirected_input.as_mut() {
            Some(r) => self.dispatch(&command.argv, r.as_mut(), &mut cout, &mut cerr),
            None => self.dispatch(&command.argv, input, &mut cout, &mut cerr),
        };
        for (bytes, target) in [(cout, o), (cerr, e)] {
            let written = match target {
                Target::Out => {
                    out.extend_from_slice(&bytes);
                    Ok(())
                }
                Target::Err => {
                    err.extend_from_slice(&bytes);
                    Ok(())
                }
                Target::Null => Ok(()),
                Target::File(i) => files[i].write_all(&bytes),
            };
            if let Err(x) = written {
                let _ = writeln!(err, "bash: write error: {}", io_text(&x));
                return 1;
            }
        }
        status
    }

    /// Runs a command by name.
    fn dispatch(&mut self, argv: &[String], input: &mut dyn Read, out: &mut Vec<u8>, err: &mut Vec<u8>) -> i32 {
        let raw = argv[0].as_str();
        // `/usr/bin/tee` is `tee`; other paths are not commands the lab knows.
        let name = ["/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"]
            .iter()
            .find_map(|p| raw.strip_prefix(p))
            .filter(|n| !n.contains('/'))
            .unwrap_or(raw);
        let args = &argv[1..];
        match name {
            "sudo" => self.sudo(args, input, out, err),
            "sh" | "bash" | "dash" => self.sh_c(name, args, input, out, err),
            "true" | ":" => 0,
            "false" => 1,
            "exit" => {
                let code = args.first().and_then(|a| a.parse::<i32>().ok()).unwrap_or(self.last);
                self.exit = Some(code & 0xff);
                code & 0xff
            }
            "set" => self.set(args, err),
            "cd" => {
                let dir = args.first().map(String::as_str).unwrap_or("/root");
                match std::env::set_current_dir(dir) {
                    Ok(()) => 0,
                    Err(x) => {
                        let _ = writeln!(err, "bash: cd: {dir}: {}", io_text(&x));
                        1
                    }
                }
            }
            "pvesm" | "qm" => match self.api.as_ref() {
                Some(api) => {
                    if name == "pvesm" {
                        pve_cli::pvesm(api, &self.node, args, out, err)
                    } else {
                        pve_cli::qm(api, &self.node, args, out, err)
                    }
                }
                None => {
                    let _ = writeln!(err, "ipcc_send_rec[1] failed: Connection refused");
                    255
                }
            },
            _ if name.contains('=') && !name.starts_with('=') => {
                let _ = writeln!(err, "bash: variable assignments are not supported by the lab's node shell");
                2
            }
            _ => match files::run(name, args, input, out, err) {
                Some(status) => status,
                None => {
                    let _ = err.write_all(not_available(raw).as_bytes());
                    127
                }
            },
        }
    }

    /// `sudo [-n] [-E] [-H] [-u root] [--] COMMAND...`: the shell already is root.
    fn sudo(&mut self, args: &[String], input: &mut dyn Read, out: &mut Vec<u8>, err: &mut Vec<u8>) -> i32 {
        let mut i = 0;
        while let Some(a) = args.get(i) {
            match a.as_str() {
                "-n" | "-E" | "-H" | "-S" | "--non-interactive" | "--preserve-env" => i += 1,
                "-u" if args.get(i + 1).is_some_and(|u| u == "root") => i += 2,
                "--" => {
                    i += 1;
                    break;
                }
                s if s.starts_with('-') => {
                    let _ = writeln!(err, "sudo: option {s} is not available in the lab");
                    return 1;
                }
                _ => break,
            }
        }
        if i >= args.len() {
            let _ = writeln!(err, "usage: sudo [-n] command");
            return 1;
        }
        self.dispatch(&args[i..], input, out, err)
    }

    /// `sh -c SCRIPT`: the script runs in this interpreter.
    fn sh_c(&mut self, name: &str, args: &[String], input: &mut dyn Read, out: &mut Vec<u8>, err: &mut Vec<u8>) -> i32 {
        let mut i = 0;
        while args.get(i).is_some_and(|a| a == "-e" || a == "-l" || a == "--login") {
            if args[i] == "-e" {
                self.errexit = true;
            }
            i += 1;
        }
        match (args.get(i).map(String::as_str), args.get(i + 1)) {
            (Some("-c"), Some(script)) => {
                let saved = self.errexit;
                let status = self.run_line(script, input, out, err);
                self.errexit = saved;
                status
            }
            _ => {
                let _ = err.write_all(not_available(&format!("{name} without -c")).as_bytes());
                127
            }
        }
    }

    fn set(&mut self, args: &[String], err: &mut Vec<u8>) -> i32 {
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "-e" => self.errexit = true,
                "+e" => self.errexit = false,
                "-u" | "+u" | "-x" | "+x" => {}
                "-eu" | "-ue" | "-ex" | "-xe" => self.errexit = true,
                "-o" | "+o" => match it.next().map(String::as_str) {
                    Some("errexit") => self.errexit = a == "-o",
                    Some("pipefail" | "nounset" | "xtrace") => {}
                    other => {
                        let _ = writeln!(err, "bash: set: {}: invalid option name", other.unwrap_or(""));
                        return 2;
                    }
                },
                other => {
                    let _ = writeln!(err, "bash: set: {other}: not supported by the lab's node shell");
                    return 2;
                }
            }
        }
        0
    }
}
