//! Images per second of the ImageNet pipeline (decode, transform, batch)
//! over an image folder, for benches/reference/run-image-pipeline.sh, which
//! runs torchvision's `ImageFolder` + `DataLoader` on the same folder.
//!
//! ```text
//! cargo run -p untrainable-tasks --example image_pipeline -- SPLIT_DIR train|eval WORKERS BATCH
//! ```
//! prints one JSON line: `{"side": "rust", "transform", "images", "seconds", "images_per_s"}`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use untrainable_tasks::epoch_batches;
use untrainable_tasks::image_folder::{BadImages, ImageFolder};
use untrainable_tasks::image_pipeline::{Batches, PipelineConfig};
use untrainable_tasks::image_transform::Transform;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, transform, workers, batch] = &args[..] else {
        return Err("usage: image_pipeline SPLIT_DIR train|eval WORKERS BATCH".into());
    };
    let transform = match transform.as_str() {
        "train" => Transform::TRAIN,
        "eval" => Transform::EVAL,
        other => return Err(format!("transform must be train or eval, got {other}")),
    };
    let parse = |s: &str| s.parse::<usize>().map_err(|e| format!("{s}: {e}"));
    let (workers, batch) = (parse(workers)?, parse(batch)?);
    let start = Instant::now();
    let folder = Arc::new(ImageFolder::open(&PathBuf::from(dir)).map_err(|e| e.to_string())?);
    let plan = epoch_batches(folder.len(), batch, 0, 0, false);
    let config = PipelineConfig {
        transform,
        seed: 0,
        epoch: 0,
        workers,
        prefetch: 2,
        bad_images: BadImages::Fail,
    };
    let mut images = 0;
    for b in Batches::start(folder, plan, config) {
        images += b.map_err(|e| e.to_string())?.len();
    }
    let seconds = start.elapsed().as_secs_f64();
    let name = if transform == Transform::TRAIN {
        "train"
    } else {
        "eval"
    };
    println!(
        "{{\"side\": \"rust\", \"transform\": \"{name}\", \"images\": {images}, \"seconds\": {seconds:.3}, \"images_per_s\": {:.1}}}",
        images as f64 / seconds
    );
    Ok(())
}
