//! Shared test support: the parity fixtures written by `make fixtures`
//! (scripts/fixtures/make_fixtures.py, with the venv's timm), and the helpers
//! more than one topic uses.

pub mod embeddings;
pub mod hostile_inputs;
pub mod http;
pub mod kserve;
pub mod nginx;
pub mod process;
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
}

#[derive(Debug, Deserialize)]
pub struct TensorFile {
    pub file: String,
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

/// Every fixture photo, prepared as the server prepares uploads, through
/// `probabilities` (an engine's answer for one crop) against what timm gave:
/// the same top-1 and probabilities within 0.01. `engine` names the engine
/// in the messages.
pub fn assert_photos_match_timm(
    id: seresnext_serve::model::ModelId,
    engine: &str,
    probabilities: impl Fn(&[u8]) -> Vec<f32>,
) {
    use seresnext_serve::preprocess::{self, DecodeLimits};
    let manifest = manifest();
    let fixture = &manifest.models[id.name()];
    let spec = id.pretrained_cfg().transform_spec();
    let expected = read_f32(&fixture.probs);
    let classes = expected.len() / manifest.photos.len();
    for (index, photo) in manifest.photos.iter().enumerate() {
        let bytes = std::fs::read(fixture_path(&photo.file)).unwrap();
        let prepared = preprocess::prepare(&bytes, &spec, &DecodeLimits::default()).unwrap();
        let ours = probabilities(&prepared.rgb);
        let timm = &expected[index * classes..(index + 1) * classes];
        let (max, _) = abs_diff_stats(&ours, timm);
        let file = &photo.file;
        eprintln!(
            "{engine} {id} {file}: top1 {} / timm {}, max |prob diff| {max:.2e}",
            argmax(&ours),
            fixture.top1[index]
        );
        assert_eq!(
            argmax(&ours),
            fixture.top1[index],
            "{engine} {id} {file}: top-1"
        );
        // The crops are Pillow's bytes (tests/it/pixels.rs), so only the
        // engine's float arithmetic differs from timm's.
        assert!(max <= 0.002, "{engine} {id} {file}: max |prob diff| {max}");
    }
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

/// (max |a-b|, mean |a-b|) over two equally long slices. NaN anywhere (in
/// either slice) makes both NaN, so no `<=` bound can pass: `f32::max`
/// would drop a NaN difference and let partly-NaN logits through.
pub fn abs_diff_stats(a: &[f32], b: &[f32]) -> (f32, f32) {
    assert_eq!(a.len(), b.len(), "compared tensors differ in length");
    let max = max_abs_diff(a.iter().zip(b).map(|(x, y)| (f64::from(*x), f64::from(*y))));
    let sum: f64 = a.iter().zip(b).map(|(x, y)| f64::from((x - y).abs())).sum();
    (max as f32, (sum / a.len().max(1) as f64) as f32)
}

/// The largest |a-b| over the pairs, NaN if any value is NaN (a NaN
/// difference wins over every number, unlike `f64::max`, which drops it).
pub fn max_abs_diff(pairs: impl IntoIterator<Item = (f64, f64)>) -> f64 {
    pairs.into_iter().fold(0.0, |worst: f64, (a, b)| {
        let difference = (a - b).abs();
        if difference.is_nan() || worst.is_nan() {
            f64::NAN
        } else {
            worst.max(difference)
        }
    })
}

/// Standard padded base64, as JSON and V2 bodies carry images.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
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

#[test]
fn a_nan_anywhere_makes_the_difference_nan() {
    let numbers = [1.0f32, 2.0, 3.0];
    assert_eq!(abs_diff_stats(&numbers, &numbers), (0.0, 0.0));
    assert_eq!(abs_diff_stats(&numbers, &[1.0, 2.5, 3.0]).0, 0.5);
    for (a, b) in [
        ([1.0, f32::NAN, 3.0], numbers),
        (numbers, [f32::NAN, 2.0, 3.0]),
        ([1.0, 2.0, f32::NAN], [1.0, 2.0, f32::NAN]),
    ] {
        let (max, mean) = abs_diff_stats(&a, &b);
        assert!(
            max.is_nan() && mean.is_nan(),
            "{a:?} vs {b:?}: {max}, {mean}"
        );
    }
    assert!(max_abs_diff([(0.0, 0.0), (f64::NAN, 1.0), (5.0, 0.0)]).is_nan());
    assert_eq!(max_abs_diff([(0.0, 0.0), (1.0, 3.5)]), 2.5);
}
