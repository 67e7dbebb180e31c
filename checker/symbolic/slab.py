"""One slab cache (KmemCache) as a Z3 transition system (see `base.py` for the protocol).

The universe is fixed when the encoding is built, from the reference's own sizing
(`KmemCache.__init__`: objsize, gfporder, num, colouring): a page pool of `npages`
pages whose slab slots are the blocks of 2**gfporder pages aligned inside it, and
`num` object slots per slab slot, each at a known address. One state holds

    destroyed      Bool  destroy() succeeded
    held[x]        Bool  the block at slab slot x is held from `pages` (the audit)
    known[x]       Bool  the cache's own table lists the slab at x (the same
                         variable as held[x] unless a mutation tells them apart)
    live[k]        Bool  object slot k is a live object (alloc returned it)
    ev_alloc       Bool  the last step called alloc_pages(gfporder) ...
    ev_pfn         Int   ... which gave the block at ev_pfn (-1: refused)
    ev_free[x]     Bool  the last step gave the block at x back with free_pages
    bad            Int   free_pages calls `pages` refused so far

Every address the transitions compare is a constant (a slot's address), and the
symbolic arguments are touched only through atoms `addr == a_k` (and, for the
interior-pointer mutation, `a_k < addr < a_k + objsize`), so each step is
propositional over a few hundred atoms.

The transitions are the reference's (mm/slab.c as model/slab.py has it) seen
through the contract: alloc() takes a free object of a slab the cache holds when
there is one (any: which one is the cache's choice, the reference's array caches
pick one of them) and otherwise grows one slab from `pages` (any block the page
allocator could give) and returns one of its objects, or None when `pages`
refuses; free() takes back exactly a live object; shrink() gives back every slab
with no live object and says how many pages; destroy() refuses while objects are
live, otherwise gives every slab back; every call after destroy() raises; write()
raises (the encoding models caches without debugging).

With `white_box=True` (the reference, unmutated) a state also holds the
reference's own structures (`WbVars`), as mm/slab.c keeps them for one CPU:

    inuse[x]       Int   struct slab inuse
    partial[x]     Int   position on slabs_partial (-1: not on it); full[x] Bool:
                         on slabs_full; a held slab on neither is on slabs_free
    chain[k]       Int   position of object k on its slab's kmem_bufctl_t chain
                         (0 = slab->free; -1: not on it)
    entry[k]       Int   index of object k in the array cache's entry[] (-1: not)
    avail, free_objects, touched   array_cache avail, kmem_list3 free_objects,
                         array_cache touched

and presents mgmt, cached, free_objects and nr_partial from them. alloc() then
returns exactly the reference's object: entry[avail-1] (____cache_alloc), else
cache_alloc_refill takes min(batchcount, 16 until touched) objects from the slabs
on slabs_partial in list order, each slab's in chain order (a slab left without
free objects to slabs_full, one left with some to the head of slabs_partial),
else cache_grow's new slab gives its first objects; free() pushes on entry[];
shrink() and destroy() drain entry[] in order onto the slabs' chains (free_block:
a slab still in use to the tail of slabs_partial, an empty one to slabs_free) and
give back every slab on slabs_free. These transitions are conjoined with the
contract-level ones above, which the reference meets too (the agreement test).
`wb_shape` (each object slot is exactly one of live / cached / on its chain,
positions without gaps, list membership by inuse, free_objects the sum) is assumed
in every state only after Z3 proved it inductive for this encoding
(`shape_is_inductive`): it is at 2 pages in seconds, not at 4 within its rlimit
(the alloc step), which is why the driver encodes the white box only up to
WHITE_BOX_PAGES and leaves the white-box properties out above.

Two restrictions of the sizes keep the reference's behaviour exactly this, both
asserted in __init__: the cache has at most one colour (every slab's objects start
at the same offset: colour_next stays 0), and all objects of the pool fit in one
array cache, so free() never flushes it (no cache_flusharray, no page goes back
during free(), and free_block never destroys a slab since free_objects stays
below free_limit).

Mutations seed the bugs of `examples/slab/buggy/` (see `MUTATIONS`).
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
    SymValue,
    decode_step,
)
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.model.slab import BATCHREFILL_LIMIT, BUFCTL_END, VOCABULARY, KmemCache
from mmcheck.model.vocabulary import Vocabulary

OPS = ("alloc", "free", "shrink", "destroy", "write")

# The seeded bugs, each as a student writes it (examples/slab/buggy/<name>.py).
MUTATIONS: Mapping[str, str] = {
    "double_free": "free() accepts any object slot of a held slab, live or not",
    "interior_pointer": "free() of an address inside a live object frees that object",
    "shrink_frees_partial": "shrink() gives back slabs with at most one live object",
    "shrink_keeps_empty": "shrink() keeps one completely free slab (the lowest)",
    "wrong_num_objs": "slabinfo's num_objs is active_slabs * objperslab",
    "lost_page_on_empty": "free() of a slab's last object forgets the slab, its block "
                          "still held from `pages`",
    "destroy_leaks": "destroy() forgets its slabs without giving their pages back",
}
SHAPE_RLIMIT = 200_000_000  # the solver's work to prove wb_shape inductive
_SPLIT = ("lost_page_on_empty", "destroy_leaks")  # the mutations that tell known from held

# The white-box names the contract-level encoding does not model (the reference's
# own structures); white_box=True models them.
UNMODELLED = frozenset(("mgmt", "cached", "free_objects", "nr_partial"))


@dataclass(frozen=True)
class SlabVars:
    """The z3 constants of one state."""

    destroyed: z3.BoolRef
    held: tuple[z3.BoolRef, ...]
    known: tuple[z3.BoolRef, ...]
    live: tuple[z3.BoolRef, ...]
    ev_alloc: z3.BoolRef
    ev_pfn: z3.ArithRef
    ev_free: tuple[z3.BoolRef, ...]
    bad: z3.ArithRef
    wb: WbVars | None  # the reference's own structures (white_box encodings only)


@dataclass(frozen=True)
class WbVars:
    """The z3 constants of the reference's own structures in one state (white box).
    A slab slot not held and its object slots keep the defaults (0, -1, False)."""

    inuse: tuple[z3.ArithRef, ...]  # per slab slot: struct slab inuse
    prank: tuple[z3.ArithRef, ...]  # per slab slot: position on slabs_partial (-1: not on)
    full: tuple[z3.BoolRef, ...]  # per slab slot: on slabs_full
    chain: tuple[z3.ArithRef, ...]  # per object slot: position on its slab's free chain
    pos: tuple[z3.ArithRef, ...]  # per object slot: index in entry[] of the array cache
    avail: z3.ArithRef  # array_cache avail
    free_objects: z3.ArithRef  # kmem_list3 free_objects
    touched: z3.BoolRef  # array_cache touched


@dataclass(frozen=True)
class WhiteBox:
    """The white-box state as plain data (what `white_of` reads off a KmemCache)."""

    inuse: Mapping[int, int]  # first pfn -> inuse
    partial: Sequence[int]  # slabs_partial, head first
    full: frozenset[int]
    chain: Mapping[int, int]  # object address -> position on its slab's free chain
    entry: Sequence[int]  # the array cache, entry[0] first
    free_objects: int
    touched: bool

    @staticmethod
    def empty() -> WhiteBox:
        """A cache just created."""
        return WhiteBox({}, (), frozenset(), {}, (), 0, False)


def white_of(cache: KmemCache) -> WhiteBox:
    """The reference's structures (one CPU), as the white-box encoding holds them."""
    chain: dict[int, int] = {}
    for slab in cache.slabs.values():
        i, n = slab.free, 0
        while i != BUFCTL_END and n < cache.num:
            chain[slab.s_mem + i * cache.objsize] = n
            i, n = slab.bufctl[i], n + 1
    return WhiteBox({p: s.inuse for p, s in cache.slabs.items()},
                    tuple(cache.l3.slabs_partial), frozenset(cache.l3.slabs_full), chain,
                    tuple(cache.array[0].entry), cache.l3.free_objects,
                    cache.array[0].touched)


