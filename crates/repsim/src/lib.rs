//! Representational similarity.
//!
//! Linear CKA (Kornblith et al., 2019, "Similarity of Neural Network
//! Representations Revisited"), biased HSIC estimator, as used by guidance
//! (docs/paper.md §1.2):
//!
//! ```text
//! K = Xc Xcᵀ,  L = Yc Ycᵀ      (Xc, Yc: columns centred; equals H·XXᵀ·H)
//! CKA(X, Y) = ⟨K, L⟩_F / (‖K‖_F ‖L‖_F)
//! ```
//!
//! Two forms are provided: on burn tensors, differentiable, for losses
//! ([`linear_cka`], [`debiased_linear_cka`], [`rbf_cka`], [`rsa_similarity`],
//! [`ridge_similarity`], [`procrustes_similarity`], each selectable by name as
//! a guidance [`Distance`]); and in `f64` for analysis and as a reference
//! ([`host`], every metric). Names say what a value is: `*_cka` and
//! `*_similarity` are similarities, `*_distance` are distances.

pub mod distance;
pub mod fused;
pub mod host;
pub mod io;
mod procrustes;
mod ridge;
mod rsa;

pub use distance::Distance;
pub use fused::{
    fixed_gram, gram_without_grad, linear_cka_against, unit_centred_blocks, unit_centred_grams,
    unit_centred_of_uncentred,
};
pub use procrustes::procrustes_similarity;
pub use ridge::ridge_similarity;
pub use rsa::rsa_similarity;

use burn::tensor::{Int, Tensor, TensorData};
use nalgebra::DMatrix;

/// Floor under quantities that are square-rooted or divided by: keeps constant
/// representations (zero after centring) finite, with CKA 0 and a finite
/// gradient, instead of NaN.
const EPS: f64 = 1e-12;

/// Centres each column and scales the whole matrix to unit Frobenius norm.
///
/// The scaling leaves CKA unchanged (it is scale invariant) but keeps the
/// `d × d` products of the feature form near 1 in `f32`, whatever the scale of
/// the activations.
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

/// Linear CKA between `x: (n, p)` and `y: (n, q)`, as a one-element tensor.
/// Differentiable in both arguments.
///
/// Computed in whichever of the Gram form ([`linear_cka_gram_form`], cost
/// `O(n²(p + q))`) and the feature form ([`linear_cka_feature_form`], cost
/// `O(n(pq + p² + q²))`) is cheaper: the Gram form for the usual minibatch
/// of wide layers, the feature form for narrow layers over many examples.
pub fn linear_cka(x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    let (n, p, q) = (x.dims()[0], x.dims()[1], y.dims()[1]);
    if feature_form_is_cheaper(n, p, q) {
        linear_cka_feature_form(x, y)
    } else {
        linear_cka_gram_form(x, y)
    }
}

/// Whether the `d × d` feature form of linear CKA needs fewer multiply-adds
/// than the `n × n` Gram form.
pub fn feature_form_is_cheaper(n: usize, p: usize, q: usize) -> bool {
    let feature = n as f64 * (p as f64 * q as f64 + (p * p) as f64 + (q * q) as f64);
    let gram = (n * n) as f64 * (p + q) as f64;
    feature < gram
}

/// Linear CKA in Gram form:
///
/// ```text
/// K = H X Xᵀ H,  L = H Y Yᵀ H      (H = I − 11ᵀ/n, applied as row and column means)
/// CKA(X, Y) = ⟨K, L⟩_F / (‖K‖_F ‖L‖_F)
/// ```
///
/// Nothing larger than `n × n` is materialised besides the inputs: the Gram
/// matrix of the raw rows is centred, never a copy of `x`, so a minibatch of
/// flattened conv maps (`n = 256`, `p = 64·112·112`) needs a few hundred KiB
/// beyond its activations and their gradient.
pub fn linear_cka_gram_form(x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    check_rows(&x, &y);
    cka_from_centred_grams(centred_gram(x), centred_gram(y))
}

