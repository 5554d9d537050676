//! Image batches as tensors, and the noise inputs of the warm-up.

use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
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
        let (rows, cols) = (set.rows, set.cols);
        let mut pixels = Vec::with_capacity(indices.len() * rows * cols);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            pixels.extend(set.example(i).iter().map(|p| (p - self.mean) / self.std));
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

/// The noise of the released code's `create_rand_inputs` (NOTES §2.4):
/// `clamp(N(0, 1) + 0.1 · N(0, 1), 0, 1)`, shaped like an input batch.
pub fn noise_images(shape: [usize; 4], device: &Device) -> Tensor<4> {
    let base = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    let jitter = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device);
    (base + jitter.mul_scalar(0.1)).clamp(0.0, 1.0)
}
