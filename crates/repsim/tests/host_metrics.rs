//! Properties of the `f64` metrics in `untrainable_repsim::host`: a declarative
//! table of invariances checked both ways, symmetry, ranges, the triangle
//! inequality, debiased against biased CKA, minibatch accumulation, known
//! values from an independent numpy script, and degenerate input.

mod common;

use common::{gaussian, matmul, orthogonal};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use untrainable_repsim::host::{
    self, Matrix, MinibatchCka, RdmComparison, RdmDistance, RepsimError,
};

// ------------------------------------------------------------------ inputs

fn map(m: &Matrix, f: impl Fn(usize, usize, f64) -> f64) -> Matrix {
    Matrix::from_fn(m.rows, m.cols, |i, j| f(i, j, m.get(i, j)))
}

fn permute_rows(m: &Matrix, perm: &[usize]) -> Matrix {
    Matrix::from_fn(m.rows, m.cols, |i, j| m.get(perm[i], j))
}

fn random_permutation(rng: &mut StdRng, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        p.swap(i, j);
    }
    p
}

/// `n × dx` with a decaying spectrum (column `j` scaled by 0.6ʲ, so SVCCA's
/// 99% cut drops the last columns), and `Y = X W + noise`, `n × dy`: related
/// but not equivalent.
fn related_pair(rng: &mut StdRng, n: usize, dx: usize, dy: usize) -> (Matrix, Matrix) {
    let x = map(&gaussian(rng, n, dx), |_, j, v| v * 0.6f64.powi(j as i32));
    let w = gaussian(rng, dx, dy);
    let noise = gaussian(rng, n, dy);
    let y = map(&matmul(&x, &w), |i, j, v| v + 0.5 * noise.get(i, j));
    (x, y)
}

// ------------------------------------------------------------------ the table

type MetricFn = fn(&Matrix, &Matrix) -> host::Result<f64>;

const Y: bool = true;
const N: bool = false;

/// Columns of `invariant`: orthogonal rotation of the features, isotropic
/// scaling, translation, invertible linear map, permutation of the examples
/// (applied to both arguments). The others are applied to the first argument.
struct Metric {
    name: &'static str,
    f: MetricFn,
    invariant: [bool; 5],
    symmetric: bool,
    range: (f64, f64),
    /// The value of `f(X, X)`, where it is fixed.
    identity: Option<f64>,
}

const TRANSFORMS: [&str; 5] = [
    "orthogonal",
    "isotropic scaling",
    "translation",
    "invertible linear",
    "permutation",
];

fn rbf(x: &Matrix, y: &Matrix) -> host::Result<f64> {
    host::rbf_cka(x, y, host::DEFAULT_RBF_THRESHOLD)
}
fn rbf_debiased(x: &Matrix, y: &Matrix) -> host::Result<f64> {
    host::rbf_cka_debiased(x, y, host::DEFAULT_RBF_THRESHOLD)
}
fn rsa_corr_pearson(x: &Matrix, y: &Matrix) -> host::Result<f64> {
    host::rsa_similarity(x, y, RdmDistance::Correlation, RdmComparison::Pearson)
}
fn rsa_corr_spearman(x: &Matrix, y: &Matrix) -> host::Result<f64> {
    host::rsa_similarity(x, y, RdmDistance::Correlation, RdmComparison::Spearman)
}
fn rsa_eucl_pearson(x: &Matrix, y: &Matrix) -> host::Result<f64> {
    host::rsa_similarity(x, y, RdmDistance::Euclidean, RdmComparison::Pearson)
}
fn rsa_eucl_spearman(x: &Matrix, y: &Matrix) -> host::Result<f64> {
    host::rsa_similarity(x, y, RdmDistance::Euclidean, RdmComparison::Spearman)
}
fn svcca(x: &Matrix, y: &Matrix) -> host::Result<f64> {
    host::svcca_similarity(x, y, host::DEFAULT_SVCCA_VARIANCE)
}
fn ridge(x: &Matrix, y: &Matrix) -> host::Result<f64> {
    host::ridge_similarity(x, y, host::DEFAULT_RIDGE_LAMBDA)
}
fn knn(x: &Matrix, y: &Matrix) -> host::Result<f64> {
    host::mutual_knn_similarity(x, y, host::DEFAULT_KNN_K)
}

