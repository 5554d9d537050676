//! The contract every architecture implements: a forward pass that returns the
//! output together with the ordered, named layer representations ("taps") that
//! guidance aligns, plus device selection and seeding.
//!
//! An architecture crate depends on this crate (and, for its CPU speed, on
//! `untrainable-kernels`); the trainer in `untrainable-guidance` works with
//! any pair of [`Network`]s.

#![forbid(unsafe_code)]

pub use burn;

use burn::module::Module;
use burn::tensor::{Bool, Device, Int, Tensor};

/// One layer representation, flattened per example to `(batch, features)`.
///
/// Guidance compares representations example by example, so a conv map
/// `(B, C, H, W)` or a sequence `(B, T, D)` becomes one row per example; the
/// original shape is kept for reports and shape checks.
#[derive(Debug, Clone)]
pub struct Tap {
    pub name: String,
    pub value: Tensor<2>,
    pub shape: Vec<usize>,
}

impl Tap {
    /// Flattens any `(batch, ...)` tensor into a tap.
    pub fn new<const D: usize>(name: impl Into<String>, value: Tensor<D>) -> Self {
        let shape = value.dims().to_vec();
        let batch = shape[0];
        let features = shape[1..].iter().product::<usize>();
        Self {
            name: name.into(),
            value: value.reshape([batch, features]),
            shape,
        }
    }
}

/// What a forward pass returns: the network's output (logits) and its taps in
/// forward order.
///
/// Classifiers return `(batch, classes)`. Sequence models that predict a token
/// at every position return `(batch · time, vocab)`, row `b · time + t` for
/// position `t` of sequence `b`, so that every task reads one 2-D layout.
#[derive(Debug, Clone)]
pub struct Forward {
    pub output: Tensor<2>,
    pub taps: Vec<Tap>,
}

/// A network that can be a guidance target or a guide.
pub trait Network: Module + Clone + Send + 'static {
    /// What the network consumes (an image batch, a token batch, ...). A guide
    /// and its target share this type.
    type Input: Clone;

    /// Forward pass returning the output and every tap, in forward order.
    fn forward(&self, input: Self::Input) -> Forward;

    /// Names of the taps, in the order `forward` returns them.
    fn tap_names(&self) -> Vec<String>;
}

/// Checks a forward pass of `network` on `batch` examples against the
/// contract of [`Network`]: its taps come in the order and under the names
/// of [`Network::tap_names`], and each has one row per example, its original
/// shape flattened. Returns what differs; for every architecture's tests.
pub fn check_taps<N: Network>(network: &N, forward: &Forward, batch: usize) -> Result<(), String> {
    let names: Vec<&str> = forward.taps.iter().map(|t| t.name.as_str()).collect();
    let listed = network.tap_names();
    if names != listed {
        return Err(format!(
            "forward's taps {names:?} differ from tap_names() {listed:?}"
        ));
    }
    for tap in &forward.taps {
        let [rows, features] = tap.value.dims();
        let flattened = tap.shape[1..].iter().product::<usize>();
        if rows != batch || tap.shape[0] != batch || features != flattened {
            return Err(format!(
                "tap {} is {rows} × {features} of shape {:?}; expected {batch} rows, one per example",
                tap.name, tap.shape
            ));
        }
    }
    Ok(())
}

/// A frozen guide: parameters take no gradient, batch norm uses its running
/// statistics, dropout is off, and the forward pass runs without autodiff.
///
/// Construct it from a network built on any device; it is moved to the plain
/// (non-autodiff) device of that backend, so its activations enter the guidance
/// loss as constants.
#[derive(Debug, Clone)]
pub struct Guide<N: Network> {
    network: N,
}

impl<N: Network> Guide<N> {
    pub fn new(network: N) -> Self {
        Self {
            network: network.freeze().valid(),
        }
    }

    pub fn network(&self) -> &N {
        &self.network
    }

    /// Forward pass of the frozen guide; never records an autodiff graph.
    pub fn forward(&self, input: N::Input) -> Forward
    where
        N::Input: WithoutAutodiff,
    {
        self.network.forward(input.without_autodiff())
    }
}

/// A batch of right-padded token sequences: the input of every sequence model,
/// so that an RNN can guide a Transformer and the other way round.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// Token ids, `(batch, time)`; positions at or after a sequence's length
    /// hold the task's pad id.
    pub ids: Tensor<2, Int>,
    /// Number of real tokens of each sequence, in `1..=time`.
    pub lengths: Vec<usize>,
}

