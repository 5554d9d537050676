//! A transformer encoder classifier over padded token sequences: the paper's
//! parity target (`TransEnc`, docs/paper.md §2.2).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, Linear};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use untrainable_core::{Forward, Network, Tap, TokenBatch};
use untrainable_kernels::linear;

use crate::block::{Block, BlockSpec, Masks, sinusoids, validate_common};
use crate::{Activation, CrossAttention, Init, NormPlacement};

/// The shape of an encoder classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderClassifierConfig {
    pub vocab: usize,
    pub classes: usize,
    pub d_model: usize,
    pub heads: usize,
    pub layers: usize,
    pub ff: usize,
    /// After the positions, on attention weights, after every sub-layer and
    /// inside the feed-forward block; only when training on an autodiff device.
    pub dropout: f64,
    /// Longest sequence the model accepts.
    pub max_positions: usize,
    /// Apply one layer `layers` times with shared weights, as the released
    /// `TransEnc` does (a list holding the same layer object).
    pub shared_layers: bool,
    pub layer_norm_eps: f64,
}

impl EncoderClassifierConfig {
    /// The released parity target: PyTorch's default post-norm
    /// `nn.TransformerEncoderLayer` (d 512, ff 2048, dropout 0.1, ReLU), one
    /// layer, 8 heads, sinusoidal positions, vocab 3, 2 classes. 3,154,946
    /// parameters whatever the heads (docs/paper.md §3: 3.2 M with 8 heads); 5 taps.
    pub fn parity_paper() -> Self {
        Self {
            vocab: 3,
            classes: 2,
            d_model: 512,
            heads: 8,
            layers: 1,
            ff: 2048,
            dropout: 0.1,
            max_positions: 5000,
            shared_layers: true,
            layer_norm_eps: 1e-5,
        }
    }

    /// The parity target at a quarter of the width, for CPU runs.
    pub fn parity_small() -> Self {
        Self {
            d_model: 128,
            heads: 4,
            ff: 512,
            ..Self::parity_paper()
        }
    }

    fn block(&self) -> BlockSpec {
        BlockSpec {
            d_model: self.d_model,
            heads: self.heads,
            ff: self.ff,
            dropout: self.dropout,
            layer_norm_eps: self.layer_norm_eps,
            norm: NormPlacement::Post,
            cross: CrossAttention::Off,
            activation: Activation::Relu,
            init: Init::Torch,
        }
    }

    /// Parameters of one layer.
    pub fn layer_params(&self) -> usize {
        self.block().num_params()
    }

    /// Parameter count, computed from the config alone (nothing allocated).
    pub fn num_params(&self) -> usize {
        let d = self.d_model;
        let distinct_layers = if self.shared_layers { 1 } else { self.layers };
        self.vocab * d + distinct_layers * self.layer_params() + d * self.classes + self.classes
    }

    pub fn validate(&self) -> Result<(), String> {
        let what = "encoder";
        validate_common(
            what,
            &[
                ("vocab", self.vocab),
                ("classes", self.classes),
                ("d_model", self.d_model),
                ("heads", self.heads),
                ("layers", self.layers),
                ("ff", self.ff),
                ("max_positions", self.max_positions),
            ],
            self.d_model,
            self.heads,
            self.dropout,
        )?;
        if self.d_model % 2 != 0 {
            return Err(format!(
                "{what}.d_model must be even for sinusoidal positions, got {}",
                self.d_model
            ));
        }
        if self.layer_norm_eps <= 0.0 {
            return Err(format!(
                "{what}.layer_norm_eps must be positive, got {}",
                self.layer_norm_eps
            ));
        }
        Ok(())
    }

    /// Tap names in forward order: per layer the attention output, the first
    /// norm, both feed-forward Linears and the second norm (the encoder layer
    /// itself is not hooked in the released code).
    pub fn tap_names(&self) -> Vec<String> {
        let names = self.block().sublayer_names();
        (0..self.layers)
            .flat_map(|i| {
                names
                    .iter()
                    .filter(|n| *n != "out")
                    .map(move |n| format!("layer{i}.{n}"))
            })
            .collect()
    }

