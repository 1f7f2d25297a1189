#!/usr/bin/env bash
# Regenerate the `live/` simulator directories of the golden plan cases with the
# pve-gitops CLI (sim init, reconcile with a "before" manifest, sim power-off/on) and a
# few hand edits of the files an operator could find in a real /etc/pve.
#
#   controller/tests/plans/make-live.sh            # every case
#   controller/tests/plans/make-live.sh CASE...    # only these
#
# Then review and refresh the expected output:
#   UPDATE_GOLDEN=1 cargo test -p pve-gitops --test plans
#
# Empty directories are deleted at the end of each case: git does not keep them, so the
# tests must see the same tree a fresh checkout has.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)/..
root=$(cd "$root" && pwd)
if [ -z "${PVE_GITOPS:-}" ]; then
  (cd "$root" && cargo build -q -p pve-gitops --bin pve-gitops)
  PVE_GITOPS="${CARGO_TARGET_DIR:-$root/target}/debug/pve-gitops"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pg() { "$PVE_GITOPS" "$@" >/dev/null; }

# gen N LINKS [MIGRATION] [EXTRA LINE...]: a manifest for cluster `prod` with nodes
# pve1..pveN (nodeid i, ring0 10.10.10.i, ring1 10.10.20.i when LINKS=2, an address in the
# migration network 10.1.2.0/24); MIGRATION=0 leaves spec.migration out; extra lines are
# appended (they must be spec-level keys, two-space indented).
gen() {
  local n=$1 links=$2 mig=${3:-1}
  shift 2
  [ $# -gt 0 ] && shift
  printf 'apiVersion: pve-gitops.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: prod\nspec:\n  nodes:\n'
  for i in $(seq 1 "$n"); do
    printf '    - name: pve%s\n      nodeid: %s\n      ring0_addr: 10.10.10.%s\n' "$i" "$i" "$i"
    if [ "$links" = 2 ]; then printf '      ring1_addr: 10.10.20.%s\n' "$i"; fi
    printf '      addresses: [10.1.2.%s/24]\n' "$i"
  done
  if [ "$mig" = 1 ]; then
    printf '  migration:\n    type: secure\n    network: 10.1.2.0/24\n'
  fi
  for l in "$@"; do printf '%s\n' "$l"; done
}

# absent NODE < manifest: mark NODE `state: absent`.
absent() { sed "/- name: $1\$/a\\      state: absent"; }

# converge DIR MANIFEST [RC]: reconcile (apply) until done; RC is the expected exit code
# (0 converged, 1 stopped at a gate).
converge() {
  local dir=$1 manifest=$2 want=${3:-0} rc=0
  "$PVE_GITOPS" reconcile --target "sim:$dir" -f "$manifest" >"$tmp/out" 2>&1 || rc=$?
  if [ "$rc" != "$want" ]; then
    echo "make-live: reconcile exited $rc, expected $want ($dir)" >&2
    cat "$tmp/out" >&2
    exit 1
  fi
}

# jqi DIR FILTER: edit the simulator's extra file in place.
jqi() { jq "$2" "$1/.pve-gitops-sim.json" >"$tmp/x.json" && mv "$tmp/x.json" "$1/.pve-gitops-sim.json"; }

# memory DIR VMID MIB: set a guest's memory (wherever its config is).
memory() {
  local f
  f=$(find "$1/nodes" -name "$2.conf")
  sed -i "s/^memory: .*/memory: $3/" "$f"
}

# touch_vmlist DIR: re-render .members/.vmlist after hand edits (a no-op power change).
touch_vmlist() { pg sim power-on "$1" "$2"; }

start() { # start CASE: an empty live dir; echoes its path
  rm -rf "${here:?}/$1/live"
  mkdir -p "$here/$1"
  echo "$here/$1/live"
}

finish() { find "$1" -mindepth 1 -type d -empty -delete; }

# ---------------------------------------------------------------------------------------
# Cases. Each function builds CASE/live; CASE/manifest.yaml is written by hand (committed).

case_create_from_nothing() { local d; d=$(start "$1"); pg sim init "$d" --nodes 3; finish "$d"; }

case_create_founder_powered_off() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 3; pg sim power-off "$d" pve1; finish "$d"
}

case_create_corosync2_udpu() {
  local d; d=$(start "$1"); pg sim init "$d" --names old1,old2,old3; finish "$d"
}

case_join_one_node() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 4
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

case_join_two_nodes() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 5
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

case_join_host_with_guests() {
  # The first host of `sim init` gets the guests: pve4 is a standalone host with two VMs.
  local d; d=$(start "$1"); pg sim init "$d" --names pve4,pve1,pve2,pve3 --guests 2
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

case_join_host_powered_off() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 4
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; pg sim power-off "$d" pve4; finish "$d"
}

case_rejoin_removed_node() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 4
  gen 4 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"
  gen 4 1 | absent pve4 >"$tmp/m2.yaml"; converge "$d" "$tmp/m2.yaml" 1
  pg sim power-off "$d" pve4; converge "$d" "$tmp/m2.yaml"
  pg sim power-on "$d" pve4; finish "$d"
}

