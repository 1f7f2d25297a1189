//! The one queue every trigger goes through (kube's `debounced_scheduler`, for one key: this
//! daemon's cluster). Each kind of trigger has at most one pending entry; the earliest entry
//! wins; event-like triggers (file events, webhook, SIGHUP) are debounced on the trailing
//! edge (a burst becomes one run, `debounce` after its last event, but never later than
//! `max_delay` after its first). When the earliest entry is due, every entry due by then is
//! taken together: one reconcile serves them all.

use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// Why a reconcile runs (for tracing only: the reconcile itself never depends on it, so it
/// stays idempotent — kube hides the reason for the same reason). The order is the order of
/// precedence in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trigger {
    /// The daemon started.
    Startup,
    /// A webhook request with a valid signature.
    Webhook,
    /// SIGHUP.
    Signal,
    /// `pve-gitops suspend` / `resume` changed the flag.
    Suspend,
    /// A live config file changed (and not by this daemon).
    TargetChanged,
    /// The local path source changed.
    SourceChanged,
    /// Retry after a transient error (backoff).
    Retry,
    /// Re-check a `wait` gate or a step waiting for another node / the cluster lock.
    Gate,
    /// Periodic resync (`--interval`): re-observe and correct (or report) drift.
    Resync,
    /// Periodic poll of the git source (`--poll-interval`).
    Poll,
}

impl Trigger {
    /// Whether the trigger asks for a reconcile even when the source revision is unchanged
    /// (everything except source polls and source file events, which only matter when they
    /// bring a new revision).
    pub fn forces_reconcile(self) -> bool {
        !matches!(self, Trigger::Poll | Trigger::SourceChanged)
    }

    /// Lower-case name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::Webhook => "webhook",
            Trigger::Signal => "sighup",
            Trigger::Suspend => "suspend",
            Trigger::TargetChanged => "target-changed",
            Trigger::SourceChanged => "source-changed",
            Trigger::Retry => "retry",
            Trigger::Gate => "gate",
            Trigger::Resync => "resync",
            Trigger::Poll => "poll",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    run_at: Instant,
    /// First request of a debounced burst.
    first: Instant,
}

/// The queue.
#[derive(Debug)]
pub struct Scheduler {
    entries: BTreeMap<Trigger, Entry>,
    /// Quiet time a burst of events must leave before it runs.
    pub debounce: Duration,
    /// Longest a burst can delay its run.
    pub max_delay: Duration,
}

impl Scheduler {
    /// An empty queue.
    pub fn new(debounce: Duration) -> Scheduler {
        Scheduler {
            entries: BTreeMap::new(),
            debounce,
            max_delay: (debounce * 10).max(Duration::from_secs(1)),
        }
    }

    /// An event now: run `debounce` after the last event of the burst (bounded by
    /// `max_delay` after the first).
    pub fn trigger(&mut self, t: Trigger) {
        let now = Instant::now();
        let e = self.entries.entry(t).or_insert(Entry {
            run_at: now + self.debounce,
            first: now,
        });
        e.run_at = (now + self.debounce).min(e.first + self.max_delay);
    }

    /// A timed request: run at `at`; an earlier pending request of the same kind wins.
    pub fn schedule_at(&mut self, t: Trigger, at: Instant) {
        let e = self.entries.entry(t).or_insert(Entry {
            run_at: at,
            first: at,
        });
        if at < e.run_at {
            e.run_at = at;
            e.first = at;
        }
    }

    /// A timed request `after` from now.
    pub fn schedule_in(&mut self, t: Trigger, after: Duration) {
        self.schedule_at(t, Instant::now() + after);
    }

    /// Replace the pending request of kind `t` (a new requeue time from the last reconcile).
    pub fn reschedule(&mut self, t: Trigger, after: Duration) {
        self.entries.remove(&t);
        self.schedule_in(t, after);
    }

    /// Drop the pending request of kind `t`.
    pub fn cancel(&mut self, t: Trigger) {
        self.entries.remove(&t);
    }

    /// When the next run is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.entries.values().map(|e| e.run_at).min()
    }

    /// Take every request due by `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<Trigger> {
        let due: Vec<Trigger> = self
            .entries
            .iter()
            .filter(|(_, e)| e.run_at <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in &due {
            self.entries.remove(t);
        }
        due
    }

    /// Wait until the next run is due and take every due request (pending forever while the
    /// queue is empty; cancel-safe).
    pub async fn ready(&mut self) -> Vec<Trigger> {
        loop {
            match self.next_deadline() {
                None => std::future::pending::<()>().await,
                Some(at) => tokio::time::sleep_until(at).await,
            }
            let due = self.take_due(Instant::now());
            if !due.is_empty() {
                return due;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[tokio::test(start_paused = true)]
    async fn burst_is_debounced_on_the_trailing_edge() {
        let start = Instant::now();
        let mut s = Scheduler::new(ms(200));
        s.trigger(Trigger::SourceChanged);
        tokio::time::advance(ms(50)).await;
        s.trigger(Trigger::SourceChanged);
        tokio::time::advance(ms(50)).await;
        s.trigger(Trigger::SourceChanged);
        let due = s.ready().await;
        assert_eq!(due, vec![Trigger::SourceChanged]);
        assert_eq!(Instant::now() - start, ms(300));
        assert!(s.next_deadline().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn endless_burst_runs_by_max_delay() {
        let start = Instant::now();
        let mut s = Scheduler::new(ms(100));
        for _ in 0..30 {
            s.trigger(Trigger::TargetChanged);
            tokio::time::advance(ms(50)).await;
            if !s.take_due(Instant::now()).is_empty() {
                break;
            }
        }
        assert!(
            Instant::now() - start <= ms(1050),
            "{:?}",
            Instant::now() - start
        );
    }

    #[tokio::test(start_paused = true)]
    async fn earliest_wins_and_due_entries_run_together() {
        let start = Instant::now();
        let mut s = Scheduler::new(ms(200));
        s.schedule_in(Trigger::Resync, Duration::from_secs(300));
        s.schedule_in(Trigger::Poll, Duration::from_secs(60));
        s.schedule_in(Trigger::Poll, Duration::from_secs(90));
        s.schedule_in(Trigger::Gate, Duration::from_secs(60));
        let due = s.ready().await;
        assert_eq!(due, vec![Trigger::Gate, Trigger::Poll]);
        assert_eq!(Instant::now() - start, Duration::from_secs(60));
        s.trigger(Trigger::Webhook);
        let due = s.ready().await;
        assert_eq!(due, vec![Trigger::Webhook]);
        assert_eq!(Instant::now() - start, Duration::from_secs(60) + ms(200));
        let due = s.ready().await;
        assert_eq!(due, vec![Trigger::Resync]);
        assert_eq!(Instant::now() - start, Duration::from_secs(300));
    }

    #[tokio::test(start_paused = true)]
    async fn reschedule_replaces() {
        let mut s = Scheduler::new(ms(10));
        s.schedule_in(Trigger::Resync, ms(100));
        s.reschedule(Trigger::Resync, ms(500));
        let start = Instant::now();
        s.ready().await;
        assert_eq!(Instant::now() - start, ms(500));
        assert!(Trigger::Webhook.forces_reconcile());
        assert!(!Trigger::Poll.forces_reconcile());
    }
}
