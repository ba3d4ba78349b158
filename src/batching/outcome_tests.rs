//! What each queued item gets back when things go other than plainly: items
//! whose client left or whose deadline passed are skipped and counted, a
//! failed, short, dropped or panicked batch fails only its own items, and a
//! closed queue is served out, drained or aborted. Same rules as `tests.rs`:
//! no upper bound on a sleep, hour-long delays and a watchdog instead.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::tests::{
    complete_ok, config, new_queue, next_batch_within_watchdog, values, NEVER, WATCHDOG,
};
use super::*;

/// Counts the observer events the cancellation tests care about.
#[derive(Default)]
struct CountingObserver {
    cancelled: AtomicUsize,
    expired: AtomicUsize,
    rejected: AtomicUsize,
    batches: AtomicUsize,
}

impl BatchObserver for CountingObserver {
    fn batch_formed(&self, _size: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
    }
    fn dropped_cancelled(&self, count: usize) {
        self.cancelled.fetch_add(count, Ordering::Relaxed);
    }
    fn dropped_expired(&self, count: usize) {
        self.expired.fetch_add(count, Ordering::Relaxed);
    }
    fn rejected_full(&self, items: usize) {
        self.rejected.fetch_add(items, Ordering::Relaxed);
    }
}

#[tokio::test]
async fn cancelled_items_are_skipped_and_counted() {
    let observer = Arc::new(CountingObserver::default());
    let queue: BatchQueue<u64, u64> =
        BatchQueue::new(config(8, NEVER, 16), observer.clone()).unwrap();
    let kept = queue.try_submit(vec![1], None).unwrap();
    drop(queue.try_submit(vec![2, 3], None).unwrap());
    let kept_too = queue.try_submit(vec![4], None).unwrap();
    queue.close();
    let batch = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(batch.inputs(), &[1, 4]);
    complete_ok(batch);
    assert_eq!(values(kept.wait().await), vec![4]);
    assert_eq!(values(kept_too.wait().await), vec![13]);
    assert_eq!(queue.stats().dropped_cancelled, 2);
    assert_eq!(observer.cancelled.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn expired_items_get_deadline_exceeded() {
    let observer = Arc::new(CountingObserver::default());
    let queue: BatchQueue<u64, u64> =
        BatchQueue::new(config(8, NEVER, 16), observer.clone()).unwrap();
    let already_past = Instant::now();
    let expired = queue.try_submit(vec![1, 2], Some(already_past)).unwrap();
    let alive = queue
        .try_submit(vec![3], Some(Instant::now() + NEVER))
        .unwrap();
    queue.close();
    let batch = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(batch.inputs(), &[3]);
    complete_ok(batch);
    assert_eq!(
        expired.wait().await,
        vec![
            Err(BatchError::DeadlineExceeded),
            Err(BatchError::DeadlineExceeded)
        ]
    );
    assert_eq!(values(alive.wait().await), vec![10]);
    assert_eq!(queue.stats().dropped_expired, 2);
    assert_eq!(observer.expired.load(Ordering::Relaxed), 2);
    assert!(next_batch_within_watchdog(&queue).is_none());
}

#[tokio::test]
async fn failed_batch_fails_only_its_items() {
    let queue = new_queue(config(2, NEVER, 16));
    let pending = queue.try_submit(vec![1, 2, 3, 4], None).unwrap();
    let failing = next_batch_within_watchdog(&queue).unwrap();
    failing.complete(
        Err::<Vec<u64>, _>("CUDA out of memory"),
        Duration::from_millis(1),
    );
    complete_ok(next_batch_within_watchdog(&queue).unwrap());
    let results = pending.wait().await;
    let failed = Err(BatchError::InferenceFailed("CUDA out of memory".to_owned()));
    assert_eq!(results[0], failed);
    assert_eq!(results[1], failed);
    assert_eq!(results[2].as_ref().unwrap().value, 10);
    assert_eq!(results[3].as_ref().unwrap().value, 13);
}

#[tokio::test]
async fn wrong_output_count_fails_the_batch() {
    let queue = new_queue(config(2, NEVER, 16));
    let pending = queue.try_submit(vec![1, 2], None).unwrap();
    let batch = next_batch_within_watchdog(&queue).unwrap();
    batch.complete(Ok::<_, String>(vec![1]), Duration::ZERO);
    for result in pending.wait().await {
        assert!(matches!(result, Err(BatchError::InferenceFailed(_))));
    }
}

#[tokio::test]
async fn dropped_or_panicked_batch_delivers_worker_lost() {
    let queue = new_queue(config(1, NEVER, 16));
    let dropped = queue.try_submit(vec![1], None).unwrap();
    drop(next_batch_within_watchdog(&queue).unwrap());
    assert_eq!(dropped.wait().await, vec![Err(BatchError::WorkerLost)]);

    let panicked = queue.try_submit(vec![2], None).unwrap();
    let worker_queue = queue.clone();
    let worker = thread::spawn(move || {
        if let Some(batch) = worker_queue.next_batch() {
            batch.process(|_| -> Result<Vec<u64>, String> { panic!("simulated worker crash") });
        }
    });
    assert!(worker.join().is_err());
    assert_eq!(panicked.wait().await, vec![Err(BatchError::WorkerLost)]);
    assert_eq!(queue.stats().batches_abandoned, 2);
}

#[tokio::test]
async fn close_serves_queued_items_then_workers_get_none() {
    let queue = new_queue(config(4, NEVER, 16));
    let pending = queue.try_submit(vec![1, 2, 3], None).unwrap();
    queue.close();
    assert_eq!(
        queue.try_submit(vec![4], None).err(),
        Some(SubmitError::Closed)
    );
    let batch = next_batch_within_watchdog(&queue).unwrap();
    assert!(!queue.is_drained(), "a batch is still in flight");
    assert!(next_batch_within_watchdog(&queue).is_none());
    complete_ok(batch);
    tokio::time::timeout(WATCHDOG, queue.wait_drained())
        .await
        .unwrap();
    assert_eq!(values(pending.wait().await), vec![4, 7, 10]);
}

#[tokio::test]
async fn wait_drained_is_woken_by_a_worker_thread() {
    let queue = new_queue(config(2, NEVER, 16));
    let pending = queue.try_submit(vec![1, 2, 3], None).unwrap();
    let worker_queue = queue.clone();
    let worker = thread::spawn(move || {
        while let Some(batch) = worker_queue.next_batch() {
            complete_ok(batch);
        }
    });
    queue.close();
    tokio::time::timeout(WATCHDOG, queue.wait_drained())
        .await
        .unwrap();
    assert_eq!(values(pending.wait().await), vec![4, 7, 10]);
    worker.join().unwrap();
}

#[tokio::test]
async fn abort_queued_answers_aborted() {
    let queue = new_queue(config(4, NEVER, 16));
    let pending = queue.try_submit(vec![1, 2], None).unwrap();
    queue.close();
    assert_eq!(queue.abort_queued(), 2);
    assert!(queue.is_drained());
    assert_eq!(
        pending.wait().await,
        vec![Err(BatchError::Aborted), Err(BatchError::Aborted)]
    );
}

#[tokio::test]
async fn an_abandoned_queue_aborts_what_waits_and_refuses_what_comes() {
    let queue = new_queue(config(4, NEVER, 16));
    let pending = queue.try_submit(vec![1, 2], None).unwrap();
    assert_eq!(queue.abandon(), 2);
    assert_eq!(
        pending.wait().await,
        vec![Err(BatchError::Aborted), Err(BatchError::Aborted)]
    );
    // Unlike after `abort_queued`, nothing new waits for a worker that will
    // not come; the shed check says so too.
    assert_eq!(
        queue.try_submit(vec![3], None).err(),
        Some(SubmitError::Abandoned)
    );
    assert_eq!(queue.check_room(1), Err(SubmitError::Abandoned));
    assert_eq!(queue.depth(), 0);
    // Shutdown still drains: nothing is queued or in flight.
    queue.close();
    assert!(queue.is_drained());
}

#[tokio::test]
async fn abort_queued_alone_still_admits() {
    let queue = new_queue(config(4, NEVER, 16));
    let _aborted = queue.try_submit(vec![1], None).unwrap();
    assert_eq!(queue.abort_queued(), 1);
    assert!(queue.try_submit(vec![2], None).is_ok());
    assert_eq!(queue.depth(), 1);
}
