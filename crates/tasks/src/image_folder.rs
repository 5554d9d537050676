//! Image classification data laid out as one directory per class, as
//! torchvision's `ImageFolder` reads it: `SPLIT/<class>/**/<image>`. Classes
//! are numbered in the order of their sorted names and images within the
//! split in the order of their sorted paths, so indices match
//! torchvision's. ILSVRC-2012 in this layout ([`ImageNet`]) is the paper's
//! image data.
//!
//! Images are decoded from JPEG or PNG (the format read from the bytes, not
//! the extension) and converted to 8-bit RGB: greyscale is repeated on
//! three channels, CMYK converted by the decoder, alpha dropped.
//!
//! # Bad input
//!
//! Indexing ([`ImageFolder::open`]) fails, naming the path, on a missing or
//! empty split, a class without images, a file that is neither a JPEG nor a
//! PNG by its extension (dot files are ignored), and, for [`ImageNet`], a
//! validation class absent from training. Files are only decoded when read;
//! what happens to one that cannot be decoded is the [`BadImages`] policy.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::image_transform::Rgb8;

/// Extensions of the files a class directory may hold (compared without
/// regard to case).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpeg", "jpg", "png"];

/// Environment variable naming the ImageNet root (the directory holding
/// `train/` and `val/`) when `--data` is not given.
pub const ENV_IMAGENET: &str = "UNTRAINABLE_IMAGENET";

/// What to do with an image that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BadImages {
    /// Stop with an error naming the file (the default: a three-week run
    /// should not silently train on less data than its user thinks).
    #[default]
    Fail,
    /// Leave the image out of its batch and report its path with the batch,
    /// so the run can log and count it.
    Skip,
}

/// One split of an image folder: its classes and every image's path and label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFolder {
    /// The split's directory.
    pub root: PathBuf,
    /// Class directory names, sorted; a label indexes this.
    pub classes: Vec<String>,
    /// `(path, label)` of every image, by label, then path.
    pub images: Vec<(PathBuf, u32)>,
}

fn layout_error(path: &Path, reason: impl Into<String>, fix: impl Into<String>) -> DataError {
    DataError::BadLayout {
        path: path.to_owned(),
        reason: reason.into(),
        fix: fix.into(),
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The entries of directory `dir`, sorted by name, dot files left out.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            entries.push(entry.path());
        }
    }
    entries.sort();
    Ok(entries)
}

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Every image under `dir`, at any depth, sorted by path.
fn class_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    for path in sorted_entries(dir)? {
        if path.is_dir() {
            class_images(&path, out)?;
        } else if is_image_name(&path) {
            out.push(path);
        } else {
            return Err(layout_error(
                &path,
                "not an image: a class directory holds only .JPEG, .jpg or .png files",
                "move the file out of the data set",
            ));
        }
    }
    Ok(())
}

