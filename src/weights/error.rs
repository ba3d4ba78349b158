//! The one error type of the weights module.
//!
//! Each variant says where the problem is — a byte offset in the file or the
//! name of a tensor — so that a bad checkpoint can be diagnosed from the log
//! line alone.

use std::path::PathBuf;

use super::DType;

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read checkpoint {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The bytes contradict the format (bad opcode, wrong type on the pickle
    /// stack, sizes that do not add up).
    #[error("corrupt checkpoint at byte {offset}: {what}")]
    Corrupt { offset: u64, what: String },

    /// The file ends before a length it declared.
    #[error(
        "checkpoint truncated at byte {offset}: {what} needs {needed} bytes, {available} left"
    )]
    Truncated {
        offset: u64,
        what: String,
        needed: u64,
        available: u64,
    },

    /// Valid for torch, but outside what this loader handles (big-endian
    /// files, quantized tensors, compressed zip members, ...).
    #[error("unsupported checkpoint content at byte {offset}: {what}")]
    Unsupported { offset: u64, what: String },

    /// A tensor whose description cannot be honoured (view out of bounds,
    /// unsupported kind, over the size budget).
    #[error("tensor `{name}`: {what}")]
    Tensor { name: String, what: String },

    /// The checkpoint parsed but holds no recognisable state dict.
    #[error("no state dict in checkpoint: {what}")]
    NoStateDict { what: String },

    /// Two tensors end up under one name once `module.` is stripped.
    #[error("tensor `{name}` appears twice in the checkpoint (once with a `module.` prefix)")]
    DuplicateTensor { name: String },

    #[error("tensor of dtype {dtype} cannot be read as floats")]
    NotFloat { dtype: DType },

    #[error("tensor of dtype {dtype} and shape {shape:?} has a buffer of {len} bytes, which does not match")]
    BadBuffer {
        dtype: DType,
        shape: Vec<usize>,
        len: usize,
    },
}

impl WeightsError {
    pub(crate) fn corrupt(offset: u64, what: impl Into<String>) -> Self {
        WeightsError::Corrupt {
            offset,
            what: what.into(),
        }
    }

    pub(crate) fn unsupported(offset: u64, what: impl Into<String>) -> Self {
        WeightsError::Unsupported {
            offset,
            what: what.into(),
        }
    }

    pub(crate) fn tensor(name: &str, what: impl Into<String>) -> Self {
        WeightsError::Tensor {
            name: name.to_string(),
            what: what.into(),
        }
    }
}
