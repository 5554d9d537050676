//! The transformer layer every model of this crate repeats, its
//! initialisation schemes, and the positional encodings it shares.

use burn::module::Module;
use burn::nn::attention::{MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::tensor::activation::{gelu, quiet_softmax, relu};
use burn::tensor::{Bool, Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use untrainable_kernels::{dropout, linear, softmax};

/// Where each sub-layer's layer norm sits relative to its residual connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NormPlacement {
    /// `x = norm(x + dropout(f(x)))`: PyTorch's `nn.TransformerEncoderLayer`
    /// and `nn.TransformerDecoderLayer` by default (the copy-paste guide, the
    /// parity target).
    Post,
    /// `x = x + dropout(f(norm(x)))`: the usual pre-norm layer (ViT).
    Pre,
    /// `x = norm(x); x = x + dropout(f(x))`: the residual carries the
    /// normalised stream, as the released `TransformerLM` (the LM guide)
    /// writes its layers; its feed-forward block has no inner dropout.
    InPlace,
}

/// A decoder layer's second attention, whose keys and values are the layer's
/// own input (the released copy-paste guide calls `layer(x, x, tgt_mask)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrossAttention {
    /// No second attention: a plain decoder-only layer.
    Off,
    /// No mask, as in the released code: every position sees the whole
    /// input, later positions included, so the model is not causal.
    Unmasked,
    /// The causal mask of the self-attention: a causal model with the
    /// released layer's shape and parameter count.
    Causal,
}

/// The feed-forward block's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    Relu,
    Gelu,
}

/// How the weights are drawn, which matters most for untrained guides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Init {
    /// PyTorch's defaults for these modules: Linear weights and biases
    /// U(±1/√fan_in), embeddings N(0, 1), layer norms 1 and 0; attention
    /// query/key/value weights Xavier-uniform over the stacked (3d, d)
    /// in-projection, output weight U(±1/√d), attention biases 0.
    Torch,
    /// N(0, 0.02) for every Linear, Embedding and LayerNorm weight (layer-norm
    /// gains included) and zero biases, attention in-projections as `Torch`:
    /// the released `TransformerLM`'s `_init_weights`.
    SmallNormal,
}

const SMALL_NORMAL: Initializer = Initializer::Normal {
    mean: 0.0,
    std: 0.02,
};

impl Init {
    pub(crate) fn linear(self, d_in: usize, d_out: usize, device: &Device) -> Linear {
        match self {
            Init::Torch => LinearConfig::new(d_in, d_out).init(device),
            Init::SmallNormal => {
                let mut linear = LinearConfig::new(d_in, d_out)
                    .with_initializer(SMALL_NORMAL)
                    .init(device);
                linear.bias = Some(Initializer::Zeros.init([d_out], device));
                linear
            }
        }
    }

    pub(crate) fn embedding(self, n: usize, d: usize, device: &Device) -> Embedding {
        match self {
            Init::Torch => EmbeddingConfig::new(n, d).init(device),
            Init::SmallNormal => EmbeddingConfig::new(n, d)
                .with_initializer(SMALL_NORMAL)
                .init(device),
        }
    }

    pub(crate) fn layer_norm(self, d: usize, eps: f64, device: &Device) -> LayerNorm {
        let mut norm = LayerNormConfig::new(d).with_epsilon(eps).init(device);
        if self == Init::SmallNormal {
            norm.gamma = SMALL_NORMAL.init([d], device);
        }
        norm
    }

    pub(crate) fn attention(
        self,
        d: usize,
        heads: usize,
        dropout: f64,
        device: &Device,
    ) -> MultiHeadAttention {
        // PyTorch draws query, key and value as one (3d, d) matrix.
        let bound = (6.0 / (4 * d) as f64).sqrt();
        let mut attention = MultiHeadAttentionConfig::new(d, heads)
            .with_dropout(dropout)
            // Masked scores must vanish exactly after the softmax, whatever
            // the scale of the unmasked ones.
            .with_min_float(-1.0e9)
            .with_initializer(Initializer::Uniform {
                min: -bound,
                max: bound,
            })
            .init(device);
        for projection in [
            &mut attention.query,
            &mut attention.key,
            &mut attention.value,
        ] {
            projection.bias = Some(Initializer::Zeros.init([d], device));
        }
        let output_weight = match self {
            Init::Torch => {
                let bound = 1.0 / (d as f64).sqrt();
                Initializer::Uniform {
                    min: -bound,
                    max: bound,
                }
            }
            Init::SmallNormal => SMALL_NORMAL,
        };
        attention.output.weight = output_weight.init([d, d], device);
        attention.output.bias = Some(Initializer::Zeros.init([d], device));
        attention
    }
}

