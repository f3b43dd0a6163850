#!/usr/bin/env python3
"""Ratio table of one benches/startup.sh run: hull against crun and runc.

    report.py RUN_DIR [--runtime hull]

Reads RUN_DIR/<variant>/rep<k>/samples.tsv ("metric<TAB>value<TAB>unit", us or
KiB, as benches/lifecycle.sh writes them), rc and notes.txt, and prints
markdown: per variant group (default bundle, -lim, -seccomp) each figure's
median [min–max] over all samples of all reps for <rt>-v1, crun-v1, runc-v1 and
plain <rt>/runc, the ratios <rt>-v1/crun-v1 and <rt>-v1/runc-v1 (ratio of the
pooled medians; with several reps, the range of the per-rep ratios in
parentheses), whether the goals hold, and the failures.

Exit status: 1 if a variant failed, other than crun refusing the hybrid
cgroup layout (expected for its plain variants), else 0. Goals are reported only.
"""

import argparse
import statistics
import sys
from pathlib import Path

FIGURES = [
    ("a.run", "foreground `run`, back-to-back loop"),
    ("a.run.hf", "the same under hyperfine"),
    ("e.run.idle", "`run` after 0.2 s idle"),
    ("b.create", "`create`"),
    ("b.start", "`start`"),
    ("b.state", "`state`"),
    ("b.delete", "`delete`"),
    ("b.csd", "create + start + delete"),
    ("b.total", "create … delete incl. exit wait and state"),
    ("c.total", "PAR × `run -d` … all deleted"),
    ("c.fg.total", "PAR × foreground `run`"),
    ("d.rss.run", "peak RSS of `run`"),
]
GROUPS = [("", "default bundle"), ("-lim", "memory + pids limits"),
          ("-seccomp", "podman's default seccomp profile")]
# (figure, factor of crun-v1's median, absolute bound, description)
GOALS = [
    ("a.run", 0.6, None, "a.run ≤ 0.6 × crun"),
    ("e.run.idle", 0.8, None, "e.run.idle ≤ 0.8 × crun"),
    ("b.csd", 0.6, None, "b create+start+delete ≤ 0.6 × crun"),
    ("c.total", 0.6, None, "c.total ≤ 0.6 × crun"),
    ("d.rss.run", None, 2.2, "d.rss.run ≤ 2.2 MiB (`cargo build --release`)"),
    ("d.rss.run", None, 1.5, "d.rss.run ≤ 1.5 MiB (the best build)"),
]
HYBRID_REFUSAL = "hybrid mode not supported"


class Variant:
    """One variant's samples per rep (ms or MiB) and its failures."""

    def __init__(self, path):
        self.name = path.name
        self.reps = {}      # rep name -> {metric: [values]}
        self.failures = []  # (rep, first FAIL line)
        self.notes = []
        reps = sorted(path.glob("rep*"), key=lambda p: int(p.name[3:] or 0))
        for rep in reps:
            rc = read(rep / "rc").strip() or "?"
            notes = read(rep / "notes.txt").splitlines()
            if rc != "0":
                fail = next((n for n in notes if "FAIL" in n), f"rc={rc}")
                self.failures.append((rep.name, fail))
            self.notes += [n for n in notes if "FAIL" not in n and n.strip()]
            self.reps[rep.name] = load_samples(rep / "samples.tsv")

    def values(self, metric, rep=None):
        reps = [rep] if rep else self.reps
        return [v for r in reps for v in self.reps.get(r, {}).get(metric, [])]

    def refused_hybrid(self):
        return bool(self.failures) and all(HYBRID_REFUSAL in f for _, f in self.failures)


def read(path):
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def load_samples(path):
    samples = {}
    for line in read(path).splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        metric, value, unit = parts[0], float(parts[1]), parts[2]
        value = value / 1000 if unit == "us" else value / 1024 if unit == "KiB" else value
        samples.setdefault(metric, []).append(value)
    # create + start + delete of the same iteration (lifecycle.sh appends them in order)
    parts = [samples.get(m, []) for m in ("b.create", "b.start", "b.delete")]
    if all(parts) and len({len(p) for p in parts}) == 1:
        samples["b.csd"] = [sum(t) for t in zip(*parts)]
    return samples


def unit(metric):
    return "MiB" if metric.startswith("d.rss") else "ms"


def num(v, metric):
    if unit(metric) == "MiB":
        return f"{v:.2f}"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def median(values):
    return statistics.median(values) if values else None


def cell(var, metric):
    if var is None:
        return "–"
    vals = var.values(metric)
    if not vals:
        if var.refused_hybrid():
            return "refused (hybrid)"
        return "FAILED" if var.failures else "–"
    mark = " †" if var.failures else ""
    return f"{num(median(vals), metric)} [{num(min(vals), metric)}–{num(max(vals), metric)}]{mark}"


