"""A buddy allocator whose split forgets to give the upper halves back.

What it shows ([BUDDY-ALLOC-NONE]): splitting a block of order k down to order j leaves k - j
free upper halves, one of each order j .. k-1; every one must go back on a
free list. This student records the size of each half (for free() to use)
but never puts it on a list, so those pages leak: nobody can allocate them
and nothing can merge with them.

Bug: the split loop computes each upper half but never adds it to the free list.

Expected counterexample: on 4 pages with max_order 3, alloc(0) returns 0 and
then the free lists are empty although pages 1..3 are free: the free
blocks and the allocated blocks no longer cover memory, the free page count
drops by 4 instead of 1, and the next alloc(0) returns None.
"""


class BuddyAllocator:
    def __init__(self, npages, max_order=11):
        if npages < 1 or max_order < 1:  # docs/contract.md [BUDDY-INIT-ARGS]
            raise ValueError(f"no allocator: npages={npages}, max_order={max_order}")
        self.npages = npages
        self.max_order = max_order
        self.free_lists = [[] for _ in range(max_order)]
        self.order_of = {}      # first pfn of a block -> its order
        self.allocated = set()  # first pfns of blocks in use

        start = 0
        while start < npages:
            order = max_order - 1
            while start % (2 ** order) != 0 or start + 2 ** order > npages:
                order -= 1
            self.free_lists[order].append(start)
            self.order_of[start] = order
            start += 2 ** order

    def alloc(self, order):
        if not isinstance(order, int) or order < 0 or order >= self.max_order:
            raise ValueError("order out of range")

        k = order
        while k < self.max_order and not self.free_lists[k]:
            k += 1
        if k == self.max_order:
            return None

        pfn = self.free_lists[k].pop(0)
        while k > order:
            k -= 1
            upper = pfn + 2 ** k
            self.order_of[upper] = k   # the upper half is a free block of order k

        self.order_of[pfn] = order
        self.allocated.add(pfn)
        return pfn

    def free(self, pfn, order):
        if not isinstance(order, int) or order < 0 or order >= self.max_order:
            raise ValueError("order out of range")
        if pfn not in self.allocated or self.order_of[pfn] != order:
            raise ValueError("not an allocated block of this order")
        self.allocated.remove(pfn)

        while order < self.max_order - 1:
            buddy = pfn ^ (2 ** order)
            if buddy not in self.free_lists[order]:
                break
            self.free_lists[order].remove(buddy)
            pfn = min(pfn, buddy)
            order += 1
        self.order_of[pfn] = order
        self.free_lists[order].append(pfn)

    def free_area(self):
        return [list(lst) for lst in self.free_lists]
