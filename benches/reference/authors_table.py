"""The table of run-authors.sh: every round's wall time and load, then the
median wall time of each side per arm and for the whole seed, and the ratio
theirs / ours.

    python3 authors_table.py WORK ROUNDS
"""

import json
import statistics
import sys
from pathlib import Path

ARMS = ["guide", "base", "trained-guide", "untrained-guide"]


def our_arm_seconds(stdout):
    """`wall s` of every arm in our summary table (the last column)."""
    seconds = {}
    for line in stdout.read_text().splitlines():
        cells = line.split()
        if len(cells) > 3 and cells[0] in ARMS and cells[1].isdigit() and cells[2] == "ok":
            seconds[cells[0]] = float(cells[-1])
    return seconds


def their_arms(jsonl):
    """The driver's JSON lines (their code prints its own lines between them)."""
    rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.startswith("{")]
    return {row["arm"]: row for row in rows}


def main():
    work, rounds = Path(sys.argv[1]), int(sys.argv[2])
    whole = {"ours": [], "theirs": []}
    print(f"{'side':8} {'round':>5} {'wall s':>9} {'load mean':>10} {'load max':>9}")
    for line in (work / "rounds.txt").read_text().splitlines():
        side, round_, wall, load_mean, load_max = line.split()
        whole[side].append(float(wall))
        print(f"{side:8} {round_:>5} {float(wall):9.1f} {load_mean:>10} {load_max:>9}")
    ours = [our_arm_seconds(work / f"ours-{r}.stdout") for r in range(1, rounds + 1)]
    theirs = [their_arms(work / f"theirs-{r}.jsonl") for r in range(1, rounds + 1)]
    print(f"\n{'arm':18} {'ours s':>9} {'theirs s':>9} {'theirs/ours':>12}   (medians)")
    for arm in ARMS:
        o = statistics.median(run[arm] for run in ours)
        t = statistics.median(run[arm]["wall_s"] for run in theirs)
        print(f"{arm:18} {o:9.1f} {t:9.1f} {t / o:11.2f}x")
    o, t = statistics.median(whole["ours"]), statistics.median(whole["theirs"])
    print(f"{'whole seed':18} {o:9.1f} {t:9.1f} {t / o:11.2f}x   (process wall time)")
    print("\ntheirs / ours per round (the two runs of a round were back to back):")
    for r, (o_run, t_run) in enumerate(zip(ours, theirs), 1):
        cells = ", ".join(f"{a} {t_run[a]['wall_s'] / o_run[a]:.2f}" for a in ARMS)
        print(f"  round {r}: {cells}, whole seed {whole['theirs'][r - 1] / whole['ours'][r - 1]:.2f}")
    print("\ntheirs, seconds per phase (medians):")
    phases = sorted({p for run in theirs for row in run.values() for p in row["phases"]})
    print(f"{'arm':18}" + "".join(f" {p:>14}" for p in phases))
    for arm in ARMS:
        cells = [statistics.median(run[arm]["phases"].get(p, 0.0) for run in theirs) for p in phases]
        print(f"{arm:18}" + "".join(f" {c:14.1f}" for c in cells))
    print("\ntest accuracy of the last evaluation (theirs) per round:")
    for r, run in enumerate(theirs, 1):
        print(f"  round {r}: " + ", ".join(f"{a} {run[a]['last_test_accuracy']:.3f}" for a in ARMS))


if __name__ == "__main__":
    main()
