"""The x86 page table (PageTable, with its TLB) as the engines see it.

Steps use addresses that share tables (neighbouring pages), that need new ones
at every level (2 MiB, 1 GiB, 512 GiB apart), the upper half of the canonical
space in 4- and 5-level mode, addresses the mode cannot translate
(non-canonical, above 4 GiB in 2- and 3-level mode), unaligned ones, pfns and
flags at and past what an entry holds, and translate with every user, write
and exec combination. Bursts map and use a page then unmap it and use it
again (a TLB left unflushed still answers), map without the U or RW bit and
access it as a user or a writer, and fill a table then empty it (the tables
given back). Setups run all four modes, some with so few pages that a map runs
out of table pages (MemoryError).

What a spec sees of a submission: `ptes` from its walk() at every address the
trace used, `table_pages` from its table_pages(), `tables` the pages it holds
from the `pages` allocator the checker hands it (an audited reference buddy
allocator in the checker's process), each with level 0, and `root` the first
page it took (-1 if none); `entries` and `tlb` are not visible ([] and []).
The reference PageTable follows along with
pages of its own (never short of them: when the submission's `pages` ran out,
its MemoryError is followed by not mapping) and compares results, PageFault
codes and walk(); a difference the spec does not flag is reported one step
later (see _vm.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from mmcheck.checker import coverage, decode
from mmcheck.checker.explain import fields_in
from mmcheck.checker.formats.pictures.pagetable import render_svg  # noqa: F401 (HTML picture)
from mmcheck.checker.subsystems import edges
from mmcheck.checker.subsystems._vm import (
    Converted,
    Divergence,
    construct,
    convert,
    pick,
    plain_int,
    raises_of,
    returns_of,
    stderr_tail,
)
from mmcheck.checker.subsystems.declared.pagetable import (
    DECLARATION,
    FLAGS,
    PFNS,
    PR,
    RW,
    URW,
    US,
    P,
    addresses,
)
from mmcheck.checker.systems import ModelSystem, Problem, SandboxedSystem
from mmcheck.checker.trace import Step
from mmcheck.model.buddy import BuddyAllocator
from mmcheck.model.linux import (
    _PAGE_NX,
)
from mmcheck.model.mmu import MODES, VOCABULARY, Mapped, PageFault, PageTable, Pte, Table

# Where a submission's value of each state name comes from (`mmcheck vocab pagetable`); a
# name not listed is the reference model's, which follows the submission's steps.
# Whether a submission shows a name at all is hidden_names() (checker/observable.py).
SUBMISSION_VIEW = {
    "levels": "its constructor's argument",
    "ptes": "its walk() at every address the trace used",
    "table_pages": "its table_pages()",
    "tables": "the pages it holds from the checker's allocator (level 0)",
    "root": "the first page it took from the allocator (-1 if none)",
    "entries": "always [] for a submission (its tables are not visible)",
    "tlb": "always [] for a submission (its TLB is not visible)",
    "mapped_ever": "every address its map() succeeded at in the trace",
}
ALLOWED = raises_of(VOCABULARY)
RETURNS = returns_of(VOCABULARY)


def setups(max_pages: int = 5000) -> st.SearchStrategy[dict[str, int]]:
    """All four modes; `npages` is what the `pages` allocator has for tables."""
    return st.fixed_dictionaries({
        "levels": st.sampled_from([4, 2, 3, 5]),
        "npages": st.sampled_from([n for n in (64, 4, 6, 9) if n <= max_pages] or [max_pages]),
    })


class View:
    """What the step generator knows: the mode, and which addresses it mapped."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.levels = setup["levels"]
        self.addresses = addresses(self.levels)
        self.mapped: dict[int, int] = {}

    def record(self, step: Step) -> None:
        if step.raised is not None:
            return
        if step.op == "map":
            self.mapped[step.args[0]] = step.args[1]
        elif step.op == "unmap":
            self.mapped.pop(step.args[0], None)


