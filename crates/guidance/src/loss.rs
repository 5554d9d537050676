//! The guidance term: `Σ over pairs (1 − CKA(target tap, guide tap))`
//! (docs/paper.md §1.1, §1.2).

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};
use untrainable_core::{Tap, read_to_host};
use untrainable_repsim::{
    Distance, feature_form_is_cheaper, linear_cka, linear_cka_gram, linear_cka_gram_of_uncentred,
    linear_cka_of_grams,
};
use untrainable_repsim::{linear_cka_against, unit_centred_grams, unit_centred_of_uncentred};

use crate::mapping::Pair;

/// How the per-pair distances are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reduction {
    /// The paper's choice (`torch.sum`): the term lies in [0, #pairs].
    #[default]
    Sum,
    /// Divides the sum by the number of pairs: the term lies in [0, 1].
    Mean,
}

/// The guide's side of one step's guidance term: its taps on the batch, or
/// (for linear CKA) the batch's uncentred Gram matrices of the guide taps,
/// gathered from tables over the training set.
pub enum GuideBatch {
    Taps(Vec<Tap>),
    Grams(GuideGrams),
}

/// `Σ distance(target tap, guide tap)` over `pairs` (or its mean),
/// differentiable in the target taps; with [`Distance::LinearCka`] the
/// paper's `Σ (1 − CKA)`. Guide taps enter as constants.
pub fn guidance_loss(
    target: &[Tap],
    guide: &[Tap],
    pairs: &[Pair],
    distance: Distance,
    reduction: Reduction,
) -> Tensor<1> {
    assert!(
        !pairs.is_empty(),
        "guidance needs at least one pair of taps"
    );
    let distances = match distance {
        Distance::LinearCka => one_minus(linear_cka_per_pair(target, guide, pairs)),
        _ => pairs
            .iter()
            .map(|p| distance.between(target[p.target].value.clone(), guide[p.guide].value.clone()))
            .collect::<Vec<_>>(),
    };
    reduce(distances, reduction)
}

/// The guide's side of a step read from tables over the training set, by
/// guide tap.
#[derive(Clone)]
pub struct GuideGrams {
    /// The batch's Gram matrix `Y Yᵀ`, for every guide tap in a pair:
    /// uncentred, or already `H Y Yᵀ H / ‖H Y Yᵀ H‖` where `unit_centred`.
    pub grams: Vec<Option<Tensor<2>>>,
    pub unit_centred: bool,
    /// The batch's rows of the guide taps narrower than the batch: only
    /// there can the feature form of CKA be the cheaper, and such pairs are
    /// computed from the taps as [`guidance_loss`] computes them.
    pub narrow_taps: Vec<Option<Tensor<2>>>,
}

/// [`guidance_loss`] with [`Distance::LinearCka`] from the guide's Gram
/// matrices on the batch instead of its taps (and its narrow taps where
/// the feature form is the cheaper): the same values, with no product of
/// the guide's wide taps in the step.
pub fn guidance_loss_from_grams(
    target: &[Tap],
    guide: &GuideGrams,
    pairs: &[Pair],
    reduction: Reduction,
) -> Tensor<1> {
    assert!(
        !pairs.is_empty(),
        "guidance needs at least one pair of taps"
    );
    reduce(
        one_minus(linear_cka_per_pair_from_grams(target, guide, pairs)),
        reduction,
    )
}

/// [`linear_cka_per_pair`] from the guide's Gram matrices: each pair in the
/// form that one takes, the Gram-form pairs against the unit centred blocks.
fn linear_cka_per_pair_from_grams(
    target: &[Tap],
    guide: &GuideGrams,
    pairs: &[Pair],
) -> Vec<Tensor<1>> {
    let narrow = |p: &Pair| {
        let x = &target[p.target].value;
        (guide.narrow_taps[p.guide].as_ref())
            .filter(|y| feature_form_is_cheaper(x.dims()[0], x.dims()[1], y.dims()[1]))
    };
    let gram_form = |p: &Pair| narrow(p).is_none();
    let gram_of = |g: usize| {
        guide.grams[g]
            .clone()
            .expect("a Gram matrix per guide tap in a pair")
    };
    let mut used: Vec<usize> = pairs
        .iter()
        .filter(|p| gram_form(p))
        .map(|p| p.guide)
        .collect();
    used.sort_unstable();
    used.dedup();
    let blocks: Vec<Tensor<2>> = used.iter().map(|&g| gram_of(g)).collect();
    let unit = match guide.unit_centred {
        true => Some(blocks),
        false => unit_centred_of_uncentred(&blocks),
    };
    let mut values = unit
        .and_then(|unit| {
            let unit_of = |g: usize| unit[used.binary_search(&g).expect("a used tap")].clone();
            against_unit_grams(target, pairs, gram_form, unit_of)
        })
        .unwrap_or_else(|| vec![None; pairs.len()]);
    let mut target_grams: Vec<Option<Tensor<2>>> = vec![None; target.len()];
    pairs
        .iter()
        .zip(values.iter_mut())
        .map(|(p, value)| {
            let x = &target[p.target].value;
            match (value.take(), narrow(p)) {
                (Some(value), _) => value,
                (None, Some(y)) => linear_cka(x.clone(), y.clone()),
                (None, None) => {
                    let k =
                        target_grams[p.target].get_or_insert_with(|| linear_cka_gram(x.clone()));
                    linear_cka_of_grams(k.clone(), linear_cka_gram_of_uncentred(gram_of(p.guide)))
                }
            }
        })
        .collect()
}

