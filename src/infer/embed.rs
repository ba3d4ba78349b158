//! Image embeddings: the pooled pre-logits features of each image, from the
//! same admission, preprocessing and batch queue as `predict`. An embed
//! request's images share batches with predict requests' images; the
//! replica computes features for a batch only when one of its images asks.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::error::InferError;
use super::flow::{Call, Timing};
use super::images::RequestImages;
use super::service::InferenceService;
use crate::model::ModelId;

/// A request to embed one or more encoded images.
#[derive(Debug)]
pub struct EmbedRequest {
    /// Model id or alias, as the client wrote it.
    pub model: String,
    /// Encoded images (JPEG, PNG, …), in the order embeddings come back.
    pub images: Vec<Bytes>,
    /// Scale each embedding to unit L2 norm (the default of the API, as
    /// text-embeddings-inference does), so a dot product is a cosine.
    pub normalize: bool,
    /// The client's own deadline; the server's request timeout applies when absent.
    pub timeout: Option<Duration>,
    /// Who sent it (`[server] client_id_header`); see `PredictRequest::client`.
    pub client: Option<String>,
}

/// The answer to an [`EmbedRequest`].
#[derive(Debug, Clone)]
pub struct EmbedOutput {
    pub model: ModelId,
    /// One embedding ([`FEATURE_DIM`](crate::model::FEATURE_DIM) values) per
    /// image, in request order.
    pub embeddings: Vec<Vec<f32>>,
    /// Whether the embeddings were scaled to unit norm.
    pub normalized: bool,
    pub timing: Timing,
    /// Sizes of the batches this request's images ran in, in image order.
    pub batch_sizes: Vec<usize>,
    /// True when the model serves explicitly configured random weights.
    pub random_weights: bool,
}

impl InferenceService {
    /// Embeds the request's images: admission, preprocessing, batching (with
    /// predict traffic), then L2 normalization when asked.
    #[tracing::instrument(name = "embed", skip_all, fields(model = %request.model, images = request.images.len()))]
    pub async fn embed(&self, request: EmbedRequest) -> Result<EmbedOutput, InferError> {
        let started = Instant::now();
        let model = self.model(&request.model)?;
        let call = Call {
            timeout: request.timeout,
            client: request.client.as_deref(),
            started,
            features: true,
        };
        let images = RequestImages::Encoded(request.images);
        let result = self.classify_on(model, images, call).await;
        self.count_rejection(model, &result);
        let output = result?;
        let mut embeddings = output.features.unwrap_or_default();
        if request.normalize {
            embeddings.iter_mut().for_each(|row| l2_normalize(row));
        }
        Ok(EmbedOutput {
            model: output.model,
            embeddings,
            normalized: request.normalize,
            timing: output.timing,
            batch_sizes: output.batch_sizes,
            random_weights: output.random_weights,
        })
    }
}

/// Scales `values` to unit L2 norm, summing in f64 so 2048 values lose no
/// precision; an all-zero vector (possible after the last ReLU) stays zero
/// rather than turning into NaNs.
pub fn l2_normalize(values: &mut [f32]) {
    let norm = values
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        values
            .iter_mut()
            .for_each(|v| *v = (f64::from(*v) / norm) as f32);
    }
}

#[cfg(test)]
#[path = "embed_tests.rs"]
mod tests;
