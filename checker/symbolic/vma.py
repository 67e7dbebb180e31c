"""One process's address space as a Z3 transition system (see `base.py`).

The address space is a window of W pages: mmap_min_addr is its first page and
task_size its end, so every area lies in it and top-down placement starts at
its top (mmap_base is task_size for so small a space). One state holds, per
page p of the window,

    m[p]      Bool  page p is mapped
    st[p]     Bool  an area starts at p (true where p is mapped and p-1 is not)
    prot[p]   Int   the PROT_* bits of its area (0..7; 0 when unmapped)
    obj[p]    Int   what backs it: 0 for private anonymous memory, else the id
                    of the shmem file of a MAP_SHARED mmap (ids count up)
    off[p]    Int   its vm_pgoff: (address >> PAGE_SHIFT) for a private page,
                    the page's offset in its file for a shared one

and `nfile` (files made so far) and `errno`. An area is a run of mapped pages
from a start to the page before the next start or hole; inside it prot, obj and
off are uniform (off contiguous), which every transition keeps (well_formed).

The vocabulary is presented over one slot per possible area [s, e) and one per
possible gap, with constant bounds, so the spec's `disjoint`, `in`, `at(x)` and
friends fold to guards before Z3 sees them. vm_flags follow from prot and obj
(VM_MAY*, VM_SHARED|VM_MAYSHARE for a file, VM_ACCOUNT for a writable private
area: nothing faults here, so no area has an anon_vma and mprotect charges and
uncharges with VM_WRITE).

The transitions are those of `mmcheck.model.vma.AddressSpace` on these
arguments: mmap (do_mmap's checks in order, a MAP_FIXED range unmapped first,
a non-fixed one at its hint when free, else top-down at the highest free range,
vma_merge_new_range with the neighbours: a private area merges with a private
neighbour of the same protection, a new file with nothing), munmap (split at
the ends, nothing merges), mprotect (area by area from addr, stopping with
ENOMEM at the first hole after changing the areas below it; the changed range
merges with neighbours and its own pieces backed by the same object), find_vma.
vm.max_map_count keeps its default (65530), which W pages never reach.

Mutations seed the bugs of `examples/vma/buggy/` (see `MUTATIONS`); one bug is
not expressible here: fixed_overlaps leaves overlapping areas, which a page
cannot hold (no_merge seeds mmap's half of its bug: mprotect still merges).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import partial

import z3
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
from mmcheck.model.linux import (
    DEFAULT_MAX_MAP_COUNT,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_TYPE,
    PAGE_SHIFT,
    PAGE_SIZE,
)
from mmcheck.model.vma import (
    VM_ACCOUNT,
    VM_MAYEXEC,
    VM_MAYREAD,
    VM_MAYSHARE,
    VM_MAYWRITE,
    VM_SHARED,
    VM_WRITE,
    VOCABULARY,
)
from mmcheck.model.vocabulary import Vocabulary

P = PAGE_SIZE
WINDOW = 0x400000
EPERM, EBADF, ENOMEM, EEXIST, EINVAL = 1, 9, 12, 17, 22
ERRNOS = (0, EPERM, EBADF, ENOMEM, EEXIST, EINVAL)
PRIV = MAP_PRIVATE | MAP_ANONYMOUS
SHARED = MAP_SHARED | MAP_ANONYMOUS
MAP_DROPPABLE = 0x08
# mmap's flags: private/shared, fixed or not; a MAP_DROPPABLE and a file mapping.
FLAGS = (PRIV, SHARED, PRIV | MAP_FIXED, SHARED | MAP_FIXED, PRIV | MAP_FIXED_NOREPLACE,
         SHARED | MAP_FIXED_NOREPLACE, MAP_DROPPABLE | MAP_ANONYMOUS | MAP_FIXED,
         MAP_PRIVATE | MAP_FIXED)
PROTS = tuple(range(8))
# Lengths: whole pages, one that is not (3 pages less 100 bytes), and 0.
LENGTHS = (0, P, 2 * P, 3 * P - 100, 4 * P)
OPS = ("mmap", "munmap", "mprotect", "find_vma")
MAY = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC

MUTATIONS: Mapping[str, str] = {
    "no_merge": "mmap never merges the new area with a neighbour",
    "hint_ignored": "a non-fixed mmap goes top-down even when its hint is free",
    "inclusive_end": "MAP_FIXED_NOREPLACE takes an area that only touches the range for an "
                     "overlap",
    "length_rounded_down": "lengths are rounded down to whole pages",
    "mprotect_all_or_nothing": "mprotect meeting a hole changes nothing",
    "munmap_zero_length": "munmap(addr, 0) succeeds",
    "find_vma_containing": "find_vma returns only the area that contains addr",
    "einval_before_enomem": "an unaligned MAP_FIXED address is EINVAL before a range past "
                            "task_size is ENOMEM",
    "accepts_droppable": "MAP_DROPPABLE maps a private area instead of EINVAL",
    "mprotect_whole_area": "mprotect changes every area it touches whole (no split)",
}


def setup_of(pages: int) -> dict[str, int]:
    """The AddressSpace setup whose whole space is the window of `pages` pages."""
    return {"task_size": WINDOW + pages * P, "mmap_min_addr": WINDOW}


@dataclass(frozen=True)
class VmaVars:
    m: tuple[z3.BoolRef, ...]
    st: tuple[z3.BoolRef, ...]
    prot: tuple[z3.ArithRef, ...]
    obj: tuple[z3.ArithRef, ...]
    off: tuple[z3.ArithRef, ...]
    nfile: z3.ArithRef
    errno: z3.ArithRef


@dataclass(frozen=True)
class VmaStepVars:
    op: z3.ArithRef
    mmap_addr: z3.ArithRef
    mmap_length: z3.ArithRef
    mmap_prot: z3.ArithRef
    mmap_flags: z3.ArithRef
    munmap_addr: z3.ArithRef
    munmap_length: z3.ArithRef
    mprotect_addr: z3.ArithRef
    mprotect_length: z3.ArithRef
    mprotect_prot: z3.ArithRef
    find_addr: z3.ArithRef
    place: z3.ArithRef  # the first page of the range the step works on
    npages: z3.ArithRef  # its length in pages
    err: z3.ArithRef  # the errno it raised (0: none)
    find_none: z3.BoolRef
    find_start: z3.ArithRef
    raised: z3.BoolRef


def _flag_is(term: z3.ArithRef, test: object) -> z3.BoolRef:
    """flags (one of FLAGS) satisfies test(flags)."""
    return z3.Or([term == f for f in FLAGS if test(f)] or [z3.BoolVal(False)])


class SymbolicAddressSpace:
    """An AddressSpace whose [mmap_min_addr, task_size) is a window of `pages` pages."""

    vocabulary: Vocabulary = VOCABULARY

    def __init__(self, pages: int, mutation: str | None = None) -> None:
        if mutation is not None and mutation not in MUTATIONS:
            raise ValueError(f"SymbolicAddressSpace: unknown mutation {mutation!r}; "
                             f"known: {', '.join(MUTATIONS)}")
        if pages < 2:
            raise ValueError("SymbolicAddressSpace: the window needs two pages or more")
        self.w, self.mutation = pages, mutation
        self.setup = setup_of(pages)
        self.task_size = self.setup["task_size"]
        self.base_pgoff = WINDOW >> PAGE_SHIFT
        # Arguments: every page of the window and an unaligned address in its last page.
        self.addrs = (*(WINDOW + p * P for p in range(pages)), self.task_size - P + 8)
        self.find_addrs = (WINDOW - 1, *(WINDOW + p * P + o for p in range(pages)
                                         for o in (0, P - 1)), self.task_size)

    # -- states ---------------------------------------------------------------

    def fresh_state(self, tag: str) -> SymState:
        """A state of fresh z3 constants named after `tag`."""
        w = self.w

        def per_page(name: str, make: object) -> tuple:  # type: ignore[type-arg]
            return tuple(make(f"{tag}.{name}[{i}]") for i in range(w))  # type: ignore[operator]

        v = VmaVars(per_page("m", z3.Bool), per_page("st", z3.Bool), per_page("prot", z3.Int),
                    per_page("obj", z3.Int), per_page("off", z3.Int),
                    z3.Int(f"{tag}.nfile"), z3.Int(f"{tag}.errno"))
        return self._present(v)

    def vars_of(self, s: SymState) -> VmaVars:
        """The constants behind a state made by `fresh_state`."""
        vs, w = s.variables, self.w
        return VmaVars(*(tuple(vs[k * w:(k + 1) * w]) for k in range(5)),
                       vs[5 * w], vs[5 * w + 1])  # type: ignore[arg-type]

    def area(self, v: VmaVars, s: int, e: int) -> z3.BoolRef:
        """[s, e) is one area: it starts at s, runs on to e and ends there."""
        inside = [z3.And(v.m[q], z3.Not(v.st[q])) for q in range(s + 1, e)]
        end = z3.BoolVal(True) if e == self.w else z3.Or(z3.Not(v.m[e]), v.st[e])
        return z3.And(v.st[s], *inside, end)

    def gap(self, v: VmaVars, s: int, e: int) -> z3.BoolRef:
        """[s, e) is a maximal free range of the window."""
        below = z3.BoolVal(True) if s == 0 else v.m[s - 1]
        above = z3.BoolVal(True) if e == self.w else v.m[e]
        return z3.And(below, above, *[z3.Not(v.m[q]) for q in range(s, e)])

    def vm_flags(self, v: VmaVars, p: int) -> z3.ArithRef:
        """vm_flags of the area at page p (module docstring)."""
        write = z3.Or([v.prot[p] == c for c in PROTS if c & VM_WRITE])
        extra = z3.If(v.obj[p] > 0, VM_SHARED | VM_MAYSHARE, z3.If(write, VM_ACCOUNT, 0))
        return v.prot[p] + MAY + extra

    def _present(self, v: VmaVars) -> SymState:
        """The vocabulary's view of the variables `v`."""
        w, addr = self.w, (lambda p: WINDOW + p * P)
        spans = [(s, e) for s in range(w) for e in range(s + 1, w + 1)]
        guards = {(s, e): self.area(v, s, e) for s, e in spans}
        starts = [z3.If(st, 1, 0) for st in v.st]
        vmas = tuple((guards[s, e], SymRecord("Vma", {
            "start": z3.IntVal(addr(s)), "end": z3.IntVal(addr(e)),
            "prot": Cases.over(v.prot[s], PROTS),
            "flags": z3.If(v.obj[s] > 0, MAP_SHARED, MAP_PRIVATE)})) for s, e in spans)
        listed = tuple((guards[s, e], SymRecord("Listed", {
            "index": z3.Sum(starts[:s]) if s else z3.IntVal(0),
            "start": z3.IntVal(addr(s)), "end": z3.IntVal(addr(e))})) for s, e in spans)
        areas = tuple((guards[s, e], SymRecord("VmArea", {
            "start": z3.IntVal(addr(s)), "end": z3.IntVal(addr(e)),
            "vm_flags": self.vm_flags(v, s), "pgoff": v.off[s], "file": v.obj[s],
            "anon_vma": z3.IntVal(0), "chain": z3.IntVal(0)})) for s, e in spans)
        gaps = tuple((self.gap(v, s, e), SymRecord("Gap", {
            "start": z3.IntVal(addr(s)), "end": z3.IntVal(addr(e))})) for s, e in spans)
        values = {
            "vmas": SymCollection("Vma", vmas), "listed": SymCollection("Listed", listed),
            "areas": SymCollection("VmArea", areas), "gaps": SymCollection("Gap", gaps),
            "map_count": z3.Sum(starts), "task_size": z3.IntVal(self.task_size),
            "mmap_min_addr": z3.IntVal(WINDOW), "max_map_count": z3.IntVal(DEFAULT_MAX_MAP_COUNT),
            "mmap_base": z3.IntVal(self.task_size), "errno": Cases.over(v.errno, ERRNOS),
        }
        flat = (*v.m, *v.st, *v.prot, *v.obj, *v.off, v.nfile, v.errno)
        return SymState(values, flat)

    def init(self, s: SymState) -> z3.BoolRef:
        """An address space just made: nothing mapped, no file, errno 0."""
        v = self.vars_of(s)
        return z3.And(v.nfile == 0, v.errno == 0, *self._unmapped(v, range(self.w)))

    @staticmethod
    def _unmapped(v: VmaVars, pages: Sequence[int]) -> list[z3.BoolRef]:
        return [z3.And(z3.Not(v.m[p]), z3.Not(v.st[p]), v.prot[p] == 0, v.obj[p] == 0,
                       v.off[p] == 0) for p in pages]

    def assign(self, s: SymState, areas: Sequence[tuple[int, int, int, int, int]],
               nfile: int, errno: int) -> z3.BoolRef:
        """s is exactly: the areas (start, end, prot, file id or 0, pgoff), nfile and
        errno. False when an area leaves the window."""
        v = self.vars_of(s)
        page = {}
        for start, end, prot, file, pgoff in areas:
            lo, hi = (start - WINDOW) // P, (end - WINDOW) // P
            if not 0 <= lo < hi <= self.w:
                return z3.BoolVal(False)
            for q in range(lo, hi):
                page[q] = (q == lo, prot, file, pgoff + q - lo)
        facts = [v.nfile == nfile, v.errno == errno]
        for q in range(self.w):
            if q not in page:
                facts += self._unmapped(v, [q])
                continue
            st, prot, file, off = page[q]
            facts += [v.m[q], v.st[q] == st, v.prot[q] == prot, v.obj[q] == file,
                      v.off[q] == off]
        return z3.And(facts)

    def well_formed(self, s: SymState) -> z3.BoolRef:
        """Domains, and what every area has by construction: it starts where a run of
        mapped pages starts, and prot, obj and off are uniform (off contiguous) in it."""
        v = self.vars_of(s)
        facts = [v.nfile >= 0, within(v.errno, ERRNOS)]
        for p in range(self.w):
            first = z3.BoolVal(True) if p == 0 else z3.Not(v.m[p - 1])
            facts += [
                z3.If(v.m[p], z3.And(within(v.prot[p], PROTS), v.obj[p] >= 0,
                                     v.obj[p] <= v.nfile,
                                     z3.Implies(v.obj[p] == 0,
                                                v.off[p] == self.base_pgoff + p),
                                     z3.Implies(first, v.st[p])),
                      z3.And(*self._unmapped(v, [p]))),
            ]
            if p:
                same = z3.And(v.obj[p] == v.obj[p - 1], v.off[p] == v.off[p - 1] + 1)
                facts += [
                    z3.Implies(z3.And(v.m[p], z3.Not(v.st[p])),
                               z3.And(v.prot[p] == v.prot[p - 1], same)),
                    z3.Implies(z3.And(v.m[p], v.m[p - 1], v.obj[p] == v.obj[p - 1]),
                               v.off[p] == v.off[p - 1] + 1)]
        return z3.And(facts)

    # -- steps ----------------------------------------------------------------

    def fresh_step(self, tag: str) -> SymStep:
        """A step of fresh z3 constants: which operation, its arguments, its result."""
        made = {f.name: (z3.Bool if f.name in ("find_none", "raised") else z3.Int)(
            f"{tag}.{f.name}") for f in fields(VmaStepVars)}
        sv = VmaStepVars(**made)
        mmap_result = WINDOW + sv.place * P
        return SymStep(
            is_op={name: sv.op == j for j, name in enumerate(OPS)},
            args={"mmap": {"addr": sv.mmap_addr, "length": Cases.over(sv.mmap_length, LENGTHS),
                           "prot": Cases.over(sv.mmap_prot, PROTS),
                           "flags": Cases.over(sv.mmap_flags, FLAGS)},
                  "munmap": {"addr": sv.munmap_addr,
                             "length": Cases.over(sv.munmap_length, LENGTHS)},
                  "mprotect": {"addr": sv.mprotect_addr,
                               "length": Cases.over(sv.mprotect_length, LENGTHS),
                               "prot": Cases.over(sv.mprotect_prot, PROTS)},
                  "find_vma": {"addr": sv.find_addr}},
            results={"mmap": mmap_result, "munmap": None, "mprotect": None,
                     "find_vma": SymOptional(sv.find_none, sv.find_start)},
            raised=sv.raised,
            variables=tuple(made[f.name] for f in fields(VmaStepVars)),
            domains={op: {"addr": self.addrs}
                     for op in ("mmap", "munmap", "mprotect")}
            | {"find_vma": {"addr": self.find_addrs}},  # type: ignore[dict-item]
            raised_as={"OSError": sv.raised})

    def step_vars(self, t: SymStep) -> VmaStepVars:
        """The constants behind a step made by `fresh_step`."""
        return VmaStepVars(*t.variables)  # type: ignore[arg-type]

    def decode_step(self, model: z3.ModelRef, t: SymStep) -> ConcreteStep:
        """The operation t performed in `model`, as a trace records it."""
        sv = self.step_vars(t)
        num = partial(model_int, model)
        op = OPS[num(sv.op)]
        raised = "OSError" if num(sv.raised) else None
        if op == "mmap":
            args = (num(sv.mmap_addr), num(sv.mmap_length), num(sv.mmap_prot),
                    num(sv.mmap_flags))
            return ConcreteStep(op, args, None if raised else WINDOW + num(sv.place) * P,
                                raised)
        if op == "munmap":
            return ConcreteStep(op, (num(sv.munmap_addr), num(sv.munmap_length)), None,
                                raised)
        if op == "mprotect":
            return ConcreteStep(op, (num(sv.mprotect_addr), num(sv.mprotect_length),
                                     num(sv.mprotect_prot)), None, raised)
        found = None if num(sv.find_none) else num(sv.find_start)
        return ConcreteStep(op, (num(sv.find_addr),), found, None)

    def decode_state(self, model: z3.ModelRef, s: SymState) -> dict[str, object]:
        """The areas of s as (start, end, prot, file) and errno: for a CTI picture."""
        v, num = self.vars_of(s), partial(model_int, model)
        areas, cur = [], None
        for p in range(self.w):
            if not num(v.m[p]) or num(v.st[p]):
                cur = None
            if num(v.m[p]):
                if cur is None:
                    cur = [WINDOW + p * P, 0, num(v.prot[p]), num(v.obj[p])]
                    areas.append(cur)
                cur[1] = WINDOW + (p + 1) * P
        return {"areas": [tuple(a) for a in areas], "errno": num(v.errno)}

    # -- transitions ----------------------------------------------------------

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef:
        """Step t takes s to s2: one operation ran, as the reference runs it; the
        arguments of the others, and results that mean nothing, are pinned to 0."""
        sv = self.step_vars(t)
        v, v2 = self.vars_of(s), self.vars_of(s2)
        is_op = [sv.op == j for j in range(len(OPS))]
        pins = {0: (sv.mmap_addr, sv.mmap_length, sv.mmap_prot, sv.mmap_flags),
                1: (sv.munmap_addr, sv.munmap_length),
                2: (sv.mprotect_addr, sv.mprotect_length, sv.mprotect_prot),
                3: (sv.find_addr, sv.find_start)}
        side = [z3.Or(is_op), sv.raised == (sv.err != 0), within(sv.err, ERRNOS),
                sv.place >= 0, sv.place < self.w, sv.npages >= 0, sv.npages <= 4,
                z3.Implies(z3.Not(is_op[3]), z3.Not(sv.find_none)),
                v2.errno == z3.If(sv.raised, sv.err, v.errno)]
        for j, terms in pins.items():
            side.append(z3.Implies(z3.Not(is_op[j]), z3.And([x == 0 for x in terms])))
        side.append(z3.Implies(z3.Or(is_op[3], z3.And(sv.raised, z3.Not(is_op[2]))),
                               sv.place == 0))
        return z3.And(*side,
                      z3.Implies(is_op[0], self.do_mmap(v, sv, v2)),
                      z3.Implies(is_op[1], self.do_vmi_munmap(v, sv, v2)),
                      z3.Implies(is_op[2], self.do_mprotect_pkey(v, sv, v2)),
                      z3.Implies(is_op[3], self.find_vma(v, sv, v2)))

    def pages_of(self, length: int) -> int:
        """The pages a length covers (rounded up, or down under length_rounded_down)."""
        if self.mutation == "length_rounded_down":
            return length // P
        return -(-length // P)

    def _same(self, v: VmaVars, v2: VmaVars, pages: Sequence[int] | None = None
              ) -> list[z3.BoolRef]:
        """Pages (all by default) and nfile stay as they were."""
        out = [v2.nfile == v.nfile]
        for q in range(self.w) if pages is None else pages:
            out += [v2.m[q] == v.m[q], v2.st[q] == v.st[q], v2.prot[q] == v.prot[q],
                    v2.obj[q] == v.obj[q], v2.off[q] == v.off[q]]
        return out

    def free_run(self, v: VmaVars, r: int, n: int) -> z3.BoolRef:
        """[r, r+n) lies in the window and nothing in it is mapped."""
        if r < 0 or r + n > self.w:
            return z3.BoolVal(False)
        return z3.And([z3.Not(v.m[q]) for q in range(r, r + n)])

    def mapped_any(self, v: VmaVars, lo: int, hi: int) -> z3.BoolRef:
        """Some page of [lo, hi) (clipped to the window) is mapped."""
        return z3.Or([v.m[q] for q in range(max(lo, 0), min(hi, self.w))] or
                     [z3.BoolVal(False)])

    # -- mmap -----------------------------------------------------------------

    def do_mmap(self, v: VmaVars, sv: VmaStepVars, v2: VmaVars) -> z3.BoolRef:
        """mmap(addr, length, prot, flags): do_mmap's checks in order (module docstring),
        then mmap_region over [place, place + npages)."""
        anon = _flag_is(sv.mmap_flags, lambda f: f & MAP_ANONYMOUS)
        fixed = _flag_is(sv.mmap_flags, lambda f: f & (MAP_FIXED | MAP_FIXED_NOREPLACE))
        noreplace = _flag_is(sv.mmap_flags, lambda f: f & MAP_FIXED_NOREPLACE)
        types = (MAP_SHARED, MAP_PRIVATE) + (
            (MAP_DROPPABLE,) if self.mutation == "accepts_droppable" else ())
        typeok = _flag_is(sv.mmap_flags, lambda f: f & MAP_TYPE in types)
        cases = []
        for addr in self.addrs:
            for length in LENGTHS:
                n = self.pages_of(length)
                err, where = self.mmap_errno(v, sv, addr, length, n, fixed, noreplace, typeok)
                cases.append(z3.And(sv.mmap_addr == addr, sv.mmap_length == length,
                                    sv.npages == n, sv.err == z3.If(anon, err, EBADF),
                                    z3.Implies(sv.err == 0, where)))
        shared = _flag_is(sv.mmap_flags, lambda f: f & MAP_TYPE == MAP_SHARED)
        effect = z3.Or([z3.And(sv.npages == n, self.mmap_region(v, sv, v2, n, shared))
                        for n in range(1, 5)])
        return z3.And(within(sv.mmap_flags, FLAGS), within(sv.mmap_prot, PROTS), z3.Or(cases),
                      z3.Not(sv.find_none), sv.find_start == 0,
                      z3.If(sv.raised, z3.And(self._same(v, v2)), effect))

    def mmap_errno(self, v: VmaVars, sv: VmaStepVars, addr: int, length: int, n: int,
                   fixed: z3.BoolRef, noreplace: z3.BoolRef, typeok: z3.BoolRef
                   ) -> tuple[z3.ArithRef, z3.BoolRef]:
        """(the errno of mmap(addr, length, .., flags) after the EBADF check, 0 for
        none; where a success lands: a constraint on `place`)."""
        if length == 0 or n == 0:
            return z3.IntVal(EINVAL), z3.BoolVal(True)
        a, aligned = (addr - WINDOW) // P, addr % P == 0
        past = addr > self.task_size - n * P
        fixed_err = (EINVAL if not aligned and (self.mutation == "einval_before_enomem"
                                                or not past)
                     else ENOMEM if past else 0)
        hint_fits = self.free_run(v, a, n)
        if self.mutation == "hint_ignored":
            hint_fits = z3.BoolVal(False)
        top, room = self.vm_unmapped_area(v, n)
        lo, hi = (a - 1, a + n + 1) if self.mutation == "inclusive_end" else (a, a + n)
        placed = z3.If(typeok, 0, EINVAL)
        on_fixed: z3.ArithRef = z3.IntVal(fixed_err) if fixed_err else z3.If(
            z3.And(noreplace, self.mapped_any(v, lo, hi)), EEXIST, placed)
        on_free = z3.If(z3.Or(hint_fits, room), placed, ENOMEM)
        where = z3.If(z3.Or(fixed, hint_fits), sv.place == a, sv.place == top)
        return z3.If(fixed, on_fixed, on_free), where

    def vm_unmapped_area(self, v: VmaVars, n: int) -> tuple[z3.ArithRef, z3.BoolRef]:
        """(the highest r with [r, r+n) free, whether there is one): the top-down
        search from mmap_base (the window's top)."""
        top: z3.ArithRef = z3.IntVal(0)
        room: z3.BoolRef = z3.BoolVal(False)
        for r in range(self.w - n + 1):
            fits = self.free_run(v, r, n)
            top, room = z3.If(fits, r, top), z3.Or(room, fits)
        return top, room

    def mmap_region(self, v: VmaVars, sv: VmaStepVars, v2: VmaVars, n: int,
                    shared: z3.BoolRef) -> z3.BoolRef:
        """[place, place+n) becomes one new area (what it covered unmapped first),
        merged with a private neighbour of the same protection unless it is shared."""
        r, prot = sv.place, sv.mmap_prot
        new_obj = z3.If(shared, v.nfile + 1, 0)
        facts = [v2.nfile == v.nfile + z3.If(shared, 1, 0)]
        for q in range(self.w):
            inr = z3.And(r <= q, q < r + n)
            merge_left = z3.BoolVal(False) if q == 0 else self._mergeable(
                v, q - 1, shared, prot)
            merge_right = self._mergeable(v, q, shared, prot)
            st = z3.If(q == r, z3.Not(merge_left),
                       z3.If(inr, False,
                             z3.If(q == r + n, z3.And(v.m[q], z3.Not(merge_right)), v.st[q])))
            facts += [v2.m[q] == z3.Or(inr, v.m[q]), v2.st[q] == st,
                      v2.prot[q] == z3.If(inr, prot, v.prot[q]),
                      v2.obj[q] == z3.If(inr, new_obj, v.obj[q]),
                      v2.off[q] == z3.If(inr, z3.If(shared, q - r, self.base_pgoff + q),
                                         v.off[q])]
        return z3.And(facts)

    def _mergeable(self, v: VmaVars, q: int, shared: z3.BoolRef,
                   prot: z3.ArithRef) -> z3.BoolRef:
        """vma_merge_new_range: may a new private area of `prot` join the area at page q?"""
        if self.mutation == "no_merge":
            return z3.BoolVal(False)
        return z3.And(v.m[q], z3.Not(shared), v.obj[q] == 0, v.prot[q] == prot)

    # -- munmap ---------------------------------------------------------------

    def do_vmi_munmap(self, v: VmaVars, sv: VmaStepVars, v2: VmaVars) -> z3.BoolRef:
        """munmap(addr, length): EINVAL for an unaligned address, a range past
        task_size or a zero length; else [addr, addr+length) is unmapped."""
        cases = []
        for addr in self.addrs:
            for length in LENGTHS:
                n, a = self.pages_of(length), (addr - WINDOW) // P
                bad = addr % P or addr > self.task_size or length > self.task_size - addr
                if length == 0 and self.mutation == "munmap_zero_length" and not bad:
                    bad = False
                elif length == 0 or n == 0:
                    bad = True
                err, n = (EINVAL, 0) if bad else (0, n)
                cases.append(z3.And(sv.munmap_addr == addr, sv.munmap_length == length,
                                    sv.err == err, sv.npages == n,
                                    sv.place == (0 if bad else min(a, self.w - 1))))
        effect = z3.Or([z3.And(sv.npages == n, self.vms_gather_munmap_vmas(v, sv, v2, n))
                        for n in range(1, 5)])
        return z3.And(z3.Or(cases), z3.Not(sv.find_none), sv.find_start == 0,
                      z3.If(sv.npages == 0, z3.And(self._same(v, v2)), effect))

    def vms_gather_munmap_vmas(self, v: VmaVars, sv: VmaStepVars, v2: VmaVars,
                               n: int) -> z3.BoolRef:
        """[place, place+n) unmapped: the areas split at its ends, nothing merged."""
        r = sv.place
        facts = [v2.nfile == v.nfile]
        for q in range(self.w):
            inr = z3.And(r <= q, q < r + n)
            facts += [z3.If(inr, z3.And(*self._unmapped(v2, [q])), z3.And(
                v2.m[q] == v.m[q], v2.st[q] == z3.If(q == r + n, v.m[q], v.st[q]),
                v2.prot[q] == v.prot[q], v2.obj[q] == v.obj[q], v2.off[q] == v.off[q]))]
        return z3.And(facts)

    # -- mprotect -------------------------------------------------------------

    def do_mprotect_pkey(self, v: VmaVars, sv: VmaStepVars, v2: VmaVars) -> z3.BoolRef:
        """mprotect(addr, length, prot): EINVAL for an unaligned address; a zero length
        does nothing; else ENOMEM when part of the range is unmapped, the areas below
        the first hole changed all the same."""
        cases = []
        for addr in self.addrs:
            for length in LENGTHS:
                n, a = self.pages_of(length), (addr - WINDOW) // P
                if addr % P:
                    cases.append(self._mprotect_case(sv, addr, length, EINVAL, 0, 0))
                elif length == 0 or n == 0:
                    cases.append(self._mprotect_case(sv, addr, length, 0, 0, 0))
                else:
                    hole = z3.Not(z3.And([v.m[q] if q < self.w else z3.BoolVal(False)
                                          for q in range(a, a + n)]))
                    cases.append(self._mprotect_case(sv, addr, length,
                                                     z3.If(hole, ENOMEM, 0), n, a))
        effect = z3.Or([z3.And(sv.npages == n, self.mprotect_fixup(v, sv, v2, n))
                        for n in range(1, 5)])
        if self.mutation == "mprotect_all_or_nothing":
            effect = z3.If(sv.raised, z3.And(self._same(v, v2)), effect)
        return z3.And(within(sv.mprotect_prot, PROTS), z3.Or(cases), z3.Not(sv.find_none),
                      sv.find_start == 0,
                      z3.If(sv.npages == 0, z3.And(self._same(v, v2)), effect))

    @staticmethod
    def _mprotect_case(sv: VmaStepVars, addr: int, length: int, err: object, n: int,
                       a: int) -> z3.BoolRef:
        return z3.And(sv.mprotect_addr == addr, sv.mprotect_length == length,
                      sv.err == err, sv.npages == n, sv.place == a)  # type: ignore[arg-type]

    def mprotect_fixup(self, v: VmaVars, sv: VmaStepVars, v2: VmaVars, n: int) -> z3.BoolRef:
        """The mapped pages of [place, place+n) up to the first hole get the new prot,
        merging with each other where the same object backs them and with the
        neighbours of the same object and protection."""
        r, prot = sv.place, sv.mprotect_prot
        facts = [v2.nfile == v.nfile]
        chg: list[z3.BoolRef] = []
        for q in range(self.w):
            reach = z3.BoolVal(True) if q == 0 else z3.Or(r == q, chg[q - 1])
            chg.append(z3.And(r <= q, q < r + n, v.m[q], reach))
        if self.mutation == "mprotect_whole_area":
            chg = self._whole_areas(v, chg)
        for q in range(self.w):
            if q == 0:
                st = z3.If(chg[q], True, v.st[q])
            else:
                joins = z3.And(v.m[q - 1], v.obj[q - 1] == v.obj[q], v.prot[q - 1] == prot)
                after = z3.And(v.m[q], z3.Not(z3.And(v.obj[q] == v.obj[q - 1],
                                                     v.prot[q] == prot)))
                st = z3.If(chg[q], z3.If(chg[q - 1], v.obj[q] != v.obj[q - 1],
                                         z3.Not(joins)),
                           z3.If(chg[q - 1], after, v.st[q]))
            facts += [v2.m[q] == v.m[q], v2.st[q] == st,
                      v2.prot[q] == z3.If(chg[q], prot, v.prot[q]),
                      v2.obj[q] == v.obj[q], v2.off[q] == v.off[q]]
        return z3.And(facts)

    def _whole_areas(self, v: VmaVars, chg: list[z3.BoolRef]) -> list[z3.BoolRef]:
        """chg widened to every page of an area that has a page in chg (the
        mprotect_whole_area bug: no split at the range's ends)."""
        w = self.w
        down: list[z3.BoolRef] = [z3.BoolVal(False)] * w  # in chg's area, below it
        up: list[z3.BoolRef] = [z3.BoolVal(False)] * w  # ... above it
        for q in range(w - 2, -1, -1):
            down[q] = z3.And(v.m[q + 1], z3.Not(v.st[q + 1]), z3.Or(chg[q + 1], down[q + 1]))
        for q in range(1, w):
            up[q] = z3.And(v.m[q], z3.Not(v.st[q]), z3.Or(chg[q - 1], up[q - 1]))
        return [z3.Or(chg[q], down[q], up[q]) for q in range(w)]

    # -- find_vma -------------------------------------------------------------

    def find_vma(self, v: VmaVars, sv: VmaStepVars, v2: VmaVars) -> z3.BoolRef:
        """find_vma(addr): the start of the first area whose end is above addr (under
        find_vma_containing: of the area that contains addr), none if there is none."""
        starts: list[z3.ArithRef] = []
        for q in range(self.w):
            starts.append(z3.IntVal(0) if q == 0 else z3.If(v.st[q], q, starts[q - 1]))
        cases = []
        for x in self.find_addrs:
            k = 0 if x < WINDOW else min((x - WINDOW) // P, self.w)
            none, page = z3.BoolVal(True), z3.IntVal(0)
            for q in range(self.w - 1, k - 1, -1):
                none, page = z3.And(z3.Not(v.m[q]), none), z3.If(v.m[q], starts[q], page)
            if self.mutation == "find_vma_containing":
                inside = z3.BoolVal(False) if x < WINDOW or k >= self.w else v.m[k]
                none = z3.Not(inside)
            cases.append(z3.And(sv.find_addr == x, sv.find_none == none,
                                sv.find_start == z3.If(none, 0, WINDOW + page * P)))
        return z3.And(z3.Or(cases), sv.err == 0, sv.npages == 0, *self._same(v, v2))
