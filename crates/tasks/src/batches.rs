//! Seeded orderings of examples: the train/validation split and the batch
//! order of each epoch.
//!
//! ChaCha8 is used rather than `StdRng` because its output stream is fixed by
//! its specification, whereas `StdRng` may change algorithm between rand
//! releases; with `Cargo.lock` pinning rand, runs then repeat exactly.

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;

/// Distinguishes generators used for different purposes, so that the same
/// user seed does not give correlated split and batch orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Split,
    Batches,
    /// Generated copy-paste examples, one stream per example index.
    CopyPaste,
    /// Generated parity examples, one stream per example index.
    Parity,
    /// Offsets of items on a canvas, one stream per example index.
    Canvas,
    /// Free for other crates (e.g. generated sequence tasks), with their own tag.
    Other(u64),
}

impl Purpose {
    fn tag(self) -> u64 {
        match self {
            Purpose::Split => u64::from_le_bytes(*b"splitval"),
            Purpose::Batches => u64::from_le_bytes(*b"batchord"),
            Purpose::CopyPaste => u64::from_le_bytes(*b"copypast"),
            Purpose::Parity => u64::from_le_bytes(*b"paritybt"),
            Purpose::Canvas => u64::from_le_bytes(*b"canvasxy"),
            Purpose::Other(t) => t,
        }
    }
}

/// A generator determined by `(purpose, seed, stream)` alone.
pub fn seeded_rng(purpose: Purpose, seed: u64, stream: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&purpose.tag().to_le_bytes());
    key[8..16].copy_from_slice(&seed.to_le_bytes());
    key[16..24].copy_from_slice(&stream.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// A uniformly random permutation of `0..n`, fixed by its arguments.
pub fn permutation(n: usize, purpose: Purpose, seed: u64, stream: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut seeded_rng(purpose, seed, stream));
    order
}

/// The batches of one epoch: a permutation of `0..n` fixed by `(seed, epoch)`,
/// cut into chunks of `batch_size`.
///
/// With `drop_last` the incomplete final chunk is dropped, so every batch has
/// exactly `batch_size` examples (minibatch CKA depends on the batch size);
/// if `n < batch_size` there are then no batches at all.
///
/// # Panics
/// If `batch_size` is 0, which is a configuration bug rather than bad data.
pub fn epoch_batches(
    n: usize,
    batch_size: usize,
    seed: u64,
    epoch: u64,
    drop_last: bool,
) -> Vec<Vec<usize>> {
    assert!(
        batch_size > 0,
        "epoch_batches: batch_size must be at least 1"
    );
    let order = permutation(n, Purpose::Batches, seed, epoch);
    order
        .chunks(batch_size)
        .filter(|c| !drop_last || c.len() == batch_size)
        .map(<[usize]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted_flat(batches: &[Vec<usize>]) -> Vec<usize> {
        let mut all: Vec<usize> = batches.iter().flatten().copied().collect();
        all.sort_unstable();
        all
    }

    #[test]
    fn epoch_is_a_permutation_without_drop_last() {
        let batches = epoch_batches(103, 10, 7, 0, false);
        assert_eq!(batches.len(), 11);
        assert_eq!(batches.last().unwrap().len(), 3);
        assert!(batches[..10].iter().all(|b| b.len() == 10));
        assert_eq!(sorted_flat(&batches), (0..103).collect::<Vec<_>>());
        // Shuffled, not the identity order.
        assert_ne!(batches.concat(), (0..103).collect::<Vec<_>>());
    }

    #[test]
    fn drop_last_keeps_only_full_batches_of_distinct_examples() {
        let batches = epoch_batches(103, 10, 7, 0, true);
        assert_eq!(batches.len(), 10);
        assert!(batches.iter().all(|b| b.len() == 10));
        let flat = sorted_flat(&batches);
        assert_eq!(flat.len(), 100);
        assert!(flat.windows(2).all(|w| w[0] < w[1]), "an example repeats");
        assert!(flat.iter().all(|&i| i < 103));
        // Same order as without drop_last, minus the tail.
        assert_eq!(batches[..], epoch_batches(103, 10, 7, 0, false)[..10]);
        assert!(epoch_batches(5, 10, 7, 0, true).is_empty());
        assert_eq!(epoch_batches(5, 10, 7, 0, false).len(), 1);
    }

    #[test]
    fn order_depends_on_epoch_and_seed_only() {
        let a = epoch_batches(1000, 32, 1, 0, true);
        assert_eq!(a, epoch_batches(1000, 32, 1, 0, true));
        assert_ne!(a, epoch_batches(1000, 32, 1, 1, true));
        assert_ne!(a, epoch_batches(1000, 32, 2, 0, true));
    }

    #[test]
    fn purposes_give_different_orders() {
        assert_ne!(
            permutation(1000, Purpose::Split, 3, 0),
            permutation(1000, Purpose::Batches, 3, 0)
        );
    }

    #[test]
    #[should_panic(expected = "batch_size")]
    fn zero_batch_size_panics_with_reason() {
        epoch_batches(10, 0, 0, 0, true);
    }
}
