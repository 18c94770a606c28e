//! `proxmox-talos-lab`: the simulated homelab on loopback.
//!
//! - `up [--config FILE | --preset single|cluster] [--state DIR] [--api-schema FILE]
//!   [--listen ADDR] [--factory-listen ADDR]`: starts the lab in the background
//!   (the Proxmox VE API on `https://127.0.0.1:8006/api2/json` and the Image
//!   Factory on `http://127.0.0.1:8080`), waits until it answers, and prints
//!   the env file to source (`STATE/lab.env`). State persists in the state
//!   directory (default `~/.cache/proxmox-talos/lab`) across restarts.
//! - `down [--state DIR]`: stops it.
//! - `inventory [--state DIR] [--json] [--all]`: every VM and file the lab
//!   holds (without its seed template unless `--all`); works while it is down.
//! - `serve ...`: `up` in the foreground (what `up` runs).
//! - `node-shell --state DIR --node NODE --root DIR --api URL`: what a node's sshd runs
//!   for `ssh root@node COMMAND` (the command in `$SSH_ORIGINAL_COMMAND`;
//!   see `proxmox_talos_lab::node_shell`).
//! - `factory [--listen ADDR]`, `pve [--api-schema FILE] --state-dir DIR [--listen ADDR]`:
//!   one service alone, printing its URL first.
//! - `apidoc compact --from pve-apidoc.json --out FILE`: writes the compact,
//!   facts-only schema the lab embeds (`lab/apidoc/pve-apidoc.compact.json`).
//!
//! The PVE API schema is the embedded compact one unless `--api-schema FILE`
//! names a file (the official `pve-apidoc.json` or a compact one).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use proxmox_talos_lab::homelab::{self, LabOptions, ENV_FILE};
use proxmox_talos_lab::pve::admin;
use proxmox_talos_lab::pve::apidoc::ApiDoc;
use proxmox_talos_lab::pve::lab_config::LabConfig;
use proxmox_talos_lab::pve::model::Model;
use proxmox_talos_lab::{factory, pve};

const USAGE: &str = "usage: proxmox-talos-lab up [--config FILE | --preset single|cluster] [--state DIR] \
                     [--api-schema FILE] [--listen ADDR] [--factory-listen ADDR]\n       \
                     proxmox-talos-lab down [--state DIR]\n       \
                     proxmox-talos-lab inventory [--state DIR] [--json] [--all]\n       \
                     proxmox-talos-lab serve (same options as up; foreground)\n       \
                     proxmox-talos-lab node-shell --state DIR --node NODE --root DIR --api URL (run by a node's sshd)\n       \
                     proxmox-talos-lab factory [--listen 127.0.0.1:PORT]\n       \
                     proxmox-talos-lab pve [--api-schema FILE] --state-dir DIR [--listen 127.0.0.1:PORT]\n       \
                     proxmox-talos-lab apidoc compact --from pve-apidoc.json --out FILE";

const PID_FILE: &str = "lab.pid";
const LOG_FILE: &str = "lab.log";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or(&[]);
    if args.first().map(String::as_str) == Some("node-shell") {
        return node_shell(rest);
    }
    let result = match args.first().map(String::as_str) {
        Some("up") => Flags::parse(rest).and_then(up),
        Some("serve") => Flags::parse(rest).and_then(serve),
        Some("down") => Flags::parse(rest).and_then(down),
        Some("inventory") => Flags::parse(rest).and_then(inventory),
        Some("factory") => Flags::parse(rest).and_then(run_factory),
        Some("pve") => Flags::parse(rest).and_then(run_pve),
        Some("apidoc") => apidoc_command(rest),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proxmox-talos-lab: {e}");
            ExitCode::from(2)
        }
    }
}

