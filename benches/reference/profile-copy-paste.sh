#!/usr/bin/env bash
# Where one seed of our copy-paste run spends its wall time, by phase (training
# steps, data, evaluation, per-pair CKA logging, checkpoints, the guide's
# tap table, results): the run's main thread sampled by `perf` (with call
# stacks), each sample's phase read from its stack by ours_phases.py. The
# breakdown beside the authors' code's is in run-authors.sh's table.
#
#   benches/reference/profile-copy-paste.sh [threads] [seed]
#
# Environment: UNTRAINABLE_PRESET and UNTRAINABLE_OURS_BIN as run-authors.sh;
# UNTRAINABLE_PROFILE_OUT keeps the profile there (default: a temporary
# directory). Needs `perf` (linux-tools) allowed to profile own processes
# (kernel.perf_event_paranoid ≤ 2) and addr2line (binutils).
set -euo pipefail
cd "$(dirname "$0")/../.."

threads="${1:-2}"
seed="${2:-0}"
preset="$(realpath "${UNTRAINABLE_PRESET:-experiments/exp-copy-paste/presets/cpu.toml}")"
if [ -n "${UNTRAINABLE_PROFILE_OUT:-}" ]; then
    work="$(realpath -m "$UNTRAINABLE_PROFILE_OUT")"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap "rm -rf '$work'" EXIT
fi
if [ -n "${UNTRAINABLE_OURS_BIN:-}" ]; then
    ours="$(realpath "$UNTRAINABLE_OURS_BIN")"
else
    cargo build -p exp-copy-paste >&2
    ours="$PWD/target/debug/exp-copy-paste"
fi

start="$(date +%s.%N)"
RAYON_NUM_THREADS="$threads" "$ours" --config "$preset" --seed "$seed" --out "$work/run" \
    >"$work/run.stdout" 2>"$work/run.stderr" &
run=$!
# The main thread only: its stack says which phase the run is in.
perf record -q -k CLOCK_REALTIME -F 99 --call-graph dwarf,65528 -t "$run" -o "$work/perf.data" \
    2>"$work/perf.stderr" &
profiler=$!
wait "$run"
end="$(date +%s.%N)"
wait "$profiler" || true
echo "wall $(python3 -c "print(f'{$end - $start:.1f}')") s; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
cat "$work/run.stdout" >&2
python3 benches/reference/ours_phases.py "$work/perf.data" "$ours" "$work/run.stderr"
