"""The Z3 compiler against the concrete evaluator: same AST, same answer.

Random well-typed invariant bodies (the generator of test_spec_fuzz.py: every
operator, built-in, quantifier, aggregate, let and if) are evaluated on random
reachable buddy states by the concrete evaluator, and compiled to Z3 over the
symbolic encoding pinned to the same state (`assign`). With the state pinned a
formula has one value; Z3 must give the evaluator's. Where the compilation does
not model a value (a bitwise operand outside its universe: `small_cases`), the
formula may be left open (both values possible), never decided the wrong way:
a wrong "proved" cannot land unnoticed.
"""

from __future__ import annotations

import random
from collections import Counter

import z3
from hypothesis import given, settings
from hypothesis import strategies as st
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.subsystems import buddy as driver
from mmcheck.checker.z3compile import Unsupported, Z3Compiler
from mmcheck.model.buddy import BuddyAllocator
from mmcheck.spec.errors import SpecError
from mmcheck.spec.loader import check_text
from test_spec_fuzz import DEFS, FUZZ, Gen

NPAGES = 8


def random_states(n: int) -> list[BuddyAllocator]:
    """n reachable states of an 8-page allocator after random allocs and frees."""
    rng = random.Random(5)
    out = []
    for _ in range(n):
        a = BuddyAllocator(NPAGES, 4)
        for _ in range(rng.randrange(0, 8)):
            if a.allocated and rng.random() < 0.4:
                a.free(*rng.choice(sorted(a.allocated.items())))
            else:
                a.alloc(rng.randrange(0, 3))
        out.append(a)
    return out


STATES = random_states(6)


@st.composite
def invariant_bodies(draw: st.DrawFn) -> str:
    return Gen(draw, action=False).bool_({}, draw(st.integers(0, 3)))


def z3_value(formula: object, pinned: z3.BoolRef) -> bool | None:
    """The formula's value in the pinned state: True, False, or None (left open)."""
    can: dict[bool, bool] = {}
    for want in (True, False):
        sol = z3.Solver()
        sol.set("timeout", 20_000)
        sol.add(pinned, formula == want)
        can[want] = sol.check() == z3.sat
    assert can[True] or can[False], "the pinned state has no value for the formula"
    return None if can[True] and can[False] else can[True]


def test_z3_compiler_agrees_with_the_evaluator() -> None:
    stats: Counter = Counter()
    system, _, universe, bound = driver.symbolic_system(NPAGES)

    @settings(FUZZ, max_examples=70)
    @given(invariant_bodies(), st.sampled_from(range(len(STATES))))
    def run(body: str, which: int) -> None:
        try:
            checked = check_text(f"spec buddy\n{DEFS}invariant x: {body}\n", "gen.mm")
        except SpecError:
            return
        concrete = CompiledSpec(checked).check_invariant("x", STATES[which].snapshot())
        if concrete.error is not None:
            stats["evaluator error"] += 1
            return
        s = system.fresh_state("s")
        snap = STATES[which].snapshot()
        pinned = system.assign(s, snap["free"], snap["allocated"])  # type: ignore[arg-type]
        try:
            formula = Z3Compiler(checked, universe, bound).invariant(checked.spec.invariants[0], s)
        except Unsupported:
            stats["unsupported"] += 1
            return
        got = z3_value(z3.BoolVal(formula) if isinstance(formula, bool) else formula, pinned)
        if got is None:
            stats["left open"] += 1
            return
        assert got == concrete.holds, f"z3 says {got}, the evaluator {concrete.holds}: {body}"
        stats["agree " + str(got)] += 1

    run()
    assert stats["agree True"] >= 15 and stats["agree False"] >= 15, stats
    assert stats["left open"] <= 10, stats
