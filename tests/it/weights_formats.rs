//! Checks the weights loader against checkpoints written by the real torch.
//!
//! `scripts/fixtures/make_weight_fixtures.py` (run by `make fixtures`) saves one seeded
//! state dict as safetensors, torch zip (pickle protocols 2 and 4), legacy
//! torch.save, and wrapped in training-checkpoint dicts, plus the expected
//! values. Every file must load to exactly those tensors.

use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use seresnext_serve::weights::{load, Checkpoint, DType, RawTensor};

const FORMATS: [&str; 6] = [
    "tiny.safetensors",
    "tiny_zip.pth",
    "tiny_zip_proto4.pth",
    "tiny_legacy.pth",
    "tiny_wrapped.pth",
    "tiny_wrapped_legacy.pth",
];

fn fixture_dir() -> PathBuf {
    let base = std::env::var_os("SERESNEXT_FIXTURES")
        .map_or_else(|| PathBuf::from("target/fixtures"), PathBuf::from);
    let dir = base.join("weights");
    assert!(
        dir.join("tiny_expected.json").is_file(),
        "weight fixtures not found in {}: run `make fixtures` first \
         (or set SERESNEXT_FIXTURES to the directory holding weights/)",
        dir.display()
    );
    dir
}

fn load_fixture(dir: &Path, file: &str) -> Checkpoint {
    load(&dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn expected_tensors(dir: &Path) -> serde_json::Map<String, Json> {
    let text =
        std::fs::read_to_string(dir.join("tiny_expected.json")).expect("read tiny_expected.json");
    let json: Json = serde_json::from_str(&text).expect("parse tiny_expected.json");
    json["tensors"]
        .as_object()
        .expect("`tensors` object")
        .clone()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The tensor's elements as f64 (floats) or i64 (integers), as the script wrote them.
fn assert_values(file: &str, name: &str, tensor: &RawTensor, expected: &[Json]) {
    assert_eq!(tensor.numel(), expected.len(), "{file}: {name} numel");
    match tensor.dtype {
        DType::F32 | DType::F16 | DType::BF16 | DType::F64 => {
            let actual = tensor
                .to_f32_vec()
                .unwrap_or_else(|e| panic!("{file}: {name}: {e}"));
            for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
                let e = e.as_f64().expect("float value") as f32;
                assert_eq!(*a, e, "{file}: {name}[{i}]");
            }
        }
        dtype => {
            assert!(
                tensor.to_f32_vec().is_err(),
                "{file}: {name} is {dtype}, not float"
            );
            let size = dtype.size_in_bytes();
            for (i, (chunk, e)) in tensor.data.chunks_exact(size).zip(expected).enumerate() {
                let actual = match dtype {
                    DType::I64 => i64::from_le_bytes(chunk.try_into().unwrap()),
                    DType::I32 => i32::from_le_bytes(chunk.try_into().unwrap()).into(),
                    DType::I16 => i16::from_le_bytes(chunk.try_into().unwrap()).into(),
                    DType::I8 => i8::from_le_bytes([chunk[0]]).into(),
                    DType::U8 | DType::Bool => chunk[0].into(),
                    other => panic!("unexpected dtype {other}"),
                };
                assert_eq!(Some(actual), e.as_i64(), "{file}: {name}[{i}]");
            }
        }
    }
}

#[test]
fn every_format_holds_the_expected_tensors() {
    let dir = fixture_dir();
    let expected = expected_tensors(&dir);
    for file in FORMATS {
        let checkpoint = load_fixture(&dir, file);
        let names: Vec<&String> = checkpoint.keys().collect();
        let mut expected_names: Vec<&String> = expected.keys().collect();
        expected_names.sort();
        assert_eq!(names, expected_names, "{file}: tensor names");
        for (name, want) in &expected {
            let tensor = &checkpoint[name];
            assert_eq!(tensor.dtype.name(), want["dtype"], "{file}: {name} dtype");
            let shape: Vec<usize> = want["shape"]
                .as_array()
                .expect("shape array")
                .iter()
                .map(|d| d.as_u64().expect("dimension") as usize)
                .collect();
            assert_eq!(tensor.shape, shape, "{file}: {name} shape");
            assert_eq!(hex(&tensor.data), want["hex"], "{file}: {name} bytes");
            assert_values(
                file,
                name,
                tensor,
                want["values"].as_array().expect("values array"),
            );
        }
    }
}

#[test]
fn all_formats_agree_with_each_other() {
    let dir = fixture_dir();
    let reference = load_fixture(&dir, FORMATS[0]);
    for file in &FORMATS[1..] {
        assert!(
            load_fixture(&dir, file) == reference,
            "{file} differs from {}",
            FORMATS[0]
        );
    }
}

#[test]
fn views_come_out_contiguous() {
    let dir = fixture_dir();
    let checkpoint = load_fixture(&dir, "tiny_zip.pth");
    let transposed = &checkpoint["fc.weight_t"];
    assert_eq!(transposed.shape, [5, 3]);
    assert_eq!(transposed.data.len(), 5 * 3 * 4);
    let counter = &checkpoint["bn.num_batches_tracked"];
    assert_eq!(
        (counter.dtype, counter.shape.len(), counter.numel()),
        (DType::I64, 0, 1)
    );
    assert_eq!(checkpoint["empty"].numel(), 0);
}
