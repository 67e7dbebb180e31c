"""x86 2-level page tables and their TLB as a Z3 transition system (see `base.py`).

The universe is fixed when the encoding is built: a few page addresses `vas`
(in 2-level mode, each in the PTE table of its pgd index), the pool of `npages`
pages the table pages come from, and finite sets of arguments: the addresses,
frames and flags each operation is tried with, good ones and one of each kind
the contract refuses. One state holds

    root           Int   the pgd's pfn
    tpfn[j]        Int   the pfn of the PTE table of pgd index j (0 when not held)
    leaf[v]        Bool  page v has a leaf entry ...
    lpfn[v]        Int   ... mapping this frame
    lflags[v]      Int   ... with these flags (one of a finite set)
    tlb[v]         Bool  the TLB caches page v ...
    tpf[v], tfl[v] Int   ... as this frame with these effective flags
    ever[v]        Bool  v had a leaf entry in this state or an earlier one
                         (mapped_ever shows ever[v] or leaf[v]: a superset of the
                         leaves by construction)

Every flag computation (present, the walk's rights, accessed and dirty, the
TLB's effective flags) is done in Python per possible flags value, so the
solver sees only atoms `lflags[v] == c`; flags and addresses are presented to
the spec compiler as `Cases` over their finite domains, so `flags & RW` and
`va >> 31` fold to constants case by case.

The transitions are those of `mmcheck.model.mmu.PageTable` (levels=2, table
pages freed when an unmap empties them) over an audited page allocator: map
installs `pfn | flags | P` after taking a table page when its pgd slot is empty
(any free pfn of the pool; MemoryError when none is left), unmap clears the
entry, flushes its TLB entry and gives back an emptied table, translate uses
a TLB entry whose rights allow the access (and, for a write, that is dirty),
else flushes it and walks: PageFault when the entry is missing or not present
or the rights forbid the access, otherwise sets A (and D for a write) and fills
the TLB. Exceptions are told apart (`raised_as`).

A PTE table is held exactly while it has a leaf entry (the reference gives a
table back when an unmap empties it, and a map that fails takes none), so
"table j is held" is a term over the leaves, not a variable.

Mutations seed the bugs of `examples/pagetable/buggy/` (see `MUTATIONS`).
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
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_RW,
    _PAGE_USER,
    PAGE_SIZE,
)
from mmcheck.model.mmu import MODES, VOCABULARY
from mmcheck.model.vocabulary import Vocabulary

P, RW, US, A, D = _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, _PAGE_ACCESSED, _PAGE_DIRTY
PAGE_TABLE = P | RW | US | A | D  # a non-leaf entry of a user page table
MODE = MODES[2]
BASE = 0x400000
VAS = (BASE, BASE + PAGE_SIZE, BASE + (1 << 22), 0xFFFFF000)
MAP_FLAGS = (P | RW | US, P | RW, P | US, P, 0, PAGE_TABLE)  # good flags
BAD_FLAGS = (1 << 12,)
PFNS = (1, 2, (1 << MODE.pfn_bits) - 1)
BAD_PFNS = (1 << MODE.pfn_bits, -1)
OPS = ("map", "unmap", "translate")
_BOOL_STEP_VARS = frozenset(("tr_write", "tr_user", "tr_exec", "unmap_none", "raised",
                             "value_error", "memory_error", "page_fault"))
ERRORS = ("ValueError", "MemoryError", "PageFault")

MUTATIONS: Mapping[str, str] = {
    "no_tlb_flush": "unmap() leaves the page's TLB entry behind",
    "map_sets_accessed": "map() stores flags | P | A | D",
    "no_dirty_bit": "a write translation sets A but never D",
    "user_bit_not_checked": "translate() ignores the U bit (TLB and walk)",
    "unmap_untranslatable_raises": "unmap() of an untranslatable address raises ValueError",
    "translate_raises_valueerror": "translate() of an untranslatable address raises "
                                   "ValueError",
}


def pgd_index(va: int) -> int:
    """pgd_index in 2-level mode."""
    return (va >> MODE.shifts[0]) & ((1 << MODE.bits[0]) - 1)


def pte_index(va: int) -> int:
    """pte_index in 2-level mode."""
    return (va >> MODE.shifts[1]) & ((1 << MODE.bits[1]) - 1)


def leaf_flags() -> tuple[int, ...]:
    """Every value a leaf's flags can take: a map's flags with P, then A, then D."""
    return tuple(sorted({f | P | extra for f in MAP_FLAGS for extra in (0, A, A | D)}))


def effective(flags: int) -> int:
    """The walk's effective flags for a leaf under a _PAGE_TABLE pgd entry, as the TLB
    caches them: P and A, RW and U from the leaf, D from the leaf."""
    return P | A | (flags & (RW | US | D))


@dataclass(frozen=True)
class PtVars:
    root: z3.ArithRef
    tpfn: tuple[z3.ArithRef, ...]
    leaf: tuple[z3.BoolRef, ...]
    lpfn: tuple[z3.ArithRef, ...]
    lflags: tuple[z3.ArithRef, ...]
    tlb: tuple[z3.BoolRef, ...]
    tpf: tuple[z3.ArithRef, ...]
    tfl: tuple[z3.ArithRef, ...]
    ever: tuple[z3.BoolRef, ...]


@dataclass(frozen=True)
class PtStepVars:
    op: z3.ArithRef
    map_va: z3.ArithRef
    map_pfn: z3.ArithRef
    map_flags: z3.ArithRef
    unmap_va: z3.ArithRef
    tr_va: z3.ArithRef
    tr_write: z3.BoolRef
    tr_user: z3.BoolRef
    tr_exec: z3.BoolRef
    unmap_none: z3.BoolRef
    unmap_pfn: z3.ArithRef
    tr_result: z3.ArithRef
    new_table: z3.ArithRef  # the pfn `pages` gave for a new table
    raised: z3.BoolRef
    value_error: z3.BoolRef
    memory_error: z3.BoolRef
    page_fault: z3.BoolRef


class SymbolicPageTable:
    """A 2-level PageTable over the addresses `vas` with `npages` pages for tables."""

    vocabulary: Vocabulary = VOCABULARY

    def __init__(self, npages: int, vas: Sequence[int] = VAS,
                 mutation: str | None = None) -> None:
        if mutation is not None and mutation not in MUTATIONS:
            raise ValueError(f"SymbolicPageTable: unknown mutation {mutation!r}; "
                             f"known: {', '.join(MUTATIONS)}")
        if npages < 1:
            raise ValueError("SymbolicPageTable: the pool needs a page for the pgd")
        self.npages, self.vas, self.mutation = npages, tuple(vas), mutation
        self.pgds = sorted({pgd_index(v) for v in self.vas})
        self.table_of = [self.pgds.index(pgd_index(v)) for v in self.vas]
        self.flags = leaf_flags()
        self.effs = tuple(sorted({effective(f) for f in self.flags}))
        self.map_vas = (*self.vas, BASE + 1, 1 << 32)  # unaligned, untranslatable
        self.tr_vas = (*self.vas, self.vas[0] + 8, 1 << 32)  # an offset in a page
        self.map_flag_args = (*MAP_FLAGS, *BAD_FLAGS)
        self.map_adds = P | A | D if mutation == "map_sets_accessed" else P
        self.write_sets = A if mutation == "no_dirty_bit" else A | D

    # -- states ---------------------------------------------------------------

    def fresh_state(self, tag: str) -> SymState:
        """A state of fresh z3 constants named after `tag`."""
        nt, nv = len(self.pgds), len(self.vas)

        def bools(name: str, n: int) -> tuple[z3.BoolRef, ...]:
            return tuple(z3.Bool(f"{tag}.{name}[{i}]") for i in range(n))

        def ints(name: str, n: int) -> tuple[z3.ArithRef, ...]:
            return tuple(z3.Int(f"{tag}.{name}[{i}]") for i in range(n))

        v = PtVars(z3.Int(f"{tag}.root"), ints("tpfn", nt),
                   bools("leaf", nv), ints("lpfn", nv), ints("lflags", nv),
                   bools("tlb", nv), ints("tpf", nv), ints("tfl", nv), bools("ever", nv))
        return self._present(v)

    def vars_of(self, s: SymState) -> PtVars:
        """The constants behind a state made by `fresh_state`."""
        vs, nt, nv = list(s.variables), len(self.pgds), len(self.vas)
        out: list[object] = [vs.pop(0)]
        for f in fields(PtVars)[1:]:
            n = nt if f.name == "tpfn" else nv
            out.append(tuple(vs[:n]))
            del vs[:n]
        return PtVars(*out)  # type: ignore[arg-type]

    def held(self, v: PtVars) -> list[z3.BoolRef]:
        """held[j]: the PTE table of pgd index j is held (it has a leaf entry)."""
        return [z3.Or([v.leaf[i] for i, tj in enumerate(self.table_of) if tj == j])
                for j in range(len(self.pgds))]

    def _present(self, v: PtVars) -> SymState:
        """The vocabulary's view of the variables `v`."""
        tab = self.held(v)
        def has(term: z3.ArithRef, bit: int) -> z3.BoolRef:
            return z3.Or([term == c for c in self.flags if c & bit] or [z3.BoolVal(False)])

        ptes = tuple((v.leaf[i], SymRecord("Pte", {
            "va": z3.IntVal(va), "pfn": v.lpfn[i], "flags": Cases.over(v.lflags[i], self.flags),
            "present": has(v.lflags[i], P), "user": has(v.lflags[i], US),
            "writable": has(v.lflags[i], RW)})) for i, va in enumerate(self.vas))
        tables = ((z3.BoolVal(True), SymRecord("Table", {"pfn": v.root, "level": z3.IntVal(2)})),
                  *((tab[j], SymRecord("Table", {"pfn": v.tpfn[j], "level": z3.IntVal(1)}))
                    for j in range(len(self.pgds))))
        entries = (*((tab[j], _entry(v.root, 2, g, v.tpfn[j], PAGE_TABLE, False))
                     for j, g in enumerate(self.pgds)),
                   *((v.leaf[i], _entry(v.tpfn[self.table_of[i]], 1, pte_index(va), v.lpfn[i],
                                        Cases.over(v.lflags[i], self.flags), True))
                     for i, va in enumerate(self.vas)))
        tlb = tuple((v.tlb[i], SymRecord("TlbEntry", {
            "va": z3.IntVal(va), "pfn": v.tpf[i], "flags": Cases.over(v.tfl[i], self.effs)}))
            for i, va in enumerate(self.vas))
        ever = tuple((z3.Or(v.leaf[i], v.ever[i]), SymRecord("Mapped", {"va": z3.IntVal(va)}))
                     for i, va in enumerate(self.vas))
        values = {
            "levels": z3.IntVal(2), "root": v.root,
            "table_pages": 1 + z3.Sum([z3.If(t, 1, 0) for t in tab]),
            "ptes": SymCollection("Pte", ptes), "tables": SymCollection("Table", tables),
            "entries": SymCollection("TableEntry", entries),
            "tlb": SymCollection("TlbEntry", tlb), "mapped_ever": SymCollection("Mapped", ever),
        }
        flat = (v.root, *v.tpfn, *v.leaf, *v.lpfn, *v.lflags, *v.tlb, *v.tpf, *v.tfl,
                *v.ever)
        return SymState(values, flat)

    def init(self, s: SymState) -> z3.BoolRef:
        """A page table just made: the pgd at some page of the pool, nothing else."""
        v = self.vars_of(s)
        return z3.And(v.root >= 0, v.root < self.npages, self._only(v, {}, {}, {}, ()))

    def assign(self, s: SymState, root: int, tables: Mapping[int, int],
               leaves: Mapping[int, tuple[int, int]], tlb: Mapping[int, tuple[int, int]],
               ever: Sequence[int]) -> z3.BoolRef:
        """s is exactly: the pgd at root, PTE tables {pgd index: pfn}, leaves
        {va: (pfn, flags)}, TLB entries {va: (pfn, flags)}, mapped_ever. False if
        something has no slot."""
        v = self.vars_of(s)
        if set(tables) != {pgd_index(va) for va in leaves} \
                or not (set(leaves) | set(tlb) | set(ever)) <= set(self.vas):
            return z3.BoolVal(False)
        return z3.And(v.root == root, self._only(v, tables, leaves, tlb, ever))

    def _only(self, v: PtVars, tables: Mapping[int, int], leaves: Mapping[int, tuple[int, int]],
              tlb: Mapping[int, tuple[int, int]], ever: Sequence[int]) -> z3.BoolRef:
        """Every slot but the root holds exactly what the arguments say."""
        facts = []
        for j, g in enumerate(self.pgds):
            facts.append(v.tpfn[j] == tables.get(g, 0))
        for i, va in enumerate(self.vas):
            lp, lf = leaves.get(va, (0, 0))
            tp, tf = tlb.get(va, (0, 0))
            facts += [v.leaf[i] == (va in leaves), v.lpfn[i] == lp, v.lflags[i] == lf,
                      v.tlb[i] == (va in tlb), v.tpf[i] == tp, v.tfl[i] == tf,
                      v.ever[i] == (va in ever)]
        return z3.And(facts)

    def well_formed(self, s: SymState) -> z3.BoolRef:
        """Domains: pfns in the pool or 0, flags in their finite sets, 0 on empty slots."""
        v = self.vars_of(s)
        facts = [v.root >= 0, v.root < self.npages]
        for j, held in enumerate(self.held(v)):
            facts.append(z3.If(held, z3.And(v.tpfn[j] >= 0, v.tpfn[j] < self.npages),
                               v.tpfn[j] == 0))
        for i in range(len(self.vas)):
            facts += [z3.If(v.leaf[i],
                            z3.And(within(v.lpfn[i], PFNS), within(v.lflags[i], self.flags)),
                            z3.And(v.lpfn[i] == 0, v.lflags[i] == 0)),
                      z3.If(v.tlb[i], z3.And(within(v.tpf[i], PFNS), within(v.tfl[i], self.effs)),
                            z3.And(v.tpf[i] == 0, v.tfl[i] == 0))]
        return z3.And(facts)

    # -- steps ----------------------------------------------------------------

    def fresh_step(self, tag: str) -> SymStep:
        """A step of fresh z3 constants: which operation, its arguments, its result."""
        names = [f.name for f in fields(PtStepVars)]
        made = {n: (z3.Bool if n in _BOOL_STEP_VARS else z3.Int)(f"{tag}.{n}") for n in names}
        sv = PtStepVars(**made)
        return SymStep(
            is_op={name: sv.op == j for j, name in enumerate(OPS)},
            args={"map": {"va": Cases.over(sv.map_va, self.map_vas), "pfn": sv.map_pfn,
                          "flags": Cases.over(sv.map_flags, self.map_flag_args)},
                  "unmap": {"va": Cases.over(sv.unmap_va, self.map_vas)},
                  "translate": {"va": Cases.over(sv.tr_va, self.tr_vas), "write": sv.tr_write,
                                "user": sv.tr_user, "exec": sv.tr_exec}},
            results={"map": None, "unmap": SymOptional(sv.unmap_none, sv.unmap_pfn),
                     "translate": sv.tr_result},
            raised=sv.raised,
            variables=tuple(made[n] for n in names),
            raised_as={"ValueError": sv.value_error, "MemoryError": sv.memory_error,
                       "PageFault": sv.page_fault})  # type: ignore[arg-type]

    def step_vars(self, t: SymStep) -> PtStepVars:
        """The constants behind a step made by `fresh_step`."""
        return PtStepVars(*t.variables)  # type: ignore[arg-type]

    def decode_step(self, model: z3.ModelRef, t: SymStep) -> ConcreteStep:
        """The operation t performed in `model`, as a trace records it."""
        sv = self.step_vars(t)

        num = partial(model_int, model)
        op = OPS[num(sv.op)]
        raised = next((name for name, b in zip(ERRORS, (sv.value_error, sv.memory_error,
                                                        sv.page_fault), strict=True)
                       if num(b)), None)
        if op == "map":
            return ConcreteStep(op, (num(sv.map_va), num(sv.map_pfn), num(sv.map_flags)),
                                None, raised)
        if op == "unmap":
            result = None if raised or num(sv.unmap_none) else num(sv.unmap_pfn)
            return ConcreteStep(op, (num(sv.unmap_va),), result, raised)
        args = (num(sv.tr_va), num(sv.tr_write), num(sv.tr_user), num(sv.tr_exec))
        return ConcreteStep(op, args, None if raised else num(sv.tr_result), raised)

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef:
        """Step t takes s to s2: one operation ran, as the reference runs it; the
        arguments of the others, and results that mean nothing, are pinned to 0."""
        sv = self.step_vars(t)
        v, v2 = self.vars_of(s), self.vars_of(s2)
        is_op = [sv.op == j for j in range(len(OPS))]
        side = [z3.Or(is_op), v2.root == v.root,
                sv.raised == z3.Or(sv.value_error, sv.memory_error, sv.page_fault),
                z3.AtMost(sv.value_error, sv.memory_error, sv.page_fault, 1)]
        pins = {0: (sv.map_va, sv.map_pfn, sv.map_flags, sv.new_table), 1: (sv.unmap_va,),
                2: (sv.tr_va,)}
        for j, terms in pins.items():
            side.append(z3.Implies(z3.Not(is_op[j]), z3.And([x == 0 for x in terms])))
        side.append(z3.Implies(z3.Not(is_op[2]), z3.And(z3.Not(sv.tr_write),
                                                        z3.Not(sv.tr_user),
                                                        z3.Not(sv.tr_exec), sv.tr_result == 0)))
        side.append(z3.Implies(z3.Not(is_op[1]), z3.And(z3.Not(sv.unmap_none),
                                                        sv.unmap_pfn == 0)))
        side += [v2.ever[i] == z3.Or(v.ever[i], v.leaf[i], v2.leaf[i])
                 for i in range(len(self.vas))]
        return z3.And(*side,
                      z3.Implies(is_op[0], self._map(v, sv, v2)),
                      z3.Implies(is_op[1], self._unmap(v, sv, v2)),
                      z3.Implies(is_op[2], self._translate(v, sv, v2)))

    def _frame(self, v: PtVars, v2: PtVars, tables: Sequence[int] = (),
               leaves: Sequence[int] = (), tlbs: Sequence[int] = ()) -> list[z3.BoolRef]:
        """Everything but the named table, leaf and TLB slots stays as it was."""
        out = []
        for j in range(len(self.pgds)):
            if j not in tables:
                out.append(v2.tpfn[j] == v.tpfn[j])
        for i in range(len(self.vas)):
            if i not in leaves:
                out += [v2.leaf[i] == v.leaf[i], v2.lpfn[i] == v.lpfn[i],
                        v2.lflags[i] == v.lflags[i]]
            if i not in tlbs:
                out += [v2.tlb[i] == v.tlb[i], v2.tpf[i] == v.tpf[i], v2.tfl[i] == v.tfl[i]]
        return out

    # -- map ------------------------------------------------------------------

    def _map(self, v: PtVars, sv: PtStepVars, v2: PtVars) -> z3.BoolRef:
        """map(va, pfn, flags): ValueError for a bad argument or a mapped page;
        MemoryError when the page's table is missing and the pool is empty."""
        pfn_ok = z3.And(sv.map_pfn >= 0, sv.map_pfn < 1 << MODE.pfn_bits)
        flags_ok = within(sv.map_flags, MAP_FLAGS)
        args = [within(sv.map_va, self.map_vas), within(sv.map_pfn, (*PFNS, *BAD_PFNS)),
                within(sv.map_flags, self.map_flag_args)]
        tab = self.held(v)
        held = 1 + z3.Sum([z3.If(t, 1, 0) for t in tab])
        cases = [z3.And(sv.map_va == bad, sv.value_error, z3.Not(sv.memory_error),
                        sv.new_table == 0, *self._frame(v, v2))
                 for bad in self.map_vas[len(self.vas):]]
        for i, va in enumerate(self.vas):
            j = self.table_of[i]
            bad = z3.Or(z3.Not(pfn_ok), z3.Not(flags_ok), v.leaf[i])
            nomem = z3.And(z3.Not(tab[j]), held >= self.npages)
            fresh = z3.And(sv.new_table >= 0, sv.new_table < self.npages,
                           sv.new_table != v.root,
                           *[z3.Or(z3.Not(tab[k]), v.tpfn[k] != sv.new_table)
                             for k in range(len(self.pgds)) if k != j])
            table = z3.If(tab[j], z3.And(v2.tpfn[j] == v.tpfn[j], sv.new_table == 0),
                          z3.And(v2.tpfn[j] == sv.new_table, fresh))
            installed = z3.And(
                v2.leaf[i], v2.lpfn[i] == sv.map_pfn,
                z3.Or([z3.And(sv.map_flags == f, v2.lflags[i] == (f | self.map_adds))
                       for f in MAP_FLAGS]),
                table, *self._frame(v, v2, tables=[j], leaves=[i]))
            unchanged = z3.And(sv.new_table == 0, *self._frame(v, v2))
            cases.append(z3.And(
                sv.map_va == va, sv.value_error == bad,
                sv.memory_error == z3.And(z3.Not(bad), nomem),
                z3.If(sv.raised, unchanged, installed)))
        return z3.And(*args, z3.Not(sv.page_fault), z3.Or(cases))

    # -- unmap ----------------------------------------------------------------

    def _unmap(self, v: PtVars, sv: PtStepVars, v2: PtVars) -> z3.BoolRef:
        """unmap(va): ValueError when unaligned; None when nothing is mapped (or the
        mode cannot translate va); else the pfn, the entry cleared, its TLB entry
        flushed, and its table given back when it is left empty."""
        unaligned, untranslatable = self.map_vas[len(self.vas):]
        cases = [z3.And(sv.unmap_va == unaligned, sv.value_error, *self._frame(v, v2)),
                 z3.And(sv.unmap_va == untranslatable, *self._frame(v, v2),
                        sv.value_error if self.mutation == "unmap_untranslatable_raises"
                        else z3.And(z3.Not(sv.raised), sv.unmap_none))]
        for i, va in enumerate(self.vas):
            j = self.table_of[i]
            siblings = [v.leaf[k] for k, tj in enumerate(self.table_of) if tj == j and k != i]
            empty = z3.Not(z3.Or(siblings)) if siblings else z3.BoolVal(True)
            flush = self.mutation != "no_tlb_flush"
            cleared = z3.And(
                z3.Not(sv.unmap_none), sv.unmap_pfn == v.lpfn[i],
                z3.Not(v2.leaf[i]), v2.lpfn[i] == 0, v2.lflags[i] == 0,
                v2.tpfn[j] == z3.If(empty, 0, v.tpfn[j]),
                *(self._tlb_cleared(v2, i) if flush else []),
                *self._frame(v, v2, tables=[j], leaves=[i], tlbs=[i] if flush else []))
            cases.append(z3.And(sv.unmap_va == va, z3.Not(sv.raised),
                                z3.If(v.leaf[i], cleared,
                                      z3.And(sv.unmap_none, *self._frame(v, v2)))))
        return z3.And(z3.Not(sv.memory_error), z3.Not(sv.page_fault), z3.Or(cases))

    @staticmethod
    def _tlb_cleared(v2: PtVars, i: int) -> list[z3.BoolRef]:
        return [z3.Not(v2.tlb[i]), v2.tpf[i] == 0, v2.tfl[i] == 0]

    # -- translate ------------------------------------------------------------

    def _translate(self, v: PtVars, sv: PtStepVars, v2: PtVars) -> z3.BoolRef:
        """translate(va, write, user, exec): the TLB, else the walk (module docstring)."""
        w, u = sv.tr_write, sv.tr_user
        fault = z3.And(sv.page_fault, z3.Not(sv.value_error), z3.Not(sv.memory_error))
        bad = fault if self.mutation != "translate_raises_valueerror" else z3.And(
            sv.value_error, z3.Not(sv.page_fault), z3.Not(sv.memory_error))
        cases = [z3.And(sv.tr_va == (1 << 32), bad, sv.tr_result == 0, *self._frame(v, v2))]
        for va in self.tr_vas[:-1]:
            i = self.vas.index(va - va % PAGE_SIZE)
            offset = va % PAGE_SIZE
            cases.append(z3.And(sv.tr_va == va, self._access(v, v2, i, offset, w, u, sv, fault)))
        return z3.Or(cases)

    def _access(self, v: PtVars, v2: PtVars, i: int, offset: int, w: z3.BoolRef,
                u: z3.BoolRef, sv: PtStepVars, fault: z3.BoolRef) -> z3.BoolRef:
        """One access to page i: a TLB hit, or a flush and a walk."""
        def allowed(term: z3.ArithRef, domain: Sequence[int], dirty: bool) -> z3.BoolRef:
            """term's rights allow the access (and, if `dirty`, a write needs D)."""
            return z3.Or([z3.And(term == c, *self._rights(c, w, u, dirty, self.mutation))
                          for c in domain])

        hit = z3.And(v.tlb[i], allowed(v.tfl[i], self.effs, True))
        from_tlb = z3.And(z3.Not(sv.raised), sv.tr_result == v.tpf[i] * PAGE_SIZE + offset,
                          *self._frame(v, v2))
        walk_ok = z3.And(v.leaf[i], allowed(v.lflags[i], self.flags, False))
        ws = self.write_sets
        marked = z3.Or([z3.And(v.lflags[i] == c, z3.If(w, v2.lflags[i] == c | ws,
                                                       v2.lflags[i] == c | A),
                               v2.tfl[i] == z3.If(w, effective(c | ws), effective(c | A)))
                        for c in self.flags])
        walked = z3.And(
            z3.Not(sv.raised), sv.tr_result == v.lpfn[i] * PAGE_SIZE + offset, marked,
            v2.leaf[i], v2.lpfn[i] == v.lpfn[i],
            v2.tlb[i], v2.tpf[i] == v.lpfn[i],
            *self._frame(v, v2, leaves=[i], tlbs=[i]))
        faulted = z3.And(fault, sv.tr_result == 0, *self._tlb_cleared(v2, i),
                         *self._frame(v, v2, tlbs=[i]))
        return z3.If(hit, from_tlb, z3.If(walk_ok, walked, faulted))

    @staticmethod
    def _rights(flags: int, w: z3.BoolRef, u: z3.BoolRef, dirty: bool,
                mutation: str | None) -> list[z3.BoolRef]:
        """What an access needs of these flags: present, U for a user access, RW (and,
        for a TLB entry, D) for a write."""
        if not flags & P:
            return [z3.BoolVal(False)]
        out = [] if flags & US or mutation == "user_bit_not_checked" else [z3.Not(u)]
        if not flags & RW or (dirty and not flags & D):
            out.append(z3.Not(w))
        return out


def _entry(table: z3.ArithRef, level: int, index: int, pfn: z3.ArithRef, flags: object,
           leaf: bool) -> SymRecord:
    return SymRecord("TableEntry", {"table": table, "level": z3.IntVal(level),
                                    "index": z3.IntVal(index), "pfn": pfn,
                                    "flags": flags if isinstance(flags, Cases)
                                    else z3.IntVal(flags),  # type: ignore[arg-type]
                                    "leaf": z3.BoolVal(leaf)})
