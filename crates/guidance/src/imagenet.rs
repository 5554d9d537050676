//! ImageNet classification as a trainer [`Task`]: images are read from their
//! files for each batch, decoded on `workers` threads (the batch cut into
//! that many parts) and transformed as torchvision does (see
//! `untrainable_tasks::image_transform`): training batches with
//! RandomResizedCrop + flip, validation and test batches with Resize +
//! CenterCrop, all normalised by ImageNet's mean and std.
//!
//! The parts: training is the training split less `val_size` images held
//! out by a seeded permutation (validation selects each run's network, as
//! for the other image tasks); the test part is the official validation
//! split, where the paper reports its accuracies.
//!
//! An image that cannot be decoded is left out of its batch with a warning
//! naming it ([`BadImages::Skip`]): one bad file among 1.28 M should not end
//! a three-week run; `data check imagenet` lists them all beforehand.
//!
//! Training batches are decoded ahead: the loop hands each epoch's order to
//! [`Task::plan_training`], which starts an `image_pipeline::Batches` pass
//! (batch `k` built whole by worker `k mod N`, each worker at most one batch
//! ahead); a training batch's crops are then fixed by (run seed, epoch,
//! example), so a resumed run sees the same crops. Validation and test
//! batches are decoded when asked for, the batch cut over the workers.

use std::sync::{Arc, Mutex};

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use untrainable_tasks::DataError;
use untrainable_tasks::batches::{Purpose, permutation};
use untrainable_tasks::image_folder::{BadImages, ImageFolder, ImageNet};
use untrainable_tasks::image_pipeline::{Batches, ImageBatch, PipelineConfig, build_batch};
use untrainable_tasks::image_transform::Transform;

use serde::{Deserialize, Serialize};
use untrainable_results::Split;

use crate::data::{InputSpec, noise_images};
use crate::task::{Score, TOP5_ACCURACY, Task, classification_loss, classification_score};

/// Which images an image experiment trains on (its `data.dataset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageDataset {
    #[default]
    FashionMnist,
    /// ILSVRC-2012 from `--data` ([`ImageNetData`]).
    Imagenet,
}

impl ImageDataset {
    /// For `skip_serializing_if`: configs that leave the default out keep
    /// the text (and so the trained-guide keys) they had.
    pub fn is_fashion_mnist(&self) -> bool {
        *self == ImageDataset::FashionMnist
    }

    /// ImageNet's inputs are made by its loader: `input` must describe
    /// them (224 × 224 RGB, already normalised, no further augmentation).
    pub fn validate_input(&self, input: &InputSpec) -> Result<(), String> {
        let i = input;
        let as_loaded = (i.image_size, i.channels, i.mean, i.std) == (224, 3, 0.0, 1.0);
        if *self == ImageDataset::Imagenet && !(as_loaded && i.augment.is_identity()) {
            return Err(
                "data.dataset = \"imagenet\" takes the loader's 224 × 224 RGB crops, \
                 normalised per channel and augmented by it: set input.image_size = 224, \
                 input.channels = 3, input.mean = 0, input.std = 1 and no input.augment"
                    .into(),
            );
        }
        Ok(())
    }
}

/// A seed from the backend's random stream (48 bits, from two draws that
/// f32 represents exactly).
fn draw_seed(device: &Device) -> u64 {
    let draws = Tensor::<1>::random([2], Distribution::Uniform(0.0, 16_777_216.0), device)
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("f64 draws");
    ((draws[0] as u64) << 24) | draws[1] as u64
}

/// The stream of the held-out validation permutation.
const SPLIT_STREAM: u64 = u64::from_le_bytes(*b"imagenet");

/// ImageNet's training and validation splits as the trainer's three parts.
pub struct ImageNetData {
    train_folder: Arc<ImageFolder>,
    test_folder: Arc<ImageFolder>,
    /// Indices into `train_folder` of the training and validation parts.
    train: Vec<usize>,
    val: Vec<usize>,
    pub workers: usize,
    pub bad_images: BadImages,
    /// The epoch's training batches being decoded ahead, from the last
    /// [`Task::plan_training`].
    ahead: Mutex<Option<Batches>>,
}

