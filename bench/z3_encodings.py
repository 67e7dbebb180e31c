"""`python -m bench.z3_encodings [NAME ...]`: the Z3 encodings of slab, kmalloc, pagetable,
vma, vmalloc.

For each subsystem with a symbolic encoding other than buddy (bench/harness.py
measures that one), three figures on the standard library of the subsystem:

- induction: `bounded_check` with induction on (k = 1 .. 4) at growing memory
  sizes: the verdict (proved, or how far it holds) and the seconds;
- bmc: induction off, depth 4, 6 and 8 at one size: seconds to clear each depth;
- mutants: each seeded mutation found by BMC (the white-box properties left
  out, as on a submission): the property, the depth, the seconds.

Each run has its own 120 s budget (an outer limit only: Z3's work is bounded
by the rlimit). One run per figure; prints a Markdown table per figure, with
the CPU seconds of the process beside the wall seconds (the machine may be
loaded). vma compiles slowly (its actions split over every address and length
of the window), so its induction stops at k = 1 and its BMC figures are
smaller (VMA_DEPTHS, MUTANT_DEPTH).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from mmcheck.checker.options import Options
from mmcheck.checker.subsystems import kmalloc, pagetable, slab, vma, vmalloc
from mmcheck.checker.z3_engine import bounded_check, fresh_context
from mmcheck.spec.loader import library, load

BUDGET = 120.0
SIZES = {"slab": (2, 4, 8, 13), "kmalloc": (2, 4, 8, 12), "pagetable": (3, 8, 16),
         "vma": (3, 4, 5, 6), "vmalloc": (4, 6, 8, 10, 12)}
BMC_SIZE = {"slab": 8, "kmalloc": 4, "pagetable": 8, "vma": 4, "vmalloc": 6}
DRIVERS: dict[str, Any] = {"slab": slab, "kmalloc": kmalloc, "pagetable": pagetable,
                           "vma": vma, "vmalloc": vmalloc}
MAX_K = {"vma": 1, "vmalloc": 1}  # the largest k of induction (4 elsewhere)
BMC_DEPTHS = {"vma": (2, 3, 4)}  # (4, 6, 8) elsewhere
MUTANT_DEPTH = {"vma": 3, "vmalloc": 4}  # 6 elsewhere


def _run(name: str, pages: int, depth: int, induction: bool, mutation: str | None = None,
         skip: set[str] | None = None) -> tuple[Any, float]:
    """One bounded_check of the subsystem's library: (result, wall seconds); the CPU
    seconds of the run go to CPU[-1]."""
    fresh_context()
    cpu = time.process_time()
    checked = [load(f) for f in library(name)]
    system, setup, universe, bound = DRIVERS[name].symbolic_system(pages, mutation)
    start = time.monotonic()
    result = bounded_check(checked, system, setup,
                           Options(depth=depth, induction=induction, budget=BUDGET,
                                   max_induction=MAX_K.get(name, 4)),
                           universe, bound, set(skip or ()))
    CPU.append(time.process_time() - cpu)
    return result, time.monotonic() - start


CPU: list[float] = []


def induction(name: str, out: Callable[[str], None]) -> None:
    k = MAX_K.get(name, 4)
    out(f"\n{name}: induction (k <= {k}), whole library\n")
    out("| pages | verdict | seconds | CPU s | note |\n|---|---|---|---|---|")
    for pages in SIZES[name]:
        r, secs = _run(name, pages, k, True)
        out(f"| {pages} | {r.summary} | {secs:.1f} | {CPU[-1]:.1f} | {r.induction_note} |")


def bmc(name: str, out: Callable[[str], None]) -> None:
    pages = BMC_SIZE[name]
    out(f"\n{name}: BMC, induction off, {pages} pages\n")
    out("| depth | verdict | seconds | CPU s | seconds per depth |\n|---|---|---|---|---|")
    for depth in BMC_DEPTHS.get(name, (4, 6, 8)):
        r, secs = _run(name, pages, depth, False)
        per = ", ".join(f"{d}:{t:.1f}" for d, t in r.timings)
        out(f"| {depth} | {r.verdict} to {r.depth_checked} | {secs:.1f} | {CPU[-1]:.1f} | {per} |")


def mutants(name: str, out: Callable[[str], None]) -> None:
    from mmcheck.checker.symbolic import kmalloc as km_sym
    from mmcheck.checker.symbolic import pagetable as pt_sym
    from mmcheck.checker.symbolic import slab as slab_sym
    from mmcheck.checker.symbolic import vma as vma_sym
    from mmcheck.checker.symbolic import vmalloc as vmalloc_sym

    muts = {"slab": slab_sym.MUTATIONS, "kmalloc": km_sym.MUTATIONS,
            "pagetable": pt_sym.MUTATIONS, "vma": vma_sym.MUTATIONS,
            "vmalloc": vmalloc_sym.MUTATIONS}[name]
    checked = [load(f) for f in library(name)]
    white = {p.name for c in checked for p in c.spec.properties
             if p.doc.startswith("[white-box]")}
    pages = BMC_SIZE[name]
    depth = MUTANT_DEPTH.get(name, 6)
    out(f"\n{name}: seeded mutants, BMC to depth {depth}, {pages} pages\n")
    out("| mutation | property | depth | seconds | CPU s | its example breaks it |\n"
        "|---|---|---|---|---|---|")
    for mutation in muts:
        r, secs = _run(name, pages, depth, False, mutation, white)
        first = min(r.violations, key=lambda v: v.depth) if r.violations else None
        prop = first.prop.name if first else f"NOT FOUND ({r.summary})"
        found = first.depth if first else r.depth_checked
        breaks = _example_breaks(name, mutation, first, checked) if first else "-"
        out(f"| {mutation} | {prop} | {found} | {secs:.1f} | {CPU[-1]:.1f} | {breaks} |")


def _example_breaks(name: str, mutation: str, v: Any, checked: list[Any]) -> str:
    """Replay the violation's trace on examples/<name>/buggy/<mutation>.py: does it
    break the same property at the same step?"""
    from pathlib import Path

    from mmcheck.checker.confirm import replay
    from mmcheck.checker.evaluate import CompiledSpec
    from mmcheck.checker.sandbox.client import Submission

    example = Path(__file__).resolve().parents[1] / "examples" / name / "buggy" / f"{mutation}.py"
    driver = DRIVERS[name]
    others = frozenset(p.name for c in checked for p in c.spec.properties) - {v.prop.name}
    sub = Submission.open(example)
    try:
        got = replay(v.trace, [CompiledSpec(c) for c in checked],
                     lambda setup: driver.SubmissionSystem(sub, setup), skip=others)
    finally:
        sub.close()
    ok = got.violation is not None and got.violation.property == v.prop.name
    return "yes" if ok else f"NO ({got.violation.property if got.violation else 'no violation'})"


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or ["slab", "kmalloc", "pagetable"]
    figures = [f for f in (induction, bmc, mutants) if f"--no-{f.__name__}" not in names]
    for name in [n for n in names if not n.startswith("--")]:
        for figure in figures:
            figure(name, lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
