"""The Z3 encoding of the whole machine against the reference Machine and the examples.

- agreement: on random traces of the reference Machine (model/machine.py) over the
  encoding's arguments (user addresses good and bad, the vmalloc sizes, live,
  freed and bad addresses), every concrete step is a step of the encoding; op and
  arguments decide the exception and whether a value comes back (and the value of
  vmalloc and slab_shrink); op, arguments, result and the frames the Machine took
  decide the next state; and every vocabulary value the encoding presents equals
  the Machine's snapshot;
- well_formed holds initially and every step keeps it;
- each seeded bug (a mutation) has its buggy example, BMC finds one, and the trace
  Z3 gives breaks the same property on the buggy example.
"""

from __future__ import annotations

import random
from pathlib import Path

import z3
from mmcheck.checker.subsystems import machine as driver
from mmcheck.checker.subsystems.declared.machine import DECLARATION, USER_VAS
from mmcheck.checker.symbolic.base import SymState
from mmcheck.checker.symbolic.machine import (
    FREE,
    MUTATIONS,
    OPS,
    SIZES,
    SLAB,
    TABLE,
    USER,
    VAS,
    VMALLOC,
    SymbolicMachine,
)
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.model.machine import VOCABULARY, Machine
from mmcheck.model.mmu import pte_pfn
from mmcheck.spec.loader import library, load
from symbolic_check import Harness, assert_presents, convicts

ROOT = Path(__file__).resolve().parents[2]
NPAGES = 8


