//! Translated images: each item, optionally shrunk, pasted at an offset
//! drawn once per example on a larger zero canvas.
//!
//! On centred Fashion-MNIST a fully connected network is within a few points
//! of a convolutional one. Once the same item can sit anywhere, the fully
//! connected network has to learn it at every position from examples, while
//! a convolutional network's shared filters and pooling carry it across
//! positions: the gap in inductive bias that guidance is meant to bridge
//! (docs/paper.md §2.1). The offsets are part of the data
//! set, not an augmentation: every epoch sees the same image.

use serde::{Deserialize, Serialize};

use crate::ImageSet;
use crate::batches::{Purpose, seeded_rng};
use rand::RngExt;

/// Where the items of a set are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canvas {
    /// Side of the square canvas, at least `item_size`.
    pub size: usize,
    /// Side each item is shrunk to (by area averaging) before it is pasted;
    /// the stored side keeps it as it is.
    pub item_size: usize,
}

impl Canvas {
    /// Checks the canvas against images of `rows × cols` pixels.
    pub fn validate(&self, rows: usize, cols: usize) -> Result<(), String> {
        if rows != cols {
            return Err(format!(
                "data.canvas needs square images, these are {rows}×{cols}"
            ));
        }
        if self.item_size == 0 || self.item_size > rows {
            return Err(format!(
                "data.canvas.item_size = {} must lie in 1..={rows} (the stored side); \
                 it can only shrink an item",
                self.item_size
            ));
        }
        if self.size < self.item_size {
            return Err(format!(
                "data.canvas.size = {} is smaller than data.canvas.item_size = {}; \
                 the canvas must hold the item",
                self.size, self.item_size
            ));
        }
        Ok(())
    }

    /// Every example of `set` shrunk and pasted on a zero canvas, at the
    /// offset drawn for its index from `seed` (the same example of the same
    /// file always lands in the same place). Labels are unchanged.
    pub fn place(&self, set: &ImageSet, seed: u64) -> Result<ImageSet, String> {
        self.validate(set.rows, set.cols)?;
        let (side, item) = (self.size, self.item_size);
        let weights = shrink_weights(set.rows, item);
        let mut images = vec![0.0; set.len() * side * side];
        for (i, canvas) in images.chunks_exact_mut(side * side).enumerate() {
            let small = shrink(set.example(i), set.rows, &weights, item);
            let (top, left) = self.offset(seed, i);
            for (r, row) in small.chunks_exact(item).enumerate() {
                let start = (top + r) * side + left;
                canvas[start..start + item].copy_from_slice(row);
            }
        }
        Ok(ImageSet {
            images,
            labels: set.labels.clone(),
            rows: side,
            cols: side,
        })
    }

    /// The top-left corner of example `index`, uniform over the positions
    /// where the whole item fits.
    pub fn offset(&self, seed: u64, index: usize) -> (usize, usize) {
        let span = self.size - self.item_size + 1;
        let mut rng = seeded_rng(Purpose::Canvas, seed, index as u64);
        (rng.random_range(0..span), rng.random_range(0..span))
    }
}

/// `weights[o][i]`: the share of output pixel `o` covered by input pixel `i`
/// when a side of `from` pixels is averaged down to `to` (rows sum to 1).
fn shrink_weights(from: usize, to: usize) -> Vec<Vec<f32>> {
    let scale = from as f64 / to as f64;
    (0..to)
        .map(|o| {
            let (start, end) = (o as f64 * scale, (o + 1) as f64 * scale);
            (0..from)
                .map(|i| {
                    let overlap = end.min(i as f64 + 1.0) - start.max(i as f64);
                    (overlap.max(0.0) / scale) as f32
                })
                .collect()
        })
        .collect()
}

