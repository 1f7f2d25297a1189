//! Values derived from the typed view: generation, effective transport, links, votes.

use super::view::{ConfShape, CorosyncConf, LinkNumberKey, Node};
use std::collections::BTreeSet;

impl CorosyncConf {
    /// corosync 2 when `rrp_mode` is set or an interface is numbered by `ringnumber` (and not
    /// `linknumber`); corosync 3 otherwise.
    pub fn shape(&self) -> ConfShape {
        let ringnumber = self
            .totem
            .interfaces
            .values()
            .any(|i| i.number_key == LinkNumberKey::Ringnumber);
        if self.totem.rrp_mode.is_some() || ringnumber {
            ConfShape::Corosync2
        } else {
            ConfShape::Corosync3
        }
    }

    /// The transport corosync uses: `totem.transport` if set, else the default of the
    /// file's generation ([`CorosyncConf::shape`]): `udp` for corosync 2, `knet` for 3.
    pub fn effective_transport(&self) -> &str {
        match (&self.totem.transport, self.shape()) {
            (Some(t), _) => t,
            (None, ConfShape::Corosync2) => "udp",
            (None, ConfShape::Corosync3) => "knet",
        }
    }

    /// Every link number in use: configured interfaces and `ring<N>_addr` of any node.
    pub fn link_numbers(&self) -> BTreeSet<u8> {
        let mut links: BTreeSet<u8> = self.totem.interfaces.keys().copied().collect();
        links.extend(self.nodes.iter().flat_map(|n| n.rings.keys().copied()));
        links
    }

    /// The (first) node called `name`.
    pub fn node_by_name(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name.as_deref() == Some(name))
    }

    /// The (first) node with id `id`.
    pub fn node_by_id(&self, id: u32) -> Option<&Node> {
        self.nodes.iter().find(|n| n.nodeid == Some(id))
    }

    /// Expected votes as votequorum computes them from the file: `quorum.expected_votes` if
    /// set, else the sum of the nodes' votes; `None` when neither exists (corosync refuses
    /// to start).
    pub fn expected_votes_config(&self) -> Option<u32> {
        self.quorum
            .expected_votes
            .or_else(|| (!self.nodes.is_empty()).then(|| self.total_configured_votes()))
    }

    /// Sum of `quorum_votes` over the nodelist (1 for nodes without it).
    pub fn total_configured_votes(&self) -> u32 {
        self.nodes.iter().fold(0u32, |acc, n| {
            acc.saturating_add(n.quorum_votes.unwrap_or(1))
        })
    }
}