/// `node-shell`: one SSH session's command; exits with its status.
fn node_shell(args: &[String]) -> ExitCode {
    let mut it = args.iter();
    let (mut state, mut node, mut root, mut api) = (None, None, None, None);
    while let Some(flag) = it.next() {
        let slot = match flag.as_str() {
            "--state" => &mut state,
            "--node" => &mut node,
            "--root" => &mut root,
            "--api" => &mut api,
            _ => {
                eprintln!("proxmox-talos-lab: node-shell: unknown argument {flag:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        };
        *slot = it.next().cloned();
    }
    let (Some(state), Some(node), Some(root), Some(api)) = (state, node, root, api) else {
        eprintln!("proxmox-talos-lab: node-shell needs --state, --node, --root and --api\n{USAGE}");
        return ExitCode::from(2);
    };
    let options = proxmox_talos_lab::node_shell::Options {
        state_dir: PathBuf::from(state),
        node,
        root: PathBuf::from(root),
        api,
    };
    let command = std::env::var("SSH_ORIGINAL_COMMAND").ok();
    let status = proxmox_talos_lab::node_shell::main(&options, command.as_deref());
    ExitCode::from(status.clamp(0, 255) as u8)
}

/// The command-line flags every subcommand draws from.
#[derive(Default)]
struct Flags {
    config: Option<PathBuf>,
    preset: Option<String>,
    state: Option<PathBuf>,
    api_schema: Option<PathBuf>,
    listen: Option<String>,
    factory_listen: Option<String>,
    json: bool,
    all: bool,
}

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, String> {
        let mut flags = Flags::default();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().cloned().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
            match flag.as_str() {
                "--config" => flags.config = Some(PathBuf::from(value()?)),
                "--preset" => flags.preset = Some(value()?),
                "--state" | "--state-dir" => flags.state = Some(PathBuf::from(value()?)),
                "--api-schema" => flags.api_schema = Some(PathBuf::from(value()?)),
                "--listen" => flags.listen = Some(value()?),
                "--factory-listen" => flags.factory_listen = Some(value()?),
                "--json" => flags.json = true,
                "--all" => flags.all = true,
                _ => return Err(format!("unknown argument {flag:?}\n{USAGE}")),
            }
        }
        Ok(flags)
    }

    fn state_dir(&self) -> PathBuf {
        self.state.clone().unwrap_or_else(homelab::default_state_dir)
    }

    fn lab_config(&self) -> Result<LabConfig, String> {
        match (&self.config, self.preset.as_deref()) {
            (Some(_), Some(_)) => Err("give --config or --preset, not both".into()),
            (Some(path), None) => LabConfig::load(path),
            (None, None | Some("single")) => Ok(LabConfig::single_node()),
            (None, Some("cluster")) => Ok(LabConfig::seed_cluster()),
            (None, Some(other)) => Err(format!("--preset {other:?}: expected single or cluster")),
        }
    }

    fn options(&self) -> Result<LabOptions, String> {
        let api_schema = self.api_schema.clone();
        Ok(LabOptions {
            config: self.lab_config()?,
            state_dir: self.state_dir(),
            api_schema,
            api_listen: address(self.listen.as_deref().unwrap_or(homelab::DEFAULT_API_LISTEN))?,
            factory_listen: address(self.factory_listen.as_deref().unwrap_or(homelab::DEFAULT_FACTORY_LISTEN))?,
        })
    }
}

/// A loopback socket address.
fn address(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text.parse().map_err(|e| format!("{text:?}: {e}; expected e.g. 127.0.0.1:0"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("{addr}: the lab only listens on loopback (127.0.0.0/8 or ::1)"));
    }
    Ok(addr)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Runtime::new().map_err(|e| format!("starting the runtime: {e}"))
}

/// SIGINT or SIGTERM.
async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn serve(flags: Flags) -> Result<(), String> {
    let options = flags.options()?;
    runtime()?.block_on(homelab::run(
        options,
        |lab| {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "{}", lab.state_dir.join(ENV_FILE).display()).and_then(|()| out.flush());
        },
        stop_signal(),
    ))
}

