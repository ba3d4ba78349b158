//! Errors of the batching module, split by when they happen: at admission
//! ([`SubmitError`], returned synchronously so the HTTP layer answers at once),
//! per item after admission ([`BatchError`], delivered through the item's
//! reply channel), and at construction ([`ConfigError`]).

use std::time::Duration;

use thiserror::Error;

/// Why a request was not admitted. Nothing was queued when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SubmitError {
    /// The queue has no room for all of the request's items (admission is
    /// all-or-nothing). The HTTP layer answers 503 with a Retry-After header.
    #[error("queue full ({depth} of {capacity} items queued), retry after {retry_after:?}")]
    QueueFull {
        /// Items queued when the request was rejected, for logs.
        depth: usize,
        /// Configured capacity, for logs.
        capacity: usize,
        /// Estimate of how long until the current backlog is served; the
        /// HTTP layer rounds it up to whole seconds for Retry-After.
        retry_after: Duration,
    },
    /// [`close`](super::BatchQueue::close) was called: the server is shutting
    /// down and only already-queued items are served (HTTP 503).
    #[error("queue closed: the server is shutting down")]
    Closed,
    /// [`abandon`](super::BatchQueue::abandon) was called: no worker is left
    /// to serve the queue, so waiting would only end at the deadline (HTTP
    /// 503, the model is not ready).
    #[error("no worker is left to serve this queue")]
    Abandoned,
    /// The request has more items than the queue can ever hold, so retrying
    /// cannot help (HTTP 413).
    #[error("request has {items} items but the queue holds at most {capacity}")]
    TooLarge {
        /// Items in the rejected request.
        items: usize,
        /// Configured capacity.
        capacity: usize,
    },
}

/// Why one admitted item got no result. `Clone` because a batch-wide failure is
/// delivered to every item of the batch.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    /// The item's deadline passed while it was queued; it was dropped before
    /// compute so no GPU time is spent on an answer nobody waits for.
    #[error("deadline exceeded before inference started")]
    DeadlineExceeded,
    /// The worker reported an error for the item's batch (message of the
    /// worker's error). Only that batch's items get it.
    #[error("inference failed: {0}")]
    InferenceFailed(String),
    /// The batch was dropped without an answer (the worker panicked or exited
    /// mid-batch), or the queue itself was dropped with the item inside.
    #[error("the model worker was lost before answering")]
    WorkerLost,
    /// [`abort_queued`](super::BatchQueue::abort_queued) discarded the item,
    /// e.g. because a graceful drain ran out of time.
    #[error("the queue was aborted before this item was computed")]
    Aborted,
}

/// A [`BatcherConfig`](super::BatcherConfig) under which the queue could not
/// make progress.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A zero batch size would never take any item.
    #[error("max_batch_size must be at least 1")]
    ZeroBatchSize,
    /// A zero capacity would reject every request.
    #[error("queue_capacity must be at least 1")]
    ZeroCapacity,
    /// A queue needs at least one worker to be served.
    #[error("replicas must be at least 1")]
    ZeroReplicas,
}
