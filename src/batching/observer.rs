//! Observability hooks. The module must not depend on a metrics library, so it
//! calls a caller-supplied [`BatchObserver`] (the server forwards to its
//! prometheus registry) and also keeps a few plain counters ([`BatcherStats`])
//! for logs and tests.
//!
//! Observer methods are never called while the queue lock is held, so an
//! implementation may take its own locks or even read [`depth`] without risk
//! of deadlock; they should still be cheap, as they run on the submit path and
//! the worker threads.
//!
//! [`depth`]: super::BatchQueue::depth

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Receives batching events. Every method has a no-op default so an
/// implementation records only what it cares about.
pub trait BatchObserver: Send + Sync {
    /// A worker took a batch of `_size` items (batch-size histogram).
    fn batch_formed(&self, _size: usize) {}

    /// One item left the queue in a batch after waiting `_wait` since it was
    /// enqueued (queue-wait histogram).
    fn item_queue_wait(&self, _wait: Duration) {}

    /// A worker answered a batch of `_size` items after `_inference_time` of
    /// compute; `_succeeded` is false when the batch failed as a whole.
    fn batch_completed(&self, _size: usize, _inference_time: Duration, _succeeded: bool) {}

    /// A batch of `_size` items was dropped unanswered (worker panic); its
    /// items got [`BatchError::WorkerLost`](super::BatchError::WorkerLost).
    fn batch_abandoned(&self, _size: usize) {}

    /// `_count` items were discarded because their requester went away.
    fn dropped_cancelled(&self, _count: usize) {}

    /// `_count` items were discarded because their deadline passed.
    fn dropped_expired(&self, _count: usize) {}

    /// A request of `_items` items was rejected because the queue was full.
    fn rejected_full(&self, _items: usize) {}
}

/// Observer that records nothing, for callers that only need [`BatcherStats`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl BatchObserver for NoopObserver {}

/// Totals since the queue was created, readable without an observer (logs,
/// tests, a debug endpoint).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatcherStats {
    /// Batches handed to workers.
    pub batches_formed: u64,
    /// Items handed to workers (sum of batch sizes).
    pub items_batched: u64,
    /// Items discarded because their requester went away.
    pub dropped_cancelled: u64,
    /// Items discarded because their deadline passed.
    pub dropped_expired: u64,
    /// Requests (not items) rejected because the queue was full.
    pub rejected_full: u64,
    /// Batches dropped unanswered by a worker.
    pub batches_abandoned: u64,
}

/// Lock-free counters behind [`BatcherStats`]; relaxed ordering because they
/// are independent tallies, not synchronisation.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) batches_formed: AtomicU64,
    pub(super) items_batched: AtomicU64,
    pub(super) dropped_cancelled: AtomicU64,
    pub(super) dropped_expired: AtomicU64,
    pub(super) rejected_full: AtomicU64,
    pub(super) batches_abandoned: AtomicU64,
}

impl Counters {
    /// Adds `amount` to `counter`.
    pub(super) fn add(counter: &AtomicU64, amount: usize) {
        let amount = u64::try_from(amount).unwrap_or(u64::MAX);
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    /// Reads all counters (not atomically as a group; fine for reporting).
    pub(super) fn snapshot(&self) -> BatcherStats {
        BatcherStats {
            batches_formed: self.batches_formed.load(Ordering::Relaxed),
            items_batched: self.items_batched.load(Ordering::Relaxed),
            dropped_cancelled: self.dropped_cancelled.load(Ordering::Relaxed),
            dropped_expired: self.dropped_expired.load(Ordering::Relaxed),
            rejected_full: self.rejected_full.load(Ordering::Relaxed),
            batches_abandoned: self.batches_abandoned.load(Ordering::Relaxed),
        }
    }
}
