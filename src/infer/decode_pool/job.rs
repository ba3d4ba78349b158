//! A request's side of the scheduler: its results as they come, in item
//! order, and cancellation when it is dropped.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Inner, JobError, Outcome};

/// One request's registered work. Dropping it cancels what has not started.
pub(in crate::infer) struct Job<T, E> {
    pub(super) id: u64,
    pub(super) count: usize,
    pub(super) limit: Arc<AtomicUsize>,
    pub(super) results: mpsc::UnboundedReceiver<Outcome<T, E>>,
    pub(super) pool: Arc<Inner<T, E>>,
}

impl<T, E> Job<T, E> {
    /// Every result in item order, or the failure of the lowest-numbered
    /// item that failed. The first failure cancels the items after it;
    /// those before it (already started, in order) are still awaited so
    /// the reported index is the first bad one.
    pub(in crate::infer) async fn collect(&mut self) -> Result<Vec<T>, JobError<E>> {
        let mut slots: Vec<Option<T>> = (0..self.count).map(|_| None).collect();
        let mut failure: Option<JobError<E>> = None;
        let mut wanted = self.count;
        while slots[..wanted].iter().any(Option::is_none) {
            let Some((index, outcome)) = self.results.recv().await else {
                return Err(failure.unwrap_or(JobError::Lost));
            };
            if index >= wanted {
                continue;
            }
            match outcome {
                Ok(Ok(value)) => slots[index] = Some(value),
                Ok(Err(error)) => {
                    failure = Some(JobError::Failed { index, error });
                    wanted = index;
                }
                Err(_) => {
                    failure = Some(JobError::Panicked { index });
                    wanted = index;
                }
            }
            if failure.is_some() {
                self.pool.cancel_from(self.id, wanted, &self.limit);
            }
        }
        match failure {
            Some(failure) => Err(failure),
            None => Ok(slots
                .into_iter()
                .map(|slot| slot.expect("all filled"))
                .collect()),
        }
    }
}

impl<T, E> Drop for Job<T, E> {
    fn drop(&mut self) {
        self.pool.cancel_from(self.id, 0, &self.limit);
    }
}
