//! The IDX file format of MNIST and Fashion-MNIST, plain or gzipped.
//!
//! An IDX file is a 4-byte magic number (`00 00 TT NN`: two zero bytes, the element type `TT`,
//! the number of dimensions `NN`), `NN` big-endian `u32` sizes, then the elements in row-major
//! order. Only type `0x08` (unsigned byte) is supported; it is what MNIST-like datasets use.
//! Gzip is recognised by its magic bytes `1f 8b`, whatever the file is called.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::DataError;

/// The two bytes every gzip stream starts with.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The IDX type code of unsigned bytes.
pub const TYPE_U8: u8 = 0x08;

/// An IDX array of unsigned bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// The size of each dimension, outermost first (e.g. `[count, rows, cols]` for images).
    pub dims: Vec<usize>,
    /// The elements in row-major order; its length is the product of `dims`.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for IdxArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdxArray").field("dims", &self.dims).field("data_len", &self.data.len()).finish()
    }
}

/// Reads the IDX file at `path`, plain or gzipped.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let bytes = fs::read(path).map_err(|e| DataError::from_io(path, e))?;
    decode_idx(path, &bytes)
}

/// Decodes the contents of an IDX file, plain or gzipped; `path` is only used in error messages.
pub fn decode_idx(path: &Path, bytes: &[u8]) -> Result<IdxArray, DataError> {
    if bytes.starts_with(&GZIP_MAGIC) {
        parse(path, MultiGzDecoder::new(bytes), true)
    } else {
        parse(path, bytes, false)
    }
}

/// The name of an IDX element type, or `None` for a code the format does not define.
fn type_name(code: u8) -> Option<&'static str> {
    match code {
        0x08 => Some("unsigned byte"),
        0x09 => Some("signed byte"),
        0x0B => Some("16-bit integer"),
        0x0C => Some("32-bit integer"),
        0x0D => Some("32-bit float"),
        0x0E => Some("64-bit float"),
        _ => None,
    }
}

/// Appends up to `n` bytes of `reader` to `buf` (fewer at end of input).
fn read_up_to<R: Read>(path: &Path, reader: &mut R, n: u64, buf: &mut Vec<u8>, gzipped: bool) -> Result<(), DataError> {
    match reader.by_ref().take(n).read_to_end(buf) {
        Ok(_) => Ok(()),
        Err(source) if gzipped => Err(DataError::Gzip { path: path.to_path_buf(), source }),
        Err(source) => Err(DataError::Io { path: path.to_path_buf(), source }),
    }
}

