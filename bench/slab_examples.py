"""`python -m bench.slab_examples`: every slab, kmalloc and C example searched from scratch.

For each file under examples/slab, examples/kmalloc and the C buddy examples,
the Hypothesis engine (seed 0, the CLI's default budget of 20 s, stopping at
the first violation) checks the standard library of its subsystem. A file
under buggy/ must be convicted, one under correct/ must pass. Prints one row
per example: verdict, the property, the counterexample's length, seconds.
tests/quality/test_slab_examples.py replays each docstring counterexample
instead, which is what the test suite can afford.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from mmcheck.checker import subsystems
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.hypothesis_engine import run_hypothesis
from mmcheck.checker.options import Options
from mmcheck.checker.sandbox import Submission
from mmcheck.spec.loader import library, load

ROOT = Path(__file__).resolve().parents[1]
BUDGET = 20.0


def examples() -> list[Path]:
    ex = ROOT / "examples"
    found = [p for sub in ("slab", "kmalloc") for p in (ex / sub).rglob("*")
             if p.suffix in (".py", ".c")]
    return sorted(found + sorted((ex / "buddy").rglob("*.c")))


def run_one(path: Path) -> tuple[str, str, int, float]:
    """(verdict, property or '', steps, seconds) of one example."""
    start = time.monotonic()
    with Submission.open(path, timeout_per_call=2.0) as sub:
        subsystem = {"KmemCache": "slab", "Kmalloc": "kmalloc",
                     "BuddyAllocator": "buddy"}[next(iter(sub.classes()))]
        driver = subsystems.driver(subsystem)
        specs = [CompiledSpec(load(p)) for p in library(subsystem)]

        def make(setup):  # noqa: ANN001, ANN202
            if not sub.alive:
                sub.restart()
            return driver.SubmissionSystem(sub, setup)

        result = run_hypothesis(specs, driver, make,
                                Options(budget=BUDGET, max_counterexamples=1))
    elapsed = time.monotonic() - start
    if not result.found:
        return "holds", "", 0, elapsed
    f = result.found[0]
    name = f.violation.property if f.violation.kind in ("action", "invariant") \
        else f.violation.kind
    return "violated", name, len(f.trace.steps), elapsed


def main() -> int:
    wrong = 0
    for path in examples():
        verdict, prop, steps, secs = run_one(path)
        want = "violated" if "buggy" in path.parts else "holds"
        wrong += verdict != want
        rel = path.relative_to(ROOT / "examples")
        print(f"{str(rel):<40} {verdict:<9} {prop:<32} {steps:>4} steps {secs:6.1f} s"
              f"{'' if verdict == want else '   <- WRONG'}", flush=True)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
