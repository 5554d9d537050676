//! Debiased linear CKA and RBF CKA on burn tensors: values, invariances and
//! gradients.

mod common;

use common::{
    assert_gradient_matches_finite_differences, gaussian, map, matmul, orthogonal, scalar, tensor,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use untrainable_repsim::host::{self, Matrix};
use untrainable_repsim::{
    Distance, debiased_linear_cka, linear_cka, linear_cka_feature_form, linear_cka_gram_form,
    median_pairwise_distance, procrustes_similarity, rbf_cka, rbf_cka_with_bandwidths,
    ridge_similarity, rsa_similarity,
};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn debiased_cka_of_a_representation_with_itself_is_one() {
    let x = gaussian(&mut StdRng::seed_from_u64(1), 12, 5);
    let value = scalar(debiased_linear_cka(tensor(&x), tensor(&x)));
    assert!(close(value, 1.0, 1e-5), "{value}");
}

/// For independent representations the biased estimator is pulled above 0
/// by about d/n; the debiased one is not, and the gap closes as n grows.
#[test]
fn debiased_cka_removes_the_small_sample_bias_and_meets_biased_cka_as_n_grows() {
    let mut rng = StdRng::seed_from_u64(2);
    let mut gaps = Vec::new();
    for n in [16, 128, 1024] {
        let (x, y) = (gaussian(&mut rng, n, 20), gaussian(&mut rng, n, 20));
        let biased = scalar(linear_cka(tensor(&x), tensor(&y)));
        let debiased = scalar(debiased_linear_cka(tensor(&x), tensor(&y)));
        assert!(
            debiased.abs() < biased,
            "n = {n}: debiased {debiased}, biased {biased}"
        );
        gaps.push(biased - debiased);
    }
    assert!(gaps[0] > gaps[1] && gaps[1] > gaps[2], "gaps {gaps:?}");
    assert!(gaps[2] < 0.05, "gaps {gaps:?}");
}

#[test]
#[should_panic(expected = "at least 4 examples")]
fn debiased_cka_refuses_fewer_than_four_examples() {
    let x = gaussian(&mut StdRng::seed_from_u64(3), 3, 2);
    debiased_linear_cka(tensor(&x), tensor(&x));
}

#[test]
fn debiased_cka_gradient_matches_central_finite_differences() {
    let mut rng = StdRng::seed_from_u64(4);
    let (x, y) = (gaussian(&mut rng, 7, 4), gaussian(&mut rng, 7, 3));
    let y = common::tensor_f64(&y);
    assert_gradient_matches_finite_differences(&x, |xt| debiased_linear_cka(xt, y.clone()));
}

#[test]
fn median_pairwise_distance_by_hand() {
    // Points 0, 1, 3 on a line: distances 1, 3, 2, median 2.
    let three = Matrix::new(3, 1, vec![0.0, 1.0, 3.0]);
    assert!(close(median_pairwise_distance(tensor(&three)), 2.0, 1e-6));
    // Points 0, 1, 2, 4: distances 1, 2, 4, 1, 3, 2; the middle two are 2 and 2.
    let four = Matrix::new(4, 1, vec![0.0, 1.0, 2.0, 4.0]);
    assert!(close(median_pairwise_distance(tensor(&four)), 2.0, 1e-6));
    // Points 0, 1, 5, 6 (distances 1, 5, 6, 4, 5, 1): the middle two are 4 and 5.
    let even = Matrix::new(4, 1, vec![0.0, 1.0, 5.0, 6.0]);
    assert!(close(median_pairwise_distance(tensor(&even)), 4.5, 1e-6));
}

#[test]
fn rbf_cka_is_invariant_to_rotation_scaling_and_translation_but_not_to_a_general_linear_map() {
    let mut rng = StdRng::seed_from_u64(5);
    let x = gaussian(&mut rng, 16, 6);
    let y = map(&gaussian(&mut rng, 16, 6), |_, v| v.tanh());
    let base = scalar(rbf_cka(tensor(&x), tensor(&y), 0.5));
    assert!(close(
        scalar(rbf_cka(tensor(&x), tensor(&x), 0.5)),
        1.0,
        1e-5
    ));
    let rotated = matmul(&x, &orthogonal(&mut rng, 6));
    let moved = map(&x, |c, v| 3.5 * v + c as f64);
    for (name, t) in [("rotation", &rotated), ("scaling and translation", &moved)] {
        let value = scalar(rbf_cka(tensor(t), tensor(&y), 0.5));
        assert!(close(value, base, 1e-4), "{name}: {value} vs {base}");
    }
    // Stretching one feature by 20 changes which examples are near each other.
    let stretched = map(&x, |c, v| if c == 0 { 20.0 * v } else { v });
    let value = scalar(rbf_cka(tensor(&stretched), tensor(&y), 0.5));
    assert!((value - base).abs() > 0.02, "{value} vs {base}");
}

/// As the bandwidth grows, exp(−d²/2σ²) ≈ 1 − d²/2σ², whose centred Gram is
/// the linear one up to scale: RBF CKA tends to linear CKA.
#[test]
fn rbf_cka_tends_to_linear_cka_for_wide_kernels() {
    let mut rng = StdRng::seed_from_u64(6);
    let (x, y) = (gaussian(&mut rng, 20, 5), gaussian(&mut rng, 20, 4));
    let linear = scalar(linear_cka(tensor(&x), tensor(&y)));
    let wide = scalar(rbf_cka(tensor(&x), tensor(&y), 50.0));
    assert!(close(wide, linear, 2e-3), "{wide} vs {linear}");
    let narrow = scalar(rbf_cka(tensor(&x), tensor(&y), 0.2));
    assert!((narrow - linear).abs() > 1e-2, "{narrow} vs {linear}");
}

#[test]
fn rbf_cka_gradient_with_fixed_bandwidths_matches_central_finite_differences() {
    let mut rng = StdRng::seed_from_u64(7);
    let (x, y) = (gaussian(&mut rng, 6, 3), gaussian(&mut rng, 6, 2));
    let y = common::tensor_f64(&y);
    assert_gradient_matches_finite_differences(&x, |xt| {
        rbf_cka_with_bandwidths(xt, y.clone(), 1.5, 1.0)
    });
}

/// The burn forms agree with the f64 analysis forms, written separately in
/// `host` (on nalgebra).
#[test]
fn burn_forms_match_the_host_forms() {
    let mut rng = StdRng::seed_from_u64(8);
    let (x, y) = (
        gaussian(&mut rng, 24, 7),
        map(&gaussian(&mut rng, 24, 5), |_, v| v.tanh()),
    );
    let (xt, yt) = (common::tensor_f64(&x), common::tensor_f64(&y));
    let debiased = scalar(debiased_linear_cka(xt.clone(), yt.clone()));
    let host_debiased = host::linear_cka_debiased(&x, &y).unwrap();
    assert!(
        close(debiased, host_debiased, 1e-9),
        "{debiased} vs {host_debiased}"
    );
    let rbf = scalar(rbf_cka(xt, yt, host::DEFAULT_RBF_THRESHOLD));
    let host_rbf = host::rbf_cka(&x, &y, host::DEFAULT_RBF_THRESHOLD).unwrap();
    assert!(close(rbf, host_rbf, 1e-9), "{rbf} vs {host_rbf}");
}

#[test]
fn distance_names_are_the_config_names() {
    #[derive(serde::Deserialize)]
    struct Config {
        distance: Distance,
    }
    for &distance in Distance::ALL {
        let parsed: Config =
            toml::from_str(&format!("distance = \"{}\"", distance.name())).unwrap();
        assert_eq!(parsed.distance, distance);
    }
    assert!(toml::from_str::<Config>("distance = \"cka\"").is_err());
}

#[test]
fn distances_are_one_minus_their_similarity() {
    let mut rng = StdRng::seed_from_u64(9);
    let (x, y) = (gaussian(&mut rng, 10, 4), gaussian(&mut rng, 10, 3));
    let pairs = [
        (
            Distance::LinearCka,
            scalar(linear_cka(tensor(&x), tensor(&y))),
        ),
        (
            Distance::LinearCkaDebiased,
            scalar(debiased_linear_cka(tensor(&x), tensor(&y))),
        ),
        (
            Distance::RbfCka,
            scalar(rbf_cka(tensor(&x), tensor(&y), 0.5)),
        ),
        (
            Distance::Rsa,
            scalar(rsa_similarity(tensor(&x), tensor(&y))),
        ),
        (
            Distance::Ridge,
            scalar(ridge_similarity(
                tensor(&x),
                tensor(&y),
                host::DEFAULT_RIDGE_LAMBDA,
            )),
        ),
        (
            Distance::Procrustes,
            scalar(procrustes_similarity(tensor(&x), tensor(&y))),
        ),
    ];
    assert_eq!(pairs.len(), Distance::ALL.len());
    for (distance, similarity) in pairs {
        let value = scalar(distance.between(tensor(&x), tensor(&y)));
        assert!(
            close(value, 1.0 - similarity, 1e-6),
            "{distance:?}: {value} vs 1 − {similarity}"
        );
    }
}

/// RSA, ridge and Procrustes on burn tensors agree with their f64 host forms,
/// written separately on nalgebra (feature form for ridge where `dx ≤ n`,
/// SVD for Procrustes), for narrow and for wide representations.
#[test]
fn rsa_ridge_and_procrustes_match_the_host_forms() {
    let mut rng = StdRng::seed_from_u64(10);
    for (n, dx, dy) in [(20, 6, 4), (12, 30, 17)] {
        let x = gaussian(&mut rng, n, dx);
        let y = map(&matmul(&x, &gaussian(&mut rng, dx, dy)), |c, v| {
            (v + 0.3 * c as f64).tanh()
        });
        let (xt, yt) = (common::tensor_f64(&x), common::tensor_f64(&y));
        let rsa = scalar(rsa_similarity(xt.clone(), yt.clone()));
        let host_rsa = host::rsa_similarity(
            &x,
            &y,
            host::RdmDistance::Correlation,
            host::RdmComparison::Pearson,
        )
        .unwrap();
        assert!(close(rsa, host_rsa, 1e-9), "n {n}: RSA {rsa} vs {host_rsa}");
        for lambda in [0.1, 1.0] {
            let ridge = scalar(ridge_similarity(xt.clone(), yt.clone(), lambda));
            let host_ridge = host::ridge_similarity(&x, &y, lambda).unwrap();
            assert!(
                close(ridge, host_ridge, 1e-9),
                "n {n}, λ {lambda}: ridge {ridge} vs {host_ridge}"
            );
        }
        let procrustes = scalar(procrustes_similarity(xt.clone(), yt.clone()));
        let d = host::procrustes_distance(&x, &y).unwrap();
        assert!(
            close(procrustes, 1.0 - d * d / 2.0, 1e-9),
            "n {n}: Procrustes {procrustes} vs 1 − {d}²/2"
        );
    }
}

#[test]
fn rsa_ridge_and_procrustes_gradients_match_central_finite_differences() {
    let mut rng = StdRng::seed_from_u64(11);
    // Narrow and wide `x` against a fixed `y`; ridge also with `x` as the
    // predicted side.
    for (n, dx) in [(7, 3), (6, 9)] {
        let (x, y) = (gaussian(&mut rng, n, dx), gaussian(&mut rng, n, 4));
        let yt = common::tensor_f64(&y);
        assert_gradient_matches_finite_differences(&x, |xt| rsa_similarity(xt, yt.clone()));
        assert_gradient_matches_finite_differences(&x, |xt| ridge_similarity(xt, yt.clone(), 0.1));
        assert_gradient_matches_finite_differences(&x, |xt| ridge_similarity(yt.clone(), xt, 0.1));
        assert_gradient_matches_finite_differences(&x, |xt| procrustes_similarity(xt, yt.clone()));
    }
}

/// Each burn metric keeps its value under the transformations its host table
/// lists and moves under one it does not list.
#[test]
fn rsa_ridge_and_procrustes_invariances_on_burn_tensors() {
    let mut rng = StdRng::seed_from_u64(12);
    let x = gaussian(&mut rng, 16, 5);
    let y = map(&gaussian(&mut rng, 16, 5), |_, v| v.tanh());
    let value = |f: &dyn Fn(Tensor2, Tensor2) -> Tensor1, a: &Matrix| {
        scalar(f(common::tensor_f64(a), common::tensor_f64(&y)))
    };
    let rotated = matmul(&x, &orthogonal(&mut rng, 5));
    let scaled = map(&x, |_, v| 2.5 * v);
    let stretched = map(&x, |c, v| if c == 0 { 8.0 * v } else { v });
    let rsa = |a, b| rsa_similarity(a, b);
    let ridge = |a, b| ridge_similarity(a, b, 0.1);
    let procrustes = |a, b| procrustes_similarity(a, b);
    let metrics: [(&str, &dyn Fn(Tensor2, Tensor2) -> Tensor1); 3] = [
        ("rsa", &rsa),
        ("ridge", &ridge),
        ("procrustes", &procrustes),
    ];
    for (name, f) in metrics {
        let base = value(f, &x);
        assert!(close(value(f, &scaled), base, 1e-9), "{name}: scaling");
        assert!(
            (value(f, &stretched) - base).abs() > 1e-3,
            "{name}: stretching one feature must change it"
        );
        if name != "rsa" {
            assert!(close(value(f, &rotated), base, 1e-9), "{name}: rotation");
        }
    }
}

#[test]
fn procrustes_similarity_of_a_rotated_copy_is_one() {
    let mut rng = StdRng::seed_from_u64(13);
    let x = gaussian(&mut rng, 10, 4);
    let rotated = map(&matmul(&x, &orthogonal(&mut rng, 4)), |c, v| {
        3.0 * v - c as f64
    });
    let value = scalar(procrustes_similarity(
        common::tensor_f64(&x),
        common::tensor_f64(&rotated),
    ));
    assert!(close(value, 1.0, 1e-9), "{value}");
}

/// `linear_cka` picks the cheaper form: the Gram form for a wide minibatch,
/// the feature form for narrow features over many examples; both give the
/// same value.
#[test]
fn linear_cka_picks_the_cheaper_form_and_both_agree() {
    use untrainable_repsim::feature_form_is_cheaper;
    // n = 8, p = q = 100: Gram 8²·200 = 12 800 < feature 8·30 000.
    assert!(!feature_form_is_cheaper(8, 100, 100));
    // n = 1000, p = q = 10: feature 1000·300 < Gram 10⁶·20.
    assert!(feature_form_is_cheaper(1000, 10, 10));
    let mut rng = StdRng::seed_from_u64(14);
    for (n, p, q) in [(8, 100, 60), (200, 3, 5)] {
        let (x, y) = (gaussian(&mut rng, n, p), gaussian(&mut rng, n, q));
        let (xt, yt) = (common::tensor_f64(&x), common::tensor_f64(&y));
        let auto = scalar(linear_cka(xt.clone(), yt.clone()));
        let gram = scalar(linear_cka_gram_form(xt.clone(), yt.clone()));
        let feature = scalar(linear_cka_feature_form(xt, yt));
        let reference = host::linear_cka_biased(&x, &y).unwrap();
        for v in [auto, gram, feature] {
            assert!(close(v, reference, 1e-9), "n {n}: {v} vs {reference}");
        }
    }
}

type Tensor1 = burn::tensor::Tensor<1>;
type Tensor2 = burn::tensor::Tensor<2>;
