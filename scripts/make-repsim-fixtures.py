#!/usr/bin/env python3
"""Writes crates/repsim/tests/fixtures/repsim.toml: known values of every f64
similarity metric in `untrainable_repsim::host`, computed here with numpy from
the published formulas, by routes chosen to differ from the Rust code:

* CKA (Kornblith et al. 2019): biased HSIC as trace(K H L H) with a dense
  centring matrix H; debiased HSIC by the closed form of Song et al. (2012,
  eq. 5) where Rust uses Szekely-Rizzo U-centring of the Gram matrices.
* RBF CKA: K_ij = exp(-|x_i - x_j|^2 / (2 s^2)), s = 0.5 * median of the
  pairwise distances over pairs i < j.
* Minibatch CKA (Nguyen et al. 2021): sums of per-batch unbiased HSIC (Song
  form), CKA = sum HSIC(K, L) / sqrt(sum HSIC(K, K) * sum HSIC(L, L)).
* RSA: correlation RDM by np.corrcoef over examples, euclidean RDM by
  broadcasting; upper triangles compared by Pearson (np.corrcoef) and by
  Spearman with tied values given their average rank, counted pairwise.
* Orthogonal Procrustes (Ding et al. 2021): centre, unit Frobenius norm,
  d = sqrt(2 - 2 |X^T Y|_*), angular = arccos(|X^T Y|_*), nuclear norm by
  np.linalg.norm(., 'nuc').
* CCA by the covariance route: singular values of
  Sxx^{-1/2} Sxy Syy^{-1/2} (inverse square roots by eigh), where Rust uses
  orthonormal bases from SVDs. R2_CCA = mean of rho^2 (Kornblith et al.
  2019), SVCCA = mean rho after keeping the top singular directions that
  explain 99% of the variance (Raghu et al. 2017), PWCCA = sum a_i rho_i /
  sum a_i with a_i = sum_j |<h_i, x_j>| over the centred neurons x_j of the
  first argument and its unit canonical variates h_i (Morcos et al. 2018).
* Ridge: R^2 of predicting Yc from Xc with B = (Xc^T Xc + l' I)^{-1} Xc^T Yc,
  l' = lambda * |Xc|_F^2 / min(n, dx), in feature form only.
* Mutual k-NN (Huh et al. 2024): cosine neighbours, self excluded, ties
  broken by the lower index; mean over examples of |N_X(i) & N_Y(i)| / k.

Inputs come from closed formulas in sin/cos of the indices (see `case_*`);
the fixture stores the matrices too, row-major, one row per example.

Run from anywhere, with any python3 >= 3.9:

    python3 scripts/make-repsim-fixtures.py

On first use it creates the virtual environment /tmp/repsim-fixtures-venv,
pip-installs numpy (>= 2, < 3) into it, and re-runs itself with that
interpreter; the numpy version used is written into the fixture header.
"""
import os
import subprocess
import sys

VENV = "/tmp/repsim-fixtures-venv"
NUMPY_REQUIREMENT = "numpy>=2,<3"
COMMAND = "python3 scripts/make-repsim-fixtures.py"


def ensure_numpy():
    try:
        import numpy  # noqa: F401
        return
    except ImportError:
        pass
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        sys.exit("numpy is still missing inside " + VENV)
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    subprocess.check_call([python, "-m", "pip", "install", "--quiet", NUMPY_REQUIREMENT])
    os.execv(python, [python] + sys.argv)


ensure_numpy()
import numpy as np  # noqa: E402

RBF_THRESHOLD = 0.5
RIDGE_LAMBDA = 0.1
SVCCA_VARIANCE = 0.99


# ---------------------------------------------------------------- CKA

def centring_matrix(n):
    return np.eye(n) - np.ones((n, n)) / n


def hsic_biased(k, l):
    h = centring_matrix(k.shape[0])
    return np.trace(k @ h @ l @ h)


def hsic_unbiased(k, l):
    """Song et al. (2012), eq. 5."""
    n = k.shape[0]
    kt = k - np.diag(np.diag(k))
    lt = l - np.diag(np.diag(l))
    one = np.ones(n)
    value = (np.trace(kt @ lt)
             + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
             - 2.0 / (n - 2) * (one @ kt @ lt @ one))
    return value / (n * (n - 3))


def cka_from(k, l, hsic):
    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def linear_gram(x):
    return x @ x.T


def pair_distances(x):
    diff = x[:, None, :] - x[None, :, :]
    return np.sqrt(np.sum(diff ** 2, axis=2))


def rbf_gram(x, threshold):
    d = pair_distances(x)
    iu = np.triu_indices(x.shape[0], 1)
    sigma = threshold * np.median(d[iu])
    return np.exp(-d ** 2 / (2.0 * sigma ** 2))


