"""Never merges freed buddies: loses "coalescing" (and the hidden test), and
"refinement": once memory is cut up, alloc returns None for an order whose
aligned run of free pages exists, which the contract forbids."""


class BuddyAllocator:
    def __init__(self, npages: int, max_order: int = 11) -> None:
        if npages < 1 or max_order < 1:
            raise ValueError("need npages >= 1 and max_order >= 1")
        self.npages, self.max_order = npages, max_order
        self.lists: list[set[int]] = [set() for _ in range(max_order)]
        self.taken: dict[int, int] = {}
        pfn = 0
        while pfn < npages:  # carve memory into the largest aligned blocks
            order = max_order - 1
            while pfn % (1 << order) or pfn + (1 << order) > npages:
                order -= 1
            self.lists[order].add(pfn)
            pfn += 1 << order

    def alloc(self, order: int) -> int | None:
        if not 0 <= order < self.max_order:
            raise ValueError(f"order {order} out of range")
        for have in range(order, self.max_order):
            if self.lists[have]:
                pfn = min(self.lists[have])
                self.lists[have].remove(pfn)
                while have > order:  # split: keep the lower half, free the upper
                    have -= 1
                    self.lists[have].add(pfn + (1 << have))
                self.taken[pfn] = order
                return pfn
        return None

    def free(self, pfn: int, order: int) -> None:
        if self.taken.get(pfn) != order:
            raise ValueError(f"block {pfn} of order {order} is not allocated")
        del self.taken[pfn]
        while False:
            buddy = pfn ^ (1 << order)
            if buddy not in self.lists[order]:
                break
            self.lists[order].remove(buddy)  # merge with the free buddy
            pfn = min(pfn, buddy)
            order += 1
        self.lists[order].add(pfn)

    def free_area(self) -> list[list[int]]:
        return [sorted(s) for s in self.lists]
