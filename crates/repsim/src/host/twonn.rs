//! Intrinsic dimension by TwoNN (Facco, d'Errico, Rodriguez & Laio 2017,
//! "Estimating the intrinsic dimension of datasets by a minimal
//! neighborhood information"), as used on network layers by Ansuini et al.
//! (2019).
//!
//! For each example the ratio `μ = r₂ / r₁` of its second- to first-nearest
//! neighbour distance follows, for locally uniform data of dimension `d`,
//! `F(μ) = 1 − μ^(−d)`. So `−ln(1 − F(μ))` against `ln μ` is a line through
//! the origin of slope `d`, fitted by least squares on the empirical `F`
//! after dropping the largest ratios, where the assumption fails first.

use super::{Matrix, RepsimError, Result, check_matrix};

/// The fraction of largest ratios dropped before the fit, as Facco et al.
pub const DEFAULT_TWONN_DISCARD: f64 = 0.1;

/// The TwoNN intrinsic dimension of the rows of `x` (Euclidean distances).
/// Invariant to rotation, scaling and translation of the features and to
/// the order of the examples.
///
/// # Errors
/// Fewer than 3 examples, non-finite values, two identical rows, or
/// `discard` outside [0, 1).
pub fn twonn_dimension(x: &Matrix, discard: f64) -> Result<f64> {
    check_matrix(x, "X")?;
    if !(0.0..1.0).contains(&discard) {
        return Err(RepsimError::InvalidParameter {
            name: "discard",
            value: discard,
            expected: "a fraction in [0, 1)",
        });
    }
    let n = x.rows;
    if n < 3 {
        return Err(RepsimError::TooFewExamples {
            metric: "TwoNN",
            n,
            min: 3,
        });
    }
    // Squared distances from the Gram matrix; exact differences decide ties
    // with zero, so duplicates are found reliably.
    let m = x.to_dmatrix();
    let gram = &m * m.transpose();
    let mut ratios = Vec::with_capacity(n);
    for i in 0..n {
        let (mut r1, mut r2) = (f64::INFINITY, f64::INFINITY);
        let mut nearest = i;
        for j in (0..n).filter(|&j| j != i) {
            let d2 = (gram[(i, i)] + gram[(j, j)] - 2.0 * gram[(i, j)]).max(0.0);
            if d2 < r1 {
                (r2, r1, nearest) = (r1, d2, j);
            } else if d2 < r2 {
                r2 = d2;
            }
        }
        let scale = gram[(i, i)]
            .max(gram[(nearest, nearest)])
            .max(f64::MIN_POSITIVE);
        let exact = || x.row(i).iter().zip(x.row(nearest)).all(|(a, b)| a == b);
        if r1 <= 1e-24 * scale || exact() {
            return Err(RepsimError::DuplicateExamples {
                matrix: "X",
                first: i.min(nearest),
                second: i.max(nearest),
            });
        }
        ratios.push((r2 / r1).sqrt());
    }
    ratios.sort_by(f64::total_cmp);
    // Empirical F at the i-th smallest ratio is i / n; the last point
    // (F = 1) is always dropped, with the `discard` fraction.
    let keep = (((1.0 - discard) * n as f64).floor() as usize).min(n - 1);
    let (mut xy, mut xx) = (0.0, 0.0);
    for (i, mu) in ratios.iter().take(keep).enumerate() {
        let (lx, ly) = (mu.ln(), -(1.0 - (i + 1) as f64 / n as f64).ln());
        xy += lx * ly;
        xx += lx * lx;
    }
    if !(xx > 0.0) {
        return Err(RepsimError::TooFewExamples {
            metric: "TwoNN",
            n,
            min: 3,
        });
    }
    Ok(xy / xx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (SplitMix64), uniform in [0, 1).
    fn uniform(seed: u64) -> impl FnMut() -> f64 {
        let mut state = seed;
        move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as f64 / 2f64.powi(64)
        }
    }

    /// `n` points uniform in the unit `d`-cube, embedded in 12 dimensions by
    /// a fixed linear map of full column rank.
    fn cube(n: usize, d: usize, seed: u64) -> Matrix {
        let mut u = uniform(seed);
        let points: Vec<f64> = (0..n * d).map(|_| u()).collect();
        let mut w = uniform(seed + 1);
        let map: Vec<f64> = (0..d * 12).map(|_| w() - 0.5).collect();
        Matrix::from_fn(n, 12, |i, j| {
            (0..d).map(|k| points[i * d + k] * map[k * 12 + j]).sum()
        })
    }

    #[test]
    fn recovers_the_dimension_of_uniform_cubes() {
        for d in [1, 2, 4] {
            let est = twonn_dimension(&cube(1500, d, 7 + d as u64), DEFAULT_TWONN_DISCARD).unwrap();
            assert!(
                (est - d as f64).abs() < 0.15 * d as f64,
                "d = {d}: estimated {est}"
            );
        }
    }

    #[test]
    fn a_line_by_hand() {
        // Points 0, 1, 3, 6, 10 on a line: ratios r2/r1 are 3, 2, 3/2, 4/3, 7/4.
        let x = Matrix::new(5, 1, vec![0.0, 1.0, 3.0, 6.0, 10.0]);
        let mut mu = [3.0f64, 2.0, 1.5, 4.0 / 3.0, 1.75];
        mu.sort_by(f64::total_cmp);
        // discard 0.1 of 5 keeps the 4 smallest: F = 1/5 .. 4/5.
        let (mut xy, mut xx) = (0.0, 0.0);
        for (i, m) in mu.iter().take(4).enumerate() {
            let y = -(1.0 - (i + 1) as f64 / 5.0).ln();
            xy += m.ln() * y;
            xx += m.ln() * m.ln();
        }
        let est = twonn_dimension(&x, 0.1).unwrap();
        assert!((est - xy / xx).abs() < 1e-12, "{est} vs {}", xy / xx);
    }

    #[test]
    fn invariant_to_scaling_translation_rotation_and_order() {
        let x = cube(200, 3, 3);
        let base = twonn_dimension(&x, 0.1).unwrap();
        let (c, s) = (0.6f64, 0.8f64);
        let moved = Matrix::from_fn(200, 12, |i, j| {
            // A rotation in the plane of features 0 and 1, scaled and shifted.
            let v = match j {
                0 => c * x.get(i, 0) - s * x.get(i, 1),
                1 => s * x.get(i, 0) + c * x.get(i, 1),
                _ => x.get(i, j),
            };
            3.0 * v + 5.0
        });
        let reversed = Matrix::from_fn(200, 12, |i, j| x.get(199 - i, j));
        for other in [moved, reversed] {
            let est = twonn_dimension(&other, 0.1).unwrap();
            assert!((est - base).abs() < 1e-6 * base, "{est} vs {base}");
        }
    }

    #[test]
    fn duplicates_too_few_points_and_bad_discard_are_errors() {
        let dup = Matrix::new(4, 2, vec![0.0, 0.0, 1.0, 2.0, 3.0, 1.0, 1.0, 2.0]);
        assert!(matches!(
            twonn_dimension(&dup, 0.1),
            Err(RepsimError::DuplicateExamples {
                first: 1,
                second: 3,
                ..
            })
        ));
        let two = Matrix::new(2, 1, vec![0.0, 1.0]);
        assert!(matches!(
            twonn_dimension(&two, 0.1),
            Err(RepsimError::TooFewExamples { .. })
        ));
        assert!(matches!(
            twonn_dimension(&cube(10, 2, 1), 1.0),
            Err(RepsimError::InvalidParameter { .. })
        ));
    }
}
