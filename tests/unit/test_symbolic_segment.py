"""The Z3 encoding of the SegmentUnit against the reference model and the examples.

- agreement: on random traces of the reference (checker/subsystems/segment.py's
  ReferenceSystem, at CPL 3 and at CPL 0) over the encoding's arguments (bad
  ones included, offsets around every limit and page), every concrete step is a
  step of the encoding; op and arguments decide the exception it raises (the
  one the model raises: the SDM's checks in the model's order), its result and
  the next state; every vocabulary value the encoding presents equals the
  reference's snapshot;
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
from mmcheck.checker.subsystems import segment as driver
from mmcheck.checker.subsystems.declared.segment import OFFSETS
from mmcheck.checker.subsystems.declared.segment import SELECTORS as DRAWN
from mmcheck.checker.symbolic.base import SymState
from mmcheck.checker.symbolic.segment import (
    EXC,
    MUTATIONS,
    OPS,
    SELECTORS,
    SIZES,
    SREG_ARGS,
    SymbolicSegment,
)
from mmcheck.checker.trace import Step
from mmcheck.checker.z3_engine import bounded_check
from mmcheck.model.segment import VOCABULARY
from mmcheck.spec.loader import CheckedSpec, library, load
from symbolic_check import assert_presents, convicts

ROOT = Path(__file__).resolve().parents[2]
# Offsets at and around every limit and page of the checker's GDT and page table.
EDGES = (*OFFSETS, -1, 0xFFFF, 0x10000, 0x8000, 0x100000, 0x1000, 0x2000, 0x08048000,
         0x0804857F, 0x08049FFF, 0xB8000000, 0xF7FFFFFF, 0x100000000, 0x08048567)


class Harness(symbolic_check.Harness):
    """The shared harness (symbolic_check.py) with this encoding's state and step facts."""

    def __init__(self, cpl: int) -> None:
        super().__init__(SymbolicSegment(cpl))

    def state_is(self, s: SymState, ref: driver.ReferenceSystem) -> z3.BoolRef:
        snap = ref.snapshot()
        return self.sym.assign(s, [x.selector for x in snap["segs"]],
                               {m.va: m.flags for m in snap["maps"]},
                               [tuple(t) for t in snap["last"]])

    def op_is(self, step: Step) -> z3.BoolRef:
        sv = self.sv
        names = dict(zip(("sreg", "selector", "offset", "size", "write"),
                         (sv.sreg, sv.selector, sv.offset, sv.size, sv.write), strict=True))
        params = [p for p, _ in next(o for o in VOCABULARY.operations
                                     if o.name == step.op).params]
        return z3.And(sv.op == OPS.index(step.op),
                      *[names[p] == (bool(a) if p == "write" else a)
                        for p, a in zip(params, step.args, strict=True)])

    def outcome_is(self, step: Step, with_result: bool) -> z3.BoolRef:
        sv = self.sv
        facts = [sv.exc == EXC.index(step.raised or "")]
        if step.raised is None and step.op == "translate":
            facts.append(sv.none == (step.result is None))
        if with_result and step.raised is None and step.result is not None:
            facts.append(sv.result == step.result)
        return z3.And(facts)


def random_step(rng: random.Random) -> tuple[str, tuple[int, ...]]:
    """An operation over the encoding's arguments; selectors half the time from those
    the checker draws (Linux's, the test descriptors at RPL 3 and 0), so that loads
    succeed and registers change."""
    op, sel = rng.choice(OPS), rng.choice(DRAWN if rng.random() < 0.5 else SELECTORS)
    offset, write = rng.choice(EDGES), rng.randrange(2)
    sreg = rng.choice((*SREG_ARGS, 2, 2))
    if op == "load_segment":
        return op, (rng.choice((sreg, 0, 3, 4, 5)), sel)
    if op == "load_ss":
        return op, (sel,)
    if op in ("far_jump", "far_call"):
        return op, (sel, max(offset, 0))
    if op == "linear":
        return op, (sreg, offset, rng.choice(SIZES), write)
    return op, (sreg, offset, write)


# Steps random traces seldom make: SS loads (#SS for a segment not present, an
# expand-down stack) and uses of it, read-only and execute-only segments, a far
# jump to conforming code, a null register used, paging refusing a user access.
DIRECTED = (("load_ss", (0x9B,)), ("load_ss", (0xB3,)), ("load_ss", (0xC0,)),
            ("linear", (2, 0, 1, 0)), ("linear", (2, 0x1000, 4, 1)),
            ("translate", (2, 0x08049000, 1)), ("load_segment", (0, 0xAB)),
            ("linear", (0, 0x10, 1, 1)), ("load_segment", (4, 0x83)),
            ("linear", (4, 0x0804A000, 1, 0)), ("linear", (4, 0x08048FFF, 2, 0)),
            ("far_jump", (0x93, 0x10)), ("linear", (1, 0x10, 1, 0)),
            ("load_segment", (5, 0xA3)), ("load_segment", (5, 0)), ("linear", (5, 0, 1, 0)),
            ("translate", (3, 0xC0000000, 0)), ("translate", (3, 0x08048568, 1)),
            ("translate", (3, 0x08048568, 0)), ("load_ss", (0x7B,)))


