"""The Z3 encoding of an address space against the reference model and the examples.

- agreement: on random traces of the reference (checker/subsystems/vma.py's
  ReferenceSystem, its space the encoding's window) over the encoding's
  arguments (bad ones included), every concrete step is a step of the encoding;
  op and arguments decide whether it raises and its errno, and with the result
  the next state; and every vocabulary value the encoding presents equals the
  reference's snapshot (shmem file ids renamed in the order the files appear);
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
from mmcheck.checker.subsystems import vma as driver
from mmcheck.checker.symbolic.base import SymState
from mmcheck.checker.symbolic.vma import (
    FLAGS,
    LENGTHS,
    MUTATIONS,
    OPS,
    PROTS,
    SymbolicAddressSpace,
)
from mmcheck.checker.trace import Step
from mmcheck.checker.z3_engine import bounded_check
from mmcheck.model.vma import VOCABULARY
from mmcheck.spec.loader import CheckedSpec, library, load
from symbolic_check import as_presented, convicts, present

ROOT = Path(__file__).resolve().parents[2]


class Harness(symbolic_check.Harness):
    """The shared harness (symbolic_check.py) with this encoding's state and step facts,
    and the renaming of the reference's shmem file ids (global counters) to the
    encoding's (1, 2, ... in the order the files appear)."""

    def __init__(self, pages: int) -> None:
        super().__init__(SymbolicAddressSpace(pages))
        self.files: dict[int, int] = {}

    def rename(self, snap: Mapping[str, Any]) -> list[tuple[int, int, int, int, int]]:
        out = []
        for a in snap["areas"]:
            if a.file and a.file not in self.files:
                self.files[a.file] = len(self.files) + 1
            out.append((a.start, a.end, a.vm_flags & 7, self.files.get(a.file, 0), a.pgoff))
        return out

    def state_is(self, s: SymState, snap: Mapping[str, Any], nfile: int) -> z3.BoolRef:
        return self.sym.assign(s, self.rename(snap), nfile, snap["errno"])

    def op_is(self, step: Step) -> z3.BoolRef:
        sv = self.sv
        terms = {"mmap": (sv.mmap_addr, sv.mmap_length, sv.mmap_prot, sv.mmap_flags),
                 "munmap": (sv.munmap_addr, sv.munmap_length),
                 "mprotect": (sv.mprotect_addr, sv.mprotect_length, sv.mprotect_prot),
                 "find_vma": (sv.find_addr,)}[step.op]
        return z3.And(sv.op == OPS.index(step.op),
                      *[t == a for t, a in zip(terms, step.args, strict=True)])

    def outcome_is(self, step: Step, errno: int, with_result: bool) -> z3.BoolRef:
        sv = self.sv
        facts = [sv.raised == (step.raised is not None)]
        if step.raised is not None:
            facts.append(sv.err == errno)
        elif with_result and step.op == "mmap":
            facts.append(sv.place == (step.result - driver.symbolic_system(2)[1]
                                      ["mmap_min_addr"]) // 4096)
        elif with_result and step.op == "find_vma":
            facts.append(sv.find_none == (step.result is None))
            if step.result is not None:
                facts.append(sv.find_start == step.result)
        return z3.And(facts)


def assert_presents(model: z3.ModelRef, s: SymState, snap: Mapping[str, Any],
                    files: Mapping[int, int]) -> None:
    """Every value the encoding presents equals the reference's snapshot."""
    got = present(model, s)
    assert set(got) == {v.name for v in VOCABULARY.state}
    for name, value in got.items():
        want = snap[name]
        if name == "areas":
            want = [a._replace(file=files.get(a.file, 0)) for a in want]
        assert value == as_presented(want), name


def random_step(rng: random.Random, sym: SymbolicAddressSpace) -> tuple[str, tuple[int, ...]]:
    roll, addr, length = rng.random(), rng.choice(sym.addrs), rng.choice(LENGTHS)
    if roll < 0.45:
        return "mmap", (addr, length, rng.choice(PROTS), rng.choice(FLAGS))
    if roll < 0.65:
        return "munmap", (addr, length)
    if roll < 0.9:
        return "mprotect", (addr, length, rng.choice(PROTS))
    return "find_vma", (rng.choice(sym.find_addrs),)


@pytest.mark.parametrize("pages", [5, 8])
def test_encoding_agrees_with_the_reference(pages: int) -> None:
    h = Harness(pages)
    rng = random.Random(pages)
    for _trace in range(4):
        ref = driver.ReferenceSystem(h.sym.setup)
        h.files.clear()
        assert z3.Solver().check(h.state_is(h.s, ref.snapshot(), 0), h.sym.init(h.s)) == z3.sat
        for _ in range(20):
            before, nfile = ref.snapshot(), len(h.files)
            pre = h.state_is(h.s, before, nfile)
            step, problem = ref.apply(*random_step(rng, h.sym))
            assert problem is None
            after = ref.snapshot()
            post = h.state_is(h.s2, after, len(h.files) if step.raised else
                              len(h.files) + (step.op == "mmap" and step.args[3] & 15 == 1))
            op, errno = h.op_is(step), after["errno"]
            sol = h.solver(pre, op, h.outcome_is(step, errno, True), post)
            assert sol.check() == z3.sat, f"the encoding cannot make {step} from {before['vmas']}"
            assert_presents(sol.model(), h.s2, after, h.files)
            assert h.solver(pre, op, z3.Not(h.outcome_is(step, errno, False))).check() \
                == z3.unsat, f"{step}: the encoding may also end otherwise"
            assert h.solver(pre, op, h.outcome_is(step, errno, True),
                            z3.Not(post)).check() == z3.unsat, (
                f"{step}: the encoding may reach another state")


# ---------------------------------------------------------------- mutants

PAGES = 3  # the one-step bugs need no more; bench/z3vma.py finds every mutant


@pytest.fixture(scope="module")
def checked() -> list[CheckedSpec]:
    return [load(f) for f in library("vma")]


def test_every_mutation_has_an_example() -> None:
    for name in MUTATIONS:
        assert (ROOT / "examples" / "vma" / "buggy" / f"{name}.py").is_file()


@pytest.mark.parametrize("mutation", ["accepts_droppable", "einval_before_enomem"])
def test_bmc_finds_a_mutation_and_its_example_breaks(
        mutation: str, checked: list[CheckedSpec]) -> None:
    system, setup, universe, bound = driver.symbolic_system(PAGES, mutation)
    convicts(checked, system, setup, universe, bound,
             ROOT / "examples" / "vma" / "buggy" / f"{mutation}.py", driver, 1)


def test_unmutated_encoding_holds_where_mutants_break(checked: list[CheckedSpec]) -> None:
    system, setup, universe, bound = driver.symbolic_system(PAGES)
    result = bounded_check(checked, system, setup,
                           Options(depth=1, induction=False, budget=120.0), universe, bound)
    assert result.verdict == "bounded" and result.depth_checked == 1, result.summary


@pytest.mark.parametrize("mutation", [None, "no_merge", "mprotect_whole_area"])
def test_well_formed_is_inductive(mutation: str | None) -> None:
    """What induction assumes of every state (well_formed) holds initially and every
    step keeps it, so assuming it proves nothing false."""
    sym = SymbolicAddressSpace(5, mutation)
    s, t, s2 = sym.fresh_state("s"), sym.fresh_step("t"), sym.fresh_state("s2")
    assert z3.Solver().check(sym.init(s), z3.Not(sym.well_formed(s))) == z3.unsat
    sol = z3.Solver()
    sol.add(sym.well_formed(s), sym.trans(s, t, s2), z3.Not(sym.well_formed(s2)))
    assert sol.check() == z3.unsat, sym.decode_state(sol.model(), s)
