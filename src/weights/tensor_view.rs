//! Turns a (possibly strided, offset, shared) tensor view of its storage into
//! the contiguous row-major buffer of a [`RawTensor`]: a slice of the file
//! when the view is already row-major, a gathered copy otherwise.
//!
//! Every size is computed with checked arithmetic and compared with the
//! storage before anything is allocated, so hostile shapes and strides end in
//! an error naming the tensor.

use super::mapped::{FileBytes, TensorBytes};

use super::torch_pickle::TensorRef;
use super::{RawTensor, WeightsError};

/// Builds the tensor `name` from `root_bytes`, the whole storage it views,
/// which is a slice of `file`.
///
/// `budget` is the number of output bytes still allowed; it shrinks by the
/// size of the tensor.
pub(crate) fn materialize(
    name: &str,
    tensor: &TensorRef,
    root_bytes: &[u8],
    file: &FileBytes,
    budget: &mut u64,
) -> Result<RawTensor, WeightsError> {
    let fail = |what: String| WeightsError::tensor(name, what);
    let dtype = tensor.dtype;
    let elem = dtype.size_in_bytes() as u64;
    let storage = storage_bytes(tensor, root_bytes).map_err(fail)?;

    let too_big = || fail(format!("shape {:?} is too large", tensor.shape));
    let numel = tensor
        .shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(too_big)?;
    let out_len = numel.checked_mul(elem).ok_or_else(too_big)?;
    let shape: Vec<usize> = tensor
        .shape
        .iter()
        .map(|&d| usize::try_from(d))
        .collect::<Result<_, _>>()
        .map_err(|_| too_big())?;
    if numel == 0 {
        return Ok(RawTensor {
            dtype,
            shape,
            data: TensorBytes::default(),
        });
    }

    // Largest element index the view touches; every dimension is >= 1 here.
    let last_index = tensor
        .shape
        .iter()
        .zip(&tensor.strides)
        .try_fold(tensor.offset, |acc, (&size, &stride)| {
            acc.checked_add((size - 1).checked_mul(stride)?)
        })
        .and_then(|last| last.checked_add(1)?.checked_mul(elem));
    match last_index {
        Some(end) if end <= storage.len() as u64 => {}
        _ => {
            return Err(fail(format!(
                "view (offset {}, size {:?}, stride {:?}) reaches past its storage of {} bytes",
                tensor.offset,
                tensor.shape,
                tensor.strides,
                storage.len()
            )))
        }
    }
    if out_len > *budget {
        return Err(fail(format!(
            "{out_len} bytes exceed what is left of the size budget ({} bytes); \
             stride-0 views of a small storage make tensors far larger than the file",
            *budget
        )));
    }
    *budget -= out_len;

    // All sizes below fit in usize: they are bounded by `storage.len()`.
    let elem = elem as usize;
    let offset = tensor.offset as usize;
    let strides: Vec<usize> = tensor.strides.iter().map(|&s| s as usize).collect();
    let data = if is_row_major(&shape, &strides) {
        let start = offset * elem;
        storage
            .get(start..start + out_len as usize)
            .map(|contiguous| file.slice(contiguous))
    } else {
        gather(storage, offset, &shape, &strides, elem, out_len as usize).map(TensorBytes::from)
    };
    let data = data
        .ok_or_else(|| fail("view bounds check disagrees with the copy (this is a bug)".into()))?;
    Ok(RawTensor { dtype, shape, data })
}

/// The bytes of the storage the tensor views: the root storage cut to the
/// length its persistent id declares, then to a legacy storage view.
fn storage_bytes<'s>(tensor: &TensorRef, root_bytes: &'s [u8]) -> Result<&'s [u8], String> {
    let storage = &tensor.storage;
    // Counts in the persistent id are elements of the storage's own dtype.
    let elem = storage.dtype.size_in_bytes() as u64;
    let declared = storage
        .numel
        .checked_mul(elem)
        .filter(|&len| len <= root_bytes.len() as u64);
    let Some(declared) = declared else {
        return Err(format!(
            "storage `{}` declares {} elements of {} but holds {} bytes",
            storage.key,
            storage.numel,
            storage.dtype,
            root_bytes.len()
        ));
    };
    let root = &root_bytes[..declared as usize];
    let Some(view) = storage.view else {
        return Ok(root);
    };
    let range = view
        .offset
        .checked_mul(elem)
        .and_then(|start| Some((start, start.checked_add(view.numel.checked_mul(elem)?)?)));
    match range {
        Some((start, end)) if end <= root.len() as u64 => Ok(&root[start as usize..end as usize]),
        _ => Err(format!(
            "storage view {view:?} reaches past storage `{}`",
            storage.key
        )),
    }
}

fn is_row_major(shape: &[usize], strides: &[usize]) -> bool {
    let mut expected = 1usize;
    for (&size, &stride) in shape.iter().zip(strides).rev() {
        if size != 1 && stride != expected {
            return false;
        }
        expected = expected.saturating_mul(size);
    }
    true
}

