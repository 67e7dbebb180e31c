"""`struct page` for the buddy model: one entry per pfn, kept in flat byte arrays.

Linux keeps a `struct page` for every page frame in `mem_map[]`. The buddy
allocator reads and writes three of its fields, and so does the model:

    PageBuddy   the page heads a free block on a free list (`__SetPageBuddy`)
    private     the order of that free block (`set_buddy_order`); 0 otherwise,
                as `del_page_from_free_list` clears it
    _refcount   1 on the head of an allocated block (`set_page_refcounted`),
                0 on every other page: tail pages of a non-compound block and
                free pages

A million-page memory must cost little to build, so each field is a
`bytearray` indexed by pfn rather than a Python object per page. `Page` is
the value a reader gets for one pfn; `Block` names a block of 2**order pages.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from itertools import repeat
from typing import NamedTuple


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


class MemMap:
    """`mem_map[]`: PageBuddy, private and _refcount of every pfn in [0, npages).

    Every field holds small values only (a flag, an order below 256, a
    refcount of 0 or 1), which is what lets it be a `bytearray`.
    """

    __slots__ = ("npages", "buddy", "private", "refcount")

    def __init__(self, npages: int) -> None:
        self.npages = npages
        self.buddy = bytearray(npages)
        self.private = bytearray(npages)
        self.refcount = bytearray(npages)

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
        """{pfn: 1} for every page whose _refcount is 1, in pfn order.

        The buddy allocator only ever stores 0 or 1 (see the module docstring).
        """
        counts = self.refcount
        found: dict[int, int] = {}
        pfn = counts.find(1)
        while pfn >= 0:
            found[pfn] = 1
            pfn = counts.find(1, pfn + 1)
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
