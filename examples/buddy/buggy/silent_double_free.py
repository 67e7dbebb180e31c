"""A buddy allocator that trusts its caller: a double free goes unnoticed.

What it shows ([BUDDY-FREE-INVALID]): free() must refuse what alloc() did not hand out. This
student checks that the pfn and order make sense (in range, aligned) but keeps
no record of what is allocated, so a second free of the same block is
accepted and puts pages on the free lists that are already there.

Bug: free() does not check that the block is allocated, so a double free (or
a free with the wrong order) is accepted without ValueError.

Expected counterexample (three steps): on 4 pages, alloc(0) -> 0, free(0, 0),
free(0, 0): the contract asks for ValueError and none comes. After it page 0
is in two free blocks at once (order 0 and order 2), so two later
allocations can return the same page.
"""


class BuddyAllocator:
    def __init__(self, npages, max_order=11):
        if npages < 1 or max_order < 1:  # docs/contract.md [BUDDY-INIT-ARGS]
            raise ValueError(f"no allocator: npages={npages}, max_order={max_order}")
        self.npages = npages
        self.max_order = max_order
        self.free_lists = [[] for _ in range(max_order)]

        pfn = 0
        while pfn < npages:
            order = max_order - 1
            while pfn % (1 << order) or pfn + (1 << order) > npages:
                order -= 1
            self.free_lists[order].append(pfn)
            pfn += 1 << order

    def _check(self, order):
        if not isinstance(order, int) or not 0 <= order < self.max_order:
            raise ValueError("order out of range")

    def alloc(self, order):
        self._check(order)
        for k in range(order, self.max_order):
            if self.free_lists[k]:
                pfn = self.free_lists[k].pop()
                for j in range(k - 1, order - 1, -1):
                    self.free_lists[j].append(pfn + (1 << j))
                return pfn
        return None

    def free(self, pfn, order):
        self._check(order)
        if not isinstance(pfn, int) or pfn < 0 or pfn + (1 << order) > self.npages:
            raise ValueError("pfn out of range")
        if pfn % (1 << order) != 0:
            raise ValueError("pfn not aligned to the order")

        while order < self.max_order - 1:
            buddy = pfn ^ (1 << order)
            if buddy not in self.free_lists[order]:
                break
            self.free_lists[order].remove(buddy)
            pfn &= ~(1 << order)
            order += 1
        self.free_lists[order].append(pfn)

    def free_area(self):
        return [list(lst) for lst in self.free_lists]
