//! Differentiable ridge-regression similarity.

use burn::tensor::Tensor;

use crate::{centre_gram, check_rows, from_host, gram, to_host, unit_trace};

/// In-sample R² of predicting `y` from `x` by ridge regression, on burn
/// tensors and differentiable in both: the same value as
/// [`crate::host::ridge_similarity`] (whose documentation gives the formula
/// and the scaling of `lambda`). A similarity in [0, 1]; **not symmetric**:
/// `ridge_similarity(target, guide, λ)` asks how much of the guide's
/// representation is a linear read-out of the target's.
///
/// In Gram form, with `K`, `L` the centred Gram matrices at unit trace and
/// `λ' = λ / min(n, dx)`, the residual of the fit is `λ' (K + λ'I)⁻¹ Yc`, so
///
/// ```text
/// R² = 1 − λ'² ⟨(K + λ'I)⁻², L⟩
/// ```
///
/// `(K + λ'I)⁻¹` is solved on the host in `f64` (Cholesky) and refined by one
/// Newton step `A⁻¹ ← A⁻¹(2I − A A⁻¹)` on the tensors: the step recovers the
/// working precision and carries the exact gradient of the inverse,
/// `−A⁻¹ dA A⁻¹`, without differentiating a factorisation.
///
/// # Panics
/// If the row counts differ, `n < 2`, or `lambda` is not a finite positive
/// number (configs are checked where they are read).
pub fn ridge_similarity(x: Tensor<2>, y: Tensor<2>, lambda: f64) -> Tensor<1> {
    check_rows(&x, &y);
    let (n, dx) = (x.dims()[0], x.dims()[1]);
    assert!(
        n >= 2,
        "ridge-regression similarity needs at least 2 examples, got {n}"
    );
    assert!(
        lambda.is_finite() && lambda > 0.0,
        "the ridge strength must be a finite number > 0, got {lambda}"
    );
    let ridge = lambda / n.min(dx) as f64;
    let k = unit_trace(centre_gram(gram(x)));
    let l = unit_trace(centre_gram(gram(y)));
    let eye = Tensor::<2>::eye(n, &k.device()).cast(k.dtype());
    let a = k + eye.clone().mul_scalar(ridge);
    let host = to_host(&a);
    let inverse = host
        .clone()
        .cholesky()
        .map(|c| c.inverse())
        .or_else(|| host.try_inverse())
        .expect("K + λ'I is positive definite for λ' > 0");
    let inverse = from_host(&inverse, &a);
    let inverse = inverse
        .clone()
        .matmul(eye.mul_scalar(2.0) - a.matmul(inverse));
    let squared = inverse.clone().matmul(inverse);
    (squared * l)
        .sum()
        .mul_scalar(-ridge * ridge)
        .add_scalar(1.0)
}
