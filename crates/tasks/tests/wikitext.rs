//! WikiText-103's reader on small files in the release's format, and the
//! `data check` reports of both data sets.

use std::fs;
use std::path::Path;

use untrainable_tasks::check::{check_imagenet, check_wikitext};
use untrainable_tasks::sequence::Split;
use untrainable_tasks::sotu::Perplexity;
use untrainable_tasks::wikitext::{EOS, Release, UNK, WikiText};

/// Lines as the tokenised release writes them: a leading space, headings
/// between `=`, blank lines, `@-@` joins, `<unk>` for rare words.
const TRAIN: &str = " \n = Valkyria Chronicles = \n \n The game began in 2010 @-@ <unk> . \n The game sold well . \n";
const VALID: &str = " = Game = \n The <unk> game . \n";
const TEST: &str = " The game began . \n \n";

fn write_release(dir: &Path, extension: &str, texts: [&str; 3]) {
    for (name, text) in ["train", "valid", "test"].iter().zip(texts) {
        fs::write(dir.join(format!("wiki.{name}.{extension}")), text).unwrap();
    }
}

#[test]
fn words_ids_and_line_ends_follow_the_files() {
    let dir = tempfile::tempdir().unwrap();
    write_release(dir.path(), "tokens", [TRAIN, VALID, TEST]);
    let text = WikiText::load(dir.path()).unwrap();
    assert_eq!(text.release, Release::Tokens);
    let v = &text.vocabulary;
    assert_eq!(
        &v.words[..6],
        [EOS, UNK, "=", "Valkyria", "Chronicles", "The"]
    );
    // Every distinct training word, plus <eos> (<unk> appears in the text).
    let distinct: std::collections::HashSet<&str> = TRAIN.split_whitespace().collect();
    assert_eq!(v.len(), distinct.len() + 1);

    let words = |split| -> Vec<String> {
        text.stream(split)
            .tokens
            .iter()
            .map(|&t| v.words[t as usize].clone())
            .collect()
    };
    assert_eq!(
        words(Split::Test),
        [EOS, "The", "game", "began", ".", EOS, EOS]
    );
    assert_eq!(
        words(Split::Val),
        [EOS, "=", UNK, "=", EOS, "The", UNK, "game", ".", EOS]
    );
    // "Game" (capitalised) is not a training word: counted as unknown.
    assert_eq!(text.unknown, [1, 0]);
    let train = &text.train;
    assert_eq!(train.documents, 5);
    assert_eq!(train.tokens.len(), 1 + TRAIN.split_whitespace().count() + 5);
    assert_eq!(train.words, train.tokens.len() - 1);
    assert!(!train.word_start[0] && train.word_start[1..].iter().all(|&b| b));
}

#[test]
fn the_raw_release_is_read_when_the_tokenised_one_is_absent() {
    let dir = tempfile::tempdir().unwrap();
    write_release(
        dir.path(),
        "raw",
        [" The cat sat . \n", " The dog sat . \n", " A cat . \n"],
    );
    let text = WikiText::load(dir.path()).unwrap();
    assert_eq!(text.release, Release::Raw);
    assert_eq!(text.unknown, [1, 1]); // "dog", "A"
    assert_eq!(text.val.tokens[2], text.vocabulary.id(UNK).unwrap());
}

#[test]
fn windows_and_word_perplexity_of_a_uniform_model() {
    let dir = tempfile::tempdir().unwrap();
    write_release(dir.path(), "tokens", [TRAIN, VALID, TEST]);
    let text = WikiText::load(dir.path()).unwrap();
    let windows = text.train.windows(4);
    assert_eq!(windows.len(), (text.train.tokens.len() - 1) / 4);
    let w = windows.get(1);
    assert_eq!(w.input, &text.train.tokens[4..8]);
    assert_eq!(w.target, &text.train.tokens[5..9]);
    // Every target is a word (<eos> included): word and token perplexity agree,
    // and a uniform model over V words has perplexity V.
    assert_eq!(windows.scored_words(), windows.scored_tokens());
    let vocab = text.vocabulary.len() as f64;
    let ppl = Perplexity::of_windows(vocab.ln() * windows.scored_tokens() as f64, &windows);
    assert!((ppl.word - vocab).abs() < 1e-9 && (ppl.token - vocab).abs() < 1e-9);
}

#[test]
fn missing_files_empty_files_and_bad_text_are_named() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("wiki.train.tokens"), TRAIN).unwrap();
    let message = WikiText::load(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("missing wiki.valid.tokens, wiki.test.tokens")
            && message.contains("--data"),
        "{message}"
    );

    write_release(dir.path(), "tokens", [TRAIN, "", TEST]);
    let message = WikiText::load(dir.path()).unwrap_err().to_string();
    assert!(
        message.contains("wiki.valid.tokens: empty file"),
        "{message}"
    );

    write_release(dir.path(), "tokens", [TRAIN, VALID, TEST]);
    fs::write(
        dir.path().join("wiki.test.tokens"),
        b" ok \n \xff\xfe bad \n",
    )
    .unwrap();
    let message = WikiText::load(dir.path()).unwrap_err().to_string();
    assert!(message.contains("wiki.test.tokens: line 2"), "{message}");
}

#[test]
fn check_reports_wikitext_counts_and_problems() {
    let dir = tempfile::tempdir().unwrap();
    write_release(dir.path(), "tokens", [TRAIN, VALID, TEST]);
    let report = check_wikitext(dir.path());
    assert_eq!(report["ok"], true);
    assert_eq!(report["release"], "tokens");
    assert_eq!(report["splits"]["test"]["lines"], 2);
    assert_eq!(report["splits"]["test"]["tokens"], 6);
    assert_eq!(report["unknown"]["valid"], 1);

    fs::remove_file(dir.path().join("wiki.test.tokens")).unwrap();
    let report = check_wikitext(dir.path());
    assert_eq!(report["ok"], false);
    assert!(
        report["problems"][0]
            .as_str()
            .unwrap()
            .contains("wiki.test.tokens")
    );
}

#[test]
fn check_reports_imagenet_counts_and_undecodable_files() {
    let dir = tempfile::tempdir().unwrap();
    for split in ["train", "val"] {
        for class in ["n01", "n02"] {
            let path = dir.path().join(split).join(class);
            fs::create_dir_all(&path).unwrap();
            image::RgbImage::from_pixel(30, 20, image::Rgb([9, 99, 199]))
                .save_with_format(path.join("a.JPEG"), image::ImageFormat::Jpeg)
                .unwrap();
        }
    }
    let report = check_imagenet(dir.path(), 2);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["classes"], 2);
    assert_eq!(report["splits"]["train"]["images"], 2);

    let broken = dir.path().join("val/n02/b.JPEG");
    fs::write(&broken, b"\xff\xd8\xff\xe0 cut short").unwrap();
    let report = check_imagenet(dir.path(), 2);
    assert_eq!(report["ok"], false);
    assert_eq!(report["splits"]["val"]["undecodable"], 1);
    assert_eq!(report["undecodable"][0], broken.display().to_string());
    assert!(report["problems"][0].as_str().unwrap().contains("b.JPEG"));

    fs::remove_dir_all(dir.path().join("train")).unwrap();
    let report = check_imagenet(dir.path(), 2);
    assert!(
        report["problems"][0]
            .as_str()
            .unwrap()
            .contains("missing the train split")
    );
}
