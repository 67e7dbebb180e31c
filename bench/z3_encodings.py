"""`python -m bench.z3_encodings [NAME ...]`: every Z3 encoding side by side, in one run.

For each subsystem whose declaration says `symbolic=True` (checker/subsystems/
declared/; all of them by default, or the NAMEs given), three figures on the
standard library of the subsystem:

- proved: `bounded_check` with induction on (k = 1 .. MAX_K) at growing sizes of
  its universe (SIZES: pages, addresses, processes x slots) until a size is not
  proved within 30 s of wall time (each run may go on to OVERRUN x 30 s, and
  counts only if it proved the whole spec within 30 s): the largest size proved
  within 30 s is the figure the issue asks for; CPU seconds include the forked
  children of the induction step;
- bmc: induction off, ONE incremental run to depth 12 at BMC_SIZE (64 pages
  where the size is pages): the cumulative seconds at which depths 4, 8 and 12
  were cleared, or how deep it got within its budget;
- mutants: each seeded mutation of checker/symbolic/<name>.py (MUTATIONS, one per
  buggy example) by BMC, depth 1, 2, ... up to MUTANT_DEPTH until one breaks a
  property, with the white-box properties left out (as on a submission): the
  property broken, the depth, the seconds until the counterexample in that run,
  and whether the trace convicts examples/<name>/buggy/<mutation>.py.

Budgets are outer limits (Z3's work per query is bounded by the engine's
rlimit); every row carries its wall and CPU seconds and the 1-minute load.
Options: --no-proved --no-bmc --no-mutants (leave a figure out), --budget S (the
"proved" budget, default 30), --json PATH (also write the rows as JSON; the
recorded figures are bench/z3-results.json), --tables FILE ... (print the tables
of runs written with --json, merged: two halves run side by side on two cores).
Prints a Markdown table per figure.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmcheck.checker.options import Options
from mmcheck.checker.subsystems import registry
from mmcheck.checker.z3_engine import bounded_check, fresh_context
from mmcheck.spec.loader import library, load

ROOT = Path(__file__).resolve().parents[1]
PROVED_BUDGET = 30.0
OVERRUN = 4  # a proved-size run's safety limit, in budgets (it counts only within one)
BMC_BUDGET = 60.0
BMC_BUDGETS = {"buddy": 120.0}  # the figure: depths 4, 8, 12 at 64 pages
MUTANT_BUDGET = 600.0
BMC_DEPTHS = (4, 8, 12)

Build = Callable[[str | None], tuple[Any, Mapping[str, int], range, int]]


@dataclass(frozen=True)
class Size:
    """One universe of a subsystem: how a row names it, and how to build it (with a
    mutation or none)."""

    label: str
    build: Build


def pages(name: str, n: int) -> Size:
    """The driver's own encoding at `n` (pages, or whatever its symbolic_system counts)."""
    def build(mutation: str | None) -> tuple[Any, Mapping[str, int], range, int]:
        return registry.driver(name).symbolic_system(n, mutation)  # type: ignore[union-attr]
    return Size(f"{n} pages", build)


def pagetable_size(tables: int, per: int, npages: int) -> Size:
    """`tables` PTE tables 4 MiB apart with `per` page addresses each, `npages` pool pages."""
    def build(mutation: str | None) -> tuple[Any, Mapping[str, int], range, int]:
        from mmcheck.checker.symbolic.pagetable import BASE, SymbolicPageTable
        vas = [BASE + (t << 22) + p * 4096 for t in range(tables) for p in range(per)]
        return (SymbolicPageTable(npages, vas, mutation=mutation),
                {"levels": 2, "npages": npages}, range(0, npages + 1), 64)
    return Size(f"{tables * per} addresses, {npages} table pages", build)


