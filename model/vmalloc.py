"""vmalloc: virtually contiguous kernel memory from scattered pages (mm/vmalloc.c, 2.6).

`vmalloc(size)` reserves a range of kernel virtual addresses in
`[VMALLOC_START, VMALLOC_END)` (model/layout.py), takes one order-0 page per
page of the range from the page allocator (the pages need not be contiguous:
that is vmalloc's point), and maps each in the *kernel* page table
(`init_mm`, model/mmu.py). Linux 2.6's bookkeeping, which this model follows:

    struct vm_struct { next, addr, size, flags, pages, nr_pages }

kept in `vmlist`, sorted by address. `__get_vm_area` adds one *guard page*
to every request (`size += PAGE_SIZE`) and takes the first gap of the sorted
list that holds it (first fit from `start`); the guard page is never mapped,
so running off the end of an area faults instead of scribbling on the next.
`vm_struct.size` counts the guard page (`get_vm_area_size` subtracts it).
`__vmalloc_area` allocates `nr_pages` pages one at a time and `map_vm_area`
installs them with PAGE_KERNEL (present, writable, supervisor, global); when
either fails, everything taken so far is given back (`vfree`) and vmalloc
returns NULL. `vfree(addr)` unlinks the area (`remove_vm_area`), clears its
PTEs (`vunmap_page_range`), flushes the TLB over the range
(`flush_tlb_kernel_range`: the kernel page table's TLB entries are global,
and an entry left behind still translates to a page that is about to be
reused), then frees the pages.

Simplifications, stated: one CPU; the lazy TLB purge of 2.6.28+ (`vmap_area`,
`vm_unmap_aliases`), which keeps a freed range reserved until a batched flush,
is not modelled: the flush is eager, as in 2.6.2x. vfree of an address that
is no area raises ValueError where Linux WARNs ("Trying to vfree()
nonexistent vm area") and returns. VM_NO_GUARD (4.x) is modelled as
`guard=False` only to build the buggy variant. Kernel page tables are never
freed (Linux keeps them), so the kernel PageTable keeps empty tables.

Ownership on `struct page`: a `PageOwner` hook (optional), told when a page
becomes vmalloc backing and when it stops being so, so that the shared
`mem_map` (model/page.py; model/machine.py sets PG_vmalloc through it) can
state that every page has exactly one owner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from mmcheck.model.layout import KernelLayout
from mmcheck.model.linux import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_PRESENT,
    _PAGE_RW,
    PAGE_SHIFT,
    PAGE_SIZE,
)
from mmcheck.model.mmu import PageFault, Pages, PageTable
from mmcheck.model.page import page_address
from mmcheck.model.vocabulary import Operation, Record, Snapshot, StateVar, Vocabulary

__all__ = [
    "PAGE_KERNEL",
    "VM_ALLOC",
    "VOCABULARY",
    "Area",
    "Held",
    "KernelPageTable",
    "Kpte",
    "PageOwner",
    "Vmalloc",
    "vm_struct",
]

VM_IOREMAP = 0x1
VM_ALLOC = 0x2
VM_MAP = 0x4
VM_NO_GUARD = 0x40
# PAGE_KERNEL on i386 without PAE (no NX): __PAGE_KERNEL | _PAGE_GLOBAL.
PAGE_KERNEL = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_GLOBAL


class PageOwner(Protocol):
    """Where a page's owner is written on its `struct page` (the shared mem_map)."""

    def set_page_owner(self, pfn: int, owner: str | None) -> None: ...


class KernelPageTable(PageTable):
    """init_mm's page table as vmalloc sees it: PTEs cleared by unmap stay in the
    TLB until `flush_tlb_kernel_range`, and empty tables are kept (Linux never
    frees kernel page tables). 2-level (i386 without PAE) unless told otherwise."""

    def __init__(self, pages: Pages, levels: int = 2) -> None:
        super().__init__(levels, pages, tlb_flush_on_unmap=False, free_empty_tables=False)

    # flush_tlb_kernel_range: drop every cached translation in [start, end).
    def flush_tlb_kernel_range(self, start: int, end: int) -> None:
        self.flush_tlb_range(start, end)


@dataclass
class vm_struct:  # noqa: N801 - Linux's name
    """One vmalloc area: `size` bytes from `addr`, the trailing guard page included."""

    addr: int
    size: int
    flags: int
    pages: list[int] = field(default_factory=list)  # the backing pfns, in address order

    @property
    def nr_pages(self) -> int:
        return len(self.pages)


# get_vm_area_size: the usable bytes of an area, its guard page excluded.
def get_vm_area_size(area: vm_struct) -> int:
    return area.size - (0 if area.flags & VM_NO_GUARD else PAGE_SIZE)


