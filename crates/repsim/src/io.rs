//! Reading activation matrices from files into [`Matrix`]: one row per
//! example, one column per feature.
//!
//! Two formats, chosen by the file's extension:
//!
//! - `.npy` (NumPy format versions 1.0, 2.0 and 3.0): little-endian `<f4` or
//!   `<f8`, C or Fortran order, any shape `(n, …)`. Each example is flattened
//!   in C order to `prod(rest)` features; a 1-D array of length `n` is an
//!   `n × 1` matrix.
//! - `.parquet`: every column must be numeric (integer or float) and free of
//!   nulls; each column is one feature, each row one example.
//!
//! Every error names the file, says what was expected and what was found.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::host::Matrix;

/// The `.npy` element types [`read_matrix`] accepts.
pub const SUPPORTED_NPY_DTYPES: &[&str] = &["<f4", "<f8"];

/// Why a file could not be read as a matrix.
#[derive(Debug)]
pub enum ReadError {
    /// No file at the path.
    Missing { path: PathBuf },
    /// The operating system refused to open or read the file.
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// The extension is neither `.npy` nor `.parquet`.
    UnknownExtension {
        path: PathBuf,
        extension: Option<String>,
    },
    /// The file does not start with the `.npy` magic string.
    BadMagic { path: PathBuf, found: Vec<u8> },
    /// A `.npy` format version other than 1.0, 2.0, 3.0.
    UnsupportedVersion { path: PathBuf, major: u8, minor: u8 },
    /// The `.npy` header is cut short or is not the expected dictionary.
    BadHeader { path: PathBuf, detail: String },
    /// An element type other than [`SUPPORTED_NPY_DTYPES`].
    UnsupportedDtype { path: PathBuf, descr: String },
    /// A big-endian element type (`>f4`, `>f8`, …).
    BigEndian { path: PathBuf, descr: String },
    /// A 0-d array: a single number has no examples.
    Scalar { path: PathBuf },
    /// The shape's element count or byte count does not fit in memory sizes.
    ShapeOverflow { path: PathBuf, shape: Vec<usize> },
    /// Fewer data bytes than the header's shape and dtype need.
    Truncated {
        path: PathBuf,
        shape: Vec<usize>,
        descr: String,
        expected: u64,
        found: u64,
    },
    /// More data bytes than the header's shape and dtype need.
    TrailingBytes {
        path: PathBuf,
        shape: Vec<usize>,
        descr: String,
        expected: u64,
        found: u64,
    },
    /// The file is not a parquet file, or the decoder failed on it.
    NotParquet { path: PathBuf, detail: String },
    /// A parquet file with no columns.
    NoColumns { path: PathBuf },
    /// A parquet column whose type is not an integer or float.
    NonNumericColumn {
        path: PathBuf,
        column: String,
        dtype: String,
    },
    /// A parquet column with missing values.
    NullValues {
        path: PathBuf,
        column: String,
        count: usize,
    },
}

impl ReadError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        use ReadError::*;
        match self {
            Missing { path }
            | Io { path, .. }
            | UnknownExtension { path, .. }
            | BadMagic { path, .. }
            | UnsupportedVersion { path, .. }
            | BadHeader { path, .. }
            | UnsupportedDtype { path, .. }
            | BigEndian { path, .. }
            | Scalar { path }
            | ShapeOverflow { path, .. }
            | Truncated { path, .. }
            | TrailingBytes { path, .. }
            | NotParquet { path, .. }
            | NoColumns { path }
            | NonNumericColumn { path, .. }
            | NullValues { path, .. } => path,
        }
    }
}

