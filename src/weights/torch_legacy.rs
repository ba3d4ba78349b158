//! The legacy (torch < 1.6) `torch.save` format, still written with
//! `_use_new_zipfile_serialization=False` and used by the old timm release
//! files such as `gluon_seresnext50_32x4d-90cf2d6e.pth`.
//!
//! One stream of consecutive pickles and raw data:
//! magic number, protocol version (1001), `sys_info` dict, the object itself,
//! the list of storage keys, then for each key in that order an int64
//! little-endian element count followed by the storage's raw bytes.

use std::collections::HashMap;

use super::mapped::FileBytes;
use std::rc::Rc;

use super::objects::{Heap, Object, Value};
use super::pickle;
use super::{torch_pickle, Checkpoint, DType, WeightsError};

/// `0x1950a86a20f9469cfc6c` as the little-endian bytes of its LONG1 payload.
const MAGIC_NUMBER: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const PROTOCOL_VERSION: i64 = 1001;

/// `file` is the whole stream; contiguous tensors are slices of it.
pub(crate) fn load(file: &FileBytes) -> Result<Checkpoint, WeightsError> {
    let bytes: &[u8] = file;
    let mut heap = Heap::default();
    let mut pos = 0usize;
    let mut next_pickle = |heap: &mut Heap| -> Result<(u64, Value), WeightsError> {
        let start = pos;
        let rest = bytes.get(start..).unwrap_or_default();
        let (value, used) = pickle::unpickle(rest, start as u64, heap)?;
        pos = start + used;
        Ok((start as u64, value))
    };

    let (offset, magic) = next_pickle(&mut heap)?;
    if !matches!(&magic, Value::BigInt(b) if **b == MAGIC_NUMBER) {
        return Err(WeightsError::unsupported(
            offset,
            "a pickle, but not a torch.save file (no legacy magic number)",
        ));
    }
    let (offset, version) = next_pickle(&mut heap)?;
    if version != Value::Int(PROTOCOL_VERSION) {
        return Err(WeightsError::unsupported(
            offset,
            format!("legacy protocol version {version:?}"),
        ));
    }
    let (offset, sys_info) = next_pickle(&mut heap)?;
    check_little_endian(&heap, &sys_info, offset)?;
    let (_, root) = next_pickle(&mut heap)?;
    let (keys_offset, keys) = next_pickle(&mut heap)?;
    let keys = storage_keys(&heap, &keys).ok_or_else(|| {
        WeightsError::corrupt(keys_offset, "storage key list is not a list of strings")
    })?;

    let declared = declared_storages(&heap);
    let mut storages: HashMap<Rc<str>, &[u8]> = HashMap::new();
    // `next_pickle` is done with `pos`: it now points at the first storage.
    for key in keys {
        // Without the dtype the storage's length is unknown, so the rest of
        // the file cannot be found either.
        let Some(&(dtype, numel)) = declared.get(&key) else {
            return Err(WeightsError::unsupported(
                pos as u64,
                format!("storage `{key}` is of a type this loader does not read, or never used"),
            ));
        };
        let count_bytes = read(bytes, pos, 8, &format!("element count of storage `{key}`"))?;
        let count = count_bytes.try_into().map(i64::from_le_bytes).unwrap_or(-1);
        if u64::try_from(count).ok() != Some(numel) {
            return Err(WeightsError::corrupt(
                pos as u64,
                format!("storage `{key}` holds {count} elements, its id declares {numel}"),
            ));
        }
        pos += 8;
        let len = numel.saturating_mul(dtype.size_in_bytes() as u64);
        let data = read(bytes, pos, len, &format!("storage `{key}`"))?;
        pos += data.len();
        storages.insert(key, data);
    }
    let mut budget = super::output_budget(bytes.len());
    torch_pickle::build_checkpoint(&heap, &root, &storages, file, &mut budget)
}

fn read<'b>(bytes: &'b [u8], pos: usize, len: u64, what: &str) -> Result<&'b [u8], WeightsError> {
    let slice = usize::try_from(len)
        .ok()
        .and_then(|len| bytes.get(pos..pos.checked_add(len)?));
    slice.ok_or_else(|| WeightsError::Truncated {
        offset: pos as u64,
        what: what.to_string(),
        needed: len,
        available: bytes.len().saturating_sub(pos) as u64,
    })
}

fn check_little_endian(heap: &Heap, sys_info: &Value, offset: u64) -> Result<(), WeightsError> {
    let entries = heap
        .dict(sys_info)
        .ok_or_else(|| WeightsError::corrupt(offset, "sys_info is not a dict"))?;
    let little_endian = entries
        .iter()
        .find(|(key, _)| matches!(key, Value::Str(k) if &**k == "little_endian"))
        .map(|(_, value)| value);
    match little_endian {
        Some(Value::Bool(false)) => Err(WeightsError::unsupported(
            offset,
            "checkpoint saved on a big-endian machine",
        )),
        _ => Ok(()),
    }
}

