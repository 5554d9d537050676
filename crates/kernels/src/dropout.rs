//! Dropout with its mask drawn in one pass on burn's CPU backend, instead of
//! element by element through burn's generic sampler. burn's module (its
//! probability and its training flag, cleared by `freeze`) and its semantics
//! are kept: each element kept with probability `1 − p` and scaled by
//! `1 / (1 − p)`.

use burn::nn::Dropout;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

/// Mask values drawn from one random stream: a fixed split of the mask, so
/// that it is the same on any number of threads.
const CHUNK: usize = 1 << 14;

/// Random bits drawn at a time, on the stack.
const DRAW: usize = 1 << 10;

/// `layer.forward(x)`, with the mask drawn on the host on flex.
///
/// The seed of the mask is drawn from the device's seeded stream, so runs
/// with the same seed drop the same elements; each chunk of the mask then
/// takes 32 random bits per element from its own xoshiro256++ stream (seeded
/// with the mask's seed plus the chunk's index), chunks in parallel, and
/// holds `0` or `1 / (1 − p)`, so applying it is one product. On other
/// backends burn draws the mask on the device.
pub fn dropout<const D: usize>(layer: &Dropout, x: Tensor<D>) -> Tensor<D> {
    let device = x.device();
    let active = layer.training.is_enabled() && device.is_autodiff() && layer.prob > 0.0;
    if !active || device.clone().inner() != Device::flex() {
        return layer.forward(x);
    }
    let seed = mask_seed(&device);
    let keep = 1.0 - layer.prob;
    // An element is kept when its 32 random bits, read as a fraction of
    // 2³², fall below `keep` (< 1, so the threshold fits in 32 bits).
    let threshold = (keep * 4_294_967_296.0) as u32;
    let scale = (1.0 / keep) as f32;
    let mut mask = vec![0.0f32; x.shape().num_elements()];
    mask.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(chunk, mask)| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed.wrapping_add(chunk as u64));
            let mut bits = [0u32; DRAW];
            for mask in mask.chunks_mut(DRAW) {
                let bits = &mut bits[..mask.len()];
                rng.fill(bits);
                for (m, &b) in mask.iter_mut().zip(bits.iter()) {
                    *m = if b < threshold { scale } else { 0.0 };
                }
            }
        });
    let mask = Tensor::<D>::from_data(TensorData::new(mask, x.shape()), (&device, x.dtype()));
    x * mask
}

/// 60 bits from the device's random stream (30 per draw: the device's
/// integers may be `i32`).
fn mask_seed(device: &Device) -> u64 {
    let halves = Tensor::<1, Int>::random([2], Distribution::Uniform(0.0, 1_073_741_824.0), device)
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("two integers");
    ((halves[0] as u64) << 30) | halves[1] as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values;
    use burn::module::Module;
    use burn::nn::DropoutConfig;
    use burn::tensor::DType;

    fn input(n: usize, device: &Device) -> Tensor<1> {
        let data: Vec<f64> = (0..n).map(|i| 1.0 + (i % 7) as f64).collect();
        Tensor::from_data(TensorData::new(data, [n]), (device, DType::F64))
    }

    #[test]
    fn keeps_each_element_with_probability_one_minus_p_and_scales_it() {
        let _generator = untrainable_core::random_stream_lock();
        let device = Device::flex().autodiff();
        device.seed(3);
        let n = 200_000;
        let p = 0.1;
        let layer = DropoutConfig::new(p).init();
        let x = values(input(n, &device));
        let y = values(dropout(&layer, input(n, &device)));
        let mut kept = 0;
        for (x, y) in x.iter().zip(&y) {
            if *y != 0.0 {
                kept += 1;
                assert!(
                    (y - x / (1.0 - p)).abs() < 1e-6 * y.abs(),
                    "{x} kept as {y}"
                );
            }
        }
        // Binomial(n, 0.9): standard deviation 134 kept elements.
        let expected = (1.0 - p) * n as f64;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (kept as f64 - expected).abs() < 5.0 * sd,
            "{kept} kept of {n}, expected {expected} ± {sd:.0}"
        );
    }

    #[test]
    fn the_same_seed_drops_the_same_elements_and_successive_masks_differ() {
        let _generator = untrainable_core::random_stream_lock();
        let device = Device::flex().autodiff();
        let layer = DropoutConfig::new(0.5).init();
        let draw = || values(dropout(&layer, input(1000, &device)));
        device.seed(11);
        let (first, second) = (draw(), draw());
        device.seed(11);
        assert_eq!(draw(), first);
        assert_ne!(first, second);
    }

    #[test]
    fn the_mask_is_the_same_on_any_number_of_threads_and_differs_between_chunks() {
        let _generator = untrainable_core::random_stream_lock();
        let device = Device::flex().autodiff();
        let layer = DropoutConfig::new(0.5).init();
        let n = 3 * CHUNK + 100;
        let draw = |threads: usize| {
            device.seed(13);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| values(dropout(&layer, input(n, &device))))
        };
        let one = draw(1);
        assert_eq!(draw(3), one);
        let kept = |chunk: &[f64]| chunk.iter().map(|y| *y != 0.0).collect::<Vec<_>>();
        assert_ne!(kept(&one[..CHUNK]), kept(&one[CHUNK..2 * CHUNK]));
    }

    #[test]
    fn the_gradient_is_the_mask() {
        let _generator = untrainable_core::random_stream_lock();
        let device = Device::flex().autodiff();
        device.seed(5);
        let layer = DropoutConfig::new(0.3).init();
        let x = input(500, &device).require_grad();
        let y = dropout(&layer, x.clone());
        let grads = y.clone().sum().backward();
        let g = values(x.grad(&grads).unwrap());
        let ratio: Vec<f64> = values(y)
            .iter()
            .zip(values(x.clone()))
            .map(|(y, x)| y / x)
            .collect();
        assert!(g.contains(&0.0) && g.iter().any(|g| *g != 0.0));
        for (g, r) in g.iter().zip(&ratio) {
            assert!((g - r).abs() < 1e-12, "gradient {g}, mask {r}");
        }
    }

    #[test]
    fn is_the_identity_when_frozen_without_autodiff_or_at_zero() {
        let device = Device::flex().autodiff();
        let x = values(input(100, &device));
        let frozen = DropoutConfig::new(0.5).init().freeze();
        assert_eq!(values(dropout(&frozen, input(100, &device))), x);
        let layer = DropoutConfig::new(0.5).init();
        let plain = Device::flex();
        assert_eq!(values(dropout(&layer, input(100, &plain))), x);
        let zero = DropoutConfig::new(0.0).init();
        assert_eq!(values(dropout(&zero, input(100, &device))), x);
    }
}
