//! Unit tests of the pickle VM on hand-written byte strings (kept in their own
//! file so that `pickle.rs` reads in one sitting).

use super::*;
use crate::weights::DType;

fn run(bytes: &[u8]) -> Result<(Heap, Value), WeightsError> {
    let mut heap = Heap::default();
    let (value, used) = unpickle(bytes, 0, &mut heap)?;
    assert_eq!(used, bytes.len(), "test pickles end at their STOP");
    Ok((heap, value))
}

fn str_value(text: &str) -> Value {
    Value::Str(text.into())
}

#[test]
fn builds_a_dict_with_memo_and_setitems() {
    // {'a': 1, 'b': -2} as protocol 2 writes it.
    let bytes = b"\x80\x02}q\x00(X\x01\x00\x00\x00aK\x01X\x01\x00\x00\x00bJ\xfe\xff\xff\xffu.";
    let (heap, root) = run(bytes).unwrap();
    let entries = heap.dict(&root).unwrap();
    assert_eq!(
        entries,
        [
            (str_value("a"), Value::Int(1)),
            (str_value("b"), Value::Int(-2))
        ]
    );
}

#[test]
fn decodes_every_integer_float_and_string_opcode() {
    let mut bytes = b"\x80\x02(".to_vec();
    bytes.extend_from_slice(b"M\x34\x12"); // BININT2
    bytes.extend_from_slice(b"\x8a\x02\x00\xff"); // LONG1 -256
    bytes.extend_from_slice(b"\x8a\x00"); // LONG1 0
    bytes.extend_from_slice(b"\x8b\x01\x00\x00\x00\x7f"); // LONG4 127
    bytes.extend_from_slice(b"G\x3f\xf8\x00\x00\x00\x00\x00\x00"); // BINFLOAT 1.5, big-endian
    bytes.extend_from_slice(b"\x8c\x02\xc3\xa9"); // SHORT_BINUNICODE 'é'
    bytes.extend_from_slice(b"\x8d\x01\x00\x00\x00\x00\x00\x00\x00z"); // BINUNICODE8
    bytes.extend_from_slice(b"U\x01\xe9"); // SHORT_BINSTRING, latin-1
    bytes.extend_from_slice(b"T\x02\x00\x00\x00ok"); // BINSTRING
    bytes.extend_from_slice(b"C\x02\x00\x01B\x01\x00\x00\x00\x02"); // SHORT_BINBYTES, BINBYTES
    bytes.extend_from_slice(b"N\x88\x89t."); // NONE NEWTRUE NEWFALSE, TUPLE
    let (heap, root) = run(&bytes).unwrap();
    let items = heap.sequence(&root).unwrap();
    let expected = [
        Value::Int(0x1234),
        Value::Int(-256),
        Value::Int(0),
        Value::Int(127),
        Value::Float(1.5),
        str_value("é"),
        str_value("z"),
        str_value("é"),
        str_value("ok"),
        Value::Bytes(vec![0, 1].into()),
        Value::Bytes(vec![2].into()),
        Value::None,
        Value::Bool(true),
        Value::Bool(false),
    ];
    assert_eq!(items, expected);
}

#[test]
fn keeps_integers_wider_than_64_bits() {
    // torch's legacy magic number, 0x1950a86a20f9469cfc6c.
    let bytes = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
    let (_, root) = run(bytes).unwrap();
    assert_eq!(root, Value::BigInt(bytes[4..14].into()));
}

#[test]
fn memoized_containers_are_shared_not_copied() {
    // l = []; d = {'k': l}; l.append(7) after memoizing; return (d, l)
    let bytes = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00]\x94}\x94\x8c\x01k\x94h\x00sh\x00K\x07ah\x01h\x00\x86\x94.";
    let (heap, root) = run(bytes).unwrap();
    let [dict, list] = heap.sequence(&root).unwrap() else {
        panic!("pair expected")
    };
    let entries = heap.dict(dict).unwrap();
    assert_eq!(entries[0].1, *list, "the dict holds the same list object");
    assert_eq!(heap.sequence(list).unwrap(), [Value::Int(7)]);
}

#[test]
fn long_memo_indices_and_ordered_dict_via_stack_global() {
    let bytes = b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93r\xff\xff\xff\x00)Rj\xff\xff\xff\x00\x86.";
    let (heap, root) = run(bytes).unwrap();
    let [dict, class] = heap.sequence(&root).unwrap() else {
        panic!("pair expected")
    };
    assert_eq!(heap.dict(dict), Some(&[][..]));
    assert!(
        matches!(class, Value::Global { module, name } if &**module == "collections" && &**name == "OrderedDict")
    );
}