OFFSETS = (0, 0x568, P - 1)
ACCESSES = tuple((w, u, x) for w in (0, 1) for u in (0, 1) for x in (0, 1))  # write, user, exec
LIMITED = (PR | RW, PR | US, PR, PR | US | _PAGE_NX)


def draw_steps(data: st.DataObject, view: View) -> list[tuple[str, tuple[int, ...]]]:
    """The next operation(s): a kind, then one pick of its parameters (two draws per
    step, so that Hypothesis can delete steps when it shrinks: see _vm.pick)."""
    # The classic page-table bugs first (a missing rights check, a missing flush):
    # shrinking moves towards the first choices, so a short trace shows them.
    kinds = ["rights", "tlb", "map", "translate", "unmap", "fill_empty", "used", "edge"]
    if not view.mapped:
        kinds.remove("used")
    kind = data.draw(st.sampled_from(kinds), label="kind")
    vas = view.addresses
    if kind == "edge":
        return edges.pagetable_steps(data, view.levels, vas)
    if kind == "tlb":
        # Use a page, unmap it, use it again: only a flushed TLB faults the second time.
        access, offset, va, pfn = pick(data, "access, offset, va, pfn", ACCESSES, OFFSETS, vas,
                                       PFNS[:3])
        return [("map", (va, pfn, URW)), ("translate", (va + offset, *access)),
                ("unmap", (va,)), ("translate", (va + offset, *access))]
    if kind == "rights":
        # An entry without U, or RW, or with NX, then every access to it.
        limited, offset, va, pfn = pick(data, "flags, offset, va, pfn", LIMITED, OFFSETS, vas,
                                        PFNS[:3])
        return [("map", (va, pfn, limited))] + [
            ("translate", (va + offset, *access)) for access in ACCESSES]
    if kind == "map":
        va, pfn, flags = pick(data, "va, pfn, flags", vas, PFNS, FLAGS)
        return [("map", (va, pfn, flags))]
    if kind == "translate":
        access, offset, va = pick(data, "access, offset, va", ACCESSES, OFFSETS, vas)
        return [("translate", (va + offset, *access))]
    if kind == "unmap":
        (va,) = pick(data, "va", vas)
        return [("unmap", (va,))]
    if kind == "fill_empty":
        # Neighbours share the tables; unmapping all of them empties the tables.
        n, va, pfn, flags = pick(data, "n, va, pfn, flags", (2, 3, 4), vas, PFNS[:3], FLAGS[:5])
        pages = [va + i * P for i in range(n)]
        return [("map", (a, pfn, flags)) for a in pages] + [("unmap", (a,)) for a in pages]
    op, access, offset, at, flags = pick(data, "op, access, offset, mapped, flags",
                                         ("translate", "unmap", "map"), ACCESSES, OFFSETS,
                                         sorted(view.mapped), FLAGS[:5])
    if op == "translate":
        return [("translate", (at + offset, *access))]
    return [("unmap", (at,))] if op == "unmap" else [("map", (at, 1, flags))]


# ---------------------------------------------------------------- systems


def translatable(levels: int, va: int) -> bool:
    """Whether `levels`-level paging translates va (PageTable._check_va's rule)."""
    mode = MODES[levels]
    if not plain_int(va) or not 0 <= va < 1 << 64:
        return False
    if not mode.canonical:
        return va >> mode.va_bits == 0
    return (va >> (mode.va_bits - 1)) in (0, (1 << (65 - mode.va_bits)) - 1)


class _AmplePages:
    """Table pages for the reference when it follows a submission: never short."""

    def __init__(self) -> None:
        self.next = 1
        self.free: list[int] = []

    def alloc_pages(self, order: int) -> int | None:
        if self.free:
            return self.free.pop()
        self.next += 1
        return self.next - 1

    def free_pages(self, pfn: int, order: int) -> None:
        self.free.append(pfn)


