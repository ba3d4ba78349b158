//! What a model's replicas report while they start: how many are ready, what
//! failed, and on which device they run. Read by readiness and metadata.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shared between a model's replica threads and the request side.
#[derive(Debug)]
pub struct ModelState {
    /// Replicas configured; the model is ready when all of them are.
    replicas: usize,
    /// Replicas loaded *and* warmed.
    ready: AtomicUsize,
    /// Replica threads that died of a panic; they never come back.
    lost: AtomicUsize,
    /// The first load error, if any: startup failed for this model.
    failure: Mutex<Option<String>>,
    /// Where each ready replica runs (`cpu`, `cuda:0`), in the order they
    /// became ready.
    devices: Mutex<Vec<String>>,
    /// Whether the first ready replica runs on the CPU: admission asks on
    /// every request, so it is a flag rather than the device's name.
    on_cpu: AtomicBool,
    /// When start-up began, the origin of [`ModelState::ready_after`].
    started: Instant,
    /// How long after `started` the last replica became ready.
    ready_after: Mutex<Option<Duration>>,
    /// The batch shapes warmed before readiness (the setting `warmup` and
    /// the device decide them), so clients and tests can see what was paid.
    warmed_batch_sizes: Mutex<Vec<usize>>,
}

impl ModelState {
    pub fn new(replicas: usize) -> Self {
        Self::started_at(replicas, Instant::now())
    }

    /// A model whose start-up began at `started` (the server's start, so
    /// that resolving its weights counts too).
    pub fn started_at(replicas: usize, started: Instant) -> Self {
        Self {
            replicas,
            ready: AtomicUsize::new(0),
            lost: AtomicUsize::new(0),
            failure: Mutex::new(None),
            devices: Mutex::new(Vec::new()),
            on_cpu: AtomicBool::new(false),
            started,
            ready_after: Mutex::new(None),
            warmed_batch_sizes: Mutex::new(Vec::new()),
        }
    }

    pub fn replicas(&self) -> usize {
        self.replicas
    }

    /// True once every replica has loaded and warmed up.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) >= self.replicas && self.failure().is_none()
    }

    pub fn ready_replicas(&self) -> usize {
        self.ready.load(Ordering::Acquire)
    }

    pub(crate) fn replica_ready(&self, device: String) {
        let mut devices = lock(&self.devices);
        if devices.is_empty() {
            self.on_cpu.store(device == "cpu", Ordering::Release);
        }
        devices.push(device);
        drop(devices);
        let ready = self.ready.fetch_add(1, Ordering::AcqRel) + 1;
        if ready == self.replicas {
            *lock(&self.ready_after) = Some(self.started.elapsed());
        }
    }

    /// Records the batch shapes a replica warmed before it got ready.
    pub(crate) fn warmed(&self, batch_sizes: Vec<usize>) {
        *lock(&self.warmed_batch_sizes) = batch_sizes;
    }

    /// How long after start-up began every replica was ready; `None` before.
    pub fn ready_after(&self) -> Option<Duration> {
        *lock(&self.ready_after)
    }

    /// The batch shapes run before readiness (empty until a replica warmed).
    pub fn warmed_batch_sizes(&self) -> Vec<usize> {
        lock(&self.warmed_batch_sizes).clone()
    }

    pub(crate) fn fail(&self, message: String) {
        lock(&self.failure).get_or_insert(message);
    }

    /// A replica thread died: the model is not ready from now on (as after
    /// a failed start). Returns how many replicas are still there to serve.
    pub(crate) fn replica_lost(&self, message: String) -> usize {
        self.fail(message);
        let lost = self.lost.fetch_add(1, Ordering::AcqRel) + 1;
        self.replicas.saturating_sub(lost)
    }

    /// Replica threads that died after start: the process cannot heal them.
    pub fn lost_replicas(&self) -> usize {
        self.lost.load(Ordering::Acquire)
    }

    /// Why the model could not start, if it could not.
    pub fn failure(&self) -> Option<String> {
        lock(&self.failure).clone()
    }

    /// Where the replicas run, once the first is ready: the first ready
    /// replica's device.
    pub fn device(&self) -> Option<String> {
        lock(&self.devices).first().cloned()
    }

    /// Whether the replicas run on the CPU (false before the first is ready,
    /// like [`ModelState::device`]).
    pub fn runs_on_cpu(&self) -> bool {
        self.on_cpu.load(Ordering::Acquire)
    }

    /// Where each ready replica runs.
    pub fn replica_devices(&self) -> Vec<String> {
        lock(&self.devices).clone()
    }
}

/// A poisoned lock only means another thread panicked mid-update of a plain
/// value; the value is still usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_replica_is_and_nothing_failed() {
        let state = ModelState::new(2);
        assert!(!state.is_ready());
        assert!(!state.runs_on_cpu());
        state.replica_ready("cpu".into());
        assert!(state.runs_on_cpu());
        assert!(!state.is_ready());
        assert_eq!(state.ready_after(), None);
        state.replica_ready("cpu".into());
        assert!(state.is_ready());
        assert!(state.ready_after().is_some());
        assert_eq!(state.device().as_deref(), Some("cpu"));
        state.fail("boom".into());
        state.fail("second".into());
        assert!(!state.is_ready());
        assert_eq!(state.failure().as_deref(), Some("boom"));
    }

    #[test]
    fn a_lost_replica_makes_the_model_not_ready_and_counts_down() {
        let state = ModelState::new(2);
        state.replica_ready("cpu".into());
        state.replica_ready("cpu".into());
        assert_eq!(state.lost_replicas(), 0);
        assert_eq!(state.replica_lost("first".into()), 1);
        assert!(!state.is_ready());
        assert_eq!(state.lost_replicas(), 1);
        assert_eq!(state.replica_lost("second".into()), 0);
        assert_eq!(state.failure().as_deref(), Some("first"));
    }
}
