"""The whole machine (Machine) as the engines see it: setups, steps, systems, pictures.

A setup is a node of 40 or 64 page frames with the first few reserved. Steps
mix every owner of pages: slab objects allocated and freed (slabs grow and
are shrunk), vmalloc areas of one to three pages (vfree of 0, of a freed and
of a wrong address), user pages faulted in and unmapped at the text, mmap
and stack addresses (and unaligned or kernel ones), and runs that use up
memory so that every owner meets an empty page allocator.

What a spec sees of a submission: its own struct pages, through its
`pages()` (flags, _refcount, _mapcount of every pfn: docs/contract.md
[MACHINE-PAGES]), and what its steps returned (live objects, areas, user
mappings). The kernel page table and each owner's own records are the
reference's only (hidden_names: those properties are not observable on a
submission).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from mmcheck.checker import coverage
from mmcheck.checker.explain import fields_in
from mmcheck.checker.formats.pictures.machine import render_svg  # noqa: F401 (HTML picture)
from mmcheck.checker.subsystems._vm import call_op, construct, pick, plain_int
from mmcheck.checker.subsystems.declared.machine import BAD_USER_VAS, DECLARATION, USER_VAS
from mmcheck.checker.systems import ModelSystem, Problem, SandboxedSystem
from mmcheck.checker.trace import Step
from mmcheck.model.layout import i386_layout
from mmcheck.model.machine import VOCABULARY, Frame, Machine, MPage, Obj, Pte, VArea
from mmcheck.model.page import PG_buddy, PG_reserved, PG_slab, PG_table, PG_vmalloc
from mmcheck.model.vocabulary import Snapshot
from mmcheck.model.zone import ZONE_NAMES

SUBMISSION_VIEW = {
    "npages": "its constructor's argument",
    "pages": "its pages(): flags, _refcount and _mapcount of every pfn",
    "slab_marked": "the pages its pages() marks PG_slab",
    "user_ptes": "what its map_user returned and unmap_user has not taken back",
    "objects": "what its slab_alloc returned and slab_free has not taken back",
    "areas": "what its vmalloc returned (with the pages asked for) and vfree has not "
             "taken back",
}
REFERENCE_ONLY = frozenset({"kernel_ptes", "table_pages", "slab_pages", "vmalloc_pages"})
SIZES = (4096, 1, 3 * 4096, 0, -1)


def hidden_names(sub: Any) -> frozenset[str]:
    """The reference's own records (kernel page table, each owner's pages)."""
    return REFERENCE_ONLY


def setups(max_pages: int = 5000) -> st.SearchStrategy[dict[str, int]]:
    """Node size and reserved pages, as one pick."""
    return st.fixed_dictionaries({"npages": st.sampled_from([64, 40]),
                                  "reserved": st.sampled_from([3, 1])})


def zone_sizes(npages: int) -> tuple[int, int, int]:
    """x86's split of a small node: ZONE_DMA's first 16 pages, the rest ZONE_NORMAL."""
    return (min(16, npages), 0, max(0, npages - 16))


class View:
    """What the step generator knows: live objects, areas and user mappings."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.objects: list[int] = []
        self.areas: list[int] = []
        self.mapped: list[int] = []
        self.gone: list[int] = []

    def record(self, step: Step) -> None:
        if step.raised is not None:
            return
        lists = {"slab_alloc": self.objects, "vmalloc": self.areas}
        if step.op in lists and plain_int(step.result):
            lists[step.op].append(step.result)
        elif step.op == "map_user" and step.result is not None:
            self.mapped.append(step.args[0])
        for op, live in (("slab_free", self.objects), ("vfree", self.areas),
                         ("unmap_user", self.mapped)):
            if step.op == op and step.args[0] in live:
                live.remove(step.args[0])
                self.gone = (self.gone + [step.args[0]])[-4:]


def draw_steps(data: st.DataObject, view: View) -> list[tuple[str, tuple[int, ...]]]:
    """The next operation(s): a kind, then one pick (see _vm.pick)."""
    kinds = ["slab", "vmalloc", "map", "fill", "free", "bad"]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    free_vas = [va for va in USER_VAS if va not in view.mapped]
    if kind == "slab":
        return [("slab_alloc", ())] * data.draw(st.sampled_from([1, 9]), label="count")
    if kind == "vmalloc":
        (size,) = pick(data, "size", SIZES)
        return [("vmalloc", (size,))]
    if kind == "map" and free_vas:
        (va,) = pick(data, "va", free_vas)
        return [("map_user", (va,))]
    if kind == "fill":
        (what,) = pick(data, "what", ("slab", "vmalloc", "map"))
        if what == "map":
            return [("map_user", (va,)) for va in free_vas]
        return [("slab_alloc", ())] * 24 if what == "slab" else [("vmalloc", (8 * 4096,))] * 4
    if kind == "free" and (view.objects or view.areas or view.mapped):
        return ([("slab_free", (a,)) for a in view.objects]
                + [("slab_shrink", ())] + [("vfree", (a,)) for a in view.areas]
                + [("unmap_user", (va,)) for va in view.mapped])
    op, how = pick(data, "op, how", ("slab_free", "vfree", "map_user", "unmap_user"),
                   ("gone", "bad", "zero"))
    if how == "gone" and view.gone:
        return [(op, (view.gone[-1],))]
    if how == "zero":
        return [(op, (0,))]
    return [(op, (BAD_USER_VAS[0],))]


