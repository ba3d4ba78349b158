//! Exponential smoothing, in the two forms the server needs: a lock-free
//! moving average of durations ([`AtomicEma`], for the rates waits are
//! estimated from: batch time, decode time per megapixel) and a sum that
//! decays with wall time ([`DecayedSum`], for what the last few seconds
//! held: how busy the replicas were, how many requests were in flight).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A new sample weighs 1/DIVISOR: smooth enough to ignore one slow sample,
/// quick enough to follow a load change.
const DIVISOR: u64 = 5;

/// An EMA of nanosecond samples; 0 means no sample yet.
#[derive(Debug, Default)]
pub struct AtomicEma(AtomicU64);

impl AtomicEma {
    /// Folds in `sample` (at least 1, so a sample is never "none yet").
    pub fn record(&self, sample: u64) {
        let sample = sample.max(1);
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |previous| {
                Some(if previous == 0 {
                    sample
                } else {
                    previous - previous / DIVISOR + sample / DIVISOR
                })
            });
    }

    /// The average, or `None` before the first sample.
    pub fn get(&self) -> Option<u64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            value => Some(value),
        }
    }
}

/// Σ amount × e^(−age / time constant) over what was added, as of the last
/// update. Divided by the time constant it is a time average: amounts of
/// busy time give the busy share, and a level `L` held for `Δ` (added as
/// `L · τ · (1 − e^(−Δ/τ))`, see [`DecayedSum::hold`]) gives the
/// exponentially weighted average of that level. Not synchronised: its
/// owner keeps it under the lock that guards what it measures.
#[derive(Debug, Clone)]
pub struct DecayedSum {
    sum: f64,
    at: Option<Instant>,
    time_constant: Duration,
}

impl DecayedSum {
    pub fn new(time_constant: Duration) -> Self {
        Self {
            sum: 0.0,
            at: None,
            time_constant,
        }
    }

    /// The sum as of `now` (earlier instants than the last update read as
    /// the last update: clocks read on different threads may cross).
    pub fn at(&self, now: Instant) -> f64 {
        self.at.map_or(0.0, |at| {
            let age = now.saturating_duration_since(at).as_secs_f64();
            self.sum * (-age / self.time_constant.as_secs_f64()).exp()
        })
    }

    /// Adds `amount` at `now`.
    pub fn add(&mut self, amount: f64, now: Instant) {
        self.sum = self.at(now) + amount;
        self.at = Some(self.at.map_or(now, |at| at.max(now)));
    }

    /// Accounts for `level` having been held since the last update (or
    /// since `now`, the first time), and returns the weighted average of
    /// the level over time as of `now`.
    pub fn hold(&mut self, level: f64, now: Instant) -> f64 {
        let tau = self.time_constant.as_secs_f64();
        let held = self
            .at
            .map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64());
        self.add(level * tau * (1.0 - (-held / tau).exp()), now);
        self.average(now)
    }

    /// The sum as of `now` over the time constant: a time average.
    pub fn average(&self, now: Instant) -> f64 {
        self.at(now) / self.time_constant.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAU: Duration = Duration::from_secs(5);

    #[test]
    fn an_amount_fades_by_e_per_time_constant() {
        let t0 = Instant::now();
        let mut sum = DecayedSum::new(TAU);
        assert_eq!(sum.at(t0), 0.0);
        sum.add(2.0, t0);
        assert_eq!(sum.at(t0), 2.0);
        assert!((sum.at(t0 + TAU) - 2.0 * (-1.0f64).exp()).abs() < 1e-12);
        // An earlier instant than the last update reads as the update.
        assert_eq!(sum.at(t0 - Duration::from_secs(1)), 2.0);
    }

    #[test]
    fn a_held_level_becomes_its_average() {
        let t0 = Instant::now();
        let mut sum = DecayedSum::new(TAU);
        assert_eq!(sum.hold(0.0, t0), 0.0);
        let one_tau = sum.hold(2.0, t0 + TAU);
        assert!((one_tau - 2.0 * (1.0 - (-1.0f64).exp())).abs() < 1e-9);
        assert!((sum.hold(2.0, t0 + TAU * 30) - 2.0).abs() < 1e-6);
        // Holding for no time changes nothing.
        let settled = sum.average(t0 + TAU * 30);
        assert_eq!(sum.hold(7.0, t0 + TAU * 30), settled);
    }

    #[test]
    fn the_first_sample_is_the_average_and_later_ones_weigh_a_fifth() {
        let ema = AtomicEma::default();
        assert_eq!(ema.get(), None);
        ema.record(1000);
        assert_eq!(ema.get(), Some(1000));
        ema.record(2000);
        assert_eq!(ema.get(), Some(1200));
        ema.record(0);
        assert_eq!(ema.get(), Some(960));
    }
}