/// The `n × n` matrix that the Gram form of linear CKA compares, computed
/// once for a representation compared with several others: with `k` from
/// `x` and `l` from `y`, [`linear_cka_of_grams`]`(k, l)` is
/// [`linear_cka_gram_form`]`(x, y)`, bit for bit, and the gradients reaching
/// `k` from every comparison pass back through one product.
pub fn linear_cka_gram(x: Tensor<2>) -> Tensor<2> {
    centred_gram(x)
}

/// Linear CKA of two representations given by their [`linear_cka_gram`]s.
pub fn linear_cka_of_grams(k: Tensor<2>, l: Tensor<2>) -> Tensor<1> {
    assert_eq!(
        k.dims(),
        l.dims(),
        "CKA compares the same examples: Gram matrices of shapes {:?} and {:?}",
        k.dims(),
        l.dims()
    );
    cka_from_centred_grams(k, l)
}

/// `H X Xᵀ H`, divided by its largest entry (a constant in the gradient:
/// every use is scale invariant) so that sums of its squares stay far from
/// `f32` overflow.
pub(crate) fn centred_gram(x: Tensor<2>) -> Tensor<2> {
    linear_cka_gram_of_uncentred(gram(x))
}

/// [`linear_cka_gram`] of a representation given by its uncentred Gram
/// matrix `k = X Xᵀ` instead of `X`: the block of a table of a fixed
/// representation's Gram matrix over a whole data set, which a batch
/// gathers instead of computing `X Xᵀ` again.
pub fn linear_cka_gram_of_uncentred(k: Tensor<2>) -> Tensor<2> {
    let k = centre_gram(k);
    let scale = k
        .clone()
        .detach()
        .abs()
        .max()
        .clamp_min(EPS)
        .reshape([1, 1]);
    k / scale
}

/// Linear CKA in feature form, `‖Ycᵀ Xc‖² / (‖Xcᵀ Xc‖ ‖Ycᵀ Yc‖)`: the same
/// value as [`linear_cka_gram_form`], cheaper when the feature counts are
/// below `n`.
pub fn linear_cka_feature_form(x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    check_rows(&x, &y);
    let x = centre_and_scale(x);
    let y = centre_and_scale(y);
    let cross = y.clone().transpose().matmul(x.clone()).square().sum();
    let xx = x.clone().transpose().matmul(x).square().sum();
    let yy = y.clone().transpose().matmul(y).square().sum();
    cross / (xx * yy).clamp_min(EPS).sqrt()
}

/// Debiased linear CKA: CKA built on the unbiased HSIC estimator (Song et
/// al., 2012), which removes the bias of [`linear_cka`] at small `n`
/// (Kornblith et al., 2019; Nguyen et al., 2021):
///
/// ```text
/// HSIC_u(K, L) = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1) / ((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3))
/// ```
///
/// with `K̃`, `L̃` the Gram matrices with their diagonals set to zero. It can
/// be slightly negative for unrelated representations. Differentiable.
///
/// # Panics
/// If `n < 4` (the estimator divides by `n − 3`): check batch sizes where a
/// config is read.
pub fn debiased_linear_cka(x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    check_rows(&x, &y);
    let n = x.dims()[0];
    assert!(n >= 4, "debiased CKA needs at least 4 examples, got {n}");
    let (x, y) = (centre_and_scale(x), centre_and_scale(y));
    let off_diagonal = Tensor::<2>::eye(n, &x.device())
        .cast(x.dtype())
        .neg()
        .add_scalar(1.0);
    let k = gram(x) * off_diagonal.clone();
    let l = gram(y) * off_diagonal;
    let kl = unbiased_hsic(k.clone(), l.clone(), n);
    let kk = unbiased_hsic(k.clone(), k, n);
    let ll = unbiased_hsic(l.clone(), l, n);
    kl / (kk * ll).clamp_min(EPS).sqrt()
}

