//! The order in which queued items go into batches: round-robin across the
//! submissions waiting, one item per submission per turn, the submissions
//! taking their turns in arrival order.
//!
//! A FIFO of items puts a one-image request that arrives behind a 40-image
//! one behind all 40 crops: five batches of 8 on a CPU, seconds. Here it
//! joins the ring behind the submissions already waiting and is served
//! after at most one item of each, so it goes into the next batch taken
//! whenever fewer than `max_batch_size` submissions wait. The ring keeps
//! its place from one batch to the next (a batch does not restart the turns
//! at the oldest submission), so with more submissions waiting than a batch
//! holds, the newest are not starved either. Items of one submission keep
//! their order, so its results still come back in the order it sent them.

use std::collections::VecDeque;
use std::time::Instant;

use super::shared::QueuedItem;

/// Waiting items, grouped by submission, in turn order.
pub(super) struct FairQueue<T, R> {
    /// Submissions with items left; the front one takes the next turn.
    /// Invariant: no submission in it is empty.
    ring: VecDeque<VecDeque<QueuedItem<T, R>>>,
    /// Items over all submissions (the queue's depth).
    len: usize,
}

/// One waiting submission as admission sees it: items left, and until when
/// its requester waits for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitingSubmission {
    /// Items of it still queued (cancelled ones not yet purged included).
    pub items: usize,
    /// Its deadline, if it gave one.
    pub deadline: Option<Instant>,
}

impl<T, R> FairQueue<T, R> {
    pub(super) fn new() -> Self {
        Self {
            ring: VecDeque::new(),
            len: 0,
        }
    }

    /// Items waiting, all submissions together.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A new submission takes its turns after the ones already waiting.
    pub(super) fn push_submission(&mut self, items: VecDeque<QueuedItem<T, R>>) {
        if items.is_empty() {
            return;
        }
        self.len += items.len();
        self.ring.push_back(items);
    }

    /// When the longest-waiting item was queued: the batch delay counts
    /// from it. Every submission's front item is its oldest, but the ring
    /// rotates, so the oldest submission need not be at the front.
    pub(super) fn oldest_enqueued_at(&self) -> Option<Instant> {
        self.ring
            .iter()
            .filter_map(|items| items.front().map(|item| item.enqueued_at))
            .min()
    }

    /// Up to `count` items, one per submission per turn, in turn order. A
    /// submission with items left goes to the back of the ring, so the
    /// next batch starts with the submission after the last one served.
    pub(super) fn take(&mut self, count: usize) -> Vec<QueuedItem<T, R>> {
        let mut taken = Vec::with_capacity(count.min(self.len));
        while taken.len() < count {
            let Some(mut items) = self.ring.pop_front() else {
                break;
            };
            if let Some(item) = items.pop_front() {
                taken.push(item);
            }
            if !items.is_empty() {
                self.ring.push_back(items);
            }
        }
        self.len -= taken.len();
        taken
    }

    /// Moves out the items computing would waste (requester gone, deadline
    /// passed), keeping the turn order and the order of the live ones. The
    /// scan is cheap (an atomic load and a compare per item, bounded by the
    /// capacity); the ring is rebuilt only when something is dead.
    pub(super) fn take_dead(&mut self, now: Instant) -> Vec<QueuedItem<T, R>> {
        let any_dead = self.ring.iter().flatten().any(|item| item.is_dead(now));
        if !any_dead {
            return Vec::new();
        }
        let mut dead = Vec::new();
        for items in std::mem::take(&mut self.ring) {
            let mut live = VecDeque::with_capacity(items.len());
            for item in items {
                if item.is_dead(now) {
                    dead.push(item);
                } else {
                    live.push_back(item);
                }
            }
            if !live.is_empty() {
                self.ring.push_back(live);
            }
        }
        self.len -= dead.len();
        dead
    }

    /// Every item, emptying the queue (hard shutdown).
    pub(super) fn take_all(&mut self) -> Vec<QueuedItem<T, R>> {
        self.len = 0;
        std::mem::take(&mut self.ring)
            .into_iter()
            .flatten()
            .collect()
    }

    /// The submissions waiting, in turn order, for admission's estimate.
    pub(super) fn waiting(&self) -> Vec<WaitingSubmission> {
        self.ring
            .iter()
            .map(|items| WaitingSubmission {
                items: items.len(),
                deadline: items.front().and_then(|item| item.deadline),
            })
            .collect()
    }
}
