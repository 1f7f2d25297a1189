//! The typed, merged view of a document (what corosync would load), for `--json` and import.

use super::document::{Body, Document, Item, Section};
use serde::Serialize;
use std::collections::BTreeMap;

/// Which corosync generation a file is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfShape {
    /// corosync 2 (PVE ≤ 5): `rrp_mode`, `ringnumber`.
    Corosync2,
    /// corosync 3 (PVE ≥ 6): knet links.
    Corosync3,
}

/// Which key gave an interface its link number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkNumberKey {
    /// `linknumber:` (corosync 3).
    Linknumber,
    /// `ringnumber:` (corosync 2).
    Ringnumber,
    /// Neither: link 0.
    Default,
}

/// The merged configuration as corosync would load it (repeated sections merged, last wins).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CorosyncConf {
    /// The `totem` section(s).
    pub totem: Totem,
    /// The nodes of every `nodelist`, in file order.
    pub nodes: Vec<Node>,
    /// The `quorum` section(s).
    pub quorum: Quorum,
    /// Features a `Cluster` manifest cannot express, for an importer to warn about.
    pub unsupported: Vec<String>,
}

/// The `totem` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Totem {
    /// `cluster_name`.
    pub cluster_name: Option<String>,
    /// `config_version`.
    pub config_version: Option<u64>,
    /// `version` (must be 2).
    pub version: Option<u32>,
    /// `transport` as written (see [`CorosyncConf::effective_transport`]).
    pub transport: Option<String>,
    /// `link_mode` (corosync 3).
    pub link_mode: Option<String>,
    /// `rrp_mode` (corosync 2).
    pub rrp_mode: Option<String>,
    /// `ip_version`.
    pub ip_version: Option<String>,
    /// `secauth`.
    pub secauth: Option<String>,
    /// `crypto_cipher`.
    pub crypto_cipher: Option<String>,
    /// `crypto_hash`.
    pub crypto_hash: Option<String>,
    /// `token` (ms).
    pub token: Option<u32>,
    /// `token_coefficient` (ms).
    pub token_coefficient: Option<u32>,
    /// Interfaces by link number (blocks with the same number merged, last wins).
    pub interfaces: BTreeMap<u8, Interface>,
    /// Every other totem key (last wins).
    pub other: BTreeMap<String, String>,
}

/// One `totem.interface` block (merged by link number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interface {
    /// The link number (`linknumber`, or cs2 `ringnumber`, or 0).
    pub linknumber: u8,
    /// Which key gave the link number.
    pub number_key: LinkNumberKey,
    /// `knet_link_priority`.
    pub knet_link_priority: Option<u8>,
    /// `bindnetaddr` (udp/cs2).
    pub bindnetaddr: Option<String>,
    /// `mcastaddr` (udp).
    pub mcastaddr: Option<String>,
    /// `mcastport`.
    pub mcastport: Option<u16>,
    /// `ttl`.
    pub ttl: Option<u8>,
    /// `knet_transport`.
    pub knet_transport: Option<String>,
    /// `member { memberaddr }` blocks (cs1/cs2 udpu).
    pub members: Vec<String>,
    /// Every other key.
    pub other: BTreeMap<String, String>,
}

/// One `nodelist.node` block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Node {
    /// `name`.
    pub name: Option<String>,
    /// `nodeid`.
    pub nodeid: Option<u32>,
    /// `quorum_votes` (corosync default 1).
    pub quorum_votes: Option<u32>,
    /// `ring<N>_addr` by link number.
    pub rings: BTreeMap<u8, String>,
    /// Every other key.
    pub other: BTreeMap<String, String>,
}

/// The `quorum` settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Quorum {
    /// `provider`.
    pub provider: Option<String>,
    /// `expected_votes`.
    pub expected_votes: Option<u32>,
    /// `two_node`.
    pub two_node: Option<u8>,
    /// `wait_for_all`.
    pub wait_for_all: Option<u8>,
    /// `last_man_standing`.
    pub last_man_standing: Option<u8>,
    /// `last_man_standing_window`.
    pub last_man_standing_window: Option<u32>,
    /// `auto_tie_breaker`.
    pub auto_tie_breaker: Option<u8>,
    /// `auto_tie_breaker_node`.
    pub auto_tie_breaker_node: Option<String>,
    /// `device { ... }` (qdevice).
    pub device: Option<QuorumDevice>,
    /// Every other key.
    pub other: BTreeMap<String, String>,
}

/// `quorum.device` (corosync-qdevice).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct QuorumDevice {
    /// `model` (`net`).
    pub model: Option<String>,
    /// `votes`.
    pub votes: Option<u32>,
    /// `timeout`.
    pub timeout: Option<u32>,
    /// `sync_timeout`.
    pub sync_timeout: Option<u32>,
    /// `net { ... }`.
    pub net: Option<QdeviceNet>,
    /// `heuristics { mode, exec_* }`, verbatim.
    pub heuristics: BTreeMap<String, String>,
    /// Every other key.
    pub other: BTreeMap<String, String>,
}

