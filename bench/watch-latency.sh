#!/usr/bin/env bash
# Daemon benchmarks (BENCHMARKS.md "Daemon"):
#   1. latency from `git push` (local bare repo) to "applied and Ready" in the status file, on
#      the sim target, over N pushes: with the webhook, with polling (--poll-interval 1s), and
#      with a local path source (notify);
#   2. idle RSS and CPU of the daemon over 60 s (default intervals: resync 5m, poll 1m).
#
# Usage: bench/watch-latency.sh [BINARY] [N] [IDLE_SECONDS]
#   BINARY defaults to target/release/pve-gitops (cargo build --release -p pve-gitops).
# Needs: git, curl, openssl (HMAC of the webhook body). Everything runs in a temp directory.
set -euo pipefail

BIN=$(realpath "${1:-target/release/pve-gitops}")
N=${2:-50}
IDLE=${3:-60}
EXAMPLE=$(realpath "$(dirname "$0")/../examples/three-node.yaml")
W=$(mktemp -d /tmp/pve-gitops-bench.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
DAEMON=
trap '[ -n "$DAEMON" ] && kill -TERM "$DAEMON" 2>/dev/null; rm -rf "$W"' EXIT
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid
export PVE_GITOPS_LOG=warn

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

setup() { # fresh repo, sim and state in $W/$1
  local d=$W/$1
  mkdir -p "$d"
  git init -q --bare -b main "$d/repo.git"
  git init -q -b main "$d/work"
  git -C "$d/work" remote add origin "$d/repo.git"
  cp "$EXAMPLE" "$d/work/cluster.yaml"
  git -C "$d/work" add cluster.yaml
  git -C "$d/work" commit -q -m init
  git -C "$d/work" push -q origin main
  "$BIN" sim init "$d/sim" --from "$d/work/cluster.yaml" >/dev/null
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$d/secret"
}

applied() { # print last_applied_revision when Ready=True, else nothing
  local f=$1/state/status.json
  [ -f "$f" ] || return 0
  local s
  s=$(cat "$f")
  case $s in *'"reason": "ReconciliationSucceeded"'*) ;; *) return 0 ;; esac
  sed -n 's/.*"last_applied_revision": "\([^"]*\)".*/\1/p' <<<"$s"
}

wait_for() { # dir, predicate-revision-substring or "!OLD"
  local d=$1 want=$2 deadline=$(( $(now_ms) + 30000 ))
  while :; do
    local cur
    cur=$(applied "$d")
    if [[ $want == !* ]]; then
      [ -n "$cur" ] && [ "$cur" != "${want#!}" ] && return 0
    else
      [[ $cur == *"$want"* ]] && return 0
    fi
    [ "$(now_ms)" -lt "$deadline" ] || { echo "timeout waiting for $want (have $cur)" >&2; return 1; }
    sleep 0.005
  done
}

percentiles() { # file -> "p50 p99 min max" in ms
  sort -n "$1" > "$1.sorted"
  local n p50 p99
  n=$(wc -l < "$1.sorted")
  p50=$(sed -n "$(( (n * 50 + 99) / 100 ))p" "$1.sorted")
  p99=$(sed -n "$(( (n * 99 + 99) / 100 ))p" "$1.sorted")
  echo "p50=${p50}ms p99=${p99}ms min=$(head -1 "$1.sorted")ms max=$(tail -1 "$1.sorted")ms n=$n"
}

