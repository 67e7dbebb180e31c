"""The Z3 encoding of the buddy allocator against the reference model.

- agreement: on random alloc/free traces (error cases included) every concrete step
  is a step of the encoding and the only one for its op, arguments and result; op
  and arguments alone decide whether it raises or returns None; every vocabulary
  value of the post-state equals the reference's snapshot; and the blocks Z3 may
  hand out are exactly those the reference's `take_block` accepts;
- init is exactly the reference's boot state;
- a trace Z3 finds replays on the reference (decode_step);
- each seeded bug (a mutation) breaks tiling or coalescing within a few steps, and
  the unmutated encoding keeps them: bounded model checking and an induction step
  written directly in z3 here, independent of the spec compiler.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest
import z3
from mmcheck.checker.symbolic.base import ConcreteStep, SymCollection, SymState
from mmcheck.checker.symbolic.buddy import MUTATIONS, SymbolicBuddy, boot_blocks
from mmcheck.model.buddy import VOCABULARY, BuddyAllocator

# (npages, max_order): powers of two and not, top order reached and capped
CONFIGS = [(16, 5), (24, 4), (64, 7), (13, 3), (13, 5), (1, 1)]

Prop = Callable[[SymbolicBuddy, SymState], z3.BoolRef]


class Harness:
    """One encoding with a pre-state s, a step t and a post-state s2.

    Every check gets a fresh solver holding well_formed(s) and trans(s, t, s2):
    at 64 pages that is several times faster than push/pop on one solver, which
    pays again after each pop for the atoms it had internalized.
    """

    def __init__(self, npages: int, max_order: int) -> None:
        self.sb = SymbolicBuddy(npages, max_order)
        self.s, self.t, self.s2 = (self.sb.fresh_state("s"), self.sb.fresh_step("t"),
                                   self.sb.fresh_state("s2"))
        self.sv = self.sb.step_vars(self.t)
        self.base = [self.sb.well_formed(self.s), self.sb.trans(self.s, self.t, self.s2)]

    def solver(self, *facts: z3.BoolRef) -> z3.Solver:
        sol = z3.Solver()
        sol.set("random_seed", 0)
        sol.add(*self.base, *facts)
        return sol

    def fix_op(self, op: str, args: tuple[int, ...]) -> z3.BoolRef:
        """t runs `op` with `args`."""
        sv = self.sv
        if op == "alloc":
            return z3.And(sv.is_alloc, sv.alloc_order == args[0])
        return z3.And(sv.is_free, sv.free_pfn == args[0], sv.free_order == args[1])

    def fix_outcome(self, op: str, result: int | None, raised: bool) -> z3.BoolRef:
        """t returned `result` (alloc) or raised ValueError."""
        sv = self.sv
        facts = [sv.raised == raised]
        if op == "alloc" and not raised:
            facts.append(sv.alloc_none == (result is None))
            if result is not None:
                facts.append(sv.alloc_pfn == result)
        return z3.And(facts)

    def state_is(self, s: SymState, ba: BuddyAllocator) -> z3.BoolRef:
        snap = ba.snapshot()
        return self.sb.assign(s, snap["free"], snap["allocated"])  # type: ignore[arg-type]


def present(model: z3.ModelRef, s: SymState) -> dict[str, object]:
    """The vocabulary values of s in `model`, as plain Python values."""

    def value(term: z3.ExprRef) -> object:
        v = model.eval(term, model_completion=True)
        return z3.is_true(v) if z3.is_bool(v) else v.as_long()

    out: dict[str, object] = {}
    for name, sym in s.values.items():
        if isinstance(sym, SymCollection):
            out[name] = [tuple(value(f) for f in rec.fields.values())
                         for guard, rec in sym.slots if value(guard)]
        else:
            out[name] = value(sym)  # type: ignore[arg-type]
    return out


def assert_presents(model: z3.ModelRef, s: SymState, ba: BuddyAllocator) -> None:
    """Every vocabulary value of s in `model` equals the reference's snapshot."""
    got, snap = present(model, s), ba.snapshot()
    assert set(got) == set(snap) == {sv.name for sv in VOCABULARY.state}
    for var in VOCABULARY.state:
        mine, theirs = got[var.name], snap[var.name]
        if var.type.startswith("set["):
            assert set(mine) == set(theirs), var.name  # type: ignore[arg-type]
        elif var.type.startswith("list["):  # a list: same entries, as many times each
            assert Counter(mine) == Counter(theirs), var.name  # type: ignore[arg-type]
        else:
            assert mine == theirs, var.name
    assert got["pages"] == list(snap["pages"])  # type: ignore[call-overload]  # pfn order


