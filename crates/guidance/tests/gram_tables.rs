//! The guide's Gram tables: a batch's block is the batch's Gram matrix by
//! definition, and a run that reads them trains as the run that reads the
//! guide's taps (images and language modelling), resumes exactly, and falls
//! back to the taps where the budget is too small.

mod common;

use common::{fcn, image_guide, images, input, seeded, train_config};

use burn::tensor::Device;
use untrainable_arch_rnn::RnnLmConfig;
use untrainable_core::{Guide, Network, seed, to_vec};
use untrainable_guidance::gram_table::{GramTablePlan, GuideSource};
use untrainable_guidance::{
    ArmConfig, Checkpointing, GuideGramTable, GuideTapTable, ImageData, LmTask, PairsConfig,
    Progress, RunSpec, Runtime, Task, TrainConfig, WindowCounts, resolve_pairs, train_arm,
};
use untrainable_results::MetricRow;
use untrainable_tasks::sotu::LmStream;

fn config(epochs: u32, batch_size: usize, gram_table_bytes: u64) -> TrainConfig {
    TrainConfig {
        gram_table_bytes,
        log_every_steps: 3,
        ..train_config(epochs, batch_size)
    }
}

/// One guided run of `target` on `task`.
fn run<K, T, G>(
    task: &K,
    guide: &Guide<G>,
    target: T,
    config: &TrainConfig,
    checkpoint: Option<&Checkpointing>,
) -> untrainable_guidance::ArmRun<T>
where
    K: Task,
    T: Network<Input = K::Input>,
    G: Network<Input = K::Input>,
{
    let device = Device::flex();
    let pairs = resolve_pairs(
        &PairsConfig::default(),
        &target.tap_names(),
        &guide.network().tap_names(),
    )
    .unwrap();
    let arm = ArmConfig::guided("guided");
    let spec = RunSpec {
        experiment: "test",
        arm: &arm,
        seed: 3,
        guide,
        pairs: &pairs,
        task,
        config,
    };
    let runtime = Runtime {
        device: &device,
        progress: Progress::Quiet,
        checkpoint,
    };
    train_arm(&spec, target, &runtime).unwrap()
}

/// Every row of `b` is the row of `a` at the same place, its value within
/// `tolerance` of it relative to the larger.
fn assert_rows_agree(a: &[MetricRow], b: &[MetricRow], tolerance: f64) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert_eq!((x.step, x.epoch, &x.metric), (y.step, y.epoch, &y.metric));
        let scale = x.value.abs().max(y.value.abs()).max(1e-30);
        assert!(
            (x.value - y.value).abs() <= tolerance * scale,
            "{} at step {}: {} against {}",
            x.metric,
            x.step,
            x.value,
            y.value
        );
    }
}

/// `y yᵀ` of the row-major `n × d` `y`, in `f64`.
fn gram_by_definition(y: &[f32], n: usize) -> Vec<f64> {
    let d = y.len() / n;
    (0..n * n)
        .map(|ij| {
            let (i, j) = (ij / n, ij % n);
            (0..d)
                .map(|f| f64::from(y[i * d + f]) * f64::from(y[j * d + f]))
                .sum()
        })
        .collect()
}

/// `H k H / ‖H k H‖` written out, `H = I − 11ᵀ/n`.
fn unit_centred_by_definition(k: &[f64], n: usize) -> Vec<f64> {
    let h = |i: usize, j: usize| f64::from(u8::from(i == j)) - 1.0 / n as f64;
    let hk: Vec<f64> = (0..n * n)
        .map(|ij| (0..n).map(|a| h(ij / n, a) * k[a * n + ij % n]).sum())
        .collect();
    let c: Vec<f64> = (0..n * n)
        .map(|ij| (0..n).map(|a| hk[ij / n * n + a] * h(a, ij % n)).sum())
        .collect();
    let norm = c.iter().map(|v| v * v).sum::<f64>().sqrt();
    c.iter().map(|v| v / norm).collect()
}

