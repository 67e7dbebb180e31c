"""kmalloc over the general caches as a Z3 transition system (see `base.py`).

The universe is fixed when the encoding is built: a pool of `npages` pages (pfn 0
kept back, as the checker's `pages` does, so that no allocation is NULL), a
few request sizes (`SIZES`, one per size class the encoding serves) and, for
each size class and GFP_DMA or not, one cache whose geometry is the reference's
(`slab.Geometry`, from `KmemCache.__init__`). One state holds

    owner[x]       Int   the cache whose slab page x is (-1: none), so no page is
                         ever two caches' (the audit of `pages`)
    live[c][x][i]  Bool  object i of cache c's slab at x is a live allocation, if
                         x is c's (a live bit on another cache's page means nothing) ...
    asked[c][x][i] Int   ... of this many bytes (0 when not live)
    dma[c][x][i]   Bool  ... asked with GFP_DMA (only under "dma_mixed": otherwise
                         it is the cache's, a constant)
    ev_alloc       Bool  the last step called alloc_pages ...
    ev_pfn, ev_order Int ... which gave the block at ev_pfn (-1: refused)

The transitions are `mmcheck.model.kmalloc.Kmalloc`'s seen through the contract:
kmalloc(size, flags) raises ValueError for a negative size, returns
ZERO_SIZE_PTR for 0 and None above KMALLOC_MAX_SIZE; a size class's request
takes a free object of a slab of its cache (any: the cache's choice), else grows
the cache by one page from the pool (any free page) or returns None when none
is left; a large request (above 128 KiB) asks the pool for its order and is
refused (the pool is smaller than 64 pages), so no large allocation ever lives;
kfree takes back a live allocation (0 and ZERO_SIZE_PTR do nothing), ksize says
its class; ValueError for any other address. As in `slab.py`, every object of
the pool fits in its cache's array cache, so kfree never gives a page back.

Mutations seed the bugs of `examples/kmalloc/buggy/` (see `MUTATIONS`); the
fourth example, large_leak.py, needs a large allocation to live, which this
universe never has.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from mmcheck.checker.symbolic.slab import Geometry
from mmcheck.model.kmalloc import (
    ARCH_KMALLOC_MINALIGN,
    GFP_DMA,
    KMALLOC_MAX_CACHE_SIZE,
    KMALLOC_MAX_SIZE,
    VOCABULARY,
    ZERO_SIZE_PTR,
    get_order,
    kmalloc_class,
)
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.model.vocabulary import Vocabulary

SIZES = (1000, 2000)  # classes 1024 (4 a page) and 2048 (2 a page)
LARGE = KMALLOC_MAX_CACHE_SIZE + 1  # from the pool, order 6
TOO_BIG = KMALLOC_MAX_SIZE + 1
OPS = ("kmalloc", "kfree", "ksize")

MUTATIONS: Mapping[str, str] = {
    "class_too_small": "the size class is rounded down: 1 << (size.bit_length() - 1)",
    "dma_mixed": "GFP_DMA is ignored: DMA requests share the normal caches",
    "kfree_null": "kfree(NULL) raises ValueError",
}


@dataclass(frozen=True)
class Cache:
    """One general cache of the universe: its class, DMA or not, its geometry."""

    size: int
    dma: bool
    geo: Geometry


@dataclass(frozen=True)
class KVars:
    owner: tuple[z3.ArithRef, ...]  # per page
    live: tuple[z3.BoolRef, ...]  # per object slot (see SymbolicKmalloc.slots)
    asked: tuple[z3.ArithRef, ...]
    dma: tuple[z3.BoolRef, ...]  # empty unless the mutation "dma_mixed"
    ev_alloc: z3.BoolRef
    ev_pfn: z3.ArithRef
    ev_order: z3.ArithRef
    bad: z3.ArithRef


@dataclass(frozen=True)
class KStepVars:
    op: z3.ArithRef
    size: z3.ArithRef
    flags: z3.ArithRef
    addr: z3.ArithRef  # kfree's and ksize's argument
    none: z3.BoolRef
    result: z3.ArithRef  # kmalloc's address, ksize's size
    raised: z3.BoolRef


class SymbolicKmalloc:
    """kmalloc with the caches serving `SIZES` over a pool of `npages` pages."""

    vocabulary: Vocabulary = VOCABULARY

    @staticmethod
    def max_pages() -> int:
        """The most pages the encoding takes: every cache's objects of the whole pool
        must fit in its array cache (so that kfree never flushes it)."""
        geos = [Geometry.of(kmalloc_class(s), ARCH_KMALLOC_MINALIGN) for s in SIZES]
        return min(g.array_limit // g.num for g in geos)

    def __init__(self, npages: int, mutation: str | None = None) -> None:
        if mutation is not None and mutation not in MUTATIONS:
            raise ValueError(f"SymbolicKmalloc: unknown mutation {mutation!r}; "
                             f"known: {', '.join(MUTATIONS)}")
        if npages >= 1 << get_order(LARGE):
            raise ValueError("SymbolicKmalloc: the pool must be too small for a large block")
        self.npages, self.mutation = npages, mutation
        dmas = (False,) if mutation == "dma_mixed" else (False, True)
        self.caches = [Cache(c, dma, Geometry.of(c, ARCH_KMALLOC_MINALIGN))
                       for c in sorted({self.size_class(s) for s in SIZES}) for dma in dmas]
        for c in self.caches:
            if c.geo.gfporder or c.geo.colour > 1 or c.geo.num * npages > c.geo.array_limit:
                raise ValueError(f"SymbolicKmalloc: the {c.size}-byte cache does not fit "
                                 f"the encoding at {npages} pages")
        self.pool = range(1, npages)  # pfn 0 is never given (address 0 is NULL)
        # object slots (cache index, page, address), by address
        self.slots = sorted(((k, x, x * PAGE_SIZE + c.geo.slab_size + i * c.geo.objsize)
                             for k, c in enumerate(self.caches) for x in self.pool
                             for i in range(c.geo.num)), key=lambda s: (s[2], s[0]))

    def size_class(self, size: int) -> int:
        """The class a request of `size` bytes (1 .. 128 KiB) lands in."""
        if self.mutation == "class_too_small":
            return max(32, 1 << (size.bit_length() - 1))
        return kmalloc_class(size)

    def cache_of(self, size: int, dma: bool) -> int:
        """The index of the cache a request of `size` bytes (GFP_DMA or not) uses."""
        want = (self.size_class(size), dma and self.mutation != "dma_mixed")
        return next(k for k, c in enumerate(self.caches) if (c.size, c.dma) == want)

    # -- states ---------------------------------------------------------------

    def fresh_state(self, tag: str) -> SymState:
        """A state of fresh z3 constants named after `tag`."""
        n = self.npages
        v = KVars(
            owner=tuple(z3.Int(f"{tag}.owner[{x}]") for x in range(n)),
            live=tuple(z3.Bool(f"{tag}.live[{k}][{a:#x}]") for k, _, a in self.slots),
            asked=tuple(z3.Int(f"{tag}.asked[{k}][{a:#x}]") for k, _, a in self.slots),
            dma=tuple(z3.Bool(f"{tag}.dma[{k}][{a:#x}]") for k, _, a in self.slots)
            if self.mutation == "dma_mixed" else (),
            ev_alloc=z3.Bool(f"{tag}.ev_alloc"), ev_pfn=z3.Int(f"{tag}.ev_pfn"),
            ev_order=z3.Int(f"{tag}.ev_order"), bad=z3.Int(f"{tag}.bad"))
        return self._present(v)

    def vars_of(self, s: SymState) -> KVars:
        """The constants behind a state made by `fresh_state`."""
        vs, n, m = list(s.variables), self.npages, len(self.slots)
        owner, rest = tuple(vs[:n]), vs[n:]
        d = m if self.mutation == "dma_mixed" else 0
        return KVars(owner, tuple(rest[:m]), tuple(rest[m:2 * m]),  # type: ignore[arg-type]
                     tuple(rest[2 * m:2 * m + d]), *rest[2 * m + d:])

    def dma_of(self, v: KVars, j: int) -> z3.BoolRef:
        """Slot j's allocation was asked with GFP_DMA."""
        return v.dma[j] if v.dma else z3.BoolVal(self.caches[self.slots[j][0]].dma)

    def page_held(self, v: KVars) -> list[z3.BoolRef]:
        """page x is a slab of some cache."""
        return [o != -1 for o in v.owner]

    def is_live(self, v: KVars, j: int) -> z3.BoolRef:
        """Slot j holds a live allocation: its bit, on a page of its cache."""
        k, x, _ = self.slots[j]
        return z3.And(v.live[j], v.owner[x] == k)

    def _present(self, v: KVars) -> SymState:
        """The vocabulary's view of the variables `v`."""
        held = self.page_held(v)
        objects = []
        for j, (k, x, a) in enumerate(self.slots):
            c = self.caches[k]
            objects.append((self.is_live(v, j), SymRecord("KObj", {
                "addr": z3.IntVal(a), "size": v.asked[j], "usable": z3.IntVal(c.geo.objsize),
                "dma": self.dma_of(v, j), "block": z3.If(held[x], x, -1),
                "next": self._next_live(v, j)})))
        blocks = tuple((held[x], SymRecord("Held", {
            "pfn": z3.IntVal(x), "order": z3.IntVal(0), "start": z3.IntVal(x * PAGE_SIZE),
            "end": z3.IntVal((x + 1) * PAGE_SIZE)})) for x in range(self.npages))
        event = SymRecord("PageEvent", {"op": z3.IntVal(0), "pfn": v.ev_pfn,
                                        "order": v.ev_order, "ok": z3.BoolVal(True)})
        values = {
            "npages": z3.IntVal(self.npages), "max_cache_size": z3.IntVal(KMALLOC_MAX_CACHE_SIZE),
            "max_size": z3.IntVal(KMALLOC_MAX_SIZE), "zero_size_ptr": z3.IntVal(ZERO_SIZE_PTR),
            "objects": SymCollection("KObj", tuple(objects)),
            "held": SymCollection("Held", blocks),
            "page_events": SymCollection("PageEvent", ((v.ev_alloc, event),)),
            "bad_page_frees": v.bad,
        }
        flat = (*v.owner, *v.live, *v.asked, *v.dma, v.ev_alloc,
                v.ev_pfn,
                v.ev_order, v.bad)
        return SymState(values, flat)

    def _next_live(self, v: KVars, j: int) -> z3.ArithRef:
        """The lowest live address above slot j's, -1 if none (KObj.next)."""
        a = self.slots[j][2]
        term: z3.ArithRef = z3.IntVal(-1)
        for i in range(len(self.slots) - 1, j, -1):
            if self.slots[i][2] > a:
                term = z3.If(self.is_live(v, i), self.slots[i][2], term)
        return term

    def init(self, s: SymState) -> z3.BoolRef:
        """Kmalloc just made: no slab, no allocation, no page event."""
        return self.assign(s, {}, {})

    def assign(self, s: SymState, held: Mapping[int, int], live: Mapping[int, tuple[int, int]],
               event: tuple[int, int] | None = None, bad: int = 0) -> z3.BoolRef:
        """s is exactly: pages held {pfn: cache index}, live allocations {addr: (size,
        cache index)}, the last step's alloc_pages event (pfn, order)."""
        v = self.vars_of(s)
        facts = [v.ev_alloc == (event is not None), v.bad == bad,
                 v.ev_pfn == (event[0] if event else 0), v.ev_order == (event[1] if event else 0)]
        facts += [o == held.get(x, -1) for x, o in enumerate(v.owner)]
        placed = {(k, a) for k, _, a in self.slots}
        if any((k, a) not in placed for a, (_, k) in live.items()) or \
                any(not 0 <= x < self.npages for x in held):
            return z3.BoolVal(False)
        for j, (k, _, a) in enumerate(self.slots):
            mine = a in live and live[a][1] == k
            facts += [v.live[j] == mine, v.asked[j] == (live[a][0] if mine else 0)]
        return z3.And(facts)  # (under "dma_mixed" the dma bits are left free)

    def well_formed(self, s: SymState) -> z3.BoolRef:
        """Domains: asked sizes among SIZES on live slots (0 elsewhere), ev_pfn -1 or a
        page with order 0, or -1 with a large request's order; nothing else."""
        v = self.vars_of(s)
        large = get_order(LARGE)
        facts = [v.bad >= 0, v.owner[0] == -1,
                 *[z3.And(o >= -1, o < len(self.caches)) for o in v.owner],
                 z3.If(v.ev_alloc, z3.Or(
            z3.And(v.ev_order == 0, z3.Or([v.ev_pfn == x for x in (-1, *self.pool)])),
            z3.And(v.ev_order == large, v.ev_pfn == -1)),
            z3.And(v.ev_pfn == 0, v.ev_order == 0))]
        for j in range(len(self.slots)):
            facts.append(z3.If(v.live[j], z3.Or([v.asked[j] == s for s in SIZES]),
                               v.asked[j] == 0))
            if v.dma:
                facts.append(z3.Implies(z3.Not(v.live[j]), z3.Not(v.dma[j])))
        return z3.And(facts)

    # -- steps ----------------------------------------------------------------

    def fresh_step(self, tag: str) -> SymStep:
        """A step of fresh z3 constants: which operation, its arguments, its result."""
        sv = KStepVars(z3.Int(f"{tag}.op"), z3.Int(f"{tag}.kmalloc.size"),
                       z3.Int(f"{tag}.kmalloc.flags"), z3.Int(f"{tag}.addr"),
                       z3.Bool(f"{tag}.none"), z3.Int(f"{tag}.result"), z3.Bool(f"{tag}.raised"))
        return SymStep(
            is_op={name: sv.op == j for j, name in enumerate(OPS)},
            args={"kmalloc": {"size": sv.size, "flags": sv.flags}, "kfree": {"addr": sv.addr},
                  "ksize": {"addr": sv.addr}},
            results={"kmalloc": SymOptional(sv.none, sv.result), "kfree": None,
                     "ksize": sv.result},
            raised=sv.raised, variables=tuple(getattr(sv, f.name) for f in fields(sv)))

    def step_vars(self, t: SymStep) -> KStepVars:
        """The constants behind a step made by `fresh_step`."""
        return KStepVars(*t.variables)  # type: ignore[arg-type]

    def decode_step(self, model: z3.ModelRef, t: SymStep) -> ConcreteStep:
        """The operation t performed in `model`, as a trace records it (base.decode_step)."""
        return decode_step(model, t)

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef:
        """Step t takes s to s2: one operation ran, as the reference runs it."""
        sv = self.step_vars(t)
        v, v2 = self.vars_of(s), self.vars_of(s2)
        is_op = [sv.op == j for j in range(len(OPS))]
        made: list[z3.BoolRef] = [z3.BoolVal(False)] * len(self.slots)
        freed: list[z3.BoolRef] = [z3.BoolVal(False)] * len(self.slots)
        grown = [[z3.BoolVal(False)] * self.npages for _ in self.caches]
        side = [z3.Or(is_op), v2.bad == v.bad,
                z3.Implies(z3.Not(is_op[0]), z3.And(sv.size == 0, sv.flags == 0,
                                                    z3.Not(v2.ev_alloc))),
                z3.Implies(is_op[0], sv.addr == 0),
                z3.Implies(z3.Not(v2.ev_alloc), z3.And(v2.ev_pfn == 0, v2.ev_order == 0)),
                z3.Implies(z3.Not(is_op[0]), z3.Not(sv.none))]
        side.append(z3.Implies(is_op[0], self._kmalloc(v, v2, sv, made, grown)))
        side.append(z3.Implies(is_op[1], self._kfree(v, sv, freed)))
        side.append(z3.Implies(is_op[2], self._ksize(v, sv)))
        for x, o in enumerate(v.owner):
            took = [z3.And(is_op[0], grown[k][x]) for k in range(len(self.caches))]
            side.append(v2.owner[x] == _first(took, o))
        for j, (k, x, _) in enumerate(self.slots):
            new = z3.And(is_op[0], made[j])
            gone = z3.And(is_op[1], freed[j])
            kept = z3.And(v.live[j], v.owner[x] == k)  # a stale bit is dropped
            stays = z3.And(kept, z3.Not(gone))
            side += [v2.live[j] == z3.Or(new, stays),
                     v2.asked[j] == z3.If(new, sv.size, z3.If(stays, v.asked[j], 0))]
            if v.dma:
                side.append(v2.dma[j] == z3.If(new, sv.flags == GFP_DMA,
                                               z3.And(v.dma[j], stays)))
        return z3.And(side)

    def _kmalloc(self, v: KVars, v2: KVars, sv: KStepVars, made: list[z3.BoolRef],
                 grown: list[list[z3.BoolRef]]) -> z3.BoolRef:
        """kmalloc(size, flags): the cases of __kmalloc over the universe's sizes."""
        large = get_order(LARGE)
        quiet = z3.And(z3.Not(v2.ev_alloc), z3.Not(sv.raised))
        cases = [z3.And(sv.size == -1, sv.raised, z3.Not(v2.ev_alloc), z3.Not(sv.none),
                        sv.result == 0),
                 z3.And(sv.size == 0, quiet, z3.Not(sv.none), sv.result == ZERO_SIZE_PTR),
                 z3.And(sv.size == TOO_BIG, quiet, sv.none, sv.result == 0),
                 z3.And(sv.size == LARGE, z3.Not(sv.raised), sv.none, sv.result == 0,
                        v2.ev_alloc, v2.ev_pfn == -1, v2.ev_order == large)]
        used = self.page_held(v)
        for size in SIZES:
            for dma in (False, True):
                k = self.cache_of(size, dma)
                flag = sv.flags == (GFP_DMA if dma else 0)
                picks = [(j, x, a) for j, (kk, x, a) in enumerate(self.slots) if kk == k]
                free = [z3.And(v.owner[x] == k, z3.Not(v.live[j])) for j, x, _ in picks]
                has_free = z3.Or(free)
                can = z3.Or([z3.Not(used[x]) for x in self.pool])
                fresh = [z3.And(z3.Not(used[x]), v2.ev_pfn == x, sv.result == a)
                         for _, x, a in picks]
                reuse = [z3.And(f, sv.result == a) for f, (_, _, a) in zip(free, picks,
                                                                           strict=True)]
                go = z3.And(sv.size == size, flag)
                for (j, x, _), f, g in zip(picks, reuse, fresh, strict=True):
                    made[j] = z3.Or(made[j], z3.And(go, z3.If(has_free, f, g)))
                    grown[k][x] = z3.Or(grown[k][x], z3.And(go, z3.Not(has_free), g))
                cases.append(z3.And(go, z3.Not(sv.raised), z3.If(
                    has_free, z3.And(z3.Not(v2.ev_alloc), z3.Not(sv.none), z3.Or(reuse)),
                    z3.And(v2.ev_alloc, v2.ev_order == 0, z3.If(
                        can, z3.And(z3.Not(sv.none), z3.Or(fresh)),
                        z3.And(sv.none, sv.result == 0, v2.ev_pfn == -1))))))
        flags_ok = z3.Or(sv.flags == 0, sv.flags == GFP_DMA)
        return z3.And(flags_ok, z3.Or(cases))

    def _hits(self, v: KVars, addr: z3.ArithRef) -> list[z3.BoolRef]:
        """hits[j]: addr is slot j's address and slot j is live."""
        return [z3.And(addr == a, self.is_live(v, j)) for j, (_, _, a) in enumerate(self.slots)]

    def _kfree(self, v: KVars, sv: KStepVars, freed: list[z3.BoolRef]) -> z3.BoolRef:
        """kfree(addr): a live allocation goes back; 0 and ZERO_SIZE_PTR do nothing."""
        hits = self._hits(v, sv.addr)
        for j, h in enumerate(hits):
            freed[j] = h
        noop = z3.Or(sv.addr == ZERO_SIZE_PTR,
                     z3.And(sv.addr == 0, self.mutation != "kfree_null"))
        return z3.And(sv.raised == z3.Not(z3.Or(noop, *hits)), sv.result == 0)

    def _ksize(self, v: KVars, sv: KStepVars) -> z3.BoolRef:
        """ksize(addr): the class of a live allocation, 0 for ZERO_SIZE_PTR."""
        hits = self._hits(v, sv.addr)
        sizes = [z3.And(h, sv.result == self.caches[self.slots[j][0]].geo.objsize)
                 for j, h in enumerate(hits)]
        return z3.If(sv.addr == ZERO_SIZE_PTR, z3.And(z3.Not(sv.raised), sv.result == 0),
                     z3.If(z3.Or(hits), z3.And(z3.Not(sv.raised), z3.Or(sizes)),
                           z3.And(sv.raised, sv.result == 0)))



def _first(took: list[z3.BoolRef], otherwise: z3.ArithRef) -> z3.ArithRef:
    """The index of the first term that holds, else `otherwise` (at most one holds)."""
    term = otherwise
    for k in range(len(took) - 1, -1, -1):
        term = z3.If(took[k], k, term)
    return term
