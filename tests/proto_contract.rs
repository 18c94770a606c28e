//! Wire-contract test for the hand-written protocol files under `proto/`.
//!
//! Writes the crate's encoded FileDescriptorSet to a temporary file and runs
//! `tests/support/proto_contract.py`, which compares it with the descriptors in
//! the PyPI `pulumi` package (the reference for the Pulumi wire protocol). A
//! second test runs the script's `--self-test`, proving that a mutated
//! descriptor is reported, so the comparison cannot pass vacuously.
//!
//! The interpreter is `$PROXMOX_TALOS_PYTHON`, else
//! `$PROXMOX_TALOS_CACHE/venv/bin/python` (cache default
//! `$HOME/.cache/proxmox-talos`) if it exists, else `python3`. A missing
//! reference package is a failure, never a skip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use proxmox_talos::rpc::proto::FILE_DESCRIPTOR_SET;

const INSTALL_HINT: &str = "install the reference descriptors with:\n    \
     python3 -m venv $HOME/.cache/proxmox-talos/venv\n    \
     $HOME/.cache/proxmox-talos/venv/bin/pip install pulumi==3.259.0\n\
     or set PROXMOX_TALOS_PYTHON to an interpreter that has pulumi==3.259.0";

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("PROXMOX_TALOS_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("PROXMOX_TALOS_CACHE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache").join("proxmox-talos")));
    if let Some(venv_python) = cache.map(|c| c.join("venv").join("bin").join("python")) {
        if venv_python.exists() {
            return venv_python;
        }
    }
    PathBuf::from("python3")
}

/// Runs the contract script with `args` followed by the descriptor file;
/// panics with the script's output unless it exits successfully.
fn run_contract_script(args: &[&str]) {
    let mut fds = tempfile::NamedTempFile::new().expect("create temp file");
    fds.write_all(FILE_DESCRIPTOR_SET).expect("write descriptor set");
    fds.flush().expect("flush descriptor set");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/proto_contract.py");
    let python = python();
    let output = proxmox_talos_lab::deadline::output_within(
        Command::new(&python).arg(&script).args(args).arg(fds.path()),
        std::time::Duration::from_secs(300),
    )
    .unwrap_or_else(|e| match e.spawn_error {
        Some(_) => panic!("cannot run {} ({e}); {INSTALL_HINT}", python.display()),
        None => panic!("{e}"),
    });

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("$ {} {} {:?} <descriptor set>", python.display(), script.display(), args);
    print!("{stdout}");
    eprint!("{stderr}");

    match output.status.code() {
        Some(0) => {}
        // The script has already explained how to install the reference package.
        Some(3) => panic!("reference pulumi descriptors unavailable:\n{stderr}"),
        _ => panic!("proto contract check failed ({}):\n{stdout}{stderr}", output.status),
    }
}

#[test]
fn descriptors_match_upstream_pulumi() {
    assert!(!FILE_DESCRIPTOR_SET.is_empty(), "descriptor set is empty");
    run_contract_script(&[]);
}

#[test]
fn contract_check_detects_mutations() {
    run_contract_script(&["--self-test"]);
}