# ---------------------------------------------------------------- contract coverage

COVERAGE = (
    *(f"operation: {op}" for op in DECLARATION.operation_names),
    "outcome: slab_alloc -> returned", "outcome: slab_alloc -> none",
    "outcome: slab_free -> none", "outcome: slab_free -> ValueError",
    "outcome: vmalloc -> returned", "outcome: vmalloc -> none", "outcome: vmalloc -> ValueError",
    "outcome: vfree -> none", "outcome: vfree -> ValueError",
    "outcome: map_user -> returned", "outcome: map_user -> none",
    "outcome: map_user -> ValueError", "outcome: unmap_user -> none",
    "outcome: unmap_user -> ValueError",
    "boundary: vmalloc of 0 bytes", "boundary: vmalloc of less than a page",
    "boundary: vfree of 0", "boundary: map_user of an unaligned or kernel address",
    "boundary: a step that leaves no page free",
)


def classify_step(step: Step, old: Mapping[str, Any], new: Mapping[str, Any],
                  setup: Mapping[str, int]) -> list[str]:
    """The outcome; vmalloc sizes, vfree(0), bad user addresses; memory used up."""
    out = [coverage.outcome(step)]
    arg = step.args[0] if step.args else None
    if step.op == "vmalloc" and arg == 0:
        out.append("boundary: vmalloc of 0 bytes")
    elif step.op == "vmalloc" and arg is not None and 0 < arg < 4096:
        out.append("boundary: vmalloc of less than a page")
    elif step.op == "vfree" and arg == 0:
        out.append("boundary: vfree of 0")
    elif step.op == "map_user" and arg is not None and (arg % 4096 or not 0 <= arg < 0xC0000000):
        out.append("boundary: map_user of an unaligned or kernel address")
    if not any(p.buddy for p in new["pages"]):
        out.append("boundary: a step that leaves no page free")
    return out


# ---------------------------------------------------------------- systems


