//! MLP-Mixer (Tolstikhin et al., 2021, "MLP-Mixer: An all-MLP Architecture
//! for Vision"): an image classifier with neither convolutions nor attention.
//! Each layer mixes information across patches with one MLP and across
//! channels with another; its inductive bias sits between the FCN's (none)
//! and the CNN's (locality), which makes it a third kind of guide or target.
//!
//! This crate is the worked example of docs/new-architecture.md: it depends on
//! `untrainable-core` (the contract) and `untrainable-kernels` (the CPU
//! kernels) only.

use burn::module::Module;
use burn::nn::{Gelu, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use untrainable_core::{Forward, Network, Tap};
use untrainable_kernels::linear;

/// The shape of an MLP-Mixer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixerConfig {
    pub image_size: usize,
    pub in_channels: usize,
    /// Side of the square patches; must divide `image_size`.
    pub patch_size: usize,
    /// Width of each patch's embedding (the paper's C).
    pub channels: usize,
    /// Hidden width of the MLP across patches (D_S).
    pub token_hidden: usize,
    /// Hidden width of the MLP across channels (D_C).
    pub channel_hidden: usize,
    pub layers: usize,
    pub classes: usize,
}

impl MixerConfig {
    /// A small Mixer for 28×28 grayscale images: 16 patches of 7×7.
    pub fn small_28() -> Self {
        Self {
            image_size: 28,
            in_channels: 1,
            patch_size: 7,
            channels: 64,
            token_hidden: 32,
            channel_hidden: 128,
            layers: 4,
            classes: 10,
        }
    }

    pub fn patches(&self) -> usize {
        (self.image_size / self.patch_size).pow(2)
    }

    /// Parameter count from the config alone.
    pub fn num_params(&self) -> usize {
        let linear = |i: usize, o: usize| i * o + o;
        let (s, c) = (self.patches(), self.channels);
        let per_layer = 2 * (2 * c)
            + linear(s, self.token_hidden)
            + linear(self.token_hidden, s)
            + linear(c, self.channel_hidden)
            + linear(self.channel_hidden, c);
        let patch = self.in_channels * self.patch_size * self.patch_size;
        linear(patch, c) + self.layers * per_layer + 2 * c + linear(c, self.classes)
    }

    /// Checks the config; messages name the field.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("image_size", self.image_size),
            ("in_channels", self.in_channels),
            ("patch_size", self.patch_size),
            ("channels", self.channels),
            ("token_hidden", self.token_hidden),
            ("channel_hidden", self.channel_hidden),
            ("layers", self.layers),
            ("classes", self.classes),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("mixer.{name} must be at least 1, got 0"));
        }
        if self.image_size % self.patch_size != 0 {
            return Err(format!(
                "mixer.patch_size = {} must divide mixer.image_size = {}",
                self.patch_size, self.image_size
            ));
        }
        Ok(())
    }

    pub fn init(&self, device: &Device) -> Mixer {
        let (s, c) = (self.patches(), self.channels);
        let mlp = |i: usize, h: usize| Mlp {
            up: LinearConfig::new(i, h).init(device),
            down: LinearConfig::new(h, i).init(device),
            gelu: Gelu::new(),
        };
        Mixer {
            embed: LinearConfig::new(self.in_channels * self.patch_size.pow(2), c).init(device),
            layers: (0..self.layers)
                .map(|_| MixerLayer {
                    token_norm: LayerNormConfig::new(c).init(device),
                    token_mlp: mlp(s, self.token_hidden),
                    channel_norm: LayerNormConfig::new(c).init(device),
                    channel_mlp: mlp(c, self.channel_hidden),
                })
                .collect(),
            norm: LayerNormConfig::new(c).init(device),
            head: LinearConfig::new(c, self.classes).init(device),
            patch_size: self.patch_size,
        }
    }
}

#[derive(Module, Debug)]
struct Mlp {
    up: Linear,
    down: Linear,
    gelu: Gelu,
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        linear(&self.down, self.gelu.forward(linear(&self.up, x)))
    }
}

#[derive(Module, Debug)]
struct MixerLayer {
    token_norm: LayerNorm,
    token_mlp: Mlp,
    channel_norm: LayerNorm,
    channel_mlp: Mlp,
}

/// An MLP-Mixer classifier.
#[derive(Module, Debug)]
pub struct Mixer {
    embed: Linear,
    layers: Vec<MixerLayer>,
    norm: LayerNorm,
    head: Linear,
    patch_size: usize,
}

impl Mixer {
    /// `(B, C, H, W)` → `(B, patches, C·p·p)`, patches in row-major order.
    fn patches(&self, images: Tensor<4>) -> Tensor<3> {
        let [b, c, h, w] = images.dims();
        let p = self.patch_size;
        images
            .reshape([b, c, h / p, p, w / p, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([b, (h / p) * (w / p), c * p * p])
    }
}

impl Network for Mixer {
    type Input = Tensor<4>;

    /// Taps: the patch embedding, the output of each layer's token-mixing
    /// and channel-mixing residual, all `(B, patches, channels)`.
    fn forward(&self, images: Tensor<4>) -> Forward {
        let mut x = linear(&self.embed, self.patches(images));
        let mut taps = vec![Tap::new("embed", x.clone())];
        for (i, layer) in self.layers.iter().enumerate() {
            let mixed = layer
                .token_mlp
                .forward(layer.token_norm.forward(x.clone()).swap_dims(1, 2));
            x = x + mixed.swap_dims(1, 2);
            taps.push(Tap::new(format!("layer{i}.token_mixing"), x.clone()));
            x = x.clone() + layer.channel_mlp.forward(layer.channel_norm.forward(x));
            taps.push(Tap::new(format!("layer{i}.channel_mixing"), x.clone()));
        }
        let pooled = self.norm.forward(x).mean_dim(1).squeeze_dim::<2>(1);
        Forward {
            output: linear(&self.head, pooled),
            taps,
        }
    }

    fn tap_names(&self) -> Vec<String> {
        let per_layer = (0..self.layers.len()).flat_map(|i| {
            [
                format!("layer{i}.token_mixing"),
                format!("layer{i}.channel_mixing"),
            ]
        });
        std::iter::once("embed".to_string())
            .chain(per_layer)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_cut_in_row_major_order() {
        let device = Device::flex();
        let config = MixerConfig {
            image_size: 4,
            patch_size: 2,
            in_channels: 1,
            ..MixerConfig::small_28()
        };
        // Pixel (r, c) holds the index of its 2×2 patch, 2·(r/2) + c/2.
        let values: Vec<f32> = (0..16)
            .map(|k| (2 * (k / 4 / 2) + (k % 4) / 2) as f32)
            .collect();
        let image = Tensor::<1>::from_floats(values.as_slice(), &device).reshape([1, 1, 4, 4]);
        let patches = config.init(&device).patches(image);
        assert_eq!(patches.dims(), [1, 4, 4]);
        let got = untrainable_core::to_vec(patches);
        let want: Vec<f32> = (0..4).flat_map(|p| [p as f32; 4]).collect();
        assert_eq!(got, want);
    }
}
