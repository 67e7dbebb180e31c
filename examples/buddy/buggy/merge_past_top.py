"""A buddy allocator with an off-by-one at the top order.

What it shows ([BUDDY-FREE-AREA]): with max_order = 11, Linux has free_area[11], orders 0..10,
and __free_one_page merges only while order < max_order - 1. Since Linux 6.4
the kernel's own constant MAX_PAGE_ORDER is the largest order (10), and its
loop reads `while (order < MAX_PAGE_ORDER)`. This student copied that loop
with the contract's max_order (11), and sized the lists to match, so two free
blocks of the top order merge into one block of order max_order, which
alloc never looks at.

Bug: free() merges while order < max_order instead of order < max_order - 1.

Expected counterexample: only once two top-order buddies are both free. On
4 pages with max_order 2 (top order 1): alloc(1) -> 0, free(0, 1) merges
blocks 0 and 2 into a block of order 2 (4 pages, beyond the top order), and
alloc(1) then returns None although all 4 pages are free.
"""


class BuddyAllocator:
    def __init__(self, npages, max_order=11):
        if npages < 1 or max_order < 1:  # docs/contract.md [BUDDY-INIT-ARGS]
            raise ValueError(f"no allocator: npages={npages}, max_order={max_order}")
        self.npages = npages
        self.max_order = max_order
        # one list per order 0 .. max_order, like free_area[NR_PAGE_ORDERS]
        self.free_area_lists = [[] for _ in range(max_order + 1)]
        self.allocated = {}

        top = max_order - 1
        pfn = 0
        while pfn < npages:
            order = top
            while pfn & ((1 << order) - 1) or pfn + (1 << order) > npages:
                order -= 1
            self.free_area_lists[order].append(pfn)
            pfn += 1 << order

    def alloc(self, order):
        if not isinstance(order, int) or order < 0 or order >= self.max_order:
            raise ValueError("order out of range")
        for current in range(order, self.max_order):
            lst = self.free_area_lists[current]
            if lst:
                pfn = lst.pop(0)
                while current > order:
                    current -= 1
                    self.free_area_lists[current].insert(0, pfn + (1 << current))
                self.allocated[pfn] = order
                return pfn
        return None

    def free(self, pfn, order):
        if not isinstance(order, int) or order < 0 or order >= self.max_order:
            raise ValueError("order out of range")
        if self.allocated.get(pfn) != order:
            raise ValueError("not allocated")
        del self.allocated[pfn]

        while order < self.max_order:
            buddy_pfn = pfn ^ (1 << order)
            if buddy_pfn not in self.free_area_lists[order]:
                break
            self.free_area_lists[order].remove(buddy_pfn)
            pfn = buddy_pfn & pfn
            order += 1
        self.free_area_lists[order].insert(0, pfn)

    def free_area(self):
        return [list(lst) for lst in self.free_area_lists]
