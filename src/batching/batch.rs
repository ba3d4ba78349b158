//! The two ends of an item's journey: the [`Batch`] a worker takes and answers,
//! and the [`PendingResults`] the submitter awaits.
//!
//! Every item carries its own `tokio::sync::oneshot` sender. `Batch` guarantees
//! each sender is used exactly once: [`Batch::complete`] answers all of them,
//! and its `Drop` answers any left over with [`BatchError::WorkerLost`], which
//! also covers a worker panicking mid-batch (drop runs during unwinding).

use std::fmt::Display;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::error::BatchError;
use super::shared::Shared;

/// What an item's reply channel carries.
pub(super) type ItemResult<R> = Result<ItemOutput<R>, BatchError>;

/// One item's successful result plus the timings the HTTP layer reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemOutput<R> {
    /// The worker's result for this item.
    pub value: R,
    /// Time from enqueue until a worker took the item's batch.
    pub queue_wait: Duration,
    /// Compute time of the whole batch as measured by the worker.
    pub inference_time: Duration,
    /// Size of the batch the item was computed in, to explain the timings.
    pub batch_size: usize,
}

/// Reply channel of one item inside a taken batch.
pub(super) struct Waiter<R> {
    /// Where the item's result goes.
    pub(super) reply: oneshot::Sender<ItemResult<R>>,
    /// Enqueue → batch taken, computed when the batch was formed.
    pub(super) queue_wait: Duration,
    /// The span the item was submitted in (its request's).
    pub(super) span: tracing::Span,
}

/// Up to `max_batch_size` items taken by one worker. The worker computes them
/// and calls [`complete`](Self::complete) (or [`process`](Self::process));
/// dropping the batch instead answers every item with `WorkerLost`.
pub struct Batch<T, R> {
    /// Inputs in queue order; may be moved out with `take_inputs`.
    inputs: Vec<T>,
    /// Reply channels in the same order as `inputs`; emptied when answered.
    waiters: Vec<Waiter<R>>,
    /// Number of items, kept because `waiters` is emptied on completion.
    size: usize,
    /// When the worker took the batch.
    taken_at: Instant,
    /// Queue to report batch time and completion to (EMA, drain tracking).
    shared: Arc<Shared<T, R>>,
}

impl<T, R> Batch<T, R> {
    /// Built only by the queue, which has already counted it as in flight.
    pub(super) fn new(
        inputs: Vec<T>,
        waiters: Vec<Waiter<R>>,
        taken_at: Instant,
        shared: Arc<Shared<T, R>>,
    ) -> Self {
        let size = waiters.len();
        Self {
            inputs,
            waiters,
            size,
            taken_at,
            shared,
        }
    }

    /// Number of items; the worker's result vector must have this length.
    pub fn len(&self) -> usize {
        self.size
    }

    /// Always false for a batch handed out by the queue; present for API
    /// completeness next to `len`.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The inputs in queue order, for workers that build a tensor by copying.
    pub fn inputs(&self) -> &[T] {
        &self.inputs
    }

    /// Moves the inputs out (in queue order) for workers that consume them;
    /// the batch still answers its items afterwards.
    pub fn take_inputs(&mut self) -> Vec<T> {
        std::mem::take(&mut self.inputs)
    }

    /// Per-item queue wait (enqueue → batch taken), in input order.
    pub fn queue_waits(&self) -> Vec<Duration> {
        self.waiters
            .iter()
            .map(|waiter| waiter.queue_wait)
            .collect()
    }

    /// The spans the items were submitted in, in input order (one request's
    /// images share one). A worker's batch span `follows_from` each, so a
    /// log line about the batch can be traced to the requests it served.
    pub fn item_spans(&self) -> impl Iterator<Item = &tracing::Span> {
        self.waiters.iter().map(|waiter| &waiter.span)
    }

    /// When the worker took the batch, e.g. to log end-to-end worker time.
    pub fn taken_at(&self) -> Instant {
        self.taken_at
    }

