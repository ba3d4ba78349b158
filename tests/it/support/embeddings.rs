//! The embedding fixtures (scripts/fixtures/make_embedding_fixtures.py):
//! timm's pooled pre-logits features of the fixture photos, and how close an
//! embedding must be to them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{fixture_path, manifest, read_f32};

/// Values in an embedding, for every catalog model.
pub const DIM: usize = 2048;

#[derive(Debug, Deserialize)]
struct Embeddings {
    models: BTreeMap<String, Features>,
}

#[derive(Debug, Deserialize)]
struct Features {
    features: String,
}

/// timm's features for `model`, one row per fixture photo (manifest order).
pub fn timm_features(model: &str) -> Vec<Vec<f32>> {
    let path = fixture_path("embeddings.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `make fixtures` (make_embedding_fixtures.py)",
            path.display()
        )
    });
    let embeddings: Embeddings = serde_json::from_str(&text).expect("parse embeddings.json");
    let flat = read_f32(&embeddings.models[model].features);
    assert_eq!(flat.len(), manifest().photos.len() * DIM);
    flat.chunks_exact(DIM).map(<[f32]>::to_vec).collect()
}

/// Cosine similarity, in f64 (NaN if either vector is NaN or zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "compared embeddings differ in length");
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    dot / (norm(a) * norm(b))
}

/// The L2 norm, in f64.
pub fn norm(values: &[f32]) -> f64 {
    values
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt()
}

/// The bound a photo's embedding must reach: lossless photos give timm's
/// very crop, so only float arithmetic differs; a JPEG's pixels may differ
/// by a step from Pillow's decoder in rare blocks.
pub fn min_cosine(file: &str) -> f64 {
    if file.ends_with(".png") {
        0.9999
    } else {
        0.999
    }
}
