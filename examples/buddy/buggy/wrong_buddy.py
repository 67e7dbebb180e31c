"""A buddy allocator that looks for a block's buddy on the wrong side.

What it shows ([BUDDY-FREE-AREA]): the buddy of a block of order k at pfn is pfn ^ 2**k: the
block right AFTER it when pfn is a multiple of 2**(k+1), the block right
BEFORE it otherwise. This student always looks right after the block
(pfn + 2**k). For a lower half that is correct, which is why simple tests pass.

Bug: the buddy is computed as pfn + (1 << order) instead of pfn ^ (1 << order).

Expected counterexample: freeing an upper half never merges with its real
buddy, and when the block after it is free it merges with that instead,
giving a block that is not aligned. On 4 pages: alloc(0) four times (0, 1,
2, 3), then free(2, 0) and free(1, 0): pages 1..2 become one free block of
order 1 at pfn 1, which is not a multiple of 2.
"""


class BuddyAllocator:
    def __init__(self, npages, max_order=11):
        if npages < 1 or max_order < 1:  # docs/contract.md [BUDDY-INIT-ARGS]
            raise ValueError(f"no allocator: npages={npages}, max_order={max_order}")
        self.npages = npages
        self.max_order = max_order
        self.free_lists = [set() for _ in range(max_order)]
        self.allocated = {}  # pfn -> order

        pfn = 0
        while pfn < npages:
            order = max_order - 1
            while pfn % (1 << order) or pfn + (1 << order) > npages:
                order -= 1
            self.free_lists[order].add(pfn)
            pfn += 1 << order

    def alloc(self, order):
        if not isinstance(order, int) or not 0 <= order < self.max_order:
            raise ValueError(f"order {order} out of range")
        for k in range(order, self.max_order):
            if self.free_lists[k]:
                pfn = min(self.free_lists[k])
                self.free_lists[k].remove(pfn)
                while k > order:
                    k -= 1
                    self.free_lists[k].add(pfn + (1 << k))
                self.allocated[pfn] = order
                return pfn
        return None

    def free(self, pfn, order):
        if not isinstance(order, int) or not 0 <= order < self.max_order:
            raise ValueError(f"order {order} out of range")
        if self.allocated.get(pfn) != order:
            raise ValueError(f"block {pfn} of order {order} is not allocated")
        del self.allocated[pfn]

        # coalesce with the buddy while it is free
        while order < self.max_order - 1:
            buddy = pfn + (1 << order)   # the block next to us
            if buddy not in self.free_lists[order]:
                break
            self.free_lists[order].remove(buddy)
            pfn = min(pfn, buddy)
            order += 1
        self.free_lists[order].add(pfn)

    def free_area(self):
        return [sorted(s) for s in self.free_lists]
