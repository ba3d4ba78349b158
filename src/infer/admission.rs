//! Admission on the deadline: what a request costs, what is ahead of it and
//! whom it would delay, from the measured rates (the arithmetic is in
//! `estimate.rs`). One request is judged at a time, and registered with the
//! decode scheduler before the next is judged: two heavy requests judged
//! together would each see an idle server and both be admitted.

use std::sync::atomic::{AtomicBool, Ordering};
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

/// Marks the one request admitted although the estimate says it cannot make
/// its deadline even alone (see [`InferenceService::check_deadline`]);
/// dropping it lets the next such request try.
#[derive(Debug)]
pub(super) struct LongShot<'a>(&'a AtomicBool);

impl Drop for LongShot<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A request's images once admitted: decoding on the scheduler, or
/// client-normalized tensors (no decode).
pub(super) enum Admitted {
    Decoding(DecodeJob),
    Normalized(Vec<Vec<f32>>),
}

impl InferenceService {
    /// Judges the request against the work the server holds and, if
    /// admitted, announces its images to the model's queue and queues its
    /// decodes, all under the admission lock (no await inside). The request
    /// holds the [`LongShot`], if it got one, until it is answered.
    pub(super) fn admit(
        &self,
        model: &ModelHandle,
        images: RequestImages,
        pixels: &[u64],
        client: Option<&str>,
        timeout: Duration,
        deadline: Instant,
    ) -> Result<(ImageAnnouncement, Admitted, Option<LongShot<'_>>), InferError> {
        let _one_at_a_time = self
            .admission
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let long_shot = self.check_deadline(model, pixels, timeout)?;
        // From here until they are queued (or the request fails), the
        // replicas know these images are coming and may wait for them.
        let announcement = model.queue.announce(images.len());
        let admitted = match images {
            RequestImages::Encoded(encoded) => {
                Admitted::Decoding(self.start_decodes(model, encoded, pixels, client, deadline))
            }
            RequestImages::Normalized(normalized) => Admitted::Normalized(normalized),
        };
        Ok((announcement, admitted, long_shot))
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
    /// the model's queue alike. Never before a decode rate was measured
    /// (model time counts as zero until a batch was), and never for images
    /// that need no decode.
    ///
    /// A request whose own work alone is estimated past its deadline is a
    /// long shot: admitted one at a time (it returns a [`LongShot`]), and
    /// otherwise refused with its own estimate as Retry-After. Refusing all
    /// of them would trust the estimate for ever: the decode rate starts
    /// from a calibration photo, and only decoding a large image corrects
    /// it (a 49-Mpixel JPEG was estimated 4x slower than it decoded).
    /// Admitting all of them turned four such requests arriving together
    /// into four 504s, each slowing the others.
    fn check_deadline(
        &self,
        model: &ModelHandle,
        pixels: &[u64],
        timeout: Duration,
    ) -> Result<Option<LongShot<'_>>, InferError> {
        let own_pixels: u64 = pixels.iter().sum();
        let Some(per_megapixel) = self.decode_pool.time_per_megapixel() else {
            return Ok(None);
        };
        if own_pixels == 0 {
            return Ok(None);
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
            return match self.long_shot() {
                Some(long_shot) => Ok(Some(long_shot)),
                None => Err(InferError::WouldMissDeadline {
                    estimate: alone,
                    timeout,
                    retry_after: alone,
                }),
            };
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
        // Decoding yields to forward passes only where both share the CPU.
        let on_cpu = model.state.runs_on_cpu();
        let background = Background {
            running: decode(running_pixels),
            streams: self.concurrency.average(now),
            spare: if on_cpu {
                1.0 - model.queue.busy_share()
            } else {
                1.0
            },
            niced_decode: own_decode,
        };
        judge(&loads, background, own, limit, now)
            .map(|()| None)
            .map_err(|refusal| {
                tracing::debug!(?refusal, ?timeout, "refused: deadline unreachable");
                InferError::WouldMissDeadline {
                    estimate: refusal.estimate,
                    timeout,
                    retry_after: refusal.retry_after,
                }
            })
    }

    /// The long-shot slot, if no other request holds it.
    fn long_shot(&self) -> Option<LongShot<'_>> {
        self.long_shot
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| LongShot(&self.long_shot))
    }
}
