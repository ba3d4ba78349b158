//! What one queued item of a model's batch queue carries ([`ImageJob`]: an
//! image, [`ModelInput`], and what its request wants back) and what a
//! replica answers for it ([`ImageResult`]).

use crate::model::ImageInput;
use crate::preprocess::PreparedImage;

/// One image waiting for a forward pass, in either form a client can send.
/// Both kinds share one queue, so they batch together and see the same
/// admission, deadlines and cancellation.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelInput {
    /// Our own preprocessing's 8-bit crop (every V1 request, and KServe V2
    /// `BYTES` inputs): normalized by the replica on its device.
    Crop(PreparedImage),
    /// A CHW fp32 image (`3 · H · W` values) the client normalized itself
    /// (KServe V2 `FP32` input). Its length is checked before it is queued:
    /// a wrong one here would fail every other image of its batch.
    Normalized(Vec<f32>),
}

impl ModelInput {
    /// The borrowed view the classifier takes.
    pub fn as_image_input(&self) -> ImageInput<'_> {
        match self {
            Self::Crop(crop) => ImageInput::Crop(&crop.rgb),
            Self::Normalized(values) => ImageInput::Normalized(values),
        }
    }
}

/// One image in a model's queue, and whether its request wants its
/// features (an embedding, a V2 `features` output) besides the
/// probabilities. Predict and embed requests share the queue, so a batch
/// may hold both; the replica asks the engine for features only when some
/// job of the batch wants them.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageJob {
    pub input: ModelInput,
    /// Answer with the pooled features too.
    pub features: bool,
}

impl ImageJob {
    pub fn new(input: ModelInput, features: bool) -> Self {
        Self { input, features }
    }
}

/// A replica's answer for one [`ImageJob`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageResult {
    /// `num_classes` class probabilities.
    pub probabilities: Vec<f32>,
    /// The pooled pre-logits features, when the job asked for them.
    pub features: Option<Vec<f32>>,
}
