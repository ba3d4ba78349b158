//! A pickle virtual machine for the subset of opcodes that `torch.save` emits.
//!
//! It builds the object graph of `objects` (so `BINGET` is an O(1) copy and
//! nothing is nested recursively); torch's own callables (tensor rebuilds,
//! persistent storage ids) are interpreted by `torch_pickle`. This file holds
//! the opcode table; the input, stack and memo operations it composes are in
//! `pickle_machine.rs`.

#[path = "pickle_machine.rs"]
mod machine;

use std::collections::HashMap;

use self::machine::{decode_long, pairs};
use super::objects::{Heap, Object, Value};
use super::torch_pickle;
use super::WeightsError;

/// Why an opcode failed; the VM adds the byte offset.
#[derive(Debug)]
pub(crate) enum Fault {
    Corrupt(String),
    Unsupported(String),
    Truncated {
        what: String,
        needed: u64,
        available: u64,
    },
}

/// Runs one pickle from the start of `input` to its STOP opcode.
///
/// Returns the unpickled value and the number of bytes consumed, so that the
/// legacy format can read the data that follows. `base_offset` is where
/// `input` starts in the file, so errors name file offsets.
pub(crate) fn unpickle(
    input: &[u8],
    base_offset: u64,
    heap: &mut Heap,
) -> Result<(Value, usize), WeightsError> {
    let mut vm = Machine {
        input,
        pos: 0,
        heap,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        let op_offset = vm.pos;
        match vm.step() {
            Ok(Some(value)) => return Ok((value, vm.pos)),
            Ok(None) => {}
            Err(fault) => {
                let offset = base_offset.saturating_add(op_offset as u64);
                return Err(match fault {
                    Fault::Corrupt(what) => WeightsError::corrupt(offset, what),
                    Fault::Unsupported(what) => WeightsError::unsupported(offset, what),
                    Fault::Truncated {
                        what,
                        needed,
                        available,
                    } => WeightsError::Truncated {
                        offset,
                        what,
                        needed,
                        available,
                    },
                });
            }
        }
    }
}

