"""x86 segmentation (SegmentUnit) as the engines see it.

Setups: CPL 0 (the kernel, `user` 0) or CPL 3 (a user task as start_thread
leaves it),
over one GDT: Linux's per-CPU entries (__KERNEL_CS/DS, __USER_CS/DS at 12..15)
and ten test descriptors the checker adds at 16..25 (`TEST_GDT`): a small
byte-granular data segment based at 0x08048000, a page-granular one whose
limit ends at 0x08048fff (where a limit read as bytes goes wrong), conforming
code, not-present data and code, execute-only code, read-only data, an
expand-down stack, a TSS, a data segment based at 0x08000000. The MMU is a
2-level page table (i386 without PAE) of the checker's, with the documents'
page 0x08048000 (user, read-only), its writable neighbour, a low user page,
a kernel page at PAGE_OFFSET and the page that base 0x08000000 reaches; it is
handed to the submission as `mmu` with one method, translate(va, write,
user, exec) -> int | None.

Steps: loads of DS/ES/FS/GS and SS with every selector of the declaration
(null, each RPL, each test descriptor, past the GDT, TI=1), far jumps and
calls, then uses (linear, translate) of the register just loaded at offsets
around the limits and pages, the seed example 0x08048568 among them.

What a spec sees of a submission: `segs` from its selector(sreg), `last` from
what its linear/translate returned (the linear address of a translate is the
checker's base + offset); `cpl`, `gdt` and `maps` are the setup's. The
reference SegmentUnit (model/segment.py) takes every step beside it: there is
no choice in segmentation, so every result, exception class and error code
must be the reference's; a difference the spec does not flag is reported one
step later (see _vm.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from mmcheck.checker import coverage
from mmcheck.checker.formats.pictures.segment import render_svg  # noqa: F401 (HTML picture)
from mmcheck.checker.subsystems._vm import (
    Converted,
    Divergence,
    construct,
    convert,
    outcome_text,
    pick,
    plain_int,
    raises_of,
    returns_of,
    stderr_tail,
)
from mmcheck.checker.subsystems.declared.segment import (
    DECLARATION,
    LOADABLE,
    OFFSETS,
    SELECTORS,
    SREGS,
)
from mmcheck.checker.systems import ModelSystem, Problem, SandboxedSystem
from mmcheck.checker.trace import Step
from mmcheck.model.buddy import BuddyAllocator
from mmcheck.model.linux import _PAGE_PRESENT, _PAGE_RW, _PAGE_USER
from mmcheck.model.mmu import PageFault, PageTable
from mmcheck.model.segment import (
    GDT_ENTRY,
    SREG_NAMES,
    TRAP_CLASS,
    VOCABULARY,
    SegmentFault,
    SegmentUnit,
    Translation,
    desc_struct,
    linux_gdt,
    segment_snapshot,
)

SUBMISSION_VIEW = {
    "cpl": "its constructor's argument",
    "gdt": "the GDT its constructor was given",
    "segs": "its selector(sreg) for each of the six registers",
    "maps": "the checker's page table, handed to it as `mmu`",
    "last": "what its last successful linear()/translate() returned",
}
ALLOWED = raises_of(VOCABULARY)
RETURNS = returns_of(VOCABULARY)
P, RW, U = _PAGE_PRESENT, _PAGE_RW, _PAGE_USER
# index -> GDT_ENTRY(flags, base, limit): flags = access byte | AVL/L/D/G << 12.
TEST_GDT = {
    16: GDT_ENTRY(0x40F2, 0x08048000, 0xFFF),  # data DPL 3, bytes, base 0x08048000
    17: GDT_ENTRY(0xC0F2, 0, 0x08048),  # data DPL 3, G=1: offsets up to 0x08048fff
    18: GDT_ENTRY(0xC09E, 0, 0xFFFFF),  # conforming readable code, DPL 0
    19: GDT_ENTRY(0xC072, 0, 0xFFFFF),  # data DPL 3, not present
    20: GDT_ENTRY(0xC0F8, 0, 0xFFFFF),  # execute-only code, DPL 3
    21: GDT_ENTRY(0xC0F0, 0, 0xFFFFF),  # read-only data, DPL 3
    22: GDT_ENTRY(0x40F6, 0, 0xFFF),  # expand-down writable data, DPL 3: (0xfff, 4G)
    23: GDT_ENTRY(0x0089, 0x1000, 103),  # 32-bit TSS (a system descriptor)
    24: GDT_ENTRY(0xC092, 0x08000000, 0xFFFFF),  # data DPL 0, base 0x08000000
    25: GDT_ENTRY(0xC07A, 0, 0xFFFFF),  # code DPL 3, not present
}
# linear page -> (pfn, flags) in the checker's page table
MAPPINGS = {
    0x08048000: (0x1F2E3, P | U),  # the documents' page: user, read-only
    0x08049000: (0x1F2E4, P | U | RW),
    0x00001000: (0x10, P | U | RW),
    0xC0000000: (0x0, P | RW),  # the direct map's first page: supervisor only
    0x10048000: (0x20, P | RW),  # 0x08000000 + 0x08048000: base 24 reaches it
    0x10000000: (0x21, P | U | RW),  # the offset 0x10000000 under a flat segment
}


def checker_gdt() -> list[int]:
    """Linux's GDT with the checker's test descriptors at 16..25."""
    gdt = linux_gdt()
    for index, raw in TEST_GDT.items():
        gdt[index] = raw
    return gdt


def setups(max_pages: int = 5000) -> st.SearchStrategy[dict[str, int]]:
    """`user` 0: CPL 0, the kernel; 1: CPL 3, a user task (a flag, so that the
    minimiser, which lowers numbers, never makes a CPL Linux does not use)."""
    return st.fixed_dictionaries({"user": st.sampled_from([0, 1])})


def cpl_of(setup: Mapping[str, int]) -> int:
    """The CPL of a setup: 3 for a user task, 0 for the kernel."""
    return 3 if setup["user"] else 0


class View:
    """What the step generator knows: which register was loaded last."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.loaded = 3  # DS

    def record(self, step: Step) -> None:
        if step.op == "load_segment" and step.raised is None:
            self.loaded = step.args[0]


