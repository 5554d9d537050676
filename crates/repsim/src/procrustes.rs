//! Differentiable orthogonal Procrustes similarity.

use burn::tensor::Tensor;

use crate::host::psd_power;
use crate::{centre_gram, check_rows, from_host, gram, to_host, unit_trace};

/// Eigenvalues at or below this share of the largest count as zero in the
/// pseudo-inverse square roots: well above the rounding of `f32` Gram
/// matrices, whose noise would otherwise get huge weights in the gradient.
const RANK_FLOOR: f64 = 1e-6;

/// The Procrustes similarity `‖X̂ᵀŶ‖_*` (nuclear norm of the cross-covariance
/// of the centred, unit-Frobenius-norm representations), on burn tensors and
/// differentiable in both: the cosine of [`crate::host::angular_procrustes_distance`],
/// and `1 − d²/2` for [`crate::host::procrustes_distance`] `d`. A similarity in
/// [0, 1], symmetric, invariant to rotation, scaling and translation of either
/// side and to a permutation of the examples of both.
///
/// Gram form: with `K = X̂X̂ᵀ`, `L = ŶŶᵀ` (`n × n`),
///
/// ```text
/// ‖X̂ᵀŶ‖_* = tr (L^½ K L^½)^½
/// ```
///
/// and its gradient in `K` is `½ W` with `W = L^½ (L^½ K L^½)^−½ L^½`
/// (pseudo-inverse on the rank of the product). `W` and its twin for `L` are
/// computed on the host in `f64` and held constant; the value is returned as
/// `½(⟨W, K⟩ + ⟨W', L⟩)`, which equals the nuclear norm and has its exact
/// gradient (the nuclear norm is the maximum over rotations `Q` of
/// `tr(Qᵀ X̂ᵀŶ)`, linear at the optimal `Q`).
///
/// # Panics
/// If the row counts differ or `n < 2`.
pub fn procrustes_similarity(x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    check_rows(&x, &y);
    let n = x.dims()[0];
    assert!(
        n >= 2,
        "Procrustes similarity needs at least 2 examples, got {n}"
    );
    let k = unit_trace(centre_gram(gram(x)));
    let l = unit_trace(centre_gram(gram(y)));
    let (kh, lh) = (to_host(&k), to_host(&l));
    let weight = |a: &nalgebra::DMatrix<f64>, b: &nalgebra::DMatrix<f64>| {
        let root = psd_power(b, 0.5, 0.0);
        let inner = psd_power(&(&root * a * &root), -0.5, RANK_FLOOR);
        &root * inner * &root
    };
    let (wk, wl) = (weight(&kh, &lh), weight(&lh, &kh));
    let (wk, wl) = (from_host(&wk, &k), from_host(&wl, &l));
    ((k * wk).sum() + (l * wl).sum()).mul_scalar(0.5)
}