/// `HSIC_u` of two symmetric Gram matrices whose diagonals are zero.
fn unbiased_hsic(k: Tensor<2>, l: Tensor<2>, n: usize) -> Tensor<1> {
    let n = n as f64;
    let trace = (k.clone() * l.clone()).sum();
    let (k_rows, l_rows) = (k.clone().sum_dim(1), l.clone().sum_dim(1));
    let totals = k.sum() * l.sum();
    let cross = (k_rows * l_rows).sum();
    (trace + totals.div_scalar((n - 1.0) * (n - 2.0)) - cross.mul_scalar(2.0 / (n - 2.0)))
        .div_scalar(n * (n - 3.0))
}

/// CKA with Gaussian (RBF) kernels `k(a, b) = exp(−‖a − b‖² / (2σ²))`,
/// where `σ = bandwidth_fraction × median pairwise distance` of each
/// representation (Kornblith et al., 2019, §3). The bandwidth is held
/// constant in the gradient (it is a statistic of the batch, not a
/// function to optimise through). Biased HSIC, like [`linear_cka`].
pub fn rbf_cka(x: Tensor<2>, y: Tensor<2>, bandwidth_fraction: f64) -> Tensor<1> {
    check_rows(&x, &y);
    assert!(
        bandwidth_fraction > 0.0,
        "the RBF bandwidth fraction must be positive, got {bandwidth_fraction}"
    );
    let sigma_x = bandwidth_fraction * median_pairwise_distance(x.clone());
    let sigma_y = bandwidth_fraction * median_pairwise_distance(y.clone());
    rbf_cka_with_bandwidths(x, y, sigma_x, sigma_y)
}

/// [`rbf_cka`] with fixed bandwidths `σx`, `σy` (in the units of `x` and `y`).
pub fn rbf_cka_with_bandwidths(
    x: Tensor<2>,
    y: Tensor<2>,
    sigma_x: f64,
    sigma_y: f64,
) -> Tensor<1> {
    check_rows(&x, &y);
    // Each centred Gram is scaled to unit norm: for wide kernels its entries
    // are tiny, and the floor in `cka_from_centred_grams` must not bite.
    let gram = |z: Tensor<2>, sigma: f64| {
        let two_sigma2 = (2.0 * sigma * sigma).max(EPS);
        let centred = centre_gram(squared_distances(z).div_scalar(-two_sigma2).exp());
        let norm = centred
            .clone()
            .square()
            .sum()
            .sqrt()
            .clamp_min(EPS)
            .reshape([1, 1]);
        centred / norm
    };
    cka_from_centred_grams(gram(x, sigma_x), gram(y, sigma_y))
}

/// Squared Euclidean distances between rows, `n × n`, from the Gram matrix.
fn squared_distances(x: Tensor<2>) -> Tensor<2> {
    let x = x.clone() - x.mean_dim(0);
    let norms = x.clone().square().sum_dim(1);
    (norms.clone() + norms.transpose() - gram(x).mul_scalar(2.0)).clamp_min(0.0)
}

/// The median Euclidean distance over pairs of rows `i < j` (a statistic, no
/// gradient); 0 when there are fewer than two rows.
pub fn median_pairwise_distance(x: Tensor<2>) -> f64 {
    let n = x.dims()[0];
    let upper: Vec<i64> = (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i * n + j) as i64))
        .collect();
    let pairs = upper.len();
    if pairs == 0 {
        return 0.0;
    }
    let d2 = squared_distances(x.detach());
    let index = Tensor::<1, Int>::from_data(TensorData::new(upper, [pairs]), &d2.device());
    let sorted = d2.reshape([n * n]).select(0, index).sort(0);
    let d2: Vec<f64> = sorted
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("f64 values");
    let d: Vec<f64> = d2.into_iter().map(f64::sqrt).collect();
    if pairs % 2 == 1 {
        d[pairs / 2]
    } else {
        0.5 * (d[pairs / 2 - 1] + d[pairs / 2])
    }
}

