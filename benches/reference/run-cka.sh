#!/usr/bin/env bash
# Linear CKA at n = 256, d ∈ {1024, 16384, 200704}: burn (this workspace's
# criterion bench `cka`, on each backend named) against the PyTorch twin
# (cka.py), on the same machine and thread count, one after the other, and
# their ratios.
#
#   benches/reference/run-cka.sh [threads] [backend ...]
#
# Backends: flex (the default), ndarray, tch-cpu (see common.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
source benches/reference/common.sh
compare cka.py untrainable-repsim cka 'linear_cka/' "$@"