class ReferenceSystem(ModelSystem):
    """The reference machine (model/machine.py)."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.model = Machine(zone_sizes(setup["npages"]), reserved=[(0, setup["reserved"])])

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        try:
            return Step(op, args, getattr(self.model, op)(*args), None), None
        except ValueError:
            return Step(op, args, None, "ValueError"), None


class SubmissionSystem(SandboxedSystem):
    """A submission's Machine in its sandbox; its pages() read after every step."""

    def __init__(self, sub: Any, setup: Mapping[str, int]) -> None:
        self.sub = sub
        self.npages = setup["npages"]
        self.zones = zone_sizes(self.npages)
        self.objects: set[int] = set()
        self.areas: dict[int, int] = {}
        self.user: dict[int, int] = {}
        self.handle = construct(sub, DECLARATION, self.npages, setup["reserved"])
        self.pages: Any = self._pages()

    def _pages(self) -> Any:
        out = self.sub.call(self.handle, "pages")
        return out.value if out.returned else None

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        got = call_op(self.sub, self.handle, VOCABULARY, op, args)
        if got.problem is not None:
            return got.step, got.problem
        self._follow(got.step)
        self.pages = self._pages()
        if not _well_formed(self.pages, self.npages):
            return got.step, Problem(
                "protocol", "pages() did not return one (flags, refcount, mapcount) tuple "
                            f"of ints per pfn 0..{self.npages - 1}",
                ("docs/contract.md [MACHINE-PAGES]",))
        return got.step, None

    def _follow(self, step: Step) -> None:
        if step.raised is not None:
            return
        op, args, r = step.op, step.args, step.result
        if op == "slab_alloc" and plain_int(r):
            self.objects.add(r)
        elif op == "slab_free":
            self.objects.discard(args[0])
        elif op == "vmalloc" and plain_int(r):
            self.areas[r] = -(-args[0] // 4096)
        elif op == "vfree":
            self.areas.pop(args[0], None)
        elif op == "map_user" and plain_int(r):
            self.user[args[0]] = r
        elif op == "unmap_user":
            self.user.pop(args[0], None)

    def snapshot(self) -> Mapping[str, Any]:
        pages = [_mpage(pfn, entry, self.zones) for pfn, entry in enumerate(self.pages or [])]
        user = frozenset(Pte(va, pfn) for va, pfn in self.user.items())
        objects = frozenset(map(Obj, self.objects))
        areas = frozenset(VArea(a, n) for a, n in self.areas.items())
        empty: frozenset[Any] = frozenset()
        return Snapshot({
            "npages": lambda: self.npages, "pages": lambda: pages, "user_ptes": lambda: user,
            "slab_marked": lambda: frozenset(Frame(p.pfn) for p in pages if p.slab),
            "objects": lambda: objects, "areas": lambda: areas,
            **{name: (lambda: empty) for name in REFERENCE_ONLY},
        })


def _well_formed(pages: Any, npages: int) -> bool:
    return isinstance(pages, list) and len(pages) == npages and all(
        isinstance(e, (tuple, list)) and len(e) == 3 and all(map(plain_int, e)) for e in pages)


def _mpage(pfn: int, entry: tuple[int, int, int], zones: Sequence[int]) -> MPage:
    """One struct page a submission's pages() reported, as the vocabulary's record."""
    flags, refcount, mapcount = entry
    zone = 0 if pfn < zones[0] else 2
    return MPage(pfn, zone, bool(flags >> PG_buddy & 1), bool(flags >> PG_slab & 1),
                 bool(flags >> PG_table & 1), bool(flags >> PG_reserved & 1),
                 bool(flags >> PG_vmalloc & 1), mapcount > 0, False, refcount, mapcount)


# ---------------------------------------------------------------- pictures

LETTERS = (("buddy", "."), ("slab", "S"), ("table", "T"), ("vmalloc", "V"), ("reserved", "R"))


def page_letter(p: MPage) -> str:
    """One letter for a page's owner: . S T U V R, '?' for none, '!' for several."""
    own = [c for f, c in LETTERS if getattr(p, f)] + (["U"] if p.mapcount > 0 else [])
    return own[0] if len(own) == 1 else ("?" if not own else "!")


def render_state(state: Mapping[str, Any], named: Sequence[Any] = (),
                 limit: int = 64) -> list[str]:
    """The kernel's layout, each zone's free pages, one letter per page frame for its
    owner(s), then the pages the explanation names with every field, and the live
    vmalloc areas and user mappings."""
    highlight = fields_in(named, "pfn")
    pages = list(state["pages"])
    row = "".join(page_letter(p) for p in pages)
    lay = i386_layout(max(int(state["npages"]), 1) << 12)
    lines = ["kernel layout (i386, as for this RAM): " + ", ".join(
        f"{r.name} {r.start:#x}..{r.end:#x}" for r in lay.regions())]
    for zone in sorted({p.zone for p in pages}):
        inside = [p for p in pages if p.zone == zone]
        lines.append(f"zone {ZONE_NAMES[zone]:<8} pfns {inside[0].pfn}..{inside[-1].pfn}: "
                     f"{sum(p.buddy for p in inside)} free")
    lines.append("page frames (. free  S slab  T page table  U user  V vmalloc  R reserved  "
                 "? no owner  ! several):")
    lines += [f"  {i:>5} {row[i:i + limit]}" for i in range(0, len(row), limit)]
    for p in pages:
        if highlight and p.pfn in highlight:
            lines.append(f"  <- pfn {p.pfn}: buddy={p.buddy} slab={p.slab} table={p.table} "
                         f"vmalloc={p.vmalloc} reserved={p.reserved} _refcount={p.refcount} "
                         f"_mapcount={p.mapcount}")
    for a in sorted(state["areas"]):
        lines.append(f"  vmalloc area {a.addr:#x}: {a.npages} page(s)")
    for e in sorted(state["user_ptes"]):
        lines.append(f"  user page {e.va:#x} -> pfn {e.pfn}")
    return lines


# ---------------------------------------------------------------- symbolic


def symbolic_system(npages: int, mutation: str | None = None):  # noqa: ANN201
    """The Z3 encoding of the machine (checker/symbolic/machine.py): `npages` frames (4
    at least), the first one reserved. Returns (system, setup, integer universe,
    exponent bound)."""
    from mmcheck.checker.symbolic.machine import SymbolicMachine

    system = SymbolicMachine(max(npages, 4), 1, mutation)
    return system, {"npages": system.npages, "reserved": 1}, range(0, 16), 24
