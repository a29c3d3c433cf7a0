//! Pickled numpy arrays: a restricted unpickler that accepts numpy arrays and nothing else,
//! and a writer.
//!
//! Python's pickle format is a small stack machine. This reader runs the opcodes that
//! `pickle.dump(array)` emits for protocols 2 to 5 and resolves only the globals a numpy
//! array needs:
//!
//! | global | role |
//! |---|---|
//! | `numpy.core.multiarray._reconstruct` (numpy 1.x), `numpy._core.multiarray._reconstruct` (2.x) | empty array, filled by `BUILD` |
//! | `numpy.ndarray`, `numpy.dtype` | array type and element type |
//! | `_codecs.encode` | protocol 2 stores bytes as a latin-1 string |
//! | `numpy.core.numeric._frombuffer`, `numpy._core.numeric._frombuffer` | protocol 5 form |
//!
//! [`write_numpy_pickle_f32`] and [`write_numpy_pickle_f64`] write the `_reconstruct` form
//! with protocol 4.
//!
//! Any other global is rejected before anything is called, so reading an untrusted file
//! runs no code. Lists and dicts are parsed but their contents are discarded, because no
//! numpy array needs them. Out-of-band buffers (protocol 5 `NEXT_BUFFER`) and object arrays
//! are not supported.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::rc::Rc;

use ndarray::ArrayViewD;

use crate::array::{parse_type_string, ByteOrder};
pub use crate::array::{Dtype, NumpyArray};
use crate::atomic::write_atomic;
use crate::{DataError, Result};

/// Highest pickle protocol this reader accepts.
const MAX_PROTOCOL: u8 = 5;

/// Deepest tuple nesting accepted. A numpy array pickle nests three deep; the limit keeps a
/// crafted pickle of millions of nested tuples from overflowing the stack when they are
/// dropped.
const MAX_TUPLE_DEPTH: usize = 32;

/// Reads a pickled numpy array.
///
/// # Errors
///
/// - [`DataError::Io`] when the file cannot be read.
/// - [`DataError::Pickle`] naming the byte offset for a truncated or malformed pickle, an
///   unknown opcode, a global outside the numpy allow-list, an unsupported dtype, or a
///   pickle whose top object is not a numpy array.
///
/// # Example
///
/// ```no_run
/// # fn main() -> handgrad_data::Result<()> {
/// let array = handgrad_data::pickle::read_numpy_pickle("features-m6.pk".as_ref())?;
/// println!("{:?} {}", array.shape, array.dtype.name());
/// # Ok(())
/// # }
/// ```
pub fn read_numpy_pickle(path: &Path) -> Result<NumpyArray> {
    let bytes = fs::read(path).map_err(|e| DataError::io("read", path, e))?;
    parse_numpy_pickle(&bytes, path)
}

/// Parses a pickled numpy array held in memory; `path` only labels errors.
///
/// # Errors
///
/// As [`read_numpy_pickle`], except for I/O errors.
pub fn parse_numpy_pickle(bytes: &[u8], path: &Path) -> Result<NumpyArray> {
    let mut machine = Machine::new(bytes);
    machine.run().map_err(|(offset, message)| DataError::Pickle {
        path: path.to_path_buf(),
        offset: offset as u64,
        message,
    })
}

/// Writes an `f32` array as a protocol 4 pickle that `pickle.load` turns into a numpy
/// array, atomically.
///
/// The pickle names numpy 2.x's `numpy._core.multiarray._reconstruct`, the name
/// `pickle.dumps(array, protocol=4)` writes under numpy 2.x.
///
/// # Errors
///
/// [`DataError::Io`] when the file cannot be written.
pub fn write_numpy_pickle_f32(path: &Path, array: &ArrayViewD<f32>) -> Result<()> {
    let mut data = Vec::with_capacity(array.len() * 4);
    for value in array.iter() {
        data.extend_from_slice(&value.to_le_bytes());
    }
    write_atomic(path, &array_pickle(array.shape(), "f4", &data))
}

/// Writes an `f64` array as a protocol 4 pickle, as [`write_numpy_pickle_f32`] does.
///
/// # Errors
///
/// [`DataError::Io`] when the file cannot be written.
pub fn write_numpy_pickle_f64(path: &Path, array: &ArrayViewD<f64>) -> Result<()> {
    let mut data = Vec::with_capacity(array.len() * 8);
    for value in array.iter() {
        data.extend_from_slice(&value.to_le_bytes());
    }
    write_atomic(path, &array_pickle(array.shape(), "f8", &data))
}

