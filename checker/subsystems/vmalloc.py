"""vmalloc (Vmalloc over the kernel page table) as the engines see it.

Setups: the i386 layout of a machine with 64 MiB, 16 MiB or 1 GiB of RAM (the
last with high memory), the full vmalloc range or a window of a few pages
(so that the range runs out), and a page allocator of 64 or 10 pages (so that
pages run out). The checker hands the submission `pages` (an audited buddy
allocator) and the kernel page table (a `KernelPageTable`, model/vmalloc.py:
map ORs in _PAGE_PRESENT, unmap does not flush, flush_tlb_kernel_range does),
both living in the checker's process; table pages come from the same buddy
allocator as the backing pages. After every vmalloc that returns an address,
the checker writes to each page of the size asked through that page table,
as a caller would, which fills the TLB: a vfree that does not flush leaves
entries behind that the spec sees.

Steps: vmalloc of sizes around page boundaries (0 and too big included),
vfree of a live area, of NULL, of an address one page into an area or
unaligned, of a freed area, and a burst that frees an area and allocates the
same size again (the first gap comes back).

What a spec sees of a submission: `areas` from its areas(); `held`, `ptes`,
`tlb` and `pages_free` are the checker's own records of the allocator and the
page table it handed over. No reference follows a submission's choices: which
gap an area takes is its choice ([VMALLOC-CHOICE]), and the library states
everything the contract fixes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from mmcheck.checker import coverage
from mmcheck.checker.explain import fields_in
from mmcheck.checker.formats.pictures.vmalloc import render_svg  # noqa: F401 (HTML picture)
from mmcheck.checker.subsystems._vm import (
    construct,
    convert,
    pick,
    plain_int,
    raises_of,
    returns_of,
    stderr_tail,
)
from mmcheck.checker.subsystems.declared.vmalloc import BAD_SIZES, DECLARATION, SIZES
from mmcheck.checker.systems import ModelSystem, Problem, SandboxedSystem
from mmcheck.checker.trace import Step
from mmcheck.model.buddy import BuddyAllocator
from mmcheck.model.layout import MiB, i386_layout
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.model.vmalloc import (
    VOCABULARY,
    Area,
    KernelPageTable,
    Vmalloc,
    touch,
    vmalloc_snapshot,
)

P = PAGE_SIZE
SUBMISSION_VIEW = {
    "vmalloc_start": "the start its constructor was given",
    "vmalloc_end": "the end its constructor was given",
    "page_offset": "the i386 layout of the setup",
    "high_memory": "the i386 layout of the setup",
    "areas": "its areas()",
    "held": "the pages it holds from the checker's `pages`",
    "ptes": "the checker's kernel page table, which it maps through",
    "tlb": "the checker's kernel page table's TLB (filled by the checker's writes)",
    "pages_free": "the checker's page allocator",
}
ALLOWED = raises_of(VOCABULARY)
RETURNS = returns_of(VOCABULARY)
KERNEL_PT_METHODS = ("map", "unmap", "flush_tlb_kernel_range")
TOUCH_LIMIT = 16 * P  # the checker writes to at most this much of a new area


def setups(max_pages: int = 5000) -> st.SearchStrategy[dict[str, int]]:
    """RAM (MiB) of the i386 machine, pages of the page allocator, vmalloc window (pages)."""
    return st.fixed_dictionaries({
        "ram_mib": st.sampled_from([64, 16, 1024]),
        "npages": st.sampled_from([n for n in (64, 10) if n <= max_pages] or [max_pages]),
        "window": st.sampled_from([0, 8]),
    })


def vmalloc_range(setup: Mapping[str, int]) -> tuple[int, int, Any]:
    """[start, end) handed to the Vmalloc, and the layout: VMALLOC_START and END of the
    setup's machine, or the first `window` pages of that range."""
    layout = i386_layout(setup["ram_mib"] * MiB)
    start = layout.vmalloc_start
    end = start + setup["window"] * P if setup["window"] else layout.vmalloc_end
    return start, end, layout


