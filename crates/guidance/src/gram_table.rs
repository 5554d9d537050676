//! The frozen guide's uncentred Gram matrices over the whole training set,
//! one per guide tap in the guided pairs, computed once.
//!
//! Where an example's guide taps never change, the Gram matrix `Y Yᵀ` of a
//! batch `b` is the block `(G Gᵀ)[b, b]` of the matrix `G Gᵀ` over every
//! training example. Gathering that `n × n` block replaces both the guide's
//! forward pass and the `n × n × d` product of its taps in every guided
//! step, leaving the step only the target's side of the CKA terms.

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use untrainable_core::to_vec;
use untrainable_repsim::{fixed_gram, unit_centred_blocks};

use crate::guide_table::GuideTapTable;
use crate::loss::GuideGrams;

/// The default of `train.gram_table_bytes`: 2 GiB, the tables of 21 guide
/// taps over 5 000 examples (the image experiments' cpu presets train on
/// 2 000 to 4 000).
pub const DEFAULT_GRAM_TABLE_BYTES: u64 = 2 << 30;

/// `G Gᵀ` over the training set of each guide tap in a guided pair, and the
/// rows of those narrower than a batch (where CKA's feature form can be the
/// cheaper, the step computes it from the taps as the taps path does).
pub struct GuideGramTable {
    /// Indexed by guide tap; `None` for the taps in no guided pair.
    grams: Tables,
    narrow_taps: Vec<Option<Tensor<2>>>,
}

/// Where the Gram matrices are kept: on flex on the host, where a batch's
/// block is read and centred in one pass per tap; on other backends on the
/// device, gathered there.
enum Tables {
    Host {
        examples: usize,
        grams: Vec<Option<Vec<f32>>>,
    },
    Device(Vec<Option<Tensor<2>>>),
}

impl GuideGramTable {
    /// Bytes of the tables over `examples` examples of guide taps `widths`
    /// wide: `examples²` floats each, and the rows of those narrower than
    /// `batch_size`.
    pub fn bytes(examples: usize, widths: &[usize], batch_size: usize) -> u64 {
        let narrow = |w: usize| if w < batch_size { w } else { 0 };
        let floats = |w: usize| examples as u64 * (examples + narrow(w)) as u64;
        widths
            .iter()
            .map(|&w| floats(w).saturating_mul(size_of::<f32>() as u64))
            .fold(0u64, u64::saturating_add)
    }

    /// The tables of the guide taps `used` (indices into `table`'s taps),
    /// each Gram matrix computed by row blocks in parallel with the
    /// products a batch's Gram matrix has.
    pub fn from_taps(table: &GuideTapTable, used: &[usize], batch_size: usize) -> Self {
        let taps = used.iter().max().map_or(0, |&g| g + 1);
        let mut grams = vec![None; taps];
        let mut narrow_taps = vec![None; taps];
        for &g in used {
            let tap = table.tap(g);
            grams[g] = Some(fixed_gram(tap));
            if tap.dims()[1] < batch_size {
                narrow_taps[g] = Some(tap.clone());
            }
        }
        let on_flex = (grams.iter().flatten())
            .all(|k| k.device().inner() == Device::flex() && k.dtype() == DType::F32);
        let grams = match on_flex {
            true => Tables::Host {
                examples: table.examples(),
                grams: grams.into_iter().map(|k| k.map(to_vec)).collect(),
            },
            false => Tables::Device(grams),
        };
        Self { grams, narrow_taps }
    }

