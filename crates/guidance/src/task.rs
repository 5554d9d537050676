//! What the training loop needs to know about a task: its examples as
//! batches, its loss and its score. Images and token sequences implement it,
//! so one loop trains every arm of every experiment.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor};
use untrainable_core::{Guide, Network, WithoutAutodiff};
use untrainable_results::Split;
use untrainable_tasks::fashion_mnist::ImageSet;

use crate::data::{InputSpec, noise_images};
use crate::guide_table::GuideTapTable;

/// Sums over the scored items of a batch (examples for a classifier, tokens
/// for a sequence task), so that batches of any size add up exactly.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Score {
    pub loss_sum: f64,
    pub correct: f64,
    pub counted: f64,
    /// The task's further metrics, in the order of
    /// [`Task::extra_metrics`] (empty where it has none).
    pub extra: Vec<Tally>,
    /// Every scored example's prediction in order, where the task
    /// classifies whole examples (empty otherwise): what analyses of errors
    /// need.
    pub predictions: Vec<Prediction>,
}

/// A further metric's sum and the items it is a mean over: all scored
/// items (top-5 accuracy), or a subset (accuracy on the longer strings).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub sum: f64,
    pub counted: f64,
}

/// One example's label and the class a network predicted for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prediction {
    pub label: u32,
    pub predicted: u32,
}

impl Score {
    pub fn add(&mut self, other: Score) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.counted += other.counted;
        if self.extra.len() < other.extra.len() {
            self.extra.resize(other.extra.len(), Tally::default());
        }
        for (tally, more) in self.extra.iter_mut().zip(other.extra) {
            tally.sum += more.sum;
            tally.counted += more.counted;
        }
        self.predictions.extend(other.predictions);
    }

    /// Mean loss and accuracy over everything added.
    pub fn means(&self) -> (f64, f64) {
        (self.loss_sum / self.counted, self.correct / self.counted)
    }

    /// Means of the further metrics, in the order of their tallies (NaN
    /// for one that counted nothing).
    pub fn extra_means(&self) -> impl Iterator<Item = f64> + '_ {
        self.extra.iter().map(|t| t.sum / t.counted)
    }
}

/// A supervised task as the trainer sees it.
pub trait Task {
    /// What the networks consume; a guide and its target share it.
    type Input: Clone + WithoutAutodiff;
    /// What the loss compares the output with.
    type Targets;

    fn len(&self, split: Split) -> usize;

    /// The examples `indices` of `part` as one batch.
    fn batch(
        &self,
        split: Split,
        indices: &[usize],
        device: &Device,
    ) -> (Self::Input, Self::Targets);

    /// The training batches the loop is about to ask for, in order, with
    /// the run's seed and the epoch, so that a task that reads its examples
    /// from files can prepare them ahead; the default ignores them.
    fn plan_training(&self, _batches: &[Vec<usize>], _seed: u64, _epoch: u64) {}

    /// Inputs carrying no information about the task, for the noise warm-up
    /// (docs/paper.md §2.4): `batch_size` of them.
    fn noise(&self, batch_size: usize, device: &Device) -> Self::Input;

    /// The mean training loss of the batch, differentiable in `output`.
    fn loss(&self, output: Tensor<2>, targets: &Self::Targets) -> Tensor<1>;

    /// Summed loss, correct predictions and scored items of the batch, and
    /// the sums of [`Task::extra_metrics`].
    fn score(&self, output: Tensor<2>, targets: &Self::Targets) -> Score;

    /// Names of the metrics beyond loss and accuracy that [`Task::score`]
    /// sums in [`Score::extra`]; the loop logs their means beside every
    /// validation and test `accuracy`.
    fn extra_metrics(&self) -> &'static [&'static str] {
        &[]
    }

    /// The guide's taps for every training example, where the task's inputs
    /// are fixed per example and the table fits in memory; `None` makes the
    /// loop run the guide on each batch.
    fn guide_table<G: Network<Input = Self::Input>>(
        &self,
        _guide: &Guide<G>,
        _batch_size: usize,
        _device: &Device,
    ) -> Option<GuideTapTable> {
        None
    }
}

