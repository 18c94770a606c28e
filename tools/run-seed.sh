#!/usr/bin/env bash
# The main job: build what is needed and run the seed workflow with `pulumi up`.
#
#   tools/run-seed.sh
#
# Today the seed is sdk-examples/yaml-machine-secrets (Talos machine secrets and
# Image Factory URLs, which need no Proxmox). When the lab lands, this script starts
# it and runs the talos-cluster program against it instead.
# State lives in ${PROXMOX_TALOS_CACHE:-$HOME/.cache/proxmox-talos}/seed (a local
# file backend); run it again to update, or with `destroy` to tear down.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CACHE="${PROXMOX_TALOS_CACHE:-$HOME/.cache/proxmox-talos}"
SEED="$CACHE/seed"
ACTION="${1:-up}"

export PATH="$(tools/install-pulumi.sh | tail -n1):$PATH"
cargo build --bin pulumi-resource-proxmox-talos >&2

export PULUMI_HOME="$SEED/home"
export PULUMI_BACKEND_URL="file://$SEED/state"
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-proxmox-talos-seed}"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
mkdir -p "$SEED/state" "$SEED/home"

cd sdk-examples/yaml-machine-secrets
pulumi stack select --create seed --non-interactive >/dev/null
case "$ACTION" in
  up)
    pulumi up --yes --non-interactive
    pulumi stack output
    echo "state: $SEED/state; see secrets with: PULUMI_BACKEND_URL=$PULUMI_BACKEND_URL pulumi stack output --show-secrets" >&2
    ;;
  destroy)
    pulumi destroy --yes --non-interactive
    ;;
  *)
    echo "usage: tools/run-seed.sh [up|destroy]" >&2
    exit 2
    ;;
esac