class ReferenceSystem(ModelSystem):
    """The reference PageTable, its table pages from an audited buddy allocator."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        from mmcheck.checker.sandbox.pages import AuditedPages

        self.pages = AuditedPages(BuddyAllocator(setup["npages"]))
        self.model = PageTable(setup["levels"], self.pages)

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        try:
            result = getattr(self.model, op)(*args)
        except PageFault:
            return Step(op, args, None, "PageFault"), None
        except (ValueError, MemoryError) as err:
            return Step(op, args, None, type(err).__name__), None
        return Step(op, args, result, None), None


def hidden_names(sub: Any) -> frozenset[str]:
    """What no PageTable submission shows: its table entries and its TLB."""
    return frozenset({"entries", "tlb"})


class SubmissionSystem(SandboxedSystem):
    """A submission's PageTable in its sandbox, with the reference following it."""

    def __init__(self, sub: Any, setup: Mapping[str, int]) -> None:
        from mmcheck.checker.sandbox.pages import AuditedPages

        self.sub = sub
        self.levels = setup["levels"]
        self.pages = AuditedPages(BuddyAllocator(setup["npages"]))
        self.reference = PageTable(self.levels, _AmplePages())
        self.divergence = Divergence()
        self.tracked: list[int] = []
        self.ever: set[int] = set()
        self.ptes: list[Pte] = []
        self.table_pages = 0
        self.broken: Problem | None = None
        self.handle = None
        self.handle = construct(sub, DECLARATION, self.levels, sub.export(self.pages))
        taken = [e.pfn for e in self.pages.events if e.op == "alloc" and e.pfn is not None]
        self.root = taken[0] if taken else -1
        out = sub.call(self.handle, "table_pages")
        if not out.returned or not plain_int(out.value):
            self.broken = Problem("protocol", f"table_pages() {out.describe()}", ())
        else:
            self.table_pages = out.value

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        if self.broken is not None:
            return Step(op, args, None, "crash"), self.broken
        held_back = self.divergence.due()
        va = args[0] - args[0] % P if plain_int(args[0]) else None
        if va is not None and translatable(self.levels, va) and va not in self.tracked:
            self.tracked.append(va)
        refused = len(self.pages.refused())
        calls = [(self.handle, op, args), (self.handle, "table_pages", ())]
        calls += [(self.handle, "walk", (a,)) for a in self.tracked]
        outs = self.sub.call_many(calls)
        got = convert(op, args, outs[0], ALLOWED[op], RETURNS[op])
        if got.problem is not None:
            return got.step, got.problem
        problem = self._observe(outs)
        if problem is not None:
            return got.step, problem
        if held_back is not None:
            return got.step, held_back
        if len(self.pages.refused()) > refused:
            self.divergence.note(got.step, "gave back a page it did not hold",
                                 (self.pages.refused()[-1].error or "",))
        if op == "map" and got.step.raised is None:
            self.ever.add(args[0])
        self._follow(got, outs[0])
        return got.step, None

    def _observe(self, outs: list[Any]) -> Problem | None:
        """table_pages() and walk() at every tracked address, checked for shape."""
        if outs[-1].crashed:
            kind = "timeout" if outs[-1].status.value == "timeout" else "crash"
            return Problem(kind, outs[-1].detail, stderr_tail(outs[-1].stderr))
        tp = outs[1]
        if not tp.returned or not plain_int(tp.value):
            return Problem("protocol", f"table_pages() {tp.describe()}", ())
        self.table_pages = tp.value
        ptes = []
        for va, out in zip(self.tracked, outs[2:], strict=False):
            if not out.returned:
                return Problem("protocol", f"walk({va:#x}) {out.describe()}",
                               ("walk() of a translatable address returns None or (pfn, flags)",))
            v = out.value
            if v is None:
                continue
            if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(plain_int(x) for x in v)):
                return Problem("protocol", f"walk({va:#x}) returned {v!r:.100}",
                               ("the contract says: None or (pfn, flags)",))
            pfn, flags = v
            ptes.append(Pte(va, pfn, flags, bool(flags & PR), bool(flags & US), bool(flags & RW)))
        self.ptes = sorted(ptes)
        return None

    def _follow(self, got: Converted, out: Any) -> None:
        """The reference takes the same step; note any difference in what the contract fixes."""
        step, ref = got.step, self.reference
        if step.op == "map" and step.raised == "MemoryError":
            if any(c.method == "alloc_pages" and c.value is None and c.error is None
                   for c in out.callbacks):
                return  # `pages` ran out: a legal MemoryError, and nothing was mapped
            self.divergence.note(step, "raised MemoryError, but `pages` never refused it a page",
                                 ())
            return
        try:
            mine = _outcome(step, got.code)
            theirs = _outcome(Step(step.op, step.args, getattr(ref, step.op)(*step.args), None))
        except PageFault as fault:
            theirs = f"raised PageFault({decode.pf_code_text(fault.code)})"
        except (ValueError, MemoryError) as err:
            theirs = f"raised {type(err).__name__}"
        if mine != theirs:
            self.divergence.note(step, f"{mine}; Linux (the reference MMU) {theirs}", ())
            return
        for va in self.tracked:
            want = ref.walk(va)
            have = next(((p.pfn, p.flags) for p in self.ptes if p.va == va), None)
            if want != have:
                self.divergence.note(step, f"left walk({va:#x}) = {_walk_text(have)}; the "
                                           f"reference has {_walk_text(want)}", ())
                return

    def snapshot(self) -> Mapping[str, Any]:
        tables = frozenset(Table(pfn + i, 0) for pfn, order in self.pages.held.items()
                           for i in range(1 << order))
        return {"levels": self.levels, "root": self.root, "table_pages": self.table_pages,
                "ptes": list(self.ptes), "tables": tables, "entries": [], "tlb": [],
                "mapped_ever": [Mapped(va) for va in sorted(self.ever)]}



