"""A correct buddy allocator written after mm/page_alloc.c.

What it shows ([BUDDY-ALLOC-CHOICE]): a submission that follows Linux closely. Each page has a buddy
flag and an order, as struct page has PageBuddy and page->private;
free lists hold the first pfn of each free block, the most recently freed at
the head; alloc is __rmqueue_smallest + expand, free is __free_one_page.

Bug: none.

Expected: no counterexample; every spec holds and every check passes. Its
choices are usually, but not always, the reference's: it always frees to the
head (no buddy_merge_likely), so the checker follows its choice when they differ.
"""


class BuddyAllocator:
    def __init__(self, npages, max_order=11):
        if npages < 1 or max_order < 1:  # docs/contract.md [BUDDY-INIT-ARGS]
            raise ValueError(f"no allocator: npages={npages}, max_order={max_order}")
        self.npages = npages
        self.max_order = max_order
        # struct page, one field per list: PageBuddy and page->private
        self.page_buddy = [False] * npages
        self.page_order = [0] * npages
        # free_area[k][-1] is the head: push and pop at the end of the list
        self.free_area_lists = [[] for _ in range(max_order)]
        self.allocated = {}

        # memblock: biggest aligned chunks first, each freed like any block
        start = 0
        while start < npages:
            order = max_order - 1
            while start & ((1 << order) - 1) or start + (1 << order) > npages:
                order -= 1
            self._free_one_page(start, order)
            start += 1 << order

    def _add_to_free_list(self, pfn, order):
        self.page_buddy[pfn] = True
        self.page_order[pfn] = order
        self.free_area_lists[order].append(pfn)

    def _del_page_from_free_list(self, pfn, order):
        self.free_area_lists[order].remove(pfn)
        self.page_buddy[pfn] = False
        self.page_order[pfn] = 0

    def _page_is_buddy(self, buddy, order):
        return (buddy < self.npages and self.page_buddy[buddy]
                and self.page_order[buddy] == order)

    def alloc(self, order):
        if not isinstance(order, int) or not 0 <= order < self.max_order:
            raise ValueError(f"order {order!r} out of range")
        for current in range(order, self.max_order):
            if self.free_area_lists[current]:
                pfn = self.free_area_lists[current][-1]
                self._del_page_from_free_list(pfn, current)
                # expand(): give back the upper halves
                while current > order:
                    current -= 1
                    self._add_to_free_list(pfn + (1 << current), current)
                self.allocated[pfn] = order
                return pfn
        return None

    def free(self, pfn, order):
        if not isinstance(order, int) or not 0 <= order < self.max_order:
            raise ValueError(f"order {order!r} out of range")
        if self.allocated.get(pfn) != order:
            raise ValueError(f"free({pfn!r}, {order!r}): not an allocated block of that order")
        del self.allocated[pfn]
        self._free_one_page(pfn, order)

    def _free_one_page(self, pfn, order):
        while order < self.max_order - 1:
            buddy = pfn ^ (1 << order)
            if not self._page_is_buddy(buddy, order):
                break
            self._del_page_from_free_list(buddy, order)
            pfn &= buddy
            order += 1
        self._add_to_free_list(pfn, order)

    def free_area(self):
        # head first, as the kernel would walk the list
        return [list(reversed(lst)) for lst in self.free_area_lists]
