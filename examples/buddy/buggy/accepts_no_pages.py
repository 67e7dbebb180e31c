"""A buddy allocator that makes an allocator of no pages.

What it shows: [BUDDY-INIT-ARGS]. `npages < 1` or `max_order < 1` makes no
allocator: the constructor raises ValueError. Accepting them hides a caller's
bug (a memory size computed as zero) until the first alloc, far from its cause.

Bug: the constructor checks nothing; BuddyAllocator(0, 11) is an allocator
whose every alloc returns None (and max_order 0 one with no free lists at all).

Expected counterexample (one step): the constructor step BuddyAllocator(0, m)
(or (n, 0)) made an object: refinement.
"""

import bisect


class BuddyAllocator:
    def __init__(self, npages, max_order=11):
        self.npages = npages
        self.max_order = max_order
        # lists[k]: sorted first pfns of the free blocks of 2**k pages
        self.lists = [[] for _ in range(max_order)]
        # blocks we handed out: first pfn -> order
        self.in_use = {}

        # Cut memory into the biggest aligned power-of-two pieces we can.
        pfn = 0
        while pfn < npages:
            order = max_order - 1
            while order > 0 and (pfn % (1 << order) != 0 or pfn + (1 << order) > npages):
                order -= 1
            self.lists[order].append(pfn)
            pfn += 1 << order

    def _check_order(self, order):
        if not isinstance(order, int) or order < 0 or order >= self.max_order:
            raise ValueError(f"bad order: {order!r}")

    def alloc(self, order):
        self._check_order(order)

        # smallest order that has a free block
        k = order
        while k < self.max_order and not self.lists[k]:
            k += 1
        if k == self.max_order:
            return None

        pfn = self.lists[k].pop(0)  # lowest address
        # split down to the size asked for; the upper halves stay free
        while k > order:
            k -= 1
            bisect.insort(self.lists[k], pfn + (1 << k))

        self.in_use[pfn] = order
        return pfn

    def free(self, pfn, order):
        self._check_order(order)
        if pfn not in self.in_use:
            raise ValueError(f"pfn {pfn!r} was not allocated (or is already free)")
        if self.in_use[pfn] != order:
            raise ValueError(f"pfn {pfn} was allocated with order {self.in_use[pfn]}, "
                             f"not {order}")
        del self.in_use[pfn]

        # merge with the buddy for as long as it is free too
        while order < self.max_order - 1:
            buddy = pfn ^ (1 << order)
            free_list = self.lists[order]
            i = bisect.bisect_left(free_list, buddy)
            if i == len(free_list) or free_list[i] != buddy:
                break  # buddy is (partly) in use, or does not exist
            free_list.pop(i)
            pfn = min(pfn, buddy)
            order += 1

        bisect.insort(self.lists[order], pfn)

    def free_area(self):
        return [list(free_list) for free_list in self.lists]
