//! Unit tests for describing a model of one's own: classes from `fc.weight`,
//! labels, `config.json` and the entry, in that order of precedence.

use std::path::{Path, PathBuf};

use super::*;
use crate::config::Config;
use crate::hub::CONFIG_JSON;

/// A safetensors file holding only the classifier: all `identify` reads.
fn write_head(path: &Path, weight: [usize; 2], bias: usize) {
    let weight_bytes = weight[0] * weight[1] * 4;
    let header = format!(
        r#"{{"fc.weight":{{"dtype":"F32","shape":[{},{}],"data_offsets":[0,{weight_bytes}]}},"fc.bias":{{"dtype":"F32","shape":[{bias}],"data_offsets":[{weight_bytes},{}]}}}}"#,
        weight[0],
        weight[1],
        weight_bytes + bias * 4
    );
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.resize(bytes.len() + weight_bytes + bias * 4, 0);
    std::fs::write(path, bytes).expect("write checkpoint");
}

fn entry(dir: &Path, extra: &str) -> (ModelConfig, PathBuf) {
    let weights = dir.join("pets.safetensors");
    let text = format!(
        "[[models]]\nid = \"pets\"\nweights = {:?}\n{extra}",
        weights.display().to_string()
    );
    let config = Config::from_toml_str(&text).expect("parses");
    (config.models[0].clone(), weights)
}

fn hub(dir: &Path) -> HubSettings {
    HubSettings {
        cache_dir: dir.to_owned(),
        offline: true,
        endpoint: None,
    }
}

fn describe(dir: &Path, extra: &str) -> Result<ModelId, OwnModelError> {
    let (entry, weights) = entry(dir, extra);
    identify(&entry, &ResolvedWeights::File(weights), &hub(dir))
}

#[test]
fn classes_come_from_fc_weight_and_labels_default_to_class_n() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, weights) = entry(dir.path(), "");
    write_head(&weights, [37, FEATURE_DIM], 37);
    let id = describe(dir.path(), "architecture = \"seresnext50_32x4d\"\n").expect("valid");
    assert_eq!(id.name(), "pets");
    assert_eq!(id.architecture(), Architecture::SeResNeXt50_32x4d);
    assert_eq!(id.pretrained_cfg().num_classes, 37);
    assert_eq!(id.label(36), Some("class_36"));
    assert_eq!(id.pretrained_cfg().input_size, 224, "the Gluon default");
}

#[test]
fn a_label_file_of_the_wrong_length_names_both_counts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, weights) = entry(dir.path(), "");
    write_head(&weights, [3, FEATURE_DIM], 3);
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "cat\ndog\n").expect("write");
    let extra = format!(
        "architecture = \"seresnext50_32x4d\"\nlabels = {:?}\n",
        labels.display().to_string()
    );
    let message = describe(dir.path(), &extra).expect_err("2 ≠ 3").to_string();
    assert!(message.starts_with("models[pets].labels:"), "{message}");
    assert!(
        message.contains("has 2 labels") && message.contains("has 3 classes"),
        "{message}"
    );

    std::fs::write(&labels, "cat\ndog\nrabbit\n").expect("write");
    let id = describe(dir.path(), &extra).expect("3 = 3");
    assert_eq!(id.label(2), Some("rabbit"));
}

#[test]
fn a_classifier_of_the_wrong_shape_names_the_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, weights) = entry(dir.path(), "");
    let arch = "architecture = \"seresnext50_32x4d\"\n";
    write_head(&weights, [3, 1024], 3);
    let message = describe(dir.path(), arch)
        .expect_err("wrong features")
        .to_string();
    assert!(
        message.contains("fc.weight has shape [3, 1024]"),
        "{message}"
    );
    write_head(&weights, [3, FEATURE_DIM], 4);
    let message = describe(dir.path(), arch).expect_err("bias").to_string();
    assert!(message.contains("fc.bias has shape [4]"), "{message}");
    write_head(&weights, [3, FEATURE_DIM], 3);
    let message = describe(dir.path(), &format!("{arch}num_classes = 5\n"))
        .expect_err("declared 5")
        .to_string();
    assert!(
        message.starts_with("models[pets].num_classes: 5 classes"),
        "{message}"
    );
}

#[test]
fn an_unknown_or_missing_architecture_lists_the_accepted_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, weights) = entry(dir.path(), "");
    write_head(&weights, [3, FEATURE_DIM], 3);
    let message = describe(dir.path(), "architecture = \"resnet50\"\n")
        .expect_err("unknown")
        .to_string();
    assert!(
        message.starts_with("models[pets].architecture: unknown architecture \"resnet50\""),
        "{message}"
    );
    assert!(message.contains("seresnext101_64x4d"), "{message}");
    let message = describe(dir.path(), "").expect_err("none").to_string();
    assert!(message.contains("not set, and no config.json"), "{message}");
}

