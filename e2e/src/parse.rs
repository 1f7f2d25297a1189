//! Parsers for the text output of the corosync command-line tools.
//!
//! Formats are those of corosync 3.x (see `domain.md` §3). The parsers are lenient about
//! whitespace and unknown lines, strict about the fields they return.

use crate::error::{Error, Result};

/// Status of votequorum as printed by `corosync-quorumtool -s -p`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    /// `Quorate: Yes`.
    pub quorate: bool,
    /// `Node ID:` — the local node.
    pub local_nodeid: u32,
    /// `Ring ID:` as printed (`<leader hex>.<seq hex>` in corosync 3).
    pub ring_id: String,
    /// `Expected votes:`.
    pub expected_votes: u32,
    /// `Highest expected:`.
    pub highest_expected: u32,
    /// `Total votes:`.
    pub total_votes: u32,
    /// `Quorum:` (the number of votes needed).
    pub quorum: u32,
    /// `Flags:` words (`Quorate`, `2Node`, `WaitForAll`, `Qdevice`, ...).
    pub flags: Vec<String>,
    /// Node ids of the current members, sorted ascending (the Qdevice row, nodeid 0, is
    /// left out).
    pub members: Vec<u32>,
}

/// Parse `corosync-quorumtool -s [-p]` output.
pub fn parse_quorum_status(text: &str) -> Result<QuorumStatus> {
    const WHAT: &str = "corosync-quorumtool -s";
    let field = |name: &str| -> Option<&str> {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim())
        })
    };
    let num = |name: &str| -> Result<u32> {
        let v =
            field(name).ok_or_else(|| Error::parse(WHAT, format!("no `{name}:` line"), text))?;
        let first = v.split_whitespace().next().unwrap_or("");
        parse_u32(first)
            .ok_or_else(|| Error::parse(WHAT, format!("bad `{name}:` value {v:?}"), text))
    };
    let quorate = match field("Quorate") {
        Some("Yes") => true,
        Some("No") => false,
        other => {
            return Err(Error::parse(
                WHAT,
                format!("bad `Quorate:` value {other:?}"),
                text,
            ))
        }
    };
    let mut members = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("Nodeid") && t.contains("Votes") {
            in_table = true;
            continue;
        }
        if !in_table || t.is_empty() {
            continue;
        }
        let id = t.split_whitespace().next().unwrap_or("");
        let id = parse_u32(id)
            .ok_or_else(|| Error::parse(WHAT, format!("bad membership row {t:?}"), text))?;
        if id != 0 {
            members.push(id);
        }
    }
    if !in_table {
        return Err(Error::parse(WHAT, "no membership table", text));
    }
    members.sort_unstable();
    Ok(QuorumStatus {
        quorate,
        local_nodeid: num("Node ID")?,
        ring_id: field("Ring ID")
            .ok_or_else(|| Error::parse(WHAT, "no `Ring ID:` line", text))?
            .to_owned(),
        expected_votes: num("Expected votes")?,
        highest_expected: num("Highest expected")?,
        total_votes: num("Total votes")?,
        quorum: num("Quorum")?,
        flags: field("Flags")
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        members,
    })
}

/// Decimal or `0x`-hex (`-H`) unsigned number.
fn parse_u32(s: &str) -> Option<u32> {
    match s.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// One `corosync-cmapctl` line: `<key> (<type>) = <value>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmapEntry {
    /// The key, e.g. `totem.config_version`.
    pub key: String,
    /// The type name as printed: `u8`, `u32`, `u64`, `str`, ...
    pub ty: String,
    /// The value as printed (strings keep any trailing space corosync put there).
    pub value: String,
}

impl CmapEntry {
    /// The value as an unsigned integer, if it is one.
    pub fn as_u64(&self) -> Option<u64> {
        self.value.trim().parse().ok()
    }
}

/// Parse one or more `corosync-cmapctl` lines.
pub fn parse_cmap(text: &str) -> Result<Vec<CmapEntry>> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || Error::parse("corosync-cmapctl", format!("bad line {line:?}"), text);
        let (key, rest) = line.split_once(" (").ok_or_else(bad)?;
        let (ty, rest) = rest.split_once(") = ").ok_or_else(bad)?;
        out.push(CmapEntry {
            key: key.to_owned(),
            ty: ty.to_owned(),
            value: rest.to_owned(),
        });
    }
    Ok(out)
}

/// One knet link as printed by `corosync-cfgtool -s`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// `LINK ID <n>`.
    pub link: u32,
    /// The knet transport after the id (`udp`, `sctp`).
    pub transport: String,
    /// `addr = ...`, the local address on this link.
    pub addr: String,
    /// `(nodeid, status)` pairs; status is e.g. `localhost`, `connected`, `disconnected`.
    pub nodes: Vec<(u32, String)>,
}

