//! Canonical correlation analysis and its two variants for neural
//! representations: SVCCA (Raghu, Gilmer, Yosinski & Sohl-Dickstein 2017) and
//! PWCCA (Morcos, Raghu & Bengio 2018).
//!
//! The canonical correlations of centred `Xc` (`n × dx`) and `Yc` are the
//! singular values of `UₓᵀU_y`, where `Uₓ`, `U_y` are orthonormal bases of the
//! column spaces (left singular vectors of `Xc`, `Yc`); this is the
//! QR/SVD route of Björck & Golub (1973), better conditioned than whitening
//! the covariance matrices.

use nalgebra::DMatrix;

use super::error::{RepsimError, Result};
use super::{
    Matrix, SortedSvd, centred_unit, check_pair, column_is_constant, rank_tolerance, sorted_svd,
};

/// The share of variance SVCCA keeps by default: 0.99, as in Raghu et al.
/// (2017, §2.1: "the top directions explaining 99% of the variance").
pub const DEFAULT_SVCCA_VARIANCE: f64 = 0.99;

/// The SVD of the centred features, and their numerical rank.
fn centred_svd(m: &Matrix, name: &'static str, metric: &'static str) -> Result<(SortedSvd, usize)> {
    // Unit Frobenius norm: every use below is scale free, and no square can
    // under- or overflow.
    let svd = sorted_svd(centred_unit(m, name, metric)?);
    let tol = rank_tolerance(m.rows, m.cols, svd.s[0]);
    let rank = svd.s.iter().filter(|s| **s > tol).count();
    Ok((svd, rank))
}

/// The SVD of the centred features, which must have full column rank.
/// The left singular vectors of the centred `m` with non-zero singular
/// values, and the squared singular values (variances), descending. A wide
/// `m` (more features than examples) goes through the `n × n`
/// eigendecomposition of `Xc Xcᵀ = U S² Uᵀ`, much cheaper than its SVD; the
/// small singular values it resolves less precisely are the ones SVCCA
/// drops.
fn principal_directions(
    m: &Matrix,
    name: &'static str,
    metric: &'static str,
) -> Result<(DMatrix<f64>, Vec<f64>)> {
    if m.cols <= m.rows {
        let (svd, rank) = centred_svd(m, name, metric)?;
        let variances = svd.s[..rank].iter().map(|s| s * s).collect();
        return Ok((svd.u.columns(0, rank).into_owned(), variances));
    }
    let c = centred_unit(m, name, metric)?;
    let eigen = (&c * c.transpose()).symmetric_eigen();
    let mut order: Vec<usize> = (0..eigen.eigenvalues.len()).collect();
    order.sort_by(|&a, &b| eigen.eigenvalues[b].total_cmp(&eigen.eigenvalues[a]));
    let largest = eigen.eigenvalues[order[0]];
    let tol = rank_tolerance(m.rows, m.cols, largest.sqrt())
        .powi(2)
        .max(f64::EPSILON * largest * m.rows as f64);
    let kept: Vec<usize> = order
        .into_iter()
        .filter(|&k| eigen.eigenvalues[k] > tol)
        .collect();
    let variances = kept.iter().map(|&k| eigen.eigenvalues[k]).collect();
    Ok((eigen.eigenvectors.select_columns(&kept), variances))
}

fn full_rank_svd(m: &Matrix, name: &'static str, metric: &'static str) -> Result<SortedSvd> {
    if let Some(col) = (0..m.cols).find(|&j| column_is_constant(m, j)) {
        return Err(RepsimError::ConstantFeature {
            matrix: name,
            col,
            metric,
        });
    }
    let (svd, rank) = centred_svd(m, name, metric)?;
    if rank < m.cols {
        return Err(RepsimError::RankDeficient {
            matrix: name,
            rank,
            cols: m.cols,
            metric,
        });
    }
    Ok(svd)
}

/// Canonical correlations (descending, `min(columns)` of them, in [0, 1])
/// between the spaces spanned by the orthonormal columns of `ux` and `uy`,
/// with the left singular vectors `P` of `uxᵀuy` (the canonical directions of
/// the first side in the `ux` basis).
fn canonical(ux: &DMatrix<f64>, uy: &DMatrix<f64>) -> (Vec<f64>, DMatrix<f64>) {
    let svd = sorted_svd(ux.tr_mul(uy));
    let rho = svd.s.iter().map(|s| s.clamp(0.0, 1.0)).collect();
    (rho, svd.u)
}

/// Mean squared canonical correlation, R²_CCA (Kornblith et al. 2019, §4;
/// Hotelling 1936):
///
/// ```text
/// ρ₁ ≥ … ≥ ρ_m: canonical correlations of Xc and Yc,  m = min(dx, dy)
/// R²_CCA(X, Y) = (1/m) Σᵢ ρᵢ² = ‖QₓᵀQ_y‖²_F / m
/// ```
///
/// A similarity in [0, 1], symmetric, invariant to any invertible linear map
/// of either side's features and to translation.
///
/// # Errors
/// Row counts differ, fewer than 2 examples, non-finite input, a constant
/// feature ([`RepsimError::ConstantFeature`]), or linearly dependent
/// features, which includes `d ≥ n` ([`RepsimError::RankDeficient`]: CCA is
/// then undefined, every correlation would be 1).
pub fn cca_similarity(x: &Matrix, y: &Matrix) -> Result<f64> {
    const METRIC: &str = "CCA";
    check_pair(x, y, METRIC, 2)?;
    let sx = full_rank_svd(x, "X", METRIC)?;
    let sy = full_rank_svd(y, "Y", METRIC)?;
    let (rho, _) = canonical(&sx.u, &sy.u);
    Ok(rho.iter().map(|r| r * r).sum::<f64>() / rho.len() as f64)
}

