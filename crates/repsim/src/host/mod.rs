//! `f64` forms of the similarity metrics, for analysis: no autodiff, no
//! backend. Inputs are [`Matrix`]es of `n` examples (rows) × `d` features
//! (columns); a metric compares two matrices of the same examples, possibly of
//! different widths. Every fallible metric returns [`Result`] with one error
//! type, [`RepsimError`], and never NaN.
//!
//! | function | kind | range | invariant to (applied to `x`) | symmetric |
//! |---|---|---|---|---|
//! | [`linear_cka_biased`] | similarity | [0, 1] | rotation, scaling, translation, example permutation | yes |
//! | [`linear_cka_debiased`] | similarity | [−1, 1] | same | yes |
//! | [`rbf_cka`], [`rbf_cka_debiased`] | similarity | [0, 1], [−1, 1] | same | yes |
//! | [`MinibatchCka`] | similarity matrix | [−1, 1] | same | — |
//! | [`rsa_similarity`], correlation RDM | similarity | [−1, 1] | scaling, example permutation | yes |
//! | [`rsa_similarity`], euclidean RDM | similarity | [−1, 1] | rotation, scaling, translation, example permutation | yes |
//! | [`procrustes_distance`] | distance (a metric) | [0, √2] | rotation, scaling, translation, example permutation | yes |
//! | [`angular_procrustes_distance`] | distance (a metric) | [0, π/2] | same | yes |
//! | [`cca_similarity`] | similarity | [0, 1] | any invertible linear map, translation, example permutation | yes |
//! | [`svcca_similarity`] | similarity | [0, 1] | rotation, scaling, translation, example permutation | yes |
//! | [`pwcca_similarity`] | similarity | [0, 1] | scaling, translation, example permutation | no |
//! | [`ridge_similarity`] | similarity | [0, 1] | rotation, scaling, translation, example permutation | no |
//! | [`mutual_knn_similarity`] | similarity | [0, 1] | rotation, scaling, example permutation | yes |
//!
//! Beside them, for the paper's analyses: [`error_consistency`] (Cohen's κ
//! of two classifiers' per-example correctness) and [`twonn_dimension`]
//! (intrinsic dimension of one representation).
//!
//! "Rotation" is an orthogonal map of the features, "scaling" multiplication
//! by a non-zero constant, "translation" adding one vector to every example;
//! the example permutation is applied to both arguments.
//!
//! Linear algebra (SVD, symmetric eigen, Cholesky, matrix products) is
//! nalgebra's; [`Matrix`] stays the public type and is converted at the
//! boundary.

mod behaviour;
mod cca;
mod cka;
mod error;
mod knn;
mod procrustes;
mod ridge;
mod rsa;
mod twonn;

pub use behaviour::{error_consistency, error_consistency_matrix};
pub use cca::{DEFAULT_SVCCA_VARIANCE, cca_similarity, pwcca_similarity, svcca_similarity};
pub use cka::{
    DEFAULT_RBF_THRESHOLD, MinibatchCka, linear_cka_biased, linear_cka_debiased, rbf_cka,
    rbf_cka_debiased,
};
pub use error::{RepsimError, Result};
pub use knn::{DEFAULT_KNN_K, mutual_knn_similarity};
pub(crate) use procrustes::psd_power;
pub use procrustes::{angular_procrustes_distance, procrustes_distance};
pub use ridge::{DEFAULT_RIDGE_LAMBDA, ridge_similarity};
pub use rsa::{RdmComparison, RdmDistance, pairwise_distances, rsa_similarity};
pub use twonn::{DEFAULT_TWONN_DISCARD, twonn_dimension};

use nalgebra::DMatrix;

