//! The standard ImageNet transforms on decoded RGB images, computed as
//! torchvision computes them on PIL images, so that a network sees the same
//! inputs here as in the usual PyTorch pipeline:
//!
//! - training: RandomResizedCrop(224, scale 0.08–1, ratio 3/4–4/3), then a
//!   horizontal flip with probability 1/2;
//! - evaluation: Resize(256) of the shorter side, then CenterCrop(224);
//! - both: pixels / 255, normalised by the ImageNet mean and std, laid out
//!   channel-major (3 × 224 × 224).
//!
//! Resizing is PIL's bilinear filter, which widens its support by the
//! downscaling factor (antialiasing) and works in 8-bit fixed point with
//! 22 fractional bits, one horizontal then one vertical pass, each rounded
//! to 8 bits. [`resize`] repeats that arithmetic, so an image decoded to the
//! same bytes resizes to the same bytes as in PIL.
//!
//! The random draws of each training example come from its own generator,
//! fixed by (seed, epoch, example index) ([`example_rng`]): a resumed run
//! and any number of decoding workers see the same crops.

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};

/// Per-channel mean of ImageNet's training images (RGB, pixels in [0, 1]).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// Per-channel standard deviation of ImageNet's training images.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Fractional bits of PIL's resampling coefficients (32 − 8 − 2).
const PRECISION_BITS: u32 = 22;

/// An 8-bit RGB image, pixels interleaved row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    pub width: usize,
    pub height: usize,
    /// `height × width × 3` bytes.
    pub pixels: Vec<u8>,
}

impl Rgb8 {
    /// # Panics
    /// If `pixels` does not hold `width × height` RGB pixels.
    pub fn new(width: usize, height: usize, pixels: Vec<u8>) -> Self {
        assert_eq!(
            pixels.len(),
            width * height * 3,
            "{width}×{height} RGB pixels"
        );
        Self {
            width,
            height,
            pixels,
        }
    }

    /// The whole image as a region.
    pub fn full(&self) -> Region {
        Region {
            top: 0,
            left: 0,
            height: self.height,
            width: self.width,
        }
    }
}

/// A rectangle of an image, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub width: usize,
}

/// The transform of a split.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transform {
    /// RandomResizedCrop to `size` with the given scale and log-uniform
    /// aspect-ratio ranges, then a horizontal flip with probability 1/2.
    Train {
        size: usize,
        scale: (f64, f64),
        ratio: (f64, f64),
    },
    /// Resize the shorter side to `resize`, then take the central `size × size`.
    Eval { resize: usize, size: usize },
}

impl Transform {
    /// ImageNet's training transform: RandomResizedCrop(224) + flip.
    pub const TRAIN: Transform = Transform::Train {
        size: 224,
        scale: (0.08, 1.0),
        ratio: (3.0 / 4.0, 4.0 / 3.0),
    };
    /// ImageNet's evaluation transform: Resize(256) + CenterCrop(224).
    pub const EVAL: Transform = Transform::Eval {
        resize: 256,
        size: 224,
    };

    /// Side of the square output.
    pub fn size(&self) -> usize {
        match *self {
            Transform::Train { size, .. } | Transform::Eval { size, .. } => size,
        }
    }

    /// The transformed image; `rng` supplies the training transform's draws
    /// (the evaluation transform draws nothing).
    pub fn apply(&self, image: &Rgb8, rng: &mut ChaCha8Rng) -> Rgb8 {
        match *self {
            Transform::Train { size, scale, ratio } => {
                let region = random_resized_crop(image.height, image.width, scale, ratio, rng);
                let mut out = resize(image, region, size, size);
                if rng.random::<f64>() < 0.5 {
                    flip_horizontal(&mut out);
                }
                out
            }
            Transform::Eval { resize: side, size } => {
                let (h, w) = shorter_side_to(image.height, image.width, side);
                resize_window(image, image.full(), w, h, center_crop(h, w, size))
            }
        }
    }
}

