"""The Z3 encoding of page faults and copy-on-write against the reference Kernel and examples.

- agreement: on random traces of the reference Kernel (model/fault.py) over the
  encoding's pids, slots, offsets, protections and values (the bad ones
  included), every concrete step is a step of the encoding; op and arguments
  decide the exception and the result; op, arguments and the frames the Kernel
  took decide the next state; and every vocabulary value the encoding presents
  equals the Kernel's snapshot;
- each seeded bug (a mutation) is found by bounded model checking, and the trace
  Z3 gives breaks the same property on the buggy example it stands for.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import symbolic_check
import z3
from mmcheck.checker.subsystems import fault as driver
from mmcheck.checker.symbolic.base import SymState
from mmcheck.checker.symbolic.fault import (
    ANON,
    BAD_VALUE,
    ERRORS,
    FLAGS,
    MUTATIONS,
    OFFSETS,
    OPS,
    PGD,
    PROTS,
    TABLE,
    VALUES,
    SymbolicFault,
    frames_needed,
    slot_va,
)
from mmcheck.model.fault import VOCABULARY, Kernel
from mmcheck.model.linux import _PAGE_RW, PAGE_SIZE
from mmcheck.spec.loader import library, load
from symbolic_check import as_presented, convicts, present

ROOT = Path(__file__).resolve().parents[2]
NPAGES, NPROCS, NSLOTS = 16, 2, 2


def kernel_state(sym: SymbolicFault, k: Kernel) -> tuple[int, dict, dict]:
    """The Kernel's state in the encoding's terms: (nxt, procs, frames) for `assign`."""
    procs: dict[int, dict] = {}
    frames: dict[int, dict] = {}
    for pid, task in k._tasks.items():
        p = pid - 1
        got: dict[Any, Any] = {"rss": task.rss_anon}
        for s in sym.slots:
            va = slot_va(s)
            vma = task.mm.vma_lookup(va)
            if vma is not None:
                got["area", s], got["prot", s] = True, vma.prot
                got["anon", s] = vma.anon_vma is not None
            pte = task.pgd.walk(va)
            if pte is not None:
                got["pte", s], got["pfn", s], got["rw", s] = True, pte[0], bool(pte[1] & _PAGE_RW)
            cached = task.pgd.tlb.lookup(va)
            if cached is not None:
                got["tlb", s], got["tpfn", s] = True, cached[0]
                got["tw", s] = bool(cached[1] & _PAGE_RW)
        procs[p] = got
        for pfn in task.pgd._tables:
            frames[pfn] = {"kind": PGD if pfn == task.pgd.pgd else TABLE, "owner": p, "ref": 1}
    for pfn, kind in k._kind.items():
        if kind == "anon":
            data = k._data.get(pfn, bytes(PAGE_SIZE))
            frames[pfn] = {"kind": ANON, "ref": k._refcount[pfn], "mapc": k._mapcount[pfn],
                           "excl": pfn in k._anon_exclusive,
                           **{("data", o): data[off] for o, off in enumerate(OFFSETS)}}
    return k._next_pid, procs, frames


WEIGHTS = {"spawn": 1, "fork": 2, "exit": 1, "mmap": 3, "munmap": 1, "mprotect": 2, "read": 4,
           "write": 5}


def draw(rng: random.Random, sym: SymbolicFault, k: Kernel) -> tuple[str, tuple[int, ...]]:
    """A step over the encoding's domains, mostly on live pids and good arguments (spawn
    and fork only while a pid is left)."""
    ops = [op for op in OPS if op not in ("spawn", "fork") or k._next_pid <= sym.nprocs]
    op = "spawn" if not k._tasks and "spawn" in ops else rng.choices(
        ops, [WEIGHTS[op] for op in ops])[0]
    live = sorted(k._tasks)
    pid = rng.choice(live) if live and rng.random() < 0.9 else rng.choice(sym.pids)
    task = k._tasks.get(pid)
    mapped = [a for a in sym.addrs if task is not None and task.mm.vma_lookup(a) is not None]
    prot = 3 if rng.random() < 0.5 else rng.choice(PROTS)
    good = rng.random() < 0.9
    addr = rng.choice(mapped if mapped and op != "mmap" and good else sym.addrs)
    va = rng.choice(sym.vas) if not good or not mapped else rng.choice(mapped) + rng.choice(OFFSETS)
    return op, {"spawn": (), "fork": (pid,), "exit": (pid,),
                "mmap": (pid, addr, PAGE_SIZE if good else 0, prot, rng.choice(FLAGS)),
                "munmap": (pid, addr, PAGE_SIZE), "mprotect": (pid, addr, PAGE_SIZE, prot),
                "read": (pid, va),
                "write": (pid, va, rng.choice(VALUES if good else (*VALUES, BAD_VALUE)))}[op]


def run(k: Kernel, op: str, args: tuple[int, ...]) -> tuple[int | None, str | None]:
    try:
        return getattr(k, op)(*args), None
    except Exception as err:  # noqa: BLE001 (the names are compared below)
        return None, next(n for n in ERRORS if any(c.__name__ == n for c in type(err).__mro__))


class Harness(symbolic_check.Harness):
    def __init__(self) -> None:
        super().__init__(SymbolicFault(NPAGES, NPROCS, NSLOTS))

    def state_is(self, s: SymState, k: Kernel) -> z3.BoolRef:
        return self.sym.assign(s, *kernel_state(self.sym, k))

    def step_is(self, op: str, args: tuple[int, ...]) -> z3.BoolRef:
        sv = self.sv
        names = self.sym._domains(op)
        terms = [getattr(sv, n) for n in ("pid", "addr", "length", "prot", "flags", "va",
                                          "value") if n in names]
        return z3.And(sv.op == OPS.index(op), *[t == a for t, a in zip(terms, args, strict=True)])

    def outcome_is(self, result: int | None, raised: str | None) -> z3.BoolRef:
        sv = self.sv
        flags = [b == (n == raised) for n, b in zip(ERRORS, (sv.value_error, sv.os_error,
                                                              sv.segfault), strict=True)]
        return z3.And(*flags, sv.result == (result or 0))

    def took(self, before: set[int], k: Kernel) -> z3.BoolRef:
        """The step's frame choices are the frames the Kernel took."""
        sv, new = self.sv, set(k.buddy.allocated) - before
        pgds = {t.pgd.pgd for t in k._tasks.values()} & new
        tables = {f for f in new if k._kind.get(f) == "pgtable"} - pgds
        data = new - pgds - tables
        facts = [sv.new_pgd == f for f in pgds] + [sv.new_page == f for f in data]
        facts += [z3.Or([t == f for f in tables]) for t in sv.new_tables] if tables else []
        return z3.And(facts)


