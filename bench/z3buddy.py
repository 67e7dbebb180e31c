"""`python -m bench z3buddy`: the Z3 engine on the buddy spec, side by side in one run.

1. induction: the whole spec/lib/buddy.mm with k-induction (depth 2, --budget 30 s,
   the default rlimit) at 8, 16, 32, 64, 128, 256 ... pages; per size the wall and
   CPU time, the 1-minute load, and each property's status (proved on its own,
   with lemmas, or not).
2. bmc: BMC alone (induction off) to depth 4, 8 and 12 at 64 pages, 120 s each, and
   the same at 16 pages (the SPIN figure's model size).
3. mutants: each seeded bug of checker/symbolic/buddy.py MUTATIONS, BMC to depth
   6 at 64 pages: the first depth a property breaks, which one, and the time.
4. the 16-page size of the SPIN figure, proved by induction (part of 1).

Prints a Markdown table per part and writes bench/z3buddy-results.json.
Options: --sizes 16,32,... --budget S (part 1's budget per size, default 30)
--quick (16 and 32 pages, depth 4 BMC only),
--induction-only (part 1 alone, nothing written). Part 1 goes on to the next size
while anything is proved at the last one.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from mmcheck.checker.options import Options
from mmcheck.checker.subsystems import buddy
from mmcheck.checker.symbolic.buddy import MUTATIONS
from mmcheck.checker.z3_engine import bounded_check, fresh_context
from mmcheck.spec.loader import library, load

OUT = Path(__file__).with_name("z3buddy-results.json")


def run(npages: int, depth: int, induction: bool, budget: float,
        mutation: str | None = None) -> dict[str, Any]:
    """One engine run on a fresh z3 context: verdict, wall time, each property's status."""
    fresh_context()
    checked = [load(f) for f in library("buddy")]
    system, setup, universe, bound = buddy.symbolic_system(npages, mutation)
    start, cpu = time.monotonic(), time.process_time()
    result = bounded_check(checked, system, setup,
                           Options(depth=depth, induction=induction, budget=budget),
                           universe, bound)
    return {"npages": npages, "depth": depth, "induction": induction, "mutation": mutation,
            "verdict": result.verdict, "summary": result.summary,
            "wall_s": round(time.monotonic() - start, 2),
            "cpu_s": round(time.process_time() - cpu, 2), "load1": _load(),
            "per_depth_s": [[d, round(t, 2)] for d, t in result.timings],
            "status": result.status,
            "violations": [[v.prop.name, v.depth] for v in result.violations]}


def _load() -> float | None:
    """The 1-minute load average now (None where /proc is absent)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return None


def induction_rows(sizes: list[int], budget: float = 30.0) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        row = run(n, 2, True, budget)
        rows.append(row)
        print(f"induction {n}: {row['verdict']} {row['wall_s']} s", file=sys.stderr)
        if not any(s.startswith("proved") for s in row["status"].values()):
            break  # nothing proved at this size: larger ones will not do better
    return rows


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    sizes = [16, 32] if quick else [8, 16, 32, 64, 128, 256, 512]
    if "--sizes" in argv:
        sizes = [int(x) for x in argv[argv.index("--sizes") + 1].split(",")]
    budget = float(argv[argv.index("--budget") + 1]) if "--budget" in argv else 30.0
    out: dict[str, Any] = {"induction": induction_rows(sizes, budget), "bmc": [],
                           "mutants": []}
    if "--induction-only" in argv:
        print(tables(out))
        return 0
    for depth in [4] if quick else [4, 8, 12]:
        row = run(64, depth, False, 120.0)
        out["bmc"].append(row)
        print(f"bmc 64 depth {depth}: {row['verdict']} {row['wall_s']} s", file=sys.stderr)
        if row["verdict"] == "unknown":
            break
    for depth in [] if quick else [4, 8, 12]:  # the SPIN figure's size beside it
        row = run(16, depth, False, 120.0)
        out["bmc"].append(row)
        print(f"bmc 16 depth {depth}: {row['verdict']} {row['wall_s']} s", file=sys.stderr)
        if row["verdict"] == "unknown":
            break
    for mutation in sorted(MUTATIONS):
        row = run(64, 6, False, 60.0, mutation)
        out["mutants"].append(row)
        print(f"mutant {mutation}: {row['violations']} {row['wall_s']} s", file=sys.stderr)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(tables(out))
    return 0


def ended_by(status: str) -> str:
    """What a property's status (or a run's summary) says ended it, in a few words: the
    solver's rlimit (work: the same on any machine), its time or the wall budget
    while formulas were built (load decides), or a counterexample to induction."""
    found = [(status.find(marker), short) for marker, short in (
        ("rlimit (", "rlimit"), ("solver's time", "time (solver)"),
        ("while building", "time (building formulas)"),
        ("before the solver", "time (before asking)"), ("not inductive", "not inductive"))
        if marker in status]
    return min(found)[1] if found else status[:40]  # the first said: what ended it first


def tables(out: dict[str, Any]) -> str:
    """The results as Markdown tables."""
    lines = ["| pages | verdict | wall (s) | CPU (s) | load | proved alone | "
             "proved with lemmas | not proved |",
             "|---|---|---|---|---|---|---|---|"]
    for r in out["induction"]:
        st = r["status"]
        alone = [n for n, s in st.items() if s.startswith("proved") and "lemmas" not in s]
        helped = [n for n, s in st.items() if "lemmas" in s]
        rest = [f"{n} ({ended_by(s)})" for n, s in st.items() if not s.startswith("proved")]
        lines.append(f"| {r['npages']} | {r['verdict']} | {r['wall_s']} | {r.get('cpu_s')} | "
                     f"{r.get('load1')} | {len(alone)} | "
                     f"{len(helped)} | {', '.join(rest) or '-'} |")
    lines += ["", "| BMC pages | depth | verdict | wall (s) | CPU (s) | load | per depth (s) | "
              "ended by |", "|---|---|---|---|---|---|---|---|"]
    for r in out["bmc"]:
        per = ", ".join(f"{d}:{t}" for d, t in r["per_depth_s"])
        lines.append(f"| {r['npages']} | {r['depth']} | {r['verdict']} | {r['wall_s']} | "
                     f"{r.get('cpu_s')} | {r.get('load1')} | {per} | "
                     f"{ended_by(r['summary']) if r['verdict'] == 'unknown' else '-'} |")
    lines += ["", "| mutant (64 pages) | first violation (property, depth) | "
              "found after (s) | properties broken to depth 6 | whole run (s) |",
              "|---|---|---|---|---|"]
    for r in out["mutants"]:
        first = min(r["violations"], key=lambda v: v[1]) if r["violations"] else None
        # the depths are cleared in order: a violation at d is known when d is done
        after = sum(t for d, t in r["per_depth_s"] if first and d <= first[1])
        lines.append(f"| {r['mutation']} | {first} | {after:.1f} | {len(r['violations'])} | "
                     f"{r['wall_s']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
