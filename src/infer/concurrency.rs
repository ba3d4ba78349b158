//! How many admitted requests the server has held lately, on average over
//! time: admission's measure of the streams of requests that will keep
//! sharing the server with a newcomer for as long as it runs.
//!
//! The requests present at admission are not enough. Under a stream of
//! one-image requests a few are present at any moment, each almost done, so
//! each seems to cost a newcomer almost nothing; but each is replaced as it
//! ends, and for a heavy newcomer the stream takes its share all along.
//! Under processor sharing a request with work `w` beside `L` such streams
//! finishes after about `w × (1 + L)`, and by Little's law `L` is the time
//! average of the requests in flight (for an open stream of load ρ that is
//! `ρ / (1 − ρ)`, so the same rule covers open and closed clients).

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::batching::DecayedSum;

/// How fast the average follows a change: a stream that started this long
/// ago counts for 63 % of itself. Long enough to smooth the gaps between a
/// client's requests, short enough that a burst that ended no longer
/// refuses newcomers a few seconds later.
pub(super) const TIME_CONSTANT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct State {
    in_flight: u32,
    /// The count held over time, decayed.
    held: DecayedSum,
}

/// The number of requests in flight and its exponentially time-weighted
/// average; one per server, shared by every model (decoding and the CPU are).
#[derive(Debug)]
pub(super) struct Concurrency {
    state: Mutex<State>,
}

impl Concurrency {
    pub(super) fn new(now: Instant, time_constant: Duration) -> Self {
        let mut held = DecayedSum::new(time_constant);
        held.hold(0.0, now);
        Self {
            state: Mutex::new(State { in_flight: 0, held }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain numbers, consistent after any panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The average as of `now`, folding in the time since the last change.
    fn advance(state: &mut State, now: Instant) -> f64 {
        state.held.hold(f64::from(state.in_flight), now)
    }

    /// One more request in flight from `now` on; it counts until the guard
    /// is dropped.
    pub(super) fn enter(&self, now: Instant) -> InFlight<'_> {
        let mut state = self.lock();
        Self::advance(&mut state, now);
        state.in_flight += 1;
        InFlight { concurrency: self }
    }

    fn leave(&self, now: Instant) {
        let mut state = self.lock();
        Self::advance(&mut state, now);
        state.in_flight = state.in_flight.saturating_sub(1);
    }

    /// The time-averaged number of requests in flight as of `now`.
    pub(super) fn average(&self, now: Instant) -> f64 {
        Self::advance(&mut self.lock(), now)
    }
}

/// A request counted in flight; dropping it ends the count.
#[derive(Debug)]
pub(super) struct InFlight<'a> {
    concurrency: &'a Concurrency,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.concurrency.leave(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAU: Duration = Duration::from_secs(5);

    #[test]
    fn a_steady_count_becomes_the_average() {
        let t0 = Instant::now();
        let concurrency = Concurrency::new(t0, TAU);
        let _a = concurrency.enter(t0);
        let _b = concurrency.enter(t0);
        assert_eq!(concurrency.average(t0), 0.0);
        // One time constant: 63 % of the way to 2.
        let one_tau = concurrency.average(t0 + TAU);
        assert!((one_tau - 2.0 * (1.0 - (-1.0f64).exp())).abs() < 1e-9);
        assert!((concurrency.average(t0 + TAU * 20) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn a_request_that_ended_fades_out() {
        let t0 = Instant::now();
        let concurrency = Concurrency::new(t0, TAU);
        let guard = concurrency.enter(t0);
        let during = concurrency.average(t0 + TAU * 20);
        concurrency.leave(t0 + TAU * 20);
        std::mem::forget(guard);
        let after = concurrency.average(t0 + TAU * 21);
        assert!((during - 1.0).abs() < 1e-6);
        assert!((after - (-1.0f64).exp()).abs() < 1e-6);
        // Asking again at the same instant changes nothing.
        assert_eq!(concurrency.average(t0 + TAU * 21), after);
    }

    #[test]
    fn dropping_the_guard_leaves() {
        let t0 = Instant::now();
        let concurrency = Concurrency::new(t0, TAU);
        drop(concurrency.enter(t0));
        assert_eq!(concurrency.lock().in_flight, 0);
    }
}
