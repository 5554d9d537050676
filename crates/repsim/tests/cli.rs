//! The `repsim` binary end to end: .npy files written byte by byte and
//! parquet files written with polars, values checked against the `host`
//! functions called directly, and every error path checked for exit code 2
//! and a message that names the file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use polars::prelude::{Column, DataFrame, ParquetWriter};
use serde_json::Value;
use untrainable_repsim::host::{self, Matrix};

// ------------------------------------------------------------------ helpers

fn repsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_repsim"))
        .args(args)
        .output()
        .expect("the repsim binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a command that must succeed and parses its JSON.
fn json(args: &[&str]) -> Value {
    let o = repsim(args);
    assert!(o.status.success(), "repsim {args:?} failed: {}", stderr(&o));
    serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("repsim {args:?} printed invalid JSON ({e}): {}", stdout(&o)))
}

fn value(args: &[&str]) -> f64 {
    json(args)["value"].as_f64().expect("a numeric value")
}

/// Runs a command that must fail with exit code 2, naming `file` on stderr.
fn fails_naming(args: &[&str], file: &Path, also: &[&str]) -> String {
    let o = repsim(args);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "repsim {args:?}: stdout {} stderr {err}",
        stdout(&o)
    );
    assert!(!err.contains("panicked"), "repsim {args:?} panicked: {err}");
    let name = file.to_string_lossy();
    assert!(
        err.contains(name.as_ref()),
        "the message should name {name}: {err}"
    );
    for word in also {
        assert!(
            err.contains(word),
            "the message should mention {word:?}: {err}"
        );
    }
    err
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// A deterministic n×d matrix with no structure.
fn noise(n: usize, d: usize, seed: u64) -> Matrix {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    Matrix::from_fn(n, d, |_, _| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    })
}

fn matmul(a: &Matrix, b: &Matrix) -> Matrix {
    assert_eq!(a.cols, b.rows);
    Matrix::from_fn(a.rows, b.cols, |i, j| {
        (0..a.cols).map(|k| a.get(i, k) * b.get(k, j)).sum()
    })
}

/// A 4×4 orthogonal matrix: two plane rotations and a column permutation
/// with a sign flip.
fn orthogonal4() -> Matrix {
    let (c1, s1) = (0.7f64.cos(), 0.7f64.sin());
    let (c2, s2) = (2.1f64.cos(), 2.1f64.sin());
    let r = Matrix::new(
        4,
        4,
        vec![
            c1, -s1, 0.0, 0.0, s1, c1, 0.0, 0.0, 0.0, 0.0, c2, -s2, 0.0, 0.0, s2, c2,
        ],
    );
    let p = Matrix::new(
        4,
        4,
        vec![
            0.0, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0,
        ],
    );
    matmul(&r, &p)
}

