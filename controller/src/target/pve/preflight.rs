//! The join preflight: pve-cluster's `assert_joinable` (reference/domain.md §4.4) plus the
//! credentials a non-interactive join needs. Every problem is collected and reported at once,
//! with pvecm's wording.

use super::argv;
use super::parse::{ip_addr_lists_address, is_fingerprint};
use super::runner::Runner;
use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

/// What the preflight looks at.
#[derive(Debug, Clone)]
pub struct JoinCheck<'a> {
    /// The pmxcfs root (`/etc/pve`).
    pub root: &'a Path,
    /// corosync's directory (`/etc/corosync`).
    pub corosync_dir: &'a Path,
    /// VMIDs of the guests this host has.
    pub guests: Vec<u32>,
    /// The joining node's link addresses.
    pub links: &'a BTreeMap<u8, String>,
    /// Join over ssh.
    pub use_ssh: bool,
    /// The password file (join API).
    pub password_file: Option<&'a Path>,
    /// The peer's fingerprint (join API).
    pub fingerprint: Option<&'a str>,
}

/// Run every check; the problems as pvecm words them (`* ...` lines without the `* `).
pub fn check(c: &JoinCheck<'_>, runner: &mut dyn Runner, timeout: Duration) -> Vec<String> {
    let mut problems = Vec::new();
    let authkey = c.corosync_dir.join("authkey");
    if authkey.exists() {
        problems.push(format!(
            "authentication key '{}' already exists",
            authkey.display()
        ));
    }
    let conf = c.root.join("corosync.conf");
    if conf.exists() {
        problems.push(format!(
            "cluster config '{}' already exists",
            conf.display()
        ));
    }
    if !c.guests.is_empty() {
        let ids: Vec<String> = c.guests.iter().map(u32::to_string).collect();
        problems.push(format!(
            "this host already contains virtual guests ({})",
            ids.join(", ")
        ));
    }
    match runner.run(&argv::quorum_list(), None, timeout) {
        Ok(out) if out.success() => {
            problems.push("corosync is already running, is this node already in a cluster?!".into())
        }
        _ => {}
    }
    for (n, addr) in c.links {
        let logid = format!("link{n}");
        let ip = match addr.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => match (addr.as_str(), 0u16).to_socket_addrs() {
                Ok(mut it) => match it.next() {
                    Some(sa) => sa.ip(),
                    None => {
                        problems.push(format!("{logid}: cannot use '{addr}': no address"));
                        continue;
                    }
                },
                Err(e) => {
                    problems.push(format!("{logid}: cannot use '{addr}': {e}"));
                    continue;
                }
            },
        };
        let present = runner
            .run(&argv::ip_addr_show(&ip), None, timeout)
            .ok()
            .filter(|o| o.success())
            .is_some_and(|o| ip_addr_lists_address(&o.stdout));
        if !present {
            problems.push(format!(
                "{logid}: cannot use IP '{ip}', not found on local node!"
            ));
        }
    }
    if !c.use_ssh {
        match c.password_file {
            None => problems.push(
                "no --join-password-file: the join API needs the peer's root password (or use --use-ssh)"
                    .into(),
            ),
            Some(p) => match std::fs::metadata(p) {
                Ok(m) if m.is_file() && m.len() > 0 => {}
                Ok(_) => problems.push(format!("join password file {} is empty", p.display())),
                Err(e) => problems.push(format!(
                    "cannot read join password file {}: {e}",
                    p.display()
                )),
            },
        }
        match c.fingerprint {
            None => problems.push(
                "no --fingerprint: the join API pins the peer's certificate (SHA-256, as `pvecm add --fingerprint`)"
                    .into(),
            ),
            Some(fp) if !is_fingerprint(fp) => problems.push(format!(
                "--fingerprint '{fp}' is not a SHA-256 fingerprint (32 hex bytes separated by ':')"
            )),
            Some(_) => {}
        }
    }
    problems
}

/// The refusal text: every problem, then pvecm's summary line.
pub fn refusal(problems: &[String]) -> String {
    let mut s = String::new();
    for p in problems {
        s.push_str("\n* ");
        s.push_str(p);
    }
    s.push_str("\nCheck if node may join a cluster failed!");
    s
}