#[test]
fn config_json_supplies_what_the_entry_leaves_out() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, weights) = entry(dir.path(), "");
    write_head(&weights, [3, FEATURE_DIM], 3);
    let json = r#"{"architecture": "seresnext101_32x4d", "num_classes": 3,
        "label_names": ["cat", "dog", "rabbit"],
        "pretrained_cfg": {"input_size": [3, 288, 288], "crop_pct": 1.0, "crop_mode": "squash",
        "interpolation": "bilinear", "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}"#;
    std::fs::write(dir.path().join(CONFIG_JSON), json).expect("write");
    let id = describe(dir.path(), "").expect("valid");
    let cfg = id.pretrained_cfg();
    assert_eq!(id.architecture(), Architecture::SeResNeXt101_32x4d);
    assert_eq!((cfg.input_size, cfg.crop_pct), (288, 1.0));
    assert_eq!(cfg.crop_mode, CropMode::Squash);
    assert_eq!(cfg.interpolation, Interpolation::Bilinear);
    assert_eq!((cfg.mean, cfg.std), ([0.5; 3], [0.25; 3]));
    assert_eq!(id.label(1), Some("dog"));

    let id = describe(
        dir.path(),
        "architecture = \"seresnext50_32x4d\"\ninput_size = 320\ncrop_mode = \"center\"\ninterpolation = \"bicubic\"\n",
    )
    .expect("the entry wins");
    let cfg = id.pretrained_cfg();
    assert_eq!(id.architecture(), Architecture::SeResNeXt50_32x4d);
    assert_eq!((cfg.input_size, cfg.crop_pct), (320, 1.0));
    assert_eq!(
        (cfg.crop_mode, cfg.interpolation),
        (CropMode::Center, Interpolation::Bicubic)
    );

    std::fs::write(
        dir.path().join(CONFIG_JSON),
        r#"{"pretrained_cfg": {"input_size": [3, 600, 600]}}"#,
    )
    .expect("write");
    let message = describe(dir.path(), "architecture = \"seresnext50_32x4d\"\n")
        .expect_err("too large")
        .to_string();
    assert!(
        message.contains("input_size (from config.json pretrained_cfg)"),
        "{message}"
    );
}

#[test]
fn a_catalog_id_without_settings_of_its_own_is_the_catalog_model() {
    let mut entry = ModelConfig::default();
    let dir = tempfile::tempdir().expect("temp dir");
    let id = identify(&entry, &ResolvedWeights::Random, &hub(dir.path())).expect("catalog");
    assert_eq!(id, ModelId::SeResNeXt50_32x4d);
    assert_eq!(id.label(285), Some("Egyptian cat"));
    entry.crop_pct = Some(1.0);
    let id = identify(&entry, &ResolvedWeights::Random, &hub(dir.path())).expect("overridden");
    assert!(id.is_catalog() && id.answers_to("seresnext50_32x4d.gluon_in1k"));
    assert_eq!(id.pretrained_cfg().crop_pct, 1.0);
    assert_eq!(
        id.label(285),
        Some("Egyptian cat"),
        "still ImageNet's labels"
    );
}

#[test]
fn an_hf_repos_config_json_is_read_from_the_cache_beside_its_weights() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = crate::hub::cache::repo_dir(dir.path(), "me/pets");
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).expect("snapshot dir");
    std::fs::create_dir_all(repo.join("refs")).expect("refs dir");
    std::fs::write(repo.join("refs/main"), commit).expect("ref");
    write_head(&snapshot.join("model.safetensors"), [5, FEATURE_DIM], 5);
    let json = r#"{"architecture": "seresnext101_64x4d", "num_classes": 5,
        "pretrained_cfg": {"input_size": [3, 256, 256], "interpolation": "bilinear"}}"#;
    std::fs::write(snapshot.join(CONFIG_JSON), json).expect("write");

    let text = "[[models]]\nid = \"pets\"\nweights = \"hf://me/pets\"\n";
    let entry = Config::from_toml_str(text)
        .expect("parses")
        .models
        .remove(0);
    let weights = ResolvedWeights::File(snapshot.join("model.safetensors"));
    let id = identify(&entry, &weights, &hub(dir.path())).expect("described by config.json");
    assert_eq!(id.architecture(), Architecture::SeResNeXt101_64x4d);
    assert_eq!(id.pretrained_cfg().input_size, 256);
    assert_eq!(id.pretrained_cfg().interpolation, Interpolation::Bilinear);
    assert_eq!(id.label(4), Some("class_4"));
}
