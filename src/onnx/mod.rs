//! The ONNX Runtime engine: the same SE-ResNeXt, from the same checkpoint,
//! built as an ONNX graph in memory ([`graph`]) and run by ONNX Runtime's CPU
//! execution provider. On x86 CPUs its convolutions (the grouped 3x3 ones
//! above all) run faster than libtorch eager's oneDNN calls; BENCHMARKS.md
//! has the figures. libtorch stays the default engine and the GPU engine.
//!
//! The pool drives it through [`Engine`] like any other engine; nothing
//! outside this module touches `ort`.

mod cache;
mod graph;
mod params;
pub mod runtime;
mod session;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions, Session};
use ort::value::TensorRef;

use crate::config::{GraphOptimization, OnnxRuntimeConfig};
use crate::model::{
    Engine, Forward, ImageInput, LoadPhases, ModelError, ModelId, Outputs, PretrainedCfg,
    FEATURE_DIM,
};
use crate::weights;
pub use runtime::RuntimeError;
pub use session::CacheUse;
use session::Weights;

/// How sessions are made: the `[onnxruntime]` table, with the thread count
/// already resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSettings {
    /// libonnxruntime to open (`None`: search, see [`runtime::candidates`]).
    pub library: Option<PathBuf>,
    /// 0 = ONNX Runtime's own choice.
    pub intra_op_threads: usize,
    pub optimization: GraphOptimization,
    pub spin: bool,
    pub memory_arena: bool,
    /// Where optimized graphs are kept between starts (`None`: not kept).
    pub cache_dir: Option<PathBuf>,
}

impl SessionSettings {
    /// `[onnxruntime]`, its thread count falling back to `fallback_threads`
    /// (the server's `intra_op_threads`) when it is 0.
    pub fn from_config(config: &OnnxRuntimeConfig, fallback_threads: usize) -> Self {
        Self {
            library: (!config.library.as_os_str().is_empty()).then(|| config.library.clone()),
            intra_op_threads: match config.intra_op_threads {
                0 => fallback_threads,
                threads => threads,
            },
            optimization: config.optimization,
            spin: config.spin,
            memory_arena: config.memory_arena,
            cache_dir: (!config.cache_dir.as_os_str().is_empty()).then(|| config.cache_dir.clone()),
        }
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self::from_config(&OnnxRuntimeConfig::default(), 0)
    }
}

/// A model on ONNX Runtime, ready to classify 8-bit crops or normalized images.
pub struct OnnxClassifier {
    cfg: PretrainedCfg,
    /// `Session::run` takes `&mut`; an engine is driven by one thread, so
    /// this lock is never contended.
    session: Mutex<Session>,
    /// What the graph cache did for this start.
    cache: CacheUse,
    phases: LoadPhases,
}

/// An `ort` failure as the engine's error.
fn engine_error(error: impl std::fmt::Display) -> ModelError {
    ModelError::Engine(format!("onnxruntime: {error}"))
}

impl OnnxClassifier {
    /// Reads the weight file (any supported format) and builds the session.
    pub fn load_file(
        id: ModelId,
        path: &Path,
        settings: &SessionSettings,
    ) -> Result<Self, ModelError> {
        Self::from_read(id, weights::read(path)?, settings)
    }

    /// Builds the session from a checkpoint read by [`weights::read`].
    pub fn from_read(
        id: ModelId,
        read: weights::ReadCheckpoint,
        settings: &SessionSettings,
    ) -> Result<Self, ModelError> {
        let mut classifier = Self::build(id, Weights::Checkpoint(read.tensors), settings)?;
        classifier.phases.read = read.read_time;
        Ok(classifier)
    }

    /// From an in-memory checkpoint, which must match the architecture exactly.
    pub fn load(
        id: ModelId,
        checkpoint: weights::Checkpoint,
        settings: &SessionSettings,
    ) -> Result<Self, ModelError> {
        Self::build(id, Weights::Checkpoint(checkpoint), settings)
    }

    /// Seeded random weights (testing only; see `ParamSource::random`).
    pub fn random(id: ModelId, seed: u64, settings: &SessionSettings) -> Result<Self, ModelError> {
        Self::build(id, Weights::Random(seed), settings)
    }

    fn build(
        id: ModelId,
        weights: Weights,
        settings: &SessionSettings,
    ) -> Result<Self, ModelError> {
        let environment =
            runtime::environment(settings.library.as_deref()).map_err(engine_error)?;
        let built = session::create(&environment, settings, id, weights)?;
        tracing::info!(
            model = id.name(),
            graph_s = built.fold.as_secs_f64(),
            session_s = built.build.as_secs_f64(),
            cache = %built.cache.name(),
            "onnxruntime session built"
        );
        Ok(Self {
            cfg: id.pretrained_cfg(),
            session: Mutex::new(built.session),
            cache: built.cache,
            phases: LoadPhases {
                read: std::time::Duration::ZERO,
                fold: built.fold,
                build: built.build,
            },
        })
    }

    /// Whether this session came from the graph cache, or was built (and
    /// then saved, or not).
    pub fn cache_use(&self) -> CacheUse {
        self.cache
    }

    /// Values in one input image (`input_size² · 3`).
    pub fn input_len(&self) -> usize {
        let side = self.cfg.input_size as usize;
        side * side * 3
    }

    /// Logits `[N · num_classes]` for already-normalized `[N, 3, H, W]` fp32 input.
    pub fn logits_from_normalized(&self, input: &[f32]) -> Result<Vec<f32>, ModelError> {
        self.flat_from_normalized(input, graph::LOGITS, self.cfg.num_classes)
    }

