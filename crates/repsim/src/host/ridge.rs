//! Ridge-regression similarity: how well one representation linearly predicts
//! the other (the encoding-model score of Naselaris, Kay, Nishimoto & Gallant
//! 2011, "Encoding and decoding in fMRI"; used as a representational distance
//! in the guidance paper's NeurIPS ablation).

use nalgebra::DMatrix;

use super::error::{RepsimError, Result};
use super::{Matrix, centred_unit, check_pair};

/// The default ridge strength, relative to the mean eigenvalue (see
/// [`ridge_similarity`]): 0.1. Light enough that a well-posed fit (n > dx) is
/// barely shrunk, strong enough that a wide `X` (dx ≥ n, where the unpenalised
/// in-sample R² is 1 for any `Y`) still gives a graded value.
pub const DEFAULT_RIDGE_LAMBDA: f64 = 0.1;

/// In-sample R² of predicting `Y` from `X` by ridge regression with an
/// intercept (both sides centred):
///
/// ```text
/// λ' = λ · ‖Xc‖²_F / min(n, dx)           (λ times the mean eigenvalue of the
///                                          smaller of XcᵀXc and XcXcᵀ)
/// B  = (XcᵀXc + λ' I)⁻¹ XcᵀYc,   Ŷ = Xc B = K (K + λ' I)⁻¹ Yc,  K = XcXcᵀ
/// R²(X → Y) = 1 − ‖Yc − Ŷ‖²_F / ‖Yc‖²_F
/// ```
///
/// `λ` is **scaled**: it is dimensionless, and the value is invariant to
/// rescaling either side. Solved by Cholesky in whichever of the feature form
/// (`dx × dx`, when dx ≤ n) and the Gram form (`n × n`) is smaller. A
/// similarity in [0, 1] (`Ŷ` is a shrunk projection of `Yc`). Default `λ`:
/// [`DEFAULT_RIDGE_LAMBDA`].
///
/// **Not symmetric**: `ridge_similarity(x, y, λ)` asks how much of `Y` is a
/// linear read-out of `X`; a wide, rich `X` predicts a narrow `Y` well while
/// the narrow one predicts little of the wide one, so
/// `ridge_similarity(y, x, λ)` is in general different. Invariant to
/// rotations, scaling and translation of either side and to example
/// permutation; not to general linear maps of `X` (the penalty is isotropic)
/// nor of `Y` (R² weights `Y`'s features by their variance).
///
/// # Errors
/// Row counts differ, fewer than 2 examples, non-finite input, a constant
/// representation on either side, `λ` not finite and > 0.
pub fn ridge_similarity(x: &Matrix, y: &Matrix, lambda: f64) -> Result<f64> {
    const METRIC: &str = "ridge-regression similarity";
    check_pair(x, y, METRIC, 2)?;
    if !(lambda.is_finite() && lambda > 0.0) {
        return Err(RepsimError::InvalidParameter {
            name: "lambda",
            value: lambda,
            expected: "a finite ridge strength > 0, relative to the mean eigenvalue (default 0.1)",
        });
    }
    // Both sides at unit Frobenius norm: R² is invariant to it, and λ' = λ / min(n, dx).
    let xc = centred_unit(x, "X", METRIC)?;
    let yc = centred_unit(y, "Y", METRIC)?;
    let (n, dx) = (x.rows, x.cols);
    let ridge = lambda / n.min(dx) as f64;
    let prediction = if dx <= n {
        let mut a = xc.tr_mul(&xc);
        a += DMatrix::identity(dx, dx) * ridge;
        let b = solve_spd(a, xc.tr_mul(&yc), lambda)?;
        &xc * b
    } else {
        let k = &xc * xc.transpose();
        let mut a = k.clone();
        a += DMatrix::identity(n, n) * ridge;
        k * solve_spd(a, yc.clone(), lambda)?
    };
    let residual = (&yc - prediction).norm_squared();
    // ‖Yc‖_F = 1.
    Ok((1.0 - residual).clamp(0.0, 1.0))
}

/// `A⁻¹ B` for symmetric positive definite `A`: a Gram matrix plus the ridge.
/// Cholesky fails only when the ridge is too small to lift the Gram
/// matrix's zero eigenvalues above rounding.
fn solve_spd(a: DMatrix<f64>, b: DMatrix<f64>, lambda: f64) -> Result<DMatrix<f64>> {
    match a.cholesky() {
        Some(c) => Ok(c.solve(&b)),
        None => Err(RepsimError::InvalidParameter {
            name: "lambda",
            value: lambda,
            expected: "a ridge large enough for the regularised Gram matrix to be numerically \
                       positive definite",
        }),
    }
}
