//! `exp-ablations`: what guidance of the Deep FCN by ResNet-18 depends on
//! (NOTES §2.6, the NeurIPS version's analyses): (a) which layers are
//! guided, (b) how many pairs, (c) the distance of the guidance term, and
//! (d) the TwoNN intrinsic dimension of the FCN's layers over training,
//! base against guided. The paper reports these in words only: more pairs
//! give a stronger signal, ridge regression is the best distance, and
//! guidance slows the fall of the intrinsic dimension. Arms are logged as
//! `deep-fcn/<arm>`; the image-guidance library runs them.

use std::process::ExitCode;

use clap::Parser;
use exp_image_guidance::{FashionArgs, ImageExperiment};
use untrainable_runner::{CommonArgs, Preset};

const EXPERIMENT: ImageExperiment = ImageExperiment {
    name: "ablations",
    presets: &[
        (Preset::Smoke, include_str!("../presets/smoke.toml")),
        (Preset::Cpu, include_str!("../presets/cpu.toml")),
        (Preset::Paper, include_str!("../presets/paper.toml")),
        (
            Preset::PaperFmnist,
            include_str!("../presets/paper-fmnist.toml"),
        ),
    ],
    // Table 1's Deep FCN guided by ResNet-18 (NOTES §2.1); the ablations have no numbers.
    paper_top5: &[
        ("resnet18/guide", "89.24"),
        ("deep-fcn/base", "1.65 ± 0.51"),
        ("deep-fcn/all-pairs", "7.50 ± 1.51"),
        ("deep-fcn/untrained-guide", "13.10 ± 0.72"),
    ],
    draw: paper_figures::draw_ablations,
    analyse: None,
};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Ablations of guidance on Fashion-MNIST: the Deep FCN guided by ResNet-18 on subsets \
of its layer pairs, with each guidance distance, and the TwoNN intrinsic dimension of its layers \
over training. Writes OUT/ablations/{metrics,summary,predictions}.parquet and config.toml, then \
draws <figures>/ablations.{png,svg}."
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
