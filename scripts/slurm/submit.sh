#!/usr/bin/env bash
# Runs an experiment's grid of (arm, seed) runs as Slurm jobs.
#
#   scripts/slurm/submit.sh EXPERIMENT [OPTIONS] [-- BINARY OPTIONS]
#
# EXPERIMENT is an experiment's name, e.g. fcn-warmup or exp-fcn-warmup.
# Submits, and prints the ids of:
#   1. a job that trains the trained guides the runs read (only when an arm
#      reads one), so that they are trained once, before the runs;
#   2. a job array after it, one task per slice of the grid (--shard I/N),
#      each writing OUT/<experiment>/shards/I-of-N/;
#   3. a merge job after the whole array (afterok), which joins the slices
#      into OUT/<experiment>/ as one process would have written it and
#      draws the figure.
# Jobs are requeueable; one requeued, preempted or resubmitted continues its
# runs from their checkpoints. Logs go to OUT/<experiment>/slurm/logs/.
#
# Options:
#   --preset P        smoke | cpu | paper (default cpu)
#   --out DIR         results directory (default: results for cpu, else
#                     results-<preset>, as scripts/reproduce-all.sh)
#   --shards N        slices of the grid (default: one per run)
#   --array LIST      submit only these slices' tasks, e.g. 2 or 0,3 (after
#                     a task failed or was cancelled); the merge takes all
#   --gpus N          GPUs per job (default: 1 for paper, else 0)
#   --cpus N          CPUs per job (default: 8 for paper, 2 for cpu, 1 for smoke)
#   --mem SIZE        memory per job (default: 32G, 8G, 2G)
#   --time T          time limit per job (default: 2-00:00:00, 12:00:00, 00:30:00)
#   --partition P, --account A, --qos Q   passed to sbatch
#   --wait            wait for the merge job; exit with its status
# BINARY OPTIONS (e.g. --set train.epochs=5, --backend tch-cuda) go to every
# job's experiment binary.
#
# UNTRAINABLE_BIN_DIR names a directory of built binaries; otherwise the
# experiment and `merge` are built first. The binaries are copied to
# OUT/<experiment>/slurm/bin, so rebuilding while jobs wait changes nothing.
set -euo pipefail

usage() { sed -n '2,37p' "$0" | sed 's/^# \{0,1\}//'; }
fail() { echo "submit: $*" >&2; exit 2; }

[[ $# -ge 1 ]] || { usage >&2; exit 2; }
case "$1" in -h | --help) usage; exit 0 ;; esac
NAME="${1#exp-}"
shift
PRESET=cpu OUT="" SHARDS="" ARRAY="" GPUS="" CPUS="" MEM="" TIME="" WAIT=0
PASS=()
EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --preset) PRESET="${2:?--preset needs smoke, cpu or paper}"; shift ;;
    --out) OUT="${2:?--out needs a directory}"; shift ;;
    --shards) SHARDS="${2:?--shards needs a number}"; shift ;;
    --array) ARRAY="${2:?--array needs task indices, e.g. 2 or 0,3}"; shift ;;
    --gpus) GPUS="${2:?--gpus needs a number}"; shift ;;
    --cpus) CPUS="${2:?--cpus needs a number}"; shift ;;
    --mem) MEM="${2:?--mem needs a size, e.g. 16G}"; shift ;;
    --time) TIME="${2:?--time needs a time limit, e.g. 12:00:00}"; shift ;;
    --partition | --account | --qos) PASS+=("$1=${2:?$1 needs a value}"); shift ;;
    --wait) WAIT=1 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h | --help) usage; exit 0 ;;
    *) fail "unknown option '$1'; see --help (binary options go after --)" ;;
  esac
  shift
done

case "$PRESET" in
  paper) : "${GPUS:=1}" "${CPUS:=8}" "${MEM:=32G}" "${TIME:=2-00:00:00}" ;;
  cpu) : "${GPUS:=0}" "${CPUS:=2}" "${MEM:=8G}" "${TIME:=12:00:00}" ;;
  smoke) : "${GPUS:=0}" "${CPUS:=1}" "${MEM:=2G}" "${TIME:=00:30:00}" ;;
  *) fail "--preset must be smoke, cpu or paper, not '$PRESET'" ;;
esac
[[ -z "$SHARDS" || "$SHARDS" =~ ^[1-9][0-9]*$ ]] || fail "--shards must be a positive whole number, not '$SHARDS'"
command -v sbatch >/dev/null || fail "sbatch not found: run this on a Slurm login node (or start scripts/slurm/local-cluster.sh)"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[[ -d "$ROOT/experiments/exp-$NAME" ]] || fail "no experiment '$NAME'; the experiments are: $(cd "$ROOT/experiments" && echo exp-* | sed 's/exp-//g')"
if [[ -z "$OUT" ]]; then
  if [[ "$PRESET" == cpu ]]; then OUT=results; else OUT="results-$PRESET"; fi
fi
OUT="$(realpath -m "$OUT")"
DIR="$OUT/$NAME"
JOBS="$DIR/slurm"
mkdir -p "$JOBS/bin" "$JOBS/logs"

if [[ -n "${UNTRAINABLE_BIN_DIR:-}" ]]; then
  BUILT="$UNTRAINABLE_BIN_DIR"
