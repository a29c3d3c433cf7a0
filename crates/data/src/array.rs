//! [`NumpyArray`], the array type returned by the pickle and `.npy` readers, and the element
//! types they accept.

use ndarray::{ArrayD, IxDyn, ShapeBuilder};

/// Element type of a numpy array, as numpy names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    /// `bool` (`b1`, `?`), one byte, 0 or 1.
    Bool,
    /// `uint8` (`u1`).
    U8,
    /// `int8` (`i1`).
    I8,
    /// `uint16` (`u2`).
    U16,
    /// `int16` (`i2`).
    I16,
    /// `uint32` (`u4`).
    U32,
    /// `int32` (`i4`).
    I32,
    /// `uint64` (`u8`); values above 2^53 lose precision in [`NumpyArray::data`].
    U64,
    /// `int64` (`i8`); magnitudes above 2^53 lose precision in [`NumpyArray::data`].
    I64,
    /// `float32` (`f4`).
    F32,
    /// `float64` (`f8`).
    F64,
}

impl Dtype {
    /// Size of one element in bytes.
    pub fn item_size(self) -> usize {
        match self {
            Dtype::Bool | Dtype::U8 | Dtype::I8 => 1,
            Dtype::U16 | Dtype::I16 => 2,
            Dtype::U32 | Dtype::I32 | Dtype::F32 => 4,
            Dtype::U64 | Dtype::I64 | Dtype::F64 => 8,
        }
    }

    /// Returns the numpy name, such as `"float32"`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Bool => "bool",
            Dtype::U8 => "uint8",
            Dtype::I8 => "int8",
            Dtype::U16 => "uint16",
            Dtype::I16 => "int16",
            Dtype::U32 => "uint32",
            Dtype::I32 => "int32",
            Dtype::U64 => "uint64",
            Dtype::I64 => "int64",
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
        }
    }

    /// Parses a numpy type code without byte order, such as `f4`, `u1`, `b1` or `?`.
    fn from_code(code: &str) -> Option<Dtype> {
        let dtype = match code {
            "b1" | "?" => Dtype::Bool,
            "u1" | "B" => Dtype::U8,
            "i1" | "b" => Dtype::I8,
            "u2" => Dtype::U16,
            "i2" => Dtype::I16,
            "u4" => Dtype::U32,
            "i4" => Dtype::I32,
            "u8" => Dtype::U64,
            "i8" => Dtype::I64,
            "f4" => Dtype::F32,
            "f8" => Dtype::F64,
            _ => return None,
        };
        Some(dtype)
    }
}

/// Byte order of the stored elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ByteOrder {
    Little,
    Big,
}

impl ByteOrder {
    /// Maps numpy's byte-order character; `=` (native) and `|` (not applicable) both mean
    /// the order of the machine reading the file.
    pub(crate) fn from_char(symbol: char) -> Option<ByteOrder> {
        match symbol {
            '<' => Some(ByteOrder::Little),
            '>' => Some(ByteOrder::Big),
            '=' | '|' => Some(ByteOrder::native()),
            _ => None,
        }
    }

    pub(crate) fn native() -> ByteOrder {
        if cfg!(target_endian = "big") {
            ByteOrder::Big
        } else {
            ByteOrder::Little
        }
    }
}

/// Parses a numpy type string with an optional byte-order prefix (`<f4`, `>f8`, `|u1`, `f4`).
///
/// Returns the element type and the byte order when the string has a prefix.
pub(crate) fn parse_type_string(descr: &str) -> Option<(Dtype, Option<ByteOrder>)> {
    let mut chars = descr.chars();
    match chars.next() {
        Some(symbol @ ('<' | '>' | '=' | '|')) => {
            let dtype = Dtype::from_code(chars.as_str())?;
            Some((dtype, ByteOrder::from_char(symbol)))
        }
        _ => Dtype::from_code(descr).map(|dtype| (dtype, None)),
    }
}

/// A numpy array read from a file: its shape, element type and values.
///
/// `data` contains the values converted to `f64` in C (row-major) order, whatever order the
/// file stored them in. Every element type except 64-bit integers above 2^53 converts
/// exactly.
#[derive(Debug, Clone, PartialEq)]
pub struct NumpyArray {
    /// Dimensions, outermost first; empty for a 0-d array.
    pub shape: Vec<usize>,
    /// Element type as stored in the file.
    pub dtype: Dtype,
    /// The values, shape `shape`, in standard (C) layout.
    pub data: ArrayD<f64>,
}

impl NumpyArray {
    /// Converts the values to `f32` (rounding `f64` values to nearest).
    pub fn into_f32(self) -> ArrayD<f32> {
        self.data.mapv(|value| value as f32)
    }

