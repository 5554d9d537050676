//! The values training steps log, kept on the device and read back together.
//!
//! On a GPU every read of a value waits for the device to finish the work
//! queued before it, so a step that read its loss terms one by one would
//! stall the device several times per step. The loop keeps each step's
//! values as tensors and reads all of them once every
//! `train.log_every_steps` steps (and before anything that depends on them:
//! a checkpoint, an evaluation, the end of an epoch), in one read.

use burn::tensor::Tensor;
use untrainable_core::read_to_host;

/// One step's values on the device, in the order they are logged, and the
/// one whose non-finite value stops the run.
pub(crate) struct StepValues {
    pub step: u64,
    /// (metric, the progress bar's name, a one-element tensor).
    pub values: Vec<(&'static str, &'static str, Tensor<1>)>,
    /// The index in `values` of the value checked for divergence.
    pub checked: usize,
}

/// One step's values read back.
pub(crate) struct ReadStep {
    pub step: u64,
    pub values: Vec<(&'static str, &'static str, f64)>,
    pub checked: usize,
}

impl ReadStep {
    /// The value checked for divergence, with its metric.
    pub fn checked(&self) -> (&'static str, f64) {
        let (metric, _, value) = self.values[self.checked];
        (metric, value)
    }
}

/// The steps since the last read.
#[derive(Default)]
pub(crate) struct Pending {
    steps: Vec<StepValues>,
}

impl Pending {
    /// Keeps `step`'s values, detached from the autodiff graph so that the
    /// graph is freed after the backward pass.
    pub fn push(&mut self, mut step: StepValues) {
        for (_, _, value) in &mut step.values {
            if value.device().is_autodiff() {
                *value = value.clone().inner();
            }
        }
        self.steps.push(step);
    }

    /// Every pending value in one read, by step in order; empties the queue.
    pub fn read(&mut self) -> Vec<ReadStep> {
        let steps = std::mem::take(&mut self.steps);
        let all: Vec<Tensor<1>> = steps
            .iter()
            .flat_map(|s| s.values.iter().map(|(_, _, v)| v.clone()))
            .collect();
        if all.is_empty() {
            return Vec::new();
        }
        let mut read = read_to_host(Tensor::cat(all, 0)).into_iter();
        steps
            .into_iter()
            .map(|s| ReadStep {
                step: s.step,
                values: s
                    .values
                    .into_iter()
                    .map(|(metric, name, _)| (metric, name, read.next().expect("one value each")))
                    .collect(),
                checked: s.checked,
            })
            .collect()
    }
}
