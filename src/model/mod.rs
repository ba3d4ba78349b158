//! SE-ResNeXt on libtorch: the model catalog, the network built from a
//! checkpoint, and [`Classifier`], which turns 8-bit RGB crops (or images a
//! client normalized itself) into class probabilities on a device.
//!
//! tch lives only in this module: callers hand in plain bytes and get plain
//! `f32` vectors back, and the pool drives models through [`Engine`].

mod catalog;
mod device;
mod engine;
mod error;
mod features;
mod layers;
mod net;
mod params;
mod phases;
mod served;
mod tensors;

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use tch::{Kind, TchError, Tensor};

pub use catalog::{
    bottleneck_width, se_reduced_channels, ArchSpec, Architecture, PretrainedCfg,
    ALL_ARCHITECTURES, EXPANSION, FEATURE_DIM, STEM_CHANNELS,
};
pub use device::{
    check_device, device_label, place_replicas, place_replicas_here, resolve_device, DeviceError,
};
pub use engine::{
    engine_thread_guard, shares_cpu_engine_thread, Engine, EngineThreadGuard, Forward, Outputs,
};
pub use error::ModelError;
pub use phases::LoadPhases;
pub use served::{numbered_labels, ModelId, ModelSpec, ALL_MODELS};
/// The device type of [`LoadOptions`], so callers need not depend on tch.
pub use tch::Device;

use tensors::{tensor_to_vec, to_channels_last};

use crate::config::Precision;
use crate::weights::{self, Checkpoint, ReadCheckpoint};

/// One image of a batch, in either form the engine accepts. Borrowed, so a
/// batch can be assembled from queued items (and padding) without copies.
#[derive(Debug, Clone, Copy)]
pub enum ImageInput<'a> {
    /// An HWC 8-bit RGB crop from our own preprocessing; it is normalized on
    /// the device, which keeps host-to-device traffic at one byte a value.
    Crop(&'a [u8]),
    /// A CHW fp32 image the client already normalized itself (KServe V2
    /// `FP32` input); it goes to the network as it is.
    Normalized(&'a [f32]),
}

fn precision_kind(precision: Precision) -> Kind {
    match precision {
        Precision::Fp32 => Kind::Float,
        Precision::Fp16 => Kind::Half,
        Precision::Bf16 => Kind::BFloat16,
    }
}

/// Sets libtorch's intra-op thread count for the whole process (on small
/// machines, leaving a core for decoding beats giving libtorch all of them).
pub fn set_intra_op_threads(threads: usize) {
    tch::set_num_threads(i32::try_from(threads).unwrap_or(i32::MAX));
}

/// How to load a classifier.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Where the weights live and the forward pass runs.
    pub device: Device,
    /// Weight and activation precision; fp16/bf16 only pay off on a GPU.
    pub precision: Precision,
    /// Fold each BatchNorm into its convolution at load time. Kept as a switch
    /// so tests can show both give the same output.
    pub fold_bn: bool,
    /// Run the network on NHWC-strided (`channels_last`) activations and
    /// kernels. Same values, different memory order.
    pub channels_last: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            precision: Precision::Fp32,
            fold_bn: true,
            channels_last: true,
        }
    }
}

/// A loaded model, ready to classify 8-bit RGB crops.
///
/// Owns libtorch tensors, which are `Send` but not `Sync`: one classifier
/// belongs to one thread.
pub struct Classifier {
    id: ModelId,
    cfg: PretrainedCfg,
    net: net::SeResNeXt,
    device: Device,
    kind: Kind,
    channels_last: bool,
    /// `[1, 3, 1, 1]` mean and std on the device, fp32.
    mean: Tensor,
    std: Tensor,
    /// How long each start-up step took, for the log and the metrics.
    phases: LoadPhases,
}

impl Classifier {
    /// Reads the weight file (any supported format) and builds the model.
    pub fn load_file(id: ModelId, path: &Path, options: LoadOptions) -> Result<Self, ModelError> {
        Self::from_read(id, weights::read(path)?, options)
    }

    /// Builds the model from a checkpoint read by [`weights::read`], which
    /// the caller may do on another thread (the read is not libtorch work).
    pub fn from_read(
        id: ModelId,
        read: ReadCheckpoint,
        options: LoadOptions,
    ) -> Result<Self, ModelError> {
        let mut classifier = Self::load(id, read.tensors, options)?;
        classifier.phases.read = read.read_time;
        Ok(classifier)
    }

    /// Builds the model from an in-memory checkpoint, which must match the
    /// architecture exactly.
    pub fn load(
        id: ModelId,
        checkpoint: Checkpoint,
        options: LoadOptions,
    ) -> Result<Self, ModelError> {
        Self::build(id, params::ParamStore::new(checkpoint), options)
    }