@pytest.mark.parametrize("cpl", [3, 0])
def test_encoding_agrees_with_the_reference(cpl: int) -> None:
    h = Harness(cpl)
    rng = random.Random(cpl)
    for trace in range(3):
        ref = driver.ReferenceSystem(h.sym.setup)
        assert z3.Solver().check(h.state_is(h.s, ref), h.sym.init(h.s)) == z3.sat
        for i in range(len(DIRECTED) if trace == 0 else 25):
            pre, before = h.state_is(h.s, ref), ref.snapshot()
            step, problem = ref.apply(*(DIRECTED[i] if trace == 0 else random_step(rng)))
            assert problem is None
            post, op = h.state_is(h.s2, ref), h.op_is(step)
            sol = h.solver(pre, op, h.outcome_is(step, True), post)
            assert sol.check() == z3.sat, f"the encoding cannot make {step} from {before}"
            assert_presents(sol.model(), h.s2, ref.snapshot(), VOCABULARY)
            assert h.solver(pre, op, z3.Not(h.outcome_is(step, True))).check() \
                == z3.unsat, f"{step}: the encoding may also end otherwise"
            assert h.solver(pre, op, z3.Not(post)).check() == z3.unsat, (
                f"{step}: the encoding may reach another state")


@pytest.mark.parametrize(("cpl", "mutation"), [(3, None), (0, None), (0, "rpl_ignored"),
                                               (3, "limit_in_bytes")])
def test_well_formed_is_inductive(cpl: int, mutation: str | None) -> None:
    """What induction assumes of every state (well_formed: each register holds a
    selector it can hold) holds initially and every step keeps it."""
    sym = SymbolicSegment(cpl, mutation)
    s, t, s2 = sym.fresh_state("s"), sym.fresh_step("t"), sym.fresh_state("s2")
    assert z3.Solver().check(sym.init(s), z3.Not(sym.well_formed(s))) == z3.unsat
    sol = z3.Solver()
    sol.add(sym.well_formed(s), sym.trans(s, t, s2), z3.Not(sym.well_formed(s2)))
    assert sol.check() == z3.unsat, sym.decode_state(sol.model(), s)


# ---------------------------------------------------------------- mutants


@pytest.fixture(scope="module")
def checked() -> list[CheckedSpec]:
    return [load(f) for f in library("segment")]


def test_every_mutation_has_an_example() -> None:
    for name in MUTATIONS:
        assert (ROOT / "examples" / "segment" / "buggy" / f"{name}.py").is_file()


@pytest.mark.parametrize(("mutation", "cpl"), [("limit_in_bytes", 3), ("rpl_ignored", 0)])
def test_bmc_finds_a_mutation_and_its_example_breaks(
        mutation: str, cpl: int, checked: list[CheckedSpec]) -> None:
    """rpl_ignored is a kernel bug (at CPL 3, max(CPL, RPL) is the CPL): found at CPL 0."""
    _, _, universe, bound = driver.symbolic_system(1)
    system = SymbolicSegment(cpl, mutation)
    convicts(checked, system, system.setup, universe, bound,
             ROOT / "examples" / "segment" / "buggy" / f"{mutation}.py", driver, 1)


def test_whole_spec_proved_at_cpl_0(checked: list[CheckedSpec]) -> None:
    """The kernel's CPL, which the CLI's default (CPL 3) does not cover: every
    property proved by induction too."""
    _, _, universe, bound = driver.symbolic_system(1)
    system = SymbolicSegment(0)
    result = bounded_check(checked, system, system.setup,
                           Options(depth=1, induction=True, budget=120.0), universe, bound)
    assert result.verdict == "proved", result.summary


def test_z3_proves_the_whole_segment_spec_at_cpl_3(mmcheck: Any) -> None:
    """`mmcheck check --engine z3 spec/lib/segment.mm`: every property proved (at CPL 3,
    the registered encoding)."""
    result = mmcheck("check", "spec/lib/segment.mm", "--engine", "z3", "--save", "",
                     "--format", "json")
    assert result.code == 0, result.out + result.err
    (report,) = result.json()["reports"]
    spec = load(ROOT / "spec" / "lib" / "segment.mm").spec
    assert {p["property"] for p in report["properties"]} == {p.name for p in spec.properties}
    assert all(p["outcome"] == "held" and p["z3"].startswith("proved")
               for p in report["properties"]), report["properties"]
    assert "user=1" in report["engines"][0]["summary"]
