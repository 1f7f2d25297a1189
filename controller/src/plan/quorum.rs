//! The votequorum model (reference/domain.md §2.5), pure arithmetic.
//!
//! - expected votes = the runtime override (`-e`), else `quorum.expected_votes`, else the sum of
//!   the nodelist's `quorum_votes`; raised to the votes present when those are higher;
//! - quorum = expected / 2 + 1 (integer division), or 1 with `two_node` and two nodes;
//! - `corosync-quorumtool -e N` is accepted only for present <= N <= 2 x present - 1.

use std::collections::{BTreeMap, BTreeSet};

/// The inputs of votequorum's arithmetic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VoteState {
    /// Votes per node of the nodelist.
    pub votes: BTreeMap<String, u32>,
    /// Nodes currently in the membership.
    pub online: BTreeSet<String>,
    /// `quorum.expected_votes` from corosync.conf.
    pub config_expected: Option<u32>,
    /// A runtime override (`-e`).
    pub runtime_expected: Option<u32>,
    /// `quorum.two_node: 1`.
    pub two_node: bool,
}

impl VoteState {
    /// Votes of the members present.
    pub fn total(&self) -> u32 {
        self.online.iter().filter_map(|n| self.votes.get(n)).sum()
    }

    /// Expected votes as votequorum computes them.
    pub fn expected(&self) -> u32 {
        let configured = self
            .runtime_expected
            .or(self.config_expected)
            .unwrap_or_else(|| self.votes.values().sum());
        configured.max(self.total())
    }

    /// Votes needed for quorum.
    pub fn quorum(&self) -> u32 {
        if self.two_node && self.votes.len() == 2 {
            1
        } else {
            self.expected() / 2 + 1
        }
    }

    /// Whether the members present have quorum.
    pub fn quorate(&self) -> bool {
        !self.online.is_empty() && self.total() >= self.quorum()
    }

    /// `total >= quorum`, spelled out for messages.
    pub fn arithmetic(&self) -> String {
        format!(
            "{} of {} expected votes present, quorum {} ({} / 2 + 1)",
            self.total(),
            self.expected(),
            self.quorum(),
            self.expected()
        )
    }
}

/// Whether `corosync-quorumtool -e n` is accepted with `present` votes in the membership;
/// `Err` explains the refusal with the arithmetic.
pub fn expected_votes_accepted(n: u32, present: u32) -> Result<(), String> {
    let max = (2 * present).saturating_sub(1);
    if n < present {
        Err(format!(
            "expected votes {n} is below the {present} votes present; corosync refuses it (CS_ERR_INVALID_PARAM)"
        ))
    } else if n > max {
        Err(format!(
            "expected votes {n} would need quorum {} but only {present} votes are present (accepted range {present}..{max})",
            n / 2 + 1
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(votes: &[(&str, u32)], online: &[&str]) -> VoteState {
        VoteState {
            votes: votes.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
            online: online.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn three_nodes_survive_one_failure_not_two() {
        let all = [("a", 1), ("b", 1), ("c", 1)];
        assert!(state(&all, &["a", "b", "c"]).quorate());
        assert!(state(&all, &["a", "b"]).quorate());
        let one = state(&all, &["a"]);
        assert!(!one.quorate());
        assert_eq!((one.expected(), one.quorum(), one.total()), (3, 2, 1));
    }

    #[test]
    fn four_nodes_need_three() {
        let all = [("a", 1), ("b", 1), ("c", 1), ("d", 1)];
        assert!(!state(&all, &["a", "b"]).quorate());
        let mut s = state(&all, &["a", "b"]);
        s.runtime_expected = Some(2);
        assert!(s.quorate(), "{}", s.arithmetic());
    }

    #[test]
    fn expected_is_raised_to_present_votes() {
        let mut s = state(&[("a", 1), ("b", 1), ("c", 1)], &["a", "b", "c"]);
        s.runtime_expected = Some(1);
        assert_eq!(s.expected(), 3);
    }

    #[test]
    fn two_node_keeps_quorum_with_one() {
        let mut s = state(&[("a", 1), ("b", 1)], &["a"]);
        assert!(!s.quorate());
        s.two_node = true;
        assert!(s.quorate());
    }

    #[test]
    fn expected_votes_range() {
        assert!(expected_votes_accepted(2, 2).is_ok());
        assert!(expected_votes_accepted(3, 2).is_ok());
        assert!(expected_votes_accepted(4, 2).is_err());
        assert!(expected_votes_accepted(1, 2).is_err());
    }

    #[test]
    fn weighted_votes_count() {
        let s = state(&[("a", 3), ("b", 1), ("c", 1)], &["a"]);
        assert_eq!((s.total(), s.expected(), s.quorum()), (3, 5, 3));
        assert!(s.quorate());
    }
}
