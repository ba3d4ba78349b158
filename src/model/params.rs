//! Hands checkpoint tensors to the layers by their timm state_dict name,
//! checking shapes and dtypes, and reports every missing and unused key.
//!
//! A plain name → tensor lookup (rather than tch's `VarStore::load`) because
//! `VarStore::load` silently ignores extra tensors and adopts the file's dtype:
//! a checkpoint for the wrong variant would load "fine" and classify garbage.

use tch::{Kind, Tensor};

use super::ModelError;
use crate::weights::{Checkpoint, DType, KeyedTensors, RawTensor};

/// Takes tensors out of a checkpoint by name and remembers which were taken.
pub(crate) struct ParamStore {
    keyed: KeyedTensors,
    /// Generate every parameter instead of reading it (`weights = "random"`).
    random: bool,
    /// Time spent folding BatchNorm into convolutions, reported apart from
    /// the rest of the build as the start-up phase `fold`.
    fold_time: std::time::Duration,
}

impl ParamStore {
    pub(crate) fn new(checkpoint: Checkpoint) -> Self {
        Self {
            keyed: KeyedTensors::new(checkpoint),
            random: false,
            fold_time: std::time::Duration::ZERO,
        }
    }

    /// A store that invents seeded random parameters for every key asked for:
    /// He-initialized convolutions, identity BatchNorm statistics, residual
    /// branches damped so activations stay finite through 33 blocks. Only for
    /// configs that ask for random weights explicitly.
    pub(crate) fn random(seed: u64) -> Self {
        tch::manual_seed(seed as i64);
        Self {
            random: true,
            ..Self::new(Checkpoint::new())
        }
    }

    /// The fp32 tensor `key` with exactly `shape`. Problems are recorded, not
    /// returned, so that one load reports all of them at once; a placeholder
    /// of the right shape stands in until [`ParamStore::finish`] fails.
    pub(crate) fn take(&mut self, key: &str, shape: &[usize]) -> Tensor {
        let placeholder = || Tensor::zeros(to_i64(shape), (Kind::Float, tch::Device::Cpu));
        if self.random {
            return random_param(key, shape);
        }
        let Some(raw) = self.keyed.take(key, shape) else {
            return placeholder();
        };
        match raw_to_float_tensor(&raw) {
            Ok(tensor) => tensor,
            Err(why) => {
                self.keyed.reject(key, why);
                placeholder()
            }
        }
    }

    /// Adds `elapsed` to the time spent folding BatchNorm.
    pub(crate) fn add_fold_time(&mut self, elapsed: std::time::Duration) {
        self.fold_time += elapsed;
    }

    /// Time spent folding BatchNorm so far.
    pub(crate) fn fold_time(&self) -> std::time::Duration {
        self.fold_time
    }

    /// Fails with every missing, mismatched and unexpected key, or succeeds
    /// when the checkpoint matched the architecture exactly.
    pub(crate) fn finish(self) -> Result<(), ModelError> {
        self.keyed.finish().map_err(ModelError::from)
    }
}

/// A plausible random value for the parameter `key`, by its role in timm's naming.
fn random_param(key: &str, shape: &[usize]) -> Tensor {
    let options = (Kind::Float, tch::Device::Cpu);
    let dims = to_i64(shape);
    match shape.len() {
        // Convolutions: timm's kaiming_normal_(mode="fan_out").
        4 => {
            let fan_out = (shape[0] * shape[2] * shape[3]).max(1) as f64;
            Tensor::randn(dims, options) * (2.0 / fan_out).sqrt()
        }
        // The classifier: logits of a few units, so classes are told apart.
        2 => Tensor::randn(dims, options) * (2.0 / shape[1].max(1) as f64).sqrt(),
        _ if key.ends_with("running_var") => Tensor::ones(dims, options),
        // The last BatchNorm of each residual branch scales it down.
        _ if key.ends_with("bn3.weight") => Tensor::ones(dims, options) * 0.2,
        _ if key.ends_with(".weight") => Tensor::ones(dims, options),
        _ => Tensor::zeros(dims, options),
    }
}

fn to_i64(shape: &[usize]) -> Vec<i64> {
    shape.iter().map(|&d| d as i64).collect()
}

/// Converts a floating-point checkpoint tensor to an fp32 CPU tensor.
fn raw_to_float_tensor(raw: &RawTensor) -> Result<Tensor, String> {
    let kind = match raw.dtype {
        DType::F32 => Kind::Float,
        DType::F16 => Kind::Half,
        DType::BF16 => Kind::BFloat16,
        DType::F64 => Kind::Double,
        other => return Err(format!("expected a floating-point tensor, found {other:?}")),
    };
    let tensor = Tensor::f_from_data_size(&raw.data, &to_i64(&raw.shape), kind)
        .map_err(|e| format!("cannot build tensor: {e}"))?;
    tensor
        .f_to_kind(Kind::Float)
        .map_err(|e| format!("cannot convert to fp32: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_integer_tensors_and_converts_half_precision() {
        let mut checkpoint = Checkpoint::new();
        checkpoint.insert(
            "int.weight".into(),
            RawTensor {
                dtype: DType::I64,
                shape: vec![1],
                data: 7i64.to_le_bytes().to_vec().into(),
            },
        );
        checkpoint.insert(
            "half.weight".into(),
            RawTensor {
                dtype: DType::F16,
                shape: vec![1],
                data: 0x3c00u16.to_le_bytes().to_vec().into(), // 1.0 in fp16
            },
        );
        let mut store = ParamStore::new(checkpoint);
        let half = store.take("half.weight", &[1]);
        assert_eq!(half.kind(), Kind::Float);
        assert_eq!(half.double_value(&[0]), 1.0);
        let _ = store.take("int.weight", &[1]);
        let err = store.finish().unwrap_err().to_string();
        assert!(
            err.contains("int.weight: expected a floating-point tensor"),
            "{err}"
        );
    }
}
