"""The Z3 encoding of a 2-level page table against the reference model and the examples.

- agreement: on random traces of the reference (checker/subsystems/pagetable.py's
  ReferenceSystem) over the encoding's addresses, frames and flags (bad ones
  included), every concrete step is a step of the encoding; op and arguments
  decide which exception it raises; op, arguments, result and the table page
  `pages` gave decide the next state; and every vocabulary value the encoding
  presents equals the reference's snapshot;
- each seeded bug (a mutation) is found by bounded model checking, and the
  trace Z3 gives breaks the same property on the buggy example it stands for.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import symbolic_check
import z3
from mmcheck.checker.options import Options
from mmcheck.checker.subsystems import pagetable as driver
from mmcheck.checker.symbolic.base import SymState
from mmcheck.checker.symbolic.pagetable import (
    BAD_PFNS,
    BASE,
    ERRORS,
    MUTATIONS,
    OPS,
    PFNS,
    SymbolicPageTable,
    pgd_index,
)
from mmcheck.checker.trace import Step
from mmcheck.checker.z3_engine import bounded_check
from mmcheck.model.mmu import VOCABULARY
from mmcheck.spec.loader import CheckedSpec, library, load
from symbolic_check import assert_presents, convicts

ROOT = Path(__file__).resolve().parents[2]


class Harness(symbolic_check.Harness):
    """The shared harness (symbolic_check.py) with this encoding's state and step facts."""

    def __init__(self, npages: int) -> None:
        super().__init__(SymbolicPageTable(npages))

    def state_is(self, s: SymState, snap: Mapping[str, Any]) -> z3.BoolRef:
        tables = {e.index: e.pfn for e in snap["entries"] if not e.leaf}
        return self.sym.assign(
            s, snap["root"], tables, {p.va: (p.pfn, p.flags) for p in snap["ptes"]},
            {t.va: (t.pfn, t.flags) for t in snap["tlb"]}, [m.va for m in snap["mapped_ever"]])

    def op_is(self, step: Step) -> z3.BoolRef:
        sv = self.sv
        terms = {"map": (sv.map_va, sv.map_pfn, sv.map_flags), "unmap": (sv.unmap_va,),
                 "translate": (sv.tr_va, sv.tr_write, sv.tr_user, sv.tr_exec)}[step.op]
        return z3.And(sv.op == OPS.index(step.op),
                      *[t == (bool(a) if z3.is_bool(t) else a)
                        for t, a in zip(terms, step.args, strict=True)])

    def outcome_is(self, step: Step, with_result: bool) -> z3.BoolRef:
        sv = self.sv
        flags = (sv.value_error, sv.memory_error, sv.page_fault)
        facts = [b == (step.raised == name) for b, name in zip(flags, ERRORS, strict=True)]
        if step.raised is None and step.op == "unmap":
            facts.append(sv.unmap_none == (step.result is None))
            if with_result and step.result is not None:
                facts.append(sv.unmap_pfn == step.result)
        if step.raised is None and step.op == "translate" and with_result:
            facts.append(sv.tr_result == step.result)
        return z3.And(facts)


def random_step(rng: random.Random, sym: SymbolicPageTable) -> tuple[str, tuple[int, ...]]:
    roll = rng.random()
    if roll < 0.4:
        return "map", (rng.choice(sym.map_vas), rng.choice((*PFNS, *PFNS, *BAD_PFNS)),
                       rng.choice(sym.map_flag_args))
    if roll < 0.6:
        return "unmap", (rng.choice(sym.map_vas),)
    return "translate", (rng.choice(sym.tr_vas), rng.randrange(2), rng.randrange(2),
                         rng.randrange(2))