/// A complete `.npy` file: magic, version, padded header, data.
fn npy_file(version: u8, descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let fortran = if fortran { "True" } else { "False" };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape_text}, }}");
    let prefix = if version == 1 { 10 } else { 12 };
    while (prefix + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY".to_vec();
    out.extend([version, 0]);
    if version == 1 {
        out.extend((header.len() as u16).to_le_bytes());
    } else {
        out.extend((header.len() as u32).to_le_bytes());
    }
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

/// The values of `m` in C (row-major) or Fortran (column-major) order.
fn ordered(m: &Matrix, fortran: bool) -> Vec<f64> {
    if fortran {
        (0..m.cols)
            .flat_map(|j| (0..m.rows).map(move |i| (i, j)))
            .map(|(i, j)| m.get(i, j))
            .collect()
    } else {
        m.data.clone()
    }
}

fn f8(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f4(values: &[f64]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect()
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().expect("a temporary directory"))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, bytes).expect("write a test file");
        p
    }

    /// `m` as a 2-D `<f8` file.
    fn npy(&self, name: &str, m: &Matrix, fortran: bool) -> PathBuf {
        self.write(
            name,
            &npy_file(
                1,
                "<f8",
                fortran,
                &[m.rows, m.cols],
                &f8(&ordered(m, fortran)),
            ),
        )
    }

    fn parquet(&self, name: &str, mut df: DataFrame) -> PathBuf {
        let p = self.0.path().join(name);
        ParquetWriter::new(File::create(&p).unwrap())
            .finish(&mut df)
            .unwrap();
        p
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

// -------------------------------------------------------------------- values

#[test]
fn linear_cka_of_a_rotation_is_one_and_matches_host() {
    let d = Dir::new();
    let a = noise(12, 4, 1);
    let rotated = matmul(&a, &orthogonal4());
    let other = noise(12, 4, 2);
    let pa = d.npy("a.npy", &a, false);
    let pq = d.npy("aq.npy", &rotated, false);
    let pb = d.npy("b.npy", &other, false);

    let out = json(&["compare", s(&pa), s(&pq), "--metric", "linear-cka"]);
    assert_eq!(out["metric"], "linear-cka");
    assert_eq!(out["kind"], "similarity");
    assert_eq!(
        (out["n"].as_u64(), out["dx"].as_u64(), out["dy"].as_u64()),
        (Some(12), Some(4), Some(4))
    );
    let v = out["value"].as_f64().unwrap();
    assert!(
        close(v, 1.0, 1e-12),
        "linear CKA of A and A·Q should be 1, got {v}"
    );

    let v = value(&["compare", s(&pa), s(&pb), "--metric", "linear-cka"]);
    let want = host::linear_cka_biased(&a, &other).unwrap();
    assert!(
        v < 0.99,
        "unrelated matrices should not look identical: {v}"
    );
    assert!(close(v, want, 1e-15), "binary {v} vs host {want}");

    let out = json(&["compare", s(&pa), s(&pq), "--metric", "procrustes"]);
    assert_eq!(out["kind"], "distance");
    assert!(close(out["value"].as_f64().unwrap(), 0.0, 1e-6), "{out}");
}

#[test]
fn every_metric_matches_host_with_options() {
    let d = Dir::new();
    let x = noise(14, 4, 3);
    let y = Matrix::from_fn(14, 3, |i, j| x.get(i, j) + 0.3 * noise(14, 3, 4).get(i, j));
    let (px, py) = (d.npy("x.npy", &x, false), d.npy("y.npy", &y, false));
    let run = |metric: &str, extra: &[&str]| {
        let mut args = vec!["compare", s(&px), s(&py), "--metric", metric];
        args.extend(extra);
        value(&args)
    };
    use host::{RdmComparison as C, RdmDistance as D};
    let cases: Vec<(&str, Vec<&str>, f64)> = vec![
        (
            "linear-cka-debiased",
            vec![],
            host::linear_cka_debiased(&x, &y).unwrap(),
        ),
        (
            "rbf-cka",
            vec![],
            host::rbf_cka(&x, &y, host::DEFAULT_RBF_THRESHOLD).unwrap(),
        ),
        (
            "rbf-cka",
            vec!["--rbf-threshold", "1.5"],
            host::rbf_cka(&x, &y, 1.5).unwrap(),
        ),
        (
            "rbf-cka-debiased",
            vec!["--rbf-threshold", "0.8"],
            host::rbf_cka_debiased(&x, &y, 0.8).unwrap(),
        ),
        (
            "rsa-correlation-pearson",
            vec![],
            host::rsa_similarity(&x, &y, D::Correlation, C::Pearson).unwrap(),
        ),
        (
            "rsa-correlation-spearman",
            vec![],
            host::rsa_similarity(&x, &y, D::Correlation, C::Spearman).unwrap(),
        ),
        (
            "rsa-euclidean-pearson",
            vec![],
            host::rsa_similarity(&x, &y, D::Euclidean, C::Pearson).unwrap(),
        ),
        (
            "rsa-euclidean-spearman",
            vec![],
            host::rsa_similarity(&x, &y, D::Euclidean, C::Spearman).unwrap(),
        ),
        (
            "procrustes",
            vec![],
            host::procrustes_distance(&x, &y).unwrap(),
        ),
        (
            "procrustes-angular",
            vec![],
            host::angular_procrustes_distance(&x, &y).unwrap(),
        ),
        ("cca", vec![], host::cca_similarity(&x, &y).unwrap()),
        (
            "svcca",
            vec![],
            host::svcca_similarity(&x, &y, host::DEFAULT_SVCCA_VARIANCE).unwrap(),
        ),
        (
            "svcca",
            vec!["--svcca-variance", "0.5"],
            host::svcca_similarity(&x, &y, 0.5).unwrap(),
        ),
        ("pwcca", vec![], host::pwcca_similarity(&x, &y).unwrap()),
        (
            "ridge",
            vec![],
            host::ridge_similarity(&x, &y, host::DEFAULT_RIDGE_LAMBDA).unwrap(),
        ),
        (
            "ridge",
            vec!["--ridge-lambda", "3"],
            host::ridge_similarity(&x, &y, 3.0).unwrap(),
        ),
        (
            "mutual-knn",
            vec![],
            host::mutual_knn_similarity(&x, &y, host::DEFAULT_KNN_K).unwrap(),
        ),
        (
            "mutual-knn",
            vec!["--knn-k", "3"],
            host::mutual_knn_similarity(&x, &y, 3).unwrap(),
        ),
    ];
    for (metric, extra, want) in cases {
        let got = run(metric, &extra);
        assert!(
            close(got, want, 1e-15),
            "{metric} {extra:?}: binary {got}, host {want}"
        );
    }
    // The options reach the metric: a different option gives a different value.
    assert_ne!(run("ridge", &[]), run("ridge", &["--ridge-lambda", "3"]));
    assert_ne!(run("mutual-knn", &[]), run("mutual-knn", &["--knn-k", "3"]));
}

#[test]
fn fortran_order_and_f32_read_the_same_matrix() {
    let d = Dir::new();
    let x = noise(10, 4, 5);
    let y = noise(10, 3, 6);
    let py = d.npy("y.npy", &y, false);
    let c = value(&[
        "compare",
        s(&d.npy("c.npy", &x, false)),
        s(&py),
        "--metric",
        "rsa-euclidean-pearson",
    ]);
    let f = value(&[
        "compare",
        s(&d.npy("f.npy", &x, true)),
        s(&py),
        "--metric",
        "rsa-euclidean-pearson",
    ]);
    assert_eq!(
        c, f,
        "the Fortran-order file holds the same matrix as the C-order one"
    );
    // Reading Fortran data as if it were C order would give another matrix.
    let swapped = Matrix {
        rows: 10,
        cols: 4,
        data: ordered(&x, true),
    };
    let wrong = host::rsa_similarity(
        &swapped,
        &y,
        host::RdmDistance::Euclidean,
        host::RdmComparison::Pearson,
    )
    .unwrap();
    assert_ne!(f, wrong);

    // f32, both orders, versions 2.0 and 3.0 of the format.
    let x32 = Matrix {
        rows: 10,
        cols: 4,
        data: x.data.iter().map(|v| *v as f32 as f64).collect(),
    };
    let want = host::linear_cka_biased(&x32, &y).unwrap();
    for (version, fortran) in [(1, false), (2, true), (3, false), (3, true)] {
        let p = d.write(
            &format!("x32_{version}_{fortran}.npy"),
            &npy_file(
                version,
                "<f4",
                fortran,
                &[10, 4],
                &f4(&ordered(&x, fortran)),
            ),
        );
        let got = value(&["compare", s(&p), s(&py), "--metric", "linear-cka"]);
        assert!(
            close(got, want, 1e-15),
            "f32 v{version} fortran={fortran}: {got} vs {want}"
        );
    }
}

#[test]
fn three_dimensional_arrays_flatten_per_example() {
    let d = Dir::new();
    // a[i, j, k] for shape (6, 2, 3): example i flattens to 6 features in C order.
    let (n, d1, d2) = (6, 2, 3);
    let a = |i: usize, j: usize, k: usize| ((i * 7 + j * 3 + k * k) % 11) as f64 + 0.1 * i as f64;
    let flat = Matrix::from_fn(n, d1 * d2, |i, c| a(i, c / d2, c % d2));
    let c_order: Vec<f64> = (0..n)
        .flat_map(|i| (0..d1).flat_map(move |j| (0..d2).map(move |k| a(i, j, k))))
        .collect();
    let f_order: Vec<f64> = (0..d2)
        .flat_map(|k| (0..d1).flat_map(move |j| (0..n).map(move |i| a(i, j, k))))
        .collect();
    let p3c = d.write(
        "c3.npy",
        &npy_file(1, "<f8", false, &[n, d1, d2], &f8(&c_order)),
    );
    let p3f = d.write(
        "f3.npy",
        &npy_file(1, "<f8", true, &[n, d1, d2], &f8(&f_order)),
    );
    let y = noise(n, 2, 7);
    let py = d.npy("y.npy", &y, false);
    let want = host::rsa_similarity(
        &flat,
        &y,
        host::RdmDistance::Euclidean,
        host::RdmComparison::Spearman,
    )
    .unwrap();
    for p in [&p3c, &p3f] {
        let out = json(&[
            "compare",
            s(p),
            s(&py),
            "--metric",
            "rsa-euclidean-spearman",
        ]);
        assert_eq!(out["dx"].as_u64(), Some(6), "{out}");
        assert_eq!(out["n"].as_u64(), Some(6), "{out}");
        let got = out["value"].as_f64().unwrap();
        assert!(close(got, want, 1e-15), "{}: {got} vs {want}", p.display());
    }

    // A 1-D array is n × 1.
    let col: Vec<f64> = (0..n).map(|i| (i * i) as f64).collect();
    let p1 = d.write("one.npy", &npy_file(1, "<f8", false, &[n], &f8(&col)));
    let out = json(&["compare", s(&p1), s(&py), "--metric", "linear-cka"]);
    assert_eq!(out["dx"].as_u64(), Some(1));
    let want = host::linear_cka_biased(&Matrix::new(n, 1, col), &y).unwrap();
    assert!(close(out["value"].as_f64().unwrap(), want, 1e-15));
}

#[test]
fn parquet_columns_are_features() {
    let d = Dir::new();
    let x = noise(9, 3, 8);
    let y = noise(9, 4, 9);
    let ints: Vec<i32> = (0..9).map(|i| (i * 5 % 7) as i32).collect();
    let columns = vec![
        Column::new(
            "f0".into(),
            (0..9).map(|i| x.get(i, 0)).collect::<Vec<f64>>(),
        ),
        Column::new(
            "f1".into(),
            (0..9).map(|i| x.get(i, 1) as f32).collect::<Vec<f32>>(),
        ),
        Column::new("count".into(), ints.clone()),
    ];
    let p = d.parquet("x.parquet", DataFrame::new(9, columns).unwrap());
    let expected = Matrix::from_fn(9, 3, |i, j| match j {
        0 => x.get(i, 0),
        1 => x.get(i, 1) as f32 as f64,
        _ => ints[i] as f64,
    });
    let py = d.npy("y.npy", &y, false);
    let out = json(&["compare", s(&p), s(&py), "--metric", "linear-cka"]);
    assert_eq!(
        (out["n"].as_u64(), out["dx"].as_u64(), out["dy"].as_u64()),
        (Some(9), Some(3), Some(4))
    );
    let want = host::linear_cka_biased(&expected, &y).unwrap();
    assert!(
        close(out["value"].as_f64().unwrap(), want, 1e-15),
        "{out} vs {want}"
    );
}

#[test]
fn all_reports_every_metric_and_errors_in_place() {
    let d = Dir::new();
    let listed = stdout(&repsim(&["list"]));
    let names: Vec<String> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    for expected in [
        "linear-cka",
        "linear-cka-debiased",
        "rbf-cka",
        "rbf-cka-debiased",
        "rsa-correlation-pearson",
        "rsa-correlation-spearman",
        "rsa-euclidean-pearson",
        "rsa-euclidean-spearman",
        "procrustes",
        "procrustes-angular",
        "cca",
        "svcca",
        "pwcca",
        "ridge",
        "mutual-knn",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "`repsim list` lacks {expected}: {listed}"
        );
    }
    for line in listed.lines() {
        assert!(
            line.contains("similarity") || line.contains("distance"),
            "no kind in {line:?}"
        );
    }

    // Well-posed for every metric.
    let x = noise(16, 3, 10);
    let y = noise(16, 2, 11);
    let (px, py) = (d.npy("x.npy", &x, false), d.npy("y.npy", &y, false));
    let out = json(&["compare", s(&px), s(&py), "--all"]);
    let metrics = out["metrics"].as_object().expect("a metrics object");
    assert_eq!(metrics.len(), names.len(), "{out}");
    for name in &names {
        let entry = &metrics[name.as_str()];
        assert!(entry["value"].is_f64(), "{name}: {entry}");
        let single = value(&["compare", s(&px), s(&py), "--metric", name]);
        assert_eq!(entry["value"].as_f64(), Some(single), "{name}");
    }
    assert_eq!(metrics["procrustes"]["kind"], "distance");
    assert_eq!(out["n"].as_u64(), Some(16));

    // 5 examples of 8 features: CCA cannot whiten, k = 10 ≥ n for mutual k-NN;
    // those report errors while the others still give values.
    let (pw, pv) = (
        d.npy("w.npy", &noise(5, 8, 12), false),
        d.npy("v.npy", &noise(5, 8, 13), false),
    );
    let out = json(&["compare", s(&pw), s(&pv), "--all"]);
    let metrics = out["metrics"].as_object().unwrap();
    assert_eq!(metrics.len(), names.len());
    for failing in ["cca", "mutual-knn"] {
        let e = metrics[failing]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{failing}: {out}"));
        assert!(!e.is_empty());
        assert!(metrics[failing].get("value").is_none());
    }
    assert!(metrics["linear-cka"]["value"].is_f64(), "{out}");
}

