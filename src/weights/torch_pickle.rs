//! What torch's pickled objects mean: storages, tensors and state dicts.
//!
//! The pickle VM calls [`persistent_load`] for `BINPERSID` and [`call`] for
//! `REDUCE`/`NEWOBJ`. Both formats that use pickles (zip and legacy) share
//! this code; they differ only in where a storage's bytes live, which
//! [`build_checkpoint`] is told through a map from storage key to bytes.

use std::collections::HashMap;

use super::mapped::FileBytes;
use std::rc::Rc;

use super::objects::{Heap, Object, Value};
use super::pickle::Fault;
use super::{Checkpoint, DType, WeightsError};

/// A storage as named by a persistent id; its bytes are found by `key`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct StorageRef {
    pub key: Rc<str>,
    pub dtype: DType,
    /// Elements of the whole stored storage.
    pub numel: u64,
    /// Legacy files from torch < 1.0 could reference a slice of a storage.
    pub view: Option<StorageView>,
}

/// `(offset, numel)` in elements of the root storage.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct StorageView {
    pub offset: u64,
    pub numel: u64,
}

/// `_rebuild_tensor_v2(storage, storage_offset, size, stride, ...)`; offset
/// and strides count elements of `dtype`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TensorRef {
    /// The storage's dtype, except for `_rebuild_tensor_v3` over untyped bytes.
    pub dtype: DType,
    pub storage: StorageRef,
    pub offset: u64,
    pub shape: Vec<u64>,
    pub strides: Vec<u64>,
}

/// Interprets `('storage', storage_type, key, location, numel[, view_metadata])`.
pub(crate) fn persistent_load(heap: &mut Heap, pid: &Value) -> Result<Value, Fault> {
    let bad = || {
        Fault::Corrupt(format!(
            "persistent id is not a torch storage tuple: {pid:?}"
        ))
    };
    let items = heap.sequence(pid).ok_or_else(bad)?;
    let [Value::Str(tag), storage_type, key, _location, numel, rest @ ..] = items else {
        return Err(bad());
    };
    if &**tag != "storage" {
        return Err(bad());
    }
    let Value::Global { module, name } = storage_type else {
        return Err(bad());
    };
    // Unknown storages (quantized, complex, ...) only fail the load if a
    // tensor of the state dict uses them; see `build_checkpoint`.
    let Some(dtype) = dtype_named(module, name) else {
        let class = format!("storage {module}.{name}");
        return Ok(heap.alloc(Object::Opaque { class }));
    };
    let key: Rc<str> = match key {
        Value::Str(key) => key.clone(),
        Value::Int(key) => key.to_string().into(),
        _ => return Err(bad()),
    };
    let numel = as_u64(numel).ok_or_else(bad)?;
    let view = match rest {
        [] | [Value::None] => None,
        [view_metadata] => {
            let Some([_view_key, offset, size]) = heap.sequence(view_metadata) else {
                return Err(bad());
            };
            let offset = as_u64(offset).ok_or_else(bad)?;
            let numel = as_u64(size).ok_or_else(bad)?;
            Some(StorageView { offset, numel })
        }
        _ => return Err(bad()),
    };
    Ok(heap.alloc(Object::Storage(StorageRef {
        key,
        dtype,
        numel,
        view,
    })))
}

/// The dtype of a storage class (`torch.FloatStorage`) or dtype (`torch.float32`).
///
/// torch >= 2.0 writes `torch.storage.UntypedStorage` (bytes) for dtypes that
/// have no storage class of their own, and legacy files saved from a GPU
/// name `torch.cuda.FloatStorage`.
fn dtype_named(module: &str, name: &str) -> Option<DType> {
    if !matches!(module, "torch" | "torch.cuda" | "torch.storage") {
        return None;
    }
    Some(match name {
        "FloatStorage" | "float32" => DType::F32,
        "HalfStorage" | "float16" => DType::F16,
        "BFloat16Storage" | "bfloat16" => DType::BF16,
        "DoubleStorage" | "float64" => DType::F64,
        "LongStorage" | "int64" => DType::I64,
        "IntStorage" | "int32" => DType::I32,
        "ShortStorage" | "int16" => DType::I16,
        "CharStorage" | "int8" => DType::I8,
        "ByteStorage" | "uint8" | "UntypedStorage" => DType::U8,
        "BoolStorage" | "bool" => DType::Bool,
        _ => return None,
    })
}