@pytest.mark.parametrize("npages", [3, 8])
def test_encoding_agrees_with_the_reference(npages: int) -> None:
    h = Harness(npages)
    rng = random.Random(npages)
    for _trace in range(3):
        ref = driver.ReferenceSystem({"levels": 2, "npages": npages})
        assert z3.Solver().check(h.state_is(h.s, ref.snapshot()), h.sym.init(h.s)) == z3.sat
        for _ in range(16):
            before = ref.snapshot()
            pre = h.state_is(h.s, before)
            step, problem = ref.apply(*random_step(rng, h.sym))
            assert problem is None
            after = ref.snapshot()
            post = h.state_is(h.s2, after)
            new = {t.pfn for t in after["tables"]} - {t.pfn for t in before["tables"]}
            table = h.sv.new_table == (new.pop() if new else 0)
            op = h.op_is(step)
            sol = h.solver(pre, op, h.outcome_is(step, True), post, table)
            assert sol.check() == z3.sat, f"the encoding cannot make {step}"
            assert_presents(sol.model(), h.s2, after, VOCABULARY)
            assert h.solver(pre, op, z3.Not(h.outcome_is(step, False))).check() == z3.unsat, (
                f"{step}: the encoding may also end otherwise")
            assert h.solver(pre, op, h.outcome_is(step, True), table,
                            z3.Not(post)).check() == z3.unsat, (
                f"{step}: the encoding may reach another state")


def test_memory_error_exactly_when_the_pool_is_empty() -> None:
    """With the pgd and one table taken from a pool of two pages, a map that needs a
    new table raises MemoryError and one into the held table succeeds."""
    h = Harness(2)
    va0, va1, other = h.sym.vas[0], h.sym.vas[1], h.sym.vas[2]
    assert pgd_index(va0) == pgd_index(va1) != pgd_index(other)
    pre = h.sym.assign(h.s, 0, {pgd_index(va0): 1}, {va0: (1, 7)}, {}, [va0])

    def outcome(va: int) -> set[str | None]:
        sol = h.solver(pre, h.op_is(Step("map", (va, 2, 7))))
        seen: set[str | None] = set()
        while sol.check() == z3.sat:
            m = sol.model()
            name = next((n for n, b in zip(ERRORS, (h.sv.value_error, h.sv.memory_error,
                                                    h.sv.page_fault), strict=True)
                         if z3.is_true(m.eval(b, model_completion=True))), None)
            seen.add(name)
            sol.add(h.sv.raised != m.eval(h.sv.raised, model_completion=True))
        return seen

    assert outcome(other) == {"MemoryError"}
    assert outcome(va1) == {None}


# ---------------------------------------------------------------- mutants

NPAGES = 3
DEPTH = 4


@pytest.fixture(scope="module")
def checked() -> list[CheckedSpec]:
    return [load(f) for f in library("pagetable")]


def test_every_mutation_has_an_example() -> None:
    for name in MUTATIONS:
        assert (ROOT / "examples" / "pagetable" / "buggy" / f"{name}.py").is_file()


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_bmc_finds_each_mutation_and_its_example_breaks(
        mutation: str, checked: list[CheckedSpec]) -> None:
    # one page address keeps each depth's query small; the bugs need no more
    system = SymbolicPageTable(NPAGES, vas=(BASE,), mutation=mutation)
    convicts(checked, system, {"levels": 2, "npages": NPAGES}, range(0, NPAGES + 1), 64,
             ROOT / "examples" / "pagetable" / "buggy" / f"{mutation}.py", driver, DEPTH)


def test_unmutated_encoding_holds_where_mutants_break(checked: list[CheckedSpec]) -> None:
    system = SymbolicPageTable(NPAGES, vas=(BASE,))
    result = bounded_check(checked, system, {"levels": 2, "npages": NPAGES},
                           Options(depth=DEPTH, induction=False, budget=120.0),
                           range(0, NPAGES + 1), 64)
    assert result.verdict == "bounded" and result.depth_checked == DEPTH, result.summary


def test_whole_library_proved_with_the_tlb_lemma(checked: list[CheckedSpec]) -> None:
    # translate_sets_accessed_dirty is not inductive alone (a TLB hit sets nothing):
    # tlb_entries_accessed (a cached page is accessed, and dirty if the entry is) is
    # the lemma that closes it; every property must come out proved, none "holds to"
    system, setup, universe, bound = driver.symbolic_system(NPAGES)
    result = bounded_check(checked, system, setup,
                           Options(depth=1, induction=True, budget=120.0, max_induction=1),
                           universe, bound)
    assert result.verdict == "proved", result.summary
    assert "tlb_entries_accessed" in result.lemmas["translate_sets_accessed_dirty"]
