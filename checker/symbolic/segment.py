"""x86 segmentation (the SegmentUnit) as a Z3 transition system (see `base.py`).

The GDT, the CPL and the page table's leaf entries are the setup's constants
(the checker's GDT and page table, checker/subsystems/segment.py): every check
that reads a descriptor is computed in Python per selector value and folded.
One state holds

    reg[r]          Int   the selector segment register r holds (ES=0 .. GS=5),
                          one of SELECTORS
    acc[m], dirty[m] Bool the accessed and dirty bits of leaf entry m (a
                          successful walk sets A, a write D): the only part
                          of the page table that changes
    has_last        Bool  a linear or translate has passed the segment checks ...
    l_sreg, l_off, l_lin, l_phys  Int  ... and what it gave (phys -1: none)

Selectors range over SELECTORS: the GDT's indexes in use (null, an empty entry,
Linux's four and the checker's ten test descriptors, one past the GDT) x TI x
RPL. Offsets are unbounded integers (negative ones included where the contract
takes them: linear and translate), so a proof covers every offset. Sizes are
0, 1, 2 and 4; register numbers -1 to 6.

The transitions are those of `mmcheck.model.segment.SegmentUnit`, with the
SDM's checks in the order the model makes them (so each bad call raises what
the model raises): load_segment (a register other than ES/DS/FS/GS:
ValueError; a selector in the LDT or past the GDT: #GP; null loads; not data
or readable code: #GP; max(CPL, RPL) > DPL unless conforming: #GP; not
present: #NP), load_ss (outside the table, null, RPL != CPL, not writable
data, DPL != CPL: #GP; not present: #SS), far_jump and far_call (outside the
table, null, not code, the conforming/non-conforming privilege rule: #GP; not
present: #NP; offset outside the limit: #GP; CS gets the selector with RPL =
CPL), linear and translate (ValueError for a register number that is none, a
negative offset or a size below 1; then null, a write to code or read-only
data, a read of execute-only code but through CS, a byte outside the limit:
#GP, #SS for SS; the linear address is base + offset mod 2**32; translate then
walks the page table: none when no leaf maps the page or its rights refuse a
CPL-3 (user) access or a write, else the physical address, A and D set). The
TLB is left out: the page table's rights never change, so a cached entry
answers as the walk does and is invisible in the vocabulary.

Mutations seed the bugs of `examples/segment/buggy/` (see `MUTATIONS`).
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
    raising_goals,
    within,
)
from mmcheck.checker.z3compile import Cases
from mmcheck.model.linux import _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_RW, _PAGE_USER, PAGE_SIZE
from mmcheck.model.segment import (
    CS,
    SS,
    VOCABULARY,
    Cpu,
    SegmentFault,
    decode_gdt,
    desc_struct,
)
from mmcheck.model.vocabulary import Vocabulary

OPS = ("load_segment", "load_ss", "far_jump", "far_call", "linear", "translate")
EXC = ("", "GeneralProtection", "SegmentNotPresent", "StackFault", "ValueError")
GP, NP, SSF, VALUE = 1, 2, 3, 4
TRAP = {"#GP": GP, "#NP": NP, "#SS": SSF}
INDEXES = (0, 1, *range(12, 26), 31, 40)  # null, empty, Linux's, the checker's, past
# RPL 0, 1 and 3 (2 compares with CPL and DPL, 0 or 3, as 1 does) in the GDT; the
# LDT (TI=1) at two indexes: at most 64 values, so that an action splits over them.
SELECTORS = (*(i << 3 | rpl for i in INDEXES for rpl in (0, 1, 3)),
             0 << 3 | 4 | 3, 15 << 3 | 4 | 3)
SREG_ARGS = tuple(range(-1, 7))
SIZES = (0, 1, 2, 4)
LOADABLE = (0, 3, 4, 5)
TOP = 1 << 32

MUTATIONS: Mapping[str, str] = {
    "limit_in_bytes": "every limit is read in bytes, whatever G says",
    "rpl_ignored": "loading DS/ES/FS/GS compares the DPL with the CPL alone",
}


@dataclass(frozen=True)
class SegVars:
    reg: tuple[z3.ArithRef, ...]
    acc: tuple[z3.BoolRef, ...]
    dirty: tuple[z3.BoolRef, ...]
    has_last: z3.BoolRef
    l_sreg: z3.ArithRef
    l_off: z3.ArithRef
    l_lin: z3.ArithRef
    l_phys: z3.ArithRef


@dataclass(frozen=True)
class SegStepVars:
    op: z3.ArithRef
    sreg: z3.ArithRef
    selector: z3.ArithRef
    offset: z3.ArithRef
    size: z3.ArithRef
    write: z3.BoolRef
    exc: z3.ArithRef  # EXC index of what the step raised (0: nothing)
    result: z3.ArithRef  # linear's address, translate's physical address
    none: z3.BoolRef  # translate returned none


class SymbolicSegment:
    """A SegmentUnit over the checker's GDT and page table at CPL `cpl`."""

    vocabulary: Vocabulary = VOCABULARY

    def __init__(self, cpl: int = 3, mutation: str | None = None) -> None:
        from mmcheck.checker.subsystems.segment import ReferenceSystem, checker_gdt

        if mutation is not None and mutation not in MUTATIONS:
            raise ValueError(f"SymbolicSegment: unknown mutation {mutation!r}; "
                             f"known: {', '.join(MUTATIONS)}")
        if cpl not in (0, 3):
            raise ValueError(f"SymbolicSegment: cpl must be 0 or 3, not {cpl!r}")
        self.cpl, self.mutation = cpl, mutation
        self.setup = {"user": int(cpl == 3)}
        ref = ReferenceSystem(self.setup).model
        self.start_regs = tuple(ref.selector(s) for s in range(6))
        self.descs = decode_gdt(checker_gdt())
        self.cpu = Cpu(checker_gdt(), cpl=cpl)  # reads descriptors only
        self.maps = tuple((va, pfn, flags) for va, pfn, flags in ref.mmu.walk_range(0, TOP))
        self.groups: dict[desc_struct | None, list[int]] = {}  # selectors by descriptor
        for sel in SELECTORS:
            self.groups.setdefault(self.desc(sel), []).append(sel)
        self.domain = self.reg_domains()

    def reg_domains(self) -> tuple[tuple[int, ...], ...]:
        """What each register can hold: its selector at start, and every selector a
        load of it accepts (for CS, what a far jump leaves there)."""
        loads = {r: [s for s in SELECTORS if self.load_fault(s) == 0] for r in LOADABLE}
        loads[SS] = [s for s in SELECTORS if self.ss_fault(s) == 0]
        loads[CS] = [s & ~3 | self.cpl for s in SELECTORS if self.far_fault(s)[0] == 0]
        return tuple(tuple(sorted({self.start_regs[r], *loads[r]})) for r in range(6))

    # -- the setup's constants --------------------------------------------------

    def desc(self, sel: int) -> desc_struct | None:
        """The descriptor selector `sel` names, None for null or one outside the table."""
        try:
            return self.cpu._descriptor(sel)
        except SegmentFault:
            return None

    def limit(self, d: desc_struct) -> int:
        """segment_limit: the last valid offset of an expand-up segment (under
        limit_in_bytes the raw field, G ignored)."""
        if self.mutation == "limit_in_bytes":
            return d.limit
        return (d.limit << 12) | 0xFFF if d.g else d.limit

    def inside(self, d: desc_struct, offset: z3.ArithRef, size: z3.ArithRef | int
               ) -> z3.BoolRef:
        """_check_limit: offset .. offset+size-1 lies within the segment."""
        last = offset + size - 1
        if d.is_data and d.type & 0x4:
            return z3.And(self.limit(d) < offset, last <= (0xFFFFFFFF if d.d else 0xFFFF))
        return last <= self.limit(d)

    def load_fault(self, sel: int) -> int:
        """What load_segment of `sel` raises before it loads (0: nothing)."""
        d, rpl = self.desc(sel), sel & 3
        if d is None:
            return 0 if sel >> 2 == 0 else GP
        if not (d.is_data or d.is_code and d.type & 0x2):
            return GP
        privileged = self.cpl if self.mutation == "rpl_ignored" else max(self.cpl, rpl)
        if not (d.is_code and d.type & 0x4) and privileged > d.dpl:
            return GP
        return 0 if d.p else NP

    def ss_fault(self, sel: int) -> int:
        """What load_ss of `sel` raises (0: nothing)."""
        d = self.desc(sel)
        if d is None or sel & 3 != self.cpl:
            return GP
        if not (d.is_data and d.type & 0x2) or d.dpl != self.cpl:
            return GP
        return 0 if d.p else SSF

    def far_fault(self, sel: int) -> tuple[int, desc_struct | None]:
        """What a far jump to `sel` raises before the limit check (0: nothing), and
        the target's descriptor."""
        d = self.desc(sel)
        if d is None or not d.is_code:
            return GP, d
        if d.type & 0x4:
            if d.dpl > self.cpl:
                return GP, d
        elif sel & 3 > self.cpl or d.dpl != self.cpl:
            return GP, d
        return (0 if d.p else NP), d

    # -- states ---------------------------------------------------------------

    def fresh_state(self, tag: str) -> SymState:
        """A state of fresh z3 constants named after `tag`."""
        n = len(self.maps)
        v = SegVars(tuple(z3.Int(f"{tag}.reg[{r}]") for r in range(6)),
                    tuple(z3.Bool(f"{tag}.acc[{m}]") for m in range(n)),
                    tuple(z3.Bool(f"{tag}.dirty[{m}]") for m in range(n)),
                    z3.Bool(f"{tag}.has_last"), *(z3.Int(f"{tag}.{x}") for x in
                                                   ("l_sreg", "l_off", "l_lin", "l_phys")))
        return self._present(v)

    def vars_of(self, s: SymState) -> SegVars:
        """The constants behind a state made by `fresh_state`."""
        vs, n = s.variables, len(self.maps)
        return SegVars(tuple(vs[:6]), tuple(vs[6:6 + n]), tuple(vs[6 + n:6 + 2 * n]),  # type: ignore[arg-type]
                       *vs[6 + 2 * n:])  # type: ignore[arg-type]

    def _present(self, v: SegVars) -> SymState:
        """The vocabulary's view of the variables `v`."""
        gdt = tuple((z3.BoolVal(True), SymRecord("Descriptor", {
            k: z3.IntVal(x) for k, x in d._asdict().items()})) for d in self.descs)
        segs = tuple((z3.BoolVal(True), SymRecord("SegReg", {
            "sreg": z3.IntVal(r), "selector": Cases.over(v.reg[r], self.domain[r])}))
            for r in range(6))
        maps = tuple((z3.BoolVal(True), SymRecord("Map", {
            "va": z3.IntVal(va), "pfn": z3.IntVal(pfn),
            "flags": self._flags(flags, v.acc[m], v.dirty[m])}))
            for m, (va, pfn, flags) in enumerate(self.maps))
        last = ((v.has_last, SymRecord("Translation", {
            "sreg": v.l_sreg, "offset": v.l_off, "linear": v.l_lin, "phys": v.l_phys})),)
        values = {"cpl": z3.IntVal(self.cpl), "gdt": SymCollection("Descriptor", gdt),
                  "segs": SymCollection("SegReg", segs), "maps": SymCollection("Map", maps),
                  "last": SymCollection("Translation", last)}
        flat = (*v.reg, *v.acc, *v.dirty, v.has_last, v.l_sreg, v.l_off, v.l_lin, v.l_phys)
        return SymState(values, flat)

    @staticmethod
    def _flags(flags: int, acc: z3.BoolRef, dirty: z3.BoolRef) -> Cases:
        """A leaf entry's flags: its constant rights, A and D as the state says."""
        base = flags & ~(_PAGE_ACCESSED | _PAGE_DIRTY)
        cases = tuple((z3.And(acc == bool(a), dirty == bool(d)), base | a | d)
                      for a in (0, _PAGE_ACCESSED) for d in (0, _PAGE_DIRTY))
        return Cases(cases, base + z3.If(acc, _PAGE_ACCESSED, 0) + z3.If(dirty, _PAGE_DIRTY, 0))

    def init(self, s: SymState) -> z3.BoolRef:
        """A SegmentUnit just made: the registers start_thread (or the kernel) leaves,
        the page table as the checker built it, no translation yet."""
        v = self.vars_of(s)
        return z3.And(*[v.reg[r] == sel for r, sel in enumerate(self.start_regs)],
                      *[z3.And(v.acc[m] == bool(f & _PAGE_ACCESSED),
                               v.dirty[m] == bool(f & _PAGE_DIRTY))
                        for m, (_, _, f) in enumerate(self.maps)],
                      z3.Not(v.has_last), *self._no_last(v))

    @staticmethod
    def _no_last(v: SegVars) -> list[z3.BoolRef]:
        return [v.l_sreg == 0, v.l_off == 0, v.l_lin == 0, v.l_phys == 0]

    def assign(self, s: SymState, regs: Sequence[int], flags: Mapping[int, int],
               last: Sequence[tuple[int, int, int, int]]) -> z3.BoolRef:
        """s is exactly: the six selectors, the leaf entries' flags (va -> flags) and
        the last translation (at most one)."""
        v = self.vars_of(s)
        facts = [v.reg[r] == sel for r, sel in enumerate(regs)]
        facts += [z3.And(v.acc[m] == bool(flags[va] & _PAGE_ACCESSED),
                         v.dirty[m] == bool(flags[va] & _PAGE_DIRTY))
                  for m, (va, _, _) in enumerate(self.maps)]
        if not last:
            return z3.And(*facts, z3.Not(v.has_last), *self._no_last(v))
        ((sreg, off, lin, phys),) = last
        return z3.And(*facts, v.has_last, v.l_sreg == sreg, v.l_off == off, v.l_lin == lin,
                      v.l_phys == phys)

    def well_formed(self, s: SymState) -> z3.BoolRef:
        """Domains: in each register a selector it can hold (reg_domains), D only with
        A, a last translation of a register or none."""
        v = self.vars_of(s)
        return z3.And(*[within(v.reg[r], self.domain[r]) for r in range(6)],
                      *[z3.Implies(d, a) for a, d in zip(v.acc, v.dirty, strict=True)],
                      z3.If(v.has_last, within(v.l_sreg, range(6)), z3.And(self._no_last(v))))

    def decode_state(self, model: z3.ModelRef, s: SymState) -> dict[str, object]:
        """The registers' selectors and the last translation: for a CTI picture."""
        v, num = self.vars_of(s), partial(model_int, model)
        last = ((num(v.l_sreg), num(v.l_off), num(v.l_lin), num(v.l_phys))
                if num(v.has_last) else None)
        return {"segs": [hex(num(r)) for r in v.reg], "last": last}

    # -- steps ----------------------------------------------------------------

    def fresh_step(self, tag: str) -> SymStep:
        """A step of fresh z3 constants: which operation, its arguments, its outcome."""
        made = {f.name: (z3.Bool if f.name in ("write", "none") else z3.Int)(f"{tag}.{f.name}")
                for f in fields(SegStepVars)}
        sv = SegStepVars(**made)
        sel = Cases.over(sv.selector, SELECTORS)
        return SymStep(
            is_op={name: sv.op == j for j, name in enumerate(OPS)},
            args={"load_segment": {"sreg": sv.sreg, "selector": sel},
                  "load_ss": {"selector": sel},
                  "far_jump": {"selector": sel, "offset": sv.offset},
                  "far_call": {"selector": sel, "offset": sv.offset},
                  "linear": {"sreg": sv.sreg, "offset": sv.offset, "size": sv.size,
                             "write": sv.write},
                  "translate": {"sreg": sv.sreg, "offset": sv.offset, "write": sv.write}},
            results={"load_segment": None, "load_ss": None, "far_jump": None, "far_call": None,
                     "linear": sv.result, "translate": SymOptional(sv.none, sv.result)},
            raised=sv.exc != 0,
            variables=tuple(made[f.name] for f in fields(SegStepVars)),
            domains={"load_segment": {"selector": SELECTORS},
                     "load_ss": {"selector": SELECTORS},
                     "far_jump": {"selector": SELECTORS}, "far_call": {"selector": SELECTORS},
                     "linear": {"sreg": SREG_ARGS, "size": SIZES},
                     "translate": {"sreg": SREG_ARGS}},
            raised_as={name: sv.exc == j for j, name in enumerate(EXC) if j})

    def step_vars(self, t: SymStep) -> SegStepVars:
        """The constants behind a step made by `fresh_step`."""
        return SegStepVars(*t.variables)  # type: ignore[arg-type]

    def decode_step(self, model: z3.ModelRef, t: SymStep) -> ConcreteStep:
        """The operation t performed in `model`, as a trace records it."""
        sv, num = self.step_vars(t), partial(model_int, model)
        op = OPS[num(sv.op)]
        raised = EXC[num(sv.exc)] or None
        args = {"load_segment": (sv.sreg, sv.selector), "load_ss": (sv.selector,),
                "far_jump": (sv.selector, sv.offset), "far_call": (sv.selector, sv.offset),
                "linear": (sv.sreg, sv.offset, sv.size, sv.write),
                "translate": (sv.sreg, sv.offset, sv.write)}[op]
        result = None
        if raised is None and (op == "linear" or op == "translate" and not num(sv.none)):
            result = num(sv.result)
        return ConcreteStep(op, tuple(num(a) for a in args), result, raised)

    def coverage_goals(self, states: Sequence[SymState], steps: Sequence[SymStep]
                       ) -> list[z3.BoolRef]:
        """Goals for solver-generated traces beyond the action premises: the last step
        raises each exception its operation may raise (base.raising_goals)."""
        return raising_goals(self.vocabulary, steps[-1])

    # -- transitions ----------------------------------------------------------

    def trans(self, s: SymState, t: SymStep, s2: SymState) -> z3.BoolRef:
        """Step t takes s to s2: one operation ran, as the reference runs it; the
        arguments it does not take, and results that mean nothing, are pinned."""
        sv = self.step_vars(t)
        v, v2 = self.vars_of(s), self.vars_of(s2)
        takes = {"load_segment": ("sreg", "selector"), "load_ss": ("selector",),
                 "far_jump": ("selector", "offset"), "far_call": ("selector", "offset"),
                 "linear": ("sreg", "offset", "size", "write"),
                 "translate": ("sreg", "offset", "write")}
        pins = []
        for j, op in enumerate(OPS):
            unused = [getattr(sv, a) == 0 for a in ("sreg", "selector", "offset", "size")
                      if a not in takes[op]]
            if "write" not in takes[op]:
                unused.append(z3.Not(sv.write))
            if op not in ("linear", "translate"):
                unused += [sv.result == 0, z3.Not(sv.none)]
            pins.append(z3.Implies(sv.op == j, z3.And(unused)))
        body = [self.load_segment(v, sv, v2), self.load_ss(v, sv, v2),
                self.far_jump(v, sv, v2), self.far_jump(v, sv, v2),
                self.linear(v, sv, v2), self.translate(v, sv, v2)]
        return z3.And(within(sv.op, range(len(OPS))), within(sv.exc, range(len(EXC))),
                      within(sv.selector, SELECTORS), *pins,
                      *[z3.Implies(sv.op == j, b) for j, b in enumerate(body)])

    def _next(self, v: SegVars, v2: SegVars, regs: Mapping[int, object] | None = None,
              last: tuple[object, ...] | None = None,
              pages: tuple[Sequence[object], Sequence[object]] | None = None
              ) -> list[z3.BoolRef]:
        """s2 is s with the registers `regs`, the last translation `last` (sreg,
        offset, linear, phys) and the pages' A and D bits `pages` changed."""
        regs = regs or {}
        out = [v2.reg[r] == regs.get(r, v.reg[r]) for r in range(6)]
        acc, dirty = pages if pages is not None else (v.acc, v.dirty)
        out += [a2 == a for a2, a in zip(v2.acc, acc, strict=True)]
        out += [d2 == d for d2, d in zip(v2.dirty, dirty, strict=True)]
        if last is None:
            out += [v2.has_last == v.has_last, v2.l_sreg == v.l_sreg, v2.l_off == v.l_off,
                    v2.l_lin == v.l_lin, v2.l_phys == v.l_phys]
        else:
            out += [v2.has_last, *[x == y for x, y in zip(
                (v2.l_sreg, v2.l_off, v2.l_lin, v2.l_phys), last, strict=True)]]
        return out

    @staticmethod
    def _by_selector(term: z3.ArithRef, value: object) -> z3.ArithRef:
        """value(sel) for the selector `term` holds, as an If chain over SELECTORS."""
        out: z3.ArithRef = z3.IntVal(0)
        for sel in SELECTORS:
            out = z3.If(term == sel, value(sel), out)  # type: ignore[operator]
        return out

    def load_segment(self, v: SegVars, sv: SegStepVars, v2: SegVars) -> z3.BoolRef:
        """mov selector, sreg for ES, DS, FS, GS (ValueError for another register)."""
        ok_reg = within(sv.sreg, LOADABLE)
        exc = z3.If(ok_reg, self._by_selector(sv.selector, self.load_fault), VALUE)
        regs = {r: z3.If(z3.And(sv.sreg == r, sv.exc == 0), sv.selector, v.reg[r])
                for r in LOADABLE}
        return z3.And(within(sv.sreg, SREG_ARGS), sv.exc == exc, *self._next(v, v2, regs))

    def load_ss(self, v: SegVars, sv: SegStepVars, v2: SegVars) -> z3.BoolRef:
        """mov selector, ss."""
        exc = self._by_selector(sv.selector, self.ss_fault)
        regs = {SS: z3.If(sv.exc == 0, sv.selector, v.reg[SS])}
        return z3.And(sv.exc == exc, *self._next(v, v2, regs))

    def far_jump(self, v: SegVars, sv: SegStepVars, v2: SegVars) -> z3.BoolRef:
        """ljmp/lcall selector:offset straight to code: the privilege checks, present,
        the offset within the limit; CS then holds the selector with RPL = CPL."""
        cases = []
        for sel in SELECTORS:
            fault, d = self.far_fault(sel)
            exc = fault if fault or d is None else z3.If(self.inside(d, sv.offset, 1), 0, GP)
            cases.append(z3.And(sv.selector == sel, sv.exc == exc))
        regs = {CS: z3.If(sv.exc == 0, self._by_selector(
            sv.selector, lambda sel: sel & ~3 | self.cpl), v.reg[CS])}
        return z3.And(sv.offset >= 0, z3.Or(cases), *self._next(v, v2, regs))

    def _use(self, v: SegVars, sv: SegStepVars, size: z3.ArithRef | int
             ) -> list[tuple[z3.BoolRef, z3.ArithRef | int, z3.ArithRef]]:
        """(the register is sreg and holds a selector of this group, what the use of
        offset raises, the linear address) for each register and descriptor."""
        out = []
        for r in range(6):
            trap = SSF if r == SS else GP
            for d, sels in self.groups.items():
                sels = [x for x in sels if x in self.domain[r]]
                if not sels:
                    continue
                held = z3.And(sv.sreg == r, z3.Or([v.reg[r] == x for x in sels]))
                if d is None:
                    out.append((held, trap, z3.IntVal(0)))
                    continue
                bad_type = z3.Or(z3.And(sv.write, z3.BoolVal(bool(d.is_code or not d.type & 2))),
                                 z3.And(z3.Not(sv.write), z3.BoolVal(
                                     bool(r != CS and d.is_code and not d.type & 2))))
                exc = z3.If(bad_type, trap, z3.If(self.inside(d, sv.offset, size), 0, trap))
                lin = d.base + sv.offset
                out.append((held, exc, z3.If(lin >= TOP, lin - TOP, lin)))
        return out

    def linear(self, v: SegVars, sv: SegStepVars, v2: SegVars) -> z3.BoolRef:
        """The linear address of size bytes at sreg:offset, after the checks on use."""
        bad = z3.Or(sv.sreg < 0, sv.sreg > 5, sv.offset < 0, sv.size < 1)
        cases = [z3.And(held, sv.exc == exc, z3.If(sv.exc == 0, z3.And(
            sv.result == lin, *self._next(v, v2, last=(sv.sreg, sv.offset, lin, -1))),
            z3.And(sv.result == 0, *self._next(v, v2))))
            for held, exc, lin in self._use(v, sv, sv.size)]
        return z3.And(within(sv.sreg, SREG_ARGS), within(sv.size, SIZES), z3.Not(sv.none),
                      z3.If(bad, z3.And(sv.exc == VALUE, sv.result == 0, *self._next(v, v2)),
                            z3.Or(cases)))

    def translate(self, v: SegVars, sv: SegStepVars, v2: SegVars) -> z3.BoolRef:
        """sreg:offset -> linear (the checks on use) -> physical through the page table."""
        bad = z3.Or(sv.sreg < 0, sv.sreg > 5, sv.offset < 0)
        cases = [z3.And(held, sv.exc == exc, z3.If(sv.exc == 0, self._walk(v, sv, v2, lin),
                                                   z3.And(sv.result == 0, z3.Not(sv.none),
                                                          *self._next(v, v2))))
                 for held, exc, lin in self._use(v, sv, 1)]
        return z3.And(within(sv.sreg, SREG_ARGS),
                      z3.If(bad, z3.And(sv.exc == VALUE, sv.result == 0, z3.Not(sv.none),
                                        *self._next(v, v2)), z3.Or(cases)))

    def _walk(self, v: SegVars, sv: SegStepVars, v2: SegVars, lin: z3.ArithRef
              ) -> z3.BoolRef:
        """PageTable.translate of `lin`: the leaf that maps its page, if its rights
        allow the access (a user access at CPL 3), sets A (and D for a write)."""
        user = self.cpl == 3
        hits, acc, dirty = [], [], []
        phys: z3.ArithRef = z3.IntVal(0)
        for m, (va, pfn, flags) in enumerate(self.maps):
            rights = z3.BoolVal(not user or bool(flags & _PAGE_USER))
            hit = z3.And(va <= lin, lin < va + PAGE_SIZE, rights,
                         z3.Or(z3.Not(sv.write), z3.BoolVal(bool(flags & _PAGE_RW))))
            hits.append(hit)
            phys = z3.If(hit, pfn * PAGE_SIZE + lin - va, phys)
            acc.append(z3.Or(v.acc[m], hit))
            dirty.append(z3.Or(v.dirty[m], z3.And(hit, sv.write)))
        none = z3.Not(z3.Or(hits))
        return z3.And(sv.none == none, sv.result == z3.If(none, 0, phys),
                      *self._next(v, v2, last=(sv.sreg, sv.offset, lin, z3.If(none, -1, phys)),
                                  pages=(acc, dirty)))
