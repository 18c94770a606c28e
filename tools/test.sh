#!/usr/bin/env bash
# The test command: everything CI runs, on a fresh machine or a warm one.
#
#   tools/test.sh
#
# 0. makes sure Debian's openssh-server is installed (the lab's nodes run real sshd);
# 1. installs the pinned Pulumi toolchain (CLI, YAML host, SDK generator), the pinned
#    talosctl (lab/tests/talosctl_conformance.rs drives a lab node with it) and the
#    Python venv with the pinned Pulumi SDK (all cached outside the repo);
# 2. generates the nodejs, python and go SDKs from schema.json and compiles each
#    (tools/check-sdks.sh, through tools/sdk-programs-env.sh: skipped when schema.json and the
#    generator are unchanged since it last passed), and installs the TypeScript programs'
#    dependencies (cached outside the repo);
# 3. runs the whole Rust test suite (unit, protocol contract, gRPC lifecycle,
#    real `pulumi` CLI end to end, the Python and TypeScript programs through the
#    Automation API, schema freshness and `pulumi schema check`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*" >&2; }

step "OpenSSH server (snippets travel over SFTP, as on real Proxmox VE)"
tools/ensure-sshd.sh

step "Pulumi toolchain"
PULUMI_BIN="$(tools/install-pulumi.sh | tail -n1)"
export PATH="$PULUMI_BIN:$PATH"
pulumi version >&2

step "talosctl (real client for the lab's Talos conformance test)"
TALOSCTL_BIN="$(tools/install-talosctl.sh | tail -n1)"
export PATH="$TALOSCTL_BIN:$PATH"
talosctl version --client >&2

step "Python environment"
PROXMOX_TALOS_PYTHON="$(tools/python-env.sh | tail -n1)"
export PROXMOX_TALOS_PYTHON

# Tests never reach past loopback and never prompt.
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_CONFIG_PASSPHRASE=proxmox-talos-tests
# A one-shot build gains nothing from incremental caches, which double the target size.
export CARGO_INCREMENTAL=0

step "SDKs: generate and compile; program dependencies"
eval "$(tools/sdk-programs-env.sh)"

step "Rust tests"
cargo build --workspace --all-targets
cargo test --workspace

echo "tools/test.sh: all tests passed" >&2
