//! Centred kernel alignment (Kornblith, Norouzi, Lee & Hinton 2019,
//! "Similarity of Neural Network Representations Revisited"): linear and RBF
//! kernels, biased and debiased HSIC estimators, and the minibatch
//! accumulator of Nguyen, Raghu & Kornblith (2021).

use nalgebra::DMatrix;

use super::error::{RepsimError, Result};
use super::{Matrix, centred, centred_unit, check_matrix, check_pair, frobenius_dot};

/// The default RBF bandwidth as a fraction of the median pairwise distance:
/// 0.5, the value of Kornblith et al.'s reference notebook, so that values
/// are comparable with theirs. Smaller fractions make the kernel more local
/// (dominated by each example's nearest neighbours); larger ones approach
/// linear CKA.
pub const DEFAULT_RBF_THRESHOLD: f64 = 0.5;

/// Whether `‖XᵀY‖²_F, ‖XᵀX‖²_F, ‖YᵀY‖²_F` (feature form, `n(dx·dy + dx² + dy²)`
/// multiply-adds) are cheaper than the two `n×n` Gram matrices (Gram form,
/// `n²(dx + dy)`).
fn feature_form_is_cheaper(n: usize, dx: usize, dy: usize) -> bool {
    dx * dy + dx * dx + dy * dy < n * (dx + dy)
}

/// Linear CKA with the biased HSIC estimator (Kornblith et al. 2019, eq. 2–4):
///
/// ```text
/// K = Xc Xcᵀ,  L = Yc Ycᵀ          (Xc, Yc: columns centred, i.e. H·XXᵀ·H)
/// CKA(X, Y) = ⟨K, L⟩_F / (‖K‖_F ‖L‖_F) = ‖XcᵀYc‖²_F / (‖XcᵀXc‖_F ‖YcᵀYc‖_F)
/// ```
///
/// Computed in whichever of the Gram form (`n×n`) and the feature form
/// (`d×d`) is cheaper. A similarity in [0, 1]; 1 for `Y = c·X·Q + 1bᵀ`.
///
/// # Errors
/// Row counts differ, fewer than 2 examples, non-finite input, or a
/// constant representation (CKA is 0/0 there: an error, where the legacy
/// [`super::linear_cka`] returns 0).
pub fn linear_cka_biased(x: &Matrix, y: &Matrix) -> Result<f64> {
    const METRIC: &str = "linear CKA";
    check_pair(x, y, METRIC, 2)?;
    let xc = centred_unit(x, "X", METRIC)?;
    let yc = centred_unit(y, "Y", METRIC)?;
    let (xy, xx, yy) = if feature_form_is_cheaper(x.rows, x.cols, y.cols) {
        (
            xc.tr_mul(&yc).norm_squared(),
            xc.tr_mul(&xc).norm_squared(),
            yc.tr_mul(&yc).norm_squared(),
        )
    } else {
        let k = &xc * xc.transpose();
        let l = &yc * yc.transpose();
        (frobenius_dot(&k, &l), k.norm_squared(), l.norm_squared())
    };
    Ok((xy / (xx.sqrt() * yy.sqrt())).clamp(0.0, 1.0))
}

/// Székely–Rizzo U-centring of a Gram matrix: zero the diagonal, then
///
/// ```text
/// K̃ᵢⱼ = Kᵢⱼ − rᵢ/(n−2) − cⱼ/(n−2) + S/((n−1)(n−2)),   K̃ᵢᵢ = 0
/// ```
///
/// with `rᵢ`, `cⱼ` the row and column sums and `S` the total of the
/// zero-diagonal `K`. `⟨K̃, L̃⟩_F / (n(n−3))` is the unbiased HSIC estimator of
/// Song et al. (2012). Needs `n ≥ 4`.
pub(crate) fn u_centre(mut k: DMatrix<f64>) -> DMatrix<f64> {
    let n = k.nrows();
    let nf = n as f64;
    k.fill_diagonal(0.0);
    let rows: Vec<f64> = (0..n).map(|i| k.row(i).sum()).collect();
    let cols: Vec<f64> = (0..n).map(|j| k.column(j).sum()).collect();
    let total: f64 = rows.iter().sum();
    let back = total / ((nf - 1.0) * (nf - 2.0));
    for j in 0..n {
        for i in 0..n {
            k[(i, j)] += back - (rows[i] + cols[j]) / (nf - 2.0);
        }
    }
    k.fill_diagonal(0.0);
    k
}

