//! A small vision transformer (Dosovitskiy et al., 2021): a second kind of
//! image guide, for comparing what a convolutional and an attention-based
//! guide pass on (the paper's error-consistency figure uses ViT-B/16).

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer, LayerNorm, Linear};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use untrainable_core::{Forward, Network, Tap};
use untrainable_kernels::{dropout, linear};

use crate::block::{Block, BlockSpec, Masks, validate_common};
use crate::{Activation, CrossAttention, Init, NormPlacement};

/// What the head reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    /// A learned class token prepended to the patches.
    Cls,
    /// The mean over patch tokens.
    Mean,
}

/// The shape of a vision transformer over square images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VitConfig {
    /// Height and width of the input images.
    pub image_size: usize,
    pub in_channels: usize,
    /// Side of the square patches; must divide `image_size`.
    pub patch_size: usize,
    pub classes: usize,
    pub d_model: usize,
    pub heads: usize,
    pub layers: usize,
    /// Width of each layer's MLP hidden layer.
    pub ff: usize,
    pub dropout: f64,
    pub pool: Pool,
}

impl VitConfig {
    /// For 28×28 grayscale images (Fashion-MNIST): 7×7 patches (16 tokens and
    /// a class token), d 64, 4 heads, 4 layers, MLP 128.
    pub fn small_28x28() -> Self {
        Self {
            image_size: 28,
            in_channels: 1,
            patch_size: 7,
            classes: 10,
            d_model: 64,
            heads: 4,
            layers: 4,
            ff: 128,
            dropout: 0.0,
            pool: Pool::Cls,
        }
    }

    fn patches(&self) -> usize {
        (self.image_size / self.patch_size).pow(2)
    }

    fn tokens(&self) -> usize {
        self.patches() + usize::from(self.pool == Pool::Cls)
    }

    fn block(&self) -> BlockSpec {
        BlockSpec {
            d_model: self.d_model,
            heads: self.heads,
            ff: self.ff,
            dropout: self.dropout,
            layer_norm_eps: 1e-6,
            norm: NormPlacement::Pre,
            cross: CrossAttention::Off,
            activation: Activation::Gelu,
            init: Init::Torch,
        }
    }

    /// Parameter count, computed from the config alone (nothing allocated).
    pub fn num_params(&self) -> usize {
        let d = self.d_model;
        let patch = self.in_channels * self.patch_size * self.patch_size;
        let cls = if self.pool == Pool::Cls { d } else { 0 };
        (patch * d + d)
            + cls
            + self.tokens() * d
            + self.layers * self.block().num_params()
            + 2 * d
            + d * self.classes
            + self.classes
    }

    pub fn validate(&self) -> Result<(), String> {
        let what = "vit";
        validate_common(
            what,
            &[
                ("image_size", self.image_size),
                ("in_channels", self.in_channels),
                ("patch_size", self.patch_size),
                ("classes", self.classes),
                ("d_model", self.d_model),
                ("heads", self.heads),
                ("layers", self.layers),
                ("ff", self.ff),
            ],
            self.d_model,
            self.heads,
            self.dropout,
        )?;
        if self.image_size % self.patch_size != 0 {
            return Err(format!(
                "{what}.patch_size must divide {what}.image_size; got {} and {}",
                self.patch_size, self.image_size
            ));
        }
        Ok(())
    }

    /// Per layer, the attention output and the layer output.
    pub fn tap_names(&self) -> Vec<String> {
        (0..self.layers)
            .flat_map(|i| [format!("layer{i}.self_attn"), format!("layer{i}.out")])
            .collect()
    }

    pub fn init(&self, device: &Device) -> Vit {
        let d = self.d_model;
        let patch = self.in_channels * self.patch_size * self.patch_size;
        Vit {
            patch_embed: Init::Torch.linear(patch, d, device),
            cls: (self.pool == Pool::Cls).then(|| Initializer::Zeros.init([1, 1, d], device)),
            positions: Initializer::Normal {
                mean: 0.0,
                std: 0.02,
            }
            .init([1, self.tokens(), d], device),
            layers: (0..self.layers)
                .map(|_| self.block().init(device))
                .collect(),
            norm: Init::Torch.layer_norm(d, 1e-6, device),
            head: Init::Torch.linear(d, self.classes, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            config: self.clone(),
        }
    }
}

/// Patch embedding, learned positions, pre-norm layers, a final norm and a
/// linear head on the class token or the mean patch token.
#[derive(Module, Debug)]
pub struct Vit {
    patch_embed: Linear,
    cls: Option<Param<Tensor<3>>>,
    positions: Param<Tensor<3>>,
    layers: Vec<Block>,
    norm: LayerNorm,
    head: Linear,
    dropout: Dropout,
    #[module(skip)]
    config: VitConfig,
}

impl Vit {
    pub fn config(&self) -> &VitConfig {
        &self.config
    }
}

impl Network for Vit {
    /// Images `(batch, channels, height, width)`.
    type Input = Tensor<4>;

