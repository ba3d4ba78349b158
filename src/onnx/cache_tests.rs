use super::*;
use crate::model::{ModelId, PretrainedCfg};
use crate::weights::{DType, RawTensor};

fn tensor(values: &[f32]) -> RawTensor {
    RawTensor {
        dtype: DType::F32,
        shape: vec![values.len()],
        data: values
            .iter()
            .flat_map(|value| value.to_le_bytes())
            .collect::<Vec<u8>>()
            .into(),
    }
}

fn checkpoint(fc_bias: f32) -> Checkpoint {
    let mut checkpoint = Checkpoint::new();
    checkpoint.insert("conv1.weight".into(), tensor(&[0.5, -1.0, 2.0]));
    checkpoint.insert("fc.bias".into(), tensor(&[fc_bias, 0.0]));
    checkpoint
}

/// seresnext50's key inputs with `weights` and `cfg`, the CPU and runtime fixed.
fn parts(weights: WeightsDigest, cfg: &PretrainedCfg) -> KeyParts<'_> {
    KeyParts {
        weights,
        arch: ModelId::SeResNeXt50_32x4d.arch(),
        cfg,
        optimization: GraphOptimization::All,
        runtime: "ORT Build Info: git-branch=rel-1.31.1",
        cpu: "x86_64:avx,avx2,fma",
    }
}

#[test]
fn the_key_is_stable_for_the_same_inputs() {
    let cfg = ModelId::SeResNeXt50_32x4d.pretrained_cfg();
    let weights = WeightsDigest::checkpoint(&checkpoint(1.0));
    assert_eq!(weights, WeightsDigest::checkpoint(&checkpoint(1.0)));
    let key = parts(weights, &cfg).key();
    assert_eq!(key.len(), 32);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()), "{key}");
    assert_eq!(key, parts(weights, &cfg).key());
}

#[test]
fn the_key_changes_with_any_weight_value_name_or_shape() {
    let base = WeightsDigest::checkpoint(&checkpoint(1.0));
    assert_ne!(base, WeightsDigest::checkpoint(&checkpoint(1.0 + 1e-6)));
    let mut renamed = checkpoint(1.0);
    let bias = renamed.remove("fc.bias").expect("present");
    renamed.insert("fc.bias2".into(), bias);
    assert_ne!(base, WeightsDigest::checkpoint(&renamed));
    let mut reshaped = checkpoint(1.0);
    reshaped.get_mut("fc.bias").expect("present").shape = vec![1, 2];
    assert_ne!(base, WeightsDigest::checkpoint(&reshaped));
    assert_ne!(WeightsDigest::random(1), WeightsDigest::random(2));
    let cfg = ModelId::SeResNeXt50_32x4d.pretrained_cfg();
    assert_ne!(
        parts(base, &cfg).key(),
        parts(WeightsDigest::random(1), &cfg).key()
    );
}

#[test]
fn the_key_changes_with_optimization_input_size_classes_runtime_and_cpu() {
    let cfg = ModelId::SeResNeXt50_32x4d.pretrained_cfg();
    let base = parts(WeightsDigest::random(7), &cfg);
    let mut larger = cfg;
    larger.input_size = 256;
    let mut fewer_classes = cfg;
    fewer_classes.num_classes = 10;
    let variants = [
        KeyParts {
            optimization: GraphOptimization::Extended,
            ..base.clone()
        },
        KeyParts {
            cfg: &larger,
            ..base.clone()
        },
        KeyParts {
            cfg: &fewer_classes,
            ..base.clone()
        },
        KeyParts {
            arch: ModelId::SeResNeXt101_32x4d.arch(),
            ..base.clone()
        },
        KeyParts {
            runtime: "ORT Build Info: git-branch=rel-1.32.0",
            ..base.clone()
        },
        KeyParts {
            cpu: "x86_64:avx,avx2,fma,avx512f",
            ..base.clone()
        },
    ];
    for (index, variant) in variants.iter().enumerate() {
        assert_ne!(base.key(), variant.key(), "variant {index}");
    }
}

#[test]
fn this_cpu_is_named_with_its_architecture() {
    let cpu = cpu_features();
    assert!(cpu.starts_with(std::env::consts::ARCH), "{cpu}");
    assert_eq!(cpu, cpu_features(), "the same on every call");
}

#[test]
fn model_names_become_safe_file_names() {
    let cache = GraphCache::new(Path::new("/cache"), "my/model v2", "00ff");
    assert_eq!(cache.path(), Path::new("/cache/my_model_v2-00ff.onnx"));
}

#[test]
fn an_unwritable_directory_is_no_cache_and_no_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").expect("write");
    let cache = GraphCache::new(&blocker.join("cache"), "m", "k");
    assert!(cache.reserve().is_none());
    assert!(cache.cached().is_none());
}

#[test]
fn a_pending_graph_lands_whole_or_not_at_all() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = GraphCache::new(&dir.path().join("sub"), "m", "k");
    let abandoned = cache.reserve().expect("writable");
    let temp = abandoned.path().to_owned();
    assert!(temp.exists());
    drop(abandoned);
    assert!(!temp.exists(), "an abandoned write leaves nothing");
    let empty = cache.reserve().expect("writable");
    assert!(empty.commit().is_err(), "an empty file is never committed");
    assert!(cache.cached().is_none());
    let pending = cache.reserve().expect("writable");
    std::fs::write(pending.path(), b"graph").expect("write");
    assert_eq!(pending.commit().expect("commit"), 5);
    assert_eq!(
        std::fs::read(cache.cached().expect("cached")).expect("read"),
        b"graph"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
        .expect("list")
        .collect();
    assert_eq!(left.len(), 1, "only the cache file: {left:?}");
}

#[test]
fn abandoned_temporary_files_are_removed_and_fresh_ones_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = GraphCache::new(dir.path(), "m", "k");
    let old = dir.path().join(".m-k.onnx.dead.tmp");
    let fresh = dir.path().join(".m-k.onnx.busy.tmp");
    let other_model = dir.path().join(".n-k.onnx.dead.tmp");
    for path in [&old, &fresh, &other_model] {
        std::fs::write(path, b"partial").expect("write");
    }
    let long_ago = std::time::SystemTime::now() - ABANDONED_AFTER * 2;
    for path in [&old, &other_model] {
        File::options()
            .write(true)
            .open(path)
            .and_then(|file| file.set_modified(long_ago))
            .expect("age the file");
    }
    drop(cache.reserve().expect("writable"));
    assert!(!old.exists(), "an old write of this model is gone");
    assert!(fresh.exists(), "a write in progress is left alone");
    assert!(other_model.exists(), "another model's files are its own");
}