def random_op(rng: random.Random, ba: BuddyAllocator,
              p_alloc: float) -> tuple[str, tuple[int, ...]]:
    """An alloc (with probability p_alloc) or a free, legal most of the time,
    sometimes each kind of mistake."""
    roll = rng.random()
    if roll < p_alloc or not ba.allocated:
        return "alloc", (rng.choice([*range(ba.max_order), -1, ba.max_order, 0, 0]),)
    pfn, order = rng.choice(sorted(ba.allocated.items()))
    if roll < p_alloc + (1 - p_alloc) * 0.6:
        return "free", (pfn, order)
    mistakes = [
        (pfn, order + 1),  # wrong order
        (pfn + 1, order),  # not a head, or a free page
        # anywhere in the encoding's range of arguments
        (rng.randrange(-1, ba.npages + 1), rng.randrange(-1, ba.max_order + 1)),
    ]
    return "free", rng.choice(mistakes)


def legal_choices(ba: BuddyAllocator, order: int) -> list[int]:
    """Every pfn the reference's take_block accepts for `order` now."""
    return [r for b in ba.snapshot()["free"] if b.order >= order  # type: ignore[attr-defined]
            for r in range(b.pfn, b.pfn + (1 << b.order), 1 << order)]


def run_concrete(ba: BuddyAllocator, op: str, args: tuple[int, ...],
                 choose: Callable[[int], int] | None) -> tuple[int | None, bool]:
    """Run one step on the reference: (result, raised). `choose` picks alloc's block;
    take_block raising IllegalChoice fails the test (it is not caught here)."""
    if op == "alloc" and choose is not None and 0 <= args[0] < ba.max_order \
            and ba.can_allocate(args[0]):
        r = choose(args[0])
        ba.take_block(r, args[0])
        return r, False
    try:
        result = ba.alloc(args[0]) if op == "alloc" else ba.free(*args)
        return result, False
    except ValueError:
        return None, True


def check_step(h: Harness, pre: z3.BoolRef, op: str, args: tuple[int, ...],
               result: int | None, raised: bool, ba: BuddyAllocator) -> None:
    """The concrete step is a step of the encoding, and the only one for its outcome."""
    step = z3.And(h.fix_op(op, args), h.fix_outcome(op, result, raised))
    sol = h.solver(pre, step)
    assert sol.check() == z3.sat, f"{op}{args} -> {result}: no successor"
    assert_presents(sol.model(), h.s2, ba)
    sol.add(z3.Not(h.state_is(h.s2, ba)))
    assert sol.check() == z3.unsat, f"{op}{args} -> {result}: another successor"
    # op and args alone decide whether it raises and whether alloc returns None
    sv = h.sv
    outcome = [sv.raised == raised]
    if op == "alloc" and not raised:
        outcome.append(sv.alloc_none == (result is None))
    sol = h.solver(pre, h.fix_op(op, args), z3.Not(z3.And(outcome)))
    assert sol.check() == z3.unsat, f"{op}{args}: the encoding may end otherwise"


def z3_choice(h: Harness, pre: z3.BoolRef, order: int, rng: random.Random) -> int:
    """A block alloc(order) may return, as Z3 picks it under a random preference."""
    sv = h.sv
    sol = h.solver(pre, h.fix_op("alloc", (order,)), z3.Not(sv.raised), z3.Not(sv.alloc_none))
    target = rng.randrange(h.sb.npages)
    for prefer in (sv.alloc_pfn >= target, sv.alloc_pfn < target):
        sol.push()
        sol.add(prefer)
        if sol.check() == z3.sat:
            return sol.model().eval(sv.alloc_pfn).as_long()
        sol.pop()
    raise AssertionError(f"alloc({order}): the encoding offers no block")


