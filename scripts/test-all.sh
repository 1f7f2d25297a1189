#!/usr/bin/env bash
# Runs every test tier: formatting, clippy (warnings are errors), the unit / golden / property /
# corpus-conformance tests, and the e2e suite against a real corosync 3 cluster in network
# namespaces (needs root and corosync; see e2e/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
cargo run -q -p pve-gitops -- validate examples/
