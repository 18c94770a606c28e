#!/usr/bin/env bash
# Generate the nodejs, python and go SDKs from a schema and prove each compiles.
#
#   tools/check-sdks.sh path/to/schema.json
#
# First `pulumi schema check`. SDKs go to target/sdk/<language>/ (regenerated each run). Then:
#   nodejs  npm install (with @pulumi/pulumi@3.259.0) + tsc
#   python  pip install of target/sdk/python into the project venv (tools/python-env.sh)
#           + import of the package and its modules
#   go      throwaway module target/sdk/go-check requiring the SDK through a replace
#           directive and github.com/pulumi/pulumi/sdk/v3 v3.259.0, then go build ./...
# Exits non-zero on the first failure. Environment:
#   SDK_VERSION   version stamped into the SDKs (default: 0.1.0)
#   PROXMOX_TALOS_CACHE   as for tools/install-pulumi.sh and tools/python-env.sh
set -euo pipefail

PULUMI_VERSION=3.259.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { printf '\ncheck-sdks [%ss]: %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'check-sdks: FAILED: %s\n' "$*" >&2; exit 1; }

[[ $# -eq 1 ]] || { echo "usage: $0 SCHEMA.json" >&2; exit 2; }
SCHEMA="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
[[ -f "$SCHEMA" ]] || die "no such schema: $1"
SDK_VERSION="${SDK_VERSION:-0.1.0}"
OUT="$ROOT/target/sdk"
start=$SECONDS

BIN="$("$ROOT/tools/install-pulumi.sh" | tail -n1)"
PY="$("$ROOT/tools/python-env.sh" | tail -n1)"

log "pulumi schema check (metaschema + strict binding; sdk generation, like gen-sdk, allows dangling refs)"
PATH="$BIN:$PATH" PULUMI_SKIP_UPDATE_CHECK=true pulumi schema check "$SCHEMA" >&2 || die "pulumi schema check"

log "generating SDKs from $SCHEMA into $OUT (version $SDK_VERSION)"
mkdir -p "$OUT"
# Generation empties target/sdk/<language>; keep node_modules across runs so npm
# install is a no-op when nothing changed.
NM_STASH="$OUT/.nodejs-node_modules"
if [[ -d "$OUT/nodejs/node_modules" ]]; then
    rm -rf "$NM_STASH"
    mv "$OUT/nodejs/node_modules" "$NM_STASH"
fi
"$BIN/pulumi-sdkgen" --schema "$SCHEMA" --out "$OUT" --language all --version "$SDK_VERSION" \
    || die "sdk generation"
if [[ -d "$NM_STASH" ]]; then
    mv "$NM_STASH" "$OUT/nodejs/node_modules"
fi

# --- nodejs -------------------------------------------------------------------
log "nodejs: npm install + tsc"
(
    cd "$OUT/nodejs"
    # --no-save keeps the generated package.json as generated; the explicit
    # @pulumi/pulumi pins the SDK to the version we test against.
    npm install --no-audit --no-fund --no-save --loglevel=error \
        "@pulumi/pulumi@$PULUMI_VERSION" >&2
    if npm pkg get scripts.build | grep -q tsc; then
        npm run --silent build >&2
    else
        npx --no-install tsc >&2
    fi
) || die "nodejs SDK does not build"

# --- python -------------------------------------------------------------------
log "python: pip install + import"
# The import name is the package directory holding pulumi-plugin.json.
PYMOD="$(cd "$OUT/python" && ls -d ./*/pulumi-plugin.json 2>/dev/null | head -n1 | cut -d/ -f2)"
[[ -n "$PYMOD" ]] || die "python SDK: no package directory found"
# The distribution name: [project].name of pyproject.toml (setup.py SDKs use the package name).
PYPKG="$(cd "$OUT/python" && "$PY" - "$PYMOD" <<'EOF'
import pathlib, sys, tomllib
p = pathlib.Path("pyproject.toml")
print(tomllib.loads(p.read_text())["project"]["name"] if p.exists() else sys.argv[1])
EOF
)" || die "python SDK: cannot read project name"
(
    "$PY" -m pip uninstall --disable-pip-version-check -q -y "$PYPKG" >/dev/null 2>&1 || true
    "$PY" -m pip install --disable-pip-version-check -q "$OUT/python" >&2
    "$PY" -m pip check >&2
    # Import the package and every module in it (the SDK lazy-loads submodules).
    (cd / && "$PY" - "$PYMOD" <<'EOF'
import importlib, pkgutil, sys
name = sys.argv[1]
pkg = importlib.import_module(name)
mods = [name]
for info in pkgutil.walk_packages(pkg.__path__, name + "."):
    importlib.import_module(info.name)
    mods.append(info.name)
print("imported:", " ".join(mods), file=sys.stderr)
EOF
    )
) || die "python SDK does not install/import"

# --- go -----------------------------------------------------------------------
log "go: go build of a module using the SDK"
GOSDK="$OUT/go"
modfile="$(find "$GOSDK" -name go.mod -not -path '*/node_modules/*' | head -n1)"
[[ -n "$modfile" ]] || die "go SDK: no go.mod generated (the schema needs \"meta\": {\"supportPack\": true})"
gomoddir="$(dirname "$modfile")"
gomod="$(cd "$gomoddir" && go mod edit -json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["Module"]["Path"])')"
CHECK="$OUT/go-check"
rm -rf "$CHECK"
mkdir -p "$CHECK"
(
    cd "$CHECK"
    {
        echo "module proxmox-talos.local/sdk-check"
        echo
        echo "go 1.25.11"
        echo
        echo "require ("
        echo "	$gomod v0.0.0"
        echo "	github.com/pulumi/pulumi/sdk/v3 v$PULUMI_VERSION"
        echo ")"
        echo
        echo "replace $gomod => $gomoddir"
    } >go.mod
    # Import every package of the SDK.
    {
        echo "package main"
        echo
        echo "import ("
        # every directory with Go files, except internal packages (not importable from here)
        (cd "$gomoddir" && find . -name '*.go' -printf '%h\n' | sort -u | grep -v '/internal\(/\|$\)' |
            sed -e "s#^\.#$gomod#" -e 's#.*#	_ "&"#')
        echo ")"
        echo
        echo "func main() {}"
    } >main.go
    cat main.go >&2
    # -mod=mod records go.sum entries for just the packages built (cheaper than go mod tidy,
    # which also resolves the test dependencies of every dependency).
    go build -mod=mod ./... >&2
    go vet -mod=mod ./... >&2
) || die "go SDK does not build"

log "OK: nodejs, python and go SDKs build ($((SECONDS - start))s)"
