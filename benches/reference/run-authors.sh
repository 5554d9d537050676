#!/usr/bin/env bash
# Whole runs of the copy-paste experiment, ours against the authors' released
# PyTorch code (github.com/vsubramaniam851/untrainable-networks at a pinned
# commit, fetched into a temporary directory at run time and driven from
# outside by authors_copy_paste.py, which lists every adaptation): the guide
# alone and the three arms of one seed of a preset, alternating (ours,
# theirs, ours, theirs, ...) on the same thread count, with the load average
# during each run; then the median wall times per arm and for the seed.
#
#   benches/reference/run-authors.sh [rounds] [threads] [seed]
#
# rounds: 2 by default; threads: 2 (RAYON_NUM_THREADS for ours;
# torch.set_num_threads, OMP_NUM_THREADS and MKL_NUM_THREADS for theirs).
# Environment:
#   UNTRAINABLE_PRESET         our preset file (default: exp-copy-paste's cpu.toml)
#   UNTRAINABLE_OURS_BIN       a built exp-copy-paste (default: cargo build -p exp-copy-paste)
#   UNTRAINABLE_AUTHORS_GIT    where the clone from GitHub fails (no network), a local
#                              clone or git directory holding the pinned commit
#   UNTRAINABLE_TORCH_VENV     the PyTorch venv (see common.sh); tqdm is added to it
#   UNTRAINABLE_AUTHORS_OUT    where the runs and timings are kept (default: a temporary
#                              directory, removed at the end)
set -euo pipefail
cd "$(dirname "$0")/../.."
source benches/reference/common.sh

rounds="${1:-2}"
threads="${2:-2}"
seed="${3:-0}"
repository="https://github.com/vsubramaniam851/untrainable-networks"
commit="e8368d4986ca7ccb547f0d3340a64ebc19d9ce3e"
preset="$(realpath "${UNTRAINABLE_PRESET:-experiments/exp-copy-paste/presets/cpu.toml}")"

if [ -n "${UNTRAINABLE_AUTHORS_OUT:-}" ]; then
    work="$(realpath -m "$UNTRAINABLE_AUTHORS_OUT")"
    mkdir -p "$work"
else
    work="$(mktemp -d)"
    trap "rm -rf '$work'" EXIT
fi

# Their repository at $commit, into $work/authors (read-only afterwards: each
# run works on a copy, which the driver patches).
fetch_authors() {
    local into="$work/authors"
    rm -rf "$into"
    mkdir -p "$into"
    if git -C "$into" init -q && git -C "$into" fetch -q --depth 1 "$repository" "$commit" 2>/dev/null &&
        git -C "$into" checkout -q FETCH_HEAD; then
        rm -rf "$into/.git"
    elif [ -n "${UNTRAINABLE_AUTHORS_GIT:-}" ]; then
        echo "cannot clone $repository; reading $commit from $UNTRAINABLE_AUTHORS_GIT" >&2
        rm -rf "$into" && mkdir -p "$into"
        git --git-dir="$(git -C "$UNTRAINABLE_AUTHORS_GIT" rev-parse --absolute-git-dir 2>/dev/null ||
            echo "$UNTRAINABLE_AUTHORS_GIT")" archive "$commit" | tar -x -C "$into"
    else
        echo "cannot clone $repository; set UNTRAINABLE_AUTHORS_GIT to a local clone holding $commit" >&2
        exit 1
    fi
}

# The mean of the 1-minute load average, sampled every 5 s while COMMAND runs;
# prints "wall_s load_mean load_max" after it.
timed_with_load() {
    local samples="$1"
    shift
    : >"$samples"
    (while true; do cut -d' ' -f1 /proc/loadavg >>"$samples"; sleep 5; done) &
    local sampler=$! start end
    start="$(date +%s.%N)"
    "$@"
    end="$(date +%s.%N)"
    kill "$sampler"
    wait "$sampler" 2>/dev/null || true
    cut -d' ' -f1 /proc/loadavg >>"$samples"
    python3 - "$start" "$end" "$samples" <<'PY'
import sys
start, end, path = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
loads = [float(x) for x in open(path).read().split()]
print(f"{end - start:.3f} {sum(loads) / len(loads):.2f} {max(loads):.2f}")
PY
}

run_ours() {
    local out="$1"
    RAYON_NUM_THREADS="$threads" "$ours" --config "$preset" --seed "$seed" --out "$out" \
        >"$out.stdout" 2>"$out.stderr"
}

run_theirs() {
    local out="$1"
    rm -rf "$out" && cp -r "$work/authors" "$out"
    CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" \
        OMP_WAIT_POLICY=PASSIVE "$venv/bin/python" benches/reference/authors_copy_paste.py \
        --checkout "$out" --preset "$preset" --seed "$seed" --threads "$threads" \
        >"$out.jsonl" 2>"$out.stderr"
}

torch_venv
"$venv/bin/python" -c "import tqdm" 2>/dev/null || "$venv/bin/pip" install --quiet "tqdm==4.66.5"
fetch_authors
if [ -n "${UNTRAINABLE_OURS_BIN:-}" ]; then
    ours="$(realpath "$UNTRAINABLE_OURS_BIN")"
else
    cargo build -p exp-copy-paste >&2
    ours="$PWD/target/debug/exp-copy-paste"
fi

echo "work: $work; preset $preset, seed $seed, $threads threads, $rounds rounds" >&2
: >"$work/rounds.txt"
for round in $(seq 1 "$rounds"); do
    for side in ours theirs; do
        echo "round $round: $side ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
        result="$(timed_with_load "$work/load-$side-$round.txt" "run_$side" "$work/$side-$round")"
        echo "$side $round $result" | tee -a "$work/rounds.txt" >&2
    done
done
python3 benches/reference/authors_table.py "$work" "$rounds"
