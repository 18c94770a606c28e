//! `proxmox-talos-lab`: the simulated homelab on loopback.
//!
//! Today it runs one service: `proxmox-talos-lab factory [--listen 127.0.0.1:0]`
//! serves the lab Image Factory, prints its URL as the first line on stdout
//! and stops on SIGINT. The full homelab (`up`) comes with the lab issue.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use proxmox_talos_lab::factory;

const USAGE: &str = "usage: proxmox-talos-lab factory [--listen 127.0.0.1:PORT]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("factory") => listen_address(&args[1..]).and_then(run_factory),
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
