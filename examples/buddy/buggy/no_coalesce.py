"""A buddy allocator that splits blocks but never merges them again.

What it shows ([BUDDY-ALLOC-NONE]): the classic first bug of a buddy allocator. Allocation splits
big blocks correctly, but free() just puts the block back on the list of its
own order and never looks at its buddy, so memory fragments for good.

Bug: free() never coalesces a freed block with its free buddy.

Expected counterexample (three steps): on 2 pages with max_order 2, alloc(0)
returns 0 and free(0, 0) leaves blocks 0 and 1 of order 0 both free, and
alloc(1) now returns None although both pages are free: the contract's
[BUDDY-ALLOC-NONE] (the refinement check and alloc_fails_only_when_full).
That the two buddies stay apart is not itself a contract violation (a lazy
allocator may merge later): `coalesced` states it for the reference model only.
"""


class BuddyAllocator:
    def __init__(self, npages, max_order=11):
        if npages < 1 or max_order < 1:  # docs/contract.md [BUDDY-INIT-ARGS]
            raise ValueError(f"no allocator: npages={npages}, max_order={max_order}")
        self.npages = npages
        self.max_order = max_order
        self.free_lists = []
        for _ in range(max_order):
            self.free_lists.append([])
        self.allocated = {}

        # carve memory into the largest aligned blocks
        pfn = 0
        while pfn < npages:
            order = max_order - 1
            while order > 0:
                size = 2 ** order
                if pfn % size == 0 and pfn + size <= npages:
                    break
                order -= 1
            self.free_lists[order].append(pfn)
            pfn += 2 ** order

    def alloc(self, order):
        if type(order) is not int or order < 0 or order >= self.max_order:
            raise ValueError("invalid order")

        # find the smallest block that is big enough
        found = None
        for k in range(order, self.max_order):
            if len(self.free_lists[k]) > 0:
                found = k
                break
        if found is None:
            return None

        pfn = self.free_lists[found].pop()
        # split it in halves until it has the right size
        k = found
        while k > order:
            k -= 1
            self.free_lists[k].append(pfn + 2 ** k)

        self.allocated[pfn] = order
        return pfn

    def free(self, pfn, order):
        if type(order) is not int or order < 0 or order >= self.max_order:
            raise ValueError("invalid order")
        if pfn not in self.allocated:
            raise ValueError("this block is not allocated")
        if self.allocated[pfn] != order:
            raise ValueError("wrong order for this block")
        del self.allocated[pfn]

        # give the block back
        # TODO: merge with the buddy when it is free
        self.free_lists[order].append(pfn)

    def free_area(self):
        return [list(lst) for lst in self.free_lists]
