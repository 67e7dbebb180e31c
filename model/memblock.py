"""memblock: the boot-time memory map, and its hand-over to the buddy allocator.

Before the buddy allocator exists, the kernel tracks physical memory in
`memblock` (mm/memblock.c): `memblock.memory` lists the RAM ranges the
firmware reported, `memblock.reserved` the ranges already in use (the kernel
image, initrd, `mem_map` itself, the zero page, ...). At the end of boot
`memblock_free_all` (`free_all_bootmem` before 5.2) walks the free ranges,
memory minus reserved, and `__free_pages_memory` hands each to the buddy
allocator in the largest naturally aligned power-of-two chunks that fit, at
most order MAX_ORDER - 1, lowest address first. Reserved pages stay
PG_reserved and never enter the buddy allocator.

Ranges are in pfns, half-open `[start, end)` (Linux keeps bytes; memory is
rounded inwards to whole pages, reserved outwards, as `memblock_free_all`'s
`PFN_UP`/`PFN_DOWN` do).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from mmcheck.model.linux import PAGE_SHIFT, PAGE_SIZE

__all__ = ["Memblock", "free_pages_memory"]


@dataclass
class Memblock:
    """`struct memblock`: RAM ranges and reserved ranges, in pfns, kept sorted and merged."""

    memory: list[tuple[int, int]] = field(default_factory=list)
    reserved: list[tuple[int, int]] = field(default_factory=list)

    def memblock_add(self, base: int, size: int) -> None:
        """memblock_add: bytes [base, base + size) are RAM (whole pages inside it)."""
        start = -(-base // PAGE_SIZE)
        end = (base + size) >> PAGE_SHIFT
        if start < end:
            self.memory = _merge(self.memory + [(start, end)])

    def memblock_reserve(self, base: int, size: int) -> None:
        """memblock_reserve: bytes [base, base + size) are in use (every page they touch)."""
        start = base >> PAGE_SHIFT
        end = -(-(base + size) // PAGE_SIZE)
        if start < end:
            self.reserved = _merge(self.reserved + [(start, end)])

    def free_ranges(self) -> list[tuple[int, int]]:
        """for_each_free_mem_range: memory minus reserved, as sorted pfn ranges."""
        out: list[tuple[int, int]] = []
        for start, end in self.memory:
            for r_start, r_end in self.reserved:
                if r_end <= start or r_start >= end:
                    continue
                if r_start > start:
                    out.append((start, r_start))
                start = max(start, r_end)
            if start < end:
                out.append((start, end))
        return out

    def memblock_free_all(self, max_order: int) -> Iterator[tuple[int, int]]:
        """memblock_free_all: every (pfn, order) chunk handed to the buddy allocator, in order."""
        for start, end in self.free_ranges():
            yield from free_pages_memory(start, end, max_order)


def free_pages_memory(start: int, end: int, max_order: int) -> Iterator[tuple[int, int]]:
    """__free_pages_memory: [start, end) as the largest aligned power-of-two chunks.

    At each pfn, the order is the largest one the pfn is aligned to
    (`__ffs(start)`), capped at max_order - 1, lowered until the chunk fits
    before `end`."""
    while start < end:
        order = min(max_order - 1, (start & -start).bit_length() - 1 if start else max_order - 1)
        while start + (1 << order) > end:
            order -= 1
        yield start, order
        start += 1 << order


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """memblock_merge_regions: sorted, overlapping or touching ranges joined."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out
