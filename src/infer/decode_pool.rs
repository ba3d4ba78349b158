//! The fair decode scheduler: every request's images wait in one ring and
//! `workers` blocking tasks take them round-robin across requests, one image
//! per request per turn. A FIFO of images (what a semaphore gives) would put
//! a later one-image request behind all 40 images of an earlier one; here it
//! waits for about one image per active request.
//!
//! With a client key (`[server] client_id_header`), the turns go round the
//! clients instead: all requests of one client form one lane, which takes
//! one turn per round (its requests taking that turn in rotation), so a
//! client that sends ten heavy requests at once gets the share of one.
//! Requests without a key are each a lane of their own.
//!
//! Two more things it owns, because only it sees the work before it runs:
//! - a budget of decoded pixels in flight (`[server] max_inflight_pixels`),
//!   which bounds decode memory whatever the image sizes; an image that does
//!   not fit waits its turn, except that one runs whenever nothing else does,
//!   so an image larger than the budget (but within the per-image limits)
//!   can never deadlock;
//! - cancellation: a request that failed, timed out or whose client went
//!   away (its [`Job`] dropped) never has its remaining images decoded.
//!
//! It also measures the decode time per megapixel (an EMA) and reports the
//! pixels ahead of a new request, for the facade's admission estimate.
//!
//! Generic over the work (`FnOnce() -> Result<T, E>`), so the tests drive
//! it with closures and channels instead of images and sleeps.

use std::collections::{HashMap, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::decode_ring::Ring;
use super::low_priority::{LowPriorityThreads, DECODE_NICE};
use crate::batching::AtomicEma;

/// Only images of at least this many pixels feed the per-megapixel EMA:
/// a small one's time is mostly fixed cost (the resize into the crop, the
/// call itself), and a 1 x 1 image would claim hours per megapixel.
const RATE_SAMPLE_MIN_PIXELS: u64 = 1_000_000;

/// One unit of work and its cost in decoded pixels (from the image header).
pub(super) struct Work<T, E> {
    pub(super) pixels: u64,
    pub(super) run: Box<dyn FnOnce() -> Result<T, E> + Send>,
}

/// One request waiting in the scheduler, as admission sees it: pixels not
/// yet started, all its images (each still needs the model), its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DecodeLoad {
    pub(super) pixels: u64,
    pub(super) images: usize,
    pub(super) deadline: Option<Instant>,
}

/// Why a job did not yield every result.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum JobError<E> {
    /// Item `index` failed; no earlier item did.
    Failed { index: usize, error: E },
    /// Item `index` panicked (a bug in the work, not the client's fault).
    Panicked { index: usize },
    /// The scheduler lost results it owed (a bug).
    Lost,
}

type Outcome<T, E> = (usize, std::thread::Result<Result<T, E>>);

/// A request's images not yet started, and where their results go.
struct Pending<T, E> {
    works: VecDeque<(usize, Work<T, E>)>,
    /// Shared with the job and its running tasks: items at or past it are
    /// no longer wanted.
    limit: Arc<AtomicUsize>,
    results: mpsc::UnboundedSender<Outcome<T, E>>,
    runtime: Handle,
    /// For admission: its image count (each still needs the model) and
    /// when it stops waiting (whether a newcomer would make it late).
    images: usize,
    deadline: Option<Instant>,
}

impl<T, E> Pending<T, E> {
    fn waiting_pixels(&self) -> u64 {
        self.works.iter().map(|(_, work)| work.pixels).sum()
    }
}

struct State<T, E> {
    /// Whose turn it is: requests (or clients) with images left to start.
    ring: Ring,
    requests: HashMap<u64, Pending<T, E>>,
    running: usize,
    /// Whether the express slot (see [`FairPool::with_express`]) is taken.
    express_running: bool,
    pixels_running: u64,
    next_id: u64,
}

struct Inner<T, E> {
    state: Mutex<State<T, E>>,
    workers: usize,
    budget: u64,
    /// Largest image the express slot takes; 0 = no express slot.
    express_max_pixels: u64,
    /// EMA of decode time per megapixel in nanoseconds; 0 = not measured yet.
    nanos_per_megapixel: AtomicEma,
    /// Where the regular workers' items run: `workers` niced threads, so a
    /// forward pass beside them is not slowed (`low_priority.rs`). The
    /// express slot's item runs on tokio's blocking pool at normal priority:
    /// a small image that finds every worker busy is decoded at once.
    threads: LowPriorityThreads,
}

/// The scheduler; cheap to clone.
pub(super) struct FairPool<T, E> {
    inner: Arc<Inner<T, E>>,
}

