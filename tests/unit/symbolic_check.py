"""Helpers the tests of the symbolic encodings share (test_symbolic_*.py, test_z3_engine.py).

- `Harness`: an encoding with a pre-state s, a step t and a post-state s2, and
  solvers that hold well_formed(s) and trans(s, t, s2);
- `present`: the vocabulary values of a symbolic state in a z3 model, as plain data;
- `on_submission`: a system factory that runs a trace on an open submission;
- `convicts`: BMC of a mutated encoding finds a violation, and the trace (renamed
  by the caller where the example's choices differ) breaks the same property on
  the buggy example.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import z3
from mmcheck.checker.confirm import replay
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.options import Options
from mmcheck.checker.sandbox.client import Submission
from mmcheck.checker.symbolic.base import SymbolicSystem, SymCollection, SymRecord, SymState
from mmcheck.checker.trace import Trace
from mmcheck.checker.z3_engine import bounded_check
from mmcheck.checker.z3compile import Cases
from mmcheck.model.vocabulary import Vocabulary
from mmcheck.spec.loader import CheckedSpec


class Harness:
    """One encoding with a pre-state s, a step t and a post-state s2.

    Every check gets a fresh solver holding well_formed(s) and trans(s, t, s2)
    (faster than push/pop on one solver, which pays again after each pop)."""

    def __init__(self, sym: Any) -> None:
        self.sym = sym
        self.s, self.t, self.s2 = sym.fresh_state("s"), sym.fresh_step("t"), sym.fresh_state("s2")
        self.sv = sym.step_vars(self.t)
        self.base = [sym.well_formed(self.s), sym.trans(self.s, self.t, self.s2)]

    def solver(self, *facts: z3.BoolRef) -> z3.Solver:
        sol = z3.Solver()
        sol.set("random_seed", 0)
        sol.add(*self.base, *facts)
        return sol


def present(model: z3.ModelRef, s: SymState) -> dict[str, object]:
    """The vocabulary values of s in `model`: scalars, records as tuples of their
    fields, collections as Counters of such tuples (order left out)."""

    def value(term: Any) -> object:
        v = model.eval(term.term if isinstance(term, Cases) else term, model_completion=True)
        return z3.is_true(v) if z3.is_bool(v) else v.as_long()

    def record(rec: SymRecord) -> tuple[object, ...]:
        return tuple(value(f) for f in rec.fields.values())

    out: dict[str, object] = {}
    for name, sym in s.values.items():
        if isinstance(sym, SymCollection):
            out[name] = Counter(record(rec) for guard, rec in sym.slots if value(guard))
        elif isinstance(sym, SymRecord):
            out[name] = record(sym)
        else:
            out[name] = value(sym)
    return out


def as_presented(value: object) -> object:
    """A snapshot value in the form `present` gives: records as tuples, collections as
    Counters of tuples."""
    if isinstance(value, (list, set, frozenset)):
        return Counter(tuple(r) for r in value)
    if isinstance(value, tuple):
        return tuple(value)
    return value


def assert_presents(model: z3.ModelRef, s: SymState, snap: Mapping[str, Any],
                    vocabulary: Vocabulary) -> None:
    """Every value the encoding presents in `model` (all of the vocabulary's state)
    equals the reference's snapshot `snap`."""
    got = present(model, s)
    assert set(got) == {v.name for v in vocabulary.state}
    for name, value in got.items():
        assert value == as_presented(snap[name]), name


def on_submission(driver: Any, sub: Any) -> Callable[[Mapping[str, int]], Any]:
    """make(setup): the driver's SubmissionSystem on `sub`, restarted if it died."""
    def make(setup: Mapping[str, int]) -> Any:
        if not sub.alive:
            sub.restart()
        return driver.SubmissionSystem(sub, setup)
    return make


def convicts(checked: list[CheckedSpec], system: SymbolicSystem, setup: Mapping[str, int],
             universe: range, bound: int, example: Path, driver: Any, depth: int,
             rename: Callable[[Trace, Any], Trace] | None = None,
             skip: frozenset[str] = frozenset(), follow: bool = False) -> None:
    """BMC of `system` (a mutated encoding) to `depth` finds a violation of a property
    a submission shows (the white-box ones and `skip` are left out), and the trace,
    renamed by `rename` on the example if given, breaks that property at its last
    step on the buggy `example` (with `follow`, a step passing back a result passes
    what the example returned: confirm.replay's rename)."""
    white = {p.name for c in checked for p in c.spec.properties
             if p.doc.startswith("[white-box]")} | skip
    result = bounded_check(checked, system, setup,
                           Options(depth=depth, induction=False, budget=120.0),
                           universe, bound, skip=white)
    assert result.verdict == "violated", result.summary
    v = min(result.violations, key=lambda v: v.depth)  # BMC goes on past the first one
    specs = [CompiledSpec(c) for c in checked]
    others = frozenset(p.name for c in checked for p in c.spec.properties) - {v.prop.name}
    sub = Submission.open(example)
    try:
        trace = rename(v.trace, sub) if rename is not None else v.trace
        got = replay(trace, specs, on_submission(driver, sub), skip=others, rename=follow)
    finally:
        sub.close()
    assert got.violation is not None, (
        f"Z3 broke {v.prop.name} at depth {v.depth} with {v.trace.steps}; "
        f"{example.name} did not with {trace.steps}")
    assert got.violation.property == v.prop.name
    assert got.violation.step == len(trace.steps) - 1 == v.depth - 1
