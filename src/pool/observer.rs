//! Feeds the batching queue's events into the Prometheus metrics of one model.

use std::sync::Arc;
use std::time::Duration;

use crate::batching::BatchObserver;
use crate::metrics::{Metrics, RejectionReason};

/// The [`BatchObserver`] of one model's queue.
pub struct MetricsObserver {
    pub metrics: Arc<Metrics>,
    pub model: &'static str,
}

impl MetricsObserver {
    fn count_rejections(&self, reason: RejectionReason, images: usize) {
        self.metrics
            .rejections
            .with_label_values(&[self.model, reason.as_label()])
            .inc_by(images as u64);
    }
}

impl BatchObserver for MetricsObserver {
    fn batch_formed(&self, size: usize) {
        self.metrics
            .batch_size
            .with_label_values(&[self.model])
            .observe(size as f64);
    }

    fn item_queue_wait(&self, wait: Duration) {
        self.metrics
            .queue_duration
            .with_label_values(&[self.model])
            .observe(wait.as_secs_f64());
    }

    fn batch_completed(&self, size: usize, inference_time: Duration, succeeded: bool) {
        self.metrics
            .inference_duration
            .with_label_values(&[self.model])
            .observe(inference_time.as_secs_f64());
        if succeeded {
            self.metrics
                .images
                .with_label_values(&[self.model])
                .inc_by(size as u64);
        }
    }

    fn dropped_cancelled(&self, count: usize) {
        self.count_rejections(RejectionReason::Cancelled, count);
    }

    fn dropped_expired(&self, count: usize) {
        self.count_rejections(RejectionReason::DeadlineExceeded, count);
    }
}
