//! `proxmox-talos-lab`: the simulated homelab on loopback.
//!
//! Today it runs one service at a time, each printing its URL as the first
//! line on stdout and stopping on SIGINT:
//! - `proxmox-talos-lab factory [--listen 127.0.0.1:0]`: the lab Image Factory;
//! - `proxmox-talos-lab pve --api-schema FILE --state-dir DIR [--listen 127.0.0.1:0]`:
//!   the Proxmox VE API over HTTPS (`https://127.0.0.1:PORT/api2/json`); the
//!   lab CA (`DIR/pve-ca.pem`) and the credentials (`DIR/pve-credentials.json`)
//!   are made at first start.
//!
//! The full homelab (`up`) comes with the lab issue.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use std::path::PathBuf;

use proxmox_talos_lab::factory;
use proxmox_talos_lab::pve;

const USAGE: &str = "usage: proxmox-talos-lab factory [--listen 127.0.0.1:PORT]\n       \
                     proxmox-talos-lab pve --api-schema FILE --state-dir DIR [--listen 127.0.0.1:PORT]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("factory") => listen_address(&args[1..]).and_then(run_factory),
        Some("pve") => pve_options(&args[1..]).and_then(run_pve),
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

/// `--listen ADDR` (default `127.0.0.1:0`); only loopback addresses are accepted.
fn listen_address(args: &[String]) -> Result<SocketAddr, String> {
    let addr = match args {
        [] => "127.0.0.1:0",
        [flag, value] if flag == "--listen" => value.as_str(),
        _ => return Err(USAGE.to_string()),
    };
    let addr: SocketAddr = addr.parse().map_err(|e| format!("--listen {addr:?}: {e}; expected e.g. 127.0.0.1:0"))?;
    if !addr.ip().is_loopback() {
        return Err(format!("--listen {addr}: the lab only listens on loopback (127.0.0.1 or ::1)"));
    }
    Ok(addr)
}

fn run_factory(addr: SocketAddr) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("listening on {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "http://{bound}").and_then(|()| stdout.flush()).map_err(|e| e.to_string())?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        factory::serve(listener, factory::FactoryState::new(), shutdown).await.map_err(|e| format!("serving: {e}"))
    })
}

struct PveOptions {
    schema: PathBuf,
    state_dir: PathBuf,
    listen: SocketAddr,
}

fn pve_options(args: &[String]) -> Result<PveOptions, String> {
    let (mut schema, mut state_dir, mut listen) = (None, None, Vec::new());
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| USAGE.to_string())?;
        match flag.as_str() {
            "--api-schema" => schema = Some(PathBuf::from(value)),
            "--state-dir" => state_dir = Some(PathBuf::from(value)),
            "--listen" => listen = vec![flag.clone(), value.clone()],
            _ => return Err(USAGE.to_string()),
        }
    }
    match (schema, state_dir) {
        (Some(schema), Some(state_dir)) => Ok(PveOptions { schema, state_dir, listen: listen_address(&listen)? }),
        _ => Err(USAGE.to_string()),
    }
}

fn run_pve(options: PveOptions) -> Result<(), String> {
    let apidoc = pve::apidoc::ApiDoc::load(&options.schema).map_err(|e| e.to_string())?;
    let ca = pve::tls::LabCa::load_or_create(&options.state_dir)?;
    let credentials = pve::auth::LabCredentials::load_or_create(&options.state_dir)?;
    let tls = ca.server_config()?;
    let config = pve::lab_config::LabConfig::single_node();
    let state = pve::server::PveState::new(apidoc, credentials.auth(), config, &options.state_dir)?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(async {
        let addr = options.listen;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("listening on {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{}", pve::server::base_url(bound))
            .and_then(|()| stdout.flush())
            .map_err(|e| e.to_string())?;
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        pve::server::serve(listener, tls, state, shutdown).await.map_err(|e| format!("serving: {e}"))
    })
}
