//! How busy the replicas have been lately: the share of wall time spent in
//! forward passes, exponentially weighted (time constant [`WINDOW`]).
//! Admission reads it to know how much of a CPU the steady stream of small
//! requests leaves a heavy newcomer, whose decoding runs below the forward
//! passes' priority (`infer/low_priority.rs`).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::ema::DecayedSum;

/// The time constant: long enough to span many passes, short enough that a
/// burst that ended stops counting within seconds.
pub(super) const WINDOW: Duration = Duration::from_secs(5);

/// The decayed sum of pass times; its average over the window is the busy
/// share.
#[derive(Debug)]
pub(super) struct BusyShare {
    busy_seconds: Mutex<DecayedSum>,
}

impl BusyShare {
    pub(super) fn new(window: Duration) -> Self {
        Self {
            busy_seconds: Mutex::new(DecayedSum::new(window)),
        }
    }

    fn sum(&self) -> std::sync::MutexGuard<'_, DecayedSum> {
        // A plain number, consistent after any panic.
        self.busy_seconds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A pass of `took` ended at `now`.
    pub(super) fn record(&self, took: Duration, now: Instant) {
        self.sum().add(took.as_secs_f64(), now);
    }

    /// The share of the last `WINDOW`s spent in passes by `replicas`
    /// replicas, 0 to 1.
    pub(super) fn share(&self, replicas: usize, now: Instant) -> f64 {
        (self.sum().average(now) / replicas.max(1) as f64).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_to_back_passes_approach_all_of_the_time_and_fade_after() {
        let busy = BusyShare::new(WINDOW);
        let t0 = Instant::now();
        assert_eq!(busy.share(1, t0), 0.0);
        // 100 ms passes back to back for 50 s (ten windows): all busy.
        let pass = Duration::from_millis(100);
        let mut now = t0;
        for _ in 0..500 {
            now += pass;
            busy.record(pass, now);
        }
        let share = busy.share(1, now);
        assert!((share - 1.0).abs() < 0.02, "{share}");
        // Two replicas doing the same work are half busy each.
        assert!((busy.share(2, now) - 0.5).abs() < 0.01);
        // One window later with no pass: e^-1 of it.
        let later = busy.share(1, now + WINDOW);
        assert!((later - (-1.0f64).exp()).abs() < 0.02, "{later}");
    }

    #[test]
    fn passes_half_the_time_are_half_busy() {
        let busy = BusyShare::new(WINDOW);
        let mut now = Instant::now();
        for _ in 0..500 {
            now += Duration::from_millis(200);
            busy.record(Duration::from_millis(100), now);
        }
        let share = busy.share(1, now);
        assert!((share - 0.5).abs() < 0.02, "{share}");
    }
}
