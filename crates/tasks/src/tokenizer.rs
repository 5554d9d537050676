//! A byte-level BPE tokenizer (GPT-2's scheme), trained here on a corpus's
//! training split, saved to and loaded from a small JSON file.
//!
//! # Why byte-level BPE, and why written here
//!
//! The paper's LM (docs/paper.md §2.2) used BERT's WordPiece vocabulary on
//! WikiText-103; it is trained on neither this corpus nor offline here, so a
//! subword vocabulary is learned from the State of the Union training split
//! instead. Byte-level BPE is chosen over WordPiece because it has no
//! unknown token and `decode(encode(s)) == s` for every string: each token is
//! a byte string, and the tokens of a text concatenate to its UTF-8 bytes.
//! That exactness is what lets a token stream carry its text's word count,
//! and so the word-level perplexity the paper reports (see
//! [`crate::sotu::LmStream`]).
//!
//! The `tokenizers` crate (0.22, `default-features = false` with
//! `fancy-regex`) can train the same model but was not taken: it turns on
//! default features of `ahash`, `thiserror`, `aho-corasick` and extra
//! `regex-automata` features that burn and polars already use, so adding it
//! rebuilds all of burn once on every machine, and its own new crates cost
//! about 100 s more of every cold build on two cores (tokenizers alone
//! 61 s, fancy-regex 12 s, darling, nom, …; 3 min for the crate with all
//! its dependencies from cold). The part needed here — train, encode,
//! decode — is the small, fully tested module below.
//!
//! # The scheme
//!
//! * Text is first cut into chunks by GPT-2's pre-tokenisation pattern
//!   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
//!   ([`pre_tokenize`]), with Rust's `char::is_alphabetic` / `is_numeric` /
//!   `is_whitespace` standing for `\p{L}` / `\p{N}` / `\s`. The chunks
//!   partition the text, and no merge crosses a chunk boundary.
//! * Ids 0–255 are the bytes, id 256 is [`EOT`] (end of text, never produced
//!   by [`SubwordTokenizer::encode`]), and id `257 + r` is the token made by
//!   merge `r`.
//! * Training repeatedly merges the most frequent adjacent pair over all
//!   chunks (ties: the smallest pair of ids), until the vocabulary has the
//!   requested size or no pair occurs twice.
//! * Encoding a chunk repeatedly merges, left to right, every occurrence of
//!   the adjacent pair with the lowest merge rank, as GPT-2's `bpe()` does.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// The end-of-text token, placed between documents in a token stream.
pub const EOT: u32 = 256;
/// Ids below this are bytes or [`EOT`]; merges start here.
pub const BASE_VOCAB: usize = 257;
/// How [`EOT`] is shown by [`SubwordTokenizer::decode`].
pub const EOT_TEXT: &str = "<|endoftext|>";
/// The `format` field of saved tokenizer files.
pub const FILE_FORMAT: &str = "untrainable-byte-level-bpe-v1";

/// What a saved tokenizer was trained on, so that an experiment reuses a
/// file only for the same corpus, split and vocabulary size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerKey {
    /// sha256 of the corpus file the training texts came from.
    pub corpus_sha256: String,
    /// Seed of the split whose training part was used.
    pub split_seed: u64,
    /// The split's proportions as a short tag, e.g. `"80-10-10"`.
    pub split: String,
    /// The vocabulary size asked for (the trained one may be smaller).
    pub vocab_size: usize,
}

impl TokenizerKey {
    /// A file name that differs whenever the key does (the sha cut to 16
    /// digits), e.g. `bpe-ab03f909e80b99af-seed0-80-10-10-v8192.json`.
    pub fn file_name(&self) -> String {
        let sha: String = self.corpus_sha256.chars().take(16).collect();
        let split: String = self
            .split
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!(
            "bpe-{sha}-seed{}-{split}-v{}.json",
            self.split_seed, self.vocab_size
        )
    }
}

