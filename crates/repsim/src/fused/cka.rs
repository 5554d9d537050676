//! Linear CKA between a tap and fixed representations as one operation on
//! burn's CPU backend. A fixed representation's centred Gram matrix is
//! computed once, at unit norm ([`unit_centred_grams`]), and each target tap
//! is compared with all of its partners in one operation
//! ([`linear_cka_against`]) whose backward pass is one product with the tap,
//! where tensor operations would run a few hundred small operations per step:
//!
//! ```text
//! K = X Xᵀ, Kc = H K H, L_j unit centred Gram matrices of the partners
//! c_j = ⟨Kc, L_j⟩ / ‖Kc‖
//! ∂c_j/∂Kc = (L_j − c_j Kc/‖Kc‖) / ‖Kc‖    (centred already, so it is ∂c_j/∂K)
//! dX = 2 M X, M = Σ_j g_j ∂c_j/∂K           (M symmetric)
//! ```
//!
//! Centring and inner products run in `f64` on the `n × n` matrices; the
//! products with the taps in `f32`. A representation whose centred Gram
//! matrix is zero (every example the same) has no defined CKA: its value is
//! 0 and it passes no gradient.

use std::sync::Arc;

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Device, Tensor};
use rayon::prelude::*;

use super::gram::{gram, ranges};
use untrainable_kernels::flex::{Destination, f32_values, flex_tensor, multiply};

/// Rows of `M` and columns of the tap per task of the backward product: a
/// fixed split, so that the gradient is the same on any number of threads.
const TASK: [usize; 2] = [64, 1024];

/// `H Y Yᵀ H / ‖H Y Yᵀ H‖_F` (`n × n`) of every `y` (`n × d`), on flex
/// (`f32`) for representations that take no gradient (a frozen guide's
/// taps), computed in parallel; `None` where any is elsewhere or tracked.
/// Each is the `grams` argument's slice for that partner in
/// [`linear_cka_against`].
pub fn unit_centred_grams(ys: &[Tensor<2>]) -> Option<Vec<Tensor<2>>> {
    each_in_parallel(ys, <Dispatch as UnitCentredGram>::unit_centred_gram)
}

/// `H K H / ‖H K H‖_F` of every symmetric `k = Y Yᵀ` (`n × n`): what
/// [`unit_centred_grams`] gives for `Y`, from its uncentred Gram matrix
/// (gathered from a table of a fixed representation's Gram matrix over a
/// whole data set); the same conditions.
pub fn unit_centred_of_uncentred(ks: &[Tensor<2>]) -> Option<Vec<Tensor<2>>> {
    each_in_parallel(ks, <Dispatch as UnitCentredGram>::unit_centred)
}

/// `H K H / ‖H K H‖_F` (row-major, `rows.len()²` values) of the block
/// `k[rows, rows]` of each symmetric `examples × examples` matrix `k`
/// (row-major) of `tables`, in parallel: what [`unit_centred_of_uncentred`]
/// gives for the gathered blocks, read from tables on the host without
/// gathering them first.
pub fn unit_centred_blocks(tables: &[&[f32]], examples: usize, rows: &[usize]) -> Vec<Vec<f32>> {
    tables
        .par_iter()
        .map(|k| {
            let block: Vec<f32> = rows
                .iter()
                .flat_map(|&i| rows.iter().map(move |&j| k[i * examples + j]))
                .collect();
            Centred::of(&block, rows.len()).unit
        })
        .collect()
}

/// `op` of every one of `xs` in parallel, on flex (`f32`) for untracked
/// tensors only; each result on its input's device.
fn each_in_parallel(
    xs: &[Tensor<2>],
    op: fn(FloatTensor<Dispatch>) -> FloatTensor<Dispatch>,
) -> Option<Vec<Tensor<2>>> {
    if !xs.iter().all(|x| on_flex_f32(x) && !x.is_tracked()) {
        return None;
    }
    let inner: Vec<_> = xs
        .iter()
        .map(|x| x.clone().inner().into_dispatch())
        .collect();
    let results: Vec<_> = inner.into_par_iter().map(op).collect();
    Some(
        results
            .into_iter()
            .zip(xs)
            .map(|(k, x)| {
                let k = Tensor::<2>::from_dispatch(k);
                if x.device().is_autodiff() {
                    Tensor::from_inner(k)
                } else {
                    k
                }
            })
            .collect(),
    )
}