/// Metric name of top-5 accuracy, the paper's ImageNet measure beside top-1
/// (docs/paper.md §2.1).
pub const TOP5_ACCURACY: &str = "top5_accuracy";

/// Image classification: the training, validation and (optionally) test
/// images and how they become inputs. Training batches are augmented as
/// `input.augment` says. Loss: cross-entropy; score: top-1 accuracy, and
/// top-5 accuracy as [`TOP5_ACCURACY`].
pub struct ImageData<'a> {
    pub train: &'a ImageSet,
    pub val: &'a ImageSet,
    /// Measured once with the selected network; `None`: no test split.
    pub test: Option<&'a ImageSet>,
    pub input: &'a InputSpec,
}

impl ImageData<'_> {
    fn images(&self, split: Split) -> Option<&ImageSet> {
        match split {
            Split::Train => Some(self.train),
            Split::Val => Some(self.val),
            Split::Test => self.test,
        }
    }
}

impl Task for ImageData<'_> {
    type Input = Tensor<4>;
    type Targets = Tensor<1, Int>;

    fn len(&self, split: Split) -> usize {
        self.images(split).map_or(0, ImageSet::len)
    }

    fn batch(
        &self,
        split: Split,
        indices: &[usize],
        device: &Device,
    ) -> (Tensor<4>, Tensor<1, Int>) {
        let set = self
            .images(split)
            .expect("batches are drawn only from parts with examples");
        match split {
            Split::Train => self.input.training_batch(set, indices, device),
            Split::Val | Split::Test => self.input.batch(set, indices, device),
        }
    }

    fn noise(&self, batch_size: usize, device: &Device) -> Tensor<4> {
        let side = self.input.image_size;
        noise_images([batch_size, self.input.channels, side, side], device)
    }

    fn loss(&self, output: Tensor<2>, labels: &Tensor<1, Int>) -> Tensor<1> {
        classification_loss(output, labels)
    }

    fn score(&self, output: Tensor<2>, labels: &Tensor<1, Int>) -> Score {
        classification_score(output, labels)
    }

    fn extra_metrics(&self) -> &'static [&'static str] {
        &[TOP5_ACCURACY]
    }

    /// The table holds the guide's taps of the stored images, so an
    /// augmented run (whose every batch is new) runs the guide per batch.
    fn guide_table<G: Network<Input = Tensor<4>>>(
        &self,
        guide: &Guide<G>,
        batch_size: usize,
        device: &Device,
    ) -> Option<GuideTapTable> {
        if !self.input.augment.is_identity() {
            return None;
        }
        GuideTapTable::build(guide, self.train, self.input, batch_size, device)
    }
}

/// Cross-entropy of class logits, the loss of every image task.
pub fn classification_loss(output: Tensor<2>, labels: &Tensor<1, Int>) -> Tensor<1> {
    CrossEntropyLossConfig::new()
        .init(&output.device())
        .forward(output, labels.clone())
}

/// Summed cross-entropy, top-1 and top-5 ([`TOP5_ACCURACY`]) correct
/// predictions and each example's predicted class, for every image task.
pub fn classification_score(output: Tensor<2>, labels: &Tensor<1, Int>) -> Score {
    let n = labels.dims()[0] as f64;
    let predicted: Tensor<1, Int> = output.clone().argmax(1).flatten(0, 1);
    let as_u32 = |t: Tensor<1, Int>| -> Vec<u32> {
        let values = t.into_data().convert::<i64>().try_into_vec::<i64>();
        values
            .expect("class indices convert to i64")
            .into_iter()
            .map(|v| v as u32)
            .collect()
    };
    let correct = predicted
        .clone()
        .equal(labels.clone())
        .int()
        .sum()
        .into_scalar::<i64>() as f64;
    let predictions: Vec<Prediction> = as_u32(labels.clone())
        .into_iter()
        .zip(as_u32(predicted))
        .map(|(label, predicted)| Prediction { label, predicted })
        .collect();
    let top5 = top_k_correct(output.clone(), labels, 5);
    Score {
        loss_sum: classification_loss(output, labels).into_scalar::<f64>() * n,
        correct,
        counted: n,
        extra: vec![Tally {
            sum: top5,
            counted: n,
        }],
        predictions,
    }
}