def _outcome(step: Step, code: int | None = None) -> str:
    if step.raised == "PageFault":
        return (f"raised PageFault({decode.pf_code_text(code)})" if code is not None
                else "raised PageFault")
    if step.raised is not None:
        return f"raised {step.raised}"
    return "returned none" if step.result is None else f"returned {step.result:#x}"


def _walk_text(w: tuple[int, int] | None) -> str:
    return "none" if w is None else f"(pfn {w[0]:#x}, flags {decode.pte_flags_text(w[1])})"


# ---------------------------------------------------------------- pictures

def render_state(state: Mapping[str, Any], named: Sequence[Any] = (),
                 limit: int = 24) -> list[str]:
    """The leaf entries as walk() shows them, the table pages, and the TLB."""
    ptes, tlb = list(state["ptes"]), list(state["tlb"])
    highlight = fields_in(named, "va")
    lines = [f"{state['levels']}-level paging, {state['table_pages']} table page(s), "
             f"{len(list(state['tables']))} held"]
    lines.append("leaf entries (walk):" if ptes else "no leaf entries")
    for p in ptes[:limit]:
        mark = "  <-" if highlight and p.va in highlight else ""  # named by the explanation
        lines.append(f"  {p.va:#018x} -> pfn {p.pfn:#x}  {decode.pte_flags_text(p.flags)}{mark}")
    if len(ptes) > limit:
        lines.append(f"  ... {len(ptes) - limit} more")
    if tlb:
        lines.append("TLB:")
        lines.extend(f"  {t.va:#018x} -> pfn {t.pfn:#x}  {decode.pte_flags_text(t.flags)}"
                     for t in tlb[:8])
    return lines


# ---------------------------------------------------------------- contract coverage