/// The linear CKA of `x` (`n × d`) with each of `p` fixed representations
/// given by their [`unit_centred_grams`], stacked as `grams` (`p × n × n`):
/// a tensor of `p` values, differentiable in `x` only. On flex (`f32`),
/// `None` elsewhere or where `grams` is tracked.
pub fn linear_cka_against(x: Tensor<2>, grams: Tensor<3>) -> Option<Tensor<1>> {
    let [n, _] = x.dims();
    let [_, rows, columns] = grams.dims();
    assert!(
        rows == n && columns == n,
        "Gram matrices of the tap's {n} examples, not {rows} × {columns}"
    );
    if !(on_flex_f32(&x) && on_flex_f32(&grams)) || grams.is_tracked() {
        return None;
    }
    let grams = match (x.device().is_autodiff(), grams.device().is_autodiff()) {
        (true, false) => Tensor::from_inner(grams),
        (false, true) => grams.inner(),
        _ => grams,
    };
    Some(Tensor::from_dispatch(
        <Dispatch as CkaAgainst>::linear_cka_against(x.into_dispatch(), grams.into_dispatch()),
    ))
}

fn on_flex_f32<const D: usize>(x: &Tensor<D>) -> bool {
    x.device().inner() == Device::flex() && x.dtype() == DType::F32
}

