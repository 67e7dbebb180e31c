"""The whole machine (model/machine.py) as a Z3 transition system (see `base.py`).

The universe is fixed when the encoding is built: `npages` page frames, the
first `reserved` of them memblock's (PG_reserved, one reference, constants);
the slots of each frame's slab (`NUM` 256-byte objects of one order-0 slab,
as `KmemCache` lays them out after its colour and on-slab management); the
user addresses `USER_VAS` of the driver (three page-table regions) and the bad
ones; a vmalloc window of `window` pages from VMALLOC_START, long enough that
first fit never runs off it while pages last. One state holds

    kind[f]      Int   who holds frame f in the owners' own records: FREE (the
                       buddy allocator), SLAB (the cache), TABLE (a page table),
                       USER (a user PTE), VMALLOC (an area)
    vmark[f]     Bool  PG_vmalloc on its struct page
    ref[f]       Int   _refcount
    mapc[f]      Int   _mapcount (page_mapcount)
    col[f]       Bool  the slab on f has the second colour (object 0 at
                       COLOURS[1] rather than COLOURS[0])
    live[f,i]    Bool  object i of the slab on f is allocated
    pte[u]       Bool  user address USER_VAS[u] is mapped ...
    upfn[u]      Int   ... to this frame
    utab[r]      Bool  the user page table has its PTE table for region r ...
    utabpfn[r]   Int   ... in this frame
    ktab         Bool  init_mm has its PTE table for the vmalloc window
    astart[w]    Bool  a vmalloc area starts at window page w ...
    alen[w]      Int   ... with this many pages (its guard page after them)
    karea[f]     Int   the window page of the area VMALLOC frame f backs ...
    kidx[f]      Int   ... and which of its pages (init_mm maps it there); 0 otherwise

PG_slab and PG_table are the SLAB and TABLE kinds (the reference's OwnedPages
marks exactly the pages it hands its owner); PageAnon is _mapcount > 0 and
PG_lru the USER kind (page_add_rmap sets the one, lru_cache_add the other,
and unmap_user undoes both). The two pgds are the frames the reference takes
at boot.

The transitions follow `Machine`: every page a step takes is any free frame
(the buddy allocator's lowest-block choice is one of them, and the step's
choice variables c0..c3 say which: no property depends on it), and a step
that needs more pages than are free returns None and changes nothing (the
reference gives back what it took; with min_free_kbytes 0 and at most 64
pages every watermark and lowmem_reserve is 0). slab_alloc takes any free
object of a slab when there is one (the per-CPU array cache and the slab
lists hand out some free object), else grows the cache by one page with
either colour; slab_free of a live object may also give back slabs with no
live object left (cache_flusharray destroys such slabs once the array cache
is full: only where the cache can hold more objects than the array cache's
limit); slab_shrink gives back every slab without a live object. vmalloc
places its area (and guard page) first fit, takes one page per page and the
kernel PTE table on first use (kept for good), vfree gives the pages back.
map_user takes the page, then the region's PTE table if missing; unmap_user
drops the PTE, page_remove_rmap, the last put_page frees the page, and an
emptied PTE table is freed too.

Mutations seed the bugs of `examples/machine/buggy/` (see `MUTATIONS`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import z3
from mmcheck.checker.subsystems.declared.machine import BAD_USER_VAS, USER_VAS
from mmcheck.checker.subsystems.machine import zone_sizes
from mmcheck.checker.symbolic.base import (
    ConcreteStep,
    SymCollection,
    SymOptional,
    SymRecord,
    SymState,
    SymStep,
    model_int,
    within,
)
from mmcheck.checker.z3compile import Cases
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.model.machine import OBJECT_SIZE, VOCABULARY, Machine
from mmcheck.model.vocabulary import Vocabulary

FREE, SLAB, TABLE, USER, VMALLOC, RESERVED = range(6)
KINDS = (FREE, SLAB, TABLE, USER, VMALLOC)
OPS = ("slab_alloc", "slab_free", "slab_shrink", "vmalloc", "vfree", "map_user", "unmap_user")
SIZES = (PAGE_SIZE, 1, 3 * PAGE_SIZE, 0, -1)  # the declaration's vmalloc sizes
VAS = (*USER_VAS, *BAD_USER_VAS)
CHOICES = 4  # at most 3 area pages and the kernel PTE table in one step

MUTATIONS: Mapping[str, str] = {
    "unmap_keeps_mapcount": "unmap_user frees the page without page_remove_rmap: "
                            "_mapcount stays",
    "vfree_keeps_mark": "vfree gives the pages back with PG_vmalloc still set",
}


def npages_of(size: int) -> int:
    """vmalloc's page count for `size` bytes (>= 0)."""
    return -(-size // PAGE_SIZE)


def region(va: int) -> int:
    """The pgd index (a 4 MiB region on i386) of user address va."""
    return va >> 22


@dataclass(frozen=True)
class MachineStepVars:
    op: z3.ArithRef
    va: z3.ArithRef
    size: z3.ArithRef
    addr: z3.ArithRef
    result: z3.ArithRef
    none: z3.BoolRef
    raised: z3.BoolRef
    obj: z3.ArithRef  # the slab object slot slab_alloc hands out
    pos: z3.ArithRef  # the window page of the area vmalloc makes or vfree frees
    colour: z3.BoolRef  # the colour of a slab cache_grow makes
    choices: tuple[z3.ArithRef, ...]  # the frames the step takes, in order
    release: tuple[z3.BoolRef, ...]  # per frame: slab_free's flush gives that slab back


class Upd:
    """A post-state under construction: every field's term, from the pre-state's."""

    def __init__(self, enc: SymbolicMachine, v: Mapping[str, dict]) -> None:
        self.enc, self.v = enc, v
        self.t: dict[str, dict] = {name: dict(terms) for name, terms in v.items()}

    def at(self, name: str, pfn: z3.ArithRef, how: object, when: object = True) -> None:
        """field[pfn] = how(field[pfn]) where `when` holds, for the frame pfn names."""
        for f in self.enc.frames:
            old = self.t[name][f]
            new = how(old) if callable(how) else how
            self.t[name][f] = z3.If(z3.And(when, pfn == f), new, old)

    def take(self, pfn: z3.ArithRef, kind: int, when: object = True) -> None:
        """alloc_pages(0) gave frame pfn to an owner of `kind`: one reference."""
        self.at("kind", pfn, kind, when)
        self.at("ref", pfn, 1, when)

    def put(self, pfn: z3.ArithRef, when: object = True) -> None:
        """put_page: drop a reference; the last one gives the frame to the buddy allocator."""
        for f in self.enc.frames:
            self.put_frame(f, z3.And(when, pfn == f))

    def put_frame(self, f: int, hit: object) -> None:
        """put_page of frame f where `hit` holds."""
        ref = self.t["ref"][f]
        last = z3.And(hit, ref == 1)
        self.t["kind"][f] = z3.If(last, FREE, self.t["kind"][f])
        self.t["col"][f] = z3.And(self.t["col"][f], z3.Not(last))
        self.t["ref"][f] = z3.If(hit, ref - 1, ref)


class SymbolicMachine:
    """A Machine of `npages` frames, the first `reserved` reserved (see the module doc)."""

    vocabulary: Vocabulary = VOCABULARY

    def __init__(self, npages: int = 8, reserved: int = 1, mutation: str | None = None) -> None:
        if mutation is not None and mutation not in MUTATIONS:
            raise ValueError(f"SymbolicMachine: unknown mutation {mutation!r}; "
                             f"known: {', '.join(MUTATIONS)}")
        if not 1 <= reserved < npages - 2 or npages > 64:
            raise ValueError(f"SymbolicMachine: {npages} pages with {reserved} reserved: "
                             "want 1 <= reserved < npages - 2 and npages <= 64")
        self.npages, self.reserved, self.mutation = npages, reserved, mutation
        ref = Machine(zone_sizes(npages), reserved=[(0, reserved)])
        self.pgds = (ref.kernel_pt.pgd, ref.user_pt.pgd)
        cache = ref.cache
        self.num = cache.num
        self.colours = tuple(c * cache.colour_off + cache.slab_size
                             for c in range(min(2, max(1, cache.colour))))
        self.vstart = ref.layout.vmalloc_start
        self.frames = range(reserved, npages)
        usable = npages - reserved - 2
        # An area of n pages goes first fit below the window's end: at most `live` pages
        # stay for the areas below it (the kernel PTE table takes one), so at most
        # live - n areas of live - n pages and their guard pages, with a gap of at most
        # 3 pages (too small for it) before each and after the last: its end is at most
        # 5 (live - n) + 3 + n + 1 <= 5 live.
        live = usable - 1
        self.window = max(5 * live, 4)
        self.flush_possible = usable * self.num > cache.array[0].limit
        self.zones = [0 if p < 16 else 2 for p in range(npages)]
        self.regions = sorted({region(va) for va in USER_VAS})
        self.users = range(len(USER_VAS))

    # -- states ---------------------------------------------------------------

    def _index(self, kind: str) -> list[object]:
        return {"": [()], "f": list(self.frames),
                "fi": [(f, i) for f in self.frames for i in range(self.num)],
                "u": list(self.users), "r": list(self.regions),
                "w": list(range(self.window))}[kind]

    FIELDS = (("kind", "int", "f"), ("vmark", "bool", "f"), ("ref", "int", "f"),
              ("mapc", "int", "f"), ("col", "bool", "f"), ("live", "bool", "fi"),
              ("pte", "bool", "u"), ("upfn", "int", "u"), ("utab", "bool", "r"),
              ("utabpfn", "int", "r"), ("ktab", "bool", ""), ("astart", "bool", "w"),
              ("alen", "int", "w"), ("karea", "int", "f"),
              ("kidx", "int", "f"))

    def _build(self, make) -> dict[str, dict]:  # noqa: ANN001
        return {name: {i: make(name + (str(list(i) if isinstance(i, tuple) else [i])
                                       if kind else ""), sort)
                       for i in self._index(kind)}
                for name, sort, kind in self.FIELDS}

    def fresh_state(self, tag: str) -> SymState:
        """A state of fresh z3 constants named after `tag`."""
        flat: list[z3.ExprRef] = []

        def make(label: str, sort: str) -> z3.ExprRef:
            flat.append((z3.Bool if sort == "bool" else z3.Int)(f"{tag}.{label}"))
            return flat[-1]
        return self._present(self._build(make), tuple(flat))

    def vars_of(self, s: SymState) -> dict[str, dict]:
        """The per-field terms behind a state made by `fresh_state`."""
        it = iter(s.variables)
        return self._build(lambda _label, _sort: next(it))

    def obj_addr(self, v: Mapping[str, dict], f: int, i: int) -> Cases:
        """The address of object i of the slab on frame f: one of its colours' values."""
        base = f * PAGE_SIZE + i * OBJECT_SIZE
        if len(self.colours) == 1:
            return Cases.over(z3.IntVal(base + self.colours[0]), (base + self.colours[0],))
        term = z3.If(v["col"][f], base + self.colours[1], base + self.colours[0])
        return Cases.over(term, tuple(base + c for c in self.colours))

    def _present(self, v: dict[str, dict], flat: tuple[z3.ExprRef, ...]) -> SymState:
        """The vocabulary's view of the fields `v`."""
        def frame(pfn: int) -> SymRecord:
            return SymRecord("Frame", {"pfn": z3.IntVal(pfn)})

        def owned(kind: int) -> SymCollection:
            return SymCollection("Frame", tuple((v["kind"][f] == kind, frame(f))
                                                for f in self.frames))
        no, yes = z3.BoolVal(False), z3.BoolVal(True)
        pages = []
        for p in range(self.npages):
            if p < self.reserved:
                fields = {"buddy": no, "slab": no, "table": no, "reserved": yes, "vmalloc": no,
                          "anon": no, "lru": no, "refcount": z3.IntVal(1),
                          "mapcount": z3.IntVal(0)}
            else:
                k = v["kind"][p]
                fields = {"buddy": k == FREE, "slab": k == SLAB, "table": k == TABLE,
                          "reserved": no, "vmalloc": v["vmark"][p], "anon": v["mapc"][p] > 0,
                          "lru": k == USER, "refcount": v["ref"][p], "mapcount": v["mapc"][p]}
            pages.append((yes, SymRecord("MPage", {"pfn": z3.IntVal(p),
                                                   "zone": z3.IntVal(self.zones[p]), **fields})))
        values = {
            "npages": z3.IntVal(self.npages),
            "pages": SymCollection("MPage", tuple(pages)),
            "slab_marked": owned(SLAB),
            "user_ptes": SymCollection("Pte", tuple((v["pte"][u], SymRecord("Pte", {
                "va": z3.IntVal(USER_VAS[u]), "pfn": v["upfn"][u]})) for u in self.users)),
            "objects": SymCollection("Obj", tuple((v["live"][f, i], SymRecord("Obj", {
                "addr": self.obj_addr(v, f, i)})) for f in self.frames for i in range(self.num))),
            "areas": SymCollection("VArea", tuple((v["astart"][w], SymRecord("VArea", {
                "addr": z3.IntVal(self.vstart + w * PAGE_SIZE), "npages": v["alen"][w]}))
                for w in range(self.window))),
            "kernel_ptes": SymCollection("Pte", tuple((v["kind"][f] == VMALLOC, SymRecord("Pte", {
                "va": self.vstart + (v["karea"][f] + v["kidx"][f]) * PAGE_SIZE,
                "pfn": z3.IntVal(f)}))
                for f in self.frames)),
            "table_pages": owned(TABLE),
            "slab_pages": owned(SLAB),
            "vmalloc_pages": owned(VMALLOC),
        }
        return SymState(values, flat)

    def init(self, s: SymState) -> z3.BoolRef:
        """A Machine just booted: the two pgds taken, every other frame free."""
        return self.assign(s, {pgd: {"kind": TABLE, "ref": 1} for pgd in self.pgds})

    def assign(self, s: SymState, frames: Mapping[int, Mapping[str, object]],
               others: Mapping[tuple[str, object], object] | None = None) -> z3.BoolRef:
        """s is exactly: frames[f] the fields of frame f that differ from a free frame's
        (("live", i) for its objects), `others` the (field, index) of every other field
        that differs from its empty value (False, 0)."""
        v, others = self.vars_of(s), others or {}
        facts = []
        for name, sort, kind in self.FIELDS:
            for i in self._index(kind):
                if kind == "f":
                    val = frames.get(i, {}).get(name, FREE if name == "kind" else 0)  # type: ignore[call-overload]
                elif kind == "fi":
                    val = frames.get(i[0], {}).get(("live", i[1]), False)  # type: ignore[index]
                else:
                    val = others.get((name, i), 0)
                facts.append(v[name][i] == (bool(val) if sort == "bool" else val))
        return z3.And(facts)

    def well_formed(self, s: SymState) -> z3.BoolRef:
        """Domains and the bookkeeping of the encoding's own records, kept by every step
        from any state (tests/unit/test_symbolic_machine.py checks it): kinds in their
        set, one reference per owner (no operation takes a second one), frame numbers
        in range, a colour only on a slab, empty slots all zero; the
        vmalloc areas never overlap (guard pages included) and init_mm maps exactly
        their pages, each to its own VMALLOC frame; the
        user pages are USER frames, one per present PTE; the pgds stay, and the user PTE
        tables are TABLE frames of their own. What holds of the counts is the spec's to say."""
        v = self.vars_of(s)
        facts = []
        for f in self.frames:
            facts += [within(v["kind"][f], KINDS),
                      v["ref"][f] == z3.If(v["kind"][f] == FREE, 0, 1),
                      z3.Implies(v["kind"][f] != SLAB, z3.Not(v["col"][f]))]
            if len(self.colours) == 1:
                facts.append(z3.Not(v["col"][f]))
            facts.append(z3.If(v["kind"][f] == VMALLOC, self._backs(v, f),
                               z3.And(v["karea"][f] == 0, v["kidx"][f] == 0)))
            facts += [z3.Implies(z3.And(v["kind"][f] == VMALLOC, v["kind"][g] == VMALLOC,
                                        v["karea"][f] == v["karea"][g]),
                                 v["kidx"][f] != v["kidx"][g]) for g in self.frames if g < f]
            users = [z3.And(v["pte"][u], v["upfn"][u] == f) for u in self.users]
            facts.append((v["kind"][f] == USER) == z3.Or(users))
        facts += [v["kind"][pgd] == TABLE for pgd in self.pgds]
        for u in self.users:
            facts.append(z3.If(v["pte"][u], z3.And(self._frame(v["upfn"][u]),
                                                   self._kind_at(v, v["upfn"][u], USER)),
                               v["upfn"][u] == 0))
            facts += [z3.Implies(z3.And(v["pte"][u], v["pte"][x]), v["upfn"][u] != v["upfn"][x])
                      for x in range(u)]
        tables = [(v["utab"][r], v["utabpfn"][r]) for r in self.regions]
        for k, (on, pfn) in enumerate(tables):
            facts += [z3.Implies(on, z3.And([pfn != pgd for pgd in self.pgds]))]
            facts += [z3.Implies(z3.And(on, on2), pfn != pfn2) for on2, pfn2 in tables[:k]]
        for r in self.regions:
            facts.append(v["utab"][r] == z3.Or([v["pte"][u] for u in self.users
                                                 if region(USER_VAS[u]) == r]))
            facts.append(z3.If(v["utab"][r], z3.And(self._frame(v["utabpfn"][r]),
                                                    self._kind_at(v, v["utabpfn"][r], TABLE)),
                               v["utabpfn"][r] == 0))
        for w in range(self.window):
            facts += self._area_facts(v, w)
        return z3.And(facts)

    def _area_facts(self, v: Mapping[str, dict], w: int) -> list[z3.BoolRef]:
        """Window page w: an area's start has 1 to 3 pages and no area starts in it or
        its guard page; as many VMALLOC frames back it as it has pages."""
        facts = [z3.If(v["astart"][w], z3.And(v["alen"][w] >= 1, v["alen"][w] <= 3,
                                              v["alen"][w] < self.window - w),
                       v["alen"][w] == 0)]
        for d in range(1, 4):
            if w + d < self.window:
                facts.append(z3.Implies(z3.And(v["astart"][w], v["alen"][w] >= d),
                                        z3.Not(v["astart"][w + d])))
        backing = z3.Sum([z3.If(z3.And(v["kind"][f] == VMALLOC, v["karea"][f] == w), 1, 0)
                          for f in self.frames])
        facts.append(z3.Implies(v["astart"][w], backing == v["alen"][w]))
        return facts

    def _backs(self, v: Mapping[str, dict], f: int) -> z3.BoolRef:
        """VMALLOC frame f backs a page of a live area."""
        return z3.And(v["kidx"][f] >= 0, z3.Or([
            z3.And(v["karea"][f] == w, v["astart"][w], v["kidx"][f] < v["alen"][w])
            for w in range(self.window)]))

    def _covered(self, v: Mapping[str, dict], w: int) -> z3.BoolRef:
        """Window page w is one of an area's pages (not its guard page)."""
        return z3.Or([z3.And(v["astart"][w - d], v["alen"][w - d] > d)
                      for d in range(3) if w - d >= 0])

    def _used(self, v: Mapping[str, dict], w: int) -> z3.BoolRef:
        """Window page w is an area's page or guard page."""
        return z3.Or([z3.And(v["astart"][w - d], v["alen"][w - d] >= d)
                      for d in range(4) if w - d >= 0])

    def _frame(self, term: z3.ArithRef) -> z3.BoolRef:
        return z3.And(term >= self.frames.start, term < self.frames.stop)

    def _kind_at(self, v: Mapping[str, dict], pfn: z3.ArithRef, kind: int) -> z3.BoolRef:
        return z3.Or([z3.And(pfn == f, v["kind"][f] == kind) for f in self.frames])

    def _nr_free(self, v: Mapping[str, dict]) -> z3.ArithRef:
        return z3.Sum([z3.If(v["kind"][f] == FREE, 1, 0) for f in self.frames])

    # -- steps ----------------------------------------------------------------

    def fresh_step(self, tag: str) -> SymStep:
        """A step of fresh z3 constants: which operation, its arguments, its result."""
        def i(n: str) -> z3.ArithRef:
            return z3.Int(f"{tag}.{n}")

        def b(n: str) -> z3.BoolRef:
            return z3.Bool(f"{tag}.{n}")
        sv = MachineStepVars(i("op"), i("va"), i("size"), i("addr"), i("result"), b("none"),
                             b("raised"), i("obj"), i("pos"), b("colour"),
                             tuple(i(f"c{k}") for k in range(CHOICES)),
                             tuple(b(f"release{f}") for f in self.frames))
        flat = (sv.op, sv.va, sv.size, sv.addr, sv.result, sv.none, sv.raised, sv.obj, sv.pos,
                sv.colour, *sv.choices, *sv.release)
        optional = SymOptional(sv.none, sv.result)
        va = Cases.over(sv.va, VAS)
        return SymStep(
            is_op={name: sv.op == j for j, name in enumerate(OPS)},
            args={"slab_alloc": {}, "slab_free": {"addr": sv.addr}, "slab_shrink": {},
                  "vmalloc": {"size": Cases.over(sv.size, SIZES)}, "vfree": {"addr": sv.addr},
                  "map_user": {"va": va}, "unmap_user": {"va": va}},  # type: ignore[dict-item]
            results={"slab_alloc": optional, "slab_free": None, "slab_shrink": sv.result,
                     "vmalloc": optional, "vfree": None, "map_user": optional,
                     "unmap_user": None},
            raised=sv.raised, variables=flat)

    def step_vars(self, t: SymStep) -> MachineStepVars:
        """The constants behind a step made by `fresh_step`."""
        vs = list(t.variables)
        n = len(self.frames)
        return MachineStepVars(*vs[:10], tuple(vs[10:10 + CHOICES]),  # type: ignore[arg-type]
                               tuple(vs[10 + CHOICES:10 + CHOICES + n]))

    def decode_step(self, model: z3.ModelRef, t: SymStep) -> ConcreteStep:
        """The operation t performed in `model`, as a trace records it."""
        sv = self.step_vars(t)
        op = OPS[model_int(model, sv.op)]
        arg = {"slab_free": sv.addr, "vfree": sv.addr, "vmalloc": sv.size,
               "map_user": sv.va, "unmap_user": sv.va}.get(op)
        raised = "ValueError" if model_int(model, sv.raised) else None
        result = None
        if raised is None and (op == "slab_shrink" or (
                op in ("slab_alloc", "vmalloc", "map_user") and not model_int(model, sv.none))):
            result = model_int(model, sv.result)
        return ConcreteStep(op, () if arg is None else (model_int(model, arg),), result, raised)

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef:
        """Step t takes s to s2: one operation ran, as the reference runs it."""
        sv = self.step_vars(t)
        v, v2 = self.vars_of(s), self.vars_of(s2)
        side = [z3.Implies(sv.raised, z3.And(sv.result == 0, z3.Not(sv.none))),
                z3.Implies(sv.none, sv.result == 0), within(sv.obj, range(self.num))]
        side += [z3.Implies(sv.op != OPS.index("slab_free"), z3.Not(r)) for r in sv.release]
        if not self.flush_possible:
            side += [z3.Not(r) for r in sv.release]
        if len(self.colours) == 1:
            side.append(z3.Not(sv.colour))
        guards: list[z3.BoolRef] = []
        changes: dict[tuple[str, object], list[tuple[z3.BoolRef, z3.ExprRef]]] = {}
        for j, op in enumerate(OPS):
            for guard, upd in getattr(self, f"_{op}")(v, sv):
                g = z3.And(sv.op == j, self._args(sv, op), guard)
                guards.append(g)
                for name, i, term in _changed(v, upd):
                    changes.setdefault((name, i), []).append((g, term))
        post = []
        for name in v:
            for i in v[name]:
                term = v[name][i]
                for g, new in reversed(changes.get((name, i), [])):
                    term = z3.If(g, new, term)
                post.append(v2[name][i] == term)
        return z3.And(*side, z3.Or(guards), *post)

    def _args(self, sv: MachineStepVars, op: str) -> z3.BoolRef:
        """The arguments `op` does not take are 0; the ones it takes in their domains."""
        takes = {"slab_free": ("addr",), "vfree": ("addr",), "vmalloc": ("size",),
                 "map_user": ("va",), "unmap_user": ("va",)}.get(op, ())
        facts = [getattr(sv, n) == 0 for n in ("va", "size", "addr") if n not in takes]
        if "va" in takes:
            facts.append(within(sv.va, VAS))
        if "size" in takes:
            facts.append(within(sv.size, SIZES))
        if op not in ("slab_alloc", "vmalloc", "map_user"):
            facts.append(z3.Not(sv.none))
        if op not in ("slab_alloc", "vmalloc", "map_user", "slab_shrink"):
            facts.append(sv.result == 0)
        return z3.And(facts)

    def _takes(self, v: Mapping[str, dict], sv: MachineStepVars, n: int) -> z3.BoolRef:
        """The step's first n choices are distinct free frames."""
        cs = sv.choices[:n]
        return z3.And(*[self._kind_at(v, c, FREE) for c in cs],
                      *([z3.Distinct(*cs)] if n > 1 else []))

    # -- slab -----------------------------------------------------------------

    def _free_slot(self, v: Mapping[str, dict], f: int, i: int) -> z3.BoolRef:
        return z3.And(v["kind"][f] == SLAB, z3.Not(v["live"][f, i]))

    def _slab_alloc(self, v: dict[str, dict], sv: MachineStepVars
                    ) -> list[tuple[z3.BoolRef, Upd | None]]:
        """kmem_cache_alloc: a free object of a slab, else one of a new slab, else None."""
        c = sv.choices[0]
        slots = [(f, i) for f in self.frames for i in range(self.num)]
        some = z3.Or([self._free_slot(v, f, i) for f, i in slots])
        addr = z3.Sum([z3.If(c == f, self.obj_addr(v, f, 0).term, 0) for f in self.frames])
        upd = Upd(self, v)
        for f, i in slots:
            upd.t["live"][f, i] = z3.Or(v["live"][f, i], z3.And(c == f, sv.obj == i))
        pick = z3.Or([z3.And(c == f, sv.obj == i, self._free_slot(v, f, i)) for f, i in slots])
        ok = z3.And(z3.Not(sv.raised), z3.Not(sv.none))
        out: list[tuple[z3.BoolRef, Upd | None]] = [
            (z3.And(some, pick, ok, sv.result == addr + sv.obj * OBJECT_SIZE), upd)]
        grow = Upd(self, v)
        grow.take(c, SLAB)
        grow.at("col", c, sv.colour)
        for f, i in slots:
            grow.t["live"][f, i] = z3.If(c == f, sv.obj == i, v["live"][f, i])
        first = z3.Sum([z3.If(c == f, self.obj_addr(grow.t, f, 0).term, 0) for f in self.frames])
        out.append((z3.And(z3.Not(some), self._takes(v, sv, 1), ok,
                           sv.result == first + sv.obj * OBJECT_SIZE), grow))
        out.append((z3.And(z3.Not(some), self._nr_free(v) == 0, z3.Not(sv.raised), sv.none),
                    None))
        return out

    def _slab_free(self, v: dict[str, dict], sv: MachineStepVars
                   ) -> list[tuple[z3.BoolRef, Upd | None]]:
        """kmem_cache_free of a live object (ValueError otherwise); the flush may give
        back slabs left without a live object."""
        hits = {(f, i): z3.And(v["live"][f, i], self.obj_addr(v, f, i).term == sv.addr)
                for f in self.frames for i in range(self.num)}
        upd = Upd(self, v)
        for (f, i), hit in hits.items():
            upd.t["live"][f, i] = z3.And(v["live"][f, i], z3.Not(hit))
        facts = []
        for k, f in enumerate(self.frames):
            empty = z3.Not(z3.Or([upd.t["live"][f, i] for i in range(self.num)]))
            facts.append(z3.Implies(sv.release[k], z3.And(v["kind"][f] == SLAB, empty)))
            upd.put_frame(f, sv.release[k])
        return [(z3.And(z3.Or(list(hits.values())), z3.Not(sv.raised), *facts), upd),
                (z3.And(z3.Not(z3.Or(list(hits.values()))), sv.raised), None)]

    def _slab_shrink(self, v: dict[str, dict], sv: MachineStepVars
                     ) -> list[tuple[z3.BoolRef, Upd | None]]:
        """kmem_cache_shrink: every slab without a live object back; how many pages."""
        upd = Upd(self, v)
        gone = {}
        for f in self.frames:
            gone[f] = z3.And(v["kind"][f] == SLAB,
                             z3.Not(z3.Or([v["live"][f, i] for i in range(self.num)])))
            upd.put_frame(f, gone[f])
        count = z3.Sum([z3.If(g, 1, 0) for g in gone.values()])
        return [(z3.And(z3.Not(sv.raised), sv.result == count), upd)]

    # -- vmalloc --------------------------------------------------------------

    def _vmalloc(self, v: dict[str, dict], sv: MachineStepVars
                 ) -> list[tuple[z3.BoolRef, Upd | None]]:
        """vmalloc(size): ValueError below 0, None for 0 or when pages run out, else an
        area first fit with its guard page (at window page sv.addr: the lowest fit), its
        pages taken and mapped."""
        ok = z3.Not(sv.raised)
        out: list[tuple[z3.BoolRef, Upd | None]] = [
            (z3.And(sv.size < 0, sv.raised), None),
            (z3.And(sv.size == 0, ok, sv.none), None)]
        for size in sorted({s for s in SIZES if s > 0}):
            n = npages_of(size)
            need = n + z3.If(v["ktab"][()], 0, 1)
            fits = [z3.And([z3.Not(self._used(v, w + d)) for d in range(n + 1)])
                    for w in range(self.window - n)]
            here = z3.And(sv.size == size, ok)
            out.append((z3.And(here, z3.Or(self._nr_free(v) < need,
                                           z3.Not(z3.Or(fits))), sv.none), None))
            pos = sv.pos
            at, none_yet = [], z3.BoolVal(True)
            for w, fit in enumerate(fits):
                at.append(z3.And(pos == w, fit, none_yet))
                none_yet = z3.And(none_yet, z3.Not(fit))
            first = z3.Or(at)
            table = sv.choices[n]
            new_table = z3.Not(v["ktab"][()])
            facts = [self._takes(v, sv, n), first,
                     z3.Implies(new_table, z3.And(self._kind_at(v, table, FREE),
                                                  *[table != c for c in sv.choices[:n]])),
                     sv.result == self.vstart + pos * PAGE_SIZE]
            out.append((z3.And(here, self._nr_free(v) >= need, z3.Not(sv.none), *facts),
                        self._vmalloc_at(v, sv, pos, n, table)))
        return out

    def _vmalloc_at(self, v: dict[str, dict], sv: MachineStepVars, pos: z3.ArithRef, n: int,
                    table: z3.ArithRef) -> Upd:
        """An area of n pages at window page pos, page j in frame choices[j]; the kernel
        PTE table in choices[n] when there is none yet."""
        upd = Upd(self, v)
        for w in range(self.window):
            upd.t["astart"][w] = z3.Or(v["astart"][w], pos == w)
            upd.t["alen"][w] = z3.If(pos == w, n, v["alen"][w])
        for j in range(n):
            c = sv.choices[j]
            upd.take(c, VMALLOC)
            upd.at("vmark", c, True)
            upd.at("karea", c, pos)
            upd.at("kidx", c, j)
        upd.take(table, TABLE, z3.Not(v["ktab"][()]))
        upd.t["ktab"][()] = z3.BoolVal(True)
        return upd

    def _vfree(self, v: dict[str, dict], sv: MachineStepVars
               ) -> list[tuple[z3.BoolRef, Upd | None]]:
        """vfree(0) does nothing; vfree of an area's address unmaps it and gives its pages
        back (PG_vmalloc cleared first); ValueError for any other address."""
        ok = z3.Not(sv.raised)
        starts = [z3.And(v["astart"][w], sv.addr == self.vstart + w * PAGE_SIZE)
                  for w in range(self.window)]
        upd = Upd(self, v)
        for w in range(self.window):
            upd.t["astart"][w] = z3.And(v["astart"][w], sv.pos != w)
            upd.t["alen"][w] = z3.If(sv.pos == w, 0, v["alen"][w])
        for f in self.frames:
            mine = z3.And(v["kind"][f] == VMALLOC, v["karea"][f] == sv.pos)
            if self.mutation != "vfree_keeps_mark":
                upd.t["vmark"][f] = z3.And(v["vmark"][f], z3.Not(mine))
            upd.t["karea"][f] = z3.If(mine, 0, v["karea"][f])
            upd.t["kidx"][f] = z3.If(mine, 0, v["kidx"][f])
            upd.put_frame(f, mine)
        return [(z3.And(sv.addr == 0, ok), None),
                (z3.And(sv.addr != 0, z3.Not(z3.Or(starts)), sv.raised), None),
                (z3.And(sv.addr != 0, z3.Or(starts), sv.addr == self.vstart + sv.pos * PAGE_SIZE,
                        ok), upd)]

    # -- user memory ----------------------------------------------------------

    def _bad_va(self, sv: MachineStepVars) -> z3.BoolRef:
        return within(sv.va, BAD_USER_VAS)

    def _map_user(self, v: dict[str, dict], sv: MachineStepVars
                  ) -> list[tuple[z3.BoolRef, Upd | None]]:
        """do_anonymous_page: the page, then the region's PTE table if missing; None when
        pages run out; ValueError for a bad or mapped address."""
        out: list[tuple[z3.BoolRef, Upd | None]] = [(z3.And(self._bad_va(sv), sv.raised), None)]
        ok = z3.Not(sv.raised)
        page, table = sv.choices[0], sv.choices[1]
        for u in self.users:
            r = region(USER_VAS[u])
            here = sv.va == USER_VAS[u]
            need = 1 + z3.If(v["utab"][r], 0, 1)
            out.append((z3.And(here, v["pte"][u], sv.raised), None))
            out.append((z3.And(here, z3.Not(v["pte"][u]), ok, sv.none,
                               self._nr_free(v) < need), None))
            upd = Upd(self, v)
            upd.take(page, USER)
            upd.at("mapc", page, lambda m: m + 1)
            upd.t["pte"][u], upd.t["upfn"][u] = z3.BoolVal(True), page
            new_table = z3.Not(v["utab"][r])
            upd.take(table, TABLE, new_table)
            upd.t["utab"][r] = z3.BoolVal(True)
            upd.t["utabpfn"][r] = z3.If(new_table, table, v["utabpfn"][r])
            out.append((z3.And(here, z3.Not(v["pte"][u]), ok, z3.Not(sv.none),
                               self._nr_free(v) >= need, sv.result == page,
                               self._kind_at(v, page, FREE),
                               z3.Implies(new_table, z3.And(self._kind_at(v, table, FREE),
                                                            table != page))), upd))
        return out

    def _unmap_user(self, v: dict[str, dict], sv: MachineStepVars
                    ) -> list[tuple[z3.BoolRef, Upd | None]]:
        """zap_pte_range for one page: ValueError unless mapped; the PTE cleared, an
        emptied PTE table freed, page_remove_rmap, put_page."""
        out: list[tuple[z3.BoolRef, Upd | None]] = [(z3.And(self._bad_va(sv), sv.raised), None)]
        for u in self.users:
            r = region(USER_VAS[u])
            here = sv.va == USER_VAS[u]
            out.append((z3.And(here, z3.Not(v["pte"][u]), sv.raised), None))
            upd = Upd(self, v)
            pfn = v["upfn"][u]
            upd.t["pte"][u], upd.t["upfn"][u] = z3.BoolVal(False), z3.IntVal(0)
            others = [v["pte"][x] for x in self.users if x != u and region(USER_VAS[x]) == r]
            emptied = z3.Not(z3.Or(others)) if others else z3.BoolVal(True)
            upd.put(v["utabpfn"][r], emptied)
            upd.t["utab"][r] = z3.And(v["utab"][r], z3.Not(emptied))
            upd.t["utabpfn"][r] = z3.If(emptied, 0, v["utabpfn"][r])
            if self.mutation != "unmap_keeps_mapcount":
                upd.at("mapc", pfn, lambda m: m - 1)
            upd.put(pfn)
            out.append((z3.And(here, v["pte"][u], z3.Not(sv.raised)), upd))
        return out


def _same(term: object, var: z3.ExprRef) -> bool:
    return isinstance(term, z3.ExprRef) and term.eq(var)


def _changed(v: dict[str, dict], upd: Upd | None) -> list[tuple[str, object, z3.ExprRef]]:
    """The fields `upd` gives a term other than the pre-state's."""
    if upd is None:
        return []
    return [(n, i, upd.t[n][i]) for n in v for i in v[n] if not _same(upd.t[n][i], v[n][i])]