/// Linear CKA with the unbiased HSIC estimator (Song, Smola, Gretton, Bedo &
/// Borgwardt 2012, "Feature Selection via Dependence Maximization", eq. 5;
/// debiased CKA in Kornblith et al. 2019 and Nguyen et al. 2021):
///
/// ```text
/// HSIC₁(K, L) = ⟨K̃, L̃⟩_F / (n(n−3))      (K̃, L̃: U-centred Gram matrices)
/// CKA₁(X, Y) = HSIC₁(K, L) / sqrt(HSIC₁(K, K) · HSIC₁(L, L))
/// ```
///
/// In feature form, with centred `X`, row norms `kᵢ = ‖xᵢ‖²` and
/// `Tₓ = Σ kᵢ`: `n(n−3)·HSIC₁ = ‖XᵀY‖²_F − n/(n−2)·k·l + TₓT_y/((n−1)(n−2))`.
/// The cheaper form is used. The estimate is unbiased for HSIC, so CKA₁ is
/// near 0 for independent representations at any `n`, and can be negative:
/// a similarity in [−1, 1] (Cauchy–Schwarz on `⟨K̃, L̃⟩`).
///
/// # Errors
/// As [`linear_cka_biased`], and fewer than 4 examples (the `n−3` factor);
/// [`RepsimError::DegenerateHsic`] when a non-constant representation still
/// has zero self-HSIC.
pub fn linear_cka_debiased(x: &Matrix, y: &Matrix) -> Result<f64> {
    const METRIC: &str = "debiased linear CKA";
    check_pair(x, y, METRIC, 4)?;
    let xc = centred_unit(x, "X", METRIC)?;
    let yc = centred_unit(y, "Y", METRIC)?;
    let n = x.rows as f64;
    let (xy, xx, yy, scale_x, scale_y) = if feature_form_is_cheaper(x.rows, x.cols, y.cols) {
        let row_norms =
            |m: &DMatrix<f64>| -> Vec<f64> { m.row_iter().map(|r| r.norm_squared()).collect() };
        let (kx, ky) = (row_norms(&xc), row_norms(&yc));
        let (tx, ty): (f64, f64) = (kx.iter().sum(), ky.iter().sum());
        let dot = |a: &[f64], b: &[f64]| -> f64 { a.iter().zip(b).map(|(p, q)| p * q).sum() };
        let debias = |cross: f64, a: &[f64], b: &[f64], ta: f64, tb: f64| {
            cross - n / (n - 2.0) * dot(a, b) + ta * tb / ((n - 1.0) * (n - 2.0))
        };
        let (sxx, syy) = (xc.tr_mul(&xc).norm_squared(), yc.tr_mul(&yc).norm_squared());
        (
            debias(xc.tr_mul(&yc).norm_squared(), &kx, &ky, tx, ty),
            debias(sxx, &kx, &kx, tx, tx),
            debias(syy, &ky, &ky, ty, ty),
            sxx,
            syy,
        )
    } else {
        let k = &xc * xc.transpose();
        let l = &yc * yc.transpose();
        let (sxx, syy) = (k.norm_squared(), l.norm_squared());
        let (k, l) = (u_centre(k), u_centre(l));
        (
            frobenius_dot(&k, &l),
            k.norm_squared(),
            l.norm_squared(),
            sxx,
            syy,
        )
    };
    // The self terms are squared norms of U-centred matrices: ≥ 0, and 0 only
    // for degenerate inputs (rounding aside, hence the relative floor).
    if xx <= 1e-12 * scale_x {
        return Err(RepsimError::DegenerateHsic { matrix: "X" });
    }
    if yy <= 1e-12 * scale_y {
        return Err(RepsimError::DegenerateHsic { matrix: "Y" });
    }
    Ok((xy / (xx.sqrt() * yy.sqrt())).clamp(-1.0, 1.0))
}

/// The RBF Gram matrix `Kᵢⱼ = exp(−‖xᵢ − xⱼ‖² / (2σ²))` with
/// `σ = threshold · median_{i<j} ‖xᵢ − xⱼ‖`.
fn rbf_gram(
    m: &Matrix,
    threshold: f64,
    name: &'static str,
    metric: &'static str,
) -> Result<DMatrix<f64>> {
    // Distances are translation invariant and σ scales with them: centring and
    // scaling first only keeps them representable.
    let c = centred_unit(m, name, metric)?;
    let d2 = super::squared_distances_of_rows(&c);
    let n = m.rows;
    let mut distances: Vec<f64> = (0..n)
        .flat_map(|j| (0..j).map(move |i| (i, j)))
        .map(|(i, j)| d2[(i, j)].sqrt())
        .collect();
    distances.sort_by(f64::total_cmp);
    let half = distances.len() / 2;
    let median = if distances.len() % 2 == 1 {
        distances[half]
    } else {
        0.5 * (distances[half - 1] + distances[half])
    };
    if median == 0.0 {
        return Err(RepsimError::ZeroBandwidth { matrix: name });
    }
    let sigma = threshold * median;
    let scale = -1.0 / (2.0 * sigma * sigma);
    Ok(d2.map(|v| (v * scale).exp()))
}