A0, A1 = slot_va(0), slot_va(1)
RO, RW = 1, 3
# Every path of the fault handler: the zero page, a copy of it, TLB hits, fork of a
# faulted area, a copy and a reuse after fork, mprotect of an exclusive page and of a
# shared one, MAP_FIXED over a page in use, exits with shared pages.
SCENARIO = (
    ("spawn", ()), ("mmap", (1, A0, PAGE_SIZE, RW, FLAGS[0])), ("read", (1, A0)),
    ("write", (1, A0 + 1, 7)), ("read", (1, A0 + 1)), ("fork", (1,)), ("read", (2, A0 + 1)),
    ("mprotect", (1, A0, PAGE_SIZE, RO)), ("mprotect", (1, A0, PAGE_SIZE, RW)),
    ("write", (2, A0, 9)), ("write", (1, A0, 7)), ("mmap", (2, A1, PAGE_SIZE, RO, FLAGS[1])),
    ("read", (2, A1)), ("write", (2, A1, 7)), ("mmap", (2, A0, PAGE_SIZE, RW, FLAGS[0])),
    ("exit", (1,)), ("write", (2, A0 + 1, 9)), ("exit", (2,)),
)


def check_trace(h: Harness, k: Kernel, steps: Any) -> int:
    """Check each step of `steps` (a list, or a function drawing the next one)."""
    n = 0
    for step in steps:
        op, args = step(k) if callable(step) else step
        pre, before_alloc = h.state_is(h.s, k), set(k.buddy.allocated)
        result, raised = run(k, op, args)
        if op == "write" and raised is None:
            result = None
        post, snap = h.state_is(h.s2, k), k.snapshot()
        step_is, outcome = h.step_is(op, args), h.outcome_is(result, raised)
        sol = h.solver(pre, step_is, outcome, post)
        assert sol.check() == z3.sat, f"{op}{args} -> {result} {raised}: not a step"
        got = present(sol.model(), h.s2)
        assert set(got) == {sv.name for sv in VOCABULARY.state}
        for name in got:
            assert got[name] == as_presented(snap[name]), (op, args, name)
        assert h.solver(pre, step_is, z3.Not(outcome)).check() == z3.unsat, (op, args)
        pinned = h.solver(pre, step_is, outcome, h.took(before_alloc, k), z3.Not(post))
        assert pinned.check() == z3.unsat, f"{op}{args}: next state not decided"
        n += 1
    return n


def test_encoding_agrees_with_the_reference() -> None:
    h = Harness()
    k = Kernel(NPAGES)
    assert z3.Solver().check(h.state_is(h.s, k), h.sym.init(h.s)) == z3.sat
    assert check_trace(h, k, SCENARIO) == len(SCENARIO)
    assert not k._tasks and k.free_pages() == k.boot_free_pages
    rng = random.Random(7)
    drawn = [lambda k: draw(rng, h.sym, k)] * 16
    assert check_trace(h, Kernel(NPAGES), drawn) == 16


def test_well_formed_holds_initially_and_is_kept() -> None:
    # induction assumes well_formed (the page-table bookkeeping, domains): it must be
    # an invariant of the encoding itself, not a wish
    sym = SymbolicFault(frames_needed(2, 1), 2, 1)
    s, t, s2 = sym.fresh_state("s"), sym.fresh_step("t"), sym.fresh_state("s2")
    assert z3.Solver().check(sym.init(s), z3.Not(sym.well_formed(s))) == z3.unsat
    sol = z3.Solver()
    sol.add(sym.well_formed(s), sym.trans(s, t, s2), z3.Not(sym.well_formed(s2)))
    assert sol.check() == z3.unsat


def test_every_mutation_has_an_example() -> None:
    for name in MUTATIONS:
        assert (ROOT / "examples" / "fault" / "buggy" / f"{name}.py").is_file()


def test_bmc_finds_dirty_cow_and_its_example_breaks() -> None:
    # the other two mutants are a bench figure (python -m bench.z3_fault mutants)
    checked = [load(f) for f in library("fault")]
    system, setup, universe, bound = driver.symbolic_system(0, "cow_never_copies")
    # writes_stay_private reads `memory`, the reference's on a submission: what the
    # example shows is its own frames (the page written is still shared)
    convicts(checked, system, setup, universe, bound,
             ROOT / "examples" / "fault" / "buggy" / "cow_never_copies.py", driver, 5,
             skip=frozenset({"writes_stay_private"}))
