//! The `Cluster` manifest (`apiVersion: pve-gitops.io/v1alpha1`, `kind: Cluster`): serde types.
//!
//! Field names follow the corosync / Proxmox vocabulary (`ring0_addr`, `rrp_mode`,
//! `quorum_votes`). Unknown fields are rejected. The JSON Schema generated from these types
//! ([`json_schema`]) is committed as `schema/cluster.schema.json`.
//!
//! Use [`crate::validate::parse_and_validate`] to read a manifest: it reports every problem with
//! its location. Deserializing these types directly skips the semantic rules.

use ipnet::IpNet;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The only supported `apiVersion`.
pub const API_VERSION: &str = "pve-gitops.io/v1alpha1";
/// The only supported `kind`.
pub const KIND: &str = "Cluster";
/// Highest corosync link number (knet supports links 0..=7).
pub const MAX_LINK: u8 = 7;

/// A desired Proxmox VE / corosync cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "pve-gitops Cluster manifest")]
pub struct Cluster {
    /// Always `pve-gitops.io/v1alpha1`.
    #[serde(rename = "apiVersion")]
    pub api_version: ApiVersion,
    /// Always `Cluster`.
    pub kind: Kind,
    /// Name of the cluster.
    pub metadata: Metadata,
    /// The desired state.
    pub spec: ClusterSpec,
}

/// The manifest's API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ApiVersion {
    /// `pve-gitops.io/v1alpha1`
    #[serde(rename = "pve-gitops.io/v1alpha1")]
    V1Alpha1,
}

/// The manifest's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Kind {
    /// `Cluster`
    Cluster,
}

/// Manifest metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// corosync `totem.cluster_name`: letters, digits and `-`, at most 15 characters
    /// (pvecm's rule). Immutable once the cluster is created.
    #[schemars(
        length(min = 1, max = 15),
        regex(pattern = r"^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$")
    )]
    pub name: String,
}

/// The desired cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// corosync `totem` settings.
    #[serde(default)]
    pub totem: Totem,
    /// The cluster's nodes, present and to be removed.
    pub nodes: Vec<Node>,
    /// votequorum settings.
    #[serde(default, skip_serializing_if = "Quorum::is_empty")]
    pub quorum: Quorum,
    /// datacenter.cfg migration settings; only the keys given here are managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration: Option<Migration>,
    /// Desired guest placement; guests not listed are not touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guests: Vec<Guest>,
    /// Reconcile policy.
    #[serde(default, skip_serializing_if = "Policy::is_default")]
    pub policy: Policy,
}

/// corosync `totem` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Totem {
    /// `knet` (corosync 3, PVE >= 6; default), `udpu` or `udp` (corosync 2).
    #[serde(default)]
    pub transport: Transport,
    /// Redundant ring / link mode. Written as `link_mode` for knet and `rrp_mode` otherwise.
    /// Default: corosync's (`passive` for knet, `none` for udp/udpu).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrp_mode: Option<RrpMode>,
    /// Address families corosync resolves ring addresses to (default `ipv4-6`).
    #[serde(default)]
    pub ip_version: IpVersion,
    /// Encrypt and authenticate cluster traffic (default true).
    #[serde(default = "default_true")]
    pub secauth: bool,
    /// `totem.token_coefficient` in ms (PVE writes 125 on new clusters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_coefficient: Option<u32>,
    /// Per-link settings (`totem.interface` blocks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkSettings>,
}

impl Default for Totem {
    fn default() -> Self {
        Totem {
            transport: Transport::default(),
            rrp_mode: None,
            ip_version: IpVersion::default(),
            secauth: true,
            token_coefficient: None,
            links: Vec::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_votes() -> u32 {
    1
}

/// corosync transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Kronosnet (corosync 3). Up to 8 links.
    #[default]
    Knet,
    /// UDP unicast (corosync 2, or corosync 3 builds with UDPU). Up to 2 rings.
    Udpu,
    /// UDP multicast (corosync 2). Up to 2 rings.
    Udp,
}

impl Transport {
    /// The spelling in corosync.conf and in the manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Knet => "knet",
            Transport::Udpu => "udpu",
            Transport::Udp => "udp",
        }
    }

    /// Highest link / ring number this transport supports.
    pub fn max_link(self) -> u8 {
        match self {
            Transport::Knet => MAX_LINK,
            Transport::Udpu | Transport::Udp => 1,
        }
    }
}

/// Redundant ring mode (corosync 2 `rrp_mode`) / link mode (corosync 3 `link_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RrpMode {
    /// One ring only (corosync 2).
    None,
    /// Use one link at a time, the highest `priority` first.
    Passive,
    /// Send on all links.
    Active,
    /// Round robin over links (knet only).
    Rr,
}

