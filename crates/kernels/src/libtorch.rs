//! Operations on burn's LibTorch backend differentiated by LibTorch itself
//! (feature `tch`), for the layers whose generic burn backward runs slowly
//! on a GPU: the operation is recorded in a LibTorch graph whose leaves share
//! the inputs' storage, and burn's autodiff node asks that graph for the
//! inputs' gradients, so that LibTorch runs its own kernels (cuDNN's on a
//! GPU) for the backward pass.

// burn marks its LibTorch backend deprecated; this module exists for it.
#![allow(deprecated)]

use burn::backend::LibTorch;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::libtorch::TchTensor;

/// One differentiable output of a LibTorch computation with its graph, and
/// the graph's leaves (the inputs).
pub(crate) struct TorchGraph<const N: usize> {
    out: tch::Tensor,
    leaves: [tch::Tensor; N],
    /// burn's handles on the inputs' and outputs' storage. burn writes a
    /// tensor in place when it holds the only handle on its storage, which
    /// would change what the graph saved for its backward pass; holding one
    /// more until then prevents that.
    held: Vec<TchTensor>,
}

impl<const N: usize> TorchGraph<N> {
    /// `compute(leaves)` recorded by LibTorch's autograd: the graph of its
    /// first output and every output without a graph.
    pub(crate) fn record<const M: usize>(
        inputs: [TchTensor; N],
        compute: impl FnOnce(&[tch::Tensor; N]) -> [tch::Tensor; M],
    ) -> (Self, [TchTensor; M]) {
        let leaves = inputs
            .each_ref()
            .map(|t| t.tensor.detach().requires_grad_(true));
        let outputs = tch::with_grad(|| compute(&leaves));
        let out = outputs[0].shallow_clone();
        let outputs = outputs.map(|t| TchTensor::new(t.detach()));
        let held = inputs.into_iter().chain(outputs.iter().cloned()).collect();
        (Self { out, leaves, held }, outputs)
    }

    /// Registers the gradients of `⟨output, grad⟩` for the leaves whose
    /// burn node is given (the others are not computed).
    pub(crate) fn backward(
        self,
        grad: TchTensor,
        nodes: [Option<NodeId>; N],
        grads: &mut Gradients,
    ) {
        let wanted: Vec<(NodeId, &tch::Tensor)> = nodes
            .iter()
            .zip(&self.leaves)
            .filter_map(|(node, leaf)| node.map(|id| (id, leaf)))
            .collect();
        let leaves: Vec<&tch::Tensor> = wanted.iter().map(|(_, leaf)| *leaf).collect();
        let inner = tch::with_grad(|| (&self.out * &grad.tensor).sum(self.out.kind()));
        let found = tch::Tensor::run_backward(&[inner], &leaves, false, false);
        for ((id, _), g) in wanted.into_iter().zip(found) {
            grads.register::<LibTorch>(id, TchTensor::new(g));
        }
    }
}

impl<const N: usize> Clone for TorchGraph<N> {
    fn clone(&self) -> Self {
        Self {
            out: self.out.shallow_clone(),
            leaves: self.leaves.each_ref().map(|t| t.shallow_clone()),
            held: self.held.clone(),
        }
    }
}

impl<const N: usize> std::fmt::Debug for TorchGraph<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shapes: Vec<_> = self.leaves.iter().map(|t| t.size()).collect();
        f.debug_struct("TorchGraph")
            .field("out", &self.out.size())
            .field("leaves", &shapes)
            .finish()
    }
}