@pytest.mark.parametrize("npages,max_order", CONFIGS)
def test_agrees_with_reference_on_random_traces(npages: int, max_order: int) -> None:
    h = Harness(npages, max_order)
    seen: Counter[str] = Counter()
    seeds, length = (1, 20) if npages > 32 else (3, 16)
    for seed in range(seeds):
        rng = random.Random(seed * 1000 + npages * 10 + max_order)
        ba = BuddyAllocator(npages, max_order)
        for _ in range(length):
            pre = h.state_is(h.s, ba)
            op, args = random_op(rng, ba, p_alloc=(0.5, 0.8, 0.65)[seed])
            how = rng.choice(["linux", "z3", "random"])
            choose: Callable[[int], int] | None = None
            if how == "z3":
                choose = lambda order: z3_choice(h, pre, order, rng)  # noqa: E731, B023
            elif how == "random":
                choose = lambda order: rng.choice(legal_choices(ba, order))  # noqa: E731, B023
            result, raised = run_concrete(ba, op, args, choose)
            check_step(h, pre, op, args, result, raised, ba)
            seen[op] += 1
            seen["raised"] += raised
            seen["none"] += op == "alloc" and result is None and not raised
            seen[how] += op == "alloc" and result is not None
    # the traces did exercise every kind of step
    assert seen["raised"] > 0 and seen["free"] > 4 and seen["z3"] > 0, seen
    if npages <= 16:
        assert seen["none"] > 0 and seen["random"] > 0, seen


def test_z3_offers_exactly_the_legal_blocks() -> None:
    h = Harness(24, 4)
    ba = BuddyAllocator(24, 4)
    for order, r in [(0, 5), (1, 18), (0, 0)]:
        ba.take_block(r, order)
    pre = h.state_is(h.s, ba)
    for order in range(4):
        sv = h.sv
        sol = h.solver(pre, h.fix_op("alloc", (order,)), z3.Not(sv.raised),
                       z3.Not(sv.alloc_none))
        offered = set()
        while sol.check() == z3.sat:
            r = sol.model().eval(sv.alloc_pfn).as_long()
            offered.add(r)
            sol.add(sv.alloc_pfn != r)
        assert offered == set(legal_choices(ba, order)) and offered, order


@pytest.mark.parametrize("npages,max_order", [*CONFIGS, (100, 6), (7, 11), (32, 1)])
def test_init_is_the_boot_state(npages: int, max_order: int) -> None:
    sb = SymbolicBuddy(npages, max_order)
    s = sb.fresh_state("s")
    ba = BuddyAllocator(npages, max_order)
    snap = ba.snapshot()
    assert boot_blocks(npages, max_order) == sorted(snap["free"])  # type: ignore[arg-type]
    sol = z3.Solver()
    sol.add(sb.init(s))
    assert sol.check() == z3.sat
    assert_presents(sol.model(), s, ba)
    sol.add(z3.Or(z3.Not(sb.assign(s, snap["free"], ())),  # type: ignore[arg-type]
                  z3.Not(sb.well_formed(s))))
    assert sol.check() == z3.unsat


def test_a_trace_z3_finds_replays_on_the_reference() -> None:
    """decode_step reads back steps the reference runs to the same state."""
    sb = SymbolicBuddy(16, 5)
    states = [sb.fresh_state(f"s{i}") for i in range(6)]
    steps = [sb.fresh_step(f"t{i}") for i in range(5)]
    sol = z3.Solver()
    sol.add(sb.init(states[0]))
    for i, t in enumerate(steps):
        sol.add(sb.trans(states[i], t, states[i + 1]))
    # a successful free, then a refused step, ending with block (4, order 2) allocated
    last = sb.vars_of(states[-1])
    sv = [sb.step_vars(t) for t in steps]
    sol.add(last.alloc[2][1], sv[1].is_free, z3.Not(sv[1].raised),
            sv[2].raised, z3.Not(z3.Or([row[0] for row in last.alloc if row])))
    assert sol.check() == z3.sat
    model = sol.model()
    trace = [sb.decode_step(model, t) for t in steps]
    assert trace[1].op == "free" and trace[2].raised == "ValueError"
    ba = BuddyAllocator(16, 5)
    for step in trace:
        replay(ba, step)
    final = sb.decode_state(model, states[-1])
    snap = ba.snapshot()
    assert final["free"] == sorted(snap["free"])  # type: ignore[arg-type]
    assert final["allocated"] == sorted(snap["allocated"]) and (4, 2) in final["allocated"]


def replay(ba: BuddyAllocator, step: ConcreteStep) -> None:
    """Run a decoded step on the reference and check it ends as the step says."""
    try:
        if step.op == "alloc" and step.result is not None:
            ba.take_block(step.result, step.args[0])
        elif step.op == "alloc":
            assert ba.alloc(*step.args) is None
        else:
            ba.free(*step.args)
        raised = None
    except ValueError:
        raised = "ValueError"
    assert raised == step.raised, step


