//! [`Announcement`]: images admitted and still being prepared, which an
//! adaptive batch window waits for.

use std::sync::Arc;

use super::shared::Shared;

/// Images announced to a queue ([`BatchQueue::announce`](super::BatchQueue::announce)) and not yet
/// submitted. Dropping it withdraws them, so a request that fails while
/// decoding never leaves a worker waiting for images that will not come.
pub struct Announcement<T, R> {
    pub(super) shared: Arc<Shared<T, R>>,
    pub(super) images: usize,
}

impl<T, R> Drop for Announcement<T, R> {
    fn drop(&mut self) {
        if self.images == 0 {
            return;
        }
        let mut state = self.shared.lock_state();
        state.announced = state.announced.saturating_sub(self.images);
        drop(state);
        self.shared.work_available.notify_all();
    }
}
