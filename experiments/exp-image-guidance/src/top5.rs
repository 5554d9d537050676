//! Fashion-MNIST as the trainer's task, with its test set as the held-out
//! split, and top-5 accuracy (the paper's Table 1 measure, NOTES §2.1)
//! beside the loss and top-1 accuracy the trainer logs.
//!
//! The training loop writes `loss` and `accuracy` for every evaluation pass
//! (validation per epoch, test once for the selected network). This task
//! also counts top-5 hits in each pass and records, per finished pass, its
//! top-5 accuracy under the pass's exact mean loss and top-1 accuracy (their
//! bit patterns): [`FashionTask::add_top5`] then puts a `top5_accuracy` row
//! after each logged `accuracy` row whose pass it recorded. The records are
//! appended to a cache file as they are made, so runs that `--resume` keeps
//! and guides read back from the trained-guide store, whose passes ran in
//! an earlier invocation, get theirs too.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor};
use untrainable_core::{Guide, Network};
use untrainable_guidance::task::top_k_correct;
use untrainable_guidance::{GuideTapTable, ImageData, Part, Score, Task};
use untrainable_results::{MetricRow, Split};
use untrainable_tasks::fashion_mnist::ImageSet;

/// The metric name of top-5 accuracy.
pub const TOP5: &str = "top5_accuracy";

/// A finished evaluation pass: its split and the bits of its mean loss and
/// top-1 accuracy, as the trainer computes and logs them.
type PassKey = (bool, u64, u64);

fn key(test: bool, loss: f64, accuracy: f64) -> PassKey {
    (test, loss.to_bits(), accuracy.to_bits())
}

/// The pass under way: which part, and its sums so far.
#[derive(Default)]
struct Pass {
    part: Option<Part>,
    score: Score,
    top5: f64,
}

/// Training and validation images (`ImageData`), the test images, and the
/// top-5 accuracy of every evaluation pass.
pub struct FashionTask<'a> {
    pub images: ImageData<'a>,
    pub test: &'a ImageSet,
    pass: RefCell<Pass>,
    recorded: RefCell<HashMap<PassKey, f64>>,
    cache: PathBuf,
}

