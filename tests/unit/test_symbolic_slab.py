"""The Z3 encoding of a slab cache against the reference model and the buggy examples.

- agreement: on random traces of the reference (checker/subsystems/slab.py's
  ReferenceSystem, every error path included), every concrete step is a step of
  the encoding; op and arguments alone decide whether it raises or returns None;
  op, arguments and result decide the next state; and every vocabulary value the
  encoding presents equals the reference's snapshot (three geometries: objects
  off the slab, on the slab after its management, one per page);
- the unmutated encoding proves the contract's properties of spec/lib/slab.mm
  by induction, and leaves out only the reference's white-box structures;
- each seeded bug (a mutation) is found by bounded model checking, and the
  trace Z3 gives convicts the buggy example it stands for (objects renamed to
  those the example returns: which object alloc returns is its choice).
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
from mmcheck.checker.subsystems import slab as driver
from mmcheck.checker.symbolic.base import SymState
from mmcheck.checker.symbolic.slab import MUTATIONS, OPS, SymbolicSlab, white_of
from mmcheck.checker.trace import Step, Trace
from mmcheck.checker.z3_engine import bounded_check
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.model.slab import VOCABULARY
from mmcheck.spec.loader import CheckedSpec, library, load
from symbolic_check import as_presented, convicts, on_submission, present

ROOT = Path(__file__).resolve().parents[2]
# (size, align, npages): off-slab management and 4 objects a page; on-slab
# management (s_mem after it) and 37 a page; one object a page
GEOMETRIES = [(1024, 8, 5), (100, 8, 2), (4096, 4096, 6)]


class Harness(symbolic_check.Harness):
    """The shared harness (symbolic_check.py) with this encoding's state and step facts."""

    def __init__(self, size: int, align: int, npages: int, white_box: bool = True) -> None:
        super().__init__(SymbolicSlab(size, align, npages, white_box=white_box,
                                      assume_shape=False))

    def state_is(self, s: SymState, ref: driver.ReferenceSystem) -> z3.BoolRef:
        snap = ref.snapshot()
        return self.sym.assign(
            s, held=[r.pfn for r in snap["slabs"]], live=[o.addr for o in snap["objects"]],
            destroyed=snap["destroyed"], bad=snap["bad_page_frees"],
            events=[(e.op, e.pfn) for e in snap["page_events"]], white=white_of(ref.model))

    def op_is(self, step: Step) -> z3.BoolRef:
        sv = self.sv
        facts = [sv.op == OPS.index(step.op)]
        if step.op == "free":
            facts.append(sv.free_addr == step.args[0])
        if step.op == "write":
            facts += [sv.write_addr == step.args[0], sv.write_len == step.args[1]]
        return z3.And(facts)

    def outcome_is(self, step: Step, with_result: bool) -> z3.BoolRef:
        sv = self.sv
        facts = [sv.raised == (step.raised is not None)]
        if step.op == "alloc" and step.raised is None:
            facts.append(sv.alloc_none == (step.result is None))
            if with_result and step.result is not None:
                facts.append(sv.alloc_addr == step.result)
        if step.op == "shrink" and step.raised is None and with_result:
            facts.append(sv.shrink_pages == step.result)
        return z3.And(facts)


def assert_presents(model: z3.ModelRef, s: SymState, snap: Mapping[str, Any]) -> None:
    """Every value the encoding presents equals the reference's snapshot."""
    got = present(model, s)
    assert set(got) == {v.name for v in VOCABULARY.state}
    for name, value in got.items():
        assert value == as_presented(snap[name]), name


