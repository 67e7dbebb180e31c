"""The buddy allocator as a Z3 transition system (see `base.py` for the protocol).

One state holds, for every pfn `x` of `[0, npages)` (a concrete slot index):

    free_head[x]   Bool  x starts a free block (PageBuddy on its head page)
    free_ord[x]    Int   that block's order (0 when x is no free head)
    alloc_head[x]  Bool  x starts an allocated block (a pfn alloc() returned)
    alloc_ord[x]   Int   that block's order (0 when x is no allocated head)

Free and allocated heads are separate bits, so a state where one pfn heads both a
free and an allocated block can be written down: "free and allocated blocks are
disjoint" is then an invariant the engines must prove, not a fact of the encoding,
and seeded bugs that break it (a page handed out twice) can be found.

Why the transitions look the way they do: bounded model checking and k-induction
must prove UNSAT over many unrolled steps, and Z3 does that far faster when the
only arithmetic it sees is `variable == constant`. So every pfn and order the
transitions compare is concrete (a slot index, a level j) and every symbolic value
is touched only through equality atoms: `free_ord[x] == j`, `alloc.order == j`,
`result == y`. The order of every slot is then a small finite domain, and the rest
is propositional. Pfn arithmetic (buddies, alignment, "which block contains r") is
precomputed per slot: "r lies in the level-j block starting at b" is the
disjunction of `r == y` over that block's slots, shared level by level.

The terms a spec sees stay plain Ints: `Block{pfn: IntVal(x), order: free_ord[x]}`
guarded by `free_head[x]`, alloc's result an Int, and so on.

The transitions are exactly those of `mmcheck.model.buddy.BuddyAllocator` on every
state where blocks are aligned to their size and lie inside memory (every
reachable state), except that alloc's choice is free: alloc may return any block
of the asked order aligned inside any free block large enough (the checker follows
a submission's choice; the reference's `take_block` accepts the same). On broken
states, which only induction's step case or a seeded bug produces, the encoding
makes fixed choices, said where they are made.

Mutations seed the bugs of `examples/buddy/buggy/`, so tests can prove Z3 finds
them (see `MUTATIONS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

import z3
from mmcheck.checker.symbolic.base import (
    ConcreteStep,
    SymCollection,
    SymOptional,
    SymRecord,
    SymState,
    SymStep,
    pow2,
)
from mmcheck.model.buddy import VOCABULARY
from mmcheck.model.vocabulary import Vocabulary

# The seeded bugs, each as a student writes it (examples/buddy/buggy/).
MUTATIONS: Mapping[str, str] = {
    "no_coalesce": "free() puts the block back as it is and never merges with its buddy",
    "wrong_buddy": (
        "free() looks for the buddy of the order-j block at p at p + 2**j instead of "
        "p ^ 2**j and keeps p as the merged block's start (min(p, p + 2**j)): freeing an "
        "upper half merges it with the block after it into a block that is not aligned "
        "(alloc() is right: the half it splits off, pfn + 2**k, is the buddy of the "
        "lower half it keeps)"
    ),
    "lost_upper_half": (
        "alloc()'s split (Linux's expand) forgets to put the upper halves back: of the "
        "buddies it should free, those above the returned block are lost (with Linux's "
        "choice of the lowest block, all of them)"
    ),
    "double_alloc": (
        "alloc() of an exact fit (a free block of just the asked order) returns it "
        "without taking it off its free list (a missing list_del): it is in use and "
        "free at once, and the next alloc can hand it out again; bigger blocks are "
        "split correctly"
    ),
}


@dataclass(frozen=True)
class BuddyVars:
    """The z3 constants of one state, one entry per pfn slot."""

    free_head: tuple[z3.BoolRef, ...]
    free_ord: tuple[z3.ArithRef, ...]
    alloc_head: tuple[z3.BoolRef, ...]
    alloc_ord: tuple[z3.ArithRef, ...]


@dataclass(frozen=True)
class BuddyStepVars:
    """The z3 constants of one step."""

    is_alloc: z3.BoolRef
    is_free: z3.BoolRef
    alloc_order: z3.ArithRef
    alloc_none: z3.BoolRef
    alloc_pfn: z3.ArithRef  # alloc's result r, when it neither raised nor returned None
    free_pfn: z3.ArithRef
    free_order: z3.ArithRef
    raised: z3.BoolRef


@dataclass(frozen=True)
class OrderAtoms:
    """free_is[x][j] is the atom `free_ord[x] == j` of one state (alloc_is likewise)."""

    free_is: list[list[z3.BoolRef]]
    alloc_is: list[list[z3.BoolRef]]


Term = z3.BoolRef | None  # None: the constant False, left out of disjunctions


@dataclass
class Effects:
    """What one step does to each slot, each term already gated by "it ran and
    succeeded": *_removed[x] takes the block at x away, *_new[x][j] puts a block
    of order j there (at most one j holds). None stands for False (no such effect),
    which keeps the formulas small."""

    free_removed: list[Term]
    free_new: list[list[Term]]
    alloc_removed: list[Term]
    alloc_new: list[list[Term]]

    def merge(self, other: Effects) -> Effects:
        """The effects of whichever of two exclusive operations ran."""
        return Effects(
            free_removed=_or_each(self.free_removed, other.free_removed),
            free_new=[_or_each(a, b) for a, b in zip(self.free_new, other.free_new,
                                                     strict=True)],
            alloc_removed=_or_each(self.alloc_removed, other.alloc_removed),
            alloc_new=[_or_each(a, b) for a, b in zip(self.alloc_new, other.alloc_new,
                                                      strict=True)],
        )


def boot_blocks(npages: int, max_order: int) -> list[tuple[int, int]]:
    """The free blocks at boot: the largest aligned chunks, of order below max_order."""
    blocks: list[tuple[int, int]] = []
    pfn = 0
    while pfn < npages:
        order = 0
        while (
            order + 1 < max_order
            and pfn % (1 << (order + 1)) == 0
            and pfn + (1 << (order + 1)) <= npages
        ):
            order += 1
        blocks.append((pfn, order))
        pfn += 1 << order
    return blocks


class SymbolicBuddy:
    """The buddy allocator over pfns [0, npages) with orders [0, max_order), in Z3.

    A state's `values` present the vocabulary; its `variables` are the per-slot
    constants in the order of `BuddyVars` (all free_head, all free_ord, all
    alloc_head, all alloc_ord), which is how `vars_of` finds them again. A step's
    `variables` are those of `BuddyStepVars`, in field order.
    """

    vocabulary: Vocabulary = VOCABULARY

    def __init__(self, npages: int, max_order: int, mutation: str | None = None) -> None:
        if npages < 1 or max_order < 1:
            raise ValueError(f"SymbolicBuddy: need npages >= 1 and max_order >= 1, "
                             f"got npages={npages}, max_order={max_order}")
        if mutation is not None and mutation not in MUTATIONS:
            raise ValueError(f"SymbolicBuddy: unknown mutation {mutation!r}; "
                             f"known: {', '.join(MUTATIONS)}")
        self.npages = npages
        self.max_order = max_order
        self.mutation = mutation
        # levels[x]: the orders j < max_order with x aligned to 2**j (x may head a
        # level-j block); every j at which a block can start at slot x.
        self.levels = [[j for j in range(max_order) if x % (1 << j) == 0]
                       for x in range(npages)]

    # -- states ---------------------------------------------------------------

    def fresh_state(self, tag: str) -> SymState:
        """A state of fresh z3 constants named after `tag`."""
        n = self.npages
        return self._present(BuddyVars(
            free_head=tuple(z3.Bool(f"{tag}.free_head[{x}]") for x in range(n)),
            free_ord=tuple(z3.Int(f"{tag}.free_ord[{x}]") for x in range(n)),
            alloc_head=tuple(z3.Bool(f"{tag}.alloc_head[{x}]") for x in range(n)),
            alloc_ord=tuple(z3.Int(f"{tag}.alloc_ord[{x}]") for x in range(n)),
        ))

    def vars_of(self, s: SymState) -> BuddyVars:
        """The per-slot constants behind a state made by `fresh_state`."""
        n, vs = self.npages, s.variables
        if len(vs) != 4 * n:
            raise ValueError(f"SymbolicBuddy.vars_of: a state of {n} pages has {4 * n} "
                             f"variables, this one has {len(vs)}; make it with fresh_state")
        return BuddyVars(vs[:n], vs[n:2 * n], vs[2 * n:3 * n], vs[3 * n:])  # type: ignore[arg-type]

    def _present(self, v: BuddyVars) -> SymState:
        """The vocabulary's view of the per-slot variables `v`."""
        n = self.npages
        free = tuple((v.free_head[x], _block(x, v.free_ord[x])) for x in range(n))
        allocated = tuple((v.alloc_head[x], _block(x, v.alloc_ord[x])) for x in range(n))
        pages = tuple(
            (z3.BoolVal(True), SymRecord("Page", {
                "pfn": z3.IntVal(x),
                "buddy": v.free_head[x],
                "order": z3.If(v.free_head[x], v.free_ord[x], 0),
                "refcount": z3.If(v.alloc_head[x], 1, 0),
            }))
            for x in range(n)
        )
        free_pages = z3.Sum([z3.If(v.free_head[x], self._pow2(v.free_ord[x]), 0)
                             for x in range(n)])
        values = {
            "npages": z3.IntVal(self.npages),
            "max_order": z3.IntVal(self.max_order),
            "free": SymCollection("Block", free),
            "allocated": SymCollection("Block", allocated),
            "free_area": SymCollection("Block", free),  # one list entry per free block
            "free_pages": free_pages,
            "pages": SymCollection("Page", pages),
            # The sparse struct-page views: the same records, present only where
            # PageBuddy is set / _refcount is not zero.
            "buddy_pages": SymCollection(
                "Page", tuple((v.free_head[x], rec) for x, (_, rec) in enumerate(pages))
            ),
            "used_pages": SymCollection(
                "Page", tuple((v.alloc_head[x], rec) for x, (_, rec) in enumerate(pages))
            ),
        }
        return SymState(values, _flat(v))

    def _pow2(self, order: z3.ArithRef) -> z3.ArithRef:
        """2**order for an order in [0, max_order), as an If chain (no exponentiation);
        the shared `pow2` term, so the spec compiler's 2 ** order is the same term."""
        return pow2(order, self.max_order)

    def init(self, s: SymState) -> z3.BoolRef:
        """s is the boot state: every page free, in the largest aligned chunks."""
        return self.assign(s, boot_blocks(self.npages, self.max_order), ())

    def well_formed(self, s: SymState) -> z3.BoolRef:
        """Domain facts: every order is one of 0 .. max_order-1, and 0 on a non-head.

        Nothing about alignment, overlap or coalescing: those are the spec's to prove.
        """
        v = self.vars_of(s)
        facts = []
        for x in range(self.npages):
            for head, order in ((v.free_head[x], v.free_ord[x]),
                                (v.alloc_head[x], v.alloc_ord[x])):
                facts.append(z3.Or([order == j for j in range(self.max_order)]))
                facts.append(z3.Implies(z3.Not(head), order == 0))
        return z3.And(facts)

    def assign(self, s: SymState, free: Iterable[tuple[int, int]],
               allocated: Iterable[tuple[int, int]]) -> z3.BoolRef:
        """s holds exactly these free and allocated blocks ((pfn, order) pairs).

        False if a block has no slot (a pfn outside [0, npages)).
        """
        v = self.vars_of(s)
        fmap = {int(p): int(o) for p, o in free}
        amap = {int(p): int(o) for p, o in allocated}
        if any(not 0 <= p < self.npages for p in (*fmap, *amap)):
            return z3.BoolVal(False)
        return z3.And([
            z3.And(v.free_head[x] == (x in fmap), v.free_ord[x] == fmap.get(x, 0),
                   v.alloc_head[x] == (x in amap), v.alloc_ord[x] == amap.get(x, 0))
            for x in range(self.npages)
        ])

    def decode_state(self, model: z3.ModelRef, s: SymState) -> dict[str, list[tuple[int, int]]]:
        """The free and allocated blocks of s in `model`, as (pfn, order) lists by pfn."""
        v = self.vars_of(s)

        def blocks(heads: Sequence[z3.BoolRef], ords: Sequence[z3.ArithRef]):
            return [(x, model.eval(ords[x], model_completion=True).as_long())
                    for x in range(self.npages)
                    if z3.is_true(model.eval(heads[x], model_completion=True))]

        return {"free": blocks(v.free_head, v.free_ord),
                "allocated": blocks(v.alloc_head, v.alloc_ord)}

    # -- steps ----------------------------------------------------------------

    def fresh_step(self, tag: str) -> SymStep:
        """A step of fresh z3 constants: which operation, its arguments, its result."""
        sv = BuddyStepVars(
            is_alloc=z3.Bool(f"{tag}.is_alloc"),
            is_free=z3.Bool(f"{tag}.is_free"),
            alloc_order=z3.Int(f"{tag}.alloc.order"),
            alloc_none=z3.Bool(f"{tag}.alloc.none"),
            alloc_pfn=z3.Int(f"{tag}.alloc.result"),
            free_pfn=z3.Int(f"{tag}.free.pfn"),
            free_order=z3.Int(f"{tag}.free.order"),
            raised=z3.Bool(f"{tag}.raised"),
        )
        return SymStep(
            is_op={"alloc": sv.is_alloc, "free": sv.is_free},
            args={"alloc": {"order": sv.alloc_order},
                  "free": {"pfn": sv.free_pfn, "order": sv.free_order}},
            results={"alloc": SymOptional(sv.alloc_none, sv.alloc_pfn), "free": None},
            raised=sv.raised,
            variables=tuple(getattr(sv, f.name) for f in fields(sv)),
        )

    def step_vars(self, t: SymStep) -> BuddyStepVars:
        """The constants behind a step made by `fresh_step`."""
        return BuddyStepVars(*t.variables)  # type: ignore[arg-type]

    def arg_bounds(self, t: SymStep) -> z3.BoolRef:
        """Optional: every integer of step t within a finite range, for finite-domain solving.

        Arguments range over one representative of each class of bad values and every
        good one: orders over [-1, max_order], the pfn to free over [-1, npages]
        (every value outside behaves as these do: ValueError); alloc's result is in
        [0, npages) by trans already. With this and well_formed on every state, every
        Int is bounded, so an engine may use z3.SolverFor("QF_FD") (bit-blasting to
        SAT), about 5 to 7 times faster than the default solver on induction steps
        at 32 to 64 pages. Leave it out to let arguments range over all integers.
        """
        sv = self.step_vars(t)
        m, n = self.max_order, self.npages
        return z3.And(sv.alloc_order >= -1, sv.alloc_order <= m,
                      sv.free_order >= -1, sv.free_order <= m,
                      sv.free_pfn >= -1, sv.free_pfn <= n,
                      sv.alloc_pfn >= 0, sv.alloc_pfn < n)

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef:
        """Step t takes s to s2: exactly one operation ran, as the reference runs it.

        Each operation yields its side conditions and its `Effects`, gated by
        whether it ran and succeeded, so one set of per-slot equations (`_apply`)
        serves both, and a failed or None step falls out as "nothing changes".
        Arguments of the operation that did not run, and alloc's result when it
        raised or returned None, are pinned to 0 so that a model reads back one way.
        """
        sv = self.step_vars(t)
        v, v2 = self.vars_of(s), self.vars_of(s2)
        a = self._atoms(v)
        alloc_side, alloc = self._alloc(v, a, sv)
        free_side, free = self._free(v, a, sv)
        return z3.And(
            sv.is_alloc != sv.is_free,
            z3.Implies(sv.is_alloc, alloc_side),
            z3.Implies(sv.is_free, free_side),
            self._apply(v, a, alloc.merge(free), v2),
        )

    def _atoms(self, v: BuddyVars) -> OrderAtoms:
        """The atoms `order == j` of every slot of a state, made once per step."""
        m = self.max_order
        return OrderAtoms(free_is=[[o == j for j in range(m)] for o in v.free_ord],
                          alloc_is=[[o == j for j in range(m)] for o in v.alloc_ord])

    def decode_step(self, model: z3.ModelRef, t: SymStep) -> ConcreteStep:
        """The operation t performed in `model`, as a trace records it."""
        sv = self.step_vars(t)

        def num(term: z3.ArithRef) -> int:
            return model.eval(term, model_completion=True).as_long()

        def holds(term: z3.BoolRef) -> bool:
            return z3.is_true(model.eval(term, model_completion=True))

        raised = "ValueError" if holds(sv.raised) else None
        if holds(sv.is_alloc):
            result = None if raised or holds(sv.alloc_none) else num(sv.alloc_pfn)
            return ConcreteStep("alloc", (num(sv.alloc_order),), result, raised)
        return ConcreteStep("free", (num(sv.free_pfn), num(sv.free_order)), None, raised)

    # -- effects and the per-slot equations ---------------------------------------

    def _no_effects(self) -> Effects:
        n, m = self.npages, self.max_order
        return Effects(free_removed=[None] * n, free_new=[[None] * m for _ in range(n)],
                       alloc_removed=[None] * n, alloc_new=[[None] * m for _ in range(n)])

    def _apply(self, v: BuddyVars, a: OrderAtoms, e: Effects, v2: BuddyVars) -> z3.BoolRef:
        """s2 is s with the effects `e` applied, slot by slot.

        A block put at slot x (new[j]: of order j) replaces what was there; a
        removed block leaves x empty unless one is put there in the same step;
        anything else stays. Orders of empty slots are 0.
        """
        post: list[z3.BoolRef] = []
        for x in range(self.npages):
            post += self._slot(v.free_head[x], a.free_is[x], e.free_removed[x],
                               e.free_new[x], v2.free_head[x], v2.free_ord[x])
            post += self._slot(v.alloc_head[x], a.alloc_is[x], e.alloc_removed[x],
                               e.alloc_new[x], v2.alloc_head[x], v2.alloc_ord[x])
        return z3.And(post)

    def _slot(self, head: z3.BoolRef, order_is: Sequence[z3.BoolRef], removed: Term,
              new: Sequence[Term], head2: z3.BoolRef, order2: z3.ArithRef) -> list[z3.BoolRef]:
        """One slot's next head bit and order (the new[j] are exclusive)."""
        put = _or(new)
        stays = z3.And([head] + [z3.Not(t) for t in (removed, put) if t is not None])
        cases = [_or([new[j], z3.And(stays, order_is[j])]) for j in range(self.max_order)]
        cases[0] = z3.Or(_false(cases[0]), z3.Not(head2))
        return [head2 == _false(_or([put, stays]))] + [
            (order2 == j) == _false(case) for j, case in enumerate(cases)]

    def _within(self, pfn: z3.ArithRef) -> list[dict[int, z3.BoolRef]]:
        """within[j][b]: pfn lies in the level-j block that starts at slot b.

        Built level by level from the atoms `pfn == y`, each level's disjunctions
        made of the previous level's, so the whole table is O(npages) terms.
        """
        n = self.npages
        within = [{y: pfn == y for y in range(n)}]
        for j in range(1, self.max_order):
            half, lower = 1 << (j - 1), within[j - 1]
            within.append({b: z3.Or(lower[b], lower[b + half]) if b + half < n else lower[b]
                           for b in range(0, n, 1 << j)})
        return within

    def _climb(self, within: Sequence[Mapping[int, z3.BoolRef]], x: int,
               j: int) -> tuple[Term, Term]:
        """Where free()'s climb stands at level j, seen from slot x:
        (the climbing block of order j starts at x, x is its buddy at level j).

        Linux: the block is pfn's aligned level-j block, its buddy that block ^ 2**j
        (x is the buddy when pfn lies in x's sibling). "wrong_buddy": the block
        never moves from pfn (min(p, p + 2**j) is p) and its buddy is p + 2**j.
        """
        if self.mutation == "wrong_buddy":
            b = x - (1 << j)
            return within[0][x], within[0][b] if b >= 0 else None
        if x not in within[j]:
            return None, None  # x is not aligned to 2**j
        return within[j][x], within[j].get(x ^ (1 << j))

    # -- alloc ----------------------------------------------------------------

    def _alloc(self, v: BuddyVars, a: OrderAtoms,
               sv: BuddyStepVars) -> tuple[z3.BoolRef, Effects]:
        """alloc(order): raises ValueError, returns None, or returns r and allocates it.

        None exactly when no free block of order >= order exists. Otherwise r is an
        aligned block of that order inside a free block F (`_take_block`).
        """
        m, r = self.max_order, sv.alloc_pfn
        order_is = [sv.alloc_order == j for j in range(m)]
        at_most = _prefix_or(order_is)  # at_most[k]: order <= k
        valid = at_most[m - 1]
        avail = z3.Or([z3.And(v.free_head[x], a.free_is[x][k], at_most[k])
                       for x in range(self.npages) for k in range(m)])
        go = z3.And(sv.is_alloc, valid, avail)
        side, effects = self._take_block(v, a, sv, order_is, at_most, go)
        return z3.And(
            sv.free_pfn == 0,
            sv.free_order == 0,
            sv.raised == z3.Not(valid),
            sv.alloc_none == z3.And(valid, z3.Not(avail)),
            z3.If(go, side, r == 0),
        ), effects

    def _take_block(self, v: BuddyVars, a: OrderAtoms, sv: BuddyStepVars,
                    order_is: Sequence[z3.BoolRef], at_most: Sequence[z3.BoolRef],
                    go: z3.BoolRef) -> tuple[z3.BoolRef, Effects]:
        """r is an aligned block of the asked order inside a free block F; when `go`,
        it becomes allocated, F leaves the free list, and the buddies of r's
        enclosing blocks at levels [order, F's order) become free (`expand`,
        `break_down_buddy_pages`).

        F is a free block of order k >= order, aligned to 2**k, that contains r. A
        free block not aligned to its size (never reachable) is never taken; where
        several contain r (never reachable) the lowest-pfn one is F, so s2 is a
        function of s, order and r. Only the "wrong_buddy" mutant makes unaligned
        free blocks (and shows its bug the step it makes one); an alloc that only
        such a block could serve has no successor.
        """
        n, m, r = self.npages, self.max_order, sv.alloc_pfn
        within = self._within(r)
        # r is a slot aligned to 2**order: order <= the trailing zeros of r
        aligned = z3.Or([z3.And(within[0][y], at_most[self.levels[y][-1]]) for y in range(n)])
        contains = [z3.Or([z3.And(v.free_head[x], a.free_is[x][k], at_most[k], within[k][x])
                           for k in self.levels[x]])
                    for x in range(n)]
        chosen, none_before = [], z3.BoolVal(True)  # chosen[x]: x heads F
        for x in range(n):
            chosen.append(z3.And(none_before, contains[x]))
            none_before = z3.And(none_before, z3.Not(contains[x]))
        top = [z3.Or([z3.And(chosen[x], a.free_is[x][k]) for x in range(0, n, 1 << k)])
               for k in range(m)]  # top[k]: F has order k
        above = _suffix_or(top)  # above[k]: F's order >= k
        exact = z3.Or([z3.And(top[k], order_is[k]) for k in range(m)])  # F's order is order
        e = self._no_effects()
        for x in range(n):
            half = [None if h is None else z3.And(go, h)
                    for h in self._split_half(x, at_most, above, within)]
            e.free_new[x] = half
            e.free_removed[x] = z3.And(go, chosen[x])
            if self.mutation == "double_alloc":  # an exact fit stays on the free list
                e.free_removed[x] = z3.And(e.free_removed[x], z3.Not(exact))
            mine = z3.And(go, within[0][x])
            e.alloc_new[x] = [z3.And(mine, order_is[j]) for j in range(m)]
        return z3.And(aligned, z3.Not(none_before)), e

    def _split_half(self, x: int, at_most: Sequence[z3.BoolRef], above: Sequence[z3.BoolRef],
                    within: Sequence[Mapping[int, z3.BoolRef]]) -> list[Term]:
        """half[j]: `expand` puts a free block of order j at slot x.

        At each level j in [order, F's order) the buddy of r's level-j block is
        freed; slot x is it when r lies in x's sibling at level j. No two levels
        pick the same slot (r would lie both inside and outside x's level-j' block).
        """
        m = self.max_order
        hit: list[Term] = [None] * m
        for j in self.levels[x]:
            if j >= m - 1:
                break  # a split half is smaller than F, so below the top order
            b = x ^ (1 << j)
            if b >= self.npages or (self.mutation == "lost_upper_half" and x > b):
                continue  # outside memory, or an upper half that is never put back
            # order <= j < F's order, and r in the level-j block at b
            hit[j] = z3.And(at_most[j], above[j + 1], within[j][b])
        return hit

    # -- free -----------------------------------------------------------------

    def _free(self, v: BuddyVars, a: OrderAtoms,
              sv: BuddyStepVars) -> tuple[z3.BoolRef, Effects]:
        """free(pfn, order): ValueError unless (pfn, order) is an allocated block."""
        pfn, order = sv.free_pfn, sv.free_order
        within = self._within(pfn)
        order_is = [order == j for j in range(self.max_order)]
        valid = z3.Or([z3.And(within[0][x], v.alloc_head[x],
                              z3.Or([z3.And(a.alloc_is[x][j], order_is[j])
                                     for j in range(self.max_order)]))
                       for x in range(self.npages)])
        side = z3.And(sv.alloc_order == 0, z3.Not(sv.alloc_none), sv.alloc_pfn == 0,
                      sv.raised == z3.Not(valid))
        go = z3.And(sv.is_free, valid)
        return side, self._free_one_page(v, a, order_is, within, go)

    def _free_one_page(self, v: BuddyVars, a: OrderAtoms, order_is: Sequence[z3.BoolRef],
                       within: Sequence[Mapping[int, z3.BoolRef]], go: z3.BoolRef) -> Effects:
        """`__free_one_page`: when `go`, free the block (pfn, order), merging upwards.

        merged[j]: pfn's level-j block merged with its buddy: the climb reached
        level j (j == order, or merged at j - 1), j is below the top order, and the
        buddy is a free block of order exactly j inside memory. final[j]: the climb
        stopped at level j. An unaligned pfn (a broken state) frees the aligned
        block that contains it. Under "wrong_buddy" the climb stays at pfn and
        looks right after itself (`_climb`).
        """
        n, m = self.npages, self.max_order
        climb = [[self._climb(within, x, j) for j in range(m)] for x in range(n)]
        merged: list[Term] = []
        final: list[z3.BoolRef] = []
        for j in range(m):
            reached = _false(_or([order_is[j], merged[j - 1] if j else None]))
            # the buddy is a free block of order exactly j; only slots of [0, npages)
            # exist, so a buddy outside memory is never free (page_is_buddy's zone check)
            buddy_free = _or([None if climb[x][j][1] is None else
                              z3.And(climb[x][j][1], v.free_head[x], a.free_is[x][j])
                              for x in range(n)])
            if j < m - 1 and self.mutation != "no_coalesce" and buddy_free is not None:
                merged.append(z3.And(go, reached, buddy_free))
            else:
                merged.append(None)
            final.append(z3.And([go, reached] + ([z3.Not(merged[j])] if merged[j] is not None
                                                 else [])))
        e = self._no_effects()
        for x in range(n):
            removed: list[Term] = []
            for j in range(m):
                starts, is_buddy = climb[x][j]
                if starts is not None:
                    e.free_new[x][j] = z3.And(final[j], starts)
                if merged[j] is not None and is_buddy is not None:
                    removed.append(z3.And(merged[j], is_buddy))
            e.free_removed[x] = _or(removed)
            e.alloc_removed[x] = z3.And(go, within[0][x])
        return e

