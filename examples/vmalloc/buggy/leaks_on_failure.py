"""A vmalloc that keeps the pages it took when it cannot finish.

What it shows ([VMALLOC-ALLOC-NONE], [GEN-RAISE-NO-CHANGE]): the 2.6 first-fit
list, but when `pages` runs out half way, the area is unlinked and NULL is
returned without giving back the pages already taken (Linux's error path
calls vfree on the half-built area for exactly this).

Bug: a failed vmalloc leaks the pages it took.

Expected counterexample (one step): vmalloc(1 << 20) on a 64-page allocator
returns None but holds every page the allocator had (vmalloc_none_changes_nothing).
"""

PAGE = 4096
PAGE_KERNEL = 0x163  # present, RW, accessed, dirty, global; supervisor


class Vmalloc:
    def __init__(self, start, end, pages, kpt):
        self.start, self.end = start, end
        self.pages, self.kpt = pages, kpt
        self.vmlist = []  # [addr, size, [pfn, ...]] sorted by addr; size counts the guard

    def _get_vm_area(self, size):
        size += PAGE  # the guard page
        addr, at = self.start, len(self.vmlist)
        for i, (a, s, _) in enumerate(self.vmlist):
            if addr + size <= a:
                at = i
                break
            addr = max(addr, a + s)
        if addr + size > self.end:
            return None
        area = [addr, size, []]
        self.vmlist.insert(at, area)
        return area

    def vmalloc(self, size):
        if size < 0:
            raise ValueError("negative size")
        size = (size + PAGE - 1) // PAGE * PAGE
        if size == 0:
            return None
        area = self._get_vm_area(size)
        if area is None:
            return None
        try:
            for _ in range(size // PAGE):
                pfn = self.pages.alloc_pages(0)
                if pfn is None:
                    raise MemoryError
                area[2].append(pfn)
            for i, pfn in enumerate(area[2]):
                self.kpt.map(area[0] + i * PAGE, pfn, PAGE_KERNEL)
        except MemoryError:
            self.vmlist.remove(area)
            return None
        return area[0]

    def vfree(self, addr):
        if addr == 0:
            return
        area = next((a for a in self.vmlist if a[0] == addr), None)
        if area is None:
            raise ValueError("Trying to vfree() nonexistent vm area")
        self.vmlist.remove(area)
        end = addr + area[1] - PAGE
        for va in range(addr, end, PAGE):
            self.kpt.unmap(va)
        self.kpt.flush_tlb_kernel_range(addr, end)
        for pfn in area[2]:
            self.pages.free_pages(pfn, 0)

    def areas(self):
        return [(a, s) for a, s, _ in self.vmlist]
