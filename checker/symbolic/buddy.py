"""The buddy allocator as a Z3 transition system (see `base.py` for the protocol).

One state holds, for every pfn `x` of `[0, npages)` (a concrete slot index):

    free_head[x]   x starts a free block (PageBuddy on its head page)
    free_ord[x]    that block's order (0 when x is no free head)
    alloc_head[x]  x starts an allocated block (the page alloc() returned)
    alloc_ord[x]   that block's order (0 when x is no allocated head)

Free and allocated heads are separate bits, so a state where one pfn heads both a
free and an allocated block can be written down: "free and allocated blocks are
disjoint" is then an invariant the engines must prove, not a fact of the encoding,
and seeded bugs that break it (a page allocated twice) can be found.

Every term a spec sees is built from these with integer arithmetic on concrete
pfns: a block that starts at slot x is `Block{pfn: IntVal(x), order: free_ord[x]}`,
guarded by `free_head[x]`. All pfn arithmetic the transitions need (buddies,
alignment, "which block contains r") is turned into interval tests with concrete
bounds, e.g. "x is the level-j buddy of the block containing r" is
`x ^ 2**j <= r < (x ^ 2**j) + 2**j`, so the solver sees linear integer arithmetic
and no bit-vectors.

The transitions are exactly those of `mmcheck.model.buddy.BuddyAllocator`, except
that alloc's choice is free: alloc may return any block of the asked order aligned
inside any free block large enough (the checker follows a submission's choice;
the reference's `take_block` accepts the same). Effects that would land outside
`[0, npages)` (only a broken state or a seeded bug can cause them) have no slot
and are dropped.

Mutations seed the bugs of `examples/buddy/buggy/`, so tests can prove Z3 finds
them (see `MUTATIONS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields

import z3
from mmcheck.checker.symbolic.base import (
    ConcreteStep,
    SymCollection,
    SymOptional,
    SymRecord,
    SymState,
    SymStep,
)
from mmcheck.model.buddy import VOCABULARY
from mmcheck.model.vocabulary import Vocabulary

# The seeded bugs, each as a student writes it (examples/buddy/buggy/).
MUTATIONS: Mapping[str, str] = {
    "no_coalesce": "free() puts the block back as it is and never merges with its buddy",
    "wrong_buddy": (
        "the buddy of the order-j block at p is taken at p + 2**j instead of p ^ 2**j, "
        "both when free() looks for a buddy to merge with and when alloc() puts the "
        "halves of a split back; the merged block is still p & ~2**j"
    ),
    "lost_upper_half": (
        "alloc()'s split (Linux's expand) forgets to put the upper halves back: of the "
        "buddies it should free, those above the returned block are lost (with Linux's "
        "choice of the lowest block, all of them)"
    ),
    "double_alloc": (
        "alloc() forgets to take the block it splits off the free list (a missing "
        "list_del): the whole block stays free, the split halves are put back too "
        "(where a free block does not already start), and the returned block is "
        "allocated, so the same pages can be handed out again"
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
    alloc_pfn: z3.ArithRef  # alloc's result r, when not none
    free_pfn: z3.ArithRef
    free_order: z3.ArithRef
    raised: z3.BoolRef


def boot_blocks(npages: int, max_order: int) -> list[tuple[int, int]]:
    """The free blocks at boot: the largest aligned chunks, order below max_order."""
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
    constants, in the order of `BuddyVars` (free_head, free_ord, alloc_head,
    alloc_ord), which is how `vars_of` finds them again. Likewise for steps.
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
        # levels[x]: the orders j for which slot x is aligned to 2**j (x heads a level-j block)
        self._levels = [
            [j for j in range(max_order) if x % (1 << j) == 0] for x in range(npages)
        ]

    # -- states ---------------------------------------------------------------

    def fresh_state(self, tag: str) -> SymState:
        """A state of fresh z3 constants named after `tag`."""
        n = self.npages
        v = BuddyVars(
            free_head=tuple(z3.Bool(f"{tag}.free_head[{x}]") for x in range(n)),
            free_ord=tuple(z3.Int(f"{tag}.free_ord[{x}]") for x in range(n)),
            alloc_head=tuple(z3.Bool(f"{tag}.alloc_head[{x}]") for x in range(n)),
            alloc_ord=tuple(z3.Int(f"{tag}.alloc_ord[{x}]") for x in range(n)),
        )
        return self._present(v)

    def vars_of(self, s: SymState) -> BuddyVars:
        """The per-slot constants behind a state made by `fresh_state`."""
        n, vs = self.npages, s.variables
        if len(vs) != 4 * n:
            raise ValueError(f"SymbolicBuddy.vars_of: a state of {self.npages} pages has "
                             f"{4 * n} variables, this one has {len(vs)}; make states "
                             f"with fresh_state")
        return BuddyVars(vs[:n], vs[n:2 * n], vs[2 * n:3 * n], vs[3 * n:])  # type: ignore[arg-type]

    def _present(self, v: BuddyVars) -> SymState:
        """The vocabulary's view of per-slot variables `v`."""
        n = self.npages
        free_slots = tuple(
            (v.free_head[x], _block(z3.IntVal(x), v.free_ord[x])) for x in range(n)
        )
        alloc_slots = tuple(
            (v.alloc_head[x], _block(z3.IntVal(x), v.alloc_ord[x])) for x in range(n)
        )
        pages = tuple(
            (
                z3.BoolVal(True),
                SymRecord(
                    "Page",
                    {
                        "pfn": z3.IntVal(x),
                        "buddy": v.free_head[x],
                        "order": z3.If(v.free_head[x], v.free_ord[x], 0),
                        "refcount": z3.If(v.alloc_head[x], 1, 0),
                    },
                ),
            )
            for x in range(n)
        )
        values: dict[str, object] = {
            "npages": z3.IntVal(self.npages),
            "max_order": z3.IntVal(self.max_order),
            "free": SymCollection("Block", free_slots),
            "allocated": SymCollection("Block", alloc_slots),
            "free_area": SymCollection("Block", free_slots),
            "free_pages": z3.Sum(
                [z3.If(v.free_head[x], self._pow2(v.free_ord[x]), 0) for x in range(n)]
            ),
            "pages": SymCollection("Page", pages),
        }
        return SymState(values, _flat(v))

    def _pow2(self, order: z3.ArithRef) -> z3.ArithRef:
        """2**order for an order in [0, max_order), as an If chain (no exponentiation)."""
        term: z3.ArithRef = z3.IntVal(1 << (self.max_order - 1))
        for j in range(self.max_order - 2, -1, -1):
            term = z3.If(order == j, 1 << j, term)
        return term

    def init(self, s: SymState) -> z3.BoolRef:
        """s is the boot state: every page free, in the largest aligned chunks."""
        v = self.vars_of(s)
        boot = dict(boot_blocks(self.npages, self.max_order))
        return z3.And(
            [
                z3.And(
                    v.free_head[x] == (x in boot),
                    v.free_ord[x] == boot.get(x, 0),
                    z3.Not(v.alloc_head[x]),
                    v.alloc_ord[x] == 0,
                )
                for x in range(self.npages)
            ]
        )

    def well_formed(self, s: SymState) -> z3.BoolRef:
        """Domain facts: orders lie in [0, max_order) and are 0 on non-head slots.

        Nothing about alignment, overlap or coalescing: those are the spec's to prove.
        """
        v = self.vars_of(s)
        facts = []
        for x in range(self.npages):
            for head, order in ((v.free_head[x], v.free_ord[x]),
                                (v.alloc_head[x], v.alloc_ord[x])):
                facts.append(z3.And(order >= 0, order < self.max_order))
                facts.append(z3.Implies(z3.Not(head), order == 0))
        return z3.And(facts)

    def equals(self, s: SymState, s2: SymState) -> z3.BoolRef:
        """s and s2 are the same state (every slot variable equal)."""
        a, b = self.vars_of(s), self.vars_of(s2)
        return z3.And([x == y for x, y in zip(_flat(a), _flat(b), strict=True)])

    def assign(self, s: SymState, free: Iterable[tuple[int, int]],
               allocated: Iterable[tuple[int, int]]) -> z3.BoolRef:
        """s holds exactly the given free and allocated blocks ((pfn, order) pairs).

        Blocks whose pfn has no slot make the formula false.
        """
        v = self.vars_of(s)
        fmap = {int(p): int(o) for p, o in free}
        amap = {int(p): int(o) for p, o in allocated}
        if any(not 0 <= p < self.npages for p in (*fmap, *amap)):
            return z3.BoolVal(False)
        return z3.And(
            [
                z3.And(
                    v.free_head[x] == (x in fmap),
                    v.free_ord[x] == fmap.get(x, 0),
                    v.alloc_head[x] == (x in amap),
                    v.alloc_ord[x] == amap.get(x, 0),
                )
                for x in range(self.npages)
            ]
        )

    def decode_state(self, model: z3.ModelRef, s: SymState) -> dict[str, list[tuple[int, int]]]:
        """The free and allocated blocks of s in `model`, as sorted (pfn, order) lists."""
        v = self.vars_of(s)

        def blocks(heads: tuple[z3.BoolRef, ...], ords: tuple[z3.ArithRef, ...]):
            return [
                (x, model.eval(ords[x], model_completion=True).as_long())
                for x in range(self.npages)
                if z3.is_true(model.eval(heads[x], model_completion=True))
            ]

        return {
            "free": blocks(v.free_head, v.free_ord),
            "allocated": blocks(v.alloc_head, v.alloc_ord),
        }

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
        t = SymStep(
            is_op={"alloc": sv.is_alloc, "free": sv.is_free},
            args={
                "alloc": {"order": sv.alloc_order},
                "free": {"pfn": sv.free_pfn, "order": sv.free_order},
            },
            results={"alloc": SymOptional(sv.alloc_none, sv.alloc_pfn), "free": None},
            raised=sv.raised,
            variables=_step_tuple(sv),
        )
        return t

    def step_vars(self, t: SymStep) -> BuddyStepVars:
        """The constants behind a step made by `fresh_step`."""
        return BuddyStepVars(*t.variables)  # type: ignore[arg-type]

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef:
        """Step t takes s to s2: exactly one operation ran, as the reference runs it.

        Arguments of the operation that did not run, and alloc's result when it
        raised or returned None, are pinned to 0 so that a model reads back one way.
        """
        sv = self.step_vars(t)
        v, v2 = self.vars_of(s), self.vars_of(s2)
        return z3.And(
            sv.is_alloc != sv.is_free,
            z3.If(sv.is_alloc, self._alloc(v, sv, v2), self._free(v, sv, v2)),
        )

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

    # -- alloc ----------------------------------------------------------------

    def _alloc(self, v: BuddyVars, sv: BuddyStepVars, v2: BuddyVars) -> z3.BoolRef:
        """alloc(order) returning r, or None, or raising ValueError."""
        order, r = sv.alloc_order, sv.alloc_pfn
        valid = z3.And(order >= 0, order < self.max_order)
        avail = z3.Or([z3.And(v.free_head[x], v.free_ord[x] >= order)
                       for x in range(self.npages)])
        unchanged = z3.And(_same(v, v2), r == 0)
        return z3.And(
            sv.free_pfn == 0,
            sv.free_order == 0,
            sv.raised == z3.Not(valid),
            z3.If(
                valid,
                z3.And(
                    sv.alloc_none == z3.Not(avail),
                    z3.If(avail, self._take_block(v, order, r, v2), unchanged),
                ),
                z3.And(z3.Not(sv.alloc_none), unchanged),
            ),
        )

    def _take_block(self, v: BuddyVars, order: z3.ArithRef, r: z3.ArithRef,
                    v2: BuddyVars) -> z3.BoolRef:
        """r is an aligned order-`order` block inside a free block F; s2 has it allocated.

        F is the free block of order >= `order` containing [r, r + 2**order); in a
        state where several overlap (never reachable) the lowest-pfn one is taken,
        so the successor is a function of r. F leaves the free list and the buddies
        of r's enclosing blocks at levels [order, F's order) are put back (`expand`).
        """
        n, size = self.npages, self._pow2(order)
        contains = [self._contains(v, x, order, size, r) for x in range(n)]
        chosen: list[z3.BoolRef] = []  # chosen[x]: x heads F (the first slot containing r)
        none_before: z3.BoolRef = z3.BoolVal(True)
        for x in range(n):
            chosen.append(z3.And(none_before, contains[x]))
            none_before = z3.And(none_before, z3.Not(contains[x]))
        top = z3.IntVal(0)  # F's order
        for x in range(n):
            top = z3.If(chosen[x], v.free_ord[x], top)
        aligned = z3.Or([z3.And(order == j, r % (1 << j) == 0) for j in range(self.max_order)])
        post = []
        for x in range(n):
            split, split_ord = self._split_half(x, order, top, r)
            if self.mutation == "double_alloc":  # F stays; halves go where no block starts
                fh2 = z3.Or(v.free_head[x], split)
                fo2 = z3.If(v.free_head[x], v.free_ord[x], z3.If(split, split_ord, 0))
            else:
                fh2 = z3.Or(z3.And(v.free_head[x], z3.Not(chosen[x])), split)
                fo2 = z3.If(split, split_ord, z3.If(fh2, v.free_ord[x], 0))
            post += [
                v2.free_head[x] == fh2,
                v2.free_ord[x] == fo2,
                v2.alloc_head[x] == z3.Or(v.alloc_head[x], r == x),
                v2.alloc_ord[x] == z3.If(r == x, order, v.alloc_ord[x]),
            ]
        return z3.And(aligned, z3.Not(none_before), *post)

    def _contains(self, v: BuddyVars, x: int, order: z3.ArithRef, size: z3.ArithRef,
                  r: z3.ArithRef) -> z3.BoolRef:
        """x heads a free block of order >= `order` that contains [r, r + size)."""
        return z3.And(
            v.free_head[x],
            v.free_ord[x] >= order,
            x <= r,
            z3.Or([z3.And(v.free_ord[x] == k, r + size <= x + (1 << k))
                   for k in range(self.max_order)]),
        )

    def _split_half(self, x: int, order: z3.ArithRef, top: z3.ArithRef,
                    r: z3.ArithRef) -> tuple[z3.BoolRef, z3.ArithRef]:
        """Whether `expand` puts a free block at slot x, and its order.

        Splitting F (order `top`) down to r's block of order `order` frees, at each
        level j in [order, top), the buddy of the level-j block containing r. Slot x
        is that buddy iff x is aligned to 2**j and r lies in x's sibling at level j,
        i.e. in [x ^ 2**j, (x ^ 2**j) + 2**j). At most one level j can match.
        """
        hits: list[tuple[int, z3.BoolRef]] = []
        for j in self._levels[x]:
            if j >= self.max_order - 1:
                break  # a split half has order below F's, hence below max_order - 1
            if self.mutation == "wrong_buddy":
                lo = x - (1 << j)  # x == base + 2**j, base = r's level-j block
            else:
                lo = x ^ (1 << j)
            if self.mutation == "lost_upper_half" and x > lo:
                continue  # the upper half (above r's block) is never put back
            if lo < 0:
                continue
            hits.append((j, z3.And(order <= j, top > j, lo <= r, r < lo + (1 << j))))
        split = z3.Or([h for _, h in hits]) if hits else z3.BoolVal(False)
        split_ord: z3.ArithRef = z3.IntVal(0)
        for j, h in hits:
            split_ord = z3.If(h, j, split_ord)
        return split, split_ord

    # -- free -----------------------------------------------------------------

    def _free(self, v: BuddyVars, sv: BuddyStepVars, v2: BuddyVars) -> z3.BoolRef:
        """free(pfn, order): ValueError unless (pfn, order) is an allocated block."""
        pfn, order = sv.free_pfn, sv.free_order
        valid = z3.Or([z3.And(pfn == x, v.alloc_head[x], v.alloc_ord[x] == order)
                       for x in range(self.npages)])
        return z3.And(
            sv.alloc_order == 0,
            z3.Not(sv.alloc_none),
            sv.alloc_pfn == 0,
            sv.raised == z3.Not(valid),
            z3.If(valid, self._free_one_page(v, pfn, order, v2), _same(v, v2)),
        )

    def _free_one_page(self, v: BuddyVars, pfn: z3.ArithRef, order: z3.ArithRef,
                       v2: BuddyVars) -> z3.BoolRef:
        """`__free_one_page`: free the allocated block (pfn, order), merging upwards.

        merged[j]: the level-j block containing pfn merged with its buddy. It needs
        the climb to have reached level j (j == order, or merged at j - 1), j below
        max_order - 1, and the buddy to be a free block of order exactly j. The
        blocks are aligned in every reachable state; an unaligned pfn (a broken
        state) is treated as the aligned block containing it.
        """
        n, top_level = self.npages, self.max_order - 1
        merged: list[z3.BoolRef] = []
        for j in range(top_level):
            reached = order == j if j == 0 else z3.Or(order == j, merged[j - 1])
            if self.mutation == "no_coalesce":
                merged.append(z3.BoolVal(False))
            else:
                merged.append(z3.And(reached, self._buddy_free(v, pfn, j)))
        final = order + z3.Sum([z3.If(m, 1, 0) for m in merged]) if merged else order
        post = []
        for x in range(n):
            new_head = z3.Or([z3.And(final == j, x <= pfn, pfn < x + (1 << j))
                              for j in self._levels[x]])
            removed = z3.Or([z3.And(merged[j], self._is_buddy(x, j, pfn))
                             for j in self._levels[x] if j < top_level])
            fh2 = z3.Or(new_head, z3.And(v.free_head[x], z3.Not(removed)))
            post += [
                v2.free_head[x] == fh2,
                v2.free_ord[x] == z3.If(new_head, final, z3.If(fh2, v.free_ord[x], 0)),
                v2.alloc_head[x] == z3.And(v.alloc_head[x], pfn != x),
                v2.alloc_ord[x] == z3.If(pfn == x, 0, v.alloc_ord[x]),
            ]
        return z3.And(post)

    def _is_buddy(self, x: int, j: int, pfn: z3.ArithRef) -> z3.BoolRef:
        """Slot x (aligned to 2**j) is what free() takes as the level-j buddy of pfn."""
        if self.mutation == "wrong_buddy":  # x == base + 2**j, base = pfn's level-j block
            lo = x - (1 << j)
        else:  # x == base ^ 2**j: pfn lies in x's sibling
            lo = x ^ (1 << j)
        if lo < 0:
            return z3.BoolVal(False)
        return z3.And(lo <= pfn, pfn < lo + (1 << j))

    def _buddy_free(self, v: BuddyVars, pfn: z3.ArithRef, j: int) -> z3.BoolRef:
        """The level-j buddy of pfn's block is a free block of order exactly j.

        Only slots of [0, npages) exist, so a buddy outside memory is never free.
        """
        return z3.Or(
            [
                z3.And(self._is_buddy(x, j, pfn), v.free_head[x], v.free_ord[x] == j)
                for x in range(self.npages)
                if x % (1 << j) == 0
            ]
        )


def _step_tuple(sv: BuddyStepVars) -> tuple[z3.ExprRef, ...]:
    """The step's constants in field order (dataclasses.astuple would copy z3 terms)."""
    return tuple(getattr(sv, f.name) for f in fields(sv))


def _block(pfn: z3.ArithRef, order: z3.ArithRef) -> SymRecord:
    return SymRecord("Block", {"pfn": pfn, "order": order})


def _flat(v: BuddyVars) -> tuple[z3.ExprRef, ...]:
    return v.free_head + v.free_ord + v.alloc_head + v.alloc_ord


def _same(v: BuddyVars, v2: BuddyVars) -> z3.BoolRef:
    """v2 is v: the operation left the state unchanged."""
    return z3.And([a == b for a, b in zip(_flat(v), _flat(v2), strict=True)])