impl ImageNetData {
    /// Holds `val_size` training images out for validation, chosen by a
    /// permutation fixed by `split_seed`; `train_size` > 0 keeps only that
    /// many of the rest.
    pub fn new(
        net: ImageNet,
        val_size: usize,
        train_size: usize,
        split_seed: u64,
        workers: usize,
    ) -> Result<Self, String> {
        let n = net.train.len();
        let train_size = if train_size == 0 {
            n.saturating_sub(val_size)
        } else {
            train_size
        };
        if val_size + train_size > n {
            return Err(format!(
                "data.val_size = {val_size} + data.train_size = {train_size} but {} holds {n} images",
                net.train.root.display()
            ));
        }
        let order = permutation(n, Purpose::Split, split_seed, SPLIT_STREAM);
        Ok(Self {
            val: order[..val_size].to_vec(),
            train: order[val_size..val_size + train_size].to_vec(),
            train_folder: Arc::new(net.train),
            test_folder: Arc::new(net.val),
            workers: workers.max(1),
            bad_images: BadImages::Skip,
            ahead: Mutex::new(None),
        })
    }

    /// Classes, as the networks' outputs must count them.
    pub fn classes(&self) -> usize {
        self.train_folder.classes.len()
    }

    /// The folder and its image indices of examples `indices` of `split`.
    fn examples(&self, split: Split, indices: &[usize]) -> (&ImageFolder, Vec<usize>) {
        match split {
            Split::Train => (
                &self.train_folder,
                indices.iter().map(|&i| self.train[i]).collect(),
            ),
            Split::Val => (
                &self.train_folder,
                indices.iter().map(|&i| self.val[i]).collect(),
            ),
            Split::Test => (&self.test_folder, indices.to_vec()),
        }
    }

    /// Builds the batch of `images` of `folder` on up to `workers` threads.
    fn decode(
        &self,
        folder: &ImageFolder,
        images: &[usize],
        config: &PipelineConfig,
    ) -> Result<ImageBatch, DataError> {
        let chunk = images.len().div_ceil(self.workers).max(1);
        let parts: Vec<Result<ImageBatch, DataError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = images
                .chunks(chunk)
                .map(|part| scope.spawn(move || build_batch(folder, part, config)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("decoding does not panic"))
                .collect()
        });
        let mut batch = ImageBatch {
            pixels: Vec::new(),
            labels: Vec::new(),
            indices: Vec::new(),
            skipped: Vec::new(),
            size: config.transform.size(),
        };
        for part in parts {
            let part = part?;
            batch.pixels.extend(part.pixels);
            batch.labels.extend(part.labels);
            batch.indices.extend(part.indices);
            batch.skipped.extend(part.skipped);
        }
        Ok(batch)
    }

    fn config(&self, transform: Transform, seed: u64, epoch: u64) -> PipelineConfig {
        PipelineConfig {
            transform,
            seed,
            epoch,
            workers: self.workers,
            prefetch: 1,
            bad_images: self.bad_images,
        }
    }

    /// The next batch of the planned pass, if one is running and its next
    /// batch holds `images` (under [`BadImages::Skip`], less the skipped).
    fn next_planned(&self, images: &[usize]) -> Option<Result<ImageBatch, DataError>> {
        let mut ahead = self.ahead.lock().expect("no panic holds it");
        let next = ahead.as_mut()?.next()?;
        let matches = next.as_ref().map_or(true, |b| {
            b.indices.iter().all(|i| images.contains(i))
                && b.len() + b.skipped.len() == images.len()
        });
        if matches {
            Some(next)
        } else {
            // The loop asked for something else than it planned: decode on demand from now on.
            *ahead = None;
            None
        }
    }
}

impl Task for ImageNetData {
    type Input = Tensor<4>;
    type Targets = Tensor<1, Int>;

    fn len(&self, split: Split) -> usize {
        match split {
            Split::Train => self.train.len(),
            Split::Val => self.val.len(),
            Split::Test => self.test_folder.len(),
        }
    }