fn shape_text(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ReadError::*;
        let p = self.path().display();
        match self {
            Missing { .. } => write!(f, "{p}: no such file; check the path"),
            Io { action, source, .. } => write!(f, "{p}: could not {action} the file: {source}"),
            UnknownExtension { extension, .. } => {
                let found = match extension {
                    Some(e) => format!("the extension `.{e}`"),
                    None => "no extension".to_string(),
                };
                write!(
                    f,
                    "{p}: {found} is not a supported format; expected `.npy` (NumPy array) or \
                     `.parquet` (one numeric column per feature); rename the file or convert it"
                )
            }
            BadMagic { found, .. } => write!(
                f,
                "{p}: not a NumPy .npy file: it should start with the bytes \\x93NUMPY but starts \
                 with {}; write it with numpy.save",
                escape_bytes(found)
            ),
            UnsupportedVersion { major, minor, .. } => write!(
                f,
                "{p}: .npy format version {major}.{minor} is not supported; expected 1.0, 2.0 or 3.0"
            ),
            BadHeader { detail, .. } => write!(f, "{p}: malformed .npy header: {detail}"),
            UnsupportedDtype { descr, .. } => write!(
                f,
                "{p}: .npy element type '{descr}' is not supported; supported: {} \
                 (little-endian float32, float64); convert with arr.astype('<f4')",
                SUPPORTED_NPY_DTYPES.join(", ")
            ),
            BigEndian { descr, .. } => write!(
                f,
                "{p}: .npy element type '{descr}' is big-endian; only little-endian {} is \
                 supported; convert with arr.astype(arr.dtype.newbyteorder('<'))",
                SUPPORTED_NPY_DTYPES.join(", ")
            ),
            Scalar { .. } => write!(
                f,
                "{p}: the array is 0-dimensional (a single number); expected shape (n, ...) with \
                 one entry per example"
            ),
            ShapeOverflow { shape, .. } => write!(
                f,
                "{p}: the shape {} is too large to hold in memory",
                shape_text(shape)
            ),
            Truncated {
                shape,
                descr,
                expected,
                found,
                ..
            } => write!(
                f,
                "{p}: truncated data: shape {} of '{descr}' needs {expected} bytes after the \
                 header, found {found}; the file was cut short, write it again",
                shape_text(shape)
            ),
            TrailingBytes {
                shape,
                descr,
                expected,
                found,
                ..
            } => write!(
                f,
                "{p}: shape {} of '{descr}' needs {expected} bytes after the header, found \
                 {found}: the header does not describe the data",
                shape_text(shape)
            ),
            NotParquet { detail, .. } => write!(f, "{p}: not a readable parquet file: {detail}"),
            NoColumns { .. } => write!(
                f,
                "{p}: the parquet file has no columns; expected one numeric column per feature"
            ),
            NonNumericColumn { column, dtype, .. } => write!(
                f,
                "{p}: column `{column}` has type {dtype}; every column must be numeric (integer \
                 or float), one per feature; drop or encode it"
            ),
            NullValues { column, count, .. } => write!(
                f,
                "{p}: column `{column}` has {count} missing (null) value(s); every example needs \
                 every feature; fill or drop them"
            ),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn escape_bytes(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        if b.is_ascii_graphic() {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    if s.is_empty() {
        "nothing (the file is empty)".to_string()
    } else {
        s
    }
}

/// Reads `path` as a matrix, by extension: `.npy` or `.parquet`
/// (case-insensitive).
pub fn read_matrix(path: &Path) -> Result<Matrix, ReadError> {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if !path.exists() {
        return Err(ReadError::Missing {
            path: path.to_path_buf(),
        });
    }
    match extension.as_deref() {
        Some("npy") => read_npy(path),
        Some("parquet") => read_parquet(path),
        _ => Err(ReadError::UnknownExtension {
            path: path.to_path_buf(),
            extension: path.extension().map(|e| e.to_string_lossy().into_owned()),
        }),
    }
}

// ------------------------------------------------------------------- .npy

/// The parsed `.npy` header dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The element type, e.g. `<f4`. A structured dtype (a list) is kept as
    /// its source text.
    pub descr: String,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// A value of the header dictionary.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
    /// A list or anything else in brackets, kept as text.
    Other(String),
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.rest().chars().next()
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.peek() {
            Some(found) if found == c => {
                self.pos += c.len_utf8();
                Ok(())
            }
            Some(found) => Err(format!(
                "expected `{c}` at byte {}, found `{found}`",
                self.pos
            )),
            None => Err(format!(
                "expected `{c}` at byte {}, found the end of the header",
                self.pos
            )),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = match self.peek() {
            Some(q @ ('\'' | '"')) => q,
            Some(c) => {
                return Err(format!(
                    "expected a quoted string at byte {}, found `{c}`",
                    self.pos
                ));
            }
            None => return Err("expected a quoted string, found the end of the header".into()),
        };
        self.pos += 1;
        let rest = self.rest();
        match rest.find(quote) {
            Some(end) => {
                let s = rest[..end].to_string();
                self.pos += end + 1;
                Ok(s)
            }
            None => Err(format!(
                "unterminated string starting at byte {}",
                self.pos - 1
            )),
        }
    }

    fn integer(&mut self) -> Result<usize, String> {
        self.skip_ws();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if len == 0 {
            return Err(format!(
                "expected a non-negative integer in the shape at byte {}, found `{}`",
                self.pos,
                rest.chars()
                    .next()
                    .map(String::from)
                    .unwrap_or_else(|| "the end".into())
            ));
        }
        let digits = &rest[..len];
        let n = digits
            .parse::<usize>()
            .map_err(|_| format!("shape entry {digits} is too large"))?;
        self.pos += len;
        // Python 2 wrote long integers with an `L` suffix.
        if self.rest().starts_with('L') {
            self.pos += 1;
        }
        Ok(n)
    }

    fn tuple(&mut self) -> Result<Vec<usize>, String> {
        self.expect('(')?;
        let mut items = Vec::new();
        loop {
            if self.peek() == Some(')') {
                self.pos += 1;
                return Ok(items);
            }
            items.push(self.integer()?);
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(')') => {}
                Some(c) => {
                    return Err(format!(
                        "expected `,` or `)` in the shape at byte {}, found `{c}`",
                        self.pos
                    ));
                }
                None => return Err("the shape tuple is not closed".into()),
            }
        }
    }

    /// Text from an opening bracket to its matching closing one.
    fn bracketed(&mut self) -> Result<String, String> {
        self.skip_ws();
        let start = self.pos;
        let mut depth = 0usize;
        let mut quote: Option<char> = None;
        for (i, c) in self.rest().char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '[' | '(' | '{') => depth += 1,
                (None, ']' | ')' | '}') => {
                    depth -= 1;
                    if depth == 0 {
                        self.pos = start + i + 1;
                        return Ok(self.text[start..self.pos].to_string());
                    }
                }
                _ => {}
            }
        }
        Err(format!("unbalanced brackets starting at byte {start}"))
    }

    fn value(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some('\'' | '"') => Ok(Value::Str(self.string()?)),
            Some('(') => Ok(Value::Tuple(self.tuple()?)),
            Some('[' | '{') => Ok(Value::Other(self.bracketed()?)),
            Some(_) => {
                let rest = self.rest();
                for (word, v) in [("True", true), ("False", false)] {
                    if rest.starts_with(word) {
                        self.pos += word.len();
                        return Ok(Value::Bool(v));
                    }
                }
                let word: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect();
                Err(format!("unexpected value `{word}` at byte {}", self.pos))
            }
            None => Err("expected a value, found the end of the header".into()),
        }
    }
}

