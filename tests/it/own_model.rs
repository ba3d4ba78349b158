//! A checkpoint of one's own (`scripts/fixtures/make_custom_fixtures.py`): a
//! 37-class seresnext50_32x4d whose timm `config.json` says input 288,
//! crop_pct 1.0, bilinear, and a squash-crop variant set in the entry. Its
//! crops are Pillow's, its logits timm's under both engines, and the server
//! serves it under its own id, labels, classes and input size. Wrong
//! checkpoints, labels and architectures stop start-up with their keys named.
//!
//! Run with `--nocapture` to see the measured differences.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::support::process::failed_start_error;
use crate::support::server::{start_server, test_config};
use crate::support::{abs_diff_stats, argmax, fixture_path, fixtures_dir};
use seresnext_serve::config::{ModelConfig, WeightsSource};
use seresnext_serve::model::{
    numbered_labels, Architecture, Classifier, LoadOptions, ModelId, ModelSpec,
};
use seresnext_serve::onnx::{OnnxClassifier, SessionSettings};
use seresnext_serve::preprocess::{self, CropMode, DecodeLimits, Interpolation, TransformSpec};

#[derive(Deserialize)]
struct CustomManifest {
    weights: String,
    num_classes: usize,
    photos: Vec<String>,
    variants: BTreeMap<String, Variant>,
}

#[derive(Deserialize)]
struct Variant {
    input_size: u32,
    crop_pct: f64,
    crop_mode: String,
    interpolation: String,
    crops: Vec<String>,
    logits: String,
    probs: String,
    top1: Vec<usize>,
}

impl Variant {
    fn spec(&self) -> TransformSpec {
        TransformSpec {
            input_size: self.input_size,
            crop_pct: self.crop_pct,
            crop_mode: CropMode::from_timm_name(&self.crop_mode).expect("crop mode"),
            interpolation: Interpolation::from_timm_name(&self.interpolation).expect("filter"),
        }
    }
}

fn custom(relative: &str) -> PathBuf {
    fixtures_dir().join("custom").join(relative)
}

fn manifest() -> CustomManifest {
    let path = custom("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `make fixtures`", path.display()));
    serde_json::from_str(&text).expect("custom manifest")
}