/// The summed [`Score`] of `model` (in evaluation mode) over every example
/// of `part`.
pub fn score_split<K: Task, T: Network<Input = K::Input>>(
    model: &T,
    task: &K,
    split: Split,
    batch_size: usize,
    device: &Device,
) -> Score {
    let mut score = Score::default();
    let all: Vec<usize> = (0..task.len(split)).collect();
    for indices in all.chunks(batch_size.max(1)) {
        let (input, targets) = task.batch(split, indices, device);
        score.add(task.score(model.forward(input).output, &targets));
    }
    score
}

/// Mean loss and accuracy of `model` (in evaluation mode) over every example
/// of `part`.
pub fn evaluate<K: Task, T: Network<Input = K::Input>>(
    model: &T,
    task: &K,
    split: Split,
    batch_size: usize,
    device: &Device,
) -> (f64, f64) {
    score_split(model, task, split, batch_size, device).means()
}

/// How many rows of `output` (logits, one row per example) rank their label
/// among their `k` largest entries: the numerator of top-`k` accuracy, the
/// paper's ImageNet measure being top-5 (docs/paper.md §2.1). A label tied with
/// other entries counts as ranked above them; a row whose label logit is
/// NaN never counts.
pub fn top_k_correct(output: Tensor<2>, labels: &Tensor<1, Int>, k: usize) -> f64 {
    let classes = output.dims()[1];
    let logits = untrainable_core::to_vec(output);
    let labels = labels
        .clone()
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .expect("integer labels convert to i64");
    let correct = logits
        .chunks(classes.max(1))
        .zip(labels)
        .filter(|(row, label)| {
            let own = row[*label as usize];
            !own.is_nan() && row.iter().filter(|&&v| v > own).count() < k
        })
        .count();
    correct as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn top_k_counts_labels_among_the_k_largest_logits() {
        let device = Device::flex();
        let output = Tensor::<2>::from_data(
            TensorData::new(
                vec![
                    0.1f32,
                    0.9,
                    0.5,
                    0.3, // label 1: first
                    0.1,
                    0.9,
                    0.5,
                    0.3, // label 3: third
                    0.1,
                    0.9,
                    0.5,
                    0.3, // label 0: last
                    0.2,
                    0.2,
                    0.2,
                    f32::NAN, // label 3: NaN never counts
                ],
                [4, 4],
            ),
            &device,
        );
        let labels =
            Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 3, 0, 3], [4]), &device);
        assert_eq!(top_k_correct(output.clone(), &labels, 1), 1.0);
        assert_eq!(top_k_correct(output.clone(), &labels, 2), 1.0);
        assert_eq!(top_k_correct(output.clone(), &labels, 3), 2.0);
        assert_eq!(top_k_correct(output, &labels, 4), 3.0);
    }

    #[test]
    fn top_1_agrees_with_the_score_of_image_data_without_ties() {
        let _drawing = crate::generator();
        let device = Device::flex();
        let output = Tensor::<2>::random([64, 10], burn::tensor::Distribution::Default, &device);
        let labels = Tensor::<1, Int>::from_data(
            TensorData::new(
                (0..64).map(|i| (i * 7 % 10) as i64).collect::<Vec<_>>(),
                [64],
            ),
            &device,
        );
        let argmax: Tensor<1, Int> = output.clone().argmax(1).flatten(0, 1);
        let expected = argmax
            .equal(labels.clone())
            .int()
            .sum()
            .into_scalar::<i64>() as f64;
        assert_eq!(top_k_correct(output, &labels, 1), expected);
    }
}