// -------------------------------------------------------------------- errors

#[test]
fn file_errors_exit_2_and_name_the_file() {
    let d = Dir::new();
    let good = d.npy("good.npy", &noise(6, 2, 14), false);
    let cmd = |bad: &Path| {
        vec![
            "compare".to_string(),
            s(bad).to_string(),
            s(&good).to_string(),
            "--metric".into(),
            "linear-cka".into(),
        ]
    };
    let check = |bad: &Path, also: &[&str]| {
        let args = cmd(bad);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_naming(&args, bad, also)
    };

    check(&d.0.path().join("absent.npy"), &["no such file"]);
    check(
        &d.write("acts.csv", b"1,2\n3,4\n"),
        &[".csv", ".npy", ".parquet"],
    );
    check(
        &d.write("zip.npy", b"PK\x03\x04 not numpy at all"),
        &["\\x93NUMPY"],
    );
    check(
        &d.write("ints.npy", &npy_file(1, "<i4", false, &[6, 2], &[0; 48])),
        &["'<i4'", "<f4", "<f8"],
    );
    check(
        &d.write("big.npy", &npy_file(1, ">f8", false, &[6, 2], &[0; 96])),
        &["'>f8'", "big-endian"],
    );
    check(
        &d.write("short.npy", &npy_file(1, "<f8", false, &[6, 2], &[0; 50])),
        &["truncated", "96", "50"],
    );
    check(
        &d.write(
            "header.npy",
            &npy_file(1, "<f8", false, &[6, 2], &[0; 96])[..30],
        ),
        &["header"],
    );
    let mut v4 = npy_file(1, "<f8", false, &[6, 2], &[0; 96]);
    v4[6] = 9;
    check(&d.write("v9.npy", &v4), &["version 9.0"]);
    check(
        &d.write("fake.parquet", b"definitely not parquet"),
        &["parquet"],
    );

    let columns = vec![
        Column::new("x".into(), vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]),
        Column::new("label".into(), vec!["a", "b", "c", "d", "e", "f"]),
    ];
    let p = d.parquet("text.parquet", DataFrame::new(6, columns).unwrap());
    check(&p, &["`label`", "numeric"]);
    let columns = vec![Column::new(
        "x".into(),
        vec![
            Some(1.0f64),
            None,
            Some(3.0),
            Some(4.0),
            Some(5.0),
            Some(6.0),
        ],
    )];
    let p = d.parquet("nulls.parquet", DataFrame::new(6, columns).unwrap());
    check(&p, &["`x`", "null"]);
}

