#!/usr/bin/env bash
# One training step of the Deep FCN (guided by ResNet-18), the Deep ConvNet
# (guided by ResNet-50) and the copy-paste RNN (guided by a Transformer),
# plain and guided, the guide's forward and the guidance terms: burn (the
# criterion bench `step`, on each backend named) against the PyTorch twin
# (step.py), on the same machine and thread count, one after the other, and
# their ratios; and the machine's sgemm ceiling.
#
#   benches/reference/run-step.sh [threads] [backend ...]
#
# Backends: flex (the default build), ndarray (with the system OpenBLAS,
# libopenblas-dev; built in target/blas), tch-cpu (burn against the torch
# wheel of the virtual environment, LIBTORCH_USE_PYTORCH=1; built in
# target/tch). Their own target directories keep the default build intact.
# PyTorch comes from PyPI into a virtual environment that this script makes
# (UNTRAINABLE_TORCH_VENV, default target/torch-venv; ~7 GB, once).
set -euo pipefail
cd "$(dirname "$0")/../.."
threads="${1:-2}"
shift || true
backends=("${@:-flex}")
venv="$(realpath -m "${UNTRAINABLE_TORCH_VENV:-target/torch-venv}")"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "installing PyTorch 2.9.0 into $venv (once)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "torch==2.9.0" numpy
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
torch_out="$work/torch.jsonl"
OMP_NUM_THREADS="$threads" "$venv/bin/python" benches/reference/step.py "$threads" | tee "$torch_out" >&2

for backend in "${backends[@]}"; do
    case "$backend" in
    flex)
        target="$PWD/target"
        RAYON_NUM_THREADS="$threads" cargo test --workspace --bench step -- --bench >&2
        ;;
    ndarray)
        target="$PWD/target/blas"
        CARGO_TARGET_DIR="$target" UNTRAINABLE_BACKEND=ndarray RAYON_NUM_THREADS="$threads" \
            OPENBLAS_NUM_THREADS="$threads" cargo test -p untrainable-guidance \
            --features untrainable-core/openblas --bench step -- --bench >&2
        ;;
    tch-cpu)
        target="$PWD/target/tch"
        torch_lib="$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')/lib"
        PATH="$venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1 LD_LIBRARY_PATH="$torch_lib" \
            CARGO_TARGET_DIR="$target" UNTRAINABLE_BACKEND=tch-cpu OMP_NUM_THREADS="$threads" \
            cargo test -p untrainable-guidance --features untrainable-core/tch --bench step -- --bench >&2
        ;;
    *)
        echo "unknown backend '$backend': expected flex, ndarray or tch-cpu" >&2
        exit 2
        ;;
    esac
    # Copied now: the next backend's run writes the same criterion paths.
    mkdir "$work/$backend"
    cp -r "$target/criterion/." "$work/$backend/"
done

python3 - "$torch_out" "$work" "${backends[@]}" <<'PY'
import json, pathlib, sys
torch = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    if row["bench"].startswith("sgemm/"):
        print(f"{row['bench']:56} {row['gflops']:9.1f} GFLOP/s")
    else:
        torch[row["bench"]] = row["median_s"]
work, backends = pathlib.Path(sys.argv[2]), sys.argv[3:]
header = "".join(f" {b:>10}" for b in backends) + f" {'torch':>10}"
header += "".join(f" {'torch/' + b:>14}" for b in backends)
print(f"{'benchmark':56}{header}")
for bench, t in torch.items():
    times = []
    for backend in backends:
        estimates = work / backend / bench / "new/estimates.json"
        times.append(json.loads(estimates.read_text())["median"]["point_estimate"] / 1e9)
    row = "".join(f" {s:9.4f}s" for s in times) + f" {t:9.4f}s"
    row += "".join(f" {t / s:13.2f}x" for s in times)
    print(f"{bench:56}{row}")
PY
