"""A vmalloc without guard pages: areas are packed back to back.

What it shows ([VMALLOC-ALLOC]): the 2.6 first-fit vm_struct list, but
`__get_vm_area` forgets `size += PAGE_SIZE`. Every area is exactly its pages,
so an overrun off the end of one area writes into the next instead of
faulting on an unmapped guard page.

Bug: no guard page after an area (VM_NO_GUARD for everyone).

Expected counterexample (one step): vmalloc(4096) returns VMALLOC_START and
areas() lists (VMALLOC_START, 4096): the page after the area's only page is
not reserved, and the area's last page, the one that should be its guard, is
mapped (guard_pages_unmapped, areas_inside_the_range).
"""

PAGE = 4096
PAGE_KERNEL = 0x163  # present, RW, accessed, dirty, global; supervisor


class Vmalloc:
    def __init__(self, start, end, pages, kpt):
        self.start, self.end = start, end
        self.pages, self.kpt = pages, kpt
        self.vmlist = []  # [addr, size, [pfn, ...]] sorted by addr; size counts the guard

    def _get_vm_area(self, size):
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
            self.vfree(area[0])
            return None
        return area[0]

    def vfree(self, addr):
        if addr == 0:
            return
        area = next((a for a in self.vmlist if a[0] == addr), None)
        if area is None:
            raise ValueError("Trying to vfree() nonexistent vm area")
        self.vmlist.remove(area)
        end = addr + area[1]
        for va in range(addr, end, PAGE):
            self.kpt.unmap(va)
        self.kpt.flush_tlb_kernel_range(addr, end)
        for pfn in area[2]:
            self.pages.free_pages(pfn, 0)

    def areas(self):
        return [(a, s) for a, s, _ in self.vmlist]
