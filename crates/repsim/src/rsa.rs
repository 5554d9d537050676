//! Differentiable representational similarity analysis.

use burn::tensor::{Tensor, TensorData};

use crate::{EPS, check_rows, gram};

/// RSA with correlation RDMs compared by Pearson correlation, differentiable:
///
/// ```text
/// C(X)ᵢⱼ = Pearson correlation of examples xᵢ and xⱼ across features
/// RSA(X, Y) = Pearson correlation of {1 − C(X)ᵢⱼ} and {1 − C(Y)ᵢⱼ} over i < j
/// ```
///
/// the same value as [`crate::host::rsa_similarity`] with
/// [`crate::host::RdmDistance::Correlation`] and
/// [`crate::host::RdmComparison::Pearson`] (Spearman's ranks have no
/// gradient). A similarity in [−1, 1], symmetric, invariant to scaling and to
/// a permutation of the examples of both.
///
/// Each example is centred over its own features through the Gram matrix of
/// the raw rows (`Gᵢⱼ − d·mᵢmⱼ`), so nothing larger than `n × n` is
/// materialised besides the inputs. An example that is constant across its
/// features has no correlation with anything: its row of `C` is 0 (the host
/// form refuses it).
///
/// # Panics
/// If the row counts differ or `n < 3` (two examples give one dissimilarity,
/// which has no correlation).
pub fn rsa_similarity(x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    check_rows(&x, &y);
    let n = x.dims()[0];
    assert!(n >= 3, "RSA needs at least 3 examples, got {n}");
    let upper = upper_triangle(n, &x);
    let pairs = (n * (n - 1) / 2) as f64;
    let centred = |c: Tensor<2>| {
        let mean = (c.clone() * upper.clone())
            .sum()
            .div_scalar(pairs)
            .reshape([1, 1]);
        (c - mean) * upper.clone()
    };
    // Pearson correlation is unchanged by `1 − ·` up to sign on both sides.
    let (a, b) = (centred(correlations(x)), centred(correlations(y)));
    let ab = (a.clone() * b.clone()).sum();
    let aa = a.square().sum();
    let bb = b.square().sum();
    ab / (aa * bb).clamp_min(EPS).sqrt()
}

/// Pearson correlations between the rows of `x`, `n × n`.
fn correlations(x: Tensor<2>) -> Tensor<2> {
    let d = x.dims()[1] as f64;
    let means = x.clone().mean_dim(1);
    let covariance = gram(x) - means.clone().matmul(means.transpose()).mul_scalar(d);
    let n = covariance.dims()[0];
    let eye = Tensor::<2>::eye(n, &covariance.device()).cast(covariance.dtype());
    let norms = (covariance.clone() * eye).sum_dim(1).clamp_min(EPS).sqrt();
    covariance / norms.clone() / norms.transpose()
}

/// `n × n` with 1 above the diagonal and 0 elsewhere, in `like`'s dtype and
/// on its device.
fn upper_triangle(n: usize, like: &Tensor<2>) -> Tensor<2> {
    let flags: Vec<f32> = (0..n * n)
        .map(|k| if k % n > k / n { 1.0 } else { 0.0 })
        .collect();
    Tensor::<2>::from_data(TensorData::new(flags, [n, n]), &like.device()).cast(like.dtype())
}