impl<T, E> Clone for FairPool<T, E> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Send + 'static, E: Send + 'static> FairPool<T, E> {
    /// `workers` run at once (at least 1); `budget` bounds the pixels of
    /// the items running together (at least one item always may run).
    #[cfg(test)]
    pub(super) fn new(workers: usize, budget: u64) -> Self {
        Self::with_express(workers, budget, 0)
    }

    /// A pool as `new` makes it, with an express slot: one task beyond `workers`
    /// that takes, while every worker is busy, the next image in turn order
    /// of at most `express_max_pixels` (0 = no slot). Without it an ordinary
    /// photo waits for the large images running ahead of it (a 49-Mpixel
    /// JPEG decodes for a second); with it, it shares the CPU with them for
    /// the few milliseconds it needs.
    pub(super) fn with_express(workers: usize, budget: u64, express_max_pixels: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    ring: Ring::default(),
                    requests: HashMap::new(),
                    running: 0,
                    express_running: false,
                    pixels_running: 0,
                    next_id: 0,
                }),
                workers: workers.max(1),
                budget,
                express_max_pixels,
                nanos_per_megapixel: AtomicEma::default(),
                threads: LowPriorityThreads::new(workers.max(1), DECODE_NICE),
            }),
        }
    }

    /// Queues a request's work, a lane of its own, at the back of the ring
    /// and starts what may start. Must be called within a tokio runtime (the
    /// work runs on its blocking pool).
    #[cfg(test)]
    pub(super) fn submit(&self, works: Vec<Work<T, E>>) -> Job<T, E> {
        self.submit_for(None, None, works)
    }

    /// [`FairPool::submit`], in the lane of `client` when there is one: at
    /// the back of that lane's requests (and the lane at the back of the
    /// ring if it had no work left). `deadline` is only reported to
    /// admission ([`FairPool::loads`]); the job's owner enforces it.
    pub(super) fn submit_for(
        &self,
        client: Option<&str>,
        deadline: Option<Instant>,
        works: Vec<Work<T, E>>,
    ) -> Job<T, E> {
        let count = works.len();
        let limit = Arc::new(AtomicUsize::new(count));
        let (sender, results) = mpsc::unbounded_channel();
        let mut state = self.inner.lock();
        let id = state.next_id;
        state.next_id += 1;
        if count > 0 {
            state.ring.join(id, client);
            state.requests.insert(
                id,
                Pending {
                    works: works.into_iter().enumerate().collect(),
                    limit: limit.clone(),
                    results: sender,
                    runtime: Handle::current(),
                    images: count,
                    deadline,
                },
            );
        }
        drop(state);
        dispatch(&self.inner);
        Job {
            id,
            count,
            limit,
            results,
            pool: self.inner.clone(),
        }
    }

    /// Measured decode time per megapixel; `None` before any was measured.
    pub(super) fn time_per_megapixel(&self) -> Option<Duration> {
        self.inner
            .nanos_per_megapixel
            .get()
            .map(Duration::from_nanos)
    }

    /// Pixels a new request of `own` pixels would see decoded before its
    /// own are done under round-robin (each active request gets about as
    /// many pixels as it does, up to what it has left), plus the running
    /// ones and its own (tests; admission uses [`FairPool::loads`]).
    #[cfg(test)]
    pub(super) fn pixels_ahead_of(&self, own: u64) -> u64 {
        let state = self.inner.lock();
        let shares: u64 = state
            .requests
            .values()
            .map(|pending| pending.waiting_pixels().min(own))
            .fold(0, u64::saturating_add);
        state
            .pixels_running
            .saturating_add(shares)
            .saturating_add(own)
    }

    /// The pixels decoding now, and each request with images waiting: its
    /// waiting pixels, its image count and its deadline. A request whose
    /// last images are all running is no longer listed (a window of one
    /// decode, in which its crops go uncounted).
    pub(super) fn loads(&self) -> (u64, Vec<DecodeLoad>) {
        let state = self.inner.lock();
        let loads = state
            .requests
            .values()
            .map(|pending| DecodeLoad {
                pixels: pending.waiting_pixels(),
                images: pending.images,
                deadline: pending.deadline,
            })
            .collect();
        (state.pixels_running, loads)
    }

    /// Records a decode that took `took` for `pixels` (a calibration run
    /// outside the pool), as if one of its items had.
    pub(super) fn record_sample(&self, pixels: u64, took: Duration) {
        self.inner.record(pixels, took);
    }

    /// How many items run at once at most.
    pub(super) fn workers(&self) -> usize {
        self.inner.workers
    }
}

