//! Behaviour tests of the batcher. Timing is never asserted as an upper bound
//! on a sleep: the scheduling rule is checked on synthetic `Instant`s in
//! `policy.rs`, and these real-thread tests only assert lower bounds (which
//! hold however slow the machine is) or use hour-long delays so that a wrong
//! wait shows up as a hang, caught by a generous watchdog.
//!
//! Here: admission, batch forming, Retry-After and concurrency, and the
//! helpers the other test files share. Cancellation, deadlines, failures and
//! shutdown are in `outcome_tests.rs`; the adaptive window in `window_tests.rs`.

use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use super::*;

/// Long enough that a batcher wrongly waiting for the delay is caught as a
/// hang, never reached by a correct one.
pub(super) const NEVER: Duration = Duration::from_secs(3600);
/// Watchdog for "this must not block": generous for a loaded 2-core machine.
pub(super) const WATCHDOG: Duration = Duration::from_secs(30);

pub(super) fn config(
    max_batch_size: usize,
    max_batch_delay: Duration,
    queue_capacity: usize,
) -> BatcherConfig {
    BatcherConfig {
        max_batch_size,
        max_batch_delay,
        queue_capacity,
        replicas: 1,
        adaptive_window: false,
        max_pass_time: None,
    }
}

pub(super) fn new_queue(config: BatcherConfig) -> BatchQueue<u64, u64> {
    BatchQueue::new(config, Arc::new(NoopObserver)).unwrap()
}

/// The result a test worker computes: a function of the input, so any
/// cross-talk between items is visible.
fn model(input: u64) -> u64 {
    input * 3 + 1
}

/// `next_batch` on a helper thread, failing the test instead of hanging.
pub(super) fn next_batch_within_watchdog(queue: &BatchQueue<u64, u64>) -> Option<Batch<u64, u64>> {
    let (sender, receiver) = mpsc::channel();
    let queue = queue.clone();
    thread::spawn(move || {
        let _ = sender.send(queue.next_batch());
    });
    receiver
        .recv_timeout(WATCHDOG)
        .expect("next_batch blocked: it should have returned at once")
}

pub(super) fn complete_ok(batch: Batch<u64, u64>) {
    batch.process(|inputs| Ok::<_, String>(inputs.into_iter().map(model).collect()));
}

pub(super) fn values(results: Vec<Result<ItemOutput<u64>, BatchError>>) -> Vec<u64> {
    results
        .into_iter()
        .map(|result| result.unwrap().value)
        .collect()
}

#[test]
fn invalid_config_is_rejected() {
    let mut cfg = config(0, NEVER, 4);
    assert_eq!(cfg.validate(), Err(ConfigError::ZeroBatchSize));
    cfg.max_batch_size = 1;
    cfg.queue_capacity = 0;
    assert!(BatchQueue::<u64, u64>::new(cfg, Arc::new(NoopObserver)).is_err());
}

#[test]
fn full_queue_rejects_whole_request_and_admits_when_it_fits() {
    let queue = new_queue(config(8, NEVER, 4));
    let _first = queue.try_submit(vec![1, 2, 3], None).unwrap();
    let rejected = queue.try_submit(vec![4, 5], None);
    assert!(matches!(
        rejected,
        Err(SubmitError::QueueFull { depth: 3, capacity: 4, retry_after }) if retry_after > Duration::ZERO
    ));
    assert_eq!(
        queue.depth(),
        3,
        "a rejected request must queue none of its items"
    );
    let _second = queue.try_submit(vec![4], None).unwrap();
    assert_eq!(queue.depth(), 4);
    assert_eq!(
        queue.try_submit(vec![1, 2, 3, 4, 5], None).err(),
        Some(SubmitError::TooLarge {
            items: 5,
            capacity: 4
        })
    );
    assert_eq!(queue.stats().rejected_full, 1);
}

#[test]
fn full_queue_reclaims_slots_of_cancelled_items() {
    let queue = new_queue(config(8, NEVER, 2));
    drop(queue.try_submit(vec![1, 2], None).unwrap());
    let _admitted = queue.try_submit(vec![3, 4], None).unwrap();
    assert_eq!(queue.depth(), 2);
    assert_eq!(queue.stats().dropped_cancelled, 2);
}

#[test]
fn full_batch_is_taken_without_waiting_and_size_is_capped() {
    let queue = new_queue(config(4, NEVER, 16));
    let _pending = queue.try_submit((0..10).collect(), None).unwrap();
    let first = next_batch_within_watchdog(&queue).unwrap();
    let second = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(first.inputs(), &[0, 1, 2, 3]);
    assert_eq!(second.inputs(), &[4, 5, 6, 7]);
    queue.close();
    let rest = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(rest.inputs(), &[8, 9]);
}

#[test]
fn partial_batch_is_flushed_after_delay_from_enqueue() {
    let delay = Duration::from_millis(30);
    let queue = new_queue(config(4, delay, 16));
    let _pending = queue.try_submit(vec![7], None).unwrap();
    let batch = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(batch.len(), 1);
    // Lower bound only: a partial batch must not leave before the delay.
    assert!(batch.queue_waits()[0] >= delay);
}

