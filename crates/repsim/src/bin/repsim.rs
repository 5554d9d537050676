//! `repsim`: representational similarity of two activation matrices.
//!
//! ```text
//! repsim compare A B --metric NAME [--rbf-threshold T] [--ridge-lambda L]
//!                                  [--svcca-variance V] [--knn-k K]
//! repsim compare A B --all [options]
//! repsim list
//! ```
//!
//! A and B are `.npy` (little-endian f32/f64, C or Fortran order, shape
//! `(n, ...)` flattened per example) or `.parquet` (numeric columns, one per
//! feature) files holding the same `n` examples in the same order. Output is
//! one JSON object on stdout; errors go to stderr with exit code 2.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use untrainable_repsim::host::{
    self, DEFAULT_KNN_K, DEFAULT_RBF_THRESHOLD, DEFAULT_RIDGE_LAMBDA, DEFAULT_SVCCA_VARIANCE,
    Matrix, RdmComparison, RdmDistance, RepsimError,
};
use untrainable_repsim::io::read_matrix;

#[derive(Parser)]
#[command(
    name = "repsim",
    version,
    about = "Representational similarity of two activation matrices (.npy or .parquet)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compare two activation matrices of the same examples; print JSON.
    Compare(CompareArgs),
    /// List the metrics with their kind and a one-line description.
    List,
}

#[derive(clap::Args)]
struct CompareArgs {
    /// First activation matrix (X): .npy or .parquet, one row per example.
    a: PathBuf,
    /// Second activation matrix (Y): the same examples in the same order.
    b: PathBuf,
    /// The metric to compute (see `repsim list`).
    #[arg(
        long,
        value_enum,
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    metric: Option<Metric>,
    /// Compute every metric; one that fails on this input reports its error.
    #[arg(long)]
    all: bool,
    /// RBF bandwidth as a fraction of the median pairwise distance
    /// (rbf-cka, rbf-cka-debiased) [default: 0.5].
    #[arg(long, value_name = "FRACTION", value_parser = positive_finite, allow_negative_numbers = true)]
    rbf_threshold: Option<f64>,
    /// Ridge penalty λ (ridge) [default: 0.1].
    #[arg(long, value_name = "LAMBDA", value_parser = positive_finite, allow_negative_numbers = true)]
    ridge_lambda: Option<f64>,
    /// Fraction of variance kept by the SVD step of svcca [default: 0.99].
    #[arg(long, value_name = "FRACTION", value_parser = share_of_variance, allow_negative_numbers = true)]
    svcca_variance: Option<f64>,
    /// Neighbourhood size of mutual-knn [default: 10].
    #[arg(long, value_name = "K", value_parser = neighbourhood_size, allow_negative_numbers = true)]
    knn_k: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Metric {
    LinearCka,
    LinearCkaDebiased,
    RbfCka,
    RbfCkaDebiased,
    RsaCorrelationPearson,
    RsaCorrelationSpearman,
    RsaEuclideanPearson,
    RsaEuclideanSpearman,
    Procrustes,
    ProcrustesAngular,
    Cca,
    Svcca,
    Pwcca,
    Ridge,
    MutualKnn,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Similarity,
    Distance,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Similarity => "similarity",
            Kind::Distance => "distance",
        }
    }
}

fn number(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .map_err(|_| format!("`{text}` is not a number"))
}

/// A finite number > 0 (`--rbf-threshold`, `--ridge-lambda`).
fn positive_finite(text: &str) -> Result<f64, String> {
    let v = number(text)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("expected a finite number > 0, got {text}"))
    }
}

/// A share of variance in (0, 1] (`--svcca-variance`).
fn share_of_variance(text: &str) -> Result<f64, String> {
    let v = number(text)?;
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!(
            "expected a share of variance in (0, 1], got {text}"
        ))
    }
}

/// A neighbourhood size ≥ 1 (`--knn-k`).
fn neighbourhood_size(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(k) if k >= 1 => Ok(k),
        _ => Err(format!("expected a whole number ≥ 1, got {text}")),
    }
}

/// The metric options with their defaults filled in.
struct Options {
    rbf_threshold: f64,
    ridge_lambda: f64,
    svcca_variance: f64,
    knn_k: usize,
}

impl Metric {
    const ALL: [Metric; 15] = [
        Metric::LinearCka,
        Metric::LinearCkaDebiased,
        Metric::RbfCka,
        Metric::RbfCkaDebiased,
        Metric::RsaCorrelationPearson,
        Metric::RsaCorrelationSpearman,
        Metric::RsaEuclideanPearson,
        Metric::RsaEuclideanSpearman,
        Metric::Procrustes,
        Metric::ProcrustesAngular,
        Metric::Cca,
        Metric::Svcca,
        Metric::Pwcca,
        Metric::Ridge,
        Metric::MutualKnn,
    ];

