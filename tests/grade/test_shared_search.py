"""One search for every rubric item (checker/grade/score.py `_all_at_once`).

Grading shares one search among the items because a search that goes on past
violations (`run_hypothesis(..., keep_going=True)`) draws exactly the traces of a
search that skips the violated properties: the traces depend on the seed and on
the submission's answers, not on which properties are checked. These tests hold
that claim to account on an in-process buddy allocator whose NR_FREE_PAGES
counter is wrong once something is allocated (no sandbox, no problems).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from mmcheck.checker import subsystems
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.hypothesis_engine import HypothesisResult, run_hypothesis
from mmcheck.checker.options import Options
from mmcheck.spec.loader import load as load_spec

ROOT = Path(__file__).resolve().parents[2]
DRIVER = subsystems.driver("buddy")
SPECS = [CompiledSpec(load_spec(str(ROOT / "spec" / "lib" / "buddy.mm")))]


class MiscountingBuddy:
    """The reference model, but NR_FREE_PAGES is one short while pages are allocated."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.inner = DRIVER.ReferenceSystem(setup)

    def apply(self, op: str, args: tuple[int, ...], expect: Any = None) -> Any:
        return self.inner.apply(op, args, expect)

    def snapshot(self) -> Mapping[str, Any]:
        state = dict(self.inner.snapshot())
        if state["allocated"]:
            state["free_pages"] -= 1
        return state

    def close(self) -> None:
        self.inner.close()


def _search(skip: frozenset[str], keep_going: bool) -> HypothesisResult:
    options = Options(seed=0, steps=20, max_pages=64, traces=30, skip=skip,
                      max_counterexamples=100, traces_per_chunk=25)
    return run_hypothesis(SPECS, DRIVER, MiscountingBuddy, options, keep_going=keep_going)


@pytest.fixture(scope="module")
def shared() -> HypothesisResult:
    return _search(frozenset(), keep_going=True)


def test_keep_going_records_each_violated_property_once_and_runs_every_trace(shared) -> None:  # noqa: ANN001
    violated = [f.violation.property for f in shared.found]
    assert "free_pages_counter" in violated and len(set(violated)) == len(violated)
    assert shared.chunks == 2 and shared.stopped is None and not shared.stopped_early
    for f in shared.found:  # each recorded trace ends at its violation
        assert f.violation.step == len(f.trace.steps) - 1


def test_the_shared_search_draws_the_traces_of_a_search_skipping_what_it_found(shared) -> None:  # noqa: ANN001
    violated = frozenset(f.violation.property for f in shared.found)
    alone = _search(violated, keep_going=False)
    assert not alone.found  # every other property held on the same traces
    assert (alone.stats.traces, alone.stats.steps, alone.stats.ops) == \
        (shared.stats.traces, shared.stats.steps, shared.stats.ops)
    for name, st in alone.stats.properties.items():
        assert (st.checks, st.live) == (shared.stats.properties[name].checks,
                                        shared.stats.properties[name].live), name
