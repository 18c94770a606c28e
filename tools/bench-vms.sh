#!/usr/bin/env bash
# Bench: an N-VM stack (default 100) on the lab with zero task latency, through
# the real `pulumi` CLI and the release plugin; prints the wall time of
# `pulumi up` (and of `destroy`), the plugin's CPU time and its peak RSS.
# Targets for 100 VMs: provider CPU <= 2 s, peak RSS <= 60 MB.
#
#   tools/bench-vms.sh [--vms N] [--kind clone|scratch] [--parallel P] [--no-build]
#   tools/bench-vms.sh --talos-cluster [--parallel P] [--no-build]
#
# --rollout adds, after that up, the in-place upgrade of its seven nodes (talosVersion
# v1.12.4 -> v1.12.5), measured on its own.
# --talos-cluster benches sdk-examples/yaml-talos-cluster instead (the seed design:
# 2 schematics and images, 7 VMs one with the GPU, secrets, 7 config applies,
# bootstrap, health, kubeconfig; as root@pam, which raw PCI passthrough needs),
# with Talos boots as instant as the VMs'.
#
# The lab runs as `proxmox-talos-lab up` (its own process) with a config whose
# task, boot and agent times are 0 (the lock wait stays 10 s: it is how long a
# call may wait for a busy VM, not a delay). Each VM is a full clone of
# template 90001 (`--kind clone`) or a small VM from scratch with a blank disk
# (`--kind scratch`; with `stopOnDestroy`, as a blank disk boots no OS that
# would answer an ACPI shutdown), with an allocated VMID and no guest-agent wait. The
# plugin reports its own usage at exit through PROXMOX_TALOS_RUSAGE_FILE
# (provider/rusage.rs: utime+stime from /proc/self/stat at 100 ticks/s,
# VmHWM from /proc/self/status). Pulumi runs up to --parallel resource
# operations at once (its default is 8; 0 here means that default).
#
# Environment: CARGO_TARGET_DIR (default ./target), PULUMI (default: the
# pinned CLI from tools/install-pulumi.sh, else `pulumi` on PATH).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VMS=100
KIND=clone
PARALLEL=0
BUILD=1
TALOS=0
ROLLOUT=0
while [ $# -gt 0 ]; do
  case "$1" in
    --talos-cluster) TALOS=1; shift ;;
    --rollout) TALOS=1; ROLLOUT=1; shift ;;
    --vms) VMS="$2"; shift 2 ;;
    --kind) KIND="$2"; shift 2 ;;
    --parallel) PARALLEL="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "usage: tools/bench-vms.sh [--vms N] [--kind clone|scratch] [--talos-cluster] [--rollout] [--parallel P] [--no-build]" >&2; exit 2 ;;
  esac
done
case "$KIND" in clone|scratch) ;; *) echo "--kind: clone or scratch" >&2; exit 2 ;; esac

if [ "$BUILD" = 1 ]; then
  cargo build --release -p proxmox-talos --bin pulumi-resource-proxmox-talos >&2
  cargo build --release -p proxmox-talos-lab --bin proxmox-talos-lab >&2