    fn name(self) -> &'static str {
        match self {
            Metric::LinearCka => "linear-cka",
            Metric::LinearCkaDebiased => "linear-cka-debiased",
            Metric::RbfCka => "rbf-cka",
            Metric::RbfCkaDebiased => "rbf-cka-debiased",
            Metric::RsaCorrelationPearson => "rsa-correlation-pearson",
            Metric::RsaCorrelationSpearman => "rsa-correlation-spearman",
            Metric::RsaEuclideanPearson => "rsa-euclidean-pearson",
            Metric::RsaEuclideanSpearman => "rsa-euclidean-spearman",
            Metric::Procrustes => "procrustes",
            Metric::ProcrustesAngular => "procrustes-angular",
            Metric::Cca => "cca",
            Metric::Svcca => "svcca",
            Metric::Pwcca => "pwcca",
            Metric::Ridge => "ridge",
            Metric::MutualKnn => "mutual-knn",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Metric::Procrustes | Metric::ProcrustesAngular => Kind::Distance,
            _ => Kind::Similarity,
        }
    }

    fn description(self) -> &'static str {
        match self {
            Metric::LinearCka => {
                "linear CKA, biased HSIC estimator (Kornblith et al. 2019); [0, 1]"
            }
            Metric::LinearCkaDebiased => {
                "linear CKA, debiased (U-centred) HSIC; needs n >= 4; [-1, 1]"
            }
            Metric::RbfCka => "RBF-kernel CKA, bandwidth --rbf-threshold x median distance; [0, 1]",
            Metric::RbfCkaDebiased => "RBF-kernel CKA, debiased HSIC; [-1, 1]",
            Metric::RsaCorrelationPearson => {
                "RSA: correlation-distance RDMs compared by Pearson r; [-1, 1]"
            }
            Metric::RsaCorrelationSpearman => {
                "RSA: correlation-distance RDMs compared by Spearman rho; [-1, 1]"
            }
            Metric::RsaEuclideanPearson => "RSA: euclidean RDMs compared by Pearson r; [-1, 1]",
            Metric::RsaEuclideanSpearman => "RSA: euclidean RDMs compared by Spearman rho; [-1, 1]",
            Metric::Procrustes => {
                "orthogonal Procrustes distance of centred, unit-norm inputs; [0, sqrt 2]"
            }
            Metric::ProcrustesAngular => {
                "angular Procrustes distance (arccos of the nuclear norm); [0, pi/2]"
            }
            Metric::Cca => "mean squared canonical correlation; needs n > features; [0, 1]",
            Metric::Svcca => {
                "SVCCA: CCA after keeping --svcca-variance of each side's variance; [0, 1]"
            }
            Metric::Pwcca => "projection-weighted CCA (Morcos et al. 2018); not symmetric; [0, 1]",
            Metric::Ridge => {
                "R^2 of ridge regression (--ridge-lambda) predicting B from A; not symmetric; [0, 1]"
            }
            Metric::MutualKnn => "mutual k-nearest-neighbour overlap (--knn-k, cosine); [0, 1]",
        }
    }

    fn compute(self, x: &Matrix, y: &Matrix, o: &Options) -> Result<f64, RepsimError> {
        use RdmComparison::{Pearson, Spearman};
        use RdmDistance::{Correlation, Euclidean};
        match self {
            Metric::LinearCka => host::linear_cka_biased(x, y),
            Metric::LinearCkaDebiased => host::linear_cka_debiased(x, y),
            Metric::RbfCka => host::rbf_cka(x, y, o.rbf_threshold),
            Metric::RbfCkaDebiased => host::rbf_cka_debiased(x, y, o.rbf_threshold),
            Metric::RsaCorrelationPearson => host::rsa_similarity(x, y, Correlation, Pearson),
            Metric::RsaCorrelationSpearman => host::rsa_similarity(x, y, Correlation, Spearman),
            Metric::RsaEuclideanPearson => host::rsa_similarity(x, y, Euclidean, Pearson),
            Metric::RsaEuclideanSpearman => host::rsa_similarity(x, y, Euclidean, Spearman),
            Metric::Procrustes => host::procrustes_distance(x, y),
            Metric::ProcrustesAngular => host::angular_procrustes_distance(x, y),
            Metric::Cca => host::cca_similarity(x, y),
            Metric::Svcca => host::svcca_similarity(x, y, o.svcca_variance),
            Metric::Pwcca => host::pwcca_similarity(x, y),
            Metric::Ridge => host::ridge_similarity(x, y, o.ridge_lambda),
            Metric::MutualKnn => host::mutual_knn_similarity(x, y, o.knn_k),
        }
    }
}

/// A failure of the command: the message for stderr.
struct Failure(String);

untrainable_kernels::huge_page_allocator!();

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List => {
            print!("{}", list_text());
            Ok(())
        }
        Command::Compare(args) => compare(&args).map(|json| println!("{json}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("repsim: error: {message}");
            ExitCode::from(2)
        }
    }
}

