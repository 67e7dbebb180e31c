"""A buggy kmalloc: kfree of a large allocation never gives its pages back.

What it shows: [KMALLOC-FREE]: a large allocation goes back to `pages` at once.

Written as power_of_two.py, but kfree() of a request above 128 KiB only
forgets the allocation: the block stays taken from `pages`.

Expected counterexample (kfree_large_gives_pages_back): kmalloc(131073, 1)
takes an order-6 block; kfree of it calls no free_pages.
"""

PAGE_SIZE = 4096
ZERO_SIZE_PTR = 16
GFP_DMA = 0x01
MAX_CACHE = 131072
MAX_SIZE = PAGE_SIZE << 10


class _Cache:
    def __init__(self, objsize, pages):
        self.objsize, self.pages = objsize, pages
        self.order = 0
        while PAGE_SIZE << self.order < objsize:
            self.order += 1
        self.free = []  # free objects, any slab

    def alloc(self):
        if not self.free:
            pfn = self.pages.alloc_pages(self.order)
            if pfn is None:
                return None
            base = pfn * PAGE_SIZE
            n = (PAGE_SIZE << self.order) // self.objsize
            self.free = [base + i * self.objsize for i in reversed(range(n))]
        return self.free.pop()


class Kmalloc:
    def __init__(self, pages):
        self.pages = pages
        self.caches = {}
        self.live = {}  # addr -> (usable size, pages order or None)

    def kmalloc(self, size, flags=0):
        if size < 0:
            raise ValueError("negative size")
        if size == 0:
            return ZERO_SIZE_PTR
        if size > MAX_SIZE:
            return None
        if size > MAX_CACHE:
            order = 0
            while PAGE_SIZE << order < size:
                order += 1
            pfn = self.pages.alloc_pages(order)
            if pfn is None:
                return None
            self.live[pfn * PAGE_SIZE] = (PAGE_SIZE << order, order)
            return pfn * PAGE_SIZE
        cls = max(32, 1 << (size - 1).bit_length())
        key = (cls, bool(flags & GFP_DMA))
        if key not in self.caches:
            self.caches[key] = _Cache(cls, self.pages)
        addr = self.caches[key].alloc()
        if addr is not None:
            self.live[addr] = (cls, key)
        return addr

    def kfree(self, addr):
        if addr in (0, ZERO_SIZE_PTR):
            return
        if addr not in self.live:
            raise ValueError(f"kfree({addr}): not a live allocation")
        usable, where = self.live.pop(addr)
        if isinstance(where, int):
            pass  # BUG: a large allocation's pages are never given back
        else:
            self.caches[where].free.append(addr)

    def ksize(self, addr):
        if addr == ZERO_SIZE_PTR:
            return 0
        if addr not in self.live:
            raise ValueError(f"ksize({addr}): not a live allocation")
        return self.live[addr][0]
