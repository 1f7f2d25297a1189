//! `set_expected_votes`: `pvecm expected N` (= `corosync-quorumtool -e N`), runtime only.

use crate::observed::Observed;
use serde::Serialize;

/// Set the runtime expected votes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetExpectedVotes {
    /// The new expected votes.
    pub expected: u32,
    /// Expected votes before.
    pub from: u32,
    /// The votes present when the plan was made.
    pub present: u32,
}

impl SetExpectedVotes {
    /// One line for the plan.
    pub fn summary(&self) -> String {
        format!(
            "expected votes {} -> {} ({} votes present; runtime only, like `pvecm expected {}`)",
            self.from, self.expected, self.present, self.expected
        )
    }

    /// votequorum uses the override until the next reload.
    pub fn apply_model(&self, model: &mut Observed) {
        model.membership.runtime_expected = Some(self.expected);
    }
}
