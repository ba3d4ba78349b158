//! Classifier behaviour that needs no fixture files.

use super::*;

#[test]
fn seeded_random_weights_are_the_same_in_replicas_that_load_at_once() {
    let id = ModelId::SeResNeXt50_32x4d;
    let build = move || {
        let classifier = Classifier::random(id, 11, LoadOptions::default()).unwrap();
        let crop: Vec<u8> = (0..classifier.input_len())
            .map(|i| (i % 251) as u8)
            .collect();
        classifier.classify(&[crop.as_slice()]).unwrap().remove(0)
    };
    let replicas: Vec<_> = (0..2).map(|_| std::thread::spawn(build)).collect();
    let outputs: Vec<Vec<f32>> = replicas.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(outputs[0], outputs[1]);
    assert_eq!(outputs[0], build(), "a later load from the same seed");
    let other = Classifier::random(id, 12, LoadOptions::default()).unwrap();
    let crop: Vec<u8> = (0..other.input_len()).map(|i| (i % 251) as u8).collect();
    assert_ne!(other.classify(&[crop.as_slice()]).unwrap()[0], outputs[0]);
}

#[test]
fn half_precision_without_folding_is_refused() {
    let options = LoadOptions {
        precision: Precision::Fp16,
        fold_bn: false,
        ..LoadOptions::default()
    };
    let error = Classifier::random(ModelId::SeResNeXt50_32x4d, 0, options)
        .err()
        .expect("refused");
    assert!(
        matches!(error, ModelError::HalfPrecisionWithoutFolding { .. }),
        "{error}"
    );
}
