//! `.safetensors` files, as timm publishes them on the Hugging Face Hub
//! (`timm/<name>/model.safetensors`).
//!
//! The `safetensors` crate validates the header (offsets inside the buffer,
//! sizes matching shapes) before handing out views, so this module only maps
//! dtypes and slices the bytes.

use super::mapped::FileBytes;
use safetensors::{Dtype, SafeTensors};

use super::{Checkpoint, DType, RawTensor, WeightsError};

/// Where the JSON header starts: after its u64 length.
const HEADER_OFFSET: u64 = 8;

/// `bytes` is the whole file; each tensor is a slice of it.
pub(crate) fn load(bytes: &FileBytes) -> Result<Checkpoint, WeightsError> {
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| WeightsError::corrupt(HEADER_OFFSET, format!("safetensors header: {e}")))?;
    let mut checkpoint = Checkpoint::new();
    for (name, view) in file.iter() {
        let dtype = map_dtype(view.dtype()).ok_or_else(|| {
            WeightsError::tensor(
                name,
                format!("safetensors dtype {:?} is not supported", view.dtype()),
            )
        })?;
        let tensor = RawTensor {
            dtype,
            shape: view.shape().to_vec(),
            data: bytes.slice(view.data()),
        };
        // The crate checks this already; re-checking keeps the RawTensor
        // invariant local to this module.
        if tensor.data.len() != tensor.numel().saturating_mul(dtype.size_in_bytes()) {
            return Err(WeightsError::tensor(
                name,
                "data length does not match shape and dtype",
            ));
        }
        checkpoint.insert(name.to_string(), tensor);
    }
    Ok(checkpoint)
}

fn map_dtype(dtype: Dtype) -> Option<DType> {
    Some(match dtype {
        Dtype::F32 => DType::F32,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::F64 => DType::F64,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use safetensors::tensor::TensorView;

    use super::*;
    use crate::weights::load_bytes;

    fn file(dtype: Dtype, shape: Vec<usize>, data: &[u8]) -> Vec<u8> {
        let view = TensorView::new(dtype, shape, data).unwrap();
        safetensors::serialize([("module.w", view)], None).unwrap()
    }

    #[test]
    fn loads_tensors_and_strips_data_parallel_prefix() {
        let checkpoint = load_bytes(&file(
            Dtype::I32,
            vec![2],
            &[1, 0, 0, 0, 255, 255, 255, 255],
        ))
        .unwrap();
        let tensor = &checkpoint["w"];
        assert_eq!(
            (tensor.dtype, tensor.shape.as_slice(), tensor.numel()),
            (DType::I32, &[2][..], 2)
        );
    }

    #[test]
    fn names_the_tensor_with_an_unsupported_dtype() {
        let err = load_bytes(&file(Dtype::F8_E4M3, vec![1], &[0])).unwrap_err();
        assert!(err.to_string().contains("tensor `module.w`"), "{err}");
    }

    #[test]
    fn corrupt_headers_are_errors() {
        let mut bytes = file(Dtype::U8, vec![2], &[1, 2]);
        let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = String::from_utf8(bytes[8..header_end].to_vec()).unwrap();
        let lying = header.replace("[0,2]", "[0,9]");
        assert_ne!(header, lying, "fixture header format changed: {header}");
        bytes.splice(8..header_end, lying.into_bytes());
        let err = load_bytes(&bytes).unwrap_err();
        assert!(
            matches!(err, WeightsError::Corrupt { offset: 8, .. }),
            "{err}"
        );
    }
}
