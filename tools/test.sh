#!/usr/bin/env bash
# The test command: everything CI runs, on a fresh machine or a warm one.
#
#   tools/test.sh                 # everything (what .ci/run runs)
#   tools/test.sh --group NAME    # one group: unit | lab | grpc | cli | oracles (needs the same set-up)
#   tools/test.sh --list-groups   # which test files are in which group
#
# Steps (each prints its duration):
# 0. Debian's openssh-server/-client (the lab's nodes run real sshd);
# 1. the pinned Pulumi toolchain (CLI, YAML host, SDK generator), the pinned talosctl and the
#    Python venv with the pinned Pulumi SDK (all cached outside the repo);
# 2. `cargo fmt --check` and `cargo clippy --all-targets -D warnings`;
# 3. the nodejs, python and go SDKs generated from schema.json and compiled (tools/check-sdks.sh,
#    through tools/sdk-programs-env.sh: skipped when unchanged since it last passed), and the
#    programs' dependencies (cached outside the repo);
# 4. the Rust tests, by group:
#    unit     the crates' own unit tests (no lab, no child processes);
#    lab      the lab crate's tests (a plain HTTPS/SSH client against the simulated homelab);
#    grpc     the provider over gRPC and its clients against the lab (no Pulumi CLI);
#    cli      the real `pulumi` CLI and the SDK programs end to end;
#    oracles  external real parts as judges: Talos machinery (Go), talosctl, OpenSSL and Go TLS.
#    Every test file belongs to exactly one group; an unlisted file fails the run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Test files (without .rs) per group; tests/ belong to the root crate, lab/tests/ to the lab.
GROUP_lab="lab:access lab:apidoc_compact lab:cli lab:cluster_tasks_faults lab:pools_ha lab:pve_api lab:qemu lab:returns_shapes lab:schema_conformance lab:ssh_shell lab:ssh_sftp lab:storage lab:storage_kinds lab:talos_node"
GROUP_grpc="root:image_factory root:lifecycle root:partial_failure root:proto_contract root:proxmox_client root:ssh_client root:storage_file root:talos_apply root:talos_health root:talos_proto_contract"
GROUP_cli="root:pulumi_cli root:pulumi_faults root:pulumi_files root:pulumi_homelab root:pulumi_sdk_programs root:pulumi_talos_apply root:pulumi_talos_cluster root:pulumi_talos_iso root:pulumi_vms root:pulumi_vms_more"
GROUP_oracles="root:talos_config root:talos_roundtrip lab:talosctl_conformance lab:client_fidelity"
GROUPS_ALL="unit lab grpc cli oracles"

group_files() { local v="GROUP_$1"; echo "${!v:-}"; }

check_groups() {
  local f name listed
  listed=" $GROUP_lab $GROUP_grpc $GROUP_cli $GROUP_oracles "
  for f in tests/*.rs lab/tests/*.rs; do
    name="$(basename "$f" .rs)"
    case "$f" in lab/*) name="lab:$name" ;; *) name="root:$name" ;; esac
    if [[ "$listed" != *" $name "* ]]; then
      echo "tools/test.sh: $f is in no test group: add it to one in tools/test.sh" >&2
      exit 1
    fi
  done
}

GROUP=""
case "${1:-}" in
  "") ;;
  --group)
    GROUP="${2:?--group needs one of: $GROUPS_ALL}"
    [[ " $GROUPS_ALL " == *" $GROUP "* ]] || { echo "unknown group '$GROUP' (one of: $GROUPS_ALL)" >&2; exit 2; } ;;
  --list-groups)
    check_groups
    for g in $GROUPS_ALL; do
      if [ "$g" = unit ]; then echo "unit: --lib and --bins of every crate"; else echo "$g: $(group_files "$g")"; fi
    done
    exit 0 ;;
  *) echo "usage: tools/test.sh [--group $(echo $GROUPS_ALL | tr ' ' '|')] | --list-groups" >&2; exit 2 ;;
esac
check_groups

T0=$SECONDS
STEP_NAME=""
STEP_START=$SECONDS
step_done() {
  if [ -n "$STEP_NAME" ]; then
    printf '==> %s: %ds\n' "$STEP_NAME" "$((SECONDS - STEP_START))" >&2
  fi
}
step() {
  step_done
  STEP_NAME="$*"
  STEP_START=$SECONDS
  printf '\n==> %s\n' "$*" >&2
}
trap 'step_done; printf "==> total: %ds\n" "$((SECONDS - T0))" >&2' EXIT

step "OpenSSH server and client (snippets travel over SFTP; the lab's nodes run real sshd)"
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

if [ -z "$GROUP" ]; then
  step "cargo fmt --check"
  cargo fmt --all --check

  step "cargo clippy --all-targets -D warnings"
  cargo clippy --workspace --all-targets -- -D warnings
fi

step "SDKs: generate and compile; program dependencies"
eval "$(tools/sdk-programs-env.sh)"

# cargo test arguments for one group's files.
test_args() {
  local g="$1" item
  for item in $(group_files "$g"); do
    case "$item" in
      lab:*) printf -- '-p proxmox-talos-lab --test %s\n' "${item#lab:}" ;;
      root:*) printf -- '-p proxmox-talos --test %s\n' "${item#root:}" ;;
    esac
  done
}

# Runs one group's tests to the end (no fail-fast) and returns non-zero if any failed.
run_group() {
  local g="$1" pkg rc=0 args
  step "Rust tests: $g"
  if [ "$g" = unit ]; then
    cargo test --no-fail-fast --workspace --lib --bins || rc=1
    return "$rc"
  fi
  # One cargo run per crate, every file of the group at once.
  for pkg in proxmox-talos-lab proxmox-talos; do
    args=()
    while read -r p name t file; do
      [ "$name" = "$pkg" ] && args+=(--test "$file")
    done < <(test_args "$g")
    if [ "${#args[@]}" -gt 0 ]; then
      cargo test --no-fail-fast -p "$pkg" "${args[@]}" || rc=1
    fi
  done
  return "$rc"
}

step "Rust build (all targets)"
cargo build --workspace --all-targets

FAILED=()
if [ -n "$GROUP" ]; then
  run_group "$GROUP" || FAILED+=("$GROUP")
else
  # Every group runs, whatever failed before it; the run fails at the end.
  for g in $GROUPS_ALL; do run_group "$g" || FAILED+=("$g"); done
  step "Rust tests: doc tests"
  cargo test --no-fail-fast --workspace --doc || FAILED+=(doc)
fi
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "tools/test.sh: tests failed in: ${FAILED[*]}" >&2
  exit 1
fi

echo "tools/test.sh: all tests passed" >&2
