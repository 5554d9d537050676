//! Image batches as tensors, and the noise inputs of the warm-up.

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use untrainable_tasks::Augment;
use untrainable_tasks::fashion_mnist::ImageSet;

/// How stored images become network inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// Side of the square input; images are resized (bilinear) when it
    /// differs from the stored size (the `paper` preset uses 224).
    pub image_size: usize,
    /// Channels; a grey image is repeated (the `paper` preset uses 3).
    pub channels: usize,
    /// Subtracted from every pixel (pixels are in [0, 1]).
    pub mean: f32,
    /// Pixels are divided by this after the mean is subtracted.
    pub std: f32,
    /// Augmentation of training batches (validation and test batches are
    /// never augmented); absent: none.
    #[serde(default)]
    pub augment: Augment,
}

impl InputSpec {
    pub fn validate(&self) -> Result<(), String> {
        if self.image_size == 0 || self.channels == 0 {
            return Err("input.image_size and input.channels must be at least 1".into());
        }
        if !(self.std > 0.0) {
            return Err(format!("input.std must be positive, got {}", self.std));
        }
        Ok(())
    }

    /// Features of one flattened input example.
    pub fn features(&self) -> usize {
        self.channels * self.image_size * self.image_size
    }

    /// The images at `indices` as `(batch, channels, size, size)` and their labels.
    pub fn batch(
        &self,
        set: &ImageSet,
        indices: &[usize],
        device: &Device,
    ) -> (Tensor<4>, Tensor<1, Int>) {
        self.build(set, indices, device, None)
    }

    /// [`InputSpec::batch`] with [`InputSpec::augment`] applied, its draws
    /// taken from the backend's random stream (which the training loop fixes
    /// per step).
    pub fn training_batch(
        &self,
        set: &ImageSet,
        indices: &[usize],
        device: &Device,
    ) -> (Tensor<4>, Tensor<1, Int>) {
        if self.augment.is_identity() {
            return self.batch(set, indices, device);
        }
        let draws =
            Tensor::<2>::random([indices.len(), 3], Distribution::Uniform(0.0, 1.0), device)
                .into_data()
                .convert::<f64>()
                .try_into_vec::<f64>()
                .expect("f64 draws");
        self.build(set, indices, device, Some(&draws))
    }

    fn build(
        &self,
        set: &ImageSet,
        indices: &[usize],
        device: &Device,
        draws: Option<&[f64]>,
    ) -> (Tensor<4>, Tensor<1, Int>) {
        let (rows, cols) = (set.rows, set.cols);
        let mut pixels = Vec::with_capacity(indices.len() * rows * cols);
        let mut labels = Vec::with_capacity(indices.len());
        let mut augmented = vec![0.0; rows * cols];
        for (k, &i) in indices.iter().enumerate() {
            let mut image = set.example(i);
            if let Some(draws) = draws {
                let d = [draws[3 * k], draws[3 * k + 1], draws[3 * k + 2]];
                self.augment.apply(image, rows, cols, d, &mut augmented);
                image = &augmented;
            }
            pixels.extend(image.iter().map(|p| (p - self.mean) / self.std));
            labels.push(set.labels[i] as i64);
        }
        let n = indices.len();
        let mut images =
            Tensor::<4>::from_data(TensorData::new(pixels, [n, 1, rows, cols]), device);
        if rows != self.image_size || cols != self.image_size {
            images = interpolate(
                images,
                InterpolateOptions::new(InterpolateMode::Bilinear)
                    .with_output_size([self.image_size, self.image_size]),
            );
        }
        if self.channels > 1 {
            images = images.repeat_dim(1, self.channels);
        }
        let labels = Tensor::<1, Int>::from_data(TensorData::new(labels, [n]), device);
        (images, labels)
    }
}

/// The noise of the released code's `create_rand_inputs` (docs/paper.md §2.4):
/// `clamp(N(0, 1) + 0.1 · N(0, 1), 0, 1)`, shaped like an input batch.
pub fn noise_images(shape: [usize; 4], device: &Device) -> Tensor<4> {
    let base = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    let jitter = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    (base + jitter.mul_scalar(0.1)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use untrainable_core::{seed, to_vec};

    /// Two 3×3 images with distinct pixels in [0, 1], labels 3 and 1.
    fn set() -> ImageSet {
        ImageSet {
            images: (0..18).map(|v| v as f32 / 18.0).collect(),
            labels: vec![3, 1],
            rows: 3,
            cols: 3,
        }
    }

    fn spec(augment: Augment) -> InputSpec {
        InputSpec {
            image_size: 3,
            channels: 1,
            mean: 0.0,
            std: 1.0,
            augment,
        }
    }

    #[test]
    fn training_batches_are_augmented_per_seed_and_other_batches_never() {
        let _seeded = crate::generator();
        let device = Device::flex();
        let (set, idx) = (set(), [1, 0]);
        let plain = to_vec(spec(Augment::default()).batch(&set, &idx, &device).0);
        seed(&device, 1);
        let same = to_vec(
            spec(Augment::default())
                .training_batch(&set, &idx, &device)
                .0,
        );
        assert_eq!(plain, same, "no augmentation: the plain batch");

        let flip = spec(Augment {
            max_shift: 0,
            flip: true,
        });
        let mut seen_flipped = false;
        for s in 0..8 {
            seed(&device, s);
            let (images, labels) = flip.training_batch(&set, &idx, &device);
            let images = to_vec(images);
            seed(&device, s);
            assert_eq!(images, to_vec(flip.training_batch(&set, &idx, &device).0));
            let labels = labels
                .into_data()
                .convert::<i64>()
                .try_to_vec::<i64>()
                .unwrap();
            assert_eq!(labels, vec![1, 3]);
            for (k, &i) in idx.iter().enumerate() {
                let got = &images[9 * k..9 * (k + 1)];
                let original = set.example(i);
                let mirrored: Vec<f32> = (0..9).map(|p| original[p / 3 * 3 + 2 - p % 3]).collect();
                assert!(got == original || got == mirrored.as_slice(), "{got:?}");
                seen_flipped |= got == mirrored.as_slice();
            }
        }
        assert!(seen_flipped, "eight seeds never flipped an image");
        // Evaluation batches ignore the augmentation.
        assert_eq!(to_vec(flip.batch(&set, &idx, &device).0), plain);
    }
}