fn list_text() -> String {
    let width = Metric::ALL
        .iter()
        .map(|m| m.name().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for m in Metric::ALL {
        let _ = writeln!(
            out,
            "{:<width$}  {:<10}  {}",
            m.name(),
            m.kind().as_str(),
            m.description()
        );
    }
    out
}

/// Rejects an option given for a single metric it does not apply to.
fn check_options(args: &CompareArgs) -> Result<(), Failure> {
    let Some(metric) = args.metric else {
        return Ok(());
    };
    let given: [(&str, bool, &[Metric]); 4] = [
        (
            "--rbf-threshold",
            args.rbf_threshold.is_some(),
            &[Metric::RbfCka, Metric::RbfCkaDebiased],
        ),
        (
            "--ridge-lambda",
            args.ridge_lambda.is_some(),
            &[Metric::Ridge],
        ),
        (
            "--svcca-variance",
            args.svcca_variance.is_some(),
            &[Metric::Svcca],
        ),
        ("--knn-k", args.knn_k.is_some(), &[Metric::MutualKnn]),
    ];
    for (flag, present, applies_to) in given {
        if present && !applies_to.contains(&metric) {
            let names: Vec<&str> = applies_to.iter().map(|m| m.name()).collect();
            return Err(Failure(format!(
                "{flag} applies only to {}, not to {}; drop it or pick one of those metrics",
                names.join(" and "),
                metric.name()
            )));
        }
    }
    Ok(())
}

fn compare(args: &CompareArgs) -> Result<String, Failure> {
    check_options(args)?;
    let options = Options {
        rbf_threshold: args.rbf_threshold.unwrap_or(DEFAULT_RBF_THRESHOLD),
        ridge_lambda: args.ridge_lambda.unwrap_or(DEFAULT_RIDGE_LAMBDA),
        svcca_variance: args.svcca_variance.unwrap_or(DEFAULT_SVCCA_VARIANCE),
        knn_k: args.knn_k.unwrap_or(DEFAULT_KNN_K),
    };
    let x = read_matrix(&args.a).map_err(|e| Failure(e.to_string()))?;
    let y = read_matrix(&args.b).map_err(|e| Failure(e.to_string()))?;
    if x.rows != y.rows {
        return Err(Failure(format!(
            "{} has {} examples (rows) but {} has {}: both files must hold the same examples in \
             the same order",
            args.a.display(),
            x.rows,
            args.b.display(),
            y.rows
        )));
    }
    let metric_failure = |m: Metric, e: &RepsimError| {
        Failure(format!(
            "{} of {} (X) and {} (Y): {e}",
            m.name(),
            args.a.display(),
            args.b.display()
        ))
    };
    let mut out = String::from("{");
    match args.metric {
        Some(m) => {
            let v = m
                .compute(&x, &y, &options)
                .map_err(|e| metric_failure(m, &e))?;
            push_field(&mut out, "metric", &json_string(m.name()));
            push_field(&mut out, "kind", &json_string(m.kind().as_str()));
            push_field(&mut out, "value", &json_number(v));
            push_sizes(&mut out, &args.a, &args.b, &x, &y);
        }
        None => {
            push_sizes(&mut out, &args.a, &args.b, &x, &y);
            let mut metrics = String::from("{");
            for m in Metric::ALL {
                let mut entry = String::from("{");
                push_field(&mut entry, "kind", &json_string(m.kind().as_str()));
                match m.compute(&x, &y, &options) {
                    Ok(v) => push_field(&mut entry, "value", &json_number(v)),
                    Err(e) => push_field(&mut entry, "error", &json_string(&e.to_string())),
                }
                entry.push('}');
                push_field(&mut metrics, m.name(), &entry);
            }
            metrics.push('}');
            push_field(&mut out, "metrics", &metrics);
        }
    }
    out.push('}');
    Ok(out)
}

fn push_sizes(out: &mut String, a: &Path, b: &Path, x: &Matrix, y: &Matrix) {
    push_field(out, "n", &x.rows.to_string());
    push_field(out, "dx", &x.cols.to_string());
    push_field(out, "dy", &y.cols.to_string());
    push_field(out, "a", &json_string(&a.to_string_lossy()));
    push_field(out, "b", &json_string(&b.to_string_lossy()));
}

/// Appends `"key": value` to an object under construction (`value` is JSON).
fn push_field(out: &mut String, key: &str, value: &str) {
    if !out.ends_with('{') {
        out.push_str(", ");
    }
    out.push_str(&json_string(key));
    out.push_str(": ");
    out.push_str(value);
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A finite number in a form JSON accepts (shortest round-trip digits);
/// `null` for NaN or infinity, which the metrics never return.
fn json_number(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        "null".to_string()
    }
}
