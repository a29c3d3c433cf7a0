//! Reader for the IDX format of the MNIST files, raw or gzip-compressed.
//!
//! An IDX file is a 4-byte magic number `00 00 TT NN` (element type `TT`, `NN` dimensions),
//! `NN` big-endian `u32` dimension sizes, then the elements in C order. Only unsigned bytes
//! (`TT = 0x08`), the MNIST element type, are accepted. A file starting with the gzip magic
//! `1f 8b` is decompressed first; trailing gzip members are not read.
//!
//! Payloads larger than [`MAX_PAYLOAD_BYTES`] are rejected before any is read, so a small
//! gzip file that declares and holds gigabytes of zeros cannot exhaust memory.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::{DataError, Result};

/// The element type code for unsigned bytes.
const TYPE_U8: u8 = 0x08;

/// Largest payload [`read_idx`] accepts: 1 GiB, twenty times the MNIST training images
/// (47 MB). Dimensions that declare more are rejected before any payload byte is read.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 30;

/// Bytes a gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimension sizes, outermost first (for MNIST images `[N, 28, 28]`).
    pub dims: Vec<usize>,
    /// The elements in C order; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes, raw or gzip-compressed.
///
/// # Errors
///
/// - [`DataError::Io`] when the file cannot be read.
/// - [`DataError::Gzip`] for a corrupt or truncated gzip stream.
/// - [`DataError::Idx`] for a wrong magic number, an element type other than `u8`, a
///   truncated header or payload, bytes after the payload, or dimensions declaring more
///   than [`MAX_PAYLOAD_BYTES`].
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let bytes = fs::read(path).map_err(|e| DataError::io("read", path, e))?;
    parse_idx(&bytes, path)
}

/// Parses IDX bytes held in memory; `path` only labels errors.
///
/// # Errors
///
/// As [`read_idx`], except for I/O errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray> {
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut reader = CountingReader::new(GzDecoder::new(bytes), path, true);
        parse_stream(&mut reader)
    } else {
        let mut reader = CountingReader::new(bytes, path, false);
        parse_stream(&mut reader)
    }
}

/// Tracks the offset in the (decompressed) stream so errors can name it.
struct CountingReader<'p, R> {
    inner: R,
    offset: u64,
    path: &'p Path,
    gzip: bool,
}

impl<'p, R: Read> CountingReader<'p, R> {
    fn new(inner: R, path: &'p Path, gzip: bool) -> Self {
        CountingReader { inner, offset: 0, path, gzip }
    }

    fn error(
        &self,
        offset: u64,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> DataError {
        DataError::Idx {
            path: self.path_buf(),
            offset,
            expected: expected.into(),
            found: found.into(),
        }
    }

    fn path_buf(&self) -> PathBuf {
        self.path.to_path_buf()
    }

    /// Reads up to `limit` bytes; fewer only at the end of the stream.
    fn read_up_to(&mut self, limit: u64) -> Result<Vec<u8>> {
        let mut buffer = Vec::new();
        // `take` grows the buffer as data arrives, so a header that claims a huge size
        // cannot force a huge allocation.
        let result = (&mut self.inner).take(limit).read_to_end(&mut buffer);
        self.offset += buffer.len() as u64;
        match result {
            Ok(_) => Ok(buffer),
            Err(source) => Err(self.read_error(source)),
        }
    }

    fn read_error(&self, source: io::Error) -> DataError {
        if self.gzip {
            DataError::Gzip { path: self.path_buf(), offset: self.offset, source }
        } else {
            DataError::io("read", self.path, source)
        }
    }

    /// Reads exactly `count` bytes of the header part named `part`.
    fn read_exact_part(&mut self, count: usize, part: &str) -> Result<Vec<u8>> {
        let start = self.offset;
        let bytes = self.read_up_to(count as u64)?;
        if bytes.len() < count {
            return Err(self.error(
                start + bytes.len() as u64,
                format!("{count} bytes of {part}"),
                format!("end of data after {} bytes", bytes.len()),
            ));
        }
        Ok(bytes)
    }
}

fn parse_stream<R: Read>(reader: &mut CountingReader<'_, R>) -> Result<IdxArray> {
    let magic = reader.read_exact_part(4, "magic number")?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(reader.error(
            0,
            "magic number starting 00 00",
            format!("{:02x} {:02x}", magic[0], magic[1]),
        ));
    }
    if magic[2] != TYPE_U8 {
        return Err(reader.error(
            2,
            "element type 0x08 (unsigned byte)",
            format!("0x{:02x} ({})", magic[2], type_name(magic[2])),
        ));
    }
    if magic[3] == 0 {
        return Err(reader.error(3, "at least one dimension", "0 dimensions"));
    }

    let dims = read_dims(reader, usize::from(magic[3]))?;
    let payload_offset = reader.offset;
    let count =
        dims.iter().try_fold(1usize, |count, &dim| count.checked_mul(dim)).ok_or_else(|| {
            reader.error(4, "dimensions whose product fits in memory", format!("{dims:?}"))
        })?;
    if count > MAX_PAYLOAD_BYTES {
        return Err(reader.error(
            4,
            format!("dimensions declaring at most {MAX_PAYLOAD_BYTES} payload bytes"),
            format!("{dims:?}, {count} bytes"),
        ));
    }

    let data = reader.read_up_to((count as u64).saturating_add(1))?;
    if data.len() < count {
        return Err(reader.error(
            payload_offset + data.len() as u64,
            format!("{count} payload bytes for dimensions {dims:?}"),
            format!("end of data after {} bytes (file truncated)", data.len()),
        ));
    }
    if data.len() > count {
        return Err(reader.error(
            payload_offset + count as u64,
            format!("end of data after {count} payload bytes for dimensions {dims:?}"),
            "trailing bytes",
        ));
    }
    Ok(IdxArray { dims, data })
}

