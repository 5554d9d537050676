//! The binary end to end at the smoke preset, on the real State of the
//! Union corpus (seconds). Tests that train need the corpus: they run
//! whenever it can be found (the usual search, or the workspace's
//! `data/sotu/` from `scripts/setup-data.sh`) and print that they are
//! skipped otherwise; set `UNTRAINABLE_REQUIRE_DATA=1` to make its absence
//! a failure instead.

use std::path::PathBuf;
use std::process::Output;

use untrainable_tasks::sotu;
use untrainable_test_support::{
    assert_results_schema, read_parquet, real_data_dir, regime_gates, run_experiment, strings, text,
};

fn exp(args: &[&str]) -> Output {
    run_experiment(env!("CARGO_BIN_EXE_exp-lm"), args)
}

/// The directory holding the corpus, or `None` (skip) when it is missing
/// and not required.
fn data_dir() -> Option<PathBuf> {
    real_data_dir(&sotu::SOURCE)
}

const ARMS: [&str; 7] = [
    "guide",
    "large/base",
    "large/trained-guide",
    "large/untrained-guide",
    "small/base",
    "small/trained-guide",
    "small/untrained-guide",
];

#[test]
fn smoke_preset_writes_every_arm_and_the_guide_and_resumes() {
    let Some(data) = data_dir() else { return };
    let data = data.to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let out_dir = out.path().to_str().unwrap();
    let figures = out.path().join("figures");
    let run = exp(&[
        "--preset",
        "smoke",
        "--quiet",
        "--data",
        data,
        "--out",
        out_dir,
        "--figures",
        figures.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    for ext in ["png", "svg"] {
        let figure = figures.join(format!("lm.{ext}"));
        assert!(
            std::fs::metadata(&figure).is_ok_and(|m| m.len() > 1000),
            "no figure at {}",
            figure.display()
        );
    }
    let stdout = text(&run.stdout);
    assert!(stdout.contains("test word ppl"), "{stdout}");

    let dir = out.path().join("lm");
    assert_eq!(
        regime_gates(&dir).len(),
        4,
        "one row per gate of the preset"
    );
    assert_results_schema(&dir);
    let metrics = read_parquet(&dir.join("metrics.parquet"));
    let mut arms = strings(&metrics, "arm");
    arms.sort();
    arms.dedup();
    // The trained arms and the count-based anchor, which has rows but no run.
    let mut expected_arms: Vec<&str> = ARMS.into_iter().chain(["kneser-ney"]).collect();
    expected_arms.sort();
    assert_eq!(arms, expected_arms);
    let metric_names = strings(&metrics, "metric");
    // Uniform pairs: the first guide tap goes to the first RNN layer, the
    // last to the last (rnn3 of the small RNN, rnn5 of the large).
    for name in [
        "loss",
        "task_loss",
        "guidance_loss",
        "accuracy",
        "token_ppl",
        "word_ppl",
        "cka/rnn0/layer0.norm1",
        "cka/rnn3/layer3.ff2",
        "cka/rnn5/layer3.ff2",
    ] {
        assert!(metric_names.iter().any(|m| m == name), "no `{name}` rows");
    }
    // Per arm: word_ppl on validation for each of the 2 epochs and once on
    // test; every one equals exp(loss · tokens / words) of its split, so it
    // exceeds exp(loss), the token-level value (a word has ≥ 1 token).
    let split_col = strings(&metrics, "split");
    let arm_col = strings(&metrics, "arm");
    let values: Vec<f64> = metrics
        .column("value")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    for arm in ARMS.into_iter().chain(["kneser-ney"]) {
        let of = |metric: &str, split: &str| -> Vec<f64> {
            (0..metrics.height())
                .filter(|&i| {
                    arm_col[i] == arm && metric_names[i] == metric && split_col[i] == split
                })
                .map(|i| values[i])
                .collect()
        };
        let val_rows = if arm == "kneser-ney" { 1 } else { 2 };
        assert_eq!(of("word_ppl", "val").len(), val_rows, "{arm}");
        assert_eq!(of("word_ppl", "test").len(), 1, "{arm}");
        for split in ["val", "test"] {
            for ((loss, token), word) in of("loss", split)
                .into_iter()
                .zip(of("token_ppl", split))
                .zip(of("word_ppl", split))
            {
                assert!((token - loss.exp()).abs() / token < 1e-12, "{arm} {split}");
                assert!(word > token && word.is_finite(), "{arm} {split}");
            }
        }
    }

    let summary = read_parquet(&dir.join("summary.parquet"));
    assert_eq!(summary.height(), 7);
    let mut summary_arms = strings(&summary, "arm");
    summary_arms.sort();
    assert_eq!(summary_arms, ARMS);
    assert!(
        strings(&summary, "status").iter().all(|s| s == "ok"),
        "{summary}"
    );
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(config.contains("vocab_size = 512"), "{config}");
    let stored_guides = || -> Vec<(PathBuf, std::time::SystemTime)> {
        let mut files: Vec<_> = std::fs::read_dir(out.path().join("trained"))
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.path(), e.metadata().unwrap().modified().unwrap()))
            .collect();
        files.sort();
        files
    };
    let stored = stored_guides();
    assert!(!stored.is_empty(), "no trained guide stored");
    // The large RNN's arms read the guide the small RNN's run stored.
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("guide seed 0: trained before, read from"),
        "{stderr}"
    );

    // Every run is finished, so --resume reuses all of them (the trained
    // guide from the store, left as it was) and trains nothing.
    let resumed = exp(&[
        "--preset", "smoke", "--quiet", "--data", data, "--out", out_dir, "--resume",
    ]);
    assert!(resumed.status.success(), "{}", text(&resumed.stderr));
    let stderr = text(&resumed.stderr);
    for arm in &ARMS[1..] {
        assert!(
            stderr.contains(&format!("{arm} seed 0: kept from the earlier run")),
            "{stderr}"
        );
    }
    assert!(!stderr.contains(" epoch 1/"), "trained again: {stderr}");
    assert_eq!(
        stored_guides(),
        stored,
        "the stored guide was trained again"
    );
    assert_eq!(read_parquet(&dir.join("metrics.parquet")), metrics);
}

