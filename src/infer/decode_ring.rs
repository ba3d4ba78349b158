//! The turn order of the fair decode scheduler: a ring of lanes, each lane
//! a queue of requests. A request without a client key is a lane of its
//! own; requests with the same key share one lane, so a client takes one
//! turn per round however many requests it sends.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Who a turn of the ring belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Lane {
    /// A request without a client key: a lane of its own.
    Request(u64),
    /// Every request that carried this client key.
    Client(Arc<str>),
}

/// Lanes with requests, in turn order. Invariant: a lane is in the ring
/// exactly once while its queue is not empty, and not at all otherwise.
#[derive(Debug, Default)]
pub(super) struct Ring {
    ring: VecDeque<Lane>,
    lanes: HashMap<Lane, VecDeque<u64>>,
}

impl Ring {
    /// Request `id` joins the back of its client's lane (the lane joining
    /// the back of the ring if it was idle), or a new lane of its own.
    pub(super) fn join(&mut self, id: u64, client: Option<&str>) {
        let lane = client.map_or(Lane::Request(id), |key| Lane::Client(Arc::from(key)));
        let queue = self.lanes.entry(lane.clone()).or_default();
        queue.push_back(id);
        if queue.len() == 1 {
            self.ring.push_back(lane);
        }
    }

    /// The request whose turn it is.
    pub(super) fn front(&self) -> Option<u64> {
        let lane = self.ring.front()?;
        self.lanes
            .get(lane)
            .and_then(|queue| queue.front().copied())
    }

    /// The first lane (its position, and its front request) whose front
    /// request `fits`, in turn order.
    pub(super) fn find(&self, mut fits: impl FnMut(u64) -> bool) -> Option<(usize, u64)> {
        self.ring.iter().enumerate().find_map(|(position, lane)| {
            let id = *self.lanes.get(lane)?.front()?;
            fits(id).then_some((position, id))
        })
    }

    /// The front request of the lane at `position` had its turn: it goes to
    /// the back of its lane unless `finished`, and the lane to the back of
    /// the ring unless it has no request left.
    pub(super) fn take_turn_at(&mut self, position: usize, finished: bool) {
        let Some(lane) = self.ring.remove(position) else {
            return;
        };
        let Some(queue) = self.lanes.get_mut(&lane) else {
            return;
        };
        let front = queue.pop_front();
        if let (Some(id), false) = (front, finished) {
            queue.push_back(id);
        }
        if queue.is_empty() {
            self.lanes.remove(&lane);
        } else {
            self.ring.push_back(lane);
        }
    }

    /// The front request has nothing left to run (cancelled or done): it
    /// leaves, and its lane keeps its place for its next request.
    pub(super) fn drop_front(&mut self) {
        let Some(lane) = self.ring.front() else {
            return;
        };
        let Some(queue) = self.lanes.get_mut(lane) else {
            self.ring.pop_front();
            return;
        };
        queue.pop_front();
        if queue.is_empty() {
            let lane = lane.clone();
            self.lanes.remove(&lane);
            self.ring.pop_front();
        }
    }
}