impl LinkInfo {
    /// The status string for `nodeid` on this link.
    pub fn status_of(&self, nodeid: u32) -> Option<&str> {
        self.nodes
            .iter()
            .find(|(n, _)| *n == nodeid)
            .map(|(_, s)| s.as_str())
    }
}

/// `corosync-cfgtool -s` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStatus {
    /// `Local node ID <n>`.
    pub local_nodeid: u32,
    /// `transport <t>` (e.g. `knet`).
    pub transport: String,
    /// The configured links, in printed order.
    pub links: Vec<LinkInfo>,
}

impl LinkStatus {
    /// The link with number `link`.
    pub fn link(&self, link: u32) -> Option<&LinkInfo> {
        self.links.iter().find(|l| l.link == link)
    }
}

/// Parse `corosync-cfgtool -s` (corosync 3 / knet format).
pub fn parse_link_status(text: &str) -> Result<LinkStatus> {
    const WHAT: &str = "corosync-cfgtool -s";
    let mut local = None;
    let mut transport = String::new();
    let mut links: Vec<LinkInfo> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("Local node ID ") {
            let (id, tr) = rest.split_once(',').unwrap_or((rest, ""));
            local = id.trim().parse().ok();
            transport = tr.trim().trim_start_matches("transport").trim().to_owned();
        } else if let Some(rest) = t.strip_prefix("LINK ID ") {
            let mut it = rest.split_whitespace();
            let link = it
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Error::parse(WHAT, format!("bad line {t:?}"), text))?;
            links.push(LinkInfo {
                link,
                transport: it.next().unwrap_or("").to_owned(),
                addr: String::new(),
                nodes: Vec::new(),
            });
        } else if let Some(rest) = t.strip_prefix("addr") {
            if let Some(l) = links.last_mut() {
                l.addr = rest.trim().trim_start_matches('=').trim().to_owned();
            }
        } else if let Some(rest) = t.strip_prefix("nodeid:") {
            let (id, status) = rest
                .split_once(':')
                .ok_or_else(|| Error::parse(WHAT, format!("bad line {t:?}"), text))?;
            let id = id
                .trim()
                .parse()
                .map_err(|_| Error::parse(WHAT, format!("bad nodeid in {t:?}"), text))?;
            let l = links
                .last_mut()
                .ok_or_else(|| Error::parse(WHAT, "nodeid line before any LINK ID", text))?;
            l.nodes.push((id, status.trim().to_owned()));
        }
    }
    Ok(LinkStatus {
        local_nodeid: local.ok_or_else(|| Error::parse(WHAT, "no `Local node ID` line", text))?,
        transport,
        links,
    })
}

/// One remote node as printed by `corosync-cfgtool -n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReachability {
    /// The remote node id.
    pub nodeid: u32,
    /// `reachable` appears on the node line.
    pub reachable: bool,
    /// The node's links.
    pub links: Vec<NodeLink>,
}

impl NodeReachability {
    /// The entry for link number `link`.
    pub fn link(&self, link: u32) -> Option<&NodeLink> {
        self.links.iter().find(|l| l.link == link)
    }
}

/// One `LINK:` line under a node in `corosync-cfgtool -n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLink {
    /// The link number.
    pub link: u32,
    /// `(src->dst)` as printed, without parentheses.
    pub addrs: String,
    /// The word `enabled` appears.
    pub enabled: bool,
    /// The word `connected` appears.
    pub connected: bool,
}

