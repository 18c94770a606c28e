#!/usr/bin/env bash
# Prepare what the Go, TypeScript and Python programs in sdk-examples/ need to run through the
# Automation API runners (tools/run-program-go, tools/run-program.py, tools/run-program.js):
#
#   eval "$(tools/sdk-programs-env.sh)"   # PROXMOX_TALOS_PYTHON, _NODE_PROGRAMS, _GO_RUNNER, _PULUMI_BIN; PATH
#
# 1. the pinned Pulumi toolchain (tools/install-pulumi.sh) and Python venv (tools/python-env.sh);
# 2. the SDKs in target/sdk/ generated from schema.json and compiled (tools/check-sdks.sh), only
#    when schema.json, the generator or check-sdks.sh changed since the last run (stamp target/sdk/.programs-stamp);
#    PROXMOX_TALOS_REGENERATE_SDKS=1 forces it; the compiled nodejs SDK (target/sdk/nodejs/bin)
#    gets the package.json npm installs it by;
# 3. for each sdk-examples/*/package.json, its dependencies installed into
#    ${PROXMOX_TALOS_CACHE:-~/.cache/proxmox-talos}/node-programs/<package name>-<checkout>/node_modules
#    (<checkout>: the first 8 hex digits of the SHA-256 of this checkout's path),
#    `file:` paths made absolute and local packages copied (--install-links, so the program and
#    the SDK share one @pulumi/pulumi); reinstalled only when the package.json or the SDK changed.
#    tools/run-program.js links a program's node_modules there.
# 4. the Go runner built into target/run-program-go (PROXMOX_TALOS_GO_RUNNER), and each
#    sdk-examples/*/ with a go.mod built by it (`--build-only`: the program's package plus the
#    runner's inline file, in ${PROXMOX_TALOS_CACHE:-~/.cache/proxmox-talos}/go-programs/). Both
#    are `go build`s, which the Go build cache makes no-ops when nothing changed; the first
#    build of a program compiles the Pulumi Go SDK and its Automation API (minutes).
# Python programs need nothing more: the venv has the Pulumi SDK, and tools/run-program.py puts
# target/sdk/python first on sys.path.
#
# Progress goes to stderr; stdout is the `export` lines.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${PROXMOX_TALOS_CACHE:-$HOME/.cache/proxmox-talos}"
NODE_PROGRAMS="$CACHE/node-programs"
SDK="$ROOT/target/sdk"
# Node environments are per checkout (each has its own SDK): tools/run-program.js computes the same.
CHECKOUT="$(printf '%s' "$ROOT" | sha256sum | cut -c1-8)"

log() { printf 'sdk-programs-env: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

BIN="$("$ROOT/tools/install-pulumi.sh" | tail -n1)"
PY="$("$ROOT/tools/python-env.sh" | tail -n1)"

# --- SDKs ---------------------------------------------------------------------
mkdir -p "$SDK"
exec 8>"$SDK/.programs-lock"
flock 8
stamp="$(cat "$ROOT/schema.json" "$ROOT/tools/check-sdks.sh" "$BIN/.pulumi-sdkgen.stamp" 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [[ "${PROXMOX_TALOS_REGENERATE_SDKS:-}" != 1 && -f "$SDK/.programs-stamp" &&
    "$(cat "$SDK/.programs-stamp")" == "$stamp" &&
    -d "$SDK/python" && -f "$SDK/nodejs/bin/package.json" ]]; then
    log "SDKs up to date in $SDK"
else
    log "generating and compiling the SDKs (tools/check-sdks.sh)"
    rm -f "$SDK/.programs-stamp"
    "$ROOT/tools/check-sdks.sh" "$ROOT/schema.json" >&2 || die "tools/check-sdks.sh failed"
    # npm installs a package from the directory holding its package.json and entry point: the
    # compiled bin/ (as Pulumi's own SDK builds publish it), without build scripts.
    "$PY" - "$SDK/nodejs/package.json" "$SDK/nodejs/bin/package.json" <<'EOF'
import json, sys
package = json.load(open(sys.argv[1]))
for key in ("scripts", "devDependencies"):
    package.pop(key, None)
package["main"] = "index.js"
package["types"] = "index.d.ts"
json.dump(package, open(sys.argv[2], "w"), indent=4)
EOF
    echo "$stamp" >"$SDK/.programs-stamp"
fi
flock -u 8

# --- node programs ------------------------------------------------------------
sdk_hash="$(cd "$SDK/nodejs/bin" && find . -type f \( -name '*.js' -o -name package.json \) | sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
for manifest in "$ROOT"/sdk-examples/*/package.json; do
    [[ -f "$manifest" ]] || continue
    program="$(dirname "$manifest")"
    name="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["name"])' "$manifest")"
    env_dir="$NODE_PROGRAMS/$name-$CHECKOUT"
    mkdir -p "$env_dir"
    exec 9>"$env_dir/.lock"
    flock 9
    # The program's package.json with `file:` dependencies made absolute (relative to the program).
    "$PY" - "$manifest" "$program" >"$env_dir/package.json.new" <<'EOF'
import json, os, sys
package = json.load(open(sys.argv[1]))
for section in ("dependencies", "devDependencies"):
    for dep, spec in package.get(section, {}).items():
        if spec.startswith("file:"):
            package[section][dep] = "file:" + os.path.normpath(os.path.join(sys.argv[2], spec[5:]))
package["name"] += "-deps"
print(json.dumps(package, indent=4))
EOF
    want="$(cat "$env_dir/package.json.new" | sha256sum | cut -d' ' -f1) $sdk_hash"
    if [[ -d "$env_dir/node_modules" && -f "$env_dir/.stamp" && "$(cat "$env_dir/.stamp")" == "$want" ]]; then
        log "$name: node_modules up to date ($env_dir)"
        rm -f "$env_dir/package.json.new"
    else
        log "$name: npm install into $env_dir"
        mv "$env_dir/package.json.new" "$env_dir/package.json"
        rm -f "$env_dir/.stamp" "$env_dir/package-lock.json"
        (cd "$env_dir" && npm install --install-links --no-audit --no-fund --loglevel=error >&2) ||
            die "$name: npm install failed"
        echo "$want" >"$env_dir/.stamp"
    fi
    flock -u 9
done

# --- go programs --------------------------------------------------------------
GO_RUNNER="$ROOT/target/run-program-go"
log "go: building the runner ($GO_RUNNER)"
go build -C "$ROOT/tools/run-program-go" -o "$GO_RUNNER" . >&2 || die "building tools/run-program-go failed"
for modfile in "$ROOT"/sdk-examples/*/go.mod; do
    [[ -f "$modfile" ]] || continue
    program="$(dirname "$modfile")"
    log "go: building $(basename "$program")"
    "$GO_RUNNER" --build-only "$program" >&2 || die "$(basename "$program"): the Go program does not build"
done

printf 'export PROXMOX_TALOS_PYTHON=%q\n' "$PY"
printf 'export PROXMOX_TALOS_GO_RUNNER=%q\n' "$GO_RUNNER"
printf 'export PROXMOX_TALOS_NODE_PROGRAMS=%q\n' "$NODE_PROGRAMS"
printf 'export PROXMOX_TALOS_PULUMI_BIN=%q\n' "$BIN"
printf 'export PATH=%q:"$PATH"\n' "$BIN"
