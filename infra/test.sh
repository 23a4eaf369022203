#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what it needs (moto, cfn-lint, the SAM CLI,
# cargo-lambda and zig into ./.venv), lints, checks the SAM template and its arm64 build, builds
# the function binaries, starts moto on a free loopback port, runs the whole suite, and stops moto
# whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV="$ROOT/.venv"

step() { printf '\n==> %s\n' "$*"; }

step "Python tools (moto, cfn-lint, SAM CLI, cargo-lambda, zig) in $VENV"
REQUIREMENTS=(infra/requirements-test.txt infra/requirements-sam.txt)
if [ ! -x "$VENV/bin/moto_server" ] || [ ! -x "$VENV/bin/sam" ] \
    || ! cat "${REQUIREMENTS[@]}" | cmp -s - "$VENV/.requirements"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        -r infra/requirements-test.txt -r infra/requirements-sam.txt
    cat "${REQUIREMENTS[@]}" >"$VENV/.requirements"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml

# No usage telemetry from the SAM CLI.
export SAM_CLI_TELEMETRY=0

step "sam validate --lint"
"$VENV/bin/sam" validate --lint --template-file template.yaml --region us-east-1

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build the function binaries (the end-to-end tests run them)"
cargo build --workspace --bins --locked

step "sam build: every function's arm64 bootstrap"
# rust-toolchain.toml lists the target, which rustup installs with the toolchain; an older
# toolchain install may predate that line.
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    rustup target add aarch64-unknown-linux-gnu
fi
SAM_STARTED=$SECONDS
# SAM finds cargo-lambda, and cargo-lambda finds zig, only on PATH or in SAM's own environment.
# This check builds without the release profile's fat LTO: the same toolchain, target, SAM,
# cargo-lambda and zig as a deployment, but about 8 minutes from cold on two cores instead of
# about 19 (each binary's fat-LTO link alone takes minutes). A deployment's `sam build` uses the
# profile as written in Cargo.toml.
# Everything the build writes stays under target/: its own cargo target directory, zig's and
# cargo-zigbuild's caches, and the artifacts, so that a second run rebuilds only what changed.
PATH="$VENV/bin:$PATH" \
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_TARGET_DIR="$ROOT/target/sam-cargo" \
    XDG_CACHE_HOME="$ROOT/target/sam-cache" \
    "$VENV/bin/sam" build --template-file template.yaml --build-dir target/sam-build --beta-features
python3 - template.yaml target/sam-build <<'PY'
import pathlib, re, struct, sys
template, build = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
functions = re.findall(r"^  (\w+):\n    Type: AWS::Serverless::Function$", template.read_text(), re.M)
if not functions:
    sys.exit("no AWS::Serverless::Function found in template.yaml")
for name in functions:
    path = build / name / "bootstrap"
    if not path.is_file():
        sys.exit(f"{path} is missing")
    head = path.read_bytes()[:20]
    # ELF magic, 64-bit class, little endian, e_machine 183 = EM_AARCH64.
    if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1 or struct.unpack_from("<H", head, 18)[0] != 183:
        sys.exit(f"{path} is not a 64-bit little-endian aarch64 ELF executable")
    print(f"{path}: aarch64 ELF, {path.stat().st_size / 1e6:.1f} MB")
PY
echo "sam build took $((SECONDS - SAM_STARTED)) s"

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
