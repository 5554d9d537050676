//! `exp-ablations`: what guidance of the Deep FCN by ResNet-18 depends on
//! (docs/paper.md §2.6, the NeurIPS version's analyses): (a) which layers are
//! guided, (b) how many pairs, (c) the distance of the guidance term, and
//! (d) the TwoNN intrinsic dimension of the FCN's layers over training,
//! base against guided. The paper reports these in words only: more pairs
//! give a stronger signal, ridge regression is the best distance, and
//! guidance slows the fall of the intrinsic dimension. Arms are logged as
//! `deep-fcn/<arm>`; the image-guidance library runs them.

use std::path::Path;
use std::process::ExitCode;

use untrainable_image_experiment::{Image, ImageSpec};
use untrainable_results::MetricRow;
use untrainable_runner::Preset;

struct Ablations;

impl ImageSpec for Ablations {
    const NAME: &'static str = "ablations";
    const ABOUT: &'static str = "Ablations of guidance on Fashion-MNIST: the Deep FCN guided by ResNet-18 on subsets \
of its layer pairs, with each guidance distance, and the TwoNN intrinsic dimension of its layers \
over training. Writes OUT/ablations/{metrics,summary,predictions}.parquet and config.toml, then \
draws <figures>/ablations.{png,svg}.";
    const PRESETS: &'static [(Preset, &'static str)] = &[
        (Preset::Smoke, include_str!("../presets/smoke.toml")),
        (Preset::Cpu, include_str!("../presets/cpu.toml")),
        (Preset::Paper, include_str!("../presets/paper.toml")),
        (
            Preset::PaperFmnist,
            include_str!("../presets/paper-fmnist.toml"),
        ),
    ];
    // `all-pairs` guides every pair from the trained ResNet-18: Table 1's
    // trained-guide arm.
    const TABLE_1_ARMS: &'static [(&'static str, &'static str)] =
        &[("deep-fcn/all-pairs", "deep-fcn/trained-guide")];

    fn draw(rows: &[MetricRow], stem: &Path) -> Result<(), paper_figures::FigureError> {
        paper_figures::draw_ablations(rows, stem)
    }
}

untrainable_runner::huge_page_allocator!();

fn main() -> ExitCode {
    untrainable_runner::main::<Image<Ablations>>()
}