/// The pid of a lab running for `state_dir`, if any.
fn running_pid(state_dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(state_dir.join(PID_FILE)).ok()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

fn up(flags: Flags) -> Result<(), String> {
    let options = flags.options()?;
    let state_dir = options.state_dir.clone();
    let env_file = state_dir.join(ENV_FILE);
    if let Some(pid) = running_pid(&state_dir) {
        if env_file.exists() {
            println!("{}", env_file.display());
            eprintln!("the lab is already running (pid {pid}); source {}", env_file.display());
            warn_without_ssh(&env_file);
            return Ok(());
        }
    }
    std::fs::create_dir_all(&state_dir).map_err(|e| format!("creating {}: {e}", state_dir.display()))?;
    let _ = std::fs::remove_file(&env_file);
    let log_path = state_dir.join(LOG_FILE);
    let log = std::fs::File::create(&log_path).map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut args = vec!["serve".to_string(), "--state".into(), state_dir.display().to_string()];
    if let Some(schema) = &options.api_schema {
        args.extend(["--api-schema".into(), schema.display().to_string()]);
    }
    args.extend(["--listen".into(), options.api_listen.to_string()]);
    args.extend(["--factory-listen".into(), options.factory_listen.to_string()]);
    if let Some(config) = &flags.config {
        args.extend(["--config".into(), config.display().to_string()]);
    }
    if let Some(preset) = &flags.preset {
        args.extend(["--preset".into(), preset.clone()]);
    }
    use std::os::unix::process::CommandExt as _;
    let mut child = Command::new(exe)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting the lab: {e}"))?;
    std::fs::write(state_dir.join(PID_FILE), child.id().to_string()).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !env_file.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(format!("the lab exited ({status}) while starting:\n{log}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("the lab did not start within 60 s; see {}", log_path.display()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let env = homelab::read_env_file(&env_file)?;
    let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).unwrap_or_default();
    println!("{}", env_file.display());
    eprintln!(
        "lab up (pid {}): Proxmox VE API {}api2/json, Image Factory {}, nodes {}\nsource {} to use it",
        child.id(),
        get("PROXMOX_VE_ENDPOINT"),
        get("TALOS_IMAGE_FACTORY_URL"),
        get("PROXMOX_TALOS_LAB_NODES"),
        env_file.display()
    );
    warn_without_ssh(&env_file);
    Ok(())
}

/// Says on stderr, clearly, when the lab's nodes run without SSH (the env
/// file then has no `PROXMOX_VE_SSH_*`).
fn warn_without_ssh(env_file: &Path) {
    if let Some(reason) = homelab::ssh_unavailable(env_file) {
        eprintln!(
            "WARNING: the lab's nodes run WITHOUT SSH, so snippet uploads (cloud-init user data, \
             storage:File snippets) will fail; lab.env sets no PROXMOX_VE_SSH_*.\nReason: {reason}"
        );
    }
}

fn down(flags: Flags) -> Result<(), String> {
    let state_dir = flags.state_dir();
    let Some(pid) = running_pid(&state_dir) else {
        let _ = std::fs::remove_file(state_dir.join(PID_FILE));
        eprintln!("the lab in {} is not running", state_dir.display());
        return Ok(());
    };
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("kill -TERM {pid} failed"));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid) {
        if Instant::now() > deadline {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(state_dir.join(PID_FILE));
    let _ = std::fs::remove_file(state_dir.join(ENV_FILE));
    eprintln!("lab down (state kept in {})", state_dir.display());
    Ok(())
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

fn inventory(flags: Flags) -> Result<(), String> {
    let state_dir = flags.state_dir();
    let model = Model::load(&state_dir)?.ok_or_else(|| format!("no lab state in {}", state_dir.display()))?;
    let mut inventory = admin::inventory(&model, &state_dir);
    if !flags.all {
        inventory = inventory.without_seed(&model);
    }
    if flags.json {
        println!("{}", serde_json::to_string_pretty(&inventory.to_json()).map_err(|e| e.to_string())?);
        return Ok(());
    }
    for vm in &inventory.vms {
        let kind = if vm.template { "template" } else { "vm" };
        println!("{kind}\t{}\t{}\t{}\t{}", vm.vmid, vm.node, vm.status, vm.name);
    }
    for f in &inventory.files {
        println!("file\t{}\t{}\t{}", f.node.as_deref().unwrap_or("(shared)"), f.volid, f.size);
    }
    if inventory.vms.is_empty() && inventory.files.is_empty() {
        eprintln!("the lab holds no VMs and no files{}", if flags.all { "" } else { " (besides its seed template)" });
    }
    Ok(())
}

fn run_factory(flags: Flags) -> Result<(), String> {
    let addr = address(flags.listen.as_deref().unwrap_or("127.0.0.1:0"))?;
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("listening on {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "http://{bound}").and_then(|()| stdout.flush()).map_err(|e| e.to_string())?;
        factory::serve(listener, factory::FactoryState::new(), stop_signal()).await.map_err(|e| format!("serving: {e}"))
    })
}

/// `apidoc compact --from pve-apidoc.json --out FILE`.
fn apidoc_command(args: &[String]) -> Result<(), String> {
    let (from, out) = match args {
        [cmd, a, from, b, out] if cmd == "compact" && a == "--from" && b == "--out" => (from, out),
        [cmd, b, out, a, from] if cmd == "compact" && a == "--from" && b == "--out" => (from, out),
        _ => return Err(USAGE.to_string()),
    };
    let text = std::fs::read_to_string(from).map_err(|e| format!("reading {from}: {e}"))?;
    let official: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("parsing {from}: {e}"))?;
    let compact = pve::apidoc::compact::compact(&official).map_err(|e| format!("{from}: {e}"))?;
    ApiDoc::from_json(&compact).map_err(|e| format!("{from}: {e}"))?;
    std::fs::write(out, pve::apidoc::compact::to_text(&compact)).map_err(|e| format!("writing {out}: {e}"))
}

fn run_pve(flags: Flags) -> Result<(), String> {
    let Some(state_dir) = &flags.state else {
        return Err(USAGE.to_string());
    };
    let addr = address(flags.listen.as_deref().unwrap_or("127.0.0.1:0"))?;
    let apidoc = ApiDoc::load_or_embedded(flags.api_schema.as_deref()).map_err(|e| e.to_string())?;
    let ca = pve::tls::LabCa::load_or_create(state_dir)?;
    let credentials = pve::auth::LabCredentials::load_or_create(state_dir)?;
    let config = flags.lab_config()?;
    let tls = ca.server_config_for(&pve::tls::certificate_names(&config, addr.ip()))?;
    let state = pve::server::PveState::new(apidoc, credentials.auth(), config, state_dir)?;
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("listening on {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{}", pve::server::base_url(bound))
            .and_then(|()| stdout.flush())
            .map_err(|e| e.to_string())?;
        pve::server::serve(listener, tls, state, stop_signal()).await.map_err(|e| format!("serving: {e}"))
    })
}
