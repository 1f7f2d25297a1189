//! Prometheus metrics of the daemon (prometheus-client), served as OpenMetrics text on
//! `--metrics-listen ADDR` at `/metrics`. Names follow Flux's `gotk_*` metrics where one
//! exists (`*_reconcile_duration_seconds`, `*_reconciles_total{result}`), so existing
//! dashboards need only the prefix changed:
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `pve_gitops_reconcile_duration_seconds` | histogram | wall-clock time of a reconcile |
//! | `pve_gitops_reconciles_total{result}` | counter | reconciles by result (`in_sync`, `drift_detected`, `waiting`, `stalled`, `failed`, `cancelled`, `locked`) |
//! | `pve_gitops_steps_applied_total{kind}` | counter | applied steps by step kind |
//! | `pve_gitops_drift_detected_total` | counter | resyncs that found the cluster different from the applied revision |
//! | `pve_gitops_in_sync` | gauge | 1 when the last reconcile found the cluster matching the manifest |
//! | `pve_gitops_suspended` | gauge | 1 while applying is suspended |
//! | `pve_gitops_last_successful_reconcile_timestamp_seconds` | gauge | Unix time of the last reconcile that ended in sync |
//! | `pve_gitops_source_fetch_errors_total` | counter | failed source fetches |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Label set `{result="..."}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// The reconcile's result.
    pub result: String,
}

/// Label set `{kind="..."}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The step kind.
    pub kind: String,
}

/// Every metric of the daemon, registered in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Reconcile duration.
    pub reconcile_duration: Histogram,
    /// Reconciles by result.
    pub reconciles: Family<ResultLabel, Counter>,
    /// Applied steps by kind.
    pub steps_applied: Family<KindLabel, Counter>,
    /// Drift found by a resync.
    pub drift_detected: Counter,
    /// 1 = in sync.
    pub in_sync: Gauge,
    /// 1 = suspended.
    pub suspended: Gauge,
    /// Unix time of the last in-sync reconcile.
    pub last_success: Gauge<f64, AtomicU64>,
    /// Failed fetches.
    pub fetch_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pve_gitops");
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let reconciles = Family::<ResultLabel, Counter>::default();
        let steps_applied = Family::<KindLabel, Counter>::default();
        let drift_detected = Counter::default();
        let in_sync = Gauge::default();
        let suspended = Gauge::default();
        let last_success = Gauge::<f64, AtomicU64>::default();
        let fetch_errors = Counter::default();
        registry.register(
            "reconcile_duration_seconds",
            "Wall-clock duration of a reconcile",
            reconcile_duration.clone(),
        );
        registry.register("reconciles", "Reconciles by result", reconciles.clone());
        registry.register(
            "steps_applied",
            "Applied steps by step kind",
            steps_applied.clone(),
        );
        registry.register(
            "drift_detected",
            "Resyncs that found the cluster different from the applied revision",
            drift_detected.clone(),
        );
        registry.register(
            "in_sync",
            "1 when the last reconcile found the cluster matching the manifest",
            in_sync.clone(),
        );
        registry.register(
            "suspended",
            "1 while applying is suspended",
            suspended.clone(),
        );
        registry.register(
            "last_successful_reconcile_timestamp_seconds",
            "Unix time of the last reconcile that ended in sync",
            last_success.clone(),
        );
        registry.register(
            "source_fetch_errors",
            "Failed source fetches",
            fetch_errors.clone(),
        );
        Metrics {
            registry,
            reconcile_duration,
            reconciles,
            steps_applied,
            drift_detected,
            in_sync,
            suspended,
            last_success,
            fetch_errors,
        }
    }

    /// Count a reconcile with `result` that took `seconds`.
    pub fn reconciled(&self, result: &str, seconds: f64) {
        self.reconcile_duration.observe(seconds);
        self.reconciles
            .get_or_create(&ResultLabel {
                result: result.to_string(),
            })
            .inc();
    }

    /// Count an applied step.
    pub fn step(&self, kind: &str) {
        self.steps_applied
            .get_or_create(&KindLabel {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The content type of [`Metrics::encode`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_every_metric() {
        let m = Metrics::new();
        m.reconciled("in_sync", 0.02);
        m.step("add_node");
        m.in_sync.set(1);
        m.last_success.set(1.7e9);
        let text = m.encode();
        for name in [
            "pve_gitops_reconcile_duration_seconds_bucket",
            "pve_gitops_reconciles_total{result=\"in_sync\"} 1",
            "pve_gitops_steps_applied_total{kind=\"add_node\"} 1",
            "pve_gitops_drift_detected_total 0",
            "pve_gitops_in_sync 1",
            "pve_gitops_suspended 0",
            "pve_gitops_last_successful_reconcile_timestamp_seconds",
            "pve_gitops_source_fetch_errors_total 0",
        ] {
            assert!(text.contains(name), "{name} missing:\n{text}");
        }
    }
}
