use super::*;
use std::path::PathBuf;

/// A seresnext50 with random weights on ONNX Runtime (the wheel's library).
fn random_model() -> OnnxClassifier {
    let settings = SessionSettings {
        intra_op_threads: 1,
        ..SessionSettings::default()
    };
    OnnxClassifier::random(ModelId::SeResNeXt50_32x4d, 7, &settings).expect("build the graph")
}

/// A crop of noise, the same for a seed.
fn crop(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed as u32 * 97) as u8
                >> 1
        })
        .collect()
}

/// What timm's ToTensor + Normalize make of a crop: CHW fp32.
fn normalized(crop: &[u8], cfg: &PretrainedCfg) -> Vec<f32> {
    let pixels = crop.len() / 3;
    let mut chw = vec![0.0; crop.len()];
    for pixel in 0..pixels {
        for channel in 0..3 {
            let value = f32::from(crop[pixel * 3 + channel]) / 255.0;
            chw[channel * pixels + pixel] = (value - cfg.mean[channel]) / cfg.std[channel];
        }
    }
    chw
}

#[test]
fn a_mixed_batch_answers_each_image_as_it_would_alone_in_request_order() {
    let model = random_model();
    let len = model.input_len();
    let (first, second) = (crop(1, len), crop(2, len));
    let second_normalized = normalized(&second, &model.cfg);
    let mixed = model
        .classify(&[
            ImageInput::Normalized(&second_normalized),
            ImageInput::Crop(&first),
            ImageInput::Crop(&second),
        ])
        .expect("mixed batch");
    let alone = model.classify(&[ImageInput::Crop(&first)]).expect("alone");
    assert_eq!(mixed.len(), 3);
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5);
    assert!(
        close(&mixed[1], &alone[0]),
        "the crop kept its answer in a mixed batch"
    );
    // The graph's own normalization and the host's give the same answer.
    assert!(close(&mixed[0], &mixed[2]), "normalized input == its crop");
    assert!(
        !close(&mixed[1], &mixed[2]),
        "different images, different answers"
    );
    for probabilities in &mixed {
        assert_eq!(probabilities.len(), 1000);
        let sum: f32 = probabilities.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "{sum}");
    }
}

#[test]
fn wrong_sizes_are_refused_with_what_was_expected() {
    let model = random_model();
    let message = model
        .classify(&[ImageInput::Crop(&[0u8; 12])])
        .expect_err("short crop")
        .to_string();
    assert!(
        message.contains("150528 bytes") && message.contains("got 12"),
        "{message}"
    );
    let message = model
        .logits_from_normalized(&[0.0; 5])
        .expect_err("short normalized")
        .to_string();
    assert!(
        message.contains("150528 floats") && message.contains("got 5"),
        "{message}"
    );
}

#[test]
fn a_checkpoint_for_another_variant_names_what_does_not_fit() {
    let mut checkpoint = weights::Checkpoint::new();
    checkpoint.insert(
        "extra.weight".into(),
        weights::RawTensor {
            dtype: weights::DType::F32,
            shape: vec![1],
            data: 1f32.to_le_bytes().to_vec().into(),
        },
    );
    let error = OnnxClassifier::load(
        ModelId::SeResNeXt50_32x4d,
        checkpoint,
        &SessionSettings::default(),
    )
    .err()
    .expect("an empty checkpoint cannot load");
    let ModelError::CheckpointMismatch {
        missing,
        unexpected,
        ..
    } = error
    else {
        panic!("expected a checkpoint mismatch, got {error}");
    };
    assert!(missing.contains(&"conv1.weight".to_owned()), "{missing:?}");
    assert!(
        missing.contains(&"layer4.2.se.fc2.bias".to_owned()),
        "{missing:?}"
    );
    assert_eq!(unexpected, ["extra.weight"]);
}

#[test]
fn features_come_back_in_request_order_from_a_mixed_batch() {
    let model = random_model();
    let len = model.input_len();
    let (first, second) = (crop(1, len), crop(2, len));
    let second_normalized = normalized(&second, &model.cfg);
    let mixed = model
        .forward(
            &[
                ImageInput::Normalized(&second_normalized),
                ImageInput::Crop(&first),
            ],
            Outputs::WITH_FEATURES,
        )
        .expect("mixed batch");
    let features = mixed.features.expect("asked for");
    let alone = model
        .forward(&[ImageInput::Crop(&first)], Outputs::WITH_FEATURES)
        .expect("alone")
        .features
        .expect("asked for");
    assert_eq!(features.len(), 2);
    assert_eq!(features[1].len(), FEATURE_DIM);
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4);
    assert!(close(&features[1], &alone[0]));
    assert!(!close(&features[0], &features[1]));
}

/// The probabilities and features of two crops, for comparing sessions.
fn answers(model: &OnnxClassifier) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let len = model.input_len();
    let (first, second) = (crop(1, len), crop(2, len));
    let forward = model
        .forward(
            &[ImageInput::Crop(&first), ImageInput::Crop(&second)],
            Outputs::WITH_FEATURES,
        )
        .expect("forward");
    (forward.probabilities, forward.features.expect("asked for"))
}

fn assert_same(a: &[Vec<f32>], b: &[Vec<f32>], what: &str) {
    for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
        assert!((x - y).abs() <= 1e-5, "{what}: {x} vs {y}");
    }
}

#[test]
fn a_cached_graph_is_written_once_then_loaded_and_answers_alike() {
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = SessionSettings {
        intra_op_threads: 1,
        cache_dir: Some(dir.path().join("graphs")),
        ..SessionSettings::default()
    };
    let files = || -> Vec<PathBuf> {
        std::fs::read_dir(dir.path().join("graphs"))
            .map(|entries| entries.map(|entry| entry.expect("entry").path()).collect())
            .unwrap_or_default()
    };
    let id = ModelId::SeResNeXt50_32x4d;
    let built = OnnxClassifier::random(id, 7, &settings).expect("build");
    assert_eq!(built.cache_use(), CacheUse::Written);
    let written = files();
    assert_eq!(written.len(), 1, "one file, no temporaries: {written:?}");
    let loaded = OnnxClassifier::random(id, 7, &settings).expect("load");
    assert_eq!(loaded.cache_use(), CacheUse::Hit);
    assert_eq!(loaded.load_phases().fold, std::time::Duration::ZERO);
    assert_eq!(files(), written);
    let (probabilities, features) = answers(&built);
    let (cached_probabilities, cached_features) = answers(&loaded);
    assert_same(&probabilities, &cached_probabilities, "probabilities");
    assert_same(&features, &cached_features, "features");
    assert_same(&answers(&random_model()).0, &probabilities, "uncached");
    // Other weights, another key: a second file beside the first.
    let other = OnnxClassifier::random(id, 8, &settings).expect("build");
    assert_eq!(other.cache_use(), CacheUse::Written);
    assert_eq!(files().len(), 2);

    // A damaged file is deleted and the graph built (and saved) again.
    std::fs::write(&written[0], b"not an onnx graph").expect("corrupt");
    let rebuilt = OnnxClassifier::random(id, 7, &settings).expect("fall back");
    assert_eq!(rebuilt.cache_use(), CacheUse::Written);
    assert_same(&answers(&rebuilt).0, &probabilities, "rebuilt");
    assert!(std::fs::metadata(&written[0]).expect("saved again").len() > 1000);
}
