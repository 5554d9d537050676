//! Batches of an [`ImageFolder`] decoded and transformed on worker threads
//! ahead of the training step, as PyTorch's `DataLoader` does: batch `k` is
//! built whole by worker `k mod N`, each worker runs at most `prefetch`
//! batches ahead, and batches come out in order. Every example's random
//! draws are fixed by (seed, epoch, index) ([`example_rng`]), so the
//! batches do not depend on the number of workers.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::error::DataError;
use crate::image_folder::{BadImages, ImageFolder};
use crate::image_transform::{Transform, example_rng, normalise_into};

/// One batch, ready for a network.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBatch {
    /// `len × 3 × size × size` normalised values.
    pub pixels: Vec<f32>,
    pub labels: Vec<u32>,
    /// Indices into the folder's images, of the examples kept.
    pub indices: Vec<usize>,
    /// Images left out because they could not be decoded (only under
    /// [`BadImages::Skip`]).
    pub skipped: Vec<PathBuf>,
    /// Side of the square images.
    pub size: usize,
}

impl ImageBatch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// How the batches of one pass over a folder are made.
#[derive(Debug, Clone, Copy)]
pub struct PipelineConfig {
    pub transform: Transform,
    /// Seed and epoch of the training transform's draws.
    pub seed: u64,
    pub epoch: u64,
    /// Decoding threads (at least 1).
    pub workers: usize,
    /// Batches each worker may hold ready (at least 1).
    pub prefetch: usize,
    pub bad_images: BadImages,
}

/// Builds one batch: decodes, transforms and normalises each image.
pub fn build_batch(
    folder: &ImageFolder,
    indices: &[usize],
    config: &PipelineConfig,
) -> Result<ImageBatch, DataError> {
    let size = config.transform.size();
    let plane = 3 * size * size;
    let mut batch = ImageBatch {
        pixels: Vec::with_capacity(indices.len() * plane),
        labels: Vec::with_capacity(indices.len()),
        indices: Vec::with_capacity(indices.len()),
        skipped: Vec::new(),
        size,
    };
    for &i in indices {
        let (image, label) = match folder.read(i) {
            Ok(read) => read,
            Err(DataError::Undecodable { path, .. }) if config.bad_images == BadImages::Skip => {
                batch.skipped.push(path);
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut rng = example_rng(config.seed, config.epoch, i as u64);
        let out = config.transform.apply(&image, &mut rng);
        let start = batch.pixels.len();
        batch.pixels.resize(start + plane, 0.0);
        normalise_into(&out, &mut batch.pixels[start..]);
        batch.labels.push(label);
        batch.indices.push(i);
    }
    Ok(batch)
}

/// The batches of a pass, in order, built ahead on worker threads.
/// Dropping it stops the workers once their current batch is done.
pub struct Batches {
    receivers: Vec<Receiver<Result<ImageBatch, DataError>>>,
    workers: Vec<JoinHandle<()>>,
    next: usize,
    total: usize,
}

impl Batches {
    /// Starts `config.workers` threads building `plan`'s batches
    /// (each a list of indices into `folder`).
    ///
    /// # Panics
    /// If `config.workers` or `config.prefetch` is 0 (a configuration bug).
    pub fn start(
        folder: Arc<ImageFolder>,
        plan: Vec<Vec<usize>>,
        config: PipelineConfig,
    ) -> Batches {
        assert!(
            config.workers > 0 && config.prefetch > 0,
            "workers and prefetch must be ≥ 1"
        );
        let plan = Arc::new(plan);
        let mut receivers = Vec::new();
        let mut workers = Vec::new();
        for w in 0..config.workers {
            let (send, receive) = sync_channel(config.prefetch);
            let (folder, plan) = (Arc::clone(&folder), Arc::clone(&plan));
            workers.push(std::thread::spawn(move || {
                work(&folder, &plan, &config, w, send);
            }));
            receivers.push(receive);
        }
        Batches {
            total: plan.len(),
            receivers,
            workers,
            next: 0,
        }
    }
}

/// Worker `w`'s loop: batches `w`, `w + N`, … until the plan ends, an
/// error is sent, or the receiver is gone.
fn work(
    folder: &ImageFolder,
    plan: &[Vec<usize>],
    config: &PipelineConfig,
    w: usize,
    send: SyncSender<Result<ImageBatch, DataError>>,
) {
    for indices in plan.iter().skip(w).step_by(config.workers) {
        let batch = build_batch(folder, indices, config);
        let failed = batch.is_err();
        if send.send(batch).is_err() || failed {
            return;
        }
    }
}

impl Iterator for Batches {
    type Item = Result<ImageBatch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.total {
            return None;
        }
        let receiver = &self.receivers[self.next % self.receivers.len()];
        self.next += 1;
        let item = receiver.recv().ok()?;
        if item.is_err() {
            // Nothing after an error: the pass is over.
            self.next = self.total;
        }
        Some(item)
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        self.receivers.clear();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}