    pub fn init(&self, device: &Device) -> EncoderClassifier {
        let distinct_layers = if self.shared_layers { 1 } else { self.layers };
        EncoderClassifier {
            embedding: Init::Torch.embedding(self.vocab, self.d_model, device),
            layers: (0..distinct_layers)
                .map(|_| self.block().init(device))
                .collect(),
            head: Init::Torch.linear(self.d_model, self.classes, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            config: self.clone(),
        }
    }
}

/// Embeddings, positions, encoder layers that never attend to padding, and a
/// linear head on the mean over each sequence's real tokens.
#[derive(Module, Debug)]
pub struct EncoderClassifier {
    embedding: Embedding,
    layers: Vec<Block>,
    head: Linear,
    dropout: Dropout,
    #[module(skip)]
    config: EncoderClassifierConfig,
}

impl EncoderClassifier {
    pub fn config(&self) -> &EncoderClassifierConfig {
        &self.config
    }
}

impl Network for EncoderClassifier {
    type Input = TokenBatch;

    /// Output `(batch, classes)`; depends only on each sequence's first
    /// `length` tokens. Taps keep every position, padding included.
    fn forward(&self, input: TokenBatch) -> Forward {
        let config = &self.config;
        let [batch, time] = input.ids.dims();
        let d = config.d_model;
        assert!(
            time <= config.max_positions,
            "sequence of {time} tokens is longer than encoder.max_positions = {}",
            config.max_positions
        );
        let device = input.ids.device();
        let pad = input.padding_mask();
        let x = self.embedding.forward(input.ids.clone());
        let mut x = self
            .dropout
            .forward(x + sinusoids(time, d, &device).expand([batch, time, d]));
        let masks = Masks {
            pad: Some(pad.clone()),
            causal: None,
        };
        let mut taps = Vec::new();
        for i in 0..config.layers {
            let layer = &self.layers[if config.shared_layers { 0 } else { i }];
            let mut trace = Vec::new();
            x = layer.forward(x, &masks, &mut trace);
            taps.extend(
                trace
                    .into_iter()
                    .filter(|(name, _)| name != "out")
                    .map(|(name, value)| Tap::new(format!("layer{i}.{name}"), value)),
            );
        }
        // Zero the padding rows, then divide the sum by each real length.
        let keep = pad.bool_not().float().reshape([batch, time, 1]);
        let summed: Tensor<2> = (x * keep.expand([batch, time, d]))
            .sum_dim(1)
            .reshape([batch, d]);
        let lengths: Vec<f32> = input.lengths.iter().map(|&n| n.max(1) as f32).collect();
        let lengths = Tensor::<2>::from_data(TensorData::new(lengths, [batch, 1]), &device);
        let pooled = summed / lengths.expand([batch, d]);
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

    fn small(layers: usize, shared: bool) -> EncoderClassifierConfig {
        EncoderClassifierConfig {
            d_model: 16,
            heads: 4,
            layers,
            ff: 24,
            max_positions: 64,
            shared_layers: shared,
            ..EncoderClassifierConfig::parity_paper()
        }
    }

    fn rows(pad: i64) -> Vec<Vec<i64>> {
        // Two parity strings padded with `pad` to one length, and their lengths.
        vec![vec![1, 0, 1, 1, 0, 1], vec![0, 1, 1, pad, pad, pad]]
    }

    fn batch(rows: &[Vec<i64>], lengths: &[usize], device: &Device) -> TokenBatch {
        let mut batch = TokenBatch::from_rows(rows, 2, device);
        batch.lengths = lengths.to_vec();
        batch
    }

    #[test]
    fn output_is_per_sequence_and_taps_are_the_five_hooked_sublayers() {
        let device = Device::flex();
        let config = small(2, false);
        let net = build(|| config.init(&device));
        let out = net.forward(batch(&rows(2), &[6, 3], &device));
        assert_eq!(out.output.dims(), [2, 2]);
        let names: Vec<_> = out.taps.iter().map(|t| t.name.clone()).collect();
        check_taps(&net, &out, 2).unwrap();
        assert_eq!(
            names[..5],
            [
                "layer0.self_attn",
                "layer0.norm1",
                "layer0.ff1",
                "layer0.ff2",
                "layer0.norm2"
            ]
        );
        assert_eq!(names.len(), 10);
        assert_eq!(out.taps[2].shape, vec![2, 6, 24]);
        assert_eq!(out.taps[4].shape, vec![2, 6, 16]);
        assert_eq!(EncoderClassifierConfig::parity_paper().tap_names().len(), 5);
    }

    #[test]
    fn output_ignores_whatever_lies_past_each_length() {
        let device = Device::flex();
        let net = build_seeded(&device, 4, || small(2, false).init(&device));
        let reference = to_vec(net.forward(batch(&rows(2), &[6, 3], &device)).output);
        // Other pad ids, and real-looking tokens past the length.
        for padded in [
            rows(0),
            rows(1),
            vec![rows(2)[0].clone(), vec![0, 1, 1, 1, 0, 1]],
        ] {
            let out = to_vec(net.forward(batch(&padded, &[6, 3], &device)).output);
            let diff = out
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(diff < 1e-6, "{diff}");
        }
        // The real tokens do matter.
        let mut flipped = rows(2);
        flipped[1][0] = 1;
        let out = to_vec(net.forward(batch(&flipped, &[6, 3], &device)).output);
        assert!(
            out.iter()
                .zip(&reference)
                .any(|(a, b)| (a - b).abs() > 1e-4)
        );
    }

    #[test]
    fn a_sequence_scores_the_same_alone_and_in_a_padded_batch() {
        let device = Device::flex();
        let net = build(|| small(1, true).init(&device));
        let together = to_vec(net.forward(batch(&rows(2), &[6, 3], &device)).output);
        let alone = to_vec(net.forward(batch(&[vec![0, 1, 1]], &[3], &device)).output);
        for (a, b) in alone.iter().zip(&together[2..]) {
            assert!((a - b).abs() < 1e-5, "{alone:?} vs {together:?}");
        }
    }

    #[test]
    fn parameter_counts_match_the_built_network_and_the_paper() {
        let device = Device::flex();
        for config in [small(1, true), small(3, false), small(3, true)] {
            assert_eq!(
                build(|| config.init(&device)).num_params(),
                config.num_params()
            );
        }
        let saved = small(3, false).num_params() - small(3, true).num_params();
        assert_eq!(saved, 2 * small(3, true).layer_params());
        // docs/paper.md §3: 3.2 M with 8 heads.
        let paper = EncoderClassifierConfig::parity_paper();
        assert_eq!(paper.heads, 8);
        assert_eq!(paper.num_params(), 3_154_946);
        paper.validate().unwrap();
        EncoderClassifierConfig::parity_small().validate().unwrap();
    }

    #[test]
    fn the_same_seed_gives_the_same_weights_and_a_frozen_guide_runs() {
        let device = Device::flex();
        let a = build_seeded(&device, 8, || small(2, false).init(&device));
        let b = build_seeded(&device, 8, || small(2, false).init(&device));
        assert_eq!(parameter_values(&a), parameter_values(&b));
        let expected = to_vec(a.forward(batch(&rows(2), &[6, 3], &device)).output);
        let guide = Guide::new(a);
        let out = guide.forward(batch(&rows(2), &[6, 3], &device));
        assert_eq!(to_vec(out.output), expected);
    }

    #[test]
    fn saving_and_loading_restores_every_weight_exactly() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("encoder.bpk");
        let config = small(2, false);
        let net = build(|| config.init(&device));
        let before = parameter_values(&net);
        net.save_file(&path).unwrap();
        let loaded = build(|| config.init(&device)).load_file(&path);
        assert_eq!(parameter_values(&loaded), before);
    }

    #[test]
    fn invalid_configs_are_refused_with_the_field_name() {
        let mut config = small(1, true);
        config.heads = 5;
        assert!(config.validate().unwrap_err().contains("encoder.heads"));
        let mut config = small(1, true);
        config.classes = 0;
        assert!(config.validate().unwrap_err().contains("encoder.classes"));
    }
}