struct Machine<'a, 'h> {
    input: &'a [u8],
    pos: usize,
    heap: &'h mut Heap,
    stack: Vec<Value>,
    /// Stack heights at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

fn corrupt<T>(what: impl Into<String>) -> Result<T, Fault> {
    Err(Fault::Corrupt(what.into()))
}

impl<'a> Machine<'a, '_> {
    /// Executes one opcode; `Some` is the result at STOP.
    fn step(&mut self) -> Result<Option<Value>, Fault> {
        let [op] = self.take_array::<1>("opcode")?;
        match op {
            0x80 => {
                let [version] = self.take_array::<1>("PROTO version")?;
                if version > 5 {
                    return Err(Fault::Unsupported(format!("pickle protocol {version}")));
                }
            }
            // FRAME: framing only helps streaming readers; the whole input is here.
            0x95 => {
                self.take_array::<8>("FRAME length")?;
            }
            b'.' => return self.pop().map(Some),
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top()?.clone();
                self.stack.push(top);
            }
            b')' => self.push_object(Object::Tuple(Vec::new())),
            b']' | 0x8f => self.push_object(Object::List(Vec::new())), // sets become lists
            b'}' => self.push_object(Object::Dict(Vec::new())),
            b't' => {
                let items = self.pop_mark()?;
                self.push_object(Object::Tuple(items));
            }
            0x85..=0x87 => {
                let count = usize::from(op - 0x84);
                let items = self.pop_n(count)?;
                self.push_object(Object::Tuple(items));
            }
            b'l' | 0x91 => {
                let items = self.pop_mark()?;
                self.push_object(Object::List(items));
            }
            b'd' => {
                let items = self.pop_mark()?;
                let entries = pairs(items)?;
                self.push_object(Object::Dict(entries));
            }
            b'J' => {
                let value = i32::from_le_bytes(self.take_array("BININT")?);
                self.push(Value::Int(value.into()));
            }
            b'K' => {
                let value = self.read_u8("BININT1")?;
                self.push(Value::Int(value.into()));
            }
            b'M' => {
                let value = u16::from_le_bytes(self.take_array("BININT2")?);
                self.push(Value::Int(value.into()));
            }
            0x8a => {
                let len = self.read_u8("LONG1 length")?;
                let bytes = self.take(len.into(), "LONG1")?;
                self.push(decode_long(bytes));
            }
            0x8b => {
                let len = i32::from_le_bytes(self.take_array("LONG4 length")?);
                let len = u64::try_from(len).or_else(|_| corrupt("negative LONG4 length"))?;
                let bytes = self.take(len, "LONG4")?;
                self.push(decode_long(bytes));
            }
            b'G' => {
                let value = f64::from_be_bytes(self.take_array("BINFLOAT")?);
                self.push(Value::Float(value));
            }
            b'N' => self.push(Value::None),
            0x88 => self.push(Value::Bool(true)),
            0x89 => self.push(Value::Bool(false)),
            b'X' => {
                let len = self.read_u32("BINUNICODE length")?;
                self.push_str(len.into())?;
            }
            0x8c => {
                let len = self.read_u8("SHORT_BINUNICODE length")?;
                self.push_str(len.into())?;
            }
            0x8d => {
                let len = u64::from_le_bytes(self.take_array("BINUNICODE8 length")?);
                self.push_str(len)?;
            }
            b'T' => {
                let len = i32::from_le_bytes(self.take_array("BINSTRING length")?);
                let len = u64::try_from(len).or_else(|_| corrupt("negative BINSTRING length"))?;
                self.push_latin1(len)?;
            }
            b'U' => {
                let len = self.read_u8("SHORT_BINSTRING length")?;
                self.push_latin1(len.into())?;
            }
            b'B' => {
                let len = self.read_u32("BINBYTES length")?;
                self.push_bytes(len.into())?;
            }
            b'C' => {
                let len = self.read_u8("SHORT_BINBYTES length")?;
                self.push_bytes(len.into())?;
            }
            0x8e | 0x96 => {
                let len = u64::from_le_bytes(self.take_array("BINBYTES8 length")?);
                self.push_bytes(len)?;
            }
            b'q' => {
                let index = self.read_u8("BINPUT index")?;
                self.memoize(index.into())?;
            }
            b'r' => {
                let index = self.read_u32("LONG_BINPUT index")?;
                self.memoize(index)?;
            }
            0x94 => {
                let index = u32::try_from(self.memo.len()).or_else(|_| corrupt("memo overflow"))?;
                self.memoize(index)?;
            }
            b'h' => {
                let index = self.read_u8("BINGET index")?;
                self.memo_get(index.into())?;
            }
            b'j' => {
                let index = self.read_u32("LONG_BINGET index")?;
                self.memo_get(index)?;
            }
            b'c' => {
                let module = self.take_line("GLOBAL module")?;
                let name = self.take_line("GLOBAL name")?;
                self.push(Value::Global { module, name });
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(module), Value::Str(name)) => {
                        self.push(Value::Global { module, name })
                    }
                    _ => return corrupt("STACK_GLOBAL operands are not strings"),
                }
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let result = torch_pickle::call(self.heap, &callable, &args)?;
                self.push(result);
            }
            0x92 => {
                let _kwargs = self.pop()?;
                let args = self.pop()?;
                let class = self.pop()?;
                let result = torch_pickle::call(self.heap, &class, &args)?;
                self.push(result);
            }
            // BUILD sets instance state (e.g. a state dict's `_metadata`),
            // which no tensor depends on.
            b'b' => {
                self.pop()?;
                self.top()?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.extend_dict(vec![(key, value)])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.extend_dict(pairs(items)?)?;
            }
            b'a' => {
                let item = self.pop()?;
                self.extend_list(vec![item])?;
            }
            b'e' | 0x90 => {
                let items = self.pop_mark()?;
                self.extend_list(items)?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let storage = torch_pickle::persistent_load(self.heap, &pid)?;
                self.push(storage);
            }
            other => return Err(Fault::Unsupported(format!("pickle opcode 0x{other:02x}"))),
        }
        Ok(None)
    }
}

#[cfg(test)]
#[path = "pickle_tests.rs"]
mod tests;
