//! `seresnext-serve bench`: in-process forward throughput and latency per
//! batch size, the figure the HTTP path is compared against and that timm
//! eager is compared with (`scripts/bench/compare_forward.sh`).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engines::EngineChoice;
use crate::model::{Engine, ImageInput, ModelError, ModelId};

/// What `bench` needs to run.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub model: ModelId,
    /// The weight file; `None` for random weights (timing does not depend on
    /// the values).
    pub weights: Option<PathBuf>,
    pub batch_sizes: Vec<usize>,
    pub engine: EngineChoice,
    /// Untimed passes before timing each batch size.
    pub warmup: usize,
    /// Timed passes per batch size.
    pub iterations: usize,
}

/// Why `bench` stopped. The command line exits 2 for [`BenchError::Load`]
/// and 1 otherwise.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{0}")]
    Load(ModelError),
    #[error("batch {batch_size}: {source}")]
    Batch {
        batch_size: usize,
        source: ModelError,
    },
    #[error("writing the results: {0}")]
    Output(#[from] std::io::Error),
}

/// One batch size's result.
#[derive(Debug, Serialize)]
pub struct BenchResult {
    pub model: &'static str,
    /// `libtorch` or `onnxruntime`.
    pub engine: &'static str,
    pub device: String,
    pub batch_size: usize,
    pub iterations: usize,
    pub images_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub min_ms: f64,
}

/// Loads the classifier, then times each batch size in turn, writing one
/// JSON line per [`BenchResult`] to `out`; the first batch size that fails
/// stops the run.
pub fn run(args: &BenchArgs, out: &mut dyn Write) -> Result<(), BenchError> {
    let engine = args
        .engine
        .load(args.model, args.weights.as_deref(), 0)
        .map_err(BenchError::Load)?;
    for &batch_size in &args.batch_sizes {
        let result = bench_batch(engine.as_ref(), args, batch_size)
            .map_err(|source| BenchError::Batch { batch_size, source })?;
        serde_json::to_writer(&mut *out, &result).map_err(std::io::Error::from)?;
        writeln!(out)?;
    }
    Ok(())
}

/// Times `iterations` forward passes (after `warmup` untimed ones) of a batch
/// of blank crops through the same path the server uses (u8 crops →
/// normalize → forward → softmax → host).
fn bench_batch(
    classifier: &dyn Engine,
    args: &BenchArgs,
    batch_size: usize,
) -> Result<BenchResult, ModelError> {
    let (warmup, iterations) = (args.warmup, args.iterations);
    let crop: Vec<u8> = (0..classifier.input_len())
        .map(|i| (i % 251) as u8)
        .collect();
    let crops = vec![ImageInput::Crop(&crop); batch_size];
    for _ in 0..warmup {
        classifier.classify(&crops)?;
    }
    let mut times = Vec::with_capacity(iterations);
    let started = Instant::now();
    for _ in 0..iterations.max(1) {
        let t = Instant::now();
        classifier.classify(&crops)?;
        times.push(t.elapsed());
    }
    let total = started.elapsed();
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Ok(BenchResult {
        model: args.model.name(),
        engine: args.engine.kind.name(),
        device: classifier.device_label(),
        batch_size,
        iterations: times.len(),
        images_per_second: (batch_size * times.len()) as f64 / total.as_secs_f64(),
        p50_ms: ms(at(0.5)),
        p90_ms: ms(at(0.9)),
        min_ms: ms(times[0]),
    })
}
