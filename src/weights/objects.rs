//! The object graph a pickle builds: values, and the arena holding containers
//! and torch objects.
//!
//! Objects live in an arena ([`Heap`]) and values refer to them by index. That
//! keeps Python's sharing semantics (a memoized dict that is filled later is
//! the same dict everywhere), makes copying a value O(1) so that hostile memo
//! references cannot blow up memory, and means no deeply nested structure is
//! ever dropped or walked recursively.

use std::rc::Rc;

use super::torch_pickle::{StorageRef, TensorRef};

/// Index of an object in the [`Heap`].
pub(crate) type ObjId = usize;

/// A pickle value; containers and torch objects are referenced in the heap.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits, as little-endian two's complement.
    BigInt(Rc<[u8]>),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    /// A `module.name` reference to a class or function.
    Global {
        module: Rc<str>,
        name: Rc<str>,
    },
    Obj(ObjId),
}

#[derive(Debug, PartialEq)]
pub(crate) enum Object {
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// Entries in insertion order; later duplicates win, as in Python.
    Dict(Vec<(Value, Value)>),
    Storage(StorageRef),
    Tensor(TensorRef),
    /// An instance of a class this loader does not model, kept so that
    /// unrelated parts of a training checkpoint do not fail the load.
    Opaque {
        class: String,
    },
}

#[derive(Debug, Default)]
pub(crate) struct Heap {
    objects: Vec<Object>,
}

impl Heap {
    pub(crate) fn alloc(&mut self, object: Object) -> Value {
        self.objects.push(object);
        Value::Obj(self.objects.len() - 1)
    }

    pub(crate) fn get(&self, value: &Value) -> Option<&Object> {
        match value {
            Value::Obj(id) => self.objects.get(*id),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, id: ObjId) -> Option<&mut Object> {
        self.objects.get_mut(id)
    }

    pub(crate) fn objects(&self) -> impl Iterator<Item = &Object> {
        self.objects.iter()
    }

    /// The items of a tuple or list.
    pub(crate) fn sequence(&self, value: &Value) -> Option<&[Value]> {
        match self.get(value)? {
            Object::Tuple(items) | Object::List(items) => Some(items),
            _ => None,
        }
    }

    pub(crate) fn dict(&self, value: &Value) -> Option<&[(Value, Value)]> {
        match self.get(value)? {
            Object::Dict(entries) => Some(entries),
            _ => None,
        }
    }
}
