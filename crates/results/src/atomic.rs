//! Writes through a temporary file in the target's directory and a rename,
//! so that readers (and a run resumed after a kill) never see half a file.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::ResultsError;

/// Creates the temporary file next to `path`, lets `fill` write it, flushes
/// it to disk and renames it over `path`. On any error the temporary file is
/// removed and `path` is left as it was.
pub(crate) fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> Result<(), ResultsError>,
) -> Result<(), ResultsError> {
    let io_error = |action: &'static str| {
        move |source: std::io::Error| ResultsError::Io {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io_error("create the directory of"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A leading dot and a `.tmp` suffix keep a leftover from a killed process
    // out of globs such as `*.parquet`.
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // Temporary files are private by default; results are ordinary files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(io_error("create a temporary file for"))?;
    fill(tmp.as_file_mut())?;
    tmp.as_file_mut().flush().map_err(io_error("write"))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_error("flush to disk"))?;
    tmp.persist(path).map_err(|e| ResultsError::Io {
        path: path.to_path_buf(),
        action: "rename the temporary file onto",
        source: e.error,
    })?;
    Ok(())
}

/// Writes `bytes` to `path` atomically (used for `config.toml` too),
/// creating its directory and replacing any file already there.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), ResultsError> {
    let path = path.as_ref();
    write_with(path, |file| {
        file.write_all(bytes).map_err(|source| ResultsError::Io {
            path: path.to_path_buf(),
            action: "write",
            source,
        })
    })
}