class View:
    """What the step generator knows: the live areas (start, size asked), freed ones."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.start = vmalloc_range(setup)[0]
        self.live: dict[int, int] = {}
        self.freed: list[int] = []

    def record(self, step: Step) -> None:
        if step.raised is not None:
            return
        if step.op == "vmalloc" and plain_int(step.result) and step.result:
            self.live[step.result] = step.args[0]
        elif step.op == "vfree" and step.args[0] in self.live:
            del self.live[step.args[0]]
            self.freed = (self.freed + [step.args[0]])[-4:]


def draw_steps(data: st.DataObject, view: View) -> list[tuple[str, tuple[int, ...]]]:
    """The next operation(s): a kind, then one pick (two draws per step, see _vm.pick)."""
    kinds = ["alloc", "free_realloc", "free", "bad_free", "alloc", "bad_size"]
    if not view.live:
        kinds = ["alloc", "alloc", "bad_free", "bad_size"]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    live = sorted(view.live)
    if kind == "alloc":
        (size,) = pick(data, "size", SIZES)
        return [("vmalloc", (size,))]
    if kind == "bad_size":
        (size,) = pick(data, "size", BAD_SIZES)
        return [("vmalloc", (size,))]
    if kind == "free":
        (addr,) = pick(data, "addr", live)
        return [("vfree", (addr,))]
    if kind == "free_realloc":
        (addr,) = pick(data, "addr", live)
        return [("vfree", (addr,)), ("vmalloc", (view.live[addr],))]
    near = [a + d for a in live for d in (P, 1)]
    (addr,) = pick(data, "addr", [*near, 0, *view.freed, view.start + 64 * P])
    return [("vfree", (addr,))]


# ---------------------------------------------------------------- coverage

COVERAGE = (
    "operation: vmalloc", "operation: vfree",
    "outcome: vmalloc -> returned", "outcome: vmalloc -> none", "outcome: vmalloc -> ValueError",
    "outcome: vfree -> none", "outcome: vfree -> ValueError",
    "boundary: vmalloc size 0", "boundary: vmalloc size negative",
    "boundary: vmalloc size whole pages", "boundary: vmalloc size unaligned",
    "boundary: vmalloc size more than the free pages", "boundary: vmalloc into a gap",
    "boundary: vfree of a live area", "boundary: vfree of NULL",
    "boundary: vfree of an address inside an area",
    "boundary: vfree of an address not live",
)


def classify_step(step: Step, old: Mapping[str, Any], new: Mapping[str, Any],
                  setup: Mapping[str, int]) -> list[str]:
    """The outcome; vmalloc's size against pages and the memory left, an area placed
    below another (a gap reused); what vfree's address is."""
    out = [coverage.outcome(step)]
    areas = list(old["areas"])
    if step.op == "vmalloc":
        size = step.args[0]
        out.append("boundary: vmalloc size " + (
            "negative" if size < 0 else "0" if size == 0 else
            "whole pages" if size % P == 0 else "unaligned"))
        if 0 <= old["pages_free"] < -(-size // P):
            out.append("boundary: vmalloc size more than the free pages")
        if plain_int(step.result) and any(a.addr > step.result for a in areas):
            out.append("boundary: vmalloc into a gap")
        return out
    addr = step.args[0]
    out.append("boundary: vfree of " + (
        "NULL" if addr == 0 else "a live area" if any(a.addr == addr for a in areas) else
        "an address inside an area" if any(a.addr < addr < a.addr + a.size for a in areas) else
        "an address not live"))
    return out


# ---------------------------------------------------------------- systems


def _machine(setup: Mapping[str, int]) -> tuple[BuddyAllocator, Any, KernelPageTable, Any]:
    """The buddy allocator, the audited `pages`, the kernel page table (its tables from
    the same buddy allocator) and the layout of a setup."""
    from mmcheck.checker.sandbox.pages import AuditedPages

    buddy = BuddyAllocator(setup["npages"])
    kpt = KernelPageTable(AuditedPages(buddy))
    return buddy, AuditedPages(buddy), kpt, vmalloc_range(setup)[2]


def _touch(kpt: KernelPageTable, addr: object, size: int) -> None:
    """The caller's first write to a new area: each page of the size asked."""
    if plain_int(addr) and addr > 0:
        touch(kpt, addr, min(size, TOUCH_LIMIT))


class ReferenceSystem(ModelSystem):
    """The reference Vmalloc (2.6 first fit) on an audited buddy allocator."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.buddy, pages, kpt, layout = _machine(setup)
        start, end, _ = vmalloc_range(setup)
        self.model = Vmalloc(start, end, pages, kpt, layout=layout)

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        try:
            result = getattr(self.model, op)(*args)
        except ValueError:
            return Step(op, args, None, "ValueError"), None
        if op == "vmalloc":
            _touch(self.model.pgtable, result, args[0])
        return Step(op, args, result, None), None

    def snapshot(self) -> Mapping[str, Any]:
        return self.model.snapshot(self.buddy.free_pages)


class SubmissionSystem(SandboxedSystem):
    """A submission's Vmalloc in its sandbox, over the checker's pages and page table."""

    def __init__(self, sub: Any, setup: Mapping[str, int]) -> None:
        self.sub = sub
        self.buddy, self.pages, self.kpt, self.layout = _machine(setup)
        self.start, self.end, _ = vmalloc_range(setup)
        self.areas: list[Area] = []
        self.handle = None
        self.handle = construct(sub, DECLARATION, self.start, self.end,
                                sub.export(self.pages),
                                sub.export(self.kpt, KERNEL_PT_METHODS, "kpt"))

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        outs = self.sub.call_many([(self.handle, op, args), (self.handle, "areas", ())])
        got = convert(op, args, outs[0], ALLOWED[op], RETURNS[op])
        if got.problem is not None:
            return got.step, got.problem
        problem = self._observe(outs[1])
        if problem is not None:
            return got.step, problem
        if op == "vmalloc" and got.step.raised is None:
            _touch(self.kpt, got.step.result, args[0])
        return got.step, None

    def _observe(self, out: Any) -> Problem | None:
        """areas(), checked for shape: a list of (addr, size) pairs of ints."""
        if out.crashed:
            kind = "timeout" if out.status.value == "timeout" else "crash"
            return Problem(kind, out.detail, stderr_tail(out.stderr))
        v = out.value if out.returned else None
        if not (isinstance(v, (list, tuple)) and all(
                isinstance(a, (list, tuple)) and len(a) == 2 and all(plain_int(x) for x in a)
                for a in v)):
            return Problem("protocol", f"areas() {out.describe()}",
                           ("the contract says: a list of (addr, size) pairs",))
        self.areas = [Area(a, s) for a, s in v]
        return None

    def snapshot(self) -> Mapping[str, Any]:
        held = sorted(pfn + i for pfn, order in self.pages.held.items()
                      for i in range(1 << order))
        return vmalloc_snapshot(self.start, self.end, self.layout, list(self.areas), held,
                                self.kpt, self.buddy.free_pages)


# ---------------------------------------------------------------- pictures


def render_state(state: Mapping[str, Any], named: Sequence[Any] = (),
                 limit: int = 12) -> list[str]:
    """The vm_struct list as a strip of the vmalloc range: each area's pages (their
    frames) and its guard page, the gaps between, then the stale TLB entries."""
    start, end = state["vmalloc_start"], state["vmalloc_end"]
    ptes = {p.va: p.pfn for p in state["ptes"]}
    highlight = fields_in(named, "addr", "va")
    lines = [f"direct map [{state['page_offset']:#x}, {state['high_memory']:#x})  "
             f"8 MiB gap  vmalloc [{start:#x}, {end:#x})"]
    areas = list(state["areas"])
    lines.append(f"vmlist ({len(areas)} area(s)):" if areas else "vmlist: empty")
    at = start
    for a in areas[:limit]:
        if a.addr > at:
            lines.append(f"  {at:#010x}  .. {(a.addr - at) // P} free page(s)")
        mark = "  <-" if a.addr in highlight else ""
        cells = " ".join(f"[{ptes[va]:#x}]" if va in ptes else "[--]"
                         for va in range(a.addr, a.addr + a.size - P, P)[:8])
        guard = a.addr + a.size - P
        g = f"[G:{ptes[guard]:#x}!]" if guard in ptes else "[G]"
        lines.append(f"  {a.addr:#010x}  {cells} {g}  size {a.size // P} page(s){mark}")
        at = max(at, a.addr + a.size)
    if len(areas) > limit:
        lines.append(f"  ... {len(areas) - limit} more")
    stray = [p for p in state["ptes"] if not any(a.addr <= p.va < a.addr + a.size - P
                                                  for a in areas)]
    lines.extend(f"  stray PTE {p.va:#010x} -> pfn {p.pfn:#x} (in no area)" for p in stray[:4])
    stale = [t for t in state["tlb"] if ptes.get(t.va) != t.pfn]
    lines.extend(f"  stale TLB {t.va:#010x} -> pfn {t.pfn:#x}" for t in stale[:4])
    return lines


# ---------------------------------------------------------------- symbolic


def symbolic_system(npages: int, mutation: str | None = None):  # noqa: ANN201
    """The Z3 encoding of a Vmalloc over a window of `npages` pages (at least 3) and a
    page allocator of about half as many frames, so that both the range and the
    frames run out (checker/symbolic/vmalloc.py). Returns (system, setup, integer
    universe, exponent bound)."""
    from mmcheck.checker.symbolic.vmalloc import SymbolicVmalloc

    window = max(npages, 3)
    system = SymbolicVmalloc(window, window // 2 + 1, mutation)
    return system, dict(system.setup), range(0, system.n + 1), 24
