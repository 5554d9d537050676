//! Mutual k-nearest-neighbour alignment (Huh, Cheung, Wang & Isola 2024,
//! "The Platonic Representation Hypothesis", §2 and their `mutual_knn`).

use nalgebra::DMatrix;

use super::error::{RepsimError, Result};
use super::{Matrix, check_pair};

/// The default neighbourhood size: 10, as in Huh et al. (2024).
pub const DEFAULT_KNN_K: usize = 10;

/// The `k` examples most cosine-similar to each example (itself excluded),
/// ties broken by the lower index; each list sorted by index.
fn neighbours(m: &Matrix, name: &'static str, k: usize) -> Result<Vec<Vec<usize>>> {
    let n = m.rows;
    let mut unit: DMatrix<f64> = m.to_dmatrix();
    for i in 0..n {
        let mut row = unit.row_mut(i);
        let max = row.amax();
        if max == 0.0 {
            return Err(RepsimError::ZeroExample {
                matrix: name,
                row: i,
                metric: "mutual k-NN",
            });
        }
        // Scaled by the largest entry first so that the norm cannot overflow.
        row /= max;
        let norm = row.norm();
        row /= norm;
    }
    let similarity = &unit * unit.transpose();
    Ok((0..n)
        .map(|i| {
            let mut others: Vec<usize> = (0..n).filter(|&j| j != i).collect();
            let order = |a: &usize, b: &usize| {
                similarity[(i, *b)]
                    .total_cmp(&similarity[(i, *a)])
                    .then(a.cmp(b))
            };
            others.select_nth_unstable_by(k - 1, order);
            let mut nearest = others[..k].to_vec();
            nearest.sort_unstable();
            nearest
        })
        .collect())
}

/// Mutual k-NN alignment (Huh et al. 2024, eq. in §2 "mutual nearest
/// neighbours"):
///
/// ```text
/// N_X(i) = the k examples j ≠ i with the largest cos(xᵢ, xⱼ)
/// mKNN(X, Y) = (1/n) Σᵢ |N_X(i) ∩ N_Y(i)| / k
/// ```
///
/// Cosine neighbours on the raw (uncentred) features, as in the reference;
/// exact ties are broken by the lower index. A similarity in [0, 1],
/// symmetric; about `k/(n−1)` for unrelated representations. Invariant to
/// rotation and scaling of the features and to example permutation (ties
/// aside), not to translation or general linear maps. `O(n²·(dx + dy))`.
/// Default `k`: [`DEFAULT_KNN_K`].
///
/// # Errors
/// Row counts differ, non-finite input, `k = 0` or `k ≥ n`
/// ([`RepsimError::InvalidParameter`]), an all-zero example
/// ([`RepsimError::ZeroExample`]).
pub fn mutual_knn_similarity(x: &Matrix, y: &Matrix, k: usize) -> Result<f64> {
    check_pair(x, y, "mutual k-NN", 2)?;
    let n = x.rows;
    if k == 0 || k >= n {
        return Err(RepsimError::InvalidParameter {
            name: "k",
            value: k as f64,
            expected: "a neighbourhood size with 1 ≤ k < n, the number of examples",
        });
    }
    let (nx, ny) = (neighbours(x, "X", k)?, neighbours(y, "Y", k)?);
    let shared: usize = nx
        .iter()
        .zip(&ny)
        .map(|(a, b)| a.iter().filter(|j| b.binary_search(j).is_ok()).count())
        .sum();
    Ok(shared as f64 / (n * k) as f64)
}
