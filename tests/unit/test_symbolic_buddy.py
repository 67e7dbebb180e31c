"""The Z3 encoding of the buddy allocator against the reference model.

Three things are checked:
- agreement: on random alloc/free traces (error cases included) every concrete step
  is a step of the encoding, the only one for its op, arguments and result; and
  every alloc choice Z3 offers is one the reference accepts (`take_block`), with
  the same post-state;
- init is exactly the reference's boot state;
- each seeded bug (a mutation) breaks tiling or coalescing within a few steps, and
  the unmutated encoding keeps them (bounded model checking written directly in z3).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest
import z3
from mmcheck.checker.symbolic.base import SymCollection, SymState, SymStep
from mmcheck.checker.symbolic.buddy import MUTATIONS, SymbolicBuddy, boot_blocks
from mmcheck.model.buddy import BuddyAllocator, IllegalChoice

# (npages, max_order): powers of two and not, top order reached and capped
CONFIGS = [(16, 5), (24, 4), (64, 7), (13, 3), (13, 5), (1, 1)]


class Harness:
    """One encoding with a pre-state s, a step t and a post-state s2, and a solver.

    The solver holds trans(s, t, s2) and well_formed(s); each check pushes the
    concrete facts and pops them again.
    """

    def __init__(self, npages: int, max_order: int) -> None:
        self.sb = SymbolicBuddy(npages, max_order)
        self.s, self.t, self.s2 = (self.sb.fresh_state("s"), self.sb.fresh_step("t"),
                                   self.sb.fresh_state("s2"))
        self.sv = self.sb.step_vars(self.t)
        self.solver = z3.Solver()
        self.solver.set("random_seed", 0)
        self.solver.add(self.sb.well_formed(self.s), self.sb.trans(self.s, self.t, self.s2))

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
            out[name] = [
                tuple(value(f) for f in rec.fields.values())
                for guard, rec in sym.slots
                if value(guard)
            ]
        else:
            out[name] = value(sym)  # type: ignore[arg-type]
    return out


def assert_presents(model: z3.ModelRef, s: SymState, ba: BuddyAllocator) -> None:
    """Every vocabulary value of s in `model` equals the reference's snapshot."""
    got, snap = present(model, s), ba.snapshot()
    assert got["npages"] == snap["npages"] and got["max_order"] == snap["max_order"]
    assert set(got["free"]) == {tuple(b) for b in snap["free"]}  # type: ignore[arg-type]
    assert set(got["allocated"]) == {tuple(b) for b in snap["allocated"]}  # type: ignore
    assert Counter(got["free_area"]) == Counter(tuple(b) for b in snap["free_area"])  # type: ignore
    assert got["free_pages"] == snap["free_pages"]
    assert got["pages"] == [tuple(p) for p in snap["pages"]]  # type: ignore[attr-defined]


def random_op(rng: random.Random, ba: BuddyAllocator) -> tuple[str, tuple[int, ...]]:
    """An alloc or free, legal most of the time, sometimes each kind of mistake."""
    roll = rng.random()
    if roll < 0.5 or not ba.allocated:
        order = rng.choice([*range(ba.max_order), -1, ba.max_order, 0, 0])
        return "alloc", (order,)
    pfn, order = rng.choice(sorted(ba.allocated.items()))
    if roll < 0.8:
        return "free", (pfn, order)
    mistakes = [
        (pfn, order + 1),  # wrong order
        (pfn + 1, order),  # not a head (or a free page)
        (rng.randrange(-1, ba.npages + 2), rng.randrange(-1, ba.max_order + 1)),
    ]
    return "free", rng.choice(mistakes)


def legal_choices(ba: BuddyAllocator, order: int) -> list[int]:
    """Every pfn the reference's take_block accepts for `order` now."""
    size = 1 << order
    return [
        r
        for b in ba.snapshot()["free"]  # type: ignore[attr-defined]
        if b.order >= order
        for r in range(b.pfn, b.pfn + (1 << b.order), size)
    ]