def test_decode_step_reads_each_outcome() -> None:
    h = Harness(16, 5)
    sv = h.sv
    cases = [
        (z3.And(h.fix_op("alloc", (2,)), sv.alloc_pfn == 8), ConcreteStep("alloc", (2,), 8)),
        (h.fix_op("alloc", (5,)), ConcreteStep("alloc", (5,), None, "ValueError")),
        (h.fix_op("free", (3, 1)), ConcreteStep("free", (3, 1), None, "ValueError")),
    ]
    for fact, want in cases:
        sol = h.solver(h.sb.init(h.s), fact)
        assert sol.check() == z3.sat
        assert h.sb.decode_step(sol.model(), h.t) == want


# -- properties written directly in z3, bounded model checking, induction -------


Block = tuple[z3.BoolRef, "int | z3.ArithRef", "int | z3.ArithRef"]  # guard, pfn, order


def _covers(b: Block, p: int, max_order: int) -> z3.BoolRef | bool:
    """Block b (if present) covers page p."""
    g, x, o = b
    if isinstance(x, int) and isinstance(o, int):
        return g if x <= p < x + (1 << o) else False
    return z3.And(g, x <= p, z3.Or([z3.And(o == j, p < x + (1 << j)) for j in range(max_order)]))


def _blocks(sb: SymbolicBuddy, s: SymState, free: bool = True,
            allocated: bool = True) -> list[Block]:
    """Every block slot of s (and the stray block of "wrong_buddy") as (guard, pfn, order)."""
    v = sb.vars_of(s)
    out: list[Block] = []
    if free:
        out += [(v.free[j][i], i << j, j) for j, i in sb.slots()]
        if v.stray is not None:
            out.append((v.stray.present, v.stray.pfn, v.stray.order))
    if allocated:
        out += [(v.alloc[j][i], i << j, j) for j, i in sb.slots()]
    return out


def disjoint(sb: SymbolicBuddy, s: SymState, free: bool = True,
             allocated: bool = True) -> z3.BoolRef:
    """No page lies in two blocks (of the kinds asked for)."""
    blocks = _blocks(sb, s, free, allocated)
    per_page = [[c for b in blocks if (c := _covers(b, p, sb.max_order)) is not False]
                for p in range(sb.npages)]
    return z3.And([z3.AtMost(*cs, 1) for cs in per_page if len(cs) > 1])


def free_disjoint(sb: SymbolicBuddy, s: SymState) -> z3.BoolRef:
    """Free blocks are pairwise disjoint."""
    return disjoint(sb, s, allocated=False)


def tiling(sb: SymbolicBuddy, s: SymState) -> z3.BoolRef:
    """BUD-2: free and allocated blocks are disjoint, inside memory, and cover it."""
    blocks, m, n = _blocks(sb, s), sb.max_order, sb.npages
    covered = [z3.Or([c for b in blocks if (c := _covers(b, p, m)) is not False] or
                     [z3.BoolVal(False)]) for p in range(n)]
    inside = [z3.Implies(g, z3.Or([z3.And(o == j, x + (1 << j) <= n) for j in range(m)]))
               for g, x, o in blocks if not isinstance(x, int)]
    return z3.And(disjoint(sb, s), *covered, *inside)


def coalesced(sb: SymbolicBuddy, s: SymState) -> z3.BoolRef:
    """BUD-3: no two free buddies of the same order below the top order."""
    v = sb.vars_of(s)
    return z3.And([
        z3.Not(z3.And(v.free[j][i], v.free[j][i + 1]))
        for j, i in sb.slots() if j < sb.max_order - 1 and i % 2 == 0 and i + 1 < sb.width[j]
    ])


def aligned(sb: SymbolicBuddy, s: SymState) -> z3.BoolRef:
    """BUD-1: every block starts at a multiple of its size (slots do by construction)."""
    return z3.And([z3.Implies(g, z3.Or([z3.And(o == j, x % (1 << j) == 0)
                                        for j in range(sb.max_order)]))
                   for g, x, o in _blocks(sb, s) if not isinstance(x, int)])


def buddy_invariant(sb: SymbolicBuddy, s: SymState) -> z3.BoolRef:
    return z3.And(tiling(sb, s), coalesced(sb, s), aligned(sb, s))


