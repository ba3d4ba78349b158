//! State shared by every [`BatchQueue`](super::BatchQueue) handle and every
//! batch in flight, and the bookkeeping that must happen outside the lock:
//! answering dropped items, counting, the batch-time EMA behind Retry-After,
//! and drain tracking.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, Notify};

use super::batch::ItemResult;
use super::busy::{BusyShare, WINDOW as BUSY_WINDOW};
use super::ema::AtomicEma;
use super::error::BatchError;
use super::fair_order::FairQueue;
use super::observer::{BatchObserver, Counters};
use super::BatcherConfig;

/// Everything behind a [`BatchQueue`](super::BatchQueue); batches keep it
/// alive to report back.
pub(super) struct Shared<T, R> {
    /// Validated settings, read by the policy and the Retry-After estimate.
    pub(super) config: BatcherConfig,
    /// The queue proper; see `State`.
    pub(super) state: Mutex<State<T, R>>,
    /// Wakes workers when items arrive, when leftovers remain after a batch
    /// was taken, and on close.
    pub(super) work_available: Condvar,
    /// Wakes `wait_drained` futures (async, as shutdown runs on the runtime).
    pub(super) drained: Notify,
    /// Caller's metrics hooks.
    pub(super) observer: Arc<dyn BatchObserver>,
    /// EMA of reported batch compute time in nanoseconds; 0 = no sample yet.
    batch_time_ema_nanos: AtomicEma,
    /// EMA of batch compute time ÷ batch size in nanoseconds; 0 = no sample.
    item_time_ema_nanos: AtomicEma,
    /// The replicas' recent share of time in passes.
    busy: BusyShare,
    /// Totals behind `BatchQueue::stats`.
    pub(super) counters: Counters,
}

/// Mutable queue state, guarded by `Shared::state`.
pub(super) struct State<T, R> {
    /// Waiting items, in the round-robin order batches take them.
    pub(super) queue: FairQueue<T, R>,
    /// Set by `close`: no admission, leftovers served at once, then `None`.
    pub(super) closed: bool,
    /// Set by `abandon`: no worker is left, so nothing is admitted again.
    pub(super) abandoned: bool,
    /// Batches taken and not yet answered or dropped; drained means zero.
    pub(super) in_flight_batches: usize,
    /// Images of admitted requests still being prepared (decoded) before
    /// they are submitted; the adaptive window waits only for these.
    pub(super) announced: usize,
}

/// One item waiting for a batch.
pub(super) struct QueuedItem<T, R> {
    /// The caller's input, handed to the worker.
    pub(super) input: T,
    /// Start of the item's batch delay and of its reported queue wait.
    pub(super) enqueued_at: Instant,
    /// When the requester stops caring; expired items are not computed.
    pub(super) deadline: Option<Instant>,
    /// Where the item's result goes; closed once the requester is gone.
    pub(super) reply: oneshot::Sender<ItemResult<R>>,
    /// The submitter's span (its request's), so the worker's batch span can
    /// link back to every request it serves.
    pub(super) span: tracing::Span,
}

impl<T, R> QueuedItem<T, R> {
    /// True when computing the item would be wasted: nobody is listening or
    /// the deadline has passed.
    pub(super) fn is_dead(&self, now: Instant) -> bool {
        self.reply.is_closed() || self.deadline.is_some_and(|deadline| now >= deadline)
    }
}

/// Closed, empty and nothing in flight.
pub(super) fn is_drained<T, R>(state: &State<T, R>) -> bool {
    state.closed && state.queue.is_empty() && state.in_flight_batches == 0
}

impl<T, R> Shared<T, R> {
    /// An empty, open queue with `config` (already validated).
    pub(super) fn new(config: BatcherConfig, observer: Arc<dyn BatchObserver>) -> Self {
        let state = State {
            queue: FairQueue::new(),
            closed: false,
            abandoned: false,
            in_flight_batches: 0,
            announced: 0,
        };
        Self {
            config,
            state: Mutex::new(state),
            work_available: Condvar::new(),
            drained: Notify::new(),
            observer,
            batch_time_ema_nanos: AtomicEma::default(),
            item_time_ema_nanos: AtomicEma::default(),
            busy: BusyShare::new(BUSY_WINDOW),
            counters: Counters::default(),
        }
    }

    /// Locks the state, recovering from poisoning: every critical section
    /// leaves the state consistent, so a panic elsewhere must not take the
    /// whole queue down with it.
    pub(super) fn lock_state(&self) -> MutexGuard<'_, State<T, R>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The observer, for `Batch` to report completions.
    pub(super) fn observer(&self) -> &dyn BatchObserver {
        self.observer.as_ref()
    }