def fault_size(procs: int, slots: int) -> Size:
    """`procs` processes over `slots` one-page slots, with the frames they need."""
    def build(mutation: str | None) -> tuple[Any, Mapping[str, int], range, int]:
        from mmcheck.checker.symbolic.fault import SymbolicFault, frames_needed
        n = frames_needed(procs, slots)
        return SymbolicFault(n, procs, slots, mutation), {"npages": n}, range(0, n + 1), 65
    from mmcheck.checker.symbolic.fault import frames_needed
    return Size(f"{procs} processes x {slots} slots, {frames_needed(procs, slots)} frames",
                build)


def segment_cpl(cpl: int) -> Size:
    """The SegmentUnit at `cpl` (segmentation has no memory size: its universe is the
    checker's GDT and every offset; CPL 0 is where rpl_ignored shows)."""
    def build(mutation: str | None) -> tuple[Any, Mapping[str, int], range, int]:
        from mmcheck.checker.symbolic.segment import SymbolicSegment
        _, _, universe, bound = registry.driver("segment").symbolic_system(1)  # type: ignore[union-attr]
        system = SymbolicSegment(cpl, mutation)
        return system, dict(system.setup), universe, bound
    return Size(f"CPL {cpl}", build)


# The growing universes of each subsystem, smallest first. A subsystem without an
# entry grows its driver's default size: 1, 2, 4 and 8 times it.
SIZES: dict[str, Callable[[], list[Size]]] = {
    "buddy": lambda: [pages("buddy", n) for n in (8, 16, 32, 64, 128, 256, 512, 1024)],
    # slab and kmalloc: up to the largest pool their encodings take (every object in
    # one array cache), 13 and 12 pages
    "slab": lambda: [pages("slab", n) for n in (2, 4, 8, 13)],
    "kmalloc": lambda: [pages("kmalloc", n) for n in (2, 4, 8, 12)],
    "pagetable": lambda: [pagetable_size(*s) for s in
                          ((2, 4, 8), (4, 4, 8), (5, 4, 16), (6, 4, 16), (8, 4, 16))],
    "vma": lambda: [pages("vma", n) for n in (3, 4, 5, 6, 8)],
    "fault": lambda: [fault_size(*s) for s in ((2, 1), (2, 2), (3, 1))],
    "vmalloc": lambda: [pages("vmalloc", n) for n in (4, 6, 8, 10, 12)],
    "segment": lambda: [segment_cpl(3), segment_cpl(0)],
    "zone": lambda: [pages("zone", n) for n in (16, 32, 64, 128, 256, 512)],
    # machine: frames of a node with one reserved page (64 at most)
    "machine": lambda: [pages("machine", n) for n in (5, 6, 7, 8, 10, 12)],
}
# Where BMC and the mutants run (the driver's default size elsewhere): 64 pages for
# buddy as the issue asks.
BMC_SIZE: dict[str, Callable[[], Size]] = {
    "buddy": lambda: pages("buddy", 64),
    "pagetable": lambda: pagetable_size(2, 4, 8),
    "fault": lambda: fault_size(2, 1),
    "slab": lambda: pages("slab", 8),
    "kmalloc": lambda: pages("kmalloc", 4),  # where every seeded bug's cache fits
    "vma": lambda: pages("vma", 4),
    "segment": lambda: segment_cpl(0),
}
# The largest k of induction (2 elsewhere).
MAX_K = {"vma": 1, "fault": 1, "pagetable": 1, "vmalloc": 1, "segment": 1, "machine": 1}
# The BMC depth of the mutant runs (subsystem, or subsystem/mutation): deep enough for
# the bug's shortest trace on the properties a submission shows (BMC goes on to this
# depth for the properties not yet broken, so no deeper than needed).
MUTANT_DEPTH = {"vma": 3, "vmalloc": 4, "fault": 5, "fault/missing_refcount_drop": 7,
                "machine": 3}  # 6 elsewhere