#[rustfmt::skip]
fn metrics() -> Vec<Metric> {
    use std::f64::consts::{FRAC_PI_2, SQRT_2};
    let m = |name, f, invariant, symmetric, range, identity| Metric { name, f, invariant, symmetric, range, identity };
    vec![
        //  name                           function                            orth scal tran lin  perm   sym  range              f(X, X)
        m("linear_cka_biased",           host::linear_cka_biased as MetricFn,  [Y,   Y,   Y,   N,   Y],    Y,   (0.0, 1.0),        Some(1.0)),
        m("linear_cka_debiased",         host::linear_cka_debiased,            [Y,   Y,   Y,   N,   Y],    Y,   (-1.0, 1.0),       Some(1.0)),
        m("rbf_cka",                     rbf,                                  [Y,   Y,   Y,   N,   Y],    Y,   (0.0, 1.0),        Some(1.0)),
        m("rbf_cka_debiased",            rbf_debiased,                         [Y,   Y,   Y,   N,   Y],    Y,   (-1.0, 1.0),       Some(1.0)),
        m("rsa correlation/pearson",     rsa_corr_pearson,                     [N,   Y,   N,   N,   Y],    Y,   (-1.0, 1.0),       Some(1.0)),
        m("rsa correlation/spearman",    rsa_corr_spearman,                    [N,   Y,   N,   N,   Y],    Y,   (-1.0, 1.0),       Some(1.0)),
        m("rsa euclidean/pearson",       rsa_eucl_pearson,                     [Y,   Y,   Y,   N,   Y],    Y,   (-1.0, 1.0),       Some(1.0)),
        m("rsa euclidean/spearman",      rsa_eucl_spearman,                    [Y,   Y,   Y,   N,   Y],    Y,   (-1.0, 1.0),       Some(1.0)),
        m("procrustes_distance",         host::procrustes_distance,            [Y,   Y,   Y,   N,   Y],    Y,   (0.0, SQRT_2),     Some(0.0)),
        m("angular_procrustes_distance", host::angular_procrustes_distance,    [Y,   Y,   Y,   N,   Y],    Y,   (0.0, FRAC_PI_2),  Some(0.0)),
        m("cca_similarity",              host::cca_similarity,                 [Y,   Y,   Y,   Y,   Y],    Y,   (0.0, 1.0),        Some(1.0)),
        m("svcca_similarity",            svcca,                                [Y,   Y,   Y,   N,   Y],    Y,   (0.0, 1.0),        Some(1.0)),
        m("pwcca_similarity",            host::pwcca_similarity,               [N,   Y,   Y,   N,   Y],    N,   (0.0, 1.0),        Some(1.0)),
        m("ridge_similarity",            ridge,                                [Y,   Y,   Y,   N,   Y],    N,   (0.0, 1.0),        None),
        m("mutual_knn_similarity",       knn,                                  [Y,   Y,   N,   N,   Y],    Y,   (0.0, 1.0),        Some(1.0)),
    ]
}

/// Within this, a value "stays"; beyond `MARGIN`, it "changes".
const TOLERANCE: f64 = 1e-9;
const MARGIN: f64 = 1e-3;