run_git() { # mode: webhook | poll
  local mode=$1 d=$W/$1
  setup "$mode"
  local extra=(--poll-interval 1h)
  if [ "$mode" = webhook ]; then
    extra+=(--webhook-listen "127.0.0.1:$PORT" --insecure-http --webhook-secret-file "$d/secret")
  else
    extra=(--poll-interval 1s)
  fi
  "$BIN" watch --source "git+file://$d/repo.git" --target "sim:$d/sim" --state-dir "$d/state" \
    "${extra[@]}" 2>"$d/watch.log" &
  DAEMON=$!
  wait_for "$d" "sha1:$(git -C "$d/work" rev-parse HEAD)"
  : > "$d/lat"
  local i body sig c t0
  body='{"ref":"refs/heads/main"}'
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$(cat "$d/secret")" -r | cut -d' ' -f1)
  for i in $(seq 1 "$N"); do
    sed -i "s/token_coefficient: .*/token_coefficient: $((200 + i))/" "$d/work/cluster.yaml"
    git -C "$d/work" commit -q -am "push $i"
    c=$(git -C "$d/work" rev-parse HEAD)
    # Polling: push at a random moment of the poll period (not right after the last run).
    [ "$mode" = poll ] && sleep "0.$(printf '%03d' $((RANDOM % 1000)))"
    t0=$(now_ms)
    git -C "$d/work" push -q origin main
    if [ "$mode" = webhook ]; then
      curl -fsS -o /dev/null -X POST -H 'X-GitHub-Event: push' -H "X-Hub-Signature-256: sha256=$sig" \
        --data "$body" "http://127.0.0.1:$PORT/hook/github"
    fi
    wait_for "$d" "sha1:$c"
    echo $(( $(now_ms) - t0 )) >> "$d/lat"
  done
  kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=
  echo "git push -> Ready, $mode: $(percentiles "$d/lat")"
}

run_path() {
  local d=$W/path
  setup path
  cp "$d/work/cluster.yaml" "$d/cluster.yaml"
  "$BIN" watch --source "$d/cluster.yaml" --target "sim:$d/sim" --state-dir "$d/state" 2>"$d/watch.log" &
  DAEMON=$!
  wait_for "$d" "sha256:"
  : > "$d/lat"
  local i old t0
  for i in $(seq 1 "$N"); do
    old=$(applied "$d")
    t0=$(now_ms)
    sed "s/token_coefficient: .*/token_coefficient: $((200 + i))/" "$d/work/cluster.yaml" > "$d/cluster.yaml.tmp"
    mv "$d/cluster.yaml.tmp" "$d/cluster.yaml"
    wait_for "$d" "!$old"
    echo $(( $(now_ms) - t0 )) >> "$d/lat"
  done
  kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=
  echo "file write -> Ready, path source: $(percentiles "$d/lat")"
}

run_idle() {
  local d=$W/idle
  setup idle
  "$BIN" watch --source "git+file://$d/repo.git" --target "sim:$d/sim" --state-dir "$d/state" 2>"$d/watch.log" &
  DAEMON=$!
  wait_for "$d" "sha1:"
  sleep 2
  local tck t0 t1 r0 r1 hwm
  tck=$(getconf CLK_TCK)
  t0=$(awk '{print $14 + $15}' "/proc/$DAEMON/stat")
  r0=$(awk '/VmRSS/ {print $2}' "/proc/$DAEMON/status")
  sleep "$IDLE"
  t1=$(awk '{print $14 + $15}' "/proc/$DAEMON/stat")
  r1=$(awk '/VmRSS/ {print $2}' "/proc/$DAEMON/status")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON/status")
  kill -TERM "$DAEMON"; wait "$DAEMON" || true; DAEMON=
  echo "idle ${IDLE}s (resync 5m, poll 1m): RSS start=$((r0 / 1024)).$(( (r0 % 1024) * 10 / 1024 ))MiB end=$((r1 / 1024)).$(( (r1 % 1024) * 10 / 1024 ))MiB peak=$((hwm / 1024)).$(( (hwm % 1024) * 10 / 1024 ))MiB; CPU $((t1 - t0)) ticks of 1/${tck}s = $(awk -v t=$((t1 - t0)) -v h="$tck" -v s="$IDLE" 'BEGIN {printf "%.3f", 100 * t / h / s}')% of one core"
}

echo "binary: $BIN ($("$BIN" --version)); N=$N; $(nproc) cores"
run_git webhook
run_git poll
run_path
run_idle