def ratio(a, b, metric):
    """Ratio of pooled medians, and the min/max of the per-rep ratios."""
    if a is None or b is None:
        return None, None
    ma, mb = median(a.values(metric)), median(b.values(metric))
    if ma is None or not mb:
        return None, None
    per_rep = []
    for rep in a.reps:
        ra, rb = median(a.values(metric, rep)), median(b.values(metric, rep))
        if ra is not None and rb:
            per_rep.append(ra / rb)
    spread = (min(per_rep), max(per_rep)) if len(per_rep) > 1 else None
    return ma / mb, spread


def ratio_cell(a, b, metric):
    r, spread = ratio(a, b, metric)
    if r is None:
        return "–"
    return f"{r:.2f} ({spread[0]:.2f}–{spread[1]:.2f})" if spread else f"{r:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--runtime", default="hull", help="label of the runtime under test")
    args = ap.parse_args()
    run, rt = args.run_dir, args.runtime

    listed = read(run / "variants.txt").split()
    if not listed:
        listed = sorted(p.name for p in run.iterdir() if p.is_dir() and any(p.glob("rep*")))
    variants = {n: Variant(run / n) for n in listed if (run / n).is_dir()}
    get = variants.get
    out = []

    for sfx, title in GROUPS:
        me = get(f"{rt}-v1{sfx}")
        if me is None:
            continue
        cols = [f"{rt}-v1{sfx}", f"crun-v1{sfx}", f"runc-v1{sfx}", f"{rt}{sfx}", f"runc{sfx}"]
        cols = [c for c in cols if c in variants]
        crun, runc = get(f"crun-v1{sfx}"), get(f"runc-v1{sfx}")
        out.append(f"### {title}: median [min–max] (ms; RSS in MiB)\n")
        out.append("| figure | " + " | ".join(cols)
                   + f" | {rt}-v1{sfx}/crun-v1{sfx} | {rt}-v1{sfx}/runc-v1{sfx} |")
        out.append("|---" * (len(cols) + 3) + "|")
        for metric, _ in FIGURES:
            row = [cell(get(c), metric) for c in cols]
            row += [ratio_cell(me, crun, metric), ratio_cell(me, runc, metric)]
            out.append(f"| {metric} | " + " | ".join(row) + " |")
        out.append("")

    groups = [(sfx, title) for sfx, title in GROUPS if f"{rt}-v1{sfx}" in variants]
    out.append(f"### Goals ({rt}-v1 against crun-v1, ratio of medians; reported, not enforced)\n")
    out.append("| goal | " + " | ".join(t for _, t in groups) + " |")
    out.append("|---" * (len(groups) + 1) + "|")
    for metric, factor, bound, desc in GOALS:
        row = []
        for sfx, _ in groups:
            me, crun = get(f"{rt}-v1{sfx}"), get(f"crun-v1{sfx}")
            if bound is not None:
                m = median(me.values(metric))
                row.append("–" if m is None else f"{'yes' if m <= bound else '**no**'} ({m:.2f} MiB)")
            else:
                r, _ = ratio(me, crun, metric)
                row.append("–" if r is None else f"{'yes' if r <= factor else '**no**'} ({r:.2f}×)")
        out.append(f"| {desc} | " + " | ".join(row) + " |")
    out.append("")

    out.append("### Failures and notes\n")
    unexpected = 0
    for v in variants.values():
        for rep, fail in v.failures:
            expected = v.name.startswith("crun") and HYBRID_REFUSAL in fail
            unexpected += not expected
            tag = "expected: crun 1.8 refuses the hybrid layout" if expected else "FAILED"
            out.append(f"- {v.name} {rep}: {tag}: {fail[:300]}")
        for note in sorted(set(v.notes)):
            out.append(f"- {v.name}: {note.removeprefix('note: ')[:300]}")
    extra = read(run / "startup-notes.txt").splitlines()
    out += [f"- {line}" for line in extra if line.strip()]
    if not extra and not any(v.failures or v.notes for v in variants.values()):
        out.append("- none")
    out.append("")
    out.append("Figures: a/e = one container, b = split lifecycle per call, c = PAR at once,"
               " d = ru_maxrss of `run`. † = some reps failed. Compare only within this run.")
    print("\n".join(out))

    if f"{rt}-v1" not in variants or not get(f"{rt}-v1").values("a.run"):
        print(f"report: no samples for {rt}-v1", file=sys.stderr)
        return 1
    if unexpected:
        print(f"report: {unexpected} variant run(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
