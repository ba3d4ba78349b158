//! Dynamic batching: a bounded per-model queue between the async HTTP side and
//! the blocking model workers.
//!
//! This module knows nothing about tch, HTTP or images. It is generic over the
//! item type `T` (e.g. one preprocessed 224x224 image) and the result type `R`
//! (e.g. one probability vector), so its scheduling policy is unit-tested
//! without libtorch.
//!
//! # Data flow
//!
//! ```text
//! HTTP handler ──try_submit(items)──▶ BatchQueue ──next_batch()──▶ worker thread (owns the model)
//!      ▲                                                                   │
//!      └────────── PendingResults::wait() ◀── one oneshot per item ◀───────┘ Batch::complete(..)
//! ```
//!
//! # Policy
//!
//! * **Bounded admission.** The queue holds at most `queue_capacity` items. A
//!   request's N items are admitted all-or-nothing; when they do not fit,
//!   [`BatchQueue::try_submit`] fails at once with [`SubmitError::QueueFull`]
//!   carrying a Retry-After estimate (queued batches ahead × EMA of the batch
//!   time the workers report ÷ replicas). It never blocks and never panics.
//! * **Triton's batching rule.** A worker takes up to `max_batch_size` items. A
//!   full batch is taken immediately; a partial one is flushed once
//!   `max_batch_delay` has passed since its *oldest item was enqueued* (not since
//!   the worker started waiting), so an item never waits for a batch longer than
//!   the delay just because all workers were busy.
//! * **Fair order.** Batches take items round-robin across the submissions
//!   waiting, one item per submission per turn, submissions in arrival
//!   order (`fair_order.rs`): a one-image request is not queued behind every
//!   crop of a 40-image request that came first. A multi-item request may
//!   be spread over several batches; its items keep their order, each has
//!   its own reply channel and [`PendingResults::wait`] returns them in order.
//! * **Cancellation and deadlines.** Before a batch is formed, items whose
//!   requester is gone (receiver dropped: client disconnected) are discarded
//!   and items past their deadline get [`BatchError::DeadlineExceeded`]; both
//!   are counted. No compute is spent on them.
//! * **Failure isolation.** A worker reports `Result<Vec<R>, E>`; an error fails
//!   only that batch's items. A [`Batch`] dropped unanswered (worker panic)
//!   answers its items with [`BatchError::WorkerLost`], so no waiter hangs.
//! * **Graceful drain.** [`BatchQueue::close`] stops admission while queued
//!   items are still served (without waiting for the batch delay: nothing more
//!   can arrive); [`BatchQueue::next_batch`] returns `None` once closed and
//!   empty; [`BatchQueue::wait_drained`] resolves when every batch is answered.
//!
//! # Why a `Mutex<VecDeque>` + `Condvar` rather than a channel
//!
//! The workers are OS threads that block anyway, so a condvar is the natural
//! way to park them, and `Condvar::wait_timeout` expresses "wait until the
//! oldest item is `max_batch_delay` old". A channel cannot do what the policy
//! needs: peek at the oldest item's enqueue time, admit N items atomically
//! against a capacity, remove cancelled items from the middle, and report the
//! depth. The async side only calls the non-blocking [`BatchQueue::try_submit`],
//! which holds the lock for a few pushes — never across an `.await` and never
//! while a model runs (workers compute outside the lock). Results travel back
//! through one `tokio::sync::oneshot` per item: it can be completed from a
//! plain thread, awaited from async code, and its dropped receiver is exactly
//! the "client went away" signal used for cancellation.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use seresnext_serve::batching::{BatchQueue, BatcherConfig, NoopObserver, SubmitError};
//!
//! // Stand-in for the libtorch forward pass: one output per input, in order.
//! fn forward(images: Vec<Vec<f32>>) -> Result<Vec<f32>, String> {
//!     Ok(images.iter().map(|image| image.iter().sum()).collect())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let config = BatcherConfig {
//!     max_batch_size: 32,
//!     max_batch_delay: Duration::from_millis(5),
//!     queue_capacity: 256,
//!     replicas: 1,
//!     adaptive_window: true,
//!     max_pass_time: None,
//! };
//! let queue: BatchQueue<Vec<f32>, f32> =
//!     BatchQueue::new(config, Arc::new(NoopObserver)).expect("valid config");
//!
//! // Worker side: one OS thread per replica, owning its model.
//! let worker_queue = queue.clone();
//! let worker = std::thread::spawn(move || {
//!     while let Some(batch) = worker_queue.next_batch() {
//!         batch.process(forward); // times the call, answers every item
//!     }
//! });
//!
//! // Async side (HTTP handler): never blocks.
//! let deadline = Some(Instant::now() + Duration::from_secs(10));
//! match queue.try_submit(vec![vec![1.0, 2.0], vec![3.0]], deadline) {
//!     Ok(pending) => {
//!         let results = pending.wait().await; // in submission order
//!         let first = results[0].as_ref().expect("computed");
//!         assert_eq!(first.value, 3.0);
//!         let _timings = (first.queue_wait, first.inference_time);
//!     }
//!     Err(SubmitError::QueueFull { retry_after, .. }) => { /* 503 + Retry-After */ }
//!     Err(SubmitError::Closed) => { /* 503: shutting down */ }
//!     Err(SubmitError::Abandoned) => { /* 503: no worker left */ }
//!     Err(SubmitError::TooLarge { .. }) => { /* 413 */ }
//! }
//!
//! // Graceful shutdown: stop admission, serve what is queued, join workers.
//! queue.close();
//! queue.wait_drained().await;
//! worker.join().expect("worker exited cleanly");
//! # }
//! ```

