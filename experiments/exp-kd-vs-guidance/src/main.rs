//! `exp-kd-vs-guidance`: guidance against knowledge distillation (NOTES
//! §2.5). The Deep FCN on Fashion-MNIST trained alone, with guidance, with
//! logit distillation and with a FitNets hint, each of the three from a
//! trained and from an untrained ResNet-18. The paper's claim: distillation
//! from an untrained teacher fails, guidance from the same network still
//! helps. Arms are logged as `deep-fcn/<arm>`, the guide trained alone as
//! `resnet18/guide`; the image-guidance library runs them.

use std::process::ExitCode;

use clap::Parser;
use exp_image_guidance::{FashionArgs, ImageExperiment};
use untrainable_runner::{CommonArgs, Preset};

const EXPERIMENT: ImageExperiment = ImageExperiment {
    name: "kd-vs-guidance",
    presets: &[
        (Preset::Smoke, include_str!("../presets/smoke.toml")),
        (Preset::Cpu, include_str!("../presets/cpu.toml")),
        (Preset::Paper, include_str!("../presets/paper.toml")),
        (
            Preset::PaperFmnist,
            include_str!("../presets/paper-fmnist.toml"),
        ),
    ],
    // The paper reports this comparison in words only (NOTES §2.5); its Table 1
    // gives the Deep FCN's guidance arms.
    paper_top5: &[
        ("resnet18/guide", "89.24"),
        ("deep-fcn/base", "1.65 ± 0.51"),
        ("deep-fcn/trained-guide", "7.50 ± 1.51"),
        ("deep-fcn/untrained-guide", "13.10 ± 0.72"),
    ],
    draw: paper_figures::draw_kd_vs_guidance,
    analyse: None,
};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Guidance against logit distillation and a FitNets hint on Fashion-MNIST: the Deep \
FCN alone and with each of the three from a trained and from an untrained ResNet-18. Reports \
top-1 and top-5 accuracy. Writes OUT/kd-vs-guidance/{metrics,summary}.parquet and config.toml, \
then draws <figures>/kd-vs-guidance.{png,svg}."
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