/// The guidance term of a step from whichever side of the guide it has:
/// [`guidance_loss`] of its taps, or [`guidance_loss_from_grams`] (linear
/// CKA only) of its Gram matrices.
pub fn guidance_loss_of(
    target: &[Tap],
    guide: &GuideBatch,
    pairs: &[Pair],
    distance: Distance,
    reduction: Reduction,
) -> Tensor<1> {
    match guide {
        GuideBatch::Taps(taps) => guidance_loss(target, taps, pairs, distance, reduction),
        GuideBatch::Grams(grams) => {
            assert_eq!(
                distance,
                Distance::LinearCka,
                "only linear CKA is computed from Gram matrices"
            );
            guidance_loss_from_grams(target, grams, pairs, reduction)
        }
    }
}

/// `1 − CKA` of every value.
fn one_minus(ckas: Vec<Tensor<1>>) -> Vec<Tensor<1>> {
    ckas.into_iter()
        .map(|cka| cka.neg().add_scalar(1.0))
        .collect()
}

/// The sum of the per-pair distances, or their mean.
fn reduce(distances: Vec<Tensor<1>>, reduction: Reduction) -> Tensor<1> {
    let count = distances.len();
    let sum = distances
        .into_iter()
        .reduce(|a, b| a + b)
        .expect("at least one pair");
    match reduction {
        Reduction::Sum => sum,
        Reduction::Mean => sum.div_scalar(count as f64),
    }
}

/// The linear CKA of every pair, for evaluation and logging (whatever
/// distance the loss uses, so that arms compare on one scale), all of them in one read from the device.
pub fn pair_cka(target: &[Tap], guide: &[Tap], pairs: &[Pair]) -> Vec<f64> {
    if pairs.is_empty() {
        return Vec::new();
    }
    read_to_host(Tensor::cat(linear_cka_per_pair(target, guide, pairs), 0))
}

/// [`linear_cka`] of every pair, with the Gram matrix of a tap computed once
/// however many pairs it is in (the uniform rule maps 8 guide taps onto each
/// layer of the copy-paste RNN), on burn's CPU backend in one operation per
/// target tap ([`against_fixed_grams`]); a pair whose feature form is
/// cheaper is computed on its own.
fn linear_cka_per_pair(target: &[Tap], guide: &[Tap], pairs: &[Pair]) -> Vec<Tensor<1>> {
    let gram_form = |p: &Pair| {
        let (x, y) = (&target[p.target].value, &guide[p.guide].value);
        !feature_form_is_cheaper(x.dims()[0], x.dims()[1], y.dims()[1])
    };
    let mut values = against_fixed_grams(target, guide, pairs, gram_form);
    let mut target_grams: Vec<Option<Tensor<2>>> = vec![None; target.len()];
    let mut guide_grams: Vec<Option<Tensor<2>>> = vec![None; guide.len()];
    pairs
        .iter()
        .zip(values.iter_mut())
        .map(|(p, value)| {
            if let Some(value) = value.take() {
                return value;
            }
            let (x, y) = (&target[p.target].value, &guide[p.guide].value);
            if !gram_form(p) {
                return linear_cka(x.clone(), y.clone());
            }
            let k = target_grams[p.target].get_or_insert_with(|| linear_cka_gram(x.clone()));
            let l = guide_grams[p.guide].get_or_insert_with(|| linear_cka_gram(y.clone()));
            linear_cka_of_grams(k.clone(), l.clone())
        })
        .collect()
}

