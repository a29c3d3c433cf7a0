//! Reader and writer for numpy's `.npy` format.
//!
//! A `.npy` file starts with the magic `\x93NUMPY` and a major and a minor version byte.
//! Then comes the header length (`u16` little-endian in version 1.0, `u32` in 2.0 and 3.0)
//! and a header that is a Python dict literal such as
//! `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`. The elements follow. Version 3.0 differs from 2.0 only in allowing UTF-8 in the header.
//!
//! The reader accepts the dtypes of [`Dtype`] in either byte order and C or Fortran order,
//! and requires the data to be exactly as long as the shape says. Structured dtypes are
//! rejected. The writers produce version 1.0 files (2.0 when the header is too long for a
//! `u16` length) with the header padded so the data starts on a 64-byte boundary, as numpy
//! does, and write atomically.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use ndarray::ArrayViewD;

use crate::array::{element_count, parse_type_string, ByteOrder};
pub use crate::array::{Dtype, NumpyArray};
use crate::atomic::write_atomic;
use crate::{DataError, Result};

/// The first six bytes of every `.npy` file.
const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Alignment of the data start, in bytes.
const ALIGNMENT: usize = 64;

/// Reads a `.npy` file.
///
/// # Errors
///
/// - [`DataError::Io`] when the file cannot be read.
/// - [`DataError::Npy`] naming the byte offset for a wrong magic, an unknown version, a
///   malformed header, an unsupported dtype, or data shorter or longer than the shape needs.
pub fn read_npy(path: &Path) -> Result<NumpyArray> {
    let bytes = fs::read(path).map_err(|e| DataError::io("read", path, e))?;
    parse_npy(&bytes, path)
}

/// Parses `.npy` bytes held in memory; `path` only labels errors.
///
/// # Errors
///
/// As [`read_npy`], except for I/O errors.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<NumpyArray> {
    let fail = |offset: usize, expected: &str, found: String| DataError::Npy {
        path: path.to_path_buf(),
        offset: offset as u64,
        expected: expected.to_string(),
        found,
    };

    if bytes.len() < 8 || &bytes[..6] != MAGIC {
        let first_bytes = bytes.iter().take(6).map(|b| format!("{b:02x}")).collect::<Vec<_>>();
        return Err(fail(
            0,
            "magic \\x93NUMPY and a version",
            format!("bytes [{}]", first_bytes.join(" ")),
        ));
    }
    let (header_start, header_length) = match (bytes[6], bytes[7]) {
        (1, 0) => (10, bytes.get(8..10).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))),
        (2 | 3, 0) => {
            (12, bytes.get(8..12).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize))
        }
        (major, minor) => {
            return Err(fail(6, "version 1.0, 2.0 or 3.0", format!("{major}.{minor}")));
        }
    };
    let header_length = header_length.ok_or_else(|| {
        fail(8, "a header length", format!("end of data after {} bytes", bytes.len()))
    })?;
    let header_end = header_start + header_length;
    let raw_header = bytes.get(header_start..header_end).ok_or_else(|| {
        fail(
            bytes.len(),
            &format!("a header of {header_length} bytes"),
            "end of data (file truncated)".into(),
        )
    })?;

    let header = parse_header(raw_header, bytes[6])
        .map_err(|(position, expected, found)| fail(header_start + position, &expected, found))?;
    NumpyArray::from_bytes(
        header.shape,
        header.dtype,
        header.order,
        header.fortran_order,
        &bytes[header_end..],
    )
    .map_err(|message| fail(header_end, "data matching the header", message))
}