/// Double centring `H K H` by row, column and total means (no `H` is formed).
fn double_centre(k: &DMatrix<f64>) -> DMatrix<f64> {
    let n = k.nrows();
    let nf = n as f64;
    let rows: Vec<f64> = (0..n).map(|i| k.row(i).sum() / nf).collect();
    let cols: Vec<f64> = (0..n).map(|j| k.column(j).sum() / nf).collect();
    let total = rows.iter().sum::<f64>() / nf;
    DMatrix::from_fn(n, n, |i, j| k[(i, j)] - rows[i] - cols[j] + total)
}

fn check_threshold(threshold: f64) -> Result<()> {
    if threshold.is_finite() && threshold > 0.0 {
        Ok(())
    } else {
        Err(RepsimError::InvalidParameter {
            name: "threshold",
            value: threshold,
            expected: "a finite fraction > 0 of the median distance (default 0.5)",
        })
    }
}

/// RBF CKA with the biased HSIC estimator (Kornblith et al. 2019, §3 and
/// their notebook's `gram_rbf`):
///
/// ```text
/// Kᵢⱼ = exp(−‖xᵢ − xⱼ‖² / (2σₓ²)),  σₓ = threshold · median_{i<j} ‖xᵢ − xⱼ‖
/// CKA = ⟨HKH, HLH⟩_F / (‖HKH‖_F ‖HLH‖_F)
/// ```
///
/// The median runs over the `n(n−1)/2` distinct pairs (the notebook takes the
/// median of all `n²` entries, zero diagonal included, so its σ is a little
/// smaller). Default threshold: [`DEFAULT_RBF_THRESHOLD`]. A similarity in
/// [0, 1]; invariant to rotation, isotropic scaling and translation, because
/// σ scales with the distances.
///
/// # Errors
/// As [`linear_cka_biased`]; [`RepsimError::ZeroBandwidth`] when more than
/// half the pairs of examples coincide; an invalid threshold.
pub fn rbf_cka(x: &Matrix, y: &Matrix, threshold: f64) -> Result<f64> {
    const METRIC: &str = "RBF CKA";
    check_pair(x, y, METRIC, 2)?;
    check_threshold(threshold)?;
    let k = double_centre(&rbf_gram(x, threshold, "X", METRIC)?);
    let l = double_centre(&rbf_gram(y, threshold, "Y", METRIC)?);
    // Centred RBF Grams are zero only when every example coincides, which the
    // bandwidth check has already refused.
    let value = frobenius_dot(&k, &l) / (k.norm() * l.norm());
    Ok(value.clamp(0.0, 1.0))
}

/// RBF CKA with the unbiased HSIC estimator: the Gram matrices of
/// [`rbf_cka`], U-centred as in [`linear_cka_debiased`]. A similarity in
/// [−1, 1].
///
/// # Errors
/// As [`rbf_cka`], and fewer than 4 examples.
pub fn rbf_cka_debiased(x: &Matrix, y: &Matrix, threshold: f64) -> Result<f64> {
    const METRIC: &str = "debiased RBF CKA";
    check_pair(x, y, METRIC, 4)?;
    check_threshold(threshold)?;
    let k = u_centre(rbf_gram(x, threshold, "X", METRIC)?);
    let l = u_centre(rbf_gram(y, threshold, "Y", METRIC)?);
    let (xx, yy) = (k.norm_squared(), l.norm_squared());
    if xx <= 1e-12 * x.rows as f64 {
        return Err(RepsimError::DegenerateHsic { matrix: "X" });
    }
    if yy <= 1e-12 * y.rows as f64 {
        return Err(RepsimError::DegenerateHsic { matrix: "Y" });
    }
    Ok((frobenius_dot(&k, &l) / (xx.sqrt() * yy.sqrt())).clamp(-1.0, 1.0))
}

