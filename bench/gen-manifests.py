#!/usr/bin/env python3
"""Write N valid Cluster manifests (3..16 nodes, guests, migration) into DIR for benchmarks."""
import os, sys
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for i in range(n):
    nodes = 3 + i % 14
    lines = [
        "apiVersion: pve-gitops.io/v1alpha1", "kind: Cluster", "metadata:", f"  name: c{i}",
        "spec:", "  totem:", "    transport: knet", "    rrp_mode: passive", "    links:",
        "      - number: 0", "        priority: 10", "      - number: 1", "        priority: 20",
        "  nodes:",
    ]
    for k in range(1, nodes + 1):
        lines += [f"    - name: n{k}", f"      nodeid: {k}", f"      ring0_addr: 10.{i % 200}.0.{k}",
                  f"      ring1_addr: 10.{i % 200}.1.{k}", f"      addresses: [10.{i % 200}.2.{k}/24]"]
    lines += ["  migration:", "    type: secure", f"    network: 10.{i % 200}.2.0/24", "  guests:"]
    for g in range(10):
        lines += [f"    - vmid: {100 + g}", "      type: qemu", f"      node: n{1 + g % nodes}"]
    with open(os.path.join(out, f"cluster-{i:04}.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")