case_in_sync() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 3 --guests 2
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

# Four nodes, guests of several sizes on pve4 (the node to remove) and some elsewhere, so
# that free memory differs between the targets.
four_with_guests_on_pve4() {
  local d=$1
  pg sim init "$d" --nodes 4 --guests 6
  memory "$d" 100 8192; memory "$d" 101 4096; memory "$d" 102 4096; memory "$d" 103 2048
  memory "$d" 104 16384; memory "$d" 105 8192
  gen 4 1 1 '  guests:' \
    '    - {vmid: 100, type: qemu, node: pve4}' '    - {vmid: 101, type: qemu, node: pve4}' \
    '    - {vmid: 102, type: qemu, node: pve4}' '    - {vmid: 103, type: qemu, node: pve4}' \
    '    - {vmid: 105, type: qemu, node: pve2}' >"$tmp/m.yaml"
  converge "$d" "$tmp/m.yaml"
}

case_remove_node_with_guests() {
  local d; d=$(start "$1"); four_with_guests_on_pve4 "$d"; finish "$d"
}

case_remove_node_locked_guest() {
  local d; d=$(start "$1"); four_with_guests_on_pve4 "$d"
  printf 'lock: backup\n' >>"$d/nodes/pve4/qemu-server/101.conf"; finish "$d"
}

case_remove_node_powered_off() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 4
  gen 4 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; pg sim power-off "$d" pve4; finish "$d"
}

case_remove_reordered_to_stay_quorate() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 4
  gen 4 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; pg sim power-off "$d" pve4; finish "$d"
}

case_remove_would_lose_quorum() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 3
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; pg sim power-off "$d" pve3; finish "$d"
}

three_converged() { # three_converged DIR LINKS [MIGRATION] [EXTRA...]
  local d=$1; shift
  pg sim init "$d" --nodes 3
  gen 3 "$@" >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"
}

case_add_second_link() { local d; d=$(start "$1"); three_converged "$d" 1; finish "$d"; }
case_remove_second_link() { local d; d=$(start "$1"); three_converged "$d" 2; finish "$d"; }
case_readdress_single_link() { local d; d=$(start "$1"); three_converged "$d" 1; finish "$d"; }
case_readdress_with_second_link() { local d; d=$(start "$1"); three_converged "$d" 2; finish "$d"; }
case_rrp_mode_change() { local d; d=$(start "$1"); three_converged "$d" 2; finish "$d"; }
case_quorum_votes_change() { local d; d=$(start "$1"); three_converged "$d" 1; finish "$d"; }
case_link_priority_change() { local d; d=$(start "$1"); three_converged "$d" 2; finish "$d"; }
case_wait_for_all_change() { local d; d=$(start "$1"); three_converged "$d" 1; finish "$d"; }

case_readdress_with_absent_node() { local d; d=$(start "$1"); three_converged "$d" 1; finish "$d"; }

case_token_coefficient_change() {
  local d; d=$(start "$1"); three_converged "$d" 1 1 '  totem:' '    token_coefficient: 125'
  finish "$d"
}

case_rolling_restart_would_lose_quorum() {
  local d; d=$(start "$1"); three_converged "$d" 2; pg sim power-off "$d" pve3; finish "$d"
}

case_two_node_on_two_node_cluster() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 2
  gen 2 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

five_lost_quorum() { # five nodes, three powered off: 2 of 5 votes, quorum 3
  local d=$1
  pg sim init "$d" --nodes 5
  gen 5 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"
  pg sim power-off "$d" pve3; pg sim power-off "$d" pve4; pg sim power-off "$d" pve5
}

case_expected_votes_regains_quorum() { local d; d=$(start "$1"); five_lost_quorum "$d"; finish "$d"; }
case_expected_votes_refused() { local d; d=$(start "$1"); five_lost_quorum "$d"; finish "$d"; }
case_lost_quorum_gate() { local d; d=$(start "$1"); five_lost_quorum "$d"; finish "$d"; }

case_expected_votes_after_recovery() {
  # Quorum was regained with `expected_votes: 3`, then the three nodes came back.
  local d; d=$(start "$1"); five_lost_quorum "$d"
  gen 5 1 1 '  quorum:' '    expected_votes: 3' >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"
  pg sim power-on "$d" pve3; pg sim power-on "$d" pve4; pg sim power-on "$d" pve5; finish "$d"
}

case_expected_votes_quorate_refused() {
  local d; d=$(start "$1"); three_converged "$d" 1; finish "$d"
}

case_migration_set_keeps_other_keys() {
  local d; d=$(start "$1"); three_converged "$d" 1 0
  printf '# managed by hand until now\nkeyboard: en-us\nconsole: html5\n\n# mail\nemail_from: root@example.com\n' >"$d/datacenter.cfg"
  finish "$d"
}

