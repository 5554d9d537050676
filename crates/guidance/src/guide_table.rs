//! The frozen guide's taps for every training example, computed once.
//!
//! A guide is in evaluation mode and never changes, so an example's taps are
//! the same at every step. When the guide sees the real training batch,
//! gathering the batch's rows from this table replaces a guide forward pass
//! per step, which dominates a guided step's cost for convolutional guides.

use burn::tensor::{Device, Int, Tensor, TensorData};
use untrainable_core::{Guide, Network, Tap, WithoutAutodiff};
use untrainable_tasks::fashion_mnist::ImageSet;

use crate::data::InputSpec;

/// The largest table built; above it the guide runs on every batch instead.
pub const MAX_TABLE_BYTES: usize = 2 << 30;

/// Every tap of the guide for every example of one image set, one row per
/// example.
pub struct GuideTapTable {
    taps: Vec<Tap>,
}

impl GuideTapTable {
    /// Runs `guide` over `set` in batches of `batch_size`; `None` when the
    /// table would exceed [`MAX_TABLE_BYTES`].
    pub fn build<G>(
        guide: &Guide<G>,
        set: &ImageSet,
        input: &InputSpec,
        batch_size: usize,
        device: &Device,
    ) -> Option<Self>
    where
        G: Network<Input = Tensor<4>>,
    {
        Self::from_batches(guide, set.len(), batch_size, |indices| {
            input.batch(set, indices, device).0
        })
    }

    /// Runs `guide` over the `examples` inputs that `batch_of(indices)`
    /// returns, in batches of `batch_size`; `None` when there are none or
    /// the table would exceed [`MAX_TABLE_BYTES`]. An example's taps must
    /// not depend on the other examples of its batch.
    pub fn from_batches<G>(
        guide: &Guide<G>,
        examples: usize,
        batch_size: usize,
        batch_of: impl Fn(&[usize]) -> G::Input,
    ) -> Option<Self>
    where
        G: Network,
        G::Input: WithoutAutodiff,
    {
        if examples == 0 {
            return None;
        }
        let probe = guide.forward(batch_of(&[0]));
        let floats_per_example: usize = probe.taps.iter().map(|t| t.value.dims()[1]).sum();
        if examples
            .saturating_mul(floats_per_example)
            .saturating_mul(size_of::<f32>())
            > MAX_TABLE_BYTES
        {
            return None;
        }
        let all: Vec<usize> = (0..examples).collect();
        let mut columns: Vec<Vec<Tensor<2>>> = vec![Vec::new(); probe.taps.len()];
        for indices in all.chunks(batch_size.max(1)) {
            let out = guide.forward(batch_of(indices));
            for (column, tap) in columns.iter_mut().zip(out.taps) {
                column.push(tap.value);
            }
        }
        let taps = probe
            .taps
            .into_iter()
            .zip(columns)
            .map(|(tap, column)| Tap {
                value: Tensor::cat(column, 0),
                shape: with_batch(&tap.shape, examples),
                name: tap.name,
            })
            .collect();
        Some(Self { taps })
    }

    /// The examples in the table.
    pub fn examples(&self) -> usize {
        self.taps.first().map_or(0, |t| t.value.dims()[0])
    }

    /// Guide tap `tap` of every example, one row each.
    pub fn tap(&self, tap: usize) -> &Tensor<2> {
        &self.taps[tap].value
    }

    /// The taps of the examples `indices`, in that order, as the guide's
    /// forward pass on that batch would return them.
    pub fn gather(&self, indices: &[usize], device: &Device) -> Vec<Tap> {
        let rows: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [indices.len()]), device);
        self.taps
            .iter()
            .map(|tap| Tap {
                name: tap.name.clone(),
                value: tap.value.clone().select(0, rows.clone()),
                shape: with_batch(&tap.shape, indices.len()),
            })
            .collect()
    }
}

fn with_batch(shape: &[usize], batch: usize) -> Vec<usize> {
    let mut shape = shape.to_vec();
    shape[0] = batch;
    shape
}
