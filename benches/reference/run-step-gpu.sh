#!/usr/bin/env bash
# The step benchmarks at the paper presets' sizes on one CUDA GPU: burn on
# LibTorch (the tch-cuda backend) against the PyTorch twin (step.py, eager)
# on the same GPU, one after the other, and their ratios.
#
#   benches/reference/run-step-gpu.sh [BENCH_BINARY]
#
# Both use the CUDA build of torch of the python3 on PATH. Without
# BENCH_BINARY the bench is built here against that torch (cargo,
# LIBTORCH_USE_PYTORCH=1, a few minutes on 16 cores); BENCH_BINARY is the
# bench `step` of untrainable-guidance built elsewhere with the same flags
# against the same torch version (LIBTORCH pointing at the wheel's
# torch/lib and torch/include), for a GPU machine without Rust.
set -euo pipefail
cd "$(dirname "$0")/../.."
source benches/reference/common.sh
work="$(mktemp -d)"
trap "rm -rf '$work'" EXIT
torch_lib="$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')/lib"
python3 -c 'import torch; assert torch.cuda.is_available(), "torch sees no CUDA GPU"'
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >&2 || true

python3 benches/reference/step.py --device cuda --sizes paper | tee "$work/torch.jsonl" >&2

# libtorch_cuda is named after --no-as-needed: nothing in the bench calls it
# directly, and the linker would drop it, leaving LibTorch without CUDA.
# RUSTFLAGS apply to the host target's build scripts too unless --target is
# given, hence the explicit target.
export RUSTFLAGS="-C link-arg=-Wl,--no-as-needed -C link-arg=-ltorch_cuda"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export UNTRAINABLE_BACKEND=tch-cuda UNTRAINABLE_BENCH_SIZES=paper CRITERION_HOME="$work/tch-cuda"
if [ -n "${1:-}" ]; then
    "$1" --bench >&2
else
    # tch 0.22 names torch 2.9.0; it built and ran against 2.11.0 as well.
    LIBTORCH_USE_PYTORCH=1 LIBTORCH_BYPASS_VERSION_CHECK=1 CARGO_TARGET_DIR="$PWD/target/tch-cuda" cargo test \
        --target "$(rustc -vV | sed -n 's/^host: //p')" -p untrainable-guidance \
        --features untrainable-kernels/tch --bench step -- --bench >&2
fi
ratio_table "$work/torch.jsonl" "$work" tch-cuda
