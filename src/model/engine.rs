//! The seam between a replica and whatever runs its network: the pool drives
//! an [`Engine`] and never sees a tensor. libtorch's [`Classifier`] is the
//! engine today; a test engine (or another runtime) plugs in the same way.

use tch::Device;

use super::{device_label, resolve_device, Classifier, ImageInput, LoadPhases, ModelError};
use crate::config::DeviceSpec;

/// What a forward pass hands back besides the probabilities, which every
/// pass computes (the classifier head is a small fraction of the network).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outputs {
    /// The pooled pre-logits features ([`FEATURE_DIM`](super::FEATURE_DIM)
    /// per image), the image's embedding. Asked for only when some image of
    /// the batch wants them, so classification-only traffic copies nothing more.
    pub features: bool,
}

impl Outputs {
    /// Probabilities only.
    pub const PROBABILITIES: Self = Self { features: false };
    /// Probabilities and pooled features.
    pub const WITH_FEATURES: Self = Self { features: true };
}

/// The results of one forward pass, rows in image order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Forward {
    /// `num_classes` values per image.
    pub probabilities: Vec<Vec<f32>>,
    /// [`FEATURE_DIM`](super::FEATURE_DIM) values per image; `Some` exactly
    /// when [`Outputs::features`] was asked for.
    pub features: Option<Vec<Vec<f32>>>,
}

/// One loaded model on one device, as a replica uses it.
///
/// `Send`, not `Sync`: an engine belongs to the one thread that runs it
/// (libtorch tensors may move between threads but not be shared).
pub trait Engine: Send {
    /// Where it runs, in the API's documented form (`cpu`, `cuda:0`).
    fn device_label(&self) -> String;

    /// Whether batches are padded up to the shapes warmed before readiness.
    /// A GPU under cuDNN benchmark mode picks its algorithms per shape, and a
    /// shape met for the first time under traffic would pay that search; a
    /// CPU runs any batch size at the same speed, so it runs batches as they come.
    fn pads_to_warm_shapes(&self) -> bool;

    /// Values in one input image: the bytes of a crop, the floats of a
    /// client-normalized image.
    fn input_len(&self) -> usize;

    /// One forward pass over `images`: the class probabilities of each, and
    /// the pooled features too when `outputs` asks for them.
    fn forward(&self, images: &[ImageInput<'_>], outputs: Outputs) -> Result<Forward, ModelError>;

    /// Class probabilities for each image, in order.
    fn classify(&self, images: &[ImageInput<'_>]) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(self.forward(images, Outputs::PROBABILITIES)?.probabilities)
    }

    /// How long loading took, step by step (zero for an engine that does
    /// not measure it, such as a test fake).
    fn load_phases(&self) -> LoadPhases {
        LoadPhases::default()
    }
}

impl Engine for Classifier {
    fn device_label(&self) -> String {
        device_label(self.device())
    }

    fn pads_to_warm_shapes(&self) -> bool {
        self.device().is_cuda()
    }

    fn input_len(&self) -> usize {
        Classifier::input_len(self)
    }

    fn forward(&self, images: &[ImageInput<'_>], outputs: Outputs) -> Result<Forward, ModelError> {
        self.forward_inputs(images, outputs)
    }

    fn load_phases(&self) -> LoadPhases {
        Classifier::load_phases(self)
    }
}

/// Keeps the calling thread out of autograd for as long as it lives. Grad
/// mode is per thread, and an engine thread never trains, so each takes one
/// for its whole life.
#[must_use = "autograd is off only while the guard lives"]
pub struct EngineThreadGuard {
    _no_grad: tch::NoGradGuard,
}

/// See [`EngineThreadGuard`].
pub fn engine_thread_guard() -> EngineThreadGuard {
    EngineThreadGuard {
        _no_grad: tch::no_grad_guard(),
    }
}

/// Whether a model on `device` runs its work on the one shared CPU engine
/// thread: CPU models whose kernels open OpenMP teams (more than one
/// intra-op thread) do; see `pool::cpu_thread` for why.
pub fn shares_cpu_engine_thread(device: DeviceSpec) -> bool {
    resolve_device(device) == Device::Cpu && tch::get_num_threads() > 1
}
