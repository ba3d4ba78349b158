//! The batching rule as a pure function of the queue's state and the time,
//! so it is tested with synthetic `Instant`s instead of sleeps.

use std::time::Instant;

use super::BatcherConfig;

/// What a worker should do next, decided from the queue's state at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NextStep {
    /// Take up to the batch limit's items now.
    TakeNow,
    /// Sleep until the oldest item is `max_batch_delay` old (or a wake-up).
    WaitUntil(Instant),
    /// Nothing queued (or a delay too large to represent): sleep until woken.
    WaitForItems,
    /// Closed and empty: the worker should exit.
    Finished,
}

/// Triton's rule: a full batch (`batch_limit` items: `max_batch_size`, or
/// fewer under `max_pass_time`) is taken at once; a partial one when the
/// oldest item has waited `max_batch_delay` since *its enqueue* (so the time a
/// worker spent busy elsewhere counts); on close, whatever is left is taken at
/// once since nothing more can arrive.
///
/// With `adaptive_window`, a partial batch also goes at once when no images
/// are `announced` (admitted, still decoding): nothing is known to be coming,
/// so waiting could only add latency. A lone client then never pays the
/// delay, while images already on their way still join the batch (within
/// the same `max_batch_delay` bound).
pub(super) fn next_step(
    queued: usize,
    announced: usize,
    oldest_enqueued_at: Option<Instant>,
    closed: bool,
    now: Instant,
    batch_limit: usize,
    config: &BatcherConfig,
) -> NextStep {
    let Some(oldest) = oldest_enqueued_at else {
        return if closed {
            NextStep::Finished
        } else {
            NextStep::WaitForItems
        };
    };
    if queued >= batch_limit || closed {
        return NextStep::TakeNow;
    }
    if config.adaptive_window && announced == 0 {
        return NextStep::TakeNow;
    }
    match oldest.checked_add(config.max_batch_delay) {
        Some(flush_at) if now >= flush_at => NextStep::TakeNow,
        Some(flush_at) => NextStep::WaitUntil(flush_at),
        None => NextStep::WaitForItems,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A delay no correct decision ever waits for in these tests.
    const NEVER: Duration = Duration::from_secs(3600);

    fn config(max_batch_size: usize, max_batch_delay: Duration) -> BatcherConfig {
        BatcherConfig {
            max_batch_size,
            max_batch_delay,
            queue_capacity: 16,
            replicas: 1,
            adaptive_window: false,
            max_pass_time: None,
        }
    }

    #[test]
    fn policy_takes_full_batch_without_waiting() {
        let cfg = config(4, NEVER);
        let t0 = Instant::now();
        assert_eq!(
            next_step(4, 0, Some(t0), false, t0, cfg.max_batch_size, &cfg),
            NextStep::TakeNow
        );
        assert_eq!(
            next_step(9, 0, Some(t0), false, t0, cfg.max_batch_size, &cfg),
            NextStep::TakeNow
        );
    }

    #[test]
    fn policy_partial_batch_deadline_counts_from_oldest_item() {
        let delay = Duration::from_millis(10);
        let cfg = config(4, delay);
        let t0 = Instant::now();
        // The flush time is the oldest item's enqueue + delay, whenever asked.
        assert_eq!(
            next_step(1, 0, Some(t0), false, t0, cfg.max_batch_size, &cfg),
            NextStep::WaitUntil(t0 + delay)
        );
        let later = t0 + Duration::from_millis(4);
        assert_eq!(
            next_step(2, 0, Some(t0), false, later, cfg.max_batch_size, &cfg),
            NextStep::WaitUntil(t0 + delay)
        );
        // A worker that becomes free after the delay expired does not wait again.
        assert_eq!(
            next_step(1, 0, Some(t0), false, t0 + delay, cfg.max_batch_size, &cfg),
            NextStep::TakeNow
        );
        assert_eq!(
            next_step(
                1,
                0,
                Some(t0),
                false,
                t0 + 5 * delay,
                cfg.max_batch_size,
                &cfg
            ),
            NextStep::TakeNow
        );
    }

    #[test]
    fn policy_empty_closed_and_overflowing_delay() {
        let cfg = config(4, Duration::MAX);
        let t0 = Instant::now();
        assert_eq!(
            next_step(0, 0, None, false, t0, cfg.max_batch_size, &cfg),
            NextStep::WaitForItems
        );
        assert_eq!(
            next_step(0, 0, None, true, t0, cfg.max_batch_size, &cfg),
            NextStep::Finished
        );
        // Closed: leftovers go at once, nothing more can arrive.
        assert_eq!(
            next_step(1, 0, Some(t0), true, t0, cfg.max_batch_size, &cfg),
            NextStep::TakeNow
        );
        // An unrepresentable flush time means "wait for more items".
        assert_eq!(
            next_step(1, 0, Some(t0), false, t0, cfg.max_batch_size, &cfg),
            NextStep::WaitForItems
        );
    }

    #[test]
    fn adaptive_window_waits_only_for_announced_images() {
        let delay = Duration::from_millis(10);
        let cfg = BatcherConfig {
            adaptive_window: true,
            ..config(4, delay)
        };
        let t0 = Instant::now();
        // Nothing on the way: go now instead of waiting out the delay.
        assert_eq!(
            next_step(1, 0, Some(t0), false, t0, cfg.max_batch_size, &cfg),
            NextStep::TakeNow
        );
        // Images still decoding: wait for them, but never past the delay.
        assert_eq!(
            next_step(1, 2, Some(t0), false, t0, cfg.max_batch_size, &cfg),
            NextStep::WaitUntil(t0 + delay)
        );
        assert_eq!(
            next_step(1, 2, Some(t0), false, t0 + delay, cfg.max_batch_size, &cfg),
            NextStep::TakeNow
        );
        // Full and closed still go at once; empty still sleeps.
        assert_eq!(
            next_step(4, 9, Some(t0), false, t0, cfg.max_batch_size, &cfg),
            NextStep::TakeNow
        );
        assert_eq!(
            next_step(1, 9, Some(t0), true, t0, cfg.max_batch_size, &cfg),
            NextStep::TakeNow
        );
        assert_eq!(
            next_step(0, 3, None, false, t0, cfg.max_batch_size, &cfg),
            NextStep::WaitForItems
        );
        // The fixed window ignores announcements and waits for the delay.
        let fixed = config(4, delay);
        assert_eq!(
            next_step(1, 0, Some(t0), false, t0, 4, &fixed),
            NextStep::WaitUntil(t0 + delay)
        );
    }

    #[test]
    fn a_lowered_batch_limit_makes_fewer_items_a_full_batch() {
        // max_pass_time fits two items in a pass: two waiting are a full
        // batch and go at once, even while more images are announced.
        let cfg = BatcherConfig {
            adaptive_window: true,
            ..config(8, NEVER)
        };
        let t0 = Instant::now();
        assert_eq!(
            next_step(2, 5, Some(t0), false, t0, 2, &cfg),
            NextStep::TakeNow
        );
        assert_eq!(
            next_step(1, 5, Some(t0), false, t0, 2, &cfg),
            NextStep::WaitUntil(t0 + NEVER)
        );
    }
}