    fn forward(&self, input: Tensor<4>) -> Forward {
        let config = &self.config;
        let [batch, channels, height, width] = input.dims();
        assert_eq!(
            [channels, height, width],
            [config.in_channels, config.image_size, config.image_size],
            "vit expects (batch, {}, {}, {}) images",
            config.in_channels,
            config.image_size,
            config.image_size
        );
        let (p, d) = (config.patch_size, config.d_model);
        let side = config.image_size / p;
        // (B, C, H, W) → (B, patches, C·p·p), patches in row-major order.
        let patches: Tensor<3> = input
            .reshape([batch, channels, side, p, side, p])
            .permute([0, 2, 4, 1, 3, 5])
            .reshape([batch, side * side, channels * p * p]);
        let mut x = linear(&self.patch_embed, patches);
        if let Some(cls) = &self.cls {
            x = Tensor::cat(vec![cls.val().expand([batch, 1, d]), x], 1);
        }
        let tokens = config.tokens();
        x = dropout(
            &self.dropout,
            x + self.positions.val().expand([batch, tokens, d]),
        );
        let masks = Masks {
            pad: None,
            causal: None,
        };
        let mut taps = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let mut trace = Vec::new();
            x = layer.forward(x, &masks, &mut trace);
            taps.extend(
                trace
                    .into_iter()
                    .filter(|(name, _)| name == "self_attn" || name == "out")
                    .map(|(name, value)| Tap::new(format!("layer{i}.{name}"), value)),
            );
        }
        let x = self.norm.forward(x);
        let pooled: Tensor<2> = match config.pool {
            Pool::Cls => x.narrow(1, 0, 1).reshape([batch, d]),
            Pool::Mean => x.mean_dim(1).reshape([batch, d]),
        };
        Forward {
            output: linear(&self.head, pooled),
            taps,
        }
    }

    fn tap_names(&self) -> Vec<String> {
        self.config.tap_names()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{build, build_seeded};
    use untrainable_core::{Guide, check_taps, parameter_values, to_vec};

    fn small(pool: Pool) -> VitConfig {
        VitConfig {
            d_model: 16,
            heads: 2,
            layers: 2,
            ff: 32,
            pool,
            ..VitConfig::small_28x28()
        }
    }

    #[test]
    fn output_and_taps_have_the_expected_shapes() {
        let device = Device::flex();
        for (pool, tokens) in [(Pool::Cls, 17), (Pool::Mean, 16)] {
            let net = build(|| small(pool).init(&device));
            let out = net.forward(Tensor::ones([3, 1, 28, 28], &device));
            assert_eq!(out.output.dims(), [3, 10]);
            let names: Vec<_> = out.taps.iter().map(|t| t.name.clone()).collect();
            check_taps(&net, &out, 3).unwrap();
            assert_eq!(
                names,
                [
                    "layer0.self_attn",
                    "layer0.out",
                    "layer1.self_attn",
                    "layer1.out"
                ]
            );
            for tap in &out.taps {
                assert_eq!(tap.shape, vec![3, tokens, 16]);
            }
        }
    }

    #[test]
    fn each_patch_token_sees_exactly_its_own_pixels() {
        // With no layers in the way, the patch embedding of patch (row 1,
        // column 2) changes only when a pixel inside it changes.
        let device = Device::flex();
        let config = small(Pool::Mean);
        let net = build(|| config.init(&device));
        let image = Tensor::<4>::zeros([1, 1, 28, 28], &device);
        let embed = |x: Tensor<4>| {
            let patches: Tensor<3> = x
                .reshape([1, 1, 4, 7, 4, 7])
                .permute([0, 2, 4, 1, 3, 5])
                .reshape([1, 16, 49]);
            to_vec(net.patch_embed.forward(patches))
        };
        let base = embed(image.clone());
        let mut pixels = vec![0f32; 28 * 28];
        pixels[9 * 28 + 16] = 1.0; // row 9 ∈ patch row 1, column 16 ∈ patch column 2
        let poked = Tensor::<4>::from_data(
            burn::tensor::TensorData::new(pixels, [1, 1, 28, 28]),
            &device,
        );
        let changed = embed(poked);
        let moved: Vec<usize> = (0..16)
            .filter(|&p| (0..16).any(|k| (base[p * 16 + k] - changed[p * 16 + k]).abs() > 1e-7))
            .collect();
        assert_eq!(moved, vec![4 + 2]);
    }

    #[test]
    fn parameter_count_from_the_config_matches_the_built_network() {
        let device = Device::flex();
        for pool in [Pool::Cls, Pool::Mean] {
            let config = small(pool);
            assert_eq!(
                build(|| config.init(&device)).num_params(),
                config.num_params()
            );
        }
        VitConfig::small_28x28().validate().unwrap();
    }

    #[test]
    fn the_same_seed_gives_the_same_weights_and_saving_restores_them() {
        let device = Device::flex();
        let a = build_seeded(&device, 2, || small(Pool::Cls).init(&device));
        let b = build_seeded(&device, 2, || small(Pool::Cls).init(&device));
        let values = parameter_values(&a);
        assert_eq!(values, parameter_values(&b));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vit.bpk");
        a.clone().save_file(&path).unwrap();
        let loaded = build_seeded(&device, 3, || small(Pool::Cls).init(&device)).load_file(&path);
        assert_eq!(parameter_values(&loaded), values);
        let image = Tensor::<4>::ones([2, 1, 28, 28], &device);
        let expected = to_vec(a.forward(image.clone()).output);
        assert_eq!(to_vec(Guide::new(a).forward(image).output), expected);
    }

    #[test]
    fn invalid_configs_are_refused_with_the_field_name() {
        let mut config = small(Pool::Cls);
        config.patch_size = 5;
        assert!(config.validate().unwrap_err().contains("vit.patch_size"));
    }
}