def bmc(sb: SymbolicBuddy, prop: Prop, depth: int,
        finite: bool = False) -> tuple[int, list[ConcreteStep]] | None:
    """The first depth <= `depth` at which prop fails from init, with its trace; or None.

    Once prop holds at every state of depth d it is kept as a fact for the deeper
    checks: sound, and what makes deep unrollings affordable. `finite` bounds the
    arguments (arg_bounds) and bit-blasts to SAT (QF_FD).
    """
    states = [sb.fresh_state("s0")]
    steps = []
    sol = z3.SolverFor("QF_FD") if finite else z3.Solver()
    sol.set("random_seed", 0)
    sol.add(sb.init(states[0]))
    for d in range(depth + 1):
        if d:
            steps.append(sb.fresh_step(f"t{d}"))
            states.append(sb.fresh_state(f"s{d}"))
            sol.add(sb.trans(states[d - 1], steps[-1], states[d]), sb.well_formed(states[d]))
            if finite:
                sol.add(sb.arg_bounds(steps[-1]))
        holds = prop(sb, states[d])
        sol.push()
        sol.add(z3.Not(holds))
        result = sol.check()
        assert result != z3.unknown, sol.reason_unknown()
        if result == z3.sat:
            model = sol.model()
            return d, [sb.decode_step(model, t) for t in steps]
        sol.pop()
        sol.add(holds)
    return None


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_mutation_is_found(mutation: str) -> None:
    found = bmc(SymbolicBuddy(16, 5, mutation), buddy_invariant, 3)
    assert found is not None, mutation
    depth, trace = found
    assert 1 <= depth <= 2 and len(trace) == depth
    assert trace[-1].raised is None  # the last step did something, and broke it


def test_each_mutation_breaks_what_it_should() -> None:
    """The first depth at which each seeded bug breaks each invariant it breaks."""
    def first(mutation: str, prop: Prop, depth: int) -> int | None:
        found = bmc(SymbolicBuddy(16, 5, mutation), prop, depth, finite=True)
        return None if found is None else found[0]

    # never merging: blocks still tile memory, but two free buddies stay apart
    assert first("no_coalesce", tiling, 3) is None
    assert first("no_coalesce", coalesced, 3) == 2
    # wrong buddy: an upper half never merges with its real buddy (alloc, free), and
    # merges with the block after it into an unaligned block (alloc, alloc, free)
    assert first("wrong_buddy", coalesced, 3) == 2
    assert first("wrong_buddy", aligned, 3) == 3
    assert first("wrong_buddy", tiling, 3) is None
    # lost upper halves: pages nobody holds, at the first split
    assert first("lost_upper_half", tiling, 2) == 1
    assert first("lost_upper_half", disjoint, 2) is None
    # an exact fit left on the free list: in use and free at once, at the first alloc
    assert first("double_alloc", disjoint, 2) == 1
    assert first("double_alloc", aligned, 2) is None


def test_unmutated_encoding_keeps_the_invariant() -> None:
    assert bmc(SymbolicBuddy(16, 5), buddy_invariant, 6, finite=True) is None
    assert bmc(SymbolicBuddy(13, 3), buddy_invariant, 4) is None
    assert bmc(SymbolicBuddy(16, 5), free_disjoint, 3, finite=True) is None


def test_the_invariant_is_one_inductive() -> None:
    """Tiling and coalescing are kept by every step (alignment, BUD-1, is a fact
    of the slot encoding).

    This is k-induction's step case for k = 1 over well_formed states: the
    encoding supports unbounded proofs, not only bounded ones.
    """
    for npages, max_order, finite in [(16, 5, False), (13, 3, False), (24, 5, True)]:
        sb = SymbolicBuddy(npages, max_order)
        s, t, s2 = sb.fresh_state("s"), sb.fresh_step("t"), sb.fresh_state("s2")
        sol = z3.SolverFor("QF_FD") if finite else z3.Solver()
        sol.add(sb.well_formed(s), sb.trans(s, t, s2), buddy_invariant(sb, s),
                z3.Not(buddy_invariant(sb, s2)), sb.arg_bounds(t))
        if finite:  # every Int bounded (trans keeps well_formed: see the test below)
            sol.add(sb.well_formed(s2))
        assert sol.check() == z3.unsat
    # free blocks being disjoint alone is not: from a state where an allocated block
    # overlaps a free one, freeing it makes two free blocks overlap (a counterexample
    # to induction)
    sb = SymbolicBuddy(16, 5)
    s, t, s2 = sb.fresh_state("s"), sb.fresh_step("t"), sb.fresh_state("s2")
    sol = z3.Solver()
    sol.add(sb.well_formed(s), sb.trans(s, t, s2), free_disjoint(sb, s),
            z3.Not(free_disjoint(sb, s2)))
    assert sol.check() == z3.sat


