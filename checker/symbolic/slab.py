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
raises (the encoding models caches without debugging). The reference's per-CPU
array caches, slab lists and free chains (the white-box names mgmt, cached,
free_objects, nr_partial) are not modelled: properties reading them are not
compiled (the concrete engine checks them). Two restrictions keep the reference's
behaviour exactly this: the cache has at most one colour (every slab's objects
start at the same offset), and all objects of the pool fit in one array cache, so
free() never flushes it (no page goes back during free()).

Mutations seed the bugs of `examples/slab/buggy/` (see `MUTATIONS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.model.slab import VOCABULARY, KmemCache
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
_SPLIT = ("lost_page_on_empty", "destroy_leaks")  # the mutations that tell known from held

# The white-box names the encoding does not model (the reference's own structures).
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

    @staticmethod
    def of(size: int, align: int) -> Geometry:
        """The reference's sizing for a cache of `size` bytes aligned to `align`."""
        c = KmemCache("symbolic", size, align, None)  # type: ignore[arg-type]  # no page taken
        return Geometry(c.objsize, c.gfporder, c.num, c.colour, c.colour_off, c.slab_size,
                        c.array[0].limit)


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
                 mutation: str | None = None) -> None:
        if mutation is not None and mutation not in MUTATIONS:
            raise ValueError(f"SymbolicSlab: unknown mutation {mutation!r}; "
                             f"known: {', '.join(MUTATIONS)}")
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
        self.size, self.align, self.npages, self.mutation = size, align, npages, mutation
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
            bad=z3.Int(f"{tag}.bad"))
        assert len(v.live) == nk and len(v.held) == nb
        return self._present(v)

    def vars_of(self, s: SymState) -> SlabVars:
        """The constants behind a state made by `fresh_state`."""
        nb, nk, vs = len(self.bases), len(self.slots), list(s.variables)
        out: list[object] = []
        for f in fields(SlabVars):
            if f.name in ("held", "ev_free"):
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

    def _flat(self, v: SlabVars) -> tuple[z3.ExprRef, ...]:
        known = v.known if self.mutation in _SPLIT else ()
        return (v.destroyed, *v.held, *known, *v.live, v.ev_alloc, v.ev_pfn, *v.ev_free, v.bad)

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
        return SymState(values, self._flat(v))

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
        return self.assign(s, held=(), live=())

    def well_formed(self, s: SymState) -> z3.BoolRef:
        """Domain facts: ev_pfn is -1 or a slab slot when alloc_pages was called, else 0;
        the refused-free counter is not negative. The rest is the spec's to prove."""
        v = self.vars_of(s)
        return z3.And(
            z3.If(v.ev_alloc, z3.Or([v.ev_pfn == x for x in (-1, *self.bases)]), v.ev_pfn == 0),
            v.bad >= 0)

    def assign(self, s: SymState, held: Sequence[int], live: Sequence[int],
               known: Sequence[int] | None = None, destroyed: bool = False,
               events: Sequence[tuple[int, int]] = (), bad: int = 0) -> z3.BoolRef:
        """s holds exactly these blocks (first pfns) and live objects (addresses), the
        last step made these page events ((op, pfn) pairs). False if one has no slot."""
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
        return z3.And(facts)

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


def _event(op: int, pfn: z3.ArithRef, order: int) -> SymRecord:
    return SymRecord("PageEvent", {"op": z3.IntVal(op), "pfn": pfn,
                                   "order": z3.IntVal(order), "ok": z3.BoolVal(True)})
