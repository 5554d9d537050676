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
# Backends: flex (the default), ndarray, tch-cpu (see common.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
source benches/reference/common.sh
compare step.py untrainable-guidance step "" "$@"