def draw_steps(data: st.DataObject, view: View) -> list[tuple[str, tuple[int, ...]]]:
    """The next operation(s): a kind, then one pick (see _vm.pick)."""
    kinds = ["load_use", "use", "jump", "ss", "translate", "load", "bad_use"]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    if kind == "load_use":
        # Load DS with a selector, then use it: a load that should have faulted
        # shows in what the use returns, a limit in what it allows.
        sel, offset, write = pick(data, "selector, offset, write", SELECTORS, OFFSETS, (0, 1))
        return [("load_segment", (3, sel)), ("linear", (3, offset, 1, write)),
                ("translate", (3, offset, write))]
    if kind == "use":
        sreg, offset, size, write = pick(data, "sreg, offset, size, write",
                                         (view.loaded, *SREGS), OFFSETS, (1, 4, 2), (0, 1))
        return [("linear", (sreg, offset, size, write))]
    if kind == "translate":
        sreg, offset, write = pick(data, "sreg, offset, write", (view.loaded, *SREGS),
                                   OFFSETS, (0, 1))
        return [("translate", (sreg, offset, write))]
    if kind == "jump":
        op, sel, offset = pick(data, "op, selector, offset", ("far_jump", "far_call"),
                               SELECTORS, OFFSETS)
        return [(op, (sel, offset)), ("linear", (1, offset, 1, 0))]
    if kind == "ss":
        (sel,) = pick(data, "selector", SELECTORS)
        return [("load_ss", (sel,)), ("linear", (2, 0xFFE, 2, 1))]
    if kind == "bad_use":
        # Arguments the contract refuses with ValueError.
        sreg, offset, size = pick(data, "sreg, offset, size", (6, 3), (0, -1), (1, 0))
        return [("linear", (sreg, offset, size, 0))]
    sreg, sel = pick(data, "sreg, selector", (*LOADABLE, 1, 2), SELECTORS)
    return [("load_segment", (sreg, sel))]


# ---------------------------------------------------------------- coverage

COVERAGE = (
    "operation: load_segment", "operation: load_ss", "operation: far_jump",
    "operation: far_call", "operation: linear", "operation: translate",
    *(f"outcome: load_segment -> {x}"
      for x in ("none", "GeneralProtection", "SegmentNotPresent", "ValueError")),
    *(f"outcome: load_ss -> {x}" for x in ("none", "GeneralProtection", "StackFault")),
    *(f"outcome: {op} -> {x}" for op in ("far_jump", "far_call")
      for x in ("none", "GeneralProtection", "SegmentNotPresent")),
    *(f"outcome: linear -> {x}"
      for x in ("returned", "GeneralProtection", "StackFault", "ValueError")),
    *(f"outcome: translate -> {x}" for x in ("returned", "none", "GeneralProtection")),
    "boundary: selector null", "boundary: selector with RPL above CPL",
    "boundary: selector in the LDT", "boundary: selector past the GDT",
    "boundary: use of a page-granular limit", "boundary: use of an expand-down segment",
    "boundary: use past the limit", "boundary: the documents' address 0x08048568",
)


