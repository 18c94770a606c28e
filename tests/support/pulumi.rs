//! A Pulumi stack driven by the real `pulumi` CLI: a copy of an example program
//! from `sdk-examples/` (or a program given as text) pointed at this build's
//! plugin, a local file backend, a fixed passphrase, no plugin downloads, and
//! extra environment for the plugin (endpoints and credentials of the lab).
//! [`Stack::from_dir`] copies a whole project (TypeScript, Python); the runners
//! of `tools/run-program.*` take the same environment through [`Stack::tool`].
//! [`plain_secrets`] finds secrets a `pulumi stack export` holds in plain text.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use proxmox_talos_lab::deadline::{output_within, Running};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

pub struct Stack {
    pub dir: PathBuf,
    home: tempfile::TempDir,
    /// Extra environment for every run (after the caller's `PROXMOX_VE_*` are removed).
    pub env: Vec<(String, String)>,
    /// `HOME` for every run, when the stack has one of its own ([`Stack::with_own_home`]).
    user_home: Option<PathBuf>,
    /// How long one `pulumi` run may take before it is killed (with its plugins) and the
    /// test fails with its output ([`RUN_DEADLINE`] unless [`Stack::with_deadline`]).
    pub deadline: Duration,
}

/// The default deadline of one `pulumi` run: the slowest (the seven-node Talos cluster on a
/// loaded 2-core machine) takes a few minutes.
pub const RUN_DEADLINE: Duration = Duration::from_secs(600);

impl Stack {
    /// `sdk-examples/<example>` as stack `dev`, with `env` for every pulumi run.
    pub fn new(example: &str, env: Vec<(String, String)>) -> Stack {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk-examples").join(example);
        Stack::from_program(&std::fs::read_to_string(src.join("Pulumi.yaml")).unwrap(), env)
    }

    /// A YAML program given as text (naming its plugin `path: ../../target/debug`, as the
    /// examples do) as stack `dev`, with `env` for every pulumi run.
    pub fn from_program(program: &str, env: Vec<(String, String)>) -> Stack {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("program");
        std::fs::create_dir_all(&dir).unwrap();
        let s = Stack { dir, home, env, user_home: None, deadline: RUN_DEADLINE };
        s.write_program(program);
        std::fs::create_dir_all(s.home.path().join("state")).unwrap();
        s.ok(&["login", &format!("file://{}", s.home.path().join("state").display())]);
        s.ok(&["stack", "init", "dev"]);
        s
    }

    /// All of `sdk-examples/<example>` (a project in any language: its files, without
    /// installed or built ones and stack files) as stack `dev`, with `env` for every run.
    pub fn from_dir(example: &str, env: Vec<(String, String)>) -> Stack {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk-examples").join(example);
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("program");
        copy_project(&src, &dir);
        let s = Stack { dir, home, env, user_home: None, deadline: RUN_DEADLINE };
        s.write_program(&std::fs::read_to_string(src.join("Pulumi.yaml")).unwrap());
        std::fs::create_dir_all(s.home.path().join("state")).unwrap();
        s.ok(&["login", &format!("file://{}", s.home.path().join("state").display())]);
        s.ok(&["stack", "init", "dev"]);
        s
    }

    /// Replaces the program (`Pulumi.yaml`), pointing its plugin path at this build.
    pub fn write_program(&self, program: &str) {
        let program = program.replace("path: ../../target/debug", &format!("path: {}", plugin_dir().display()));
        assert!(program.contains(&plugin_dir().display().to_string()), "the program names its plugin path");
        std::fs::write(self.dir.join("Pulumi.yaml"), program).unwrap();
    }

    /// Gives every later run (pulumi and the plugin it starts) a `HOME` of this stack's own and
    /// no SSH agent: the plugin's `~/.ssh/known_hosts` is then [`Stack::known_hosts`], and no key
    /// of the caller's is offered.
    pub fn with_own_home(mut self) -> Stack {
        let user_home = self.home.path().join("user");
        std::fs::create_dir_all(&user_home).unwrap();
        self.user_home = Some(user_home);
        self
    }

    /// Another deadline for each later `pulumi` run.
    pub fn with_deadline(mut self, deadline: Duration) -> Stack {
        self.deadline = deadline;
        self
    }

    /// The `~/.ssh/known_hosts` the plugin reads (and may not yet exist); needs [`Stack::with_own_home`].
    pub fn known_hosts(&self) -> PathBuf {
        self.user_home.as_ref().expect("the stack has a HOME of its own (with_own_home)").join(".ssh/known_hosts")
    }

    /// The `pulumi` command for `args`, with this stack's environment, not started.
    pub fn command(&self, args: &[&str]) -> Command {
        let pulumi = std::env::var("PULUMI").unwrap_or_else(|_| "pulumi".into());
        let mut command = self.tool(&pulumi);
        command.args(args).arg("--non-interactive");
        command
    }

    /// `program` (e.g. a runner that drives `pulumi` through the Automation API) in the
    /// project directory, with this stack's environment (backend, passphrase, no plugin
    /// downloads, the caller's `PROXMOX_VE_*` removed, then `env`), not started.
    pub fn tool(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(&self.dir)
            .env("PULUMI_HOME", self.home.path().join("home"))
            .env("PULUMI_BACKEND_URL", format!("file://{}", self.home.path().join("state").display()))
            .env("PULUMI_CONFIG_PASSPHRASE", "proxmox-talos-tests")
            .env("PULUMI_SKIP_UPDATE_CHECK", "true")
            .env("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
            .env("PULUMI_SKIP_CONFIRMATIONS", "true");
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PROXMOX_VE_")) {
            command.env_remove(k);
        }
        if let Some(user_home) = &self.user_home {
            command.env("HOME", user_home).env_remove("SSH_AUTH_SOCK");
        }
        for (k, v) in &self.env {
            command.env(k, v);
        }
        command
    }