/// The Gram-form pairs' values where the backend computes them as one
/// operation per target tap against the guide taps' fixed Gram matrices
/// ([`untrainable_repsim::linear_cka_against`], burn's CPU backend); `None`
/// for every other pair, and for all of them elsewhere.
fn against_fixed_grams(
    target: &[Tap],
    guide: &[Tap],
    pairs: &[Pair],
    gram_form: impl Fn(&Pair) -> bool,
) -> Vec<Option<Tensor<1>>> {
    let mut guides: Vec<usize> = pairs
        .iter()
        .filter(|p| gram_form(p))
        .map(|p| p.guide)
        .collect();
    guides.sort_unstable();
    guides.dedup();
    let taps: Vec<Tensor<2>> = guides.iter().map(|&g| guide[g].value.clone()).collect();
    let Some(grams) = unit_centred_grams(&taps) else {
        return vec![None; pairs.len()];
    };
    let gram_of =
        |g: usize| grams[guides.binary_search(&g).expect("a guide tap in a pair")].clone();
    against_unit_grams(target, pairs, gram_form, gram_of).unwrap_or_else(|| vec![None; pairs.len()])
}

/// The values of the pairs `included` in one operation per target tap
/// against its partners' unit centred Gram matrices (`unit_gram(guide
/// tap)`), `None` for the others; `None` where the backend has no such
/// operation.
fn against_unit_grams(
    target: &[Tap],
    pairs: &[Pair],
    included: impl Fn(&Pair) -> bool,
    unit_gram: impl Fn(usize) -> Tensor<2>,
) -> Option<Vec<Option<Tensor<1>>>> {
    let mut values = vec![None; pairs.len()];
    for (t, tap) in target.iter().enumerate() {
        let members: Vec<usize> = (0..pairs.len())
            .filter(|&i| pairs[i].target == t && included(&pairs[i]))
            .collect();
        if members.is_empty() {
            continue;
        }
        let partners = members.iter().map(|&i| unit_gram(pairs[i].guide)).collect();
        let cka = linear_cka_against(tap.value.clone(), Tensor::stack(partners, 0))?;
        for (j, &i) in members.iter().enumerate() {
            values[i] = Some(cka.clone().slice([j..j + 1]));
        }
    }
    Some(values)
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;

    /// A deterministic `(n, d)` tap that needs no random stream.
    fn tap(name: &str, n: usize, d: usize, phase: f32, device: &Device) -> Tap {
        let values: Vec<f32> = (0..n * d)
            .map(|i| ((i as f32) * 0.37 + phase).sin() + 0.1 * ((i % 7) as f32))
            .collect();
        Tap::new(
            name,
            Tensor::<2>::from_data(TensorData::new(values, [n, d]), device),
        )
    }

    /// `y yᵀ` written out, in `f64`.
    fn gram_by_definition(y: &Tensor<2>) -> Tensor<2> {
        let [n, d] = y.dims();
        let v: Vec<f64> = y.clone().into_data().convert::<f64>().try_to_vec().unwrap();
        let k: Vec<f32> = (0..n * n)
            .map(|ij| {
                (0..d)
                    .map(|f| v[ij / n * d + f] * v[ij % n * d + f])
                    .sum::<f64>() as f32
            })
            .collect();
        Tensor::from_data(TensorData::new(k, [n, n]), &y.device())
    }

    #[test]
    fn the_loss_from_guide_gram_matrices_is_the_loss_from_guide_taps() {
        let device = Device::flex().autodiff();
        let n = 40;
        let target: Vec<Tap> = [(0, 96), (1, 3)]
            .iter()
            .map(|&(i, d)| {
                let mut t = tap(&format!("t{i}"), n, d, i as f32, &device);
                t.value = t.value.require_grad();
                t
            })
            .collect();
        // The guide's taps on the plain device, as a frozen guide returns them;
        // tap 2 in no pair, tap 3 narrow (a feature-form pair on the tap path).
        let guide: Vec<Tap> = [70, 50, 30, 2]
            .iter()
            .enumerate()
            .map(|(i, &d)| {
                tap(
                    &format!("g{i}"),
                    n,
                    d,
                    5.0 + i as f32,
                    &device.clone().inner(),
                )
            })
            .collect();
        let pairs: Vec<Pair> = [(0, 0), (0, 1), (1, 3), (1, 0)]
            .iter()
            .map(|&(t, g)| Pair::of_indices(t, g))
            .collect();
        assert!(feature_form_is_cheaper(n, 3, 2));
        // Gram matrices of the taps in pairs, the narrow taps' rows.
        let grams = GuideGrams {
            grams: (guide.iter().enumerate())
                .map(|(g, tap)| (g != 2).then(|| gram_by_definition(&tap.value)))
                .collect(),
            narrow_taps: (guide.iter())
                .map(|tap| (tap.value.dims()[1] < n).then(|| tap.value.clone()))
                .collect(),
            unit_centred: false,
        };
        for reduction in [Reduction::Sum, Reduction::Mean] {
            let from_taps = guidance_loss(&target, &guide, &pairs, Distance::LinearCka, reduction);
            let from_grams = guidance_loss_from_grams(&target, &grams, &pairs, reduction);
            let (a, b) = (
                from_taps.clone().into_scalar::<f64>(),
                from_grams.clone().into_scalar::<f64>(),
            );
            assert!((a - b).abs() <= 1e-5 * a.abs(), "{a} vs {b}");
            assert!(a > 0.5, "pairs too alike to test anything: {a}");
            let (ga, gb) = (from_taps.backward(), from_grams.backward());
            for t in &target {
                let x: Vec<f32> = untrainable_core::to_vec(t.value.grad(&ga).unwrap());
                let y: Vec<f32> = untrainable_core::to_vec(t.value.grad(&gb).unwrap());
                let scale = x.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(scale > 0.0, "{} takes no gradient", t.name);
                for (u, v) in x.iter().zip(&y) {
                    assert!((u - v).abs() <= 1e-5 * scale, "{}: {u} vs {v}", t.name);
                }
            }
        }
    }

    #[test]
    fn sharing_a_taps_gram_matrix_gives_the_pairwise_value_and_gradient() {
        let device = Device::flex().autodiff();
        let n = 32;
        // Two wide target taps (Gram form), one narrow one (feature form),
        // each in several pairs, as the uniform rule maps many guide taps
        // onto few target taps.
        let target: Vec<Tap> = [(0, 96), (1, 80), (2, 3)]
            .iter()
            .map(|&(i, d)| {
                let mut t = tap(&format!("t{i}"), n, d, i as f32, &device);
                t.value = t.value.require_grad();
                t
            })
            .collect();
        let guide: Vec<Tap> = (0..6)
            .map(|i| {
                tap(
                    &format!("g{i}"),
                    n,
                    if i == 5 { 2 } else { 50 + 10 * i },
                    10.0 + i as f32,
                    &device,
                )
            })
            .collect();
        let pairs: Vec<Pair> = [(0, 0), (0, 1), (0, 2), (1, 3), (1, 4), (2, 5), (2, 0)]
            .iter()
            .map(|&(t, g)| Pair::of_indices(t, g))
            .collect();
        assert!(feature_form_is_cheaper(n, 3, 2));
        assert!(!feature_form_is_cheaper(n, 96, 50));

        // On flex the Gram-form pairs take repsim's fused operation per target tap.
        let gram_form = |p: &Pair| {
            let (x, y) = (&target[p.target].value, &guide[p.guide].value);
            !feature_form_is_cheaper(n, x.dims()[1], y.dims()[1])
        };
        let fixed = against_fixed_grams(&target, &guide, &pairs, gram_form);
        assert!(
            pairs
                .iter()
                .zip(&fixed)
                .all(|(p, v)| v.is_some() == gram_form(p))
        );

        let shared = guidance_loss(&target, &guide, &pairs, Distance::LinearCka, Reduction::Sum);
        let one_by_one = pairs
            .iter()
            .map(|p| {
                linear_cka(target[p.target].value.clone(), guide[p.guide].value.clone())
                    .neg()
                    .add_scalar(1.0)
            })
            .reduce(|a, b| a + b)
            .unwrap();
        let (a, b) = (
            shared.clone().into_scalar::<f64>(),
            one_by_one.clone().into_scalar::<f64>(),
        );
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        assert!(a > 0.5, "pairs too alike to test anything: {a}");

        let (ga, gb) = (shared.backward(), one_by_one.backward());
        for t in &target {
            let x: Vec<f32> = untrainable_core::to_vec(t.value.grad(&ga).unwrap());
            let y: Vec<f32> = untrainable_core::to_vec(t.value.grad(&gb).unwrap());
            let scale = y.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(scale > 0.0, "{} takes no gradient", t.name);
            for (u, v) in x.iter().zip(&y) {
                assert!((u - v).abs() <= 1e-5 * scale, "{}: {u} vs {v}", t.name);
            }
        }

        let per_pair = pair_cka(&target, &guide, &pairs);
        for (p, cka) in pairs.iter().zip(per_pair) {
            let expected = linear_cka(target[p.target].value.clone(), guide[p.guide].value.clone())
                .into_scalar::<f64>();
            assert!(
                (cka - expected).abs() < 1e-6,
                "pair {} ← {}: {cka} against {expected}",
                p.target,
                p.guide
            );
        }
    }
}