/// Parses the header dictionary of a `.npy` file, e.g.
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
/// Keys other than the three are ignored; the three must be present.
pub fn parse_npy_header(text: &str) -> Result<NpyHeader, String> {
    let mut c = Cursor { text, pos: 0 };
    c.expect('{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        if c.peek() == Some('}') {
            c.pos += 1;
            break;
        }
        let key = c.string()?;
        c.expect(':')?;
        let value = c.value()?;
        match (key.as_str(), value) {
            ("descr", Value::Str(s) | Value::Other(s)) => descr = Some(s),
            ("descr", v) => return Err(format!("`descr` should be a dtype string, found {v:?}")),
            ("fortran_order", Value::Bool(b)) => fortran = Some(b),
            ("fortran_order", v) => {
                return Err(format!(
                    "`fortran_order` should be True or False, found {v:?}"
                ));
            }
            ("shape", Value::Tuple(t)) => shape = Some(t),
            ("shape", v) => {
                return Err(format!(
                    "`shape` should be a tuple of integers, found {v:?}"
                ));
            }
            _ => {}
        }
        match c.peek() {
            Some(',') => c.pos += 1,
            Some('}') => {}
            Some(ch) => {
                return Err(format!(
                    "expected `,` or `}}` at byte {}, found `{ch}`",
                    c.pos
                ));
            }
            None => return Err("the header dictionary is not closed".into()),
        }
    }
    let rest = c.rest().trim();
    if !rest.is_empty() {
        return Err(format!("unexpected text after the dictionary: `{rest}`"));
    }
    let missing = |k: &str| format!("the key `{k}` is missing");
    Ok(NpyHeader {
        descr: descr.ok_or_else(|| missing("descr"))?,
        fortran_order: fortran.ok_or_else(|| missing("fortran_order"))?,
        shape: shape.ok_or_else(|| missing("shape"))?,
    })
}

/// The element type of a supported descr, or the error for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dtype {
    F4,
    F8,
}

