//! Tests on the real State of the Union tarball. They run whenever it can be
//! found (the usual search, or the workspace's `data/sotu/` from
//! `scripts/setup-data.sh`) and print that they are skipped otherwise. Set
//! `UNTRAINABLE_REQUIRE_DATA=1` to make absence a failure instead of a skip.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Instant;

use untrainable_tasks::Split;
use untrainable_tasks::sotu::{self, LmSplits, Perplexity, Sotu, SotuLm, SplitFractions};
use untrainable_tasks::tokenizer::{EOT, SubwordTokenizer};
use untrainable_test_support::real_data_dir;

/// Loads once for all tests in this file.
fn real() -> Option<&'static Sotu> {
    static DATA: OnceLock<Option<Sotu>> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = real_data_dir(&sotu::SOURCE)?;
        let data = Sotu::load(Some(&dir));
        Some(data.unwrap_or_else(|e| {
            panic!("the State of the Union tarball is present but does not load: {e}")
        }))
    })
    .as_ref()
}

/// The paper-size tokenizer on seed 0's training split, trained once.
fn trained() -> Option<&'static (LmSplits, SubwordTokenizer)> {
    static TOK: OnceLock<Option<(LmSplits, SubwordTokenizer)>> = OnceLock::new();
    TOK.get_or_init(|| {
        let data = real()?;
        let splits = data.split(0, SplitFractions::default());
        let start = Instant::now();
        let tok = data
            .tokenizer(&splits, SotuLm::paper().vocab_size, None)
            .unwrap();
        eprintln!(
            "trained a {}-token BPE on {} training speeches ({} words) in {:.2} s",
            tok.vocab_size(),
            splits.train.len(),
            splits
                .train
                .iter()
                .map(|&i| data.speeches[i].words())
                .sum::<usize>(),
            start.elapsed().as_secs_f64()
        );
        Some((splits, tok))
    })
    .as_ref()
}

#[test]
fn real_sotu_has_233_speeches_from_1790_to_2021() {
    let Some(data) = real() else { return };
    assert_eq!(data.sha256, sotu::SHA256);
    assert_eq!(data.len(), 233);
    let years: Vec<u16> = data.speeches.iter().map(|s| s.year).collect();
    assert!(years.windows(2).all(|w| w[0] <= w[1]), "not in year order");
    assert_eq!((years[0], years[232]), (1790, 2021));
    assert!(years.iter().all(|y| (1790..=2021).contains(y)));
    // Two speeches in 1953 and 1961, the years a president left office.
    let distinct: BTreeSet<u16> = years.iter().copied().collect();
    assert_eq!(distinct.len(), 231);
    let doubled: Vec<u16> = distinct
        .iter()
        .copied()
        .filter(|y| years.iter().filter(|x| *x == y).count() == 2)
        .collect();
    assert_eq!(doubled, vec![1953, 1961]);
    assert_eq!(data.speeches[0].president, "George Washington");
    assert_eq!(data.speeches[232].president, "Joseph R Biden");
    assert_eq!(data.speeches[232].party, "Democratic");

    let words = data.words();
    eprintln!("{} speeches, {words} words", data.len());
    assert!((1_700_000..1_900_000).contains(&words), "{words} words");
    let shortest = data.speeches.iter().map(|s| s.words()).min().unwrap();
    let longest = data.speeches.iter().map(|s| s.words()).max().unwrap();
    eprintln!("speech lengths: {shortest}..={longest} words");
    assert!(shortest > 500 && longest < 60_000, "{shortest}..={longest}");
    // Each text is one line, kept as shipped (44 begin or end with a space).
    assert!(data.speeches.iter().all(|s| !s.text.contains('\n')));
}

