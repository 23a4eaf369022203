#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what it needs (moto and cfn-lint into ./.venv), lints, builds the
# function binaries, starts moto on a free loopback port, runs the whole suite, and stops moto
# whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV="$ROOT/.venv"

step() { printf '\n==> %s\n' "$*"; }

step "Python test tools (moto, cfn-lint) in $VENV"
if [ ! -x "$VENV/bin/moto_server" ] || ! cmp -s infra/requirements-test.txt "$VENV/.requirements"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r infra/requirements-test.txt
    cp infra/requirements-test.txt "$VENV/.requirements"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the function binaries (the end-to-end tests run them)"
cargo build --workspace --bins --locked

step "start moto on loopback"
mkdir -p target
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VENV/bin/python" infra/moto_server.py 127.0.0.1 "$PORT" >target/moto.log 2>&1 &
MOTO_PID=$!
cleanup() { kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
python3 - "$PORT" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/moto-api/"
for _ in range(150):
    try:
        urllib.request.urlopen(url, timeout=1); sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit("moto did not start; see target/moto.log")
PY
echo "moto on 127.0.0.1:$PORT"

export HUB_TEST_AWS_ENDPOINT="http://127.0.0.1:$PORT"
# The usual AWS variables, so anything that loads the default AWS config (the local hub with
# --table, the functions) reaches moto and never AWS.
export AWS_ENDPOINT_URL="$HUB_TEST_AWS_ENDPOINT"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export HUB_BIN_DIR="$ROOT/target/debug"

step "cargo test (unit, store and secrets on moto, end to end)"
cargo test --workspace --locked -- --test-threads=4 2>&1 | tee target/test-output.log

# One closing line for the whole run (cargo's own last line is an empty doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' target/test-output.log
