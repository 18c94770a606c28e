#!/usr/bin/env bash
# Install the pinned Pulumi toolchain (CLI v3.259.0, YAML language host, and our
# pulumi-sdkgen) from Go modules, into a per-version cache directory.
#
#   PATH="$(tools/install-pulumi.sh | tail -1):$PATH"
#
# Installs into ${PROXMOX_TALOS_CACHE:-$HOME/.cache/proxmox-talos}/pulumi-v3.259.0/bin:
#   pulumi               built from tools/pulumi-toolchain/cli (pkg/v3 v3.259.0), unless a
#                        pulumi >= 3.259.0 is already on PATH (then that one is used)
#   pulumi-language-yaml built from tools/pulumi-toolchain/yaml (pulumi-yaml release in its
#                        go.mod), unless a pulumi-language-yaml is already on PATH
#   pulumi-sdkgen        tools/pulumi-toolchain/cli/sdkgen (Pulumi's codegen libraries; stands in
#                        for `pulumi package gen-sdk`, whose python/nodejs/go language hosts
#                        cannot be built: their modules are not served by the Go proxy)
#
# Each binary has a stamp file (.NAME.stamp) holding its version and a hash of the
# wrapper module's go.mod/go.sum (and sources); a binary whose stamp matches is not
# rebuilt. Progress goes to stderr; the last stdout line is the bin directory.
#
# Environment:
#   PROXMOX_TALOS_CACHE          cache root (default ~/.cache/proxmox-talos)
#   PROXMOX_TALOS_BUILD_PULUMI=1 build the CLI even if a suitable pulumi is on PATH
#
# Needs only Go (the wrappers say `go 1.25.11`; an older local Go fetches that
# toolchain from the module proxy via GOTOOLCHAIN=auto). First build of the CLI
# takes several minutes; modules and the build cache are reused afterwards.
set -euo pipefail

PULUMI_VERSION=3.259.0
INSTALLER=install-pulumi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLCHAIN="$ROOT/tools/pulumi-toolchain"
CACHE="${PROXMOX_TALOS_CACHE:-$HOME/.cache/proxmox-talos}"
PREFIX="$CACHE/pulumi-v$PULUMI_VERSION"
# shellcheck source=lib/install.sh
source "$ROOT/tools/lib/install.sh"

CLI_MOD="$TOOLCHAIN/cli"
YAML_MOD="$TOOLCHAIN/yaml"
cli_hash="$(hash_files "$CLI_MOD/go.mod" "$CLI_MOD/go.sum")"
yaml_hash="$(hash_files "$YAML_MOD/go.mod" "$YAML_MOD/go.sum")"

# --- pulumi CLI -------------------------------------------------------------
ambient_cli=""
if [[ "${PROXMOX_TALOS_BUILD_PULUMI:-}" != 1 ]] && ambient_cli="$(find_ambient pulumi)"; then
    ambient_ver="$(PULUMI_SKIP_UPDATE_CHECK=true "$ambient_cli" version 2>/dev/null | tail -n1 || true)"
    if [[ -n "$ambient_ver" ]] && ver_ge "$ambient_ver" "$PULUMI_VERSION"; then
        log "pulumi: using $ambient_cli ($ambient_ver) from PATH"
    else
        log "pulumi: ignoring $ambient_cli (version '${ambient_ver:-unknown}' < $PULUMI_VERSION)"
        ambient_cli=""
    fi
else
    ambient_cli=""
fi
if [[ -z "$ambient_cli" ]]; then
    build pulumi "v$PULUMI_VERSION $cli_hash" "$CLI_MOD" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
        -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION"
fi

# --- pulumi-language-yaml ---------------------------------------------------
if ambient_yaml="$(find_ambient pulumi-language-yaml)"; then
    log "pulumi-language-yaml: using $ambient_yaml from PATH"
else
    yaml_ver="$(cd "$YAML_MOD" && go list -mod=readonly -m -f '{{.Version}}' github.com/pulumi/pulumi-yaml)"
    build pulumi-language-yaml "$yaml_ver $yaml_hash" "$YAML_MOD" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml \
        -ldflags "-X github.com/pulumi/pulumi-yaml/pkg/version.Version=$yaml_ver"
fi

# --- pulumi-sdkgen ----------------------------------------------------------
sdkgen_hash="$(hash_files "$CLI_MOD/go.mod" "$CLI_MOD/go.sum" "$CLI_MOD"/sdkgen/*.go)"
build pulumi-sdkgen "v$PULUMI_VERSION $sdkgen_hash" "$CLI_MOD" ./sdkgen

echo "$BIN"