/// A square `from × from` image averaged down to `to × to`: the separable
/// product `W · image · Wᵀ` of [`shrink_weights`].
fn shrink(image: &[f32], from: usize, weights: &[Vec<f32>], to: usize) -> Vec<f32> {
    if to == from {
        return image.to_vec();
    }
    // Columns first: `from` rows of `to` values.
    let mut narrow = vec![0.0f32; from * to];
    for (r, row) in image.chunks_exact(from).enumerate() {
        for (c, w) in weights.iter().enumerate() {
            narrow[r * to + c] = row.iter().zip(w).map(|(p, w)| p * w).sum();
        }
    }
    let mut out = vec![0.0f32; to * to];
    for (r, w) in weights.iter().enumerate() {
        for c in 0..to {
            out[r * to + c] = (0..from).map(|k| w[k] * narrow[k * to + c]).sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` square images of side `side` whose pixels are distinct per example.
    fn set(n: usize, side: usize) -> ImageSet {
        let d = side * side;
        ImageSet {
            images: (0..n * d).map(|v| (v % 97) as f32 / 97.0 + 0.01).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            rows: side,
            cols: side,
        }
    }

    #[test]
    fn an_item_of_full_size_is_pasted_unchanged_at_its_offset() {
        let source = set(5, 4);
        let canvas = Canvas {
            size: 7,
            item_size: 4,
        };
        let placed = canvas.place(&source, 3).unwrap();
        assert_eq!((placed.rows, placed.cols), (7, 7));
        assert_eq!(placed.labels, source.labels);
        for i in 0..source.len() {
            let (top, left) = canvas.offset(3, i);
            let image = placed.example(i);
            for r in 0..7 {
                for c in 0..7 {
                    let inside = (top..top + 4).contains(&r) && (left..left + 4).contains(&c);
                    let expected = if inside {
                        source.example(i)[(r - top) * 4 + (c - left)]
                    } else {
                        0.0
                    };
                    assert_eq!(image[r * 7 + c], expected, "example {i} pixel ({r}, {c})");
                }
            }
        }
    }

    #[test]
    fn shrinking_by_two_averages_blocks_of_four() {
        let image: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let small = shrink(&image, 4, &shrink_weights(4, 2), 2);
        let block = |r: usize, c: usize| {
            (image[r * 8 + 2 * c]
                + image[r * 8 + 2 * c + 1]
                + image[r * 8 + 4 + 2 * c]
                + image[r * 8 + 4 + 2 * c + 1])
                / 4.0
        };
        for r in 0..2 {
            for c in 0..2 {
                assert!((small[r * 2 + c] - block(r, c)).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn shrinking_keeps_the_mean_for_any_ratio() {
        let source = set(1, 28);
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        for to in [5, 10, 14, 20] {
            let small = shrink(source.example(0), 28, &shrink_weights(28, to), to);
            assert!(
                (mean(&small) - mean(source.example(0))).abs() < 1e-5,
                "side {to}"
            );
        }
    }

    #[test]
    fn offsets_are_fixed_by_seed_and_index_and_cover_the_canvas() {
        let canvas = Canvas {
            size: 10,
            item_size: 4,
        };
        let offsets: Vec<_> = (0..2000).map(|i| canvas.offset(7, i)).collect();
        assert_eq!(
            offsets,
            (0..2000).map(|i| canvas.offset(7, i)).collect::<Vec<_>>()
        );
        assert_ne!(
            offsets,
            (0..2000).map(|i| canvas.offset(8, i)).collect::<Vec<_>>()
        );
        for axis in [0, 1] {
            let mut seen = [0usize; 7];
            for o in &offsets {
                seen[if axis == 0 { o.0 } else { o.1 }] += 1;
            }
            // Uniform over 7 positions: each near 2000 / 7 ≈ 286.
            assert!(seen.iter().all(|&n| (200..380).contains(&n)), "{seen:?}");
        }
    }

    #[test]
    fn bad_canvases_are_refused_with_the_field_named() {
        let source = set(1, 6);
        let too_big = Canvas {
            size: 8,
            item_size: 7,
        };
        assert!(
            too_big
                .place(&source, 0)
                .unwrap_err()
                .contains("item_size = 7")
        );
        let too_small = Canvas {
            size: 3,
            item_size: 4,
        };
        assert!(
            too_small
                .place(&source, 0)
                .unwrap_err()
                .contains("size = 3")
        );
    }
}