/// Applies a pickled callable to its argument tuple.
pub(crate) fn call(heap: &mut Heap, callable: &Value, args: &Value) -> Result<Value, Fault> {
    let Value::Global { module, name } = callable else {
        return Ok(heap.alloc(Object::Opaque {
            class: "<non-global callable>".into(),
        }));
    };
    let args = heap
        .sequence(args)
        .ok_or_else(|| Fault::Corrupt(format!("arguments of {module}.{name} are not a tuple")))?;
    match (&**module, &**name) {
        ("collections", "OrderedDict" | "defaultdict") | ("builtins" | "__builtin__", "dict") => {
            let entries = dict_entries_from_args(heap, args);
            Ok(heap.alloc(Object::Dict(entries)))
        }
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor" | "_rebuild_tensor_v3") => {
            let tensor = rebuild_tensor(heap, name, args)?;
            Ok(heap.alloc(tensor))
        }
        // A Parameter is its data; `requires_grad` and hooks do not matter here.
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
            match args.first() {
                Some(data) => Ok(data.clone()),
                None => Err(Fault::Corrupt("_rebuild_parameter without data".into())),
            }
        }
        // Tensor subclasses: `(func, type, func_args, state)`; call `func` once,
        // never nesting, so a hostile pickle cannot recurse.
        ("torch._tensor", "_rebuild_from_type_v2" | "_rebuild_from_type") => match args {
            [func @ Value::Global { name: inner, .. }, _, func_args, ..]
                if !inner.starts_with("_rebuild_from_type") =>
            {
                let (func, func_args) = (func.clone(), func_args.clone());
                call(heap, &func, &func_args)
            }
            _ => Err(Fault::Unsupported(format!(
                "{module}.{name} arguments {args:?}"
            ))),
        },
        _ => Ok(heap.alloc(Object::Opaque {
            class: format!("{module}.{name}"),
        })),
    }
}

/// `OrderedDict()` or `OrderedDict([(k, v), ...])`; anything else starts empty.
fn dict_entries_from_args(heap: &Heap, args: &[Value]) -> Vec<(Value, Value)> {
    let Some(items) = args.first().and_then(|first| heap.sequence(first)) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|pair| match heap.sequence(pair) {
            Some([key, value]) => Some((key.clone(), value.clone())),
            _ => None,
        })
        .collect()
}

/// `_rebuild_tensor[_v2](storage, offset, size, stride, ...)`, or
/// `_rebuild_tensor_v3(..., requires_grad, hooks, dtype, ...)` whose storage
/// is untyped bytes and whose dtype comes as an argument.
fn rebuild_tensor(heap: &Heap, function: &str, args: &[Value]) -> Result<Object, Fault> {
    let bad = |what: &str| Fault::Corrupt(format!("{function}: {what}"));
    let [storage, offset, shape, strides, rest @ ..] = args else {
        return Err(bad("fewer than 4 arguments"));
    };
    let unsupported = |why: String| Object::Opaque {
        class: format!("torch._utils.{function} {why}"),
    };
    let storage = match heap.get(storage) {
        Some(Object::Storage(storage)) => storage,
        Some(Object::Opaque { class }) => return Ok(unsupported(format!("over {class}"))),
        _ => return Err(bad("first argument is not a storage")),
    };
    let dtype = if function == "_rebuild_tensor_v3" {
        match rest.get(2) {
            Some(Value::Global { module, name }) => match dtype_named(module, name) {
                Some(dtype) => dtype,
                None => return Ok(unsupported(format!("with dtype {module}.{name}"))),
            },
            _ => return Err(bad("dtype argument is missing")),
        }
    } else {
        storage.dtype
    };
    let offset = as_u64(offset).ok_or_else(|| bad("storage offset is not a non-negative int"))?;
    let dims = |value: &Value, what: &str| -> Result<Vec<u64>, Fault> {
        let items = heap
            .sequence(value)
            .ok_or_else(|| bad(&format!("{what} is not a tuple")))?;
        items
            .iter()
            .map(|item| as_u64(item).ok_or_else(|| bad(&format!("{what} holds {item:?}"))))
            .collect()
    };
    let shape = dims(shape, "size")?;
    let strides = dims(strides, "stride")?;
    if shape.len() != strides.len() {
        return Err(bad("size and stride differ in length"));
    }
    Ok(Object::Tensor(TensorRef {
        dtype,
        storage: storage.clone(),
        offset,
        shape,
        strides,
    }))
}

fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Int(v) => u64::try_from(*v).ok(),
        Value::Bool(b) => Some(u64::from(*b)),
        _ => None,
    }
}