    /// A model with seeded random weights, for configs that ask for them
    /// explicitly (demos and tests); its predictions mean nothing.
    pub fn random(id: ModelId, seed: u64, options: LoadOptions) -> Result<Self, ModelError> {
        // libtorch's CPU generator is process-wide: replicas loading at the
        // same time would draw from one stream in turns and get different
        // weights. One at a time, each from its own seed, they are identical.
        static RANDOM_INIT: Mutex<()> = Mutex::new(());
        let _one_at_a_time = RANDOM_INIT.lock().unwrap_or_else(PoisonError::into_inner);
        Self::build(id, params::ParamStore::random(seed), options)
    }

    fn build(
        id: ModelId,
        mut params: params::ParamStore,
        options: LoadOptions,
    ) -> Result<Self, ModelError> {
        let started = Instant::now();
        let cfg = id.pretrained_cfg();
        if !options.fold_bn && options.precision != Precision::Fp32 {
            return Err(ModelError::HalfPrecisionWithoutFolding {
                precision: options.precision,
            });
        }
        if options.device.is_cuda() {
            // Autotune conv algorithms per shape; the pool warms every batch shape.
            tch::Cuda::cudnn_set_benchmark(true);
        }
        let mut net =
            net::SeResNeXt::load(&mut params, id.arch(), cfg.num_classes, options.fold_bn);
        let fold = params.fold_time();
        params.finish()?;
        let kind = precision_kind(options.precision);
        net.move_to(options.device, kind, options.channels_last)?;
        let channel_vector = |values: [f32; 3]| -> Result<Tensor, TchError> {
            Tensor::f_from_slice(&values)?
                .f_view([1, 3, 1, 1])?
                .f_to_device(options.device)
        };
        Ok(Self {
            id,
            cfg,
            net,
            device: options.device,
            kind,
            channels_last: options.channels_last,
            mean: channel_vector(cfg.mean)?,
            std: channel_vector(cfg.std)?,
            phases: LoadPhases::built(started.elapsed(), fold),
        })
    }

    pub fn id(&self) -> ModelId {
        self.id
    }

    pub fn pretrained_cfg(&self) -> &PretrainedCfg {
        &self.cfg
    }

