"""The reference buddy page allocator, as mm/page_alloc.c runs it for one zone.

`BuddyAllocator` implements the contract in docs/contract.md and follows
Linux name by name, so it can be read next to the kernel:

    boot          memblock_free_all -> __free_pages_memory -> __free_pages_core:
                  memory is handed over in the largest aligned power-of-two
                  chunks (at most order max_order - 1), each freed to the TAIL
                  of its list (FPI_TO_TAIL), lowest address first
    alloc(order)  __rmqueue_smallest: the head of the smallest non-empty free
                  list of order >= order, split by expand(), whose upper halves
                  go to the HEAD of the lower lists; then set_page_refcounted
    free(pfn, o)  __free_one_page: merge with the buddy pfn ^ (1 << order) while
                  page_is_buddy() says it is free, of the same order and inside
                  the zone, up to order max_order - 1; then add to the head,
                  or to the tail when buddy_merge_likely() (the parent's buddy
                  is free, so this block will probably merge soon)

Left out, because one zone of one node with no per-CPU lists has no use for
them: migrate types, pageblocks, PCP lists, watermarks, page shuffling.

Each free list `free_area[order]` is an `OrderedDict` used as an ordered set
of pfns: its FIRST entry is the list head (`get_page_from_free_area`), adding
to the head is `move_to_end(pfn, last=False)`, adding to the tail is a plain
insert, and removing any given buddy is O(1), as `list_del` is.

Per-page state lives in `MemMap` (model/page.py): PageBuddy and `private` on
the head of every free block, `_refcount` 1 on the head of every allocated
block. The allocator also keeps `allocated` (pfn -> order) and `free_pages`
(zone NR_FREE_PAGES), so that wrong frees are refused exactly and in O(1).

For the checker: `take_block` follows a submission's choice of block (a
refinement step), `can_allocate` judges a `None`, `snapshot` gives the
vocabulary below, and `snapshot_from_free_area` builds the same vocabulary from
a submission's `free_area()`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

from mmcheck.model.linux import DEFAULT_MAX_ORDER
from mmcheck.model.page import Block, MemMap, Page, build_pages
from mmcheck.model.vocabulary import Operation, Record, Snapshot, StateVar, Vocabulary

__all__ = [
    "VOCABULARY",
    "Block",
    "BuddyAllocator",
    "IllegalChoice",
    "Page",
    "snapshot_from_free_area",
]

# The largest max_order accepted: `private` is one byte, and 2**62 pages is
# more memory than any machine has.
MAX_MAX_ORDER = 63


VOCABULARY = Vocabulary(
    subsystem="buddy",
    doc="The buddy page allocator of one zone: free_area[max_order] over pfns [0, npages).",
    records=(
        Record("Block", (("pfn", "int"), ("order", "int")),
               doc="A block of 2**order pages whose first page is pfn."),
        Record("Page", (("pfn", "int"), ("buddy", "bool"), ("order", "int"),
                        ("refcount", "int")),
               doc="One struct page: PageBuddy, private (the free block's order when "
                   "buddy is set) and _refcount."),
    ),
    state=(
        StateVar("npages", "int", doc="Pages the zone manages: pfns 0 .. npages-1."),
        StateVar("max_order", "int", doc="Orders are 0 .. max_order-1 (free_area[MAX_ORDER])."),
        StateVar("free", "set[Block]",
                 doc="Free blocks as page state shows them: each page with PageBuddy "
                     "set heads one, of order private."),
        StateVar("allocated", "set[Block]",
                 doc="Blocks handed out by alloc and not yet freed."),
        StateVar("free_area", "list[Block]",
                 doc="Every entry of every free list, order by order, duplicates kept."),
        StateVar("free_pages", "int", doc="The zone's NR_FREE_PAGES counter."),
        StateVar("pages", "list[Page]", doc="The struct page of every pfn, in pfn order."),
        StateVar("buddy_pages", "set[Page]",
                 doc="The struct pages with PageBuddy set (what free-page checks look at; "
                     "cheap at any memory size)."),
        StateVar("used_pages", "set[Page]",
                 doc="The struct pages whose _refcount is not zero."),
    ),
    operations=(
        Operation("alloc", (("order", "int"),), returns="int?", raises=("ValueError",),
                  doc="First pfn of a newly allocated, naturally aligned block of "
                      "2**order pages; none when no such block is free."),
        Operation("free", (("pfn", "int"), ("order", "int")), returns="none",
                  raises=("ValueError",),
                  doc="Give back a block that alloc(order) returned and that is "
                      "still allocated."),
    ),
)


class IllegalChoice(ValueError):
    """A block the reference cannot hand out: raised by `BuddyAllocator.take_block`.

    Causes: an order outside 0..max_order-1; a block not aligned to its size;
    pages outside [0, npages); pages that are allocated; free pages that lie in
    more than one free block. The message says which, in words, naming the
    pages and the block that holds them. The state is left unchanged.
    """


def _pages(pfn: int, order: int) -> str:
    """'pages 8..11 are' or 'page 8 is': the subject of a message about a block."""
    return f"pages {pfn}..{pfn + (1 << order) - 1} are" if order else f"page {pfn} is"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class BuddyAllocator:
    """The buddy allocator of one zone of `npages` pages with `max_order` free lists."""

    def __init__(self, npages: int, max_order: int = DEFAULT_MAX_ORDER) -> None:
        self._init_zone(npages, max_order)
        self._memblock_free_all()

    def _init_zone(self, npages: int, max_order: int) -> None:
        """free_area_init_core for one zone: empty free lists, every page reserved."""
        if not _is_int(npages) or npages < 1:  # docs/contract.md [BUDDY-INIT-ARGS]
            raise ValueError(f"npages must be an integer >= 1, not {npages!r}")
        if not _is_int(max_order) or not 1 <= max_order <= MAX_MAX_ORDER:
            raise ValueError(f"max_order must be an integer in 1..{MAX_MAX_ORDER}, "
                             f"not {max_order!r}")
        self.npages = npages
        self.max_order = max_order
        self.mem_map = MemMap(npages)
        self.free_pages = 0  # NR_FREE_PAGES
        self._free_area: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(max_order)]
        self._allocated: dict[int, int] = {}

    @classmethod
    def reserved(cls, npages: int, max_order: int = DEFAULT_MAX_ORDER) -> BuddyAllocator:
        """A zone whose pages are all still reserved, as memmap_init_zone leaves them:
        nothing is free until memblock hands ranges over with `free_pages_core`
        (model/memblock.py). A reserved page is neither free nor allocated, so
        `free` refuses it."""
        zone = cls.__new__(cls)
        zone._init_zone(npages, max_order)
        return zone

    def free_pages_core(self, pfn: int, order: int) -> None:
        """__free_pages_core: hand a reserved, aligned block to the free lists, at the
        tail (FPI_TO_TAIL), merging with free buddies. ValueError if the block is
        not aligned, not inside the zone, or holds a page that is not reserved."""
        self._check_order("free_pages_core", order)
        end = pfn + (1 << order)
        if pfn % (1 << order) or not 0 <= pfn < end <= self.npages:
            raise ValueError(f"free_pages_core({pfn}, {order}): not an aligned block "
                             f"inside 0..{self.npages - 1}")
        mm = self.mem_map
        if self.block_containing(pfn) is not None or mm.buddy.find(1, pfn, end) >= 0 \
                or mm.refcount.count(0, pfn, end) != end - pfn:
            raise ValueError(f"free_pages_core({pfn}, {order}): the block holds pages "
                             "that are free or allocated, not reserved")
        self._free_one_page(pfn, order, to_tail=True)

    def __repr__(self) -> str:
        return (f"BuddyAllocator(npages={self.npages}, max_order={self.max_order}, "
                f"free_pages={self.free_pages}, allocated={len(self._allocated)} blocks)")

    # ---- boot -------------------------------------------------------------------

    def _memblock_free_all(self) -> None:
        """Hand [0, npages) to the allocator as __free_pages_memory does at boot.

        Chunks are the largest aligned powers of two, capped at the top order,
        freed lowest address first, each to the tail of its list (FPI_TO_TAIL),
        so the lowest pfn ends up at the head. No chunk can merge with another
        (each is maximal), so the run of top-order chunks is laid down in bulk:
        the same state one __free_one_page call per chunk would reach, fast
        enough for a million pages.
        """
        top = self.max_order - 1
        step = 1 << top
        nr_top = self.npages >> top
        if nr_top:
            end = nr_top << top
            self.mem_map.buddy[0:end:step] = b"\x01" * nr_top
            self.mem_map.private[0:end:step] = bytes((top,)) * nr_top
            self._free_area[top] = OrderedDict.fromkeys(range(0, end, step))
            self.free_pages += end
        start = nr_top << top
        while start < self.npages:
            # start is aligned to 2**top and fewer than 2**top pages remain, so
            # the largest power of two that fits is also aligned.
            order = (self.npages - start).bit_length() - 1
            self._free_one_page(start, order, to_tail=True)
            start += 1 << order

    # ---- free lists and struct page -----------------------------------------------

    def _page_is_buddy(self, buddy_pfn: int, order: int) -> bool:
        """page_is_buddy: `buddy_pfn` heads a free block of exactly `order` in this zone."""
        mm = self.mem_map
        return buddy_pfn < self.npages and mm.buddy[buddy_pfn] == 1 \
            and mm.private[buddy_pfn] == order

    def _add_to_free_list(self, pfn: int, order: int, to_tail: bool = False) -> None:
        """set_buddy_order + __add_to_free_list (head unless to_tail) + free-page accounting."""
        self.mem_map.private[pfn] = order
        self.mem_map.buddy[pfn] = 1
        area = self._free_area[order]
        area[pfn] = None
        if not to_tail:
            area.move_to_end(pfn, last=False)
        self.free_pages += 1 << order

    def _del_page_from_free_list(self, pfn: int, order: int) -> None:
        """del_page_from_free_list: list_del, __ClearPageBuddy, private = 0, accounting."""
        del self._free_area[order][pfn]
        self.mem_map.buddy[pfn] = 0
        self.mem_map.private[pfn] = 0
        self.free_pages -= 1 << order

    def _set_allocated(self, pfn: int, order: int) -> None:
        """prep_new_page's set_page_refcounted, and the allocator's own record."""
        self.mem_map.refcount[pfn] = 1
        self._allocated[pfn] = order

    # ---- alloc ------------------------------------------------------------------

    def _check_order(self, op: str, order: object) -> None:
        if isinstance(order, bool) or not isinstance(order, int) \
                or not 0 <= order < self.max_order:
            raise ValueError(f"{op}: order {order!r} is outside 0..{self.max_order - 1}")

    def alloc(self, order: int) -> int | None:
        """First pfn of a newly allocated block of 2**order pages, aligned to its size.

        None when no free block of order >= order exists: the free blocks are
        maximally coalesced, so then no aligned run of 2**order free pages does.
        ValueError for an order outside 0..max_order-1.
        """
        self._check_order("alloc", order)
        pfn = self._rmqueue_smallest(order)
        if pfn is not None:
            self._set_allocated(pfn, order)
        return pfn

    def _rmqueue_smallest(self, order: int) -> int | None:
        """__rmqueue_smallest: take the head of the smallest non-empty list >= order."""
        for current_order in range(order, self.max_order):
            area = self._free_area[current_order]
            if area:
                pfn = next(iter(area))  # get_page_from_free_area: the list head
                self._del_page_from_free_list(pfn, current_order)
                self._expand(pfn, order, current_order)
                return pfn
        return None

    def _expand(self, pfn: int, low: int, high: int) -> None:
        """expand: split a block of order `high` down to `low`, keeping the lower half.

        Each upper half goes to the head of the list of its order.
        """
        while high > low:
            high -= 1
            self._add_to_free_list(pfn + (1 << high), high)

    def can_allocate(self, order: int) -> bool:
        """Whether alloc(order) would succeed now: a free block of order >= order exists."""
        self._check_order("can_allocate", order)
        return any(self._free_area[o] for o in range(order, self.max_order))

    # ---- free -------------------------------------------------------------------

    def free(self, pfn: int, order: int) -> None:
        """Give back a block alloc(order) returned; ValueError for anything else.

        Refused, with the state unchanged: an order outside 0..max_order-1, a
        pfn outside [0, npages), a pfn that is free (double free, or never
        returned), a pfn inside an allocated block but not its head, and an
        order other than the one the block was allocated with.
        """
        self._check_order("free", order)
        if not _is_int(pfn) or not 0 <= pfn < self.npages:
            raise ValueError(f"free({pfn!r}, {order}): pfn {pfn!r} is outside "
                             f"0..{self.npages - 1}")
        allocated_order = self._allocated.get(pfn)
        if allocated_order is None:
            raise ValueError(f"free({pfn}, {order}): {self._why_not_allocated(pfn)}")
        if allocated_order != order:
            raise ValueError(f"free({pfn}, {order}): block {pfn} was allocated with order "
                             f"{allocated_order}, not {order}")
        del self._allocated[pfn]
        self.mem_map.refcount[pfn] = 0
        self._free_one_page(pfn, order, to_tail=False)

    def _why_not_allocated(self, pfn: int) -> str:
        found = self.block_containing(pfn)
        if found is None:  # unreachable while free and allocated blocks tile memory
            return f"pfn {pfn} was never returned by alloc"
        is_free, block = found
        if is_free:
            return (f"pfn {pfn} is free (in free block {block.pfn}, order {block.order}): "
                    f"a double free, or a pfn alloc never returned")
        return (f"pfn {pfn} is inside allocated block {block.pfn} (order {block.order}) "
                f"but is not its first page")

    def _free_one_page(self, pfn: int, order: int, to_tail: bool) -> None:
        """__free_one_page: merge with free buddies, then put the result on a list.

        Merging stops at the top order (max_order - 1), at a buddy that is not a
        free block of the same order, and at a buddy outside the zone.
        """
        while order < self.max_order - 1:
            buddy_pfn = pfn ^ (1 << order)  # __find_buddy_pfn
            if not self._page_is_buddy(buddy_pfn, order):
                break
            self._del_page_from_free_list(buddy_pfn, order)
            pfn &= buddy_pfn  # combined_pfn: the lower of the two
            order += 1
        if not to_tail:
            to_tail = self._buddy_merge_likely(pfn, order)
        self._add_to_free_list(pfn, order, to_tail)

    def _buddy_merge_likely(self, pfn: int, order: int) -> bool:
        """buddy_merge_likely: is the buddy of this block's parent free?

        If so, this block will probably merge as soon as its own buddy is
        freed, so Linux puts it at the tail, where it is handed out last.
        """
        if order >= self.max_order - 2:
            return False
        higher_pfn = pfn & ~(1 << order)
        return self._page_is_buddy(higher_pfn ^ (1 << (order + 1)), order + 1)

    # ---- refinement: follow a submission's choice ---------------------------------

    def take_block(self, pfn: int, order: int) -> None:
        """Allocate exactly [pfn, pfn + 2**order), splitting the free block around it.

        The block must be aligned to its size and lie inside one free block of
        any order >= order; break_down_buddy_pages (as take_page_off_buddy uses
        it) puts every other part back on the lists (at the head) as aligned
        buddies. IllegalChoice, with the state unchanged, otherwise.
        """
        if not _is_int(order) or not 0 <= order < self.max_order:
            raise IllegalChoice(f"order {order!r} is outside 0..{self.max_order - 1}")
        if not _is_int(pfn):
            raise IllegalChoice(f"pfn {pfn!r} is not an integer")
        size = 1 << order
        if pfn < 0 or pfn + size > self.npages:
            where = "not all inside" if order else "not inside"
            raise IllegalChoice(f"{_pages(pfn, order)} {where} 0..{self.npages - 1}")
        if pfn & (size - 1):
            raise IllegalChoice(f"pfn {pfn} order {order} is not aligned to {size} pages")
        found = self.block_containing(pfn)
        if found is None or not found[0]:
            raise IllegalChoice(self._why_not_free(pfn, order))
        block = found[1]
        if block.order < order:
            raise IllegalChoice(self._why_not_free(pfn, order))
        self._del_page_from_free_list(block.pfn, block.order)
        self._break_down_buddy_pages(block.pfn, pfn, order, block.order)
        self._set_allocated(pfn, order)

    def _break_down_buddy_pages(self, pfn: int, target: int, low: int, high: int) -> None:
        """break_down_buddy_pages: halve [pfn, 2**high) towards `target` of order `low`.

        At each halving the half without the target goes to the head of its list.
        """
        while high > low:
            high -= 1
            half = 1 << high
            if target >= pfn + half:
                self._add_to_free_list(pfn, high)
                pfn += half
            else:
                self._add_to_free_list(pfn + half, high)

    def _why_not_free(self, pfn: int, order: int) -> str:
        """Why [pfn, pfn + 2**order) is not inside one free block, in words."""
        last = pfn + (1 << order) - 1
        pages = _pages(pfn, order)
        p = pfn
        free_parts = []
        while p <= last:
            found = self.block_containing(p)
            if found is None:  # unreachable while free and allocated blocks tile memory
                return f"{pages} not free: {p} belongs to no block"
            is_free, block = found
            if not is_free:
                return (f"{pages} not free: {p} belongs to allocated block "
                        f"{block.pfn} (order {block.order})")
            free_parts.append(f"{block.pfn} (order {block.order})")
            p = block.pfn + (1 << block.order)
        # Unreachable while free blocks are maximally coalesced (an aligned
        # all-free block of order <= max_order - 1 then lies inside one).
        return (f"{pages} free but lie in {len(free_parts)} free blocks "
                f"({', '.join(free_parts)}), not inside one")

    # ---- reading the state ----------------------------------------------------------

    def block_containing(self, pfn: int) -> tuple[bool, Block] | None:
        """(is_free, block) for the free or allocated block holding page `pfn`, or None.

        A block of order k holding pfn starts at pfn rounded down to 2**k, so
        one look per order finds it.
        """
        if not 0 <= pfn < self.npages:
            return None
        mm = self.mem_map
        for order in range(self.max_order):
            head = pfn >> order << order
            if mm.buddy[head] and mm.private[head] == order:
                return True, Block(head, order)
            if self._allocated.get(head) == order:
                return False, Block(head, order)
        return None

    def page(self, pfn: int) -> Page:
        """The `struct page` of `pfn`: PageBuddy, private and _refcount."""
        return self.mem_map.page(pfn)

    @property
    def allocated(self) -> Mapping[int, int]:
        """The allocated blocks, pfn -> order (a read-only live view)."""
        return MappingProxyType(self._allocated)

    def nr_free(self, order: int) -> int:
        """free_area[order].nr_free: the length of that free list."""
        return len(self._free_area[order])

    def free_area(self) -> list[list[int]]:
        """For each order, the first pfns of its free blocks, list head first."""
        return [list(area) for area in self._free_area]

    def buddyinfo(self) -> str:
        """One line as /proc/buddyinfo prints it (frag_show_print in mm/vmstat.c)."""
        counts = "".join(f"{len(area):6d} " for area in self._free_area)
        return f"Node 0, zone {'Normal':>8s} {counts}\n"

    def snapshot(self) -> Snapshot:
        """The vocabulary's state now; later operations do not change it.

        Everything small is copied at once (free blocks, free lists, allocated
        blocks, counters); `pages`, one record per pfn, is built only when asked
        for, from a sparse copy of the page fields taken now.
        """
        buddy = self.mem_map.buddy_orders()
        refcount = self.mem_map.refcounts()
        free_area = [Block(pfn, order) for order, area in enumerate(self._free_area)
                     for pfn in area]
        return _make_snapshot(self.npages, self.max_order, buddy, refcount, free_area,
                              dict(self._allocated), self.free_pages)


def _make_snapshot(npages: int, max_order: int, buddy: Mapping[int, int],
                   refcount: Mapping[int, int], free_area: list[Block],
                   allocated: Mapping[int, int], free_pages: int) -> Snapshot:
    free = frozenset(Block(pfn, order) for pfn, order in buddy.items())
    allocated_blocks = frozenset(Block(pfn, order) for pfn, order in allocated.items())
    return Snapshot({
        "npages": lambda: npages,
        "max_order": lambda: max_order,
        "free": lambda: free,
        "allocated": lambda: allocated_blocks,
        "free_area": lambda: free_area,
        "free_pages": lambda: free_pages,
        "pages": lambda: build_pages(npages, buddy, refcount),
        "buddy_pages": lambda: frozenset(
            Page(pfn, True, order, refcount.get(pfn, 0))
            for pfn, order in buddy.items()
            if 0 <= pfn < npages
        ),
        "used_pages": lambda: frozenset(
            Page(pfn, pfn in buddy, buddy.get(pfn, 0), count) for pfn, count in refcount.items()
            if count and 0 <= pfn < npages
        ),
    })


def snapshot_from_free_area(npages: int, max_order: int,
                            free_area_lists: Sequence[Iterable[int]],
                            allocated: Mapping[int, int]) -> Snapshot:
    """The vocabulary of a submission, from its `free_area()` and the checker's records.

    `free_area_lists[order]` holds the first pfns of the free blocks of that
    order (as the contract's `free_area()` returns them); `allocated` maps the
    first pfn of every block the checker saw `alloc` return, and not yet
    freed, to its order. Page state is what those lists imply: PageBuddy on
    each listed pfn with private = its order (where a pfn is listed twice, the
    later entry wins, as a second `set_buddy_order` would), refcount 1 on each
    allocated head. `free_pages` is the pages the lists hold, duplicates counted,
    since a submission keeps no counter the contract can read. A listed pfn
    outside [0, npages) still appears in `free` and `free_area` (so specs catch
    it) but has no entry in `pages`. ValueError if an entry is not an integer.
    """
    free_area: list[Block] = []
    buddy: dict[int, int] = {}
    for order, area in enumerate(free_area_lists):
        for pfn in area:
            if not _is_int(pfn):
                raise ValueError(f"free_area()[{order}] holds {pfn!r}, not a pfn")
            free_area.append(Block(pfn, order))
            buddy[pfn] = order
    free_pages = sum(1 << block.order for block in free_area)
    refcount = {pfn: 1 for pfn in allocated}
    return _make_snapshot(npages, max_order, buddy, refcount, free_area, dict(allocated),
                          free_pages)