/// `quorum.device.net`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct QdeviceNet {
    /// `host`.
    pub host: Option<String>,
    /// `port`.
    pub port: Option<u16>,
    /// `algorithm` (`ffsplit`, `lms`).
    pub algorithm: Option<String>,
    /// `tie_breaker`.
    pub tie_breaker: Option<String>,
    /// `tls`.
    pub tls: Option<String>,
    /// Every other key.
    pub other: BTreeMap<String, String>,
}

/// Keys, last wins, of several bodies.
fn merged<'a>(bodies: impl IntoIterator<Item = &'a Body>) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for body in bodies {
        for e in body.entries() {
            map.insert(e.key.clone(), e.value.clone());
        }
    }
    map
}

fn num<T: std::str::FromStr>(map: &mut BTreeMap<String, String>, key: &str) -> Option<T> {
    let v = map.remove(key)?;
    v.strip_prefix('+').unwrap_or(&v).parse().ok()
}

fn ring_link(key: &str) -> Option<u8> {
    key.strip_prefix("ring")?
        .strip_suffix("_addr")?
        .parse()
        .ok()
}

struct Collector {
    unsupported: Vec<String>,
}

impl Collector {
    fn note(&mut self, what: String) {
        if !self.unsupported.contains(&what) {
            self.unsupported.push(what);
        }
    }

    fn totem(&mut self, sections: &[&Section]) -> Totem {
        let mut kv = merged(sections.iter().map(|s| &s.body));
        let mut interfaces: BTreeMap<u8, (LinkNumberKey, Vec<&Section>)> = BTreeMap::new();
        for s in sections {
            for item in &s.body.items {
                let Item::Section(sub) = item else { continue };
                if sub.name != "interface" {
                    self.note(format!("totem.{} section", sub.name));
                    continue;
                }
                let (n, key) = match (sub.get("linknumber"), sub.get("ringnumber")) {
                    (Some(v), _) => (v.parse().unwrap_or(0), LinkNumberKey::Linknumber),
                    (None, Some(v)) => (v.parse().unwrap_or(0), LinkNumberKey::Ringnumber),
                    (None, None) => (0, LinkNumberKey::Default),
                };
                let slot = interfaces.entry(n).or_insert((key, Vec::new()));
                slot.0 = key;
                slot.1.push(sub);
            }
        }
        let interfaces = interfaces
            .into_iter()
            .map(|(n, (key, blocks))| (n, self.interface(n, key, &blocks)))
            .collect();
        let t = Totem {
            cluster_name: kv.remove("cluster_name"),
            config_version: num(&mut kv, "config_version"),
            version: num(&mut kv, "version"),
            transport: kv.remove("transport"),
            link_mode: kv.remove("link_mode"),
            rrp_mode: kv.remove("rrp_mode"),
            ip_version: kv.remove("ip_version"),
            secauth: kv.remove("secauth"),
            crypto_cipher: kv.remove("crypto_cipher"),
            crypto_hash: kv.remove("crypto_hash"),
            token: num(&mut kv, "token"),
            token_coefficient: num(&mut kv, "token_coefficient"),
            interfaces,
            other: kv,
        };
        if let Some(t) = t.transport.as_deref().filter(|t| *t != "knet") {
            self.note(format!("totem.transport: {t}"));
        }
        if t.rrp_mode.is_some() {
            self.note("totem.rrp_mode".to_string());
        }
        for k in t.other.keys() {
            self.note(format!("totem.{k}"));
        }
        t
    }

    fn interface(&mut self, n: u8, key: LinkNumberKey, blocks: &[&Section]) -> Interface {
        let mut kv = merged(blocks.iter().map(|s| &s.body));
        kv.remove("linknumber");
        kv.remove("ringnumber");
        let members = blocks
            .iter()
            .flat_map(|b| b.sections("member"))
            .filter_map(|m| m.get("memberaddr").map(str::to_string))
            .collect::<Vec<_>>();
        if !members.is_empty() {
            self.note(format!("totem.interface[{n}].member"));
        }
        if key == LinkNumberKey::Ringnumber {
            self.note(format!("totem.interface[{n}].ringnumber"));
        }
        let i = Interface {
            linknumber: n,
            number_key: key,
            knet_link_priority: num(&mut kv, "knet_link_priority"),
            bindnetaddr: kv.remove("bindnetaddr"),
            mcastaddr: kv.remove("mcastaddr"),
            mcastport: num(&mut kv, "mcastport"),
            ttl: num(&mut kv, "ttl"),
            knet_transport: kv.remove("knet_transport"),
            members,
            other: kv,
        };
        let present = [
            ("bindnetaddr", i.bindnetaddr.is_some()),
            ("mcastaddr", i.mcastaddr.is_some()),
            ("mcastport", i.mcastport.is_some()),
            ("ttl", i.ttl.is_some()),
            ("knet_transport", i.knet_transport.is_some()),
        ];
        for (k, here) in present {
            if here {
                self.note(format!("totem.interface[{n}].{k}"));
            }
        }
        for k in i.other.keys() {
            self.note(format!("totem.interface[{n}].{k}"));
        }
        i
    }

