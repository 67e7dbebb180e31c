"""A buddy allocator that carves memory at boot into blocks that are not aligned.

What it shows ([BUDDY-ALLOC-BLOCK]): a block of 2**k pages must start at a multiple of 2**k; the
buddy arithmetic (pfn ^ 2**k) is only right for aligned blocks. This student
carves the memory that is left after the full-size blocks by walking the bits
of the remaining size from the lowest up, so a small piece comes first and the
bigger pieces after it start at the wrong offset.

Bug: the boot code lays the leftover blocks out smallest first, so they are not
naturally aligned.

Expected counterexample: only for some sizes, those where the leftover part
(npages modulo 2**(max_order-1)) has two or more bits set. On 12 pages with
max_order 11 the free blocks at boot are 4 pages at 0 and 8 pages at 4, and
alloc(3) returns 4, which is not a multiple of 8. With a power-of-two npages
(up to 2**(max_order-1)) it behaves correctly.
"""


class BuddyAllocator:
    def __init__(self, npages, max_order=11):
        if npages < 1 or max_order < 1:  # docs/contract.md [BUDDY-INIT-ARGS]
            raise ValueError(f"no allocator: npages={npages}, max_order={max_order}")
        self.npages = npages
        self.max_order = max_order
        self.free_lists = [[] for _ in range(max_order)]
        self.allocated = {}

        top = max_order - 1
        start = 0
        # as many full-size blocks as fit
        while npages - start >= 2 ** top:
            self.free_lists[top].append(start)
            start += 2 ** top
        # then one block for each bit of what is left
        left = npages - start
        for order in range(top):
            if left & (1 << order):
                self.free_lists[order].append(start)
                start += 1 << order

    def alloc(self, order):
        if not isinstance(order, int) or order < 0 or order >= self.max_order:
            raise ValueError("bad order")
        for k in range(order, self.max_order):
            if self.free_lists[k]:
                pfn = self.free_lists[k].pop(0)
                while k > order:
                    k -= 1
                    self.free_lists[k].append(pfn + (1 << k))
                self.allocated[pfn] = order
                return pfn
        return None

    def free(self, pfn, order):
        if not isinstance(order, int) or order < 0 or order >= self.max_order:
            raise ValueError("bad order")
        if self.allocated.get(pfn) != order:
            raise ValueError("not allocated with this order")
        del self.allocated[pfn]
        while order < self.max_order - 1:
            buddy = pfn ^ (1 << order)
            if buddy in self.free_lists[order]:
                self.free_lists[order].remove(buddy)
                pfn = min(pfn, buddy)
                order += 1
            else:
                break
        self.free_lists[order].insert(0, pfn)

    def free_area(self):
        return [list(lst) for lst in self.free_lists]
