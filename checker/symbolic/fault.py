"""Processes, demand paging and copy-on-write fork as a Z3 transition system (see `base.py`).

The universe is fixed when the encoding is built: `nprocs` pids (1 .. nprocs,
handed out in order as `Kernel` does; spawn and fork are steps only while a
pid is left), `nslots` one-page slots of the window, a free page between each
two (window pages 0, 2, 4, ...: areas never touch, so they never merge and a
one-page munmap or mprotect never splits one), the byte offsets `OFFSETS` of
each page, and `npages` page frames, enough that no step ever runs out (the
Kernel's own fault and fork paths raise MemoryError/OSError only when memory
does; here it never does). Arguments come from finite sets: the slots, a
protection of `PROTS` (no PROT_EXEC: the execute-only protection key is left
out), MAP_PRIVATE anonymous memory only (MAP_FIXED or MAP_FIXED_NOREPLACE: no
shmem, no placement search), and one bad value of each kind (a dead pid, a
zero length, a value that is no byte, a non-canonical address, the unmapped
page between slots). One state holds

    nxt                  Int   the next pid spawn or fork hands out
    live[p]              Bool  pid p+1 is alive
    area[p,s]            Bool  slot s is an area of p ...
    prot[p,s], anon[p,s] ...   with this protection, and an anon_vma (a write fault was taken)
    pte[p,s]             Bool  p has a PTE at slot s ...
    pfn[p,s], rw[p,s]    ...   mapping this frame, writable (_PAGE_RW)
    tlb[p,s]             Bool  p's TLB caches slot s ...
    tpfn[p,s], tw[p,s]   ...   as this frame, writable
    rss[p]               Int   MM_ANONPAGES
    kind[f], owner[f]    Int   what frame f holds (free, a pgd or a page table of
                               process owner+1, an anon page) ...
    ref[f], mapc[f]      Int   ... its _refcount and _mapcount
    excl[f]              Bool  PageAnonExclusive
    data[f,o]            Int   the byte at offset o of frame f

The zero page is the frame `Kernel(npages)` takes first; its fields are
constants (pinned, never mapped writable, never written). A PTE is present
exactly when its area is accessible: the PTEs take their area's protection
when they are made and when mprotect changes it. A process's page tables are
its pgd plus, while it has a PTE, the three tables under it (the window lies
in one PTE table; the reference gives emptied tables back). Every page a
step takes (a data page, a pgd, three tables) is any free frame: the buddy
allocator's choice is one of them, and no property depends on which.

The transitions follow `mmcheck.model.fault.Kernel` (module docstring there):
the CPU's translate (a TLB hit, else a flush and a walk that fills the TLB),
do_user_addr_fault (no area or access_error: Segfault), do_anonymous_page
(the zero page on a read, a new exclusive page on a write), do_wp_page
(reuse when exclusive or the only reference, else copy; the zero page is
replaced by a zeroed page), copy_page_range at fork (areas with an anon_vma:
both sides read-only, the parent's TLB entry flushed where its PTE was
writable), zap_pte_range at munmap, MAP_FIXED and exit, change_protection at
mprotect (a private PTE is made writable only for an exclusive page; the TLB
entry is flushed when the PTE changes).

Mutations seed the bugs of `examples/fault/buggy/` (see `MUTATIONS`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import z3
from mmcheck.checker.symbolic.base import (
    ConcreteStep,
    SymCollection,
    SymRecord,
    SymState,
    SymStep,
    model_int,
    within,
)
from mmcheck.checker.z3compile import Cases
from mmcheck.model.fault import VOCABULARY, Kernel
from mmcheck.model.linux import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    PAGE_SIZE,
    PROT_WRITE,
)
from mmcheck.model.vocabulary import Vocabulary

WINDOW = 0x400000  # checker/subsystems/declared/vma.py's window
PRIV = MAP_PRIVATE | MAP_ANONYMOUS
FLAGS = (PRIV | MAP_FIXED, PRIV | MAP_FIXED_NOREPLACE)
PROTS = (0, 1, 2, 3)  # PROT_NONE, READ, WRITE (readable on x86), READ|WRITE
OFFSETS = (0, 1)
VALUES = (7, 9)
BAD_VALUE = 256
DEAD_PID = 99
NON_CANONICAL = 1 << 47
RETURNING = ("spawn", "fork", "mmap", "read")
ARGS = ("pid", "addr", "length", "prot", "flags", "va", "value")
OPS = ("spawn", "fork", "exit", "mmap", "munmap", "mprotect", "read", "write")
ERRORS = ("ValueError", "OSError", "Segfault")
FREE, ZERO, PGD, TABLE, ANON = range(5)
TABLES_UNDER_PGD = 3  # pud, pmd and pte table of the window

MUTATIONS: Mapping[str, str] = {
    "cow_copies_on_read": "a read fault in a writable private area takes a page of its own "
                          "(a new page, or a copy of a read-only one) as a write would",
    "cow_never_copies": "a write to a read-only private page reuses it whatever its count",
    "missing_refcount_drop": "a copy-on-write copy leaves the old page's reference counted",
}


def frames_needed(nprocs: int, nslots: int) -> int:
    """Frames no step can run out of: the zero page, and per process a pgd, three
    tables and a page per slot."""
    return 1 + nprocs * (1 + TABLES_UNDER_PGD + nslots)


def slot_va(s: int) -> int:
    """The address of slot s: window page 2s."""
    return WINDOW + 2 * s * PAGE_SIZE


@dataclass(frozen=True)
class FaultStepVars:
    op: z3.ArithRef
    pid: z3.ArithRef
    addr: z3.ArithRef
    length: z3.ArithRef
    prot: z3.ArithRef
    flags: z3.ArithRef
    va: z3.ArithRef
    value: z3.ArithRef
    result: z3.ArithRef
    new_page: z3.ArithRef  # the frames the step took: a data page, a pgd, three tables
    new_pgd: z3.ArithRef
    new_tables: tuple[z3.ArithRef, ...]
    raised: z3.BoolRef
    value_error: z3.BoolRef
    os_error: z3.BoolRef
    segfault: z3.BoolRef


def _writes(prot: z3.ArithRef) -> z3.BoolRef:
    """The protection (one of PROTS) has PROT_WRITE."""
    return z3.Or([prot == p for p in PROTS if p & PROT_WRITE])


def _same(term: object, var: z3.ExprRef) -> bool:
    """`term` (a z3 term or a Python value) is syntactically `var`."""
    return isinstance(term, z3.ExprRef) and term.eq(var)


def _is_var(term: z3.ExprRef) -> bool:
    """A z3 constant of a state (not a value such as the zero page's fields)."""
    return z3.is_const(term) and term.decl().kind() == z3.Z3_OP_UNINTERPRETED


# State fields: name -> (sort, index kind). "p": per process, "ps": per (process, slot),
# "f": per frame (the zero page's are constants), "fo": per (frame, offset), "": one.
FIELDS = (("nxt", "int", ""), ("live", "bool", "p"), ("area", "bool", "ps"),
          ("prot", "int", "ps"), ("anon", "bool", "ps"), ("pte", "bool", "ps"),
          ("pfn", "int", "ps"), ("rw", "bool", "ps"), ("tlb", "bool", "ps"),
          ("tpfn", "int", "ps"), ("tw", "bool", "ps"), ("rss", "int", "p"),
          ("kind", "int", "f"), ("owner", "int", "f"), ("ref", "int", "f"),
          ("mapc", "int", "f"), ("excl", "bool", "f"), ("data", "int", "fo"))
ZERO_FIELDS = {"kind": ZERO, "owner": 0, "ref": 1, "mapc": 0, "excl": False, "data": 0}


class Upd:
    """A post-state under construction: every field's term, starting from the pre-state."""

    def __init__(self, enc: SymbolicFault, v: Mapping[str, dict]) -> None:
        self.enc, self.v = enc, v
        self.t: dict[str, dict] = {name: dict(terms) for name, terms in v.items()}
        self.taken: list[z3.ArithRef] = []  # the frames taken so far, in order

    def zap(self, p: int, s: int) -> None:
        """zap_pte_range for slot s of p: drop the PTE, its TLB entry, its counts."""
        pte, pfn = self.t["pte"][p, s], self.t["pfn"][p, s]
        counted = z3.And(pte, pfn != self.enc.zero)
        self.t["rss"][p] = self.t["rss"][p] - z3.If(counted, 1, 0)
        for f in self.enc.frames:
            hit = z3.And(counted, pfn == f)
            self.t["mapc"][f] = self.t["mapc"][f] - z3.If(hit, 1, 0)
            self.t["ref"][f] = self.t["ref"][f] - z3.If(hit, 1, 0)
        self.set_pte(p, s, False, 0, False)

    def set_pte(self, p: int, s: int, present: object, pfn: object, rw: object) -> None:
        """Install or clear a PTE, flushing its TLB entry (set_pte + flush)."""
        self.t["pte"][p, s], self.t["pfn"][p, s], self.t["rw"][p, s] = present, pfn, rw
        self.flush(p, s)

    def flush(self, p: int, s: int) -> None:
        self.t["tlb"][p, s], self.t["tpfn"][p, s], self.t["tw"][p, s] = False, 0, False

    def fill(self, p: int, s: int) -> None:
        """The walk fills the TLB from the PTE."""
        self.t["tlb"][p, s] = True
        self.t["tpfn"][p, s], self.t["tw"][p, s] = self.t["pfn"][p, s], self.t["rw"][p, s]

    def new_page(self, sv: FaultStepVars, copy_of: z3.ArithRef | None) -> None:
        """alloc_page: sv.new_page becomes an exclusive anon page with one reference and
        one mapping, zeroed or a copy of `copy_of`'s bytes."""
        for f in self.enc.frames:
            mine = sv.new_page == f
            for name, val in (("kind", ANON), ("owner", 0), ("ref", 1), ("mapc", 1)):
                self.t[name][f] = z3.If(mine, val, self.t[name][f])
            self.t["excl"][f] = z3.Or(mine, self.t["excl"][f])
            for o in range(len(OFFSETS)):
                src = self.enc.byte_at(self.v, copy_of, o) if copy_of is not None else 0
                self.t["data"][f, o] = z3.If(mine, src, self.t["data"][f, o])

    def at_frame(self, name: str, pfn: z3.ArithRef, how: object) -> None:
        """field[pfn] = how(field[pfn]) for the frame pfn names (none for the zero page)."""
        for f in self.enc.frames:
            self.t[name][f] = z3.If(pfn == f, how(self.t[name][f]), self.t[name][f])  # type: ignore[operator]

    def write_byte(self, pfn: z3.ArithRef, o: int, value: z3.ArithRef) -> None:
        for f in self.enc.frames:
            self.t["data"][f, o] = z3.If(pfn == f, value, self.t["data"][f, o])


class SymbolicFault:
    """A Kernel of `npages` frames with `nprocs` pids and `nslots` one-page slots."""

    vocabulary: Vocabulary = VOCABULARY

    def __init__(self, npages: int = 16, nprocs: int = 2, nslots: int = 2,
                 mutation: str | None = None) -> None:
        if mutation is not None and mutation not in MUTATIONS:
            raise ValueError(f"SymbolicFault: unknown mutation {mutation!r}; "
                             f"known: {', '.join(MUTATIONS)}")
        need = frames_needed(nprocs, nslots)
        if npages < need:
            raise ValueError(f"SymbolicFault: {nprocs} processes with {nslots} slots need "
                             f"{need} pages so that no step runs out; {npages} given")
        self.npages, self.nprocs, self.nslots, self.mutation = npages, nprocs, nslots, mutation
        self.zero = Kernel(npages).zero_pfn
        self.frames = [f for f in range(npages) if f != self.zero]
        self.procs, self.slots = range(nprocs), range(nslots)
        self.pids = (*range(1, nprocs + 1), DEAD_PID)
        self.addrs = tuple(slot_va(s) for s in self.slots)
        self.vas = (*(slot_va(s) + o for s in self.slots for o in OFFSETS),
                    WINDOW + PAGE_SIZE, NON_CANONICAL)
        self.lengths = (PAGE_SIZE, 0)

    # -- states ---------------------------------------------------------------

    def _index(self, kind: str) -> list[object]:
        return {"": [()], "p": list(self.procs),
                "ps": [(p, s) for p in self.procs for s in self.slots],
                "f": list(range(self.npages)),
                "fo": [(f, o) for f in range(self.npages) for o in range(len(OFFSETS))]}[kind]

    def _build(self, make) -> dict[str, dict]:  # noqa: ANN001
        """Every field's terms: make(label, sort) for a variable, constants for the zero page."""
        v: dict[str, dict] = {}
        for name, sort, kind in FIELDS:
            v[name] = {}
            for i in self._index(kind):
                frame = i if kind == "f" else i[0] if kind == "fo" else None  # type: ignore[index]
                if frame == self.zero:
                    const = ZERO_FIELDS[name]
                    v[name][i] = z3.BoolVal(const) if sort == "bool" else z3.IntVal(const)
                    continue
                label = name + (str(list(i) if isinstance(i, tuple) else [i]) if kind else "")
                v[name][i] = make(label, sort)
        return v

    def fresh_state(self, tag: str) -> SymState:
        """A state of fresh z3 constants named after `tag`."""
        flat: list[z3.ExprRef] = []

        def make(label: str, sort: str) -> z3.ExprRef:
            flat.append((z3.Bool if sort == "bool" else z3.Int)(f"{tag}.{label}"))
            return flat[-1]
        v = self._build(make)
        return self._present(v, tuple(flat))

    def vars_of(self, s: SymState) -> dict[str, dict]:
        """The per-field terms behind a state made by `fresh_state`."""
        it = iter(s.variables)
        return self._build(lambda _label, _sort: next(it))

    def byte_at(self, v: Mapping[str, dict], pfn: z3.ArithRef, o: int) -> z3.ArithRef:
        """data[pfn, o] for a symbolic frame number (0 for the zero page)."""
        term: z3.ArithRef = z3.IntVal(0)
        for f in self.frames:
            term = z3.If(pfn == f, v["data"][f, o], term)
        return term

    def _present(self, v: dict[str, dict], flat: tuple[z3.ExprRef, ...]) -> SymState:
        """The vocabulary's view of the fields `v`."""
        def pid(p: int) -> z3.ArithRef:
            return z3.IntVal(p + 1)

        ps = [(p, s) for p in self.procs for s in self.slots]
        present = {i: v["prot"][i] != 0 for i in ps}
        pages = []
        for f in range(self.npages):
            kind = v["kind"][f]
            pages.append((kind != FREE, SymRecord("PageInfo", {
                "pfn": z3.IntVal(f), "refcount": v["ref"][f], "mapcount": v["mapc"][f],
                "free": kind == FREE, "zero": z3.BoolVal(f == self.zero),
                "pgtable": z3.Or(kind == PGD, kind == TABLE), "shmem": z3.BoolVal(False),
                "anon": kind == ANON, "exclusive": v["excl"][f]})))
        memory = []
        for (p, s) in ps:
            for o, off in enumerate(OFFSETS):
                byte = self.byte_at(v, v["pfn"][p, s], o)
                memory.append((z3.And(v["pte"][p, s], byte != 0), SymRecord("Byte", {
                    "pid": pid(p), "va": z3.IntVal(slot_va(s) + off), "value": byte})))
        values = {
            "npages": z3.IntVal(self.npages), "zero_pfn": z3.IntVal(self.zero),
            "free_pages": z3.Sum([z3.If(v["kind"][f] == FREE, 1, 0) for f in self.frames]),
            "boot_free_pages": z3.IntVal(self.npages - 1),
            "table_pages": z3.Sum([z3.If(z3.Or(v["kind"][f] == PGD, v["kind"][f] == TABLE), 1, 0)
                                   for f in self.frames]),
            "procs": SymCollection("Proc", tuple((v["live"][p], SymRecord("Proc", {"pid": pid(p)}))
                                                 for p in self.procs)),
            "vmas": SymCollection("ProcVma", tuple((v["area"][i], SymRecord("ProcVma", {
                "pid": pid(i[0]), "start": z3.IntVal(slot_va(i[1])),
                "end": z3.IntVal(slot_va(i[1]) + PAGE_SIZE),
                "prot": Cases.over(v["prot"][i], PROTS), "flags": z3.IntVal(MAP_PRIVATE)}))
                for i in ps)),
            "mappings": SymCollection("Mapping", tuple((v["pte"][i], SymRecord("Mapping", {
                "pid": pid(i[0]), "va": z3.IntVal(slot_va(i[1])), "pfn": v["pfn"][i],
                "writable": z3.And(v["rw"][i], present[i]), "present": present[i],
                "shared": z3.BoolVal(False)})) for i in ps)),
            "pages": SymCollection("PageInfo", tuple((z3.BoolVal(True), r) for _, r in pages)),
            "used_pages": SymCollection("PageInfo", tuple(pages)),
            "tlb": SymCollection("TlbEntry", tuple((v["tlb"][i], SymRecord("TlbEntry", {
                "pid": pid(i[0]), "va": z3.IntVal(slot_va(i[1])), "pfn": v["tpfn"][i],
                "writable": v["tw"][i]})) for i in ps)),
            "rss": SymCollection("Rss", tuple((v["live"][p], SymRecord("Rss", {
                "pid": pid(p), "anon": v["rss"][p], "shmem": z3.IntVal(0)}))
                for p in self.procs)),
            "frames": SymCollection("Frame", tuple((v["pte"][i], SymRecord("Frame", {
                "pid": pid(i[0]), "va": z3.IntVal(slot_va(i[1])), "pfn": v["pfn"][i]}))
                for i in ps)),
            "memory": SymCollection("Byte", tuple(memory)),
        }
        return SymState(values, flat)

    def init(self, s: SymState) -> z3.BoolRef:
        """A Kernel just made: no process, every frame but the zero page free."""
        return self.assign(s, 1, {}, {})

    def assign(self, s: SymState, nxt: int, procs: Mapping[int, Mapping[str, object]],
               frames: Mapping[int, Mapping[str, object]]) -> z3.BoolRef:
        """s is exactly: the next pid `nxt`; for each live pid index p, procs[p] with
        "rss" and per slot s the keys (name, s) of the ps-fields that differ from the
        empty slot; frames[f] with the f-fields (and ("data", o)) of each frame in
        use. False when something has no slot."""
        v = self.vars_of(s)
        facts = [v["nxt"][()] == nxt]
        empty = {"area": False, "prot": 0, "anon": False, "pte": False, "pfn": 0, "rw": False,
                 "tlb": False, "tpfn": 0, "tw": False}
        for p in self.procs:
            got = procs.get(p)
            facts += [v["live"][p] == (got is not None), v["rss"][p] == (got or {}).get("rss", 0)]
            for sl in self.slots:
                for name, val in empty.items():
                    facts.append(v[name][p, sl] == (got or {}).get((name, sl), val))  # type: ignore[arg-type]
        for f in self.frames:
            got = frames.get(f, {})
            facts += [v["kind"][f] == got.get("kind", FREE), v["owner"][f] == got.get("owner", 0),
                      v["ref"][f] == got.get("ref", 0), v["mapc"][f] == got.get("mapc", 0),
                      v["excl"][f] == got.get("excl", False)]
            facts += [v["data"][f, o] == got.get(("data", o), 0) for o in range(len(OFFSETS))]
        return z3.And(facts)

    def well_formed(self, s: SymState) -> z3.BoolRef:
        """Domains, kept by every step from any state (tests/unit/test_symbolic_fault.py
        checks it): pids handed out in order, a dead process with nothing, empty slots
        all zero, frame numbers in range, protections and kinds in their finite sets,
        the page-table bookkeeping. What holds of the counts is the spec's to say."""
        v = self.vars_of(s)
        facts = [v["nxt"][()] >= 1, v["nxt"][()] <= self.nprocs + 1]
        for p in self.procs:
            facts += [z3.Implies(v["live"][p], v["nxt"][()] > p + 1),
                      z3.Implies(z3.Not(v["live"][p]), v["rss"][p] == 0)]
            for sl in self.slots:
                i = p, sl
                facts += [z3.Implies(z3.Not(v["live"][p]), z3.Not(z3.Or(
                              v["area"][i], v["pte"][i], v["tlb"][i]))),
                          within(v["prot"][i], PROTS),
                          z3.Implies(z3.Not(v["area"][i]),
                                     z3.And(v["prot"][i] == 0, z3.Not(v["anon"][i]))),
                          z3.If(v["pte"][i], z3.And(v["pfn"][i] >= 0, v["pfn"][i] < self.npages),
                                z3.And(v["pfn"][i] == 0, z3.Not(v["rw"][i]))),
                          z3.If(v["tlb"][i], z3.And(v["tpfn"][i] >= 0,
                                                    v["tpfn"][i] < self.npages),
                                z3.And(v["tpfn"][i] == 0, z3.Not(v["tw"][i])))]
        facts += self._tables_owned(v)
        for f in self.frames:
            k = v["kind"][f]
            facts += [within(k, (FREE, PGD, TABLE, ANON)),
                      v["owner"][f] >= 0, v["owner"][f] < self.nprocs,
                      z3.Implies(z3.Not(z3.Or(k == PGD, k == TABLE)), v["owner"][f] == 0)]
        return z3.And(facts)

    def _tables_owned(self, v: Mapping[str, dict]) -> list[z3.BoolRef]:
        """The page-table bookkeeping: a live process owns one pgd and, while it has a
        PTE, three tables; a dead one owns none."""
        facts = []
        for p in self.procs:
            def owned(kind: int, p: int = p) -> z3.ArithRef:
                return z3.Sum([z3.If(z3.And(v["kind"][f] == kind, v["owner"][f] == p), 1, 0)
                               for f in self.frames])
            has_pte = z3.Or([v["pte"][p, sl] for sl in self.slots])
            facts += [owned(PGD) == z3.If(v["live"][p], 1, 0),
                      owned(TABLE) == z3.If(has_pte, TABLES_UNDER_PGD, 0)]
        return facts

    # -- steps ----------------------------------------------------------------

    def fresh_step(self, tag: str) -> SymStep:
        """A step of fresh z3 constants: which operation, its arguments, its result."""
        def i(n: str) -> z3.ArithRef:
            return z3.Int(f"{tag}.{n}")

        def b(n: str) -> z3.BoolRef:
            return z3.Bool(f"{tag}.{n}")

        sv = FaultStepVars(i("op"), i("pid"), i("addr"), i("length"), i("prot"), i("flags"),
                           i("va"), i("value"), i("result"), i("new_page"), i("new_pgd"),
                           tuple(i(f"new_table{k}") for k in range(TABLES_UNDER_PGD)),
                           b("raised"), b("value_error"), b("os_error"), b("segfault"))
        pid, addr = Cases.over(sv.pid, self.pids), Cases.over(sv.addr, self.addrs)
        length, prot = Cases.over(sv.length, self.lengths), Cases.over(sv.prot, PROTS)
        one = Cases.over(sv.length, (PAGE_SIZE,))
        flat = (sv.op, sv.pid, sv.addr, sv.length, sv.prot, sv.flags, sv.va, sv.value,
                sv.result, sv.new_page, sv.new_pgd, *sv.new_tables, sv.raised,
                sv.value_error, sv.os_error, sv.segfault)
        return SymStep(
            is_op={name: sv.op == j for j, name in enumerate(OPS)},
            args={"spawn": {}, "fork": {"pid": pid}, "exit": {"pid": pid},
                  "mmap": {"pid": pid, "addr": addr, "length": length, "prot": prot,
                           "flags": Cases.over(sv.flags, FLAGS)},
                  "munmap": {"pid": pid, "addr": addr, "length": one},
                  "mprotect": {"pid": pid, "addr": addr, "length": one, "prot": prot},
                  "read": {"pid": pid, "va": Cases.over(sv.va, self.vas)},
                  "write": {"pid": pid, "va": Cases.over(sv.va, self.vas),
                            "value": Cases.over(sv.value, (*VALUES, BAD_VALUE))}},  # type: ignore[dict-item]
            results={"spawn": sv.result, "fork": sv.result, "exit": None, "mmap": sv.result,
                     "munmap": None, "mprotect": None, "read": sv.result, "write": None},
            raised=sv.raised, variables=flat,
            raised_as={"ValueError": sv.value_error, "OSError": sv.os_error,
                       "Segfault": sv.segfault, "MemoryError": z3.BoolVal(False)})

    def step_vars(self, t: SymStep) -> FaultStepVars:
        """The constants behind a step made by `fresh_step`."""
        vs = list(t.variables)
        n = TABLES_UNDER_PGD
        return FaultStepVars(*vs[:11], tuple(vs[11:11 + n]), *vs[11 + n:])  # type: ignore[arg-type]

    def decode_step(self, model: z3.ModelRef, t: SymStep) -> ConcreteStep:
        """The operation t performed in `model`, as a trace records it."""
        sv = self.step_vars(t)
        num = partial(model_int, model)
        op = OPS[num(sv.op)]
        raised = next((name for name, b in zip(ERRORS, (sv.value_error, sv.os_error,
                                                        sv.segfault), strict=True)
                       if num(b)), None)
        args = {"spawn": (), "fork": (sv.pid,), "exit": (sv.pid,),
                "mmap": (sv.pid, sv.addr, sv.length, sv.prot, sv.flags),
                "munmap": (sv.pid, sv.addr, sv.length),
                "mprotect": (sv.pid, sv.addr, sv.length, sv.prot),
                "read": (sv.pid, sv.va), "write": (sv.pid, sv.va, sv.value)}[op]
        returns = op in RETURNING
        return ConcreteStep(op, tuple(num(a) for a in args),
                            num(sv.result) if returns and raised is None else None, raised)

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef:
        """Step t takes s to s2: one operation ran, as the reference runs it."""
        sv = self.step_vars(t)
        v, v2 = self.vars_of(s), self.vars_of(s2)
        exc = [sv.value_error, sv.os_error, sv.segfault]
        side = [sv.raised == z3.Or(exc), *[z3.Not(z3.And(a, b)) for k, a in enumerate(exc)
                                             for b in exc[k + 1:]]]
        side.append(z3.Implies(sv.raised, sv.result == 0))
        guards: list[z3.BoolRef] = []
        changes: dict[tuple[str, object], list[tuple[z3.BoolRef, z3.ExprRef]]] = {}
        for j, op in enumerate(OPS):
            args = z3.And([self._arg_domain(sv, op, name) for name in ARGS]
                          + ([] if op in RETURNING else [sv.result == 0]))
            for guard, upd in getattr(self, f"_{op}")(v, sv):
                g = z3.And(sv.op == j, args, guard, *self._commit(v, upd, sv))
                guards.append(g)
                for n, i, term in self._changed(v, upd):
                    changes.setdefault((n, i), []).append((g, term))
        # The cases exclude one another: each field is the term of the case that holds,
        # the pre-state's where no case changes it.
        post = []
        for n in v:
            for i in v[n]:
                if not _is_var(v[n][i]):
                    continue
                term = v[n][i]
                for g, new in reversed(changes.get((n, i), [])):
                    term = z3.If(g, new, term)
                post.append(v2[n][i] == term)
        return z3.And(*side, z3.Or(guards), *post)

    @staticmethod
    def _changed(v: dict[str, dict], upd: Upd | None) -> list[tuple[str, object, z3.ExprRef]]:
        """The fields `upd` gives a term other than the pre-state's."""
        if upd is None:
            return []
        return [(n, i, upd.t[n][i]) for n in v for i in v[n]
                if _is_var(v[n][i]) and not _same(upd.t[n][i], v[n][i])]

    def _arg_domain(self, sv: FaultStepVars, op: str, name: str) -> z3.BoolRef:
        """The argument `name` of `op` lies in its domain; 0 when op takes none such."""
        term = getattr(sv, name)
        domain = self._domains(op).get(name)
        return within(term, domain) if domain is not None else term == 0

    def _domains(self, op: str) -> dict[str, Sequence[int]]:
        """Each argument of `op` and its finite domain."""
        pid, addr, one = {"pid": self.pids}, {"addr": self.addrs}, {"length": (PAGE_SIZE,)}
        return {"spawn": {}, "fork": pid, "exit": pid,
                "mmap": {**pid, **addr, "length": self.lengths, "prot": PROTS, "flags": FLAGS},
                "munmap": {**pid, **addr, **one},
                "mprotect": {**pid, **addr, **one, "prot": PROTS},
                "read": {**pid, "va": self.vas},
                "write": {**pid, "va": self.vas, "value": (*VALUES, BAD_VALUE)}}[op]

    # -- the post-state -------------------------------------------------------

    def _commit(self, v: dict[str, dict], upd: Upd | None, sv: FaultStepVars
                ) -> list[z3.BoolRef]:
        """Finish `upd` (None: nothing changes) with the page-table and page bookkeeping:
        tables taken for a process's first PTE and given back with its last, a page
        freed when its last reference goes. Returns what the choices must satisfy."""
        if upd is None:
            return []
        t = upd.t
        took = []
        for p in self.procs:
            if all(_same(t["pte"][p, sl], v["pte"][p, sl]) for sl in self.slots):
                continue
            before = z3.Or([v["pte"][p, sl] for sl in self.slots])
            after = z3.Or([t["pte"][p, sl] for sl in self.slots])
            took.append((p, z3.And(z3.Not(before), after)))
            gone = z3.And(before, z3.Not(after))
            for f in self.frames:
                mine = z3.And(gone, t["kind"][f] == TABLE, t["owner"][f] == p)
                for name, val in (("kind", FREE), ("owner", 0), ("ref", 0)):
                    t[name][f] = z3.If(mine, val, t[name][f])
        facts = []
        if took:
            taking = z3.Or([x for _, x in took])
            owner = sum((z3.If(x, p, 0) for p, x in took), z3.IntVal(0))
            chosen = [sv.new_page, sv.new_pgd, *sv.new_tables]
            facts.append(z3.Implies(taking, z3.And(z3.Distinct(*chosen), *[
                self._free_in(v, c, [*upd.taken, *sv.new_tables[:k]])
                for k, c in enumerate(sv.new_tables)])))
            for f in self.frames:
                table = z3.And(taking, z3.Or([c == f for c in sv.new_tables]))
                for name, val in (("kind", TABLE), ("owner", owner), ("ref", 1), ("mapc", 0),
                                  ("excl", False)):
                    t[name][f] = z3.If(table, val, t[name][f])
        for f in self.frames:
            if _same(t["ref"][f], v["ref"][f]):
                continue
            dead = z3.And(t["kind"][f] == ANON, t["ref"][f] == 0)
            t["kind"][f] = z3.If(dead, FREE, t["kind"][f])
            t["excl"][f] = z3.And(z3.Not(dead), t["excl"][f])
            for o in range(len(OFFSETS)):
                t["data"][f, o] = z3.If(dead, 0, t["data"][f, o])
        return facts

    def _free_in(self, v: Mapping[str, dict], c: z3.ArithRef,
                 taken: Sequence[z3.ArithRef] = ()) -> z3.BoolRef:
        """Frame c is free in v and not one of `taken` (the frames the step took before)."""
        return z3.Or([z3.And(c == f, v["kind"][f] == FREE, *[t != f for t in taken])
                      for f in self.frames])

    def _raise(self, sv: FaultStepVars, name: str | None) -> z3.BoolRef:
        """Exactly the exception `name` (None: none) was raised."""
        return z3.And([b == (n == name) for n, b in zip(ERRORS, (sv.value_error, sv.os_error,
                                                                  sv.segfault), strict=True)])

    def _live(self, v: Mapping[str, dict], sv: FaultStepVars) -> list[tuple[int, z3.BoolRef]]:
        """(p, "the step's pid is p+1 and alive") for every process."""
        return [(p, z3.And(sv.pid == p + 1, v["live"][p])) for p in self.procs]

    def _dead(self, v: Mapping[str, dict], sv: FaultStepVars) -> tuple[z3.BoolRef, None]:
        """A pid that is not alive: ValueError, nothing changes."""
        alive = z3.Or([z3.And(sv.pid == p + 1, v["live"][p]) for p in self.procs])
        return z3.And(z3.Not(alive), self._raise(sv, "ValueError")), None

    # -- spawn, fork, exit ----------------------------------------------------

    def _spawn(self, v: dict[str, dict], sv: FaultStepVars) -> list[tuple[z3.BoolRef, Upd | None]]:
        """spawn: the next pid, a pgd page; no step once every pid is handed out."""
        out = []
        for c in self.procs:
            upd = Upd(self, v)
            self._born(upd, sv, c)
            out.append((z3.And(v["nxt"][()] == c + 1, self._raise(sv, None), sv.result == c + 1,
                               self._free_in(v, sv.new_pgd)), upd))
        return out

    def _born(self, upd: Upd, sv: FaultStepVars, c: int) -> None:
        """Process c comes alive with its pgd at sv.new_pgd."""
        upd.taken.append(sv.new_pgd)
        upd.t["nxt"][()] = c + 2
        upd.t["live"][c] = True
        for f in self.frames:
            mine = sv.new_pgd == f
            for name, val in (("kind", PGD), ("owner", c), ("ref", 1), ("mapc", 0),
                              ("excl", False)):
                upd.t[name][f] = z3.If(mine, val, upd.t[name][f])

    def _fork(self, v: dict[str, dict], sv: FaultStepVars) -> list[tuple[z3.BoolRef, Upd | None]]:
        """fork: dup_mmap + copy_page_range (module docstring)."""
        out = [self._dead(v, sv)]
        for p, alive in self._live(v, sv):
            for c in self.procs:
                if c == p:
                    continue
                upd = Upd(self, v)
                self._born(upd, sv, c)
                t = upd.t
                for sl in self.slots:
                    i, k = (p, sl), (c, sl)
                    for name in ("area", "prot", "anon"):
                        t[name][k] = v[name][i]
                    copy = z3.And(v["area"][i], v["anon"][i], v["pte"][i])
                    counted = z3.And(copy, v["pfn"][i] != self.zero)
                    t["pte"][k], t["pfn"][k] = copy, z3.If(copy, v["pfn"][i], 0)
                    t["rw"][k] = z3.And(copy, z3.Not(counted), v["rw"][i])
                    wrprotect = z3.And(counted, v["rw"][i])
                    t["rw"][i] = z3.And(v["rw"][i], z3.Not(wrprotect))
                    for name in ("tlb", "tpfn", "tw"):
                        t[name][i] = z3.If(wrprotect, False if name != "tpfn" else 0, v[name][i])
                    t["rss"][c] = t["rss"][c] + z3.If(counted, 1, 0)
                    for f in self.frames:
                        hit = z3.And(counted, v["pfn"][i] == f)
                        t["ref"][f] = t["ref"][f] + z3.If(hit, 1, 0)
                        t["mapc"][f] = t["mapc"][f] + z3.If(hit, 1, 0)
                        t["excl"][f] = z3.And(t["excl"][f], z3.Not(hit))
                out.append((z3.And(alive, v["nxt"][()] == c + 1, self._raise(sv, None),
                                   sv.result == c + 1, self._free_in(v, sv.new_pgd)), upd))
        return out

    def _exit(self, v: dict[str, dict], sv: FaultStepVars) -> list[tuple[z3.BoolRef, Upd | None]]:
        """exit: every PTE zapped, every area gone, the page tables and pgd given back."""
        out = [self._dead(v, sv)]
        for p, alive in self._live(v, sv):
            upd = Upd(self, v)
            for sl in self.slots:
                upd.zap(p, sl)
                upd.t["area"][p, sl], upd.t["prot"][p, sl], upd.t["anon"][p, sl] = False, 0, False
            upd.t["live"][p], upd.t["rss"][p] = False, 0  # zero by then on a reachable state
            for f in self.frames:
                mine = z3.And(v["kind"][f] == PGD, v["owner"][f] == p)
                upd.t["kind"][f] = z3.If(mine, FREE, upd.t["kind"][f])
                upd.t["owner"][f] = z3.If(mine, 0, upd.t["owner"][f])
                upd.t["ref"][f] = z3.If(mine, 0, upd.t["ref"][f])
            out.append((z3.And(alive, self._raise(sv, None)), upd))
        return out

    # -- mmap, munmap, mprotect -----------------------------------------------

    def _mmap(self, v: dict[str, dict], sv: FaultStepVars) -> list[tuple[z3.BoolRef, Upd | None]]:
        """mmap of one page at a slot, MAP_FIXED (replacing what was there) or
        MAP_FIXED_NOREPLACE (EEXIST over an area); EINVAL for a zero length."""
        out = [self._dead(v, sv)]
        for p, alive in self._live(v, sv):
            out.append((z3.And(alive, sv.length == 0, self._raise(sv, "OSError")), None))
            for sl in self.slots:
                at = z3.And(alive, sv.length == PAGE_SIZE, sv.addr == slot_va(sl))
                taken = z3.And(sv.flags == FLAGS[1], v["area"][p, sl])
                out.append((z3.And(at, taken, self._raise(sv, "OSError")), None))
                upd = Upd(self, v)
                upd.zap(p, sl)
                upd.t["area"][p, sl], upd.t["prot"][p, sl] = True, sv.prot
                upd.t["anon"][p, sl] = False
                out.append((z3.And(at, z3.Not(taken), self._raise(sv, None),
                                   sv.result == slot_va(sl)), upd))
        return out

    def _munmap(self, v: dict[str, dict], sv: FaultStepVars) -> list[tuple[z3.BoolRef, Upd | None]]:
        """munmap of one page at a slot (nothing there: nothing to do)."""
        out = [self._dead(v, sv)]
        for p, alive in self._live(v, sv):
            for sl in self.slots:
                upd = Upd(self, v)
                upd.zap(p, sl)
                upd.t["area"][p, sl], upd.t["prot"][p, sl], upd.t["anon"][p, sl] = False, 0, False
                out.append((z3.And(alive, sv.length == PAGE_SIZE, sv.addr == slot_va(sl),
                                   self._raise(sv, None)), upd))
        return out

    def _mprotect(self, v: dict[str, dict], sv: FaultStepVars
                  ) -> list[tuple[z3.BoolRef, Upd | None]]:
        """mprotect of one page at a slot: ENOMEM where no area is; the PTE takes the new
        protection, writable only for an exclusive page; its TLB entry flushed if it changed."""
        out = [self._dead(v, sv)]
        for p, alive in self._live(v, sv):
            for sl in self.slots:
                i = p, sl
                at = z3.And(alive, sv.length == PAGE_SIZE, sv.addr == slot_va(sl))
                out.append((z3.And(at, z3.Not(v["area"][i]), self._raise(sv, "OSError")), None))
                upd = Upd(self, v)
                upd.t["prot"][i] = sv.prot
                excl = z3.Or([z3.And(v["pfn"][i] == f, v["excl"][f]) for f in self.frames])
                rw = z3.And(v["pte"][i], _writes(sv.prot), excl)
                changed = z3.And(v["pte"][i], z3.Or(rw != v["rw"][i],
                                                    (v["prot"][i] != 0) != (sv.prot != 0)))
                upd.t["rw"][i] = rw
                for name, empty in (("tlb", False), ("tpfn", 0), ("tw", False)):
                    upd.t[name][i] = z3.If(changed, empty, v[name][i])
                out.append((z3.And(at, v["area"][i], self._raise(sv, None)), upd))
        return out

    # -- read and write -------------------------------------------------------

    def _read(self, v: dict[str, dict], sv: FaultStepVars) -> list[tuple[z3.BoolRef, Upd | None]]:
        return self._access(v, sv, write=False)

    def _write(self, v: dict[str, dict], sv: FaultStepVars) -> list[tuple[z3.BoolRef, Upd | None]]:
        return self._access(v, sv, write=True)

    def _access(self, v: dict[str, dict], sv: FaultStepVars, write: bool
                ) -> list[tuple[z3.BoolRef, Upd | None]]:
        """read/write: ValueError (dead pid, a value that is no byte), Segfault (a
        non-canonical address, no area, access_error), else the access, after at most
        one handled fault."""
        out = [self._dead(v, sv)]
        good_value = within(sv.value, VALUES) if write else z3.BoolVal(True)
        for p, alive in self._live(v, sv):
            if write:
                out.append((z3.And(alive, sv.value == BAD_VALUE, self._raise(sv, "ValueError")),
                            None))
            ok = z3.And(alive, good_value)
            for bad in self.vas[-2:]:
                out.append((z3.And(ok, sv.va == bad, self._raise(sv, "Segfault")), None))
            for sl in self.slots:
                for o, off in enumerate(OFFSETS):
                    here = z3.And(ok, sv.va == slot_va(sl) + off)
                    out += [(z3.And(here, g), u) for g, u in self._touch(v, sv, p, sl, o, write)]
        return out

    def _touch(self, v: dict[str, dict], sv: FaultStepVars, p: int, sl: int, o: int,
               write: bool) -> list[tuple[z3.BoolRef, Upd | None]]:
        """One access to slot sl of p at offset o: the cases of translate and the fault."""
        i = p, sl
        pte, prot = v["pte"][i], v["prot"][i]
        ok, segv = self._raise(sv, None), self._raise(sv, "Segfault")
        allowed = _writes(prot) if write else prot != 0
        hit = z3.And(v["tlb"][i], v["tw"][i]) if write else v["tlb"][i]
        walk = z3.And(pte, prot != 0, v["rw"][i]) if write else z3.And(pte, prot != 0)
        if not write and self.mutation == "cow_copies_on_read":  # reads fault on COW pages
            walk = z3.And(walk, z3.Or(v["rw"][i], z3.Not(_writes(prot))))
        done = self._done(v, sv, p, sl, o, write)
        out: list[tuple[z3.BoolRef, Upd | None]] = []
        upd = Upd(self, v)
        out.append((z3.And(hit, ok, *self._result(v, sv, v["tpfn"][i], o, write, upd)), upd))
        miss = z3.Not(hit)
        upd = Upd(self, v)
        upd.fill(p, sl)
        out.append((z3.And(miss, walk, done(upd)), upd))
        upd = Upd(self, v)
        upd.flush(p, sl)
        out.append((z3.And(miss, z3.Not(walk), z3.Not(z3.And(v["area"][i], allowed)), segv),
                    upd))
        fault = z3.And(miss, z3.Not(walk), v["area"][i], allowed)
        out += [(z3.And(fault, g), u) for g, u in self._handle_pte_fault(v, sv, p, sl, write,
                                                                         done)]
        return out

    def _done(self, v: dict[str, dict], sv: FaultStepVars, p: int, sl: int, o: int,
              write: bool):  # noqa: ANN202
        """done(upd): the access completes on upd's PTE (the TLB filled from it)."""
        def done(upd: Upd) -> z3.BoolRef:
            upd.fill(p, sl)
            return z3.And(self._raise(sv, None),
                          *self._result(upd.v, sv, upd.t["pfn"][p, sl], o, write, upd))
        return done

    def _result(self, v: Mapping[str, dict], sv: FaultStepVars, pfn: z3.ArithRef, o: int,
                write: bool, upd: Upd) -> list[z3.BoolRef]:
        """A read returns the byte (of the post-state's page); a write stores it."""
        if write:
            upd.write_byte(pfn, o, sv.value)
            return [sv.result == 0]
        return [sv.result == self.byte_at(upd.t, pfn, o)]

    def _handle_pte_fault(self, v: dict[str, dict], sv: FaultStepVars, p: int, sl: int,
                          write: bool, done) -> list[tuple[z3.BoolRef, Upd]]:  # noqa: ANN001
        """do_anonymous_page, or do_wp_page on a write to a read-only PTE."""
        i = p, sl
        pte, prot = v["pte"][i], v["prot"][i]
        writable_area = _writes(prot)
        own = write or self.mutation == "cow_copies_on_read"
        out = []
        upd = Upd(self, v)
        upd.flush(p, sl)
        if own:
            upd.new_page(sv, None)
            upd.set_pte(p, sl, True, sv.new_page, True)
            upd.t["rss"][p] = upd.t["rss"][p] + 1
            upd.t["anon"][i] = True
            took = self._free_in(v, sv.new_page)
        else:
            upd.set_pte(p, sl, True, self.zero, False)
            took = z3.BoolVal(True)
        anon_cond = writable_area if own and not write else z3.BoolVal(True)
        out.append((z3.And(z3.Not(pte), anon_cond, took, done(upd)), upd))
        if not write:
            if own:  # the mutation: a read where a write would not be allowed maps the zero page
                upd = Upd(self, v)
                upd.set_pte(p, sl, True, self.zero, False)
                out.append((z3.And(z3.Not(pte), z3.Not(writable_area), done(upd)), upd))
                out += [(z3.And(pte, writable_area, z3.Not(v["rw"][i]), g), u)
                        for g, u in self._do_wp_page(v, sv, p, sl, done)]
            return out
        out += [(z3.And(pte, g), u) for g, u in self._do_wp_page(v, sv, p, sl, done)]
        return out

    def _do_wp_page(self, v: dict[str, dict], sv: FaultStepVars, p: int, sl: int,
                    done) -> list[tuple[z3.BoolRef, Upd]]:  # noqa: ANN001
        """Reuse the page when it is exclusive or has one reference, else copy it."""
        i = p, sl
        pfn = v["pfn"][i]
        excl = z3.Or([z3.And(pfn == f, v["excl"][f]) for f in self.frames])
        single = z3.Or([z3.And(pfn == f, v["ref"][f] == 1) for f in self.frames])
        reuse = z3.And(pfn != self.zero, z3.Or(excl, single))
        if self.mutation == "cow_never_copies":
            reuse = pfn != self.zero
        upd = Upd(self, v)
        upd.at_frame("excl", pfn, lambda _: True)
        upd.set_pte(p, sl, True, pfn, True)
        out = [(z3.And(reuse, done(upd)), upd)]
        upd = Upd(self, v)
        upd.new_page(sv, pfn)
        upd.set_pte(p, sl, True, sv.new_page, True)
        upd.t["anon"][i] = True
        upd.t["rss"][p] = upd.t["rss"][p] + z3.If(pfn == self.zero, 1, 0)
        upd.at_frame("mapc", pfn, lambda m: m - 1)
        if self.mutation != "missing_refcount_drop":
            upd.at_frame("ref", pfn, lambda r: r - 1)
        out.append((z3.And(z3.Not(reuse), self._free_in(v, sv.new_page), done(upd)), upd))
        return out
