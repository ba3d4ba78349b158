//! Unit tests of the torch object interpretation on hand-written pickles:
//! tensor rebuilds, unknown storages and checkpoints without a state dict
//! (kept in their own file so that `torch_pickle.rs` reads in one sitting).

use super::super::pickle::unpickle;
use super::*;

/// Unpickles `body` (after PROTO 2) and builds a checkpoint over storage "0".
fn checkpoint(body: &[u8], storage: &[u8]) -> Result<Checkpoint, WeightsError> {
    let mut bytes = b"\x80\x02".to_vec();
    bytes.extend_from_slice(body);
    let mut heap = Heap::default();
    let (root, _) = unpickle(&bytes, 0, &mut heap)?;
    let file = super::super::mapped::FileBytes::copied(storage);
    let storages = HashMap::from([(Rc::from("0"), &file[..])]);
    build_checkpoint(&heap, &root, &storages, &file, &mut u64::MAX.clone())
}

/// `_rebuild_tensor_v3` of one element at offset 1 of 8 untyped bytes.
fn v3_tensor(dtype: &str) -> Vec<u8> {
    let mut bytes = b"ctorch._utils\n_rebuild_tensor_v3\n((X\x07\x00\x00\x00storage\
        ctorch.storage\nUntypedStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x08tQ\
        K\x01K\x01\x85K\x01\x85\x89ccollections\nOrderedDict\n)Rctorch\n"
        .to_vec();
    bytes.extend_from_slice(dtype.as_bytes());
    bytes.extend_from_slice(b"\ntR");
    bytes
}

/// `_rebuild_tensor_v2` of the whole 2-element storage of class `class`.
fn v2_tensor(class: &str) -> Vec<u8> {
    let mut bytes =
        b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\n".to_vec();
    bytes.extend_from_slice(class.as_bytes());
    bytes.extend_from_slice(
        b"\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQK\x00K\x02\x85K\x01\x85\x89N\x85\x86tR",
    );
    bytes
}

fn dict_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = b"}(".to_vec();
    for (key, value) in entries {
        bytes.push(b'X');
        bytes.extend_from_slice(&(key.len() as u32).to_le_bytes());
        bytes.extend_from_slice(key.as_bytes());
        bytes.extend_from_slice(value);
    }
    bytes.push(b'u');
    bytes
}

fn with_stop(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.push(b'.');
    bytes
}

const ONE_F32_AT_4: [u8; 8] = [9, 9, 9, 9, 0, 0, 0x80, 0x3f];

#[test]
fn rebuild_tensor_v3_takes_its_dtype_from_the_arguments() {
    let body = with_stop(dict_of(&[("x", v3_tensor("float32"))]));
    let loaded = checkpoint(&body, &ONE_F32_AT_4).unwrap();
    assert_eq!(loaded["x"].to_f32_vec().unwrap(), [1.0]);

    let body = with_stop(dict_of(&[("x", v3_tensor("uint16"))]));
    let err = checkpoint(&body, &ONE_F32_AT_4).unwrap_err().to_string();
    assert!(
        err.contains("tensor `x`") && err.contains("torch.uint16"),
        "{err}"
    );
}

#[test]
fn unknown_storage_classes_fail_only_the_tensors_using_them() {
    let body = with_stop(dict_of(&[("q", v2_tensor("QInt8Storage"))]));
    let err = checkpoint(&body, &[1, 2]).unwrap_err().to_string();
    assert!(
        err.contains("tensor `q`") && err.contains("QInt8Storage"),
        "{err}"
    );

    let inner = dict_of(&[("w", v2_tensor("ByteStorage"))]);
    let body = with_stop(dict_of(&[
        ("extra", v2_tensor("ComplexFloatStorage")),
        ("state_dict", inner),
    ]));
    let loaded = checkpoint(&body, &[1, 2]).unwrap();
    assert_eq!(loaded.keys().collect::<Vec<_>>(), ["w"]);
    assert_eq!(loaded["w"].data[..], [1, 2]);
}

#[test]
fn explains_checkpoints_without_a_state_dict() {
    let cases: [(Vec<u8>, &str); 3] = [
        (
            with_stop(dict_of(&[("epoch", b"K\x03".to_vec())])),
            "keys: `epoch`",
        ),
        (
            b"ctorch.nn.modules.linear\nLinear\n)\x81}b.".to_vec(),
            "whole nn.Module",
        ),
        (with_stop(v2_tensor("ByteStorage")), "single tensor"),
    ];
    for (body, expected) in cases {
        let err = checkpoint(&body, &[1, 2]).unwrap_err();
        assert!(matches!(err, WeightsError::NoStateDict { .. }), "{err}");
        assert!(
            err.to_string().contains(expected),
            "`{err}` lacks `{expected}`"
        );
    }
}
