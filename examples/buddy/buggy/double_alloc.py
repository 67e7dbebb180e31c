"""A buddy allocator that can hand out the same block twice.

What it shows ([BUDDY-ALLOC-BLOCK]): allocation has two paths. When the smallest free block that
fits is bigger than asked for, it is popped and split; when it already has
exactly the right size, this student only looks at it (lst[-1]) and forgets
to take it off the list. The block stays free while it is in use.

Bug: the exact-fit path of alloc() reads the block but never removes it
from its free list.

Expected counterexample (three steps): on 4 pages with max_order 3,
alloc(0) -> 0 (a split, correct), alloc(0) -> 1, alloc(0) -> 1 again: block
1 is allocated twice, and it is in use and on a free list at once.
"""


class BuddyAllocator:
    def __init__(self, npages, max_order=11):
        if npages < 1 or max_order < 1:  # docs/contract.md [BUDDY-INIT-ARGS]
            raise ValueError(f"no allocator: npages={npages}, max_order={max_order}")
        self.npages = npages
        self.max_order = max_order
        self.lists = [[] for _ in range(max_order)]
        self.used = {}

        addr = 0
        while addr < npages:
            k = max_order - 1
            while addr % (1 << k) != 0 or addr + (1 << k) > npages:
                k -= 1
            self.lists[k].append(addr)
            addr += 1 << k

    def alloc(self, order):
        if not isinstance(order, int) or order < 0 or order >= self.max_order:
            raise ValueError("order must be in [0, max_order)")

        k = order
        while k < self.max_order and len(self.lists[k]) == 0:
            k += 1
        if k == self.max_order:
            return None                      # out of memory

        if k == order:
            # a block of exactly the right size: just use it
            pfn = self.lists[k][-1]
        else:
            # too big: take it and split off upper halves
            pfn = self.lists[k].pop()
            while k > order:
                k -= 1
                self.lists[k].append(pfn + (1 << k))

        self.used[pfn] = order
        return pfn

    def free(self, pfn, order):
        if not isinstance(order, int) or order < 0 or order >= self.max_order:
            raise ValueError("order must be in [0, max_order)")
        if self.used.get(pfn) != order:
            raise ValueError("free of a block that is not allocated")
        del self.used[pfn]

        while order + 1 < self.max_order:
            buddy = pfn ^ (1 << order)
            if buddy in self.lists[order]:
                self.lists[order].remove(buddy)
                pfn = pfn & buddy
                order += 1
            else:
                break
        self.lists[order].append(pfn)

    def free_area(self):
        return [lst[:] for lst in self.lists]