#[test]
fn input_and_metric_errors_exit_2() {
    let d = Dir::new();
    let six = d.npy("six.npy", &noise(6, 2, 15), false);
    let seven = d.npy("seven.npy", &noise(7, 2, 16), false);
    for metric in ["linear-cka"] {
        let err = fails_naming(
            &["compare", s(&six), s(&seven), "--metric", metric],
            &six,
            &["6", "7"],
        );
        assert!(err.contains(s(&seven)), "{err}");
    }
    let err = fails_naming(
        &["compare", s(&six), s(&seven), "--all"],
        &seven,
        &["examples"],
    );
    assert!(err.contains(s(&six)));

    // Debiased CKA needs 4 examples.
    let three = d.npy("three.npy", &noise(3, 2, 17), false);
    let three_b = d.npy("three_b.npy", &noise(3, 2, 18), false);
    fails_naming(
        &[
            "compare",
            s(&three),
            s(&three_b),
            "--metric",
            "linear-cka-debiased",
        ],
        &three,
        &["linear-cka-debiased", "4"],
    );
    // A constant representation.
    let constant = d.npy("constant.npy", &Matrix::from_fn(6, 2, |_, _| 1.0), false);
    fails_naming(
        &["compare", s(&constant), s(&six), "--metric", "linear-cka"],
        &constant,
        &["constant"],
    );
    // k ≥ n is an error of the input for one metric.
    fails_naming(
        &["compare", s(&six), s(&six), "--metric", "mutual-knn"],
        &six,
        &["k"],
    );

    // Bad options are usage errors (exit 2) that name the option.
    for (flag, bad) in [
        ("--rbf-threshold", "0"),
        ("--ridge-lambda", "-1"),
        ("--svcca-variance", "1.5"),
        ("--knn-k", "0"),
        ("--ridge-lambda", "abc"),
    ] {
        let metric = match flag {
            "--rbf-threshold" => "rbf-cka",
            "--ridge-lambda" => "ridge",
            "--svcca-variance" => "svcca",
            _ => "mutual-knn",
        };
        let o = repsim(&["compare", s(&six), s(&six), "--metric", metric, flag, bad]);
        assert_eq!(o.status.code(), Some(2), "{flag} {bad}");
        assert!(stderr(&o).contains(flag), "{flag} {bad}: {}", stderr(&o));
    }
    let o = repsim(&[
        "compare",
        s(&six),
        s(&six),
        "--metric",
        "linear-cka",
        "--knn-k",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--knn-k") && stderr(&o).contains("mutual-knn"),
        "{}",
        stderr(&o)
    );
    let o = repsim(&["compare", s(&six), s(&six), "--metric", "no-such-metric"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("linear-cka"),
        "the valid names are listed: {}",
        stderr(&o)
    );
    let o = repsim(&["compare", s(&six), s(&six)]);
    assert_eq!(o.status.code(), Some(2), "neither --metric nor --all");
}

#[test]
fn file_names_are_escaped_in_json() {
    let d = Dir::new();
    let x = noise(6, 2, 19);
    let p = d.npy("we\"ird\\name.npy", &x, false);
    let out = json(&["compare", s(&p), s(&p), "--metric", "linear-cka"]);
    assert_eq!(out["a"].as_str(), Some(s(&p)));
}
