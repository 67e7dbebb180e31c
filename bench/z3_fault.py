"""`python -m bench.z3_fault [sizes] [pagetable] [bmc] [mutants]`: fault and pagetable encodings.

- sizes: the whole spec/lib/fault.mm by k-induction (k = 1) for growing universes
  (processes x one-page slots, with the frames they need): verdict, wall and CPU
  seconds, so the largest universe proved within 30 s can be read off;
- pagetable: the same for spec/lib/pagetable.mm over growing sets of page
  addresses (PTE tables x addresses per table) and table pools;
- bmc: fault, induction off, depth 4 and 6 at 2 processes x 1 slot;
- mutants: each seeded fault mutation found by BMC (the white-box properties left
  out, as on a submission) at which depth, and whether its trace breaks the same
  property on examples/fault/buggy/<mutation>.py.

Each run has its own 300 s budget (an outer limit: Z3's work is bounded by the
rlimit). Every line carries the 1-minute load average at its end.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from mmcheck.checker.options import Options
from mmcheck.checker.symbolic.fault import MUTATIONS, SymbolicFault, frames_needed
from mmcheck.checker.symbolic.pagetable import BASE, SymbolicPageTable
from mmcheck.checker.z3_engine import bounded_check, fresh_context
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.spec.loader import library, load

from bench import z3_encodings

BUDGET = 300.0
FAULT_SIZES = ((2, 1), (2, 2), (3, 1))
PAGETABLE_SIZES = ((2, 4, 8), (4, 4, 8), (5, 4, 16), (6, 4, 16))
# BMC depth per mutant: the shortest trace that can show each bug (5: spawn, mmap,
# write, fork, then the access; 7: both processes must exit after the copy).
MUTANT_DEPTH = {"cow_copies_on_read": 5, "cow_never_copies": 5, "missing_refcount_drop": 7}
# Depth 6 of missing_refcount_drop exceeds the default rlimit (50 M): no limit there.
MUTANT_RLIMIT = {"missing_refcount_drop": 0}


def _load() -> str:
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def _check(name: str, system: Any, setup: dict[str, int], depth: int, induction: bool,
           skip: set[str] | None = None, rlimit: int | None = None) -> tuple[Any, float, float]:
    """bounded_check of the subsystem's library: (result, wall s, CPU s)."""
    fresh_context()
    checked = [load(f) for f in library(name)]
    t0, c0 = time.monotonic(), time.process_time()
    result = bounded_check(checked, system, setup,
                           Options(depth=depth, induction=induction, budget=BUDGET,
                                   max_induction=1, z3_rlimit=rlimit),
                           range(0, setup["npages"] + 1), 65, set(skip or ()))
    return result, time.monotonic() - t0, time.process_time() - c0


def sizes() -> None:
    print("\nfault: whole spec by 1-induction\n\n| processes x slots | frames | verdict "
          "| wall s | CPU s | load |\n|---|---|---|---|---|---|")
    for nprocs, nslots in FAULT_SIZES:
        n = frames_needed(nprocs, nslots)
        r, wall, cpu = _check("fault", SymbolicFault(n, nprocs, nslots), {"npages": n}, 1, True)
        print(f"| {nprocs} x {nslots} | {n} | {r.summary} | {wall:.1f} | {cpu:.1f} | {_load()} |",
              flush=True)


def pagetable() -> None:
    print("\npagetable: whole spec by 1-induction, 2-level mode\n\n| PTE tables x addresses "
          "| pool pages | verdict | wall s | CPU s | load |\n|---|---|---|---|---|---|")
    for tables, per, npages in PAGETABLE_SIZES:
        vas = [BASE + (t << 22) + p * PAGE_SIZE for t in range(tables) for p in range(per)]
        r, wall, cpu = _check("pagetable", SymbolicPageTable(npages, vas),
                              {"levels": 2, "npages": npages}, 1, True)
        print(f"| {tables} x {per} = {len(vas)} | {npages} | {r.summary} | {wall:.1f} "
              f"| {cpu:.1f} | {_load()} |", flush=True)


def bmc() -> None:
    n = frames_needed(2, 1)
    print("\nfault: BMC, induction off, 2 processes x 1 slot\n\n| depth | verdict | wall s "
          "| CPU s | seconds per depth | load |\n|---|---|---|---|---|---|")
    for depth in (4, 6):
        r, wall, cpu = _check("fault", SymbolicFault(n, 2, 1), {"npages": n}, depth, False)
        per = ", ".join(f"{d}:{t:.1f}" for d, t in r.timings)
        print(f"| {depth} | {r.verdict} to {r.depth_checked} | {wall:.1f} | {cpu:.1f} | {per} "
              f"| {_load()} |", flush=True)


def mutants(only: tuple[str, ...] = ()) -> None:
    n = frames_needed(2, 1)
    checked = [load(f) for f in library("fault")]
    white = {p.name for c in checked for p in c.spec.properties
             if p.doc.startswith("[white-box]")}
    print("\nfault: seeded mutants, BMC to MUTANT_DEPTH, 2 processes x 1 slot\n\n"
          "| mutation | property | depth | wall s | CPU s | its example breaks it | load |\n"
          "|---|---|---|---|---|---|---|")
    for mutation in only or MUTATIONS:
        r, wall, cpu = _check("fault", SymbolicFault(n, 2, 1, mutation), {"npages": n},
                              MUTANT_DEPTH[mutation], False, white, MUTANT_RLIMIT.get(mutation))
        found = min((v.depth for v in r.violations), default=r.depth_checked)
        shortest = [v for v in r.violations if v.depth == found]
        props = ", ".join(v.prop.name for v in shortest) or f"NOT FOUND ({r.summary})"
        # on a submission some properties read the reference's state (memory): the
        # example must break one of those found at the shortest depth
        breaks = next((b for b in (z3_encodings.example_breaks("fault", mutation, v, checked)
                                   for v in shortest) if b.startswith("yes")),
                      "NO" if shortest else "-")
        print(f"| {mutation} | {props} | {found} | {wall:.1f} | {cpu:.1f} | {breaks} "
              f"| {_load()} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    figures = {"sizes": sizes, "pagetable": pagetable, "bmc": bmc, "mutants": mutants}
    args = (argv if argv is not None else sys.argv[1:]) or list(figures)
    for name in args:
        if name in figures:
            figures[name]()
    if "mutants" not in args and set(args) & set(MUTATIONS):
        mutants(tuple(a for a in args if a in MUTATIONS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