def random_step(rng: random.Random, live: list[int], freed: list[int],
                objsize: int) -> tuple[str, tuple[int, ...]]:
    """An operation, legal most of the time, sometimes each kind of mistake."""
    roll = rng.random()
    if roll < 0.45 or not (live or freed):
        return "alloc", ()
    if roll < 0.75 and live:
        return "free", (rng.choice(live),)
    if roll < 0.85:
        target = rng.choice(live or freed)
        return "free", rng.choice([(target + objsize // 2,), (target + 7 * PAGE_SIZE,),
                                   (freed[-1] if freed else target,), (-1,)])
    if roll < 0.95:
        return "shrink", ()
    if roll < 0.97:
        return "write", (rng.choice(live or freed), 8)
    return "destroy", ()


def check_step(h: Harness, pre: z3.BoolRef, step: Step,
               ref: driver.ReferenceSystem) -> None:
    """The concrete step is a step of the encoding, its outcome forced by op and
    arguments, its next state forced by its result, presented as the reference's."""
    post = h.state_is(h.s2, ref)
    op = h.op_is(step)
    sol = h.solver(pre, op, h.outcome_is(step, True), post)
    assert sol.check() == z3.sat, f"the encoding cannot make {step}"
    assert_presents(sol.model(), h.s2, ref.snapshot())
    assert h.solver(pre, op, z3.Not(h.outcome_is(step, False))).check() == z3.unsat, (
        f"{step}: the encoding may also end otherwise (raise / None)")
    assert h.solver(pre, op, h.outcome_is(step, True), z3.Not(post)).check() == z3.unsat, (
        f"{step}: the encoding may reach another state")


@pytest.mark.parametrize("size,align,npages", GEOMETRIES)
def test_encoding_agrees_with_the_reference(size: int, align: int, npages: int) -> None:
    h = Harness(size, align, npages)
    objsize = h.sym.geo.objsize
    rng = random.Random(size * 1000 + npages)
    for _trace in range(4):
        setup = {"size": size, "align": align, "npages": npages, "debug": 0}
        ref = driver.ReferenceSystem(setup)
        init = h.state_is(h.s, ref)
        assert z3.Solver().check(init, h.sym.init(h.s)) == z3.sat
        live: list[int] = []
        freed: list[int] = []
        for _ in range(14):
            pre = h.state_is(h.s, ref)
            op, args = random_step(rng, live, freed, objsize)
            step, problem = ref.apply(op, args)
            assert problem is None
            check_step(h, pre, step, ref)
            if step.raised is None and op == "alloc" and step.result is not None:
                live.append(step.result)
            elif step.raised is None and op == "free":
                live.remove(args[0])
                freed.append(args[0])


def test_alloc_choices_are_the_free_objects_of_held_slabs() -> None:
    """With a slab partly used, alloc may return exactly its free objects; with every
    slab full, exactly the objects of a block `pages` could still give."""
    h = Harness(1024, 8, 3, white_box=False)
    sv = h.sv

    def choices(pre: z3.BoolRef) -> set[int]:
        sol = h.solver(pre, sv.op == OPS.index("alloc"), z3.Not(sv.alloc_none))
        out = set()
        while sol.check() == z3.sat:
            a = sol.model().eval(sv.alloc_addr).as_long()
            out.add(a)
            sol.add(sv.alloc_addr != a)
        return out

    assert choices(h.sym.assign(h.s, held=[1], live=[4096])) == {5120, 6144, 7168}
    full = [4096 + 1024 * i for i in range(4)]
    assert choices(h.sym.assign(h.s, held=[1], live=full)) == {
        *range(0, 4096, 1024), *range(8192, 12288, 1024)}


# ---------------------------------------------------------------- the spec and mutants

NPAGES = 2
DEPTH = 4


@pytest.fixture(scope="module")
def checked() -> list[CheckedSpec]:
    return [load(f) for f in library("slab")]


def test_unmutated_encoding_proves_the_whole_spec(checked: list[CheckedSpec]) -> None:
    """At 2 pages the reference's structures are encoded, their shape is proved
    inductive, and every property (white box included) is proved."""
    system, setup, universe, bound = driver.symbolic_system(NPAGES)
    assert system.white_box and system.shape_is_inductive()
    result = bounded_check(checked, system, setup, Options(depth=DEPTH, budget=60.0),
                           universe, bound)
    assert result.verdict == "proved", result.summary
    assert not result.violations and not result.skipped, result.skipped


def test_contract_level_encoding_leaves_out_only_the_white_box(
        checked: list[CheckedSpec]) -> None:
    """Above WHITE_BOX_PAGES the contract's properties are proved, the white-box
    ones left out (not compiled), never guessed."""
    system, setup, universe, bound = driver.symbolic_system(3)
    assert not system.white_box
    result = bounded_check(checked, system, setup, Options(depth=DEPTH, budget=60.0),
                           universe, bound)
    assert result.verdict == "proved", result.summary
    skipped = {s.split(":", 1)[0] for s in result.skipped}
    assert skipped and all(name.startswith("wb_") for name in skipped), skipped


def renamed(trace: Trace, sub: Any) -> Trace:
    """The trace with each object it names renamed to the one the example returned at
    the same alloc (an interior address keeps its offset), and any other address in
    a page of such an object moved to the example's page (slabs of one page), onto a
    slot the example has not handed out when the trace's address is not one either."""
    system = on_submission(driver, sub)(trace.setup)
    names: dict[int, int] = {}
    objsize = driver.ALIGN(trace.setup["size"], trace.setup["align"])
    steps = []
    for st in trace.steps:
        args = st.args
        if st.op in ("free", "write"):
            a = args[0]
            base = next((o for o in names if o <= a < o + objsize), None)
            page = next((o for o in names if o // PAGE_SIZE == a // PAGE_SIZE), None)
            if base is not None:
                args = (names[base] + a - base, *args[1:])
            elif page is not None:
                start = names[page] // PAGE_SIZE * PAGE_SIZE
                spare = [start + off for off in range(a % objsize, PAGE_SIZE, objsize)
                         if not any(n <= start + off < n + objsize for n in names.values())]
                args = (start + a % PAGE_SIZE if not spare
                        or start + a % PAGE_SIZE in spare else spare[0], *args[1:])
        got, _ = system.apply(st.op, args)
        if st.op == "alloc" and st.result is not None and got.result is not None:
            names[st.result] = got.result
        steps.append(Step(st.op, args))
    return Trace(trace.subsystem, dict(trace.setup), tuple(steps))


def test_every_mutation_has_an_example() -> None:
    for name in MUTATIONS:
        assert (ROOT / "examples" / "slab" / "buggy" / f"{name}.py").is_file()


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_bmc_finds_each_mutation_and_its_example_breaks(
        mutation: str, checked: list[CheckedSpec]) -> None:
    system, setup, universe, bound = driver.symbolic_system(NPAGES, mutation)
    convicts(checked, system, setup, universe, bound,
             ROOT / "examples" / "slab" / "buggy" / f"{mutation}.py", driver, DEPTH, renamed)
