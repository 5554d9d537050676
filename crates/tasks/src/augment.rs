//! Light augmentation of training images: a random translation, and a
//! horizontal flip where the classes allow it (clothing, not digits).
//! Each image gets its own draws, supplied by the caller, so the training
//! loop's per-step random stream fixes them and a resumed run repeats them.

use serde::{Deserialize, Serialize};

/// The augmentation of a training set; the default does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Augment {
    /// Translate by up to this many pixels along each axis (uniform over
    /// `−max_shift..=max_shift`), filling with 0, the background of both
    /// MNIST sets: the "random crop with padding" of image pipelines.
    #[serde(default)]
    pub max_shift: usize,
    /// Mirror left-right with probability 1/2. Leave it off for digits,
    /// whose mirror images are other symbols.
    #[serde(default)]
    pub flip: bool,
}

impl Augment {
    /// Whether this augmentation leaves every image as it is.
    pub fn is_identity(&self) -> bool {
        self.max_shift == 0 && !self.flip
    }

    /// Writes the augmented `image` (`rows × cols`, row-major) into `out`,
    /// given three uniform draws in [0, 1): the vertical shift, the
    /// horizontal shift and the flip.
    pub fn apply(&self, image: &[f32], rows: usize, cols: usize, draws: [f64; 3], out: &mut [f32]) {
        assert_eq!(image.len(), rows * cols, "image of {rows}×{cols} pixels");
        assert_eq!(out.len(), image.len(), "output the size of the image");
        let span = 2 * self.max_shift + 1;
        let shift = |u: f64| {
            (u * span as f64).floor().min((span - 1) as f64) as isize - self.max_shift as isize
        };
        let (dy, dx) = (shift(draws[0]), shift(draws[1]));
        let flip = self.flip && draws[2] < 0.5;
        for r in 0..rows {
            for c in 0..cols {
                // The output pixel (r, c) shows source pixel (r − dy, c' − dx),
                // c' the column after the optional mirror.
                let cc = if flip { cols - 1 - c } else { c };
                let (sr, sc) = (r as isize - dy, cc as isize - dx);
                out[r * cols + c] =
                    if (0..rows as isize).contains(&sr) && (0..cols as isize).contains(&sc) {
                        image[sr as usize * cols + sc as usize]
                    } else {
                        0.0
                    };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 3×4 image with pixel value 1 + index.
    fn image() -> Vec<f32> {
        (1..=12).map(|v| v as f32).collect()
    }

    fn run(a: Augment, draws: [f64; 3]) -> Vec<f32> {
        let mut out = vec![-1.0; 12];
        a.apply(&image(), 3, 4, draws, &mut out);
        out
    }

    #[test]
    fn no_shift_and_no_flip_is_the_identity() {
        let a = Augment::default();
        assert!(a.is_identity());
        assert_eq!(run(a, [0.9, 0.1, 0.2]), image());
        // A centred draw of a shifting augmentation also leaves the image.
        let shifting = Augment {
            max_shift: 1,
            flip: false,
        };
        assert_eq!(run(shifting, [0.5, 0.5, 0.0]), image());
    }

    #[test]
    fn shifts_move_pixels_and_fill_with_zero() {
        let a = Augment {
            max_shift: 1,
            flip: false,
        };
        // Draw 0.0 is shift −1, 0.99 is shift +1.
        // Down by one row, right by one column.
        let down_right = run(a, [0.99, 0.99, 0.0]);
        assert_eq!(
            down_right,
            vec![0., 0., 0., 0., 0., 1., 2., 3., 0., 5., 6., 7.]
        );
        // Up by one row, left by one column.
        let up_left = run(a, [0.0, 0.0, 0.0]);
        assert_eq!(
            up_left,
            vec![6., 7., 8., 0., 10., 11., 12., 0., 0., 0., 0., 0.]
        );
    }

    #[test]
    fn flip_mirrors_rows_only_when_drawn_and_allowed() {
        let a = Augment {
            max_shift: 0,
            flip: true,
        };
        assert_eq!(
            run(a, [0.3, 0.3, 0.2]),
            vec![4., 3., 2., 1., 8., 7., 6., 5., 12., 11., 10., 9.]
        );
        assert_eq!(run(a, [0.3, 0.3, 0.7]), image());
        // Flipping twice gives the image back.
        let mut twice = vec![0.0; 12];
        a.apply(&run(a, [0.0, 0.0, 0.0]), 3, 4, [0.0, 0.0, 0.0], &mut twice);
        assert_eq!(twice, image());
    }
}