    /// Answers every item: `Ok(outputs)` gives item `i` `outputs[i]`; `Err(e)`
    /// gives every item of this batch (and only this batch)
    /// `InferenceFailed(e.to_string())`. `inference_time` is the worker's
    /// measured compute time; it feeds the Retry-After estimate. An output
    /// count different from [`len`](Self::len) is a worker bug and fails the
    /// batch rather than mismatching results.
    pub fn complete<E: Display>(mut self, result: Result<Vec<R>, E>, inference_time: Duration) {
        let waiters = std::mem::take(&mut self.waiters);
        let batch_size = self.size;
        let succeeded = match result {
            Ok(outputs) if outputs.len() == waiters.len() => {
                for (waiter, value) in waiters.into_iter().zip(outputs) {
                    let output = ItemOutput {
                        value,
                        queue_wait: waiter.queue_wait,
                        inference_time,
                        batch_size,
                    };
                    // A dropped receiver means the client left; nothing to do.
                    let _ = waiter.reply.send(Ok(output));
                }
                true
            }
            Ok(outputs) => {
                let message = format!(
                    "worker returned {} outputs for a batch of {} inputs (this is a bug)",
                    outputs.len(),
                    waiters.len()
                );
                answer_all(waiters, &BatchError::InferenceFailed(message));
                false
            }
            Err(error) => {
                answer_all(waiters, &BatchError::InferenceFailed(error.to_string()));
                false
            }
        };
        self.shared.record_batch_time(inference_time, batch_size);
        self.shared
            .observer()
            .batch_completed(batch_size, inference_time, succeeded);
        // `Drop` now marks the batch finished for drain tracking.
    }

    /// Convenience for the worker loop: moves the inputs into `compute`,
    /// measures its duration and completes the batch with its result. If
    /// `compute` panics, the batch is dropped and its items get `WorkerLost`.
    pub fn process<E: Display>(mut self, compute: impl FnOnce(Vec<T>) -> Result<Vec<R>, E>) {
        let inputs = self.take_inputs();
        let started = Instant::now();
        let result = compute(inputs);
        self.complete(result, started.elapsed());
    }
}

impl<T, R> Drop for Batch<T, R> {
    /// Answers unanswered items with `WorkerLost` so no waiter hangs, then
    /// tells the queue the batch is no longer in flight.
    fn drop(&mut self) {
        let abandoned = !self.waiters.is_empty();
        if abandoned {
            answer_all(std::mem::take(&mut self.waiters), &BatchError::WorkerLost);
        }
        self.shared.batch_finished(self.size, abandoned);
    }
}

/// Sends the same error to every waiter.
fn answer_all<R>(waiters: Vec<Waiter<R>>, error: &BatchError) {
    for waiter in waiters {
        let _ = waiter.reply.send(Err(error.clone()));
    }
}

/// The submitter's handle on an admitted request: one receiver per item, in
/// submission order. Dropping it (e.g. the HTTP handler future is dropped when
/// the client disconnects) cancels the items still queued.
#[derive(Debug)]
pub struct PendingResults<R> {
    /// Reply channels, in the order the items were submitted.
    receivers: Vec<oneshot::Receiver<ItemResult<R>>>,
}

impl<R> PendingResults<R> {
    /// Built only by `try_submit`, which owns the matching senders.
    pub(super) fn new(receivers: Vec<oneshot::Receiver<ItemResult<R>>>) -> Self {
        Self { receivers }
    }

    /// Number of items in the request.
    pub fn len(&self) -> usize {
        self.receivers.len()
    }

    /// True for a request with no items (admitted trivially).
    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty()
    }

    /// Waits for every item and returns their results in submission order.
    /// A channel closed without an answer (queue dropped) reads as
    /// `WorkerLost`. Cancel-safe: dropping the future cancels what is left.
    pub async fn wait(self) -> Vec<Result<ItemOutput<R>, BatchError>> {
        let mut results = Vec::with_capacity(self.receivers.len());
        for receiver in self.receivers {
            results.push(receiver.await.unwrap_or(Err(BatchError::WorkerLost)));
        }
        results
    }

    /// The raw receivers, for callers that want to stream results as they
    /// arrive rather than wait for all of them.
    pub fn into_receivers(self) -> Vec<oneshot::Receiver<Result<ItemOutput<R>, BatchError>>> {
        self.receivers
    }
}
