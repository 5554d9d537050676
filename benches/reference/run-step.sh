#!/usr/bin/env bash
# One training step of the Deep FCN (guided by ResNet-18), the Deep ConvNet
# (guided by ResNet-50) and the copy-paste RNN (guided by a Transformer),
# plain and guided, the guide's forward and the guidance terms:
# burn (the criterion bench `step`, on the backend UNTRAINABLE_BACKEND names,
# flex by default) against the PyTorch twin (step.py), on the same machine and
# thread count, and their ratio; and the machine's sgemm ceiling.
#
#   benches/reference/run-step.sh [threads]
#
# PyTorch comes from PyPI into a virtual environment that this script makes
# (UNTRAINABLE_TORCH_VENV, default target/torch-venv; ~7 GB, once).
set -euo pipefail
cd "$(dirname "$0")/../.."
threads="${1:-2}"
venv="${UNTRAINABLE_TORCH_VENV:-target/torch-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "installing PyTorch 2.9.0 into $venv (once)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "torch==2.9.0" numpy
fi
torch_out="$(mktemp)"
trap 'rm -f "$torch_out"' EXIT
OMP_NUM_THREADS="$threads" "$venv/bin/python" benches/reference/step.py "$threads" | tee "$torch_out" >&2
RAYON_NUM_THREADS="$threads" cargo test --workspace --bench step -- --bench >&2
python3 - "$torch_out" <<'PY'
import json, pathlib, sys
torch = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    if row["bench"].startswith("sgemm/"):
        print(f"{row['bench']:40} {row['gflops']:9.1f} GFLOP/s")
    else:
        torch[row["bench"]] = row["median_s"]
print(f"{'benchmark':56} {'burn':>10} {'torch':>10} {'torch/burn':>10}")
for bench, t in torch.items():
    estimates = pathlib.Path("target/criterion") / bench / "new/estimates.json"
    burn = json.loads(estimates.read_text())["median"]["point_estimate"] / 1e9
    print(f"{bench:56} {burn:9.4f}s {t:9.4f}s {t / burn:9.2f}x")
PY