impl RrpMode {
    /// The spelling in corosync.conf.
    pub fn as_str(self) -> &'static str {
        match self {
            RrpMode::None => "none",
            RrpMode::Passive => "passive",
            RrpMode::Active => "active",
            RrpMode::Rr => "rr",
        }
    }
}

/// `totem.ip_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum IpVersion {
    /// IPv4 only.
    #[serde(rename = "ipv4")]
    Ipv4,
    /// IPv6 only.
    #[serde(rename = "ipv6")]
    Ipv6,
    /// IPv4 first, then IPv6 (PVE's default).
    #[default]
    #[serde(rename = "ipv4-6")]
    Ipv4Then6,
    /// IPv6 first, then IPv4.
    #[serde(rename = "ipv6-4")]
    Ipv6Then4,
}

impl IpVersion {
    /// The spelling in corosync.conf.
    pub fn as_str(self) -> &'static str {
        match self {
            IpVersion::Ipv4 => "ipv4",
            IpVersion::Ipv6 => "ipv6",
            IpVersion::Ipv4Then6 => "ipv4-6",
            IpVersion::Ipv6Then4 => "ipv6-4",
        }
    }

    /// Whether an address of this family may be used.
    pub fn allows(self, addr: &IpAddr) -> bool {
        match self {
            IpVersion::Ipv4 => addr.is_ipv4(),
            IpVersion::Ipv6 => addr.is_ipv6(),
            IpVersion::Ipv4Then6 | IpVersion::Ipv6Then4 => true,
        }
    }
}

/// Settings of one corosync link (`totem.interface { linknumber: N }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkSettings {
    /// Link number (0-7 for knet, 0-1 for udp/udpu).
    pub number: u8,
    /// `knet_link_priority` (0-255); in passive mode the highest priority link is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// `bindnetaddr` (udp/udpu only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bindnetaddr: Option<IpAddr>,
}

/// Whether a node should be in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// The node is (or joins) the cluster.
    #[default]
    Present,
    /// Evacuate its guests, wait until it is powered off and out of the membership, delnode.
    Absent,
}

/// One cluster node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Hostname (LDH); immutable once joined.
    pub name: String,
    /// corosync nodeid (knet: 1-65535); unique; immutable once joined.
    pub nodeid: u32,
    /// Votes this node contributes to quorum (default 1).
    #[serde(default = "default_votes")]
    pub quorum_votes: u32,
    /// Address on link 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring0_addr: Option<String>,
    /// Address on link 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring1_addr: Option<String>,
    /// Address on link 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring2_addr: Option<String>,
    /// Address on link 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring3_addr: Option<String>,
    /// Address on link 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring4_addr: Option<String>,
    /// Address on link 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring5_addr: Option<String>,
    /// Address on link 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring6_addr: Option<String>,
    /// Address on link 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring7_addr: Option<String>,
    /// The node's other interface addresses (CIDR), beyond its ring addresses; used for checks
    /// such as the migration network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "cidr_list_schema")]
    pub addresses: Vec<IpNet>,
    /// `present` (default) or `absent`.
    #[serde(default, skip_serializing_if = "is_present")]
    pub state: NodeState,
}

fn is_present(s: &NodeState) -> bool {
    *s == NodeState::Present
}

impl Node {
    /// The address on link `n` (0..=7), if set.
    pub fn ring_addr(&self, n: u8) -> Option<&str> {
        match n {
            0 => self.ring0_addr.as_deref(),
            1 => self.ring1_addr.as_deref(),
            2 => self.ring2_addr.as_deref(),
            3 => self.ring3_addr.as_deref(),
            4 => self.ring4_addr.as_deref(),
            5 => self.ring5_addr.as_deref(),
            6 => self.ring6_addr.as_deref(),
            7 => self.ring7_addr.as_deref(),
            _ => None,
        }
    }

    /// Mutable access to the address slot of link `n` (0..=7).
    pub fn ring_addr_mut(&mut self, n: u8) -> Option<&mut Option<String>> {
        Some(match n {
            0 => &mut self.ring0_addr,
            1 => &mut self.ring1_addr,
            2 => &mut self.ring2_addr,
            3 => &mut self.ring3_addr,
            4 => &mut self.ring4_addr,
            5 => &mut self.ring5_addr,
            6 => &mut self.ring6_addr,
            7 => &mut self.ring7_addr,
            _ => return None,
        })
    }

    /// `(link number, address)` for every link this node has an address on, in link order.
    pub fn rings(&self) -> impl Iterator<Item = (u8, &str)> {
        (0..=MAX_LINK).filter_map(|n| self.ring_addr(n).map(|a| (n, a)))
    }

