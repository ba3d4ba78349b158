//! Admission on the deadline: what a request costs, what is ahead of it and
//! whom it would delay, from the measured rates (the arithmetic is in
//! `estimate.rs`). One request is judged at a time, and registered with the
//! decode scheduler before the next is judged: two heavy requests judged
//! together would each see an idle server and both be admitted.

use std::sync::PoisonError;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::error::InferError;
use super::estimate::{judge, Background, Load, ADMIT_HEADROOM};
use super::images::{submit_decodes, DecodeJob, RequestImages};
use super::service::{InferenceService, ModelHandle};
use crate::batching::Announcement;
use crate::pool::{ImageJob, ImageResult};

/// Images announced to a model's queue.
pub(super) type ImageAnnouncement = Announcement<ImageJob, ImageResult>;

/// A request's images once admitted: decoding on the scheduler, or
/// client-normalized tensors (no decode).
pub(super) enum Admitted {
    Decoding(DecodeJob),
    Normalized(Vec<Vec<f32>>),
}

impl InferenceService {
    /// Judges the request against the work the server holds and, if
    /// admitted, announces its images to the model's queue and queues its
    /// decodes, all under the admission lock (no await inside).
    pub(super) fn admit(
        &self,
        model: &ModelHandle,
        images: RequestImages,
        pixels: &[u64],
        client: Option<&str>,
        timeout: Duration,
        deadline: Instant,
    ) -> Result<(ImageAnnouncement, Admitted), InferError> {
        let _one_at_a_time = self
            .admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.check_deadline(model, pixels, timeout)?;
        // From here until they are queued (or the request fails), the
        // replicas know these images are coming and may wait for them.
        let announcement = model.queue.announce(images.len());
        let admitted = match images {
            RequestImages::Encoded(encoded) => {
                Admitted::Decoding(self.start_decodes(model, encoded, pixels, client, deadline))
            }
            RequestImages::Normalized(normalized) => Admitted::Normalized(normalized),
        };
        Ok((announcement, admitted))
    }

    fn start_decodes(
        &self,
        model: &ModelHandle,
        encoded: Vec<Bytes>,
        pixels: &[u64],
        client: Option<&str>,
        deadline: Instant,
    ) -> DecodeJob {
        submit_decodes(
            encoded,
            pixels,
            model.transform_spec(),
            &self.decode_pool,
            client,
            Some(deadline),
            self.decode_limits,
        )
    }

    /// Refuses a request that, by the measured rates, cannot finish before
    /// its deadline because of the load ahead of it, or whose work would
    /// make an admitted request late (see `estimate.rs`), counting the
    /// streams of requests it will share the server with. Work is costed as
    /// decode (pixels ÷ workers × time per megapixel) plus model time (crops
    /// × time per item), for the requests decoding and the submissions in
    /// the model's queue alike. Only when its own work alone would fit the
    /// deadline: a request that cannot make it even on an idle server is
    /// not shed for load (retrying later would not help), and keeps its 504.
    /// Never before a decode rate was measured (model time counts as zero
    /// until a batch was), and never for images that need no decode.
    fn check_deadline(
        &self,
        model: &ModelHandle,
        pixels: &[u64],
        timeout: Duration,
    ) -> Result<(), InferError> {
        let own_pixels: u64 = pixels.iter().sum();
        let Some(per_megapixel) = self.decode_pool.time_per_megapixel() else {
            return Ok(());
        };
        if own_pixels == 0 {
            return Ok(());
        }
        let workers = self.decode_pool.workers() as f64;
        let decode = |pixels: u64| per_megapixel.mul_f64(pixels as f64 / workers / 1e6);
        let per_item = model.queue.item_time_estimate().unwrap_or(Duration::ZERO);
        let forward =
            |items: usize| per_item.saturating_mul(u32::try_from(items).unwrap_or(u32::MAX));
        let largest = pixels.iter().copied().max().unwrap_or(0);
        let own_decode = decode(own_pixels).max(per_megapixel.mul_f64(largest as f64 / 1e6));
        let own = own_decode.saturating_add(forward(pixels.len()));
        let alone = own.saturating_add(model.queue.one_batch_estimate());
        if alone > timeout {
            return Ok(());
        }
        // Headroom for later arrivals, except for a request that needs it
        // to make its deadline at all (it gets the whole timeout).
        let headroom = timeout.mul_f64(ADMIT_HEADROOM);
        let limit = if alone <= headroom { headroom } else { timeout };
        let (running_pixels, decoding) = self.decode_pool.loads();
        let mut loads: Vec<Load> = decoding
            .iter()
            .map(|load| Load {
                work: decode(load.pixels).saturating_add(forward(load.images)),
                deadline: load.deadline,
            })
            .collect();
        loads.extend(
            model
                .queue
                .waiting_submissions()
                .iter()
                .map(|waiting| Load {
                    work: forward(waiting.items),
                    deadline: waiting.deadline,
                }),
        );
        let now = Instant::now();
        let background = Background {
            running: decode(running_pixels),
            streams: self.concurrency.average(now),
        };
        judge(&loads, background, own, limit, now).map_err(|refusal| {
            tracing::debug!(?refusal, ?timeout, "refused: deadline unreachable");
            InferError::WouldMissDeadline {
                estimate: refusal.estimate,
                timeout,
                retry_after: refusal.retry_after,
            }
        })
    }
}
