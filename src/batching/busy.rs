//! How busy the replicas have been lately: the share of wall time spent in
//! forward passes, exponentially weighted (time constant [`WINDOW`]).
//! Admission reads it to know how much of a CPU the steady stream of small
//! requests leaves a heavy newcomer, whose decoding runs below the forward
//! passes' priority (`infer/low_priority.rs`).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The time constant: long enough to span many passes, short enough that a
/// burst that ended stops counting within seconds.
pub(super) const WINDOW: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Decay {
    /// Σ pass time × e^(−age / WINDOW), in seconds, as of `at`.
    busy_seconds: f64,
    at: Option<Instant>,
}

/// The decayed sum of pass times; its value over `WINDOW` is the busy share.
#[derive(Debug)]
pub(super) struct BusyShare {
    decay: Mutex<Decay>,
    window: Duration,
}

impl BusyShare {
    pub(super) fn new(window: Duration) -> Self {
        Self {
            decay: Mutex::new(Decay {
                busy_seconds: 0.0,
                at: None,
            }),
            window,
        }
    }

    fn decayed(&self, decay: &Decay, now: Instant) -> f64 {
        let Some(at) = decay.at else {
            return 0.0;
        };
        let age = now.saturating_duration_since(at).as_secs_f64();
        decay.busy_seconds * (-age / self.window.as_secs_f64()).exp()
    }

    /// A pass of `took` ended at `now`.
    pub(super) fn record(&self, took: Duration, now: Instant) {
        let mut decay = self.decay.lock().unwrap_or_else(PoisonError::into_inner);
        let busy = self.decayed(&decay, now) + took.as_secs_f64();
        decay.busy_seconds = busy;
        decay.at = Some(decay.at.map_or(now, |at| at.max(now)));
    }

    /// The share of the last `WINDOW`s spent in passes by `replicas`
    /// replicas, 0 to 1.
    pub(super) fn share(&self, replicas: usize, now: Instant) -> f64 {
        let decay = self.decay.lock().unwrap_or_else(PoisonError::into_inner);
        let per_replica = self.decayed(&decay, now) / replicas.max(1) as f64;
        (per_replica / self.window.as_secs_f64()).clamp(0.0, 1.0)
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
