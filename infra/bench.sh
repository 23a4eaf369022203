#!/usr/bin/env bash
# The benchmark (docs/performance.md). Builds, with the release profile in Cargo.toml, each
# function's binary for this machine and the hello-world floor (infra/bench-hello), hub-local,
# and with cargo lambda the zipped arm64 bootstraps; starts moto on loopback; runs the driver
# (tests/src/bin/hub-bench); prints the tables and writes them to target/bench/results.md.
# From cold on two cores the builds take about 20 minutes (each fat-LTO link takes a minute or
# more); the measurements about seven.
#
# HUB_BENCH_COLD_RUNS (15), HUB_BENCH_INVOCATIONS (1000) and HUB_BENCH_LIFECYCLES (100) size it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=infra/common.sh
. infra/common.sh

ensure_venv
ensure_arm64_target
mkdir -p target/bench

BINARIES=(-p list-assessments -p start-assessment -p cancel -p result-callback -p deliver-updates -p bench-hello)

step "release build for this machine: the functions and the hello-world floor"
# Built together, as cargo lambda builds them below, so that they share one feature resolution.
cargo build --release --locked "${BINARIES[@]}"

step "release build of hub-local (the throughput run)"
cargo build --release --locked -p hub-local

step "cargo lambda build --release --arm64: the zipped bootstraps"
PATH="$VENV/bin:$PATH" \
    CARGO_TARGET_DIR="$ROOT/target/bench-arm64" \
    XDG_CACHE_HOME="$ROOT/target/sam-cache" \
    "$VENV/bin/cargo-lambda" lambda build --release --arm64 --output-format zip "${BINARIES[@]}"

step "the benchmark driver"
cargo build --locked -p hub-tests --bin hub-bench

start_moto target/bench/moto.log

step "benchmark"
{
    echo "# Benchmark results"
    echo
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
    echo "- machine: $(uname -sm), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM"
    echo "- $(rustc --version)"
    echo "- command: ./infra/bench.sh"
} >target/bench/results.md
HUB_TEST_AWS_ENDPOINT="$MOTO_URL" \
    HUB_BIN_DIR="$ROOT/target/release" \
    HUB_BENCH_ZIP_DIR="$ROOT/target/bench-arm64/lambda" \
    HUB_BENCH_MOTO_PID="$MOTO_PID" \
    target/debug/hub-bench | tee -a target/bench/results.md
echo "written to target/bench/results.md"