fn dtype_of(descr: &str, path: &Path) -> Result<Dtype, ReadError> {
    match descr {
        "<f4" => Ok(Dtype::F4),
        "<f8" => Ok(Dtype::F8),
        d if d.starts_with('>') && d.len() > 2 => Err(ReadError::BigEndian {
            path: path.to_path_buf(),
            descr: d.to_string(),
        }),
        d => Err(ReadError::UnsupportedDtype {
            path: path.to_path_buf(),
            descr: d.to_string(),
        }),
    }
}

/// Decodes the contents of a `.npy` file (`bytes`) read from `path`.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<Matrix, ReadError> {
    let path_buf = || path.to_path_buf();
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(ReadError::BadMagic {
            path: path_buf(),
            found: bytes[..bytes.len().min(MAGIC.len())].to_vec(),
        });
    }
    let bad = |detail: String| ReadError::BadHeader {
        path: path_buf(),
        detail,
    };
    if bytes.len() < 8 {
        return Err(bad(format!(
            "the file ends after {} bytes, inside the version field",
            bytes.len()
        )));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (len_size, utf8) = match (major, minor) {
        (1, 0) => (2, false),
        (2, 0) => (4, false),
        (3, 0) => (4, true),
        _ => {
            return Err(ReadError::UnsupportedVersion {
                path: path_buf(),
                major,
                minor,
            });
        }
    };
    let start = 8 + len_size;
    if bytes.len() < start {
        return Err(bad(format!(
            "the file ends after {} bytes, inside the header-length field",
            bytes.len()
        )));
    }
    let header_len = if len_size == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let data_start = start
        .checked_add(header_len)
        .ok_or_else(|| bad("the header length overflows".into()))?;
    if bytes.len() < data_start {
        return Err(bad(format!(
            "the header should be {header_len} bytes but the file ends {} bytes into it",
            bytes.len() - start
        )));
    }
    let raw = &bytes[start..data_start];
    let text: String = if utf8 {
        std::str::from_utf8(raw)
            .map_err(|e| bad(format!("the version 3.0 header is not UTF-8: {e}")))?
            .to_string()
    } else {
        // Latin-1: every byte is one character.
        raw.iter().map(|&b| b as char).collect()
    };
    let header = parse_npy_header(&text).map_err(bad)?;
    let dtype = dtype_of(&header.descr, path)?;
    let shape = header.shape.clone();
    if shape.is_empty() {
        return Err(ReadError::Scalar { path: path_buf() });
    }
    let overflow = || ReadError::ShapeOverflow {
        path: path_buf(),
        shape: shape.clone(),
    };
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    let item = match dtype {
        Dtype::F4 => 4,
        Dtype::F8 => 8,
    };
    let expected = count.checked_mul(item).ok_or_else(overflow)?;
    let data = &bytes[data_start..];
    if data.len() != expected {
        let (expected, found) = (expected as u64, data.len() as u64);
        let (descr, shape) = (header.descr.clone(), shape.clone());
        return Err(if found < expected {
            ReadError::Truncated {
                path: path_buf(),
                shape,
                descr,
                expected,
                found,
            }
        } else {
            ReadError::TrailingBytes {
                path: path_buf(),
                shape,
                descr,
                expected,
                found,
            }
        });
    }
    let values: Vec<f64> = match dtype {
        Dtype::F4 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        Dtype::F8 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
    };
    let rows = shape[0];
    let cols = shape[1..].iter().product::<usize>();
    let values = if header.fortran_order && shape.len() > 1 {
        fortran_to_c(&values, &shape)
    } else {
        values
    };
    Ok(Matrix {
        rows,
        cols,
        data: values,
    })
}

/// Reorders column-major (`fortran_order`) data of `shape` into row-major.
fn fortran_to_c(values: &[f64], shape: &[usize]) -> Vec<f64> {
    let mut out = vec![0.0; values.len()];
    // Row-major strides.
    let mut strides = vec![1usize; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * shape[k + 1];
    }
    // Walk the column-major order: the first index runs fastest.
    let mut index = vec![0usize; shape.len()];
    let mut target = 0usize;
    for &v in values {
        out[target] = v;
        for k in 0..shape.len() {
            index[k] += 1;
            target += strides[k];
            if index[k] < shape[k] {
                break;
            }
            target -= strides[k] * shape[k];
            index[k] = 0;
        }
    }
    out
}

fn read_npy(path: &Path) -> Result<Matrix, ReadError> {
    let bytes = std::fs::read(path).map_err(|source| io_error(path, "read", source))?;
    parse_npy(&bytes, path)
}

