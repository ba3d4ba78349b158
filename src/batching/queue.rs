//! The public handle, [`BatchQueue`]: non-blocking admission for the async
//! side and the blocking `next_batch` loop for the worker threads.
//!
//! State lives behind one `Mutex` with a `Condvar` that parks idle workers
//! (see the module docs in `mod.rs` for why). The lock is held only for queue
//! bookkeeping: never while a model runs, never across an `.await`, and never
//! while calling the observer or answering a reply channel. When to take a
//! batch is decided by the pure [`next_step`] in `policy.rs`.

use std::fmt;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::announcement::Announcement;
use super::batch::{Batch, PendingResults, Waiter};
use super::error::{BatchError, ConfigError, SubmitError};
use super::fair_order::WaitingSubmission;
use super::observer::{BatchObserver, BatcherStats, Counters};
use super::policy::{next_step, NextStep};
use super::shared::{is_drained, QueuedItem, Shared, State};
use super::BatcherConfig;

/// A cheaply clonable handle on one model's queue; the HTTP side and every
/// worker thread hold a clone.
pub struct BatchQueue<T, R> {
    /// State shared by all handles and by the batches in flight.
    shared: Arc<Shared<T, R>>,
}

impl<T, R> Clone for BatchQueue<T, R> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T, R> fmt::Debug for BatchQueue<T, R> {
    /// Shows settings and live state, not the items (`T` need not be Debug),
    /// so the queue can sit inside a `#[derive(Debug)]` app state.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("BatchQueue")
            .field("config", &self.shared.config)
            .field("depth", &self.depth())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl<T, R> BatchQueue<T, R> {
    /// Creates an empty, open queue. `observer` receives batching events (use
    /// [`NoopObserver`](super::NoopObserver) if none are needed).
    pub fn new(
        config: BatcherConfig,
        observer: Arc<dyn BatchObserver>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let shared = Shared::new(config, observer);
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// The configuration the queue was built with.
    pub fn config(&self) -> &BatcherConfig {
        &self.shared.config
    }

    /// Admits all of `inputs` or none, without blocking. Each item may be
    /// dropped with `DeadlineExceeded` if still queued at `deadline`.
    /// Dropping the returned handle cancels the items still queued.
    pub fn try_submit(
        &self,
        inputs: Vec<T>,
        deadline: Option<Instant>,
    ) -> Result<PendingResults<R>, SubmitError> {
        self.submit(inputs, deadline, 0)
    }

    /// Tells the workers that `images` more are on their way (a request was
    /// admitted and is decoding them), so an adaptive window waits for them.
    /// Submit them with [`Self::try_submit_announced`]; dropping the
    /// announcement instead (a bad image, a timeout) withdraws them.
    pub fn announce(&self, images: usize) -> Announcement<T, R> {
        self.shared.lock_state().announced += images;
        Announcement {
            shared: Arc::clone(&self.shared),
            images,
        }
    }

    /// [`Self::try_submit`] for announced images: the announcement ends in
    /// the same step that queues them (or refuses them).
    pub fn try_submit_announced(
        &self,
        mut announcement: Announcement<T, R>,
        inputs: Vec<T>,
        deadline: Option<Instant>,
    ) -> Result<PendingResults<R>, SubmitError> {
        let arrived = std::mem::take(&mut announcement.images);
        self.submit(inputs, deadline, arrived)
    }

    /// `try_submit`, ending an announcement of `arrived` images under the
    /// same lock that queues the inputs.
    fn submit(
        &self,
        inputs: Vec<T>,
        deadline: Option<Instant>,
        arrived: usize,
    ) -> Result<PendingResults<R>, SubmitError> {
        let shared = &self.shared;
        // Refused or queued, the announced images stop being "on the way"
        // in the same step; a worker waiting for them must look again.
        let wake_on_refusal = || {
            if arrived > 0 {
                shared.work_available.notify_all();
            }
        };
        let capacity = shared.config.queue_capacity;
        let item_count = inputs.len();
        let mut state = shared.lock_state();
        state.announced = state.announced.saturating_sub(arrived);
        if item_count > capacity {
            drop(state);
            wake_on_refusal();
            return Err(SubmitError::TooLarge {
                items: item_count,
                capacity,
            });
        }
        if state.abandoned {
            drop(state);
            wake_on_refusal();
            return Err(SubmitError::Abandoned);
        }
        if state.closed {
            drop(state);
            wake_on_refusal();
            return Err(SubmitError::Closed);
        }
        let now = Instant::now();
        let mut dead = Vec::new();
        if state.queue.len() + item_count > capacity {
            // Cancelled or expired items still occupy slots until a worker
            // purges them; reclaim them before rejecting anyone.
            dead = state.queue.take_dead(now);
            if state.queue.len() + item_count > capacity {
                let depth = state.queue.len();
                drop(state);
                wake_on_refusal();
                shared.dispose_dead(dead, now);
                Counters::add(&shared.counters.rejected_full, 1);
                shared.observer.rejected_full(item_count);
                return Err(SubmitError::QueueFull {
                    depth,
                    capacity,
                    retry_after: shared.retry_after_for_depth(depth),
                });
            }
        }
        let mut receivers = Vec::with_capacity(item_count);
        let mut items = std::collections::VecDeque::with_capacity(item_count);
        let span = tracing::Span::current();
        for input in inputs {
            let (reply, receiver) = oneshot::channel();
            receivers.push(receiver);
            items.push_back(QueuedItem {
                input,
                enqueued_at: now,
                deadline,
                reply,
                span: span.clone(),
            });
        }
        state.queue.push_submission(items);
        drop(state);
        if item_count > 0 || arrived > 0 {
            // All workers re-evaluate: one may now have a full batch, and
            // workers asleep without a timeout must learn items exist.
            shared.work_available.notify_all();
        }
        shared.dispose_dead(dead, now);
        Ok(PendingResults::new(receivers))
    }

    /// Images announced and not yet submitted or withdrawn.
    pub fn announced(&self) -> usize {
        self.shared.lock_state().announced
    }

    /// Refuses `items` more at once, as [`Self::try_submit`] would now, so a
    /// caller can shed a request before spending work on it (decoding its
    /// images). Advisory: the queue may fill in between, so `try_submit`
    /// still decides. Counted like a `try_submit` refusal.
    pub fn check_room(&self, items: usize) -> Result<(), SubmitError> {
        let shared = &self.shared;
        let capacity = shared.config.queue_capacity;
        if items > capacity {
            return Err(SubmitError::TooLarge { items, capacity });
        }
        let mut state = shared.lock_state();
        if state.abandoned {
            return Err(SubmitError::Abandoned);
        }
        if state.queue.len() + items <= capacity {
            return Ok(());
        }
        // As in `try_submit`: dead items must not make the queue look full.
        let now = Instant::now();
        let dead = state.queue.take_dead(now);
        let depth = state.queue.len();
        drop(state);
        shared.dispose_dead(dead, now);
        if depth + items <= capacity {
            return Ok(());
        }
        Counters::add(&shared.counters.rejected_full, 1);
        shared.observer.rejected_full(items);
        Err(SubmitError::QueueFull {
            depth,
            capacity,
            retry_after: shared.retry_after_for_depth(depth),
        })
    }

    /// Blocks the calling worker until a batch is due and returns it: at once
    /// when a full batch is queued (`max_batch_size`, or fewer under
    /// `max_pass_time`), otherwise once the oldest has waited
    /// `max_batch_delay`. `None` once the queue is closed and empty
    /// (the worker's signal to exit). Dead items are removed first.
    pub fn next_batch(&self) -> Option<Batch<T, R>> {
        let shared = &self.shared;
        let mut state = shared.lock_state();
        loop {
            let now = Instant::now();
            let dead = state.queue.take_dead(now);
            if !dead.is_empty() {
                drop(state);
                shared.dispose_dead(dead, now);
                state = shared.lock_state();
                continue;
            }
            let oldest = state.queue.oldest_enqueued_at();
            let batch_limit = shared.batch_limit();
            let step = next_step(
                state.queue.len(),
                state.announced,
                oldest,
                state.closed,
                now,
                batch_limit,
                &shared.config,
            );
            match step {
                NextStep::TakeNow => return Some(self.take_batch(state, batch_limit, now)),
                NextStep::WaitUntil(flush_at) => {
                    let timeout = flush_at.saturating_duration_since(now);
                    state = shared
                        .work_available
                        .wait_timeout(state, timeout)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                NextStep::WaitForItems => {
                    state = shared
                        .work_available
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                NextStep::Finished => {
                    shared.notify_if_drained(&state);
                    return None;
                }
            }
        }
    }

    /// Takes up to `limit` live items (the batch limit the caller decided
    /// with: `max_batch_size`, fewer under `max_pass_time`; the caller just
    /// purged dead ones), round-robin across the submissions waiting
    /// (`fair_order.rs`), and marks the batch in flight.
    fn take_batch(
        &self,
        mut state: MutexGuard<'_, State<T, R>>,
        limit: usize,
        now: Instant,
    ) -> Batch<T, R> {
        let shared = &self.shared;
        let taken = state.queue.take(limit);
        let count = taken.len();
        let mut inputs = Vec::with_capacity(count);
        let mut waiters = Vec::with_capacity(count);
        for item in taken {
            waiters.push(Waiter {
                reply: item.reply,
                queue_wait: now.saturating_duration_since(item.enqueued_at),
                span: item.span,
            });
            inputs.push(item.input);
        }
        state.in_flight_batches += 1;
        let leftovers = !state.queue.is_empty();
        drop(state);
        if leftovers {
            // Another worker may be sleeping on a timeout longer than needed.
            shared.work_available.notify_one();
        }
        // Built before any observer call, so that even a panicking observer
        // cannot leak the in-flight count or leave these items unanswered.
        let batch = Batch::new(inputs, waiters, now, Arc::clone(shared));
        Counters::add(&shared.counters.batches_formed, 1);
        Counters::add(&shared.counters.items_batched, count);
        shared.observer.batch_formed(count);
        for queue_wait in batch.queue_waits() {
            shared.observer.item_queue_wait(queue_wait);
        }
        batch
    }

    /// Stops admission (later submits get `Closed`); queued items are still
    /// served, immediately rather than after the batch delay. Idempotent.
    pub fn close(&self) {
        let mut state = self.shared.lock_state();
        state.closed = true;
        self.shared.notify_if_drained(&state);
        drop(state);
        self.shared.work_available.notify_all();
    }

    /// Whether `close` has been called.
    pub fn is_closed(&self) -> bool {
        self.shared.lock_state().closed
    }

    /// Items currently queued (including not-yet-purged cancelled ones), for
    /// a queue-depth gauge and load-shedding decisions.
    pub fn depth(&self) -> usize {
        self.shared.lock_state().queue.len()
    }

    /// Closed, nothing queued and every taken batch answered or dropped.
    pub fn is_drained(&self) -> bool {
        let state = self.shared.lock_state();
        is_drained(&state)
    }

    /// Resolves once [`is_drained`](Self::is_drained) holds, i.e. after
    /// `close()` every queued item has been answered. Needs running workers
    /// (or `abort_queued`) to make progress; wrap it in a timeout.
    pub async fn wait_drained(&self) {
        loop {
            // Registered before the check, so a notification between the
            // check and the await is not lost.
            let notified = self.shared.drained.notified();
            if self.is_drained() {
                return;
            }
            notified.await;
        }
    }

    /// Removes every queued item, answering it with `Aborted` (cancelled ones
    /// are just counted), and returns how many were removed. For a hard
    /// shutdown after a drain timeout; batches in flight are unaffected.
    pub fn abort_queued(&self) -> usize {
        let removed = self.shared.lock_state().queue.take_all();
        self.answer_aborted(removed)
    }

    /// For when the last worker is gone for good: refuses every later submit
    /// (`Abandoned`) and aborts what is queued, as [`Self::abort_queued`]
    /// does. Both happen under one lock, so no request can slip in between
    /// and wait for a worker that will not come. Returns how many were
    /// removed.
    pub fn abandon(&self) -> usize {
        let removed = {
            let mut state = self.shared.lock_state();
            state.abandoned = true;
            state.queue.take_all()
        };
        self.answer_aborted(removed)
    }

    /// Answers `removed` items `Aborted` (cancelled ones are just counted);
    /// only then may drain waiters go.
    fn answer_aborted(&self, removed: Vec<QueuedItem<T, R>>) -> usize {
        let count = removed.len();
        let mut cancelled = 0;
        for item in removed {
            if item.reply.is_closed() {
                cancelled += 1;
            } else {
                let _ = item.reply.send(Err(BatchError::Aborted));
            }
        }
        self.shared.report_cancelled(cancelled);
        self.shared.notify_if_drained(&self.shared.lock_state());
        count
    }

    /// How long a rejected client should wait before retrying, from the
    /// current depth (see [`SubmitError::QueueFull`]).
    pub fn retry_after_estimate(&self) -> Duration {
        self.shared.retry_after_for_depth(self.depth())
    }

    /// One forward pass as measured (the batch delay before any was).
    pub fn one_batch_estimate(&self) -> Duration {
        self.shared.retry_after_for_depth(0)
    }

    /// The submissions waiting, in turn order (items left, deadline): the
    /// model work ahead of a new request, and whom it would delay.
    pub fn waiting_submissions(&self) -> Vec<WaitingSubmission> {
        self.shared.lock_state().queue.waiting()
    }

    /// Model time one item costs, as measured (a moving average of batch
    /// time ÷ batch size, divided among the replicas); `None` before any
    /// batch was answered. Per item rather than per batch because under
    /// fair order a request's items spread over batches shared with others.
    pub fn item_time_estimate(&self) -> Option<Duration> {
        self.shared.item_time()
    }

    /// The share of the last seconds the replicas spent in forward passes
    /// (0 to 1, averaged over the replicas): what a steady stream of
    /// requests leaves of the engine's device to others.
    pub fn busy_share(&self) -> f64 {
        self.shared.busy_share()
    }

    /// Totals since creation.
    pub fn stats(&self) -> BatcherStats {
        self.shared.counters.snapshot()
    }
}