impl<T, E> Inner<T, E> {
    fn lock(&self) -> MutexGuard<'_, State<T, E>> {
        // The lock guards bookkeeping only (no work runs under it); a panic
        // while holding it leaves counts that are still consistent enough.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Items from `from` on are no longer wanted: those not started never will be.
    fn cancel_from(&self, id: u64, from: usize, limit: &AtomicUsize) {
        limit.fetch_min(from, Ordering::AcqRel);
        let mut state = self.lock();
        if let Some(pending) = state.requests.get_mut(&id) {
            pending.works.retain(|(index, _)| *index < from);
            if pending.works.is_empty() {
                state.requests.remove(&id);
            }
        }
    }

    fn record(&self, pixels: u64, took: Duration) {
        if pixels < RATE_SAMPLE_MIN_PIXELS {
            return;
        }
        self.nanos_per_megapixel
            .record((took.as_nanos() as f64 * 1e6 / pixels as f64) as u64);
    }
}

/// Starts items while a worker is free and the next in turn fits the budget.
/// The turn order is strict: an item that does not fit holds the others
/// back (skipping it for smaller ones could starve large images forever).
fn dispatch<T: Send + 'static, E: Send + 'static>(inner: &Arc<Inner<T, E>>) {
    let mut state = inner.lock();
    loop {
        let express = if state.running < inner.workers {
            false
        } else if inner.express_max_pixels > 0 && !state.express_running {
            true
        } else {
            return;
        };
        let (position, id, pixels) = if express {
            let requests = &state.requests;
            let small =
                |id| next_wanted(requests, id).is_some_and(|p| p <= inner.express_max_pixels);
            let Some((position, id)) = state.ring.find(small) else {
                return;
            };
            (position, id, next_wanted(requests, id).unwrap_or(0))
        } else {
            let Some(id) = state.ring.front() else {
                return;
            };
            let Some(pixels) = next_wanted(&state.requests, id) else {
                // Cancelled, failed or finished: its turn is gone.
                state.requests.remove(&id);
                state.ring.drop_front();
                continue;
            };
            let running = state.pixels_running;
            if running > 0 && running.saturating_add(pixels) > inner.budget {
                return;
            }
            (0, id, pixels)
        };
        let Some(pending) = state.requests.get_mut(&id) else {
            unreachable!("the request was just looked at; this is a bug");
        };
        let Some((index, work)) = pending.works.pop_front() else {
            unreachable!("the front work was just looked at; this is a bug");
        };
        let finished = pending.works.is_empty();
        let limit = pending.limit.clone();
        let results = pending.results.clone();
        let runtime = pending.runtime.clone();
        if finished {
            state.requests.remove(&id);
        }
        state.ring.take_turn_at(position, finished);
        if express {
            state.express_running = true;
        } else {
            state.running += 1;
        }
        state.pixels_running += pixels;
        let worker = Arc::clone(inner);
        let item = move || {
            let inner = worker;
            // Cancelled between its turn and a free thread: skip it.
            let outcome = (index < limit.load(Ordering::Acquire)).then(|| {
                let started = Instant::now();
                let outcome = panic::catch_unwind(AssertUnwindSafe(work.run));
                if matches!(outcome, Ok(Ok(_))) {
                    // Failures (mostly a bad header, in microseconds) would
                    // make decoding look cheaper than it is.
                    inner.record(pixels, started.elapsed());
                } else {
                    // Stop the request's later items now, before this
                    // worker takes its next turn (the job only hears of
                    // it when its task is next polled).
                    limit.fetch_min(index, Ordering::AcqRel);
                }
                outcome
            });
            // Free the worker and its pixels before the job hears of the
            // result: whoever it wakes then sees the pool as it now is.
            let mut state = inner.lock();
            if express {
                state.express_running = false;
            } else {
                state.running -= 1;
            }
            state.pixels_running -= pixels;
            drop(state);
            if let Some(outcome) = outcome {
                let _ = results.send((index, outcome));
            }
            drop(results);
            dispatch(&inner);
        };
        if express {
            runtime.spawn_blocking(item);
        } else {
            inner.threads.spawn(item);
        }
    }
}

/// The pixels of request `id`'s next image, if it has one still wanted.
/// Works are in item order, so once the front one is past the limit (a
/// failure or a drop lowered it), none is.
fn next_wanted<T, E>(requests: &HashMap<u64, Pending<T, E>>, id: u64) -> Option<u64> {
    let pending = requests.get(&id)?;
    let wanted = pending.limit.load(Ordering::Acquire);
    match pending.works.front() {
        Some((index, work)) if *index < wanted => Some(work.pixels),
        _ => None,
    }
}

mod job;

pub(super) use job::Job;

#[cfg(test)]
#[path = "decode_pool_tests.rs"]
mod tests;
