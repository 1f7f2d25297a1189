#!/bin/sh
# Install exactly what the pve-gitops e2e harness (crate pve-gitops-e2e) needs, on
# Debian 12 / Ubuntu, as root. CI calls this before `cargo test -p pve-gitops-e2e`.
#
#   corosync    corosync -f, corosync-{quorumtool,cmapctl,cfgtool,keygen}; brings libknet
#               (transport knet, crypto_nss/openssl plugins) and creates /etc/corosync,
#               /var/lib/corosync, /var/log/corosync (bind-mount targets)
#   iproute2    ip netns / ip link / ip addr (namespaces, bridges, veths)
#   util-linux  unshare, nsenter
#   mount       mount --bind
#   procps      kill (signals by PID; the crate forbids unsafe), sysctl
#   hostname    hostname (per-node UTS namespace)
#
# Nothing is started: the postinst's "policy-rc.d denied execution of start" is expected.
set -eu

if [ "$(id -u)" != 0 ]; then
    echo "install-deps.sh: must run as root" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
    corosync iproute2 util-linux mount procps hostname

corosync -v | head -n 1
