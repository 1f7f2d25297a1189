//! Per-cluster exponential backoff with jitter for transient errors (kube's `DefaultBackoff`
//! numbers: 800 ms, ×2, at most 30 s), reset by a success or after a quiet period.
//! kube's `error_policy` is stateless (kube-rs#1916), so this state is ours.

use std::time::Duration;
use tokio::time::Instant;

/// Backoff state.
#[derive(Debug)]
pub struct Backoff {
    /// First delay.
    pub min: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Growth per failure.
    pub factor: u32,
    /// ± this fraction of the delay is random (0.1 = ±10 %).
    pub jitter: f64,
    /// Without a failure for this long, the next failure starts from `min` again.
    pub reset_after: Duration,
    failures: u32,
    last_failure: Option<Instant>,
    rng: fastrand::Rng,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(fastrand::Rng::new())
    }
}

impl Backoff {
    /// The default backoff (800 ms → 30 s, ×2, ±10 % jitter, reset after 120 s) with `rng`
    /// for the jitter (seed it in tests).
    pub fn new(rng: fastrand::Rng) -> Backoff {
        Backoff {
            min: Duration::from_millis(800),
            max: Duration::from_secs(30),
            factor: 2,
            jitter: 0.1,
            reset_after: Duration::from_secs(120),
            failures: 0,
            last_failure: None,
            rng,
        }
    }

    /// Record a failure now and return how long to wait before retrying.
    pub fn next_delay(&mut self) -> Duration {
        let now = Instant::now();
        if self
            .last_failure
            .is_some_and(|t| now.duration_since(t) >= self.reset_after)
        {
            self.failures = 0;
        }
        self.last_failure = Some(now);
        let exp = self.factor.saturating_pow(self.failures.min(31));
        self.failures = self.failures.saturating_add(1);
        let base = self.min.saturating_mul(exp).min(self.max);
        let spread = (self.rng.f64() * 2.0 - 1.0) * self.jitter;
        let jittered = base.as_secs_f64() * (1.0 + spread);
        Duration::from_secs_f64(jittered.max(0.0)).min(self.max)
    }

    /// A success: the next failure starts from `min`.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.last_failure = None;
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[tokio::test(start_paused = true)]
    async fn grows_caps_and_resets() {
        let mut b = Backoff::new(fastrand::Rng::with_seed(7));
        let delays: Vec<f64> = (0..8).map(|_| secs(b.next_delay())).collect();
        let bases = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0];
        for (d, base) in delays.iter().zip(bases) {
            assert!(
                *d >= base * 0.9 - 1e-9 && *d <= (base * 1.1).min(30.0) + 1e-9,
                "{d} vs {base}"
            );
        }
        b.reset();
        let d = secs(b.next_delay());
        assert!((0.72..=0.88).contains(&d), "{d}");
    }

    #[tokio::test(start_paused = true)]
    async fn quiet_period_resets() {
        let mut b = Backoff::new(fastrand::Rng::with_seed(1));
        for _ in 0..5 {
            b.next_delay();
        }
        tokio::time::advance(Duration::from_secs(121)).await;
        let d = secs(b.next_delay());
        assert!(d < 1.0, "{d}");
        assert_eq!(b.failures(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn jitter_spreads() {
        let mut a = Backoff::new(fastrand::Rng::with_seed(1));
        let mut b = Backoff::new(fastrand::Rng::with_seed(2));
        let da: Vec<Duration> = (0..4).map(|_| a.next_delay()).collect();
        let db: Vec<Duration> = (0..4).map(|_| b.next_delay()).collect();
        assert_ne!(da, db);
    }
}
