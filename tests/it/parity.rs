//! Parity with timm: the same weights, inputs and photos give what the venv's
//! timm gave when `make fixtures` ran (scripts/fixtures/make_fixtures.py).
//!
//! Run with `--nocapture` to see the measured differences.

use crate::support;

use seresnext_serve::model::{Classifier, LoadOptions, ModelId, ALL_MODELS};
use seresnext_serve::preprocess::{self, DecodeLimits};
use seresnext_serve::weights;
use support::{abs_diff_stats, assert_photos_match_timm, fixture_path, manifest, read_f32};

fn load(id: ModelId, fold_bn: bool, channels_last: bool) -> Classifier {
    let fixture = &manifest().models[id.name()];
    let options = LoadOptions {
        fold_bn,
        channels_last,
        ..LoadOptions::default()
    };
    Classifier::load_file(id, &fixture_path(&fixture.safetensors), options)
        .unwrap_or_else(|e| panic!("load {id}: {e}"))
}

#[test]
fn logits_match_timm_for_every_model_folded_or_not_in_either_memory_layout() {
    let manifest = manifest();
    let inputs = read_f32(&manifest.inputs.file);
    for id in ALL_MODELS {
        let expected = read_f32(&manifest.models[id.name()].logits);
        for (fold_bn, channels_last) in [(true, true), (true, false), (false, true), (false, false)]
        {
            let logits = load(id, fold_bn, channels_last)
                .logits_from_normalized(&inputs)
                .unwrap();
            let (max, mean) = abs_diff_stats(&logits, &expected);
            let variant = format!("fold_bn={fold_bn} channels_last={channels_last}");
            eprintln!("{id} {variant}: max |logit diff| {max:.2e}, mean {mean:.2e}");
            assert!(max <= 1e-3, "{id} {variant}: max |logit diff| {max}");
        }
    }
}

#[test]
fn all_three_weight_formats_load_to_identical_tensors() {
    let manifest = manifest();
    for id in ALL_MODELS {
        let fixture = &manifest.models[id.name()];
        let safetensors = weights::load(&fixture_path(&fixture.safetensors)).unwrap();
        for other in [&fixture.zip, &fixture.legacy] {
            let pickled = weights::load(&fixture_path(other)).unwrap();
            let keys: Vec<_> = safetensors.keys().collect();
            assert_eq!(
                keys,
                pickled.keys().collect::<Vec<_>>(),
                "{id}: keys of {other}"
            );
            for (key, tensor) in &safetensors {
                let twin = &pickled[key];
                assert_eq!(tensor.dtype, twin.dtype, "{id} {key} dtype in {other}");
                assert_eq!(tensor.shape, twin.shape, "{id} {key} shape in {other}");
                assert!(
                    tensor.data == twin.data,
                    "{id} {key} data differs in {other}"
                );
            }
        }
    }
}

#[test]
fn preprocessing_matches_timm_eval_transform_on_photos() {
    let manifest = manifest();
    let classifier = load(ModelId::SeResNeXt50_32x4d, true, true);
    let spec = classifier.transform_spec();
    for photo in &manifest.photos {
        let bytes = std::fs::read(fixture_path(&photo.file)).unwrap();
        let prepared = preprocess::prepare(&bytes, &spec, &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", photo.file));
        let ours = classifier.normalized_input(&[&prepared.rgb]).unwrap();
        let timm = read_f32(&photo.input);
        let (max, mean) = abs_diff_stats(&ours, &timm);
        eprintln!(
            "{}: mean |diff| {mean:.2e}, max |diff| {max:.2e}",
            photo.file
        );
        // Identical 8-bit crops; only the float normalization may round
        // differently (a few ulps of values within about ±3).
        assert!(max <= 1e-5, "{}: max |diff| {max}", photo.file);
    }
}

#[test]
fn bytes_to_probabilities_match_timm_on_photos_for_every_model() {
    for id in ALL_MODELS {
        let classifier = load(id, true, true);
        assert_photos_match_timm(id, "libtorch", |crop| {
            classifier.classify(&[crop]).unwrap().remove(0)
        });
    }
}
