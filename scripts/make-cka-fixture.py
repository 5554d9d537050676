#!/usr/bin/env python3
"""Writes crates/repsim/tests/fixtures/linear_cka.toml: linear CKA values
computed independently of the Rust code, in pure Python (no numpy), with the
textbook estimator of Kornblith et al. (2019):

    HSIC(K, L) = trace(K H L H),  H = I - 11^T / n,  K = X X^T,  L = Y Y^T
    CKA = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))

i.e. with an explicit dense centring matrix, where the Rust code centres
columns. Inputs come from Python's own Mersenne Twister, so the fixture
stores them too.

Run: python3 scripts/make-cka-fixture.py
"""
import os
import random


def matmul(a, b):
    bt = list(zip(*b))
    return [[sum(x * y for x, y in zip(row, col)) for col in bt] for row in a]


def transpose(a):
    return [list(r) for r in zip(*a)]


def hsic(k, l):
    n = len(k)
    h = [[(1.0 if i == j else 0.0) - 1.0 / n for j in range(n)] for i in range(n)]
    khlh = matmul(matmul(matmul(k, h), l), h)
    return sum(khlh[i][i] for i in range(n))


def cka(x, y):
    k = matmul(x, transpose(x))
    l = matmul(y, transpose(y))
    return hsic(k, l) / (hsic(k, k) * hsic(l, l)) ** 0.5


def case(rng, n, p, q, mix):
    x = [[rng.gauss(0.0, 1.0) for _ in range(p)] for _ in range(n)]
    # y shares a random linear image of x plus noise, so CKA is away from 0 and 1.
    w = [[rng.gauss(0.0, 1.0) for _ in range(q)] for _ in range(p)]
    xw = matmul(x, w)
    y = [[mix * xw[i][j] + rng.gauss(0.0, 1.0) + 3.0 for j in range(q)] for i in range(n)]
    return x, y


def fmt(m):
    return "[" + ", ".join(repr(v) for row in m for v in row) + "]"


def main():
    rng = random.Random(20251128)
    out = ["# Linear CKA fixtures made by scripts/make-cka-fixture.py (pure Python,",
           "# dense H K H L trace estimator). Matrices are row-major, one row per example.", ""]
    for n, p, q, mix in [(12, 5, 7, 0.5), (20, 30, 3, 0.2), (8, 2, 2, 1.0), (16, 10, 10, 0.0)]:
        x, y = case(rng, n, p, q, mix)
        out += ["[[case]]", f"n = {n}", f"p = {p}", f"q = {q}",
                f"x = {fmt(x)}", f"y = {fmt(y)}", f"cka = {cka(x, y)!r}", ""]
    path = os.path.join(os.path.dirname(__file__), "..", "crates", "repsim", "tests", "fixtures", "linear_cka.toml")
    with open(path, "w") as f:
        f.write("\n".join(out))
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