fn parse<R: Read>(path: &Path, mut reader: R, gzipped: bool) -> Result<IdxArray, DataError> {
    let truncated = |expected: u64, found: usize| DataError::Truncated {
        path: path.to_path_buf(),
        expected,
        found: found as u64,
        gzipped,
    };
    let mut header = Vec::with_capacity(4);
    read_up_to(path, &mut reader, 4, &mut header, gzipped)?;
    let &[z0, z1, code, rank] = header.as_slice() else {
        return Err(truncated(4, header.len()));
    };
    if z0 != 0 || z1 != 0 || type_name(code).is_none() {
        return Err(DataError::BadMagic { path: path.to_path_buf(), found: [z0, z1, code, rank] });
    }
    if code != TYPE_U8 {
        let name = type_name(code).unwrap_or("unknown");
        return Err(DataError::UnsupportedType { path: path.to_path_buf(), code, name });
    }
    let header_len = 4 + 4 * u64::from(rank);
    read_up_to(path, &mut reader, header_len - 4, &mut header, gzipped)?;
    if (header.len() as u64) < header_len {
        return Err(truncated(header_len, header.len()));
    }
    let dims: Vec<usize> =
        header[4..].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let data_len = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .filter(|&n| n < u64::MAX - header_len && usize::try_from(n).is_ok());
    let Some(data_len) = data_len else {
        return Err(DataError::BadHeader {
            path: path.to_path_buf(),
            reason: format!("dimensions {dims:?} describe more bytes than can be addressed"),
        });
    };
    // Read at most one byte more than the header announces, so that a lying header or a gzip
    // bomb cannot make us allocate more than the file really holds plus one byte.
    let mut data = Vec::new();
    read_up_to(path, &mut reader, data_len + 1, &mut data, gzipped)?;
    let expected = header_len + data_len;
    let found = header.len() + data.len();
    if (data.len() as u64) < data_len {
        return Err(truncated(expected, found));
    }
    if (data.len() as u64) > data_len {
        // Count the rest, without keeping it, to report the true size.
        let mut sink = io::sink();
        let extra = match io::copy(&mut reader, &mut sink) {
            Ok(n) => n,
            Err(source) if gzipped => return Err(DataError::Gzip { path: path.to_path_buf(), source }),
            Err(source) => return Err(DataError::Io { path: path.to_path_buf(), source }),
        };
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            found: (found as u64).saturating_add(extra),
            gzipped,
        });
    }
    Ok(IdxArray { dims, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use proptest::prelude::*;
    use std::io::Write;

    /// The bytes of an unsigned-byte IDX file with the given dims and data.
    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, TYPE_U8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).expect("gzip into memory");
        enc.finish().expect("gzip into memory")
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        fs::write(&path, bytes).expect("write temp file");
        path
    }

    fn sample() -> (Vec<u32>, Vec<u8>) {
        (vec![2, 3, 4], (0..24).collect())
    }

    #[test]
    fn reads_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        let (dims, data) = sample();
        let path = write(dir.path(), "images-idx3-ubyte", &idx_bytes(&dims, &data));
        let arr = read_idx(&path).unwrap();
        assert_eq!(arr.dims, vec![2, 3, 4]);
        assert_eq!(arr.data, data);
    }

    #[test]
    fn reads_gzipped_file_whatever_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let (dims, data) = sample();
        let gz = gzip(&idx_bytes(&dims, &data));
        for name in ["images-idx3-ubyte.gz", "no-suffix"] {
            let arr = read_idx(&write(dir.path(), name, &gz)).unwrap();
            assert_eq!(arr.dims, vec![2, 3, 4]);
            assert_eq!(arr.data, data);
        }
    }

    #[test]
    fn reads_labels_and_empty_arrays() {
        let arr = decode_idx(Path::new("l"), &[0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]).unwrap();
        assert_eq!((arr.dims, arr.data), (vec![3], vec![7, 8, 9]));
        let arr = decode_idx(Path::new("e"), &idx_bytes(&[0, 28, 28], &[])).unwrap();
        assert_eq!((arr.dims, arr.data.len()), (vec![0, 28, 28], 0));
    }

    #[test]
    fn truncated_data_names_file_and_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let (dims, data) = sample();
        let mut bytes = idx_bytes(&dims, &data);
        bytes.truncate(bytes.len() - 5);
        let path = write(dir.path(), "short", &bytes);
        let err = read_idx(&path).unwrap_err();
        assert!(matches!(err, DataError::Truncated { expected: 40, found: 35, gzipped: false, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(msg.contains("truncated") && msg.contains("expected 40 bytes, found 35"), "{msg}");

        let gz = write(dir.path(), "short.gz", &gzip(&bytes));
        let msg = read_idx(&gz).unwrap_err().to_string();
        assert!(msg.contains("short.gz") && msg.contains("expected 40 bytes") && msg.contains("decompress"), "{msg}");
    }

    #[test]
    fn truncated_header() {
        for bytes in [&[][..], &[0, 0], &[0, 0, 8, 3, 0, 0, 0, 2, 0]] {
            let err = decode_idx(Path::new("h"), bytes).unwrap_err();
            assert!(matches!(err, DataError::Truncated { .. }), "{bytes:?}: {err:?}");
        }
        let msg = decode_idx(Path::new("h"), &[0, 0, 8, 3, 0]).unwrap_err().to_string();
        assert_eq!(msg, "h: truncated IDX file: expected 16 bytes, found 5");
    }

    #[test]
    fn trailing_bytes_are_reported() {
        let (dims, data) = sample();
        let mut bytes = idx_bytes(&dims, &data);
        bytes.extend_from_slice(&[1, 2, 3]);
        let err = decode_idx(Path::new("long"), &bytes).unwrap_err();
        assert!(matches!(err, DataError::TrailingBytes { expected: 40, found: 43, .. }), "{err:?}");
        let err = decode_idx(Path::new("long.gz"), &gzip(&bytes)).unwrap_err();
        assert!(matches!(err, DataError::TrailingBytes { expected: 40, found: 43, .. }), "{err:?}");
    }

    #[test]
    fn bad_magic() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "notes.txt", b"hello, world");
        let err = read_idx(&path).unwrap_err();
        assert!(matches!(err, DataError::BadMagic { found: [b'h', b'e', b'l', b'l'], .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("notes.txt") && msg.contains("68 65 6c 6c"), "{msg}");
        // An undefined type code is a bad magic number too.
        let err = decode_idx(Path::new("x"), &[0, 0, 0x42, 1, 0, 0, 0, 0]).unwrap_err();
        assert!(matches!(err, DataError::BadMagic { .. }), "{err:?}");
    }

    #[test]
    fn unsupported_type() {
        let err = decode_idx(Path::new("floats"), &[0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]).unwrap_err();
        assert!(matches!(err, DataError::UnsupportedType { code: 0x0D, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.starts_with("floats: ") && msg.contains("0x0d") && msg.contains("32-bit float"), "{msg}");
    }

    #[test]
    fn corrupt_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bad.gz", &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]);
        let err = read_idx(&path).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
        assert!(err.to_string().contains("bad.gz") && err.to_string().contains("gzip"), "{err}");

        // A gzip stream cut short, and one whose checksum is wrong.
        let (dims, data) = sample();
        let gz = gzip(&idx_bytes(&dims, &data));
        let err = decode_idx(Path::new("cut.gz"), &gz[..gz.len() - 10]).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. } | DataError::Truncated { .. }), "{err:?}");
        let mut bad_crc = gz.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 0xff;
        let err = decode_idx(Path::new("crc.gz"), &bad_crc).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err:?}");
    }

    #[test]
    fn missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        let err = read_idx(&path).unwrap_err();
        assert!(matches!(err, DataError::Missing { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn huge_dimensions_do_not_allocate_or_overflow() {
        let bytes = idx_bytes(&[u32::MAX, u32::MAX, u32::MAX], &[1, 2, 3]);
        let err = decode_idx(Path::new("huge"), &bytes).unwrap_err();
        assert!(matches!(err, DataError::BadHeader { .. }), "{err:?}");
        let bytes = idx_bytes(&[u32::MAX, 1 << 20], &[1, 2, 3]);
        let err = decode_idx(Path::new("big"), &bytes).unwrap_err();
        // Truncated on 64-bit hosts; too large to address on 32-bit ones.
        assert!(matches!(err, DataError::Truncated { found: 15, .. } | DataError::BadHeader { .. }), "{err:?}");
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_idx(Path::new("fuzz"), &bytes);
        }

        #[test]
        fn never_panics_on_mutated_files(pos in 0usize..40, byte in any::<u8>(), cut in 0usize..41, zip in any::<bool>()) {
            let (dims, data) = sample();
            let mut bytes = idx_bytes(&dims, &data);
            if zip {
                bytes = gzip(&bytes);
            }
            let pos = pos % bytes.len();
            bytes[pos] = byte;
            bytes.truncate(cut.min(bytes.len()));
            let _ = decode_idx(Path::new("fuzz"), &bytes);
        }
    }
}
