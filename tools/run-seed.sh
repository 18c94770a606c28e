#!/usr/bin/env bash
# The main job: build what is needed, start the lab, and run the seed workflow
# with `pulumi up` against it.
#
#   tools/run-seed.sh            # up (again: updates; nothing changes if nothing changed)
#   tools/run-seed.sh destroy    # tear the stack down and stop the lab
#
# The seed program is sdk-examples/yaml-talos-cluster: Image Factory schematics for
# the base and the GPU image, both images downloaded into Proxmox storage, 3
# control-plane and 4 worker VMs (worker4 with the GPU passed through, so the
# provider logs in as root@pam), machine secrets, the per-node Talos
# configurations applied through the guest-agent addresses, etcd bootstrapped, a
# wait for cluster health, and the kubeconfig and talosconfig, which this script
# writes to $SEED/kubeconfig and $SEED/talosconfig (mode 0600; destroy removes them).
# It runs against the lab (`proxmox-talos-lab up`, state in
# ~/.cache/proxmox-talos/lab), whose network the program's address defaults are
# for; point it at real hardware by sourcing your own PROXMOX_VE_* variables
# instead (set PROXMOX_TALOS_SEED_NO_LAB=1) and setting the addresses in the
# stack's config (vip, controllerIps, workerIps, gateway, nameservers).
# Pulumi state lives in ${PROXMOX_TALOS_CACHE:-$HOME/.cache/proxmox-talos}/seed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${PROXMOX_TALOS_CACHE:-$HOME/.cache/proxmox-talos}"
SEED="$CACHE/seed"
ACTION="${1:-up}"

export PATH="$(tools/install-pulumi.sh | tail -n1):$PATH"
cargo build --bin pulumi-resource-proxmox-talos >&2
cargo build -p proxmox-talos-lab --bin proxmox-talos-lab >&2
LAB="$ROOT/target/debug/proxmox-talos-lab"

if [[ -z "${PROXMOX_TALOS_SEED_NO_LAB:-}" ]]; then
  tools/ensure-sshd.sh >&2 || echo "run-seed: no sshd; the lab runs without SSH" >&2
  ENV_FILE="$("$LAB" up)"
  # shellcheck disable=SC1090
  . "$ENV_FILE"
  # Raw PCI passthrough (the GPU worker) needs root@pam with a password, not a token.
  unset PROXMOX_VE_API_TOKEN
fi

export PULUMI_HOME="$SEED/home"
export PULUMI_BACKEND_URL="file://$SEED/state"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-proxmox-talos-seed}"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
mkdir -p "$SEED/state" "$SEED/home"

cd sdk-examples/yaml-talos-cluster
pulumi stack select --create seed --non-interactive >/dev/null
if [[ -n "${TALOS_IMAGE_FACTORY_URL:-}" ]]; then
  pulumi config set factoryUrl "$TALOS_IMAGE_FACTORY_URL" --non-interactive
fi
case "$ACTION" in
  up)
    pulumi up --yes --non-interactive
    pulumi stack output
    for credentials in kubeconfig talosconfig; do
      (umask 077 && pulumi stack output "$credentials" --show-secrets > "$SEED/$credentials.tmp")
      mv "$SEED/$credentials.tmp" "$SEED/$credentials"
    done
    echo "kubeconfig:  $SEED/kubeconfig   (kubectl --kubeconfig $SEED/kubeconfig ...)" >&2
    echo "talosconfig: $SEED/talosconfig  (talosctl --talosconfig $SEED/talosconfig ...)" >&2
    if [[ -z "${PROXMOX_TALOS_SEED_NO_LAB:-}" ]]; then
      echo "lab: source $ENV_FILE; inventory: $LAB inventory" >&2
    fi
    ;;
  destroy)
    pulumi destroy --yes --non-interactive
    rm -f "$SEED/kubeconfig" "$SEED/talosconfig"
    if [[ -z "${PROXMOX_TALOS_SEED_NO_LAB:-}" ]]; then
      "$LAB" down
    fi
    ;;
  *)
    echo "usage: tools/run-seed.sh [up|destroy]" >&2
    exit 2
    ;;
esac
