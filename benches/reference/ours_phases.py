"""Where a run of our binary spends its wall time, from a profile of its main
thread: each sample's call stack names the phase the run is in (training
step, data, evaluation, per-pair CKA logging, checkpoint, ...), and the time
between two samples goes to their phase (half to each where they differ).
The main thread drives every phase, waiting while the worker threads
compute, so its timeline is the run's; the arm is the one whose log line
(`<arm> seed S: ...`) comes next.

    perf record -k CLOCK_REALTIME -F 99 --call-graph dwarf,65528 -t PID -o DATA
    python3 ours_phases.py DATA BINARY LOG > phases.json

BINARY is the profiled executable (its inlined frames are named with
addr2line), LOG its stderr (timestamped lines). Prints seconds per arm and
phase as JSON, and a table to stderr.
"""

import json
import re
import subprocess
import sys
from collections import defaultdict
from datetime import datetime

# Phase by the frames of a stack (outermost first), first match wins.
PHASES = [
    ("checkpoint", ("save_checkpoint_if_due", "Checkpointing::save", "TrainedStore::save")),
    ("evaluation", ("test_selected", "score_split")),
    ("cka_logging", ("end_of_epoch",)),
    ("guide_table", ("guide_table",)),
    ("setup", ("::start",)),
    ("data", ("plan_training", "epoch_batches", "Task>::batch", "CopyPasteTask>::batch",
              "CopyPaste::example")),
    ("training_step", ("train_step", "train_arm")),
    ("results", ("RunDir::save", "write_metrics", "write_summary", "write_frame", "draw")),
]
# Frames whose inlined callers are needed to tell the phases apart.
EXPAND = ("train_arm", "GuidedExperiment", "Trainer", "exp_copy_paste")
ARM_END = re.compile(r"^(\S+) +INFO +(\S+) seed \d+: (trained, kept|ok after)")


def samples(data):
    """(time, [(address, symbol), ...] innermost first) of every sample."""
    text = subprocess.run(
        ["perf", "script", "-i", data, "-F", "time,ip,sym,dso", "--no-inline"],
        capture_output=True, text=True, check=True).stdout
    for block in text.split("\n\n"):
        lines = block.strip().splitlines()
        if not lines:
            continue
        time = float(lines[0].strip().rstrip(":").split()[-1])
        frames = []
        for line in lines[1:]:
            parts = line.split(None, 1)
            if len(parts) == 2:
                address, rest = parts
                frames.append((int(address, 16), rest))
        yield time, frames


def text_bias(binary):
    """What to add to perf's file offsets to get addresses addr2line reads."""
    for line in subprocess.run(["readelf", "-lW", binary], capture_output=True,
                               text=True, check=True).stdout.splitlines():
        cells = line.split()
        if cells and cells[0] == "LOAD" and cells[-2] == "E":
            return int(cells[2], 16) - int(cells[1], 16)
    return 0


def inline_names(binary, addresses, bias):
    """Every address's chain of inlined functions, innermost first."""
    addresses = sorted(addresses)
    if not addresses:
        return {}
    out = subprocess.run(
        ["addr2line", "-i", "-f", "-C", "-a", "-e", binary]
        + [hex(a + bias - 1) for a in addresses],
        capture_output=True, text=True, check=True).stdout.splitlines()
    names, current = {}, None
    lookup = {a + bias - 1: a for a in addresses}
    for line in out:
        if line.startswith("0x"):
            current = lookup[int(line, 16)]
            names[current] = []
        elif not line.startswith(("/", "??:")) and current is not None:
            names[current].append(line)
    return names


def arm_ends(log):
    """(unix time, arm) of each arm's last log line, in order."""
    ends = []
    for line in open(log):
        match = ARM_END.match(line)
        if match:
            stamp = datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
            if not ends or ends[-1][1] != match.group(2):
                ends.append((stamp.timestamp(), match.group(2)))
    return ends


def phase_of(names):
    for phase, markers in PHASES:
        if any(m in name for name in names for m in markers):
            return phase
    return "other"


def main():
    data, binary, log = sys.argv[1:4]
    stacks = list(samples(data))
    bias = text_bias(binary)
    wanted = {a for _, frames in stacks for a, sym in frames
              if "exp-copy-paste" in sym and any(e in sym for e in EXPAND)}
    inlined = inline_names(binary, wanted, bias)
    timeline = []
    for time, frames in stacks:
        names = []
        for address, sym in frames:
            names.extend(inlined.get(address, []))
            names.append(sym)
        timeline.append((time, phase_of(names)))
    ends = arm_ends(log)
    arm_at = lambda t: next((arm for end, arm in ends if t <= end), "after")  # noqa: E731
    seconds = defaultdict(lambda: defaultdict(float))
    for (t0, p0), (t1, p1) in zip(timeline, timeline[1:]):
        gap = t1 - t0
        seconds[arm_at(t0)][p0] += gap / 2
        seconds[arm_at(t1)][p1] += gap / 2
    result = {arm: {p: round(s, 2) for p, s in phases.items()} for arm, phases in seconds.items()}
    print(json.dumps(result))
    columns = [p for p, _ in PHASES] + ["other"]
    print(f"{'arm':18}" + "".join(f" {c:>14}" for c in columns) + f" {'total':>8}", file=sys.stderr)
    for arm, phases in result.items():
        cells = "".join(f" {phases.get(c, 0.0):14.1f}" for c in columns)
        print(f"{arm:18}{cells} {sum(phases.values()):8.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
