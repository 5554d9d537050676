//! Speed of the similarity metrics. Measure with
//! `cargo test --workspace --bench cka -- --bench` (the workspace's optimised
//! test build; `cargo bench` works too but builds everything again in the
//! release profile). `cargo test --workspace` runs each benchmark once.
//!
//! - linear CKA on burn tensors (f32; flex, or the backend
//!   `UNTRAINABLE_BACKEND` names), forward and forward + backward,
//!   at n = 256 examples and d ∈ {1 024, 16 384, 200 704} features (200 704 =
//!   a 64 × 56 × 56 conv map), the sizes of guidance taps; forward + backward
//!   ends with the sum of the gradient, as the PyTorch twin
//!   (`benches/reference/cka.py`) does, rather than a copy of it;
//! - every metric at n = 256, d = 1 024: the differentiable forms on burn
//!   tensors (forward, and forward + backward as a guidance distance) and the
//!   f64 analysis forms of `host`.

use std::hint::black_box;
use std::time::Duration;

use burn::tensor::{Device, Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use untrainable_repsim::host::{self, Matrix, RdmComparison, RdmDistance};
use untrainable_repsim::{Distance, linear_cka};

const N: usize = 256;

/// The backend under measurement: `UNTRAINABLE_BACKEND` (a `--backend` name
/// of this build), flex by default.
fn device() -> Device {
    untrainable_core::Backend::from_env()
        .unwrap_or_else(|e| panic!("{e}"))
        .device()
}

fn random(n: usize, d: usize, device: &Device) -> Tensor<2> {
    Tensor::random([n, d], Distribution::Normal(0.0, 1.0), device)
}

fn linear_cka_sizes(c: &mut Criterion) {
    let device = device();
    let mut group = c.benchmark_group("linear_cka");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for d in [1024, 16_384, 200_704] {
        let (x, y) = (random(N, d, &device), random(N, d, &device));
        group.bench_with_input(BenchmarkId::new("forward", d), &d, |b, _| {
            b.iter(|| black_box(linear_cka(x.clone(), y.clone()).into_scalar::<f32>()))
        });
        let train = device.clone().autodiff();
        let (xa, ya) = (random(N, d, &train).require_grad(), random(N, d, &train));
        group.bench_with_input(BenchmarkId::new("forward_backward", d), &d, |b, _| {
            b.iter(|| {
                let grads = Distance::LinearCka
                    .between(xa.clone(), ya.clone())
                    .backward();
                black_box(xa.grad(&grads).map(|g| g.sum().into_scalar::<f32>()))
            })
        });
    }
    group.finish();
}

fn matrix(seed: u64, rows: usize, cols: usize) -> Matrix {
    // A cheap deterministic fill: the metrics' cost does not depend on values.
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    Matrix::new(
        rows,
        cols,
        (0..rows * cols)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect(),
    )
}

fn every_metric(c: &mut Criterion) {
    let d = 1024;
    let device = device();
    let (x, y) = (random(N, d, &device), random(N, d, &device));
    let mut group = c.benchmark_group("metrics_n256_d1024");
    group.sample_size(10);
    // The differentiable forms, forward and forward + backward, as the
    // guidance distance of one layer pair.
    let train = device.clone().autodiff();
    let (xa, ya) = (random(N, d, &train).require_grad(), random(N, d, &train));
    for &distance in Distance::ALL {
        let name = distance.name();
        group.bench_function(format!("burn/{name}/forward"), |b| {
            b.iter(|| black_box(distance.between(x.clone(), y.clone()).into_scalar::<f32>()))
        });
        group.bench_function(format!("burn/{name}/forward_backward"), |b| {
            b.iter(|| {
                let grads = distance.between(xa.clone(), ya.clone()).backward();
                black_box(xa.grad(&grads).map(|g| g.sum().into_scalar::<f32>()))
            })
        });
    }

    let (a, b_) = (matrix(1, N, d), matrix(2, N, d));
    let host_metrics: [(&str, &dyn Fn(&Matrix, &Matrix) -> f64); 13] = [
        ("linear_cka", &|a, b| host::linear_cka_biased(a, b).unwrap()),
        ("linear_cka_debiased", &|a, b| {
            host::linear_cka_debiased(a, b).unwrap()
        }),
        ("rbf_cka", &|a, b| {
            host::rbf_cka(a, b, host::DEFAULT_RBF_THRESHOLD).unwrap()
        }),
        ("rbf_cka_debiased", &|a, b| {
            host::rbf_cka_debiased(a, b, host::DEFAULT_RBF_THRESHOLD).unwrap()
        }),
        ("rsa_correlation_spearman", &|a, b| {
            host::rsa_similarity(a, b, RdmDistance::Correlation, RdmComparison::Spearman).unwrap()
        }),
        ("rsa_euclidean_pearson", &|a, b| {
            host::rsa_similarity(a, b, RdmDistance::Euclidean, RdmComparison::Pearson).unwrap()
        }),
        ("procrustes", &|a, b| {
            host::procrustes_distance(a, b).unwrap()
        }),
        ("procrustes_angular", &|a, b| {
            host::angular_procrustes_distance(a, b).unwrap()
        }),
        ("cca", &|a, b| {
            host::cca_similarity(&first_columns(a, 128), &first_columns(b, 128)).unwrap()
        }),
        ("svcca", &|a, b| {
            host::svcca_similarity(a, b, host::DEFAULT_SVCCA_VARIANCE).unwrap()
        }),
        ("pwcca", &|a, b| {
            host::pwcca_similarity(&first_columns(a, 128), &first_columns(b, 128)).unwrap()
        }),
        ("ridge", &|a, b| {
            host::ridge_similarity(a, b, host::DEFAULT_RIDGE_LAMBDA).unwrap()
        }),
        ("mutual_knn", &|a, b| {
            host::mutual_knn_similarity(a, b, host::DEFAULT_KNN_K).unwrap()
        }),
    ];
    for (name, metric) in host_metrics {
        group.bench_function(format!("host/{name}"), |bench| {
            bench.iter(|| black_box(metric(&a, &b_)))
        });
    }
    group.finish();
}

/// CCA and PWCCA need more examples than features (otherwise every
/// canonical correlation is 1): they run on the first 128 features.
fn first_columns(m: &Matrix, cols: usize) -> Matrix {
    Matrix::new(
        m.rows,
        cols,
        (0..m.rows)
            .flat_map(|i| m.row(i)[..cols].to_vec())
            .collect(),
    )
}

criterion_group!(benches, linear_cka_sizes, every_metric);
untrainable_kernels::huge_page_allocator!();

criterion_main!(benches);