fn io_error(path: &Path, action: &'static str, source: std::io::Error) -> ReadError {
    if source.kind() == std::io::ErrorKind::NotFound {
        ReadError::Missing {
            path: path.to_path_buf(),
        }
    } else {
        ReadError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

// ---------------------------------------------------------------- parquet

fn read_parquet(path: &Path) -> Result<Matrix, ReadError> {
    use polars::prelude::{DataType, ParquetReader, SerReader};

    let not_parquet = |detail: String| ReadError::NotParquet {
        path: path.to_path_buf(),
        detail,
    };
    let mut file = File::open(path).map_err(|e| io_error(path, "open", e))?;
    let len = file
        .metadata()
        .map_err(|e| io_error(path, "read", e))?
        .len();
    if len < 12 {
        return Err(not_parquet(format!(
            "it is only {len} bytes long; a parquet file has PAR1 magic bytes at both ends"
        )));
    }
    let (mut head, mut tail) = ([0u8; 4], [0u8; 4]);
    let read_err = |e| io_error(path, "read", e);
    file.read_exact(&mut head).map_err(read_err)?;
    file.seek(SeekFrom::End(-4)).map_err(read_err)?;
    file.read_exact(&mut tail).map_err(read_err)?;
    if &head != b"PAR1" || &tail != b"PAR1" {
        return Err(not_parquet(
            "it lacks the PAR1 magic bytes at its start and end".to_string(),
        ));
    }
    file.seek(SeekFrom::Start(0)).map_err(read_err)?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| not_parquet(format!("the parquet decoder failed: {e}")))?;
    let columns = df.columns();
    if columns.is_empty() {
        return Err(ReadError::NoColumns {
            path: path.to_path_buf(),
        });
    }
    for column in columns {
        let dtype = column.dtype();
        if !dtype.is_primitive_numeric() {
            return Err(ReadError::NonNumericColumn {
                path: path.to_path_buf(),
                column: column.name().to_string(),
                dtype: dtype.to_string(),
            });
        }
    }
    let (rows, cols) = (df.height(), columns.len());
    let mut data = vec![0.0; rows * cols];
    for (j, column) in columns.iter().enumerate() {
        let name = column.name().to_string();
        let nulls = column.null_count();
        if nulls > 0 {
            return Err(ReadError::NullValues {
                path: path.to_path_buf(),
                column: name,
                count: nulls,
            });
        }
        let decode = |e: polars::prelude::PolarsError| {
            not_parquet(format!(
                "column `{name}` could not be converted to f64: {e}"
            ))
        };
        let as_f64 = column.cast(&DataType::Float64).map_err(decode)?;
        let values = as_f64.f64().map_err(decode)?;
        // Nulls were ruled out above.
        for (i, v) in values.into_no_null_iter().enumerate() {
            data[i * cols + j] = v;
        }
    }
    Ok(Matrix { rows, cols, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_header_numpy_writes() {
        let h =
            parse_npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }    \n")
                .unwrap();
        assert_eq!(
            h,
            NpyHeader {
                descr: "<f4".into(),
                fortran_order: false,
                shape: vec![3, 4]
            }
        );
    }

    #[test]
    fn parses_one_element_tuples_scalars_and_key_order() {
        let h = parse_npy_header("{\"shape\": (7,), \"fortran_order\": True, \"descr\": \"<f8\"}")
            .unwrap();
        assert_eq!(h.shape, vec![7]);
        assert!(h.fortran_order);
        assert_eq!(h.descr, "<f8");
        let h = parse_npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': ()}").unwrap();
        assert!(h.shape.is_empty());
        let h =
            parse_npy_header("{'descr':'<f8','fortran_order':False,'shape':(2L, 3L, 5L)}").unwrap();
        assert_eq!(h.shape, vec![2, 3, 5]);
    }

    #[test]
    fn keeps_a_structured_descr_as_text() {
        let h = parse_npy_header(
            "{'descr': [('a', '<f4'), ('b', '<i8')], 'fortran_order': False, 'shape': (2,), }",
        )
        .unwrap();
        assert_eq!(h.descr, "[('a', '<f4'), ('b', '<i8')]");
    }

    #[test]
    fn rejects_malformed_headers_with_a_reason() {
        let cases = [
            ("'descr': '<f4'}", "expected `{`"),
            (
                "{'descr': '<f4', 'fortran_order': False}",
                "`shape` is missing",
            ),
            (
                "{'descr': '<f4', 'shape': (2,)}",
                "`fortran_order` is missing",
            ),
            (
                "{'fortran_order': False, 'shape': (2,)}",
                "`descr` is missing",
            ),
            (
                "{'descr': '<f4', 'fortran_order': maybe, 'shape': (2,)}",
                "unexpected value `maybe`",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}",
                "non-negative integer",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3",
                "not closed",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': 5}",
                "unexpected value `5`",
            ),
            (
                "{'descr': '<f4, 'fortran_order': False}",
                "expected `,` or `}`",
            ),
            ("{'descr': 4}", "unexpected value `4`"),
            (
                "{'descr': '<f4', 'fortran_order': 'no', 'shape': (1,)}",
                "True or False",
            ),
            (
                "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x",
                "after the dictionary",
            ),
        ];
        for (text, want) in cases {
            let err = parse_npy_header(text).unwrap_err();
            assert!(
                err.contains(want),
                "{text:?}: got {err:?}, wanted it to mention {want:?}"
            );
        }
    }

    fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend([1, 0]);
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    fn f8_bytes(v: &[f64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn fortran_order_is_reordered_per_example() {
        // A 2×3×2 array a[i, j, k] = 100 i + 10 j + k, written column-major.
        let (d0, d1, d2) = (2, 3, 2);
        let mut col_major = Vec::new();
        for k in 0..d2 {
            for j in 0..d1 {
                for i in 0..d0 {
                    col_major.push((100 * i + 10 * j + k) as f64);
                }
            }
        }
        let bytes = npy("<f8", true, "(2, 3, 2)", &f8_bytes(&col_major));
        let m = parse_npy(&bytes, Path::new("x.npy")).unwrap();
        assert_eq!((m.rows, m.cols), (2, 6));
        let want: Vec<f64> = (0..d0)
            .flat_map(|i| {
                (0..d1).flat_map(move |j| (0..d2).map(move |k| (100 * i + 10 * j + k) as f64))
            })
            .collect();
        assert_eq!(m.data, want);
    }

    #[test]
    fn one_dimensional_arrays_are_columns() {
        let bytes = npy("<f8", false, "(3,)", &f8_bytes(&[1.0, 2.0, 3.0]));
        let m = parse_npy(&bytes, Path::new("x.npy")).unwrap();
        assert_eq!((m.rows, m.cols, m.data), (3, 1, vec![1.0, 2.0, 3.0]));
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let p = Path::new("dir/acts.npy");
        let e = parse_npy(&npy("<i8", false, "(1,)", &[0; 8]), p).unwrap_err();
        assert!(matches!(e, ReadError::UnsupportedDtype { .. }));
        let msg = e.to_string();
        assert!(
            msg.contains("dir/acts.npy") && msg.contains("'<i8'") && msg.contains("<f4"),
            "{msg}"
        );

        let e = parse_npy(&npy(">f8", false, "(1,)", &[0; 8]), p).unwrap_err();
        assert!(matches!(e, ReadError::BigEndian { .. }), "{e}");

        let e = parse_npy(&npy("<f8", false, "(2, 2)", &[0; 20]), p).unwrap_err();
        match &e {
            ReadError::Truncated {
                expected, found, ..
            } => assert_eq!((*expected, *found), (32, 20)),
            other => panic!("wanted Truncated, got {other}"),
        }
        assert!(e.to_string().contains("32") && e.to_string().contains("20"));

        let e = parse_npy(&npy("<f8", false, "(1,)", &[0; 9]), p).unwrap_err();
        assert!(matches!(e, ReadError::TrailingBytes { .. }), "{e}");

        let e = parse_npy(&npy("<f8", false, "()", &[0; 8]), p).unwrap_err();
        assert!(matches!(e, ReadError::Scalar { .. }), "{e}");

        let e = parse_npy(b"PK\x03\x04 zip", p).unwrap_err();
        assert!(matches!(e, ReadError::BadMagic { .. }), "{e}");
        assert!(e.to_string().contains("dir/acts.npy"));

        let mut v = npy("<f8", false, "(1,)", &[0; 8]);
        v[6] = 4;
        let e = parse_npy(&v, p).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::UnsupportedVersion {
                    major: 4,
                    minor: 0,
                    ..
                }
            ),
            "{e}"
        );

        let v = npy("<f8", false, "(1,)", &[0; 8]);
        let e = parse_npy(&v[..20], p).unwrap_err();
        assert!(matches!(e, ReadError::BadHeader { .. }), "{e}");

        let e = parse_npy(&npy("<f8", false, "(18446744073709551615, 2)", &[]), p).unwrap_err();
        assert!(matches!(e, ReadError::ShapeOverflow { .. }), "{e}");
    }
}
