#!/usr/bin/env bash
# The body of every job scripts/slurm/submit.sh submits:
#
#   task.sh DIR COMMAND...
#
# runs COMMAND, with --resume added when DIR (the directory the command
# writes, `@TASK@` standing for the array task's index in DIR and COMMAND;
# `-` for a command that takes no --resume) already has a config.toml: a
# requeued or resubmitted job continues its runs from their last
# checkpoints instead of starting over.
#
# Slurm's signals: SIGTERM (preemption, scancel, the time limit) is passed
# to COMMAND, whose checkpoints survive it; SIGUSR1, which submit.sh asks
# for shortly before the time limit (--signal=B:USR1@...), stops COMMAND
# and requeues the job, which then resumes.
set -uo pipefail

task="${SLURM_ARRAY_TASK_ID:-0}"
dir="${1//@TASK@/$task}"
shift
command=()
for arg in "$@"; do command+=("${arg//@TASK@/$task}"); done
[[ "$dir" != - && -f "$dir/config.toml" ]] && command+=(--resume)

echo "task.sh: job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}) on $(hostname) at $(date -u +%FT%TZ): ${command[*]}"
"${command[@]}" &
child=$!

stop_child() {
  kill -TERM "$child" 2>/dev/null
  wait "$child"
}
trap 'echo "task.sh: SIGTERM, stopping"; stop_child; exit 143' TERM
trap 'echo "task.sh: near the time limit, requeueing"; stop_child; scontrol requeue "$SLURM_JOB_ID"; exit 0' USR1

wait "$child"
status=$?
echo "task.sh: exit status $status at $(date -u +%FT%TZ)"
exit "$status"