mod announcement;
mod batch;
mod busy;
mod ema;
mod error;
mod fair_order;
#[cfg(test)]
mod fair_tests;
mod observer;
#[cfg(test)]
mod outcome_tests;
mod policy;
mod queue;
mod shared;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod window_tests;

use std::time::Duration;

pub use announcement::Announcement;
pub use batch::{Batch, ItemOutput, PendingResults};
pub use ema::{AtomicEma, DecayedSum};
pub use error::{BatchError, ConfigError, SubmitError};
pub use fair_order::WaitingSubmission;
pub use observer::{BatchObserver, BatcherStats, NoopObserver};
pub use queue::BatchQueue;

/// Tuning of one model's queue; one `BatchQueue` per model is built from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatcherConfig {
    /// Most items a worker puts in one forward pass; bounds GPU memory per
    /// batch and is the size at which a batch is taken without waiting.
    pub max_batch_size: usize,
    /// Longest an item waits (from its enqueue time) for a batch to fill up;
    /// trades latency at low load for throughput.
    pub max_batch_delay: Duration,
    /// Most items queued at once; beyond it requests are rejected (HTTP 503)
    /// instead of piling up latency and memory.
    pub queue_capacity: usize,
    /// Number of worker threads pulling from this queue. Used only for the
    /// Retry-After estimate, since replicas drain the queue in parallel.
    pub replicas: usize,
    /// Wait for a partial batch to fill only while more images are known to
    /// be on their way ([`BatchQueue::announce`]: admitted and still being
    /// decoded), never on the chance that a new request turns up. With
    /// `false`, Triton's fixed window: every partial batch waits out
    /// `max_batch_delay`.
    pub adaptive_window: bool,
    /// Longest one forward pass should take: a batch holds at most as many
    /// items as the measured time per item fits in it (at least one, at most
    /// `max_batch_size`). A request that arrives while a pass runs waits for
    /// that pass before its own, so this bounds how long a small request
    /// waits behind a big one; on a CPU, where a batch of 8 takes about a
    /// second, that wait is most of its latency under mixed load. `None` =
    /// `max_batch_size` alone decides (the most throughput).
    pub max_pass_time: Option<Duration>,
}

impl BatcherConfig {
    /// Rejects settings under which the queue could never make progress, so a
    /// bad config file fails at startup rather than hanging requests.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_batch_size == 0 {
            return Err(ConfigError::ZeroBatchSize);
        }
        if self.queue_capacity == 0 {
            return Err(ConfigError::ZeroCapacity);
        }
        if self.replicas == 0 {
            return Err(ConfigError::ZeroReplicas);
        }
        Ok(())
    }
}
