//! Shared test support: the parity fixtures written by `make fixtures`
//! (scripts/make_fixtures.py, with the venv's timm).
#![allow(dead_code)]

pub mod kserve;
pub mod nginx;
pub mod server;

use std::path::PathBuf;

use serde::Deserialize;

/// Where `make fixtures` wrote its files (`SERESNEXT_FIXTURES`, or target/fixtures).
pub fn fixtures_dir() -> PathBuf {
    let dir = std::env::var_os("SERESNEXT_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/fixtures"));
    assert!(
        dir.join("manifest.json").exists(),
        "parity fixtures are missing at {}: run `make fixtures` (make test does)",
        dir.display()
    );
    dir
}

#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub photos: Vec<Photo>,
    pub inputs: TensorFile,
    pub models: std::collections::BTreeMap<String, ModelFixture>,
}

#[derive(Debug, Deserialize)]
pub struct Photo {
    pub file: String,
    pub input: String,
    pub input_shape: Vec<usize>,
}

#[derive(Debug, Deserialize)]
pub struct TensorFile {
    pub file: String,
    pub shape: Vec<usize>,
}

#[derive(Debug, Deserialize)]
pub struct ModelFixture {
    pub safetensors: String,
    pub zip: String,
    pub legacy: String,
    pub logits: String,
    pub probs: String,
    pub top1: Vec<usize>,
}

pub fn manifest() -> Manifest {
    let text = std::fs::read_to_string(fixtures_dir().join("manifest.json"))
        .expect("read fixtures manifest");
    serde_json::from_str(&text).expect("parse fixtures manifest")
}

pub fn fixture_path(relative: &str) -> PathBuf {
    fixtures_dir().join(relative)
}

/// A raw little-endian f32 file written by the fixture script.
pub fn read_f32(relative: &str) -> Vec<f32> {
    let bytes = std::fs::read(fixture_path(relative)).expect("read f32 fixture");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// (max |a-b|, mean |a-b|) over two equally long slices.
pub fn abs_diff_stats(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len(), "compared tensors differ in length");
    let mut max = 0f32;
    let mut sum = 0f64;
    for (x, y) in a.iter().zip(b) {
        let d = (x - y).abs();
        max = max.max(d);
        sum += f64::from(d);
    }
    (max, (sum / a.len().max(1) as f64) as f32)
}

pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}