    /// The preprocessing this model's weights expect.
    pub fn transform_spec(&self) -> crate::preprocess::TransformSpec {
        self.cfg.transform_spec()
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// How long reading, folding and building took.
    pub fn load_phases(&self) -> LoadPhases {
        self.phases
    }

    /// Values in one input image (`input_size² · 3`): the bytes of a crop,
    /// the floats of a normalized image.
    pub fn input_len(&self) -> usize {
        let side = self.cfg.input_size as usize;
        side * side * 3
    }

    /// Turns HWC 8-bit RGB crops into a normalized `[N, 3, H, W]` batch on the
    /// device: the u8 bytes travel (4x less than fp32) and ToTensor/Normalize
    /// run where the model runs, in fp32 as timm does them. The crops are
    /// already NHWC in memory, so a `channels_last` model needs no reorder.
    pub fn input_batch(&self, crops: &[&[u8]]) -> Result<Tensor, ModelError> {
        let expected = self.input_len();
        let mut packed = Vec::with_capacity(expected * crops.len());
        for crop in crops {
            if crop.len() != expected {
                return Err(ModelError::BadInput {
                    expected,
                    actual: crop.len(),
                    side: self.cfg.input_size,
                });
            }
            packed.extend_from_slice(crop);
        }
        let side = self.cfg.input_size as i64;
        let host =
            Tensor::f_from_data_size(&packed, &[crops.len() as i64, side, side, 3], Kind::Uint8)?;
        let batch = self
            .upload(host)?
            .f_permute([0, 3, 1, 2])?
            .f_to_kind(Kind::Float)?
            .f_div_scalar(255.0)?
            .f_sub(&self.mean)?
            .f_div(&self.std)?;
        self.in_memory_format(&batch)
    }

    /// Moves a host tensor to the model's device. For a GPU it is staged in
    /// pinned (page-locked) memory first, so the copy is a DMA that runs
    /// asynchronously on the stream instead of a pageable, synchronous one;
    /// libtorch's caching host allocator keeps the staging block alive until
    /// the copy has finished.
    fn upload(&self, host: Tensor) -> Result<Tensor, TchError> {
        if !self.device.is_cuda() {
            return Ok(host);
        }
        // `_pin_memory`: the public `pin_memory(device)` of libtorch 2.11
        // prints a deprecation warning on every call, i.e. every batch.
        host.f_internal_pin_memory(self.device)?
            .f_to_device_(self.device, host.kind(), true, false)
    }

    /// Raw logits `[N, num_classes]` (fp32) for a normalized fp32 batch.
    pub fn logits(&self, input: &Tensor) -> Result<Tensor, ModelError> {
        let _guard = tch::no_grad_guard();
        let input = self.network_input(input)?;
        Ok(self.net.forward(&input)?.f_to_kind(Kind::Float)?)
    }

    /// A normalized fp32 batch on the device, in the network's precision and layout.
    fn network_input(&self, input: &Tensor) -> Result<Tensor, ModelError> {
        let input = input.f_to_device(self.device)?.f_to_kind(self.kind)?;
        self.in_memory_format(&input)
    }

    /// `batch` laid out as the network's kernels are: a no-op when it already is.
    fn in_memory_format(&self, batch: &Tensor) -> Result<Tensor, ModelError> {
        Ok(if self.channels_last {
            to_channels_last(batch)?
        } else {
            batch.f_contiguous()?
        })
    }

    /// Logits `[N · num_classes]` for already-normalized `[N, 3, H, W]` fp32
    /// input, as a client that preprocesses itself would send it.
    pub fn logits_from_normalized(&self, input: &[f32]) -> Result<Vec<f32>, ModelError> {
        tensor_to_vec(&self.logits(&self.flat_normalized_batch(input)?)?)
    }

    /// Already-normalized fp32 input as an `[N, 3, H, W]` tensor, refused
    /// unless it holds whole images.
    fn flat_normalized_batch(&self, input: &[f32]) -> Result<Tensor, ModelError> {
        let per_image = self.input_len();
        if input.is_empty() || !input.len().is_multiple_of(per_image) {
            return Err(ModelError::BadInput {
                expected: per_image,
                actual: input.len(),
                side: self.cfg.input_size,
            });
        }
        let side = self.cfg.input_size as i64;
        Ok(Tensor::f_from_slice(input)?.f_view([-1, 3, side, side])?)
    }

    /// The normalized fp32 `[N, 3, H, W]` input the network sees for these crops.
    pub fn normalized_input(&self, crops: &[&[u8]]) -> Result<Vec<f32>, ModelError> {
        tensor_to_vec(&self.input_batch(crops)?)
    }

    /// Class probabilities for each crop, in order.
    pub fn classify(&self, crops: &[&[u8]]) -> Result<Vec<Vec<f32>>, ModelError> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .forward_batch(&self.input_batch(crops)?, Outputs::PROBABILITIES)?
            .probabilities)
    }

    /// Class probabilities for each image of a batch that may mix crops and
    /// client-normalized images, in order (see [`Classifier::forward_inputs`]).
    pub fn classify_inputs(&self, images: &[ImageInput<'_>]) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(self
            .forward_inputs(images, Outputs::PROBABILITIES)?
            .probabilities)
    }

    /// The `[N, 3, H, W]` batch for mixed inputs: the crops are normalized as
    /// one batch, the normalized images are packed as another, and the two
    /// are concatenated and put back into request order.
    pub(super) fn mixed_input_batch(
        &self,
        images: &[ImageInput<'_>],
    ) -> Result<Tensor, ModelError> {
        let mut crops = Vec::new();
        let mut normalized = Vec::new();
        for image in images {
            match image {
                ImageInput::Crop(crop) => crops.push(*crop),
                ImageInput::Normalized(values) => normalized.push(*values),
            }
        }
        if normalized.is_empty() {
            return self.input_batch(&crops);
        }
        let normalized_batch = self.normalized_batch(&normalized)?;
        if crops.is_empty() {
            return Ok(normalized_batch);
        }
        // Position of each image in `[crops..., normalized...]`.
        let (mut next_crop, mut next_normalized) = (0i64, crops.len() as i64);
        let order: Vec<i64> = images
            .iter()
            .map(|image| {
                let counter = match image {
                    ImageInput::Crop(_) => &mut next_crop,
                    ImageInput::Normalized(_) => &mut next_normalized,
                };
                *counter += 1;
                *counter - 1
            })
            .collect();
        let order = Tensor::f_from_slice(&order)?.f_to_device(self.device)?;
        let joined = Tensor::f_cat(&[self.input_batch(&crops)?, normalized_batch], 0)?;
        Ok(joined.f_index_select(0, &order)?.f_contiguous()?)
    }

    /// Packs client-normalized CHW fp32 images into a batch on the device.
    fn normalized_batch(&self, images: &[&[f32]]) -> Result<Tensor, ModelError> {
        let expected = self.input_len();
        let mut packed = Vec::with_capacity(expected * images.len());
        for image in images {
            if image.len() != expected {
                return Err(ModelError::BadNormalizedInput {
                    expected,
                    actual: image.len(),
                    side: self.cfg.input_size,
                });
            }
            packed.extend_from_slice(image);
        }
        let side = self.cfg.input_size as i64;
        let host = Tensor::f_from_slice(&packed)?.f_view([images.len() as i64, 3, side, side])?;
        Ok(self.upload(host)?)
    }
}

#[cfg(test)]
mod tests;
