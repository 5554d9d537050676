//! Finding a real data set on disk: one search order and one "not found"
//! message for every data set, so each loader only says what its files are.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{DataError, SearchedPlace};
use crate::idx;

/// Environment variable naming a root holding all data sets (`<root>/<subdir>`).
pub const ENV_DATA_ROOT: &str = "UNTRAINABLE_DATA";

/// A data set's files, their sha256 sums, and the places it may live.
#[derive(Debug, Clone, Copy)]
pub struct DataSource {
    /// Name shown in messages, e.g. "Fashion-MNIST".
    pub name: &'static str,
    /// Environment variable naming the directory that holds the files.
    pub env_dir: &'static str,
    /// Directory name under `$UNTRAINABLE_DATA` and under `./data`.
    pub subdir: &'static str,
    /// A system-wide directory (a Debian package's) and where it comes from.
    pub system: Option<(&'static str, &'static str)>,
    /// File names and their lower-case hex sha256.
    pub files: &'static [(&'static str, &'static str)],
}

impl DataSource {
    /// `./data/<subdir>`, where `scripts/setup-data.sh` puts the files
    /// without root, relative to the working directory.
    pub fn local_dir(&self) -> PathBuf {
        Path::new("data").join(self.subdir)
    }

    /// Directories to search, in order, each with where it came from.
    ///
    /// An explicit directory, or else the data set's environment variable, is
    /// the only candidate when given: a user who names a place should not
    /// silently get another. Otherwise `$UNTRAINABLE_DATA/<subdir>` (if set),
    /// the system directory and `./data/<subdir>` are tried in turn.
    pub fn search_places(&self, explicit: Option<&Path>) -> Vec<(PathBuf, String)> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        self.search_places_with(explicit, |k| std::env::var_os(k), &cwd)
    }

    pub(crate) fn search_places_with(
        &self,
        explicit: Option<&Path>,
        getenv: impl Fn(&str) -> Option<OsString>,
        cwd: &Path,
    ) -> Vec<(PathBuf, String)> {
        let env = |k: &str| getenv(k).filter(|v| !v.is_empty());
        if let Some(dir) = explicit {
            return vec![(dir.to_owned(), "given explicitly".into())];
        }
        if let Some(dir) = env(self.env_dir) {
            return vec![(PathBuf::from(dir), format!("${}", self.env_dir))];
        }
        let mut places = Vec::new();
        if let Some(root) = env(ENV_DATA_ROOT) {
            places.push((
                PathBuf::from(root).join(self.subdir),
                format!("${ENV_DATA_ROOT}/{}", self.subdir),
            ));
        }
        if let Some((dir, origin)) = self.system {
            places.push((PathBuf::from(dir), origin.into()));
        }
        places.push((
            cwd.join(self.local_dir()),
            format!("./data/{}, from scripts/setup-data.sh", self.subdir),
        ));
        places
    }

    /// The first of `places` holding every file, or a [`DataError::NotFound`]
    /// that lists each place and what it lacked.
    pub fn locate(&self, places: &[(PathBuf, String)]) -> Result<PathBuf, DataError> {
        let mut searched = Vec::new();
        for (dir, source) in places {
            let missing: Vec<String> = self
                .files
                .iter()
                .filter(|(name, _)| !dir.join(name).is_file())
                .map(|(name, _)| name.to_string())
                .collect();
            if missing.is_empty() {
                return Ok(dir.clone());
            }
            searched.push(SearchedPlace {
                dir: dir.clone(),
                source: source.clone(),
                exists: dir.is_dir(),
                missing,
            });
        }
        Err(DataError::NotFound {
            dataset: self.name.into(),
            env_dir: self.env_dir.into(),
            places: searched,
        })
    }

    /// Searches (see [`DataSource::search_places`]) and returns the directory found.
    pub fn find(&self, explicit: Option<&Path>) -> Result<PathBuf, DataError> {
        self.locate(&self.search_places(explicit))
    }

    /// The bytes of file `i` of [`DataSource::files`] in `dir`, after checking
    /// their sha256, with the path they came from.
    pub fn read_verified(&self, dir: &Path, i: usize) -> Result<(PathBuf, Vec<u8>), DataError> {
        let (name, sha) = self.files[i];
        let path = dir.join(name);
        let bytes = idx::read_file(&path)?;
        verify_sha256(&path, &bytes, sha)?;
        Ok((path, bytes))
    }
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Fails with [`DataError::ChecksumMismatch`] unless `bytes` (the contents of
/// `path`) hash to `expected`.
pub fn verify_sha256(path: &Path, bytes: &[u8], expected: &str) -> Result<(), DataError> {
    let actual = sha256_hex(bytes);
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(DataError::ChecksumMismatch {
            path: path.to_owned(),
            expected: expected.to_owned(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_matches_known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