    /// Pooled features `[N · FEATURE_DIM]` for already-normalized
    /// `[N, 3, H, W]` fp32 input: timm's
    /// `forward_head(forward_features(x), pre_logits=True)`.
    pub fn features_from_normalized(&self, input: &[f32]) -> Result<Vec<f32>, ModelError> {
        self.flat_from_normalized(input, graph::FEATURES, FEATURE_DIM)
    }

    /// Logits `[N · num_classes]` for 8-bit HWC crops.
    pub fn logits(&self, crops: &[&[u8]]) -> Result<Vec<f32>, ModelError> {
        let images: Vec<ImageInput<'_>> = crops.iter().map(|crop| ImageInput::Crop(crop)).collect();
        let mut outputs = self.run(&images, &[(graph::LOGITS, self.cfg.num_classes)])?;
        Ok(outputs.remove(0).concat())
    }

    /// The graph output `output` (`width` values an image) for a flat
    /// normalized batch, flat.
    fn flat_from_normalized(
        &self,
        input: &[f32],
        output: &str,
        width: usize,
    ) -> Result<Vec<f32>, ModelError> {
        let per_image = self.input_len();
        if input.is_empty() || !input.len().is_multiple_of(per_image) {
            return Err(self.bad_normalized(input.len()));
        }
        let images: Vec<ImageInput<'_>> = input
            .chunks_exact(per_image)
            .map(ImageInput::Normalized)
            .collect();
        let mut outputs = self.run(&images, &[(output, width)])?;
        Ok(outputs.remove(0).concat())
    }

    fn bad_normalized(&self, actual: usize) -> ModelError {
        ModelError::BadNormalizedInput {
            expected: self.input_len(),
            actual,
            side: self.cfg.input_size,
        }
    }

    /// Runs one batch and returns each of the graph `outputs` (a name and
    /// its values per image), one row per image in the order of `images`.
    /// ONNX Runtime fetches only the outputs named, so a batch that wants no
    /// features copies none.
    fn run(
        &self,
        images: &[ImageInput<'_>],
        outputs: &[(&str, usize)],
    ) -> Result<Vec<Vec<Vec<f32>>>, ModelError> {
        let expected = self.input_len();
        let side = self.cfg.input_size as usize;
        let (mut crops, mut normalized) = (Vec::new(), Vec::new());
        // Where each image lands in the graph's batch: crops first.
        let mut crop_count = 0usize;
        let mut positions = Vec::with_capacity(images.len());
        for image in images {
            match image {
                ImageInput::Crop(crop) if crop.len() == expected => {
                    positions.push(Slot::Crop(crop_count));
                    crop_count += 1;
                    crops.extend_from_slice(crop);
                }
                ImageInput::Crop(crop) => {
                    return Err(ModelError::BadInput {
                        expected,
                        actual: crop.len(),
                        side: self.cfg.input_size,
                    })
                }
                ImageInput::Normalized(values) if values.len() == expected => {
                    positions.push(Slot::Normalized(normalized.len() / expected));
                    normalized.extend_from_slice(values);
                }
                ImageInput::Normalized(values) => return Err(self.bad_normalized(values.len())),
            }
        }
        let normalized_count = normalized.len() / expected;
        let crops = TensorRef::from_array_view(([crop_count, side, side, 3], crops.as_slice()))
            .map_err(engine_error)?;
        let normalized =
            TensorRef::from_array_view(([normalized_count, 3, side, side], normalized.as_slice()))
                .map_err(engine_error)?;
        let selection = select(outputs.iter().map(|(name, _)| *name))?;
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let results = session
            .run_with_options(
                ort::inputs![graph::CROPS => crops, graph::NORMALIZED => normalized],
                &selection,
            )
            .map_err(engine_error)?;
        outputs
            .iter()
            .map(|&(name, width)| {
                let (_, values) = results[name]
                    .try_extract_tensor::<f32>()
                    .map_err(engine_error)?;
                let rows: Vec<&[f32]> = values.chunks_exact(width).collect();
                Ok(positions
                    .iter()
                    .map(|slot| match *slot {
                        Slot::Crop(index) => rows[index].to_vec(),
                        Slot::Normalized(index) => rows[crop_count + index].to_vec(),
                    })
                    .collect())
            })
            .collect()
    }
}

/// An image's place among the graph's two inputs.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Crop(usize),
    Normalized(usize),
}

/// Run options that fetch exactly the graph outputs `names`.
fn select<'a>(
    names: impl Iterator<Item = &'a str>,
) -> Result<RunOptions<HasSelectedOutputs>, ModelError> {
    let selector = names.fold(OutputSelector::no_default(), OutputSelector::with);
    Ok(RunOptions::new()
        .map_err(engine_error)?
        .with_outputs(selector))
}

impl Engine for OnnxClassifier {
    fn device_label(&self) -> String {
        "cpu".to_owned()
    }

    fn pads_to_warm_shapes(&self) -> bool {
        false
    }

    fn input_len(&self) -> usize {
        OnnxClassifier::input_len(self)
    }

    fn forward(&self, images: &[ImageInput<'_>], outputs: Outputs) -> Result<Forward, ModelError> {
        if images.is_empty() {
            return Ok(Forward {
                probabilities: Vec::new(),
                features: outputs.features.then(Vec::new),
            });
        }
        let mut wanted = vec![(graph::PROBABILITIES, self.cfg.num_classes)];
        if outputs.features {
            wanted.push((graph::FEATURES, FEATURE_DIM));
        }
        let mut results = self.run(images, &wanted)?.into_iter();
        Ok(Forward {
            probabilities: results.next().unwrap_or_default(),
            features: results.next(),
        })
    }

    fn load_phases(&self) -> LoadPhases {
        self.phases
    }
}

#[cfg(test)]
mod tests;
