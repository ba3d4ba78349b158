//! Takes a checkpoint's tensors by their timm state-dict names and keeps
//! account of what did not fit: every engine builds its network through this,
//! so a wrong checkpoint gets the same complete error whichever engine loads it.

use std::collections::BTreeSet;

use super::{Checkpoint, RawTensor, WeightsError};

/// Keys torch writes that inference never needs.
fn is_ignored_key(key: &str) -> bool {
    key.ends_with(".num_batches_tracked")
}

/// Everything about a checkpoint that did not match the architecture, so one
/// load reports all of it at once instead of the first problem only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyMismatch {
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    pub mismatched: Vec<String>,
}

/// A checkpoint being consumed by name.
#[derive(Debug)]
pub struct KeyedTensors {
    tensors: Checkpoint,
    missing: Vec<String>,
    mismatched: Vec<String>,
}

impl KeyedTensors {
    pub fn new(checkpoint: Checkpoint) -> Self {
        Self {
            tensors: checkpoint,
            missing: Vec::new(),
            mismatched: Vec::new(),
        }
    }

    /// The tensor `key` if it is there with exactly `shape`; otherwise the
    /// problem is recorded for [`KeyedTensors::finish`] and `None` returned.
    pub fn take(&mut self, key: &str, shape: &[usize]) -> Option<RawTensor> {
        let Some(raw) = self.tensors.remove(key) else {
            self.missing.push(key.to_string());
            return None;
        };
        if raw.shape != shape {
            self.mismatched.push(format!(
                "{key}: expected shape {shape:?}, found {:?}",
                raw.shape
            ));
            return None;
        }
        Some(raw)
    }

    /// The fp32 values of `key` with exactly `shape` (converted from any
    /// floating dtype); `None` with the problem recorded otherwise.
    pub fn take_f32(&mut self, key: &str, shape: &[usize]) -> Option<Vec<f32>> {
        let raw = self.take(key, shape)?;
        match raw.to_f32_vec() {
            Ok(values) => Some(values),
            // The words libtorch's loader uses too, so either engine reports
            // a wrong checkpoint identically.
            Err(WeightsError::NotFloat { dtype }) => {
                self.reject(
                    key,
                    format!("expected a floating-point tensor, found {dtype:?}"),
                );
                None
            }
            Err(why) => {
                self.reject(key, why);
                None
            }
        }
    }

    /// Records that `key` was found with the right shape but is unusable.
    pub fn reject(&mut self, key: &str, why: impl std::fmt::Display) {
        self.mismatched.push(format!("{key}: {why}"));
    }

    /// Succeeds when the checkpoint matched the architecture exactly: nothing
    /// missing, nothing mismatched, nothing left over.
    pub fn finish(self) -> Result<(), KeyMismatch> {
        let unexpected: Vec<String> = self
            .tensors
            .keys()
            .filter(|key| !is_ignored_key(key))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if self.missing.is_empty() && self.mismatched.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        Err(KeyMismatch {
            missing: self.missing,
            unexpected,
            mismatched: self.mismatched,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::DType;

    fn f32_raw(shape: &[usize], value: f32) -> RawTensor {
        let numel: usize = shape.iter().product();
        RawTensor {
            dtype: DType::F32,
            shape: shape.to_vec(),
            data: std::iter::repeat_n(value.to_le_bytes(), numel)
                .flatten()
                .collect::<Vec<u8>>()
                .into(),
        }
    }

    #[test]
    fn reports_missing_unexpected_and_mismatched_keys_by_name() {
        let mut checkpoint = Checkpoint::new();
        checkpoint.insert("a.weight".into(), f32_raw(&[2, 3], 1.0));
        checkpoint.insert("b.weight".into(), f32_raw(&[4], 1.0));
        checkpoint.insert("extra.weight".into(), f32_raw(&[1], 1.0));
        checkpoint.insert("bn.num_batches_tracked".into(), f32_raw(&[], 0.0));
        let mut keyed = KeyedTensors::new(checkpoint);
        assert_eq!(keyed.take_f32("a.weight", &[2, 3]), Some(vec![1.0; 6]));
        assert_eq!(keyed.take_f32("b.weight", &[5]), None);
        assert_eq!(keyed.take_f32("c.weight", &[1]), None);
        let mismatch = keyed.finish().unwrap_err();
        assert_eq!(mismatch.missing, ["c.weight"]);
        assert_eq!(mismatch.unexpected, ["extra.weight"]);
        assert_eq!(
            mismatch.mismatched,
            ["b.weight: expected shape [5], found [4]"]
        );
    }

    #[test]
    fn an_integer_tensor_is_refused_not_cast() {
        let mut checkpoint = Checkpoint::new();
        checkpoint.insert(
            "int.weight".into(),
            RawTensor {
                dtype: DType::I64,
                shape: vec![1],
                data: 7i64.to_le_bytes().to_vec().into(),
            },
        );
        let mut keyed = KeyedTensors::new(checkpoint);
        assert_eq!(keyed.take_f32("int.weight", &[1]), None);
        let mismatch = keyed.finish().unwrap_err();
        assert_eq!(mismatch.mismatched.len(), 1);
        assert_eq!(
            mismatch.mismatched,
            ["int.weight: expected a floating-point tensor, found I64"]
        );
    }
}
