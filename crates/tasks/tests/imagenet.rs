//! The ImageNet loader on image folders written here, and its evaluation
//! transform against torchvision's on the images in
//! tests/fixtures/imagenet-reference, whose values
//! benches/reference/image_transform.py wrote with torchvision 0.24 and
//! Pillow (see that script).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use untrainable_tasks::DataError;
use untrainable_tasks::image_folder::{BadImages, ImageFolder, ImageNet, decode_file};
use untrainable_tasks::image_pipeline::{Batches, PipelineConfig, build_batch};
use untrainable_tasks::image_transform::{
    IMAGENET_MEAN, IMAGENET_STD, Region, Rgb8, Transform, example_rng, resize,
};

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/imagenet-reference")
}

fn reference() -> Value {
    let text = fs::read_to_string(reference_dir().join("torchvision.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Every `stride`-th row and column of `image`, RGB interleaved.
fn grid(image: &Rgb8, stride: usize) -> Vec<i64> {
    let mut out = Vec::new();
    for y in (0..image.height).step_by(stride) {
        for x in (0..image.width).step_by(stride) {
            let p = (y * image.width + x) * 3;
            out.extend(image.pixels[p..p + 3].iter().map(|&v| v as i64));
        }
    }
    out
}

/// Largest and mean absolute difference, in byte levels.
fn differences(ours: &[i64], theirs: &Value) -> (i64, f64) {
    let theirs: Vec<i64> = theirs
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(ours.len(), theirs.len());
    let diffs: Vec<i64> = ours
        .iter()
        .zip(&theirs)
        .map(|(a, b)| (a - b).abs())
        .collect();
    let max = *diffs.iter().max().unwrap();
    (max, diffs.iter().sum::<i64>() as f64 / diffs.len() as f64)
}

/// Tolerances in byte levels (1 level = 1/255 before normalisation, about
/// 0.017 after): PNGs decode to the same bytes in both, and the resize is
/// PIL's arithmetic, so they must match exactly; JPEG decoders may differ
/// by a few levels (IDCT and chroma upsampling are not fixed by the
/// standard; libjpeg-turbo's and zune-jpeg's chroma upsampling differ), so
/// JPEGs are held to a largest and a mean difference. Measured: the RGB
/// JPEG (4:2:0 chroma) largest 3, mean 0.40 levels; greyscale and CMYK
/// largest 1, mean ≤ 0.02; PNGs 0.
fn tolerance(name: &str) -> (i64, f64) {
    if name.ends_with(".png") {
        (0, 0.0)
    } else {
        (3, 0.6)
    }
}

#[test]
fn evaluation_transform_matches_torchvision() {
    let reference = reference();
    let stride = reference["stride"].as_u64().unwrap() as usize;
    for (name, expected) in reference["images"].as_object().unwrap() {
        let image = decode_file(&reference_dir().join("images").join(name)).unwrap();
        let size: Vec<usize> = serde_json::from_value(expected["size"].clone()).unwrap();
        assert_eq!([image.height, image.width], size[..], "{name}");
        let out = Transform::EVAL.apply(&image, &mut example_rng(0, 0, 0));
        let (max, mean) = differences(&grid(&out, stride), &expected["eval_grid"]);
        eprintln!("{name}: evaluation transform, largest {max}, mean {mean:.3} levels");
        let (max_tol, mean_tol) = tolerance(name);
        assert!(
            max <= max_tol && mean <= mean_tol,
            "{name}: largest {max}, mean {mean} levels"
        );

        let mut values = vec![0.0; 3 * 224 * 224];
        untrainable_tasks::image_transform::normalise_into(&out, &mut values);
        for c in 0..3 {
            let ours = values[c * 224 * 224..(c + 1) * 224 * 224]
                .iter()
                .map(|&v| v as f64)
                .sum::<f64>()
                / (224.0 * 224.0);
            let theirs = expected["eval_channel_mean"][c].as_f64().unwrap();
            // A mean difference of `mean_tol` levels moves a channel's mean
            // by at most that much.
            let allowed = 1e-5 + mean_tol / 255.0 / IMAGENET_STD[c] as f64;
            assert!(
                (ours - theirs).abs() <= allowed,
                "{name} channel {c}: {ours} vs {theirs}"
            );
        }
    }
}

#[test]
fn crop_resize_matches_torchvision() {
    let reference = reference();
    let stride = reference["stride"].as_u64().unwrap() as usize;
    for (name, expected) in reference["images"].as_object().unwrap() {
        let image = decode_file(&reference_dir().join("images").join(name)).unwrap();
        let b: Vec<usize> = serde_json::from_value(expected["crop_box"].clone()).unwrap();
        let region = Region {
            top: b[0],
            left: b[1],
            height: b[2],
            width: b[3],
        };
        let out = resize(&image, region, 224, 224);
        let (max, mean) = differences(&grid(&out, stride), &expected["crop_grid"]);
        eprintln!("{name}: crop resize, largest {max}, mean {mean:.3} levels");
        let (max_tol, mean_tol) = tolerance(name);
        assert!(
            max <= max_tol && mean <= mean_tol,
            "{name}: largest {max}, mean {mean} levels"
        );
    }
}

#[test]
fn greyscale_cmyk_and_alpha_images_decode_to_rgb() {
    let dir = reference_dir().join("images");
    let grey = decode_file(&dir.join("cat/grey-333x500.JPEG")).unwrap();
    assert!(grey.pixels.chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    for name in ["cat/cmyk-300x280.jpg", "dog/rgba-160x120.png"] {
        let image = decode_file(&dir.join(name)).unwrap();
        assert_eq!(image.pixels.len(), image.width * image.height * 3, "{name}");
        assert!(
            image.pixels.chunks(3).any(|p| p[0] != p[2]),
            "{name} lost its colour"
        );
    }
}

#[test]
fn classes_are_sorted_names_and_images_sorted_paths() {
    let folder = ImageFolder::open(&reference_dir().join("images")).unwrap();
    assert_eq!(folder.classes, ["cat", "dog"]);
    let names: Vec<(String, u32)> = folder
        .images
        .iter()
        .map(|(p, l)| (p.file_name().unwrap().to_string_lossy().into_owned(), *l))
        .collect();
    assert_eq!(
        names,
        [
            ("cmyk-300x280.jpg".into(), 0),
            ("grey-333x500.JPEG".into(), 0),
            ("rgb-500x375.jpg".into(), 0),
            ("rgb-300x260.png".into(), 1),
            ("rgba-160x120.png".into(), 1)
        ]
    );
}

// ---------- generated folders and bad input ----------

/// A `width × height` RGB test pattern.
fn pattern(width: u32, height: u32, shade: u8) -> image::RgbImage {
    image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 5) as u8, shade])
    })
}