/// Encodes `_reconstruct(ndarray, (0,), b'b')` followed by `BUILD` with the state
/// `(1, shape, dtype('<code'), False, data)`, the form numpy's `ndarray.__reduce__` uses.
fn array_pickle(shape: &[usize], code: &str, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, 4];
    push_global(&mut out, "numpy._core.multiarray", "_reconstruct");
    push_global(&mut out, "numpy", "ndarray");
    out.extend_from_slice(&[b'K', 0, 0x85, b'C', 1, b'b', 0x87, b'R']);

    out.extend_from_slice(&[b'(', b'K', 1, b'(']);
    for &dim in shape {
        // LONG1 with 8 bytes encodes any dimension up to i64::MAX.
        out.extend_from_slice(&[0x8a, 8]);
        out.extend_from_slice(&(dim as u64).to_le_bytes());
    }
    out.push(b't');

    push_global(&mut out, "numpy", "dtype");
    push_short_str(&mut out, code);
    out.extend_from_slice(&[0x89, 0x88, 0x87, b'R']);
    out.extend_from_slice(&[b'(', b'K', 3]);
    push_short_str(&mut out, "<");
    // No subarray, field names or fields; element size and alignment -1 (derived).
    out.extend_from_slice(b"NNN");
    out.push(b'J');
    out.extend_from_slice(&(-1i32).to_le_bytes());
    out.push(b'J');
    out.extend_from_slice(&(-1i32).to_le_bytes());
    out.extend_from_slice(&[b'K', 0, b't', b'b']);

    out.push(0x89);
    out.push(0x8e);
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(data);
    // Close the state tuple, BUILD the array, STOP.
    out.extend_from_slice(b"tb.");
    out
}

fn push_short_str(out: &mut Vec<u8>, text: &str) {
    out.push(0x8c);
    out.push(text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

fn push_global(out: &mut Vec<u8>, module: &str, name: &str) {
    push_short_str(out, module);
    push_short_str(out, name);
    out.push(0x93);
}

/// A global the unpickler is allowed to resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Global {
    Reconstruct,
    Ndarray,
    Dtype,
    Encode,
    FromBuffer,
}

impl Global {
    fn resolve(module: &str, name: &str) -> Option<Global> {
        let global = match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
                Global::Reconstruct
            }
            ("numpy", "ndarray") => Global::Ndarray,
            ("numpy", "dtype") => Global::Dtype,
            ("_codecs", "encode") => Global::Encode,
            ("numpy.core.numeric" | "numpy._core.numeric", "_frombuffer") => Global::FromBuffer,
            _ => return None,
        };
        Some(global)
    }
}

/// A dtype under construction: the type from `numpy.dtype(...)`, the byte order from the
/// state that `BUILD` applies.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DtypeValue {
    dtype: Dtype,
    order: ByteOrder,
}

/// A value on the unpickler's stack.
#[derive(Debug, Clone)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float,
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    /// The items and the nesting depth: 1 for a tuple without tuples inside.
    Tuple(Rc<[Value]>, usize),
    List,
    Dict,
    Global(Global),
    Dtype(DtypeValue),
    EmptyArray,
    Array(Rc<NumpyArray>),
}

