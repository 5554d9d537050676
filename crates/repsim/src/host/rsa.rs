//! Representational similarity analysis (Kriegeskorte, Mur & Bandettini 2008,
//! "Representational similarity analysis – connecting the branches of systems
//! neuroscience"): compare two representations through their representational
//! dissimilarity matrices (RDMs).

use nalgebra::DMatrix;

use super::error::{RepsimError, Result};
use super::{Matrix, check_matrix, check_pair, scaled_by_max, squared_distances_of_rows};

/// How an RDM measures the dissimilarity of two examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdmDistance {
    /// `1 − r(xᵢ, xⱼ)`, with `r` the Pearson correlation across features
    /// (each example centred over its own features). In [0, 2]. Needs every
    /// example to vary across features.
    Correlation,
    /// `‖xᵢ − xⱼ‖₂`.
    Euclidean,
}

/// How two RDMs are compared: over their upper triangles (`i < j`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdmComparison {
    /// Pearson correlation of the dissimilarities.
    Pearson,
    /// Spearman rank correlation: Pearson correlation of the ranks, tied
    /// values given the mean of the ranks they span.
    Spearman,
}

/// The RDM of `m` as an `n×n` nalgebra matrix. `scale_free`: divide by the
/// largest entry first (for comparisons that are scale invariant), so that no
/// square overflows.
fn rdm(
    m: &Matrix,
    name: &'static str,
    distance: RdmDistance,
    scale_free: bool,
) -> Result<DMatrix<f64>> {
    let n = m.rows;
    match distance {
        RdmDistance::Correlation => {
            let mut z = m.to_dmatrix();
            for i in 0..n {
                let row = m.row(i);
                if row.iter().all(|v| *v == row[0]) {
                    return Err(RepsimError::ConstantExample {
                        matrix: name,
                        row: i,
                        metric: "a correlation RDM",
                    });
                }
                let mut r = z.row_mut(i);
                let max = r.amax();
                r /= max;
                let mean = r.sum() / m.cols as f64;
                r.add_scalar_mut(-mean);
                let norm = r.norm();
                r /= norm;
            }
            let mut d = (&z * z.transpose()).map(|g| 1.0 - g);
            d.fill_diagonal(0.0);
            Ok(d)
        }
        RdmDistance::Euclidean => {
            let source = if scale_free {
                scaled_by_max(m)
            } else {
                m.to_dmatrix()
            };
            Ok(squared_distances_of_rows(&source).map(f64::sqrt))
        }
    }
}

/// The representational dissimilarity matrix of `x`: `n×n`, symmetric, zero
/// diagonal, entry `(i, j)` the [`RdmDistance`] between examples `i` and `j`.
///
/// # Errors
/// Empty or non-finite input; for [`RdmDistance::Correlation`], an example
/// with one value in every feature ([`RepsimError::ConstantExample`]).
pub fn pairwise_distances(x: &Matrix, distance: RdmDistance) -> Result<Matrix> {
    check_matrix(x, "X")?;
    Ok(Matrix::from_dmatrix(&rdm(x, "X", distance, false)?))
}

fn upper_triangle(d: &DMatrix<f64>) -> Vec<f64> {
    let n = d.nrows();
    (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .map(|(i, j)| d[(i, j)])
        .collect()
}

/// 1-based ranks; tied values share the mean of the ranks they span.
fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && v[order[end]] == v[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) hold ranks start+1..=end: mean (start+1+end)/2.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &k in &order[start..end] {
            ranks[k] = rank;
        }
        start = end;
    }
    ranks
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (p, q) in a.iter().zip(b) {
        let (p, q) = (p - ma, q - mb);
        ab += p * q;
        aa += p * p;
        bb += q * q;
    }
    (ab / (aa.sqrt() * bb.sqrt())).clamp(-1.0, 1.0)
}

/// RSA similarity: the correlation between the upper triangles of the RDMs of
/// `x` and `y`,
///
/// ```text
/// RSA(X, Y) = corr({D^X_ij}_{i<j}, {D^Y_ij}_{i<j})
/// ```
///
/// with `D` by [`RdmDistance`] and `corr` by [`RdmComparison`]
/// (Kriegeskorte et al. 2008; the RDM and comparison choices follow
/// rsatoolbox's `calc_rdm` and `compare`). A similarity in [−1, 1],
/// symmetric. Euclidean RDMs make it invariant to rotation, scaling and
/// translation of the features; correlation RDMs only to scaling (and to
/// adding a constant to all features of an example).
///
/// # Errors
/// Row counts differ, fewer than 3 examples, non-finite input, an example
/// constant across features for [`RdmDistance::Correlation`], or an RDM whose
/// dissimilarities are all equal ([`RepsimError::ConstantRdm`]).
pub fn rsa_similarity(
    x: &Matrix,
    y: &Matrix,
    distance: RdmDistance,
    comparison: RdmComparison,
) -> Result<f64> {
    check_pair(x, y, "RSA", 3)?;
    let a = upper_triangle(&rdm(x, "X", distance, true)?);
    let b = upper_triangle(&rdm(y, "Y", distance, true)?);
    for (v, name) in [(&a, "X"), (&b, "Y")] {
        if v.iter().all(|t| *t == v[0]) {
            return Err(RepsimError::ConstantRdm { matrix: name });
        }
    }
    Ok(match comparison {
        RdmComparison::Pearson => pearson(&a, &b),
        RdmComparison::Spearman => pearson(&average_ranks(&a), &average_ranks(&b)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tied_values_share_their_mean_rank() {
        assert_eq!(
            average_ranks(&[3.0, 1.0, 3.0, 2.0, 3.0]),
            vec![4.0, 1.0, 4.0, 2.0, 4.0]
        );
        assert_eq!(average_ranks(&[0.5, 0.5]), vec![1.5, 1.5]);
    }
}
