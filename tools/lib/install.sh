# Shared by the tool installers (tools/install-pulumi.sh, tools/install-talosctl.sh):
# sourced, not run. The installer sets before sourcing:
#   INSTALLER  its name, for messages
#   ROOT       the repository root
#   PREFIX     its per-version cache directory; binaries go to $PREFIX/bin ($BIN)
# Sourcing checks for Go, creates $BIN and serialises concurrent runs (they would
# build into the same directory).

BIN="$PREFIX/bin"

log() { printf '%s: %s\n' "$INSTALLER" "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "go is required on PATH"
mkdir -p "$BIN"

if command -v flock >/dev/null 2>&1; then
    exec 9>"$PREFIX/.lock"
    flock 9
fi

hash_files() { cat "$@" | sha256sum | cut -d' ' -f1; }

# ver_ge A B: true if version A >= version B (leading "v" ignored).
ver_ge() {
    local a="${1#v}" b="${2#v}"
    [[ "$(printf '%s\n%s\n' "$b" "$a" | sort -V | head -n1)" == "$b" ]]
}

# find_ambient NAME: the first NAME on PATH outside $BIN.
find_ambient() {
    local p
    while IFS= read -r p; do
        [[ "$(cd "$(dirname "$p")" && pwd -P)" == "$(cd "$BIN" && pwd -P)" ]] && continue
        printf '%s\n' "$p"
        return 0
    done < <(type -ap "$1" 2>/dev/null || true)
    return 1
}

# build NAME STAMP MODULE_DIR PACKAGE [GO_BUILD_FLAGS...]: `go build` PACKAGE in
# MODULE_DIR into $BIN/NAME, unless $BIN/.NAME.stamp already holds STAMP. When a
# function `check_NAME` exists (dashes as underscores) it is called with the new
# binary before it replaces the old one, and a failure aborts the install.
build() {
    local name="$1" stamp="$2" moddir="$3" pkg="$4"
    shift 4
    local out="$BIN/$name" stampfile="$BIN/.$name.stamp"
    if [[ -x "$out" && -f "$stampfile" && "$(cat "$stampfile")" == "$stamp" ]]; then
        log "$name: up to date ($out)"
        return 0
    fi
    log "$name: building $pkg (in ${moddir#"$ROOT"/})"
    local start=$SECONDS tmp="$BIN/.$name.tmp.$$" check="check_${name//-/_}"
    rm -f "$stampfile"
    # -mod=readonly: the committed go.mod/go.sum are authoritative (never tidied here).
    if ! (cd "$moddir" && go build -mod=readonly -buildvcs=false "$@" -o "$tmp" "$pkg") >&2; then
        rm -f "$tmp"
        die "$name: go build failed"
    fi
    if declare -F "$check" >/dev/null && ! "$check" "$tmp"; then
        rm -f "$tmp"
        die "$name: the built binary failed its check"
    fi
    mv -f "$tmp" "$out"
    printf '%s\n' "$stamp" >"$stampfile"
    log "$name: built in $((SECONDS - start))s"
}
