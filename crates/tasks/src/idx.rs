//! The IDX format of the MNIST family: a big-endian header (magic number,
//! then one u32 per dimension) followed by the raw values, usually gzipped.
//!
//! Only unsigned-byte files are read, as that is all Fashion-MNIST uses.
//! Every header field is checked against the data actually present, and
//! nothing is allocated from a header's claims, so a damaged file gives an
//! error rather than a panic or a huge allocation.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;

use crate::error::DataError;

/// Unsigned bytes, three dimensions: images × rows × cols.
pub const MAGIC_U8_IMAGES: u32 = 0x0000_0803;
/// Unsigned bytes, one dimension: labels.
pub const MAGIC_U8_LABELS: u32 = 0x0000_0801;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Raw images of one IDX file, `count × rows × cols` bytes in row-major order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    fs::read(path).map_err(|source| DataError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Decompresses `bytes` if they are gzip data; other bytes are returned as
/// they are, so uncompressed IDX files load too.
pub fn decompress(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|source| DataError::Decompress {
            path: path.to_owned(),
            source,
        })?;
    Ok(out)
}

/// Checks a decompressed unsigned-byte IDX file against `magic` and returns
/// its dimensions and payload. `path` is only used in errors.
pub fn parse_u8(
    path: &Path,
    mut data: Vec<u8>,
    magic: u32,
) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let found_len = data.len() as u64;
    if data.len() < 4 {
        return Err(DataError::Truncated {
            path: path.to_owned(),
            expected: 4,
            found: found_len,
        });
    }
    let found_magic = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    if found_magic != magic {
        return Err(DataError::BadMagic {
            path: path.to_owned(),
            expected: magic,
            found: found_magic,
        });
    }
    // The low byte of the magic number is the dimension count.
    let ndims = (magic & 0xff) as usize;
    let header = 4 + 4 * ndims;
    if data.len() < header {
        return Err(DataError::Truncated {
            path: path.to_owned(),
            expected: header as u64,
            found: found_len,
        });
    }
    let dims: Vec<usize> = data[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let payload = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| DataError::BadHeader {
            path: path.to_owned(),
            reason: format!("dimensions {dims:?} overflow"),
        })?;
    let expected = payload
        .checked_add(header as u64)
        .ok_or_else(|| DataError::BadHeader {
            path: path.to_owned(),
            reason: format!("dimensions {dims:?} overflow"),
        })?;
    if found_len < expected {
        return Err(DataError::Truncated {
            path: path.to_owned(),
            expected,
            found: found_len,
        });
    }
    if found_len > expected {
        return Err(DataError::TrailingData {
            path: path.to_owned(),
            expected,
            found: found_len,
        });
    }
    data.drain(..header);
    Ok((dims, data))
}

/// Parses the bytes of an image file (gzipped or not) already in memory, so
/// the checksum-verifying loader reads each file once.
pub fn images_from_bytes(path: &Path, file_bytes: &[u8]) -> Result<IdxImages, DataError> {
    let (dims, pixels) = parse_u8(path, decompress(path, file_bytes)?, MAGIC_U8_IMAGES)?;
    Ok(IdxImages {
        count: dims[0],
        rows: dims[1],
        cols: dims[2],
        pixels,
    })
}

/// Parses the bytes of a label file (gzipped or not) already in memory.
pub fn labels_from_bytes(path: &Path, file_bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    let (_, labels) = parse_u8(path, decompress(path, file_bytes)?, MAGIC_U8_LABELS)?;
    Ok(labels)
}

/// Loads an IDX image file without any checksum check (tests, other data sets).
pub fn load_idx_images(path: &Path) -> Result<IdxImages, DataError> {
    images_from_bytes(path, &read_file(path)?)
}

/// Loads an IDX label file without any checksum check (tests, other data sets).
pub fn load_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    labels_from_bytes(path, &read_file(path)?)
}

