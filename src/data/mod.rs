//! Image-classification datasets in the MNIST layout: a directory holding
//! `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
//! `t10k-labels-idx1-ubyte`, each plain or gzipped (`.gz`).
//!
//! `mnist` names the 10,000 real MNIST digits bundled in `data/mnist` (see `data/README.md`),
//! `fashion` the Debian package `dataset-fashion-mnist`; every error names the file at fault.

pub mod idx;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Where the Debian package `dataset-fashion-mnist` installs Fashion-MNIST.
pub const FASHION_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// One half of a dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training images (`train-*` files).
    Train,
    /// The held-out test images (`t10k-*` files).
    Test,
}

impl Split {
    /// The file-name prefix of the split: `train` or `t10k`.
    pub fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// A split of an image dataset: `count` greyscale images of `height` × `width` bytes with one
/// label each.
#[derive(Clone, PartialEq, Eq)]
pub struct Dataset {
    /// The pixels, `count * height * width` bytes, image after image, each row-major.
    pub images: Vec<u8>,
    /// One class label per image.
    pub labels: Vec<u8>,
    /// The number of images (and labels).
    pub count: usize,
    /// Rows per image.
    pub height: usize,
    /// Columns per image.
    pub width: usize,
}

impl Dataset {
    /// The pixels of image `i` (`height * width` bytes), or `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[u8]> {
        let len = self.height * self.width;
        self.images.get(i.checked_mul(len)?..i.checked_add(1)?.checked_mul(len)?)
    }
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dataset")
            .field("count", &self.count)
            .field("height", &self.height)
            .field("width", &self.width)
            .finish_non_exhaustive()
    }
}

/// Why a dataset file could not be loaded. Every message starts with the path of the file.
#[derive(Debug)]
pub enum DataError {
    /// The file does not exist.
    Missing {
        /// The file looked for.
        path: PathBuf,
        /// Other names tried for it (e.g. with `.gz`).
        also_tried: Vec<PathBuf>,
        /// How to get the file, where known.
        hint: Option<String>,
    },
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file starts like gzip but does not decompress.
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decompressor's error.
        source: io::Error,
    },
    /// The file is shorter than its IDX header says.
    Truncated {
        /// The file.
        path: PathBuf,
        /// Bytes the header calls for (header included).
        expected: u64,
        /// Bytes present.
        found: u64,
        /// Whether the sizes are after gzip decompression.
        gzipped: bool,
    },
    /// The file is longer than its IDX header says.
    TrailingBytes {
        /// The file.
        path: PathBuf,
        /// Bytes the header calls for (header included).
        expected: u64,
        /// Bytes present.
        found: u64,
        /// Whether the sizes are after gzip decompression.
        gzipped: bool,
    },
    /// The file does not start with an IDX magic number (`00 00 type ndims`).
    BadMagic {
        /// The file.
        path: PathBuf,
        /// Its first four bytes (after decompression).
        found: [u8; 4],
    },
    /// The IDX element type is valid but not unsigned byte (`0x08`).
    UnsupportedType {
        /// The file.
        path: PathBuf,
        /// The type code.
        code: u8,
        /// What the code means.
        name: &'static str,
    },
    /// The IDX header is malformed in another way.
    BadHeader {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An images file is not 3-dimensional, or a labels file not 1-dimensional.
    WrongRank {
        /// The file.
        path: PathBuf,
        /// `images` or `labels`.
        what: &'static str,
        /// The rank required.
        expected: usize,
        /// The dimensions found.
        dims: Vec<usize>,
    },
    /// The images and labels files hold different numbers of items.
    CountMismatch {
        /// The images file.
        images_path: PathBuf,
        /// The labels file.
        labels_path: PathBuf,
        /// The number of images.
        images: usize,
        /// The number of labels.
        labels: usize,
    },
}

impl DataError {
    /// Wraps an I/O error on `path`: not-found becomes [`DataError::Missing`].
    pub fn from_io(path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::NotFound {
            DataError::Missing { path: path.to_path_buf(), also_tried: Vec::new(), hint: None }
        } else {
            DataError::Io { path: path.to_path_buf(), source }
        }
    }