impl<'a> FashionTask<'a> {
    /// The task over `images` and `test`, reading the passes recorded before
    /// from `cache` (a missing file is an empty cache) and appending new ones.
    pub fn new(images: ImageData<'a>, test: &'a ImageSet, cache: &Path) -> Result<Self, String> {
        let mut recorded = HashMap::new();
        match std::fs::read_to_string(cache) {
            Ok(text) => {
                // A line cut short by a killed process is skipped.
                for line in text.lines() {
                    if let Some((k, v)) = parse_line(line) {
                        recorded.insert(k, v);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read {}: {e}", cache.display())),
        }
        Ok(Self {
            images,
            test,
            pass: RefCell::new(Pass::default()),
            recorded: RefCell::new(recorded),
            cache: cache.to_path_buf(),
        })
    }

    fn record(&self, test: bool, score: Score, top5: f64) -> Result<(), String> {
        let (loss, accuracy) = score.means();
        let top5 = top5 / score.counted;
        let k = key(test, loss, accuracy);
        if self.recorded.borrow_mut().insert(k, top5) == Some(top5) {
            return Ok(());
        }
        if let Some(dir) = self.cache.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.cache)
            .map_err(|e| format!("cannot open {}: {e}", self.cache.display()))?;
        file.write_all(format_line(k, top5).as_bytes())
            .map_err(|e| format!("cannot append to {}: {e}", self.cache.display()))
    }

    /// Inserts a [`TOP5`] row after every validation or test `accuracy` row
    /// (following its `loss` row, as the trainer logs them) whose pass was
    /// recorded and that has none yet. Returns how many such `accuracy` rows
    /// remain without one.
    pub fn add_top5(&self, rows: &mut Vec<MetricRow>) -> usize {
        let recorded = self.recorded.borrow();
        let same_point = |a: &MetricRow, b: &MetricRow| {
            (&a.arm, a.seed, a.step, a.epoch, a.split) == (&b.arm, b.seed, b.step, b.epoch, b.split)
        };
        let mut out = Vec::with_capacity(rows.len() + rows.len() / 4);
        let mut missing = 0;
        for (i, row) in rows.iter().enumerate() {
            out.push(row.clone());
            if row.metric != "accuracy" || !matches!(row.split, Split::Val | Split::Test) {
                continue;
            }
            let has = rows
                .get(i + 1)
                .is_some_and(|next| next.metric == TOP5 && same_point(next, row));
            if has {
                continue;
            }
            let loss = i
                .checked_sub(1)
                .map(|j| &rows[j])
                .filter(|prev| prev.metric == "loss" && same_point(prev, row));
            let found = loss.and_then(|loss| {
                recorded.get(&key(row.split == Split::Test, loss.value, row.value))
            });
            match found {
                Some(&top5) => out.push(MetricRow {
                    metric: TOP5.into(),
                    value: top5,
                    ..row.clone()
                }),
                None => missing += 1,
            }
        }
        *rows = out;
        missing
    }
}

fn format_line((test, loss, accuracy): PassKey, top5: f64) -> String {
    let split = if test { "test" } else { "val" };
    format!(
        "{split}\t{loss:016x}\t{accuracy:016x}\t{:016x}\n",
        top5.to_bits()
    )
}

fn parse_line(line: &str) -> Option<(PassKey, f64)> {
    let mut fields = line.split('\t');
    let test = match fields.next()? {
        "test" => true,
        "val" => false,
        _ => return None,
    };
    // Exactly three fields of 16 hex digits: a line cut short fails here.
    let mut bits = || {
        let field = fields.next().filter(|f| f.len() == 16)?;
        u64::from_str_radix(field, 16).ok()
    };
    let (loss, accuracy, top5) = (bits()?, bits()?, bits()?);
    if fields.next().is_some() {
        return None;
    }
    Some(((test, loss, accuracy), f64::from_bits(top5)))
}

impl Task for FashionTask<'_> {
    type Input = Tensor<4>;
    type Targets = Tensor<1, Int>;

    fn len(&self, part: Part) -> usize {
        match part {
            Part::Test => self.test.len(),
            part => self.images.len(part),
        }
    }

    fn batch(&self, part: Part, indices: &[usize], device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        // A batch of another part ends the pass under way (only full passes count).
        let mut pass = self.pass.borrow_mut();
        if pass.part != Some(part) {
            *pass = Pass {
                part: Some(part),
                ..Pass::default()
            };
        }
        match part {
            Part::Test => self.images.input.batch(self.test, indices, device),
            part => self.images.batch(part, indices, device),
        }
    }

    fn noise(&self, batch_size: usize, device: &Device) -> Tensor<4> {
        self.images.noise(batch_size, device)
    }

    fn loss(&self, output: Tensor<2>, targets: &Tensor<1, Int>) -> Tensor<1> {
        self.images.loss(output, targets)
    }

    fn score(&self, output: Tensor<2>, targets: &Tensor<1, Int>) -> Score {
        let top5 = top_k_correct(output.clone(), targets, 5);
        let score = self.images.score(output, targets);
        let mut pass = self.pass.borrow_mut();
        pass.score.add(score);
        pass.top5 += top5;
        let part = pass.part;
        let finished = part.filter(|&p| pass.score.counted as usize == self.len(p));
        if let Some(part) = finished {
            let (sums, top5) = (pass.score, pass.top5);
            *pass = Pass {
                part: Some(part),
                ..Pass::default()
            };
            drop(pass);
            if let Err(e) = self.record(part == Part::Test, sums, top5) {
                tracing::warn!("top-5 accuracy of this pass not kept: {e}");
            }
        }
        score
    }

    fn guide_table<G: Network<Input = Tensor<4>>>(
        &self,
        guide: &Guide<G>,
        batch_size: usize,
        device: &Device,
    ) -> Option<GuideTapTable> {
        self.images.guide_table(guide, batch_size, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use untrainable_guidance::{InputSpec, evaluate};

    fn images(n: usize, offset: usize) -> ImageSet {
        ImageSet {
            images: (0..n * 16)
                .map(|i| ((i * 37 + offset) % 101) as f32 / 101.0)
                .collect(),
            labels: (0..n).map(|i| ((i + offset) % 10) as u8).collect(),
            rows: 4,
            cols: 4,
        }
    }

    /// A linear classifier on 4×4 images, enough to give logits.
    #[derive(burn::module::Module, Debug)]
    struct Linear {
        layer: burn::nn::Linear,
    }

    impl Network for Linear {
        type Input = Tensor<4>;
        fn forward(&self, input: Tensor<4>) -> untrainable_core::Forward {
            let output = self.layer.forward(input.flatten(1, 3));
            untrainable_core::Forward {
                output,
                taps: Vec::new(),
            }
        }
        fn tap_names(&self) -> Vec<String> {
            Vec::new()
        }
    }

    fn row(metric: &str, split: Split, epoch: Option<u32>, value: f64) -> MetricRow {
        MetricRow {
            experiment: "x".into(),
            arm: "a".into(),
            seed: 0,
            step: 3,
            epoch,
            split,
            metric: metric.into(),
            value,
        }
    }

    #[test]
    fn every_evaluation_pass_gets_its_top5_row_also_from_the_cache() {
        let device = Device::flex();
        let (train, val, test) = (images(20, 0), images(13, 3), images(7, 5));
        let input = InputSpec {
            image_size: 4,
            channels: 1,
            mean: 0.5,
            std: 0.3,
            augment: Default::default(),
        };
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache.tsv");
        let task = || {
            let images = ImageData {
                train: &train,
                val: &val,
                input: &input,
            };
            FashionTask::new(images, &test, &cache).unwrap()
        };
        let first = task();
        untrainable_core::seed(&device, 1);
        let model = Linear {
            layer: burn::nn::LinearConfig::new(16, 10).init(&device),
        };
        // Batches of 5 over 13 and 7 examples: passes end on short batches.
        let (val_loss, val_acc) = evaluate(&model, &first, Part::Val, 5, &device);
        let (test_loss, test_acc) = evaluate(&model, &first, Part::Test, 5, &device);
        // A training batch in between, as the loop draws them, starts no pass.
        first.batch(Part::Train, &[0, 1], &device);
        let expected = |set: &ImageSet| {
            let idx: Vec<usize> = (0..set.len()).collect();
            let (x, y) = input.batch(set, &idx, &device);
            top_k_correct(model.forward(x).output, &y, 5) / set.len() as f64
        };
        let logged = vec![
            row("loss", Split::Val, Some(1), val_loss),
            row("accuracy", Split::Val, Some(1), val_acc),
            row("cka/linear0/conv1", Split::Val, Some(1), 0.5),
            row("loss", Split::Test, Some(1), test_loss),
            row("accuracy", Split::Test, Some(1), test_acc),
            // A pass that no task recorded keeps no top-5 row.
            row("loss", Split::Val, Some(2), 1.0),
            row("accuracy", Split::Val, Some(2), 0.5),
        ];
        let mut rows = logged.clone();
        assert_eq!(first.add_top5(&mut rows), 1);
        let top5: Vec<(Split, f64)> = rows
            .iter()
            .filter(|r| r.metric == TOP5)
            .map(|r| (r.split, r.value))
            .collect();
        assert_eq!(
            top5,
            [(Split::Val, expected(&val)), (Split::Test, expected(&test))]
        );
        assert_eq!(rows[2].metric, TOP5, "right after its accuracy row");
        // Adding again changes nothing.
        let mut again = rows.clone();
        first.add_top5(&mut again);
        assert_eq!(again, rows);

        // A later invocation reads the cache: the same rows without evaluating.
        let mut later = logged;
        assert_eq!(task().add_top5(&mut later), 1);
        assert_eq!(later, rows);
    }

    #[test]
    fn cache_lines_round_trip_and_a_cut_line_is_skipped() {
        let k = key(true, 0.25, 0.5);
        let line = format_line(k, 0.75);
        assert_eq!(parse_line(line.trim_end()), Some((k, 0.75)));
        for cut in 0..line.len() - 1 {
            assert_eq!(parse_line(&line[..cut]), None, "cut at {cut}");
        }
        assert_eq!(parse_line("train\t0\t0\t0"), None);
    }
}
