//! `exp-image-guidance`: the paper's image classification experiment
//! (docs/paper.md §2.1, Table 1 and the image panels of its training-curve figure).
//! What it runs is described in the crate's library.

use std::path::Path;
use std::process::ExitCode;

use untrainable_image_experiment::{Image, ImageSpec};
use untrainable_results::MetricRow;
use untrainable_runner::Preset;

struct ImageGuidance;

impl ImageSpec for ImageGuidance {
    const NAME: &'static str = "image-guidance";
    const ABOUT: &'static str = "Table 1 on Fashion-MNIST: a Deep FCN and a Wide FCN guided by ResNet-18 and a Deep \
ConvNet guided by ResNet-50, each alone, with the trained guide and with the untrained guide; \
the guides alone are logged as resnet18/guide and resnet50/guide. Reports top-1 and top-5 \
accuracy. Writes OUT/image-guidance/{metrics,summary}.parquet and config.toml, then draws \
<figures>/image-guidance.{png,svg}.";
    const PRESETS: &'static [(Preset, &'static str)] = &[
        (Preset::Smoke, include_str!("../presets/smoke.toml")),
        (Preset::Cpu, include_str!("../presets/cpu.toml")),
        (Preset::Paper, include_str!("../presets/paper.toml")),
        (
            Preset::PaperFmnist,
            include_str!("../presets/paper-fmnist.toml"),
        ),
    ];

    fn draw(rows: &[MetricRow], stem: &Path) -> Result<(), paper_figures::FigureError> {
        paper_figures::draw_image_guidance(rows, stem)
    }
}

untrainable_runner::huge_page_allocator!();

fn main() -> ExitCode {
    untrainable_runner::main::<Image<ImageGuidance>>()
}