/// The Gram matrix `X Xᵀ` of the rows, with a backward pass of one product.
///
/// Autodiff of `x.matmul(x.transpose())` computes `Gᵀ X` and `G X` and adds
/// them: two `n × n` by `n × d` products, the dominant cost for wide layers.
/// Here the product is taken against a detached `x`, so autodiff computes
/// only `G' X` with `G'` the gradient reaching this tensor; the returned
/// `K + Kᵀ − K` (held: `K`) makes `G' = G + Gᵀ`, the exact gradient of a
/// function of `X Xᵀ`, in `n × n` work.
///
/// A wide `x` is split into column blocks and the blocks' Gram matrices are
/// summed: one `n × n` product per block, run as a batch. burn's CPU backend
/// runs a batch as single-threaded products in parallel, which at
/// `n = 256` reached 1.6 times the speed of its multi-threaded single
/// product (forward) and halved the time of forward + backward at
/// `d ≥ 12 544`; LibTorch runs it as fast or faster (see
/// `docs/performance.md`). An `x` no gradient flows through (a frozen
/// guide's taps) takes [`gram_without_grad`] on flex, which
/// computes the products on and above the diagonal only.
pub(crate) fn gram(x: Tensor<2>) -> Tensor<2> {
    if let Some(k) = gram_without_grad(&x) {
        return k;
    }
    let [n, d] = x.dims();
    let k = match column_blocks(n, d) {
        Some(c) => gram_of_column_blocks(x, c),
        None => x.clone().matmul(x.detach().transpose()),
    };
    k.clone() + k.clone().transpose() - k.detach()
}

/// `Σ_b X_b X̃_bᵀ` over `c` equal column blocks `X_b` of `x` (`X̃_b` detached):
/// `X Xᵀ`, with the gradient of the left factor only.
fn gram_of_column_blocks(x: Tensor<2>, c: usize) -> Tensor<2> {
    let [n, d] = x.dims();
    let blocks = x.reshape([n, c, d / c]).swap_dims(0, 1);
    let products = blocks.clone().matmul(blocks.detach().swap_dims(1, 2));
    products.sum_dim(0).reshape([n, n])
}

/// How many equal column blocks [`gram`] splits `n × d` rows into: a multiple
/// of the CPU threads, at least 4 (the smallest batch burn's CPU backend
/// parallelises over), and only for rows at least `4 n` wide, below which
/// the split measured no faster; `None` where the blocks would be unequal.
fn column_blocks(n: usize, d: usize) -> Option<usize> {
    let threads = rayon::current_num_threads().max(1);
    let c = 4usize.max(threads).next_multiple_of(threads);
    (d >= 4 * n && d.is_multiple_of(c)).then_some(c)
}

/// `H K H`: subtracts row and column means and adds back the grand mean.
pub(crate) fn centre_gram(k: Tensor<2>) -> Tensor<2> {
    let rows = k.clone().mean_dim(1);
    let cols = k.clone().mean_dim(0);
    let all = k.clone().mean().reshape([1, 1]);
    k - rows - cols + all
}

fn cka_from_centred_grams(k: Tensor<2>, l: Tensor<2>) -> Tensor<1> {
    let kl = (k.clone() * l.clone()).sum();
    let kk = k.square().sum();
    let ll = l.square().sum();
    kl / (kk * ll).clamp_min(EPS).sqrt()
}

/// `k / tr(k)`: a centred Gram matrix of a representation at unit Frobenius
/// norm. The trace stays in the gradient (the metrics using it are scale
/// invariant only through it).
fn unit_trace(k: Tensor<2>) -> Tensor<2> {
    let n = k.dims()[0];
    let eye = Tensor::<2>::eye(n, &k.device()).cast(k.dtype());
    let trace = (k.clone() * eye).sum().clamp_min(EPS).reshape([1, 1]);
    k / trace
}