# The classes the contract (docs/contract.md) names.
COVERAGE = (
    "operation: map", "operation: unmap", "operation: translate",
    "outcome: map -> none", "outcome: map -> ValueError", "outcome: map -> MemoryError",
    "outcome: unmap -> returned", "outcome: unmap -> none", "outcome: unmap -> ValueError",
    "outcome: translate -> returned", "outcome: translate -> PageFault (not present)",
    "outcome: translate -> PageFault (protection)",
    "boundary: map va unaligned", "boundary: map va upper half",
    *(f"boundary: {op} va not translatable (non-canonical or too high)"
      for op in ("map", "unmap", "translate")),
    "boundary: unmap va unaligned",
    "boundary: map pfn too big for an entry", "boundary: map pfn the largest an entry holds",
    "boundary: map pfn zero", "boundary: map flags beyond bits 0-11",
    "boundary: map flags with NX", "boundary: map flags with NX in 2-level mode",
    "boundary: map over a mapped page", "boundary: unmap of a page never mapped",
    *(f"boundary: translate access write={w} user={u} exec={x}"
      for w in (0, 1) for u in (0, 1) for x in (0, 1)),
    *(f"boundary: {k}-level paging" for k in (2, 3, 4, 5)), "boundary: few table pages",
)


def classify_setup(setup: Mapping[str, int]) -> list[str]:
    """The paging mode; few pages for tables."""
    out = [f"boundary: {setup['levels']}-level paging"]
    if setup["npages"] < 16:
        out.append("boundary: few table pages")
    return out


def _va_classes(va: int, levels: int) -> list[str]:
    """Unaligned, not translatable in the mode, in the upper half."""
    out = []
    if va % P:
        out.append("unaligned")
    if not translatable(levels, va - va % P):
        out.append("not translatable (non-canonical or too high)")
    elif va >= 1 << 63:
        out.append("upper half")
    return out


def classify_step(step: Step, old: Mapping[str, Any], new: Mapping[str, Any],
                  setup: Mapping[str, int]) -> list[str]:
    """The outcome, the address's classes, the pfn and flags against an entry's bits."""
    levels = setup["levels"]
    out = [coverage.outcome(step)]
    va = step.args[0]
    out += [f"boundary: {step.op} va {c}" for c in _va_classes(va, levels)]
    page = va - va % P
    pte = next((p for p in old["ptes"] if p.va == page), None)
    if step.op == "map":
        pfn, flags = step.args[1], step.args[2]
        limit = 1 << (20 if levels == 2 else 40)
        out.append("boundary: map pfn " + ("too big for an entry" if pfn >= limit else
                                            "the largest an entry holds" if pfn == limit - 1
                                            else "zero" if pfn == 0 else "ordinary"))
        nx = flags & _PAGE_NX
        if flags & ~0xFFF & ~_PAGE_NX:
            out.append("boundary: map flags beyond bits 0-11")
        elif nx:
            out.append("boundary: map flags with NX" + (" in 2-level mode" if levels == 2 else ""))
        if pte is not None and pte.present:
            out.append("boundary: map over a mapped page")
    elif step.op == "translate":
        write, user, exec_ = step.args[1:4]
        out.append(f"boundary: translate access write={write} user={user} exec={exec_}")
        if step.raised == "PageFault":
            out.append("outcome: translate -> PageFault " + (
                "(protection)" if pte is not None and pte.present else "(not present)"))
    elif step.op == "unmap" and pte is None and step.raised is None:
        out.append("boundary: unmap of a page never mapped")
    return out


# ---------------------------------------------------------------- symbolic


def symbolic_system(npages: int, mutation: str | None = None):  # noqa: ANN201
    """The Z3 encoding of a 2-level page table over four page addresses in three PTE
    tables, its table pages from a pool of `npages` pages. Returns (system, setup,
    integer universe, exponent bound)."""
    from mmcheck.checker.symbolic.pagetable import SymbolicPageTable

    setup = {"levels": 2, "npages": npages}
    return SymbolicPageTable(npages, mutation=mutation), setup, range(0, npages + 1), 64