/// The saved form: the merges in rank order and, optionally, their key.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenizerFile {
    format: String,
    key: Option<TokenizerKey>,
    merges: Vec<[u32; 2]>,
}

/// A trained byte-level BPE tokenizer. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubwordTokenizer {
    /// Merge `r` joins these two ids into id `257 + r`.
    merges: Vec<[u32; 2]>,
    /// Rank of each merged pair.
    ranks: HashMap<(u32, u32), u32>,
    /// The bytes each id stands for (empty for [`EOT`]).
    token_bytes: Vec<Vec<u8>>,
}

impl SubwordTokenizer {
    /// Builds a tokenizer from merges in rank order, checking that each
    /// merge joins ids that exist before it and never [`EOT`].
    pub fn from_merges(merges: Vec<[u32; 2]>) -> Result<Self, String> {
        let mut token_bytes: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        token_bytes.push(Vec::new());
        let mut ranks = HashMap::with_capacity(merges.len());
        for (r, &[a, b]) in merges.iter().enumerate() {
            let next = (BASE_VOCAB + r) as u32;
            for id in [a, b] {
                if id == EOT || id >= next {
                    return Err(format!(
                        "merge {r} joins id {id}, which is the end-of-text id or not yet defined \
                         (ids below {next} only)"
                    ));
                }
            }
            if ranks.insert((a, b), r as u32).is_some() {
                return Err(format!("merge {r} repeats the pair ({a}, {b})"));
            }
            let mut bytes = token_bytes[a as usize].clone();
            bytes.extend_from_slice(&token_bytes[b as usize]);
            token_bytes.push(bytes);
        }
        Ok(Self {
            merges,
            ranks,
            token_bytes,
        })
    }

    /// Learns up to `vocab_size - 257` merges from `texts`. The result is
    /// fixed by the texts and `vocab_size` alone (independent of hash order).
    ///
    /// # Panics
    /// If `vocab_size < 257` (bytes plus [`EOT`]), a configuration bug.
    pub fn train<S: AsRef<str>>(texts: &[S], vocab_size: usize) -> Self {
        assert!(
            vocab_size >= BASE_VOCAB,
            "SubwordTokenizer::train: vocab_size must be at least {BASE_VOCAB} (256 bytes + \
             end of text), got {vocab_size}"
        );
        let wanted = vocab_size - BASE_VOCAB;

        let mut chunk_counts: HashMap<&str, i64> = HashMap::new();
        for text in texts {
            for chunk in pre_tokenize(text.as_ref()) {
                *chunk_counts.entry(chunk).or_default() += 1;
            }
        }
        let mut unique: Vec<(&str, i64)> = chunk_counts.into_iter().collect();
        unique.sort_unstable();
        let freq: Vec<i64> = unique.iter().map(|&(_, n)| n).collect();
        let mut words: Vec<Vec<u32>> = unique
            .iter()
            .map(|(s, _)| s.bytes().map(u32::from).collect())
            .collect();

        // Pair counts, and for each pair the words it may occur in (entries
        // go stale as words change; they are re-checked when used).
        let mut counts: HashMap<(u32, u32), i64> = HashMap::new();
        let mut places: HashMap<(u32, u32), Vec<u32>> = HashMap::new();
        for (wi, w) in words.iter().enumerate() {
            for p in w.windows(2) {
                let pair = (p[0], p[1]);
                *counts.entry(pair).or_default() += freq[wi];
                let list = places.entry(pair).or_default();
                if list.last() != Some(&(wi as u32)) {
                    list.push(wi as u32);
                }
            }
        }
        // Max-heap on (count, smallest pair); entries may be stale and are
        // checked against `counts` when popped.
        let mut heap: BinaryHeap<(i64, Reverse<(u32, u32)>)> =
            counts.iter().map(|(&p, &c)| (c, Reverse(p))).collect();

        let mut merges: Vec<[u32; 2]> = Vec::with_capacity(wanted);
        let mut delta: HashMap<(u32, u32), i64> = HashMap::new();
        while merges.len() < wanted {
            let Some((count, Reverse(pair))) = heap.pop() else {
                break;
            };
            let current = counts.get(&pair).copied().unwrap_or(0);
            if current != count {
                if current > 0 {
                    heap.push((current, Reverse(pair)));
                }
                continue;
            }
            if count < 2 {
                break;
            }
            let new = (BASE_VOCAB + merges.len()) as u32;
            merges.push([pair.0, pair.1]);

            let mut list = places.remove(&pair).unwrap_or_default();
            list.sort_unstable();
            list.dedup();
            delta.clear();
            for wi in list {
                let w = &mut words[wi as usize];
                let f = freq[wi as usize];
                if !w.windows(2).any(|p| (p[0], p[1]) == pair) {
                    continue;
                }
                for p in w.windows(2) {
                    *delta.entry((p[0], p[1])).or_default() -= f;
                }
                merge_pair(w, pair, new);
                for p in w.windows(2) {
                    let q = (p[0], p[1]);
                    *delta.entry(q).or_default() += f;
                    if p[0] == new || p[1] == new {
                        let l = places.entry(q).or_default();
                        if l.last() != Some(&wi) {
                            l.push(wi);
                        }
                    }
                }
            }
            for (&q, &d) in &delta {
                if d == 0 {
                    continue;
                }
                let c = counts.entry(q).or_default();
                *c += d;
                let c = *c;
                if c <= 0 {
                    counts.remove(&q);
                } else if d > 0 {
                    heap.push((c, Reverse(q)));
                }
            }
        }
        Self::from_merges(merges).expect("training produces valid merges")
    }