class Vmalloc:
    """vmalloc/vfree over [start, end) with the 2.6 vmlist (see the module docstring)."""

    def __init__(self, start: int, end: int, pages: Pages, pgtable: KernelPageTable, *,
                 guard: bool = True, layout: KernelLayout | None = None,
                 owner: PageOwner | None = None) -> None:
        if not (isinstance(start, int) and isinstance(end, int)
                and start % PAGE_SIZE == 0 and end % PAGE_SIZE == 0 and 0 < start < end):
            raise ValueError(f"Vmalloc: [{start!r}, {end!r}) is not a page-aligned range")
        self.start, self.end = start, end
        self.pages = pages
        self.pgtable = pgtable
        self.guard = guard
        self.layout = layout
        self.owner = owner
        self.vmlist: list[vm_struct] = []  # sorted by addr, as Linux keeps it

    # ---- the address space ---------------------------------------------------

    # __get_vm_area: reserve `size` bytes (plus the guard page) in [start, end):
    # the first gap of the sorted vmlist that holds them, linked in place; None
    # if no gap does (Linux's "out" label).
    def __get_vm_area(self, size: int, flags: int) -> vm_struct | None:
        if self.guard:
            size += PAGE_SIZE
        else:
            flags |= VM_NO_GUARD
        addr, at = self.start, len(self.vmlist)
        for i, tmp in enumerate(self.vmlist):
            if addr + size <= tmp.addr:
                at = i
                break
            addr = max(addr, tmp.addr + tmp.size)
        if addr + size > self.end:
            return None
        area = vm_struct(addr, size, flags)
        self.vmlist.insert(at, area)
        return area

    # find_vm_area: the area starting at `addr`, or None.
    def find_vm_area(self, addr: int) -> vm_struct | None:
        return next((a for a in self.vmlist if a.addr == addr), None)

    # remove_vm_area: unlink the area at `addr`, unmap it and flush the TLB
    # over it (unmap_vm_area); the area, or None if there is none.
    def remove_vm_area(self, addr: int) -> vm_struct | None:
        area = self.find_vm_area(addr)
        if area is not None:
            self.vmlist.remove(area)
            self.unmap_vm_area(area)
        return area

    # ---- the page table ------------------------------------------------------

    # map_vm_area: install one PAGE_KERNEL PTE per backing page, from area.addr.
    # MemoryError when the page table has no page for a table (the PTEs made so
    # far stay: the caller's vfree clears them).
    def map_vm_area(self, area: vm_struct) -> None:
        for i, pfn in enumerate(area.pages):
            self.pgtable.install(area.addr + (i << PAGE_SHIFT), pfn, PAGE_KERNEL)

    # unmap_vm_area: vunmap_page_range over the usable part of the area, then
    # flush_tlb_kernel_range over it.
    def unmap_vm_area(self, area: vm_struct) -> None:
        end = area.addr + get_vm_area_size(area)
        for va in range(area.addr, end, PAGE_SIZE):
            self.pgtable.unmap(va)
        self.pgtable.flush_tlb_kernel_range(area.addr, end)

    # ---- the contract --------------------------------------------------------

    # vmalloc: the address of `size` bytes (rounded up to pages) mapped from
    # order-0 pages. None for size 0, when no gap of [start, end) holds the area
    # and its guard page, when `pages` refuses a page or the page table one for
    # a table; then everything taken is given back. ValueError for size < 0.
    def vmalloc(self, size: int) -> int | None:
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"vmalloc: size {size!r} is negative")
        size = (size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        if size == 0:
            return None
        area = self.__get_vm_area(size, VM_ALLOC)
        if area is None:
            return None
        if not self.__vmalloc_area(area, size >> PAGE_SHIFT):
            self.vfree(area.addr)
            return None
        return area.addr

    # __vmalloc_area: take `nr_pages` order-0 pages into the area and map them;
    # False when a page or a table page is refused (the caller frees the area).
    def __vmalloc_area(self, area: vm_struct, nr_pages: int) -> bool:
        for _ in range(nr_pages):
            pfn = self.pages.alloc_pages(0)
            if pfn is None:
                return False
            area.pages.append(pfn)
            self._own(pfn, "vmalloc")
        try:
            self.map_vm_area(area)
        except MemoryError:
            return False
        return True

    # vfree: free the area vmalloc returned at `addr`: unmap, flush, give the
    # pages back. vfree(0) does nothing; ValueError for any other address that
    # starts no area (nothing changes then).
    def vfree(self, addr: int) -> None:
        if addr == 0:
            return
        area = self.remove_vm_area(addr)
        if area is None:
            raise ValueError(f"vfree: {addr!r} is not the start of a vmalloc area")
        for pfn in area.pages:
            self._own(pfn, None)
            self.pages.free_pages(pfn, 0)

    # areas: (addr, size) of every area, by address; size counts the guard page.
    def areas(self) -> list[tuple[int, int]]:
        return [(a.addr, a.size) for a in self.vmlist]

    # vmalloc_to_pfn: the frame mapped at vmalloc address `addr` (a software walk
    # of the kernel page table: __pa does not apply here), or None.
    def vmalloc_to_pfn(self, addr: int) -> int | None:
        found = self.pgtable.walk(addr)
        return None if found is None else found[0]

    # _own: tell the PageOwner hook, if any, that `pfn` is vmalloc's now (or no longer).
    def _own(self, pfn: int, owner: str | None) -> None:
        if self.owner is not None:
            self.owner.set_page_owner(pfn, owner)

    # ---- the checker's view --------------------------------------------------

    def snapshot(self, pages_free: int = -1) -> Snapshot:
        """The vocabulary's state now (`pages_free` as the caller knows it); later
        operations do not change it."""
        areas = [Area(a.addr, a.size) for a in self.vmlist]
        held = sorted(pfn for a in self.vmlist for pfn in a.pages)
        return vmalloc_snapshot(self.start, self.end, self.layout, areas, held, self.pgtable,
                                pages_free)


# _alias: page_address of frame `pfn`, -1 for high memory or an unknown layout.
def _alias(pfn: int, layout: KernelLayout | None) -> int:
    va = page_address(pfn, layout) if layout is not None else None
    return -1 if va is None else va


def vmalloc_snapshot(start: int, end: int, layout: KernelLayout | None, areas: list[Area],
                     held: list[int], pgtable: PageTable, pages_free: int = -1) -> Snapshot:
    """The vocabulary's state from the areas, the pages held, the kernel page
    table and the page allocator's free pages (-1: not known), shared by the
    reference and the checker's view of a submission."""
    pages = [Held(pfn, _alias(pfn, layout)) for pfn in held]
    ptes = [Kpte(va, pfn, flags) for va, pfn, flags in pgtable.walk_range(start, end)]
    tlb = pgtable.tlb.entries()
    offset = layout.page_offset if layout is not None else 0
    high = layout.high_memory if layout is not None else 0
    return Snapshot({
        "vmalloc_start": lambda: start,
        "vmalloc_end": lambda: end,
        "page_offset": lambda: offset,
        "high_memory": lambda: high,
        "areas": lambda: areas,
        "held": lambda: pages,
        "ptes": lambda: ptes,
        "tlb": lambda: tlb,
        "pages_free": lambda: pages_free,
    })


# touch: what a caller does with fresh vmalloc memory: write every page of
# [addr, addr + size) through the kernel page table (supervisor), which fills
# the TLB; the pages that faulted, by address.
def touch(pgtable: PageTable, addr: int, size: int) -> list[int]:
    faulted = []
    for va in range(addr, addr + size, PAGE_SIZE):
        try:
            pgtable.translate(va, True, False)
        except PageFault:
            faulted.append(va)
    return faulted


class Area(NamedTuple):
    """A vm_struct: `size` bytes from `addr`, the guard page included."""

    addr: int
    size: int


class Held(NamedTuple):
    """A page the vmalloc holds from its page allocator, and its direct-map address
    `alias` (page_address; -1 for high memory)."""

    pfn: int
    alias: int


class Kpte(NamedTuple):
    """A leaf entry of the kernel page table in [vmalloc_start, vmalloc_end)."""

    va: int
    pfn: int
    flags: int


VOCABULARY = Vocabulary(
    subsystem="vmalloc",
    doc="vmalloc/vfree over [VMALLOC_START, VMALLOC_END) with the vm_struct list, guard "
        "pages, the kernel page table and its TLB (i386 layout).",
    records=(
        Record("Area", (("addr", "int"), ("size", "int")),
               doc="A vm_struct: size bytes from addr, the trailing guard page included."),
        Record("Held", (("pfn", "int"), ("alias", "int")),
               doc="A page held from the page allocator; alias is its direct-map "
                   "address (__va of pfn * PAGE_SIZE), -1 for high memory."),
        Record("Kpte", (("va", "int"), ("pfn", "int"), ("flags", "int")),
               doc="A leaf entry of the kernel page table inside the vmalloc range."),
        Record("TlbEntry", (("va", "int"), ("pfn", "int"), ("flags", "int")),
               doc="A cached translation of the kernel page at va."),
    ),
    state=(
        StateVar("vmalloc_start", "int", doc="VMALLOC_START: the first address areas may use."),
        StateVar("vmalloc_end", "int", doc="VMALLOC_END: one past the last."),
        StateVar("page_offset", "int", doc="PAGE_OFFSET: where the direct map starts."),
        StateVar("high_memory", "int", doc="One past the direct map's last address."),
        StateVar("areas", "list[Area]", doc="The vm_struct list, by address."),
        StateVar("held", "list[Held]",
                 doc="Every page held from the page allocator (vmalloc backing), by pfn."),
        StateVar("ptes", "list[Kpte]",
                 doc="Every leaf entry of the kernel page table in the vmalloc range."),
        StateVar("tlb", "list[TlbEntry]", doc="Every cached kernel translation."),
        StateVar("pages_free", "int",
                 doc="Free pages of the page allocator the backing pages and the kernel's "
                     "page tables come from (-1 when not known)."),
    ),
    operations=(
        Operation("vmalloc", (("size", "int"),), "int?", ("ValueError",),
                  doc="The address of size bytes of mapped pages, or none."),
        Operation("vfree", (("addr", "int"),), "none", ("ValueError",),
                  doc="Unmap, flush and free the area at addr; vfree(0) does nothing."),
    ),
)
