"""The Z3 encoding of the zoned page allocator against the reference and the buggy examples.

- agreement: on random traces of the reference (checker/subsystems/zone.py's
  ReferenceSystem) over the encoding's domains (every order -1 .. max_order, every
  gfp mask -1 .. 12, frees of allocated blocks, with the wrong order, of pfns
  never returned and outside the node), every concrete step is a step of the
  encoding; op and arguments decide whether it raises or returns None; op,
  arguments and result decide the next state; every vocabulary value presented
  equals the reference's snapshot;
- well_formed holds initially and is kept by trans;
- the unmutated encoding proves the library by induction;
- every mutation has its buggy example; BMC finds one (wrong_fallback, cheap; the
  others are a bench figure: python -m bench.z3_encodings zone) and its trace
  breaks the same property on the example.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import symbolic_check
import z3
from mmcheck.checker.options import Options
from mmcheck.checker.subsystems import zone as driver
from mmcheck.checker.symbolic.base import SymState
from mmcheck.checker.symbolic.zone import GFP_DOMAIN, MUTATIONS, SymbolicZone
from mmcheck.checker.trace import Step
from mmcheck.checker.z3_engine import bounded_check
from mmcheck.spec.loader import CheckedSpec, library, load
from symbolic_check import as_presented, convicts, present

ROOT = Path(__file__).resolve().parents[2]


class Harness(symbolic_check.Harness):
    """The shared harness (symbolic_check.py) with this encoding's state and step facts."""

    def __init__(self, setup: dict[str, int]) -> None:
        super().__init__(SymbolicZone(driver.zone_sizes(setup), setup["min_free_kbytes"],
                                      setup["max_order"]))

    def state_is(self, s: SymState, ref: driver.ReferenceSystem) -> z3.BoolRef:
        snap = ref.model.snapshot()
        return self.sym.assign(s, [tuple(b) for b in snap["free"]],
                               [tuple(b) for b in snap["allocated"]])

    def op_is(self, step: Step) -> z3.BoolRef:
        sv = self.sv
        if step.op == "alloc":
            return z3.And(sv.is_alloc, sv.alloc_order == step.args[0],
                          sv.alloc_gfp == step.args[1])
        return z3.And(sv.is_free, sv.free_pfn == step.args[0], sv.free_order == step.args[1])

    def outcome_is(self, step: Step, with_result: bool) -> z3.BoolRef:
        sv = self.sv
        facts = [sv.raised == (step.raised is not None)]
        if step.op == "alloc" and step.raised is None:
            facts.append(sv.alloc_none == (step.result is None))
            if with_result and step.result is not None:
                facts.append(sv.alloc_pfn == step.result)
        return z3.And(facts)


def random_step(rng: random.Random, setup: dict[str, int],
                allocated: dict[int, int]) -> tuple[str, tuple[int, int]]:
    """Mostly good allocations and frees, with every bad argument now and then."""
    m, n = setup["max_order"], sum(driver.zone_sizes(setup))
    if rng.random() < 0.6 or not allocated:
        good = [o for o in (0, 0, 1, 2) if o < m]
        order = rng.randrange(-1, m + 1) if rng.random() < 0.1 else rng.choice(good)
        often = [0, 0, 1, 2, 4, 8, 9, 10, 12]
        gfp = rng.choice(GFP_DOMAIN) if rng.random() < 0.2 else rng.choice(often)
        return "alloc", (order, gfp)
    pfn = rng.choice(sorted(allocated))
    how = rng.random()
    if how < 0.75:
        return "free", (pfn, allocated[pfn])
    if how < 0.85:
        return "free", (pfn, allocated[pfn] + rng.choice([-1, 1]))
    return "free", (rng.choice([-1, n, *range(n)]), rng.randrange(-1, m + 1))


# The default nodes at 8 and 16 pages, and every zone type populated (HIGHMEM's min
# clamped to 32 pages: it never passes its watermark; boundaries inside blocks).
SETUPS = [driver.symbolic_setup(8), driver.symbolic_setup(16),
          {"dma": 3, "dma32": 2, "normal": 5, "highmem": 3, "movable": 3,
           "min_free_kbytes": 8, "max_order": 3}]


