//! Test helpers. Weights are drawn lazily from one random stream per device,
//! and tests run in parallel: a test that seeds the stream builds and draws
//! its weights under this lock, as does every other test that draws.

use std::sync::MutexGuard;

use burn::module::Module;
use burn::tensor::Device;
use untrainable_core::{parameter_values, seed};

/// Holds the device's random stream for the rest of a test (dropout on an
/// autodiff device draws from it too).
pub fn hold_random_stream() -> MutexGuard<'static, ()> {
    untrainable_core::random_stream_lock()
}

/// Builds a module and draws all its weights while holding the stream.
pub fn build<M: Module>(make: impl FnOnce() -> M) -> M {
    let _stream = hold_random_stream();
    let module = make();
    parameter_values(&module);
    module
}

/// Like [`build`], after seeding the device.
pub fn build_seeded<M: Module>(device: &Device, seed_value: u64, make: impl FnOnce() -> M) -> M {
    let _stream = hold_random_stream();
    seed(device, seed_value);
    let module = make();
    parameter_values(&module);
    module
}