def minibatch_cka(layers_x, layers_y, batches):
    """layers_*: lists of full matrices; batches: lists of row indices."""
    sxy = np.zeros((len(layers_x), len(layers_y)))
    sxx = np.zeros(len(layers_x))
    syy = np.zeros(len(layers_y))
    for rows in batches:
        ks = [linear_gram(a[rows]) for a in layers_x]
        ls = [linear_gram(b[rows]) for b in layers_y]
        for i, k in enumerate(ks):
            sxx[i] += hsic_unbiased(k, k)
            for j, l in enumerate(ls):
                sxy[i, j] += hsic_unbiased(k, l)
        for j, l in enumerate(ls):
            syy[j] += hsic_unbiased(l, l)
    return sxy / np.sqrt(np.outer(sxx, syy))


# ---------------------------------------------------------------- RSA

def rdm_correlation(x):
    return 1.0 - np.corrcoef(x)


def rdm_euclidean(x):
    return pair_distances(x)


def upper(m):
    return m[np.triu_indices(m.shape[0], 1)]


def pearson(a, b):
    return np.corrcoef(a, b)[0, 1]


def average_ranks(v):
    """1-based ranks; tied values share the mean of the ranks they span."""
    below = (v[None, :] < v[:, None]).sum(axis=1)
    equal = (v[None, :] == v[:, None]).sum(axis=1)
    return below + (equal + 1) / 2.0


def spearman(a, b):
    return pearson(average_ranks(a), average_ranks(b))


# ---------------------------------------------------------------- Procrustes

def unit(x):
    xc = x - x.mean(axis=0)
    return xc / np.linalg.norm(xc)


def nuclear(x, y):
    return np.linalg.norm(unit(x).T @ unit(y), "nuc")


# ---------------------------------------------------------------- CCA

def inv_sqrt(s):
    w, v = np.linalg.eigh(s)
    return v @ np.diag(w ** -0.5) @ v.T


def cca(x, y):
    """Canonical correlations (descending), the first argument's unit
    canonical variates (columns) and its centred data."""
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    sxx_is = inv_sqrt(xc.T @ xc)
    syy_is = inv_sqrt(yc.T @ yc)
    t = sxx_is @ (xc.T @ yc) @ syy_is
    p, rho, _ = np.linalg.svd(t, full_matrices=False)
    m = min(x.shape[1], y.shape[1])
    variates = xc @ sxx_is @ p[:, :m]
    return rho[:m], variates, xc


def cca_r2(x, y):
    rho, _, _ = cca(x, y)
    return np.mean(rho ** 2)


def svd_reduce(x, kept):
    xc = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    share = np.cumsum(s ** 2) / np.sum(s ** 2)
    k = int(np.searchsorted(share, kept) + 1)
    return u[:, :k] * s[:k]


def svcca(x, y, kept):
    rho, _, _ = cca(svd_reduce(x, kept), svd_reduce(y, kept))
    return np.mean(rho)


def pwcca(x, y):
    rho, h, xc = cca(x, y)
    alpha = np.abs(h.T @ xc).sum(axis=1)
    return np.sum(alpha * rho) / np.sum(alpha)


# ---------------------------------------------------------------- ridge, kNN

def ridge_r2(x, y, lam):
    xc = x - x.mean(axis=0)
    yc = y - y.mean(axis=0)
    n, d = xc.shape
    scaled = lam * np.sum(xc ** 2) / min(n, d)
    b = np.linalg.solve(xc.T @ xc + scaled * np.eye(d), xc.T @ yc)
    return 1.0 - np.sum((yc - xc @ b) ** 2) / np.sum(yc ** 2)


def neighbours(x, k):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    n = x.shape[0]
    out = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        order = sorted(others, key=lambda j: (-s[i, j], j))
        out.append(set(order[:k]))
    return out


def mutual_knn(x, y, k):
    nx, ny = neighbours(x, k), neighbours(y, k)
    return np.mean([len(a & b) / k for a, b in zip(nx, ny)])


# ---------------------------------------------------------------- cases

def case_tall():
    n, dx, dy = 16, 5, 4
    i = np.arange(n)[:, None]
    j = np.arange(dx)[None, :]
    x = (np.sin(0.7 * (i + 1) * (j + 1) + 0.3 * j) + 0.2 * np.cos(1.1 * i - 0.4 * j * j)) * 0.6 ** j
    w = np.cos(np.arange(dx)[:, None] + 2.0 * np.arange(dy)[None, :])
    jy = np.arange(dy)[None, :]
    y = x @ w + 0.3 * np.cos(1.3 * i * (jy + 1) + 0.7 * jy * jy) + 2.0
    return "tall", x, y


def case_narrow_wide():
    n, dx, dy = 12, 3, 7
    i = np.arange(n)[:, None]
    j = np.arange(dx)[None, :]
    x = np.cos(0.45 * (i + 2) * (j + 1)) + 0.5 * np.sin(0.9 * i + j)
    jy = np.arange(dy)[None, :]
    y = (np.sin(0.3 * (i + 1) * (jy + 1)) * (1.0 + 0.5 * np.cos(x[:, [0]] * (jy + 1)))
         + 0.25 * np.cos(2.1 * i * (jy + 1) + 0.5)) * 0.8 ** jy
    return "narrow-wide", x, y


