//! The ONNX Runtime engine against timm, as `parity.rs` holds libtorch to
//! it: the same fixture weights (in all three file formats), inputs and
//! photos, the same bounds.

use crate::support;

use seresnext_serve::model::{Engine, ImageInput, ModelId, ALL_MODELS};
use seresnext_serve::onnx::{OnnxClassifier, SessionSettings};
use support::{abs_diff_stats, assert_photos_match_timm, fixture_path, manifest, read_f32};

fn load(id: ModelId, file: &str) -> OnnxClassifier {
    OnnxClassifier::load_file(id, &fixture_path(file), &SessionSettings::default())
        .unwrap_or_else(|e| panic!("load {id} from {file}: {e}"))
}

#[test]
fn logits_match_timm_for_every_model_and_weight_format() {
    let manifest = manifest();
    let inputs = read_f32(&manifest.inputs.file);
    for id in ALL_MODELS {
        let fixture = &manifest.models[id.name()];
        let expected = read_f32(&fixture.logits);
        for file in [&fixture.safetensors, &fixture.zip, &fixture.legacy] {
            let logits = load(id, file).logits_from_normalized(&inputs).unwrap();
            let (max, mean) = abs_diff_stats(&logits, &expected);
            eprintln!("onnxruntime {id} {file}: max |logit diff| {max:.2e}, mean {mean:.2e}");
            assert!(max <= 1e-3, "{id} {file}: max |logit diff| {max}");
        }
    }
}

#[test]
fn bytes_to_probabilities_match_timm_on_photos_for_every_model() {
    for id in ALL_MODELS {
        let classifier = load(id, &manifest().models[id.name()].safetensors);
        assert_photos_match_timm(id, "onnxruntime", |crop| {
            classifier
                .classify(&[ImageInput::Crop(crop)])
                .unwrap()
                .remove(0)
        });
    }
}

#[test]
fn a_checkpoint_of_another_variant_fails_with_the_same_words_under_either_engine() {
    use seresnext_serve::model::{Classifier, LoadOptions};
    let fixture = &manifest().models[ModelId::SeResNeXt101_32x4d.name()];
    let path = fixture_path(&fixture.safetensors);
    let id = ModelId::SeResNeXt50_32x4d;
    let libtorch = Classifier::load_file(id, &path, LoadOptions::default())
        .err()
        .expect("101 weights cannot load as 50")
        .to_string();
    let onnxruntime = OnnxClassifier::load_file(id, &path, &SessionSettings::default())
        .err()
        .expect("101 weights cannot load as 50")
        .to_string();
    assert!(libtorch.contains("\"layer3.6.conv1.weight\""), "{libtorch}");
    assert_eq!(onnxruntime, libtorch);
}