# The first depth tried (1 elsewhere), where the runs to shallower depths cost minutes
# and would show nothing new: the run to depth 7 clears depths 1 to 6 itself (the
# leak shows only after both processes exit).
MUTANT_FIRST_DEPTH = {"fault/missing_refcount_drop": 7}
# Properties a mutant run leaves out beside the white-box ones: they read state that
# a submission shows as the reference's (following its choices), so what the
# mutant breaks there its example cannot show. zone: the free lists are the
# reference's, a merge across zones shows only when the merged block is handed out.
MUTANT_SKIP = {"zone/merges_across_zones": {"free_blocks_in_one_zone"}}
# A solver rlimit per query other than the engine's default (50 M units), where a
# mutant's shortest trace needs more: the leak of missing_refcount_drop shows only
# after both processes exit (depth 7), and clearing depth 6 of the fault encoding
# (all_free_again_after_exit: the free-frame count against every refcount path)
# takes about 50 s of CPU, past the default. Work, not time: the same answer anywhere.
MUTANT_RLIMIT = {"fault/missing_refcount_drop": 1_000_000_000}


def symbolic_names() -> list[str]:
    """Every declared subsystem with a symbolic encoding, in declaration order."""
    return [d.name for d in registry.declared() if d.symbolic]


def sizes_of(name: str) -> list[Size]:
    if name in SIZES:
        return SIZES[name]()
    n = registry.get(name).symbolic_pages[0]  # type: ignore[union-attr]
    return [pages(name, n * f) for f in (1, 2, 4, 8)]


def bmc_size(name: str) -> Size:
    if name in BMC_SIZE:
        return BMC_SIZE[name]()
    return pages(name, registry.get(name).symbolic_pages[0])  # type: ignore[union-attr]


def mutations_of(name: str) -> Mapping[str, str]:
    """The seeded bugs of checker/symbolic/<name>.py (empty where it has none)."""
    module = importlib.import_module(f"mmcheck.checker.symbolic.{name}")
    return getattr(module, "MUTATIONS", {})


def _load() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return None


def run(name: str, size: Size, depth: int, induction: bool, budget: float,
        mutation: str | None = None, skip: set[str] | None = None,
        rlimit: int | None = None) -> dict[str, Any]:
    """One bounded_check of the subsystem's library on a fresh z3 context, as a row."""
    fresh_context()
    checked = [load(f) for f in library(name)]
    system, setup, universe, bound = size.build(mutation)
    t0, c0 = time.monotonic(), _cpu()
    r = bounded_check(checked, system, setup,
                      Options(depth=depth, induction=induction, budget=budget,
                              max_induction=MAX_K.get(name, 2), z3_rlimit=rlimit),
                      universe, bound, set(skip or ()))
    return {"subsystem": name, "size": size.label, "depth": depth, "induction": induction,
            "mutation": mutation, "rlimit": rlimit, "verdict": r.verdict, "summary": r.summary,
            "depth_checked": r.depth_checked, "wall_s": round(time.monotonic() - t0, 2),
            "cpu_s": round(_cpu() - c0, 2), "load1": _load(),
            "per_depth_s": [[d, round(t, 2)] for d, t in r.timings],
            "violations": [[v.prop.name, v.depth, round(v.found_s, 2)] for v in r.violations],
            "_result": r, "_checked": checked}


