//! A lock-free exponential moving average of durations, for the rates the
//! server estimates waits from (batch time, decode time per megapixel).

use std::sync::atomic::{AtomicU64, Ordering};

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

#[cfg(test)]
mod tests {
    use super::*;

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
