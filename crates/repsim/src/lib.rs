//! Representational similarity.
//!
//! Linear CKA (Kornblith et al., 2019, "Similarity of Neural Network
//! Representations Revisited"), biased HSIC estimator, as used by guidance
//! (paper NOTES §1.2):
//!
//! ```text
//! K = Xc Xcᵀ,  L = Yc Ycᵀ      (Xc, Yc: columns centred; equals H·XXᵀ·H)
//! CKA(X, Y) = ⟨K, L⟩_F / (‖K‖_F ‖L‖_F)
//! ```
//!
//! Two forms are provided: [`linear_cka`] on burn tensors, differentiable, for
//! losses; and [`host::linear_cka`] in `f64` for analysis and as a reference.
//! Names say what a value is: `*_cka` is a similarity in [0, 1],
//! `*_distance` is `1 − similarity`.

pub mod host;

use burn::tensor::Tensor;

/// Floor under quantities that are square-rooted or divided by: keeps constant
/// representations (zero after centring) finite, with CKA 0 and a finite
/// gradient, instead of NaN.
const EPS: f64 = 1e-12;

/// Centres each column and scales the whole matrix to unit Frobenius norm.
///
/// Centring by subtracting column means equals the `H·K·H` double centring of
/// the Gram matrix without forming `H`. The scaling leaves CKA unchanged (it
/// is scale invariant) but keeps Gram entries near 1 in `f32`, whatever the
/// scale of the activations.
fn centre_and_scale(x: Tensor<2>) -> Tensor<2> {
    let centred = x.clone() - x.mean_dim(0);
    let norm = centred
        .clone()
        .square()
        .sum()
        .clamp_min(EPS)
        .sqrt()
        .reshape([1, 1]);
    centred / norm
}

/// Linear CKA between `x: (n, p)` and `y: (n, q)`, Gram form (`n × n`), as a
/// one-element tensor. Differentiable in both arguments.
///
/// The Gram form costs `O(n²(p + q))` and never materialises anything larger
/// than `n × n`, which suits minibatches of flattened conv maps (`p ≫ n`).
pub fn linear_cka(x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    check_rows(&x, &y);
    let x = centre_and_scale(x);
    let y = centre_and_scale(y);
    let k = x.clone().matmul(x.transpose());
    let l = y.clone().matmul(y.transpose());
    cka_from_centred_grams(k, l)
}

/// Linear CKA in feature form, `‖Ycᵀ Xc‖² / (‖Xcᵀ Xc‖ ‖Ycᵀ Yc‖)`: the same
/// value as [`linear_cka`], cheaper when the feature counts are below `n`.
pub fn linear_cka_feature_form(x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    check_rows(&x, &y);
    let x = centre_and_scale(x);
    let y = centre_and_scale(y);
    let cross = y.clone().transpose().matmul(x.clone()).square().sum();
    let xx = x.clone().transpose().matmul(x).square().sum();
    let yy = y.clone().transpose().matmul(y).square().sum();
    cross / (xx * yy).clamp_min(EPS).sqrt()
}

/// `1 − linear CKA`: the guidance distance of the paper.
pub fn linear_cka_distance(x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    linear_cka(x, y).neg().add_scalar(1.0)
}

fn cka_from_centred_grams(k: Tensor<2>, l: Tensor<2>) -> Tensor<1> {
    let kl = (k.clone() * l.clone()).sum();
    let kk = k.square().sum();
    let ll = l.square().sum();
    kl / (kk * ll).clamp_min(EPS).sqrt()
}

fn check_rows(x: &Tensor<2>, y: &Tensor<2>) {
    let (nx, ny) = (x.dims()[0], y.dims()[0]);
    assert_eq!(
        nx, ny,
        "CKA compares the same examples: x has {nx} rows but y has {ny}"
    );
}