/// Writes an `f32` array as a `.npy` file (`<f4`, C order), atomically.
///
/// # Errors
///
/// [`DataError::Io`] when the file cannot be written.
pub fn write_npy_f32(path: &Path, array: &ArrayViewD<f32>) -> Result<()> {
    let mut bytes = header_bytes("<f4", array.shape());
    bytes.reserve(array.len() * 4);
    // `iter` walks in logical C order whatever the view's memory layout.
    for value in array.iter() {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    write_atomic(path, &bytes)
}

/// Writes an `f64` array as a `.npy` file (`<f8`, C order), atomically.
///
/// # Errors
///
/// [`DataError::Io`] when the file cannot be written.
pub fn write_npy_f64(path: &Path, array: &ArrayViewD<f64>) -> Result<()> {
    let mut bytes = header_bytes("<f8", array.shape());
    bytes.reserve(array.len() * 8);
    for value in array.iter() {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    write_atomic(path, &bytes)
}

/// Builds magic, version, length and padded header for a C-order array.
fn header_bytes(descr: &str, shape: &[usize]) -> Vec<u8> {
    let mut shape_text = String::from("(");
    for dim in shape {
        let _ = write!(shape_text, "{dim}, ");
    }
    if shape.len() > 1 {
        shape_text.truncate(shape_text.len() - 2);
    } else if shape.len() == 1 {
        shape_text.truncate(shape_text.len() - 1);
    }
    shape_text.push(')');
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");

    let mut prefix_length = MAGIC.len() + 2 + 2;
    if header.len() + 1 + prefix_length > usize::from(u16::MAX) {
        prefix_length = MAGIC.len() + 2 + 4;
    }
    let padding = (ALIGNMENT - (prefix_length + header.len() + 1) % ALIGNMENT) % ALIGNMENT;
    header.push_str(&" ".repeat(padding));
    header.push('\n');

    let mut bytes = MAGIC.to_vec();
    if prefix_length == 10 {
        bytes.extend_from_slice(&[1, 0]);
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        bytes.extend_from_slice(&[2, 0]);
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    bytes.extend_from_slice(header.as_bytes());
    bytes
}

/// The fields of a `.npy` header.
#[derive(Debug)]
struct Header {
    dtype: Dtype,
    order: ByteOrder,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// Position in the header, expected, found.
type HeaderFailure = (usize, String, String);

fn parse_header(raw: &[u8], major: u8) -> std::result::Result<Header, HeaderFailure> {
    // Versions 1.0 and 2.0 store latin-1, which maps bytes to code points one to one.
    let text: String = if major >= 3 {
        std::str::from_utf8(raw)
            .map_err(|e| {
                (e.valid_up_to(), "UTF-8 header text".to_string(), "invalid byte".to_string())
            })?
            .to_string()
    } else {
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let mut parser = Literal::new(&text);
    let entries = parser.dict().and_then(|entries| {
        parser.skip_space();
        if parser.at_end() {
            Ok(entries)
        } else {
            Err(parser.failure("end of header after the dict", "more text"))
        }
    });
    // The parser counts characters; errors report bytes.
    let entries = entries.map_err(|(position, expected, found)| {
        let byte = text.char_indices().nth(position).map_or(raw.len(), |(byte, _)| byte);
        (byte, expected, found)
    })?;
    header_from_entries(entries, raw.len())
}

fn header_from_entries(
    entries: Vec<(String, Lit)>,
    end: usize,
) -> std::result::Result<Header, HeaderFailure> {
    let missing =
        |key: &str| (end, format!("key '{key}' in the header"), "no such key".to_string());
    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    for (key, value) in entries {
        match (key.as_str(), value) {
            ("descr", Lit::Str(text)) => descr = Some(text),
            ("fortran_order", Lit::Bool(flag)) => fortran_order = Some(flag),
            ("shape", Lit::Tuple(dims)) => shape = Some(dims),
            (key, value) => {
                return Err((
                    0,
                    "keys descr (str), fortran_order (bool), shape (tuple)".into(),
                    format!("{key:?}: {value:?}"),
                ));
            }
        }
    }

    let descr = descr.ok_or_else(|| missing("descr"))?;
    let (dtype, order) = parse_type_string(&descr).ok_or_else(|| {
        (0, "a bool, integer, float32 or float64 descr".to_string(), format!("{descr:?}"))
    })?;
    let shape = shape.ok_or_else(|| missing("shape"))?;
    if element_count(&shape).is_none() {
        return Err((0, "a shape whose size fits in memory".into(), format!("{shape:?}")));
    }
    Ok(Header {
        dtype,
        order: order.unwrap_or_else(ByteOrder::native),
        fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
        shape,
    })
}

/// A Python literal as it can appear in a `.npy` header.
#[derive(Debug)]
enum Lit {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// A parser for the Python dict literal of a `.npy` header.
struct Literal {
    chars: Vec<char>,
    position: usize,
}

impl Literal {
    fn new(text: &str) -> Self {
        Literal { chars: text.chars().collect(), position: 0 }
    }

    fn failure(&self, expected: &str, found: &str) -> HeaderFailure {
        (self.position, expected.to_string(), found.to_string())
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.position).copied()
    }

    fn at_end(&self) -> bool {
        self.position >= self.chars.len()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.position += 1;
        }
    }

    fn expect(&mut self, expected: char) -> std::result::Result<(), HeaderFailure> {
        self.skip_space();
        match self.peek() {
            Some(c) if c == expected => {
                self.position += 1;
                Ok(())
            }
            Some(c) => Err(self.failure(&format!("'{expected}'"), &format!("'{c}'"))),
            None => Err(self.failure(&format!("'{expected}'"), "end of header")),
        }
    }

    /// Consumes `closing` (after an optional comma) and reports whether it was there.
    fn close_or_comma(&mut self, closing: char) -> std::result::Result<bool, HeaderFailure> {
        self.skip_space();
        match self.peek() {
            Some(c) if c == closing => {
                self.position += 1;
                Ok(true)
            }
            Some(',') => {
                self.position += 1;
                self.skip_space();
                let closed = self.peek() == Some(closing);
                if closed {
                    self.position += 1;
                }
                Ok(closed)
            }
            Some(c) => Err(self.failure(&format!("',' or '{closing}'"), &format!("'{c}'"))),
            None => Err(self.failure(&format!("',' or '{closing}'"), "end of header")),
        }
    }

    fn dict(&mut self) -> std::result::Result<Vec<(String, Lit)>, HeaderFailure> {
        self.expect('{')?;
        let mut entries = Vec::new();
        self.skip_space();
        if self.peek() == Some('}') {
            self.position += 1;
            return Ok(entries);
        }
        loop {
            self.skip_space();
            let key = self.string()?;
            self.expect(':')?;
            let value = self.value()?;
            entries.push((key, value));
            if self.close_or_comma('}')? {
                return Ok(entries);
            }
        }
    }

    fn value(&mut self) -> std::result::Result<Lit, HeaderFailure> {
        self.skip_space();
        match self.peek() {
            Some('\'' | '"') => self.string().map(Lit::Str),
            Some('(') => self.tuple().map(Lit::Tuple),
            Some(_) => self.word(),
            None => Err(self.failure("a value", "end of header")),
        }
    }

    fn word(&mut self) -> std::result::Result<Lit, HeaderFailure> {
        let start = self.position;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.position += 1;
        }
        let word: String = self.chars[start..self.position].iter().collect();
        match word.as_str() {
            "True" => Ok(Lit::Bool(true)),
            "False" => Ok(Lit::Bool(false)),
            _ => {
                self.position = start;
                let found = match self.peek() {
                    Some(c) if word.is_empty() => format!("'{c}'"),
                    _ => format!("{word:?}"),
                };
                Err(self.failure("a string, True, False or a tuple", &found))
            }
        }
    }

    fn string(&mut self) -> std::result::Result<String, HeaderFailure> {
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            Some(c) => return Err(self.failure("a quoted string", &format!("'{c}'"))),
            None => return Err(self.failure("a quoted string", "end of header")),
        };
        self.position += 1;
        let start = self.position;
        while let Some(c) = self.peek() {
            if c == quote {
                let text = self.chars[start..self.position].iter().collect();
                self.position += 1;
                return Ok(text);
            }
            if c == '\\' {
                return Err(self.failure("a string without escapes", "'\\'"));
            }
            self.position += 1;
        }
        Err(self.failure("a closing quote", "end of header"))
    }

    fn integer(&mut self) -> std::result::Result<usize, HeaderFailure> {
        let start = self.position;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.position += 1;
        }
        // Python 2 wrote long dimensions with an `L` suffix.
        let digits: String = self.chars[start..self.position].iter().collect();
        if self.peek() == Some('L') {
            self.position += 1;
        }
        digits.parse().map_err(|_| (start, "a dimension that fits in usize".into(), digits))
    }

    fn tuple(&mut self) -> std::result::Result<Vec<usize>, HeaderFailure> {
        self.expect('(')?;
        let mut dims = Vec::new();
        self.skip_space();
        if self.peek() == Some(')') {
            self.position += 1;
            return Ok(dims);
        }
        loop {
            self.skip_space();
            match self.peek() {
                Some(c) if c.is_ascii_digit() => dims.push(self.integer()?),
                Some(c) => {
                    return Err(self.failure("a non-negative integer dimension", &format!("'{c}'")))
                }
                None => return Err(self.failure("a dimension", "end of header")),
            }
            if self.close_or_comma(')')? {
                return Ok(dims);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::{ArrayD, IxDyn};

    use super::*;

    #[test]
    fn header_is_aligned() {
        for shape in [vec![], vec![3], vec![2, 3], vec![100_000, 784, 3]] {
            let bytes = header_bytes("<f4", &shape);

            assert_eq!(bytes.len() % ALIGNMENT, 0, "shape {shape:?}");
            assert_eq!(bytes.last(), Some(&b'\n'));
        }
    }

    #[test]
    fn header_shape_text() {
        let text =
            |shape: &[usize]| String::from_utf8(header_bytes("<f8", shape)[10..].to_vec()).unwrap();

        assert!(text(&[]).contains("'shape': (), }"));
        assert!(text(&[5]).contains("'shape': (5,), }"));
        assert!(text(&[2, 3]).contains("'shape': (2, 3), }"));
    }

    #[test]
    fn round_trip_f64_transposed_view() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.npy");
        let array =
            ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        let transposed = array.t();
        write_npy_f64(&path, &transposed).unwrap();
        let read = read_npy(&path).unwrap();

        assert_eq!(read.shape, vec![3, 2]);
        assert_eq!(read.dtype, Dtype::F64);
        assert_eq!(read.data, transposed.to_owned());
    }

    #[test]
    fn header_errors_name_offset() {
        let mut bytes = header_bytes("<f4", &[2]);
        bytes.extend_from_slice(&[0; 8]);
        let at = bytes.windows(3).position(|w| w == b"<f4").unwrap();
        bytes[at + 1] = b'c';
        bytes[at + 2] = b'8';
        let error = parse_npy(&bytes, Path::new("x.npy")).unwrap_err();

        assert!(matches!(error, DataError::Npy { offset: 10, .. }), "{error}");
        assert!(error.to_string().contains("<c8"), "{error}");
    }

    #[test]
    fn trailing_data_rejected() {
        let mut bytes = header_bytes("<f4", &[2]);
        let data_start = bytes.len();
        bytes.extend_from_slice(&[0; 9]);
        let error = parse_npy(&bytes, Path::new("x.npy")).unwrap_err();

        assert!(
            matches!(error, DataError::Npy { offset, .. } if offset == data_start as u64),
            "{error}"
        );
    }
}