def classify_step(step: Step, old: Mapping[str, Any], new: Mapping[str, Any],
                  setup: Mapping[str, int]) -> list[str]:
    """The outcome; a selector's RPL, table and index; a use's segment and limit."""
    out = [coverage.outcome(step)]
    cpl = old["cpl"]
    if step.op in ("load_segment", "load_ss", "far_jump", "far_call"):
        sel = step.args[1] if step.op == "load_segment" else step.args[0]
        out.extend(f"boundary: selector {what}" for what, holds in (
            ("null", sel >> 2 == 0), ("with RPL above CPL", sel & 3 > cpl),
            ("in the LDT", bool(sel & 4)),
            ("past the GDT", not sel & 4 and not any(d.index == sel >> 3 for d in old["gdt"])
             and sel >> 3 != 0)) if holds)
        return out
    sreg, offset = step.args[0], step.args[1]
    seg = next((s.selector for s in old["segs"] if s.sreg == sreg), 0)
    desc = next((d for d in old["gdt"] if d.index == seg >> 3 and not seg & 4), None)
    if desc is not None:
        limit = desc.limit_bytes
        if desc.g and limit < 0xFFFFFFFF:
            out.append("boundary: use of a page-granular limit")
        if desc.s and not desc.type & 8 and desc.type & 4:
            out.append("boundary: use of an expand-down segment")
        elif offset > limit:
            out.append("boundary: use past the limit")
    if offset == 0x08048568:
        out.append("boundary: the documents' address 0x08048568")
    return out


# ---------------------------------------------------------------- systems


def page_table() -> PageTable:
    """The checker's 2-level page table with MAPPINGS, its tables from a small buddy."""
    from mmcheck.checker.sandbox.pages import AuditedPages

    pt = PageTable(2, AuditedPages(BuddyAllocator(16)))
    for va, (pfn, flags) in MAPPINGS.items():
        pt.install(va, pfn, flags)
    return pt


class MmuPort:
    """The page table as a SegmentUnit submission gets it (`mmu`): translate(va,
    write, user, exec) -> the physical address, or None when paging faults."""

    def __init__(self, pt: PageTable) -> None:
        self.pt = pt

    def translate(self, va: int, write: bool, user: bool, exec: bool = False) -> int | None:
        try:
            return self.pt.translate(va, bool(write), bool(user), bool(exec))
        except PageFault:
            return None


def _reference_step(model: SegmentUnit, op: str, args: tuple[int, ...]
                    ) -> tuple[Step, int | None]:
    """One step of the reference, and the error code of a segment fault."""
    try:
        result = getattr(model, op)(*args)
    except SegmentFault as fault:
        return Step(op, args, None, TRAP_CLASS[fault.trap]), fault.error_code
    except ValueError:
        return Step(op, args, None, "ValueError"), None
    return Step(op, args, result, None), None