#[tokio::test]
async fn multi_item_request_split_across_batches_keeps_order() {
    let queue = new_queue(config(4, NEVER, 16));
    let first = queue.try_submit(vec![10, 11, 12], None).unwrap();
    let second = queue.try_submit(vec![20, 21, 22, 23, 24], None).unwrap();
    let batch_a = next_batch_within_watchdog(&queue).unwrap();
    let batch_b = next_batch_within_watchdog(&queue).unwrap();
    // Round-robin across the two (fair_order.rs), each in its own order.
    assert_eq!(batch_a.inputs(), &[10, 20, 11, 21]);
    assert_eq!(batch_b.inputs(), &[12, 22, 23, 24]);
    // Answer out of order: results still land on the right items.
    complete_ok(batch_b);
    complete_ok(batch_a);
    assert_eq!(values(first.wait().await), vec![31, 34, 37]);
    let second = second.wait().await;
    assert_eq!(second[0].as_ref().unwrap().batch_size, 4);
    assert_eq!(values(second), vec![61, 64, 67, 70, 73]);
}

#[test]
fn retry_after_follows_reported_batch_time() {
    let mut cfg = config(2, Duration::from_millis(5), 16);
    cfg.replicas = 2;
    let queue = new_queue(cfg);
    let _pending = queue.try_submit((0..8).collect(), None).unwrap();
    // No measurement yet: one batch is assumed to take the batch delay.
    // 8 items = 4 batches over 2 replicas = 2 rounds.
    assert_eq!(queue.retry_after_estimate(), Duration::from_millis(10));
    let batch = next_batch_within_watchdog(&queue).unwrap();
    batch.complete(Ok::<_, String>(vec![0, 0]), Duration::from_millis(100));
    // 6 items left = 3 batches = 2 rounds of 100 ms.
    assert_eq!(queue.retry_after_estimate(), Duration::from_millis(200));
}

#[test]
fn retry_after_grows_with_queue_depth_up_to_the_rejection() {
    let queue = new_queue(config(4, Duration::from_millis(5), 32));
    let mut pending = Vec::new();
    let mut previous = Duration::ZERO;
    for _ in 0..4 {
        pending.push(queue.try_submit((0..8).collect(), None).unwrap());
        let estimate = queue.retry_after_estimate();
        assert!(estimate > previous, "{estimate:?} after {previous:?}");
        previous = estimate;
    }
    // Full: the rejection carries the estimate for the depth it met.
    match queue.try_submit(vec![0], None) {
        Err(SubmitError::QueueFull { retry_after, .. }) => assert_eq!(retry_after, previous),
        other => panic!("expected QueueFull, got {other:?}"),
    }
    // The early check refuses alike, and so does the counter.
    assert!(matches!(
        queue.check_room(1),
        Err(SubmitError::QueueFull { retry_after, .. }) if retry_after == previous
    ));
    assert_eq!(queue.stats().rejected_full, 2);
    assert!(matches!(
        queue.check_room(33),
        Err(SubmitError::TooLarge { .. })
    ));
    drop(pending);
    assert_eq!(queue.check_room(32), Ok(()), "cancelled items make room");
}

#[tokio::test]
async fn concurrent_submitters_and_workers_get_their_own_results() {
    const WORKERS: usize = 3;
    const SUBMITTERS: u64 = 8;
    const REQUESTS_PER_SUBMITTER: u64 = 40;
    let mut cfg = config(5, Duration::from_micros(200), 32);
    cfg.replicas = WORKERS;
    let queue = new_queue(cfg);
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let queue = queue.clone();
            thread::spawn(move || {
                while let Some(batch) = queue.next_batch() {
                    assert!(batch.len() <= 5);
                    complete_ok(batch);
                }
            })
        })
        .collect();
    let mut submitters = Vec::new();
    for submitter in 0..SUBMITTERS {
        let queue = queue.clone();
        submitters.push(tokio::spawn(async move {
            for request in 0..REQUESTS_PER_SUBMITTER {
                let size = 1 + (submitter + request) % 4;
                let base = (submitter * 1_000 + request) * 10;
                let inputs: Vec<u64> = (base..base + size).collect();
                let pending = loop {
                    match queue.try_submit(inputs.clone(), None) {
                        Ok(pending) => break pending,
                        Err(SubmitError::QueueFull { .. }) => tokio::task::yield_now().await,
                        Err(other) => panic!("unexpected {other}"),
                    }
                };
                let expected: Vec<u64> = inputs.into_iter().map(model).collect();
                assert_eq!(values(pending.wait().await), expected);
            }
        }));
    }
    for submitter in submitters {
        tokio::time::timeout(WATCHDOG, submitter)
            .await
            .unwrap()
            .unwrap();
    }
    queue.close();
    for worker in workers {
        worker.join().unwrap();
    }
    let stats = queue.stats();
    let expected_items: u64 = (0..SUBMITTERS)
        .flat_map(|s| (0..REQUESTS_PER_SUBMITTER).map(move |r| 1 + (s + r) % 4))
        .sum();
    assert_eq!(stats.items_batched, expected_items);
    assert!(queue.is_drained());
}

/// The HTTP side runs on a multi-threaded runtime, so what it awaits must be
/// `Send`; checked at compile time.
#[test]
fn async_side_futures_are_send() {
    fn assert_send<F: Send>(_: F) {}
    let queue = new_queue(config(4, NEVER, 16));
    assert_send(queue.wait_drained());
    let pending = queue.try_submit(vec![1], None).unwrap();
    assert_send(pending.wait());
    let _debug = format!("{queue:?}");
}
