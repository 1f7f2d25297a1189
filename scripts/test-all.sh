#!/usr/bin/env bash
# Runs every test tier: formatting, clippy (warnings are errors), the unit / golden / property /
# corpus-conformance tests, the e2e suite against a real corosync 3 cluster in network
# namespaces (needs root and corosync; see e2e/README.md), the examples, and the Helm chart
# checks (offline Helm library and validators from PyPI, installed into a venv on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo build --workspace
cargo test --workspace
cargo run -q -p pve-gitops -- validate examples/

# Helm chart: lint, render, validate (scripts/check-chart.sh).
if ! command -v kubernetes-validate >/dev/null || ! python3 -c 'import helm' 2>/dev/null; then
  CHART_VENV=${CHART_VENV:-target/chart-venv}
  if [ ! -x "$CHART_VENV/bin/kubernetes-validate" ]; then
    python3 -m venv "$CHART_VENV"
    "$CHART_VENV/bin/pip" install --quiet helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 \
      check-jsonschema==0.39.0 yamllint==1.38.0
  fi
  export PATH="$PWD/$CHART_VENV/bin:$PATH"
fi
PVE_GITOPS_BIN="${CARGO_TARGET_DIR:-target}/debug/pve-gitops" bash scripts/check-chart.sh