    /// Number of ids: 256 bytes, [`EOT`] and one per merge.
    pub fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    /// The merges in rank order.
    pub fn merges(&self) -> &[[u32; 2]] {
        &self.merges
    }

    /// The bytes id `id` stands for (empty for [`EOT`]).
    ///
    /// # Panics
    /// If `id >= vocab_size()`.
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        &self.token_bytes[id as usize]
    }

    /// The ids of `text`. Never contains [`EOT`].
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_with_word_starts(text).0
    }

    /// The ids of `text` and, for each, whether a whitespace-separated word
    /// starts in it: a non-whitespace character at the start of `text` or
    /// after whitespace. Each word starts in exactly one token, so the
    /// number of `true`s is `text.split_whitespace().count()`.
    pub fn encode_with_word_starts(&self, text: &str) -> (Vec<u32>, Vec<bool>) {
        let mut cache = HashMap::new();
        let mut ids = Vec::new();
        let mut starts = Vec::new();
        self.encode_into(text, &mut cache, &mut ids, &mut starts);
        (ids, starts)
    }

    /// Appends the ids of `text` and their word-start flags (see
    /// [`SubwordTokenizer::encode_with_word_starts`]) to `ids` / `starts`,
    /// reusing `cache` (chunk → ids) across calls.
    pub fn encode_into<'t>(
        &self,
        text: &'t str,
        cache: &mut HashMap<&'t str, Vec<u32>>,
        ids: &mut Vec<u32>,
        starts: &mut Vec<bool>,
    ) {
        let mut prev_ws = true;
        let mut at = 0;
        for chunk in pre_tokenize(text) {
            debug_assert_eq!(text[at..].as_ptr(), chunk.as_ptr());
            let chunk_ids = cache
                .entry(chunk)
                .or_insert_with(|| self.encode_chunk(chunk));
            // Byte offset (within the chunk) of the chunk's word start, if any.
            let mut start = None;
            for (i, c) in chunk.char_indices() {
                let ws = c.is_whitespace();
                if prev_ws && !ws && start.is_none() {
                    start = Some(i);
                }
                prev_ws = ws;
            }
            let mut offset = 0;
            for &id in chunk_ids.iter() {
                let len = self.token_bytes[id as usize].len();
                ids.push(id);
                starts.push(start.is_some_and(|s| (offset..offset + len).contains(&s)));
                offset += len;
            }
            at += chunk.len();
        }
    }

    /// BPE on one pre-tokenised chunk.
    fn encode_chunk(&self, chunk: &str) -> Vec<u32> {
        let mut w: Vec<u32> = chunk.bytes().map(u32::from).collect();
        while w.len() > 1 {
            let best = w
                .windows(2)
                .filter_map(|p| self.ranks.get(&(p[0], p[1])).map(|&r| (r, (p[0], p[1]))))
                .min();
            let Some((rank, pair)) = best else { break };
            merge_pair(&mut w, pair, BASE_VOCAB as u32 + rank);
        }
        w
    }

    /// The bytes of `ids` concatenated ([`EOT`] contributes none).
    ///
    /// # Panics
    /// If an id is `>= vocab_size()`.
    pub fn decode_bytes(&self, ids: &[u32]) -> Vec<u8> {
        ids.iter()
            .flat_map(|&id| self.token_bytes[id as usize].iter().copied())
            .collect()
    }

    /// The text of `ids`, with [`EOT`] shown as [`EOT_TEXT`]. Exactly the
    /// encoded text for the output of [`SubwordTokenizer::encode`]; bytes
    /// that are not valid UTF-8 (a sequence cut inside a character) become
    /// U+FFFD.
    ///
    /// # Panics
    /// If an id is `>= vocab_size()`.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        for part in ids.split_inclusive(|&id| id == EOT) {
            let (body, eot) = match part.split_last() {
                Some((&EOT, body)) => (body, true),
                _ => (part, false),
            };
            out.push_str(&String::from_utf8_lossy(&self.decode_bytes(body)));
            if eot {
                out.push_str(EOT_TEXT);
            }
        }
        out
    }

    /// Writes the merges and `key` to `path` as JSON (through a temporary
    /// file and a rename, so a reader never sees half a file).
    pub fn save(&self, path: &Path, key: &TokenizerKey) -> Result<(), DataError> {
        let file = TokenizerFile {
            format: FILE_FORMAT.into(),
            key: Some(key.clone()),
            merges: self.merges.clone(),
        };
        let json = serde_json::to_string(&file).expect("tokenizer serialises");
        let io = |source| DataError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = PathBuf::from(format!("{}.tmp{}", path.display(), std::process::id()));
        std::fs::write(&tmp, json).map_err(|source| DataError::Io {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads a file written by [`SubwordTokenizer::save`]. With `expected`,
    /// the file's key must equal it.
    pub fn load(path: &Path, expected: Option<&TokenizerKey>) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::BadTokenizer {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
            path: path.to_owned(),
            source,
        })?;
        let file: TokenizerFile =
            serde_json::from_str(&text).map_err(|e| bad(format!("not a tokenizer file: {e}")))?;
        if file.format != FILE_FORMAT {
            return Err(bad(format!(
                "format {:?}, expected {FILE_FORMAT:?}",
                file.format
            )));
        }
        if let Some(want) = expected
            && file.key.as_ref() != Some(want)
        {
            return Err(bad(format!(
                "trained for {:?}, but {want:?} is wanted",
                file.key
            )));
        }
        Self::from_merges(file.merges).map_err(bad)
    }
}