/// SVCCA similarity (Raghu et al. 2017, "SVCCA: Singular Vector Canonical
/// Correlation Analysis for Deep Learning Dynamics and Interpretability"):
///
/// ```text
/// Xc = U S Vᵀ (singular values descending);  kₓ = least k with
///     Σ_{i≤k} sᵢ² ≥ variance_kept · Σ sᵢ²  (numerically zero sᵢ never kept)
/// X' = U_{:kₓ} S_{:kₓ},  Y' likewise
/// SVCCA(X, Y) = (1/m) Σᵢ ρᵢ(X', Y'),   m = min(kₓ, k_y)
/// ```
///
/// i.e. the mean (not squared) canonical correlation of the top singular
/// directions. Default `variance_kept`: [`DEFAULT_SVCCA_VARIANCE`]. A
/// similarity in [0, 1], symmetric. Constant or collinear features are
/// allowed (the SVD step drops them); it is invariant to rotation, scaling
/// and translation but not to general linear maps, which change which
/// directions are kept.
///
/// # Errors
/// Row counts differ, fewer than 2 examples, non-finite input, a constant
/// representation, `variance_kept` outside (0, 1].
pub fn svcca_similarity(x: &Matrix, y: &Matrix, variance_kept: f64) -> Result<f64> {
    const METRIC: &str = "SVCCA";
    check_pair(x, y, METRIC, 2)?;
    if !(variance_kept > 0.0 && variance_kept <= 1.0) {
        return Err(RepsimError::InvalidParameter {
            name: "variance_kept",
            value: variance_kept,
            expected: "a share of variance in (0, 1] (default 0.99)",
        });
    }
    let top = |m: &Matrix, name: &'static str| -> Result<DMatrix<f64>> {
        let (u, variances) = principal_directions(m, name, METRIC)?;
        let total: f64 = variances.iter().sum();
        let mut kept = variances.len();
        let mut running = 0.0;
        for (k, v) in variances.iter().enumerate() {
            running += v;
            if running >= variance_kept * total {
                kept = k + 1;
                break;
            }
        }
        // The first `kept` left singular vectors are an orthonormal basis of X'.
        Ok(u.columns(0, kept).into_owned())
    };
    let (rho, _) = canonical(&top(x, "X")?, &top(y, "Y")?);
    Ok(rho.iter().sum::<f64>() / rho.len() as f64)
}

/// Projection-weighted CCA (Morcos et al. 2018, "Insights on representational
/// similarity in neural networks with canonical correlation", eq. 2–3):
///
/// ```text
/// hᵢ = Xc aᵢ  (unit canonical variates of X),  αᵢ = Σⱼ |⟨hᵢ, x̃ⱼ⟩|
/// PWCCA(X, Y) = Σᵢ αᵢ ρᵢ / Σᵢ αᵢ,   i = 1 … min(dx, dy)
/// ```
///
/// with `x̃ⱼ` the centred features (neurons) of `X`: each canonical
/// correlation is weighted by how much of `X`'s neurons lie along its
/// direction. **Not symmetric**: the weights come from the first argument;
/// Morcos et al.'s code weights by whichever side has fewer neurons, so
/// `pwcca_similarity(narrower, wider)` reproduces it. A similarity in [0, 1];
/// invariant to scaling and translation, and to any invertible map of `Y`,
/// but not to rotations of `X` (the weights are in `X`'s neuron basis).
///
/// # Errors
/// As [`cca_similarity`].
pub fn pwcca_similarity(x: &Matrix, y: &Matrix) -> Result<f64> {
    const METRIC: &str = "PWCCA";
    check_pair(x, y, METRIC, 2)?;
    let sx = full_rank_svd(x, "X", METRIC)?;
    let sy = full_rank_svd(y, "Y", METRIC)?;
    let (rho, p) = canonical(&sx.u, &sy.u);
    // Hᵀ Xc = Pᵀ Uₓᵀ Uₓ Sₓ Vₓᵀ = Pᵀ Sₓ Vₓᵀ: no n-sized product needed.
    let mut sv = sx.v_t.clone();
    for (k, s) in sx.s.iter().enumerate() {
        sv.row_mut(k).scale_mut(*s);
    }
    let projections = p.tr_mul(&sv);
    let (mut weighted, mut total) = (0.0, 0.0);
    for (i, r) in rho.iter().enumerate() {
        let alpha: f64 = projections.row(i).iter().map(|v| v.abs()).sum();
        weighted += alpha * r;
        total += alpha;
    }
    Ok((weighted / total).clamp(0.0, 1.0))
}
