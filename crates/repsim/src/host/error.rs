//! The one error type of the `f64` metrics.

use std::fmt;

/// Why a metric has no value for its input. Matrices are named `"X"` (the
/// first argument) and `"Y"` (the second); rows are examples, columns
/// features, both counted from 0.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RepsimError {
    /// `data.len()` disagrees with `rows × cols` (the fields are public).
    Shape {
        matrix: &'static str,
        rows: usize,
        cols: usize,
        len: usize,
    },
    /// A matrix with no rows or no columns.
    Empty {
        matrix: &'static str,
        rows: usize,
        cols: usize,
    },
    /// The two matrices describe different numbers of examples.
    RowsDiffer { x_rows: usize, y_rows: usize },
    /// The metric needs at least `min` examples.
    TooFewExamples {
        metric: &'static str,
        n: usize,
        min: usize,
    },
    /// The first NaN or ±∞ in row-major order.
    NonFinite {
        matrix: &'static str,
        row: usize,
        col: usize,
        value: f64,
    },
    /// Every feature is constant across examples: after centring there is
    /// nothing left to compare.
    ConstantRepresentation {
        matrix: &'static str,
        metric: &'static str,
    },
    /// One feature is constant across examples where the metric needs every
    /// feature to vary (CCA and PWCCA whiten the features).
    ConstantFeature {
        matrix: &'static str,
        col: usize,
        metric: &'static str,
    },
    /// One example has the same value in every feature, so its correlation
    /// with other examples is undefined.
    ConstantExample {
        matrix: &'static str,
        row: usize,
        metric: &'static str,
    },
    /// One example is the zero vector, so its cosine similarity is undefined.
    ZeroExample {
        matrix: &'static str,
        row: usize,
        metric: &'static str,
    },
    /// All entries of an RDM's upper triangle are equal, so no correlation
    /// with another RDM is defined.
    ConstantRdm { matrix: &'static str },
    /// The centred features are linearly dependent (numerical rank below the
    /// number of features, which includes every case with `cols ≥ rows`).
    RankDeficient {
        matrix: &'static str,
        rank: usize,
        cols: usize,
        metric: &'static str,
    },
    /// The median pairwise distance is 0, so the RBF bandwidth would be 0.
    ZeroBandwidth { matrix: &'static str },
    /// The unbiased HSIC of a representation with itself is 0 although the
    /// representation is not constant (too few distinct examples).
    DegenerateHsic { matrix: &'static str },
    /// A parameter outside its domain.
    InvalidParameter {
        name: &'static str,
        value: f64,
        expected: &'static str,
    },
    /// A minibatch update got a different number of layers than declared.
    LayerCount {
        side: &'static str,
        expected: usize,
        got: usize,
    },
    /// A minibatch accumulator was asked for a value before any batch.
    NoBatches,
    /// An error about one layer of a minibatch update or result.
    Layer {
        side: &'static str,
        layer: usize,
        source: Box<RepsimError>,
    },
    /// Two examples are the same point, so the ratio of neighbour distances
    /// that TwoNN needs is undefined.
    DuplicateExamples {
        matrix: &'static str,
        first: usize,
        second: usize,
    },
    /// Both classifiers are always right, or both always wrong: their
    /// agreement expected by chance is 1, so error consistency is undefined.
    ChanceAgreementIsOne { accuracy_a: f64, accuracy_b: f64 },
}

impl fmt::Display for RepsimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RepsimError::*;
        match self {
            Shape {
                matrix,
                rows,
                cols,
                len,
            } => write!(
                f,
                "{matrix} claims {rows}×{cols} = {} values but holds {len}",
                rows * cols
            ),
            Empty { matrix, rows, cols } => {
                write!(
                    f,
                    "{matrix} is empty ({rows}×{cols}): it needs at least one example and one feature"
                )
            }
            RowsDiffer { x_rows, y_rows } => write!(
                f,
                "X has {x_rows} examples (rows) and Y has {y_rows}: the metrics compare the same examples"
            ),
            TooFewExamples { metric, n, min } => {
                write!(f, "{metric} needs at least {min} examples, got {n}")
            }
            NonFinite {
                matrix,
                row,
                col,
                value,
            } => {
                write!(
                    f,
                    "{matrix} has the non-finite value {value} at (row {row}, col {col})"
                )
            }
            ConstantRepresentation { matrix, metric } => write!(
                f,
                "{matrix} is constant across examples (every feature has one value): {metric} is undefined"
            ),
            ConstantFeature {
                matrix,
                col,
                metric,
            } => write!(
                f,
                "feature (col {col}) of {matrix} is constant across examples: {metric} is undefined; \
                 drop the feature or use SVCCA"
            ),
            ConstantExample {
                matrix,
                row,
                metric,
            } => write!(
                f,
                "example (row {row}) of {matrix} has the same value in every feature: its correlation \
                 distance in {metric} is undefined"
            ),
            ZeroExample {
                matrix,
                row,
                metric,
            } => write!(
                f,
                "example (row {row}) of {matrix} is the zero vector: its cosine similarity in {metric} is undefined"
            ),
            ConstantRdm { matrix } => write!(
                f,
                "every pairwise dissimilarity of {matrix} is equal: the RDM has no variance to correlate"
            ),
            RankDeficient {
                matrix,
                rank,
                cols,
                metric,
            } => write!(
                f,
                "the centred features of {matrix} have rank {rank} < {cols} features: {metric} needs \
                 linearly independent features and more examples than features (SVCCA reduces them first)"
            ),
            ZeroBandwidth { matrix } => write!(
                f,
                "the median pairwise distance between examples of {matrix} is 0 (most examples coincide): \
                 the RBF bandwidth would be 0"
            ),
            DegenerateHsic { matrix } => write!(
                f,
                "the unbiased HSIC of {matrix} with itself is 0 (too few distinct examples): CKA is undefined"
            ),
            InvalidParameter {
                name,
                value,
                expected,
            } => {
                write!(
                    f,
                    "parameter {name} = {value} is invalid: expected {expected}"
                )
            }
            LayerCount {
                side,
                expected,
                got,
            } => {
                write!(
                    f,
                    "the accumulator was made for {expected} layers on side {side}, got {got}"
                )
            }
            NoBatches => write!(f, "no batch has been accumulated yet"),
            Layer {
                side,
                layer,
                source,
            } => write!(f, "layer {layer} of side {side}: {source}"),
            DuplicateExamples {
                matrix,
                first,
                second,
            } => write!(
                f,
                "{matrix}: rows {first} and {second} are the same point; TwoNN needs distinct \
                 examples (drop duplicates first)"
            ),
            ChanceAgreementIsOne {
                accuracy_a,
                accuracy_b,
            } => write!(
                f,
                "error consistency is undefined for accuracies {accuracy_a} and {accuracy_b}: \
                 when both classifiers are always right (or both always wrong) there are no \
                 errors to compare"
            ),
        }
    }
}

impl std::error::Error for RepsimError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RepsimError::Layer { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// Results of the `f64` metrics.
pub type Result<T> = std::result::Result<T, RepsimError>;