    /// The guide's side of the batch of examples `indices`, in that order:
    /// what the Gram matrices of the guide's taps on that batch would be
    /// (unit centred on flex), and the narrow taps' rows.
    pub fn gather(&self, indices: &[usize], device: &Device) -> GuideGrams {
        let rows: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [indices.len()]), device);
        let rows_of = |k: &Tensor<2>| k.clone().select(0, rows.clone());
        let narrow_taps = (self.narrow_taps.iter())
            .map(|y| y.as_ref().map(rows_of))
            .collect();
        let (grams, unit_centred) = match &self.grams {
            Tables::Host { examples, grams } => {
                (unit_blocks(grams, *examples, indices, device), true)
            }
            Tables::Device(grams) => {
                let block = |k: &Tensor<2>| rows_of(k).select(1, rows.clone());
                (grams.iter().map(|k| k.as_ref().map(block)).collect(), false)
            }
        };
        GuideGrams {
            grams,
            narrow_taps,
            unit_centred,
        }
    }
}

/// The unit centred blocks of the examples `indices` of the host tables,
/// as tensors on `device`, by guide tap.
fn unit_blocks(
    grams: &[Option<Vec<f32>>],
    examples: usize,
    indices: &[usize],
    device: &Device,
) -> Vec<Option<Tensor<2>>> {
    let held: Vec<&[f32]> = grams.iter().flatten().map(Vec::as_slice).collect();
    let mut blocks = unit_centred_blocks(&held, examples, indices).into_iter();
    let n = indices.len();
    grams
        .iter()
        .map(|k| {
            k.as_ref().map(|_| {
                let block = blocks.next().expect("one block per table");
                Tensor::from_data(TensorData::new(block, [n, n]), device)
            })
        })
        .collect()
}

/// Where a guided or hinted step's guide representations come from.
pub enum GuideSource {
    /// The guide runs forward on each batch.
    Forward,
    /// The batch's rows of the guide's taps over the training set.
    Taps(GuideTapTable),
    /// The batch's blocks of the guide taps' Gram matrices over the
    /// training set.
    Grams(GuideGramTable),
}

/// What decides between the tables, besides the taps table itself.
pub struct GramTablePlan<'a> {
    /// Why the step needs the guide's taps themselves (a hint, a distance
    /// other than linear CKA); `None`: their Gram matrices suffice.
    pub taps_needed_by: Option<String>,
    /// The guide taps in the guided pairs, ascending.
    pub used: &'a [usize],
    /// `train.gram_table_bytes`.
    pub budget: u64,
    /// `train.batch_size`: taps narrower keep their rows.
    pub batch_size: usize,
}

impl GuideSource {
    /// The Gram tables where the plan allows them and they fit the budget,
    /// else the taps table, else the guide's forward pass; with a sentence
    /// saying why, for the log.
    pub fn choose(table: Option<GuideTapTable>, plan: &GramTablePlan<'_>) -> (Self, String) {
        let Some(table) = table else {
            let why = "the guide runs on every batch: the task's training inputs are not fixed \
                       per example (augmented, or padded per batch), or their taps exceed the \
                       taps table's limit";
            return (Self::Forward, why.into());
        };
        let examples = table.examples();
        if let Some(reason) = &plan.taps_needed_by {
            let why = format!("guide taps from the table of {examples} examples: {reason}");
            return (Self::Taps(table), why);
        }
        let widths: Vec<usize> = plan.used.iter().map(|&g| table.tap(g).dims()[1]).collect();
        let bytes = GuideGramTable::bytes(examples, &widths, plan.batch_size);
        if bytes > plan.budget {
            let why = format!(
                "guide taps from the table of {examples} examples: the Gram tables of {} guide \
                 taps need {bytes} bytes, above train.gram_table_bytes = {}",
                plan.used.len(),
                plan.budget
            );
            return (Self::Taps(table), why);
        }
        let grams = GuideGramTable::from_taps(&table, plan.used, plan.batch_size);
        let why = format!(
            "guide Gram matrices from tables over {examples} examples ({} guide taps, {bytes} \
             bytes within train.gram_table_bytes = {}): no guide forward pass or guide Gram \
             product in the step",
            plan.used.len(),
            plan.budget
        );
        (Self::Grams(grams), why)
    }
}