fn write_jpeg(path: &Path, width: u32, height: u32, shade: u8) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    pattern(width, height, shade)
        .save_with_format(path, image::ImageFormat::Jpeg)
        .unwrap();
}

/// ROOT/{train,val}/{n01,n02}/ with `per_class` JPEGs each (sizes vary).
fn write_imagenet(root: &Path, per_class: usize) {
    for split in ["train", "val"] {
        for (c, class) in ["n01", "n02"].iter().enumerate() {
            for i in 0..per_class {
                let path = root
                    .join(split)
                    .join(class)
                    .join(format!("{class}_{i}.JPEG"));
                write_jpeg(&path, 60 + 7 * i as u32, 50 + 3 * c as u32, (40 * i) as u8);
            }
        }
    }
}

fn layout_error(err: DataError) -> (PathBuf, String) {
    let message = err.to_string();
    match err {
        DataError::BadLayout { path, .. } => (path, message),
        other => panic!("expected a layout error, got {other:?}"),
    }
}

#[test]
fn a_generated_imagenet_opens_with_matching_classes() {
    let dir = tempfile::tempdir().unwrap();
    write_imagenet(dir.path(), 3);
    let net = ImageNet::open(dir.path()).unwrap();
    assert_eq!(net.train.classes, ["n01", "n02"]);
    assert_eq!((net.train.len(), net.val.len()), (6, 6));
    assert_eq!(net.train.images[4].1, 1);
}

#[test]
fn missing_split_is_named_with_what_to_download() {
    let dir = tempfile::tempdir().unwrap();
    write_imagenet(dir.path(), 1);
    fs::remove_dir_all(dir.path().join("val")).unwrap();
    let (path, message) = layout_error(ImageNet::open(dir.path()).unwrap_err());
    assert_eq!(path, dir.path().join("val"));
    assert!(
        message.contains("missing the val split") && message.contains("ILSVRC-2012"),
        "{message}"
    );
}

#[test]
fn no_data_at_all_says_what_to_download_and_where_to_point() {
    // Only when the variable is unset here; the message is the same either way.
    if std::env::var_os(untrainable_tasks::image_folder::ENV_IMAGENET).is_none() {
        let message = ImageNet::find(None).unwrap_err().to_string();
        assert!(
            message.contains("--data") && message.contains("UNTRAINABLE_IMAGENET"),
            "{message}"
        );
    }
}

#[test]
fn empty_class_and_class_mismatch_are_named() {
    let dir = tempfile::tempdir().unwrap();
    write_imagenet(dir.path(), 1);
    fs::create_dir_all(dir.path().join("train/n03")).unwrap();
    let (path, message) = layout_error(ImageNet::open(dir.path()).unwrap_err());
    assert_eq!(path, dir.path().join("train/n03"));
    assert!(message.contains("without images"), "{message}");

    write_jpeg(&dir.path().join("train/n03/a.jpg"), 40, 40, 0);
    let (path, message) = layout_error(ImageNet::open(dir.path()).unwrap_err());
    assert_eq!(path, dir.path().join("val"));
    assert!(message.contains("class n03 is in only one"), "{message}");
}