/// The generator of one training example's draws, fixed by
/// `(seed, epoch, example)` alone.
pub fn example_rng(seed: u64, epoch: u64, example: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(b"imgcrops");
    key[8..16].copy_from_slice(&seed.to_le_bytes());
    key[16..24].copy_from_slice(&epoch.to_le_bytes());
    key[24..].copy_from_slice(&example.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// torchvision's Resize(side) size: the shorter side becomes `side`, the
/// longer one `⌊side · long / short⌋`. Returns `(height, width)`.
pub fn shorter_side_to(height: usize, width: usize, side: usize) -> (usize, usize) {
    let (short, long) = (height.min(width), height.max(width));
    let new_long = (side as f64 * long as f64 / short as f64) as usize;
    if height <= width {
        (side, new_long)
    } else {
        (new_long, side)
    }
}

/// torchvision's CenterCrop: the central `size × size` of a `height × width`
/// image, offsets rounded half to even as Python's `round`.
///
/// # Panics
/// If the image is smaller than `size` (Resize(256) never gives one).
pub fn center_crop(height: usize, width: usize, size: usize) -> Region {
    assert!(
        height >= size && width >= size,
        "{height}×{width} image, crop {size}"
    );
    let offset = |extent: usize| ((extent - size) as f64 / 2.0).round_ties_even() as usize;
    Region {
        top: offset(height),
        left: offset(width),
        height: size,
        width: size,
    }
}

/// torchvision's `RandomResizedCrop.get_params`: up to ten draws of an area
/// fraction (uniform in `scale`) and an aspect ratio (log-uniform in
/// `ratio`) until the box fits, placed uniformly; otherwise the central
/// crop with the aspect ratio clamped into `ratio`.
pub fn random_resized_crop(
    height: usize,
    width: usize,
    scale: (f64, f64),
    ratio: (f64, f64),
    rng: &mut ChaCha8Rng,
) -> Region {
    let area = (height * width) as f64;
    let (log_lo, log_hi) = (ratio.0.ln(), ratio.1.ln());
    for _ in 0..10 {
        let target_area = area * rng.random_range(scale.0..=scale.1);
        let aspect = rng.random_range(log_lo..=log_hi).exp();
        let w = (target_area * aspect).sqrt().round_ties_even() as usize;
        let h = (target_area / aspect).sqrt().round_ties_even() as usize;
        if (1..=width).contains(&w) && (1..=height).contains(&h) {
            return Region {
                top: rng.random_range(0..=height - h),
                left: rng.random_range(0..=width - w),
                height: h,
                width: w,
            };
        }
    }
    let in_ratio = width as f64 / height as f64;
    let (h, w) = if in_ratio < ratio.0 {
        ((width as f64 / ratio.0).round_ties_even() as usize, width)
    } else if in_ratio > ratio.1 {
        (height, (height as f64 * ratio.1).round_ties_even() as usize)
    } else {
        (height, width)
    };
    Region {
        top: (height - h) / 2,
        left: (width - w) / 2,
        height: h,
        width: w,
    }
}

/// The pixels of `region`, copied.
pub fn crop(image: &Rgb8, region: Region) -> Rgb8 {
    let mut pixels = Vec::with_capacity(region.height * region.width * 3);
    for y in region.top..region.top + region.height {
        let start = (y * image.width + region.left) * 3;
        pixels.extend_from_slice(&image.pixels[start..start + region.width * 3]);
    }
    Rgb8::new(region.width, region.height, pixels)
}

/// Mirrors the image left to right, in place.
pub fn flip_horizontal(image: &mut Rgb8) {
    let w = image.width;
    for row in image.pixels.chunks_exact_mut(w * 3) {
        for x in 0..w / 2 {
            for c in 0..3 {
                row.swap(x * 3 + c, (w - 1 - x) * 3 + c);
            }
        }
    }
}

/// One output pixel's taps: the first input index and fixed-point weights.
struct Taps {
    first: usize,
    weights: Vec<i32>,
}

/// PIL's bilinear coefficients for resampling `in_size` pixels to
/// `out_size`: a triangle of half-width `max(in/out, 1)` around each output
/// pixel's centre, normalised, then rounded to [`PRECISION_BITS`] bits.
fn taps(in_size: usize, out_size: usize) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = filter_scale; // the triangle's support is 1 at scale 1
    (0..out_size)
        .map(|i| {
            let center = (i as f64 + 0.5) * scale;
            // C's (int) cast truncates towards zero, as `as i64` does.
            let first = ((center - support + 0.5) as i64).max(0) as usize;
            let last = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let raw: Vec<f64> = (first..last)
                .map(|x| {
                    let t = ((x as f64 - center + 0.5) / filter_scale).abs();
                    if t < 1.0 { 1.0 - t } else { 0.0 }
                })
                .collect();
            let total: f64 = raw.iter().sum();
            let one = (1u32 << PRECISION_BITS) as f64;
            let weights = raw
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    (0.5 + w * one) as i32
                })
                .collect();
            Taps { first, weights }
        })
        .collect()
}