fn read_f32(path: PathBuf) -> Vec<f32> {
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The model as a start-up would describe it, for the engines alone.
fn model_id(manifest: &CustomManifest, variant: &Variant, name: &str) -> ModelId {
    let architecture = Architecture::SeResNeXt50_32x4d;
    let mut cfg = architecture.pretrained_cfg();
    cfg.num_classes = manifest.num_classes;
    cfg.input_size = variant.input_size;
    cfg.crop_pct = variant.crop_pct;
    cfg.crop_mode = variant.spec().crop_mode;
    cfg.interpolation = variant.spec().interpolation;
    ModelId::custom(ModelSpec {
        name: format!("engine-{name}").into(),
        architecture,
        cfg,
        labels: Some(numbered_labels(manifest.num_classes)),
    })
}

/// timm's normalization of an HWC crop: CHW, `(x / 255 - mean) / std`.
fn normalized(crop: &[u8], id: ModelId) -> Vec<f32> {
    let cfg = id.pretrained_cfg();
    let pixels = crop.len() / 3;
    let mut out = vec![0f32; crop.len()];
    for channel in 0..3 {
        for pixel in 0..pixels {
            let value = f32::from(crop[pixel * 3 + channel]) / 255.0;
            out[channel * pixels + pixel] = (value - cfg.mean[channel]) / cfg.std[channel];
        }
    }
    out
}

#[test]
fn crops_at_288_bilinear_and_squash_are_pillows() {
    let manifest = manifest();
    for (name, variant) in &manifest.variants {
        let spec = variant.spec();
        for (photo, crop) in manifest.photos.iter().zip(&variant.crops) {
            let bytes = std::fs::read(fixture_path(photo)).unwrap();
            let ours = preprocess::prepare(&bytes, &spec, &DecodeLimits::default()).unwrap();
            let pillow = std::fs::read(custom(crop)).unwrap();
            assert_eq!(ours.rgb.len(), pillow.len(), "{name} {photo}");
            let equal = ours.rgb.iter().zip(&pillow).filter(|(a, b)| a == b).count();
            let max = ours
                .rgb
                .iter()
                .zip(&pillow)
                .map(|(a, b)| a.abs_diff(*b))
                .max();
            let identical = equal as f64 / pillow.len() as f64;
            eprintln!(
                "{name} {photo:40} {:8.4}% equal, max {max:?}",
                100.0 * identical
            );
            // The same bar as the catalog's crops (pixels.rs).
            assert!(identical >= 0.999 && max <= Some(1), "{name} {photo}");
        }
    }
}

#[test]
fn logits_match_timm_under_both_engines() {
    let manifest = manifest();
    let weights = custom(&manifest.weights);
    for (name, variant) in &manifest.variants {
        let id = model_id(&manifest, variant, name);
        let inputs: Vec<f32> = variant
            .crops
            .iter()
            .flat_map(|crop| normalized(&std::fs::read(custom(crop)).unwrap(), id))
            .collect();
        let expected = read_f32(custom(&variant.logits));
        let libtorch = Classifier::load_file(id, &weights, LoadOptions::default())
            .expect("libtorch loads")
            .logits_from_normalized(&inputs)
            .expect("libtorch runs");
        let onnxruntime = OnnxClassifier::load_file(id, &weights, &SessionSettings::default())
            .expect("onnxruntime loads")
            .logits_from_normalized(&inputs)
            .expect("onnxruntime runs");
        for (engine, logits) in [("libtorch", libtorch), ("onnxruntime", onnxruntime)] {
            assert_eq!(logits.len(), expected.len(), "{engine} {name}");
            let (max, mean) = abs_diff_stats(&logits, &expected);
            eprintln!("{engine} {name}: max |logit diff| {max:.2e}, mean {mean:.2e}");
            assert!(max <= 1e-3, "{engine} {name}: max |logit diff| {max}");
        }
    }
}

/// The two entries the server tests serve: `pets` described by the
/// `config.json` beside its weights, `pets_squash` by its entry.
fn entries(manifest: &CustomManifest) -> Vec<ModelConfig> {
    let base = test_config().models.remove(0);
    let weights = WeightsSource::File(custom(&manifest.weights));
    let squash = &manifest.variants["pets_squash"];
    vec![
        ModelConfig {
            id: "pets".into(),
            weights: weights.clone(),
            ..base.clone()
        },
        ModelConfig {
            id: "pets_squash".into(),
            weights,
            architecture: Some("seresnext50_32x4d".into()),
            input_size: Some(squash.input_size),
            crop_pct: Some(squash.crop_pct),
            crop_mode: Some(squash.crop_mode.clone()),
            interpolation: Some(squash.interpolation.clone()),
            ..base
        },
    ]
}

#[tokio::test]
async fn the_server_serves_it_under_its_own_id_labels_classes_and_input() {
    let manifest = manifest();
    let server = start_server(|config| config.models = entries(&manifest)).await;
    for (name, variant) in &manifest.variants {
        let probs = read_f32(custom(&variant.probs));
        let mut max_dp = 0f64;
        for (index, photo) in manifest.photos.iter().enumerate() {
            let timm = &probs[index * manifest.num_classes..][..manifest.num_classes];
            let body: serde_json::Value = server
                .client
                .post(server.url(&format!("/v1/models/{name}:predict?top_k=37")))
                .header("content-type", "image/jpeg")
                .body(std::fs::read(fixture_path(photo)).unwrap())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let top = body["predictions"][0]["top_k"].as_array().expect("top_k");
            assert_eq!(top.len(), 37, "{body}");
            let top1 = top[0]["class_id"].as_u64().unwrap() as usize;
            assert_eq!(top1, variant.top1[index], "{name} {photo}");
            assert_eq!(top1, argmax(timm));
            assert_eq!(
                top[0]["label"],
                format!("breed_{top1:02}"),
                "config.json's label_names"
            );
            for class in top {
                let id = class["class_id"].as_u64().unwrap() as usize;
                let dp = (class["probability"].as_f64().unwrap() - f64::from(timm[id])).abs();
                max_dp = max_dp.max(dp);
            }
        }
        eprintln!(
            "server {name}: top-1 identical on {} photos, max |Δp| {max_dp:.2e}",
            manifest.photos.len()
        );
        assert!(max_dp <= 0.01, "{name}: max |Δp| {max_dp}");
    }

    let v2 = server.get_json("/v2/models/pets").await;
    assert_eq!(
        v2["inputs"][1]["shape"],
        serde_json::json!([-1, 3, 288, 288]),
        "{v2}"
    );
    assert_eq!(
        v2["outputs"][0]["shape"],
        serde_json::json!([-1, 37]),
        "{v2}"
    );
    let v1 = server.get_json("/v1/models/pets_squash").await;
    assert_eq!(v1["architecture"]["name"], "seresnext50_32x4d", "{v1}");
    assert_eq!(
        v1["input"]["shape"],
        serde_json::json!([3, 256, 256]),
        "{v1}"
    );
    assert_eq!(v1["input"]["crop_mode"], "squash", "{v1}");
    assert_eq!(v1["num_classes"], 37, "{v1}");
    assert_eq!(v1["aliases"], serde_json::json!([]), "{v1}");
    let listed = server.get_json("/v1/models").await;
    let listed = listed.to_string();
    assert!(
        listed.contains("\"pets\"") && listed.contains("pets_squash"),
        "{listed}"
    );
    server.stop().await;
}

fn pets_config(customize: impl FnOnce(&mut ModelConfig)) -> seresnext_serve::config::Config {
    let manifest = manifest();
    let mut config = test_config();
    config.models = entries(&manifest);
    config.models.truncate(1);
    customize(&mut config.models[0]);
    config
}

#[test]
fn a_label_file_of_the_wrong_length_stops_start_up_naming_both_counts() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("pets-labels.txt");
    std::fs::write(&labels, "abyssinian\nbengal\n").unwrap();
    let error = failed_start_error(&pets_config(|m| m.labels = Some(labels)));
    assert!(error.contains("models[pets].labels"), "{error}");
    assert!(
        error.contains("has 2 labels") && error.contains("has 37 classes"),
        "{error}"
    );
}