@pytest.mark.parametrize("mutation", [None, *sorted(MUTATIONS)])
def test_trans_keeps_well_formed(mutation: str | None) -> None:
    """well_formed is a domain fact: every step of every encoding keeps it."""
    sb = SymbolicBuddy(13, 4, mutation)
    s, t, s2 = sb.fresh_state("s"), sb.fresh_step("t"), sb.fresh_state("s2")
    sol = z3.Solver()
    sol.add(sb.well_formed(s), sb.trans(s, t, s2), z3.Not(sb.well_formed(s2)))
    assert sol.check() == z3.unsat
    stray = sb.vars_of(s).stray
    if stray is not None:  # a real constraint: a stray order outside the domain is not
        sol = z3.Solver()
        sol.add(sb.well_formed(s), stray.order == 4)
        assert sol.check() == z3.unsat


def test_arg_bounds_keep_representatives_of_every_outcome() -> None:
    """Within arg_bounds every outcome of both operations is still possible."""
    h = Harness(16, 5)
    sv = h.sv
    outcomes = [
        z3.And(sv.is_alloc, sv.raised, sv.alloc_order == -1),
        z3.And(sv.is_alloc, sv.raised, sv.alloc_order == 5),
        z3.And(sv.is_free, sv.raised, sv.free_pfn == -1),
        z3.And(sv.is_free, sv.raised, sv.free_pfn == 16),
        z3.And(sv.is_free, z3.Not(sv.raised)),
        z3.And(sv.is_alloc, sv.alloc_none),
        z3.And(sv.is_alloc, z3.Not(sv.raised), z3.Not(sv.alloc_none)),
    ]
    for outcome in outcomes:
        sol = h.solver(h.sb.arg_bounds(h.t), outcome)
        assert sol.check() == z3.sat, outcome
    sol = h.solver(h.sb.arg_bounds(h.t), sv.alloc_order == 6)
    assert sol.check() == z3.unsat


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown mutation"):
        SymbolicBuddy(16, 5, "no_such_bug")
    with pytest.raises(ValueError, match="npages"):
        SymbolicBuddy(0, 5)
    sb = SymbolicBuddy(16, 5)
    with pytest.raises(ValueError, match="fresh_state"):
        sb.vars_of(SymbolicBuddy(8, 5).fresh_state("small"))


@pytest.mark.parametrize("mutation", [None, "no_coalesce", "lost_upper_half", "double_alloc"])
def test_successor_is_the_state_trans_leads_to(mutation: str | None) -> None:
    """Under trans(s, t, s2) every bit of s2 equals its term in successor(s, t) (no
    model of trans tells them apart), and the successor makes no fresh constants."""
    sb = SymbolicBuddy(13, 4, mutation)
    s, t, s2 = sb.fresh_state("s"), sb.fresh_step("t"), sb.fresh_state("s2")
    nxt = sb.successor(s, t)
    assert nxt is not None
    pairs = [z3.Xor(a, b) for a, b in zip(s2.variables, nxt.variables, strict=True)]
    sol = z3.Solver()
    sol.add(sb.trans(s, t, s2), z3.Or(pairs))
    assert sol.check() == z3.unsat
    names = {str(v) for v in (*s.variables, *t.variables)}
    seen: set[str] = set()
    visited: set[int] = set()
    todo = list(nxt.variables)
    while todo:
        e = todo.pop()
        if e.get_id() in visited:
            continue
        visited.add(e.get_id())
        if z3.is_const(e) and e.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            seen.add(str(e))
        todo.extend(e.children())
    assert seen and seen <= names


def test_no_successor_with_a_stray_block() -> None:
    """Under "wrong_buddy" the stray block is not a function of the bits: no successor."""
    sb = SymbolicBuddy(13, 4, "wrong_buddy")
    assert sb.successor(sb.fresh_state("s"), sb.fresh_step("t")) is None
