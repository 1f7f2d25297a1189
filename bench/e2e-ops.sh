#!/usr/bin/env bash
# Real corosync: pve-gitops `reconcile` vs the same change scripted with corosync's tools
# (BENCHMARKS.md, "Real corosync: reconcile vs raw tools").
#
# Usage (as root): bench/e2e-ops.sh [N] [join,remove,link | tools]
#   N defaults to 10 repetitions per operation and mode.
#   PVE_GITOPS_BIN=path uses that binary instead of building target/release/pve-gitops.
#   BENCH_MD=file also writes the result tables there.
# Needs what the e2e suite needs (e2e/install-deps.sh): corosync 3, iproute2, util-linux.
# Progress and per-trial timelines (TIMING lines) go to stderr, the tables to stdout.
set -euo pipefail

cd "$(dirname "$0")/.."
N=${1:-10}
OPS=${2:-join,remove,link}
[ "$(id -u)" = 0 ] || { echo "bench/e2e-ops.sh: must run as root (network namespaces)" >&2; exit 2; }

if [ -z "${PVE_GITOPS_BIN:-}" ]; then
  cargo build --release -p pve-gitops
  PVE_GITOPS_BIN=$(realpath "${CARGO_TARGET_DIR:-target}/release/pve-gitops")
fi
export PVE_GITOPS_BIN

out=$(mktemp)
trap 'rm -f "$out"' EXIT
cargo run --release -p pve-gitops-e2e --example bench_ops -- "$N" "$OPS" | tee "$out"
if [ -n "${BENCH_MD:-}" ]; then cp "$out" "$BENCH_MD"; fi
