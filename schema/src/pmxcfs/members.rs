//! `/etc/pve/.members` (pmxcfs `status.c` `cfs_create_memberlist_msg`).

use super::json::{get_flag, get_str, get_u64, parse_object, quote, shape};
use crate::diag::Diagnostic;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const RULE: &str = "pmxcfs-members";
const FILE: &str = ".members";

/// The content of `/etc/pve/.members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Members {
    /// The local node's name.
    pub nodename: String,
    /// pmxcfs's cluster-info change counter.
    pub version: u64,
    /// Cluster information; `None` when the node is not clustered (or corosync.conf is absent).
    pub cluster: Option<ClusterInfo>,
    /// The nodes of corosync.conf's nodelist by name (empty when not clustered).
    pub nodelist: BTreeMap<String, MemberNode>,
}

/// The `"cluster"` object of `.members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterInfo {
    /// `totem.cluster_name`.
    pub name: String,
    /// `totem.config_version`.
    pub version: u64,
    /// Number of nodes in the nodelist.
    pub nodes: u64,
    /// Whether this node is in a quorate partition.
    pub quorate: bool,
}

/// One node of `.members`' `"nodelist"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberNode {
    /// corosync nodeid.
    pub id: u64,
    /// Member of the pmxcfs CPG group (pmxcfs running and reachable).
    pub online: bool,
    /// The IP the node's own hostname resolves to, as the node announced it; `None` when not
    /// known (the key is then absent).
    pub ip: Option<String>,
}

impl Members {
    /// A not-clustered `.members` for `nodename`.
    pub fn standalone(nodename: impl Into<String>, version: u64) -> Self {
        Members {
            nodename: nodename.into(),
            version,
            cluster: None,
            nodelist: BTreeMap::new(),
        }
    }

    /// Parse `.members`. Accepts any JSON layout and key order; `online`/`quorate` may be
    /// `0`/`1` or booleans; `ip` is optional.
    pub fn parse(src: &str) -> Result<Members, Diagnostic> {
        let root = parse_object(src, RULE, FILE)?;
        let nodename = get_str(&root, "nodename", RULE, FILE, "")?;
        let version = get_u64(&root, "version", RULE, FILE, "")?;
        let cluster = match root.get("cluster") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Object(c)) => Some(ClusterInfo {
                name: get_str(c, "name", RULE, FILE, "cluster.")?,
                version: get_u64(c, "version", RULE, FILE, "cluster.")?,
                nodes: get_u64(c, "nodes", RULE, FILE, "cluster.")?,
                quorate: get_flag(c, "quorate", RULE, FILE, "cluster.")?,
            }),
            Some(_) => return Err(shape(RULE, FILE, "cluster", "is not an object")),
        };
        let mut nodelist = BTreeMap::new();
        match root.get("nodelist") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(nl)) => {
                for (name, node) in nl {
                    let path = format!("nodelist.{name}.");
                    let serde_json::Value::Object(n) = node else {
                        return Err(shape(
                            RULE,
                            FILE,
                            &format!("nodelist.{name}"),
                            "is not an object",
                        ));
                    };
                    let ip = match n.get("ip") {
                        None | Some(serde_json::Value::Null) => None,
                        Some(_) => Some(get_str(n, "ip", RULE, FILE, &path)?),
                    };
                    nodelist.insert(
                        name.clone(),
                        MemberNode {
                            id: get_u64(n, "id", RULE, FILE, &path)?,
                            online: get_flag(n, "online", RULE, FILE, &path)?,
                            ip,
                        },
                    );
                }
            }
            Some(_) => return Err(shape(RULE, FILE, "nodelist", "is not an object")),
        }
        Ok(Members {
            nodename,
            version,
            cluster,
            nodelist,
        })
    }

    /// Render in pmxcfs's exact byte layout. Nodes come in name order (pmxcfs uses hash
    /// order, which readers must not depend on). Without `cluster` the not-clustered form
    /// `{\n"nodename": "pve",\n"version": 0\n}\n` is printed and the nodelist is left out.
    pub fn render(&self) -> String {
        let mut s = String::from("{\n");
        let _ = writeln!(s, "\"nodename\": {},", quote(&self.nodename));
        match &self.cluster {
            None => {
                let _ = writeln!(s, "\"version\": {}", self.version);
            }
            Some(c) => {
                let _ = writeln!(s, "\"version\": {},", self.version);
                let _ = writeln!(
                    s,
                    "\"cluster\": {{ \"name\": {}, \"version\": {}, \"nodes\": {}, \"quorate\": {} }},",
                    quote(&c.name),
                    c.version,
                    c.nodes,
                    u8::from(c.quorate)
                );
                s.push_str("\"nodelist\": {\n");
                for (i, (name, n)) in self.nodelist.iter().enumerate() {
                    if i > 0 {
                        s.push_str(",\n");
                    }
                    let _ = write!(
                        s,
                        "  {}: {{ \"id\": {}, \"online\": {}",
                        quote(name),
                        n.id,
                        u8::from(n.online)
                    );
                    if let Some(ip) = &n.ip {
                        let _ = write!(s, ", \"ip\": {}", quote(ip));
                    }
                    s.push('}');
                }
                s.push_str("\n  }\n");
            }
        }
        s.push_str("}\n");
        s
    }
}