def run_concrete(ba: BuddyAllocator, op: str, args: tuple[int, ...],
                 choose: Callable[[int], int] | None) -> tuple[int | None, bool]:
    """Run one step on the reference: (result, raised). `choose` picks alloc's block."""
    try:
        if op == "free":
            ba.free(*args)
            return None, False
        if choose is None or not 0 <= args[0] < ba.max_order or not ba.can_allocate(args[0]):
            return ba.alloc(args[0]), False
        r = choose(args[0])
        ba.take_block(r, args[0])
        return r, False
    except IllegalChoice:
        raise
    except ValueError:
        return None, True


def check_step(h: Harness, pre: z3.BoolRef, op: str, args: tuple[int, ...],
               result: int | None, raised: bool, ba: BuddyAllocator) -> None:
    """The concrete step is a step of the encoding, and the only one for its outcome."""
    sol = h.solver
    step = z3.And(h.fix_op(op, args), h.fix_outcome(op, result, raised))
    post = h.state_is(h.s2, ba)
    sol.push()
    sol.add(pre, step)
    assert sol.check() == z3.sat, f"{op}{args} -> {result}: no successor"
    model = sol.model()
    assert_presents(model, h.s2, ba)
    sol.add(z3.Not(post))
    assert sol.check() == z3.unsat, f"{op}{args} -> {result}: another successor"
    sol.pop()
    # op and args alone decide whether it raises and whether alloc returns None
    sol.push()
    sol.add(pre, h.fix_op(op, args))
    sv = h.sv
    outcome = [sv.raised == raised]
    if op == "alloc" and not raised:
        outcome.append(sv.alloc_none == (result is None))
    sol.add(z3.Not(z3.And(outcome)))
    assert sol.check() == z3.unsat, f"{op}{args}: the encoding may end otherwise"
    sol.pop()


def z3_choice(h: Harness, pre: z3.BoolRef, order: int, rng: random.Random) -> int:
    """A block alloc(order) may return, as Z3 picks it under a random preference."""
    sol, sv = h.solver, h.sv
    sol.push()
    sol.add(pre, h.fix_op("alloc", (order,)), z3.Not(sv.raised), z3.Not(sv.alloc_none))
    target = rng.randrange(h.sb.npages)
    for prefer in (sv.alloc_pfn >= target, sv.alloc_pfn < target):
        sol.push()
        sol.add(prefer)
        if sol.check() == z3.sat:
            r = sol.model().eval(sv.alloc_pfn).as_long()
            sol.pop()
            break
        sol.pop()
    else:
        raise AssertionError(f"alloc({order}): the encoding offers no block")
    sol.pop()
    return r


@pytest.mark.parametrize("npages,max_order", CONFIGS)
def test_agrees_with_reference_on_random_traces(npages: int, max_order: int) -> None:
    h = Harness(npages, max_order)
    steps = {"alloc": 0, "free": 0, "raised": 0, "none": 0, "z3": 0, "random": 0}
    for seed in range(3):
        rng = random.Random(seed * 1000 + npages * 10 + max_order)
        ba = BuddyAllocator(npages, max_order)
        for _ in range(16 if npages > 32 else 24):
            pre = h.state_is(h.s, ba)
            op, args = random_op(rng, ba)
            how = rng.choice(["linux", "z3", "random"])
            choose: Callable[[int], int] | None = None
            if how == "z3":
                choose = lambda order: z3_choice(h, pre, order, rng)  # noqa: E731, B023
            elif how == "random":
                choose = lambda order: rng.choice(legal_choices(ba, order))  # noqa: E731, B023
            result, raised = run_concrete(ba, op, args, choose)
            check_step(h, pre, op, args, result, raised, ba)
            steps[op] += 1
            steps["raised"] += raised
            steps["none"] += op == "alloc" and result is None and not raised
            if choose is not None and op == "alloc" and result is not None:
                steps[how] += 1
    # the traces did exercise every kind of step
    assert steps["raised"] > 0 and steps["free"] > 5 and steps["z3"] > 0
    if npages <= 16:
        assert steps["none"] > 0


