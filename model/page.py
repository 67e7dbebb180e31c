"""`struct page` and `mem_map`: one descriptor per page frame, kept in flat arrays.

Linux keeps a `struct page` for every page frame in `mem_map[]`. The buddy
allocator reads and writes three of its fields, and so does the model:

    PageBuddy   the page heads a free block on a free list (`__SetPageBuddy`)
    private     the order of that free block (`set_buddy_order`); 0 otherwise,
                as `del_page_from_free_list` clears it
    _refcount   1 on the head of an allocated block (`set_page_refcounted`),
                0 on every other page: tail pages of a non-compound block and
                free pages

Every other owner of pages marks them too (model/machine.py runs them all on
one mem_map), so that "who owns this page" can be read off struct page alone:

    flags       PG_ bits (below): PG_slab on every page of a slab, PG_table on
                a page-table page, PG_reserved on what memblock kept, PG_lru on
                a user page on the LRU list, PG_highmem above max_low_pfn,
                PG_vmalloc on vmalloc's backing pages
    _mapcount   the PTEs that map the page (stored as page_mapcount(), that is
                Linux's _mapcount + 1, so a fresh page holds 0)
    mapping     None, or who the mapped page belongs to (`Mapping`: anon or a file)
    lru         the pages on the LRU list, oldest first

PageBuddy is kept apart from `flags`, in its own byte per page, as Linux
since 2.6.38 keeps it apart too (in `_mapcount`, later `page_type`); reading
flags through `page_flags` shows it as PG_buddy.

A million-page memory must cost little to build, so each field is an array
indexed by pfn rather than a Python object per page (the sparse ones,
mapping and lru, are dicts). `Page` is the value the buddy vocabulary gives
for one pfn, `StructPage` every field; `Block` names a block of 2**order pages.
mem_map is kept per zone (model/zone.py), as SPARSEMEM keeps it per section:
a MemMap's pfns count from its zone's first page.
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Mapping
from itertools import repeat
from typing import NamedTuple

from mmcheck.model.layout import KernelLayout, __va
from mmcheck.model.linux import PAGE_SHIFT

# Page flag bits, numbered as /proc/kpageflags numbers them (KPF_* of
# include/uapi/linux/kernel-page-flags.h, the stable numbering user space reads;
# the kernel's own enum pageflags moves between versions).
PG_lru = 5
PG_active = 6
PG_slab = 7
PG_buddy = 10
PG_anon = 12
PG_table = 26  # KPF_PGTABLE: PageTable, a page-table page
PG_reserved = 32
PG_highmem = 40  # 2.4's page->flags bit; later kernels derive PageHighMem from the zone
PG_vmalloc = 41  # mmcheck's own: Linux finds vmalloc's pages through vm_struct->pages

PAGE_FLAG_NAMES = {PG_lru: "PG_lru", PG_active: "PG_active", PG_slab: "PG_slab",
                   PG_buddy: "PG_buddy", PG_anon: "PG_anon", PG_table: "PG_table",
                   PG_reserved: "PG_reserved", PG_highmem: "PG_highmem",
                   PG_vmalloc: "PG_vmalloc"}

# free_pages_check: a page going back to the buddy allocator has none of these
# (mm/page_alloc.c PAGE_FLAGS_CHECK_AT_FREE; PG_table and PG_vmalloc added, the
# owners the model marks; PG_highmem is where the page is, not who owns it).
PAGE_FLAGS_CHECK_AT_FREE = (1 << PG_lru | 1 << PG_active | 1 << PG_slab | 1 << PG_buddy
                            | 1 << PG_table | 1 << PG_reserved | 1 << PG_vmalloc)

# One byte per _refcount: get_page refuses to wrap it (REF-1, CVE-2019-11487).
PAGE_REF_MAX = 255
_NONZERO = bytes([0] + [1] * 255)  # bytes.translate table: every nonzero count -> 1


class Block(NamedTuple):
    """A block of 2**order pages whose first page is `pfn`."""

    pfn: int
    order: int


class Page(NamedTuple):
    """One `struct page` as the buddy allocator sees it (`order` is `private`)."""

    pfn: int
    buddy: bool
    order: int
    refcount: int


class PageMapping(NamedTuple):
    """`page->mapping`: an anonymous page's anon_vma, or a file's address_space.

    `owner` names it (an mm, a file); `anon` is PAGE_MAPPING_ANON."""

    anon: bool
    owner: str


class StructPage(NamedTuple):
    """Every field of one `struct page` the model keeps (see the module docstring)."""

    pfn: int
    flags: int
    refcount: int
    mapcount: int
    private: int
    mapping: PageMapping | None
    lru: bool


class BadPage(ValueError):
    """bad_page(): a page freed while still in use; `reasons` as the kernel words them."""

    def __init__(self, pfn: int, reasons: list[str]) -> None:
        super().__init__(f"BUG: Bad page state: pfn {pfn}: {'; '.join(reasons)}")
        self.pfn = pfn
        self.reasons = reasons


class MemMap:
    """`mem_map[]`: every field of the struct page of every pfn in [0, npages).

    The buddy allocator's fields hold small values only (a flag, an order below
    256, a refcount below 256), which is what lets them be `bytearray`s.
    """

    __slots__ = ("npages", "buddy", "private", "refcount", "flags", "mapcount",
                 "mapping", "lru")

    def __init__(self, npages: int) -> None:
        self.npages = npages
        self.buddy = bytearray(npages)
        self.private = bytearray(npages)
        self.refcount = bytearray(npages)
        self.flags = array("Q", bytes(8 * npages))
        self.mapcount = array("l", bytes(array("l").itemsize * npages))
        self.mapping: dict[int, PageMapping] = {}
        self.lru: dict[int, None] = {}

    def _check(self, pfn: int) -> None:
        if not 0 <= pfn < self.npages:
            raise IndexError(f"pfn {pfn} is outside 0..{self.npages - 1}")

    def struct_page(self, pfn: int) -> StructPage:
        """pfn_to_page: every field of page `pfn`; IndexError outside [0, npages)."""
        self._check(pfn)
        return StructPage(pfn, self.page_flags(pfn), self.refcount[pfn], self.mapcount[pfn],
                          self.private[pfn], self.mapping.get(pfn), pfn in self.lru)

    def page_flags(self, pfn: int) -> int:
        """page->flags of `pfn`, PG_buddy included (kept apart, see the module docstring)."""
        return self.flags[pfn] | (self.buddy[pfn] << PG_buddy)

    def SetPageFlag(self, pfn: int, bit: int) -> None:
        """SetPageSlab, SetPageReserved, ...: set flag `bit` on page `pfn`."""
        self.flags[pfn] |= 1 << bit

    def ClearPageFlag(self, pfn: int, bit: int) -> None:
        """ClearPageSlab, ClearPageReserved, ...: clear flag `bit` on page `pfn`."""
        self.flags[pfn] &= ~(1 << bit)

    def TestPageFlag(self, pfn: int, bit: int) -> bool:
        """PageSlab, PageReserved, ...: whether flag `bit` is set on page `pfn`."""
        return bool(self.page_flags(pfn) >> bit & 1)

    def get_page(self, pfn: int) -> None:
        """get_page: one more reference; OverflowError rather than wrap (REF-1)."""
        if self.refcount[pfn] >= PAGE_REF_MAX:
            raise OverflowError(f"get_page({pfn}): _refcount would wrap past {PAGE_REF_MAX}")
        self.refcount[pfn] += 1

    def put_page_testzero(self, pfn: int) -> bool:
        """put_page_testzero: drop a reference; True when it was the last one.
        ValueError on a page with no reference (VM_BUG_ON_PAGE(page_ref_count == 0))."""
        if self.refcount[pfn] == 0:
            raise ValueError(f"put_page({pfn}): _refcount is already 0")
        self.refcount[pfn] -= 1
        return self.refcount[pfn] == 0

    def page_add_rmap(self, pfn: int, mapping: PageMapping) -> None:
        """page_add_anon_rmap / page_add_file_rmap: one more PTE maps `pfn`."""
        self.mapcount[pfn] += 1
        self.mapping[pfn] = mapping
        if mapping.anon:
            self.SetPageFlag(pfn, PG_anon)

    def page_remove_rmap(self, pfn: int) -> None:
        """page_remove_rmap: one PTE fewer; the last one clears mapping (as the
        page's final put does in Linux). ValueError if no PTE maps it."""
        if self.mapcount[pfn] <= 0:
            raise ValueError(f"page_remove_rmap({pfn}): page_mapcount is already 0")
        self.mapcount[pfn] -= 1
        if self.mapcount[pfn] == 0:
            self.mapping.pop(pfn, None)
            self.ClearPageFlag(pfn, PG_anon)

    def lru_cache_add(self, pfn: int) -> None:
        """lru_cache_add + SetPageLRU: put `pfn` at the tail of the LRU list."""
        self.lru[pfn] = None
        self.SetPageFlag(pfn, PG_lru)

    def del_page_from_lru_list(self, pfn: int) -> None:
        """del_page_from_lru_list + ClearPageLRU: take `pfn` off the LRU list."""
        self.lru.pop(pfn, None)
        self.ClearPageFlag(pfn, PG_lru)

    def free_pages_check(self, pfn: int) -> list[str]:
        """free_pages_check: why page `pfn` must not go back to the buddy allocator,
        in bad_page()'s words; [] when it may. Called once its last reference is
        dropped, so a _refcount that is not 0 is a reason too."""
        reasons = []
        if self.mapcount[pfn] != 0:
            reasons.append("nonzero mapcount")
        if pfn in self.mapping:
            reasons.append("non-NULL mapping")
        if self.refcount[pfn] != 0:
            reasons.append("nonzero _refcount")
        if self.page_flags(pfn) & PAGE_FLAGS_CHECK_AT_FREE:
            reasons.append("PAGE_FLAGS_CHECK_AT_FREE flag(s) set")
        return reasons

    def free_pages_prepare(self, pfn: int, order: int) -> None:
        """free_pages_prepare: free_pages_check on every page of the block; BadPage
        naming the first bad page and its reasons, the state unchanged."""
        for p in range(pfn, pfn + (1 << order)):
            reasons = self.free_pages_check(p)
            if reasons:
                raise BadPage(p, reasons)

    def page(self, pfn: int) -> Page:
        """The state of page `pfn`; IndexError outside [0, npages)."""
        if not 0 <= pfn < self.npages:
            raise IndexError(f"pfn {pfn} is outside 0..{self.npages - 1}")
        return Page(pfn, bool(self.buddy[pfn]), self.private[pfn], self.refcount[pfn])

    def buddy_orders(self) -> dict[int, int]:
        """{pfn: private} for every page with PageBuddy set, in pfn order.

        `bytearray.find` skips runs of clear flags in C, so the cost is one pass
        over npages bytes plus a little per free block.
        """
        flags, private = self.buddy, self.private
        found: dict[int, int] = {}
        pfn = flags.find(1)
        while pfn >= 0:
            found[pfn] = private[pfn]
            pfn = flags.find(1, pfn + 1)
        return found

    def refcounts(self) -> dict[int, int]:
        """{pfn: _refcount} for every page whose _refcount is not 0, in pfn order.

        The buddy allocator alone only ever stores 0 or 1; other owners take
        more references (get_page). Nonzero counts are found in C, through a
        translated copy in which each is 1.
        """
        counts = self.refcount
        nonzero = counts.translate(_NONZERO)
        found: dict[int, int] = {}
        pfn = nonzero.find(1)
        while pfn >= 0:
            found[pfn] = counts[pfn]
            pfn = nonzero.find(1, pfn + 1)
        return found

def build_pages(npages: int, buddy: Mapping[int, int], refcount: Mapping[int, int]) -> list[Page]:
    """Every `Page` of [0, npages), from the sparse fields of the few pages that are set.

    `buddy` maps a pfn with PageBuddy set to its `private`; `refcount` maps a
    pfn to a refcount that is not zero. Entries outside [0, npages) are ignored:
    no `struct page` exists for them.
    """
    # A million records: built in C (tuple.__new__ over zip) with the cyclic
    # collector paused, since tuples of ints can form no cycle and repeated
    # collections while the list grows would triple the time.
    enabled = gc.isenabled()
    gc.disable()
    try:
        fields = zip(range(npages), repeat(False), repeat(0), repeat(0))
        pages: list[Page] = list(map(tuple.__new__, repeat(Page), fields))
    finally:
        if enabled:
            gc.enable()
    for pfn, order in buddy.items():
        if 0 <= pfn < npages:
            pages[pfn] = Page(pfn, True, order, refcount.get(pfn, 0))
    for pfn, count in refcount.items():
        if 0 <= pfn < npages:
            pages[pfn] = pages[pfn]._replace(refcount=count)
    return pages


def page_address(pfn: int, layout: KernelLayout) -> int | None:
    """page_address: the kernel virtual address of page frame `pfn` (a machine-wide
    pfn), through the direct map; None for a high-memory page, which has none
    until kmap gives it one (the model keeps no kmap)."""
    if layout.PageHighMem(pfn) or not 0 <= pfn < layout.max_pfn:
        return None
    return __va(pfn << PAGE_SHIFT, layout)