def machine_state(sym: SymbolicMachine, m: Machine) -> tuple[dict, dict]:
    """The Machine's state in the encoding's terms: (frames, others) for `assign`."""
    snap = m.snapshot()
    kinds = {**{f.pfn: SLAB for f in snap["slab_pages"]},
             **{f.pfn: TABLE for f in snap["table_pages"]},
             **{e.pfn: USER for e in snap["user_ptes"]},
             **{f.pfn: VMALLOC for f in snap["vmalloc_pages"]}}
    frames: dict[int, dict] = {}
    for p in snap["pages"]:
        if p.pfn in sym.frames:
            frames[p.pfn] = {"kind": kinds.get(p.pfn, FREE), "vmark": p.vmalloc,
                             "ref": p.refcount, "mapc": p.mapcount}
    for pfn, slab in m.cache.slabs.items():
        frames[pfn]["col"] = slab.s_mem - pfn * PAGE_SIZE == sym.colours[-1] \
            and len(sym.colours) > 1
    for addr in m.cache_objects:
        f, off = divmod(addr, PAGE_SIZE)
        start = m.cache.slabs[f].s_mem - f * PAGE_SIZE
        frames[f][("live", (off - start) // 256)] = True
    others: dict[tuple[str, object], object] = {}
    for a in m.vm.vmlist:
        w = (a.addr - sym.vstart) // PAGE_SIZE
        others["astart", w], others["alen", w] = True, a.nr_pages
        for j, pfn in enumerate(a.pages):
            frames[pfn]["karea"], frames[pfn]["kidx"] = w, j
    others["ktab", ()] = len(m.kernel_pt._tables) > 1
    pgd = m.user_pt._tables[m.user_pt.pgd]
    for r in sym.regions:
        if r in pgd.entries:
            others["utab", r], others["utabpfn", r] = True, pte_pfn(pgd.entries[r])
    for e in snap["user_ptes"]:
        u = USER_VAS.index(e.va)
        others["pte", u], others["upfn", u] = True, e.pfn
    return frames, others


class MachineHarness(Harness):
    def __init__(self, npages: int = NPAGES) -> None:
        super().__init__(SymbolicMachine(npages, 1))

    def state_is(self, s: SymState, m: Machine) -> z3.BoolRef:
        return self.sym.assign(s, *machine_state(self.sym, m))

    def step_is(self, op: str, args: tuple[int, ...]) -> z3.BoolRef:
        sv = self.sv
        arg = {"slab_free": sv.addr, "vfree": sv.addr, "vmalloc": sv.size,
               "map_user": sv.va, "unmap_user": sv.va}.get(op)
        return z3.And(sv.op == OPS.index(op), *([arg == args[0]] if args else []))

    def kind_is(self, op: str, result: object, raised: str | None) -> z3.BoolRef:
        """The exception, and whether a value came back."""
        optional = op in ("slab_alloc", "vmalloc", "map_user")
        return z3.And(self.sv.raised == (raised is not None),
                      self.sv.none == (optional and raised is None and result is None))

    def outcome_is(self, op: str, result: object, raised: str | None) -> z3.BoolRef:
        return z3.And(self.kind_is(op, result, raised),
                      self.sv.result == (result if isinstance(result, int) else 0))

    def took(self, m: Machine, before: Machine | None, op: str, result: object) -> z3.BoolRef:
        """The step's choices are the frames (and object, colour, area page) the Machine took."""
        sv, sym, facts = self.sv, self.sym, []
        if op == "slab_alloc" and isinstance(result, int):
            f, off = divmod(result, PAGE_SIZE)
            slab = m.cache.slabs[f]
            facts += [sv.choices[0] == f, sv.obj == (result - slab.s_mem) // 256,
                      sv.colour == (slab.s_mem - f * PAGE_SIZE == sym.colours[-1]
                                    and len(sym.colours) > 1)]
        if op == "vmalloc" and isinstance(result, int):
            area = next(a for a in m.vm.vmlist if a.addr == result)
            facts += [c == p for c, p in zip(sv.choices, area.pages, strict=False)]
            facts.append(sv.pos == (result - sym.vstart) // PAGE_SIZE)
            new = set(m.kernel_pt._tables) - set(before.kernel_pt._tables) if before else set()
            facts += [sv.choices[len(area.pages)] == t for t in new]
        if op == "map_user" and isinstance(result, int):
            facts.append(sv.choices[0] == result)
            new = set(m.user_pt._tables) - set(before.user_pt._tables) if before else set()
            facts += [sv.choices[1] == t for t in new]
        return z3.And(facts)


def draw(rng: random.Random, m: Machine, gone: list[int]) -> tuple[str, tuple[int, ...]]:
    """A step over the encoding's arguments, mostly good ones."""
    op = rng.choices(OPS, (6, 4, 1, 4, 3, 4, 3))[0]
    live = {"slab_free": sorted(m.cache_objects), "vfree": [a.addr for a in m.vm.vmlist],
            "unmap_user": [e.va for e in m.snapshot()["user_ptes"]]}.get(op, [])
    if op in ("slab_alloc", "slab_shrink"):
        return op, ()
    if op == "vmalloc":
        return op, (rng.choice(SIZES),)
    if op == "map_user" or (op == "unmap_user" and not live) or rng.random() < 0.2:
        pool = VAS if op in ("map_user", "unmap_user") else (0, 0x08048001, *gone[-2:])
        return op, (rng.choice(pool),)
    return op, (rng.choice(live) if live else 0,)


def run(m: Machine, op: str, args: tuple[int, ...]) -> tuple[object, str | None]:
    try:
        return getattr(m, op)(*args), None
    except ValueError:
        return None, "ValueError"


def check_trace(h: MachineHarness, m: Machine, steps: list) -> int:
    """Check each step of `steps` (pairs, or a function drawing the next one)."""
    import copy
    gone: list[int] = []
    for step in steps:
        op, args = step(m, gone) if callable(step) else step
        pre, before = h.state_is(h.s, m), copy.deepcopy(m)
        result, raised = run(m, op, args)
        if op in ("slab_free", "vfree") and raised is None and args[0]:
            gone.append(args[0])
        post, snap = h.state_is(h.s2, m), m.snapshot()
        step_is, outcome = h.step_is(op, args), h.outcome_is(op, result, raised)
        sol = h.solver(pre, step_is, outcome, post)
        assert sol.check() == z3.sat, f"{op}{args} -> {result} {raised}: not a step"
        assert_presents(sol.model(), h.s2, snap, VOCABULARY)
        assert h.solver(pre, step_is, z3.Not(h.kind_is(op, result, raised))).check() == z3.unsat, \
            (op, args, "outcome not decided")
        if op in ("vmalloc", "slab_shrink"):
            assert h.solver(pre, step_is, z3.Not(outcome)).check() == z3.unsat, (op, args)
        pinned = h.solver(pre, step_is, outcome, h.took(m, before, op, result), z3.Not(post))
        assert pinned.check() == z3.unsat, f"{op}{args}: next state not decided"
    return len(steps)


A, B, C = USER_VAS[0], USER_VAS[1], USER_VAS[2]
# Every owner meets an empty page allocator; a table is taken and given back; areas of
# one and three pages with the kernel table taken by the first; shrink after frees.
SCENARIO = [("map_user", (A,)), ("map_user", (B,)), ("slab_alloc", ()), ("vmalloc", (4096,)),
            ("vmalloc", (3 * 4096,)), ("map_user", (C,)), ("slab_alloc", ()),
            ("unmap_user", (A,)), ("unmap_user", (B,)), ("vmalloc", (1,)), ("slab_shrink", ()),
            ("vfree", (0,)), ("vmalloc", (0,)), ("vmalloc", (-1,)), ("map_user", (A + 1,)),
            ("slab_free", (0x08048001,)), lambda m, gone: ("slab_free", (min(m.cache_objects),)),
            lambda m, gone: ("vfree", (m.vm.vmlist[0].addr,)), ("vfree", (0x08048001,)),
            ("slab_free", (0,)), ("slab_shrink", ()), ("unmap_user", (C,))]
# Memory used up before the cache has a slab (slab_alloc None), then a page comes back
# and the second slab takes the second colour.
FULL = [("map_user", (A,)), ("map_user", (B,)), ("vmalloc", (4096,)), ("slab_alloc", ()),
        ("vmalloc", (4096,)), ("map_user", (C,)), ("unmap_user", (B,)), ("slab_alloc", ())]


def test_encoding_agrees_with_the_reference() -> None:
    h = MachineHarness()
    m = Machine(driver.zone_sizes(NPAGES), reserved=[(0, 1)])
    assert z3.Solver().check(h.state_is(h.s, m), h.sym.init(h.s)) == z3.sat
    assert check_trace(h, m, SCENARIO) == len(SCENARIO)
    m = Machine(driver.zone_sizes(NPAGES), reserved=[(0, 1)])
    assert check_trace(h, m, FULL) == len(FULL)
    assert [s.s_mem % PAGE_SIZE for s in m.cache.slabs.values()] == [h.sym.colours[1]]
    rng = random.Random(3)
    drawn = [lambda m, gone: draw(rng, m, gone)] * 30
    assert check_trace(h, Machine(driver.zone_sizes(NPAGES), reserved=[(0, 1)]), drawn) == 30


def test_well_formed_holds_initially_and_is_kept() -> None:
    # induction assumes well_formed (domains, the records' bookkeeping): it must be an
    # invariant of the encoding itself, not a wish
    # at the default size, where the engine's proofs rest on it; one query per operation
    sym, _, _, _ = driver.symbolic_system(DECLARATION.symbolic_pages[0])
    s, t, s2 = sym.fresh_state("s"), sym.fresh_step("t"), sym.fresh_state("s2")
    assert z3.Solver().check(sym.init(s), z3.Not(sym.well_formed(s))) == z3.unsat
    kept = [sym.well_formed(s), sym.trans(s, t, s2), z3.Not(sym.well_formed(s2))]
    for op, is_op in t.is_op.items():
        sol = z3.Solver()
        sol.add(*kept, is_op)  # asserted, not assumed: the solver simplifies them first
        assert sol.check() == z3.unsat, op


def test_every_mutation_has_an_example() -> None:
    examples = {p.stem for p in (ROOT / "examples" / "machine" / "buggy").glob("*.py")}
    assert set(MUTATIONS) == examples


def test_bmc_finds_each_mutation_and_its_example_breaks() -> None:
    # the example hands out its own addresses: the replay passes those back
    checked = [load(f) for f in library("machine")]
    for mutation in MUTATIONS:
        system, setup, universe, bound = driver.symbolic_system(5, mutation)
        convicts(checked, system, setup, universe, bound,
                 ROOT / "examples" / "machine" / "buggy" / f"{mutation}.py", driver, 2,
                 follow=True)


