#!/usr/bin/env bash
# Create or update the project's Python venv with the pinned Pulumi SDK and pytest.
#
#   PY="$(tools/python-env.sh | tail -1)"
#
# Venv: ${PROXMOX_TALOS_CACHE:-$HOME/.cache/proxmox-talos}/venv. Idempotent: when the
# pinned packages are already installed nothing is downloaded. Progress goes to
# stderr; the last stdout line is the venv's python.
set -euo pipefail

PULUMI_VERSION=3.259.0
CACHE="${PROXMOX_TALOS_CACHE:-$HOME/.cache/proxmox-talos}"
VENV="$CACHE/venv"
PY="$VENV/bin/python"

log() { printf 'python-env: %s\n' "$*" >&2; }

mkdir -p "$CACHE"
if [[ ! -x "$PY" ]] || ! "$PY" -c 'import sys' >/dev/null 2>&1; then
    log "creating venv at $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2
fi

# Fast path: pinned versions already present (pip check also guards against
# a half-finished earlier install).
if "$PY" - "$PULUMI_VERSION" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import version
assert version("pulumi") == sys.argv[1]
for dist in ("pytest", "grpcio", "protobuf"):
    version(dist)
EOF
then
    log "pulumi==$PULUMI_VERSION and pytest already installed"
else
    log "installing pulumi==$PULUMI_VERSION pytest"
    "$PY" -m pip install --disable-pip-version-check --quiet \
        "pulumi==$PULUMI_VERSION" pytest >&2
    "$PY" -m pip check >&2
fi

echo "$PY"
