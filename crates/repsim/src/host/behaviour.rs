//! Error consistency (Geirhos, Meding & Wichmann 2020, "Beyond accuracy:
//! quantifying trial-by-trial behaviour of CNNs and humans by measuring
//! error consistency"): Cohen's κ on which test examples two classifiers get
//! right, so that two networks with equal accuracy but different mistakes
//! score near 0 and networks that fail on the same examples near 1.
//!
//! ```text
//! c_obs = fraction of examples both get right or both get wrong
//! c_exp = p_a p_b + (1 − p_a)(1 − p_b)      (p: accuracies; independent observers)
//! κ     = (c_obs − c_exp) / (1 − c_exp)
//! ```

use super::{Matrix, RepsimError, Result};

/// Error consistency κ of two classifiers' per-example correctness, in
/// [−1, 1]: 1 for identical mistakes, 0 for mistakes as independent as their
/// accuracies allow, negative when one errs where the other does not.
///
/// # Errors
/// Vectors of different length, fewer than 2 examples, or two classifiers
/// both always right or both always wrong
/// ([`RepsimError::ChanceAgreementIsOne`]).
pub fn error_consistency(a: &[bool], b: &[bool]) -> Result<f64> {
    if a.len() != b.len() {
        return Err(RepsimError::RowsDiffer {
            x_rows: a.len(),
            y_rows: b.len(),
        });
    }
    let n = a.len();
    if n < 2 {
        return Err(RepsimError::TooFewExamples {
            metric: "error consistency",
            n,
            min: 2,
        });
    }
    let rate = |v: &[bool]| v.iter().filter(|&&c| c).count() as f64 / n as f64;
    let (p_a, p_b) = (rate(a), rate(b));
    let expected = p_a * p_b + (1.0 - p_a) * (1.0 - p_b);
    if expected >= 1.0 {
        return Err(RepsimError::ChanceAgreementIsOne {
            accuracy_a: p_a,
            accuracy_b: p_b,
        });
    }
    let observed = a.iter().zip(b).filter(|(x, y)| x == y).count() as f64 / n as f64;
    Ok((observed - expected) / (1.0 - expected))
}

/// The symmetric matrix of [`error_consistency`] between every pair of
/// `observers` (1 on the diagonal).
pub fn error_consistency_matrix(observers: &[Vec<bool>]) -> Result<Matrix> {
    let k = observers.len();
    let mut m = Matrix::new(k, k, vec![1.0; k * k]);
    for i in 0..k {
        for j in 0..i {
            let kappa = error_consistency(&observers[i], &observers[j])?;
            m.data[i * k + j] = kappa;
            m.data[j * k + i] = kappa;
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == '1').collect()
    }

    #[test]
    fn kappa_by_hand() {
        // c_obs = 3/4, p = 3/4 and 1/2, c_exp = 3/8 + 1/8 = 1/2: κ = 1/2.
        let k = error_consistency(&bits("1110"), &bits("1100")).unwrap();
        assert!((k - 0.5).abs() < 1e-15, "{k}");
        // Equal accuracies, agreement at chance level: κ = 0.
        assert_eq!(
            error_consistency(&bits("1100"), &bits("1010")).unwrap(),
            0.0
        );
        // Opposite on every example: κ = −1.
        assert_eq!(
            error_consistency(&bits("1010"), &bits("0101")).unwrap(),
            -1.0
        );
        assert_eq!(
            error_consistency(&bits("10110"), &bits("10110")).unwrap(),
            1.0
        );
    }

    #[test]
    fn symmetric_and_invariant_to_the_order_of_examples() {
        let (a, b) = (bits("1101100101"), bits("1001110111"));
        let k = error_consistency(&a, &b).unwrap();
        assert_eq!(k, error_consistency(&b, &a).unwrap());
        let order = [3, 7, 0, 9, 1, 5, 2, 8, 6, 4];
        let (pa, pb): (Vec<bool>, Vec<bool>) = order.iter().map(|&i| (a[i], b[i])).unzip();
        assert!((k - error_consistency(&pa, &pb).unwrap()).abs() < 1e-15);
        let m = error_consistency_matrix(&[a.clone(), b.clone(), a]).unwrap();
        assert_eq!(
            (m.get(0, 1), m.get(1, 0), m.get(0, 2), m.get(1, 1)),
            (k, k, 1.0, 1.0)
        );
    }

    #[test]
    fn undefined_cases_are_errors() {
        assert!(matches!(
            error_consistency(&bits("111"), &bits("111")),
            Err(RepsimError::ChanceAgreementIsOne { .. })
        ));
        // One observer always right: agreement is what chance gives, κ = 0.
        assert_eq!(error_consistency(&bits("111"), &bits("101")).unwrap(), 0.0);
        assert!(matches!(
            error_consistency(&bits("10"), &bits("101")),
            Err(RepsimError::RowsDiffer { .. })
        ));
        assert!(matches!(
            error_consistency(&bits("1"), &bits("0")),
            Err(RepsimError::TooFewExamples { .. })
        ));
    }
}
