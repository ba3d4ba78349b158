//! One forward pass that yields both answers a batch may want: the class
//! probabilities and the pooled pre-logits features (the embedding). The
//! network runs once up to the pooling; the classifier head runs on the
//! pooled tensor, which is copied to the host only when asked for.

use tch::{Kind, Tensor};

use super::tensors::tensor_to_vec;
use super::{Classifier, Forward, ImageInput, ModelError, Outputs, FEATURE_DIM};

impl Classifier {
    /// The probabilities (and, when `outputs` asks, the features) of each
    /// image of a batch that may mix crops and client-normalized images, in
    /// order. A crop goes through exactly the normalization
    /// [`Classifier::classify`] applies, so it gets the same answer whichever
    /// other images share its batch.
    pub fn forward_inputs(
        &self,
        images: &[ImageInput<'_>],
        outputs: Outputs,
    ) -> Result<Forward, ModelError> {
        if images.is_empty() {
            return Ok(Forward {
                probabilities: Vec::new(),
                features: outputs.features.then(Vec::new),
            });
        }
        self.forward_batch(&self.mixed_input_batch(images)?, outputs)
    }

    /// Pooled features `[N · FEATURE_DIM]` for already-normalized
    /// `[N, 3, H, W]` fp32 input: timm's
    /// `forward_head(forward_features(x), pre_logits=True)`.
    pub fn features_from_normalized(&self, input: &[f32]) -> Result<Vec<f32>, ModelError> {
        let batch = self.flat_normalized_batch(input)?;
        let features = self.forward_batch(&batch, Outputs::WITH_FEATURES)?.features;
        Ok(features.unwrap_or_default().concat())
    }

    /// Runs a normalized batch: softmax over the logits, one vector per
    /// image, and the pooled features when asked for (in fp32 whatever the
    /// model's precision, as the probabilities are).
    pub(super) fn forward_batch(
        &self,
        batch: &Tensor,
        outputs: Outputs,
    ) -> Result<Forward, ModelError> {
        let _guard = tch::no_grad_guard();
        let input = self.network_input(batch)?;
        let pooled = self.net.pooled(&input)?;
        let probabilities = self
            .net
            .head(&pooled)?
            .f_to_kind(Kind::Float)?
            .f_softmax(-1, Kind::Float)?;
        let probabilities = rows(&tensor_to_vec(&probabilities)?, self.cfg.num_classes);
        let features = if outputs.features {
            Some(rows(&tensor_to_vec(&pooled)?, FEATURE_DIM))
        } else {
            None
        };
        Ok(Forward {
            probabilities,
            features,
        })
    }
}

/// A flat row-major matrix as one vector per row.
fn rows(flat: &[f32], width: usize) -> Vec<Vec<f32>> {
    flat.chunks_exact(width).map(<[f32]>::to_vec).collect()
}