@dataclass(frozen=True)
class SlabStepVars:
    """The z3 constants of one step: which operation (op == OPS.index(name)),
    its arguments, its result and whether it raised."""

    op: z3.ArithRef
    free_addr: z3.ArithRef
    write_addr: z3.ArithRef
    write_len: z3.ArithRef
    alloc_none: z3.BoolRef
    alloc_addr: z3.ArithRef
    shrink_pages: z3.ArithRef
    raised: z3.BoolRef


@dataclass(frozen=True)
class Geometry:
    """What kmem_cache_create decided for (size, align), read off the reference."""

    objsize: int
    gfporder: int
    num: int
    colour: int
    colour_off: int
    slab_size: int
    array_limit: int
    batchcount: int = 0
    free_limit: int = 0

    @staticmethod
    def of(size: int, align: int) -> Geometry:
        """The reference's sizing for a cache of `size` bytes aligned to `align`."""
        c = KmemCache("symbolic", size, align, None)  # type: ignore[arg-type]  # no page taken
        return Geometry(c.objsize, c.gfporder, c.num, c.colour, c.colour_off, c.slab_size,
                        c.array[0].limit, c.array[0].batchcount, c.l3.free_limit)


class SymbolicSlab:
    """One KmemCache of `size`-byte objects aligned to `align` over `npages` pages, in Z3.

    A state's `variables` are the constants of `SlabVars` flattened in field order;
    a step's those of `SlabStepVars`.
    """

    vocabulary: Vocabulary = VOCABULARY

    @staticmethod
    def max_pages(size: int, align: int) -> int:
        """The most pages the encoding takes for this cache: all its objects must fit
        in one array cache (so that free() never flushes it)."""
        g = Geometry.of(size, align)
        return g.array_limit // g.num << g.gfporder

    def __init__(self, size: int, align: int, npages: int,
                 mutation: str | None = None, white_box: bool = False,
                 assume_shape: bool = True) -> None:
        if mutation is not None and mutation not in MUTATIONS:
            raise ValueError(f"SymbolicSlab: unknown mutation {mutation!r}; "
                             f"known: {', '.join(MUTATIONS)}")
        if white_box and mutation is not None:
            raise ValueError("SymbolicSlab: the mutations are of the contract-level "
                             "encoding (white_box=False)")
        g = Geometry.of(size, align)
        span = 1 << g.gfporder
        self.bases = [x for x in range(0, npages, span) if x + span <= npages]
        if g.colour > 1:
            raise ValueError(f"SymbolicSlab: a cache of {size}-byte objects has {g.colour} "
                             f"colours; the encoding covers caches with at most one")
        if len(self.bases) * g.num > g.array_limit:
            raise ValueError(f"SymbolicSlab: {npages} pages hold {len(self.bases) * g.num} "
                             f"objects of {g.objsize} bytes, more than one array cache "
                             f"({g.array_limit}); use at most "
                             f"{g.array_limit // g.num * span} pages")
        # free() never flushes, so a slab empties only while shrink drains the array
        # cache, and is given back at once: no slab is ever destroyed by free_block
        assert len(self.bases) * g.num < g.free_limit, "free_block would destroy a slab"
        self.size, self.align, self.npages, self.mutation = size, align, npages, mutation
        self.white_box = white_box
        self._shape_proved: bool | None = None if assume_shape else False
        self.geo = g
        self.s_mem = {x: x * PAGE_SIZE + g.slab_size for x in self.bases}
        # object slots in address order: (slab slot index, address)
        self.slots = [(b, self.s_mem[x] + i * g.objsize)
                      for b, x in enumerate(self.bases) for i in range(g.num)]
        self.of_slab = [[k for k, (b2, _) in enumerate(self.slots) if b2 == b]
                        for b in range(len(self.bases))]

    # -- states ---------------------------------------------------------------

    def fresh_state(self, tag: str) -> SymState:
        """A state of fresh z3 constants named after `tag`."""
        nb, nk = len(self.bases), len(self.slots)
        held = tuple(z3.Bool(f"{tag}.held[{x}]") for x in self.bases)
        known = held if self.mutation not in _SPLIT else tuple(
            z3.Bool(f"{tag}.known[{x}]") for x in self.bases)
        v = SlabVars(
            destroyed=z3.Bool(f"{tag}.destroyed"), held=held, known=known,
            live=tuple(z3.Bool(f"{tag}.live[{a:#x}]") for _, a in self.slots),
            ev_alloc=z3.Bool(f"{tag}.ev_alloc"), ev_pfn=z3.Int(f"{tag}.ev_pfn"),
            ev_free=tuple(z3.Bool(f"{tag}.ev_free[{x}]") for x in self.bases),
            bad=z3.Int(f"{tag}.bad"), wb=self._fresh_wb(tag) if self.white_box else None)
        assert len(v.live) == nk and len(v.held) == nb
        return self._present(v)

    def _fresh_wb(self, tag: str) -> WbVars:
        """Fresh constants of the reference's structures."""
        addrs = [a for _, a in self.slots]
        return WbVars(
            inuse=tuple(z3.Int(f"{tag}.inuse[{x}]") for x in self.bases),
            prank=tuple(z3.Int(f"{tag}.partial[{x}]") for x in self.bases),
            full=tuple(z3.Bool(f"{tag}.full[{x}]") for x in self.bases),
            chain=tuple(z3.Int(f"{tag}.chain[{a:#x}]") for a in addrs),
            pos=tuple(z3.Int(f"{tag}.entry[{a:#x}]") for a in addrs),
            avail=z3.Int(f"{tag}.avail"), free_objects=z3.Int(f"{tag}.free_objects"),
            touched=z3.Bool(f"{tag}.touched"))

    def vars_of(self, s: SymState) -> SlabVars:
        """The constants behind a state made by `fresh_state`."""
        nb, nk, vs = len(self.bases), len(self.slots), list(s.variables)
        out: list[object] = []
        for f in fields(SlabVars):
            if f.name == "wb":
                out.append(self._wb_of(vs) if self.white_box else None)
            elif f.name in ("held", "ev_free"):
                out.append(tuple(vs[:nb]))
                del vs[:nb]
            elif f.name == "known":
                if self.mutation in _SPLIT:
                    out.append(tuple(vs[:nb]))
                    del vs[:nb]
                else:
                    out.append(out[-1])
            elif f.name == "live":
                out.append(tuple(vs[:nk]))
                del vs[:nk]
            else:
                out.append(vs.pop(0))
        return SlabVars(*out)  # type: ignore[arg-type]

    def _wb_of(self, vs: list[z3.ExprRef]) -> WbVars:
        """The white-box constants at the end of a state's variables (`_flat`'s order)."""
        nb, nk = len(self.bases), len(self.slots)
        cut = [nb, nb, nb, nk, nk, 1, 1, 1]
        parts = []
        at = len(vs) - sum(cut)
        for n in cut:
            parts.append(tuple(vs[at:at + n]))
            at += n
        del vs[len(vs) - sum(cut):]
        return WbVars(*parts[:5], parts[5][0], parts[6][0], parts[7][0])  # type: ignore[arg-type]

    def _flat(self, v: SlabVars) -> tuple[z3.ExprRef, ...]:
        known = v.known if self.mutation in _SPLIT else ()
        w = v.wb
        white = () if w is None else (*w.inuse, *w.prank, *w.full, *w.chain, *w.pos,
                                      w.avail, w.free_objects, w.touched)
        return (v.destroyed, *v.held, *known, *v.live, v.ev_alloc, v.ev_pfn, *v.ev_free, v.bad,
                *white)

    def _present(self, v: SlabVars) -> SymState:
        """The vocabulary's view of the variables `v` (white-box structures left out)."""
        g = self.geo
        span = 1 << g.gfporder
        inuse = [z3.Sum([z3.If(v.live[k], 1, 0) for k in ks]) for ks in self.of_slab]
        slabs = tuple((v.held[b], SymRecord("Slab", {
            "pfn": z3.IntVal(x), "order": z3.IntVal(g.gfporder),
            "start": z3.IntVal(x * PAGE_SIZE), "end": z3.IntVal((x + span) * PAGE_SIZE),
            "s_mem": z3.IntVal(self.s_mem[x]), "inuse": inuse[b]}))
            for b, x in enumerate(self.bases))
        objects = tuple((v.live[k], SymRecord("Obj", {
            "addr": z3.IntVal(a),
            "slab": z3.If(v.held[b], self.bases[b], -1),
            "next": self._next_live(v, k)}))
            for k, (b, a) in enumerate(self.slots))
        events = ((v.ev_alloc, _event(0, v.ev_pfn, g.gfporder)),) + tuple(
            (v.ev_free[b], _event(1, z3.IntVal(x), g.gfporder))
            for b, x in enumerate(self.bases))
        values = {
            "size": z3.IntVal(self.size), "align": z3.IntVal(self.align),
            "objsize": z3.IntVal(g.objsize), "npages": z3.IntVal(self.npages),
            "destroyed": v.destroyed,
            "slabs": SymCollection("Slab", slabs),
            "objects": SymCollection("Obj", objects),
            "info": self._info(v),
            "page_events": SymCollection("PageEvent", events),
            "bad_page_frees": v.bad,
            "num": z3.IntVal(g.num), "gfporder": z3.IntVal(g.gfporder),
            "colour": z3.IntVal(g.colour), "colour_off": z3.IntVal(g.colour_off),
            "slab_size": z3.IntVal(g.slab_size), "array_limit": z3.IntVal(g.array_limit),
            "debug": z3.BoolVal(False),
            "debug_broken": SymCollection("DebugObj", ()),
        }
        if v.wb is not None:
            values.update(self._present_white(v, v.wb))
        return SymState(values, self._flat(v))

    def _present_white(self, v: SlabVars, w: WbVars) -> dict[str, SymValue]:
        """mgmt, cached, free_objects, nr_partial as KmemCache.white_box() gives them."""
        g = self.geo
        mgmt = []
        for b, x in enumerate(self.bases):
            ks = self.of_slab[b]
            first: z3.ArithRef = z3.IntVal(BUFCTL_END)  # slab.free: the chain's head
            for i in reversed(range(len(ks))):
                first = z3.If(w.chain[ks[i]] == 0, i, first)
            on_list = z3.If(w.prank[b] >= 0, 0, z3.If(w.full[b], 1, 2))
            mgmt.append((v.held[b], SymRecord("Mgmt", {
                "pfn": z3.IntVal(x), "s_mem": z3.IntVal(self.s_mem[x]),
                "colouroff": z3.IntVal(g.slab_size), "inuse": w.inuse[b],
                "num": z3.IntVal(g.num), "free": first,
                "chain": _count(w.chain[k] >= 0 for k in ks), "on_list": on_list,
                "live_objs": _count(v.live[k] for k in ks),
                "cached_objs": _count(w.pos[k] >= 0 for k in ks)})))
        cached = tuple((w.pos[k] >= 0, SymRecord("CachedObj", {
            "addr": z3.IntVal(a), "slab": z3.IntVal(self.bases[b]), "cpu": z3.IntVal(0),
            "pos": w.pos[k], "live": v.live[k]})) for k, (b, a) in enumerate(self.slots))
        return {"mgmt": SymCollection("Mgmt", tuple(mgmt)),
                "cached": SymCollection("CachedObj", cached),
                "free_objects": w.free_objects,
                "nr_partial": _count(r >= 0 for r in w.prank)}

    def _next_live(self, v: SlabVars, k: int) -> z3.ArithRef:
        """The lowest live object address above slot k's, -1 if none (Obj.next)."""
        term: z3.ArithRef = z3.IntVal(-1)
        for j in range(len(self.slots) - 1, k, -1):
            term = z3.If(v.live[j], self.slots[j][1], term)
        return term

    def _info(self, v: SlabVars) -> SymRecord:
        """slabinfo() as the cache reports it from its own table (zero after destroy)."""
        g = self.geo
        slabs = z3.Sum([z3.If(h, 1, 0) for h in v.known])
        active = z3.Sum([z3.If(z3.And(v.known[b], z3.Or([v.live[k] for k in ks])), 1, 0)
                         for b, ks in enumerate(self.of_slab)])
        listed = active if self.mutation == "wrong_num_objs" else slabs
        row = {"active_objs": z3.Sum([z3.If(x, 1, 0) for x in v.live]),
               "num_objs": listed * g.num, "objsize": z3.IntVal(g.objsize),
               "objperslab": z3.IntVal(g.num), "pagesperslab": z3.IntVal(1 << g.gfporder),
               "active_slabs": active, "num_slabs": slabs}
        return SymRecord("SlabInfo", {n: z3.If(v.destroyed, 0, t) for n, t in row.items()})

    def init(self, s: SymState) -> z3.BoolRef:
        """s is a cache just created: no slab, no object, no page event."""
        return self.assign(s, held=(), live=(), white=WhiteBox.empty())

    def well_formed(self, s: SymState) -> z3.BoolRef:
        """Domain facts: ev_pfn is -1 or a slab slot when alloc_pages was called, else 0;
        the refused-free counter is not negative. White box: the shape of the
        reference's structures (`wb_shape`), once `shape_is_inductive` proved it holds
        in every reachable state. The rest is the spec's to prove."""
        v = self.vars_of(s)
        facts = self._domain(v)
        if v.wb is not None and self.shape_is_inductive():
            facts.append(self.wb_shape(v, v.wb))
        return z3.And(facts)

    def _domain(self, v: SlabVars) -> list[z3.BoolRef]:
        """ev_pfn and the refused-free counter in their domains."""
        return [z3.If(v.ev_alloc, z3.Or([v.ev_pfn == x for x in (-1, *self.bases)]),
                      v.ev_pfn == 0),
                v.bad >= 0]

    def wb_shape(self, v: SlabVars, w: WbVars) -> z3.BoolRef:
        """The reference's structures are well linked: each object slot of a held slab
        is exactly one of live, in the array cache, on its slab's free chain; the
        chain positions of a slab are 0 .. c-1 (c of them) and inuse is num - c, not
        0 (no slab rests on slabs_free); a slab is on slabs_partial below num, on
        slabs_full at num; the partial list's positions and the array cache's entries
        are 0 .. n-1; free_objects is the free objects on the slabs; a slot not held
        keeps the defaults. Not the spec's: an assumption only once proved inductive."""
        num, nb = self.geo.num, len(self.bases)
        facts = [w.free_objects == z3.Sum([z3.If(v.held[b], num - w.inuse[b], 0)
                                           for b in range(nb)] or [z3.IntVal(0)])]
        facts += _ranks(w.pos, w.avail, len(self.slots))
        facts += _distinct_below(w.prank, nb) + [
            z3.Implies(r > 0, z3.Or([q == r - 1 for q in w.prank])) for r in w.prank]
        for b, ks in enumerate(self.of_slab):
            held = _ranks([w.chain[k] for k in ks], num - w.inuse[b], num)
            held += [w.inuse[b] > 0,
                     (w.prank[b] >= 0) == (w.inuse[b] < num), w.full[b] == (w.inuse[b] == num)]
            held += [z3.PbEq([(v.live[k], 1), (w.pos[k] >= 0, 1), (w.chain[k] >= 0, 1)], 1)
                     for k in ks]
            idle = [w.inuse[b] == 0, w.prank[b] == -1, z3.Not(w.full[b])]
            idle += [z3.And(z3.Not(v.live[k]), w.pos[k] == -1, w.chain[k] == -1) for k in ks]
            facts.append(z3.If(v.held[b], z3.And(held), z3.And(idle)))
        return z3.And(facts)

    def shape_is_inductive(self) -> bool:
        """wb_shape holds initially and every step keeps it (decided once per encoding,
        one query per operation: Z3 proves it within SHAPE_RLIMIT, else the encoding
        does without it and the white-box properties are rarely inductive)."""
        if self._shape_proved is None:
            s, t, s2 = self.fresh_state("shape"), self.fresh_step("shape.t"), \
                self.fresh_state("shape'")
            v, v2 = self.vars_of(s), self.vars_of(s2)
            assert v.wb is not None and v2.wb is not None
            first = z3.Solver()
            first.add(self.init(s), z3.Not(self.wb_shape(v, v.wb)))
            proved = first.check() == z3.unsat
            step = [*self._domain(v), self.wb_shape(v, v.wb), self.trans(s, t, s2),
                    z3.Not(self.wb_shape(v2, v2.wb))]
            for j in range(len(OPS)):
                if proved:
                    one = z3.Solver()
                    one.set("rlimit", SHAPE_RLIMIT)
                    one.add(*step, self.step_vars(t).op == j)
                    proved = one.check() == z3.unsat
            self._shape_proved = proved
        return self._shape_proved

    def assign(self, s: SymState, held: Sequence[int], live: Sequence[int],
               known: Sequence[int] | None = None, destroyed: bool = False,
               events: Sequence[tuple[int, int]] = (), bad: int = 0,
               white: WhiteBox | None = None) -> z3.BoolRef:
        """s holds exactly these blocks (first pfns) and live objects (addresses), the
        last step made these page events ((op, pfn) pairs), and (white-box encodings,
        if given) these reference structures. False if one has no slot."""
        v = self.vars_of(s)
        known = held if known is None else known
        addrs = [a for _, a in self.slots]
        allocs = [p for op, p in events if op == 0]
        frees = [p for op, p in events if op == 1]
        if not (set(held) | set(known) | set(frees)) <= set(self.bases) \
                or not set(live) <= set(addrs) or len(allocs) > 1:
            return z3.BoolVal(False)
        facts = [v.destroyed == destroyed, v.bad == bad, v.ev_alloc == bool(allocs),
                 v.ev_pfn == (allocs[0] if allocs else 0)]
        facts += [h == (x in held) for h, x in zip(v.held, self.bases, strict=True)]
        facts += [h == (x in known) for h, x in zip(v.known, self.bases, strict=True)]
        facts += [f == (x in frees) for f, x in zip(v.ev_free, self.bases, strict=True)]
        facts += [x == (a in live) for x, a in zip(v.live, addrs, strict=True)]
        if v.wb is not None and white is not None:
            if not (set(white.chain) | set(white.entry)) <= set(addrs):
                return z3.BoolVal(False)
            facts += self._assign_white(v.wb, white)
        return z3.And(facts)

    def _assign_white(self, w: WbVars, white: WhiteBox) -> list[z3.BoolRef]:
        """The white-box constants equal `white`."""
        addrs = [a for _, a in self.slots]
        entry = list(white.entry)
        partial = list(white.partial)
        facts = [w.free_objects == white.free_objects, w.touched == white.touched,
                 w.avail == len(entry)]
        for b, x in enumerate(self.bases):
            facts += [w.inuse[b] == white.inuse.get(x, 0), w.full[b] == (x in white.full),
                      w.prank[b] == (partial.index(x) if x in partial else -1)]
        for k, a in enumerate(addrs):
            facts += [w.chain[k] == white.chain.get(a, -1),
                      w.pos[k] == (entry.index(a) if a in entry else -1)]
        return facts

    # -- steps ----------------------------------------------------------------

    def fresh_step(self, tag: str) -> SymStep:
        """A step of fresh z3 constants: which operation, its arguments, its result."""
        sv = SlabStepVars(
            op=z3.Int(f"{tag}.op"), free_addr=z3.Int(f"{tag}.free.addr"),
            write_addr=z3.Int(f"{tag}.write.addr"), write_len=z3.Int(f"{tag}.write.length"),
            alloc_none=z3.Bool(f"{tag}.alloc.none"), alloc_addr=z3.Int(f"{tag}.alloc.result"),
            shrink_pages=z3.Int(f"{tag}.shrink.result"), raised=z3.Bool(f"{tag}.raised"))
        return SymStep(
            is_op={name: sv.op == j for j, name in enumerate(OPS)},
            args={"alloc": {}, "free": {"addr": sv.free_addr}, "shrink": {}, "destroy": {},
                  "write": {"addr": sv.write_addr, "length": sv.write_len}},
            results={"alloc": SymOptional(sv.alloc_none, sv.alloc_addr), "free": None,
                     "shrink": sv.shrink_pages, "destroy": None, "write": None},
            raised=sv.raised,
            variables=tuple(getattr(sv, f.name) for f in fields(sv)))

    def step_vars(self, t: SymStep) -> SlabStepVars:
        """The constants behind a step made by `fresh_step`."""
        return SlabStepVars(*t.variables)  # type: ignore[arg-type]

    def decode_step(self, model: z3.ModelRef, t: SymStep) -> ConcreteStep:
        """The operation t performed in `model`, as a trace records it (base.decode_step)."""
        return decode_step(model, t)

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef:
        """Step t takes s to s2: one operation ran, as the reference runs it.

        Each operation says which slabs it takes and gives back, which objects it
        makes live and frees, and which page events it makes, gated by "it ran and
        did not raise"; `_apply` writes s2 from those, so a raised step changes
        nothing. Arguments and results that mean nothing are pinned to 0.
        """
        sv = self.step_vars(t)
        v, v2 = self.vars_of(s), self.vars_of(s2)
        is_op = {name: sv.op == j for j, name in enumerate(OPS)}
        e = _Effects.none(len(self.bases), len(self.slots))
        side = [z3.Or([is_op[n] for n in OPS]),
                z3.Implies(z3.Not(is_op["free"]), sv.free_addr == 0),
                z3.Implies(z3.Not(is_op["write"]), z3.And(sv.write_addr == 0,
                                                          sv.write_len == 0))]
        side += self._alloc(v, v2, sv, is_op["alloc"], e)
        side += self._free(v, sv, is_op["free"], e)
        side += self._shrink(v, sv, is_op["shrink"], e)
        side += self._destroy(v, sv, is_op["destroy"], e)
        side.append(z3.Implies(is_op["write"], sv.raised))  # no debugging: write refused
        if v.wb is not None and v2.wb is not None:
            side += self._white(v, v2, sv, is_op, e)
        return z3.And(*side, self._apply(v, e, v2))

    def _apply(self, v: SlabVars, e: _Effects, v2: SlabVars) -> z3.BoolRef:
        """s2 from s and the effects of the step."""
        post = [v2.destroyed == z3.Or(v.destroyed, e.destroyed), v2.bad == v.bad]
        for b in range(len(self.bases)):
            post.append(v2.held[b] == z3.And(z3.Or(v.held[b], e.taken[b]),
                                             z3.Not(e.given[b])))
            post.append(v2.ev_free[b] == e.given[b])
            if self.mutation in _SPLIT:
                post.append(v2.known[b] == z3.And(z3.Or(v.known[b], e.taken[b]),
                                                  z3.Not(e.given[b]), z3.Not(e.forgot[b])))
        for k in range(len(self.slots)):
            post.append(v2.live[k] == z3.And(z3.Or(v.live[k], e.made_live[k]),
                                             z3.Not(e.freed[k])))
        return z3.And(post)

    # -- alloc ----------------------------------------------------------------

    def _alloc(self, v: SlabVars, v2: SlabVars, sv: SlabStepVars, ran: z3.BoolRef,
               e: _Effects) -> list[z3.BoolRef]:
        """alloc(): a free object of a listed slab, else one of a new slab (cache_grow),
        else None when alloc_pages refuses; ValueError after destroy."""
        go = z3.And(ran, z3.Not(v.destroyed))
        free_slot = [z3.And(v.known[b], z3.Not(v.live[k])) for k, (b, _) in enumerate(self.slots)]
        has_free = z3.Or(free_slot) if free_slot else z3.BoolVal(False)
        grow = z3.And(go, z3.Not(has_free))
        can = z3.Or([z3.Not(h) for h in v.held]) if self.bases else z3.BoolVal(False)
        picked = [v2.ev_pfn == x for x in self.bases]  # the block alloc_pages gave
        is_addr = [sv.alloc_addr == a for _, a in self.slots]
        for b in range(len(self.bases)):
            e.taken[b] = z3.And(grow, picked[b])
        served = z3.And(go, z3.Or(has_free, can))  # alloc returns an object
        for k in range(len(self.slots)):
            e.made_live[k] = z3.And(served, is_addr[k])
        fresh = z3.Or([z3.And(picked[b], z3.Not(v.held[b]), is_addr[k])
                       for k, (b, _) in enumerate(self.slots)] or [z3.BoolVal(False)])
        reuse = z3.Or([z3.And(free_slot[k], is_addr[k]) for k in range(len(self.slots))]
                      or [z3.BoolVal(False)])
        return [
            z3.Implies(ran, sv.raised == v.destroyed),
            z3.Implies(ran, v2.ev_alloc == grow),
            z3.Implies(z3.Not(ran), z3.Not(v2.ev_alloc)),
            z3.Implies(z3.Not(v2.ev_alloc), v2.ev_pfn == 0),
            z3.Implies(grow, z3.If(can, fresh, v2.ev_pfn == -1)),
            z3.Implies(z3.And(go, has_free), reuse),
            sv.alloc_none == z3.And(grow, z3.Not(can)),
            z3.Implies(z3.Not(served), sv.alloc_addr == 0),
        ]

    # -- free -----------------------------------------------------------------

    def _free(self, v: SlabVars, sv: SlabStepVars, ran: z3.BoolRef,
              e: _Effects) -> list[z3.BoolRef]:
        """free(addr): a live object goes back; ValueError for any other address."""
        addr, size = sv.free_addr, self.geo.objsize
        hit = []
        for k, (b, a) in enumerate(self.slots):
            if self.mutation == "double_free":
                hit.append(z3.And(addr == a, v.known[b]))
            elif self.mutation == "interior_pointer":
                hit.append(z3.And(addr >= a, addr < a + size, v.live[k]))
            else:
                hit.append(z3.And(addr == a, v.live[k]))
        valid = z3.Or(hit) if hit else z3.BoolVal(False)
        go = z3.And(ran, z3.Not(v.destroyed), valid)
        for k in range(len(self.slots)):
            e.freed[k] = z3.Or(e.freed[k], z3.And(go, hit[k]))
        if self.mutation == "lost_page_on_empty":  # the slab's last live object went
            for b, ks in enumerate(self.of_slab):
                others = [z3.And(v.live[j], z3.Not(hit[j])) for j in ks]
                e.forgot[b] = z3.And(go, z3.Or([hit[j] for j in ks]), z3.Not(z3.Or(others)))
        return [z3.Implies(ran, sv.raised == z3.Or(v.destroyed, z3.Not(valid)))]

    # -- shrink and destroy -----------------------------------------------------

    def _empty(self, v: SlabVars) -> list[z3.BoolRef]:
        """empty[b]: slab slot b is listed and has no live object (as shrink sees it)."""
        out = []
        for b, ks in enumerate(self.of_slab):
            lives = [z3.If(v.live[k], 1, 0) for k in ks]
            most = 1 if self.mutation == "shrink_frees_partial" else 0
            out.append(z3.And(v.known[b], z3.Sum(lives) <= most))
        if self.mutation == "shrink_keeps_empty":  # the lowest empty slab stays
            out = [z3.And(o, z3.Or(out[:b])) if b else z3.BoolVal(False)
                   for b, o in enumerate(out)]
        return out

    def _shrink(self, v: SlabVars, sv: SlabStepVars, ran: z3.BoolRef,
                e: _Effects) -> list[z3.BoolRef]:
        """shrink(): every slab with no live object back to `pages`; how many pages."""
        go = z3.And(ran, z3.Not(v.destroyed))
        empty = self._empty(v)
        span = 1 << self.geo.gfporder
        for b in range(len(self.bases)):
            e.given[b] = z3.Or(e.given[b], z3.And(go, empty[b]))
        pages = z3.Sum([z3.If(x, span, 0) for x in empty]) if empty else z3.IntVal(0)
        return [z3.Implies(ran, sv.raised == v.destroyed),
                sv.shrink_pages == z3.If(go, pages, 0)]

    def _destroy(self, v: SlabVars, sv: SlabStepVars, ran: z3.BoolRef,
                 e: _Effects) -> list[z3.BoolRef]:
        """destroy(): ValueError while objects are live (or after destroy); otherwise
        every slab goes back and the cache is dead."""
        busy = z3.Or(v.live) if v.live else z3.BoolVal(False)
        go = z3.And(ran, z3.Not(v.destroyed), z3.Not(busy))
        e.destroyed = go
        for b in range(len(self.bases)):
            if self.mutation == "destroy_leaks":
                e.forgot[b] = z3.Or(e.forgot[b], go)
            else:
                e.given[b] = z3.Or(e.given[b], z3.And(go, v.known[b]))
        return [z3.Implies(ran, sv.raised == z3.Or(v.destroyed, busy))]

    # -- the reference's own structures (white_box) ------------------------------

    def _white(self, v: SlabVars, v2: SlabVars, sv: SlabStepVars,
               is_op: Mapping[str, z3.BoolRef], e: _Effects) -> list[z3.BoolRef]:
        """The reference's structures after the step, as mm/slab.c changes them; the
        object alloc returns and the slabs shrink/destroy give back are the
        reference's (each also meets the contract-level constraints: where the two
        disagree, which no reachable state shows, the step has no successor)."""
        assert v.wb is not None and v2.wb is not None
        w, cur = v.wb, _Wb.of(v.wb)
        alive = z3.Not(v.destroyed)
        go = z3.And(is_op["alloc"], alive)
        avail = w.avail
        side, cases, must_grow = self._cache_alloc(v, v2, sv, go, avail, cur)
        side.append(z3.Implies(is_op["alloc"], v2.ev_alloc == must_grow))
        hit = [z3.And(sv.free_addr == a, v.live[k]) for k, (_, a) in enumerate(self.slots)]
        freeing = z3.And(is_op["free"], alive, z3.Or(hit) if hit else z3.BoolVal(False))
        pushed = cur.copy()  # __cache_free: on top of entry[]
        pushed.pos = [z3.If(h, avail, p) for h, p in zip(hit, w.pos, strict=True)]
        pushed.avail = avail + 1
        cases.append((freeing, pushed))
        busy = z3.Or(v.live) if v.live else z3.BoolVal(False)
        drain = z3.Or(z3.And(is_op["shrink"], alive),
                      z3.And(is_op["destroy"], alive, z3.Not(busy)))
        drained, gone = self._cache_drain(v, avail, cur)
        side += [z3.Implies(drain, e.given[b] == gone[b]) for b in range(len(self.bases))]
        cases.append((drain, drained))
        post = _choose(cases, cur)
        return side + [x == t for x, t in zip(_Wb.of(v2.wb).flat(), post, strict=True)]

    def _cache_alloc(self, v: SlabVars, v2: SlabVars, sv: SlabStepVars, go: z3.BoolRef,
                     avail: z3.ArithRef, cur: _Wb
                     ) -> tuple[list[z3.BoolRef], list[tuple[z3.BoolRef, _Wb]], z3.BoolRef]:
        """____cache_alloc: pop entry[avail-1]; when the array cache is empty,
        cache_alloc_refill, and cache_grow when no partial slab has a free object.
        The constraints on the returned address, the cases (condition, state), and
        "it must grow" (cache_grow calls alloc_pages)."""
        assert v.wb is not None
        w = v.wb
        top = [p == avail - 1 for p in w.pos]
        pop = z3.And(go, avail > 0)
        popped = cur.copy()
        popped.pos = [z3.If(t, -1, p) for t, p in zip(top, w.pos, strict=True)]
        popped.avail = avail - 1
        popped.touched = z3.BoolVal(True)
        addrs = [a for _, a in self.slots]
        side = [z3.Implies(pop, z3.Or([z3.And(t, sv.alloc_addr == a)
                                       for t, a in zip(top, addrs, strict=True)]))]
        g = self.geo
        batch = z3.If(w.touched, g.batchcount, min(g.batchcount, BATCHREFILL_LIMIT))
        refilled, taken, ret = self._refill_partial(w, batch, cur)
        refill = z3.And(go, avail == 0, taken > 0)
        side.append(z3.Implies(refill, z3.Or([z3.And(r, sv.alloc_addr == a)
                                              for r, a in zip(ret, addrs, strict=True)])))
        cases = [(pop, popped), (refill, refilled)]
        t = _min(batch, g.num)  # objects cache_alloc_refill takes from a new slab
        for b, x in enumerate(self.bases):
            grown = z3.And(go, avail == 0, v2.ev_alloc, v2.ev_pfn == x)
            ks = self.of_slab[b]
            side.append(z3.Implies(grown, z3.Or([z3.And(t - 1 == i, sv.alloc_addr == addrs[k])
                                                 for i, k in enumerate(ks)])))
            cases.append((grown, self._cache_grow(b, t, cur)))
        return side, cases, z3.And(go, avail == 0, taken == 0)

    def _refill_partial(self, w: WbVars, batch: z3.ArithRef, cur: _Wb
                        ) -> tuple[_Wb, z3.ArithRef, list[z3.BoolRef]]:
        """cache_alloc_refill from slabs_partial: the slabs in list order give their
        free objects in chain order, up to `batch` in all, each pushed on entry[]; a
        slab left with none goes to slabs_full, the last one taken (if some stay) to
        the head of slabs_partial. The top entry is popped (returned). Returns the
        state, how many were taken, and per object slot "this one is returned"."""
        num = self.geo.num
        nb = len(self.bases)
        on = [r >= 0 for r in w.prank]
        avail_b = [num - n for n in w.inuse]
        before = [z3.Sum([z3.If(z3.And(on[c], w.prank[c] < w.prank[b]), avail_b[c], 0)
                          for c in range(nb) if c != b] or [z3.IntVal(0)]) for b in range(nb)]
        took = [z3.If(on[b], z3.If(batch - before[b] <= 0, 0, _min(batch - before[b],
                                                                     avail_b[b])), 0)
                for b in range(nb)]
        taken = z3.Sum(took) if took else z3.IntVal(0)
        emptied = [z3.And(took[b] > 0, took[b] == avail_b[b]) for b in range(nb)]
        nfull = _count(emptied)
        out = cur.copy()
        ret = []
        for k, (b, _) in enumerate(self.slots):
            c = w.chain[k]
            got = z3.And(c >= 0, c < took[b])
            at = before[b] + c
            ret.append(z3.And(got, at == taken - 1))
            out.pos[k] = z3.If(got, z3.If(at == taken - 1, -1, at), w.pos[k])
            out.chain[k] = z3.If(c >= 0, z3.If(c < took[b], -1, c - took[b]), c)
        for b in range(nb):
            out.inuse[b] = w.inuse[b] + took[b]
            out.prank[b] = z3.If(emptied[b], -1, z3.If(on[b], w.prank[b] - nfull, -1))
            out.full[b] = z3.Or(w.full[b], emptied[b])
        out.free_objects = w.free_objects - taken
        out.avail = taken - 1
        out.touched = z3.BoolVal(True)
        return out, taken, ret

    def _cache_grow(self, b: int, t: z3.ArithRef, cur: _Wb) -> _Wb:
        """cache_grow gave slab slot b (chain 0 -> 1 -> ... -> num-1, on slabs_free),
        then cache_alloc_refill took its first t objects onto entry[] and popped the
        last: the slab is on slabs_full if none is left, else heads slabs_partial."""
        num = self.geo.num
        out = cur.copy()
        for i, k in enumerate(self.of_slab[b]):
            out.chain[k] = z3.If(i >= t, i - t, -1)
            out.pos[k] = z3.If(i < t - 1, i, -1)
        out.inuse[b] = t
        out.prank[b] = z3.If(t < num, 0, -1)
        out.full[b] = t == num
        out.free_objects = cur.free_objects + num - t
        out.avail = t - 1
        out.touched = z3.BoolVal(True)
        return out

    def _cache_drain(self, v: SlabVars, avail: z3.ArithRef, cur: _Wb
                     ) -> tuple[_Wb, list[z3.BoolRef]]:
        """drain_cpu_caches then drain_freelist (shrink; destroy once no object is
        live): free_block puts entry[0], entry[1], ... back on their slabs' chains
        (each on the head), a slab with objects still in use to the tail of
        slabs_partial, an empty one on slabs_free (never destroyed there: see
        __init__); then every slab on slabs_free goes back to `pages`. Returns the
        state and, per slab slot, "given back"."""
        assert v.wb is not None
        w, num, nb = v.wb, self.geo.num, len(self.bases)
        cached = [p >= 0 for p in w.pos]
        back = [_count(cached[k] for k in ks) for ks in self.of_slab]
        last = []
        for ks in self.of_slab:
            top: z3.ArithRef = z3.IntVal(-1)
            for k in ks:
                top = z3.If(w.pos[k] > top, w.pos[k], top)
            last.append(top)
        inuse = [w.inuse[b] - back[b] for b in range(nb)]
        touched = [n > 0 for n in back]
        stays = [z3.And(touched[b], inuse[b] != 0) for b in range(nb)]
        kept = [z3.And(z3.Not(touched[b]), w.prank[b] >= 0) for b in range(nb)]
        nkept = _count(kept)
        out = cur.copy()
        for b in range(nb):
            out.prank[b] = z3.If(kept[b], _count(z3.And(kept[c], w.prank[c] < w.prank[b])
                                                 for c in range(nb)),
                                 z3.If(stays[b], nkept + _count(
                                     z3.And(stays[c], last[c] < last[b]) for c in range(nb)),
                                     -1))
            out.full[b] = z3.And(w.full[b], z3.Not(touched[b]))
        gone = [z3.And(v.held[b], out.prank[b] < 0, z3.Not(out.full[b])) for b in range(nb)]
        for b, ks in enumerate(self.of_slab):
            for k in ks:
                later = _count(z3.And(cached[j], w.pos[j] > w.pos[k]) for j in ks)
                chain = z3.If(cached[k], later, z3.If(w.chain[k] >= 0, w.chain[k] + back[b], -1))
                out.chain[k] = z3.If(gone[b], -1, chain)
                out.pos[k] = z3.IntVal(-1)
            out.inuse[b] = z3.If(gone[b], 0, inuse[b])
            out.prank[b] = z3.If(gone[b], -1, out.prank[b])
        out.free_objects = w.free_objects + z3.Sum(back) - num * _count(gone)  # one per entry
        out.avail = z3.IntVal(0)
        return out, gone