/// Walks the view in row-major order with an odometer over its indices.
/// Returns `None` only if the caller's bounds check was wrong.
fn gather(
    storage: &[u8],
    offset: usize,
    shape: &[usize],
    strides: &[usize],
    elem: usize,
    out_len: usize,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(out_len);
    let mut index = vec![0usize; shape.len()];
    let mut source = offset;
    loop {
        let start = source.checked_mul(elem)?;
        out.extend_from_slice(storage.get(start..start.checked_add(elem)?)?);
        let mut dim = shape.len();
        loop {
            if dim == 0 {
                return Some(out);
            }
            dim -= 1;
            if index[dim] + 1 < shape[dim] {
                index[dim] += 1;
                source += strides[dim];
                break;
            }
            source -= strides[dim] * index[dim];
            index[dim] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::torch_pickle::{StorageRef, StorageView};
    use super::super::DType;
    use super::*;

    /// The tensor viewed in a file that holds nothing but its storage.
    fn materialize(
        name: &str,
        tensor: &TensorRef,
        storage: &[u8],
        budget: &mut u64,
    ) -> Result<RawTensor, WeightsError> {
        let file = FileBytes::copied(storage);
        super::materialize(name, tensor, &file, &file, budget)
    }

    #[test]
    fn row_major_views_are_slices_of_the_file_not_copies() {
        let file = FileBytes::copied(&(0..12).collect::<Vec<u8>>());
        let offset = u8_view(12, 2, &[2, 3], &[3, 1]);
        let raw = super::materialize("o", &offset, &file, &file, &mut u64::MAX.clone()).unwrap();
        assert_eq!(raw.data[..], [2, 3, 4, 5, 6, 7]);
        assert_eq!(raw.data.as_ptr(), file[2..].as_ptr());
        let transposed = u8_view(12, 0, &[3, 2], &[1, 3]);
        let raw =
            super::materialize("t", &transposed, &file, &file, &mut u64::MAX.clone()).unwrap();
        assert!(!file.as_ptr_range().contains(&raw.data.as_ptr()));
    }

    fn u8_view(numel: u64, offset: u64, shape: &[u64], strides: &[u64]) -> TensorRef {
        TensorRef {
            dtype: DType::U8,
            storage: StorageRef {
                key: "0".into(),
                dtype: DType::U8,
                numel,
                view: None,
            },
            offset,
            shape: shape.to_vec(),
            strides: strides.to_vec(),
        }
    }

    #[test]
    fn gathers_transposed_offset_and_broadcast_views() {
        let storage: Vec<u8> = (0..12).collect();
        let mut budget = u64::MAX;
        let transposed = materialize(
            "t",
            &u8_view(12, 0, &[3, 2], &[1, 3]),
            &storage,
            &mut budget,
        )
        .unwrap();
        assert_eq!(transposed.data[..], [0, 3, 1, 4, 2, 5]);
        let offset = materialize(
            "o",
            &u8_view(12, 2, &[2, 3], &[3, 1]),
            &storage,
            &mut budget,
        )
        .unwrap();
        assert_eq!(offset.data[..], [2, 3, 4, 5, 6, 7]);
        let broadcast = materialize(
            "b",
            &u8_view(12, 5, &[2, 2], &[0, 1]),
            &storage,
            &mut budget,
        )
        .unwrap();
        assert_eq!(broadcast.data[..], [5, 6, 5, 6]);
        let scalar = materialize("s", &u8_view(12, 11, &[], &[]), &storage, &mut budget).unwrap();
        assert_eq!((scalar.data.to_vec(), scalar.shape), (vec![11], vec![]));
        let empty = materialize("e", &u8_view(0, 0, &[0, 4], &[4, 1]), &[], &mut budget).unwrap();
        assert!(empty.data.is_empty());
    }

    #[test]
    fn applies_legacy_storage_views() {
        let storage: Vec<u8> = (0..10).collect();
        let mut tensor = u8_view(10, 1, &[3], &[1]);
        tensor.storage.view = Some(StorageView {
            offset: 4,
            numel: 4,
        });
        let raw = materialize("v", &tensor, &storage, &mut u64::MAX.clone()).unwrap();
        assert_eq!(raw.data[..], [5, 6, 7]);
        tensor.shape = vec![4];
        assert!(materialize("v", &tensor, &storage, &mut u64::MAX.clone()).is_err());
    }

    #[test]
    fn rejects_views_past_the_storage_and_absurd_shapes() {
        let storage = [0u8; 12];
        let mut budget = u64::MAX;
        let cases = [
            u8_view(12, 0, &[13], &[1]),
            u8_view(12, 11, &[2], &[1]),
            u8_view(13, 0, &[1], &[1]),
            u8_view(12, 0, &[2, 2], &[u64::MAX, 1]),
            u8_view(12, u64::MAX, &[1], &[1]),
            u8_view(12, 0, &[u64::MAX, u64::MAX], &[0, 0]),
        ];
        for case in &cases {
            let err = materialize("w", case, &storage, &mut budget).unwrap_err();
            assert!(err.to_string().contains("tensor `w`"), "{err}");
        }
    }

    #[test]
    fn stride_zero_expansion_is_held_to_the_budget() {
        let mut budget = 1000;
        let huge = u8_view(1, 0, &[1_000_000_000_000_000], &[0]);
        assert!(materialize("x", &huge, &[7], &mut budget).is_err());
        let fits = u8_view(1, 0, &[600], &[0]);
        assert!(materialize("x", &fits, &[7], &mut budget).is_ok());
        assert!(
            materialize("x", &fits, &[7], &mut budget).is_err(),
            "budget is shared between tensors"
        );
    }
}