#[test]
fn each_metric_is_invariant_exactly_where_the_table_says() {
    let mut rng = StdRng::seed_from_u64(11);
    let (n, dx, dy) = (40, 8, 6);
    let (x, y) = related_pair(&mut rng, n, dx, dy);
    let q = orthogonal(&mut rng, dx);
    let offset = map(&gaussian(&mut rng, 1, dx), |_, _, v| 3.0 * v);
    // Singular values e^{-2} … e^{2}: invertible, strongly anisotropic.
    let spectrum = Matrix::from_fn(dx, dx, |i, j| {
        if i == j {
            (-2.0 + 4.0 * i as f64 / (dx - 1) as f64).exp()
        } else {
            0.0
        }
    });
    let linear = matmul(
        &matmul(&orthogonal(&mut rng, dx), &spectrum),
        &orthogonal(&mut rng, dx),
    );
    let perm = random_permutation(&mut rng, n);
    let transformed: [(Matrix, Matrix); 5] = [
        (matmul(&x, &q), y.clone()),
        (map(&x, |_, _, v| 2.5 * v), y.clone()),
        (map(&x, |_, j, v| v + offset.get(0, j)), y.clone()),
        (matmul(&x, &linear), y.clone()),
        (permute_rows(&x, &perm), permute_rows(&y, &perm)),
    ];
    let mut failures = Vec::new();
    for metric in metrics() {
        let base = (metric.f)(&x, &y).unwrap();
        for (t, (tx, ty)) in transformed.iter().enumerate() {
            let moved = (metric.f)(tx, ty).unwrap();
            let change = (moved - base).abs();
            let expected_invariant = metric.invariant[t];
            if expected_invariant && change > TOLERANCE {
                failures.push(format!(
                    "{} should be invariant to {} but moved by {change:.3e}",
                    metric.name, TRANSFORMS[t]
                ));
            }
            if !expected_invariant && change <= MARGIN {
                failures.push(format!(
                    "{} should change under {} but moved only {change:.3e}",
                    metric.name, TRANSFORMS[t]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn symmetric_metrics_are_symmetric_and_the_others_are_not() {
    let mut rng = StdRng::seed_from_u64(12);
    let (x, y) = related_pair(&mut rng, 30, 7, 5);
    let mut failures = Vec::new();
    for metric in metrics() {
        let (xy, yx) = ((metric.f)(&x, &y).unwrap(), (metric.f)(&y, &x).unwrap());
        let gap = (xy - yx).abs();
        if metric.symmetric && gap > 1e-10 {
            failures.push(format!(
                "{}: f(X, Y) = {xy} but f(Y, X) = {yx}",
                metric.name
            ));
        }
        if !metric.symmetric && gap <= MARGIN {
            failures.push(format!(
                "{}: documented as asymmetric but f(X, Y) ≈ f(Y, X) = {xy}",
                metric.name
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn values_lie_in_their_documented_ranges_and_self_comparison_is_exact() {
    let mut rng = StdRng::seed_from_u64(13);
    let mut failures = Vec::new();
    let mut seen_negative_debiased = false;
    for trial in 0..8 {
        let (n, dx, dy) = (14 + 3 * trial, 3 + trial % 4, 3 + trial % 3);
        let (x, related) = related_pair(&mut rng, n, dx, dy);
        let independent = gaussian(&mut rng, n, dy);
        for metric in metrics() {
            for other in [&related, &independent] {
                let v = (metric.f)(&x, other).unwrap();
                let (lo, hi) = metric.range;
                if !(lo..=hi).contains(&v) {
                    failures.push(format!("{}: {v} outside [{lo}, {hi}]", metric.name));
                }
                if metric.name == "linear_cka_debiased" && v < 0.0 {
                    seen_negative_debiased = true;
                }
            }
            if let Some(expected) = metric.identity {
                let v = (metric.f)(&x, &x).unwrap();
                if (v - expected).abs() > 1e-7 {
                    failures.push(format!(
                        "{}: f(X, X) = {v}, expected {expected}",
                        metric.name
                    ));
                }
            }
        }
        // Ridge shrinks: R²(X → X) is below 1 but close to it.
        let self_ridge = ridge(&x, &x).unwrap();
        assert!(self_ridge < 1.0 && self_ridge > 0.8, "{self_ridge}");
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(
        seen_negative_debiased,
        "the debiased range must be exercised below 0"
    );
}

#[test]
fn procrustes_distances_obey_the_triangle_inequality() {
    let mut rng = StdRng::seed_from_u64(14);
    let distances: [(&str, MetricFn); 2] = [
        ("procrustes", host::procrustes_distance),
        ("angular", host::angular_procrustes_distance),
    ];
    let mut squared_violations = 0;
    for trial in 0..40 {
        let n = 20;
        let a = gaussian(&mut rng, n, 3 + trial % 5);
        let c = gaussian(&mut rng, n, 3 + trial % 5);
        // Half the triples put B between A and C, where the inequality is tight.
        let b = if trial % 2 == 0 {
            map(&a, |i, j, v| 0.5 * (v + c.get(i, j)))
        } else {
            gaussian(&mut rng, n, 2 + trial % 7)
        };
        for (name, d) in distances {
            let (ab, bc, ac) = (d(&a, &b).unwrap(), d(&b, &c).unwrap(), d(&a, &c).unwrap());
            for (long, s1, s2) in [(ac, ab, bc), (ab, ac, bc), (bc, ab, ac)] {
                assert!(long <= s1 + s2 + 1e-12, "{name}: {long} > {s1} + {s2}");
            }
            if name == "procrustes" && ac * ac > ab * ab + bc * bc {
                squared_violations += 1;
            }
        }
    }
    // The squared distance is not a metric: the same triples must catch it.
    assert!(
        squared_violations > 0,
        "the triples are too loose to detect a violation"
    );
}

#[test]
fn angular_and_euclidean_procrustes_are_one_function_of_the_other() {
    let mut rng = StdRng::seed_from_u64(15);
    let (x, y) = related_pair(&mut rng, 25, 6, 9);
    let d = host::procrustes_distance(&x, &y).unwrap();
    let theta = host::angular_procrustes_distance(&x, &y).unwrap();
    assert!((d * d - (2.0 - 2.0 * theta.cos())).abs() < 1e-12);
}

// ------------------------------------------------------------------ CKA estimators

#[test]
fn debiased_cka_approaches_biased_cka_as_n_grows() {
    let gap = |n: usize| -> f64 {
        (0..5)
            .map(|seed| {
                let mut rng = StdRng::seed_from_u64(100 + seed);
                let x = gaussian(&mut rng, n, 5);
                let w = gaussian(&mut rng, 5, 4);
                let noise = gaussian(&mut rng, n, 4);
                let y = map(&matmul(&x, &w), |i, j, v| v + 2.0 * noise.get(i, j));
                (host::linear_cka_biased(&x, &y).unwrap()
                    - host::linear_cka_debiased(&x, &y).unwrap())
                .abs()
            })
            .sum::<f64>()
            / 5.0
    };
    let (g20, g200, g2000) = (gap(20), gap(200), gap(2000));
    assert!(
        g20 > g200 && g200 > g2000,
        "gaps {g20} {g200} {g2000} must shrink"
    );
    assert!(g2000 < 0.01, "gap at n = 2000: {g2000}");
    assert!(
        g20 > 0.02,
        "the biased estimator must be visibly biased at n = 20: {g20}"
    );
}

#[test]
fn debiased_cka_of_independent_representations_is_near_zero_where_biased_is_not() {
    let trials = 60;
    let (mut biased, mut debiased) = (Vec::new(), Vec::new());
    for seed in 0..trials {
        let mut rng = StdRng::seed_from_u64(200 + seed);
        let x = gaussian(&mut rng, 16, 6);
        let y = gaussian(&mut rng, 16, 5);
        biased.push(host::linear_cka_biased(&x, &y).unwrap());
        debiased.push(host::linear_cka_debiased(&x, &y).unwrap());
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mb, md) = (mean(&biased), mean(&debiased));
    let sd = (debiased.iter().map(|v| (v - md).powi(2)).sum::<f64>() / (trials - 1) as f64).sqrt();
    let standard_error = sd / (trials as f64).sqrt();
    assert!(
        md.abs() < 4.0 * standard_error,
        "debiased mean {md} ± {standard_error}"
    );
    assert!(mb > 0.2, "biased CKA of independent inputs at n = 16: {mb}");
}

// ------------------------------------------------------------------ minibatch CKA

fn layers(rng: &mut StdRng, n: usize) -> (Vec<Matrix>, Vec<Matrix>) {
    let (x0, y0) = related_pair(rng, n, 6, 5);
    let x1 = map(&x0, |_, _, v| v.tanh());
    let y1 = map(&y0, |_, _, v| v * v);
    let y2 = gaussian(rng, n, 3);
    (vec![x0, x1], vec![y0, y1, y2])
}

#[test]
fn minibatch_cka_over_one_batch_is_debiased_cka_of_that_batch() {
    let mut rng = StdRng::seed_from_u64(21);
    let (xs, ys) = layers(&mut rng, 24);
    let mut acc = MinibatchCka::new(2, 3);
    acc.update(&xs, &ys).unwrap();
    let cka = acc.cka().unwrap();
    assert_eq!((cka.rows, cka.cols), (2, 3));
    for (i, x) in xs.iter().enumerate() {
        for (j, y) in ys.iter().enumerate() {
            let expected = host::linear_cka_debiased(x, y).unwrap();
            assert!(
                (cka.get(i, j) - expected).abs() < 1e-12,
                "({i}, {j}): {} vs {expected}",
                cka.get(i, j)
            );
        }
    }
}

#[test]
fn minibatch_accumulation_over_several_batches_averages_the_per_batch_hsic() {
    let mut rng = StdRng::seed_from_u64(22);
    let batches: Vec<_> = [10, 15, 20].iter().map(|&n| layers(&mut rng, n)).collect();
    let mut all = MinibatchCka::new(2, 3);
    let mut singles = Vec::new();
    for (xs, ys) in &batches {
        all.update(xs, ys).unwrap();
        let mut one = MinibatchCka::new(2, 3);
        one.update(xs, ys).unwrap();
        singles.push(one);
    }
    assert_eq!(all.batches(), 3);
    let mean_of = |f: &dyn Fn(&MinibatchCka) -> Vec<f64>| -> Vec<f64> {
        let per: Vec<Vec<f64>> = singles.iter().map(f).collect();
        (0..per[0].len())
            .map(|k| per.iter().map(|v| v[k]).sum::<f64>() / per.len() as f64)
            .collect()
    };
    let xy = mean_of(&|a| a.mean_hsic_xy().unwrap().data);
    let xx = mean_of(&|a| a.mean_hsic_xx().unwrap());
    let yy = mean_of(&|a| a.mean_hsic_yy().unwrap());
    let close = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .all(|(p, q)| (p - q).abs() <= 1e-12 * q.abs().max(1.0))
    };
    assert!(close(&all.mean_hsic_xy().unwrap().data, &xy));
    assert!(close(&all.mean_hsic_xx().unwrap(), &xx));
    assert!(close(&all.mean_hsic_yy().unwrap(), &yy));
    let cka = all.cka().unwrap();
    let mut ratio_differs_from_mean_of_ratios = false;
    for i in 0..2 {
        for j in 0..3 {
            let expected = xy[i * 3 + j] / (xx[i] * yy[j]).sqrt();
            assert!((cka.get(i, j) - expected).abs() < 1e-12);
            let mean_cka = singles
                .iter()
                .map(|s| s.cka().unwrap().get(i, j))
                .sum::<f64>()
                / 3.0;
            ratio_differs_from_mean_of_ratios |= (mean_cka - expected).abs() > 1e-6;
        }
    }
    // Nguyen et al.'s estimator is a ratio of means, which is pinned here.
    assert!(ratio_differs_from_mean_of_ratios);
    // Repeating one batch leaves every value unchanged: the mean of equal values.
    let mut repeated = MinibatchCka::new(2, 3);
    for _ in 0..4 {
        repeated.update(&batches[1].0, &batches[1].1).unwrap();
    }
    let (r, s) = (repeated.cka().unwrap(), singles[1].cka().unwrap());
    assert!(
        r.data
            .iter()
            .zip(&s.data)
            .all(|(p, q)| (p - q).abs() < 1e-12)
    );
}

#[test]
fn minibatch_errors_leave_the_accumulator_unchanged() {
    let mut rng = StdRng::seed_from_u64(23);
    let (xs, ys) = layers(&mut rng, 12);
    let mut acc = MinibatchCka::new(2, 3);
    assert_eq!(acc.cka(), Err(RepsimError::NoBatches));
    assert_eq!(acc.mean_hsic_xy(), Err(RepsimError::NoBatches));
    acc.update(&xs, &ys).unwrap();
    let before = acc.cka().unwrap();
    assert_eq!(
        acc.update(&xs[..1], &ys),
        Err(RepsimError::LayerCount {
            side: "X",
            expected: 2,
            got: 1
        })
    );
    let short: Vec<Matrix> = xs
        .iter()
        .map(|m| Matrix::from_fn(3, m.cols, |i, j| m.get(i, j)))
        .collect();
    let short_y: Vec<Matrix> = ys
        .iter()
        .map(|m| Matrix::from_fn(3, m.cols, |i, j| m.get(i, j)))
        .collect();
    assert!(matches!(
        acc.update(&short, &short_y),
        Err(RepsimError::TooFewExamples { n: 3, min: 4, .. })
    ));
    let mut bad = ys.clone();
    bad[2].data[5] = f64::NAN;
    let err = acc.update(&xs, &bad).unwrap_err();
    match &err {
        RepsimError::Layer {
            side: "Y",
            layer: 2,
            source,
        } => {
            assert!(
                matches!(**source, RepsimError::NonFinite { row: 1, col: 2, .. }),
                "{source:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("layer 2 of side Y"), "{err}");
    let mut uneven = ys.clone();
    uneven[1] = Matrix::from_fn(11, uneven[1].cols, |i, j| ys[1].get(i, j));
    assert!(matches!(
        acc.update(&xs, &uneven),
        Err(RepsimError::Layer {
            side: "Y",
            layer: 1,
            ..
        })
    ));
    assert_eq!(acc.batches(), 1);
    assert_eq!(acc.cka().unwrap(), before);
    // A layer constant on every batch has no CKA.
    let mut constant = MinibatchCka::new(1, 1);
    constant
        .update(
            &[Matrix::new(5, 2, vec![1.0; 10])],
            &[ys[0].clone().row_prefix(5)],
        )
        .unwrap();
    assert!(matches!(
        constant.cka(),
        Err(RepsimError::Layer {
            side: "X",
            layer: 0,
            ..
        })
    ));
}

trait RowPrefix {
    fn row_prefix(self, rows: usize) -> Matrix;
}

impl RowPrefix for Matrix {
    fn row_prefix(self, rows: usize) -> Matrix {
        Matrix::from_fn(rows, self.cols, |i, j| self.get(i, j))
    }
}

// ------------------------------------------------------------------ known values

#[derive(serde::Deserialize)]
struct Fixture {
    rbf_threshold: f64,
    ridge_lambda: f64,
    svcca_variance: f64,
    knn_k: usize,
    case: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    name: String,
    n: usize,
    dx: usize,
    dy: usize,
    x: Vec<f64>,
    y: Vec<f64>,
    linear_cka: f64,
    linear_cka_debiased: f64,
    rbf_cka: f64,
    rbf_cka_debiased: f64,
    rsa_correlation_pearson: Option<f64>,
    rsa_correlation_spearman: Option<f64>,
    rsa_euclidean_pearson: f64,
    rsa_euclidean_spearman: f64,
    procrustes_distance: f64,
    angular_procrustes_distance: f64,
    cca_similarity: Option<f64>,
    pwcca_similarity: Option<f64>,
    pwcca_similarity_reversed: Option<f64>,
    svcca_similarity: f64,
    ridge_similarity: f64,
    ridge_similarity_reversed: f64,
    mutual_knn_similarity: Option<f64>,
    minibatch_cka: Option<Vec<f64>>,
}

/// Values from `scripts/make-repsim-fixtures.py`, which implements the
/// published formulas with numpy by other routes (dense centring matrices,
/// Song et al.'s closed form, covariance whitening, pairwise rank counting).
#[test]
fn metrics_match_the_independent_numpy_fixture() {
    let fixture: Fixture = toml::from_str(include_str!("fixtures/repsim.toml")).unwrap();
    assert_eq!(fixture.rbf_threshold, host::DEFAULT_RBF_THRESHOLD);
    assert_eq!(fixture.ridge_lambda, host::DEFAULT_RIDGE_LAMBDA);
    assert_eq!(fixture.svcca_variance, host::DEFAULT_SVCCA_VARIANCE);
    assert_eq!(fixture.case.len(), 4);
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in &fixture.case {
        let x = Matrix::new(case.n, case.dx, case.x.clone());
        let y = Matrix::new(case.n, case.dy, case.y.clone());
        let mut check = |metric: &str, got: host::Result<f64>, expected: f64| {
            compared += 1;
            match got {
                Ok(v) if (v - expected).abs() <= 1e-9 * expected.abs().max(1e-3) => {}
                other => failures.push(format!(
                    "{} / {metric}: {other:?}, expected {expected}",
                    case.name
                )),
            }
        };
        check(
            "linear_cka",
            host::linear_cka_biased(&x, &y),
            case.linear_cka,
        );
        check(
            "linear_cka_debiased",
            host::linear_cka_debiased(&x, &y),
            case.linear_cka_debiased,
        );
        check("rbf_cka", rbf(&x, &y), case.rbf_cka);
        check(
            "rbf_cka_debiased",
            rbf_debiased(&x, &y),
            case.rbf_cka_debiased,
        );
        if let Some(v) = case.rsa_correlation_pearson {
            check("rsa_correlation_pearson", rsa_corr_pearson(&x, &y), v);
        }
        if let Some(v) = case.rsa_correlation_spearman {
            check("rsa_correlation_spearman", rsa_corr_spearman(&x, &y), v);
        }
        check(
            "rsa_euclidean_pearson",
            rsa_eucl_pearson(&x, &y),
            case.rsa_euclidean_pearson,
        );
        check(
            "rsa_euclidean_spearman",
            rsa_eucl_spearman(&x, &y),
            case.rsa_euclidean_spearman,
        );
        check(
            "procrustes_distance",
            host::procrustes_distance(&x, &y),
            case.procrustes_distance,
        );
        check(
            "angular_procrustes_distance",
            host::angular_procrustes_distance(&x, &y),
            case.angular_procrustes_distance,
        );
        match (
            case.cca_similarity,
            case.pwcca_similarity,
            case.pwcca_similarity_reversed,
        ) {
            (Some(cca), Some(pw), Some(pw_rev)) => {
                check("cca_similarity", host::cca_similarity(&x, &y), cca);
                check("pwcca_similarity", host::pwcca_similarity(&x, &y), pw);
                check(
                    "pwcca_similarity_reversed",
                    host::pwcca_similarity(&y, &x),
                    pw_rev,
                );
            }
            _ => {
                // The fixture leaves CCA out where a side has d ≥ n.
                assert!(matches!(
                    host::cca_similarity(&x, &y),
                    Err(RepsimError::RankDeficient { .. })
                ));
                assert!(matches!(
                    host::pwcca_similarity(&x, &y),
                    Err(RepsimError::RankDeficient { .. })
                ));
            }
        }
        check("svcca_similarity", svcca(&x, &y), case.svcca_similarity);
        check("ridge_similarity", ridge(&x, &y), case.ridge_similarity);
        check(
            "ridge_similarity_reversed",
            ridge(&y, &x),
            case.ridge_similarity_reversed,
        );
        if let Some(v) = case.mutual_knn_similarity {
            check(
                "mutual_knn_similarity",
                host::mutual_knn_similarity(&x, &y, fixture.knn_k),
                v,
            );
        }
        if let Some(expected) = &case.minibatch_cka {
            let half = case.n / 2;
            let rows = |m: &Matrix, from: usize, to: usize| {
                Matrix::from_fn(to - from, m.cols, |i, j| m.get(from + i, j))
            };
            let mut acc = MinibatchCka::new(2, 2);
            for (from, to) in [(0, half), (half, case.n)] {
                let xb = rows(&x, from, to);
                let yb = rows(&y, from, to);
                let xs = [xb.clone(), map(&xb, |_, _, v| v.tanh())];
                let ys = [yb.clone(), map(&yb, |_, _, v| v * v)];
                acc.update(&xs, &ys).unwrap();
            }
            let got = acc.cka().unwrap();
            for (k, e) in expected.iter().enumerate() {
                check("minibatch_cka", Ok(got.data[k]), *e);
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(compared >= 70, "only {compared} values compared");
}

// ------------------------------------------------------------------ degenerate input

#[test]
fn non_finite_input_is_an_error_naming_the_matrix_and_the_first_bad_entry() {
    let mut rng = StdRng::seed_from_u64(31);
    let (x, y) = related_pair(&mut rng, 20, 5, 6);
    let mut y_nan = y.clone();
    y_nan.data[2 * 6 + 3] = f64::NAN;
    y_nan.data[4 * 6 + 1] = f64::NAN;
    let mut x_inf = x.clone();
    x_inf.data[5] = f64::INFINITY;
    let mut x_neg_inf = x.clone();
    x_neg_inf.data[7 * 5 + 4] = f64::NEG_INFINITY;
    for metric in metrics() {
        match (metric.f)(&x, &y_nan) {
            Err(RepsimError::NonFinite {
                matrix: "Y",
                row: 2,
                col: 3,
                value,
            }) if value.is_nan() => {}
            other => panic!("{}: {other:?}", metric.name),
        }
        assert_eq!(
            (metric.f)(&x_inf, &y),
            Err(RepsimError::NonFinite {
                matrix: "X",
                row: 1,
                col: 0,
                value: f64::INFINITY
            }),
            "{}",
            metric.name
        );
        assert!(matches!(
            (metric.f)(&x_neg_inf, &y),
            Err(RepsimError::NonFinite {
                matrix: "X",
                row: 7,
                col: 4,
                ..
            })
        ));
    }
    let message = host::cca_similarity(&x, &y_nan).unwrap_err().to_string();
    assert!(
        message.contains("Y") && message.contains("row 2") && message.contains("col 3"),
        "{message}"
    );
}

#[test]
fn mismatched_and_empty_inputs_are_errors() {
    let mut rng = StdRng::seed_from_u64(32);
    let x = gaussian(&mut rng, 20, 4);
    let y = gaussian(&mut rng, 19, 4);
    let empty = Matrix::new(20, 0, vec![]);
    let mut broken = x.clone();
    broken.data.pop();
    for metric in metrics() {
        assert_eq!(
            (metric.f)(&x, &y),
            Err(RepsimError::RowsDiffer {
                x_rows: 20,
                y_rows: 19
            }),
            "{}",
            metric.name
        );
        assert_eq!(
            (metric.f)(&x, &empty),
            Err(RepsimError::Empty {
                matrix: "Y",
                rows: 20,
                cols: 0
            }),
            "{}",
            metric.name
        );
        assert!(matches!(
            (metric.f)(&broken, &x),
            Err(RepsimError::Shape {
                matrix: "X",
                len: 79,
                ..
            })
        ));
    }
    assert!(host::pairwise_distances(&empty, RdmDistance::Euclidean).is_err());
}

#[test]
fn constant_representations_are_errors_where_the_metric_is_undefined() {
    let mut rng = StdRng::seed_from_u64(33);
    let y = gaussian(&mut rng, 12, 4);
    let constant = Matrix::new(12, 3, vec![0.1; 36]);
    let is_constant_x = |r: host::Result<f64>| {
        matches!(
            r,
            Err(RepsimError::ConstantRepresentation { matrix: "X", .. })
        )
    };
    assert!(is_constant_x(host::linear_cka_biased(&constant, &y)));
    assert!(is_constant_x(host::linear_cka_debiased(&constant, &y)));
    assert!(is_constant_x(rbf(&constant, &y)));
    assert!(is_constant_x(rbf_debiased(&constant, &y)));
    assert!(is_constant_x(host::procrustes_distance(&constant, &y)));
    assert!(is_constant_x(host::angular_procrustes_distance(
        &constant, &y
    )));
    assert!(is_constant_x(svcca(&constant, &y)));
    assert!(is_constant_x(ridge(&constant, &y)));
    assert!(matches!(
        ridge(&y, &constant),
        Err(RepsimError::ConstantRepresentation { matrix: "Y", .. })
    ));
    assert!(matches!(
        host::linear_cka_biased(&y, &constant),
        Err(RepsimError::ConstantRepresentation { matrix: "Y", .. })
    ));
    assert!(matches!(
        host::cca_similarity(&constant, &y),
        Err(RepsimError::ConstantFeature {
            matrix: "X",
            col: 0,
            ..
        })
    ));
    assert!(matches!(
        rsa_corr_pearson(&constant, &y),
        Err(RepsimError::ConstantExample {
            matrix: "X",
            row: 0,
            ..
        })
    ));
    assert_eq!(
        rsa_eucl_spearman(&constant, &y),
        Err(RepsimError::ConstantRdm { matrix: "X" })
    );
    // Cosine neighbours of equal vectors all tie: defined, broken by index.
    let v = host::mutual_knn_similarity(&constant, &y, 3).unwrap();
    assert!((0.0..=1.0).contains(&v));
    // The legacy form keeps its documented 0.
    assert_eq!(host::linear_cka(&constant, &y), 0.0);
    let message = host::linear_cka_biased(&constant, &y)
        .unwrap_err()
        .to_string();
    assert!(message.contains("X is constant"), "{message}");
}

#[test]
fn one_constant_feature_breaks_cca_and_pwcca_only() {
    let mut rng = StdRng::seed_from_u64(34);
    let (x, y) = related_pair(&mut rng, 30, 5, 4);
    let flat = map(&x, |_, j, v| if j == 2 { 7.0 } else { v });
    for metric in metrics() {
        let r = (metric.f)(&flat, &y);
        if metric.name == "cca_similarity" || metric.name == "pwcca_similarity" {
            assert!(
                matches!(
                    r,
                    Err(RepsimError::ConstantFeature {
                        matrix: "X",
                        col: 2,
                        ..
                    })
                ),
                "{}: {r:?}",
                metric.name
            );
        } else {
            let v = r.unwrap_or_else(|e| panic!("{}: {e}", metric.name));
            assert!(v.is_finite());
        }
    }
    // A duplicated feature is rank deficiency, not a constant feature.
    let duplicated = map(&y, |i, j, v| if j == 3 { y.get(i, 0) } else { v });
    assert!(matches!(
        host::cca_similarity(&x, &duplicated),
        Err(RepsimError::RankDeficient {
            matrix: "Y",
            rank: 3,
            cols: 4,
            ..
        })
    ));
}

#[test]
fn too_few_examples_are_errors_never_nan() {
    let mut rng = StdRng::seed_from_u64(35);
    let x = gaussian(&mut rng, 3, 4);
    let y = gaussian(&mut rng, 3, 2);
    let min4 =
        |r: host::Result<f64>| matches!(r, Err(RepsimError::TooFewExamples { n: 3, min: 4, .. }));
    assert!(min4(host::linear_cka_debiased(&x, &y)));
    assert!(min4(rbf_debiased(&x, &y)));
    let message = host::linear_cka_debiased(&x, &y).unwrap_err().to_string();
    assert!(message.contains("at least 4 examples, got 3"), "{message}");
    // The biased estimator and the others are defined from 2 or 3 examples.
    assert!(host::linear_cka_biased(&x, &y).unwrap().is_finite());
    let one = |m: &Matrix| Matrix::from_fn(1, m.cols, |_, j| m.get(0, j));
    assert!(matches!(
        host::linear_cka_biased(&one(&x), &one(&y)),
        Err(RepsimError::TooFewExamples { n: 1, min: 2, .. })
    ));
    let two = |m: &Matrix| Matrix::from_fn(2, m.cols, |i, j| m.get(i, j));
    assert!(matches!(
        rsa_eucl_pearson(&two(&x), &two(&y)),
        Err(RepsimError::TooFewExamples { n: 2, min: 3, .. })
    ));
}

#[test]
fn parameters_outside_their_domain_are_errors() {
    let mut rng = StdRng::seed_from_u64(36);
    let (x, y) = related_pair(&mut rng, 10, 3, 3);
    let invalid = |r: host::Result<f64>, param: &str| matches!(r, Err(RepsimError::InvalidParameter { name, .. }) if name == param);
    for k in [0, 10, 11] {
        assert!(
            invalid(host::mutual_knn_similarity(&x, &y, k), "k"),
            "k = {k}"
        );
    }
    assert!(host::mutual_knn_similarity(&x, &y, 9).is_ok());
    for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(invalid(host::rbf_cka(&x, &y, t), "threshold"));
        assert!(invalid(host::rbf_cka_debiased(&x, &y, t), "threshold"));
    }
    for v in [0.0, 1.5, f64::NAN] {
        assert!(invalid(host::svcca_similarity(&x, &y, v), "variance_kept"));
    }
    assert!(host::svcca_similarity(&x, &y, 1.0).is_ok());
    for l in [0.0, -0.1, f64::NAN] {
        assert!(invalid(host::ridge_similarity(&x, &y, l), "lambda"));
    }
}

#[test]
fn degenerate_examples_and_bandwidths_are_errors() {
    let mut rng = StdRng::seed_from_u64(37);
    let (mut x, y) = related_pair(&mut rng, 12, 4, 3);
    for j in 0..4 {
        x.data[5 * 4 + j] = 0.0;
    }
    assert_eq!(
        knn(&x, &y),
        Err(RepsimError::ZeroExample {
            matrix: "X",
            row: 5,
            metric: "mutual k-NN"
        })
    );
    // Most examples coincide: the median distance is 0.
    let clumped = Matrix::from_fn(12, 2, |i, j| if i < 9 { 1.0 } else { (i * (j + 1)) as f64 });
    assert_eq!(
        rbf(&clumped, &y),
        Err(RepsimError::ZeroBandwidth { matrix: "X" })
    );
    // A row with one value in every feature has no correlation distance.
    let flat_row = map(&y, |i, _, v| if i == 4 { 2.0 } else { v });
    assert!(matches!(
        host::pairwise_distances(&flat_row, RdmDistance::Correlation),
        Err(RepsimError::ConstantExample {
            matrix: "X",
            row: 4,
            ..
        })
    ));
}

#[test]
fn extreme_scales_give_finite_values_equal_to_the_unscaled_ones() {
    let mut rng = StdRng::seed_from_u64(38);
    let (x, y) = related_pair(&mut rng, 24, 5, 4);
    for metric in metrics() {
        let base = (metric.f)(&x, &y).unwrap();
        for s in [1e-150, 1e150] {
            let v = (metric.f)(&map(&x, |_, _, v| s * v), &y)
                .unwrap_or_else(|e| panic!("{}: {e}", metric.name));
            assert!(v.is_finite(), "{}", metric.name);
            assert!(
                (v - base).abs() < 1e-9,
                "{} at scale {s}: {v} vs {base}",
                metric.name
            );
        }
    }
}

#[test]
fn pairwise_distances_are_symmetric_with_a_zero_diagonal() {
    let mut rng = StdRng::seed_from_u64(39);
    let x = gaussian(&mut rng, 9, 4);
    for kind in [RdmDistance::Correlation, RdmDistance::Euclidean] {
        let d = host::pairwise_distances(&x, kind).unwrap();
        assert_eq!((d.rows, d.cols), (9, 9));
        for i in 0..9 {
            assert_eq!(d.get(i, i), 0.0);
            for j in 0..9 {
                assert_eq!(d.get(i, j), d.get(j, i));
            }
        }
    }
    let e = host::pairwise_distances(&x, RdmDistance::Euclidean).unwrap();
    let direct: f64 = x
        .row(2)
        .iter()
        .zip(x.row(7))
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!((e.get(2, 7) - direct).abs() < 1e-12);
}

#[test]
fn wide_representations_take_the_gram_forms() {
    // d ≫ n: every metric but CCA/PWCCA is defined and keeps its invariances.
    let mut rng = StdRng::seed_from_u64(40);
    let (x, y) = related_pair(&mut rng, 12, 40, 30);
    let q = orthogonal(&mut rng, 40);
    let xq = matmul(&x, &q);
    for metric in metrics() {
        let r = (metric.f)(&x, &y);
        if metric.name == "cca_similarity" || metric.name == "pwcca_similarity" {
            assert!(
                matches!(
                    r,
                    Err(RepsimError::RankDeficient {
                        matrix: "X",
                        rank: 11,
                        cols: 40,
                        ..
                    })
                ),
                "{r:?}"
            );
            continue;
        }
        let v = r.unwrap();
        if metric.invariant[0] {
            let rotated = (metric.f)(&xq, &y).unwrap();
            assert!(
                (v - rotated).abs() < 1e-9,
                "{}: {v} vs {rotated}",
                metric.name
            );
        }
    }
}
