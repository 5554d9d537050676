#!/usr/bin/env bash
# Runs every experiment at one preset, then draws every figure and writes
# results/TABLES.md.
#
#   scripts/reproduce-all.sh [smoke|cpu|paper] [--out DIR] [--slurm [SUBMIT OPTIONS]]
#
# Each experiment runs with --resume: after an interruption (Ctrl-C, a
# killed machine) the same command keeps every finished (arm, seed) run,
# continues the one it was in from its last checkpoint, and runs the rest.
# One line per experiment says where the whole run stands; each
# experiment's own output goes to DIR/logs/<experiment>.log.
#
# DIR defaults to results/ for the cpu preset (the committed reproduction)
# and to results-<preset>/ otherwise, so a smoke or paper run never mixes
# with the committed results. Figures go to paper-figures/ for results/,
# else to DIR/figures/.
#
# UNTRAINABLE_BIN_DIR names a directory of already built binaries (tests
# use it); otherwise the workspace is built first.
#
# With --slurm, every experiment's grid is submitted to Slurm at once
# through scripts/slurm/submit.sh (the options after --slurm, e.g.
# --partition gpu --time 1-00:00:00, go to it), and the script waits for
# every merge job before drawing the figures; resubmitting after a failure
# resumes every slice.
set -euo pipefail

usage() {
  sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'
}

PRESET=cpu
OUT=""
SLURM=0
SUBMIT=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    smoke | cpu | paper) PRESET="$1" ;;
    --out) OUT="${2:?--out needs a directory}"; shift ;;
    --out=*) OUT="${1#--out=}" ;;
    --slurm) SLURM=1; shift; SUBMIT=("$@"); break ;;
    -h | --help) usage; exit 0 ;;
    *)
      echo "reproduce-all: unknown argument '$1'; expected smoke, cpu or paper, and optionally --out DIR and --slurm [SUBMIT OPTIONS]" >&2
      exit 2
      ;;
  esac
  shift
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -z "$OUT" ]]; then
  if [[ "$PRESET" == cpu ]]; then OUT=results; else OUT="results-$PRESET"; fi
fi
if [[ "$OUT" == results ]]; then FIGURES=paper-figures; else FIGURES="$OUT/figures"; fi

if [[ -n "${UNTRAINABLE_BIN_DIR:-}" ]]; then
  BIN="$UNTRAINABLE_BIN_DIR"
else
  echo "reproduce-all: building the workspace (the dev profile is optimised)"
  cargo build --workspace --quiet
  BIN="$ROOT/target/debug"
fi

EXPERIMENTS=()
for manifest in experiments/exp-*/Cargo.toml; do
  EXPERIMENTS+=("$(basename "$(dirname "$manifest")")")
done
TOTAL=${#EXPERIMENTS[@]}
mkdir -p "$OUT/logs"

stamp() { date +%H:%M:%S; }
START=$(date +%s)

draw() {
  echo "reproduce-all: drawing the figures into $FIGURES and the tables into $OUT/TABLES.md"
  local readme=()
  # The committed results also rewrite README's claims table.
  if [[ "$OUT" == results ]]; then readme=(--readme README.md); fi
  "$BIN/paper-figures" --results "$OUT" --out "$FIGURES" "${readme[@]}" >"$OUT/logs/paper-figures.log" 2>&1 || {
    cat "$OUT/logs/paper-figures.log" >&2
    exit 1
  }
}

if [[ $SLURM -eq 1 ]]; then
  # Every experiment submitted at once; each submit.sh waits for its merge.
  pids=()
  for exp in "${EXPERIMENTS[@]}"; do
    UNTRAINABLE_BIN_DIR="$BIN" scripts/slurm/submit.sh "$exp" --preset "$PRESET" --out "$OUT" \
      "${SUBMIT[@]}" --wait -- --figures "$FIGURES" >"$OUT/logs/$exp.slurm.log" 2>&1 &
    pids+=($!)
    echo "$(stamp) $exp ($PRESET): submitted, log in $OUT/logs/$exp.slurm.log"
  done
  failed=0
  for i in "${!EXPERIMENTS[@]}"; do
    if wait "${pids[$i]}"; then
      echo "$(stamp) ${EXPERIMENTS[$i]}: merged"
    else
      failed=$((failed + 1))
      echo "$(stamp) ${EXPERIMENTS[$i]}: FAILED; the end of $OUT/logs/${EXPERIMENTS[$i]}.slurm.log:" >&2
      tail -n 20 "$OUT/logs/${EXPERIMENTS[$i]}.slurm.log" >&2
    fi
  done
  if [[ $failed -gt 0 ]]; then
    echo "reproduce-all: $failed of $TOTAL experiments failed; run the same command again: finished runs are kept" >&2
    exit 1
  fi
  draw
  echo "reproduce-all: all $TOTAL experiments done on Slurm in $(($(date +%s) - START)) s"
  exit 0
fi

i=0
for exp in "${EXPERIMENTS[@]}"; do
  i=$((i + 1))
  log="$OUT/logs/$exp.log"
  echo "[$i/$TOTAL] $(stamp) $exp ($PRESET): running, log in $log"
  began=$(date +%s)
  # An experiment writes into OUT/<name without exp->; resume only what exists.
  RESUME=()
  [[ -f "$OUT/${exp#exp-}/config.toml" ]] && RESUME=(--resume)
  # Run notes (kept runs, epochs) go to the log; --quiet hides the progress bars.
  if ! UNTRAINABLE_LOG=info "$BIN/$exp" --preset "$PRESET" "${RESUME[@]}" --quiet --out "$OUT" --figures "$FIGURES" \
    >"$log" 2>&1; then
    echo "[$i/$TOTAL] $(stamp) $exp: FAILED after $(($(date +%s) - began)) s; the end of $log:" >&2
    tail -n 20 "$log" >&2
    echo "Fix the cause and run the same command again: finished runs are kept." >&2
    exit 1
  fi
  kept=$(grep -c "kept from the earlier run" "$log" || true)
  echo "[$i/$TOTAL] $(stamp) $exp: done in $(($(date +%s) - began)) s ($kept runs kept from before)"
done

draw
echo "reproduce-all: all $TOTAL experiments done in $(($(date +%s) - START)) s"
