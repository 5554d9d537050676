//! Fashion-MNIST: 28×28 grey images of clothing in 10 classes, 60 000 for
//! training and 10 000 for testing, as the four gzipped IDX files of the
//! Debian package `dataset-fashion-mnist` (see docs/design.md §5).
//!
//! The files are checked against known sha256 sums before they are parsed,
//! so every run of every experiment sees the same bytes.

use std::path::{Path, PathBuf};

use crate::batches::{Purpose, permutation};
use crate::error::DataError;
use crate::idx::{self, IdxImages};
use crate::locate::DataSource;

pub use crate::batches::epoch_batches;

/// Number of classes; labels are `0..CLASSES`.
pub const CLASSES: usize = 10;

/// Class names in label order.
pub const CLASS_NAMES: [&str; CLASSES] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

pub const TRAIN_IMAGES: &str = "train-images-idx3-ubyte.gz";
pub const TRAIN_LABELS: &str = "train-labels-idx1-ubyte.gz";
pub const TEST_IMAGES: &str = "t10k-images-idx3-ubyte.gz";
pub const TEST_LABELS: &str = "t10k-labels-idx1-ubyte.gz";

/// The four files and their sha256 sums (docs/design.md §5).
pub const FILES: [(&str, &str); 4] = [
    (
        TRAIN_IMAGES,
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    ),
    (
        TRAIN_LABELS,
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    ),
    (
        TEST_IMAGES,
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    ),
    (
        TEST_LABELS,
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    ),
];

/// Environment variable naming the directory that holds the four files.
pub const ENV_DIR: &str = "UNTRAINABLE_FASHION_MNIST";
/// Where the Debian package installs the files.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Where the four files may be and how to check them.
pub const SOURCE: DataSource = DataSource {
    name: "Fashion-MNIST",
    env_dir: ENV_DIR,
    subdir: "fashion-mnist",
    system: Some((SYSTEM_DIR, "Debian package dataset-fashion-mnist")),
    files: &FILES,
};

/// Mean of all pixels of the 60 000 training images after scaling to [0, 1]
/// (all 47 040 000 values, two passes in f64, giving
/// mean 0.286040602 and std 0.353024250;
/// recomputed from the real files by the test
/// `normalisation_constants_match_real_training_set`).
pub const PIXEL_MEAN: f32 = 0.286_040_6;
/// Population standard deviation of the same pixels.
pub const PIXEL_STD: f32 = 0.353_024_2;

/// Images with their labels. Pixels are row-major, one example after
/// another, scaled to [0, 1] unless [`ImageSet::normalise`] was applied.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// `len() × rows × cols` values.
    pub images: Vec<f32>,
    pub labels: Vec<u8>,
    pub rows: usize,
    pub cols: usize,
}

