//! `seresnext-serve bench`: in-process forward throughput and latency per
//! batch size, the figure the HTTP path is compared against and that timm
//! eager is compared with (`scripts/bench/compare_forward.sh`).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::{Classifier, LoadOptions, ModelError, ModelId};

/// What `bench` needs to run.
#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub model: ModelId,
    /// The weight file; `None` for random weights (timing does not depend on
    /// the values).
    pub weights: Option<PathBuf>,
    pub batch_sizes: Vec<usize>,
    pub options: LoadOptions,
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
    let classifier = match &args.weights {
        Some(weights) => Classifier::load_file(args.model, weights, args.options),
        None => Classifier::random(args.model, 0, args.options),
    }
    .map_err(BenchError::Load)?;
    for &batch_size in &args.batch_sizes {
        let result = bench_batch(&classifier, batch_size, args.warmup, args.iterations)
            .map_err(|source| BenchError::Batch { batch_size, source })?;
        serde_json::to_writer(&mut *out, &result).map_err(std::io::Error::from)?;
        writeln!(out)?;
    }
    Ok(())
}

/// Times `iterations` forward passes (after `warmup` untimed ones) of a batch
/// of blank crops through the same path the server uses (u8 crops →
/// normalize → forward → softmax → host).
pub fn bench_batch(
    classifier: &Classifier,
    batch_size: usize,
    warmup: usize,
    iterations: usize,
) -> Result<BenchResult, ModelError> {
    let crop: Vec<u8> = (0..classifier.input_len())
        .map(|i| (i % 251) as u8)
        .collect();
    let crops = vec![crop.as_slice(); batch_size];
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
        model: classifier.id().name(),
        device: crate::model::device_label(classifier.device()),
        batch_size,
        iterations: times.len(),
        images_per_second: (batch_size * times.len()) as f64 / total.as_secs_f64(),
        p50_ms: ms(at(0.5)),
        p90_ms: ms(at(0.9)),
        min_ms: ms(times[0]),
    })
}
