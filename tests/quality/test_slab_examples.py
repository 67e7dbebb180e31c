"""Quality: the slab and kmalloc specs convict every buggy example and pass the correct ones.

Two kinds of check, to keep this file near 45 s on 2 busy cores:

- every buggy example (Python and C) is convicted by the standard library on
  the short counterexample its docstring gives: the trace is replayed on the
  example in its sandbox and must break one of the properties listed here;
- the engine itself (Hypothesis, seed 0, stopping at its first violation)
  finds a bug from scratch, and passes the C cache (the registration walk
  does the same for each subsystem's declared Python examples). The correct
  examples choose other orders, colours and objects than the reference:
  refinement, not equality.

The full sweep, every example searched from scratch with the default budget,
is `python -m bench.slab_examples` (figures in docs/benchmarks.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mmcheck.checker import subsystems
from mmcheck.checker.confirm import replay
from mmcheck.checker.hypothesis_engine import run_hypothesis
from mmcheck.checker.options import Options
from mmcheck.checker.trace import Step, Trace

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SEED = 0
BUDGET = 120.0  # seconds: only an outer limit, the work is counted in traces
TRACES = 25  # one chunk: class_too_small is convicted in its first traces
PASS_TRACES = 5  # a correct example runs this many traces (about 1,000 steps)

SLAB = {"size": 32, "align": 8, "npages": 64, "debug": 0}
A, F, S, D = ("alloc", ()), ("free", (0,)), ("shrink", ()), ("destroy", ())
# example -> (subsystem, setup, the docstring's counterexample, properties it may break)
BUGGY: dict[str, tuple[str, dict[str, int], list[tuple[str, tuple[int, ...]]], set[str]]] = {
    "slab/buggy/past_end_colour.py": ("slab", {**SLAB, "size": 1000}, [A] * 8,
                                      {"objects_inside_slabs"}),
    "slab/buggy/double_free.py": ("slab", SLAB, [A, F, F], {"free_refuses_non_objects"}),
    "slab/buggy/double_free.c": ("slab", SLAB, [A, F, F], {"free_refuses_non_objects"}),
    "slab/buggy/shrink_keeps_empty.py": ("slab", SLAB, [A, F, S],
                                         {"shrink_gives_back_free_slabs"}),
    "slab/buggy/shrink_frees_partial.py": ("slab", {**SLAB, "align": 4096}, [A, A, A, S],
                                           {"shrink_gives_back_free_slabs"}),
    "slab/buggy/wrong_num_objs.py": ("slab", SLAB, [A, F], {"slabinfo_objects"}),
    "slab/buggy/destroy_leaks.py": ("slab", SLAB, [A, F, D],
                                    {"destroy_gives_back_every_page"}),
    "slab/buggy/align_ignored.py": ("slab", {**SLAB, "size": 24, "align": 16}, [],
                                    {"slabinfo_objsize"}),
    "slab/buggy/interior_pointer.py": ("slab", SLAB, [A, ("free", (16,))],
                                       {"free_refuses_non_objects"}),
    "slab/buggy/lost_page_on_empty.py": ("slab", SLAB, [A, F], {"slabinfo_slabs"}),
    "kmalloc/buggy/class_too_small.py": ("kmalloc", {"npages": 256}, [("kmalloc", (33, 0))],
                                         {"usable_fits_request"}),
    "kmalloc/buggy/large_leak.py": ("kmalloc", {"npages": 256},
                                    [("kmalloc", (131073, 1)), ("kfree", (262144,))],
                                    {"kfree_large_gives_pages_back"}),
    "kmalloc/buggy/dma_mixed.py": ("kmalloc", {"npages": 256},
                                   [("kmalloc", (32, 0)), ("kmalloc", (32, 1))],
                                   {"dma_caches_apart"}),
    "kmalloc/buggy/kfree_null.py": ("kmalloc", {"npages": 256}, [("kfree", (0,))],
                                    {"kfree_exact"}),
    "slab/buggy/accepts_bad_align.py": ("slab", SLAB, [("KmemCache", (32, 3))],
                                        {"refinement"}),
    "buddy/buggy/accepts_no_pages.py": ("buddy", {"npages": 8, "max_order": 11},
                                        [("BuddyAllocator", (0, 11))], {"refinement"}),
    # buddy_free_area() (972c2cf) shows its free lists: `coalesced` breaks at the free,
    # before alloc(1) finds no order-1 block (refinement)
    "buddy/buggy/no_coalesce.c": ("buddy", {"npages": 2, "max_order": 2},
                                  [("alloc", (0,)), ("free", (0, 0))], {"coalesced"}),
}
# The registration walk (tests/unit/test_registration.py) already searches each
# subsystem's declared examples (order0_onslab.py, wrong_num_objs.py,
# power_of_two.py, class_too_small.py); this adds one more bug.
SEARCHED = ("slab/buggy/lost_page_on_empty.py",)
CORRECT = {
    "slab/correct/order0_onslab.py": "slab",
    "slab/correct/coloured_orders.py": "slab",
    "slab/correct/cache.c": "slab",
    "kmalloc/correct/power_of_two.py": "kmalloc",
    "buddy/correct/buddy.c": "buddy",
}
PASSED = ("slab/correct/cache.c",)  # buddy.c: tests/unit/test_cloader.py drives it


def test_every_example_is_listed() -> None:
    found = {str(p.relative_to(EXAMPLES)) for sub in ("slab", "kmalloc")
             for p in (EXAMPLES / sub).rglob("*") if p.suffix in (".py", ".c")}
    assert found == {k for k in (*BUGGY, *CORRECT) if k.split("/")[0] in ("slab", "kmalloc")}






@pytest.mark.parametrize("rel", sorted(BUGGY))
def test_buggy_example_breaks_on_its_counterexample(rel: str,
                                                     examples: Any) -> None:
    subsystem, setup, steps, expected = BUGGY[rel]
    make = examples.system(rel, subsystem)
    trace = Trace(subsystem, setup, tuple(Step(op, args) for op, args in steps))
    result = replay(trace, examples.specs(subsystem), make)
    assert result.violation is not None, f"{rel}: its counterexample breaks nothing"
    assert examples.name(result.violation) in expected
    assert result.violation.step == len(steps) - 1  # at the trace's last step, not before


@pytest.mark.parametrize("rel", SEARCHED)
def test_search_convicts_buggy_example(rel: str, examples: Any) -> None:
    subsystem, _, _, expected = BUGGY[rel]
    driver = subsystems.driver(subsystem)
    specs = examples.specs(subsystem)
    make = examples.system(rel, subsystem)
    options = Options(seed=SEED, budget=BUDGET, traces=TRACES, max_counterexamples=1)
    result = run_hypothesis(specs, driver, make, options)
    assert result.found, f"{rel}: no violation found"
    found = result.found[0]
    assert examples.name(found.violation) in expected
    again = replay(found.trace, specs, make)
    assert again.violation is not None and again.violation.key == found.violation.key


@pytest.mark.parametrize("rel", PASSED)
def test_correct_example_passes(rel: str, examples: Any) -> None:
    subsystem = CORRECT[rel]
    driver = subsystems.driver(subsystem)
    make = examples.system(rel, subsystem)
    options = Options(seed=SEED, budget=BUDGET, traces=PASS_TRACES, max_counterexamples=1,
                      max_pages=256)
    result = run_hypothesis(examples.specs(subsystem), driver, make, options)
    assert not result.found, [(f.violation.property, f.trace) for f in result.found]
    assert result.stats.steps > 200