/// `_rebuild_tensor_v2(('storage', FloatStorage, '0', 'cpu', 6), 2, (2, 2), (1, 2), False, OrderedDict())`
fn tensor_pickle(wrap_in_parameter: bool) -> Vec<u8> {
    let mut bytes = b"\x80\x02".to_vec();
    if wrap_in_parameter {
        bytes.extend_from_slice(b"ctorch._utils\n_rebuild_parameter\n");
    }
    bytes.extend_from_slice(
        b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n",
    );
    bytes.extend_from_slice(
        b"X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x06tQK\x02K\x02K\x02\x86K\x01K\x02\x86\x89",
    );
    bytes.extend_from_slice(b"ccollections\nOrderedDict\n)RtR");
    if wrap_in_parameter {
        bytes.extend_from_slice(b"\x88ccollections\nOrderedDict\n)R\x87R");
    }
    bytes.push(b'.');
    bytes
}

#[test]
fn rebuilds_tensors_and_parameters_from_persistent_storages() {
    for wrap in [false, true] {
        let (heap, root) = run(&tensor_pickle(wrap)).unwrap();
        let Some(Object::Tensor(tensor)) = heap.get(&root) else {
            panic!("tensor expected, got {root:?}")
        };
        assert_eq!(tensor.storage.key.as_ref(), "0");
        assert_eq!(tensor.storage.dtype, DType::F32);
        assert_eq!(tensor.storage.numel, 6);
        assert_eq!(
            (tensor.offset, &tensor.shape[..], &tensor.strides[..]),
            (2, &[2, 2][..], &[1, 2][..])
        );
    }
}

#[test]
fn unknown_classes_become_opaque_and_absorb_state() {
    // argparse.Namespace via NEWOBJ + BUILD, then SETITEMS on it is ignored.
    let bytes = b"\x80\x02cargparse\nNamespace\n)\x81}X\x02\x00\x00\x00lrG\x3f\xb9\x99\x99\x99\x99\x99\x9asb(K\x01K\x02u.";
    let (heap, root) = run(bytes).unwrap();
    assert!(
        matches!(heap.get(&root), Some(Object::Opaque { class }) if class == "argparse.Namespace")
    );
}

#[test]
fn deep_nesting_and_memo_doubling_stay_cheap() {
    let depth = 200_000;
    let mut bytes = b"\x80\x02".to_vec();
    bytes.extend(std::iter::repeat_n(b']', depth));
    bytes.extend(std::iter::repeat_n(b'a', depth - 1));
    bytes.push(b'.');
    run(&bytes).unwrap();

    // Each level is a list holding the previous level twice: 2^64 leaves if copied.
    let mut bytes = b"\x80\x02]q\x00".to_vec();
    for _ in 0..64 {
        bytes.extend_from_slice(b"(h\x00h\x00lq\x00");
    }
    bytes.push(b'.');
    run(&bytes).unwrap();
}

#[test]
fn malformed_pickles_are_errors_with_offsets() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "truncated at byte 0"),
        (b"\x80\x02", "truncated at byte 2"),
        (b"\x80\x06N.", "pickle protocol 6"),
        (b"\x80\x02.", "stack underflow"),
        (b"\x80\x02(.", "stack underflow"),
        (b"\x80\x02h\x05.", "memo entry 5"),
        (b"\x80\x02\xffN.", "opcode 0xff"),
        (b"\x80\x02}(K\x01u.", "odd number"),
        (b"\x80\x02)K\x01a.", "not a list"),
        (b"\x80\x02K\x01K\x02s.", "stack underflow"),
        (
            b"\x80\x02X\xff\xff\xff\xffabc",
            "needs 4294967295 bytes, 3 left",
        ),
        (
            b"\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff.",
            "needs 18446744073709551615 bytes",
        ),
        (b"\x80\x02X\x01\x00\x00\x00\xff.", "not UTF-8"),
        (b"\x80\x02cfoo", "GLOBAL module"),
        (b"\x80\x02\x8b\xff\xff\xff\xff.", "negative LONG4"),
        (b"\x80\x02t.", "no MARK"),
        (b"\x80\x02(N0N0.", "stack underflow"),
        (b"\x80\x02NQ.", "persistent id"),
        (
            b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN\x85R.",
            "_rebuild_tensor",
        ),
    ];
    for (bytes, expected) in cases {
        let err = run(bytes).map(|_| ()).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{bytes:?}: `{err}` lacks `{expected}`"
        );
    }
}

#[test]
fn error_offsets_count_from_the_base_offset() {
    let mut heap = Heap::default();
    let err = unpickle(b"\x80\x02N\xff", 1000, &mut heap).unwrap_err();
    assert!(
        matches!(err, WeightsError::Unsupported { offset: 1003, .. }),
        "{err}"
    );
}

#[test]
fn every_prefix_of_a_tensor_pickle_fails_cleanly() {
    let bytes = tensor_pickle(true);
    for cut in 0..bytes.len() {
        assert!(
            unpickle(&bytes[..cut], 0, &mut Heap::default()).is_err(),
            "cut at {cut}"
        );
    }
    for at in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut mutated = bytes.clone();
            mutated[at] ^= flip;
            let _ = unpickle(&mutated, 0, &mut Heap::default());
        }
    }
}
