//! The pickle VM's building blocks, which the opcode table in `pickle.rs`
//! composes: reading the input (a short read is [`Fault::Truncated`]), the
//! stack with its MARKs, the memo, and growing dicts and lists in place.

use std::rc::Rc;

use super::{corrupt, Fault, Machine};
use crate::weights::objects::{Object, Value};

impl<'a> Machine<'a, '_> {
    pub(super) fn take(&mut self, len: u64, what: &str) -> Result<&'a [u8], Fault> {
        let available = self.input.len().saturating_sub(self.pos);
        let slice = usize::try_from(len)
            .ok()
            .and_then(|len| self.input.get(self.pos..self.pos.checked_add(len)?));
        let Some(slice) = slice else {
            return Err(Fault::Truncated {
                what: what.to_string(),
                needed: len,
                available: available as u64,
            });
        };
        self.pos += slice.len();
        Ok(slice)
    }

    pub(super) fn take_array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], Fault> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N as u64, what)?);
        Ok(array)
    }

    pub(super) fn read_u8(&mut self, what: &str) -> Result<u8, Fault> {
        Ok(self.take_array::<1>(what)?[0])
    }

    pub(super) fn read_u32(&mut self, what: &str) -> Result<u32, Fault> {
        Ok(u32::from_le_bytes(self.take_array(what)?))
    }

    /// A newline-terminated ASCII line, as GLOBAL writes its names.
    pub(super) fn take_line(&mut self, what: &str) -> Result<Rc<str>, Fault> {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let Some(len) = rest.iter().position(|&b| b == b'\n') else {
            return Err(Fault::Truncated {
                what: what.to_string(),
                needed: rest.len() as u64 + 1,
                available: rest.len() as u64,
            });
        };
        let line = self.take(len as u64 + 1, what)?;
        match std::str::from_utf8(&line[..len]) {
            Ok(text) => Ok(text.into()),
            Err(_) => corrupt(format!("{what} is not UTF-8")),
        }
    }

    pub(super) fn push(&mut self, value: Value) {
        self.stack.push(value);
    }

    pub(super) fn push_object(&mut self, object: Object) {
        let value = self.heap.alloc(object);
        self.stack.push(value);
    }

    pub(super) fn push_str(&mut self, len: u64) -> Result<(), Fault> {
        let bytes = self.take(len, "string")?;
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                self.push(Value::Str(text.into()));
                Ok(())
            }
            Err(e) => corrupt(format!("string is not UTF-8: {e}")),
        }
    }

    /// Python 2 `str`; torch's docs load these with `encoding='latin1'`.
    pub(super) fn push_latin1(&mut self, len: u64) -> Result<(), Fault> {
        let text: String = self
            .take(len, "string")?
            .iter()
            .map(|&b| char::from(b))
            .collect();
        self.push(Value::Str(text.into()));
        Ok(())
    }

    pub(super) fn push_bytes(&mut self, len: u64) -> Result<(), Fault> {
        let bytes = self.take(len, "bytes")?;
        self.push(Value::Bytes(bytes.into()));
        Ok(())
    }

    pub(super) fn memoize(&mut self, index: u32) -> Result<(), Fault> {
        let top = self.top()?.clone();
        self.memo.insert(index, top);
        Ok(())
    }

    pub(super) fn memo_get(&mut self, index: u32) -> Result<(), Fault> {
        match self.memo.get(&index) {
            Some(value) => {
                self.stack.push(value.clone());
                Ok(())
            }
            None => corrupt(format!("memo entry {index} read before it was written")),
        }
    }

    pub(super) fn top(&self) -> Result<&Value, Fault> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.stack.last() {
            Some(value) if self.stack.len() > floor => Ok(value),
            _ => corrupt("stack underflow"),
        }
    }

    pub(super) fn pop(&mut self) -> Result<Value, Fault> {
        self.top()?;
        self.stack
            .pop()
            .map_or_else(|| corrupt("stack underflow"), Ok)
    }

    pub(super) fn pop_n(&mut self, count: usize) -> Result<Vec<Value>, Fault> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.stack.len().checked_sub(count) {
            Some(start) if start >= floor => Ok(self.stack.split_off(start)),
            _ => corrupt("stack underflow"),
        }
    }

    pub(super) fn pop_mark(&mut self) -> Result<Vec<Value>, Fault> {
        match self.marks.pop() {
            Some(mark) if mark <= self.stack.len() => Ok(self.stack.split_off(mark)),
            Some(_) => corrupt("stack shrank below its MARK"),
            None => corrupt("no MARK on the stack"),
        }
    }

    fn target(&mut self) -> Result<&mut Object, Fault> {
        let top = self.top()?.clone();
        match top {
            Value::Obj(id) => match self.heap.get_mut(id) {
                Some(object) => Ok(object),
                None => corrupt("dangling object reference (this is a bug)"),
            },
            other => corrupt(format!("cannot add items to {other:?}")),
        }
    }

    pub(super) fn extend_dict(&mut self, entries: Vec<(Value, Value)>) -> Result<(), Fault> {
        match self.target()? {
            Object::Dict(existing) => {
                existing.extend(entries);
                Ok(())
            }
            Object::Opaque { .. } => Ok(()),
            _ => corrupt("SETITEM(S) on an object that is not a dict"),
        }
    }

    pub(super) fn extend_list(&mut self, items: Vec<Value>) -> Result<(), Fault> {
        match self.target()? {
            Object::List(existing) => {
                existing.extend(items);
                Ok(())
            }
            Object::Opaque { .. } => Ok(()),
            _ => corrupt("APPEND(S) on an object that is not a list"),
        }
    }
}

pub(super) fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, Fault> {
    if !items.len().is_multiple_of(2) {
        return corrupt("odd number of items for a dict");
    }
    let mut entries = Vec::with_capacity(items.len() / 2);
    let mut iter = items.into_iter();
    while let (Some(key), Some(value)) = (iter.next(), iter.next()) {
        entries.push((key, value));
    }
    Ok(entries)
}

/// LONG1/LONG4 payload: little-endian two's complement of any width.
pub(super) fn decode_long(bytes: &[u8]) -> Value {
    if bytes.len() > 8 {
        return Value::BigInt(bytes.into());
    }
    let negative = bytes.last().is_some_and(|&b| b & 0x80 != 0);
    let mut wide = [if negative { 0xff } else { 0 }; 8];
    wide[..bytes.len()].copy_from_slice(bytes);
    Value::Int(i64::from_le_bytes(wide))
}