/// Parse `corosync-cfgtool -n`.
pub fn parse_node_status(text: &str) -> Result<Vec<NodeReachability>> {
    const WHAT: &str = "corosync-cfgtool -n";
    let mut out: Vec<NodeReachability> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("nodeid:") {
            let mut words = rest.split_whitespace();
            let id = words
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Error::parse(WHAT, format!("bad line {t:?}"), text))?;
            out.push(NodeReachability {
                nodeid: id,
                reachable: words.any(|w| w == "reachable"),
                links: Vec::new(),
            });
        } else if let Some(rest) = t.strip_prefix("LINK:") {
            let words: Vec<&str> = rest.split_whitespace().collect();
            let link = words
                .first()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Error::parse(WHAT, format!("bad line {t:?}"), text))?;
            let addrs = words
                .iter()
                .find(|w| w.starts_with('('))
                .map(|w| w.trim_matches(|c| c == '(' || c == ')').to_owned())
                .unwrap_or_default();
            let node = out
                .last_mut()
                .ok_or_else(|| Error::parse(WHAT, "LINK line before any nodeid", text))?;
            node.links.push(NodeLink {
                link,
                addrs,
                enabled: words.contains(&"enabled"),
                connected: words.contains(&"connected"),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUORATE: &str = "Quorum information
------------------
Date:             Tue May  6 10:00:00 2025
Quorum provider:  corosync_votequorum
Nodes:            3
Node ID:          1
Ring ID:          1.9
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   3
Highest expected: 3
Total votes:      3
Quorum:           2  
Flags:            Quorate 

Membership information
----------------------
    Nodeid      Votes    Qdevice Name
         3          1         NR pve3
         1          1         NR pve1 (local)
         2          1         NR pve2
";

    #[test]
    fn quorate_status() {
        let s = parse_quorum_status(QUORATE).unwrap();
        assert!(s.quorate);
        assert_eq!(s.local_nodeid, 1);
        assert_eq!(s.ring_id, "1.9");
        assert_eq!(
            (
                s.expected_votes,
                s.highest_expected,
                s.total_votes,
                s.quorum
            ),
            (3, 3, 3, 2)
        );
        assert_eq!(s.flags, vec!["Quorate"]);
        assert_eq!(s.members, vec![1, 2, 3]);
    }

    #[test]
    fn blocked_status_and_hex_ids() {
        let text = QUORATE
            .replace("Quorate:          Yes", "Quorate:          No")
            .replace(
                "Quorum:           2  ",
                "Quorum:           2 Activity blocked",
            )
            .replace("         3          1 ", "0x00000003          1 ")
            .replace("Flags:            Quorate ", "Flags:            ");
        let s = parse_quorum_status(&text).unwrap();
        assert!(!s.quorate);
        assert_eq!(s.quorum, 2);
        assert!(s.flags.is_empty());
        assert_eq!(s.members, vec![1, 2, 3]);
    }

    #[test]
    fn qdevice_row_is_not_a_member() {
        let text = format!("{QUORATE}         0          1            Qdevice\n");
        assert_eq!(parse_quorum_status(&text).unwrap().members, vec![1, 2, 3]);
    }

    #[test]
    fn truncated_status_is_an_error() {
        assert!(parse_quorum_status("Quorate: Yes\n").is_err());
    }

    #[test]
    fn cmap_lines() {
        let e = parse_cmap(
            "totem.config_version (u64) = 5\nruntime.members.1.ip (str) = r(0) ip(10.0.0.1) \n",
        )
        .unwrap();
        assert_eq!(e[0].key, "totem.config_version");
        assert_eq!(e[0].ty, "u64");
        assert_eq!(e[0].as_u64(), Some(5));
        assert_eq!(e[1].value, "r(0) ip(10.0.0.1) ");
        assert!(parse_cmap("garbage\n").is_err());
    }

    #[test]
    fn cfgtool_s() {
        let s = parse_link_status(
            "Local node ID 2, transport knet
LINK ID 0 udp
\taddr\t= 10.99.0.2
\tstatus:
\t\tnodeid:          1:\tconnected
\t\tnodeid:          2:\tlocalhost
\t\tnodeid:          3:\tconnected
LINK ID 1 udp
\taddr\t= 10.99.1.2
\tstatus:
\t\tnodeid:          1:\tdisconnected
",
        )
        .unwrap();
        assert_eq!(s.local_nodeid, 2);
        assert_eq!(s.transport, "knet");
        assert_eq!(s.links.len(), 2);
        assert_eq!(s.link(0).unwrap().addr, "10.99.0.2");
        assert_eq!(s.link(0).unwrap().status_of(3), Some("connected"));
        assert_eq!(s.link(1).unwrap().status_of(1), Some("disconnected"));
    }

    #[test]
    fn cfgtool_n() {
        let n = parse_node_status(
            "Local node ID 1, transport knet
nodeid: 2 reachable   onwire (min/max/cur): 0, 1, 1
   LINK: 0 udp (10.99.0.1->10.99.0.2) enabled connected mtu: 1397
   LINK: 1 udp (10.99.1.1->10.99.1.2) enabled mtu: 1397

nodeid: 3 reachable   onwire (min/max/cur): 0, 1, 1
   LINK: 0 udp (10.99.0.1->10.99.0.3) enabled connected mtu: 1397
",
        )
        .unwrap();
        assert_eq!(n.len(), 2);
        assert!(n[0].reachable);
        assert!(n[0].link(0).unwrap().connected);
        assert!(!n[0].link(1).unwrap().connected);
        assert!(n[0].link(1).unwrap().enabled);
        assert_eq!(n[1].link(0).unwrap().addrs, "10.99.0.1->10.99.0.3");
    }
}
