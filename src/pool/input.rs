//! [`ModelInput`]: what one queued item of a model's batch queue carries.

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