/// A dense row-major matrix: one row per example.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "a {rows}×{cols} matrix needs {} values, got {}",
            rows * cols,
            data.len()
        );
        Self { rows, cols, data }
    }

    /// The matrix with entry `(i, j)` equal to `f(i, j)`.
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> f64) -> Self {
        let data = (0..rows * cols).map(|k| f(k / cols, k % cols)).collect();
        Self { rows, cols, data }
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// Entry `(i, j)`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    /// The linear Gram matrix `X Xᵀ`.
    pub fn gram(&self) -> Matrix {
        let n = self.rows;
        let mut g = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v: f64 = self
                    .row(i)
                    .iter()
                    .zip(self.row(j))
                    .map(|(a, b)| a * b)
                    .sum();
                g[i * n + j] = v;
                g[j * n + i] = v;
            }
        }
        Matrix::new(n, n, g)
    }

    pub(crate) fn to_dmatrix(&self) -> DMatrix<f64> {
        DMatrix::from_row_slice(self.rows, self.cols, &self.data)
    }

    pub(crate) fn from_dmatrix(m: &DMatrix<f64>) -> Matrix {
        Matrix::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)])
    }
}

/// Linear CKA, biased estimator, in `f64`: [`linear_cka_biased`] without the
/// `Result`, for callers that predate it. Returns 0 when either representation
/// is constant across examples (or has fewer than 2 examples), as the burn form
/// does.
///
/// # Panics
/// When the row counts differ, and on every other error of
/// [`linear_cka_biased`] (non-finite or empty input).
pub fn linear_cka(x: &Matrix, y: &Matrix) -> f64 {
    assert_eq!(x.rows, y.rows, "CKA compares the same examples");
    match linear_cka_biased(x, y) {
        Ok(v) => v,
        Err(RepsimError::ConstantRepresentation { .. } | RepsimError::TooFewExamples { .. }) => 0.0,
        Err(e) => panic!("linear CKA: {e}"),
    }
}

// ------------------------------------------------------------ shared helpers

/// Whether `data` holds `rows × cols` values.
fn check_shape(m: &Matrix, name: &'static str) -> Result<()> {
    if m.data.len() != m.rows * m.cols {
        return Err(RepsimError::Shape {
            matrix: name,
            rows: m.rows,
            cols: m.cols,
            len: m.data.len(),
        });
    }
    Ok(())
}

/// Shape, emptiness and finiteness of one matrix.
pub(crate) fn check_matrix(m: &Matrix, name: &'static str) -> Result<()> {
    check_shape(m, name)?;
    if m.rows == 0 || m.cols == 0 {
        return Err(RepsimError::Empty {
            matrix: name,
            rows: m.rows,
            cols: m.cols,
        });
    }
    if let Some(k) = m.data.iter().position(|v| !v.is_finite()) {
        return Err(RepsimError::NonFinite {
            matrix: name,
            row: k / m.cols,
            col: k % m.cols,
            value: m.data[k],
        });
    }
    Ok(())
}

/// Checks of every metric on a pair: shapes, the same examples, at least
/// `min_rows` of them, finite values.
pub(crate) fn check_pair(
    x: &Matrix,
    y: &Matrix,
    metric: &'static str,
    min_rows: usize,
) -> Result<()> {
    check_shape(x, "X")?;
    check_shape(y, "Y")?;
    if x.rows != y.rows {
        return Err(RepsimError::RowsDiffer {
            x_rows: x.rows,
            y_rows: y.rows,
        });
    }
    check_matrix(x, "X")?;
    check_matrix(y, "Y")?;
    if x.rows < min_rows {
        return Err(RepsimError::TooFewExamples {
            metric,
            n: x.rows,
            min: min_rows,
        });
    }
    Ok(())
}

/// Whether feature `j` takes one value on every example (exactly).
pub(crate) fn column_is_constant(m: &Matrix, j: usize) -> bool {
    let first = m.data[j];
    (1..m.rows).all(|i| m.data[i * m.cols + j] == first)
}