/// A matrix's values on the host in `f64`, for the factorisations burn has no
/// differentiable form of; held constant in the gradient.
fn to_host(t: &Tensor<2>) -> DMatrix<f64> {
    host_matrix(t).to_dmatrix()
}

/// A tensor's values as a host [`Matrix`](host::Matrix) (one row per
/// example), for the `f64` analyses of [`host`].
pub fn host_matrix(t: &Tensor<2>) -> host::Matrix {
    let [rows, cols] = t.dims();
    let values = t
        .clone()
        .detach()
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("a float tensor");
    host::Matrix::new(rows, cols, values)
}

/// A host matrix as a constant tensor with `like`'s dtype and device.
fn from_host(m: &DMatrix<f64>, like: &Tensor<2>) -> Tensor<2> {
    let values: Vec<f64> = m.transpose().iter().copied().collect();
    let data = TensorData::new(values, [m.nrows(), m.ncols()]);
    Tensor::from_data(data, (&like.device(), like.dtype()))
}

pub(crate) fn check_rows(x: &Tensor<2>, y: &Tensor<2>) {
    let (nx, ny) = (x.dims()[0], y.dims()[0]);
    assert_eq!(
        nx, ny,
        "CKA compares the same examples: x has {nx} rows but y has {ny}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{DType, Device};

    #[test]
    fn a_gram_matrix_summed_over_column_blocks_is_the_whole_product_with_its_gradient() {
        let (n, d) = (5, 12);
        let values: Vec<f64> = (0..n * d)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let weights: Vec<f64> = (0..n * n)
            .map(|i| ((i * 5 % 7) as f64 - 3.0) / 2.0)
            .collect();
        let at = |i: usize, j: usize| values[i * d + j];
        let device = (&Device::flex().autodiff(), DType::F64);
        for c in [1, 3, 4] {
            let x = Tensor::<2>::from_data(TensorData::new(values.clone(), [n, d]), device)
                .require_grad();
            let w = Tensor::<2>::from_data(TensorData::new(weights.clone(), [n, n]), device);
            let k = gram_of_column_blocks(x.clone(), c);
            let grads = (k.clone() * w).sum().backward();
            let k = k
                .into_data()
                .convert::<f64>()
                .try_into_vec::<f64>()
                .unwrap();
            let g = x.grad(&grads).unwrap();
            let g = g
                .into_data()
                .convert::<f64>()
                .try_into_vec::<f64>()
                .unwrap();
            for i in 0..n {
                for j in 0..n {
                    let expected: f64 = (0..d).map(|f| at(i, f) * at(j, f)).sum();
                    assert!(
                        (k[i * n + j] - expected).abs() < 1e-12,
                        "c = {c}: K[{i}, {j}]"
                    );
                }
                // d/dX of Σ W ⊙ (X X̃ᵀ) with X̃ held: W X.
                for f in 0..d {
                    let expected: f64 = (0..n).map(|j| weights[i * n + j] * at(j, f)).sum();
                    assert!(
                        (g[i * d + f] - expected).abs() < 1e-12,
                        "c = {c}: grad[{i}, {f}]"
                    );
                }
            }
        }
    }

    #[test]
    fn wide_rows_split_into_equal_blocks_for_every_thread() {
        let threads = rayon::current_num_threads();
        let c = column_blocks(256, 12_544 * threads).expect("a wide input is split");
        assert!(
            c >= 4 && c % threads == 0,
            "{c} blocks for {threads} threads"
        );
        assert_eq!(column_blocks(256, 1020), None, "narrower than 4 n");
        assert_eq!(column_blocks(256, 12_544 * c + 1), None, "unequal blocks");
    }
}
