//! [`ClassifyRequest`] (the KServe V2 kind of request: full probabilities
//! back) and [`RequestImages`], the two forms in which a request hands over
//! its images, with how each becomes queue items: encoded images through our
//! preprocessing on the bounded CPU pool, client-normalized tensors after a
//! check that they can run at all.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::decode_pool::{Job, JobError, Work};
use super::error::InferError;
use super::flow::Timing;
use super::service::DecodePool;
use crate::model::ModelId;
use crate::pool::ModelInput;
use crate::preprocess::{self, DecodeLimits, PreparedImage, PreprocessError, TransformSpec};

/// A request's images, in the order their answers come back.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestImages {
    /// Encoded images (JPEG, PNG, …): decoded and given timm's eval
    /// transform here, exactly as for the V1 API.
    Encoded(Vec<Bytes>),
    /// CHW fp32 images (`3 · H · W` values each) the client already resized,
    /// cropped and normalized like timm; they skip our preprocessing.
    Normalized(Vec<Vec<f32>>),
}

impl RequestImages {
    pub fn len(&self) -> usize {
        match self {
            Self::Encoded(images) => images.len(),
            Self::Normalized(images) => images.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A request for the full class probabilities of one or more images
/// (KServe V2), encoded or already normalized by the client.
#[derive(Debug)]
pub struct ClassifyRequest {
    /// Model id or alias, as the client wrote it.
    pub model: String,
    pub images: RequestImages,
    /// The client's own deadline; the server's request timeout applies when absent.
    pub timeout: Option<Duration>,
    /// Who sent it (`[server] client_id_header`); see `PredictRequest::client`.
    pub client: Option<String>,
    /// Return each image's pooled features too (V2 output `features`).
    pub features: bool,
}

/// The answer to a [`ClassifyRequest`].
#[derive(Debug, Clone)]
pub struct ClassifyOutput {
    pub model: ModelId,
    /// One probability vector (`num_classes` values) per image, in request order.
    pub probabilities: Vec<Vec<f32>>,
    /// One feature vector ([`FEATURE_DIM`](crate::model::FEATURE_DIM)
    /// values) per image, in request order, when the request asked for them.
    pub features: Option<Vec<Vec<f32>>>,
    pub timing: Timing,
    /// Sizes of the batches this request's images ran in, in image order.
    pub batch_sizes: Vec<usize>,
    /// True when the model serves explicitly configured random weights.
    pub random_weights: bool,
}

/// Each image's decode cost in pixels, from its header alone. An image
/// whose header does not parse or is over the limits costs nothing: its
/// decode fails at the header, before any pixel buffer exists.
pub(super) fn image_pixels(images: &[Bytes], limits: &DecodeLimits) -> Vec<u64> {
    images
        .iter()
        .map(|bytes| match preprocess::header_dimensions(bytes) {
            Some((width, height)) if limits.check(width, height).is_ok() => {
                u64::from(width) * u64::from(height)
            }
            _ => 0,
        })
        .collect()
}

/// A request's decodes on the scheduler.
pub(super) type DecodeJob = Job<PreparedImage, PreprocessError>;

/// Queues every image's decode and transform on the fair decode scheduler
/// (see `decode_pool.rs`), at once, so admission can register a request's
/// work before judging the next. `deadline` is reported to admission only.
pub(super) fn submit_decodes(
    images: Vec<Bytes>,
    pixels: &[u64],
    spec: TransformSpec,
    pool: &DecodePool,
    client: Option<&str>,
    deadline: Option<Instant>,
    limits: DecodeLimits,
) -> DecodeJob {
    let works = images
        .into_iter()
        .zip(pixels)
        .map(|(bytes, &pixels)| Work {
            pixels,
            run: Box::new(move || preprocess::prepare(&bytes, &spec, &limits)) as Box<_>,
        })
        .collect();
    pool.submit_for(client, deadline, works)
}

/// The crops of a [`DecodeJob`], in image order. The first bad image fails
/// the request and its later images are never decoded, as they are not
/// once the job is dropped (timeout, client gone).
pub(super) async fn collect_decodes(job: &mut DecodeJob) -> Result<Vec<PreparedImage>, InferError> {
    job.collect().await.map_err(|error| match error {
        JobError::Failed { index, error } => InferError::BadImage {
            index,
            source: error,
        },
        JobError::Panicked { index } => {
            InferError::Internal(format!("preprocess of image {index} panicked"))
        }
        JobError::Lost => InferError::Internal("preprocess results lost".to_owned()),
    })
}

/// Client-normalized images as queue items, once each is known to fit the
/// network. Checked here, before queueing, because a bad one inside a batch
/// would fail every other request's images in it. Non-finite values are
/// refused too: they would only come back as NaN probabilities.
pub(super) fn check_normalized(
    images: Vec<Vec<f32>>,
    input_size: u32,
) -> Result<Vec<ModelInput>, InferError> {
    let side = input_size as usize;
    let expected = 3 * side * side;
    images
        .into_iter()
        .enumerate()
        .map(|(index, values)| {
            if values.len() != expected {
                return Err(InferError::BadTensor {
                    index,
                    reason: format!(
                        "expected {expected} values (3x{side}x{side}), got {}",
                        values.len()
                    ),
                });
            }
            if let Some(position) = values.iter().position(|value| !value.is_finite()) {
                return Err(InferError::BadTensor {
                    index,
                    reason: format!("value {position} is not a finite number"),
                });
            }
            Ok(ModelInput::Normalized(values))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_images_must_have_the_network_size_and_finite_values() {
        let good = vec![0.5f32; 3 * 4 * 4];
        let inputs = check_normalized(vec![good.clone()], 4).unwrap();
        assert_eq!(inputs, [ModelInput::Normalized(good.clone())]);

        let short = vec![0.0f32; 10];
        let error = check_normalized(vec![good.clone(), short], 4).unwrap_err();
        assert!(
            matches!(error, InferError::BadTensor { index: 1, .. }),
            "{error}"
        );
        assert_eq!(error.error_type(), "invalid_tensor");

        let mut nan = good;
        nan[7] = f32::NAN;
        let error = check_normalized(vec![nan], 4).unwrap_err();
        assert!(error.to_string().contains("value 7"), "{error}");
    }

    #[test]
    fn request_images_count_either_form() {
        assert_eq!(RequestImages::Encoded(vec![Bytes::new(); 2]).len(), 2);
        assert!(RequestImages::Normalized(Vec::new()).is_empty());
    }
}
