//! `exp-kd-vs-guidance`: guidance against knowledge distillation (docs/paper.md
//! §2.5). The Deep FCN on Fashion-MNIST trained alone, with guidance, with
//! logit distillation and with a FitNets hint, each of the three from a
//! trained and from an untrained ResNet-18. The paper's claim: distillation
//! from an untrained teacher fails, guidance from the same network still
//! helps. Arms are logged as `deep-fcn/<arm>`, the guide trained alone as
//! `resnet18/guide`; the image-guidance library runs them.

use std::path::Path;
use std::process::ExitCode;

use untrainable_image_experiment::{Image, ImageSpec};
use untrainable_results::MetricRow;
use untrainable_runner::Preset;

struct KdVsGuidance;

impl ImageSpec for KdVsGuidance {
    const NAME: &'static str = "kd-vs-guidance";
    const ABOUT: &'static str = "Guidance against logit distillation and a FitNets hint on Fashion-MNIST: the Deep \
FCN alone and with each of the three from a trained and from an untrained ResNet-18. Reports \
top-1 and top-5 accuracy. Writes OUT/kd-vs-guidance/{metrics,summary}.parquet and config.toml, \
then draws <figures>/kd-vs-guidance.{png,svg}.";
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
        paper_figures::draw_kd_vs_guidance(rows, stem)
    }
}

untrainable_runner::huge_page_allocator!();

fn main() -> ExitCode {
    untrainable_runner::main::<Image<KdVsGuidance>>()
}
