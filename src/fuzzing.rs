//! Entry points for the fuzz targets in `fuzz/`, one per parser of untrusted
//! bytes, each taking the fuzzer's raw input. `tests/it/fuzz_regression.rs`
//! replays the saved inputs of `fuzz/regression/<target>/` through these same
//! functions in `make test`, so a fixed crash stays fixed without a fuzzer.
//!
//! A finding is a panic (including the invariant checks below, which say
//! "this is a bug"), a hang or a runaway allocation; every refusal is a
//! correct answer to a bad input. Each returns whether the input was
//! accepted, so the regression test can tell that the seeds are valid.

pub use crate::http::fuzz::{json, multipart, predict_request, v2_infer};

use crate::model::ModelId;
use crate::preprocess::{prepare, DecodeLimits};
use crate::weights::{load_bytes, DType};

/// A fuzz target: any input, no panic; true when the input was accepted.
pub type Target = fn(&[u8]) -> bool;

/// Every fuzz target, by the name of its file in `fuzz/fuzz_targets/` and
/// its folder in `fuzz/regression/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("preprocess", preprocess),
    ("predict_request", predict_request),
    ("multipart", multipart),
    ("json", json),
    ("v2_infer", v2_infer),
    ("weights", weights),
];

/// An uploaded image through decode and timm's eval transform, with the
/// served models' spec and the default decode limits.
pub fn preprocess(data: &[u8]) -> bool {
    let spec = ModelId::SeResNeXt50_32x4d.pretrained_cfg().transform_spec();
    let Ok(crop) = prepare(data, &spec, &DecodeLimits::default()) else {
        return false;
    };
    let side = spec.input_size;
    assert_eq!(
        (crop.width, crop.height),
        (side, side),
        "crop size (this is a bug)"
    );
    assert_eq!(
        crop.rgb.len(),
        (side as usize).pow(2) * 3,
        "crop buffer (this is a bug)"
    );
    true
}

/// A checkpoint file (safetensors, torch zip or legacy torch.save).
pub fn weights(data: &[u8]) -> bool {
    let Ok(checkpoint) = load_bytes(data) else {
        return false;
    };
    for (name, tensor) in &checkpoint {
        assert_eq!(
            Some(tensor.data.len()),
            tensor
                .shape
                .iter()
                .try_fold(tensor.dtype.size_in_bytes(), |acc, &d| acc.checked_mul(d)),
            "{name}: buffer length differs from its shape (this is a bug)"
        );
        let is_float = matches!(
            tensor.dtype,
            DType::F32 | DType::F16 | DType::BF16 | DType::F64
        );
        if is_float {
            assert!(
                tensor.to_f32_vec().is_ok(),
                "{name}: a loaded float tensor does not convert (this is a bug)"
            );
        }
    }
    true
}