#[test]
fn dry_run_prints_the_resolved_config_with_overrides() {
    let run = exp(&[
        "--preset",
        "smoke",
        "--dry-run",
        "--set",
        "guide_train.epochs=7",
        "--seeds",
        "2",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(stdout.contains("epochs = 7"), "{stdout}");
    assert!(stdout.contains("seeds to run: [0, 1]"), "{stdout}");
}

#[test]
fn every_preset_resolves_and_validates() {
    for preset in ["smoke", "cpu", "paper", "paper-sotu"] {
        let run = exp(&["--preset", preset, "--dry-run"]);
        assert!(run.status.success(), "{preset}: {}", text(&run.stderr));
        let stdout = text(&run.stdout);
        for section in ["[guide_train]", "[targets.small]", "[targets.large]"] {
            assert!(stdout.contains(section), "{preset}: {stdout}");
        }
        // Context 50 and gradient clipping at 0.25, as the paper (docs/paper.md §2.2, §3).
        assert!(stdout.contains("context = 50"), "{preset}: {stdout}");
        assert!(
            stdout.contains("grad_clip_norm = 0.25"),
            "{preset}: {stdout}"
        );
    }
}

/// The paper preset reads WikiText-103 from --data: here a small corpus in
/// its format (300 distinct words), with networks narrowed so that one step
/// of each arm takes seconds.
#[test]
fn paper_preset_trains_on_the_wikitext_given() {
    let (data, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let words: Vec<String> = (0..300).map(|i| format!("w{i}")).collect();
    let train: String = words
        .chunks(10)
        .map(|line| format!(" {} \n", line.join(" ")))
        .collect();
    std::fs::write(data.path().join("wiki.train.tokens"), train.repeat(3)).unwrap();
    for split in ["valid", "test"] {
        let text = " = w1 = \n \n w5 w6 <unk> w7 . \n".repeat(30);
        std::fs::write(data.path().join(format!("wiki.{split}.tokens")), text).unwrap();
    }
    // 300 words, <eos>, <unk>: 302.
    let mut args = vec![
        "--preset",
        "paper",
        "--data",
        data.path().to_str().unwrap(),
        "--seed",
        "0",
        "--quiet",
        "--out",
        out.path().to_str().unwrap(),
    ];
    let sets = [
        "lm.vocab_size=302",
        "lm.context=8",
        "targets.small.vocab=302",
        "targets.large.vocab=302",
        "guide.vocab=302",
        "targets.small.embedding=8",
        "targets.small.hidden=8",
        "targets.large.embedding=8",
        "targets.large.hidden=8",
        "guide.d_model=8",
        "guide.heads=2",
        "guide.ff=8",
        "guide.max_positions=8",
        "train.max_steps=1",
        "guide_train.max_steps=1",
        "train.batch_size=4",
        "guide_train.batch_size=4",
        "train.eval_batch_size=16",
        "guide_train.eval_batch_size=16",
    ];
    for set in &sets {
        args.extend(["--set", set]);
    }
    let run = exp(&args);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let stderr = text(&run.stderr);
    // 90 lines of 10 words + <eos>, and the opening <eos>: 991 tokens, 123 windows of 8.
    assert!(
        stderr.contains("lm train: 90 documents, 123 windows of 8 tokens"),
        "{stderr}"
    );
    let summary = read_parquet(&out.path().join("lm").join("summary.parquet"));
    assert!(
        strings(&summary, "status").iter().all(|s| s == "ok"),
        "{summary}"
    );

    // The vocabulary's size comes from the data; a mismatch says what to set.
    args.extend(["--set", "lm.vocab_size=303"]);
    for net in [
        "targets.small.vocab=303",
        "targets.large.vocab=303",
        "guide.vocab=303",
    ] {
        args.extend(["--set", net]);
    }
    let err = text(&exp(&args).stderr);
    assert!(err.contains("has 302 words in its training split"), "{err}");
}

/// Without --data and $UNTRAINABLE_WIKITEXT103 the paper preset stops at
/// once, saying what to download and where to point.
#[test]
fn paper_preset_without_wikitext_says_what_to_download() {
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_exp-lm"))
        .args(["--preset", "paper", "--seed", "0"])
        .env_remove("UNTRAINABLE_WIKITEXT103")
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = text(&run.stderr);
    for needle in [
        "WikiText-103",
        "--data",
        "UNTRAINABLE_WIKITEXT103",
        "wiki.train.tokens",
    ] {
        assert!(err.contains(needle), "no `{needle}` in: {err}");
    }
}

#[test]
fn bad_input_gets_an_error_that_names_it() {
    let expect_error = |args: &[&str], needle: &str| {
        let run = exp(args);
        assert!(!run.status.success(), "{args:?} succeeded");
        let err = text(&run.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    let dry = ["--preset", "smoke", "--dry-run", "--set"];
    expect_error(&[&dry[..], &["train.epoch=3"]].concat(), "train.epoch");
    expect_error(
        &[&dry[..], &["targets.small.vocab=500"]].concat(),
        "targets.small.vocab = 512",
    );
    expect_error(
        &[&dry[..], &["guide.vocab=20"]].concat(),
        "guide.vocab = 512",
    );
    expect_error(
        &[&dry[..], &["lm.context=100"]].concat(),
        "guide.max_positions ≥ 100",
    );
    expect_error(
        &[&dry[..], &["lm.vocab_size=100"]].concat(),
        "lm.vocab_size",
    );
    expect_error(
        &[&dry[..], &["guide_train.epochs=0"]].concat(),
        "guide_train.epochs",
    );
    expect_error(
        &[&dry[..], &["data.windows.train=8"]].concat(),
        "data.windows.train",
    );
    expect_error(
        &[&dry[..], &["pairs.explicit=[[\"rnn9\", \"layer0.ff2\"]]"]].concat(),
        "rnn9",
    );
    // The corpus missing from an explicit directory: the error names it and the fix.
    let missing = exp(&[
        "--preset",
        "smoke",
        "--quiet",
        "--data",
        "/nonexistent/sotu",
        "--out",
        "/tmp/unused",
    ]);
    assert!(!missing.status.success());
    let err = text(&missing.stderr);
    assert!(
        err.contains("/nonexistent/sotu") && err.contains("setup-data.sh"),
        "{err}"
    );
    // More windows asked for than a split has.
    if let Some(data) = data_dir() {
        let out = tempfile::tempdir().unwrap();
        expect_error(
            &[
                "--preset",
                "smoke",
                "--quiet",
                "--data",
                data.to_str().unwrap(),
                "--out",
                out.path().to_str().unwrap(),
                "--set",
                "data.windows.val=1000000",
            ],
            "data.windows.val = 1000000",
        );
    }
}
