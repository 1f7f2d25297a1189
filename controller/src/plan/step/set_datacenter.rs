//! `set_datacenter`: one datacenter.cfg key (`migration`, `max_workers`, `bwlimit`); every other
//! key, comment and the order are kept.

use crate::observed::Observed;
use serde::Serialize;

/// Set (or remove) one datacenter.cfg key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetDatacenter {
    /// The key.
    pub key: String,
    /// Its current value.
    pub from: Option<String>,
    /// Its new value (None removes the key).
    pub to: Option<String>,
}

impl SetDatacenter {
    /// One line for the plan.
    pub fn summary(&self) -> String {
        format!(
            "datacenter.cfg {}: {} -> {}",
            self.key,
            self.from.as_deref().unwrap_or("(unset)"),
            self.to.as_deref().unwrap_or("(unset)")
        )
    }

    /// The key has its new value.
    pub fn apply_model(&self, model: &mut Observed) {
        match &self.to {
            Some(v) => {
                // Values come from our own rendering of parsed values; a refusal would be a bug
                // that the real apply reports, so the model just keeps the old value then.
                let _ = model.datacenter.set(&self.key, v);
            }
            None => {
                model.datacenter.remove(&self.key);
            }
        }
    }
}