impl ImageFolder {
    /// Indexes the split in `root`: each subdirectory is a class.
    pub fn open(root: &Path) -> Result<ImageFolder, DataError> {
        if !root.is_dir() {
            return Err(layout_error(
                root,
                "no such directory",
                "point at a directory with one subdirectory of images per class",
            ));
        }
        let mut classes = Vec::new();
        let mut images = Vec::new();
        for path in sorted_entries(root)? {
            if !path.is_dir() {
                return Err(layout_error(
                    &path,
                    "a file beside the class directories",
                    "move it out: a split holds only one directory per class",
                ));
            }
            let mut files = Vec::new();
            class_images(&path, &mut files)?;
            if files.is_empty() {
                return Err(layout_error(
                    &path,
                    "class directory without images",
                    "restore its images or remove the directory",
                ));
            }
            let label = classes.len() as u32;
            images.extend(files.into_iter().map(|f| (f, label)));
            classes.push(
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        if classes.is_empty() {
            return Err(layout_error(
                root,
                "no class directories",
                "extract the images into one subdirectory per class",
            ));
        }
        Ok(ImageFolder {
            root: root.to_owned(),
            classes,
            images,
        })
    }

    pub fn len(&self) -> usize {
        self.images.len()
    }

    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Image `i`, decoded to RGB, with its label.
    pub fn read(&self, i: usize) -> Result<(Rgb8, u32), DataError> {
        let (path, label) = &self.images[i];
        Ok((decode_file(path)?, *label))
    }
}

/// Decodes a JPEG or PNG file (format from its bytes) to 8-bit RGB.
pub fn decode_file(path: &Path) -> Result<Rgb8, DataError> {
    let bytes = fs::read(path).map_err(io_error(path))?;
    decode(path, &bytes)
}

/// Decodes `bytes` (the contents of `path`, named in errors).
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Rgb8, DataError> {
    let undecodable = |reason: String| DataError::Undecodable {
        path: path.to_owned(),
        reason,
    };
    let format = image::guess_format(bytes).map_err(|e| undecodable(e.to_string()))?;
    if !matches!(format, image::ImageFormat::Jpeg | image::ImageFormat::Png) {
        return Err(undecodable(format!(
            "a {format:?} image, not a JPEG or PNG"
        )));
    }
    let decoded = image::load_from_memory_with_format(bytes, format)
        .map_err(|e| undecodable(e.to_string()))?;
    let rgb = decoded.into_rgb8();
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    Ok(Rgb8::new(width, height, rgb.into_raw()))
}

/// ILSVRC-2012 (or any data set) as `ROOT/train/<class>/…` and
/// `ROOT/val/<class>/…`, the layout torchvision's `ImageFolder` reads.
#[derive(Debug, Clone)]
pub struct ImageNet {
    pub root: PathBuf,
    pub train: ImageFolder,
    pub val: ImageFolder,
}

/// What to download and how to lay it out, for messages that stop a run
/// without data.
pub const IMAGENET_HOWTO: &str = "download ILSVRC-2012 (ImageNet-1k) training and validation \
     images from image-net.org, extract them as ROOT/train/<wnid>/*.JPEG and \
     ROOT/val/<wnid>/*.JPEG (the validation images sorted into class directories, the layout \
     of torchvision's ImageFolder), then pass --data ROOT or set $UNTRAINABLE_IMAGENET=ROOT; \
     `cargo run -p untrainable-tasks --bin data -- check imagenet ROOT` checks it";

impl ImageNet {
    /// Indexes both splits of `root`, checking that validation's classes
    /// are training's (so labels mean the same in both).
    pub fn open(root: &Path) -> Result<ImageNet, DataError> {
        for split in ["train", "val"] {
            if !root.join(split).is_dir() {
                return Err(layout_error(
                    &root.join(split),
                    format!("missing the {split} split"),
                    IMAGENET_HOWTO,
                ));
            }
        }
        let train = ImageFolder::open(&root.join("train"))?;
        let val = ImageFolder::open(&root.join("val"))?;
        if val.classes != train.classes {
            let odd = val
                .classes
                .iter()
                .chain(&train.classes)
                .find(|c| !(val.classes.contains(c) && train.classes.contains(c)))
                .cloned()
                .unwrap_or_default();
            return Err(layout_error(
                &val.root,
                format!(
                    "{} validation classes but {} training classes (class {odd} is in only one)",
                    val.classes.len(),
                    train.classes.len()
                ),
                "give both splits the same class directories",
            ));
        }
        Ok(ImageNet {
            root: root.to_owned(),
            train,
            val,
        })
    }

    /// [`ImageNet::open`] on `data`, or else on `$UNTRAINABLE_IMAGENET`;
    /// with neither, an error that says what to download.
    pub fn find(data: Option<&Path>) -> Result<ImageNet, DataError> {
        let from_env = std::env::var_os(ENV_IMAGENET).filter(|v| !v.is_empty());
        match data.map(Path::to_owned).or(from_env.map(PathBuf::from)) {
            Some(root) => Self::open(&root),
            None => Err(layout_error(
                Path::new("(no --data, no $UNTRAINABLE_IMAGENET)"),
                "this preset trains on ImageNet, and no directory was given",
                IMAGENET_HOWTO,
            )),
        }
    }
}