    /// Decodes `bytes` holding `shape` elements of `dtype` in the given byte order.
    ///
    /// `fortran_order` means the bytes list the first index fastest. Returns a message
    /// with the expected and the found length when `bytes` has the wrong size.
    pub(crate) fn from_bytes(
        shape: Vec<usize>,
        dtype: Dtype,
        order: ByteOrder,
        fortran_order: bool,
        bytes: &[u8],
    ) -> std::result::Result<NumpyArray, String> {
        let overflow = || format!("shape {shape:?} overflows the address space");
        let count = element_count(&shape).ok_or_else(overflow)?;
        let expected = count.checked_mul(dtype.item_size()).ok_or_else(overflow)?;
        if bytes.len() != expected {
            return Err(format!(
                "{} data bytes, but shape {shape:?} of {} needs {expected}",
                bytes.len(),
                dtype.name()
            ));
        }

        let values = decode_values(dtype, order, bytes);
        let dims = IxDyn(&shape);
        let shape_error = |e| format!("cannot shape {count} values as {shape:?}: {e}");
        let data = if fortran_order {
            let array = ArrayD::from_shape_vec(dims.f(), values).map_err(shape_error)?;
            array.as_standard_layout().into_owned()
        } else {
            ArrayD::from_shape_vec(dims, values).map_err(shape_error)?
        };
        Ok(NumpyArray { shape, dtype, data })
    }
}

/// Multiplies the dimensions, `None` on overflow.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |count, &dim| count.checked_mul(dim))
}

fn decode_values(dtype: Dtype, order: ByteOrder, bytes: &[u8]) -> Vec<f64> {
    let chunks = bytes.chunks_exact(dtype.item_size());
    match dtype {
        Dtype::Bool => bytes.iter().map(|&b| f64::from(u8::from(b != 0))).collect(),
        Dtype::U8 => bytes.iter().map(|&b| f64::from(b)).collect(),
        Dtype::I8 => bytes.iter().map(|&b| f64::from(b as i8)).collect(),
        Dtype::U16 => chunks.map(|c| f64::from(u16::from_le_bytes(ordered(c, order)))).collect(),
        Dtype::I16 => chunks.map(|c| f64::from(i16::from_le_bytes(ordered(c, order)))).collect(),
        Dtype::U32 => chunks.map(|c| f64::from(u32::from_le_bytes(ordered(c, order)))).collect(),
        Dtype::I32 => chunks.map(|c| f64::from(i32::from_le_bytes(ordered(c, order)))).collect(),
        Dtype::U64 => chunks.map(|c| u64::from_le_bytes(ordered(c, order)) as f64).collect(),
        Dtype::I64 => chunks.map(|c| i64::from_le_bytes(ordered(c, order)) as f64).collect(),
        Dtype::F32 => chunks.map(|c| f64::from(f32::from_le_bytes(ordered(c, order)))).collect(),
        Dtype::F64 => chunks.map(|c| f64::from_le_bytes(ordered(c, order))).collect(),
    }
}

/// Copies one element's bytes into little-endian order.
fn ordered<const N: usize>(chunk: &[u8], order: ByteOrder) -> [u8; N] {
    let mut raw = [0u8; N];
    raw.copy_from_slice(chunk);
    if order == ByteOrder::Big {
        raw.reverse();
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_string_orders() {
        assert_eq!(parse_type_string("<f4"), Some((Dtype::F32, Some(ByteOrder::Little))));
        assert_eq!(parse_type_string(">f8"), Some((Dtype::F64, Some(ByteOrder::Big))));
        assert_eq!(parse_type_string("f8"), Some((Dtype::F64, None)));
        assert_eq!(parse_type_string("<U4"), None);
    }

    #[test]
    fn fortran_bytes_become_c_order() {
        // Fortran order lists the first index fastest: [[1, 2, 3], [4, 5, 6]] is 1 4 2 5 3 6.
        let bytes: Vec<u8> = [1u8, 4, 2, 5, 3, 6].to_vec();
        let array =
            NumpyArray::from_bytes(vec![2, 3], Dtype::U8, ByteOrder::Little, true, &bytes).unwrap();

        assert_eq!(array.data.as_slice().unwrap(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn big_endian_f32() {
        let bytes = 1.5f32.to_be_bytes();
        let array =
            NumpyArray::from_bytes(vec![1], Dtype::F32, ByteOrder::Big, false, &bytes).unwrap();

        assert_eq!(array.data[[0]], 1.5);
    }

    #[test]
    fn wrong_length_is_rejected() {
        let error = NumpyArray::from_bytes(vec![3], Dtype::F64, ByteOrder::Little, false, &[0; 16])
            .unwrap_err();

        assert!(error.contains("16 data bytes, but shape [3] of"), "{error}");
        assert!(error.contains("needs 24"), "{error}");
    }
}