/// Everything that shapes one layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BlockSpec {
    pub d_model: usize,
    pub heads: usize,
    pub ff: usize,
    pub dropout: f64,
    pub layer_norm_eps: f64,
    pub norm: NormPlacement,
    pub cross: CrossAttention,
    pub activation: Activation,
    pub init: Init,
}

impl BlockSpec {
    fn has_cross(&self) -> bool {
        self.cross != CrossAttention::Off
    }

    /// Parameters of one layer: attention projections with biases, the two
    /// feed-forward Linears, and a gain and bias per layer norm.
    pub fn num_params(&self) -> usize {
        let d = self.d_model;
        let attention = 4 * (d * d + d);
        let attentions = if self.has_cross() { 2 } else { 1 };
        let feed_forward = d * self.ff + self.ff + self.ff * d + d;
        attentions * attention + feed_forward + (attentions + 1) * 2 * d
    }

    /// Sub-layer outputs of one layer in forward order, as [`Block::forward`]
    /// records them; layer norms are numbered in the order they run, which
    /// matches PyTorch's `norm1`/`norm2`/`norm3` for post-norm layers.
    pub fn sublayer_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        let mut norms = 0;
        let mut sublayer = |inner: &[&str]| {
            norms += 1;
            let norm = format!("norm{norms}");
            let inner = inner.iter().map(|n| n.to_string());
            match self.norm {
                NormPlacement::Post => {
                    names.extend(inner);
                    names.push(norm);
                }
                NormPlacement::Pre | NormPlacement::InPlace => {
                    names.push(norm);
                    names.extend(inner);
                }
            }
        };
        sublayer(&["self_attn"]);
        if self.has_cross() {
            sublayer(&["cross_attn"]);
        }
        sublayer(&["ff1", "ff2"]);
        names.push("out".to_string());
        names
    }

    pub fn init(&self, device: &Device) -> Block {
        let (d, init) = (self.d_model, self.init);
        let norm = || init.layer_norm(d, self.layer_norm_eps, device);
        Block {
            self_attn: init.attention(d, self.heads, self.dropout, device),
            norm1: norm(),
            cross_attn: self
                .has_cross()
                .then(|| init.attention(d, self.heads, self.dropout, device)),
            norm_cross: self.has_cross().then(norm),
            ff1: init.linear(d, self.ff, device),
            ff2: init.linear(self.ff, d, device),
            norm_ff: norm(),
            dropout: DropoutConfig::new(self.dropout).init(),
            spec: *self,
        }
    }
}

/// Attention masks, true where a position must not be attended to.
pub(crate) struct Masks {
    /// `(batch, time)` padding mask.
    pub pad: Option<Tensor<2, Bool>>,
    /// `(batch, time, time)` causal mask.
    pub causal: Option<Tensor<3, Bool>>,
}

/// Sub-layer outputs of one layer in forward order, by [`BlockSpec::sublayer_names`] name.
pub(crate) type Trace = Vec<(String, Tensor<3>)>;

/// One transformer layer: self-attention, an optional attention to the
/// layer's own input, and a feed-forward block, each with a residual
/// connection and a layer norm placed as [`NormPlacement`] says.
#[derive(Module, Debug)]
pub(crate) struct Block {
    self_attn: MultiHeadAttention,
    norm1: LayerNorm,
    cross_attn: Option<MultiHeadAttention>,
    norm_cross: Option<LayerNorm>,
    ff1: Linear,
    ff2: Linear,
    norm_ff: LayerNorm,
    dropout: Dropout,
    #[module(skip)]
    spec: BlockSpec,
}

