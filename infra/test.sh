#!/usr/bin/env bash
# Runs every test on a fresh machine: installs what it needs (moto, cfn-lint, the SAM CLI,
# cargo-lambda and zig into ./.venv; checkov into ./.venv-checkov; cargo-deny into target/tools;
# Debian's chromium with apt-get and playwright-core and axe-core into tests/browser/node_modules),
# lints, checks the SAM template (cfn-lint, sam validate, checkov), the dependency tree (cargo
# deny) and the arm64 build, builds the function binaries, starts moto on a free loopback port,
# runs the whole suite, and stops moto whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=infra/common.sh
. infra/common.sh

ensure_venv

step "cargo fmt --check"
cargo fmt --all -- --check

step "cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml

# No usage telemetry from the SAM CLI.
export SAM_CLI_TELEMETRY=0

step "sam validate --lint"
"$VENV/bin/sam" validate --lint --template-file template.yaml --region us-east-1

ensure_checkov

step "checkov template.yaml"
# Offline: --skip-download (no Prisma Cloud), no check for a newer checkov. Any failed check fails
# the run; a check may be skipped only by a `Metadata: checkov: skip:` entry on its resource that
# says why. checkov exits 0 on a file it could not parse, so the JSON summary is what decides.
mkdir -p target
CKV_SKIP_PACKAGE_UPDATE_CHECK=true "$CHECKOV_VENV/bin/checkov" --file template.yaml \
    --framework cloudformation --skip-download --output json >target/checkov.json || true
python3 - target/checkov.json <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
summary, results = report["summary"], report["results"]
problems = []
if summary["parsing_errors"] or not summary["resource_count"] or not summary["passed"]:
    problems.append(f"checkov checked nothing or could not parse the template: {summary}")
for c in results["failed_checks"]:
    problems.append(f"FAILED {c['check_id']} on {c['resource']}: {c['check_name']}")
for c in results["skipped_checks"]:
    comment = (c["check_result"].get("suppress_comment") or "").strip()
    # checkov fills in "No comment provided" for a skip without one.
    if not comment or comment == "No comment provided":
        problems.append(f"skip of {c['check_id']} on {c['resource']} gives no reason")
    print(f"skipped {c['check_id']} on {c['resource']}: {comment[:60]}...")
print(f"checkov {summary['checkov_version']}: {summary['passed']} passed, {summary['failed']} failed, "
      f"{summary['skipped']} skipped on {summary['resource_count']} resources")
if problems:
    sys.exit("\n".join(problems))
PY

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

ensure_cargo_deny

step "cargo deny check licenses bans sources (deny.toml)"
"$CARGO_DENY" --locked check licenses bans sources

# The advisories check needs the RustSec advisory database, which cargo-deny fetches from GitHub.
# It runs only when HUB_ADVISORY_DBS names a directory holding a copy (deny.toml's db-path), and
# then without fetching. See the README ("Run every test", Advisories).
if [ -n "${HUB_ADVISORY_DBS:-}" ]; then
    step "cargo deny check advisories (database in $HUB_ADVISORY_DBS, not fetched)"
    [ -d "$HUB_ADVISORY_DBS" ] || { echo "HUB_ADVISORY_DBS=$HUB_ADVISORY_DBS is not a directory" >&2; exit 1; }
    "$CARGO_DENY" --frozen check advisories
else
    step "cargo deny check advisories: skipped (HUB_ADVISORY_DBS is not set)"
fi

step "build the function binaries (the end-to-end tests run them)"
cargo build --workspace --bins --locked

step "sam build: every function's arm64 bootstrap"
ensure_arm64_target
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

start_moto target/moto.log

export HUB_TEST_AWS_ENDPOINT="$MOTO_URL"
# The usual AWS variables, so anything that loads the default AWS config (the local hub with
# --table, the functions) reaches moto and never AWS.
export AWS_ENDPOINT_URL="$HUB_TEST_AWS_ENDPOINT"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export HUB_BIN_DIR="$ROOT/target/debug"

step "cargo test (unit, store and secrets on moto, end to end)"
cargo test --workspace --locked -- --test-threads=4 2>&1 | tee target/test-output.log

ensure_chromium
ensure_browser_packages
step "browser tests: the connect page in Chromium (playwright-core) against hub-local"
node tests/browser/connect.mjs 2>&1 | tee target/browser-test.log

# One closing line for the whole run (cargo's own last line is an empty doc-test run).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     /^browser: [0-9]+ checks passed/ { p += $2 }
     END { printf "tests: %d passed, %d failed\n", p, f }' target/test-output.log target/browser-test.log