fn read_dims<R: Read>(reader: &mut CountingReader<'_, R>, ndims: usize) -> Result<Vec<usize>> {
    let raw = reader.read_exact_part(4 * ndims, "dimension sizes")?;
    let dims = raw
        .chunks_exact(4)
        .map(|chunk| u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) as usize)
        .collect();
    Ok(dims)
}

fn type_name(code: u8) -> &'static str {
    match code {
        0x08 => "unsigned byte",
        0x09 => "signed byte",
        0x0B => "short",
        0x0C => "int",
        0x0D => "float",
        0x0E => "double",
        _ => "unknown type",
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;

    use super::*;

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0, 0, TYPE_U8, dims.len() as u8];
        for dim in dims {
            bytes.extend_from_slice(&dim.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn parse(bytes: &[u8]) -> Result<IdxArray> {
        parse_idx(bytes, Path::new("test.idx"))
    }

    fn idx_error(bytes: &[u8]) -> (u64, String, String) {
        match parse(bytes) {
            Err(DataError::Idx { offset, expected, found, .. }) => (offset, expected, found),
            other => panic!("expected an IDX error, got {other:?}"),
        }
    }

    #[test]
    fn raw_and_gzip_agree() {
        let raw = idx_bytes(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let expected = IdxArray { dims: vec![2, 3], data: vec![1, 2, 3, 4, 5, 6] };

        assert_eq!(parse(&raw).unwrap(), expected);
        assert_eq!(parse(&gzip(&raw)).unwrap(), expected);
    }

    #[test]
    fn wrong_magic() {
        let mut raw = idx_bytes(&[1], &[7]);
        raw[1] = 0x42;
        let (offset, expected, found) = idx_error(&raw);

        assert_eq!(offset, 0);
        assert!(expected.contains("00 00"), "{expected}");
        assert_eq!(found, "00 42");
    }

    #[test]
    fn float_type_rejected() {
        let mut raw = idx_bytes(&[1], &[0, 0, 0, 0]);
        raw[2] = 0x0D;
        let (offset, _, found) = idx_error(&raw);

        assert_eq!(offset, 2);
        assert!(found.contains("float"), "{found}");
    }

    #[test]
    fn truncated_payload() {
        let raw = idx_bytes(&[2, 3], &[1, 2, 3, 4]);
        let (offset, expected, found) = idx_error(&raw);

        assert_eq!(offset, 12 + 4);
        assert!(expected.contains("6 payload bytes"), "{expected}");
        assert!(found.contains("truncated"), "{found}");
    }

    #[test]
    fn truncated_header() {
        let raw = idx_bytes(&[2, 3], &[]);
        let (offset, _, _) = idx_error(&raw[..9]);

        assert_eq!(offset, 9);
    }

    #[test]
    fn trailing_bytes() {
        let raw = idx_bytes(&[2], &[1, 2, 3]);
        let (offset, _, found) = idx_error(&raw);

        assert_eq!(offset, 8 + 2);
        assert_eq!(found, "trailing bytes");
        assert!(matches!(parse(&gzip(&raw)), Err(DataError::Idx { offset: 10, .. })));
    }

    #[test]
    fn dimensions_multiplying_to_u64_max() {
        // 65535 * 42009217 * 6700417 = 2^64 - 1: no overflow, but far above the limit.
        let raw = idx_bytes(&[65_535, 42_009_217, 6_700_417], &[1, 2]);

        let result = parse(&raw);

        assert!(matches!(result, Err(DataError::Idx { offset: 4, .. })), "{result:?}");
    }

    #[test]
    fn huge_dimensions_do_not_allocate() {
        let raw = idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[1, 2]);

        assert!(parse(&raw).is_err());
    }

    #[test]
    fn oversized_declared_payload_rejected_before_reading() {
        // 2^16 * 2^15 = 2^31 bytes declared, two present: rejected at the dimensions.
        let raw = idx_bytes(&[1 << 16, 1 << 15], &[1, 2]);
        let (offset, expected, found) = idx_error(&gzip(&raw));

        assert_eq!(offset, 4);
        assert!(expected.contains(&MAX_PAYLOAD_BYTES.to_string()), "{expected}");
        assert!(found.contains("2147483648 bytes"), "{found}");
    }

    #[test]
    fn gzip_bomb_rejected_before_inflating() {
        // 16 MiB of zeros behind dimensions declaring 4 GiB. The reader stops at the
        // dimensions instead of inflating the zeros.
        let mut raw = idx_bytes(&[1 << 16, 1 << 16], &[]);
        raw.resize(raw.len() + (16 << 20), 0);
        let bomb = gzip(&raw);
        assert!(bomb.len() < 64 << 10, "{} compressed bytes", bomb.len());

        assert!(matches!(parse(&bomb), Err(DataError::Idx { offset: 4, .. })));
    }

    #[test]
    fn corrupt_gzip() {
        let mut compressed = gzip(&idx_bytes(&[4], &[1, 2, 3, 4]));
        let middle = compressed.len() / 2;
        compressed[middle] ^= 0xff;
        compressed.truncate(compressed.len() - 3);

        assert!(
            matches!(parse(&compressed), Err(DataError::Gzip { .. })),
            "{:?}",
            parse(&compressed)
        );
    }

    #[test]
    fn truncated_gzip() {
        let compressed = gzip(&idx_bytes(&[64], &[9; 64]));
        let result = parse(&compressed[..compressed.len() - 10]);

        assert!(result.is_err(), "{result:?}");
    }
}