def test_z3_choices_cover_every_legal_block() -> None:
    """Every block take_block accepts is one the encoding may return, and no other."""
    h = Harness(24, 4)
    ba = BuddyAllocator(24, 4)
    for order, r in [(0, 5), (1, 18), (0, 0)]:
        ba.take_block(r, order)
    pre = h.state_is(h.s, ba)
    for order in range(4):
        sol, sv = h.solver, h.sv
        sol.push()
        sol.add(pre, h.fix_op("alloc", (order,)), z3.Not(sv.raised), z3.Not(sv.alloc_none))
        offered = set()
        while sol.check() == z3.sat:
            r = sol.model().eval(sv.alloc_pfn).as_long()
            offered.add(r)
            sol.add(sv.alloc_pfn != r)
        sol.pop()
        assert offered == set(legal_choices(ba, order)), order


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
    sol.add(z3.Not(sb.assign(s, snap["free"], ())))  # type: ignore[arg-type]
    assert sol.check() == z3.unsat
    # and well_formed holds of it
    sol = z3.Solver()
    sol.add(sb.init(s), z3.Not(sb.well_formed(s)))
    assert sol.check() == z3.unsat


# -- properties written directly in z3, and bounded model checking -------------------


def block_size(sb: SymbolicBuddy, order: z3.ArithRef) -> z3.ArithRef:
    term: z3.ArithRef = z3.IntVal(0)
    for j in range(sb.max_order):
        term = z3.If(order == j, 1 << j, term)
    return term


def tiling(sb: SymbolicBuddy, s: SymState) -> z3.BoolRef:
    """BUD-2: free and allocated blocks are disjoint, inside memory, and cover it."""
    v = sb.vars_of(s)
    heads = [(v.free_head[x], v.free_ord[x], x) for x in range(sb.npages)]
    heads += [(v.alloc_head[x], v.alloc_ord[x], x) for x in range(sb.npages)]
    facts = [z3.Sum([z3.If(h, block_size(sb, o), 0) for h, o, _ in heads]) == sb.npages]
    for i, (h, o, x) in enumerate(heads):
        facts.append(z3.Implies(h, x + block_size(sb, o) <= sb.npages))
        for h2, _, y in heads[i + 1:]:
            if x == y:
                facts.append(z3.Not(z3.And(h, h2)))
            elif x < y:
                facts.append(z3.Implies(z3.And(h, h2), x + block_size(sb, o) <= y))
    return z3.And(facts)


def free_disjoint(sb: SymbolicBuddy, s: SymState) -> z3.BoolRef:
    """Free blocks are pairwise disjoint."""
    v = sb.vars_of(s)
    return z3.And([
        z3.Implies(z3.And(v.free_head[x], v.free_head[y]), x + block_size(sb, v.free_ord[x]) <= y)
        for x in range(sb.npages) for y in range(x + 1, sb.npages)
    ])


def coalesced(sb: SymbolicBuddy, s: SymState) -> z3.BoolRef:
    """BUD-3: no two free buddies of the same order below the top order."""
    v = sb.vars_of(s)
    facts = []
    for x in range(sb.npages):
        for j in range(sb.max_order - 1):
            y = x ^ (1 << j)
            if x % (1 << j) == 0 and x < y < sb.npages:
                facts.append(z3.Not(z3.And(v.free_head[x], v.free_ord[x] == j,
                                            v.free_head[y], v.free_ord[y] == j)))
    return z3.And(facts)