class ReferenceSystem(ModelSystem):
    """The reference SegmentUnit over the checker's GDT and page table."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.model = SegmentUnit(checker_gdt(), cpl_of(setup), page_table())

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        return _reference_step(self.model, op, args)[0], None


class SubmissionSystem(SandboxedSystem):
    """A submission's SegmentUnit in its sandbox, the reference taking every step beside it."""

    def __init__(self, sub: Any, setup: Mapping[str, int]) -> None:
        self.sub = sub
        self.cpl = cpl_of(setup)
        self.gdt = checker_gdt()
        self.pt = page_table()
        self.reference = SegmentUnit(checker_gdt(), self.cpl, page_table())
        self.divergence = Divergence()
        self.selectors = [self.reference.selector(s) for s in range(6)]
        self.last: list[Translation] = []
        self.handle = None
        self.handle = construct(sub, DECLARATION, list(self.gdt), self.cpl,
                                sub.export(MmuPort(self.pt), ("translate",), "mmu"))

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        held_back = self.divergence.due()
        calls = [(self.handle, op, args)] + [(self.handle, "selector", (s,)) for s in range(6)]
        outs = self.sub.call_many(calls)
        got = convert(op, args, outs[0], ALLOWED[op], RETURNS[op])
        if got.problem is not None:
            return got.step, got.problem
        problem = self._observe(outs)
        if problem is not None:
            return got.step, problem
        if held_back is not None:
            return got.step, held_back
        self._record_last(got.step)
        self._follow(got)
        return got.step, None

    def _observe(self, outs: list[Any]) -> Problem | None:
        """selector(sreg) for the six registers, checked for shape."""
        if len(outs) < 7 or outs[-1].crashed:
            last = outs[-1]
            kind = "timeout" if last.status.value == "timeout" else "crash"
            return Problem(kind, last.detail, stderr_tail(last.stderr))
        values = []
        for sreg, out in enumerate(outs[1:]):
            if not out.returned or not plain_int(out.value):
                return Problem("protocol", f"selector({sreg}) {out.describe()}",
                               ("the contract says: the 16-bit selector the register holds",))
            values.append(out.value)
        self.selectors = values
        return None

    def _record_last(self, step: Step) -> None:
        """`last` as the submission answered: linear's result, or translate's (its
        linear address the checker's base + offset)."""
        if step.raised is not None or step.op not in ("linear", "translate"):
            return
        sreg, offset = step.args[0], step.args[1]
        if step.op == "linear":
            self.last = [Translation(sreg, offset, step.result, -1)]
            return
        sel = self.selectors[sreg] if 0 <= sreg < 6 else 0
        raw = self.gdt[sel >> 3] if sel >> 3 < len(self.gdt) else 0
        base = desc_struct.from_u64(raw).base if raw else 0
        phys = -1 if step.result is None else step.result
        self.last = [Translation(sreg, offset, (base + offset) & 0xFFFFFFFF, phys)]

    def _follow(self, got: Converted) -> None:
        """The reference takes the same step; note any difference in result, exception
        class, error code or the registers."""
        step = got.step
        theirs, code = _reference_step(self.reference, step.op, step.args)
        mine = outcome_text(step, code=got.code if step.raised else None)
        want = outcome_text(theirs, code=code if theirs.raised else None)
        if step.raised in TRAP_CLASS.values() and got.code is None:
            mine = outcome_text(step)  # a fault class without .code: compare the class
            want = outcome_text(theirs)
        if mine != want:
            self.divergence.note(step, f"{mine}; the reference CPU {want}", ())
            return
        expected = [self.reference.selector(s) for s in range(6)]
        if self.selectors != expected:
            regs = ", ".join(f"{SREG_NAMES[s]}={v:#x}" for s, v in enumerate(expected))
            self.divergence.note(step, "left the segment registers "
                                 + ", ".join(f"{SREG_NAMES[s]}={v:#x}"
                                             for s, v in enumerate(self.selectors)),
                                 (f"the reference has {regs}",))

    def snapshot(self) -> Mapping[str, Any]:
        return segment_snapshot(self.cpl, self.reference.descriptors, list(self.selectors),
                                self.pt, list(self.last))


# ---------------------------------------------------------------- pictures


def render_state(state: Mapping[str, Any], named: Sequence[Any] = (),
                 limit: int = 6) -> list[str]:
    """The segment registers with their descriptors, then the last translation drawn
    as the documents draw it: selector -> descriptor base + offset -> linear ->
    PGD index | PT index | offset -> physical."""
    gdt = {d.index: d for d in state["gdt"]}
    lines = [f"CPL {state['cpl']}; segment registers:"]
    for seg in state["segs"]:
        d = gdt.get(seg.selector >> 3) if seg.selector & 4 == 0 else None
        what = ("null" if seg.selector >> 3 == 0 else "no descriptor" if d is None else
                f"GDT[{d.index}] base {d.base:#x} limit {d.limit_bytes:#x} "
                f"DPL {d.dpl} {'code' if d.type & 8 else 'data'}")
        lines.append(f"  {SREG_NAMES[seg.sreg]} = {seg.selector:#06x} (index "
                     f"{seg.selector >> 3}, TI {seg.selector >> 2 & 1}, RPL "
                     f"{seg.selector & 3}): {what}")
    for t in list(state["last"])[:1]:
        sel = next((s.selector for s in state["segs"] if s.sreg == t.sreg), 0)
        lines.append(f"last translation: {SREG_NAMES[t.sreg] if 0 <= t.sreg < 6 else t.sreg}"
                     f"({sel:#x}):{t.offset:#x}")
        lines.append(f"  -> linear {t.linear:#010x} = PGD {t.linear >> 22} | PT "
                     f"{t.linear >> 12 & 0x3FF} | offset {t.linear & 0xFFF:#x}")
        lines.append(f"  -> physical {t.phys:#x}" if t.phys >= 0
                     else "  -> physical: none (not translated, or paging faulted)")
    return lines


# ---------------------------------------------------------------- symbolic


def symbolic_system(npages: int, mutation: str | None = None):  # noqa: ANN201
    """The Z3 encoding of the SegmentUnit at CPL 3, a user task (checker/symbolic/
    segment.py). Segmentation has no memory size: `npages` is not used (the universe
    is the checker's GDT, its selectors and every offset). Returns (system, setup,
    integer universe, exponent bound)."""
    from mmcheck.checker.symbolic.segment import SymbolicSegment

    system = SymbolicSegment(3, mutation)
    return system, dict(system.setup), range(0, 512), 24
