//! Debiased linear CKA and RBF CKA on burn tensors: values, invariances and
//! gradients.

mod common;

use common::{assert_gradient_matches_finite_differences, gaussian, map, matmul, orthogonal, scalar, tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use untrainable_repsim::host::{self, Matrix};
use untrainable_repsim::{
    Distance, debiased_linear_cka, linear_cka, median_pairwise_distance, rbf_cka, rbf_cka_with_bandwidths,
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
        assert!(debiased.abs() < biased, "n = {n}: debiased {debiased}, biased {biased}");
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
    assert!(close(scalar(rbf_cka(tensor(&x), tensor(&x), 0.5)), 1.0, 1e-5));
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
    assert_gradient_matches_finite_differences(&x, |xt| rbf_cka_with_bandwidths(xt, y.clone(), 1.5, 1.0));
}

/// The burn forms agree with the f64 analysis forms, written separately in
/// `host` (on nalgebra).
#[test]
fn burn_forms_match_the_host_forms() {
    let mut rng = StdRng::seed_from_u64(8);
    let (x, y) = (gaussian(&mut rng, 24, 7), map(&gaussian(&mut rng, 24, 5), |_, v| v.tanh()));
    let (xt, yt) = (common::tensor_f64(&x), common::tensor_f64(&y));
    let debiased = scalar(debiased_linear_cka(xt.clone(), yt.clone()));
    let host_debiased = host::linear_cka_debiased(&x, &y).unwrap();
    assert!(close(debiased, host_debiased, 1e-9), "{debiased} vs {host_debiased}");
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
    for distance in [Distance::LinearCka, Distance::LinearCkaDebiased, Distance::RbfCka] {
        let parsed: Config = toml::from_str(&format!("distance = \"{}\"", distance.name())).unwrap();
        assert_eq!(parsed.distance, distance);
    }
    assert!(toml::from_str::<Config>("distance = \"cka\"").is_err());
}

#[test]
fn distances_are_one_minus_their_similarity() {
    let mut rng = StdRng::seed_from_u64(9);
    let (x, y) = (gaussian(&mut rng, 10, 4), gaussian(&mut rng, 10, 3));
    let pairs = [
        (Distance::LinearCka, scalar(linear_cka(tensor(&x), tensor(&y)))),
        (Distance::LinearCkaDebiased, scalar(debiased_linear_cka(tensor(&x), tensor(&y)))),
        (Distance::RbfCka, scalar(rbf_cka(tensor(&x), tensor(&y), 0.5))),
    ];
    for (distance, similarity) in pairs {
        let value = scalar(distance.between(tensor(&x), tensor(&y)));
        assert!(close(value, 1.0 - similarity, 1e-6), "{distance:?}: {value} vs 1 − {similarity}");
    }
}