/// Replaces each non-overlapping occurrence of `pair` in `w`, left to
/// right, by `new`.
fn merge_pair(w: &mut Vec<u32>, pair: (u32, u32), new: u32) {
    let mut out = 0;
    let mut i = 0;
    while i < w.len() {
        if i + 1 < w.len() && (w[i], w[i + 1]) == pair {
            w[out] = new;
            i += 2;
        } else {
            w[out] = w[i];
            i += 1;
        }
        out += 1;
    }
    w.truncate(out);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Number,
    Other,
    Space,
}

fn class(c: char) -> Class {
    if c.is_whitespace() {
        Class::Space
    } else if c.is_alphabetic() {
        Class::Letter
    } else if c.is_numeric() {
        Class::Number
    } else {
        Class::Other
    }
}

const CONTRACTIONS: [&str; 7] = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

/// Cuts `text` into GPT-2's pre-tokenisation chunks (see the module
/// documentation). The chunks are non-empty and concatenate to `text`.
pub fn pre_tokenize(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let len = chunk_len(rest);
        let (chunk, tail) = rest.split_at(len);
        rest = tail;
        Some(chunk)
    })
}

/// Length in bytes of the first chunk of non-empty `s`.
fn chunk_len(s: &str) -> usize {
    if let Some(c) = CONTRACTIONS.iter().find(|c| s.starts_with(**c)) {
        return c.len();
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
    let body = s.strip_prefix(' ').unwrap_or(s);
    let lead = s.len() - body.len();
    if let Some(first) = body.chars().next() {
        let k = class(first);
        if k != Class::Space {
            let run: usize = body
                .chars()
                .take_while(|&c| class(c) == k)
                .map(char::len_utf8)
                .sum();
            return lead + run;
        }
    }
    // `\s+(?!\S)|\s+`: a whitespace run, less its last character when
    // something else follows it (that character may then lead the next
    // chunk), unless the run is a single character.
    let mut chars = s.char_indices().take_while(|&(_, c)| c.is_whitespace());
    let (mut last_start, mut end, mut n) = (0, 0, 0);
    for (i, c) in chars.by_ref() {
        last_start = i;
        end = i + c.len_utf8();
        n += 1;
    }
    if end == s.len() || n == 1 {
        end
    } else {
        last_start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(s: &str) -> Vec<&str> {
        pre_tokenize(s).collect()
    }

    #[test]
    fn pre_tokenize_follows_gpt2_pattern() {
        assert_eq!(
            chunks("Hello, world! It's 2021."),
            ["Hello", ",", " world", "!", " It", "'s", " 2021", "."]
        );
        // A whitespace run gives its last space to the next word.
        assert_eq!(chunks("a   b"), ["a", "  ", " b"]);
        // Trailing whitespace stays one chunk; a lone newline is its own.
        assert_eq!(chunks("a  \n"), ["a", "  \n"]);
        assert_eq!(chunks("a\nb"), ["a", "\n", "b"]);
        assert_eq!(chunks("a \n b"), ["a", " \n", " b"]);
        assert_eq!(chunks("we'll don't"), ["we", "'ll", " don", "'t"]);
        assert_eq!(chunks(" --$5"), [" --$", "5"]);
        assert_eq!(chunks("x1y"), ["x", "1", "y"]);
        assert_eq!(chunks(""), Vec::<&str>::new());
        assert_eq!(chunks(" "), [" "]);
        assert_eq!(chunks("Über café—naïve"), ["Über", " café", "—", "naïve"]);
    }

    #[test]
    fn pre_tokenize_partitions_any_text() {
        for s in [
            "  leading and trailing  ",
            "tabs\tand\r\nnewlines\n\n\nend",
            "\u{a0}nbsp\u{2003}em space\u{3000}",
            "emoji 👍🏽 and ZWJ 👨‍👩‍👧 and combining e\u{301}",
            "日本語のテキスト、句読点。",
            "'''s'''",
            "\u{2}control\u{0}chars",
        ] {
            let parts = chunks(s);
            assert!(parts.iter().all(|p| !p.is_empty()), "{s:?}: {parts:?}");
            assert_eq!(parts.concat(), s);
        }
    }

    const SAMPLE: &str = "the cat sat on the mat. the cat ate the rat; \
        the rat sat on the cat's hat. That's that, then.";

    #[test]
    fn training_learns_frequent_pairs_and_is_deterministic() {
        let tok = SubwordTokenizer::train(&[SAMPLE], 300);
        assert!(tok.vocab_size() <= 300 && tok.vocab_size() > BASE_VOCAB);
        // The most frequent pair is first: " t" (" the", " then", ...) or "th".
        let first = tok.token_bytes(BASE_VOCAB as u32).to_vec();
        assert!(
            first == b" t" || first == b"th" || first == b"at",
            "{first:?}"
        );
        // " the" becomes a single token.
        assert_eq!(tok.encode(" the").len(), 1, "{:?}", tok.encode(" the"));
        assert_eq!(SubwordTokenizer::train(&[SAMPLE], 300), tok);
        // A prefix of the merges is the smaller vocabulary.
        let small = SubwordTokenizer::train(&[SAMPLE], 270);
        assert_eq!(small.merges(), &tok.merges()[..13]);
        // Without repeated pairs training stops early.
        let tiny = SubwordTokenizer::train(&["abcdefg"], 1000);
        assert_eq!(tiny.vocab_size(), BASE_VOCAB);
        assert_eq!(tiny.encode("abc"), vec![97, 98, 99]);
    }

    #[test]
    fn training_counts_overlapping_pairs_once() {
        // "aaaa" holds the pair (a, a) twice when merged left to right.
        let tok = SubwordTokenizer::train(&["aaaa aaaa"], 258);
        assert_eq!(tok.merges(), [[97, 97]]);
        assert_eq!(tok.encode("aaaa"), vec![257, 257]);
        assert_eq!(tok.encode("aaa"), vec![257, 97]);
    }

    /// Training by recounting every pair before each merge: slow, obviously
    /// right, and the same tie-break (highest count, then smallest pair).
    fn naive_merges(texts: &[String], vocab_size: usize) -> Vec<[u32; 2]> {
        let mut words: Vec<Vec<u32>> = texts
            .iter()
            .flat_map(|t| pre_tokenize(t))
            .map(|c| c.bytes().map(u32::from).collect())
            .collect();
        let mut merges = Vec::new();
        while merges.len() < vocab_size - BASE_VOCAB {
            let mut counts: HashMap<(u32, u32), i64> = HashMap::new();
            for w in &words {
                for p in w.windows(2) {
                    *counts.entry((p[0], p[1])).or_default() += 1;
                }
            }
            let Some((pair, count)) = counts.into_iter().max_by_key(|&(p, c)| (c, Reverse(p)))
            else {
                break;
            };
            if count < 2 {
                break;
            }
            let new = (BASE_VOCAB + merges.len()) as u32;
            merges.push([pair.0, pair.1]);
            for w in &mut words {
                merge_pair(w, pair, new);
            }
        }
        merges
    }

    #[test]
    fn incremental_training_matches_naive_recounting() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(11);
        // Few letters, so pairs overlap, repeat and tie often.
        let alphabet = ['a', 'b', 'c', ' ', ' ', 'é', '.', '1'];
        for round in 0..20 {
            let texts: Vec<String> = (0..1 + round % 4)
                .map(|_| {
                    let len = rng.random_range(0..300);
                    (0..len)
                        .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                        .collect()
                })
                .collect();
            for vocab in [257, 260, 300, 400] {
                let tok = SubwordTokenizer::train(&texts, vocab);
                assert_eq!(
                    tok.merges(),
                    naive_merges(&texts, vocab),
                    "{texts:?} {vocab}"
                );
                for t in &texts {
                    assert_eq!(tok.decode(&tok.encode(t)), *t);
                }
            }
        }
    }

    #[test]
    fn round_trips_odd_unicode_and_unseen_text() {
        let tok = SubwordTokenizer::train(&[SAMPLE, "café naïve résumé 日本 👍"], 400);
        for s in [
            SAMPLE,
            "",
            " ",
            "Ünïcödé — “quotes” ‘single’ … ½ ° €100",
            "emoji 👍🏽 ZWJ 👨‍👩‍👧 flags 🇺🇸 combining e\u{301}\u{302}",
            "日本語のテキスト、句読点。한국어 العربية עברית",
            "\u{0}\u{1}\u{2}\u{7f}\u{feff}\u{fffd}\u{10ffff}",
            "tabs\tand\r\nnewlines\n\n\n  trailing   ",
            "<|endoftext|> is just text here",
        ] {
            let ids = tok.encode(s);
            assert!(
                ids.iter()
                    .all(|&i| i != EOT && (i as usize) < tok.vocab_size())
            );
            assert_eq!(tok.decode(&ids), s);
            assert_eq!(tok.decode_bytes(&ids), s.as_bytes());
        }
        assert_eq!(tok.decode(&[104, 105, EOT, 33]), "hi<|endoftext|>!");
        // Half a UTF-8 character decodes lossily rather than panicking.
        assert_eq!(tok.decode(&[0xc3]), "\u{fffd}");
    }

    #[test]
    fn word_starts_count_whitespace_separated_words() {
        let tok = SubwordTokenizer::train(&[SAMPLE], 320);
        for s in [
            SAMPLE,
            "  leading, trailing  ",
            "one",
            "",
            "   ",
            "a\u{a0}b\u{2003}c — d",
            "(parenthesised) words, and 1,000.5 numbers!",
            "👍🏽 emoji\tword",
        ] {
            let (ids, starts) = tok.encode_with_word_starts(s);
            assert_eq!(ids.len(), starts.len());
            assert_eq!(
                starts.iter().filter(|&&b| b).count(),
                s.split_whitespace().count(),
                "{s:?}"
            );
            // A flagged token holds the first non-space of a word.
            for (&id, &st) in ids.iter().zip(&starts) {
                if st {
                    let b = tok.token_bytes(id);
                    assert!(b.iter().any(|c| !c.is_ascii_whitespace()), "{b:?}");
                }
            }
        }
    }

    #[test]
    fn save_and_load_round_trip_and_check_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let tok = SubwordTokenizer::train(&[SAMPLE], 300);
        let key = TokenizerKey {
            corpus_sha256: "ab".repeat(32),
            split_seed: 3,
            split: "80-10-10".into(),
            vocab_size: 300,
        };
        assert_eq!(
            key.file_name(),
            "bpe-abababababababab-seed3-80-10-10-v300.json"
        );
        let path = dir.path().join("sub").join(key.file_name());
        tok.save(&path, &key).unwrap();
        assert_eq!(SubwordTokenizer::load(&path, Some(&key)).unwrap(), tok);
        assert_eq!(SubwordTokenizer::load(&path, None).unwrap(), tok);

        let other = TokenizerKey {
            split_seed: 4,
            ..key.clone()
        };
        let err = SubwordTokenizer::load(&path, Some(&other)).unwrap_err();
        assert!(matches!(err, DataError::BadTokenizer { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));

        for (text, what) in [
            ("{", "not a tokenizer file"),
            (r#"{"format":"x","key":null,"merges":[]}"#, "format"),
            (
                r#"{"format":"untrainable-byte-level-bpe-v1","key":null,"merges":[[97,300]]}"#,
                "not yet defined",
            ),
            (
                r#"{"format":"untrainable-byte-level-bpe-v1","key":null,"merges":[[256,97]]}"#,
                "end-of-text",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = SubwordTokenizer::load(&path, None).unwrap_err();
            assert!(
                matches!(err, DataError::BadTokenizer { .. }) && err.to_string().contains(what),
                "{text}: {err}"
            );
        }
        let missing = dir.path().join("none.json");
        assert!(matches!(
            SubwordTokenizer::load(&missing, None),
            Err(DataError::Io { .. })
        ));
    }

    #[test]
    #[should_panic(expected = "vocab_size")]
    fn vocab_smaller_than_bytes_panics() {
        SubwordTokenizer::train(&["x"], 100);
    }
}
