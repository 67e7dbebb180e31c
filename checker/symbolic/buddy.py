"""The buddy allocator as a Z3 transition system: a bit per block slot (see `base.py`).

The memory size fixes a finite universe: the block slots (j, i), one per order
j < max_order and index i with the block [i * 2**j, (i + 1) * 2**j) inside
[0, npages). One state holds two bits per slot:

    free[j][i]    the slot is a free block (PageBuddy on its head, private = j)
    alloc[j][i]   the slot is an allocated block (alloc() returned i * 2**j)

About 2 * npages slots, so 4 * npages Booleans a state and no integers. The
terms a spec sees are constants guarded by the bits: `free` is the collection
of `Block{pfn: i * 2**j, order: j}` guarded by free[j][i]. Alignment, orders
and "inside memory" of a slot are therefore known when the spec is compiled
(the compiler folds them away, `z3compile.py`), two slots overlap only if one is
an ancestor of the other, and the spec's no-overlap and cover become O(slots)
clauses over shared per-subtree terms. Free and allocated bits are separate, so
a state where one page is in two blocks can be written down: that the blocks
are disjoint is an invariant the engines prove, not a fact of the encoding.

Operations are relations over the bits with per-subtree shared terms:

    alloc(order)  one-hot choice of the slot to hand out (any slot of that order
                  inside a free block: the checker follows a submission's choice,
                  and the reference's `take_block` accepts the same), the free
                  block above it leaves its list, and `expand` frees the sibling
                  of every node between them;
    free(pfn, order)  the climb of `__free_one_page`, level by level, as terms
                  "the merged block is at slot (j, i)".

Integers appear only as a step's arguments and alloc's result, each confined
to a finite range (orders -1 .. max_order, pfns -1 .. npages: one representative
of each class of bad values, every other value fails the same way), so every
query is finite-domain.

Blocks off the slot grid (unaligned, or reaching past memory) cannot be
represented; the one seeded bug that makes them ("wrong_buddy") gets one extra
"stray" block per state, with integer pfn and order, which its first wrong
merge fills (see `_free`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import z3
from mmcheck.checker.symbolic.base import (
    ConcreteStep,
    SymCollection,
    SymOptional,
    SymRecord,
    SymState,
    SymStep,
    decode_step,
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

Bits = tuple[tuple[z3.BoolRef, ...], ...]  # bits[j][i], one row per order


@dataclass(frozen=True)
class Stray:
    """The one off-grid free block of the "wrong_buddy" mutant: present, pfn, order."""

    present: z3.BoolRef
    pfn: z3.ArithRef
    order: z3.ArithRef


@dataclass(frozen=True)
class BuddyVars:
    """The z3 constants of one state: free[j][i] and alloc[j][i] per slot."""

    free: Bits
    alloc: Bits
    stray: Stray | None = None


@dataclass(frozen=True)
class BuddyStepVars:
    """The z3 constants of one step (the first fields of a step's `variables`)."""

    is_alloc: z3.BoolRef
    is_free: z3.BoolRef
    alloc_order: z3.ArithRef
    alloc_none: z3.BoolRef
    alloc_pfn: z3.ArithRef  # alloc's result r, when it neither raised nor returned None
    free_pfn: z3.ArithRef
    free_order: z3.ArithRef
    raised: z3.BoolRef


@dataclass
class Effects:
    """What one step does to the bits: *_off[j][i] clears a bit, *_on[j][i] sets it
    (on wins). None stands for False, which keeps the formulas small."""

    free_off: list[list[z3.BoolRef | None]]
    free_on: list[list[z3.BoolRef | None]]
    alloc_off: list[list[z3.BoolRef | None]]
    alloc_on: list[list[z3.BoolRef | None]]


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

    A state's `variables` are its free bits row by row, then its alloc bits (then
    the stray block's three constants under "wrong_buddy"); a step's are those of
    `BuddyStepVars` in field order, then alloc's one-hot choice bits.
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
        # width[j]: how many level-j slots fit inside memory
        self.width = [npages >> j for j in range(max_order)]
        self.nslots = sum(self.width)
        self._steps: dict[tuple[int, int], tuple[SymState, SymStep, Any]] = {}

    # -- states ---------------------------------------------------------------

    def fresh_state(self, tag: str) -> SymState:
        """A state of fresh z3 constants named after `tag`."""
        def bits(kind: str) -> Bits:
            return tuple(tuple(z3.Bool(f"{tag}.{kind}[{j}][{i}]") for i in range(w))
                         for j, w in enumerate(self.width))
        stray = None
        if self.mutation == "wrong_buddy":
            stray = Stray(z3.Bool(f"{tag}.stray"), z3.Int(f"{tag}.stray.pfn"),
                          z3.Int(f"{tag}.stray.order"))
        return self._present(BuddyVars(bits("free"), bits("alloc"), stray))

    def vars_of(self, s: SymState) -> BuddyVars:
        """The bits behind a state made by `fresh_state`."""
        vs, n = s.variables, self.nslots
        extra = 3 if self.mutation == "wrong_buddy" else 0
        if len(vs) != 2 * n + extra:
            raise ValueError(f"SymbolicBuddy.vars_of: a state of {self.npages} pages has "
                             f"{2 * n + extra} variables, this one has {len(vs)}; make it "
                             f"with fresh_state")
        return BuddyVars(self._rows(vs[:n]), self._rows(vs[n:2 * n]),
                         Stray(*vs[2 * n:]) if extra else None)  # type: ignore[arg-type]

    def _rows(self, flat: Sequence[z3.ExprRef]) -> Bits:
        rows, at = [], 0
        for w in self.width:
            rows.append(tuple(flat[at:at + w]))
            at += w
        return tuple(rows)  # type: ignore[return-value]

    def slots(self) -> Iterable[tuple[int, int]]:
        """Every slot (j, i), order by order."""
        return ((j, i) for j, w in enumerate(self.width) for i in range(w))

    def tree_order(self) -> list[tuple[int, int]]:
        """Every slot (j, i), each followed by the slots below it (depth first, by pfn).
        The collections list their slots so: a sum over them then adds a subtree's
        terms together, which measured 15% less solver work on the accounting steps at
        128 pages than order by order (docs/benchmarks.md)."""
        out: list[tuple[int, int]] = []

        def visit(j: int, i: int) -> None:
            out.append((j, i))
            if j:
                for c in (2 * i, 2 * i + 1):
                    if c < self.width[j - 1]:
                        visit(j - 1, c)
        for j, i in sorted(((j, i) for j, i in self.slots()
                            if j + 1 >= self.max_order or (i >> 1) >= self.width[j + 1]),
                           key=lambda s: s[1] << s[0]):
            visit(j, i)
        return out

    def _present(self, v: BuddyVars) -> SymState:
        """The vocabulary's view of the bits `v` (slots listed subtree by subtree)."""
        order = self.tree_order()
        free = [(v.free[j][i], _block(i << j, j)) for j, i in order]
        if v.stray is not None:
            free.append((v.stray.present, SymRecord("Block", {"pfn": v.stray.pfn,
                                                              "order": v.stray.order})))
        allocated = [(v.alloc[j][i], _block(i << j, j)) for j, i in order]
        pages = [(z3.BoolVal(True), self._page(v, x)) for x in range(self.npages)]
        values = {
            "npages": z3.IntVal(self.npages),
            "max_order": z3.IntVal(self.max_order),
            "free": SymCollection("Block", tuple(free)),
            "allocated": SymCollection("Block", tuple(allocated)),
            "free_area": SymCollection("Block", tuple(free)),  # one entry per free block
            # the same sum the spec compiler builds for sum(b in free: size(b))
            "free_pages": _sum_sizes(free, self.max_order),
            "pages": SymCollection("Page", tuple(pages)),
            # One struct page per head: PageBuddy on a free block's head page, a
            # reference on an allocated block's; its fields are the page's own.
            "buddy_pages": SymCollection("Page", tuple(
                (v.free[j][i], pages[i << j][1]) for j, i in order)),
            "used_pages": SymCollection("Page", tuple(
                (v.alloc[j][i], pages[i << j][1]) for j, i in order)),
        }
        return SymState(values, _flat(v))

    def _heads(self, x: int) -> list[tuple[int, int]]:
        """The slots whose block starts at pfn x, lowest order first."""
        return [(j, x >> j) for j in range(self.max_order)
                if x % (1 << j) == 0 and (x >> j) < self.width[j]]

    def _page(self, v: BuddyVars, x: int) -> SymRecord:
        """struct page of pfn x: PageBuddy, private (the free order) and _refcount."""
        heads = self._heads(x)
        order: z3.ArithRef = z3.IntVal(0)
        for j, i in heads:  # the highest free order wins, as the last write would
            order = z3.If(v.free[j][i], j, order)
        return SymRecord("Page", {
            "pfn": z3.IntVal(x),
            "buddy": _any(v.free[j][i] for j, i in heads),
            "order": order,
            "refcount": z3.If(_any(v.alloc[j][i] for j, i in heads), 1, 0),
        })

    def init(self, s: SymState) -> z3.BoolRef:
        """s is the boot state: every page free, in the largest aligned chunks."""
        return self.assign(s, boot_blocks(self.npages, self.max_order), ())

    def well_formed(self, s: SymState) -> z3.BoolRef:
        """Domain facts: none for the bits; the stray block's order within 0 .. max_order-1."""
        v = self.vars_of(s)
        if v.stray is None:
            return z3.BoolVal(True)
        st = v.stray
        return z3.And(st.order >= 0, st.order < self.max_order, st.pfn >= 0,
                      st.pfn <= self.npages)

    def assign(self, s: SymState, free: Iterable[tuple[int, int]],
               allocated: Iterable[tuple[int, int]]) -> z3.BoolRef:
        """s holds exactly these free and allocated blocks ((pfn, order) pairs).

        False if a block has no slot (unaligned, or not inside memory).
        """
        v = self.vars_of(s)
        fset = {(int(p), int(o)) for p, o in free}
        aset = {(int(p), int(o)) for p, o in allocated}
        if any(not self._on_grid(p, o) for p, o in fset | aset):
            return z3.BoolVal(False)
        facts = [z3.And(v.free[j][i] == ((i << j, j) in fset),
                        v.alloc[j][i] == ((i << j, j) in aset)) for j, i in self.slots()]
        if v.stray is not None:
            facts.append(z3.And(z3.Not(v.stray.present), v.stray.pfn == 0, v.stray.order == 0))
        return z3.And(facts)

    def _on_grid(self, pfn: int, order: int) -> bool:
        return (0 <= order < self.max_order and pfn >= 0 and pfn % (1 << order) == 0
                and (pfn >> order) < self.width[order])

    def decode_state(self, model: z3.ModelRef, s: SymState) -> dict[str, list[tuple[int, int]]]:
        """The free and allocated blocks of s in `model`, as (pfn, order) lists by pfn."""
        v = self.vars_of(s)

        def holds(b: z3.BoolRef) -> bool:
            return z3.is_true(model.eval(b, model_completion=True))

        free = [(i << j, j) for j, i in self.slots() if holds(v.free[j][i])]
        if v.stray is not None and holds(v.stray.present):
            free.append((model.eval(v.stray.pfn, model_completion=True).as_long(),
                         model.eval(v.stray.order, model_completion=True).as_long()))
        return {"free": sorted(free),
                "allocated": sorted((i << j, j) for j, i in self.slots()
                                    if holds(v.alloc[j][i]))}

    # -- steps ----------------------------------------------------------------

    def fresh_step(self, tag: str) -> SymStep:
        """A step of fresh z3 constants: which operation, its arguments, its result,
        and alloc's one-hot choice of the slot it hands out."""
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
        choice = tuple(z3.Bool(f"{tag}.alloc.take[{j}][{i}]") for j, i in self.slots())
        orders = range(-1, self.max_order + 1)
        return SymStep(
            is_op={"alloc": sv.is_alloc, "free": sv.is_free},
            args={"alloc": {"order": sv.alloc_order},
                  "free": {"pfn": sv.free_pfn, "order": sv.free_order}},
            results={"alloc": SymOptional(sv.alloc_none, sv.alloc_pfn), "free": None},
            raised=sv.raised,
            variables=tuple(getattr(sv, f.name) for f in fields(sv)) + choice,
            domains={"alloc": {"order": orders}, "free": {"order": orders}},
        )

    def step_vars(self, t: SymStep) -> BuddyStepVars:
        """The constants behind a step made by `fresh_step`."""
        return BuddyStepVars(*t.variables[:len(fields(BuddyStepVars))])  # type: ignore[arg-type]

    def _choice(self, t: SymStep) -> Bits:
        return self._rows(t.variables[len(fields(BuddyStepVars)):])

    def arg_bounds(self, t: SymStep) -> z3.BoolRef:
        """Every integer of step t within its finite range (trans asserts this too).

        Orders range over [-1, max_order], the pfn to free over [-1, npages]: one
        representative of each class of bad values and every good one (every value
        outside behaves as these do: ValueError); alloc's result over [0, npages).
        """
        sv = self.step_vars(t)
        m, n = self.max_order, self.npages
        return z3.And(sv.alloc_order >= -1, sv.alloc_order <= m,
                      sv.free_order >= -1, sv.free_order <= m,
                      sv.free_pfn >= -1, sv.free_pfn <= n,
                      sv.alloc_pfn >= 0, sv.alloc_pfn < n)

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef:
        """Step t takes s to s2: exactly one operation ran, as the reference runs it.

        Arguments of the operation that did not run, and alloc's result when it did
        not hand out a block, are pinned to 0 so that a model reads back one way.
        """
        v, v2 = self.vars_of(s), self.vars_of(s2)
        side, effects, stray = self._step(s, t)
        return z3.And(side, self._apply(v, effects, v2), stray(v2))

    def successor(self, s: SymState, t: SymStep) -> SymState | None:
        """The state step t leads s to, as terms over s's and t's constants (no fresh
        ones): under trans(s, t, s2) every bit of s2 equals its term here, so a
        formula over this state means the same as over s2. The spec compiler then
        sees a bit the step never touches as the very same term before and after
        (optional in the protocol; None under "wrong_buddy", whose stray block is
        not a function of the bits)."""
        v = self.vars_of(s)
        if v.stray is not None:
            return None
        _, e, _ = self._step(s, t)
        def bits(old: Bits, off: list[list[z3.BoolRef | None]],
                 on: list[list[z3.BoolRef | None]]) -> Bits:
            return tuple(tuple(_next(b, off[j][i], on[j][i]) for i, b in enumerate(row))
                         for j, row in enumerate(old))
        return self._present(BuddyVars(bits(v.free, e.free_off, e.free_on),
                                       bits(v.alloc, e.alloc_off, e.alloc_on)))

    def _step(self, s: SymState, t: SymStep):  # noqa: ANN202
        """(side conditions, effects on the bits, the stray block's update) of step t
        from state s: exactly one operation ran, as the reference runs it. Built once
        per (state, step): trans and successor share it."""
        got = self._steps.get((id(s), id(t)))
        if got is None or got[0] is not s or got[1] is not t:
            got = (s, t, self._build_step(self.vars_of(s), t))
            self._steps[(id(s), id(t))] = got
        return got[2]

    def _build_step(self, v: BuddyVars, t: SymStep):  # noqa: ANN202
        sv = self.step_vars(t)
        terms = _StateTerms(v, self.width)
        alloc_side, choice, alloc = self._alloc(v, terms, sv, self._choice(t))
        free_side, free, stray = self._free(v, terms, sv)
        side = z3.And(sv.is_alloc != sv.is_free, self.arg_bounds(t),
                      z3.Implies(sv.is_alloc, alloc_side), choice,
                      z3.Implies(sv.is_free, free_side))
        return side, _merge(alloc, free), stray

    def decode_step(self, model: z3.ModelRef, t: SymStep) -> ConcreteStep:
        """The operation t performed in `model`, as a trace records it (base.decode_step)."""
        return decode_step(model, t)

    def coverage_goals(self, states: Sequence[SymState],
                       steps: Sequence[SymStep]) -> list[z3.BoolRef]:
        """Goals for solver-generated traces beyond the action premises (optional in
        the protocol): the last step allocates a block that only the free just before
        it could have made by merging. Before that free no free block of the asked
        order or above existed, and the freed block is smaller: a submission that
        does not coalesce (examples/buddy/buggy/no_coalesce.py) answers None there,
        which alloc_fails_only_when_full refuses."""
        if len(steps) < 2:
            return []
        before = self.vars_of(states[-3])
        freed, taken = self.step_vars(steps[-2]), self.step_vars(steps[-1])
        goals = []
        for j in range(1, self.max_order):
            bigger = [b for row in before.free[j:] for b in row]
            goals.append(z3.And(freed.is_free, z3.Not(freed.raised), freed.free_order < j,
                                taken.is_alloc, taken.alloc_order == j, z3.Not(taken.raised),
                                z3.Not(taken.alloc_none), z3.Not(_any(bigger))))
        return [z3.Or(goals)] if goals else []

    def _no_effects(self) -> Effects:
        def grid() -> list[list[z3.BoolRef | None]]:
            return [[None] * w for w in self.width]
        return Effects(grid(), grid(), grid(), grid())

    def _apply(self, v: BuddyVars, e: Effects, v2: BuddyVars) -> z3.BoolRef:
        """s2 is s with the effects applied, bit by bit."""
        post = []
        for j, i in self.slots():
            post.append(v2.free[j][i] == _next(v.free[j][i], e.free_off[j][i], e.free_on[j][i]))
            post.append(v2.alloc[j][i] == _next(v.alloc[j][i], e.alloc_off[j][i],
                                                 e.alloc_on[j][i]))
        return z3.And(post)

    # -- alloc ----------------------------------------------------------------

    def _alloc(self, v: BuddyVars, terms: _StateTerms, sv: BuddyStepVars,
               take: Bits) -> tuple[z3.BoolRef, z3.BoolRef, Effects]:
        """alloc(order): raises ValueError, returns None, or hands out a slot.

        Returns the side conditions when alloc ran, the choice bits' meaning (true on
        every step) and the effects. None exactly when no free slot of order >= order
        exists. Otherwise exactly one choice bit take[j][i] holds: j is the order, the
        slot lies inside a free block (a free ancestor-or-self), and r is its pfn.
        That block leaves its list (every free ancestor, on a broken state), and the
        sibling of each node strictly between them is freed (`expand`): sibling s at
        level l when the taken slot lies in s's sibling and s's parent lies inside
        the free block.
        """
        m, r = self.max_order, sv.alloc_pfn
        order_is = [sv.alloc_order == j for j in range(m)]
        valid = z3.Or(order_is)
        avail = z3.Or([z3.And(terms.any_free[j], z3.Or(order_is[:j + 1])) for j in range(m)])
        go = z3.And(sv.is_alloc, valid, avail)
        side = [sv.free_pfn == 0, sv.free_order == 0, sv.raised == z3.Not(valid),
                sv.alloc_none == z3.And(valid, z3.Not(avail)),
                z3.Implies(z3.Not(go), r == 0),
                z3.Implies(go, z3.Or([b for row in take for b in row]))]
        # asserted whatever ran (trans), so no choice bit holds on another step:
        choice = [z3.Implies(take[j][i], z3.And(go, order_is[j], r == i << j,
                                                terms.free_above[j][i]))
                  for j, i in self.slots()]
        inside = _subtree_any(take, self.width)  # inside[l][a]: the taken slot is under a
        e = self._no_effects()
        for j, i in self.slots():
            e.alloc_on[j][i] = take[j][i]
            off = z3.And(v.free[j][i], inside[j][i])
            if self.mutation == "double_alloc":  # an exact fit stays on its free list
                off = z3.And(off, z3.Not(take[j][i]))
            e.free_off[j][i] = off
            up = i >> 1
            if j + 1 < m and up < self.width[j + 1]:
                if self.mutation == "lost_upper_half" and i % 2 == 1:
                    continue  # an upper half that is never put back
                e.free_on[j][i] = z3.And(inside[j][i ^ 1], terms.free_above[j + 1][up])
        return z3.And(side), z3.And(choice), e

    # -- free -----------------------------------------------------------------

    def _free(self, v: BuddyVars, terms: _StateTerms, sv: BuddyStepVars):  # noqa: ANN202
        """free(pfn, order): ValueError unless (pfn, order) is an allocated slot; then
        `__free_one_page` climbs: at[l][a] says the merged block reached slot (l, a);
        it merges with its buddy (l, a ^ 1) when that is free and the parent slot
        exists (order below max_order - 1, both inside memory).

        Returns the side conditions, the effects and the stray block's update.
        """
        m = self.max_order
        pfn_is = [sv.free_pfn == x for x in range(self.npages)]
        order_is = [sv.free_order == j for j in range(m)]
        sel = [[z3.And(v.alloc[j][i], pfn_is[i << j], order_is[j]) for i in range(w)]
               for j, w in enumerate(self.width)]
        valid = z3.Or([b for row in sel for b in row])
        side = z3.And(sv.alloc_order == 0, z3.Not(sv.alloc_none), sv.alloc_pfn == 0,
                      sv.raised == z3.Not(valid))
        go = z3.And(sv.is_free, valid)
        e = self._no_effects()
        at: list[list[z3.BoolRef | None]] = [[None] * w for w in self.width]
        strays: list[tuple[z3.BoolRef, int, int]] = []  # (when, pfn, order)
        for j in range(m):
            for i in range(self.width[j]):
                came = _or([z3.And(go, sel[j][i])] + ([] if j == 0 else self._merged_into(
                    v, at, j, i)))
                at[j][i] = came
                e.alloc_off[j][i] = z3.And(go, sel[j][i])
            for i in range(self.width[j]):
                merge, buddy = self._merges(v, at, j, i)
                stay = at[j][i] if merge is None else z3.And(at[j][i], z3.Not(merge))
                e.free_on[j][i] = _or([e.free_on[j][i], stay])
                if merge is not None:
                    e.free_off[j][buddy] = _or([e.free_off[j][buddy], merge])
                    if self.mutation == "wrong_buddy" and i % 2 == 1:
                        strays.append((merge, i << j, j + 1))
        return side, e, self._stray_update(v, strays)

    def _merges(self, v: BuddyVars, at: list[list[z3.BoolRef | None]], j: int,
                i: int) -> tuple[z3.BoolRef | None, int]:
        """(the block at slot (j, i) merges with its buddy, the buddy's index).

        Linux's buddy is i ^ 1; under "wrong_buddy" it is i + 1 (p + 2**j), and
        merging an upper half with it leaves the slot grid (a stray block).
        """
        if self.mutation == "no_coalesce" or j + 1 >= self.max_order:
            return None, i
        buddy = i + 1 if self.mutation == "wrong_buddy" else i ^ 1
        if buddy >= self.width[j] or (i >> 1) >= self.width[j + 1] and \
                self.mutation != "wrong_buddy":
            return None, i
        return z3.And(at[j][i], v.free[j][buddy]), buddy

    def _merged_into(self, v: BuddyVars, at: list[list[z3.BoolRef | None]], j: int,
                     i: int) -> list[z3.BoolRef]:
        """The ways the climb reaches slot (j, i) from level j - 1: a child merged
        with its buddy (under "wrong_buddy", only the lower child: the upper one's
        merge is a stray)."""
        out = []
        for c in (2 * i, 2 * i + 1):
            if c >= self.width[j - 1] or (self.mutation == "wrong_buddy" and c % 2 == 1):
                continue
            merge, _ = self._merges(v, at, j - 1, c)
            if merge is not None:
                out.append(merge)
        return out

    def _stray_update(self, v: BuddyVars, strays: list[tuple[z3.BoolRef, int, int]]):  # noqa: ANN202
        """The next state's stray block: the one a wrong merge makes now, else the old."""
        def update(v2: BuddyVars) -> z3.BoolRef:
            if v.stray is None or v2.stray is None:
                return z3.BoolVal(True)
            old, new = v.stray, v2.stray
            pfn, order = old.pfn, old.order
            for when, p, o in strays:
                pfn, order = z3.If(when, p, pfn), z3.If(when, o, order)
            made = _or([w for w, _, _ in strays])
            return z3.And(new.present == _or([old.present, made]), new.pfn == pfn,
                          new.order == order)
        return update


class _StateTerms:
    """Shared per-subtree terms of one state, each O(slots) in all.

    any_free[j]      some slot of order j is free
    free_above[j][i] slot (j, i) or one of its ancestors is free
    """

    def __init__(self, v: BuddyVars, width: Sequence[int]) -> None:
        self.any_free = [_any(row) for row in v.free]
        above: list[list[z3.BoolRef]] = [[] for _ in width]
        for j in range(len(width) - 1, -1, -1):
            for i in range(width[j]):
                up = i >> 1
                parent = above[j + 1][up] if j + 1 < len(width) and up < width[j + 1] else None
                above[j].append(v.free[j][i] if parent is None else z3.Or(v.free[j][i], parent))
        self.free_above = above


def _subtree_any(bits: Bits, width: Sequence[int]) -> list[list[z3.BoolRef]]:
    """out[j][i]: some bit of slot (j, i) or of a slot below it holds."""
    out: list[list[z3.BoolRef]] = []
    for j, w in enumerate(width):
        row = []
        for i in range(w):
            below = [out[j - 1][c] for c in (2 * i, 2 * i + 1) if j and c < width[j - 1]]
            row.append(_any([bits[j][i], *below]))
        out.append(row)
    return out


def _merge(a: Effects, b: Effects) -> Effects:
    """The effects of whichever of two exclusive operations ran."""
    def each(x: list[list[z3.BoolRef | None]], y: list[list[z3.BoolRef | None]]):  # noqa: ANN202
        return [[_or([p, q]) for p, q in zip(rx, ry, strict=True)]
                for rx, ry in zip(x, y, strict=True)]
    return Effects(each(a.free_off, b.free_off), each(a.free_on, b.free_on),
                   each(a.alloc_off, b.alloc_off), each(a.alloc_on, b.alloc_on))


def _next(bit: z3.BoolRef, off: z3.BoolRef | None, on: z3.BoolRef | None) -> z3.BoolRef:
    """A bit after a step: set if `on`, else cleared if `off`, else as it was."""
    kept = bit if off is None else z3.And(bit, z3.Not(off))
    return kept if on is None else z3.Or(on, kept)


def _or(terms: Iterable[z3.BoolRef | None]) -> z3.BoolRef | None:
    """The disjunction of the terms that are not None; None if there are none."""
    live = [t for t in terms if t is not None]
    return None if not live else live[0] if len(live) == 1 else z3.Or(live)


def _any(terms: Iterable[z3.BoolRef]) -> z3.BoolRef:
    """The disjunction, False when empty."""
    live = list(terms)
    return z3.BoolVal(False) if not live else live[0] if len(live) == 1 else z3.Or(live)


def _sum_sizes(slots: Sequence[tuple[z3.BoolRef, SymRecord]], max_order: int) -> z3.ArithRef:
    """Sum of 2**order over the present blocks, as the spec compiler sums them."""
    from mmcheck.checker.symbolic.base import pow2

    terms = []
    for guard, rec in slots:
        order = rec.fields["order"]
        size = (z3.IntVal(1 << order.as_long()) if z3.is_int_value(order)
                else pow2(order, max_order))
        terms.append(z3.If(guard, size, 0))
    return z3.Sum(*terms) if len(terms) > 1 else terms[0]


def _block(pfn: int, order: int) -> SymRecord:
    return SymRecord("Block", {"pfn": z3.IntVal(pfn), "order": z3.IntVal(order)})


def _flat(v: BuddyVars) -> tuple[z3.ExprRef, ...]:
    out = tuple(b for row in v.free for b in row) + tuple(b for row in v.alloc for b in row)
    if v.stray is not None:
        out += (v.stray.present, v.stray.pfn, v.stray.order)
    return out
