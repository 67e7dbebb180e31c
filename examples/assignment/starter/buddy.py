"""Lab 2 starter code: a buddy page allocator (see handout.md).

Fill in the three methods. Keep one free list per order; split a larger block
when no block of the asked order is free; on free, merge the block with its
buddy (pfn ^ (1 << order)) for as long as the buddy is free too.
"""


class BuddyAllocator:
    def __init__(self, npages: int, max_order: int = 11) -> None:
        """All of [0, npages) free: carve it into the largest aligned blocks."""
        raise NotImplementedError

    def alloc(self, order: int) -> int | None:
        """The first pfn of a free, aligned block of 2**order pages, or None."""
        raise NotImplementedError

    def free(self, pfn: int, order: int) -> None:
        """Give back a block alloc(order) returned; ValueError for anything else."""
        raise NotImplementedError

    def free_area(self) -> list[list[int]]:
        """For each order, the first pfns of its free blocks (optional)."""
        raise NotImplementedError