/// Rounds a fixed-point sum (with its half already added) to a byte.
fn to_byte(sum: i32) -> u8 {
    (sum >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resamples `region` of `image` to `out_width × out_height` with PIL's
/// antialiased bilinear filter: horizontally first, then vertically, each
/// pass rounded to bytes, a pass skipped where its size does not change.
pub fn resize(image: &Rgb8, region: Region, out_width: usize, out_height: usize) -> Rgb8 {
    let everything = Region {
        top: 0,
        left: 0,
        height: out_height,
        width: out_width,
    };
    resize_window(image, region, out_width, out_height, everything)
}

/// The `window` of [`resize`]'s output, computing only what it needs: the
/// same bytes as resizing whole and cropping (torchvision's Resize +
/// CenterCrop), for about half the work.
pub fn resize_window(
    image: &Rgb8,
    region: Region,
    out_width: usize,
    out_height: usize,
    window: Region,
) -> Rgb8 {
    assert!(
        window.top + window.height <= out_height && window.left + window.width <= out_width,
        "window {window:?} of a {out_width}×{out_height} output"
    );
    let cols = (region.width != out_width)
        .then(|| taps(region.width, out_width).split_off(window.left))
        .map(|mut t| {
            t.truncate(window.width);
            t
        });
    let rows = (region.height != out_height)
        .then(|| taps(region.height, out_height).split_off(window.top))
        .map(|mut t| {
            t.truncate(window.height);
            t
        });
    // Source rows (within `region`) that the window's output rows read.
    let (first_row, end_row) = match &rows {
        Some(rows) => {
            let last = rows.last().expect("a window of at least one row");
            (rows[0].first, last.first + last.weights.len())
        }
        None => (window.top, window.top + window.height),
    };
    let source_rows = Region {
        top: region.top + first_row,
        height: end_row - first_row,
        ..region
    };
    let horizontal = match &cols {
        Some(cols) => resample_rows(image, source_rows, cols),
        None => crop(
            image,
            Region {
                left: region.left + window.left,
                width: window.width,
                ..source_rows
            },
        ),
    };
    match &rows {
        Some(rows) => resample_columns(&horizontal, rows, first_row),
        None => horizontal,
    }
}

/// The horizontal pass: each row of `rows` (a region of `image`) through `cols`.
fn resample_rows(image: &Rgb8, rows: Region, cols: &[Taps]) -> Rgb8 {
    let half = 1i32 << (PRECISION_BITS - 1);
    let mut out = Vec::with_capacity(rows.height * cols.len() * 3);
    for y in rows.top..rows.top + rows.height {
        let row = &image.pixels[(y * image.width + rows.left) * 3..][..rows.width * 3];
        for t in cols {
            let mut sum = [half; 3];
            for (k, &w) in t.weights.iter().enumerate() {
                let p = &row[(t.first + k) * 3..][..3];
                for c in 0..3 {
                    sum[c] += p[c] as i32 * w;
                }
            }
            out.extend(sum.map(to_byte));
        }
    }
    Rgb8::new(cols.len(), rows.height, out)
}

/// The vertical pass over `image`, whose row 0 is source row `first_row`.
fn resample_columns(image: &Rgb8, rows: &[Taps], first_row: usize) -> Rgb8 {
    let half = 1i32 << (PRECISION_BITS - 1);
    let stride = image.width * 3;
    let mut out = vec![0u8; rows.len() * stride];
    let mut sums = vec![0i32; stride];
    for (t, out_row) in rows.iter().zip(out.chunks_exact_mut(stride)) {
        sums.fill(half);
        for (k, &w) in t.weights.iter().enumerate() {
            let src = &image.pixels[(t.first - first_row + k) * stride..][..stride];
            for (s, &p) in sums.iter_mut().zip(src) {
                *s += p as i32 * w;
            }
        }
        for (o, &s) in out_row.iter_mut().zip(&sums) {
            *o = to_byte(s);
        }
    }
    Rgb8::new(image.width, rows.len(), out)
}

/// Writes `image` as `3 × height × width` floats, `(p / 255 − mean) / std`
/// per channel, as torchvision's ToTensor + Normalize.
///
/// # Panics
/// If `out` does not hold exactly the image's values.
pub fn normalise_into(image: &Rgb8, out: &mut [f32]) {
    let plane = image.width * image.height;
    assert_eq!(out.len(), 3 * plane, "3 × {plane} outputs");
    let (planes, _) = out.split_at_mut(3 * plane);
    for c in 0..3 {
        let dst = &mut planes[c * plane..(c + 1) * plane];
        let (mean, std) = (IMAGENET_MEAN[c], IMAGENET_STD[c]);
        for (d, p) in dst.iter_mut().zip(image.pixels[c..].iter().step_by(3)) {
            *d = (*p as f32 / 255.0 - mean) / std;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: usize, height: usize) -> Rgb8 {
        let mut pixels = Vec::new();
        for y in 0..height {
            for x in 0..width {
                pixels.extend([
                    (x * 7 % 256) as u8,
                    (y * 5 % 256) as u8,
                    ((x + y) % 256) as u8,
                ]);
            }
        }
        Rgb8::new(width, height, pixels)
    }

    #[test]
    fn resize_to_the_same_size_is_the_identity() {
        let image = gradient(13, 9);
        assert_eq!(resize(&image, image.full(), 13, 9), image);
        // The coefficients alone give the identity too (one tap of weight 1).
        for t in taps(9, 9) {
            assert_eq!(t.weights.iter().filter(|&&w| w != 0).count(), 1);
        }
    }

    #[test]
    fn a_window_of_the_resize_is_the_crop_of_the_whole_resize() {
        let image = gradient(53, 41);
        let region = Region {
            top: 3,
            left: 5,
            height: 30,
            width: 44,
        };
        for (w, h) in [(44, 30), (20, 30), (44, 17), (23, 13), (70, 61)] {
            let whole = resize(&image, region, w, h);
            for window in [
                Region {
                    top: 0,
                    left: 0,
                    height: h,
                    width: w,
                },
                Region {
                    top: 2,
                    left: 3,
                    height: h - 4,
                    width: w - 5,
                },
                Region {
                    top: h - 1,
                    left: w / 2,
                    height: 1,
                    width: 1,
                },
            ] {
                assert_eq!(
                    resize_window(&image, region, w, h, window),
                    crop(&whole, window),
                    "{w}×{h} {window:?}"
                );
            }
        }
    }

    #[test]
    fn constant_images_stay_constant_at_any_size() {
        let image = Rgb8::new(37, 23, [200, 17, 90].repeat(37 * 23));
        for (w, h) in [(5, 3), (36, 22), (80, 61), (224, 224)] {
            let out = resize(&image, image.full(), w, h);
            assert_eq!(out.pixels, [200, 17, 90].repeat(w * h), "{w}×{h}");
        }
    }

    #[test]
    fn halving_averages_pixel_pairs() {
        // A 2:1 downscale with the widened triangle: each output pixel is
        // ¼ · p₀ + ¾-weighted neighbours... checked against the exact mean
        // of a linear ramp, which the symmetric filter preserves.
        let row: Vec<u8> = (0..16).flat_map(|x| [x * 10, 0, 255 - x * 10]).collect();
        let image = Rgb8::new(16, 1, row);
        let out = resize(&image, image.full(), 8, 1);
        // Interior pixels of a ramp: the filter is symmetric about 2i + 1,
        // where the ramp is 10 · (2i + 0.5).
        for i in 1..7 {
            let expected = 10.0 * (2.0 * i as f64 + 0.5);
            assert!(
                (out.pixels[i * 3] as f64 - expected).abs() <= 0.5,
                "{i}: {}",
                out.pixels[i * 3]
            );
        }
    }

    #[test]
    fn shorter_side_and_center_crop_follow_torchvision() {
        assert_eq!(shorter_side_to(375, 500, 256), (256, 341));
        assert_eq!(shorter_side_to(500, 375, 256), (341, 256));
        assert_eq!(shorter_side_to(300, 300, 256), (256, 256));
        // (341 − 224) / 2 = 58.5 rounds to even: 58.
        let r = center_crop(256, 341, 224);
        assert_eq!((r.top, r.left, r.height, r.width), (16, 58, 224, 224));
        let r = center_crop(256, 343, 224);
        assert_eq!(r.left, 60); // 59.5 rounds to 60
    }

    #[test]
    fn random_crops_respect_their_ranges_and_repeat_per_example() {
        for example in 0..200 {
            let mut rng = example_rng(3, 1, example);
            let r = random_resized_crop(375, 500, (0.08, 1.0), (0.75, 4.0 / 3.0), &mut rng);
            assert!(r.top + r.height <= 375 && r.left + r.width <= 500, "{r:?}");
            let frac = (r.height * r.width) as f64 / (375.0 * 500.0);
            assert!((0.07..=1.0).contains(&frac), "{r:?}: area fraction {frac}");
            let ratio = r.width as f64 / r.height as f64;
            assert!((0.7..=1.4).contains(&ratio), "{r:?}: ratio {ratio}");
            let mut again = example_rng(3, 1, example);
            let same = random_resized_crop(375, 500, (0.08, 1.0), (0.75, 4.0 / 3.0), &mut again);
            assert_eq!(r, same);
        }
        let draw = |s, e, x| {
            random_resized_crop(
                375,
                500,
                (0.08, 1.0),
                (0.75, 4.0 / 3.0),
                &mut example_rng(s, e, x),
            )
        };
        assert_ne!(draw(0, 0, 0), draw(0, 1, 0));
        assert_ne!(draw(0, 0, 0), draw(1, 0, 0));
    }

    #[test]
    fn impossible_ratios_fall_back_to_the_clamped_central_crop() {
        // A 10 × 1000 strip: no box of ratio ≤ 4/3 and area ≥ 8 % fits, so
        // every try fails and the central crop of ratio 4/3 is taken.
        let mut rng = example_rng(0, 0, 0);
        let r = random_resized_crop(10, 1000, (0.08, 1.0), (0.75, 4.0 / 3.0), &mut rng);
        assert_eq!((r.top, r.left, r.height, r.width), (0, 493, 10, 13));
    }

    #[test]
    fn flip_mirrors_and_twice_is_the_identity() {
        let image = gradient(5, 2);
        let mut flipped = image.clone();
        flip_horizontal(&mut flipped);
        assert_eq!(&flipped.pixels[..3], &image.pixels[12..15]);
        flip_horizontal(&mut flipped);
        assert_eq!(flipped, image);
    }

    #[test]
    fn normalise_writes_channel_planes() {
        let image = Rgb8::new(2, 1, vec![0, 128, 255, 255, 0, 128]);
        let mut out = vec![0.0; 6];
        normalise_into(&image, &mut out);
        let n = |p: f32, c: usize| (p / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        assert_eq!(
            out,
            vec![
                n(0., 0),
                n(255., 0),
                n(128., 1),
                n(0., 1),
                n(255., 2),
                n(128., 2)
            ]
        );
    }
}
