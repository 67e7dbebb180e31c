"""The Z3 encoding of vmalloc against the reference model and the examples.

- agreement: on random traces of the reference (checker/subsystems/vmalloc.py's
  ReferenceSystem, its range the encoding's window, its page allocator the
  encoding's pool) over the encoding's arguments (bad ones included), every
  concrete step is a step of the encoding; op and argument decide whether it
  raises or returns none, and with the result and the frames the page allocator
  chose, the next state; every vocabulary value the encoding presents equals
  the reference's snapshot;
- well_formed holds initially and every step keeps it;
- each seeded bug (a mutation) has its example, is found by bounded model
  checking, and the trace Z3 gives breaks the same property on that example.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import symbolic_check
import z3
from mmcheck.checker.options import Options
from mmcheck.checker.subsystems import vmalloc as driver
from mmcheck.checker.symbolic.base import SymState
from mmcheck.checker.symbolic.vmalloc import MUTATIONS, OPS, SymbolicVmalloc
from mmcheck.checker.trace import Step
from mmcheck.checker.z3_engine import bounded_check
from mmcheck.model.vmalloc import VOCABULARY
from mmcheck.spec.loader import CheckedSpec, library, load
from symbolic_check import assert_presents, convicts

ROOT = Path(__file__).resolve().parents[2]


class Harness(symbolic_check.Harness):
    """The shared harness (symbolic_check.py) with this encoding's state and step facts."""

    def __init__(self, window: int, pool: int) -> None:
        super().__init__(SymbolicVmalloc(window, pool))

    def state_is(self, s: SymState, ref: driver.ReferenceSystem,
                 choice_only: bool = False) -> z3.BoolRef:
        """s is the reference's state (only the frames it chose: its PTEs and table
        page, with `choice_only`)."""
        snap, sym = ref.snapshot(), self.sym
        ptp = next((p for p in ref.model.pgtable._tables if p != sym.pgd), -1)
        ptes = {p.va: p.pfn for p in snap["ptes"]}
        if choice_only:
            v = sym.vars_of(s)
            return z3.And(v.ptp == ptp, *[v.pte[i] == ptes.get(sym.start + i * 4096, -1)
                                          for i in range(sym.w)])
        return sym.assign(s, snap["areas"], ptes, {t.va: t.pfn for t in snap["tlb"]},
                          [h.pfn for h in snap["held"]], ptp)

    def op_is(self, step: Step) -> z3.BoolRef:
        sv = self.sv
        arg = sv.size if step.op == "vmalloc" else sv.addr
        return z3.And(sv.op == OPS.index(step.op), arg == step.args[0])

    def outcome_is(self, step: Step, with_result: bool) -> z3.BoolRef:
        sv = self.sv
        facts = [sv.raised == (step.raised is not None)]
        if step.op == "vmalloc" and step.raised is None:
            facts.append(sv.none == (step.result is None))
            if with_result and step.result is not None:
                facts.append(sv.place == (step.result - self.sym.start) // 4096)
        return z3.And(facts)


def random_step(rng: random.Random, sym: SymbolicVmalloc,
                live: list[int]) -> tuple[str, tuple[int, ...]]:
    if rng.random() < 0.55:
        return "vmalloc", (rng.choice(sym.sizes),)
    return "vfree", (rng.choice(live) if live and rng.random() < 0.6 else
                     rng.choice(sym.addrs),)


@pytest.mark.parametrize(("window", "pool"), [(6, 4), (8, 5)])
def test_encoding_agrees_with_the_reference(window: int, pool: int) -> None:
    h = Harness(window, pool)
    rng = random.Random(window)
    for _trace in range(3):
        ref = driver.ReferenceSystem(h.sym.setup)
        assert z3.Solver().check(h.state_is(h.s, ref), h.sym.init(h.s)) == z3.sat
        for _ in range(16):
            pre = h.state_is(h.s, ref)
            before = ref.snapshot()
            step, problem = ref.apply(*random_step(rng, h.sym,
                                                   [a.addr for a in before["areas"]]))
            assert problem is None
            post, op = h.state_is(h.s2, ref), h.op_is(step)
            sol = h.solver(pre, op, h.outcome_is(step, True), post)
            assert sol.check() == z3.sat, f"the encoding cannot make {step} from {before}"
            assert_presents(sol.model(), h.s2, ref.snapshot(), VOCABULARY)
            assert h.solver(pre, op, z3.Not(h.outcome_is(step, False))).check() \
                == z3.unsat, f"{step}: the encoding may also end otherwise"
            assert h.solver(pre, op, h.outcome_is(step, True), h.state_is(h.s2, ref, True),
                            z3.Not(post)).check() == z3.unsat, (
                f"{step}: the encoding may reach another state with the same frames")


@pytest.mark.parametrize("mutation", [None, *MUTATIONS])
def test_well_formed_is_inductive(mutation: str | None) -> None:
    """What induction assumes of every state (well_formed) holds initially and every
    step keeps it, so assuming it proves nothing false."""
    sym = SymbolicVmalloc(6, 4, mutation)
    s, t, s2 = sym.fresh_state("s"), sym.fresh_step("t"), sym.fresh_state("s2")
    assert z3.Solver().check(sym.init(s), z3.Not(sym.well_formed(s))) == z3.unsat
    sol = z3.Solver()
    sol.add(sym.well_formed(s), sym.trans(s, t, s2), z3.Not(sym.well_formed(s2)))
    assert sol.check() == z3.unsat, sym.decode_state(sol.model(), s)


# ---------------------------------------------------------------- mutants

PAGES = 4  # a window of 4 pages, 3 frames: every bug shows within two steps


@pytest.fixture(scope="module")
def checked() -> list[CheckedSpec]:
    return [load(f) for f in library("vmalloc")]


def test_every_mutation_has_an_example() -> None:
    for name in MUTATIONS:
        assert (ROOT / "examples" / "vmalloc" / "buggy" / f"{name}.py").is_file()


@pytest.mark.parametrize(("mutation", "depth"), [("no_tlb_flush", 2), ("leaks_on_failure", 1)])
def test_bmc_finds_a_mutation_and_its_example_breaks(
        mutation: str, depth: int, checked: list[CheckedSpec]) -> None:
    system, setup, universe, bound = driver.symbolic_system(PAGES, mutation)
    convicts(checked, system, setup, universe, bound,
             ROOT / "examples" / "vmalloc" / "buggy" / f"{mutation}.py", driver, depth)


def test_unmutated_encoding_holds_where_mutants_break(checked: list[CheckedSpec]) -> None:
    system, setup, universe, bound = driver.symbolic_system(PAGES)
    result = bounded_check(checked, system, setup,
                           Options(depth=2, induction=False, budget=120.0), universe, bound)
    assert result.verdict == "bounded" and result.depth_checked == 2, result.summary


def test_z3_proves_the_whole_vmalloc_spec_at_its_registered_window(mmcheck: Any) -> None:
    """`mmcheck check --engine z3 spec/lib/vmalloc.mm` at the registered size (a
    window of 6 pages, 4 frames): every property of the library spec proved."""
    result = mmcheck("check", "spec/lib/vmalloc.mm", "--engine", "z3", "--save", "",
                     "--format", "json")
    assert result.code == 0, result.out + result.err
    (report,) = result.json()["reports"]
    spec = load(ROOT / "spec" / "lib" / "vmalloc.mm").spec
    assert {p["property"] for p in report["properties"]} == {p.name for p in spec.properties}
    assert all(p["outcome"] == "held" and p["z3"].startswith("proved")
               for p in report["properties"]), report["properties"]
    assert "window=6" in report["engines"][0]["summary"]
