//! Tests on the real MNIST file `mnist.pkl.gz`. They run whenever it can be
//! found (the usual search, or the workspace's `data/mnist` from
//! `scripts/setup-data.sh`) and print that they are skipped otherwise. CI
//! installs the data first; set `UNTRAINABLE_REQUIRE_DATA=1` to make absence
//! a failure instead of a skip.

use std::sync::OnceLock;

use untrainable_tasks::ImageSet;
use untrainable_tasks::mnist::{self, CLASSES, Mnist};
use untrainable_test_support::real_data_dir;

/// Loads once for all tests in this file: decompressing 220 MB takes a moment.
fn real() -> Option<&'static Mnist> {
    static DATA: OnceLock<Option<Mnist>> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = real_data_dir(&mnist::SOURCE)?;
        let data = Mnist::load(Some(&dir));
        Some(data.unwrap_or_else(|e| panic!("MNIST is present but does not load: {e}")))
    })
    .as_ref()
}

fn splits(data: &Mnist) -> [(&'static str, &ImageSet); 3] {
    [
        ("train", &data.train),
        ("val", &data.val),
        ("test", &data.test),
    ]
}

#[test]
fn real_mnist_has_standard_sizes_and_pixels() {
    let Some(data) = real() else { return };
    let sizes = splits(data).map(|(_, s)| s.len());
    assert_eq!(sizes, [50_000, 10_000, 10_000]);
    for (name, set) in splits(data) {
        assert_eq!((set.rows, set.cols), (28, 28), "{name}");
        assert_eq!(set.images.len(), set.len() * 28 * 28, "{name}");
        assert!(set.images.iter().all(|p| (0.0..=1.0).contains(p)), "{name}");
        // Stored as k/256: the top value is 255/256, and every value is a
        // whole number of 256ths.
        let max = set.images.iter().copied().fold(0.0f32, f32::max);
        assert_eq!(max, 255.0 / 256.0, "{name}");
        assert!(
            set.images.iter().all(|p| (p * 256.0).fract() == 0.0),
            "{name}"
        );
    }
}

#[test]
fn real_mnist_label_histograms_and_known_labels() {
    let Some(data) = real() else { return };
    // Counts per digit, and the labels below, were read from the real file
    // with Python's pickle module (numpy's classes replaced by small
    // stand-ins that keep the raw bytes, since numpy is not installed here).
    let expected = [
        [4932, 5678, 4968, 5101, 4859, 4506, 4951, 5175, 4842, 4988],
        [991, 1064, 990, 1030, 983, 915, 967, 1090, 1009, 961],
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
    ];
    for ((name, set), hist) in splits(data).into_iter().zip(expected) {
        assert_eq!(set.label_histogram(), hist.to_vec(), "{name}");
        assert_eq!(hist.iter().sum::<usize>(), set.len(), "{name}");
        assert_eq!(set.label_histogram().len(), CLASSES);
    }
    assert_eq!(data.train.labels[..10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(
        (data.train.labels[12_345], data.train.labels[49_999]),
        (3, 8)
    );
    assert_eq!(data.val.labels[..5], [3, 8, 6, 9, 6]);
    assert_eq!(data.val.labels[5_000], 1);
    assert_eq!(data.test.labels[..5], [7, 2, 1, 0, 4]);
    assert_eq!(data.test.labels[9_999], 6);
    // The first training image's first ink, from the same reading.
    let first = data.train.example(0);
    assert!(first[..152].iter().all(|&p| p == 0.0));
    assert_eq!(first[152..155], [3.0 / 256.0, 18.0 / 256.0, 18.0 / 256.0]);
    assert_eq!(first.iter().map(|&p| p as f64).sum::<f64>(), 107.51953125);
}

#[test]
fn mnist_normalisation_constants_match_real_training_set() {
    let Some(data) = real() else { return };
    let (mean, std) = data.train.pixel_mean_std();
    eprintln!("training pixels: mean {mean:.9}, std {std:.9}");
    assert!(
        (mean - mnist::PIXEL_MEAN as f64).abs() < 1e-7,
        "mean is {mean:.9}"
    );
    assert!(
        (std - mnist::PIXEL_STD as f64).abs() < 1e-7,
        "std is {std:.9}"
    );
}
