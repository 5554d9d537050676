//! Orthogonal Procrustes distance (Ding, Denain & Steinhardt 2021, "Grounding
//! Representation Similarity with Statistical Testing"; Williams, Kunz,
//! Kornblith & Linderman 2021, "Generalized Shape Metrics on Neural
//! Representations").

use nalgebra::DMatrix;

use super::error::Result;
use super::{Matrix, centred_unit, check_pair};

/// A matrix with the same Gram matrix as `m` (so the same `‖mᵀ·‖_*` against
/// anything) and at most `rows` columns: `U·S` of the thin SVD when `m` is
/// wider than tall, from the symmetric eigendecomposition `m mᵀ = U S² Uᵀ`
/// (an `n × n` problem, much cheaper than the SVD of the wide `m`); `m`
/// itself otherwise.
fn narrowed(m: DMatrix<f64>) -> DMatrix<f64> {
    if m.ncols() <= m.nrows() {
        return m;
    }
    let eigen = (&m * m.transpose()).symmetric_eigen();
    let mut us = eigen.eigenvectors;
    for (k, s2) in eigen.eigenvalues.iter().enumerate() {
        us.column_mut(k).scale_mut(s2.max(0.0).sqrt());
    }
    us
}

/// `m^power` of a symmetric positive semi-definite `m`, through its
/// eigendecomposition; eigenvalues at or below `floor × the largest` count as
/// zero (a pseudo-power for negative `power`). For the Gram-form Procrustes
/// gradient in the crate root.
pub(crate) fn psd_power(m: &DMatrix<f64>, power: f64, floor: f64) -> DMatrix<f64> {
    let eigen = m.clone().symmetric_eigen();
    let largest = eigen.eigenvalues.amax();
    let mut scaled = eigen.eigenvectors.clone();
    for (k, lambda) in eigen.eigenvalues.iter().enumerate() {
        let factor = if *lambda > floor * largest {
            lambda.powf(power)
        } else {
            0.0
        };
        scaled.column_mut(k).scale_mut(factor);
    }
    scaled * eigen.eigenvectors.transpose()
}

/// `‖XᵀY‖_*` of the centred, unit-Frobenius-norm representations, in [0, 1].
fn nuclear_norm(x: &Matrix, y: &Matrix, metric: &'static str) -> Result<f64> {
    check_pair(x, y, metric, 2)?;
    let xc = narrowed(centred_unit(x, "X", metric)?);
    let yc = narrowed(centred_unit(y, "Y", metric)?);
    let nuclear: f64 = xc.tr_mul(&yc).singular_values().iter().sum();
    Ok(nuclear.clamp(0.0, 1.0))
}

/// Orthogonal Procrustes distance (Ding et al. 2021, eq. 1; Schönemann 1966):
///
/// ```text
/// X̂ = Xc / ‖Xc‖_F,  Ŷ = Yc / ‖Yc‖_F        (columns centred)
/// d(X, Y) = min_{Q orthogonal} ‖X̂ − ŶQ‖_F = sqrt(2 − 2‖X̂ᵀŶ‖_*)
/// ```
///
/// `‖·‖_*` is the nuclear norm (sum of singular values); different widths are
/// compared as if the narrower were padded with zero features. A distance in
/// [0, √2] and a metric on representations modulo rotation, scaling and
/// translation (it obeys the triangle inequality). The SVD is of a
/// `min(n, dx) × min(n, dy)` matrix: a wide side is first replaced by the
/// `n × n` factor `U·S` of its thin SVD, which has the same Gram matrix.
///
/// # Errors
/// Row counts differ, fewer than 2 examples, non-finite input, a constant
/// representation.
pub fn procrustes_distance(x: &Matrix, y: &Matrix) -> Result<f64> {
    let nuclear = nuclear_norm(x, y, "Procrustes distance")?;
    Ok((2.0 - 2.0 * nuclear).max(0.0).sqrt())
}

/// Angular Procrustes distance (Williams et al. 2021, eq. 4 with α = 1):
///
/// ```text
/// θ(X, Y) = arccos(‖X̂ᵀŶ‖_*)
/// ```
///
/// with `X̂, Ŷ` as in [`procrustes_distance`]: the angle between the
/// normalised representations after the best rotation. A distance in
/// [0, π/2], a metric, and a monotone function of [`procrustes_distance`]
/// (`d² = 2 − 2 cos θ`).
///
/// # Errors
/// As [`procrustes_distance`].
pub fn angular_procrustes_distance(x: &Matrix, y: &Matrix) -> Result<f64> {
    Ok(nuclear_norm(x, y, "angular Procrustes distance")?.acos())
}