    fn node(&mut self, s: &Section) -> Node {
        let mut kv = merged([&s.body]);
        let mut node = Node {
            name: kv.remove("name"),
            nodeid: num(&mut kv, "nodeid"),
            quorum_votes: num(&mut kv, "quorum_votes"),
            ..Node::default()
        };
        for (k, v) in kv {
            match ring_link(&k) {
                Some(n) => {
                    node.rings.insert(n, v);
                }
                None => {
                    node.other.insert(k, v);
                }
            }
        }
        let label = node.name.clone().unwrap_or_else(|| "?".to_string());
        for k in node.other.keys() {
            self.note(format!("nodelist.node[{label}].{k}"));
        }
        for sub in s.body.items.iter().filter_map(Item::as_section) {
            self.note(format!("nodelist.node[{label}].{} section", sub.name));
        }
        node
    }

    fn quorum(&mut self, sections: &[&Section]) -> Quorum {
        let mut kv = merged(sections.iter().map(|s| &s.body));
        let devices: Vec<&Section> = sections.iter().flat_map(|s| s.sections("device")).collect();
        let device = (!devices.is_empty()).then(|| {
            self.note("quorum.device (qdevice)".to_string());
            let mut d = merged(devices.iter().map(|s| &s.body));
            let nets: Vec<&Section> = devices.iter().flat_map(|s| s.sections("net")).collect();
            let net = (!nets.is_empty()).then(|| {
                let mut n = merged(nets.iter().map(|s| &s.body));
                QdeviceNet {
                    host: n.remove("host"),
                    port: num(&mut n, "port"),
                    algorithm: n.remove("algorithm"),
                    tie_breaker: n.remove("tie_breaker"),
                    tls: n.remove("tls"),
                    other: n,
                }
            });
            QuorumDevice {
                model: d.remove("model"),
                votes: num(&mut d, "votes"),
                timeout: num(&mut d, "timeout"),
                sync_timeout: num(&mut d, "sync_timeout"),
                net,
                heuristics: merged(
                    devices
                        .iter()
                        .flat_map(|s| s.sections("heuristics"))
                        .map(|s| &s.body),
                ),
                other: d,
            }
        });
        let q = Quorum {
            provider: kv.remove("provider"),
            expected_votes: num(&mut kv, "expected_votes"),
            two_node: num(&mut kv, "two_node"),
            wait_for_all: num(&mut kv, "wait_for_all"),
            last_man_standing: num(&mut kv, "last_man_standing"),
            last_man_standing_window: num(&mut kv, "last_man_standing_window"),
            auto_tie_breaker: num(&mut kv, "auto_tie_breaker"),
            auto_tie_breaker_node: kv.remove("auto_tie_breaker_node"),
            device,
            other: kv,
        };
        if let Some(p) = q
            .provider
            .as_deref()
            .filter(|p| *p != "corosync_votequorum")
        {
            self.note(format!("quorum.provider: {p}"));
        }
        let flags = [
            (
                "last_man_standing",
                q.last_man_standing.is_some_and(|v| v != 0),
            ),
            (
                "auto_tie_breaker",
                q.auto_tie_breaker.is_some_and(|v| v != 0),
            ),
        ];
        for (k, on) in flags {
            if on {
                self.note(format!("quorum.{k}"));
            }
        }
        for k in q.other.keys() {
            self.note(format!("quorum.{k}"));
        }
        q
    }
}

/// Sections whose content the manifest ignores on purpose or models.
const KNOWN_SECTIONS: &[&str] = &[
    "totem",
    "nodelist",
    "quorum",
    "logging",
    "system",
    "resources",
];

impl Document {
    /// The typed view: repeated sections merged, duplicate keys last-wins, like corosync.
    /// Numbers that do not parse (only possible in recovered documents) are `None`.
    pub fn view(&self) -> CorosyncConf {
        let mut c = Collector {
            unsupported: Vec::new(),
        };
        for item in &self.root.items {
            match item {
                Item::Entry(e) => c.note(format!("top-level key {}", e.key)),
                Item::Section(s) if !KNOWN_SECTIONS.contains(&s.name.as_str()) => {
                    c.note(format!("section {}", s.name));
                }
                Item::Section(_) => {}
            }
        }
        let totem = c.totem(&self.sections(&["totem"]));
        let mut nodes = Vec::new();
        for list in self.sections(&["nodelist"]) {
            for item in &list.body.items {
                match item {
                    Item::Section(s) if s.name == "node" => nodes.push(c.node(s)),
                    other => c.note(format!("nodelist.{}", other.name())),
                }
            }
        }
        let quorum = c.quorum(&self.sections(&["quorum"]));
        CorosyncConf {
            totem,
            nodes,
            quorum,
            unsupported: c.unsupported,
        }
    }
}
