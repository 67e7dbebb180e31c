"""A buddy allocator that merges with pages past the end of memory.

What it shows ([BUDDY-ALLOC-BLOCK]): when npages is not a multiple of the top block size, the
buddy of a block near the end can lie partly or wholly past npages, and such a
buddy must never count as free. This student decides whether the buddy is
free by checking that none of its pages is in use, and skips pages past the
end to avoid an IndexError, so pages that do not exist look free.

Bug: the "is the buddy free" test ignores pages >= npages, so a block merges
with a buddy that lies past the end of memory.

Expected counterexample: only when npages is not a multiple of
2**(max_order-1). On 6 pages with max_order 4: alloc(1) -> 4, free(4, 1)
merges with the missing pages 6..7 and then with block 0, giving a free
block of 8 pages at 0 on 6 pages of memory; alloc(2) -> 0 and alloc(2) -> 4
then hand out pages 6 and 7, which do not exist.
"""


class BuddyAllocator:
    def __init__(self, npages, max_order=11):
        if npages < 1 or max_order < 1:  # docs/contract.md [BUDDY-INIT-ARGS]
            raise ValueError(f"no allocator: npages={npages}, max_order={max_order}")
        self.npages = npages
        self.max_order = max_order
        self.in_use = [False] * npages   # one flag per page
        self.lists = [[] for _ in range(max_order)]
        self.blocks = {}                 # allocated: pfn -> order

        pfn = 0
        while pfn < npages:
            order = max_order - 1
            while pfn % (1 << order) or pfn + (1 << order) > npages:
                order -= 1
            self.lists[order].append(pfn)
            pfn += 1 << order

    def _range_is_free(self, pfn, order):
        for p in range(pfn, pfn + (1 << order)):
            if p < self.npages and self.in_use[p]:
                return False
        return True

    def alloc(self, order):
        if not isinstance(order, int) or not 0 <= order < self.max_order:
            raise ValueError("order out of range")
        for k in range(order, self.max_order):
            if self.lists[k]:
                pfn = self.lists[k].pop()
                while k > order:
                    k -= 1
                    self.lists[k].append(pfn + (1 << k))
                for p in range(pfn, min(pfn + (1 << order), self.npages)):
                    self.in_use[p] = True
                self.blocks[pfn] = order
                return pfn
        return None

    def free(self, pfn, order):
        if not isinstance(order, int) or not 0 <= order < self.max_order:
            raise ValueError("order out of range")
        if self.blocks.get(pfn) != order:
            raise ValueError("not an allocated block")
        del self.blocks[pfn]
        for p in range(pfn, min(pfn + (1 << order), self.npages)):
            self.in_use[p] = False

        # swallow the buddy for as long as all of its pages are free
        while order < self.max_order - 1:
            buddy = pfn ^ (1 << order)
            if not self._range_is_free(buddy, order):
                break
            if buddy in self.lists[order]:
                self.lists[order].remove(buddy)
            pfn = min(pfn, buddy)
            order += 1
        self.lists[order].append(pfn)

    def free_area(self):
        return [list(lst) for lst in self.lists]