    /// Runs `pulumi args` to the end, within [`Stack::deadline`]: a run that overruns is
    /// killed with its plugins and the test fails with what it printed.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_within(args, self.deadline)
    }

    /// [`Stack::run`] with a deadline of its own.
    pub fn run_within(&self, args: &[&str], within: Duration) -> Output {
        output_within(&mut self.command(args), within).unwrap_or_else(|e| match e.spawn_error {
            Some(_) => panic!("cannot run pulumi ({e}); run the tests with tools/test.sh, which installs it"),
            None => panic!("{e}"),
        })
    }

    /// Runs and demands success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "pulumi {args:?} failed\n--- stdout\n{stdout}\n--- stderr\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs and demands failure; returns stdout + stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success(), "pulumi {args:?} should have failed\n{text}");
        text
    }

    pub fn outputs(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["stack", "output", "--json", "--show-secrets"])).unwrap()
    }

    pub fn set(&self, key: &str, value: &str) {
        self.ok(&["config", "set", key, value]);
    }

    /// The stack's deployment (`pulumi stack export`).
    pub fn export(&self) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["stack", "export", "--show-secrets"])).unwrap()
    }

    /// Runs `pulumi up` and, once `moment()` says so, kills our provider plugin with
    /// SIGKILL (as an OOM kill or a power cut would); demands that `up` then fails.
    /// Returns the killed pids and the run's output. Panics when `up` ends first, or
    /// when the moment does not come within `timeout`.
    pub fn up_killed_when(&self, timeout: Duration, mut moment: impl FnMut() -> bool) -> (Vec<u32>, String) {
        let mut up =
            Running::start(&mut self.command(&["up", "--yes", "--skip-preview"])).unwrap_or_else(|e| panic!("{e}"));
        let deadline = Instant::now() + timeout;
        let killed = loop {
            if let Some(status) = up.try_status() {
                panic!("`up` ended ({status}) before the plugin could be killed\n{}", up.printed());
            }
            assert!(
                Instant::now() < deadline,
                "the moment to kill the plugin did not come within {timeout:?}\n{}",
                up.printed()
            );
            if moment() {
                let plugins = descendants_named(up.id(), PLUGIN);
                assert!(!plugins.is_empty(), "the plugin process is not found under pulumi {}", up.id());
                for pid in &plugins {
                    Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
                }
                break plugins;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = up.finish_within(Duration::from_secs(120)).unwrap_or_else(|e| panic!("after the kill: {e}"));
        let text = text_of(&out);
        assert!(!out.status.success(), "`up` should fail once its plugin {killed:?} is killed\n{text}");
        (killed, text)
    }
}

const PLUGIN: &str = "pulumi-resource-proxmox-talos";

fn text_of(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Pids of `name` processes descending from `ancestor`.
fn descendants_named(ancestor: u32, name: &str) -> Vec<u32> {
    let parent_of = |pid: u32| -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        // comm is cut at 15 characters.
        if !name.starts_with(comm.trim()) || comm.trim().is_empty() {
            continue;
        }
        let mut p = pid;
        while let Some(parent) = parent_of(p) {
            if parent == ancestor {
                found.push(pid);
                break;
            }
            if parent <= 1 {
                break;
            }
            p = parent;
        }
    }
    found
}

/// Copies a project directory, leaving out what is installed, built or per stack.
fn copy_project(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        let skip = ["node_modules", "bin", "venv", "__pycache__"].contains(&name.as_str())
            || (name.starts_with("Pulumi.") && name != "Pulumi.yaml");
        if skip {
            continue;
        }
        let (from, to) = (entry.path(), dst.join(&name));
        if entry.file_type().unwrap().is_dir() {
            copy_project(&from, &to);
        } else {
            std::fs::copy(&from, &to).unwrap();
        }
    }
}

/// Where this build's plugin binary is.
pub fn plugin_dir() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_pulumi-resource-proxmox-talos")).parent().unwrap()
}

/// Every string in `value`, recursively; a decrypted secret (`plaintext`, JSON text) is read too.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        Value::Object(o) => match o.get("plaintext").and_then(Value::as_str) {
            Some(text) => strings(&serde_json::from_str(text).unwrap_or(Value::String(text.into())), out),
            None => o.values().for_each(|v| strings(v, out)),
        },
        _ => {}
    }
}

/// What of `export` (`pulumi stack export`) is a secret in plain text: a `known` one, a private
/// key (PEM, or PEM in base64), a kubeconfig's client key, a whole machine configuration.
pub fn plain_secrets(export: &str, known: &[(&str, &str)]) -> Vec<String> {
    let deployment: Value = serde_json::from_str(export).unwrap();
    let mut all = Vec::new();
    strings(&deployment, &mut all);
    let mut found = Vec::new();
    for (what, secret) in known {
        if all.iter().any(|s| s.contains(secret)) {
            found.push(what.to_string());
        }
    }
    for s in &all {
        let decoded = base64::engine::general_purpose::STANDARD.decode(s.trim()).ok();
        let decoded = decoded.map(|d| String::from_utf8_lossy(&d).to_string()).unwrap_or_default();
        for text in [s.as_str(), decoded.as_str()] {
            for marker in ["PRIVATE KEY", "client-key-data"].into_iter().filter(|m| text.contains(m)) {
                found.push(format!("{marker:?} in {:.60}", s));
            }
            // A v1alpha1 document: a whole machine configuration (patches are not secret).
            if text.starts_with("version: v1alpha1") || text.contains("\nversion: v1alpha1") {
                found.push(format!("a machine configuration: {:.60}", s));
            }
        }
    }
    found
}