impl Block {
    pub fn forward(&self, x: Tensor<3>, masks: &Masks, trace: &mut Trace) -> Tensor<3> {
        let mut norms = 0;
        let memory = x.clone();
        let x = self.sublayer(x, &self.norm1, &mut norms, trace, |h, trace| {
            let a = attend(
                &self.self_attn,
                h.clone(),
                h,
                masks.pad.as_ref(),
                masks.causal.as_ref(),
            );
            trace.push(("self_attn".to_string(), a.clone()));
            a
        });
        let x = match (&self.cross_attn, &self.norm_cross) {
            (Some(attention), Some(norm)) => {
                self.sublayer(x, norm, &mut norms, trace, |h, trace| {
                    let causal = match self.spec.cross {
                        CrossAttention::Causal => masks.causal.as_ref(),
                        CrossAttention::Unmasked | CrossAttention::Off => None,
                    };
                    let a = attend(attention, h, memory, masks.pad.as_ref(), causal);
                    trace.push(("cross_attn".to_string(), a.clone()));
                    a
                })
            }
            _ => x,
        };
        let x = self.sublayer(x, &self.norm_ff, &mut norms, trace, |h, trace| {
            let a = linear(&self.ff1, h);
            trace.push(("ff1".to_string(), a.clone()));
            let a = match self.spec.activation {
                Activation::Relu => relu(a),
                Activation::Gelu => gelu(a),
            };
            let a = match self.spec.norm {
                NormPlacement::InPlace => a,
                NormPlacement::Post | NormPlacement::Pre => dropout(&self.dropout, a),
            };
            let b = linear(&self.ff2, a);
            trace.push(("ff2".to_string(), b.clone()));
            b
        });
        trace.push(("out".to_string(), x.clone()));
        x
    }

    #[cfg(test)]
    pub fn ff1_weight(&self) -> Tensor<2> {
        self.ff1.weight.val()
    }

    /// One residual sub-layer `f` with its layer norm; the norm's output is
    /// recorded as `norm{k}` for the k-th sub-layer of the layer.
    fn sublayer(
        &self,
        x: Tensor<3>,
        norm: &LayerNorm,
        norms: &mut usize,
        trace: &mut Trace,
        f: impl FnOnce(Tensor<3>, &mut Trace) -> Tensor<3>,
    ) -> Tensor<3> {
        *norms += 1;
        let name = format!("norm{norms}");
        match self.spec.norm {
            NormPlacement::Post => {
                let y = f(x.clone(), trace);
                let h = norm.forward(x + dropout(&self.dropout, y));
                trace.push((name, h.clone()));
                h
            }
            NormPlacement::Pre => {
                let h = norm.forward(x.clone());
                trace.push((name, h.clone()));
                let y = f(h, trace);
                x + dropout(&self.dropout, y)
            }
            NormPlacement::InPlace => {
                let h = norm.forward(x);
                trace.push((name, h.clone()));
                let y = f(h.clone(), trace);
                h + dropout(&self.dropout, y)
            }
        }
    }
}

/// `attention.forward(MhaInput::new(query, memory, memory))` with the
/// padding and attention masks, burn's multi-head attention to the letter
/// (masked scores filled with its `min_float`, dropout on the weights), with
/// the weights from `untrainable_kernels::softmax`: flex's softmax takes each
/// exponential with the scalar `expf`.
fn attend(
    attention: &MultiHeadAttention,
    query: Tensor<3>,
    memory: Tensor<3>,
    pad: Option<&Tensor<2, Bool>>,
    mask: Option<&Tensor<3, Bool>>,
) -> Tensor<3> {
    let [batch, time, d_model] = query.dims();
    let memory_time = memory.dims()[1];
    let [heads, d_k] = [attention.n_heads, attention.d_k];
    let split_heads = |x: Tensor<3>, layer: &Linear, time: usize| {
        linear(layer, x)
            .reshape([batch, time, heads, d_k])
            .swap_dims(1, 2)
    };
    let q = split_heads(query, &attention.query, time);
    let k = split_heads(memory.clone(), &attention.key, memory_time);
    let v = split_heads(memory, &attention.value, memory_time);
    let mut scores = q.matmul(k.transpose()).div_scalar((d_k as f32).sqrt());
    if let Some(pad) = pad {
        let pad = pad.clone().reshape([batch, 1, 1, memory_time]);
        scores = scores.mask_fill(pad, attention.min_float);
    }
    if let Some(mask) = mask {
        let mask = mask.clone().reshape([batch, 1, time, memory_time]);
        scores = scores.mask_fill(mask, attention.min_float);
    }
    let weights = if attention.quiet_softmax {
        quiet_softmax(scores, 3)
    } else {
        softmax(scores)
    };
    let context = dropout(&attention.dropout, weights)
        .matmul(v)
        .swap_dims(1, 2)
        .reshape([batch, time, d_model]);
    linear(&attention.output, context)
}

