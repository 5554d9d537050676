//! WikiText-103, the paper's language-modelling corpus, read from the files
//! of its release: `wiki.{train,valid,test}.tokens` (tokenised, rare words
//! already `<unk>`) or the raw release `wiki.{train,valid,test}.raw`.
//!
//! Tokens are words: each line is split on whitespace and ends with
//! `<eos>`, blank lines included, as the files are usually read. The
//! vocabulary is every word of the training split, `<eos>` and `<unk>`
//! first, then words in order of first appearance; a validation or test
//! word outside it (only the raw release has them) reads as `<unk>` and is
//! counted ([`WikiText::unknown`]).
//!
//! Each split is one [`LmStream`] whose every token after the first is a
//! word, `<eos>` included, so its word-level perplexity equals its token
//! perplexity, the measure usually reported on WikiText-103 (the scored
//! `<eos>` tokens count as words). The stream starts with an `<eos>`,
//! as if a line had just ended, so the first word is predicted too.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::sequence::Split;
use crate::sotu::LmStream;

/// End of line.
pub const EOS: &str = "<eos>";
/// A word outside the vocabulary.
pub const UNK: &str = "<unk>";
/// Environment variable naming the directory that holds the files when
/// `--data` is not given.
pub const ENV_WIKITEXT: &str = "UNTRAINABLE_WIKITEXT103";

/// What to download and where to point, for messages that stop a run
/// without data.
pub const WIKITEXT_HOWTO: &str = "download WikiText-103 (wikitext-103-v1.zip, the tokenised \
     release, or wikitext-103-raw-v1.zip), unzip it, then pass --data DIR or set \
     $UNTRAINABLE_WIKITEXT103=DIR, DIR being the directory holding wiki.train.tokens, \
     wiki.valid.tokens and wiki.test.tokens (or the .raw files); \
     `cargo run -p untrainable-tasks --bin data -- check wikitext103 DIR` checks it";

/// Which release a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// `wiki.*.tokens`.
    Tokens,
    /// `wiki.*.raw`.
    Raw,
}

impl Release {
    fn extension(self) -> &'static str {
        match self {
            Release::Tokens => "tokens",
            Release::Raw => "raw",
        }
    }

    /// The file of `split` in this release, e.g. `wiki.valid.tokens`.
    pub fn file_name(self, split: Split) -> String {
        let name = match split {
            Split::Train => "train",
            Split::Val => "valid",
            Split::Test => "test",
        };
        format!("wiki.{name}.{}", self.extension())
    }
}

/// The word-level vocabulary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vocabulary {
    /// Word of each id.
    pub words: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Vocabulary {
    fn with_specials() -> Self {
        let mut v = Self::default();
        v.add(EOS);
        v.add(UNK);
        v
    }

    /// The id of `word`, added if new.
    fn add(&mut self, word: &str) -> u32 {
        if let Some(&id) = self.ids.get(word) {
            return id;
        }
        let id = self.words.len() as u32;
        self.words.push(word.to_owned());
        self.ids.insert(word.to_owned(), id);
        id
    }

    pub fn id(&self, word: &str) -> Option<u32> {
        self.ids.get(word).copied()
    }

    pub fn len(&self) -> usize {
        self.words.len()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// The three splits as word streams over the training vocabulary.
#[derive(Debug, Clone)]
pub struct WikiText {
    pub dir: PathBuf,
    pub release: Release,
    pub vocabulary: Vocabulary,
    pub train: LmStream,
    pub val: LmStream,
    pub test: LmStream,
    /// Words of validation and test read as `<unk>` because training lacks them.
    pub unknown: [usize; 2],
}

impl WikiText {
    /// Reads `dir`: the tokenised release if its three files are there,
    /// else the raw release.
    pub fn load(dir: &Path) -> Result<WikiText, DataError> {
        let release = Self::release_in(dir)?;
        let path = |split| dir.join(release.file_name(split));
        let mut vocabulary = Vocabulary::with_specials();
        let train = read_stream(&path(Split::Train), |w| vocabulary.add(w))?;
        let mut unknown = [0; 2];
        let unk = vocabulary.id(UNK).expect("specials");
        let held_out = |split, count: &mut usize| {
            read_stream(&path(split), |w| {
                vocabulary.id(w).unwrap_or_else(|| {
                    *count += 1;
                    unk
                })
            })
        };
        let [val_unknown, test_unknown] = &mut unknown;
        let val = held_out(Split::Val, val_unknown)?;
        let test = held_out(Split::Test, test_unknown)?;
        Ok(WikiText {
            dir: dir.to_owned(),
            release,
            vocabulary,
            train,
            val,
            test,
            unknown,
        })
    }

    /// [`WikiText::load`] on `data`, or else on `$UNTRAINABLE_WIKITEXT103`;
    /// with neither, an error that says what to download.
    pub fn find(data: Option<&Path>) -> Result<WikiText, DataError> {
        let from_env = std::env::var_os(ENV_WIKITEXT).filter(|v| !v.is_empty());
        match data.map(Path::to_owned).or(from_env.map(PathBuf::from)) {
            Some(dir) => Self::load(&dir),
            None => Err(DataError::BadLayout {
                path: PathBuf::from("(no --data, no $UNTRAINABLE_WIKITEXT103)"),
                reason: "this preset trains on WikiText-103, and no directory was given".into(),
                fix: WIKITEXT_HOWTO.into(),
            }),
        }
    }

    /// The release whose three files are all in `dir`.
    pub fn release_in(dir: &Path) -> Result<Release, DataError> {
        for release in [Release::Tokens, Release::Raw] {
            if Split::ALL
                .iter()
                .all(|&s| dir.join(release.file_name(s)).is_file())
            {
                return Ok(release);
            }
        }
        let missing: Vec<String> = Split::ALL
            .iter()
            .map(|&s| Release::Tokens.file_name(s))
            .filter(|f| !dir.join(f).is_file())
            .collect();
        Err(DataError::BadLayout {
            path: dir.to_owned(),
            reason: if dir.is_dir() {
                format!(
                    "missing {} (and no complete raw release)",
                    missing.join(", ")
                )
            } else {
                "no such directory".into()
            },
            fix: WIKITEXT_HOWTO.into(),
        })
    }

    pub fn stream(&self, split: Split) -> &LmStream {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        }
    }
}

/// One file as a stream: `<eos>`, then each line's words and an `<eos>`;
/// `id` numbers each word.
fn read_stream(path: &Path, mut id: impl FnMut(&str) -> u32) -> Result<LmStream, DataError> {
    let file = File::open(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })?;
    let eos = id(EOS);
    let mut tokens = vec![eos];
    let mut lines = 0;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| DataError::BadLayout {
                path: path.to_owned(),
                reason: format!("line {}: {e}", lines + 1),
                fix: "the WikiText files are UTF-8 text; download them again".into(),
            })?;
        if read == 0 {
            break;
        }
        tokens.extend(line.split_whitespace().map(&mut id));
        tokens.push(eos);
        lines += 1;
    }
    if lines == 0 {
        return Err(DataError::BadLayout {
            path: path.to_owned(),
            reason: "empty file".into(),
            fix: "download WikiText-103 again".into(),
        });
    }
    let mut word_start = vec![true; tokens.len()];
    word_start[0] = false;
    Ok(LmStream {
        words: tokens.len() - 1,
        tokens,
        word_start,
        documents: lines,
    })
}