    /// Wakes drain waiters if the queue is drained. Called with the lock held
    /// so the check and the notification see the same state.
    pub(super) fn notify_if_drained(&self, state: &State<T, R>) {
        if is_drained(state) {
            self.drained.notify_waiters();
        }
    }

    /// Answers expired items with `DeadlineExceeded` and counts both kinds.
    /// Called without the lock.
    pub(super) fn dispose_dead(&self, dead: Vec<QueuedItem<T, R>>, now: Instant) {
        if dead.is_empty() {
            return;
        }
        let mut cancelled = 0;
        let mut expired = 0;
        for item in dead {
            // A gone requester is the more precise cause even if also expired.
            if item.reply.is_closed() {
                cancelled += 1;
            } else {
                debug_assert!(item.deadline.is_some_and(|deadline| now >= deadline));
                expired += 1;
                let _ = item.reply.send(Err(BatchError::DeadlineExceeded));
            }
        }
        self.report_cancelled(cancelled);
        if expired > 0 {
            Counters::add(&self.counters.dropped_expired, expired);
            self.observer.dropped_expired(expired);
        }
    }

    /// Counts items dropped because their requester went away.
    pub(super) fn report_cancelled(&self, cancelled: usize) {
        if cancelled > 0 {
            Counters::add(&self.counters.dropped_cancelled, cancelled);
            self.observer.dropped_cancelled(cancelled);
        }
    }

    /// Folds a worker-reported batch time into the EMAs behind Retry-After
    /// and admission's estimate (per batch and per item).
    pub(super) fn record_batch_time(&self, batch_time: Duration, size: usize) {
        let nanos = u64::try_from(batch_time.as_nanos()).unwrap_or(u64::MAX);
        self.batch_time_ema_nanos.record(nanos);
        let size = u64::try_from(size.max(1)).unwrap_or(u64::MAX);
        self.item_time_ema_nanos.record(nanos / size);
        self.busy.record(batch_time, Instant::now());
    }

    /// The share of recent time the replicas spent in passes, 0 to 1.
    pub(super) fn busy_share(&self) -> f64 {
        self.busy.share(self.config.replicas, Instant::now())
    }

    /// Most items the next forward pass may take: `max_batch_size`, or as
    /// many as the measured time per item (one replica's) fits in
    /// `max_pass_time`, at least one. Before any pass was measured the
    /// limit is `max_batch_size`: the first pass measures.
    ///
    /// Per item, because CPU passes take about as long per item whatever
    /// the batch; on a GPU, where larger batches cost less per item, the
    /// limit settles where a whole pass takes about `max_pass_time`.
    pub(super) fn batch_limit(&self) -> usize {
        let most = self.config.max_batch_size;
        let (Some(budget), Some(per_item)) =
            (self.config.max_pass_time, self.item_time_ema_nanos.get())
        else {
            return most;
        };
        let fits = budget.as_nanos() / u128::from(per_item);
        usize::try_from(fits).unwrap_or(usize::MAX).clamp(1, most)
    }

    /// Measured model time per item, divided among the replicas.
    pub(super) fn item_time(&self) -> Option<Duration> {
        let replicas = u32::try_from(self.config.replicas).unwrap_or(u32::MAX);
        let per_item = Duration::from_nanos(self.item_time_ema_nanos.get()?);
        Some(per_item / replicas.max(1))
    }

    /// Batches ahead of a new request × EMA batch time, divided among the
    /// replicas. Before any batch was measured, one batch is assumed to take
    /// `max_batch_delay` (the least it takes at low load).
    pub(super) fn retry_after_for_depth(&self, depth: usize) -> Duration {
        let batches_ahead = depth.div_ceil(self.batch_limit()).max(1);
        let rounds = batches_ahead.div_ceil(self.config.replicas);
        let per_batch = self
            .batch_time_ema_nanos
            .get()
            .map_or(self.config.max_batch_delay, Duration::from_nanos);
        per_batch.saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX))
    }

    /// Called by `Batch::drop`: the batch no longer counts as in flight.
    pub(super) fn batch_finished(&self, size: usize, abandoned: bool) {
        let mut state = self.lock_state();
        state.in_flight_batches = state.in_flight_batches.saturating_sub(1);
        self.notify_if_drained(&state);
        drop(state);
        if abandoned {
            Counters::add(&self.counters.batches_abandoned, 1);
            self.observer.batch_abandoned(size);
        }
    }
}
