"""`python -m bench.z3_encodings [NAME ...]`: the Z3 encodings of slab, kmalloc and pagetable.

For each subsystem with a symbolic encoding other than buddy (bench/harness.py
measures that one), three figures on the standard library of the subsystem:

- induction: `bounded_check` with induction on (k = 1 .. 4) at growing memory
  sizes: the verdict (proved, or how far it holds) and the seconds;
- bmc: induction off, depth 4, 6 and 8 at one size: seconds to clear each depth;
- mutants: each seeded mutation found by BMC (the white-box properties left
  out, as on a submission): the property, the depth, the seconds.

Each run has its own 120 s budget (an outer limit only: Z3's work is bounded
by the rlimit). One run per figure; prints a Markdown table per figure.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from mmcheck.checker.options import Options
from mmcheck.checker.subsystems import kmalloc, pagetable, slab
from mmcheck.checker.z3_engine import bounded_check, fresh_context
from mmcheck.spec.loader import library, load

BUDGET = 120.0
SIZES = {"slab": (2, 4, 8, 13), "kmalloc": (2, 4, 8, 12), "pagetable": (3, 8, 16)}
BMC_SIZE = {"slab": 8, "kmalloc": 4, "pagetable": 8}
DRIVERS: dict[str, Any] = {"slab": slab, "kmalloc": kmalloc, "pagetable": pagetable}


def _run(name: str, pages: int, depth: int, induction: bool, mutation: str | None = None,
         skip: set[str] | None = None) -> tuple[Any, float]:
    """One bounded_check of the subsystem's library: (result, seconds)."""
    fresh_context()
    checked = [load(f) for f in library(name)]
    system, setup, universe, bound = DRIVERS[name].symbolic_system(pages, mutation)
    start = time.monotonic()
    result = bounded_check(checked, system, setup,
                           Options(depth=depth, induction=induction, budget=BUDGET,
                                   max_induction=4),
                           universe, bound, set(skip or ()))
    return result, time.monotonic() - start


def induction(name: str, out: Callable[[str], None]) -> None:
    out(f"\n{name}: induction (k <= 4), whole library\n")
    out("| pages | verdict | seconds | note |\n|---|---|---|---|")
    for pages in SIZES[name]:
        r, secs = _run(name, pages, 4, True)
        out(f"| {pages} | {r.summary} | {secs:.1f} | {r.induction_note} |")


def bmc(name: str, out: Callable[[str], None]) -> None:
    pages = BMC_SIZE[name]
    out(f"\n{name}: BMC, induction off, {pages} pages\n")
    out("| depth | verdict | seconds | seconds per depth |\n|---|---|---|---|")
    for depth in (4, 6, 8):
        r, secs = _run(name, pages, depth, False)
        per = ", ".join(f"{d}:{t:.1f}" for d, t in r.timings)
        out(f"| {depth} | {r.verdict} to {r.depth_checked} | {secs:.1f} | {per} |")


def mutants(name: str, out: Callable[[str], None]) -> None:
    from mmcheck.checker.symbolic import kmalloc as km_sym
    from mmcheck.checker.symbolic import pagetable as pt_sym
    from mmcheck.checker.symbolic import slab as slab_sym

    muts = {"slab": slab_sym.MUTATIONS, "kmalloc": km_sym.MUTATIONS,
            "pagetable": pt_sym.MUTATIONS}[name]
    checked = [load(f) for f in library(name)]
    white = {p.name for c in checked for p in c.spec.properties
             if p.doc.startswith("[white-box]")}
    pages = BMC_SIZE[name]
    out(f"\n{name}: seeded mutants, BMC to depth 6, {pages} pages\n")
    out("| mutation | property | depth | seconds |\n|---|---|---|---|")
    for mutation in muts:
        r, secs = _run(name, pages, 6, False, mutation, white)
        prop = r.violations[0].prop.name if r.violations else f"NOT FOUND ({r.summary})"
        out(f"| {mutation} | {prop} | {r.depth_checked} | {secs:.1f} |")


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or ["slab", "kmalloc", "pagetable"]
    for name in names:
        for figure in (induction, bmc, mutants):
            figure(name, lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