def case_wide():
    n, dx, dy = 8, 20, 3
    i = np.arange(n)[:, None]
    j = np.arange(dx)[None, :]
    x = np.sin(0.37 * (i + 1) * (j + 3)) + 0.3 * np.cos(0.11 * i * j + 1.0)
    jy = np.arange(dy)[None, :]
    y = np.cos(0.8 * (i + 1) + 1.7 * jy) + 0.4 * np.sin(x[:, [1]] + x[:, [2]] * (jy + 1))
    return "wide", x, y


def case_ties():
    # Small integers: many euclidean distances tie exactly.
    n, dx, dy = 10, 3, 2
    i = np.arange(n)[:, None]
    j = np.arange(dx)[None, :]
    x = np.round(2.0 * np.sin(1.3 * (i + 1) * (j + 1) + 0.5 * j))
    jy = np.arange(dy)[None, :]
    y = np.round(2.0 * np.cos(0.9 * (i + 1) * (jy + 1)))
    return "ties", x, y


def values(name, x, y):
    n, dx, dy = x.shape[0], x.shape[1], y.shape[1]
    full_rank = n > max(dx, dy)
    v = {}
    v["linear_cka"] = cka_from(linear_gram(x), linear_gram(y), hsic_biased)
    v["linear_cka_debiased"] = cka_from(linear_gram(x), linear_gram(y), hsic_unbiased)
    v["rbf_cka"] = cka_from(rbf_gram(x, RBF_THRESHOLD), rbf_gram(y, RBF_THRESHOLD), hsic_biased)
    v["rbf_cka_debiased"] = cka_from(rbf_gram(x, RBF_THRESHOLD), rbf_gram(y, RBF_THRESHOLD), hsic_unbiased)
    for rdm_name, rdm in [("correlation", rdm_correlation), ("euclidean", rdm_euclidean)]:
        if name == "ties" and rdm_name == "correlation":
            continue  # correlation RDMs of integer data tie only up to rounding
        a, b = upper(rdm(x)), upper(rdm(y))
        v[f"rsa_{rdm_name}_pearson"] = pearson(a, b)
        v[f"rsa_{rdm_name}_spearman"] = spearman(a, b)
    nuc = nuclear(x, y)
    v["procrustes_distance"] = np.sqrt(max(0.0, 2.0 - 2.0 * nuc))
    v["angular_procrustes_distance"] = np.arccos(min(1.0, nuc))
    if full_rank:
        v["cca_similarity"] = cca_r2(x, y)
        v["pwcca_similarity"] = pwcca(x, y)
        v["pwcca_similarity_reversed"] = pwcca(y, x)
    v["svcca_similarity"] = svcca(x, y, SVCCA_VARIANCE)
    v["ridge_similarity"] = ridge_r2(x, y, RIDGE_LAMBDA)
    v["ridge_similarity_reversed"] = ridge_r2(y, x, RIDGE_LAMBDA)
    if name != "ties":
        v["mutual_knn_similarity"] = mutual_knn(x, y, 3)
    # Minibatch: layers [x, tanh(x)] against [y, y^2], two batches of rows.
    if n >= 8:
        half = n // 2
        batches = [list(range(half)), list(range(half, n))]
        m = minibatch_cka([x, np.tanh(x)], [y, y ** 2], batches)
        v["minibatch_cka"] = [float(t) for t in m.reshape(-1)]
    return v


def fmt_matrix(m):
    return "[" + ", ".join(repr(float(t)) for t in m.reshape(-1)) + "]"


def main():
    out = [
        "# Known values for the f64 metrics of untrainable_repsim::host.",
        f"# Made by `{COMMAND}` (numpy {np.__version__}, in the virtual",
        f"# environment {VENV} that the script creates); see the script for the",
        "# formulas. Matrices are row-major, one row per example.",
        f"# Parameters: rbf threshold {RBF_THRESHOLD}, ridge lambda {RIDGE_LAMBDA} (scaled),",
        f"# svcca variance kept {SVCCA_VARIANCE}, mutual k-NN k = 3; minibatch_cka is the",
        "# 2x2 matrix (row-major) of layers [x, tanh(x)] against [y, y^2] over two",
        "# batches, the first and the second half of the rows.",
        "",
        f"rbf_threshold = {RBF_THRESHOLD!r}",
        f"ridge_lambda = {RIDGE_LAMBDA!r}",
        f"svcca_variance = {SVCCA_VARIANCE!r}",
        "knn_k = 3",
        "",
    ]
    for make in [case_tall, case_narrow_wide, case_wide, case_ties]:
        name, x, y = make()
        out += ["[[case]]", f'name = "{name}"', f"n = {x.shape[0]}", f"dx = {x.shape[1]}",
                f"dy = {y.shape[1]}", f"x = {fmt_matrix(x)}", f"y = {fmt_matrix(y)}"]
        for key, value in values(name, x, y).items():
            if isinstance(value, list):
                out.append(f"{key} = [" + ", ".join(repr(t) for t in value) + "]")
            else:
                out.append(f"{key} = {float(value)!r}")
        out.append("")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "repsim",
                        "tests", "fixtures", "repsim.toml")
    with open(path, "w") as f:
        f.write("\n".join(out))
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
