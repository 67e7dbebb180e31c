"""The Z3 encoding of kmalloc against the reference model and the buggy examples.

- agreement: on random traces of the reference (checker/subsystems/kmalloc.py's
  ReferenceSystem) over the encoding's sizes (zero, negative, large, too large
  included) and addresses (NULL, ZERO_SIZE_PTR, freed, interior, never
  returned), every concrete step is a step of the encoding; op and arguments
  decide whether it raises or returns None; op, arguments and result decide the
  next state; every vocabulary value presented equals the reference's snapshot;
- the unmutated encoding proves the library by induction;
- each seeded bug is found by BMC and breaks the same property on its example.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import symbolic_check
import z3
from mmcheck.checker.options import Options
from mmcheck.checker.subsystems import kmalloc as driver
from mmcheck.checker.symbolic.base import SymState
from mmcheck.checker.symbolic.kmalloc import (
    LARGE,
    MUTATIONS,
    OPS,
    SIZES,
    TOO_BIG,
    SymbolicKmalloc,
)
from mmcheck.checker.trace import Step, Trace
from mmcheck.checker.z3_engine import bounded_check
from mmcheck.model.kmalloc import GFP_DMA, ZERO_SIZE_PTR
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.spec.loader import CheckedSpec, library, load
from symbolic_check import as_presented, convicts, on_submission, present

ROOT = Path(__file__).resolve().parents[2]


class Harness(symbolic_check.Harness):
    """The shared harness (symbolic_check.py) with this encoding's state and step facts."""

    def __init__(self, npages: int) -> None:
        super().__init__(SymbolicKmalloc(npages))

    def state_is(self, s: SymState, ref: driver.ReferenceSystem) -> z3.BoolRef:
        """The reference's state now (which cache holds each page read off its caches)."""
        sym, snap = self.sym, ref.snapshot()
        index = {(c.size, c.dma): k for k, c in enumerate(sym.caches)}
        owner = {pfn: index[key] for key, cache in ref.model.caches.items()
                 for pfn in cache.holds()}
        live = {o.addr: (o.size, sym.cache_of(o.size, o.dma)) for o in snap["objects"]}
        events = [(e.pfn, e.order) for e in snap["page_events"]]
        return sym.assign(s, owner, live, events[0] if events else None,
                          snap["bad_page_frees"])

    def op_is(self, step: Step) -> z3.BoolRef:
        sv = self.sv
        if step.op == "kmalloc":
            return z3.And(sv.op == 0, sv.size == step.args[0], sv.flags == step.args[1])
        return z3.And(sv.op == OPS.index(step.op), sv.addr == step.args[0])

    def outcome_is(self, step: Step, with_result: bool) -> z3.BoolRef:
        sv = self.sv
        facts = [sv.raised == (step.raised is not None)]
        if step.op == "kmalloc" and step.raised is None:
            facts.append(sv.none == (step.result is None))
            if with_result and step.result is not None:
                facts.append(sv.result == step.result)
        if step.op == "ksize" and step.raised is None and with_result:
            facts.append(sv.result == step.result)
        return z3.And(facts)


def random_step(rng: random.Random, live: list[int], freed: list[int]) -> tuple[str, tuple]:
    roll = rng.random()
    if roll < 0.5 or not (live or freed):
        size = rng.choice([*SIZES, *SIZES, *SIZES, 0, -1, LARGE, TOO_BIG])
        return "kmalloc", (size, rng.choice([0, GFP_DMA]))
    target = rng.choice(live or freed)
    addr = rng.choice([target, target, target, target + 8, freed[-1] if freed else target,
                       0, ZERO_SIZE_PTR, 7 * PAGE_SIZE])
    return ("kfree" if roll < 0.8 else "ksize"), (addr,)


@pytest.mark.parametrize("npages", [2, 4])
def test_encoding_agrees_with_the_reference(npages: int) -> None:
    h = Harness(npages)
    rng = random.Random(npages)
    for _trace in range(3):
        ref = driver.ReferenceSystem({"npages": npages})
        assert z3.Solver().check(h.state_is(h.s, ref), h.sym.init(h.s)) == z3.sat
        live: list[int] = []
        freed: list[int] = []
        for _ in range(16):
            pre = h.state_is(h.s, ref)
            step, problem = ref.apply(*random_step(rng, live, freed))
            assert problem is None
            snap = ref.snapshot()
            post = h.state_is(h.s2, ref)
            op = h.op_is(step)
            sol = h.solver(pre, op, h.outcome_is(step, True), post)
            assert sol.check() == z3.sat, f"the encoding cannot make {step}"
            got = present(sol.model(), h.s2)
            for name, value in got.items():
                assert value == as_presented(snap[name]), name
            assert h.solver(pre, op, z3.Not(h.outcome_is(step, False))).check() == z3.unsat
            assert h.solver(pre, op, h.outcome_is(step, True), z3.Not(post)).check() == z3.unsat
            if step.raised is None and step.op == "kmalloc" and step.args[0] in SIZES \
                    and step.result is not None:
                live.append(step.result)
            elif step.raised is None and step.op == "kfree" and step.args[0] in live:
                live.remove(step.args[0])
                freed.append(step.args[0])


# ---------------------------------------------------------------- spec and mutants

NPAGES = 2
DEPTH = 4


@pytest.fixture(scope="module")
def checked() -> list[CheckedSpec]:
    return [load(f) for f in library("kmalloc")]


def test_unmutated_encoding_proves_the_library(checked: list[CheckedSpec]) -> None:
    system, setup, universe, bound = driver.symbolic_system(NPAGES)
    result = bounded_check(checked, system, setup, Options(depth=DEPTH, budget=60.0),
                           universe, bound)
    assert result.verdict == "proved" and not result.skipped, result.summary


def renamed(trace: Trace, sub: Any) -> Trace:
    """The trace with each allocation renamed to the one the example returned."""
    system = on_submission(driver, sub)(trace.setup)
    names: dict[int, int] = {}
    steps = []
    for st in trace.steps:
        args = st.args
        if st.op != "kmalloc" and args[0] in names:
            args = (names[args[0]],)
        got, _ = system.apply(st.op, args)
        if st.op == "kmalloc" and st.result is not None and got.result is not None:
            names[st.result] = got.result
        steps.append(Step(st.op, args))
    return Trace(trace.subsystem, dict(trace.setup), tuple(steps))


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_bmc_finds_each_mutation_and_its_example_breaks(
        mutation: str, checked: list[CheckedSpec]) -> None:
    system, setup, universe, bound = driver.symbolic_system(NPAGES, mutation)
    convicts(checked, system, setup, universe, bound,
             ROOT / "examples" / "kmalloc" / "buggy" / f"{mutation}.py", driver, DEPTH, renamed)
