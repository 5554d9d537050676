//! `f64` reference forms for analysis: no autodiff, no backend.

/// A dense row-major matrix: one row per example.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Matrix {
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "a {rows}×{cols} matrix needs {} values, got {}",
            rows * cols,
            data.len()
        );
        Self { rows, cols, data }
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    fn centred(&self) -> Matrix {
        let mut means = vec![0.0; self.cols];
        for i in 0..self.rows {
            for (m, v) in means.iter_mut().zip(self.row(i)) {
                *m += v;
            }
        }
        means.iter_mut().for_each(|m| *m /= self.rows as f64);
        let data = (0..self.rows)
            .flat_map(|i| self.row(i).iter().zip(&means).map(|(v, m)| v - m))
            .collect();
        Matrix::new(self.rows, self.cols, data)
    }

    /// The linear Gram matrix `X Xᵀ`.
    pub fn gram(&self) -> Matrix {
        let n = self.rows;
        let mut g = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v: f64 = self.row(i).iter().zip(self.row(j)).map(|(a, b)| a * b).sum();
                g[i * n + j] = v;
                g[j * n + i] = v;
            }
        }
        Matrix::new(n, n, g)
    }
}

/// Linear CKA, biased estimator, in `f64` (see the crate docs for the formula).
/// Returns 0 when either representation is constant across examples.
pub fn linear_cka(x: &Matrix, y: &Matrix) -> f64 {
    assert_eq!(x.rows, y.rows, "CKA compares the same examples");
    let k = x.centred().gram();
    let l = y.centred().gram();
    let dot = |a: &Matrix, b: &Matrix| -> f64 { a.data.iter().zip(&b.data).map(|(p, q)| p * q).sum() };
    let kl = dot(&k, &l);
    let denom = (dot(&k, &k) * dot(&l, &l)).sqrt();
    if denom == 0.0 { 0.0 } else { kl / denom }
}
