//! The fair batch order (`fair_order.rs`) through the real queue: which
//! items a batch takes, never how long anything takes.

use std::time::{Duration, Instant};

use super::tests::{complete_ok, config, new_queue, next_batch_within_watchdog, values, NEVER};
use super::*;

#[test]
fn a_one_item_submission_after_a_twenty_item_one_lands_in_the_first_batch() {
    let queue = new_queue(config(4, NEVER, 64));
    let _big = queue.try_submit((0..20).collect(), None).unwrap();
    let _small = queue.try_submit(vec![100], None).unwrap();
    let first = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(first.inputs(), &[0, 100, 1, 2]);
    // The big one alone is left, in its own order.
    let second = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(second.inputs(), &[3, 4, 5, 6]);
}

#[tokio::test]
async fn each_submission_keeps_its_order_and_gets_its_own_results() {
    let queue = new_queue(config(3, NEVER, 64));
    let a = queue.try_submit(vec![10, 11, 12, 13], None).unwrap();
    let b = queue.try_submit(vec![20, 21], None).unwrap();
    let c = queue.try_submit(vec![30], None).unwrap();
    // Closed: the last, partial batch goes at once instead of after NEVER.
    queue.close();
    let mut taken = Vec::new();
    for _ in 0..3 {
        let batch = next_batch_within_watchdog(&queue).unwrap();
        taken.extend_from_slice(batch.inputs());
        complete_ok(batch);
    }
    assert_eq!(taken, [10, 20, 30, 11, 21, 12, 13]);
    assert_eq!(values(a.wait().await), [31, 34, 37, 40]);
    assert_eq!(values(b.wait().await), [61, 64]);
    assert_eq!(values(c.wait().await), [91]);
}

#[test]
fn the_turns_carry_over_from_one_batch_to_the_next() {
    // Five submissions of three, batches of two: a batch must not restart
    // the turns at the oldest submission, or the last ones would starve.
    let queue = new_queue(config(2, NEVER, 64));
    let _pending: Vec<_> = (0..5u64)
        .map(|s| queue.try_submit((0..3).map(|i| s * 10 + i).collect(), None))
        .collect();
    let first = next_batch_within_watchdog(&queue).unwrap();
    let second = next_batch_within_watchdog(&queue).unwrap();
    let third = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(first.inputs(), &[0, 10]);
    assert_eq!(second.inputs(), &[20, 30]);
    assert_eq!(third.inputs(), &[40, 1]);
}

#[test]
fn a_cancelled_submission_leaves_the_turns_of_the_others_intact() {
    let queue = new_queue(config(4, NEVER, 64));
    let _a = queue.try_submit(vec![10, 11, 12], None).unwrap();
    drop(queue.try_submit(vec![20, 21, 22], None).unwrap());
    let _c = queue.try_submit(vec![30, 31], None).unwrap();
    let batch = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(batch.inputs(), &[10, 30, 11, 31]);
    assert_eq!(queue.stats().dropped_cancelled, 3);
    assert_eq!(queue.depth(), 1);
}

#[test]
fn the_batch_delay_counts_from_the_oldest_item_whatever_the_turn() {
    let delay = Duration::from_millis(20);
    let queue = new_queue(config(4, delay, 64));
    let before = Instant::now();
    let _a = queue.try_submit(vec![1, 2, 3, 4, 5], None).unwrap();
    // Full: a batch goes at once and leaves the oldest submission at the
    // back of the ring; the partial one left still flushes by its delay.
    let full = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(full.inputs(), &[1, 2, 3, 4]);
    let _b = queue.try_submit(vec![6], None).unwrap();
    let partial = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(partial.inputs(), &[5, 6]);
    // Lower bound only, from the older item's enqueue.
    assert!(before.elapsed() >= delay);
}

#[test]
fn waiting_submissions_report_items_left_and_deadlines_in_turn_order() {
    let queue = new_queue(config(2, NEVER, 64));
    let deadline = Instant::now() + NEVER;
    let _a = queue.try_submit(vec![1, 2, 3], Some(deadline)).unwrap();
    let _b = queue.try_submit(vec![4], None).unwrap();
    assert_eq!(
        queue.waiting_submissions(),
        [
            WaitingSubmission {
                items: 3,
                deadline: Some(deadline)
            },
            WaitingSubmission {
                items: 1,
                deadline: None
            },
        ]
    );
    let _batch = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(
        queue.waiting_submissions(),
        [WaitingSubmission {
            items: 2,
            deadline: Some(deadline)
        }]
    );
}

#[test]
fn item_time_is_batch_time_per_item_shared_by_the_replicas() {
    let mut cfg = config(4, NEVER, 64);
    cfg.replicas = 2;
    let queue = new_queue(cfg);
    assert_eq!(queue.item_time_estimate(), None);
    let _pending = queue.try_submit(vec![1, 2, 3, 4], None).unwrap();
    let batch = next_batch_within_watchdog(&queue).unwrap();
    batch.complete(Ok::<_, String>(vec![0; 4]), Duration::from_millis(400));
    assert_eq!(queue.item_time_estimate(), Some(Duration::from_millis(50)));
}

#[test]
fn max_pass_time_caps_batches_at_the_items_its_measured_time_fits() {
    let mut cfg = config(8, NEVER, 64);
    cfg.max_pass_time = Some(Duration::from_millis(250));
    let queue = new_queue(cfg);
    let _pending = queue.try_submit((0..20).collect(), None).unwrap();
    // Nothing measured yet: the first pass takes max_batch_size.
    let first = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(first.inputs().len(), 8);
    // 100 ms per item: two fit in 250 ms.
    first.complete(Ok::<_, String>(vec![0; 8]), Duration::from_millis(800));
    let second = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(second.inputs(), &[8, 9]);
    // An item slower than the whole budget still runs, alone.
    second.complete(Ok::<_, String>(vec![0; 2]), Duration::from_secs(60));
    let third = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(third.inputs(), &[10]);
}