fi
PLUGIN_DIR="$TARGET/release"
LAB="$TARGET/release/proxmox-talos-lab"
[ -x "$PLUGIN_DIR/pulumi-resource-proxmox-talos" ] && [ -x "$LAB" ] || { echo "build first (or drop --no-build)" >&2; exit 1; }
if [ -z "${PULUMI:-}" ]; then
  if command -v pulumi >/dev/null; then PULUMI=pulumi; else PULUMI="$(tools/install-pulumi.sh | tail -n1)/pulumi"; fi
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-vms.XXXXXX")"
cleanup() {
  "$LAB" down --state "$WORK/lab" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/lab.yaml" <<'EOF'
nodes:
  - name: pve
    address: 127.0.0.1
    pciDevices:
      - { id: "0000:28:00.0", vendor: "0x10de", device: "0x2684", vendorName: NVIDIA Corporation, deviceName: "AD102 [GeForce RTX 4090]", iommuGroup: 28 }
storages:
  - { id: local, type: dir, content: [iso, vztmpl, snippets, import, backup], capacityGib: 100 }
  - { id: local-zfs, type: zfspool, content: [images, rootdir], capacityGib: 100000 }
bridges:
  - { name: vmbr0, vlanAware: true, subnet: 127.42.0.0, gateway: 127.42.0.1 }
templates:
  - { vmid: 90001, name: pkr-ubuntu-noble-1, node: pve, storage: local-zfs, diskGib: 20 }
timing: { taskMs: 0, bootMs: 0, agentMs: 0, lockWaitMs: 10000 }
EOF
ENV_FILE="$("$LAB" up --config "$WORK/lab.yaml" --state "$WORK/lab" --listen 127.0.0.1:0 --factory-listen 127.0.0.1:0 2>/dev/null | tail -n1)"
# shellcheck disable=SC1090
source "$ENV_FILE"
LAB_TOKEN="$PROXMOX_VE_API_TOKEN" # for the lab's request log
if [ "$TALOS" = 1 ]; then
  unset PROXMOX_VE_API_TOKEN # raw PCI passthrough: root@pam with its password
else
  unset PROXMOX_VE_USERNAME PROXMOX_VE_PASSWORD # an API token, as a CI would use
fi

mkdir -p "$WORK/program" "$WORK/state" "$WORK/home" "$WORK/rusage-up" "$WORK/rusage-rollout" "$WORK/rusage-destroy"
if [ "$TALOS" = 1 ]; then
  sed "s|path: ../../target/debug|path: $PLUGIN_DIR|" sdk-examples/yaml-talos-cluster/Pulumi.yaml >"$WORK/program/Pulumi.yaml"
else
{
  cat <<EOF
name: bench-vms
runtime: yaml
plugins:
  providers:
    - name: proxmox-talos
      path: $PLUGIN_DIR
resources:
EOF
  for i in $(seq 1 "$VMS"); do
    if [ "$KIND" = clone ]; then
      cat <<EOF
  vm$i:
    type: proxmox-talos:vm:VirtualMachine
    properties:
      nodeName: pve
      name: bench-$i
      clone:
        vmId: 90001
      memory:
        dedicated: 1024
EOF
    else
      cat <<EOF
  vm$i:
    type: proxmox-talos:vm:VirtualMachine
    properties:
      nodeName: pve
      name: bench-$i
      stopOnDestroy: true
      memory:
        dedicated: 512
      disks:
        - interface: scsi0
          datastoreId: local-zfs
          size: 1
      networkDevices:
        - bridge: vmbr0
EOF
    fi
  done
} >"$WORK/program/Pulumi.yaml"
fi

export PULUMI_HOME="$WORK/home" PULUMI_BACKEND_URL="file://$WORK/state" PULUMI_CONFIG_PASSPHRASE=bench
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
cd "$WORK/program"
"$PULUMI" stack init bench --non-interactive >/dev/null 2>&1
[ "$TALOS" = 1 ] && "$PULUMI" config set factoryUrl "$TALOS_IMAGE_FACTORY_URL" --non-interactive >/dev/null
PAR=()
[ "$PARALLEL" != 0 ] && PAR=(--parallel "$PARALLEL")

# Sums cpuSeconds and takes the largest peakRssKib of the plugin processes of one command.
usage() {
  python3 - "$1" <<'EOF'
import json, pathlib, sys
files = sorted(pathlib.Path(sys.argv[1]).glob("rusage-*.json"))
runs = [json.loads(f.read_text()) for f in files]
if not runs:
    print("no rusage file: the plugin did not exit cleanly")
    sys.exit(0)
cpu = sum(r["cpuSeconds"] for r in runs)
user = sum(r["utimeSeconds"] for r in runs)
system = sum(r["stimeSeconds"] for r in runs)
rss = max(r["peakRssKib"] for r in runs) / 1024
print(f"provider CPU {cpu:.2f} s (user {user:.2f}, system {system:.2f}), peak RSS {rss:.1f} MiB, "
      f"{len(runs)} plugin process(es)")
EOF
}

now() { date +%s.%N; }
t0="$(now)"
PROXMOX_TALOS_RUSAGE_FILE="$WORK/rusage-up" "$PULUMI" up --yes --skip-preview --non-interactive "${PAR[@]}" >"$WORK/up.log" 2>&1 || {
  tail -n 40 "$WORK/up.log" >&2
  echo "pulumi up failed" >&2
  exit 1
}
t1="$(now)"
t_up="$t1"
if [ "$ROLLOUT" = 1 ]; then
  # The seven nodes from v1.12.4 to v1.12.5 in place (ADR 0012): control planes one at a time.
  "$PULUMI" config set talosVersion v1.12.5 --non-interactive >/dev/null
  PROXMOX_TALOS_RUSAGE_FILE="$WORK/rusage-rollout" "$PULUMI" up --yes --skip-preview --non-interactive "${PAR[@]}" >"$WORK/rollout.log" 2>&1 || {
    tail -n 40 "$WORK/rollout.log" >&2
    echo "pulumi up (rollout) failed" >&2
    exit 1
  }
  t_rollout="$(now)"
  rollout_wall="$(echo "$t_rollout - $t1" | bc)"
  t1="$t_rollout"
fi
created="$("$LAB" inventory --state "$WORK/lab" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["vms"]))')"
PROXMOX_TALOS_RUSAGE_FILE="$WORK/rusage-destroy" "$PULUMI" destroy --yes --skip-preview --non-interactive "${PAR[@]}" >"$WORK/destroy.log" 2>&1 || {
  tail -n 40 "$WORK/destroy.log" >&2
  echo "pulumi destroy failed" >&2
  exit 1
}
t2="$(now)"
left="$("$LAB" inventory --state "$WORK/lab" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["vms"]))')"
requests="$(curl -s --cacert "$PROXMOX_VE_CA_CERT" -H "Authorization: PVEAPIToken=$LAB_TOKEN" \
  "${PROXMOX_VE_ENDPOINT%/}/lab/requests" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["total"])' || echo '?')"

if [ "$TALOS" = 1 ]; then what="talos-cluster (7 VMs, 22 resources)"; else what="$VMS VMs ($KIND)"; fi
printf '%s, pulumi parallelism %s\n' "$what" "$([ "$PARALLEL" = 0 ] && echo default || echo "$PARALLEL")"
printf 'pulumi up:      %6.1f s wall, %s VMs in the lab; %s\n' "$(echo "$t_up - $t0" | bc)" "$created" "$(usage "$WORK/rusage-up")"
[ "$ROLLOUT" = 1 ] && printf 'pulumi up (rollout v1.12.4 -> v1.12.5, 7 nodes): %6.1f s wall; %s\n' "$rollout_wall" "$(usage "$WORK/rusage-rollout")"
printf 'pulumi destroy: %6.1f s wall, %s VMs left;  %s\n' "$(echo "$t2 - $t1" | bc)" "$left" "$(usage "$WORK/rusage-destroy")"
printf 'lab API requests (up + destroy): %s\n' "$requests"
