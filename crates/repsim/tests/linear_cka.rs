//! Properties of linear CKA, each checked on the differentiable burn form and,
//! where useful, against the f64 host form and an independent fixture.

mod common;

use burn::tensor::{DType, Device, Tensor, TensorData};
use common::{gaussian, map, matmul, orthogonal, scalar, tensor, tensor_f64};
use rand::SeedableRng;
use rand::rngs::StdRng;
use untrainable_repsim::host::{self, Matrix};
use untrainable_repsim::{Distance, linear_cka, linear_cka_feature_form};

fn burn_cka(x: &Matrix, y: &Matrix) -> f64 {
    scalar(linear_cka(tensor(x), tensor(y)))
}

#[test]
fn cka_of_a_representation_with_itself_is_one() {
    let mut rng = StdRng::seed_from_u64(1);
    let x = gaussian(&mut rng, 32, 10);
    assert!((burn_cka(&x, &x) - 1.0).abs() < 1e-5);
    assert!((host::linear_cka(&x, &x) - 1.0).abs() < 1e-12);
}

#[test]
fn cka_is_invariant_to_an_orthogonal_map_but_not_to_a_general_linear_map() {
    let mut rng = StdRng::seed_from_u64(2);
    let x = gaussian(&mut rng, 40, 12);
    let y = gaussian(&mut rng, 40, 8);
    let q = orthogonal(&mut rng, 12);
    let xq = matmul(&x, &q);
    assert!((burn_cka(&x, &xq) - 1.0).abs() < 1e-5);
    let reference = burn_cka(&x, &y);
    assert!((burn_cka(&xq, &y) - reference).abs() < 1e-5);
    // A strongly anisotropic map changes the value: CKA is not invariant to it.
    let stretched = map(&x, |col, v| if col == 0 { 30.0 * v } else { v });
    assert!(
        burn_cka(&x, &stretched) < 0.9,
        "an anisotropic map must change CKA"
    );
}

#[test]
fn cka_is_invariant_to_isotropic_scaling_and_translation() {
    let mut rng = StdRng::seed_from_u64(3);
    let x = gaussian(&mut rng, 30, 6);
    let y = gaussian(&mut rng, 30, 9);
    let reference = burn_cka(&x, &y);
    let scaled = map(&x, |_, v| 1e-3 * v);
    let translated = map(&x, |col, v| v + 5.0 + col as f64);
    let big = map(&y, |_, v| 1e4 * v);
    assert!((burn_cka(&scaled, &y) - reference).abs() < 1e-5);
    assert!((burn_cka(&translated, &y) - reference).abs() < 1e-5);
    assert!((burn_cka(&x, &big) - reference).abs() < 1e-5);
}

#[test]
fn cka_of_one_dimensional_features_is_the_squared_pearson_correlation() {
    let mut rng = StdRng::seed_from_u64(4);
    let x = gaussian(&mut rng, 50, 1);
    let noise = gaussian(&mut rng, 50, 1);
    let y = Matrix::new(
        50,
        1,
        x.data
            .iter()
            .zip(&noise.data)
            .map(|(a, e)| 0.7 * a + e)
            .collect(),
    );
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (mx, my) = (mean(&x.data), mean(&y.data));
    let sxy: f64 = x
        .data
        .iter()
        .zip(&y.data)
        .map(|(a, b)| (a - mx) * (b - my))
        .sum();
    let sxx: f64 = x.data.iter().map(|a| (a - mx).powi(2)).sum();
    let syy: f64 = y.data.iter().map(|b| (b - my).powi(2)).sum();
    let r2 = sxy * sxy / (sxx * syy);
    assert!(
        r2 > 0.1 && r2 < 0.9,
        "the case must not be trivial: r² = {r2}"
    );
    assert!((burn_cka(&x, &y) - r2).abs() < 1e-5);
    assert!((host::linear_cka(&x, &y) - r2).abs() < 1e-12);
}

#[test]
fn cka_is_symmetric_and_lies_in_the_unit_interval() {
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..10 {
        let x = gaussian(&mut rng, 16, 7);
        let y = gaussian(&mut rng, 16, 20);
        let (xy, yx) = (burn_cka(&x, &y), burn_cka(&y, &x));
        assert!((xy - yx).abs() < 1e-6);
        assert!((0.0..=1.0 + 1e-6).contains(&xy), "{xy}");
    }
}

#[test]
fn gram_form_equals_feature_form() {
    let mut rng = StdRng::seed_from_u64(6);
    let x = gaussian(&mut rng, 24, 5);
    let y = gaussian(&mut rng, 24, 40);
    let gram = burn_cka(&x, &y);
    let feature = scalar(linear_cka_feature_form(tensor(&x), tensor(&y)));
    assert!((gram - feature).abs() < 1e-5, "{gram} vs {feature}");
}

#[derive(serde::Deserialize)]
struct Fixture {
    case: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    n: usize,
    p: usize,
    q: usize,
    x: Vec<f64>,
    y: Vec<f64>,
    cka: f64,
}

/// Values from `scripts/make-cka-fixture.py`, an independent pure-Python
/// implementation with a dense centring matrix.
#[test]
fn cka_matches_the_independent_python_fixture() {
    let text = include_str!("fixtures/linear_cka.toml");
    let fixture: Fixture = toml::from_str(text).unwrap();
    assert_eq!(fixture.case.len(), 4);
    for case in fixture.case {
        let x = Matrix::new(case.n, case.p, case.x);
        let y = Matrix::new(case.n, case.q, case.y);
        assert!((host::linear_cka(&x, &y) - case.cka).abs() < 1e-10);
        assert!((burn_cka(&x, &y) - case.cka).abs() < 1e-5);
    }
}

#[test]
fn constant_representations_give_a_finite_value_and_gradient() {
    let x = Tensor::<2>::ones([8, 4], &Device::flex().autodiff()).require_grad();
    let y = tensor(&gaussian(&mut StdRng::seed_from_u64(7), 8, 3));
    let distance = Distance::LinearCka.between(x.clone(), y);
    let value = scalar(distance.clone().inner());
    assert!(value.is_finite());
    let grads = distance.backward();
    let grad = x
        .grad(&grads)
        .unwrap()
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap();
    assert!(grad.iter().all(|g| g.is_finite()));
}

/// The gradient of `1 − CKA` with respect to the target representation, from
/// autodiff in f64, against central finite differences of the f64 host form.
#[test]
fn cka_distance_gradient_matches_central_finite_differences() {
    let mut rng = StdRng::seed_from_u64(8);
    let x = gaussian(&mut rng, 6, 4);
    let y = gaussian(&mut rng, 6, 3);
    let device = Device::flex().autodiff();
    let xt = Tensor::<2>::from_data(
        TensorData::new(x.data.clone(), [x.rows, x.cols]),
        (&device, DType::F64),
    )
    .require_grad();
    let distance = Distance::LinearCka.between(xt.clone(), tensor_f64(&y));
    let grads = distance.backward();
    let analytic = xt
        .grad(&grads)
        .unwrap()
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .unwrap();
    let h = 1e-6;
    for k in 0..x.data.len() {
        let shifted = |delta: f64| {
            let mut m = x.clone();
            m.data[k] += delta;
            1.0 - host::linear_cka(&m, &y)
        };
        let numeric = (shifted(h) - shifted(-h)) / (2.0 * h);
        assert!(
            (analytic[k] - numeric).abs() < 1e-7,
            "entry {k}: autodiff {} vs finite differences {numeric}",
            analytic[k]
        );
    }
    assert!(
        analytic.iter().any(|g| g.abs() > 1e-3),
        "the gradient must not vanish"
    );
}
