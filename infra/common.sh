# Shared by infra/test.sh and infra/bench.sh (sourced, from the repository root): the Python
# tools in ./.venv, and moto on a free loopback port.

VENV="$ROOT/.venv"

step() { printf '\n==> %s\n' "$*"; }

# moto, cfn-lint, the SAM CLI, cargo-lambda and zig, pinned, into $VENV; reinstalled only when
# the pins change.
ensure_venv() {
    step "Python tools (moto, cfn-lint, SAM CLI, cargo-lambda, zig) in $VENV"
    local requirements=(infra/requirements-test.txt infra/requirements-sam.txt)
    if [ ! -x "$VENV/bin/moto_server" ] || [ ! -x "$VENV/bin/sam" ] \
        || ! cat "${requirements[@]}" | cmp -s - "$VENV/.requirements"; then
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check \
            -r infra/requirements-test.txt -r infra/requirements-sam.txt
        cat "${requirements[@]}" >"$VENV/.requirements"
    fi
}

# checkov, pinned, in a venv of its own (see infra/requirements-checkov.txt); recreated from scratch
# only when the pin changes.
CHECKOV_VENV="$ROOT/.venv-checkov"
ensure_checkov() {
    step "checkov in $CHECKOV_VENV"
    if [ ! -x "$CHECKOV_VENV/bin/checkov" ] \
        || ! cmp -s infra/requirements-checkov.txt "$CHECKOV_VENV/.requirements"; then
        python3 -m venv --clear "$CHECKOV_VENV"
        "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check \
            -r infra/requirements-checkov.txt
        cp infra/requirements-checkov.txt "$CHECKOV_VENV/.requirements"
    fi
}

# cargo-deny, pinned, built from crates.io into $TOOLS (under target/, so `cargo clean` removes it);
# rebuilt only when the pin changes. A cold build takes about 6 minutes on two cores.
CARGO_DENY_VERSION=0.20.2
TOOLS="$ROOT/target/tools"
CARGO_DENY="$TOOLS/bin/cargo-deny"
ensure_cargo_deny() {
    step "cargo-deny $CARGO_DENY_VERSION in $TOOLS"
    if [ "$("$CARGO_DENY" --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
        # --force: reinstall even if cargo's install records say this version is there but the
        # binary is missing or broken.
        cargo install --locked --force --root "$TOOLS" "cargo-deny@$CARGO_DENY_VERSION"
    fi
}

# Debian's Chromium for the browser tests, with apt-get (as root, or through sudo), only if it is
# not there yet. Never a browser download from elsewhere (no `playwright install`).
ensure_chromium() {
    step "Chromium (Debian's package) for the browser tests"
    if [ -x /usr/bin/chromium ]; then
        /usr/bin/chromium --version 2>/dev/null || true
        return
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
}

# playwright-core and axe-core, pinned by tests/browser/package-lock.json, into
# tests/browser/node_modules; reinstalled only when the lock file changes.
ensure_browser_packages() {
    step "playwright-core and axe-core (npm) in tests/browser/node_modules"
    if ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.package-lock.json.installed; then
        npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
        cp tests/browser/package-lock.json tests/browser/node_modules/.package-lock.json.installed
    fi
}

# rust-toolchain.toml lists the target, which rustup installs with the toolchain; an older
# toolchain install may predate that line.
ensure_arm64_target() {
    if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
        rustup target add aarch64-unknown-linux-gnu
    fi
}

# Starts moto on a free loopback port, logging to $1; sets MOTO_PID and MOTO_URL and stops moto
# when the calling script exits.
start_moto() {
    step "start moto on loopback"
    mkdir -p target
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$VENV/bin/python" infra/moto_server.py 127.0.0.1 "$port" >"$1" 2>&1 &
    MOTO_PID=$!
    trap 'kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true' EXIT INT TERM
    python3 - "$port" "$1" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/moto-api/"
# Generous: on a loaded two-core machine moto's imports alone can take half a minute.
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen(url, timeout=1); sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(f"moto did not start; see {sys.argv[2]}")
PY
    MOTO_URL="http://127.0.0.1:$port"
    echo "moto on $MOTO_URL"
}
