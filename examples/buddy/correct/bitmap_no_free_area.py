"""A correct BuddyAllocator with no free lists at all, and no free_area().

What it shows: [BUDDY-FREE-AREA-CHOICE] and [BUDDY-ALLOC-CHOICE]. The contract
asks only for what alloc() and free() do: an aligned block of free pages, None
only when no aligned run of 2**order free pages exists, ValueError for bad
orders and bad frees. How free memory is kept is the implementation's business.
This one keeps one bit per page and, for alloc(order), scans the aligned windows
of 2**order pages from the top of memory down; merging buddies happens by
itself, since a window is free when all its pages are. Having no free_area(),
it cannot show free lists, so the properties about them (and Linux's
struct page, counters and coalescing) are reported as "not observable on this
submission", never as passed.

Bug: none. Expected: no counterexample; white-box properties n/a.
"""


class BuddyAllocator:
    def __init__(self, npages, max_order=11):
        if npages < 1 or max_order < 1:  # docs/contract.md [BUDDY-INIT-ARGS]
            raise ValueError(f"no allocator: npages={npages}, max_order={max_order}")
        if npages < 1 or max_order < 1:
            raise ValueError("need at least one page and one order")
        self.npages = npages
        self.max_order = max_order
        self.used = [False] * npages
        self.blocks = {}  # first pfn -> order of every allocated block

    def alloc(self, order):
        if not isinstance(order, int) or order < 0 or order >= self.max_order:
            raise ValueError(f"bad order: {order!r}")
        size = 1 << order
        start = (self.npages - size) // size * size  # the highest aligned window
        for pfn in range(start, -1, -size):
            if not any(self.used[pfn:pfn + size]):
                for p in range(pfn, pfn + size):
                    self.used[p] = True
                self.blocks[pfn] = order
                return pfn
        return None

    def free(self, pfn, order):
        if self.blocks.get(pfn) != order or not isinstance(order, int):
            raise ValueError(f"({pfn!r}, {order!r}) is not an allocated block")
        del self.blocks[pfn]
        for p in range(pfn, pfn + (1 << order)):
            self.used[p] = False