#[test]
fn non_image_files_are_named_and_dot_files_ignored() {
    let dir = tempfile::tempdir().unwrap();
    write_imagenet(dir.path(), 1);
    fs::write(dir.path().join("train/n01/.DS_Store"), b"x").unwrap();
    assert!(ImageNet::open(dir.path()).is_ok());
    let notes = dir.path().join("train/n01/notes.txt");
    fs::write(&notes, b"hello").unwrap();
    let (path, message) = layout_error(ImageNet::open(dir.path()).unwrap_err());
    assert_eq!(path, notes);
    assert!(message.contains("not an image"), "{message}");
}

#[test]
fn undecodable_files_fail_or_are_skipped_by_policy() {
    let dir = tempfile::tempdir().unwrap();
    write_imagenet(dir.path(), 2);
    let good = fs::read(dir.path().join("train/n01/n01_0.JPEG")).unwrap();
    let truncated = dir.path().join("train/n01/n01_1.JPEG");
    fs::write(&truncated, &good[..good.len() / 3]).unwrap();
    let text = dir.path().join("train/n02/n02_0.JPEG");
    fs::write(&text, b"not a picture at all").unwrap();

    let folder = ImageFolder::open(&dir.path().join("train")).unwrap();
    for bad in [&truncated, &text] {
        let i = folder.images.iter().position(|(p, _)| p == bad).unwrap();
        match folder.read(i).unwrap_err() {
            DataError::Undecodable { path, .. } => assert_eq!(&path, bad),
            other => panic!("{other:?}"),
        }
    }
    let mut config = PipelineConfig {
        transform: Transform::TRAIN,
        seed: 0,
        epoch: 0,
        workers: 1,
        prefetch: 1,
        bad_images: BadImages::Fail,
    };
    let all: Vec<usize> = (0..folder.len()).collect();
    let message = build_batch(&folder, &all, &config).unwrap_err().to_string();
    assert!(
        message.contains("n01_1.JPEG") && message.contains("data check"),
        "{message}"
    );

    config.bad_images = BadImages::Skip;
    let batch = build_batch(&folder, &all, &config).unwrap();
    assert_eq!(batch.skipped, vec![truncated, text]);
    assert_eq!(batch.len(), 2);
    assert_eq!(batch.pixels.len(), 2 * 3 * 224 * 224);
}

#[test]
fn batches_are_the_same_for_any_number_of_workers_and_repeat_by_epoch() {
    let dir = tempfile::tempdir().unwrap();
    write_imagenet(dir.path(), 5);
    let folder = Arc::new(ImageFolder::open(&dir.path().join("train")).unwrap());
    let plan = vec![vec![3, 1, 7], vec![0, 9], vec![2, 4, 6], vec![8, 5]];
    let run = |workers, epoch| -> Vec<_> {
        let config = PipelineConfig {
            transform: Transform::TRAIN,
            seed: 5,
            epoch,
            workers,
            prefetch: 1,
            bad_images: BadImages::Fail,
        };
        Batches::start(Arc::clone(&folder), plan.clone(), config)
            .map(Result::unwrap)
            .collect()
    };
    let one = run(1, 0);
    assert_eq!(one.len(), 4);
    assert_eq!(one[2].indices, [2, 4, 6]);
    assert_eq!(one[2].labels, [0, 0, 1]);
    assert_eq!(run(3, 0), one);
    assert_ne!(run(2, 1), one);

    // Values are normalised pixels of 224 × 224 crops.
    let lo = (0..3)
        .map(|c| (0.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c])
        .fold(f32::MAX, f32::min);
    let hi = (0..3)
        .map(|c| (1.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c])
        .fold(f32::MIN, f32::max);
    assert!(
        one.iter()
            .flat_map(|b| &b.pixels)
            .all(|&v| (lo..=hi).contains(&v))
    );
}

#[test]
fn a_failing_batch_ends_the_pass_with_its_error() {
    let dir = tempfile::tempdir().unwrap();
    write_imagenet(dir.path(), 2);
    fs::write(dir.path().join("train/n02/n02_1.JPEG"), b"garbage").unwrap();
    let folder = Arc::new(ImageFolder::open(&dir.path().join("train")).unwrap());
    let config = PipelineConfig {
        transform: Transform::EVAL,
        seed: 0,
        epoch: 0,
        workers: 2,
        prefetch: 2,
        bad_images: BadImages::Fail,
    };
    let results: Vec<_> =
        Batches::start(folder, vec![vec![0], vec![3], vec![1], vec![2]], config).collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    assert!(
        matches!(&results[1], Err(DataError::Undecodable { path, .. }) if path.ends_with("n02_1.JPEG"))
    );
}
