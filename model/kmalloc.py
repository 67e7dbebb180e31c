"""kmalloc on the reference SLAB caches (mm/slab.c, include/linux/kmalloc_sizes.h).

`Kmalloc` implements the contract's `Kmalloc` (docs/contract.md):

    Kmalloc(pages)        kmem_cache_init: the general caches malloc_sizes[],
                          one "size-N" and one "size-N(DMA)" KmemCache per size
                          class, N = 32, 64, 128, 192, 256, 512, ... 131072
                          (x86_64: L1_CACHE_BYTES is 64, so no 96), all taking
                          slabs from `pages`
    kmalloc(size, flags)  __kmalloc: the smallest class >= size
                          (kmem_find_general_cachep), its DMA twin when flags
                          has GFP_DMA; larger requests, up to KMALLOC_MAX_SIZE,
                          straight from `pages` as SLUB's kmalloc_large does;
                          kmalloc(0) is ZERO_SIZE_PTR
    kfree(addr)           the object back to its cache (virt_to_cache), a large
                          block back to `pages`; kfree(NULL) and
                          kfree(ZERO_SIZE_PTR) do nothing
    ksize(addr)           the usable size: the class's objsize, or the whole
                          block of a large allocation

The contract asks for ValueError where Linux would corrupt memory: a kfree or
ksize of an address that is not a live allocation, a negative size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from mmcheck.model.linux import DEFAULT_MAX_ORDER, PAGE_SIZE
from mmcheck.model.slab import (
    PAGE_AUDIT,
    PAGE_EVENT,
    KmemCache,
    PageEvent,
    PageProvider,
    holding_slab,
    snapshot_of,
)
from mmcheck.model.vocabulary import Operation, Record, Snapshot, StateVar, Vocabulary

__all__ = ["CACHE_SIZES", "GFP_DMA", "KMALLOC_MAX_SIZE", "VOCABULARY", "ZERO_SIZE_PTR",
           "Kmalloc", "get_order", "kmalloc_class"]

CACHE_SIZES = (32, 64, 128, 192, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
               131072)
KMALLOC_MAX_CACHE_SIZE = CACHE_SIZES[-1]
KMALLOC_MAX_SIZE = PAGE_SIZE << (DEFAULT_MAX_ORDER - 1)  # the largest buddy block: 4 MiB
ARCH_KMALLOC_MINALIGN = 8
GFP_DMA = 0x01
ZERO_SIZE_PTR = 16


def kmalloc_class(size: int) -> int:
    """The size class kmalloc(size) uses (1 <= size <= 128 KiB)."""
    return next(c for c in CACHE_SIZES if c >= size)


def get_order(size: int) -> int:
    """get_order: the smallest order whose block holds `size` bytes."""
    order = 0
    while PAGE_SIZE << order < size:
        order += 1
    return order


class KObj(NamedTuple):
    """A live kmalloc allocation: `size` bytes asked for at addr, usable `usable`
    bytes (what the allocator gives: the class, or the large block), in the held
    block whose first pfn is `block` (-1 if none), asked for with GFP_DMA or not."""

    addr: int
    size: int
    usable: int
    dma: bool
    block: int
    next: int


class Held(NamedTuple):
    """A block of 2**order pages the allocator holds from `pages`."""

    pfn: int
    order: int
    start: int
    end: int


VOCABULARY = Vocabulary(
    subsystem="kmalloc",
    doc="kmalloc/kfree/ksize over general caches of 32 bytes to 128 KiB (and DMA twins), "
        "larger requests from the page allocator `pages` of `npages` pages.",
    records=(
        Record("KObj", (("addr", "int"), ("size", "int"), ("usable", "int"), ("dma", "bool"),
                        ("block", "int"), ("next", "int")),
               doc="A live allocation: addr, the size asked for, the usable size the "
                   "allocator chose (the checker's ksize on a submission), GFP_DMA or not, "
                   "the held block that holds it (-1 if none), and the lowest live "
                   "allocation address above it (-1 if none)."),
        Record("Held", (("pfn", "int"), ("order", "int"), ("start", "int"), ("end", "int")),
               doc="A block held from `pages`: bytes start..end."),
        PAGE_EVENT,
    ),
    state=(
        StateVar("npages", "int", doc="Pages the page allocator `pages` manages."),
        StateVar("max_cache_size", "int", doc="The largest size class: 131072."),
        StateVar("max_size", "int", doc="KMALLOC_MAX_SIZE: the largest request, 4 MiB."),
        StateVar("zero_size_ptr", "int", doc="ZERO_SIZE_PTR, what kmalloc(0) returns: 16."),
        StateVar("objects", "set[KObj]", doc="The live allocations."),
        StateVar("held", "set[Held]", doc="The blocks held from `pages` now (the audit)."),
        *PAGE_AUDIT,
    ),
    operations=(
        Operation("kmalloc", (("size", "int"), ("flags", "int")), returns="int?",
                  raises=("ValueError",),
                  doc="size bytes aligned to 8 (ZERO_SIZE_PTR for 0); none when `pages` "
                      "refused or size > max_size; ValueError for a negative size."),
        Operation("kfree", (("addr", "int"),), returns="none", raises=("ValueError",),
                  doc="Give back a live allocation; 0 and ZERO_SIZE_PTR do nothing; "
                      "ValueError for anything else."),
        Operation("ksize", (("addr", "int"),), returns="int", raises=("ValueError",),
                  doc="The usable size of a live allocation (0 for ZERO_SIZE_PTR)."),
    ),
)


class Kmalloc:
    """The general caches malloc_sizes[] and the large allocations beside them."""

    def __init__(self, pages: PageProvider) -> None:
        self.pages = pages
        self.caches = {(size, dma): KmemCache(f"size-{size}{'(DMA)' if dma else ''}", size,
                                              ARCH_KMALLOC_MINALIGN, pages)
                       for size in CACHE_SIZES for dma in (False, True)}
        self.owner: dict[int, KmemCache] = {}  # a live object's address -> its cache
        self.large: dict[int, int] = {}  # a live large allocation's address -> its order
        self.asked: dict[int, tuple[int, bool]] = {}  # address -> (size asked, dma)

    def kmalloc(self, size: int, flags: int = 0) -> int | None:
        """__kmalloc: an object of the smallest class >= size, or a large block."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ValueError(f"kmalloc({size!r}): size must be an integer >= 0")
        if size == 0:
            return ZERO_SIZE_PTR
        if size > KMALLOC_MAX_SIZE:
            return None
        dma = bool(flags & GFP_DMA)
        if size > KMALLOC_MAX_CACHE_SIZE:
            addr = self._kmalloc_large(size)
        else:
            cache = self.caches[(kmalloc_class(size), dma)]
            addr = cache.alloc()
            if addr is not None:
                self.owner[addr] = cache
        if addr is not None:
            self.asked[addr] = (size, dma)
        return addr

    def _kmalloc_large(self, size: int) -> int | None:
        """kmalloc_large: a compound block of get_order(size) straight from `pages`."""
        order = get_order(size)
        pfn = self.pages.alloc_pages(order)
        if pfn is None:
            return None
        self.large[pfn * PAGE_SIZE] = order
        return pfn * PAGE_SIZE

    def _check_live(self, op: str, addr: int) -> None:
        if addr not in self.asked:
            raise ValueError(f"{op}({addr!r}): not a live kmalloc allocation "
                             f"(never returned, already freed, or inside one)")

    def kfree(self, addr: int) -> None:
        """kfree: back to its cache or to `pages`; nothing for NULL and ZERO_SIZE_PTR."""
        if addr in (0, ZERO_SIZE_PTR):
            return
        self._check_live("kfree", addr)
        del self.asked[addr]
        order = self.large.pop(addr, None)
        if order is not None:
            self.pages.free_pages(addr // PAGE_SIZE, order)
            return
        self.owner.pop(addr).free(addr)

    def ksize(self, addr: int) -> int:
        """ksize: the bytes usable at a live allocation."""
        if addr == ZERO_SIZE_PTR:
            return 0
        self._check_live("ksize", addr)
        order = self.large.get(addr)
        return PAGE_SIZE << order if order is not None else self.owner[addr].objsize

    def holds(self) -> dict[int, int]:
        """first pfn -> order of every block held from `pages` (slabs and large)."""
        held = {addr // PAGE_SIZE: order for addr, order in self.large.items()}
        for cache in self.caches.values():
            held.update(cache.holds())
        return held

    def snapshot(self, page_events: Sequence[PageEvent] = (), bad_page_frees: int = 0,
                 npages: int = 0) -> Snapshot:
        held = self.holds()
        live = {a: (size, dma, self.ksize(a)) for a, (size, dma) in self.asked.items()}
        return make_snapshot(npages, held, live, page_events, bad_page_frees)


def make_snapshot(npages: int, held: dict[int, int], live: dict[int, tuple[int, bool, int]],
                  page_events: Sequence[PageEvent], bad_page_frees: int) -> Snapshot:
    """The vocabulary from plain data: `live` maps addr -> (size, dma, usable)."""
    order = sorted(live)
    above = dict(zip(order, [*order[1:], -1]))  # noqa: B905 - one longer when empty
    values: dict[str, object] = {
        "npages": npages, "max_cache_size": KMALLOC_MAX_CACHE_SIZE,
        "max_size": KMALLOC_MAX_SIZE, "zero_size_ptr": ZERO_SIZE_PTR,
        "objects": frozenset(KObj(a, size, usable, dma, holding_slab(held, a), above[a])
                             for a, (size, dma, usable) in live.items()),
        "held": frozenset(Held(p, o, p * PAGE_SIZE, (p + (1 << o)) * PAGE_SIZE)
                          for p, o in held.items()),
        "page_events": list(page_events), "bad_page_frees": bad_page_frees}
    return snapshot_of(values)