    /// True unless `state: absent`.
    pub fn is_present(&self) -> bool {
        self.state == NodeState::Present
    }
}

/// votequorum settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Quorum {
    /// Runtime expected-votes override (`pvecm expected N`); omit normally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_votes: Option<u32>,
    /// votequorum `two_node` (only with exactly two voting nodes, never with a quorum device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub two_node: Option<bool>,
    /// votequorum `wait_for_all`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_all: Option<bool>,
}

impl Quorum {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Quorum::default()
    }
}

/// Migration type (`datacenter.cfg` `migration: type=...`): the same type datacenter.cfg uses.
pub use crate::datacenter::MigrationType;

/// datacenter.cfg migration settings; only the keys given are managed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    /// `secure` or `insecure`; required when `network` is set.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub mtype: Option<MigrationType>,
    /// Dedicated migration network (CIDR); every present node needs exactly one address in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "cidr_opt_schema")]
    pub network: Option<IpNet>,
    /// datacenter.cfg `max_workers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<u32>,
    /// KiB/s, written as datacenter.cfg `bwlimit: migration=N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_limit: Option<u64>,
}

/// Guest type.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum GuestType {
    /// A QEMU virtual machine (`qm`).
    Qemu,
    /// An LXC container (`pct`).
    Lxc,
}

impl GuestType {
    /// The spelling in manifests and `.vmlist`.
    pub fn as_str(self) -> &'static str {
        match self {
            GuestType::Qemu => "qemu",
            GuestType::Lxc => "lxc",
        }
    }
}

/// Desired placement of one guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Guest {
    /// Guest id (100-999999999), unique in the cluster.
    pub vmid: u32,
    /// `qemu` or `lxc`.
    #[serde(rename = "type")]
    pub gtype: GuestType,
    /// The node it should run on (a present node of this manifest).
    pub node: String,
    /// Live migration for running qemu guests / restart migration for running lxc guests
    /// (default true). With `false` a running guest is not moved.
    #[serde(default = "default_true")]
    pub online: bool,
}

/// Reconcile policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// true: live nodes missing from the manifest are removed; false (default): reported as drift.
    #[serde(default)]
    pub prune_nodes: bool,
    /// Allow `migration.type: insecure` over a network that is not private.
    #[serde(default)]
    pub allow_insecure_migration: bool,
}

impl Policy {
    /// True when every field has its default.
    pub fn is_default(&self) -> bool {
        *self == Policy::default()
    }
}

impl Cluster {
    /// Nodes that should be in the cluster.
    pub fn present_nodes(&self) -> impl Iterator<Item = &Node> {
        self.spec.nodes.iter().filter(|n| n.is_present())
    }

    /// The link numbers used by present nodes, sorted.
    pub fn link_numbers(&self) -> Vec<u8> {
        let mut v: Vec<u8> = self
            .present_nodes()
            .flat_map(|n| n.rings().map(|(l, _)| l))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Sum of the votes of present nodes.
    pub fn present_votes(&self) -> u64 {
        self.present_nodes()
            .map(|n| u64::from(n.quorum_votes))
            .sum()
    }

    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.spec.nodes.iter().find(|n| n.name == name)
    }

    /// The effective link mode: the manifest's, else corosync's default for the transport.
    pub fn effective_rrp_mode(&self) -> RrpMode {
        self.spec
            .totem
            .rrp_mode
            .unwrap_or(match self.spec.totem.transport {
                Transport::Knet => RrpMode::Passive,
                Transport::Udp | Transport::Udpu => RrpMode::None,
            })
    }
}

/// An IPv4 or IPv6 network pattern. ipnet's own `IpNet` schema is a `oneOf` whose IPv6 branch
/// also matches IPv4 text, so validators reject every IPv4 network; this one is unambiguous.
const CIDR_PATTERN: &str = r"^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])/(3[0-2]|[12]?[0-9])$|^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*/(12[0-8]|1[01][0-9]|[1-9]?[0-9])$";

fn cidr_schema() -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "format": "cidr",
        "pattern": CIDR_PATTERN,
        "examples": ["10.1.2.0/24", "fd00:1::/64"]
    })
}

fn cidr_opt_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = cidr_schema();
    s.insert("type".into(), serde_json::json!(["string", "null"]));
    s
}

fn cidr_list_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "array", "items": cidr_schema() })
}

/// The manifest's JSON Schema (draft 2020-12) as pretty JSON with a trailing newline.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(Cluster);
    let mut s = serde_json::to_string_pretty(&schema).unwrap_or_default();
    s.push('\n');
    s
}