#[test]
fn real_split_keeps_every_speech_once_and_repeats_per_seed() {
    let Some(data) = real() else { return };
    let s = data.split(0, SplitFractions::default());
    assert_eq!((s.train.len(), s.val.len(), s.test.len()), (187, 23, 23));
    let mut all: Vec<usize> = Split::ALL
        .iter()
        .flat_map(|&p| s.indices(p).iter().copied())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..233).collect::<Vec<_>>());
    assert_eq!(data.split(0, SplitFractions::default()), s);
    assert_ne!(data.split(1, SplitFractions::default()).test, s.test);
    let years = |idx: &[usize]| {
        idx.iter()
            .map(|&i| data.speeches[i].year)
            .collect::<Vec<_>>()
    };
    // Pinned: a change here (e.g. of rand's shuffle) changes every split.
    assert_eq!(
        years(&s.val),
        [
            1790, 1799, 1811, 1812, 1820, 1834, 1837, 1843, 1844, 1850, 1854, 1889, 1929, 1936,
            1956, 1961, 1972, 1984, 1987, 1992, 1993, 1998, 2013
        ]
    );
    eprintln!("seed 0 validation years: {:?}", years(&s.val));
    eprintln!("seed 0 test years: {:?}", years(&s.test));
    for split in Split::ALL {
        let idx = s.indices(split);
        let words: usize = idx.iter().map(|&i| data.speeches[i].words()).sum();
        eprintln!("{}: {} speeches, {words} words", split.name(), idx.len());
    }
}

#[test]
fn real_tokenizer_round_trips_every_speech_and_counts_words() {
    let Some(data) = real() else { return };
    let Some((splits, tok)) = trained() else {
        return;
    };
    assert_eq!(tok.vocab_size(), SotuLm::paper().vocab_size);
    let start = Instant::now();
    let mut tokens = 0;
    for s in &data.speeches {
        let (ids, starts) = tok.encode_with_word_starts(&s.text);
        assert_eq!(tok.decode(&ids), s.text, "{}", s.member);
        assert_eq!(
            starts.iter().filter(|&&b| b).count(),
            s.words(),
            "{}",
            s.member
        );
        assert!(!ids.contains(&EOT));
        tokens += ids.len();
    }
    eprintln!(
        "encoded and decoded all speeches in {:.2} s: {tokens} tokens, {:.3} tokens per word",
        start.elapsed().as_secs_f64(),
        tokens as f64 / data.words() as f64
    );
    // Subwords: more tokens than words, far fewer than characters.
    assert!((1.0..1.6).contains(&(tokens as f64 / data.words() as f64)));

    let dir = tempfile::tempdir().unwrap();
    let key = data.tokenizer_key(splits, SotuLm::paper().vocab_size);
    let path = dir.path().join(key.file_name());
    tok.save(&path, &key).unwrap();
    eprintln!(
        "saved tokenizer: {} bytes as {}",
        std::fs::metadata(&path).unwrap().len(),
        key.file_name()
    );
    assert_eq!(&SubwordTokenizer::load(&path, Some(&key)).unwrap(), tok);
}

#[test]
fn real_lm_windows_and_uniform_perplexity() {
    let Some(data) = real() else { return };
    let Some((splits, tok)) = trained() else {
        return;
    };
    let context = SotuLm::paper().context;
    let v = tok.vocab_size() as f64;
    for split in Split::ALL {
        let stream = data.stream(tok, splits.indices(split));
        let w = stream.windows(context);
        eprintln!(
            "{}: {} tokens, {} words, {} windows of {context}",
            split.name(),
            stream.tokens.len(),
            stream.words,
            w.len()
        );
        assert_eq!(stream.documents, splits.indices(split).len());
        assert!(stream.words - w.scored_words() <= context);
        for i in [0, w.len() / 2, w.len() - 1] {
            let win = w.get(i);
            assert_eq!(win.input[1..], win.target[..context - 1]);
            assert_eq!(win.target[context - 1], stream.tokens[(i + 1) * context]);
        }
        // The uniform model: token perplexity V, word perplexity V^(tokens/words).
        let nll = w.scored_tokens() as f64 * v.ln();
        let ppl = Perplexity::of_windows(nll, &w);
        assert!((ppl.token - v).abs() / v < 1e-12);
        let expected = v.powf(w.scored_tokens() as f64 / w.scored_words() as f64);
        assert!((ppl.word - expected).abs() / expected < 1e-9);
    }
}

#[test]
fn real_smoke_vocabulary_trains_quickly() {
    let Some(data) = real() else { return };
    let start = Instant::now();
    let lm = data.lm_data(&SotuLm::smoke(), 0, None).unwrap();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "smoke preset (vocab {}): tokenizer and three streams in {secs:.2} s; train {} tokens",
        lm.tokenizer.vocab_size(),
        lm.train.tokens.len()
    );
    assert_eq!(lm.tokenizer.vocab_size(), 512);
    assert!(secs < 60.0, "{secs} s");
}
