//! Embeddings against timm's `forward_head(forward_features(x),
//! pre_logits=True)` under both engines: on timm's own float inputs, and
//! on the fixture photos prepared as the server prepares uploads.
//!
//! Run with `--nocapture` to see the measured similarities.

use crate::support;

use seresnext_serve::model::{Classifier, Engine, ImageInput, LoadOptions, ModelId, Outputs};
use seresnext_serve::model::{ALL_MODELS, FEATURE_DIM};
use seresnext_serve::onnx::{OnnxClassifier, SessionSettings};
use seresnext_serve::preprocess::{self, DecodeLimits};
use support::embeddings::{cosine, min_cosine, timm_features};
use support::{fixture_path, manifest, read_f32};

fn engines(id: ModelId) -> Vec<(&'static str, Box<dyn Engine>)> {
    let path = fixture_path(&manifest().models[id.name()].safetensors);
    let libtorch = Classifier::load_file(id, &path, LoadOptions::default()).expect("libtorch");
    let onnx = OnnxClassifier::load_file(id, &path, &SessionSettings::default()).expect("ort");
    vec![
        ("libtorch", Box::new(libtorch)),
        ("onnxruntime", Box::new(onnx)),
    ]
}

/// Each engine's features for timm's inputs, and for every photo's crop in
/// one batch; the probabilities of the same pass are those of a
/// probabilities-only pass.
#[test]
fn features_match_timm_on_its_inputs_and_on_photos_under_both_engines() {
    let manifest = manifest();
    let inputs = read_f32(&manifest.inputs.file);
    for id in ALL_MODELS {
        let expected = timm_features(id.name());
        let spec = id.pretrained_cfg().transform_spec();
        let crops: Vec<Vec<u8>> = manifest
            .photos
            .iter()
            .map(|photo| {
                let bytes = std::fs::read(fixture_path(&photo.file)).unwrap();
                preprocess::prepare(&bytes, &spec, &DecodeLimits::default())
                    .unwrap()
                    .rgb
            })
            .collect();
        for (engine, model) in engines(id) {
            let normalized: Vec<ImageInput<'_>> = inputs
                .chunks_exact(model.input_len())
                .map(ImageInput::Normalized)
                .collect();
            let from_inputs = model.forward(&normalized, Outputs::WITH_FEATURES).unwrap();
            let images: Vec<ImageInput<'_>> =
                crops.iter().map(|crop| ImageInput::Crop(crop)).collect();
            let from_photos = model.forward(&images, Outputs::WITH_FEATURES).unwrap();
            let alone = model.classify(&images).unwrap();
            let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
            for (with, without) in from_photos.probabilities.iter().zip(&alone) {
                assert!(close(with, without), "{engine} {id}: probabilities changed");
            }
            let inputs_features = from_inputs.features.expect("features asked for");
            let photo_features = from_photos.features.expect("features asked for");
            for (index, photo) in manifest.photos.iter().enumerate() {
                let timm = &expected[index];
                assert_eq!(inputs_features[index].len(), FEATURE_DIM);
                let on_inputs = cosine(&inputs_features[index], timm);
                let on_photo = cosine(&photo_features[index], timm);
                let file = &photo.file;
                eprintln!(
                    "{engine} {id} {file}: 1 - cosine {:.1e} on timm's input, {:.1e} on the photo",
                    1.0 - on_inputs,
                    1.0 - on_photo
                );
                assert!(on_inputs >= 0.9999, "{engine} {id} {file}: {on_inputs}");
                assert!(
                    on_photo >= min_cosine(file),
                    "{engine} {id} {file}: {on_photo}"
                );
            }
        }
    }
}

#[test]
fn a_pass_without_features_returns_none() {
    let id = ModelId::SeResNeXt50_32x4d;
    for (engine, model) in engines(id) {
        let crop = vec![7u8; model.input_len()];
        let forward = model
            .forward(&[ImageInput::Crop(&crop)], Outputs::PROBABILITIES)
            .unwrap();
        assert_eq!(forward.probabilities.len(), 1, "{engine}");
        assert!(forward.features.is_none(), "{engine}");
    }
}