impl ImageSet {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per example (`rows × cols`).
    pub fn pixels_per_example(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of example `i`.
    ///
    /// # Panics
    /// If `i >= len()`, like slice indexing.
    pub fn example(&self, i: usize) -> &[f32] {
        let d = self.pixels_per_example();
        &self.images[i * d..(i + 1) * d]
    }

    /// The examples at `indices`, in that order (repeats allowed).
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let mut images = Vec::with_capacity(indices.len() * self.pixels_per_example());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            images.extend_from_slice(self.example(i));
            labels.push(self.labels[i]);
        }
        ImageSet {
            images,
            labels,
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// Count of each label; at least [`CLASSES`] entries.
    pub fn label_histogram(&self) -> Vec<usize> {
        let top = self
            .labels
            .iter()
            .map(|&l| l as usize + 1)
            .max()
            .unwrap_or(0);
        let mut counts = vec![0; top.max(CLASSES)];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Mean and population standard deviation over all pixels, in f64.
    pub fn pixel_mean_std(&self) -> (f64, f64) {
        let n = self.images.len() as f64;
        if n == 0.0 {
            return (0.0, 0.0);
        }
        let mean = self.images.iter().map(|&p| p as f64).sum::<f64>() / n;
        let var = self
            .images
            .iter()
            .map(|&p| (p as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, var.sqrt())
    }
}

/// Builds an [`ImageSet`] from raw IDX contents, checking the counts agree
/// and every label is below [`CLASSES`]. The paths are only used in errors.
pub fn image_set_from_idx(
    images: IdxImages,
    images_path: &Path,
    labels: Vec<u8>,
    labels_path: &Path,
) -> Result<ImageSet, DataError> {
    if images.count != labels.len() {
        return Err(DataError::InconsistentCounts {
            images_path: images_path.to_owned(),
            images: images.count,
            labels_path: labels_path.to_owned(),
            labels: labels.len(),
        });
    }
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| **l as usize >= CLASSES)
    {
        return Err(DataError::LabelOutOfRange {
            path: labels_path.to_owned(),
            index,
            label,
            classes: CLASSES,
        });
    }
    let pixels = images.pixels.iter().map(|&p| p as f32 / 255.0).collect();
    Ok(ImageSet {
        images: pixels,
        labels,
        rows: images.rows,
        cols: images.cols,
    })
}

/// Loads an image/label file pair with no checksum check, for generated
/// test files and other IDX data sets.
pub fn load_image_set(images_path: &Path, labels_path: &Path) -> Result<ImageSet, DataError> {
    let images = idx::load_idx_images(images_path)?;
    let labels = idx::load_idx_labels(labels_path)?;
    image_set_from_idx(images, images_path, labels, labels_path)
}

/// The full training and test sets, pixels in [0, 1].
#[derive(Debug, Clone)]
pub struct FashionMnist {
    pub train: ImageSet,
    pub test: ImageSet,
    /// Where the files were found.
    pub dir: PathBuf,
}

impl FashionMnist {
    /// Finds the files (see [`search_places`]), checks their sha256 sums and
    /// loads them.
    pub fn load(dir: Option<&Path>) -> Result<FashionMnist, DataError> {
        Self::load_from(&SOURCE.find(dir)?)
    }

    /// Loads from exactly `dir`, checking sha256 sums; no search.
    pub fn load_from(dir: &Path) -> Result<FashionMnist, DataError> {
        let read = |i: usize| SOURCE.read_verified(dir, i);
        let pair = |img: usize, lab: usize| -> Result<ImageSet, DataError> {
            let (ip, ib) = read(img)?;
            let (lp, lb) = read(lab)?;
            let images = idx::images_from_bytes(&ip, &ib)?;
            drop(ib);
            let labels = idx::labels_from_bytes(&lp, &lb)?;
            image_set_from_idx(images, &ip, labels, &lp)
        };
        Ok(FashionMnist {
            train: pair(0, 1)?,
            test: pair(2, 3)?,
            dir: dir.to_owned(),
        })
    }
}

/// Splits `set` by a permutation fixed by `seed`: the first `val_size`
/// shuffled examples are the validation set, the next `train_limit` (or all
/// the rest) the training set. Returns `(train, val)`; the two never share
/// an example.
pub fn split_train_val(
    set: &ImageSet,
    val_size: usize,
    train_limit: Option<usize>,
    seed: u64,
) -> Result<(ImageSet, ImageSet), DataError> {
    let n = set.len();
    let rest = n.checked_sub(val_size);
    let train_size = match (rest, train_limit) {
        (Some(rest), None) => rest,
        (Some(rest), Some(t)) if t <= rest => t,
        _ => {
            return Err(DataError::SplitTooLarge {
                val: val_size,
                train: train_limit.unwrap_or(0),
                available: n,
            });
        }
    };
    let order = permutation(n, Purpose::Split, seed, 0);
    let val = set.subset(&order[..val_size]);
    let train = set.subset(&order[val_size..val_size + train_size]);
    Ok((train, val))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::{MAGIC_U8_IMAGES, MAGIC_U8_LABELS, encode_idx, write_gz};
    use crate::locate::{ENV_DATA_ROOT, sha256_hex};
    use std::ffi::OsString;

    /// `n` 2×3 images whose first pixel encodes the example index, so
    /// examples can be identified after shuffling.
    fn numbered_set(n: usize) -> ImageSet {
        let mut images = Vec::new();
        for i in 0..n {
            images.push(i as f32);
            images.extend([0.5; 5]);
        }
        let labels = (0..n).map(|i| (i % CLASSES) as u8).collect();
        ImageSet {
            images,
            labels,
            rows: 2,
            cols: 3,
        }
    }

    fn ids(set: &ImageSet) -> Vec<usize> {
        (0..set.len()).map(|i| set.example(i)[0] as usize).collect()
    }

    /// Writes a tiny Fashion-MNIST-named directory (wrong checksums, valid IDX).
    fn write_tiny_dataset(dir: &Path) {
        for (name, _) in FILES {
            let bytes = if name.contains("images") {
                encode_idx(MAGIC_U8_IMAGES, &[2, 2, 2], &[0, 51, 102, 255, 1, 2, 3, 4])
            } else {
                encode_idx(MAGIC_U8_LABELS, &[2], &[3, 9])
            };
            write_gz(&dir.join(name), &bytes).unwrap();
        }
    }

    #[test]
    fn tiny_pair_round_trips_into_image_set() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_dataset(dir.path());
        let set = load_image_set(
            &dir.path().join(TRAIN_IMAGES),
            &dir.path().join(TRAIN_LABELS),
        )
        .unwrap();
        assert_eq!((set.len(), set.rows, set.cols), (2, 2, 2));
        assert_eq!(set.labels, vec![3, 9]);
        assert_eq!(set.example(0), &[0.0, 0.2, 0.4, 1.0]);
        assert_eq!(
            set.example(1),
            &[1.0 / 255.0, 2.0 / 255.0, 3.0 / 255.0, 4.0 / 255.0]
        );
    }

    #[test]
    fn mismatched_counts_and_bad_labels_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let ip = dir.path().join("i.gz");
        let lp = dir.path().join("l.gz");
        write_gz(&ip, &encode_idx(MAGIC_U8_IMAGES, &[2, 1, 1], &[0, 0])).unwrap();
        write_gz(&lp, &encode_idx(MAGIC_U8_LABELS, &[3], &[0, 1, 2])).unwrap();
        let err = load_image_set(&ip, &lp).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::InconsistentCounts {
                    images: 2,
                    labels: 3,
                    ..
                }
            ),
            "got {err:?}"
        );
        assert!(err.to_string().contains("i.gz") && err.to_string().contains("l.gz"));

        write_gz(&lp, &encode_idx(MAGIC_U8_LABELS, &[2], &[4, 10])).unwrap();
        let err = load_image_set(&ip, &lp).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::LabelOutOfRange {
                    index: 1,
                    label: 10,
                    ..
                }
            ),
            "got {err:?}"
        );
    }

    #[test]
    fn wrong_checksum_is_its_own_error_naming_file_hashes_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_dataset(dir.path());
        let err = FashionMnist::load(Some(dir.path())).unwrap_err();
        let DataError::ChecksumMismatch {
            path,
            expected,
            actual,
        } = &err
        else {
            panic!("expected ChecksumMismatch, got {err:?}");
        };
        assert_eq!(path, &dir.path().join(TRAIN_IMAGES));
        assert_eq!(expected, FILES[0].1);
        assert_eq!(actual, &sha256_hex(&std::fs::read(path).unwrap()));
        let msg = err.to_string();
        for part in [
            TRAIN_IMAGES,
            FILES[0].1,
            actual.as_str(),
            crate::SETUP_COMMAND,
        ] {
            assert!(msg.contains(part), "{msg:?} lacks {part:?}");
        }
    }

    #[test]
    fn missing_directory_lists_every_place_and_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let cwd = tmp.path().join("cwd");
        let env = |k: &str| (k == ENV_DATA_ROOT).then(|| root.clone().into_os_string());
        let mut places = SOURCE.search_places_with(None, env, &cwd);
        // The system directory exists on machines with the package; leave it
        // out so this test sees only places it controls.
        places.retain(|(d, _)| d != Path::new(SYSTEM_DIR));
        assert_eq!(places.len(), 2);
        // One place exists but lacks a file, to show both messages.
        std::fs::create_dir_all(&places[1].0).unwrap();
        write_tiny_dataset(&places[1].0);
        std::fs::remove_file(places[1].0.join(TEST_LABELS)).unwrap();

        let err = SOURCE.locate(&places).unwrap_err();
        let DataError::NotFound {
            places: searched, ..
        } = &err
        else {
            panic!("got {err:?}")
        };
        assert_eq!(searched.len(), 2);
        assert_eq!(searched[0].missing.len(), 4);
        assert!(!searched[0].exists);
        assert_eq!(searched[1].missing, vec![TEST_LABELS.to_string()]);
        let msg = err.to_string();
        for part in [
            root.join("fashion-mnist").display().to_string(),
            cwd.join(SOURCE.local_dir()).display().to_string(),
            "bash scripts/setup-data.sh".into(),
            TEST_LABELS.into(),
            "no such directory".into(),
        ] {
            assert!(msg.contains(&part), "{msg}\nlacks {part:?}");
        }
    }

    #[test]
    fn explicit_dir_that_is_missing_is_not_replaced_by_a_default() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("nowhere");
        let err = FashionMnist::load(Some(&missing)).unwrap_err();
        let DataError::NotFound { places, .. } = &err else {
            panic!("got {err:?}")
        };
        assert_eq!(places.len(), 1);
        assert_eq!(places[0].dir, missing);
        let msg = err.to_string();
        assert!(
            msg.contains(&missing.display().to_string()) && msg.contains(TRAIN_IMAGES),
            "{msg}"
        );
        assert!(msg.contains("bash scripts/setup-data.sh"), "{msg}");
    }

    #[test]
    fn search_order_follows_flag_then_env_then_defaults() {
        let cwd = Path::new("/work");
        let none = |_: &str| None;
        let dirs = |p: Vec<(PathBuf, String)>| p.into_iter().map(|(d, _)| d).collect::<Vec<_>>();
        assert_eq!(
            dirs(SOURCE.search_places_with(None, none, cwd)),
            vec![PathBuf::from(SYSTEM_DIR), cwd.join(SOURCE.local_dir())]
        );
        let both = |k: &str| match k {
            ENV_DIR => Some(OsString::from("/fm")),
            ENV_DATA_ROOT => Some(OsString::from("/data")),
            _ => None,
        };
        assert_eq!(
            dirs(SOURCE.search_places_with(None, both, cwd)),
            vec![PathBuf::from("/fm")]
        );
        assert_eq!(
            dirs(SOURCE.search_places_with(Some(Path::new("/flag")), both, cwd)),
            vec![PathBuf::from("/flag")]
        );
        let root = |k: &str| (k == ENV_DATA_ROOT).then(|| OsString::from("/data"));
        assert_eq!(
            dirs(SOURCE.search_places_with(None, root, cwd)),
            vec![
                PathBuf::from("/data/fashion-mnist"),
                PathBuf::from(SYSTEM_DIR),
                cwd.join(SOURCE.local_dir())
            ]
        );
        // Empty variables count as unset.
        let empty = |_: &str| Some(OsString::new());
        assert_eq!(SOURCE.search_places_with(None, empty, cwd).len(), 2);
    }

    #[test]
    fn locate_takes_first_complete_place() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d).unwrap();
            write_tiny_dataset(d);
        }
        std::fs::remove_file(a.join(TRAIN_IMAGES)).unwrap();
        let places = vec![(a, "a".to_string()), (b.clone(), "b".to_string())];
        assert_eq!(SOURCE.locate(&places).unwrap(), b);
    }

    #[test]
    fn split_is_deterministic_disjoint_and_sized() {
        let set = numbered_set(100);
        let (train, val) = split_train_val(&set, 20, None, 5).unwrap();
        assert_eq!((train.len(), val.len()), (80, 20));
        let mut all: Vec<usize> = ids(&train).into_iter().chain(ids(&val)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>(), "not a partition");
        // Labels travel with their images.
        for s in [&train, &val] {
            for i in 0..s.len() {
                assert_eq!(s.labels[i] as usize, (s.example(i)[0] as usize) % CLASSES);
            }
        }

        let (train2, val2) = split_train_val(&set, 20, None, 5).unwrap();
        assert_eq!((ids(&train2), ids(&val2)), (ids(&train), ids(&val)));
        let (_, val3) = split_train_val(&set, 20, None, 6).unwrap();
        assert_ne!(ids(&val3), ids(&val));

        // A training limit takes a prefix of the same remaining order.
        let (small, val4) = split_train_val(&set, 20, Some(30), 5).unwrap();
        assert_eq!(ids(&val4), ids(&val));
        assert_eq!(ids(&small), ids(&train)[..30]);
        let (exact, _) = split_train_val(&set, 20, Some(80), 5).unwrap();
        assert_eq!(exact.len(), 80);
    }

    #[test]
    fn split_larger_than_set_is_an_error() {
        let set = numbered_set(10);
        for (val, limit) in [(11, None), (5, Some(6)), (10, Some(1))] {
            let err = split_train_val(&set, val, limit, 0).unwrap_err();
            assert!(
                matches!(err, DataError::SplitTooLarge { available: 10, .. }),
                "got {err:?}"
            );
        }
        let (train, val) = split_train_val(&set, 10, None, 0).unwrap();
        assert_eq!((train.len(), val.len()), (0, 10));
    }

    #[test]
    fn subset_histogram_and_pixel_statistics() {
        let set = numbered_set(25);
        let sub = set.subset(&[3, 3, 24]);
        assert_eq!(ids(&sub), vec![3, 3, 24]);
        assert_eq!(sub.labels, vec![3, 3, 4]);
        let hist = set.label_histogram();
        assert_eq!(hist.len(), CLASSES);
        assert_eq!(hist[..6], [3, 3, 3, 3, 3, 2]);

        let s = ImageSet {
            images: vec![0.0, 1.0, 0.0, 1.0],
            labels: vec![0],
            rows: 2,
            cols: 2,
        };
        assert_eq!(s.pixel_mean_std(), (0.5, 0.5));
    }
}