case_migration_changed() {
  local d; d=$(start "$1"); three_converged "$d" 1 0
  printf 'keyboard: de\nmigration: insecure,network=10.9.9.0/24\n# keep this comment\nemail_from: root@example.com\n' >"$d/datacenter.cfg"
  finish "$d"
}

case_migration_unchanged() {
  local d; d=$(start "$1"); three_converged "$d" 1 0
  printf '# cluster options\nkeyboard: en-us\nmigration: secure,network=10.1.2.0/24\n# end\nmac_prefix: BC:24:11\n' >"$d/datacenter.cfg"
  finish "$d"
}

case_bwlimit_and_max_workers() {
  local d; d=$(start "$1"); three_converged "$d" 1 0
  printf 'keyboard: en-us\nbwlimit: restore=100000,clone=50000\nmax_workers: 2\nmigration: secure,network=10.1.2.0/24\n' >"$d/datacenter.cfg"
  finish "$d"
}

case_guest_placement() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 3 --guests 3
  # 101 is stopped; 200 is a running container, 201 a stopped one (all on pve1).
  jqi "$d" '.running_guests |= map(select(. != 101)) | .running_guests += [200] | .running_guests |= sort'
  mkdir -p "$d/nodes/pve1/lxc"
  printf 'arch: amd64\ncores: 1\nhostname: ct200\nmemory: 1024\nostype: debian\n' >"$d/nodes/pve1/lxc/200.conf"
  printf 'arch: amd64\ncores: 1\nhostname: ct201\nmemory: 512\nostype: debian\n' >"$d/nodes/pve1/lxc/201.conf"
  touch_vmlist "$d" pve1
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

case_guest_running_online_false() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 3 --guests 1
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

case_locked_guest() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 3 --guests 2
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"
  printf 'lock: backup\n' >>"$d/nodes/pve1/qemu-server/100.conf"; finish "$d"
}

case_guest_missing() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 3 --guests 1
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

case_drift_node_not_in_manifest() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 4
  gen 4 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

case_drift_prune_nodes() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 4
  gen 4 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

case_leftover_node_dir() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 4
  gen 4 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"
  gen 4 1 | absent pve4 >"$tmp/m2.yaml"; converge "$d" "$tmp/m2.yaml" 1
  pg sim power-off "$d" pve4; converge "$d" "$tmp/m2.yaml"
  # A guest config restored into the removed node's directory by hand.
  mkdir -p "$d/nodes/pve4/qemu-server"
  printf 'cores: 2\nmemory: 4096\nname: restored\n' >"$d/nodes/pve4/qemu-server/150.conf"
  touch_vmlist "$d" pve1
  finish "$d"
}

case_rename_joined_node() { local d; d=$(start "$1"); three_converged "$d" 1; finish "$d"; }
case_change_nodeid() { local d; d=$(start "$1"); three_converged "$d" 1; finish "$d"; }
case_change_cluster_name() { local d; d=$(start "$1"); three_converged "$d" 1; finish "$d"; }

case_plain_etc_pve_copy() {
  # A copy of a real node's /etc/pve: no simulator extra file; .members says pve3 is down.
  local d; d=$(start "$1"); pg sim init "$d" --nodes 3 --guests 2
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"
  rm "$d/.pve-gitops-sim.json"
  sed -i 's/"pve3": { "id": 3, "online": 1/"pve3": { "id": 3, "online": 0/' "$d/.members"
  grep -q '"pve3": { "id": 3, "online": 0' "$d/.members"
  finish "$d"
}

case_join_and_add_link() { local d; d=$(start "$1"); pg sim init "$d" --nodes 4
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

case_join_and_remove_link() { local d; d=$(start "$1"); pg sim init "$d" --nodes 4
  gen 3 2 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

case_replace_node() { local d; d=$(start "$1"); pg sim init "$d" --nodes 4
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

case_join_and_place_guest() { local d; d=$(start "$1"); pg sim init "$d" --nodes 4 --guests 1
  gen 3 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

case_transport_change_four_nodes() { local d; d=$(start "$1"); pg sim init "$d" --nodes 4
  gen 4 1 >"$tmp/m.yaml"; converge "$d" "$tmp/m.yaml"; finish "$d"
}

case_remove_node_powered_off_with_guests() {
  local d; d=$(start "$1"); pg sim init "$d" --nodes 4 --guests 2
  gen 4 1 1 '  guests:' '    - {vmid: 100, type: qemu, node: pve4}' '    - {vmid: 101, type: qemu, node: pve4}' >"$tmp/m.yaml"
  converge "$d" "$tmp/m.yaml"; pg sim power-off "$d" pve4; finish "$d"
}

# ---------------------------------------------------------------------------------------

all=$(declare -F | awk '{print $3}' | sed -n 's/^case_//p')
if [ $# -eq 0 ]; then set -- $all; fi
for c in "$@"; do
  if ! declare -F "case_$c" >/dev/null; then echo "make-live: no case $c" >&2; exit 2; fi
  "case_$c" "$c"
  echo "live: $c"
done
