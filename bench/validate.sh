#!/usr/bin/env bash
# Benchmark: `pve-gitops validate DIR` on 1,000 manifests vs `check-jsonschema` with the
# committed schema on the same files, in one hyperfine run. Needs hyperfine and check-jsonschema
# (`apt-get install hyperfine; pip install check-jsonschema`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p pve-gitops
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 bench/gen-manifests.py "$dir" "${1:-1000}"
bin=${CARGO_TARGET_DIR:-target}/release/pve-gitops
"$bin" validate "$dir" > /dev/null
check-jsonschema --schemafile schema/cluster.schema.json "$dir"/*.yaml > /dev/null
hyperfine --warmup 1 --runs "${RUNS:-5}" --export-markdown "${BENCH_MD:-/dev/null}" \
  -n pve-gitops "$bin validate $dir" \
  -n check-jsonschema "check-jsonschema --schemafile schema/cluster.schema.json $dir/*.yaml"