/// Encodes an uncompressed IDX file. The header is written exactly as given,
/// without checking it against `payload`, so tests can build broken files.
pub fn encode_idx(magic: u32, dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + payload.len());
    out.extend_from_slice(&magic.to_be_bytes());
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// Writes `bytes` gzip-compressed to `path`.
pub fn write_gz(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut enc = GzEncoder::new(fs::File::create(path)?, Compression::default());
    enc.write_all(bytes)?;
    enc.finish()?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_images() -> (Vec<u32>, Vec<u8>) {
        // 3 images of 2×4 with every byte value distinct, including 0 and 255.
        let pixels: Vec<u8> = (0..23u8).map(|i| i * 11).chain([255]).collect();
        (vec![3, 2, 4], pixels)
    }

    #[test]
    fn generated_images_and_labels_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (dims, pixels) = tiny_images();
        let labels = vec![9u8, 0, 4];
        let ip = dir.path().join("img.gz");
        let lp = dir.path().join("lab.gz");
        write_gz(&ip, &encode_idx(MAGIC_U8_IMAGES, &dims, &pixels)).unwrap();
        write_gz(&lp, &encode_idx(MAGIC_U8_LABELS, &[3], &labels)).unwrap();

        let images = load_idx_images(&ip).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (3, 2, 4));
        assert_eq!(images.pixels, pixels);
        assert_eq!(load_idx_labels(&lp).unwrap(), labels);
    }

    #[test]
    fn uncompressed_files_load_too() {
        let dir = tempfile::tempdir().unwrap();
        let lp = dir.path().join("lab");
        fs::write(&lp, encode_idx(MAGIC_U8_LABELS, &[2], &[1, 2])).unwrap();
        assert_eq!(load_idx_labels(&lp).unwrap(), vec![1, 2]);
    }

    #[test]
    fn truncated_payload_reports_expected_and_found_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (dims, pixels) = tiny_images();
        let p = dir.path().join("short-images.gz");
        // Header promises 24 pixels; only 20 follow.
        write_gz(&p, &encode_idx(MAGIC_U8_IMAGES, &dims, &pixels[..20])).unwrap();
        let err = load_idx_images(&p).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected: 40,
                    found: 36,
                    ..
                }
            ),
            "got {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("short-images.gz") && msg.contains("40") && msg.contains("36"),
            "{msg}"
        );
    }

    #[test]
    fn truncated_header_is_truncated_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("stub.gz");
        write_gz(&p, &[0, 0, 8, 3, 0, 0]).unwrap();
        let err = load_idx_images(&p).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Truncated {
                    expected: 16,
                    found: 6,
                    ..
                }
            ),
            "got {err:?}"
        );
        write_gz(&p, &[0, 0]).unwrap();
        assert!(matches!(
            load_idx_images(&p).unwrap_err(),
            DataError::Truncated { expected: 4, .. }
        ));
    }

    #[test]
    fn extra_bytes_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("long-labels.gz");
        write_gz(&p, &encode_idx(MAGIC_U8_LABELS, &[2], &[1, 2, 3])).unwrap();
        let err = load_idx_labels(&p).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::TrailingData {
                    expected: 10,
                    found: 11,
                    ..
                }
            ),
            "got {err:?}"
        );
        assert!(err.to_string().contains("long-labels.gz"));
    }

    #[test]
    fn wrong_magic_names_file_and_both_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("labels-given-as-images.gz");
        write_gz(&p, &encode_idx(MAGIC_U8_LABELS, &[2], &[1, 2])).unwrap();
        let err = load_idx_images(&p).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::BadMagic {
                    expected: MAGIC_U8_IMAGES,
                    found: MAGIC_U8_LABELS,
                    ..
                }
            ),
            "got {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("labels-given-as-images.gz"), "{msg}");
        assert!(
            msg.contains("0x00000803") && msg.contains("0x00000801"),
            "{msg}"
        );
    }

    #[test]
    fn overflowing_dimensions_are_a_header_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge.gz");
        write_gz(
            &p,
            &encode_idx(MAGIC_U8_IMAGES, &[u32::MAX, u32::MAX, u32::MAX], &[]),
        )
        .unwrap();
        let err = load_idx_images(&p).unwrap_err();
        assert!(matches!(err, DataError::BadHeader { .. }), "got {err:?}");
    }

    #[test]
    fn corrupt_gzip_is_a_decompress_error() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.gz");
        write_gz(&good, &encode_idx(MAGIC_U8_LABELS, &[1000], &[3; 1000])).unwrap();
        let bytes = fs::read(&good).unwrap();
        let p = dir.path().join("cut.gz");
        fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let err = load_idx_labels(&p).unwrap_err();
        assert!(matches!(err, DataError::Decompress { .. }), "got {err:?}");
        assert!(err.to_string().contains("cut.gz"));
    }

    #[test]
    fn missing_file_is_io_error_with_path() {
        let err = load_idx_labels(Path::new("/nonexistent/dir/labels.gz")).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }), "got {err:?}");
        assert!(err.to_string().contains("/nonexistent/dir/labels.gz"));
    }
}