impl TokenBatch {
    /// A batch from host token rows of possibly different lengths, padded on
    /// the right with `pad` to the longest row.
    pub fn from_rows(rows: &[Vec<i64>], pad: i64, device: &Device) -> Self {
        let time = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * time);
        for row in rows {
            ids.extend_from_slice(row);
            ids.extend(std::iter::repeat_n(pad, time - row.len()));
        }
        let data = burn::tensor::TensorData::new(ids, [rows.len(), time]);
        Self {
            ids: Tensor::from_data(data, device),
            lengths: rows.iter().map(Vec::len).collect(),
        }
    }

    pub fn batch_size(&self) -> usize {
        self.lengths.len()
    }

    pub fn time(&self) -> usize {
        self.ids.dims()[1]
    }

    /// `(batch, time)`, true at padding positions: burn's attention convention
    /// (`MhaInput::mask_pad`), where true means "do not attend".
    pub fn padding_mask(&self) -> Tensor<2, Bool> {
        let time = self.time();
        let flags: Vec<bool> = self
            .lengths
            .iter()
            .flat_map(|&len| (0..time).map(move |t| t >= len))
            .collect();
        let data = burn::tensor::TensorData::new(flags, [self.batch_size(), time]);
        Tensor::from_data(data, &self.ids.device())
    }
}

impl WithoutAutodiff for TokenBatch {
    fn without_autodiff(self) -> Self {
        Self {
            ids: self.ids.without_autodiff(),
            lengths: self.lengths,
        }
    }
}

/// Inputs that can be moved off the autodiff graph, for the guide's forward.
pub trait WithoutAutodiff {
    fn without_autodiff(self) -> Self;
}

impl<const D: usize> WithoutAutodiff for Tensor<D> {
    fn without_autodiff(self) -> Self {
        Tensor::without_autodiff(self)
    }
}

impl<const D: usize> WithoutAutodiff for Tensor<D, Int> {
    fn without_autodiff(self) -> Self {
        Tensor::without_autodiff(self)
    }
}

/// The compute backends this build can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// burn's pure-Rust CPU backend (the default).
    Flex,
    /// burn's older CPU backend (feature `ndarray`; with `openblas`, matrix
    /// products by the system OpenBLAS).
    #[cfg(feature = "ndarray")]
    Ndarray,
    /// LibTorch on the CPU (feature `tch`).
    #[cfg(feature = "tch")]
    TchCpu,
    /// LibTorch on the first CUDA GPU (feature `tch`, a CUDA build of torch).
    #[cfg(feature = "tch")]
    TchCuda,
}

impl Backend {
    pub const ALL: &[Backend] = &[
        Backend::Flex,
        #[cfg(feature = "ndarray")]
        Backend::Ndarray,
        #[cfg(feature = "tch")]
        Backend::TchCpu,
        #[cfg(feature = "tch")]
        Backend::TchCuda,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            #[cfg(feature = "ndarray")]
            Backend::Ndarray => "ndarray",
            #[cfg(feature = "tch")]
            Backend::TchCpu => "tch-cpu",
            #[cfg(feature = "tch")]
            Backend::TchCuda => "tch-cuda",
        }
    }

    /// The plain device of this backend (no autodiff).
    pub fn device(self) -> Device {
        match self {
            Backend::Flex => Device::flex(),
            // Deprecated in favour of flex, kept to measure against it.
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            Backend::Ndarray => Device::ndarray(),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            Backend::TchCpu => Device::libtorch(),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            Backend::TchCuda => Device::libtorch_cuda(0),
        }
    }

    /// The backend named by `UNTRAINABLE_BACKEND`, else flex: for benchmarks,
    /// which take no command line.
    pub fn from_env() -> Result<Backend, String> {
        match std::env::var("UNTRAINABLE_BACKEND") {
            Ok(name) => name
                .parse()
                .map_err(|e| format!("UNTRAINABLE_BACKEND: {e}")),
            Err(_) => Ok(Backend::Flex),
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::ALL
            .iter()
            .copied()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Backend::ALL.iter().map(|b| b.name()).collect();
                format!(
                    "unknown backend `{s}`; this build has: {}",
                    names.join(", ")
                )
            })
    }
}