fn storage_keys(heap: &Heap, keys: &Value) -> Option<Vec<Rc<str>>> {
    heap.sequence(keys)?
        .iter()
        .map(|key| match key {
            Value::Str(key) => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// Dtype and element count of every storage the object references, by key;
/// the first reference wins, as in torch's loader.
fn declared_storages(heap: &Heap) -> HashMap<Rc<str>, (DType, u64)> {
    let mut declared = HashMap::new();
    for object in heap.objects() {
        if let Object::Storage(storage) = object {
            declared
                .entry(storage.key.clone())
                .or_insert((storage.dtype, storage.numel));
        }
    }
    declared
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::load_bytes;

    /// Assembles a legacy file around a hand-written main pickle.
    fn legacy_file(
        sys_info: &[u8],
        main: &[u8],
        keys: &[&str],
        storages: &[(i64, &[u8])],
    ) -> Vec<u8> {
        let mut file = b"\x80\x02\x8a\x0a".to_vec();
        file.extend_from_slice(&MAGIC_NUMBER);
        file.extend_from_slice(b".\x80\x02M\xe9\x03.");
        file.extend_from_slice(sys_info);
        file.extend_from_slice(main);
        file.extend_from_slice(b"\x80\x02(");
        for key in keys {
            file.push(b'X');
            file.extend_from_slice(&(key.len() as u32).to_le_bytes());
            file.extend_from_slice(key.as_bytes());
        }
        file.extend_from_slice(b"l.");
        for (count, bytes) in storages {
            file.extend_from_slice(&count.to_le_bytes());
            file.extend_from_slice(bytes);
        }
        file
    }

    const LITTLE: &[u8] = b"\x80\x02}(X\x0d\x00\x00\x00little_endian\x88u.";

    /// `{'v': tensor}` viewing elements 1..3 of the 4-byte view at offset 2
    /// of 8-byte storage `k`, as torch < 1.0 wrote storage views.
    const VIEW_MAIN: &[u8] = b"\x80\x02}(X\x01\x00\x00\x00vctorch._utils\n_rebuild_tensor_v2\n\
        ((X\x07\x00\x00\x00storagectorch\nByteStorage\nX\x01\x00\x00\x00kX\x03\x00\x00\x00cpuK\x08\
        (X\x02\x00\x00\x00kvK\x02K\x04ttQK\x01K\x02\x85K\x01\x85\x89N\x85\x86tRu.";

    const STORAGE: &[u8] = &[0, 1, 2, 3, 4, 5, 6, 7];

    #[test]
    fn reads_storage_views_of_pre_1_0_files() {
        let file = legacy_file(LITTLE, VIEW_MAIN, &["k"], &[(8, STORAGE)]);
        let checkpoint = load_bytes(&file).unwrap();
        assert_eq!(checkpoint["v"].data[..], [3, 4]);
        assert_eq!(checkpoint["v"].dtype, DType::U8);
    }

    #[test]
    fn rejects_inconsistent_storage_tables() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                legacy_file(LITTLE, VIEW_MAIN, &["k"], &[(7, STORAGE)]),
                "holds 7 elements",
            ),
            (
                legacy_file(LITTLE, VIEW_MAIN, &["k"], &[(8, &STORAGE[..5])]),
                "truncated",
            ),
            (
                legacy_file(LITTLE, VIEW_MAIN, &["x"], &[(8, STORAGE)]),
                "never used",
            ),
            (
                legacy_file(LITTLE, VIEW_MAIN, &[], &[]),
                "missing from the file",
            ),
            (
                legacy_file(
                    b"\x80\x02}(X\x0d\x00\x00\x00little_endian\x89u.",
                    VIEW_MAIN,
                    &["k"],
                    &[(8, STORAGE)],
                ),
                "big-endian",
            ),
        ];
        for (file, expected) in cases {
            let err = load_bytes(&file).unwrap_err().to_string();
            assert!(err.contains(expected), "`{err}` lacks `{expected}`");
        }
    }

    #[test]
    fn a_plain_pickle_is_not_mistaken_for_a_checkpoint() {
        let err = load_bytes(b"\x80\x02}q\x00.").unwrap_err();
        assert!(
            matches!(err, WeightsError::Unsupported { offset: 0, .. }),
            "{err}"
        );
        let err =
            load_bytes(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02K\x01.")
                .unwrap_err();
        assert!(err.to_string().contains("protocol version"), "{err}");
    }
}