/// Sinusoidal positions `(1, time, d)`: sine at even features, cosine at odd
/// ones, wavelengths from 2π to 10,000·2π (Vaswani et al., 2017).
pub(crate) fn sinusoids(time: usize, d: usize, device: &Device) -> Tensor<3> {
    let mut values = Vec::with_capacity(time * d);
    for t in 0..time {
        for k in 0..d {
            let rate = (-((k - k % 2) as f64) * 10_000f64.ln() / d as f64).exp();
            let angle = t as f64 * rate;
            values.push(if k % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    Tensor::from_data(TensorData::new(values, [1, time, d]), device)
}

/// Checks shared by every config: the field names are prefixed with `what`.
pub(crate) fn validate_common(
    what: &str,
    sizes: &[(&str, usize)],
    d_model: usize,
    heads: usize,
    dropout: f64,
) -> Result<(), String> {
    for (name, value) in sizes {
        if *value == 0 {
            return Err(format!("{what}.{name} must be at least 1, got 0"));
        }
    }
    if d_model % heads != 0 {
        return Err(format!(
            "{what}.heads must divide {what}.d_model; got {heads} heads for d_model {d_model}"
        ));
    }
    if !(0.0..1.0).contains(&dropout) {
        return Err(format!("{what}.dropout must be in [0, 1), got {dropout}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::build;
    use burn::nn::attention::MhaInput;
    use burn::tensor::Distribution;
    use untrainable_core::to_vec;

    #[test]
    fn attend_is_burns_attention_with_both_masks() {
        let device = Device::flex().autodiff();
        let (attention, query, memory) = build(|| {
            let attention = MultiHeadAttentionConfig::new(8, 2)
                .with_dropout(0.0)
                .init(&device);
            let random = || Tensor::<3>::random([3, 5, 8], Distribution::Normal(0.0, 1.0), &device);
            (attention, random().require_grad(), random().require_grad())
        });
        // The last two positions of the second sequence are padding.
        let pad = Tensor::<2, Bool>::from_data(
            TensorData::new((0..15).map(|i| i == 8 || i == 9).collect(), [3, 5]),
            &device,
        );
        let causal = Tensor::<3, Bool>::from_data(
            TensorData::new((0..75).map(|i| (i % 5) > (i / 5) % 5).collect(), [3, 5, 5]),
            &device,
        );
        let ours = attend(
            &attention,
            query.clone(),
            memory.clone(),
            Some(&pad),
            Some(&causal),
        );
        let input = MhaInput::new(query.clone(), memory.clone(), memory.clone())
            .mask_pad(pad)
            .mask_attn(causal);
        let burns = attention.forward(input).context;
        let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
            for (i, (a, b)) in a.iter().zip(&b).enumerate() {
                assert!((a - b).abs() < 1e-5, "{what} [{i}]: {a} ≠ {b}");
            }
        };
        close(to_vec(ours.clone()), to_vec(burns.clone()), "output");
        let weights = Tensor::<3>::random([3, 5, 8], Distribution::Normal(0.0, 1.0), &device);
        let grads_ours = (ours * weights.clone()).sum().backward();
        let grads_burns = (burns * weights).sum().backward();
        for (what, x) in [("query", &query), ("memory", &memory)] {
            close(
                to_vec(x.grad(&grads_ours).unwrap()),
                to_vec(x.grad(&grads_burns).unwrap()),
                what,
            );
        }
    }
}
