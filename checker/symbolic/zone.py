"""The zoned page allocator as a Z3 transition system: a bit per (zone, block slot).

The setup fixes the node: the zones' sizes (laid out from pfn 0, as model/zone.py
lays them out), MAX_ORDER and min_free_kbytes. Everything the reference derives
from them at boot (each zone's start and end, managed pages, min/low/high
watermarks, lowmem_reserve, the free blocks memblock hands over) is computed by
the reference itself (`ZoneAllocator`) and enters the formulas as constants.

The universe is the block slots of each zone's buddy allocator: a slot (k, j, i)
is the block [i * 2**j, (i + 1) * 2**j) of order j on zone k's lists. A slot
belongs to the one zone it lies in; a slot that straddles a zone boundary
belongs to none and is folded away (no bit at all). One state holds two bits a
slot, as the buddy encoding (`buddy.py`) does:

    free[k][j][i]   the slot is a free block on zone k's free_area[j]
    alloc[k][j][i]  the slot is an allocated block (alloc() returned it from zone k)

and no integer: NR_FREE_PAGES of a zone is a term, the sum of the sizes of its
free slots. Operations, as `PgData` runs them:

    alloc(order, gfp)  ValueError for an order outside 0..max_order-1 or a gfp mask
                       GFP_ZONE_TABLE does not list; else, for each of the few
                       (order, gfp) values (a case split, every constant folded):
                       get_page_from_freelist's walk of the zonelist from
                       gfp_zone(gfp) down, each zone tried with __zone_watermark_ok
                       at its LOW mark plus lowmem_reserve[classzone], then (the slow
                       path) at MIN; the first zone that passes serves, None if none
                       does; inside that zone a one-hot choice of the slot handed
                       out (any slot of that order inside a free block of the zone:
                       the checker follows a submission's choice, and the
                       reference's `take_block` accepts the same), with `expand`
                       freeing the sibling of every slot between it and its free
                       block, as in the buddy encoding;
    free(pfn, order)   ValueError unless (pfn, order) is an allocated slot; then the
                       climb of `__free_one_page` within the slot's zone.

Arguments range over finite domains: orders -1 .. max_order, gfp -1 .. 12 (the
table's eight masks and the GFP_ZONE_BAD ones below 13: every other mask fails
the same way), pfns -1 .. npages.

Mutations seed the bugs of examples/zone/buggy/ (see `MUTATIONS`). Under a
mutation the alloc choice is the examples' own (the lowest pfn of the smallest
order with a free block), so a trace BMC finds runs the same way on the example.
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
    decode_step,
)
from mmcheck.checker.symbolic.buddy import _any, _next  # the same bit updates as buddy's
from mmcheck.model.vocabulary import Vocabulary
from mmcheck.model.zone import MAX_NR_ZONES, VOCABULARY, ZoneAllocator, gfp_zone

GFP_DOMAIN = range(-1, 13)  # the table's masks 0..12 and GFP_ZONE_BAD ones (3, 5, 6, 7, -1)

MUTATIONS: Mapping[str, str] = {
    "wrong_fallback": "the zonelist runs lowest zone first (DMA, then upwards)",
    "ignores_low": "the fast path's LOW watermark pass is left out: zones are tried at MIN only",
    "merges_across_zones": (
        "free() looks the buddy up on every zone's free lists (page_is_buddy without its "
        "same-zone test): a block merges with its buddy in the zone next door, and the "
        "merged block goes on the list of the zone the freed block came from"
    ),
}


@dataclass(frozen=True)
class ZoneInfo:
    """One populated zone, as the reference booted it (every field a constant)."""

    idx: int
    start: int
    end: int
    managed: int
    watermark: tuple[int, int, int]  # min, low, high
    lowmem_reserve: tuple[int, ...]  # by class zone


@dataclass(frozen=True)
class ZoneStepVars:
    """The z3 constants of one step (the first fields of a step's `variables`)."""

    is_alloc: z3.BoolRef
    is_free: z3.BoolRef
    alloc_order: z3.ArithRef
    alloc_gfp: z3.ArithRef
    alloc_none: z3.BoolRef
    alloc_pfn: z3.ArithRef  # alloc's result, when it neither raised nor returned None
    free_pfn: z3.ArithRef
    free_order: z3.ArithRef
    raised: z3.BoolRef


Slot = tuple[int, int, int]  # (zone position k, order j, index i)


class SymbolicZone:
    """The ZoneAllocator of `zones` (pages per zone type) in Z3.

    A state's `variables` are its free bits, slot by slot (`self.slots`), then its
    alloc bits; a step's are those of `ZoneStepVars` in field order, then alloc's
    one-hot choice bits, slot by slot.
    """

    vocabulary: Vocabulary = VOCABULARY

    def __init__(self, zones: Sequence[int], min_free_kbytes: int, max_order: int,
                 mutation: str | None = None) -> None:
        if mutation is not None and mutation not in MUTATIONS:
            raise ValueError(f"SymbolicZone: unknown mutation {mutation!r}; "
                             f"known: {', '.join(MUTATIONS)}")
        ref = ZoneAllocator(list(zones), min_free_kbytes, max_order)
        self.npages, self.max_order, self.mutation = ref.npages, max_order, mutation
        self.zones = tuple(ZoneInfo(z.idx, z.zone_start_pfn, z.zone_end_pfn, z.managed_pages,
                                    tuple(z.watermark), tuple(z.lowmem_reserve))  # type: ignore[arg-type]
                           for z in ref.node.populated_zones())
        self.boot = [(pfn, order, z.idx) for z in ref.node.populated_zones()
                     for pfn, order in z.free_blocks()]
        self.slots: list[Slot] = [(k, j, i) for k in range(len(self.zones))
                                  for j in range(max_order) for i in range(self.npages >> j)
                                  if self._reaches(k, j, i)]
        self.index = {s: n for n, s in enumerate(self.slots)}

    def _reaches(self, k: int, j: int, i: int) -> bool:
        """Slot (j, i) can be on zone k's lists: it lies inside the zone; under
        "merges_across_zones", inside memory, under a top-order block the zone meets."""
        z, lo, hi = self.zones[k], i << j, (i + 1) << j
        if self.mutation != "merges_across_zones":
            return z.start <= lo and hi <= z.end
        top = self.max_order - 1
        tlo = lo >> top << top
        return hi <= self.npages and tlo < z.end and z.start < tlo + (1 << top)

    def zone_at(self, pfn: int) -> int:
        """The index (zone type) of the zone spanning pfn, -1 if none."""
        return next((z.idx for z in self.zones if z.start <= pfn < z.end), -1)

    # -- states ---------------------------------------------------------------

    def fresh_state(self, tag: str) -> SymState:
        """A state of fresh z3 constants named after `tag`."""
        def bits(kind: str) -> tuple[z3.BoolRef, ...]:
            return tuple(z3.Bool(f"{tag}.{kind}[{self.zones[k].idx}][{j}][{i}]")
                         for k, j, i in self.slots)
        return self._present(bits("free"), bits("alloc"))

    def vars_of(self, s: SymState) -> tuple[tuple[z3.BoolRef, ...], tuple[z3.BoolRef, ...]]:
        """(free bits, alloc bits) of a state made by `fresh_state`."""
        n = len(self.slots)
        if len(s.variables) != 2 * n:
            raise ValueError(f"SymbolicZone.vars_of: a state here has {2 * n} variables, "
                             f"this one {len(s.variables)}; make it with fresh_state")
        return s.variables[:n], s.variables[n:]  # type: ignore[return-value]

    def nr_free_pages(self, free: Sequence[z3.BoolRef], k: int, upto: int | None = None
                      ) -> z3.ArithRef:
        """NR_FREE_PAGES of zone k (of its free blocks of order <= upto, if given)."""
        terms = [z3.If(free[n], 1 << j, 0) for n, (kk, j, _) in enumerate(self.slots)
                 if kk == k and (upto is None or j <= upto)]
        return z3.Sum(terms) if len(terms) > 1 else terms[0] if terms else z3.IntVal(0)

    def _present(self, free: tuple[z3.BoolRef, ...], alloc: tuple[z3.BoolRef, ...]) -> SymState:
        """The vocabulary's view of the bits."""
        def block(k: int, j: int, i: int, zone: int) -> SymRecord:
            return SymRecord("ZBlock", {"pfn": z3.IntVal(i << j), "order": z3.IntVal(j),
                                        "zone": z3.IntVal(zone)})
        zones = tuple((z3.BoolVal(True), SymRecord("Zone", {
            "idx": z3.IntVal(z.idx), "start": z3.IntVal(z.start), "end": z3.IntVal(z.end),
            "managed": z3.IntVal(z.managed), "free": self.nr_free_pages(free, k),
            "min": z3.IntVal(z.watermark[0]), "low": z3.IntVal(z.watermark[1]),
            "high": z3.IntVal(z.watermark[2])})) for k, z in enumerate(self.zones))
        reserve = tuple((z3.BoolVal(True), SymRecord("Reserve", {
            "zone": z3.IntVal(z.idx), "classzone": z3.IntVal(c),
            "pages": z3.IntVal(z.lowmem_reserve[c])}))
            for z in self.zones for c in range(MAX_NR_ZONES))
        values = {
            "npages": z3.IntVal(self.npages),
            "max_order": z3.IntVal(self.max_order),
            "zones": SymCollection("Zone", zones),
            "free": SymCollection("ZBlock", tuple(
                (free[n], block(k, j, i, self.zones[k].idx))
                for n, (k, j, i) in enumerate(self.slots))),
            "allocated": SymCollection("ZBlock", tuple(
                (alloc[n], block(k, j, i, self.zone_at(i << j)))
                for n, (k, j, i) in enumerate(self.slots))),
            "lowmem_reserve": SymCollection("Reserve", reserve),
        }
        return SymState(values, free + alloc)

    def init(self, s: SymState) -> z3.BoolRef:
        """s is the boot state: the free blocks memblock_free_all hands each zone."""
        return self.assign(s, self.boot, ())

    def well_formed(self, s: SymState) -> z3.BoolRef:
        """No domain facts: a state is bits only."""
        return z3.BoolVal(True)

    def assign(self, s: SymState, free: Iterable[tuple[int, int, int]],
               allocated: Iterable[tuple[int, int, int]]) -> z3.BoolRef:
        """s holds exactly these free and allocated blocks, (pfn, order, zone type of
        the list it is on / was allocated from). False if one has no slot."""
        fbits, abits = self.vars_of(s)
        pos = {z.idx: k for k, z in enumerate(self.zones)}
        want_f, want_a = set(), set()
        for blocks, want in ((free, want_f), (allocated, want_a)):
            for pfn, order, zone in blocks:
                slot = (pos.get(zone, -1), order, pfn >> order if order >= 0 else -1)
                if slot not in self.index or pfn % (1 << order):
                    return z3.BoolVal(False)
                want.add(self.index[slot])
        return z3.And([z3.And(fbits[n] == (n in want_f), abits[n] == (n in want_a))
                       for n in range(len(self.slots))])

    def decode_state(self, model: z3.ModelRef, s: SymState) -> dict[str, list[tuple[int, ...]]]:
        """The free and allocated blocks of s in `model`: (pfn, order, zone) by pfn."""
        fbits, abits = self.vars_of(s)

        def holding(bits: Sequence[z3.BoolRef]) -> list[tuple[int, ...]]:
            return sorted((i << j, j, self.zones[k].idx) for n, (k, j, i) in enumerate(self.slots)
                          if z3.is_true(model.eval(bits[n], model_completion=True)))
        return {"free": holding(fbits), "allocated": holding(abits)}

    # -- steps ----------------------------------------------------------------

    def fresh_step(self, tag: str) -> SymStep:
        """A step of fresh z3 constants: which operation, its arguments, its result,
        and alloc's one-hot choice of the slot it hands out."""
        sv = ZoneStepVars(
            z3.Bool(f"{tag}.is_alloc"), z3.Bool(f"{tag}.is_free"),
            z3.Int(f"{tag}.alloc.order"), z3.Int(f"{tag}.alloc.gfp"),
            z3.Bool(f"{tag}.alloc.none"), z3.Int(f"{tag}.alloc.result"),
            z3.Int(f"{tag}.free.pfn"), z3.Int(f"{tag}.free.order"), z3.Bool(f"{tag}.raised"))
        choice = tuple(z3.Bool(f"{tag}.alloc.take[{self.zones[k].idx}][{j}][{i}]")
                       for k, j, i in self.slots)
        orders = range(-1, self.max_order + 1)
        return SymStep(
            is_op={"alloc": sv.is_alloc, "free": sv.is_free},
            args={"alloc": {"order": sv.alloc_order, "gfp": sv.alloc_gfp},
                  "free": {"pfn": sv.free_pfn, "order": sv.free_order}},
            results={"alloc": SymOptional(sv.alloc_none, sv.alloc_pfn), "free": None},
            raised=sv.raised,
            variables=tuple(getattr(sv, f.name) for f in fields(sv)) + choice,
            domains={"alloc": {"order": orders, "gfp": GFP_DOMAIN}, "free": {"order": orders}},
        )

    def step_vars(self, t: SymStep) -> ZoneStepVars:
        """The constants behind a step made by `fresh_step`."""
        return ZoneStepVars(*t.variables[:len(fields(ZoneStepVars))])  # type: ignore[arg-type]

    def _choice(self, t: SymStep) -> tuple[z3.BoolRef, ...]:
        return t.variables[len(fields(ZoneStepVars)):]  # type: ignore[return-value]

    def decode_step(self, model: z3.ModelRef, t: SymStep) -> ConcreteStep:
        """The operation t performed in `model`, as a trace records it (base.decode_step)."""
        return decode_step(model, t)

    def arg_bounds(self, t: SymStep) -> z3.BoolRef:
        """Every integer of step t within its finite domain (trans asserts this)."""
        sv, m, n = self.step_vars(t), self.max_order, self.npages
        return z3.And(sv.alloc_order >= -1, sv.alloc_order <= m,
                      sv.alloc_gfp >= GFP_DOMAIN.start, sv.alloc_gfp < GFP_DOMAIN.stop,
                      sv.free_order >= -1, sv.free_order <= m,
                      sv.free_pfn >= -1, sv.free_pfn <= n,
                      sv.alloc_pfn >= 0, sv.alloc_pfn < n)

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef:
        """Step t takes s to s2: exactly one operation ran, as the reference runs it.
        Arguments of the operation that did not run, and alloc's result when it handed
        out nothing, are pinned to 0 so that a model reads back one way."""
        sv = self.step_vars(t)
        free, alloc = self.vars_of(s)
        free2, alloc2 = self.vars_of(s2)
        terms = _Terms(self, free)
        alloc_side, choice, e_alloc = self._alloc(terms, sv, self._choice(t))
        free_side, e_free = self._free(free, alloc, sv)
        e = [_or(a, b) for a, b in zip(e_alloc, e_free, strict=True)]
        post = [z3.And(free2[n] == _next(free[n], e[n][0], e[n][1]),
                       alloc2[n] == _next(alloc[n], e[n][2], e[n][3]))
                for n in range(len(self.slots))]
        return z3.And(sv.is_alloc != sv.is_free, self.arg_bounds(t),
                      z3.Implies(sv.is_alloc, alloc_side), choice,
                      z3.Implies(sv.is_free, free_side), *post)

    # -- alloc ----------------------------------------------------------------

    def zonelist(self, classzone: int) -> list[int]:
        """The zones (positions) a request of class zone `classzone` may use, in
        fallback order: highest first (lowest first under "wrong_fallback")."""
        allowed = [k for k, z in enumerate(self.zones) if z.idx <= classzone]
        return allowed if self.mutation == "wrong_fallback" else allowed[::-1]

    def zone_watermark_ok(self, terms: _Terms, k: int, order: int, mark: int,
                          classzone: int) -> z3.BoolRef:
        """__zone_watermark_ok of zone k, the request's order and class zone constants:
        after taking 2**order pages more than mark + lowmem_reserve stay free, and at
        each order o below `order` more than mark >> (o + 1) in blocks above o."""
        left = terms.nr_free[k] - (1 << order) + 1
        facts = [left > mark + self.zones[k].lowmem_reserve[classzone]]
        for o in range(order):
            mark >>= 1
            facts.append(left - terms.nr_free_upto[k][o] > mark)
        return z3.And(facts)

    def preferred_zone(self, terms: _Terms, order: int, classzone: int) -> list[z3.BoolRef]:
        """serves[k]: get_page_from_freelist takes from zone k: the first zone of the
        zonelist above its LOW mark, else (the slow path) the first above MIN."""
        marks = (0,) if self.mutation == "ignores_low" else (1, 0)
        serves = [z3.BoolVal(False)] * len(self.zones)
        before: z3.BoolRef = z3.BoolVal(False)
        for mark in marks:
            for k in self.zonelist(classzone):
                ok = self.zone_watermark_ok(terms, k, order, self.zones[k].watermark[mark],
                                            classzone)
                serves[k] = z3.Or(serves[k], z3.And(z3.Not(before), ok))
                before = z3.Or(before, ok)
        return serves

    def _alloc(self, terms: _Terms, sv: ZoneStepVars, take: Sequence[z3.BoolRef]
               ) -> tuple[z3.BoolRef, z3.BoolRef, list[tuple]]:
        """alloc(order, gfp): raises ValueError, returns None, or hands out a slot.

        Returns the side conditions when alloc ran, the choice bits' meaning (true on
        every step) and the effects. Per (order, gfp) value the zone is decided
        (`preferred_zone`); zone[k] says "alloc takes from zone k". Exactly one choice
        bit holds then: a slot of zone k and that order inside a free block of zone k
        (a free ancestor-or-self), r its pfn. That block leaves its list and `expand`
        frees the sibling of each slot strictly between them.
        """
        m = self.max_order
        cases, zone = [], [[] for _ in self.zones]  # type: ignore[var-annotated]
        for order in range(m):
            for gfp in GFP_DOMAIN:
                try:
                    classzone = gfp_zone(gfp)
                except ValueError:
                    continue
                serves = self.preferred_zone(terms, order, classzone)
                here = z3.And(sv.alloc_order == order, sv.alloc_gfp == gfp)
                cases.append(here)
                for k, serve in enumerate(serves):
                    zone[k].append(z3.And(here, serve, terms.avail(k, order)))
        valid = z3.Or(cases)
        takes = [_any(zs) for zs in zone]
        go = z3.And(sv.is_alloc, _any(takes))
        r = sv.alloc_pfn
        side = [sv.free_pfn == 0, sv.free_order == 0, sv.raised == z3.Not(valid),
                sv.alloc_none == z3.And(valid, z3.Not(_any(takes))),
                z3.Implies(z3.Not(go), r == 0), z3.Implies(go, z3.Or(take))]
        order_is = [sv.alloc_order == j for j in range(m)]
        choice = [z3.Implies(take[n], z3.And(go, takes[k], order_is[j], r == i << j,
                                             terms.free_above[n]))
                  for n, (k, j, i) in enumerate(self.slots)]
        if self.mutation is not None:
            choice += self._lowest_choice(terms, take, [z3.And(go, t) for t in takes], order_is)
        inside = self._subtree_any(take)
        effects = []
        for n, (k, j, i) in enumerate(self.slots):
            sib, up = self.index.get((k, j, i ^ 1)), self.index.get((k, j + 1, i >> 1))
            on = None if sib is None or up is None or j + 1 >= m else z3.And(
                inside[sib], terms.free_above[up])
            effects.append((z3.And(terms.free[n], inside[n]), on, None, take[n]))
        return z3.And(side), z3.And(choice), effects

    def _lowest_choice(self, terms: _Terms, take: Sequence[z3.BoolRef],
                       takes: Sequence[z3.BoolRef], order_is: Sequence[z3.BoolRef]
                       ) -> list[z3.BoolRef]:
        """The examples' choice (their `take`): the lowest pfn of the smallest order at
        or above the request's with a free block in the zone; the block handed out is
        its lowest part."""
        out = []
        for n, (k, j, i) in enumerate(self.slots):
            firsts = []
            for up in range(j, self.max_order):
                src = self.index.get((k, up, i >> (up - j)))
                if src is None or (i >> (up - j)) << (up - j) != i:
                    continue
                smaller = [terms.any_free_row[k][o] for o in range(j, up)]
                firsts.append(z3.And(terms.first_in_row[src], *[z3.Not(x) for x in smaller]))
            lowest = _any(firsts)
            out.append(z3.Implies(z3.And(takes[k], order_is[j]), take[n] == lowest))
        return out

    def _subtree_any(self, bits: Sequence[z3.BoolRef]) -> list[z3.BoolRef]:
        """out[n]: the bit of slot n or of a slot below it (same zone) holds."""
        out: list[z3.BoolRef] = [z3.BoolVal(False)] * len(self.slots)
        for n, (k, j, i) in sorted(enumerate(self.slots), key=lambda x: x[1][1]):
            below = [out[self.index[c]] for c in ((k, j - 1, 2 * i), (k, j - 1, 2 * i + 1))
                     if j and c in self.index]
            out[n] = _any([bits[n], *below])
        return out

    # -- free -----------------------------------------------------------------

    def _free(self, free: Sequence[z3.BoolRef], alloc: Sequence[z3.BoolRef],
              sv: ZoneStepVars) -> tuple[z3.BoolRef, list[tuple]]:
        """free(pfn, order): ValueError unless (pfn, order) is an allocated slot; then
        `__free_one_page` climbs within the slot's zone: at[n] says the merged block
        reached slot n; it merges with its buddy (j, i ^ 1) of the same zone when that
        is free and the order is below max_order - 1 (under "merges_across_zones":
        with the buddy on any zone's list, the first zone that has it)."""
        sel = [z3.And(alloc[n], sv.free_pfn == i << j, sv.free_order == j)
               for n, (_, j, i) in enumerate(self.slots)]
        valid = _any(sel)
        side = z3.And(sv.alloc_order == 0, sv.alloc_gfp == 0, z3.Not(sv.alloc_none),
                      sv.alloc_pfn == 0, sv.raised == z3.Not(valid))
        go = z3.And(sv.is_free, valid)
        at: list[z3.BoolRef | None] = [None] * len(self.slots)
        off: list[list[z3.BoolRef]] = [[] for _ in self.slots]
        on: list[z3.BoolRef | None] = [None] * len(self.slots)
        for n, (k, j, i) in sorted(enumerate(self.slots), key=lambda x: x[1][1]):
            came = [z3.And(go, sel[n])] + [
                merged for c in (2 * i, 2 * i + 1)
                for merged in [self._merge_of(free, at, (k, j - 1, c))] if j and merged is not None]
            at[n] = _any(came)
            merge = self._merge_of(free, at, (k, j, i))
            on[n] = at[n] if merge is None else z3.And(at[n], z3.Not(merge))
            for b, taken in self._buddies(free, at[n], k, j, i):
                off[b].append(taken)
        effects = [(_any(off[n]) if off[n] else None, on[n], z3.And(go, sel[n]), None)
                   for n in range(len(self.slots))]
        return side, effects

    def _buddies(self, free: Sequence[z3.BoolRef], here: z3.BoolRef, k: int, j: int,
                 i: int) -> list[tuple[int, z3.BoolRef]]:
        """(buddy slot, it is taken off its list to merge) for the block at (k, j, i)."""
        if j + 1 >= self.max_order or (k, j + 1, i >> 1) not in self.index:
            return []
        owners = [k] if self.mutation != "merges_across_zones" else range(len(self.zones))
        out, before = [], z3.BoolVal(False)
        for kk in owners:
            b = self.index.get((kk, j, i ^ 1))
            if b is None:
                continue
            out.append((b, z3.And(here, free[b], z3.Not(before))))
            before = z3.Or(before, free[b])
        return out

    def _merge_of(self, free: Sequence[z3.BoolRef], at: Sequence[z3.BoolRef | None],
                  slot: Slot) -> z3.BoolRef | None:
        """The block at `slot` (reached by the climb) merges with its buddy; None if it
        cannot."""
        n = self.index.get(slot)
        if n is None or at[n] is None:
            return None
        taken = [t for _, t in self._buddies(free, at[n], *slot)]
        return _any(taken) if taken else None


class _Terms:
    """Shared terms of one state (free bits `free`), each O(slots) in all.

    nr_free[k], nr_free_upto[k][o]  NR_FREE_PAGES of zone k (in blocks of order <= o)
    any_free_row[k][j]              zone k has a free block of order j
    free_above[n]                   slot n or one of its ancestors is free (same zone)
    first_in_row[n]                 slot n is free and no lower slot of its row and zone is
    """

    def __init__(self, sym: SymbolicZone, free: Sequence[z3.BoolRef]) -> None:
        m, nz = sym.max_order, len(sym.zones)
        self.free = free
        self.nr_free = [sym.nr_free_pages(free, k) for k in range(nz)]
        self.nr_free_upto = [[sym.nr_free_pages(free, k, o) for o in range(m)]
                             for k in range(nz)]
        rows: list[list[list[int]]] = [[[] for _ in range(m)] for _ in range(nz)]
        for n, (k, j, _) in enumerate(sym.slots):
            rows[k][j].append(n)
        self.any_free_row = [[_any([free[n] for n in rows[k][j]]) for j in range(m)]
                             for k in range(nz)]
        above: list[z3.BoolRef] = [z3.BoolVal(False)] * len(sym.slots)
        for n, (k, j, i) in sorted(enumerate(sym.slots), key=lambda x: -x[1][1]):
            up = sym.index.get((k, j + 1, i >> 1))
            above[n] = free[n] if up is None else z3.Or(free[n], above[up])
        self.free_above = above
        first: list[z3.BoolRef] = [z3.BoolVal(False)] * len(sym.slots)
        for k in range(nz):
            for j in range(m):
                seen: z3.BoolRef = z3.BoolVal(False)
                for n in rows[k][j]:
                    first[n] = z3.And(free[n], z3.Not(seen))
                    seen = z3.Or(seen, free[n])
        self.first_in_row = first

    def avail(self, k: int, order: int) -> z3.BoolRef:
        """Zone k has a free block of order `order` or above."""
        return _any(self.any_free_row[k][order:])


def _or(a: tuple, b: tuple) -> tuple:
    """The effects (free off, free on, alloc off, alloc on) of whichever of two
    exclusive operations ran."""
    return tuple(_any([x for x in (p, q) if x is not None]) if p is not None or q is not None
                 else None for p, q in zip(a, b, strict=True))