@pytest.mark.parametrize("n", range(len(SETUPS)))
def test_encoding_agrees_with_the_reference(n: int) -> None:
    setup = SETUPS[n]
    h = Harness(setup)
    rng = random.Random(n)
    for _trace in range(2):
        ref = driver.ReferenceSystem(setup)
        assert z3.Solver().check(h.state_is(h.s, ref), h.sym.init(h.s)) == z3.sat
        allocated: dict[int, int] = {}
        for _ in range(24):
            pre = h.state_is(h.s, ref)
            step, problem = ref.apply(*random_step(rng, setup, allocated))
            assert problem is None
            snap = ref.model.snapshot()
            post = h.state_is(h.s2, ref)
            op = h.op_is(step)
            sol = h.solver(pre, op, h.outcome_is(step, True), post)
            assert sol.check() == z3.sat, f"the encoding cannot make {step}"
            got = present(sol.model(), h.s2)
            for name, value in got.items():
                assert value == as_presented(snap[name]), (step, name)
            assert h.solver(pre, op, z3.Not(h.outcome_is(step, False))).check() == z3.unsat, step
            assert h.solver(pre, op, h.outcome_is(step, True), z3.Not(post)).check() \
                == z3.unsat, step
            if step.raised is None and step.op == "alloc" and step.result is not None:
                allocated[step.result] = step.args[0]
            elif step.raised is None and step.op == "free":
                del allocated[step.args[0]]


def test_well_formed_holds_initially_and_is_kept() -> None:
    # induction assumes well_formed: it must be an invariant of the encoding itself
    sym = driver.symbolic_system(16)[0]
    s, t, s2 = sym.fresh_state("s"), sym.fresh_step("t"), sym.fresh_state("s2")
    assert z3.Solver().check(sym.init(s), z3.Not(sym.well_formed(s))) == z3.unsat
    sol = z3.Solver()
    sol.add(sym.well_formed(s), sym.trans(s, t, s2), z3.Not(sym.well_formed(s2)))
    assert sol.check() == z3.unsat


def test_every_step_has_a_successor() -> None:
    # trans is total: from the boot state each operation on each argument in its
    # domain has a step (a trans that refuses some would prove vacuously)
    sym = driver.symbolic_system(8)[0]
    s, t, s2 = sym.fresh_state("s"), sym.fresh_step("t"), sym.fresh_state("s2")
    sv = sym.step_vars(t)
    sol = z3.Solver()
    sol.add(sym.init(s), sym.trans(s, t, s2))
    for order in range(-1, sym.max_order + 1):
        for gfp in GFP_DOMAIN:
            assert sol.check(sv.is_alloc, sv.alloc_order == order, sv.alloc_gfp == gfp) == z3.sat
        for pfn in range(-1, sym.npages + 1):
            assert sol.check(sv.is_free, sv.free_pfn == pfn, sv.free_order == order) == z3.sat


# ---------------------------------------------------------------- spec and mutants

NPAGES = 8


@pytest.fixture(scope="module")
def checked() -> list[CheckedSpec]:
    return [load(f) for f in library("zone")]


def test_unmutated_encoding_proves_the_library(checked: list[CheckedSpec]) -> None:
    system, setup, universe, bound = driver.symbolic_system(NPAGES)
    result = bounded_check(checked, system, setup, Options(depth=2, budget=60.0),
                           universe, bound)
    assert result.verdict == "proved" and not result.skipped, result.summary


def test_every_mutation_has_an_example() -> None:
    for name in MUTATIONS:
        assert (ROOT / "examples" / "zone" / "buggy" / f"{name}.py").is_file()


def test_bmc_finds_wrong_fallback_and_its_example_breaks(checked: list[CheckedSpec]) -> None:
    system, setup, universe, bound = driver.symbolic_system(NPAGES, "wrong_fallback")
    convicts(checked, system, setup, universe, bound,
             ROOT / "examples" / "zone" / "buggy" / "wrong_fallback.py", driver, 1)
