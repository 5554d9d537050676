#!/usr/bin/env bash
# Linear CKA at n = 256, d ∈ {1024, 16384, 200704}: burn (this workspace's
# criterion bench `cka`, on each backend named) against the PyTorch twin
# (cka.py), on the same machine and thread count, one after the other, and
# their ratios.
#
#   benches/reference/run-cka.sh [threads] [backend ...]
#
# Backends: flex (the default build), tch-cpu (burn against the torch wheel
# of the virtual environment, LIBTORCH_USE_PYTORCH=1; built in target/tch, so
# that the default build is not replaced).
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
    "$venv/bin/pip" install --quiet "torch==2.9.0"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
torch_out="$work/torch.jsonl"
OMP_NUM_THREADS="$threads" "$venv/bin/python" benches/reference/cka.py "$threads" | tee "$torch_out" >&2

for backend in "${backends[@]}"; do
    case "$backend" in
    flex)
        target="$PWD/target"
        RAYON_NUM_THREADS="$threads" cargo test --workspace --bench cka -- --bench 'linear_cka/' >&2
        ;;
    tch-cpu)
        target="$PWD/target/tch"
        torch_lib="$("$venv/bin/python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')/lib"
        PATH="$venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1 LD_LIBRARY_PATH="$torch_lib" \
            CARGO_TARGET_DIR="$target" UNTRAINABLE_BACKEND=tch-cpu OMP_NUM_THREADS="$threads" \
            cargo test -p untrainable-repsim --features tch --bench cka -- --bench 'linear_cka/' >&2
        ;;
    *)
        echo "unknown backend '$backend': expected flex or tch-cpu" >&2
        exit 2
        ;;
    esac
    mkdir "$work/$backend"
    cp -r "$target/criterion/." "$work/$backend/"
done

python3 - "$torch_out" "$work" "${backends[@]}" <<'PY'
import json, pathlib, sys
torch = {}
for line in open(sys.argv[1]):
    row = json.loads(line)
    if "bench" in row:
        torch[row["bench"]] = row["median_s"]
work, backends = pathlib.Path(sys.argv[2]), sys.argv[3:]
header = "".join(f" {b:>10}" for b in backends) + f" {'torch':>10}"
header += "".join(f" {'torch/' + b:>14}" for b in backends)
print(f"{'benchmark':40}{header}")
for bench, t in torch.items():
    times = []
    for backend in backends:
        estimates = work / backend / bench / "new/estimates.json"
        times.append(json.loads(estimates.read_text())["median"]["point_estimate"] / 1e9)
    row = "".join(f" {s:9.4f}s" for s in times) + f" {t:9.4f}s"
    row += "".join(f" {t / s:13.2f}x" for s in times)
    print(f"{bench:40}{row}")
PY
