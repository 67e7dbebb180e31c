"""vmalloc that places areas from the top of the range down, with a free-range list.

What it shows ([VMALLOC-CHOICE]): another legal design. The free address
space is a list of holes; an area (with its guard page below the next area,
as a gap of one page after its end) takes the *highest* hole that holds it, as
x86-64's vmap_area allocator searching top-down does for some callers. Pages
are all taken before anything is mapped, and vfree flushes the TLB page by
page (`flush_tlb_kernel_range` over one page at a time) as it clears each PTE,
then merges the hole back with its neighbours.
"""

PAGE = 4096
RW = 0x2


class Vmalloc:
    def __init__(self, start, end, pages, kpt):
        self.pages, self.kpt = pages, kpt
        self.holes = [(start, end)]  # free [lo, hi), sorted
        self.live = {}  # addr -> (size with guard, pfns)

    def vmalloc(self, size):
        if size < 0:
            raise ValueError("negative size")
        n = -(-size // PAGE)
        if n == 0:
            return None
        need = (n + 1) * PAGE
        fit = [h for h in self.holes if h[1] - h[0] >= need]
        if not fit:
            return None
        lo, hi = fit[-1]
        addr = hi - need
        pfns = []
        for _ in range(n):
            pfn = self.pages.alloc_pages(0)
            if pfn is None:
                for p in pfns:
                    self.pages.free_pages(p, 0)
                return None
            pfns.append(pfn)
        done = 0
        try:
            for i, pfn in enumerate(pfns):
                self.kpt.map(addr + i * PAGE, pfn, RW)
                done += 1
        except MemoryError:
            for i in range(done):
                self.kpt.unmap(addr + i * PAGE)
            for p in pfns:
                self.pages.free_pages(p, 0)
            return None
        self.holes.remove((lo, hi))
        if addr > lo:
            self.holes.append((lo, addr))
            self.holes.sort()
        self.live[addr] = (need, pfns)
        return addr

    def vfree(self, addr):
        if addr == 0:
            return
        if addr not in self.live:
            raise ValueError("not a vmalloc area")
        need, pfns = self.live.pop(addr)
        for i in range(len(pfns)):
            self.kpt.unmap(addr + i * PAGE)
            self.kpt.flush_tlb_kernel_range(addr + i * PAGE, addr + (i + 1) * PAGE)
        for p in pfns:
            self.pages.free_pages(p, 0)
        self.holes.append((addr, addr + need))
        self.holes.sort()
        merged = []
        for lo, hi in self.holes:
            if merged and merged[-1][1] == lo:
                merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        self.holes = merged

    def areas(self):
        return sorted((a, need) for a, (need, _) in self.live.items())
