"""Checks the properties of one or more specs along a trace, step by step.

The Hypothesis engine, replay and the confirmation of Z3 counterexamples all
run states through a Monitor, so a property means the same thing everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from mmcheck.checker import interrupt
from mmcheck.checker.evaluate import CompiledSpec, Verdict
from mmcheck.checker.explain import Why, explain_action, explain_invariant, lines
from mmcheck.checker.trace import RunStats, Step, Violation
from mmcheck.spec import ast

# Explaining runs once per violation; if it fails, the violation must still be reported.
_EXPLAIN_FAILED = "(the explanation could not be computed: {err}; the violation stands)"


class Monitor:
    """Evaluates every property of `specs` after each step: the first violation
    (step, initial), or every one (violations, initial_violations)."""

    def __init__(
        self, specs: Iterable[CompiledSpec], stats: RunStats, skip: Iterable[str] = ()
    ) -> None:
        self.specs = list(specs)
        self.stats = stats
        self.skip = set(skip)
        self.cut = False  # an evaluation was cut by an interrupt or the time limit

    def _timed(self, name: str, evaluate: Callable[[], Verdict]) -> Verdict | None:
        """Evaluate one property, counting its check and its time; None when it was cut."""
        t0 = time.perf_counter()
        try:
            with interrupt.evaluating():
                verdict = evaluate()
        except interrupt.EvaluationCut:
            self.cut = True
            self.stats.count_cut(name, time.perf_counter() - t0)
            return None
        self.stats.count_check(name, verdict.live, time.perf_counter() - t0)
        return verdict

    def initial(self, state: Mapping[str, Any]) -> Violation | None:
        return next(self.initial_violations(state), None)

    def initial_violations(self, state: Mapping[str, Any]) -> Iterator[Violation]:
        """Every invariant the initial state violates, lazily (see violations)."""
        return self._invariants(-1, state)

    def step(
        self, index: int, step: Step, old: Mapping[str, Any], new: Mapping[str, Any]
    ) -> Violation | None:
        return next(self.violations(index, step, old, new), None)

    def violations(
        self, index: int, step: Step, old: Mapping[str, Any], new: Mapping[str, Any]
    ) -> Iterator[Violation]:
        """Every property step `index` violates, in the order `step` checks them,
        evaluated lazily: taking only the first evaluates only up to it (step's
        answer); going on evaluates the others, still counting the step once."""
        self.stats.count_op(step.op)
        for c in self.specs:
            for act, fn in c.actions.get(step.op, ()):
                if act.name in self.skip:
                    continue
                verdict = self._timed(
                    act.name,
                    lambda: c.check_action(  # noqa: B023 - called at once
                        act, fn, old, new, step.args, step.result, step.raised  # noqa: B023
                    ),
                )
                if verdict is None:
                    continue
                if verdict.error is not None:
                    yield self._eval_error(c, act, index, verdict.error)
                elif not verdict.holds:
                    try:
                        why = explain_action(c, act, old, new, step.args, step.result, step.raised)
                    except Exception as err:  # noqa: BLE001
                        why = [Why(_EXPLAIN_FAILED.format(err=f"{type(err).__name__}: {err}"))]
                    yield Violation("action", act.name, act.doc, index, lines(why), c.spec.path,
                                    act.span.line, tuple(why))
        yield from self._invariants(index, new)

    def _invariants(self, index: int, state: Mapping[str, Any]) -> Iterator[Violation]:
        for c in self.specs:
            for inv in c.spec.invariants:
                if inv.name in self.skip:
                    continue
                verdict = self._timed(
                    inv.name, lambda: c.check_invariant(inv.name, state)  # noqa: B023
                )
                if verdict is None:
                    continue
                if verdict.error is not None:
                    yield self._eval_error(c, inv, index, verdict.error)
                elif not verdict.holds:
                    try:
                        why = explain_invariant(c, inv.name, state)
                    except Exception as err:  # noqa: BLE001
                        why = [Why(_EXPLAIN_FAILED.format(err=f"{type(err).__name__}: {err}"))]
                    yield Violation("invariant", inv.name, inv.doc, index, lines(why),
                                    c.spec.path, inv.span.line, tuple(why))

    def _eval_error(self, c: CompiledSpec, prop: ast.Property, index: int, error: str) -> Violation:
        return Violation(
            "eval-error",
            prop.name,
            prop.doc,
            index,
            (f"the property could not be evaluated: {error}",),
            c.spec.path,
            prop.span.line,
        )