def _cpu() -> float:
    """CPU seconds of this process and of its children that have ended (the Z3
    engine asks its induction obligations in forked children)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def proved(name: str, budget: float) -> list[dict[str, Any]]:
    """Growing sizes until one is not proved within `budget` seconds of wall time: each
    run gets OVERRUN times the budget as its safety limit (the engine gives a query
    only part of what is left, keeping time for BMC), and counts if the whole spec was
    proved and the run took at most `budget`."""
    rows = []
    for size in sizes_of(name):
        row = run(name, size, MAX_K.get(name, 2), True, budget * OVERRUN)
        row["within"] = row["verdict"] == "proved" and row["wall_s"] <= budget
        rows.append(row)
        _say(f"{name} {size.label}: {row['summary']} ({row['wall_s']} s)")
        if not row["within"]:
            break
    return rows


def _within(row: dict[str, Any], budget: float) -> bool:
    return row.get("within", row["verdict"] == "proved" and row["wall_s"] <= budget)


def bmc(name: str) -> dict[str, Any]:
    """One incremental BMC run to the deepest of BMC_DEPTHS."""
    size = bmc_size(name)
    row = run(name, size, max(BMC_DEPTHS), False, BMC_BUDGETS.get(name, BMC_BUDGET))
    _say(f"{name} BMC {size.label}: cleared depth {row['depth_checked']} ({row['wall_s']} s)")
    return row


def mutants(name: str) -> list[dict[str, Any]]:
    """Each seeded mutation by BMC on the properties a submission shows."""
    rows = []
    size = bmc_size(name)
    checked = [load(f) for f in library(name)]
    white = {p.name for c in checked for p in c.spec.properties
             if p.doc.startswith("[white-box]")}
    for mutation in mutations_of(name):
        # depth by depth, each a run of its own, up to the first that breaks something:
        # a run to depth d goes on to d for the properties not yet broken, so a deeper
        # bound than needed costs the whole of the deeper depths
        most = MUTANT_DEPTH.get(f"{name}/{mutation}", MUTANT_DEPTH.get(name, 6))
        first = MUTANT_FIRST_DEPTH.get(f"{name}/{mutation}", 1)
        spent = 0.0
        for depth in range(min(first, most), most + 1):
            row = run(name, size, depth, False, MUTANT_BUDGET, mutation,
                      white | MUTANT_SKIP.get(f"{name}/{mutation}", set()),
                      MUTANT_RLIMIT.get(f"{name}/{mutation}"))
            spent += row["wall_s"]
            if row["violations"] or row["verdict"] == "unknown":
                break
        row["all_runs_s"] = round(spent, 2)
        row["example_breaks"] = _example_breaks(name, mutation, row)
        rows.append(row)
        _say(f"{name} mutant {mutation}: {row['violations'][:1]} {row['example_breaks']}")
    return rows


def _example_breaks(name: str, mutation: str, row: dict[str, Any]) -> str:
    """Replay each shortest violation's trace on examples/<name>/buggy/<mutation>.py:
    "yes (property)" when one breaks the same property there."""
    result = row["_result"]
    if not result.violations:
        return "-"
    first = min(v.depth for v in result.violations)
    verdicts = [example_breaks(name, mutation, v, row["_checked"])
                for v in result.violations if v.depth == first]
    return next((v for v in verdicts if v.startswith("yes")), verdicts[0])


def example_breaks(name: str, mutation: str, v: Any, checked: Sequence[Any]) -> str:
    """Replay the violation's trace on examples/<name>/buggy/<mutation>.py: does it
    break the same property there?"""
    from mmcheck.checker.confirm import replay
    from mmcheck.checker.evaluate import CompiledSpec
    from mmcheck.checker.sandbox.client import Submission

    example = ROOT / "examples" / name / "buggy" / f"{mutation}.py"
    driver = registry.driver(name)
    others = frozenset(p.name for c in checked for p in c.spec.properties) - {v.prop.name}
    sub = Submission.open(example)
    try:
        trace = v.trace
        # the example's own choices are followed (what alloc returned is what a later
        # free passes back), as the Z3 engine does on a submission
        got = replay(trace, [CompiledSpec(c) for c in checked],
                     lambda setup: driver.SubmissionSystem(sub, setup),  # type: ignore[union-attr]
                     skip=others, rename=True)
    finally:
        sub.close()
    if got.violation is not None and got.violation.property == v.prop.name:
        return f"yes ({v.prop.name})"
    return f"NO ({got.violation.property if got.violation else 'no violation'})"


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ tables


def proved_table(rows: Sequence[dict[str, Any]], budget: float = PROVED_BUDGET) -> str:
    """Per subsystem: the largest size proved within the budget, and the first not."""
    out = ["| subsystem | largest proved | wall s | CPU s | next size | its result | load |",
           "|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["subsystem"] for r in rows):
        mine = [r for r in rows if r["subsystem"] == name]
        best = [r for r in mine if _within(r, budget)]
        top = best[-1] if best else None
        nxt = next((r for r in mine if not _within(r, budget)), None)
        out.append(
            f"| {name} | {top['size'] if top else 'none'} | {top['wall_s'] if top else '-'} | "
            f"{top['cpu_s'] if top else '-'} | {nxt['size'] if nxt else '(the largest it has)'} | "
            f"{_short(nxt['summary']) if nxt else '-'} ({nxt['wall_s'] if nxt else '-'} s) | "
            f"{(top or nxt or {}).get('load1')} |")
    return "\n".join(out)


def bmc_table(rows: Sequence[dict[str, Any]]) -> str:
    """Cumulative seconds to clear depths 4, 8 and 12 in one incremental run."""
    out = ["| subsystem | size | " + " | ".join(f"depth {d} (s)" for d in BMC_DEPTHS)
           + " | cleared | CPU s | load |", "|---|---|" + "---|" * len(BMC_DEPTHS) + "---|---|---|"]
    for r in rows:
        cells = []
        for d in BMC_DEPTHS:
            done = sum(t for k, t in r["per_depth_s"] if k <= d)
            cells.append(f"{done:.1f}" if r["depth_checked"] >= d else "-")
        out.append(f"| {r['subsystem']} | {r['size']} | {' | '.join(cells)} | "
                   f"{r['depth_checked']} ({_short(r['summary'])}) | {r['cpu_s']} | {r['load1']} |")
    return "\n".join(out)


def mutant_table(rows: Sequence[dict[str, Any]]) -> str:
    out = ["| subsystem | mutation | size | property broken | depth | found after (s) | "
           "all runs (s) | its example breaks it | load |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        first = min(r["violations"], key=lambda v: (v[1], v[2])) if r["violations"] else None
        after = first[2] if first else 0.0
        out.append(f"| {r['subsystem']} | {r['mutation']} | {r['size']} | "
                   f"{first[0] if first else 'NOT FOUND: ' + _short(r['summary'])} | "
                   f"{first[1] if first else '-'}{_rlimit_note(r)} | {after:.1f} | "
                   f"{r['all_runs_s']} | "
                   f"{r['example_breaks']} | {r['load1']} |")
    return "\n".join(out)


def _rlimit_note(row: dict[str, Any]) -> str:
    return f" (rlimit {row['rlimit'] // 1_000_000} M)" if row.get("rlimit") else ""


def _short(text: str, most: int = 70) -> str:
    return text if len(text) <= most else text[:most - 3] + "..."


def tables(out: Mapping[str, Sequence[dict[str, Any]]], budget: float) -> str:
    """The three figures as Markdown."""
    return (f"\nLargest size whose whole spec is proved within {budget:g} s\n\n"
            f"{proved_table(out['proved'], budget)}\n\nBMC, induction off, one incremental run\n\n"
            f"{bmc_table(out['bmc'])}\n\nSeeded mutants by BMC (white-box properties left "
            f"out, as on a submission)\n\n{mutant_table(out['mutants'])}")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    budget = float(args[args.index("--budget") + 1]) if "--budget" in args else PROVED_BUDGET
    if "--tables" in args:  # the tables of runs written with --json (two halves, say)
        merged: dict[str, list[dict[str, Any]]] = {"proved": [], "bmc": [], "mutants": []}
        for f in args[args.index("--tables") + 1:]:
            for k, rows in json.loads(Path(f).read_text()).items():
                merged[k] += rows
        print(tables(merged, budget))
        return 0
    path = Path(args[args.index("--json") + 1]) if "--json" in args else None
    names = [a for a in args if not a.startswith("--") and a in symbolic_names()] \
        or symbolic_names()
    out: dict[str, list[dict[str, Any]]] = {"proved": [], "bmc": [], "mutants": []}
    for name in names:
        if "--no-proved" not in args:
            out["proved"] += proved(name, budget)
        if "--no-bmc" not in args:
            out["bmc"].append(bmc(name))
        if "--no-mutants" not in args:
            out["mutants"] += mutants(name)
    print(tables(out, budget))
    if path is not None:
        plain = {k: [{f: v for f, v in r.items() if not f.startswith("_")} for r in rows]
                 for k, rows in out.items()}
        path.write_text(json.dumps(plain, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
