//! Inputs and conversions shared by the repsim tests.
#![allow(dead_code)]

use burn::tensor::{DType, Device, Tensor, TensorData};
use rand::RngExt;
use rand::rngs::StdRng;
use untrainable_repsim::host::Matrix;

pub fn gaussian(rng: &mut StdRng, rows: usize, cols: usize) -> Matrix {
    // Box–Muller: enough for test inputs, no extra dependency.
    let data = (0..rows * cols)
        .map(|_| {
            let u: f64 = rng.random::<f64>().max(1e-12);
            let v: f64 = rng.random::<f64>();
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        })
        .collect();
    Matrix::new(rows, cols, data)
}

pub fn matmul(a: &Matrix, b: &Matrix) -> Matrix {
    let mut out = vec![0.0; a.rows * b.cols];
    for i in 0..a.rows {
        for k in 0..a.cols {
            let aik = a.data[i * a.cols + k];
            for j in 0..b.cols {
                out[i * b.cols + j] += aik * b.data[k * b.cols + j];
            }
        }
    }
    Matrix::new(a.rows, b.cols, out)
}

/// A random orthogonal matrix by Gram–Schmidt on a Gaussian matrix.
pub fn orthogonal(rng: &mut StdRng, d: usize) -> Matrix {
    let g = gaussian(rng, d, d);
    let mut cols: Vec<Vec<f64>> = Vec::new();
    for j in 0..d {
        let mut v: Vec<f64> = (0..d).map(|i| g.data[i * d + j]).collect();
        for u in &cols {
            let p: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(u).for_each(|(a, b)| *a -= p * b);
        }
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.iter_mut().for_each(|a| *a /= norm);
        cols.push(v);
    }
    Matrix::new(d, d, (0..d * d).map(|k| cols[k % d][k / d]).collect())
}

pub fn map(m: &Matrix, f: impl Fn(usize, f64) -> f64) -> Matrix {
    let data = m
        .data
        .iter()
        .enumerate()
        .map(|(k, v)| f(k % m.cols, *v))
        .collect();
    Matrix::new(m.rows, m.cols, data)
}

pub fn tensor(m: &Matrix) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(m.data.clone(), [m.rows, m.cols]),
        &Device::flex(),
    )
}

pub fn tensor_f64(m: &Matrix) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(m.data.clone(), [m.rows, m.cols]),
        (&Device::flex(), DType::F64),
    )
}

pub fn scalar(t: Tensor<1>) -> f64 {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap()[0]
}

/// `m` as an f64 tensor on the autodiff device, tracking its gradient.
pub fn tracked_f64(m: &Matrix) -> Tensor<2> {
    Tensor::<2>::from_data(
        TensorData::new(m.data.clone(), [m.rows, m.cols]),
        (&Device::flex().autodiff(), DType::F64),
    )
    .require_grad()
}

/// Checks the autodiff gradient of `f` at `x` (with respect to `x`) against
/// central finite differences of `f` itself, all in f64.
pub fn assert_gradient_matches_finite_differences(x: &Matrix, f: impl Fn(Tensor<2>) -> Tensor<1>) {
    let xt = tracked_f64(x);
    let grads = f(xt.clone()).backward();
    let analytic = xt
        .grad(&grads)
        .unwrap()
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap();
    let h = 1e-6;
    for k in 0..x.data.len() {
        let at = |delta: f64| {
            let mut m = x.clone();
            m.data[k] += delta;
            scalar(f(tensor_f64(&m)))
        };
        let numeric = (at(h) - at(-h)) / (2.0 * h);
        assert!(
            (analytic[k] - numeric).abs() < 1e-6 * (1.0 + numeric.abs()),
            "entry {k}: autodiff {} vs finite differences {numeric}",
            analytic[k]
        );
    }
    assert!(
        analytic.iter().any(|g| g.abs() > 1e-4),
        "the gradient must not vanish"
    );
}
