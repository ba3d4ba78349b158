//! The adaptive batch window on real threads: a partial batch waits only for
//! announced images. Delays are an hour long, so a wrong wait shows up as a
//! hang caught by the watchdog, never as a timing assertion.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::tests::{config, new_queue, next_batch_within_watchdog, NEVER, WATCHDOG};
use super::*;

/// A worker calling `next_batch` on its own thread; its batch arrives on the
/// receiver, so a test can check that it is (still) waiting.
fn worker_thread(queue: &BatchQueue<u64, u64>) -> mpsc::Receiver<Option<Batch<u64, u64>>> {
    let (sender, receiver) = mpsc::channel();
    let worker = queue.clone();
    thread::spawn(move || {
        let _ = sender.send(worker.next_batch());
    });
    receiver
}

/// Shows the worker is waiting: no batch within a moment.
fn still_waiting(receiver: &mpsc::Receiver<Option<Batch<u64, u64>>>) -> bool {
    receiver.recv_timeout(Duration::from_millis(200)).is_err()
}

fn adaptive(max_batch_size: usize) -> BatcherConfig {
    BatcherConfig {
        adaptive_window: true,
        ..config(max_batch_size, NEVER, 16)
    }
}

#[test]
fn a_lone_image_with_nothing_announced_goes_at_once() {
    let queue = new_queue(adaptive(8));
    let _pending = queue.try_submit(vec![7], None).unwrap();
    let batch = next_batch_within_watchdog(&queue).unwrap();
    assert_eq!(batch.inputs(), &[7]);
}

#[test]
fn an_announced_image_joins_the_batch_it_was_awaited_for() {
    let queue = new_queue(adaptive(8));
    let announcement = queue.announce(1);
    let _first = queue.try_submit(vec![1], None).unwrap();
    let receiver = worker_thread(&queue);
    // The worker must be waiting for the announced image, not gone with [1].
    assert!(still_waiting(&receiver));
    let _second = queue
        .try_submit_announced(announcement, vec![2], None)
        .unwrap();
    let batch = receiver.recv_timeout(WATCHDOG).unwrap().unwrap();
    assert_eq!(batch.inputs(), &[1, 2]);
    assert_eq!(queue.announced(), 0);
}

#[test]
fn a_withdrawn_announcement_releases_the_waiting_worker() {
    let queue = new_queue(adaptive(8));
    let announcement = queue.announce(3);
    let _pending = queue.try_submit(vec![5], None).unwrap();
    let receiver = worker_thread(&queue);
    assert!(still_waiting(&receiver));
    // The request failed while decoding: its images will never come.
    drop(announcement);
    let batch = receiver.recv_timeout(WATCHDOG).unwrap().unwrap();
    assert_eq!(batch.inputs(), &[5]);
    assert_eq!(queue.announced(), 0);
}

#[test]
fn refused_announced_images_stop_being_awaited() {
    let queue = new_queue(BatcherConfig {
        queue_capacity: 2,
        ..adaptive(8)
    });
    let _held = queue.try_submit(vec![1, 2], None).unwrap();
    let announcement = queue.announce(1);
    assert_eq!(queue.announced(), 1);
    let refused = queue.try_submit_announced(announcement, vec![3], None);
    assert!(matches!(refused, Err(SubmitError::QueueFull { .. })));
    assert_eq!(queue.announced(), 0);
}

#[test]
fn the_fixed_window_waits_even_with_nothing_announced() {
    let queue = new_queue(config(8, NEVER, 16));
    let _pending = queue.try_submit(vec![4], None).unwrap();
    let receiver = worker_thread(&queue);
    // Triton's rule: the partial batch waits out the (hour-long) delay...
    assert!(still_waiting(&receiver));
    // ...until closing says nothing more can come.
    queue.close();
    let batch = receiver.recv_timeout(WATCHDOG).unwrap().unwrap();
    assert_eq!(batch.inputs(), &[4]);
}