@dataclass
class _Wb:
    """The white-box state as terms (one per constant of WbVars), for case splits."""

    inuse: list[z3.ArithRef]
    prank: list[z3.ArithRef]
    full: list[z3.BoolRef]
    chain: list[z3.ArithRef]
    pos: list[z3.ArithRef]
    avail: z3.ArithRef
    free_objects: z3.ArithRef
    touched: z3.BoolRef

    @staticmethod
    def of(w: WbVars) -> _Wb:
        return _Wb(list(w.inuse), list(w.prank), list(w.full), list(w.chain), list(w.pos),
                   w.avail, w.free_objects, w.touched)

    def copy(self) -> _Wb:
        return _Wb(list(self.inuse), list(self.prank), list(self.full), list(self.chain),
                   list(self.pos), self.avail, self.free_objects, self.touched)

    def flat(self) -> list[z3.ExprRef]:
        return [*self.inuse, *self.prank, *self.full, *self.chain, *self.pos,
                self.avail, self.free_objects, self.touched]


def _choose(cases: Sequence[tuple[z3.BoolRef, _Wb]], default: _Wb) -> list[z3.ExprRef]:
    """Per constant: the value of the first case whose condition holds, else default's."""
    out = default.flat()
    for cond, w in reversed(cases):
        out = [z3.If(cond, a, b) for a, b in zip(w.flat(), out, strict=True)]
    return out