#[backend_extension(Flex)]
trait UnitCentredGram: Backend {
    /// `H Y Yᵀ H` at unit Frobenius norm (zero where it is zero).
    fn unit_centred_gram(y: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `H K H` at unit Frobenius norm of the symmetric `K` (zero where it is zero).
    fn unit_centred(k: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl UnitCentredGram for Flex {
    fn unit_centred_gram(y: FlexTensor) -> FlexTensor {
        let [n, d] = dims(&y);
        let centred = Centred::of(&gram(f32_values(&y.to_contiguous()), n, d), n);
        flex_tensor(centred.unit, vec![n, n])
    }

    fn unit_centred(k: FlexTensor) -> FlexTensor {
        let [n, _] = dims(&k);
        let centred = Centred::of(f32_values(&k.to_contiguous()), n);
        flex_tensor(centred.unit, vec![n, n])
    }
}

#[backend_extension(Flex, Autodiff)]
trait CkaAgainst: Backend {
    /// The linear CKA of `x` (`n × d`) with each of `grams` (`p × n × n`).
    fn linear_cka_against(x: FloatTensor<Self>, grams: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl CkaAgainst for Flex {
    fn linear_cka_against(x: FlexTensor, grams: FlexTensor) -> FlexTensor {
        forward(&x, &grams).0
    }
}

impl<C: CheckpointStrategy> CkaAgainst for Autodiff<Flex, C> {
    fn linear_cka_against(x: FloatTensor<Self>, grams: FloatTensor<Self>) -> FloatTensor<Self> {
        let grams = grams.into_primitive();
        match CkaBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let node = prep.checkpoint(&x);
                let (values, state) = forward(&x.into_primitive(), &grams);
                prep.finish((node, Arc::new(state), grams), values)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x.into_primitive(), &grams).0),
        }
    }
}

/// A centred Gram matrix at unit norm, and its norm before.
#[derive(Debug)]
struct Centred {
    unit: Vec<f32>,
    norm: f64,
}

impl Centred {
    /// `H k H` of the symmetric `n × n` matrix `k`: its row means subtracted
    /// from rows and columns, its mean added back.
    fn of(k: &[f32], n: usize) -> Self {
        let means: Vec<f64> = k
            .chunks_exact(n)
            .map(|row| row.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64)
            .collect();
        let mean = means.iter().sum::<f64>() / n as f64;
        let centred: Vec<f64> = k
            .chunks_exact(n)
            .zip(&means)
            .flat_map(|(row, r)| {
                row.iter()
                    .zip(&means)
                    .map(move |(&v, c)| f64::from(v) - r - c + mean)
            })
            .collect();
        let norm = centred.iter().map(|v| v * v).sum::<f64>().sqrt();
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        Self {
            unit: centred.iter().map(|v| (v * scale) as f32).collect(),
            norm,
        }
    }
}

/// What the backward pass needs besides the tap: its centred Gram matrix and
/// the values.
#[derive(Debug)]
struct Forward {
    centred: Centred,
    values: Vec<f64>,
}

fn forward(x: &FlexTensor, grams: &FlexTensor) -> (FlexTensor, Forward) {
    let x = x.to_contiguous();
    let [n, d] = dims(&x);
    let centred = Centred::of(&gram(f32_values(&x), n, d), n);
    let grams = grams.to_contiguous();
    let values: Vec<f64> = f32_values(&grams)
        .chunks_exact(n * n)
        .map(|l| {
            let inner: f64 = centred
                .unit
                .iter()
                .zip(l)
                .map(|(&k, &l)| f64::from(k) * f64::from(l))
                .sum();
            if centred.norm > 0.0 { inner } else { 0.0 }
        })
        .collect();
    let out = flex_tensor(
        values.iter().map(|&v| v as f32).collect(),
        vec![values.len()],
    );
    (out, Forward { centred, values })
}

#[derive(Debug)]
struct CkaBackward;

impl Backward<Flex, 1> for CkaBackward {
    /// The tap, what its forward pass computed, and the fixed Gram matrices.
    type State = (NodeId, Arc<Forward>, FlexTensor);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [Some(node)] = ops.parents else {
            return;
        };
        let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x, forward, grams) = ops.state;
        let x: FlexTensor = checkpointer.retrieve_node_output(x);
        let x = x.to_contiguous();
        let [n, d] = dims(&x);
        let Forward { centred, values } = &*forward;
        let g = f32_values(&grad);
        // 2M = 2/‖Kc‖ · (Σ_j g_j L_j − (Σ_j g_j c_j) Kc/‖Kc‖).
        let mut m = vec![0.0f64; n * n];
        if centred.norm > 0.0 {
            let grams = grams.to_contiguous();
            for (l, &g) in f32_values(&grams).chunks_exact(n * n).zip(g) {
                m.iter_mut()
                    .zip(l)
                    .for_each(|(m, &l)| *m += f64::from(g) * f64::from(l));
            }
            let along: f64 = g.iter().zip(values).map(|(&g, c)| f64::from(g) * c).sum();
            let scale = 2.0 / centred.norm;
            m.iter_mut()
                .zip(&centred.unit)
                .for_each(|(m, &k)| *m = scale * (*m - along * f64::from(k)));
        }
        let m: Vec<f32> = m.iter().map(|&v| v as f32).collect();
        grads.register::<Flex>(
            node.id,
            flex_tensor(product(&m, f32_values(&x), n, d), vec![n, d]),
        );
    }
}

/// `m x` for the symmetric `n × n` `m` and the row-major `n × d` `x`, by
/// blocks of [`TASK`] rows and columns in parallel.
fn product(m: &[f32], x: &[f32], n: usize, d: usize) -> Vec<f32> {
    let (rows, columns) = (ranges(n, TASK[0]), ranges(d, TASK[1]));
    let blocks: Vec<Vec<f32>> = rows
        .par_iter()
        .flat_map_iter(|r| columns.iter().map(move |c| (r.clone(), c.clone())))
        .map(|(r, c)| {
            let mut block = vec![0.0f32; r.len() * c.len()];
            // Row i of m[r, ..] is column r.start + i of the symmetric m: the
            // kernel reads the left factor by columns.
            multiply(
                [r.len(), c.len(), n],
                (Destination::Over(&mut block), [c.len(), 1]),
                (&m[r.start..], [1, n]),
                (&x[c.start..], [d, 1]),
            );
            block
        })
        .collect();
    let mut out = vec![0.0f32; n * d];
    let tiles = rows
        .iter()
        .flat_map(|r| columns.iter().map(move |c| (r.clone(), c.clone())));
    for ((r, c), block) in tiles.zip(&blocks) {
        for (i, values) in r.zip(block.chunks_exact(c.len())) {
            out[i * d + c.start..][..c.len()].copy_from_slice(values);
        }
    }
    out
}