    /// # Panics
    /// If a file cannot be read (or decoded, under [`BadImages::Fail`]):
    /// the message names it.
    fn batch(
        &self,
        split: Split,
        indices: &[usize],
        device: &Device,
    ) -> (Tensor<4>, Tensor<1, Int>) {
        let (folder, images) = self.examples(split, indices);
        let planned = match split {
            Split::Train => self.next_planned(&images),
            Split::Val | Split::Test => None,
        };
        let batch = match planned {
            Some(batch) => batch,
            None => {
                let config = match split {
                    // Unplanned (e.g. the noise warm-up's batches): crops
                    // seeded from the backend's stream, fixed per step.
                    Split::Train => self.config(Transform::TRAIN, draw_seed(device), 0),
                    Split::Val | Split::Test => self.config(Transform::EVAL, 0, 0),
                };
                self.decode(folder, &images, &config)
            }
        };
        let batch = batch.unwrap_or_else(|e| panic!("{e}"));
        for path in &batch.skipped {
            tracing::warn!("skipped undecodable image {}", path.display());
        }
        let (n, side) = (batch.len(), batch.size);
        let labels: Vec<i64> = batch.labels.iter().map(|&l| l as i64).collect();
        (
            Tensor::from_data(TensorData::new(batch.pixels, [n, 3, side, side]), device),
            Tensor::from_data(TensorData::new(labels, [n]), device),
        )
    }

    /// Starts decoding `batches` (training-part indices) ahead.
    fn plan_training(&self, batches: &[Vec<usize>], seed: u64, epoch: u64) {
        let plan = batches
            .iter()
            .map(|b| b.iter().map(|&i| self.train[i]).collect())
            .collect();
        let config = self.config(Transform::TRAIN, seed, epoch);
        let pass = Batches::start(Arc::clone(&self.train_folder), plan, config);
        // The previous pass, if any, stops as it is dropped.
        *self.ahead.lock().expect("no panic holds it") = Some(pass);
    }

    fn noise(&self, batch_size: usize, device: &Device) -> Tensor<4> {
        let side = Transform::TRAIN.size();
        noise_images([batch_size, 3, side, side], device)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use untrainable_core::to_vec;

    /// The transform tests' images (2 classes, 5 images) as both splits.
    fn tiny_imagenet() -> (tempfile::TempDir, ImageNet) {
        let images = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tasks/tests/fixtures/imagenet-reference/images");
        let dir = tempfile::tempdir().unwrap();
        for split in ["train", "val"] {
            for class in ["cat", "dog"] {
                let to = dir.path().join(split).join(class);
                std::fs::create_dir_all(&to).unwrap();
                for file in std::fs::read_dir(images.join(class)).unwrap() {
                    let file = file.unwrap().path();
                    std::fs::copy(&file, to.join(file.file_name().unwrap())).unwrap();
                }
            }
        }
        let net = ImageNet::open(dir.path()).unwrap();
        (dir, net)
    }

    #[test]
    fn planned_batches_are_decoded_ahead_with_the_runs_crops() {
        let (_dir, net) = tiny_imagenet();
        let data = ImageNetData::new(net, 1, 0, 0, 2).unwrap();
        assert_eq!(
            (
                data.len(Split::Train),
                data.len(Split::Val),
                data.len(Split::Test)
            ),
            (4, 1, 5)
        );
        let device = Device::default();
        let plan = vec![vec![2, 0], vec![3, 1]];
        data.plan_training(&plan, 7, 3);
        for idx in &plan {
            let (images, labels) = data.batch(Split::Train, idx, &device);
            let (folder, files) = data.examples(Split::Train, idx);
            let expected =
                build_batch(folder, &files, &data.config(Transform::TRAIN, 7, 3)).unwrap();
            assert_eq!(to_vec(images), expected.pixels);
            let labels: Vec<i64> = labels.into_data().convert::<i64>().try_into_vec().unwrap();
            assert_eq!(
                labels,
                expected
                    .labels
                    .iter()
                    .map(|&l| l as i64)
                    .collect::<Vec<_>>()
            );
        }
        // A batch the plan does not hold is decoded on demand.
        data.plan_training(&plan, 7, 3);
        let (images, _) = data.batch(Split::Train, &[1, 2, 3], &device);
        assert_eq!(images.dims(), [3, 3, 224, 224]);
        let (images, _) = data.batch(Split::Train, &[3, 1], &device);
        assert_eq!(images.dims()[0], 2);
        let (test, _) = data.batch(Split::Test, &[0, 4], &device);
        assert_eq!(test.dims(), [2, 3, 224, 224]);
    }
}
