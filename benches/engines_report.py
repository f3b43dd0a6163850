#!/usr/bin/env python3
"""Tables of one benches/engines.sh run: container starts through engines.

    engines_report.py ENGINES_DIR [STARTUP_DIR]

ENGINES_DIR/samples.tsv ("engine<TAB>runtime<TAB>us") gives each engine's
median [min–max] per runtime, the ratio to runc and the time saved against
runc. With STARTUP_DIR (a benches/startup.sh run directory), the runtime-level
prediction is printed beside it: runc-v1's median create + start + delete
(the calls an engine makes, summed per iteration) minus hull-v1's.

ENGINES_DIR/trace.tsv (the traced rounds) says where each engine's time goes:
per engine and runtime, the medians over the rounds of the client's total,
the time inside runtime calls (by call), and the rest: before the first
runtime call (client, daemon, shim start, rootfs), between the calls, and
after the last one until the client returned.
"""

import statistics
import sys
from collections import defaultdict
from pathlib import Path

RUNTIMES = ["hull", "runc", "crun"]
ENGINES = [
    ("docker", "`docker run --rm --network none IMG /bin/true`"),
    ("ctr", "`ctr run --rm IMG ID /bin/true`"),
    ("podman", "`podman run --rm --network none IMG /bin/true`"),
    ("cri", "CRI RunPodSandbox + CreateContainer + StartContainer (running)"),
]


def ms(us):
    return f"{us / 1000:.1f}"


def load_samples(path):
    samples = defaultdict(list)
    for line in path.read_text().splitlines():
        engine, runtime, us = line.split("\t")
        samples[(engine, runtime)].append(int(us))
    return samples


def predicted(startup_dir):
    """runc-v1's median create + start + delete minus hull-v1's (ms), or None."""
    medians = {}
    for rt in ("hull", "runc"):
        values = []
        for f in Path(startup_dir).glob(f"{rt}-v1/rep*/samples.tsv"):
            calls = defaultdict(list)
            for line in f.read_text().splitlines():
                fig, value, _ = line.split("\t")
                calls[fig].append(int(value))
            values += map(sum, zip(calls["b.create"], calls["b.start"], calls["b.delete"]))
        if not values:
            return None
        medians[rt] = statistics.median(values)
    return (medians["runc"] - medians["hull"]) / 1000


def starts_table(samples, prediction):
    print("| engine: what is timed | hull | runc | crun | hull/runc | crun/runc | hull saves vs runc |")
    print("|---|---|---|---|---|---|---|")
    for engine, what in ENGINES:
        cells, med = [], {}
        for rt in RUNTIMES:
            v = sorted(samples.get((engine, rt), []))
            if not v:
                cells.append("—")
                continue
            med[rt] = statistics.median(v)
            cells.append(f"{ms(med[rt])} [{ms(v[0])}–{ms(v[-1])}]")
        ratio = lambda rt: f"{med[rt] / med['runc']:.2f}" if rt in med and "runc" in med else "—"
        saved = f"{ms(med['runc'] - med['hull'])} ms" if "hull" in med and "runc" in med else "—"
        print(f"| {engine}: {what} | " + " | ".join(cells) + f" | {ratio('hull')} | {ratio('crun')} | {saved} |")
    n = max((len(v) for v in samples.values()), default=0)
    print(f"\nms, median [min–max] of {n} starts per cell.", end=" ")
    if prediction is not None:
        print(f"Runtime level in the same run: runc-v1's create + start + delete takes "
              f"{prediction:.1f} ms more than hull-v1's (medians).")
    else:
        print()


def trace_table(path):
    rounds = defaultdict(lambda: defaultdict(list))  # (engine, rt) -> round -> rows
    for line in path.read_text().splitlines():
        engine, rt, k, what, start, end = line.split("\t")
        rounds[(engine, rt)][k].append((what, int(start), int(end)))
    print("| engine | runtime | total | in runtime calls | calls (n × median ms) "
          "| before 1st call | between calls | after last call |")
    print("|---|---|---|---|---|---|---|---|")
    for engine, _ in ENGINES:
        for rt in RUNTIMES:
            per_round = rounds.get((engine, rt))
            if not per_round:
                continue
            totals, inside, before, between, after = [], [], [], [], []
            calls = defaultdict(list)
            counts = defaultdict(list)
            for rows in per_round.values():
                total = next((r for r in rows if r[0] == "total"), None)
                rt_calls = sorted((r for r in rows if r[0] != "total"), key=lambda r: r[1])
                if total is None or not rt_calls:
                    continue
                t0, t1 = total[1], total[2]
                # Calls that end after the client returned (cleanup by a
                # shim or conmon's exit command) are not part of the total.
                within = [r for r in rt_calls if r[2] <= t1]
                late = len(rt_calls) - len(within)
                totals.append(t1 - t0)
                inside.append(sum(r[2] - r[1] for r in within))
                before.append(within[0][1] - t0 if within else t1 - t0)
                after.append(t1 - within[-1][2] if within else 0)
                between.append(sum(b[1] - a[2] for a, b in zip(within, within[1:])))
                per_kind = defaultdict(list)
                for r in within:
                    per_kind[r[0]].append(r[2] - r[1])
                for kind, durations in per_kind.items():
                    calls[kind] += durations
                    counts[kind].append(len(durations))
                if late:
                    counts["after return"].append(late)
            if not totals:
                continue
            med = lambda v: ms(statistics.median(v)) if v else "0"
            kinds = ", ".join(
                f"{kind} {statistics.median(counts[kind]):g}×{med(calls[kind])}"
                for kind in sorted(calls, key=lambda k: -statistics.median(calls[k])))
            if counts.get("after return"):
                kinds += f"; {statistics.median(counts['after return']):g} after the client returned"
            print(f"| {engine} | {rt} | {med(totals)} | {med(inside)} | {kinds} | {med(before)} "
                  f"| {med(between)} | {med(after)} |")
    print("\nms, medians over the traced rounds (each runtime behind a logging wrapper, which adds "
          "its own fork and exec to every call). Calls made after the client returned (a shim's "
          "or conmon's clean-up; for CRI, the teardown after the container runs) are counted, "
          "not timed.")


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    run = Path(sys.argv[1])
    prediction = predicted(sys.argv[2]) if len(sys.argv) == 3 else None
    print("### Container starts through engines: median [min–max] (ms)\n")
    starts_table(load_samples(run / "samples.tsv"), prediction)
    if (run / "trace.tsv").exists() and (run / "trace.tsv").stat().st_size:
        print("\n### Where an engine's time goes (traced rounds)\n")
        trace_table(run / "trace.tsv")


if __name__ == "__main__":
    main()
