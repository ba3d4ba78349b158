//! `seresnext-serve bench`: in-process forward throughput and latency per
//! batch size, the figure the HTTP path is compared against and that timm
//! eager is compared with (`scripts/compare_forward.sh`).

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::model::{Classifier, ModelError};

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
        device: format!("{:?}", classifier.device()).to_lowercase(),
        batch_size,
        iterations: times.len(),
        images_per_second: (batch_size * times.len()) as f64 / total.as_secs_f64(),
        p50_ms: ms(at(0.5)),
        p90_ms: ms(at(0.9)),
        min_ms: ms(times[0]),
    })
}