/// Keys under which training scripts nest the state dict, most likely first.
const WRAPPER_KEYS: [&str; 8] = [
    "state_dict",
    "model",
    "model_state_dict",
    "module",
    "net",
    "state_dict_ema",
    "model_ema",
    "params",
];

/// Finds the state dict under `root` and copies out every tensor.
///
/// `storages` maps each storage key to the bytes of the whole root storage,
/// slices of `file`, which contiguous tensors share rather than copy.
/// `budget` caps the bytes produced, because strides of 0 let a tiny file
/// describe an arbitrarily large tensor.
pub(crate) fn build_checkpoint(
    heap: &Heap,
    root: &Value,
    storages: &HashMap<Rc<str>, &[u8]>,
    file: &FileBytes,
    budget: &mut u64,
) -> Result<Checkpoint, WeightsError> {
    let entries =
        find_state_dict(heap, root, 3).ok_or_else(|| describe_missing_state_dict(heap, root))?;
    let mut checkpoint = Checkpoint::new();
    for (key, value) in entries {
        let Value::Str(name) = key else {
            return Err(WeightsError::NoStateDict {
                what: format!("state dict key {key:?} is not a string"),
            });
        };
        match heap.get(value) {
            Some(Object::Tensor(tensor)) => {
                let bytes = storages.get(&tensor.storage.key).ok_or_else(|| {
                    WeightsError::tensor(
                        name,
                        format!("storage `{}` is missing from the file", tensor.storage.key),
                    )
                })?;
                let raw = super::tensor_view::materialize(name, tensor, bytes, file, budget)?;
                checkpoint.insert(name.to_string(), raw);
            }
            Some(Object::Opaque { class }) if is_unsupported_tensor(class) => {
                return Err(WeightsError::tensor(
                    name,
                    format!("built by {class}, which is not supported"),
                ));
            }
            // Non-tensor entries (extra state, counters) carry no weights.
            _ => {}
        }
    }
    Ok(checkpoint)
}

/// Opaque objects made by torch's tensor rebuild functions (sparse,
/// quantized, unknown dtypes) are tensors this loader cannot represent.
fn is_unsupported_tensor(class: &str) -> bool {
    class.starts_with("torch") && class.contains("._rebuild")
}

fn holds_tensors(heap: &Heap, entries: &[(Value, Value)]) -> bool {
    entries.iter().any(|(_, value)| match heap.get(value) {
        Some(Object::Tensor(_)) => true,
        Some(Object::Opaque { class }) => is_unsupported_tensor(class),
        _ => false,
    })
}

/// The dict of tensors at `value` or under one of the [`WRAPPER_KEYS`].
///
/// Wrappers win over the dict itself: a training checkpoint may hold stray
/// tensors beside `state_dict`, while a real state dict never has a bare
/// `model` or `state_dict` key that maps to a dict.
fn find_state_dict<'h>(heap: &'h Heap, value: &Value, depth: u32) -> Option<&'h [(Value, Value)]> {
    let entries = heap.dict(value)?;
    let wrapped = WRAPPER_KEYS.iter().find_map(|wanted| {
        let (_, inner) = entries
            .iter()
            .rev()
            .find(|(key, _)| matches!(key, Value::Str(k) if &**k == *wanted))?;
        find_state_dict(heap, inner, depth.checked_sub(1)?)
    });
    wrapped.or_else(|| holds_tensors(heap, entries).then_some(entries))
}

fn describe_missing_state_dict(heap: &Heap, root: &Value) -> WeightsError {
    let what = match heap.get(root) {
        Some(Object::Dict(entries)) => {
            let keys: Vec<String> = entries
                .iter()
                .take(20)
                .map(|(key, _)| match key {
                    Value::Str(key) => format!("`{key}`"),
                    other => format!("{other:?}"),
                })
                .collect();
            format!(
                "top-level dict holds no tensors (keys: {})",
                keys.join(", ")
            )
        }
        Some(Object::Opaque { class }) => {
            format!("top-level object is a pickled `{class}` (a whole nn.Module?); save model.state_dict() instead")
        }
        Some(Object::Tensor(_)) => {
            "top-level object is a single tensor, not a dict of tensors".into()
        }
        _ => format!("top-level object is {root:?}, not a dict"),
    };
    WeightsError::NoStateDict { what }
}

#[cfg(test)]
#[path = "torch_pickle_tests.rs"]
mod tests;
