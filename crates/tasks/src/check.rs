//! Checks of a data set before a long run, as JSON reports (printed by the
//! `data` binary: `data check imagenet DIR`, `data check wikitext103 DIR`).
//! The reports' fields are a stable interface for scripts:
//!
//! - both: `dataset`, `path`, `ok` (no problem found), `problems` (the
//!   first [`MAX_PROBLEMS`] messages, each naming its file);
//! - ImageNet: `classes`, `splits.{train,val}.{images,undecodable}`,
//!   `undecodable` (every path that does not decode);
//! - WikiText-103: `release` (`tokens` or `raw`), `vocabulary`,
//!   `splits.{train,valid,test}.{lines,tokens}`, `unknown.{valid,test}`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};

use crate::image_folder::{ImageFolder, ImageNet, decode_file};
use crate::sequence::Split;
use crate::wikitext::{Release, WikiText};

/// Problems listed in a report; the rest are only counted.
pub const MAX_PROBLEMS: usize = 20;

/// Decodes every image of `folder` on `workers` threads; the paths that
/// fail, sorted, each with its message.
pub fn undecodable(folder: &ImageFolder, workers: usize) -> Vec<(PathBuf, String)> {
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((path, _)) = folder.images.get(i) else {
                        break;
                    };
                    if let Err(e) = decode_file(path) {
                        failed
                            .lock()
                            .expect("no panics hold it")
                            .push((path.clone(), e.to_string()));
                    }
                }
            });
        }
    });
    let mut failed = failed.into_inner().expect("no panics hold it");
    failed.sort();
    failed
}

fn report(dataset: &str, path: &Path, problems: &[String], mut fields: Value) -> Value {
    let shown: Vec<&String> = problems.iter().take(MAX_PROBLEMS).collect();
    fields["dataset"] = json!(dataset);
    fields["path"] = json!(path.display().to_string());
    fields["ok"] = json!(problems.is_empty());
    fields["problems"] = json!(shown);
    fields["problems_total"] = json!(problems.len());
    fields
}

/// Indexes ImageNet at `root` and decodes every image.
pub fn check_imagenet(root: &Path, workers: usize) -> Value {
    let net = match ImageNet::open(root) {
        Ok(net) => net,
        Err(e) => return report("imagenet", root, &[e.to_string()], json!({})),
    };
    let mut problems = Vec::new();
    let mut paths = Vec::new();
    let mut splits = json!({});
    for (name, folder) in [("train", &net.train), ("val", &net.val)] {
        let failed = undecodable(folder, workers);
        splits[name] = json!({"images": folder.len(), "undecodable": failed.len()});
        for (path, message) in failed {
            paths.push(path.display().to_string());
            problems.push(message);
        }
    }
    report(
        "imagenet",
        root,
        &problems,
        json!({"classes": net.train.classes.len(), "splits": splits, "undecodable": paths}),
    )
}

/// Reads WikiText-103 at `dir` whole.
pub fn check_wikitext(dir: &Path) -> Value {
    let text = match WikiText::load(dir) {
        Ok(text) => text,
        Err(e) => return report("wikitext103", dir, &[e.to_string()], json!({})),
    };
    let mut splits = json!({});
    for split in Split::ALL {
        let stream = text.stream(split);
        let name = Release::Tokens.file_name(split);
        let name = name.split('.').nth(1).expect("wiki.<split>.tokens");
        splits[name] = json!({"lines": stream.documents, "tokens": stream.tokens.len() - 1});
    }
    let release = match text.release {
        Release::Tokens => "tokens",
        Release::Raw => "raw",
    };
    let fields = json!({
        "release": release,
        "vocabulary": text.vocabulary.len(),
        "splits": splits,
        "unknown": {"valid": text.unknown[0], "test": text.unknown[1]},
    });
    report("wikitext103", dir, &[], fields)
}