#[test]
fn an_unknown_architecture_stops_start_up_listing_the_accepted_ones() {
    let error = failed_start_error(&pets_config(|m| m.architecture = Some("resnet50".into())));
    assert!(error.contains("models[pets].architecture"), "{error}");
    assert!(
        error.contains("\"resnet50\"") && error.contains("seresnext101_64x4d"),
        "{error}"
    );
}

#[test]
fn a_checkpoint_that_does_not_fit_stops_start_up_naming_the_keys() {
    // The catalog's 1000-class checkpoint, told it has 37 classes.
    let error = failed_start_error(&pets_config(|m| {
        m.weights = WeightsSource::File(fixture_path("models/gluon_seresnext50_32x4d.safetensors"));
        m.architecture = Some("seresnext50_32x4d".into());
        m.num_classes = Some(37);
    }));
    assert!(
        error.contains("models[pets].num_classes: 37 classes"),
        "{error}"
    );
    assert!(error.contains("fc.weight has 1000"), "{error}");
    // A seresnext101 checkpoint under the 50's architecture: the keys it lacks.
    let error = failed_start_error(&pets_config(|m| {
        m.weights =
            WeightsSource::File(fixture_path("models/gluon_seresnext101_32x4d.safetensors"));
        m.architecture = Some("seresnext50_32x4d".into());
    }));
    assert!(error.contains("layer3.6.conv1.weight"), "{error}");
}
