//! `exp-image-guidance`: the paper's image classification experiment
//! (NOTES §2.1, Table 1 and the image panels of its training-curve figure).
//! What it runs is described in the crate's library.

use std::process::ExitCode;

use clap::Parser;
use exp_image_guidance::{FashionArgs, ImageExperiment};
use untrainable_runner::{CommonArgs, Preset};

const EXPERIMENT: ImageExperiment = ImageExperiment {
    name: "image-guidance",
    presets: &[
        (Preset::Smoke, include_str!("../presets/smoke.toml")),
        (Preset::Cpu, include_str!("../presets/cpu.toml")),
        (Preset::Paper, include_str!("../presets/paper.toml")),
        (
            Preset::PaperFmnist,
            include_str!("../presets/paper-fmnist.toml"),
        ),
    ],
    // The paper's ImageNet top-5 validation accuracy (%) per arm (NOTES §2.1, Table 1).
    paper_top5: &[
        ("resnet18/guide", "89.24"),
        ("resnet50/guide", "92.99"),
        ("deep-fcn/base", "1.65 ± 0.51"),
        ("deep-fcn/trained-guide", "7.50 ± 1.51"),
        ("deep-fcn/untrained-guide", "13.10 ± 0.72"),
        ("wide-fcn/base", "34.09 ± 1.21"),
        ("wide-fcn/trained-guide", "43.01 ± 0.92"),
        ("wide-fcn/untrained-guide", "39.47 ± 0.31"),
        ("conv/base", "70.02 ± 1.52"),
        ("conv/trained-guide", "78.91 ± 2.16"),
        ("conv/untrained-guide", "68.17 ± 2.54"),
    ],
    draw: paper_figures::draw_image_guidance,
    analyse: None,
};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Table 1 on Fashion-MNIST: a Deep FCN and a Wide FCN guided by ResNet-18 and a Deep \
ConvNet guided by ResNet-50, each alone, with the trained guide and with the untrained guide; \
the guides alone are logged as resnet18/guide and resnet50/guide. Reports top-1 and top-5 \
accuracy. Writes OUT/image-guidance/{metrics,summary}.parquet and config.toml, then draws \
<figures>/image-guidance.{png,svg}."
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    fashion: FashionArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    exp_image_guidance::exit(&EXPERIMENT, &cli.common, &cli.fashion)
}