def _or_each(a: Sequence[Term], b: Sequence[Term]) -> list[Term]:
    """[Or(a[i], b[i])] with None as False."""
    return [_or([x, y]) for x, y in zip(a, b, strict=True)]


def _or(terms: Iterable[Term]) -> Term:
    """The disjunction of the terms that are not None; None if there are none."""
    live = [t for t in terms if t is not None]
    return None if not live else live[0] if len(live) == 1 else z3.Or(live)


def _false(term: Term) -> z3.BoolRef:
    """The term, with None as the constant False."""
    return z3.BoolVal(False) if term is None else term


def _prefix_or(terms: Sequence[z3.BoolRef]) -> list[z3.BoolRef]:
    """out[k] = Or(terms[0..k])."""
    out, acc = [], z3.BoolVal(False)
    for term in terms:
        acc = z3.Or(acc, term) if out else term
        out.append(acc)
    return out


def _suffix_or(terms: Sequence[z3.BoolRef]) -> list[z3.BoolRef]:
    """out[k] = Or(terms[k..]), and out[len(terms)] = False."""
    return [*reversed(_prefix_or(list(reversed(terms)))), z3.BoolVal(False)]


def _block(pfn: int, order: z3.ArithRef) -> SymRecord:
    return SymRecord("Block", {"pfn": z3.IntVal(pfn), "order": order})


def _flat(v: BuddyVars) -> tuple[z3.ExprRef, ...]:
    return v.free_head + v.free_ord + v.alloc_head + v.alloc_ord