/// Columns centred (a constant column becomes exactly 0), as an nalgebra
/// matrix. Errors when every column is constant.
pub(crate) fn centred(
    m: &Matrix,
    name: &'static str,
    metric: &'static str,
) -> Result<DMatrix<f64>> {
    let (n, d) = (m.rows, m.cols);
    let mut out = m.to_dmatrix();
    let mut all_constant = true;
    for j in 0..d {
        let mut col = out.column_mut(j);
        if column_is_constant(m, j) {
            col.fill(0.0);
            continue;
        }
        all_constant = false;
        let mean = col.iter().sum::<f64>() / n as f64;
        col.iter_mut().for_each(|v| *v -= mean);
    }
    if all_constant {
        return Err(RepsimError::ConstantRepresentation {
            matrix: name,
            metric,
        });
    }
    Ok(out)
}

/// [`centred`], then scaled to unit Frobenius norm. Scale-invariant metrics
/// use it so that neither tiny nor huge inputs under- or overflow.
pub(crate) fn centred_unit(
    m: &Matrix,
    name: &'static str,
    metric: &'static str,
) -> Result<DMatrix<f64>> {
    let mut c = centred(m, name, metric)?;
    // Scaled by the largest entry first: the norm itself cannot overflow.
    let max = c.amax();
    c /= max;
    let norm = c.norm();
    c /= norm;
    Ok(c)
}

/// A thin SVD with the singular values in descending order.
pub(crate) struct SortedSvd {
    /// `rows × r` left singular vectors, `r = min(rows, cols)`.
    pub u: DMatrix<f64>,
    /// The singular values, descending.
    pub s: Vec<f64>,
    /// `r × cols` right singular vectors (transposed).
    pub v_t: DMatrix<f64>,
}

pub(crate) fn sorted_svd(m: DMatrix<f64>) -> SortedSvd {
    let svd = m.svd(true, true);
    let u = svd.u.expect("SVD was asked for U");
    let v_t = svd.v_t.expect("SVD was asked for Vᵀ");
    let s = svd.singular_values;
    let mut order: Vec<usize> = (0..s.len()).collect();
    order.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    SortedSvd {
        u: u.select_columns(&order),
        s: order.iter().map(|&k| s[k]).collect(),
        v_t: v_t.select_rows(&order),
    }
}

/// Singular values below this are zero for a matrix of the given shape whose
/// largest singular value is `s_max` (the usual `max(m, n) · ε · s_max`).
pub(crate) fn rank_tolerance(rows: usize, cols: usize, s_max: f64) -> f64 {
    rows.max(cols) as f64 * f64::EPSILON * s_max
}

/// Squared Euclidean distances between the rows, by direct differences (exact
/// 0 for identical examples, no cancellation as in `‖a‖² + ‖b‖² − 2a·b`).
pub(crate) fn squared_distances_of_rows(m: &DMatrix<f64>) -> DMatrix<f64> {
    let (n, d) = m.shape();
    // Columns of the transpose are the examples, contiguous in memory.
    let t = m.transpose();
    let data = t.as_slice();
    let example = |i: usize| &data[i * d..(i + 1) * d];
    let mut d2 = DMatrix::zeros(n, n);
    for i in 0..n {
        for j in 0..i {
            let v: f64 = example(i)
                .iter()
                .zip(example(j))
                .map(|(a, b)| (a - b) * (a - b))
                .sum();
            d2[(i, j)] = v;
            d2[(j, i)] = v;
        }
    }
    d2
}

/// The matrix divided by its largest absolute entry (unchanged when that is
/// 0), for metrics that are invariant to scaling.
pub(crate) fn scaled_by_max(m: &Matrix) -> DMatrix<f64> {
    let mut out = m.to_dmatrix();
    let max = out.amax();
    if max > 0.0 {
        out /= max;
    }
    out
}

/// The Frobenius inner product `⟨A, B⟩ = Σ aᵢⱼ bᵢⱼ`.
pub(crate) fn frobenius_dot(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(p, q)| p * q).sum()
}