/// Seeds the device's random stream, so that weight initialisation and
/// dropout masks are the same for the same seed.
pub fn seed(device: &Device, seed: u64) {
    device.seed(seed);
}

/// Copies a tensor to host memory as `f32`s (for logging and tests).
pub fn to_vec<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("a float tensor converts to f32")
}

std::thread_local! {
    static HOST_READS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The values of `tensor` on the host as `f64`: the training loop's one way
/// of reading a tensor back, since on a GPU every read waits for the device
/// to finish what it was given. Counted per thread ([`host_reads`]), so that
/// tests can check how often a step waits.
pub fn read_to_host(tensor: Tensor<1>) -> Vec<f64> {
    HOST_READS.with(|reads| reads.set(reads.get() + 1));
    tensor
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("a float tensor converts to f64")
}

/// Calls of [`read_to_host`] on this thread so far.
pub fn host_reads() -> u64 {
    HOST_READS.with(std::cell::Cell::get)
}

/// Every float tensor a module holds (weights and running statistics),
/// flattened in visiting order: for checks that a module did or did not change.
pub fn parameter_values<M: Module>(module: &M) -> Vec<f32> {
    struct Collect(Vec<f32>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0.extend(to_vec(param.val()));
        }
    }
    let mut collect = Collect(Vec::new());
    module.visit(&mut collect);
    collect.0
}

/// The backend's random stream is one per process: a test that seeds it and
/// draws from it (weights, dropout masks) holds this lock, so that tests
/// running alongside in the same process do not draw from it in between.
pub fn random_stream_lock() -> std::sync::MutexGuard<'static, ()> {
    static RANDOM_STREAM: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RANDOM_STREAM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_flattens_every_axis_after_the_batch() {
        let device = Device::flex();
        let x = Tensor::<4>::ones([3, 2, 4, 5], &device);
        let tap = Tap::new("conv", x);
        assert_eq!(tap.value.dims(), [3, 40]);
        assert_eq!(tap.shape, vec![3, 2, 4, 5]);
    }

    #[test]
    fn token_batch_pads_on_the_right_and_masks_the_padding() {
        let device = Device::flex();
        let batch = TokenBatch::from_rows(&[vec![5, 6, 7], vec![8]], 0, &device);
        assert_eq!(batch.ids.dims(), [2, 3]);
        let ids = batch
            .ids
            .clone()
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap();
        assert_eq!(ids, vec![5, 6, 7, 8, 0, 0]);
        let mask = batch
            .padding_mask()
            .into_data()
            .try_to_vec::<bool>()
            .unwrap();
        assert_eq!(mask, vec![false, false, false, false, true, true]);
    }

    /// A network whose taps are set by the test, to check [`check_taps`].
    #[derive(Module, Debug)]
    struct Fixed {
        width: usize,
    }

    impl Network for Fixed {
        type Input = Tensor<2>;
        fn forward(&self, x: Tensor<2>) -> Forward {
            let wide = x.clone().repeat_dim(1, self.width);
            Forward {
                output: x.clone(),
                taps: vec![Tap::new("a", x), Tap::new("b", wide)],
            }
        }
        fn tap_names(&self) -> Vec<String> {
            vec!["a".into(), "b".into()]
        }
    }

    #[test]
    fn check_taps_accepts_the_contract_and_names_what_breaks_it() {
        let device = Device::flex();
        let net = Fixed { width: 2 };
        let out = net.forward(Tensor::ones([3, 4], &device));
        assert_eq!(check_taps(&net, &out, 3), Ok(()));
        let wrong_batch = check_taps(&net, &out, 5).unwrap_err();
        assert!(
            wrong_batch.contains("tap a") && wrong_batch.contains("5 rows"),
            "{wrong_batch}"
        );
        let mut renamed = out.clone();
        renamed.taps.reverse();
        let wrong_order = check_taps(&net, &renamed, 3).unwrap_err();
        assert!(
            wrong_order.contains("differ from tap_names()"),
            "{wrong_order}"
        );
    }

    #[test]
    fn backend_names_parse_and_unknown_names_are_refused() {
        assert_eq!("flex".parse::<Backend>().unwrap(), Backend::Flex);
        let err = "cuda".parse::<Backend>().unwrap_err();
        assert!(err.contains("cuda") && err.contains("flex"), "{err}");
    }
}