def bmc(sb: SymbolicBuddy, prop: Callable[[SymbolicBuddy, SymState], z3.BoolRef],
        depth: int) -> tuple[int, list] | None:
    """The first depth <= `depth` at which prop fails from init, with the trace; or None."""
    states = [sb.fresh_state("s0")]
    steps: list[SymStep] = []
    sol = z3.Solver()
    sol.set("random_seed", 0)
    sol.add(sb.init(states[0]))
    for d in range(depth + 1):
        if d:
            steps.append(sb.fresh_step(f"t{d}"))
            states.append(sb.fresh_state(f"s{d}"))
            sol.add(sb.trans(states[d - 1], steps[-1], states[d]))
        sol.push()
        sol.add(z3.Not(prop(sb, states[d])))
        if sol.check() == z3.sat:
            model = sol.model()
            return d, [sb.decode_step(model, t) for t in steps]
        sol.pop()
    return None


def sound(sb: SymbolicBuddy, s: SymState) -> z3.BoolRef:
    return z3.And(tiling(sb, s), coalesced(sb, s))


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_each_mutation_is_found(mutation: str) -> None:
    found = bmc(SymbolicBuddy(16, 5, mutation), sound, 3)
    assert found is not None, mutation
    depth, trace = found
    assert 1 <= depth <= 3 and len(trace) == depth


def test_mutations_break_what_they_should() -> None:
    """Each seeded bug breaks the invariant it is meant to break, at the first step."""
    assert bmc(SymbolicBuddy(16, 5, "no_coalesce"), tiling, 3) is None
    assert bmc(SymbolicBuddy(16, 5, "no_coalesce"), coalesced, 2) is not None
    for mutation in ("wrong_buddy", "lost_upper_half", "double_alloc"):
        assert bmc(SymbolicBuddy(16, 5, mutation), tiling, 1) is not None, mutation
    assert bmc(SymbolicBuddy(16, 5, "double_alloc"), free_disjoint, 1) is None
    assert bmc(SymbolicBuddy(16, 5, "double_alloc"), free_disjoint, 2) is not None


def test_unmutated_encoding_keeps_tiling_and_coalescing() -> None:
    assert bmc(SymbolicBuddy(16, 5), sound, 4) is None
    assert bmc(SymbolicBuddy(13, 3), sound, 4) is None


def test_tiling_and_coalescing_are_one_inductive() -> None:
    """With alignment (BUD-1), tiling and coalescing are preserved by every step.

    This is the k-induction step case for k = 1 over well_formed states, so the
    encoding is fit for unbounded proofs, not only bounded ones.
    """
    for npages, max_order in [(16, 5), (13, 3)]:
        sb = SymbolicBuddy(npages, max_order)
        s, t, s2 = sb.fresh_state("s"), sb.fresh_step("t"), sb.fresh_state("s2")

        def inv(s: SymState, sb: SymbolicBuddy = sb) -> z3.BoolRef:
            v = sb.vars_of(s)
            aligned = [z3.Implies(h, o <= _ctz(x)) for x in range(sb.npages)
                       for h, o in ((v.free_head[x], v.free_ord[x]),
                                    (v.alloc_head[x], v.alloc_ord[x]))]
            return z3.And(sound(sb, s), *aligned)

        sol = z3.Solver()
        sol.add(sb.well_formed(s), inv(s), sb.trans(s, t, s2), z3.Not(inv(s2)))
        assert sol.check() == z3.unsat
        # and without alignment it is not (the step case finds a counterexample)
        sol = z3.Solver()
        sol.add(sb.well_formed(s), sound(sb, s), sb.trans(s, t, s2), z3.Not(sound(sb, s2)))
        assert sol.check() == z3.sat


def _ctz(x: int) -> int:
    """Trailing zero bits of x (a large number for 0, which every order divides)."""
    return (x & -x).bit_length() - 1 if x else 64


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown mutation"):
        SymbolicBuddy(16, 5, "no_such_bug")
    with pytest.raises(ValueError, match="npages"):
        SymbolicBuddy(0, 5)