def _min(a: z3.ArithRef | int, b: z3.ArithRef | int) -> z3.ArithRef:
    return z3.If(a <= b, a, b)  # type: ignore[arg-type, return-value]


@dataclass
class _Effects:
    """What one step does, each term gated by "it ran and did not raise"."""

    taken: list[z3.BoolRef]  # per slab slot: alloc_pages gave it
    given: list[z3.BoolRef]  # per slab slot: free_pages gave it back
    forgot: list[z3.BoolRef]  # per slab slot: the cache's table dropped it (mutations)
    made_live: list[z3.BoolRef]  # per object slot
    freed: list[z3.BoolRef]
    destroyed: z3.BoolRef

    @staticmethod
    def none(nb: int, nk: int) -> _Effects:
        no = z3.BoolVal(False)
        return _Effects([no] * nb, [no] * nb, [no] * nb, [no] * nk, [no] * nk, no)


def _distinct_below(ranks: Sequence[z3.ArithRef], n: z3.ArithRef | int) -> list[z3.BoolRef]:
    """The non-negative ranks are distinct and below n; the others are -1."""
    out = [z3.And(r >= -1, r < n) for r in ranks]
    out += [z3.Or(a < 0, a != b) for i, a in enumerate(ranks) for b in ranks[i + 1:]]
    return out


def _ranks(ranks: Sequence[z3.ArithRef], n: z3.ArithRef, most: int) -> list[z3.BoolRef]:
    """The non-negative ranks are distinct and below n, and each of 0 .. min(n, most)-1
    is taken; the others are -1. Stated without counting (n <= most follows when there
    are `most` ranks, by pigeonhole, which a solver finds hard: not stated)."""
    out = _distinct_below(ranks, n)
    out += [z3.Implies(j < n, z3.Or([r == j for r in ranks])) for j in range(most)]
    return out


def _count(bits: Iterable[z3.BoolRef]) -> z3.ArithRef:
    """How many of `bits` hold."""
    terms = [z3.If(b, 1, 0) for b in bits]
    return z3.Sum(terms) if terms else z3.IntVal(0)


def _event(op: int, pfn: z3.ArithRef, order: int) -> SymRecord:
    return SymRecord("PageEvent", {"op": z3.IntVal(op), "pfn": pfn,
                                   "order": z3.IntVal(order), "ok": z3.BoolVal(True)})
