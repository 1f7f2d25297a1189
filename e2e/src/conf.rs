//! Rendering of a *test* corosync.conf (PVE layout, knet, fast token).
//!
//! This exists only for the harness's own smoke tests; pve-gitops writes the real files.

use std::fmt::Write as _;

/// One `node {}` entry of a test nodelist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfNode {
    /// `name:` (the harness uses `pve<nodeid>`).
    pub name: String,
    /// `nodeid:`.
    pub nodeid: u32,
    /// `quorum_votes:`.
    pub votes: u32,
    /// `ring<L>_addr:` for L = 0.. (one entry per link).
    pub addrs: Vec<String>,
}

/// A whole test corosync.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestConf {
    /// `totem.cluster_name`.
    pub cluster_name: String,
    /// `totem.config_version`.
    pub config_version: u64,
    /// Number of knet links (`interface { linknumber: L }` for L < links).
    pub links: usize,
    /// `totem.token` in ms (1000 keeps failure detection around 3.5 s).
    pub token_ms: u32,
    /// `(knet_ping_interval, knet_ping_timeout)` in ms for every `interface {}`; `None`
    /// keeps corosync's defaults. libknet declares a link down only after
    /// `knet_ping_timeout * backoff` (backoff 10 when the link comes up, -1 per second),
    /// so a young link takes ~2-3 s with the defaults: longer than a 1000 ms token, and a
    /// cable pull would re-form the ring instead of failing over silently.
    pub knet_ping_ms: Option<(u32, u32)>,
    /// The nodes.
    pub nodes: Vec<ConfNode>,
}

impl TestConf {
    /// Render in the layout Proxmox VE writes (logging, nodelist, quorum, totem).
    /// Every node must have at least `links` addresses.
    pub fn render(&self) -> String {
        let mut s = String::new();
        s.push_str(
            "logging {\n  debug: off\n  to_syslog: no\n  to_stderr: no\n  to_logfile: yes\n  \
             logfile: /var/log/corosync/corosync.log\n  timestamp: on\n}\n\nnodelist {\n",
        );
        for n in &self.nodes {
            let _ = write!(
                s,
                "  node {{\n    name: {}\n    nodeid: {}\n    quorum_votes: {}\n",
                n.name, n.nodeid, n.votes
            );
            for (l, a) in n.addrs.iter().take(self.links).enumerate() {
                let _ = writeln!(s, "    ring{l}_addr: {a}");
            }
            s.push_str("  }\n");
        }
        s.push_str("}\n\nquorum {\n  provider: corosync_votequorum\n}\n\ntotem {\n");
        let _ = writeln!(s, "  cluster_name: {}", self.cluster_name);
        let _ = writeln!(s, "  config_version: {}", self.config_version);
        for l in 0..self.links {
            let _ = writeln!(s, "  interface {{\n    linknumber: {l}");
            if let Some((interval, timeout)) = self.knet_ping_ms {
                let _ = writeln!(
                    s,
                    "    knet_ping_interval: {interval}\n    knet_ping_timeout: {timeout}"
                );
            }
            s.push_str("  }\n");
        }
        let _ = write!(
            s,
            "  ip_version: ipv4\n  link_mode: passive\n  secauth: on\n  crypto_cipher: aes256\n  \
             crypto_hash: sha256\n  token: {}\n  transport: knet\n  version: 2\n}}\n",
            self.token_ms
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_links_and_version() {
        let c = TestConf {
            cluster_name: "e2e".into(),
            config_version: 7,
            links: 2,
            token_ms: 1000,
            knet_ping_ms: Some((100, 400)),
            nodes: vec![ConfNode {
                name: "pve1".into(),
                nodeid: 1,
                votes: 1,
                addrs: vec!["10.1.0.1".into(), "10.1.1.1".into()],
            }],
        };
        let t = c.render();
        assert!(t.contains("    ring0_addr: 10.1.0.1\n    ring1_addr: 10.1.1.1\n"));
        assert!(t.contains("  config_version: 7\n"));
        assert!(t.contains("    linknumber: 1\n    knet_ping_interval: 100\n"));
        assert!(t.contains("  token: 1000\n"));
        assert_eq!(t.matches('{').count(), t.matches('}').count());
    }
}