/// Minibatch linear CKA (Nguyen, Raghu & Kornblith 2021, "Do Wide and Deep
/// Networks Learn the Same Things?", §3.1), for every pair of layers of two
/// networks at once:
///
/// ```text
/// CKA_mb(Xᵢ, Yⱼ) = mean_b HSIC₁(Kᵢᵇ, Lⱼᵇ) / sqrt(mean_b HSIC₁(Kᵢᵇ, Kᵢᵇ) · mean_b HSIC₁(Lⱼᵇ, Lⱼᵇ))
/// ```
///
/// with `HSIC₁` the unbiased estimator of [`linear_cka_debiased`] on batch
/// `b`. It is a ratio of means over batches, not a mean of per-batch CKA
/// values; the memory is `O((Lx + Ly)·n²)` per batch whatever the width, and
/// the value does not depend on the batch order. Batches may differ in size.
///
/// ```
/// use untrainable_repsim::host::{Matrix, MinibatchCka};
/// let layer = |b: usize, w: usize| Matrix::from_fn(8, w, |i, j| ((b * 8 + i) as f64 * (j + 1) as f64).sin());
/// let mut acc = MinibatchCka::new(2, 1);
/// for b in 0..3 {
///     acc.update(&[layer(b, 3), layer(b, 5)], &[layer(b, 4)]).unwrap();
/// }
/// let cka = acc.cka().unwrap(); // 2 × 1
/// assert_eq!((cka.rows, cka.cols), (2, 1));
/// ```
#[derive(Debug, Clone)]
pub struct MinibatchCka {
    layers_x: usize,
    layers_y: usize,
    /// Σ_b HSIC₁(Kᵢ, Lⱼ), row-major `layers_x × layers_y`.
    sum_xy: Vec<f64>,
    sum_xx: Vec<f64>,
    sum_yy: Vec<f64>,
    batches: usize,
}

impl MinibatchCka {
    /// An empty accumulator for `layers_x` layers of one network against
    /// `layers_y` of the other.
    pub fn new(layers_x: usize, layers_y: usize) -> Self {
        Self {
            layers_x,
            layers_y,
            sum_xy: vec![0.0; layers_x * layers_y],
            sum_xx: vec![0.0; layers_x],
            sum_yy: vec![0.0; layers_y],
            batches: 0,
        }
    }