impl Value {
    /// Describes the value briefly for error messages.
    fn kind(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(value) => format!("bool {value}"),
            Value::Int(value) => format!("int {value}"),
            Value::Float => "float".into(),
            Value::Str(text) => format!("str {:?}", truncate(text)),
            Value::Bytes(bytes) => format!("bytes of length {}", bytes.len()),
            Value::Tuple(items, _) => format!("tuple of length {}", items.len()),
            Value::List => "list".into(),
            Value::Dict => "dict".into(),
            Value::Global(global) => format!("global {global:?}"),
            Value::Dtype(value) => format!("dtype {}", value.dtype.name()),
            Value::EmptyArray => "array without contents".into(),
            Value::Array(_) => "numpy array".into(),
        }
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Failure inside the machine: the byte offset of the opcode and a message.
type Failure = (usize, String);

type Step<T> = std::result::Result<T, String>;

struct Machine<'a> {
    bytes: &'a [u8],
    position: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

impl<'a> Machine<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Machine { bytes, position: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new() }
    }

    fn run(&mut self) -> std::result::Result<NumpyArray, Failure> {
        loop {
            let start = self.position;
            let Some(&opcode) = self.bytes.get(start) else {
                return Err((start, "expected an opcode, found end of data (no STOP)".into()));
            };
            self.position += 1;
            match self.execute(opcode) {
                Ok(Some(value)) => return into_array(value).map_err(|message| (start, message)),
                Ok(None) => {}
                Err(message) => return Err((start, message)),
            }
        }
    }

    /// Runs one opcode; returns the final value at `STOP`.
    fn execute(&mut self, opcode: u8) -> Step<Option<Value>> {
        match opcode {
            b'.' => return self.pop().map(Some),
            0x80 => self.protocol()?,
            0x95 => {
                self.take(8)?;
            }
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.stack.last().cloned().ok_or("DUP on an empty stack")?;
                self.stack.push(top);
            }
            _ => self.push_value(opcode)?,
        }
        Ok(None)
    }

    /// Runs the opcodes that push or combine values.
    fn push_value(&mut self, opcode: u8) -> Step<()> {
        let value = match opcode {
            b'N' => Value::None,
            0x88 => Value::Bool(true),
            0x89 => Value::Bool(false),
            b'K' => Value::Int(i64::from(self.take(1)?[0])),
            b'M' => Value::Int(i64::from(u16::from_le_bytes(self.array()?))),
            b'J' => Value::Int(i64::from(i32::from_le_bytes(self.array()?))),
            0x8a => self.long1()?,
            b'I' => self.text_int()?,
            b'G' => {
                self.take(8)?;
                Value::Float
            }
            b'X' => self.unicode(4)?,
            0x8c => self.unicode(1)?,
            0x8d => self.unicode(8)?,
            b'B' | b'T' => self.sized_bytes(4)?,
            b'C' | b'U' => self.sized_bytes(1)?,
            0x8e | 0x96 => self.sized_bytes(8)?,
            b')' => tuple(Vec::new())?,
            0x85..=0x87 => self.small_tuple(usize::from(opcode - 0x84))?,
            b't' => tuple(self.pop_mark()?)?,
            b']' | b'}' => empty_container(opcode),
            b'l' | b'd' => {
                self.pop_mark()?;
                empty_container(if opcode == b'l' { b']' } else { b'}' })
            }
            b'a' | b'e' | b's' | b'u' => return self.discard_items(opcode),
            b'c' => self.text_global()?,
            0x93 => self.stack_global()?,
            b'R' => self.reduce()?,
            b'b' => self.build()?,
            b'p' | b'q' | b'r' | 0x94 => return self.put(opcode),
            b'g' | b'h' | b'j' => self.get(opcode)?,
            0x97 | 0x98 => return Err("out-of-band buffers (protocol 5) are not supported".into()),
            b'V' | b'S' | b'F' | b'L' | b'P' => {
                return Err(format!(
                    "unsupported pickle opcode 0x{opcode:02x} ('{}'), a text opcode of \
                     protocol 0; save the array with protocol 2 or later",
                    char::from(opcode)
                ))
            }
            _ => return Err(format!("unsupported pickle opcode 0x{opcode:02x}")),
        };
        self.stack.push(value);
        Ok(())
    }

    fn protocol(&mut self) -> Step<()> {
        let version = self.take(1)?[0];
        if version > MAX_PROTOCOL {
            return Err(format!("expected pickle protocol 2 to {MAX_PROTOCOL}, found {version}"));
        }
        Ok(())
    }

    fn take(&mut self, count: usize) -> Step<&'a [u8]> {
        let end = self.position.checked_add(count).filter(|&end| end <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!(
                "expected {count} more bytes, found {} (file truncated)",
                self.bytes.len() - self.position
            ));
        };
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Step<[u8; N]> {
        let mut raw = [0u8; N];
        raw.copy_from_slice(self.take(N)?);
        Ok(raw)
    }

    /// Reads a little-endian length of `width` bytes followed by that many bytes.
    fn length_prefixed(&mut self, width: usize) -> Step<&'a [u8]> {
        let mut raw = [0u8; 8];
        raw[..width].copy_from_slice(self.take(width)?);
        let length = usize::try_from(u64::from_le_bytes(raw)).map_err(|e| e.to_string())?;
        self.take(length)
    }

    fn unicode(&mut self, width: usize) -> Step<Value> {
        let raw = self.length_prefixed(width)?;
        let text = std::str::from_utf8(raw).map_err(|e| format!("expected UTF-8 text, {e}"))?;
        Ok(Value::Str(Rc::from(text)))
    }

    fn sized_bytes(&mut self, width: usize) -> Step<Value> {
        Ok(Value::Bytes(Rc::from(self.length_prefixed(width)?)))
    }

    fn long1(&mut self) -> Step<Value> {
        let length = usize::from(self.take(1)?[0]);
        let raw = self.take(length)?;
        if length > 8 {
            return Err(format!("expected an integer of at most 8 bytes, found {length} bytes"));
        }
        // Two's complement, little-endian, sign-extended from the last byte.
        let fill = if raw.last().is_some_and(|&b| b & 0x80 != 0) { 0xff } else { 0 };
        let mut full = [fill; 8];
        full[..length].copy_from_slice(raw);
        Ok(Value::Int(i64::from_le_bytes(full)))
    }

    fn line(&mut self) -> Step<&'a str> {
        let rest = &self.bytes[self.position..];
        let end =
            rest.iter().position(|&b| b == b'\n').ok_or("expected a newline, found end of data")?;
        let line =
            std::str::from_utf8(&rest[..end]).map_err(|e| format!("expected ASCII text, {e}"))?;
        self.position += end + 1;
        Ok(line)
    }

    fn text_int(&mut self) -> Step<Value> {
        let line = self.line()?;
        match line {
            "00" => Ok(Value::Bool(false)),
            "01" => Ok(Value::Bool(true)),
            _ => line
                .parse()
                .map(Value::Int)
                .map_err(|_| format!("expected an integer, found {line:?}")),
        }
    }

    fn text_global(&mut self) -> Step<Value> {
        let module = self.line()?;
        let name = self.line()?;
        resolve(module, name)
    }

    fn stack_global(&mut self) -> Step<Value> {
        let name = self.pop()?;
        let module = self.pop()?;
        match (&module, &name) {
            (Value::Str(module), Value::Str(name)) => resolve(module, name),
            _ => Err(format!(
                "STACK_GLOBAL expected two strings, found {} and {}",
                module.kind(),
                name.kind()
            )),
        }
    }

    fn small_tuple(&mut self, count: usize) -> Step<Value> {
        let available = self.stack.len().saturating_sub(self.marks.last().copied().unwrap_or(0));
        if available < count {
            return Err(format!("expected {count} stack items for a tuple, found {available}"));
        }
        let items = self.stack.split_off(self.stack.len() - count);
        tuple(items)
    }

    fn discard_items(&mut self, opcode: u8) -> Step<()> {
        match opcode {
            b'a' => {
                self.pop()?;
            }
            b's' => {
                self.pop()?;
                self.pop()?;
            }
            _ => {
                self.pop_mark()?;
            }
        }
        match self.stack.last() {
            Some(Value::List | Value::Dict) => Ok(()),
            Some(other) => {
                Err(format!("expected a list or dict to add items to, found {}", other.kind()))
            }
            None => Err("expected a list or dict to add items to, found an empty stack".into()),
        }
    }

    fn reduce(&mut self) -> Step<Value> {
        let arguments = self.pop()?;
        let callable = self.pop()?;
        let Value::Tuple(arguments, _) = arguments else {
            return Err(format!("REDUCE expected an argument tuple, found {}", arguments.kind()));
        };
        match callable {
            Value::Global(Global::Reconstruct) => reconstruct(&arguments),
            Value::Global(Global::Dtype) => new_dtype(&arguments),
            Value::Global(Global::Encode) => encode_latin1(&arguments),
            Value::Global(Global::FromBuffer) => from_buffer(&arguments),
            other => Err(format!("REDUCE cannot call {}", other.kind())),
        }
    }

    fn build(&mut self) -> Step<Value> {
        let state = self.pop()?;
        let target = self.pop()?;
        let Value::Tuple(state, _) = state else {
            return Err(format!("BUILD expected a state tuple, found {}", state.kind()));
        };
        match target {
            Value::Dtype(dtype) => set_byte_order(dtype, &state),
            Value::EmptyArray => fill_array(&state),
            other => Err(format!("BUILD cannot set the state of {}", other.kind())),
        }
    }

    fn put(&mut self, opcode: u8) -> Step<()> {
        let key = match opcode {
            b'p' => self.line()?.parse().map_err(|_| "expected a memo index")?,
            b'q' => u32::from(self.take(1)?[0]),
            b'r' => u32::from_le_bytes(self.array()?),
            _ => u32::try_from(self.memo.len()).map_err(|e| e.to_string())?,
        };
        let top = self.stack.last().cloned().ok_or("memo store on an empty stack")?;
        self.memo.insert(key, top);
        Ok(())
    }

    fn get(&mut self, opcode: u8) -> Step<Value> {
        let key = match opcode {
            b'g' => self.line()?.parse().map_err(|_| "expected a memo index")?,
            b'h' => u32::from(self.take(1)?[0]),
            _ => u32::from_le_bytes(self.array()?),
        };
        self.memo.get(&key).cloned().ok_or_else(|| format!("memo index {key} was never stored"))
    }

    fn pop(&mut self) -> Step<Value> {
        if self.marks.last().is_some_and(|&mark| mark >= self.stack.len()) {
            return Err("expected a value, found a MARK".into());
        }
        self.stack.pop().ok_or_else(|| "expected a value, found an empty stack".into())
    }

    fn pop_mark(&mut self) -> Step<Vec<Value>> {
        let mark = self.marks.pop().ok_or("expected a MARK on the stack, found none")?;
        if mark > self.stack.len() {
            return Err("the MARK was removed from the stack".into());
        }
        Ok(self.stack.split_off(mark))
    }
}