    /// The file the error is about (the images file for a count mismatch).
    pub fn path(&self) -> &Path {
        match self {
            DataError::Missing { path, .. }
            | DataError::Io { path, .. }
            | DataError::Gzip { path, .. }
            | DataError::Truncated { path, .. }
            | DataError::TrailingBytes { path, .. }
            | DataError::BadMagic { path, .. }
            | DataError::UnsupportedType { path, .. }
            | DataError::BadHeader { path, .. }
            | DataError::WrongRank { path, .. } => path,
            DataError::CountMismatch { images_path, .. } => images_path,
        }
    }
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let after_gunzip = |gzipped: bool| if gzipped { " (after decompression)" } else { "" };
        match self {
            DataError::Missing { path, also_tried, hint } => {
                write!(f, "{}: file not found", path.display())?;
                for other in also_tried {
                    write!(f, " (nor {})", other.display())?;
                }
                if let Some(hint) = hint {
                    write!(f, "; {hint}")?;
                }
                Ok(())
            }
            DataError::Io { path, source } => write!(f, "{}: cannot read: {source}", path.display()),
            DataError::Gzip { path, source } => write!(f, "{}: corrupt gzip data: {source}", path.display()),
            DataError::Truncated { path, expected, found, gzipped } => write!(
                f,
                "{}: truncated IDX file: expected {expected} bytes, found {found}{}",
                path.display(),
                after_gunzip(*gzipped)
            ),
            DataError::TrailingBytes { path, expected, found, gzipped } => write!(
                f,
                "{}: IDX file longer than its header says: expected {expected} bytes, found {found}{}",
                path.display(),
                after_gunzip(*gzipped)
            ),
            DataError::BadMagic { path, found: [a, b, c, d] } => write!(
                f,
                "{}: not an IDX file: magic number {a:02x} {b:02x} {c:02x} {d:02x}, expected 00 00 <type> <ndims>",
                path.display()
            ),
            DataError::UnsupportedType { path, code, name } => write!(
                f,
                "{}: unsupported IDX element type 0x{code:02x} ({name}); only 0x08 (unsigned byte) is supported",
                path.display()
            ),
            DataError::BadHeader { path, reason } => write!(f, "{}: bad IDX header: {reason}", path.display()),
            DataError::WrongRank { path, what, expected, dims } => write!(
                f,
                "{}: {what} must be a {expected}-dimensional IDX array, found dimensions {dims:?}",
                path.display()
            ),
            DataError::CountMismatch { images_path, labels_path, images, labels } => write!(
                f,
                "{}: {images} images, but {} has {labels} labels",
                images_path.display(),
                labels_path.display()
            ),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } | DataError::Gzip { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Maps a dataset name to its directory: `mnist` → the bundled `data/mnist` (this crate's copy,
/// else `./data/mnist`), `fashion` → [`FASHION_DIR`]; anything else is taken as a path
/// (write `./mnist` for a directory called `mnist`).
pub fn resolve_source(name_or_path: &str) -> PathBuf {
    match name_or_path {
        "mnist" => {
            let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join("data").join("mnist");
            if bundled.is_dir() {
                bundled
            } else {
                Path::new("data").join("mnist")
            }
        }
        "fashion" => PathBuf::from(FASHION_DIR),
        other => PathBuf::from(other),
    }
}

/// Loads one split from `dir`: `<prefix>-images-idx3-ubyte` and `<prefix>-labels-idx1-ubyte`,
/// where the prefix is `train` or `t10k`, each plain or with `.gz` (plain preferred). Images
/// may be of any size; labels are not range-checked.
pub fn load_split(dir: &Path, split: Split) -> Result<Dataset, DataError> {
    let prefix = split.prefix();
    let images_path = find_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let images = idx::read_idx(&images_path)?;
    let labels = idx::read_idx(&labels_path)?;
    let &[count, height, width] = images.dims.as_slice() else {
        return Err(DataError::WrongRank { path: images_path, what: "images", expected: 3, dims: images.dims });
    };
    let &[label_count] = labels.dims.as_slice() else {
        return Err(DataError::WrongRank { path: labels_path, what: "labels", expected: 1, dims: labels.dims });
    };
    if count != label_count {
        return Err(DataError::CountMismatch { images_path, labels_path, images: count, labels: label_count });
    }
    Ok(Dataset { images: images.data, labels: labels.data, count, height, width })
}

/// `dir/name` if it is a file, else `dir/name.gz` if that is, else a [`DataError::Missing`].
fn find_file(dir: &Path, name: &str) -> Result<PathBuf, DataError> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if plain.is_file() {
        return Ok(plain);
    }
    if gz.is_file() {
        return Ok(gz);
    }
    Err(DataError::Missing { path: plain, also_tried: vec![gz], hint: missing_hint(dir) })
}

/// What to tell a user whose dataset directory lacks a file.
fn missing_hint(dir: &Path) -> Option<String> {
    if dir == Path::new(FASHION_DIR) {
        Some("install Fashion-MNIST with `apt-get install dataset-fashion-mnist`".to_string())
    } else if dir.ends_with("data/mnist") {
        Some("regenerate the bundled MNIST files with `python3 scripts/mnist_to_idx.py`".to_string())
    } else if !dir.is_dir() {
        Some(format!("directory {} does not exist", dir.display()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, idx::TYPE_U8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).expect("gzip into memory");
        enc.finish().expect("gzip into memory")
    }

    /// A split with `n` images of `h` × `w` (pixel = image index) and `labels` labels.
    fn write_split(dir: &Path, prefix: &str, n: u32, h: u32, w: u32, labels: u32, gz: bool) {
        let pixels: Vec<u8> = (0..n * h * w).map(|i| (i / (h * w).max(1)) as u8).collect();
        let label_bytes: Vec<u8> = (0..labels).map(|i| (i % 10) as u8).collect();
        let (images, labels) = (idx(&[n, h, w], &pixels), idx(&[labels], &label_bytes));
        let suffix = if gz { ".gz" } else { "" };
        let enc = |b: Vec<u8>| if gz { gzip(&b) } else { b };
        fs::write(dir.join(format!("{prefix}-images-idx3-ubyte{suffix}")), enc(images)).unwrap();
        fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte{suffix}")), enc(labels)).unwrap();
    }

    #[test]
    fn loads_plain_and_gzipped_splits_of_any_image_size() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), "train", 5, 28, 28, 5, false);
        write_split(dir.path(), "t10k", 3, 4, 7, 3, true);
        let train = load_split(dir.path(), Split::Train).unwrap();
        assert_eq!((train.count, train.height, train.width), (5, 28, 28));
        assert_eq!(train.labels, vec![0, 1, 2, 3, 4]);
        assert_eq!(train.image(4).unwrap(), &[4u8; 784][..]);
        assert_eq!(train.image(5), None);
        let test = load_split(dir.path(), Split::Test).unwrap();
        assert_eq!((test.count, test.height, test.width, test.images.len()), (3, 4, 7, 84));
        assert_eq!(format!("{test:?}"), "Dataset { count: 3, height: 4, width: 7, .. }");
    }