    /// Adds one batch: `xs[i]` is layer `i` of the first network and `ys[j]`
    /// layer `j` of the second, all on the same `n ≥ 4` examples. On error
    /// the accumulator is unchanged. A layer that is constant on this batch
    /// adds 0.
    pub fn update(&mut self, xs: &[Matrix], ys: &[Matrix]) -> Result<()> {
        const METRIC: &str = "minibatch CKA";
        if xs.len() != self.layers_x {
            return Err(RepsimError::LayerCount {
                side: "X",
                expected: self.layers_x,
                got: xs.len(),
            });
        }
        if ys.len() != self.layers_y {
            return Err(RepsimError::LayerCount {
                side: "Y",
                expected: self.layers_y,
                got: ys.len(),
            });
        }
        let Some(n) = xs.iter().chain(ys).map(|m| m.rows).next() else {
            self.batches += 1;
            return Ok(());
        };
        let grams = |side: &'static str, layers: &[Matrix]| -> Result<Vec<DMatrix<f64>>> {
            layers
                .iter()
                .enumerate()
                .map(|(layer, m)| {
                    let wrap = |e: RepsimError| RepsimError::Layer {
                        side,
                        layer,
                        source: Box::new(e),
                    };
                    check_matrix(m, side).map_err(wrap)?;
                    if m.rows != n {
                        return Err(wrap(RepsimError::RowsDiffer {
                            x_rows: n,
                            y_rows: m.rows,
                        }));
                    }
                    if n < 4 {
                        return Err(RepsimError::TooFewExamples {
                            metric: METRIC,
                            n,
                            min: 4,
                        });
                    }
                    Ok(match centred(m, side, METRIC) {
                        Ok(c) => u_centre(&c * c.transpose()),
                        Err(RepsimError::ConstantRepresentation { .. }) => DMatrix::zeros(n, n),
                        Err(e) => return Err(wrap(e)),
                    })
                })
                .collect()
        };
        let ks = grams("X", xs)?;
        let ls = grams("Y", ys)?;
        let norm = (n * (n - 3)) as f64;
        let hsic = |a: &DMatrix<f64>, b: &DMatrix<f64>| frobenius_dot(a, b) / norm;
        for (i, k) in ks.iter().enumerate() {
            self.sum_xx[i] += hsic(k, k);
            for (j, l) in ls.iter().enumerate() {
                self.sum_xy[i * self.layers_y + j] += hsic(k, l);
            }
        }
        for (j, l) in ls.iter().enumerate() {
            self.sum_yy[j] += hsic(l, l);
        }
        self.batches += 1;
        Ok(())
    }

    /// The number of batches accumulated.
    pub fn batches(&self) -> usize {
        self.batches
    }

    fn mean(&self, sums: &[f64]) -> Result<Vec<f64>> {
        if self.batches == 0 {
            return Err(RepsimError::NoBatches);
        }
        Ok(sums.iter().map(|s| s / self.batches as f64).collect())
    }

    /// `mean_b HSIC₁(Kᵢ, Lⱼ)`, `layers_x × layers_y`.
    pub fn mean_hsic_xy(&self) -> Result<Matrix> {
        Ok(Matrix::new(
            self.layers_x,
            self.layers_y,
            self.mean(&self.sum_xy)?,
        ))
    }

    /// `mean_b HSIC₁(Kᵢ, Kᵢ)` for each layer of the first network.
    pub fn mean_hsic_xx(&self) -> Result<Vec<f64>> {
        self.mean(&self.sum_xx)
    }

    /// `mean_b HSIC₁(Lⱼ, Lⱼ)` for each layer of the second network.
    pub fn mean_hsic_yy(&self) -> Result<Vec<f64>> {
        self.mean(&self.sum_yy)
    }

    /// The `layers_x × layers_y` minibatch CKA matrix, each entry in [−1, 1].
    ///
    /// # Errors
    /// [`RepsimError::NoBatches`]; a layer whose accumulated self-HSIC is not
    /// positive (constant on every batch) as [`RepsimError::Layer`] around
    /// [`RepsimError::DegenerateHsic`].
    pub fn cka(&self) -> Result<Matrix> {
        if self.batches == 0 {
            return Err(RepsimError::NoBatches);
        }
        let degenerate = |side: &'static str, layer: usize| RepsimError::Layer {
            side,
            layer,
            source: Box::new(RepsimError::DegenerateHsic { matrix: side }),
        };
        if let Some(i) = self.sum_xx.iter().position(|v| *v <= 0.0) {
            return Err(degenerate("X", i));
        }
        if let Some(j) = self.sum_yy.iter().position(|v| *v <= 0.0) {
            return Err(degenerate("Y", j));
        }
        Ok(Matrix::from_fn(self.layers_x, self.layers_y, |i, j| {
            let v = self.sum_xy[i * self.layers_y + j]
                / (self.sum_xx[i].sqrt() * self.sum_yy[j].sqrt());
            v.clamp(-1.0, 1.0)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rows: usize, cols: usize, seed: f64) -> Matrix {
        Matrix::from_fn(rows, cols, |i, j| {
            ((i + 1) as f64 * (0.37 + seed) * (j + 2) as f64).sin()
                + 0.3 * ((i * j) as f64 + seed).cos()
        })
    }

    /// Both forms of both estimators agree; the shapes below take each branch.
    #[test]
    fn gram_form_equals_feature_form() {
        for (n, dx, dy) in [(30, 3, 4), (6, 20, 25), (12, 2, 30)] {
            let x = sample(n, dx, 0.1);
            let y = sample(n, dy, 0.7);
            let xc = centred_unit(&x, "X", "t").unwrap();
            let yc = centred_unit(&y, "Y", "t").unwrap();
            let k = &xc * xc.transpose();
            let l = &yc * yc.transpose();
            let biased_gram = frobenius_dot(&k, &l) / (k.norm() * l.norm());
            let biased_feature =
                xc.tr_mul(&yc).norm_squared() / (xc.tr_mul(&xc).norm() * yc.tr_mul(&yc).norm());
            assert!((biased_gram - biased_feature).abs() < 1e-12);
            assert!((linear_cka_biased(&x, &y).unwrap() - biased_gram).abs() < 1e-12);
            let (ku, lu) = (u_centre(k), u_centre(l));
            let debiased_gram = frobenius_dot(&ku, &lu) / (ku.norm() * lu.norm());
            assert!(
                (linear_cka_debiased(&x, &y).unwrap() - debiased_gram).abs() < 1e-12,
                "{n} {dx} {dy}"
            );
        }
    }

    /// The U-centred matrix has a zero diagonal and zero row and column sums.
    #[test]
    fn u_centring_zeroes_the_diagonal_and_the_sums() {
        let x = sample(9, 4, 0.3);
        let k = u_centre(x.to_dmatrix() * x.to_dmatrix().transpose());
        for i in 0..9 {
            assert_eq!(k[(i, i)], 0.0);
            assert!(k.row(i).sum().abs() < 1e-12);
            assert!(k.column(i).sum().abs() < 1e-12);
        }
    }
}