fn dims(x: &FlexTensor) -> [usize; 2] {
    let [n, d] = x.layout().shape()[..] else {
        unreachable!("a tensor of rank 2")
    };
    [n, d]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::values;
    use burn::tensor::TensorData;

    /// Several blocks of rows (of the Gram matrix and of the backward
    /// product) and two blocks of columns, each with a short last one.
    const N: usize = 70;
    const D: usize = 1100;

    /// Deterministic values in [−1, 1) that differ in every row and column.
    fn matrix(n: usize, d: usize, seed: usize) -> Vec<f64> {
        (0..n * d)
            .map(|i| ((i * 7919 + seed * 104_729) % 2003) as f64 / 1001.5 - 1.0)
            .collect()
    }

    /// `n × n` centred Gram matrix of the row-major `n × d` `x`, as
    /// `H (x xᵀ) H` with `H = I − 11ᵀ/n` written out.
    fn centred_gram(x: &[f64], n: usize) -> Vec<f64> {
        let d = x.len() / n;
        let k: Vec<f64> = (0..n * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                (0..d).map(|f| x[i * d + f] * x[j * d + f]).sum()
            })
            .collect();
        let h = |i: usize, j: usize| f64::from(u8::from(i == j)) - 1.0 / n as f64;
        let hk: Vec<f64> = (0..n * n)
            .map(|ij| (0..n).map(|a| h(ij / n, a) * k[a * n + ij % n]).sum())
            .collect();
        (0..n * n)
            .map(|ij| (0..n).map(|a| hk[ij / n * n + a] * h(a, ij % n)).sum())
            .collect()
    }

    fn cka(k: &[f64], l: &[f64]) -> f64 {
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f64>();
        dot(k, l) / (dot(k, k) * dot(l, l)).sqrt()
    }

    fn tensor_of<const R: usize>(values: &[f64], dims: [usize; R], device: &Device) -> Tensor<R> {
        let values: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        Tensor::from_data(TensorData::new(values, dims), device)
    }

    /// A tap `x` and three partners: a noisy copy of part of it, an
    /// unrelated one, and a narrower one.
    fn tap_and_partners() -> (Vec<f64>, Vec<Vec<f64>>) {
        let x = matrix(N, D, 1);
        let noise = matrix(N, 300, 2);
        let copy = (0..N * 300)
            .map(|i| x[i / 300 * D + i % 300] + 0.5 * noise[i])
            .collect();
        (x, vec![copy, matrix(N, 500, 3), matrix(N, 7, 4)])
    }

    /// The loss whose gradient the tests take: values weighed differently.
    const WEIGHTS: [f64; 3] = [1.0, -0.5, 2.0];

    fn gradient(x: &[f64], partners: &[Vec<f64>], device: &Device) -> (Vec<f64>, Vec<f64>) {
        let ys: Vec<Tensor<2>> = partners
            .iter()
            .map(|y| tensor_of(y, [N, y.len() / N], &device.clone().inner()))
            .collect();
        let grams = unit_centred_grams(&ys).expect("untracked f32 tensors on flex");
        let x = tensor_of(x, [N, D], device).require_grad();
        let c = linear_cka_against(x.clone(), Tensor::stack(grams, 0)).expect("flex");
        let weights = tensor_of(&WEIGHTS, [3], device);
        let grads = (c.clone() * weights).sum().backward();
        (values(c), values(x.grad(&grads).expect("a gradient")))
    }

    /// `got` is the centred Gram matrix of `y` (`N × d`) by definition,
    /// scaled to unit Frobenius norm.
    fn assert_unit_centred_gram_of(got: &[f64], y: &[f64], d: usize) {
        let expected = centred_gram(y, N);
        let norm = expected.iter().map(|v| v * v).sum::<f64>().sqrt();
        for (g, e) in got.iter().zip(&expected) {
            assert!(
                (g - e / norm).abs() <= 1e-6,
                "d = {d}: {g} against {}",
                e / norm
            );
        }
    }

    #[test]
    fn unit_centred_grams_are_the_centred_gram_by_definition_at_unit_norm() {
        let (_, partners) = tap_and_partners();
        let device = Device::flex();
        for y in &partners {
            let d = y.len() / N;
            let got = unit_centred_grams(&[tensor_of(y, [N, d], &device)]).unwrap();
            assert_unit_centred_gram_of(&values(got[0].clone()), y, d);
        }
    }

    #[test]
    fn unit_centring_an_uncentred_gram_matrix_is_the_centred_gram_by_definition() {
        let (_, partners) = tap_and_partners();
        let device = Device::flex();
        for y in &partners {
            let d = y.len() / N;
            let k: Vec<f64> = (0..N * N)
                .map(|ij| (0..d).map(|f| y[ij / N * d + f] * y[ij % N * d + f]).sum())
                .collect();
            let got = unit_centred_of_uncentred(&[tensor_of(&k, [N, N], &device)]).unwrap();
            assert_unit_centred_gram_of(&values(got[0].clone()), y, d);
        }
    }

    #[test]
    fn values_are_linear_cka_by_definition_and_the_gradient_its_derivative() {
        let (x, partners) = tap_and_partners();
        let ls: Vec<Vec<f64>> = partners.iter().map(|y| centred_gram(y, N)).collect();
        let loss = |x: &[f64]| {
            let k = centred_gram(x, N);
            ls.iter()
                .zip(WEIGHTS)
                .map(|(l, w)| w * cka(&k, l))
                .sum::<f64>()
        };
        let (got, grad) = gradient(&x, &partners, &Device::flex().autodiff());
        let k = centred_gram(&x, N);
        for (j, (g, l)) in got.iter().zip(&ls).enumerate() {
            let expected = cka(&k, l);
            assert!(
                (g - expected).abs() <= 1e-6,
                "pair {j}: {g} against {expected}"
            );
        }
        assert!(got[0] > 0.5 && got[1] < 0.5, "partners too alike: {got:?}");
        // Central differences at entries in every block of rows and columns.
        let scale = grad.iter().fold(0f64, |m, g| m.max(g.abs()));
        assert!(scale > 0.0, "no gradient");
        for (i, f) in [
            (0, 0),
            (5, 1023),
            (63, 1024),
            (64, 17),
            (69, 1099),
            (30, 600),
        ] {
            let at = i * D + f;
            let h = 1e-3;
            let (mut up, mut down) = (x.clone(), x.clone());
            up[at] += h;
            down[at] -= h;
            let expected = (loss(&up) - loss(&down)) / (2.0 * h);
            assert!(
                (grad[at] - expected).abs() <= 1e-3 * scale,
                "dx[{i}, {f}]: {} against {expected}",
                grad[at]
            );
        }
    }

    #[test]
    fn the_gradient_is_the_same_on_any_number_of_threads() {
        let (x, partners) = tap_and_partners();
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| gradient(&x, &partners, &Device::flex().autodiff()))
        };
        assert_eq!(on(1), on(3));
    }

    #[test]
    fn a_representation_without_variation_has_no_value_and_no_gradient() {
        let device = Device::flex().autodiff();
        let (_, partners) = tap_and_partners();
        let y = tensor_of(&partners[0], [N, 300], &device);
        let grams = unit_centred_grams(&[y]).unwrap();
        // Every example the same: the centred Gram matrix is zero.
        let x = Tensor::<2>::ones([N, D], &device).require_grad();
        let c = linear_cka_against(x.clone(), Tensor::stack(grams, 0)).unwrap();
        assert_eq!(values(c.clone()), vec![0.0]);
        let grads = c.sum().backward();
        assert!(values(x.grad(&grads).unwrap()).iter().all(|&g| g == 0.0));
    }

    #[test]
    fn only_fixed_partners_take_this_path() {
        let device = Device::flex().autodiff();
        let y = Tensor::<2>::ones([4, 3], &device).require_grad();
        assert!(unit_centred_grams(std::slice::from_ref(&y)).is_none());
        let grams = Tensor::<3>::zeros([1, 4, 4], &device).require_grad();
        assert!(linear_cka_against(y, grams).is_none());
    }
}
