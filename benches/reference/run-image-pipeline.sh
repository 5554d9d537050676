#!/usr/bin/env bash
# The ImageNet input pipeline (decode + transform + batch) in images/s:
# untrainable-tasks' against torchvision's ImageFolder + DataLoader, on the
# same generated 500 x 375 JPEGs, the two run alternately ROUNDS times so
# that a machine shared with other work slows both alike.
#
#   bash benches/reference/run-image-pipeline.sh [IMAGES=1000] [ROUNDS=3] [WORKERS=2] [BATCH=64]
#
# Python: $UNTRAINABLE_REF_VENV (default /work/venv-ref), a venv with torch
# 2.9.0, torchvision 0.24.0 and Pillow from PyPI, made here when missing.
set -euo pipefail
images="${1:-1000}" rounds="${2:-3}" workers="${3:-2}" batch="${4:-64}"
venv="${UNTRAINABLE_REF_VENV:-/work/venv-ref}"
if ! "$venv/bin/python" -c "import torchvision" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "torch==2.9.0" "torchvision==0.24.0" pillow numpy
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$venv/bin/python" benches/reference/image_pipeline.py generate "$work/train" "$images"
cargo build -p untrainable-tasks --example image_pipeline >&2
rust="${CARGO_TARGET_DIR:-target}/debug/examples/image_pipeline"
for transform in train eval; do
    for _ in $(seq "$rounds"); do
        "$rust" "$work/train" "$transform" "$workers" "$batch"
        "$venv/bin/python" benches/reference/image_pipeline.py run "$work/train" "$transform" "$workers" "$batch"
    done
done | tee "$work/runs.jsonl"
python3 - "$work/runs.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
for transform in ("train", "eval"):
    rate = {side: [r["images_per_s"] for r in rows if r["side"] == side and r["transform"] == transform]
            for side in ("rust", "torchvision")}
    # Each round's two runs were back to back: their ratio is the least disturbed figure.
    ratios = [a / b for a, b in zip(rate["rust"], rate["torchvision"])]
    print(f"{transform:5}  rust {statistics.median(rate['rust']):7.1f} images/s  "
          f"torchvision {statistics.median(rate['torchvision']):7.1f} images/s (medians)  "
          f"ratio per round {' '.join(f'{r:.2f}' for r in ratios)}, median {statistics.median(ratios):.2f}x")
PY
