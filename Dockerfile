# syntax=docker/dockerfile:1
# The pve-gitops controller image (see docs/helm.md).
#
#   docker build -t REGISTRY/pve-gitops:0.1.0 .
#
# Runs as the unprivileged user 10001 (the Helm chart's runAsUser). Writable paths it expects
# (the chart mounts emptyDirs there; the root filesystem can stay read-only):
#   /var/lib/pve-gitops/state   --state-dir: status, suspend flag, git cache
#   /tmp                        scratch for git
# HOME is /var/lib/pve-gitops: libgit2 reads ~/.ssh/known_hosts to verify ssh git hosts.

FROM rust:1-bookworm AS build
WORKDIR /src
# The whole workspace (members: schema, controller, e2e); .dockerignore keeps target/ out.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    cargo build --profile daemon --locked -p pve-gitops \
 && install -D -m 0755 target/daemon/pve-gitops /out/pve-gitops

FROM debian:bookworm-slim
# ca-certificates: git over https (libgit2 verifies the git server with the system CAs; the
# Proxmox VE API is trusted by --fingerprint or --ca-bundle only); libssl3: libgit2/libssh2;
# git + openssh-client: `git verify-commit` for SSH commit signatures (--verify-signatures,
# git runs ssh-keygen -Y); tini: PID 1 that forwards SIGTERM (graceful shutdown: the running
# step finishes) and reaps git's children.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 git openssh-client tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 pve-gitops \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/pve-gitops \
      --shell /usr/sbin/nologin pve-gitops \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/pve-gitops /var/lib/pve-gitops/state
COPY --from=build /out/pve-gitops /usr/local/bin/pve-gitops
USER 10001:10001
ENV HOME=/var/lib/pve-gitops
WORKDIR /var/lib/pve-gitops
# 9090 metrics and /healthz (--metrics-listen), 8443 webhook over TLS (--webhook-listen).
EXPOSE 9090 8443
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/pve-gitops"]
CMD ["--help"]