else
  echo "submit: building exp-$NAME and merge"
  (cd "$ROOT" && cargo build --quiet -p "exp-$NAME" -p untrainable-runner --bin merge)
  BUILT="$ROOT/target/debug"
fi
# A copy renamed into place: jobs still running keep the file they started.
for bin in "exp-$NAME" merge; do
  [[ -x "$BUILT/$bin" ]] || fail "$BUILT/$bin not found; build it (cargo build -p exp-$NAME -p untrainable-runner --bin merge)"
  if ! cmp -s "$BUILT/$bin" "$JOBS/bin/$bin"; then
    cp "$BUILT/$bin" "$JOBS/bin/.$bin.tmp"
    mv "$JOBS/bin/.$bin.tmp" "$JOBS/bin/$bin"
  fi
done
EXE="$JOBS/bin/exp-$NAME"
MERGE="$JOBS/bin/merge"
# Run notes (kept runs, resumed checkpoints) go to the logs.
export UNTRAINABLE_LOG="${UNTRAINABLE_LOG:-info}"

COMMON=(--preset "$PRESET" --out "$OUT" --quiet "${EXTRA[@]}")
RUNS="$("$EXE" "${COMMON[@]}" --list-runs)" || fail "exp-$NAME --list-runs failed (see above)"
TOTAL=$(grep -c '^arm=' <<<"$RUNS" || true)
[[ "$TOTAL" -gt 0 ]] || fail "exp-$NAME lists no runs"
SHARDS="${SHARDS:-$TOTAL}"
[[ "$SHARDS" -le "$TOTAL" ]] || fail "--shards $SHARDS is more than the $TOTAL runs of the grid"
echo "submit: $NAME ($PRESET): $TOTAL runs in $SHARDS slices → $DIR"

RESOURCES=(--cpus-per-task="$CPUS" --mem="$MEM" --time="$TIME" "${PASS[@]}")
[[ "$GPUS" -gt 0 ]] && RESOURCES+=(--gpus-per-task="$GPUS")
TASK="$ROOT/scripts/slurm/task.sh"
submit() { sbatch --parsable --export=ALL --requeue --open-mode=append --signal=B:USR1@180 "${RESOURCES[@]}" "$@" | cut -d';' -f1; }

AFTER=()
if grep -q ' trained-guide$' <<<"$RUNS"; then
  GUIDES=$(submit --job-name="$NAME-guides" --output="$JOBS/logs/guides-%j.out" \
    "$TASK" "$DIR/shards/guides" "$EXE" --guides-only "${COMMON[@]}")
  echo "submit: guides job $GUIDES"
  AFTER=(--dependency=afterok:"$GUIDES")
fi

ARRAY_JOB=$(submit --job-name="$NAME-shards" --array="${ARRAY:-0-$((SHARDS - 1))}" "${AFTER[@]}" \
  --output="$JOBS/logs/shard-%a.out" \
  "$TASK" "$DIR/shards/@TASK@-of-$SHARDS" "$EXE" --shard "@TASK@/$SHARDS" "${COMMON[@]}")
echo "submit: shard array $ARRAY_JOB (tasks ${ARRAY:-0-$((SHARDS - 1))})"

SLICES=()
for ((i = 0; i < SHARDS; i++)); do SLICES+=("$DIR/shards/$i-of-$SHARDS"); done
MERGE_JOB=$(submit --job-name="$NAME-merge" --dependency=afterok:"$ARRAY_JOB" --kill-on-invalid-dep=yes \
  --output="$JOBS/logs/merge-%j.out" "$TASK" - "$MERGE" "${SLICES[@]}")
echo "submit: merge job $MERGE_JOB"
echo "submit: watch with: squeue -j $ARRAY_JOB,$MERGE_JOB   (when done: sacct -j $ARRAY_JOB,$MERGE_JOB)"

[[ "$WAIT" -eq 1 ]] || exit 0

# scontrol knows a job until MinJobAge after its end; sacct (where the
# cluster keeps accounts) afterwards.
job_state() {
  scontrol show job -o "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -1 | cut -d= -f2
  sacct -n -X -P -j "$1" -o State 2>/dev/null | head -1 | cut -d' ' -f1
}
unknown=0
while :; do
  state=$(job_state "$MERGE_JOB" | grep -m1 . || true)
  case "$state" in
    PENDING | CONFIGURING | RUNNING | COMPLETING | REQUEUED | RESIZING | SUSPENDED) sleep 2 ;;
    "")
      unknown=$((unknown + 1))
      [[ $unknown -lt 30 ]] || fail "neither scontrol nor sacct knows job $MERGE_JOB; see $JOBS/logs"
      sleep 2
      ;;
    COMPLETED)
      echo "submit: merged into $DIR"
      exit 0
      ;;
    *)
      echo "submit: merge job $MERGE_JOB ended $state; the shard tasks:" >&2
      scontrol show job -o "$ARRAY_JOB" 2>/dev/null |
        sed -n 's/.*ArrayTaskId=\([0-9]*\).*JobState=\([A-Z_]*\).*/  task \1: \2/p' >&2 || true
      echo "submit: logs in $JOBS/logs; rerun failed slices with --array I (they resume)" >&2
      exit 1
      ;;
  esac
done