    #[test]
    fn count_mismatch_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), "train", 5, 2, 2, 4, true);
        let err = load_split(dir.path(), Split::Train).unwrap_err();
        assert!(matches!(err, DataError::CountMismatch { images: 5, labels: 4, .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("train-images-idx3-ubyte.gz: 5 images"), "{msg}");
        assert!(msg.contains("train-labels-idx1-ubyte.gz has 4 labels"), "{msg}");
    }

    #[test]
    fn wrong_rank() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("train-images-idx3-ubyte"), idx(&[2, 4], &[0; 8])).unwrap();
        fs::write(dir.path().join("train-labels-idx1-ubyte"), idx(&[2], &[0; 2])).unwrap();
        let err = load_split(dir.path(), Split::Train).unwrap_err();
        assert!(matches!(err, DataError::WrongRank { what: "images", expected: 3, .. }), "{err:?}");
        assert!(err.to_string().contains("train-images-idx3-ubyte: images must be a 3-dimensional"), "{err}");
    }

    #[test]
    fn missing_files_name_both_candidates() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), "train", 1, 1, 1, 1, false);
        fs::remove_file(dir.path().join("train-labels-idx1-ubyte")).unwrap();
        let err = load_split(dir.path(), Split::Train).unwrap_err();
        let msg = err.to_string();
        let labels = dir.path().join("train-labels-idx1-ubyte");
        assert!(msg.starts_with(&format!("{}: file not found", labels.display())), "{msg}");
        assert!(msg.contains("train-labels-idx1-ubyte.gz"), "{msg}");

        let err = load_split(&dir.path().join("nowhere"), Split::Test).unwrap_err();
        assert!(err.to_string().contains("t10k-images-idx3-ubyte") && err.to_string().contains("does not exist"));
    }

    #[test]
    fn missing_hints() {
        assert!(missing_hint(Path::new(FASHION_DIR)).unwrap().contains("apt-get install dataset-fashion-mnist"));
        assert!(missing_hint(Path::new("/x/data/mnist")).unwrap().contains("scripts/mnist_to_idx.py"));
        let err = DataError::Missing {
            path: Path::new(FASHION_DIR).join("train-images-idx3-ubyte"),
            also_tried: vec![],
            hint: missing_hint(Path::new(FASHION_DIR)),
        };
        assert_eq!(
            err.to_string(),
            "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte: file not found; \
             install Fashion-MNIST with `apt-get install dataset-fashion-mnist`"
        );
    }

    #[test]
    fn plain_file_is_preferred_over_gz() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), "train", 2, 1, 1, 2, true);
        write_split(dir.path(), "train", 3, 1, 1, 3, false);
        assert_eq!(load_split(dir.path(), Split::Train).unwrap().count, 3);
    }

    #[test]
    fn resolves_names() {
        assert!(resolve_source("mnist").ends_with("data/mnist"));
        assert_eq!(resolve_source("fashion"), PathBuf::from("/usr/share/datasets/fashion-mnist"));
        assert_eq!(resolve_source("some/dir"), PathBuf::from("some/dir"));
        assert_eq!(resolve_source("./mnist"), PathBuf::from("./mnist"));
    }

    #[test]
    fn errors_expose_path_and_source() {
        let err = DataError::from_io(Path::new("p"), io::Error::new(io::ErrorKind::PermissionDenied, "no"));
        assert_eq!(err.path(), Path::new("p"));
        assert_eq!(err.to_string(), "p: cannot read: no");
        assert!(std::error::Error::source(&err).is_some());
    }
}
