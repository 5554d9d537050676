//! Tests on the real Fashion-MNIST files. They run whenever the files can be
//! found (the Debian package's directory, the usual search, or the
//! workspace's `data/` from `scripts/setup-data.sh`) and print that they are
//! skipped otherwise. CI installs the data first; set
//! `UNTRAINABLE_REQUIRE_DATA=1` to make absence a failure instead of a skip.

use std::sync::OnceLock;

use untrainable_tasks::fashion_mnist::{self, CLASSES, FashionMnist};
use untrainable_tasks::split_train_val;
use untrainable_test_support::real_data_dir;

/// Loads once for all tests in this file: decompressing 30 MB takes a moment.
fn real() -> Option<&'static FashionMnist> {
    static DATA: OnceLock<Option<FashionMnist>> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = real_data_dir(&fashion_mnist::SOURCE)?;
        let data = FashionMnist::load(Some(&dir));
        Some(data.unwrap_or_else(|e| panic!("Fashion-MNIST is present but does not load: {e}")))
    })
    .as_ref()
}

#[test]
fn real_fashion_mnist_has_standard_sizes_and_balanced_labels() {
    let Some(data) = real() else { return };
    assert_eq!((data.train.len(), data.test.len()), (60_000, 10_000));
    for set in [&data.train, &data.test] {
        assert_eq!((set.rows, set.cols), (28, 28));
        assert_eq!(set.images.len(), set.len() * 28 * 28);
        assert!(set.images.iter().all(|p| (0.0..=1.0).contains(p)));
    }
    assert_eq!(data.train.label_histogram(), vec![6000; CLASSES]);
    assert_eq!(data.test.label_histogram(), vec![1000; CLASSES]);
    // Both ends of the byte range occur, so scaling divides by 255.
    let max = data.train.images.iter().copied().fold(0.0f32, f32::max);
    let min = data.train.images.iter().copied().fold(1.0f32, f32::min);
    assert_eq!((min, max), (0.0, 1.0));
}

#[test]
fn normalisation_constants_match_real_training_set() {
    let Some(data) = real() else { return };
    let (mean, std) = data.train.pixel_mean_std();
    eprintln!("training pixels: mean {mean:.9}, std {std:.9}");
    assert!(
        (mean - fashion_mnist::PIXEL_MEAN as f64).abs() < 1e-7,
        "mean is {mean:.9}"
    );
    assert!(
        (std - fashion_mnist::PIXEL_STD as f64).abs() < 1e-7,
        "std is {std:.9}"
    );
}

#[test]
fn real_split_keeps_every_example_once() {
    let Some(data) = real() else { return };
    let (train, val) = split_train_val(&data.train, 10_000, None, 0).unwrap();
    assert_eq!((train.len(), val.len()), (50_000, 10_000));
    let mut hist = train.label_histogram();
    for (h, v) in hist.iter_mut().zip(val.label_histogram()) {
        *h += v;
    }
    assert_eq!(hist, vec![6000; CLASSES]);
}
