"""vmalloc over the kernel page table as a Z3 transition system (see `base.py`).

The universe is fixed by the setup: a window of W pages at VMALLOC_START of
the i386 layout of a 64 MiB machine (the Vmalloc's [start, end), all of it in
the page-table page of one pgd slot), and a page allocator of N pages (the
backing pages and the kernel's table pages come from it). One state holds,
per page i of the window and per pfn p of the pool,

    a[i]      Bool  page i belongs to an area (its guard page included)
    st[i]     Bool  an area starts at page i
    pte[i]    Int   the pfn the kernel PTE of page i maps, -1 for none
    tlb[i]    Int   the pfn the TLB caches for page i, -1 for none
    held[p]   Bool  frame p is vmalloc backing (taken from the page allocator)
    ptp       Int   the pfn of the window's PTE table, -1 before the first map

The pgd's pfn is the reference's (a constant); a frame is free when it is
neither held nor a table page. An area is a run of a[] from a start to the page
before the next start or the first page outside every area. PTE flags are
PAGE_KERNEL and TLB flags the effective flags of a supervisor write through
it (computed once on the reference MMU): constants.

The vocabulary is presented over one slot per possible area [s, e) of the
window (constant addr and size, guarded by "[s, e) is one area"), one per pfn
for `held` and one per window page for `ptes` and `tlb`, so the spec's
arithmetic on addresses and sizes folds before Z3 sees it.

The transitions are those of `mmcheck.model.vmalloc.Vmalloc` and of the
checker's step (checker/subsystems/vmalloc.py ReferenceSystem): vmalloc(size)
raises ValueError for size < 0 and returns none for 0; else __get_vm_area's
first fit (the lowest window page r where npages + 1 pages are clear of every
area: the first gap of the sorted vm_struct list that holds them), none when
there is none; then one free frame per page (any free frame: which one is the
page allocator's choice, a step variable here) and the PTE table on the first
map; when the free frames are fewer than that, the error path gives every page
back and flushes the TLB over the area (vfree) and returns none. On success
the checker writes each page of the size asked (16 pages at most), which fills
the TLB where it has no entry yet (a cached entry is used as it is).
vfree(addr): 0 does nothing, an address that starts no area raises
ValueError; else the area's PTEs (its guard excluded) are cleared, the TLB is
flushed over them, their frames are freed and the area is unlinked.

Mutations seed the bugs of `examples/vmalloc/buggy/` (see `MUTATIONS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import partial

import z3
from mmcheck.checker.subsystems.declared.vmalloc import BAD_SIZES, SIZES
from mmcheck.checker.symbolic.base import (
    ConcreteStep,
    SymCollection,
    SymOptional,
    SymRecord,
    SymState,
    SymStep,
    decode_step,
    model_int,
    raising_goals,
    within,
)
from mmcheck.model.layout import MiB, i386_layout
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.model.page import page_address
from mmcheck.model.vmalloc import PAGE_KERNEL, VOCABULARY, KernelPageTable, touch
from mmcheck.model.vocabulary import Vocabulary

P = PAGE_SIZE
RAM_MIB = 64
TOUCH_PAGES = 16  # checker/subsystems/vmalloc.py TOUCH_LIMIT, in pages
OPS = ("vmalloc", "vfree")

MUTATIONS: Mapping[str, str] = {
    "no_guard_page": "__get_vm_area forgets the guard page: an area is exactly its pages",
    "leaks_on_failure": "a vmalloc that runs out of pages unlinks the area and keeps the "
                        "pages it took",
    "no_tlb_flush": "vfree clears the PTEs and frees the pages without flushing the TLB",
}


def tlb_flags() -> int:
    """The effective flags the TLB caches for a supervisor write through a PAGE_KERNEL
    entry of the kernel page table (the reference MMU, run once)."""
    kpt = _kernel_pt(4)
    start = i386_layout(RAM_MIB * MiB).vmalloc_start
    kpt.install(start, 0, PAGE_KERNEL)
    touch(kpt, start, P)
    return kpt.tlb.entries()[0].flags


@dataclass(frozen=True)
class VmallocVars:
    a: tuple[z3.BoolRef, ...]
    st: tuple[z3.BoolRef, ...]
    pte: tuple[z3.ArithRef, ...]
    tlb: tuple[z3.ArithRef, ...]
    held: tuple[z3.BoolRef, ...]
    ptp: z3.ArithRef


@dataclass(frozen=True)
class VmallocStepVars:
    op: z3.ArithRef
    size: z3.ArithRef
    addr: z3.ArithRef
    place: z3.ArithRef  # the window page vmalloc returned (0 otherwise)
    none: z3.BoolRef  # vmalloc returned none
    raised: z3.BoolRef


Update = dict[str, dict[int, object]]  # family -> index -> the new value


class SymbolicVmalloc:
    """A Vmalloc over a window of `window` pages and a page allocator of `pool` pages."""

    vocabulary: Vocabulary = VOCABULARY

    def __init__(self, window: int, pool: int, mutation: str | None = None) -> None:
        if mutation is not None and mutation not in MUTATIONS:
            raise ValueError(f"SymbolicVmalloc: unknown mutation {mutation!r}; "
                             f"known: {', '.join(MUTATIONS)}")
        if not 2 <= window <= 1024 or pool < 2:
            raise ValueError("SymbolicVmalloc: a window of 2 to 1024 pages (one PTE table) "
                             "and a pool of 2 pages or more")
        self.w, self.n, self.mutation = window, pool, mutation
        self.setup = {"ram_mib": RAM_MIB, "npages": pool, "window": window}
        self.layout = i386_layout(RAM_MIB * MiB)
        self.start = self.layout.vmalloc_start
        self.end = self.start + window * P
        self.pgd = _kernel_pt(pool).pgd
        self.tlb_flags = tlb_flags()
        self.guard = 0 if mutation == "no_guard_page" else 1
        self.sizes = (*SIZES, *BAD_SIZES)
        self.addrs = (0, *(self.start + i * P for i in range(window)), self.start + 1,
                      self.end)

    # -- states ---------------------------------------------------------------

    def fresh_state(self, tag: str) -> SymState:
        """A state of fresh z3 constants named after `tag`."""
        w, n = self.w, self.n
        v = VmallocVars(
            tuple(z3.Bool(f"{tag}.a[{i}]") for i in range(w)),
            tuple(z3.Bool(f"{tag}.st[{i}]") for i in range(w)),
            tuple(z3.Int(f"{tag}.pte[{i}]") for i in range(w)),
            tuple(z3.Int(f"{tag}.tlb[{i}]") for i in range(w)),
            tuple(z3.Bool(f"{tag}.held[{p}]") for p in range(n)),
            z3.Int(f"{tag}.ptp"))
        return self._present(v)

    def vars_of(self, s: SymState) -> VmallocVars:
        """The constants behind a state made by `fresh_state`."""
        vs, w, n = s.variables, self.w, self.n
        return VmallocVars(*(tuple(vs[k * w:(k + 1) * w]) for k in range(4)),  # type: ignore[arg-type]
                           tuple(vs[4 * w:4 * w + n]), vs[4 * w + n])  # type: ignore[arg-type]

    def area(self, v: VmallocVars, s: int, e: int) -> z3.BoolRef:
        """[s, e) is one area: it starts at s, runs on to e and ends there."""
        inside = [z3.And(v.a[q], z3.Not(v.st[q])) for q in range(s + 1, e)]
        end = z3.BoolVal(True) if e == self.w else z3.Or(z3.Not(v.a[e]), v.st[e])
        return z3.And(v.st[s], *inside, end)

    def free(self, v: VmallocVars, p: int) -> z3.BoolRef:
        """Frame p is free in the page allocator: neither backing nor a table page."""
        if p == self.pgd:
            return z3.BoolVal(False)
        return z3.And(z3.Not(v.held[p]), v.ptp != p)

    def pages_free(self, v: VmallocVars) -> z3.ArithRef:
        """The page allocator's free frames."""
        return z3.Sum([z3.If(self.free(v, p), 1, 0) for p in range(self.n)])

    def _present(self, v: VmallocVars) -> SymState:
        """The vocabulary's view of the variables `v`."""
        w, va = self.w, (lambda i: self.start + i * P)
        spans = [(s, e) for s in range(w) for e in range(s + 1, w + 1)]
        areas = tuple((self.area(v, s, e), SymRecord("Area", {
            "addr": z3.IntVal(va(s)), "size": z3.IntVal((e - s) * P)})) for s, e in spans)
        held = tuple((v.held[p], SymRecord("Held", {
            "pfn": z3.IntVal(p), "alias": z3.IntVal(self.alias(p))})) for p in range(self.n))
        ptes = tuple((v.pte[i] >= 0, SymRecord("Kpte", {
            "va": z3.IntVal(va(i)), "pfn": v.pte[i], "flags": z3.IntVal(PAGE_KERNEL)}))
            for i in range(w))
        tlb = tuple((v.tlb[i] >= 0, SymRecord("TlbEntry", {
            "va": z3.IntVal(va(i)), "pfn": v.tlb[i], "flags": z3.IntVal(self.tlb_flags)}))
            for i in range(w))
        values = {
            "vmalloc_start": z3.IntVal(self.start), "vmalloc_end": z3.IntVal(self.end),
            "page_offset": z3.IntVal(self.layout.page_offset),
            "high_memory": z3.IntVal(self.layout.high_memory),
            "areas": SymCollection("Area", areas), "held": SymCollection("Held", held),
            "ptes": SymCollection("Kpte", ptes), "tlb": SymCollection("TlbEntry", tlb),
            "pages_free": self.pages_free(v),
        }
        flat = (*v.a, *v.st, *v.pte, *v.tlb, *v.held, v.ptp)
        return SymState(values, flat)

    def alias(self, p: int) -> int:
        """page_address of frame p: its direct-map address, -1 for high memory."""
        found = page_address(p, self.layout)
        return -1 if found is None else found

    def init(self, s: SymState) -> z3.BoolRef:
        """A Vmalloc just made: no area, no page held, no PTE table, an empty TLB."""
        v = self.vars_of(s)
        return z3.And(v.ptp == -1, *[z3.Not(h) for h in v.held],
                      *[z3.And(z3.Not(v.a[i]), z3.Not(v.st[i]), v.pte[i] == -1, v.tlb[i] == -1)
                        for i in range(self.w)])

    def assign(self, s: SymState, areas: Sequence[tuple[int, int]], ptes: Mapping[int, int],
               tlb: Mapping[int, int], held: Sequence[int], ptp: int) -> z3.BoolRef:
        """s is exactly: the areas (addr, size), the PTEs and TLB entries (va -> pfn), the
        frames held and the PTE table's pfn (-1: none). False when an area leaves the
        window."""
        v = self.vars_of(s)
        facts = [v.ptp == ptp, *[v.held[p] == (p in held) for p in range(self.n)]]
        page: dict[int, bool] = {}
        for addr, size in areas:
            lo, hi = (addr - self.start) // P, (addr + size - self.start) // P
            if not 0 <= lo < hi <= self.w:
                return z3.BoolVal(False)
            page.update({q: q == lo for q in range(lo, hi)})
        for i in range(self.w):
            va = self.start + i * P
            facts += [v.a[i] == (i in page), v.st[i] == page.get(i, False),
                      v.pte[i] == ptes.get(va, -1), v.tlb[i] == tlb.get(va, -1)]
        return z3.And(facts)

    def well_formed(self, s: SymState) -> z3.BoolRef:
        """Domains, and what holds by construction: an area starts where a run of area
        pages starts; the table page is no pgd and no backing page; a PTE needs the
        table."""
        v = self.vars_of(s)
        pfns = range(-1, self.n)
        facts = [within(v.ptp, [p for p in pfns if p != self.pgd]),
                 z3.Not(v.held[self.pgd])]
        facts += [z3.Implies(v.held[p], v.ptp != p) for p in range(self.n)]
        for i in range(self.w):
            first = z3.BoolVal(True) if i == 0 else z3.Not(v.a[i - 1])
            facts += [within(v.pte[i], pfns), within(v.tlb[i], pfns),
                      z3.Implies(v.st[i], v.a[i]), z3.Implies(z3.And(v.a[i], first), v.st[i]),
                      z3.Implies(v.pte[i] >= 0, v.ptp >= 0)]
        return z3.And(facts)

    def decode_state(self, model: z3.ModelRef, s: SymState) -> dict[str, object]:
        """The areas (addr, size), PTEs, TLB and frames of s: for a CTI picture."""
        v, num = self.vars_of(s), partial(model_int, model)
        areas: list[list[int]] = []
        for i in range(self.w):
            if num(v.st[i]) or (num(v.a[i]) and not areas):
                areas.append([self.start + i * P, 0])
            if num(v.a[i]) and areas:
                areas[-1][1] = self.start + (i + 1) * P - areas[-1][0]
        return {"areas": [tuple(a) for a in areas],
                "ptes": {i: num(v.pte[i]) for i in range(self.w) if num(v.pte[i]) >= 0},
                "tlb": {i: num(v.tlb[i]) for i in range(self.w) if num(v.tlb[i]) >= 0},
                "held": [p for p in range(self.n) if num(v.held[p])], "ptp": num(v.ptp)}

    # -- steps ----------------------------------------------------------------

    def fresh_step(self, tag: str) -> SymStep:
        """A step of fresh z3 constants: which operation, its argument, its result."""
        made = {f.name: (z3.Bool if f.name in ("none", "raised") else z3.Int)(
            f"{tag}.{f.name}") for f in fields(VmallocStepVars)}
        sv = VmallocStepVars(**made)
        return SymStep(
            is_op={name: sv.op == j for j, name in enumerate(OPS)},
            args={"vmalloc": {"size": sv.size}, "vfree": {"addr": sv.addr}},
            results={"vmalloc": SymOptional(sv.none, self.start + sv.place * P),
                     "vfree": None},
            raised=sv.raised,
            variables=tuple(made[f.name] for f in fields(VmallocStepVars)),
            domains={"vmalloc": {"size": self.sizes}, "vfree": {"addr": self.addrs}},  # type: ignore[dict-item]
            raised_as={"ValueError": sv.raised})

    def step_vars(self, t: SymStep) -> VmallocStepVars:
        """The constants behind a step made by `fresh_step`."""
        return VmallocStepVars(*t.variables)  # type: ignore[arg-type]

    def decode_step(self, model: z3.ModelRef, t: SymStep) -> ConcreteStep:
        """The operation t performed in `model`, as a trace records it."""
        return decode_step(model, t)

    def coverage_goals(self, states: Sequence[SymState], steps: Sequence[SymStep]
                       ) -> list[z3.BoolRef]:
        """Goals for solver-generated traces beyond the action premises: the last step
        raises each exception its operation may raise (base.raising_goals)."""
        return raising_goals(self.vocabulary, steps[-1])

    # -- transitions ----------------------------------------------------------

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef:
        """Step t takes s to s2: one operation ran, as the reference runs it; the
        argument of the other and results that mean nothing are pinned to 0."""
        sv = self.step_vars(t)
        v, v2 = self.vars_of(s), self.vars_of(s2)
        cases = [*self.vmalloc(v, sv, v2), *self.vfree(v, sv, v2)]
        return z3.And(within(sv.op, range(len(OPS))),
                      z3.Implies(sv.op != 0, sv.size == 0), z3.Implies(sv.op != 1, sv.addr == 0),
                      z3.Or([z3.And(guard, *effect) for guard, effect in cases]))

    def _next(self, v: VmallocVars, v2: VmallocVars, upd: Update) -> list[z3.BoolRef]:
        """s2 is s with the updates `upd` (family -> index -> value)."""
        out = [v2.ptp == upd.get("ptp", {}).get(0, v.ptp)]
        for name in ("a", "st", "pte", "tlb", "held"):
            new, old, changed = getattr(v2, name), getattr(v, name), upd.get(name, {})
            out += [new[i] == changed.get(i, old[i]) for i in range(len(old))]
        return out

    def _outcome(self, sv: VmallocStepVars, raised: bool = False, none: bool = False,
                 place: int = 0) -> list[z3.BoolRef]:
        return [sv.raised == raised, sv.none == none, sv.place == place]

    # -- vmalloc --------------------------------------------------------------

    def vmalloc(self, v: VmallocVars, sv: VmallocStepVars, v2: VmallocVars
                ) -> list[tuple[z3.BoolRef, list[z3.BoolRef]]]:
        """(guard, effect) of every outcome of vmalloc(size), size by size."""
        out: list[tuple[z3.BoolRef, list[z3.BoolRef]]] = []
        same = self._next(v, v2, {})
        for size in self.sizes:
            at = z3.And(sv.op == 0, sv.size == size)
            n = -(-size // P) if size > 0 else 0
            if size < 0 or n == 0:
                out.append((at, [*self._outcome(sv, raised=size < 0, none=size == 0), *same]))
                continue
            m, room = n + self.guard, []
            for r in range(self.w - m + 1):
                first = z3.And(self._clear(v, r, m), *[z3.Not(x) for x in room])
                room.append(self._clear(v, r, m))
                need = n + z3.If(v.ptp < 0, 1, 0)
                ok = self.pages_free(v) >= need
                out.append((z3.And(at, first, ok), [*self._outcome(sv, place=r),
                                                     *self.__vmalloc_area(v, v2, r, m, n, size)]))
                out.append((z3.And(at, first, z3.Not(ok)), [*self._outcome(sv, none=True),
                                                             *self._error_path(v, v2, r, n)]))
            out.append((z3.And(at, *[z3.Not(x) for x in room]),
                        [*self._outcome(sv, none=True), *same]))
        return out

    def _clear(self, v: VmallocVars, r: int, m: int) -> z3.BoolRef:
        """Pages [r, r+m) of the window belong to no area."""
        return z3.And([z3.Not(v.a[q]) for q in range(r, r + m)])

    def __vmalloc_area(self, v: VmallocVars, v2: VmallocVars, r: int, m: int, n: int,
                       size: int) -> list[z3.BoolRef]:
        """The area [r, r+m) linked, a free frame mapped at each of its first n pages
        (the PTE table taken first if there is none), the pages the checker writes
        cached in the TLB."""
        new = [v2.pte[q] for q in range(r, r + n)]
        upd: Update = {"a": {q: True for q in range(r, r + m)},
                       "st": {q: q == r for q in range(r, r + m)},
                       "held": {p: z3.Or(v.held[p], *[x == p for x in new])
                                for p in range(self.n)},
                       "tlb": {q: z3.If(v.tlb[q] >= 0, v.tlb[q], v2.pte[q])
                               for q in range(r, r + min(n, TOUCH_PAGES, -(-size // P)))}}
        upd["pte"] = {q: v2.pte[q] for q in range(r, r + n)}
        upd["ptp"] = {0: z3.If(v.ptp >= 0, v.ptp, v2.ptp)}
        taken = [*new, z3.If(v.ptp >= 0, -2, v2.ptp)]
        facts = [z3.Distinct(taken)] if len(taken) > 1 else []
        facts += [self._is_free(v, x) for x in new]
        facts.append(z3.Or(v.ptp >= 0, self._is_free(v, v2.ptp)))
        return [*facts, *self._next(v, v2, upd)]

    def _is_free(self, v: VmallocVars, x: z3.ArithRef) -> z3.BoolRef:
        """x names a free frame of the pool."""
        return z3.Or([z3.And(x == p, self.free(v, p)) for p in range(self.n)])

    def _error_path(self, v: VmallocVars, v2: VmallocVars, r: int, n: int
                    ) -> list[z3.BoolRef]:
        """The frames ran out: vfree of the half-built area (nothing was mapped: the
        TLB flushed over its pages, every frame given back), or under
        leaks_on_failure the area unlinked with every free frame kept."""
        if self.mutation == "leaks_on_failure":
            return self._next(v, v2, {"held": {p: z3.Or(v.held[p], self.free(v, p))
                                               for p in range(self.n)}})
        if self.mutation == "no_tlb_flush":
            return self._next(v, v2, {})
        return self._next(v, v2, {"tlb": {q: z3.IntVal(-1) for q in range(r, r + n)}})

    # -- vfree ----------------------------------------------------------------

    def vfree(self, v: VmallocVars, sv: VmallocStepVars, v2: VmallocVars
              ) -> list[tuple[z3.BoolRef, list[z3.BoolRef]]]:
        """(guard, effect) of every outcome of vfree(addr), address by address."""
        same = self._next(v, v2, {})
        out = []
        for addr in self.addrs:
            at = z3.And(sv.op == 1, sv.addr == addr)
            i, on_page = (addr - self.start) // P, (addr - self.start) % P == 0
            if addr == 0 or not (on_page and 0 <= i < self.w):
                out.append((at, [*self._outcome(sv, raised=addr != 0), *same]))
                continue
            out.append((z3.And(at, z3.Not(v.st[i])), [*self._outcome(sv, raised=True), *same]))
            out += [(z3.And(at, self.area(v, i, e)),
                     [*self._outcome(sv), *self.remove_vm_area(v, v2, i, e)])
                    for e in range(i + 1, self.w + 1)]
        return out

    def remove_vm_area(self, v: VmallocVars, v2: VmallocVars, s: int, e: int
                       ) -> list[z3.BoolRef]:
        """The area [s, e) unlinked, its usable pages unmapped, the TLB flushed over
        them (not under no_tlb_flush), their frames freed."""
        usable = range(s, e - self.guard)
        upd: Update = {"a": {q: False for q in range(s, e)}, "st": {q: False for q in range(s, e)},
                       "pte": {q: z3.IntVal(-1) for q in usable},
                       "held": {p: z3.And(v.held[p], *[v.pte[q] != p for q in usable])
                                for p in range(self.n)}}
        if self.mutation != "no_tlb_flush":
            upd["tlb"] = {q: z3.IntVal(-1) for q in usable}
        return self._next(v, v2, upd)


def _kernel_pt(pool: int) -> KernelPageTable:
    """The kernel page table of the reference over a page allocator of `pool` pages
    (ReferenceSystem's): its pgd is the encoding's."""
    from mmcheck.checker.subsystems.vmalloc import _machine

    return _machine({"npages": pool, "ram_mib": RAM_MIB, "window": 1})[2]