/// Builds a tuple, refusing nesting deeper than [`MAX_TUPLE_DEPTH`].
fn tuple(items: Vec<Value>) -> Step<Value> {
    let inner = items
        .iter()
        .map(|item| match item {
            Value::Tuple(_, depth) => *depth,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    if inner >= MAX_TUPLE_DEPTH {
        return Err(format!(
            "expected tuples nested at most {MAX_TUPLE_DEPTH} deep, found deeper nesting"
        ));
    }
    Ok(Value::Tuple(Rc::from(items), inner + 1))
}

fn empty_container(opcode: u8) -> Value {
    if opcode == b']' {
        Value::List
    } else {
        Value::Dict
    }
}

fn resolve(module: &str, name: &str) -> Step<Value> {
    Global::resolve(module, name).map(Value::Global).ok_or_else(|| {
        format!(
            "global '{module}.{name}' is not allowed: only _reconstruct, ndarray, dtype, \
             _codecs.encode and _frombuffer from numpy array pickles are"
        )
    })
}

fn into_array(value: Value) -> Step<NumpyArray> {
    match value {
        Value::Array(array) => Ok(Rc::try_unwrap(array).unwrap_or_else(|shared| (*shared).clone())),
        other => {
            Err(format!("expected a numpy array as the pickled object, found {}", other.kind()))
        }
    }
}

/// `_reconstruct(numpy.ndarray, (0,), b'b')`: an empty array that `BUILD` fills.
fn reconstruct(arguments: &[Value]) -> Step<Value> {
    match arguments.first() {
        Some(Value::Global(Global::Ndarray)) => Ok(Value::EmptyArray),
        Some(other) => Err(format!("_reconstruct expected numpy.ndarray, found {}", other.kind())),
        None => Err("_reconstruct expected arguments, found none".into()),
    }
}

/// `numpy.dtype('f4', False, True)`; the byte order comes later from `BUILD`.
fn new_dtype(arguments: &[Value]) -> Step<Value> {
    let code = match arguments.first() {
        Some(Value::Str(text)) => text.to_string(),
        Some(Value::Bytes(raw)) => String::from_utf8_lossy(raw).into_owned(),
        Some(other) => {
            return Err(format!("numpy.dtype expected a type string, found {}", other.kind()))
        }
        None => return Err("numpy.dtype expected a type string, found no arguments".into()),
    };
    let (dtype, order) = parse_type_string(&code).ok_or_else(|| {
        format!("expected a bool, integer, float32 or float64 dtype, found {code:?}")
    })?;
    Ok(Value::Dtype(DtypeValue { dtype, order: order.unwrap_or_else(ByteOrder::native) }))
}

/// Dtype state `(version, byteorder, subarray, names, fields, elsize, alignment, flags)`.
fn set_byte_order(mut dtype: DtypeValue, state: &[Value]) -> Step<Value> {
    let symbol = match state.get(1) {
        Some(Value::Str(text)) => text.chars().next(),
        Some(Value::Bytes(raw)) => raw.first().map(|&b| char::from(b)),
        _ => None,
    };
    let order = symbol.and_then(ByteOrder::from_char).ok_or_else(|| {
        format!(
            "expected a byte order '<', '>', '|' or '=' in the dtype state, found {:?}",
            state.get(1).map(Value::kind)
        )
    })?;
    if state.get(2..5).is_some_and(|rest| rest.iter().any(|v| !matches!(v, Value::None))) {
        return Err("structured and subarray dtypes are not supported".into());
    }
    dtype.order = order;
    Ok(Value::Dtype(dtype))
}

/// Array state `(version, shape, dtype, is_fortran, data)`; very old pickles omit `version`.
fn fill_array(state: &[Value]) -> Step<Value> {
    let fields = match state.len() {
        5 => &state[1..],
        4 => state,
        found => return Err(format!("expected an array state of 4 or 5 items, found {found}")),
    };
    let shape = shape_of(&fields[0])?;
    let Value::Dtype(dtype) = &fields[1] else {
        return Err(format!("expected a dtype in the array state, found {}", fields[1].kind()));
    };
    let fortran_order = match fields[2] {
        Value::Bool(flag) => flag,
        Value::Int(flag) => flag != 0,
        ref other => return Err(format!("expected a Fortran-order flag, found {}", other.kind())),
    };
    let bytes = match &fields[3] {
        Value::Bytes(raw) => raw.clone(),
        Value::List => return Err("object arrays are not supported".into()),
        other => return Err(format!("expected the array data as bytes, found {}", other.kind())),
    };
    let array = NumpyArray::from_bytes(shape, dtype.dtype, dtype.order, fortran_order, &bytes)?;
    Ok(Value::Array(Rc::new(array)))
}

/// `_frombuffer(buffer, dtype, shape, order)` from protocol 5.
fn from_buffer(arguments: &[Value]) -> Step<Value> {
    let [buffer, dtype, shape, order] = arguments else {
        return Err(format!("_frombuffer expected 4 arguments, found {}", arguments.len()));
    };
    let Value::Bytes(bytes) = buffer else {
        return Err(format!("_frombuffer expected a bytes buffer, found {}", buffer.kind()));
    };
    let Value::Dtype(dtype) = dtype else {
        return Err(format!("_frombuffer expected a dtype, found {}", dtype.kind()));
    };
    let fortran_order = match order {
        Value::Str(text) if &**text == "C" => false,
        Value::Str(text) if &**text == "F" => true,
        other => return Err(format!("expected order 'C' or 'F', found {}", other.kind())),
    };
    let shape = shape_of(shape)?;
    let array = NumpyArray::from_bytes(shape, dtype.dtype, dtype.order, fortran_order, bytes)?;
    Ok(Value::Array(Rc::new(array)))
}

/// `_codecs.encode(text, 'latin1')`: protocol 2 stores each byte as one code point.
fn encode_latin1(arguments: &[Value]) -> Step<Value> {
    let [Value::Str(text), Value::Str(encoding)] = arguments else {
        return Err("_codecs.encode expected (str, encoding)".into());
    };
    if !matches!(&**encoding, "latin1" | "latin-1" | "iso-8859-1" | "iso8859-1") {
        return Err(format!("expected encoding 'latin1', found {encoding:?}"));
    }
    let bytes = text
        .chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| format!("character {c:?} is not latin-1")))
        .collect::<Step<Vec<u8>>>()?;
    Ok(Value::Bytes(Rc::from(bytes)))
}

fn shape_of(value: &Value) -> Step<Vec<usize>> {
    let Value::Tuple(items, _) = value else {
        return Err(format!("expected a shape tuple, found {}", value.kind()));
    };
    items
        .iter()
        .map(|item| match item {
            Value::Int(dim) => {
                usize::try_from(*dim).map_err(|_| format!("negative dimension {dim}"))
            }
            other => Err(format!("expected an integer dimension, found {}", other.kind())),
        })
        .collect()
}