fn assert_close(got: &[f32], expected: &[f64], tolerance: f64, what: &str) {
    let scale = expected.iter().fold(0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{what}: nothing to compare");
    for (g, e) in got.iter().zip(expected) {
        assert!(
            (f64::from(*g) - e).abs() <= tolerance * scale,
            "{what}: {g} against {e}"
        );
    }
}

#[test]
fn a_batch_block_of_the_gram_tables_is_the_batch_gram_matrix_by_definition() {
    let _seeded = seeded();
    let device = Device::flex();
    let (train, input) = (images(80, 0), input());
    let guide = image_guide(&device);
    let table = GuideTapTable::build(&guide, &train, &input, 32, &device).unwrap();
    let taps = guide.network().tap_names().len();
    // Every other tap and the last (the logits, narrower than a batch), as
    // for an arm that guides a subset of pairs.
    let mut used: Vec<usize> = (0..taps).step_by(2).collect();
    if !used.contains(&(taps - 1)) {
        used.push(taps - 1);
    }
    let grams = GuideGramTable::from_taps(&table, &used, 16);
    let indices = [5, 79, 0, 17, 17, 40, 66];
    let n = indices.len();
    let gathered = grams.gather(&indices, &device);
    let direct = guide.forward(input.batch(&train, &indices, &device).0).taps;
    let mut narrow = 0;
    for (g, tap) in direct.iter().enumerate() {
        let Some(Some(block)) = gathered.grams.get(g) else {
            assert!(!used.contains(&g), "no table of used tap {}", tap.name);
            continue;
        };
        // On flex the blocks come centred and at unit norm from the host.
        assert!(gathered.unit_centred);
        let k = gram_by_definition(&to_vec(tap.value.clone()), n);
        let expected = unit_centred_by_definition(&k, n);
        assert_close(&to_vec(block.clone()), &expected, 1e-5, &tap.name);
        // A tap narrower than a batch of 16 keeps its rows, in batch order.
        let rows = gathered.narrow_taps[g].as_ref().map(|y| to_vec(y.clone()));
        assert_eq!(rows.is_some(), tap.value.dims()[1] < 16, "{}", tap.name);
        if let Some(rows) = rows {
            assert_eq!(rows, to_vec(tap.value.clone()), "{}", tap.name);
            narrow += 1;
        }
    }
    assert!(narrow > 0, "no narrow tap to check");
}

#[test]
fn the_gram_tables_are_chosen_only_for_linear_cka_within_the_budget() {
    let _seeded = seeded();
    let device = Device::flex();
    let (train, input) = (images(80, 0), input());
    let guide = image_guide(&device);
    let table = || GuideTapTable::build(&guide, &train, &input, 32, &device);
    let used = [0, 3];
    let plan = |budget, taps_needed_by: Option<&str>| GramTablePlan {
        taps_needed_by: taps_needed_by.map(String::from),
        used: &used,
        budget,
        batch_size: 16,
    };
    let widths: Vec<usize> = (used.iter())
        .map(|&g| table().unwrap().tap(g).dims()[1])
        .collect();
    let bytes = GuideGramTable::bytes(80, &widths, 16);
    let narrow: usize = widths.iter().filter(|&&w| w < 16).sum();
    assert_eq!(bytes, (80 * 80 * 2 + 80 * narrow) as u64 * 4);
    let kind = |source: GuideSource| match source {
        GuideSource::Forward => "forward",
        GuideSource::Taps(_) => "taps",
        GuideSource::Grams(_) => "grams",
    };
    assert_eq!(
        kind(GuideSource::choose(table(), &plan(bytes, None)).0),
        "grams"
    );
    assert_eq!(
        kind(GuideSource::choose(table(), &plan(bytes - 1, None)).0),
        "taps"
    );
    assert_eq!(kind(GuideSource::choose(table(), &plan(0, None)).0), "taps");
    let hint = plan(bytes, Some("a hint regresses the guide's taps"));
    assert_eq!(kind(GuideSource::choose(table(), &hint).0), "taps");
    assert_eq!(
        kind(GuideSource::choose(None, &plan(bytes, None)).0),
        "forward"
    );
}

#[test]
fn an_image_run_on_the_gram_tables_has_the_numbers_of_the_run_on_the_taps() {
    let _seeded = seeded();
    let device = Device::flex();
    let (train, val, input) = (images(80, 0), images(32, 3), input());
    let task = ImageData {
        train: &train,
        val: &val,
        test: None,
        input: &input,
    };
    let guide = image_guide(&device);
    // 80 examples, batches of 16: 5 steps per epoch.
    let on_tables = run(&task, &guide, fcn(&device), &config(2, 16, 1 << 20), None);
    let on_taps = run(&task, &guide, fcn(&device), &config(2, 16, 0), None);
    assert_eq!(on_tables.summary.status.to_string(), "ok");
    assert!(on_tables.rows.iter().any(|r| r.metric == "guidance_loss"));
    // On flex bit for bit: a block of the tables holds the batch's products.
    assert_rows_agree(&on_tables.rows, &on_taps.rows, 0.0);
}

/// A stream of `tokens` ids below 13 in a pattern with some structure.
fn stream(tokens: usize, phase: usize) -> LmStream {
    LmStream {
        tokens: (0..tokens)
            .map(|i| ((i * 5 + i / 7 + phase) % 13) as u32)
            .collect(),
        word_start: vec![true; tokens],
        words: tokens,
        documents: 1,
    }
}

#[test]
fn a_language_model_run_on_the_gram_tables_has_the_numbers_of_the_run_on_the_guide() {
    let _seeded = seeded();
    let device = Device::flex();
    let task = LmTask::from_streams(
        [stream(400, 0), stream(200, 3), stream(200, 5)],
        13,
        8,
        WindowCounts::all(),
    )
    .unwrap();
    let rnn = RnnLmConfig {
        vocab: 13,
        embedding: 8,
        hidden: 16,
        layers: 2,
        ..RnnLmConfig::copy_paste_cpu()
    };
    seed(&device, 21);
    let guide = Guide::new(
        RnnLmConfig {
            hidden: 12,
            ..rnn.clone()
        }
        .init(&device),
    );
    let target = |device: &Device| {
        seed(device, 22);
        rnn.init(device)
    };
    // Fewer examples than a batch's Gram matrix takes flex's symmetric
    // products from in training: the table takes them all the same.
    assert!(task.len(untrainable_guidance::Split::Train) < 65);
    let on_tables = run(
        &task,
        &guide,
        target(&device),
        &config(1, 16, 1 << 24),
        None,
    );
    let on_taps = run(&task, &guide, target(&device), &config(1, 16, 0), None);
    assert!(on_tables.rows.iter().any(|r| r.metric == "guidance_loss"));
    assert_rows_agree(&on_tables.rows, &on_taps.rows, 0.0);
}

#[test]
fn a_run_on_the_gram_tables_resumed_from_a_checkpoint_ends_with_the_uninterrupted_numbers() {
    let _seeded = seeded();
    let device = Device::flex();
    let (train, val, input) = (images(80, 0), images(32, 3), input());
    let task = ImageData {
        train: &train,
        val: &val,
        test: None,
        input: &input,
    };
    let guide = image_guide(&device);
    let config = config(3, 16, 1 << 20);
    let bits = |rows: &[MetricRow]| {
        rows.iter()
            .map(|r| (r.step, r.epoch, r.metric.clone(), r.value.to_bits()))
            .collect::<Vec<_>>()
    };
    let whole = run(&task, &guide, fcn(&device), &config, None);
    let dir = tempfile::tempdir().unwrap();
    let checkpointing = Checkpointing {
        dir: dir.path().to_path_buf(),
        every_steps: 7,
    };
    let first = run(&task, &guide, fcn(&device), &config, Some(&checkpointing));
    assert_eq!(bits(&first.rows), bits(&whole.rows));
    let latest = std::fs::read_to_string(dir.path().join("LATEST")).unwrap();
    assert_eq!(latest, "step-14");
    let resumed = run(&task, &guide, fcn(&device), &config, Some(&checkpointing));
    assert_eq!(
        bits(&resumed.rows),
        bits(&whole.rows),
        "resumed at {latest}"
    );
    let (a, b) = (resumed.best.unwrap(), whole.best.unwrap());
    assert_eq!(
        untrainable_core::parameter_values(&a),
        untrainable_core::parameter_values(&b)
    );
}
