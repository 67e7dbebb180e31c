"""Quality: the machine specs convict every buggy Machine example and pass the correct one.

Each buggy example is replayed on the short counterexample its docstring gives
and must break one of the properties named here, at the trace's last step;
the correct example runs a short Hypothesis search and a trace that uses up
memory with every owner, then gives it all back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mmcheck.checker import subsystems
from mmcheck.checker.confirm import replay
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.hypothesis_engine import run_hypothesis
from mmcheck.checker.observable import not_observable, observable_part
from mmcheck.checker.options import Options
from mmcheck.checker.subsystems.machine import REFERENCE_ONLY
from mmcheck.checker.trace import Step, Trace
from mmcheck.spec.loader import library, load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "machine"
SMALL = {"npages": 8, "reserved": 1}
BUGGY = {
    "buggy/vfree_keeps_mark.py": ([("vmalloc", (4096,)), ("vfree", (0xF0000000,))],
                                  {"one_owner"}),
    "buggy/unmap_keeps_mapcount.py": ([("map_user", (0,)), ("unmap_user", (0,))],
                                      {"one_owner", "free_means_unreferenced"}),
}
CORRECT = "correct/one_owner.py"
USE_UP = ([("slab_alloc", ())] * 20 + [("vmalloc", (8 * 4096,))] * 4
          + [("map_user", (va,)) for va in (0, 0x1000, 0x400000, 0xBFFFF000)])


def test_every_example_is_listed() -> None:
    found = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.py")}
    assert found == {*BUGGY, CORRECT}


@pytest.fixture(scope="module")
def specs() -> list[CompiledSpec]:
    """The library as a submission is checked against it: without the properties that read
    the reference's own records (hidden_names; exactly what `mmcheck check` leaves out)."""
    out = []
    for path in library("machine"):
        checked = load(path)
        skip = not_observable(checked, REFERENCE_ONLY)
        assert skip  # marks_are_the_owners_records, vmalloc_pages_mapped_once
        out.append(CompiledSpec(observable_part(checked, skip)))
    return out


@pytest.fixture(scope="module")
def opened(examples: Any) -> Any:
    """rel -> the SubmissionSystem maker of examples/machine/rel (tests/quality/conftest.py)."""
    return lambda rel: examples.system(f"machine/{rel}", "machine")


@pytest.mark.parametrize("rel", sorted(BUGGY))
def test_buggy_example_breaks_on_its_counterexample(rel: str, specs: list[CompiledSpec],
                                                     opened: Any) -> None:
    steps, expected = BUGGY[rel]
    trace = Trace("machine", SMALL, tuple(Step(op, args) for op, args in steps))
    result = replay(trace, specs, opened(rel))
    assert result.violation is not None, f"{rel}: its counterexample breaks nothing"
    assert result.violation.property in expected
    assert result.violation.step == len(steps) - 1


def test_correct_example_uses_up_memory_and_gives_it_back(specs: list[CompiledSpec],
                                                          opened: Any) -> None:
    make = opened(CORRECT)
    first = replay(Trace("machine", {"npages": 40, "reserved": 3},
                         tuple(Step(op, args) for op, args in USE_UP)), specs, make)
    assert first.violation is None, first.violation
    assert any(s.result is None for s in first.steps)  # memory ran out on the way
    live = [s for s in first.steps if s.result is not None]
    back = [("slab_free", (s.result,)) for s in live if s.op == "slab_alloc"] \
        + [("slab_shrink", ())] + [("vfree", (s.result,)) for s in live if s.op == "vmalloc"] \
        + [("unmap_user", s.args) for s in live if s.op == "map_user"]
    again = replay(Trace("machine", {"npages": 40, "reserved": 3},
                         tuple(Step(op, args) for op, args in USE_UP + back)), specs, make)
    assert again.violation is None, again.violation


def test_correct_example_passes_a_search(specs: list[CompiledSpec], opened: Any) -> None:
    options = Options(seed=0, budget=120.0, traces=5, max_counterexamples=1)
    result = run_hypothesis(specs, subsystems.driver("machine"), opened(CORRECT), options)
    assert not result.found, [(f.violation.property, f.trace) for f in result.found]
    assert result.stats.steps > 100
