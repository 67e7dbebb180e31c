"""A buggy slab cache: an alignment that is not a power of two makes a cache.

What it shows: [SLAB-INIT-ARGS]: `size < 1`, or an `align` that is not a power
of two, makes no cache (ValueError). Linux's kmem_cache_create would round such
an align into nonsense (ALIGN() assumes a power of two).

Written as order0_onslab.py, but the constructor checks only `align < 1`:
KmemCache(name, 8, 3, pages) is a cache whose objects are "aligned" to 3.

Expected counterexample (one step): the constructor step KmemCache(size, 3)
(or 24) made an object: refinement.
"""

PAGE_SIZE = 4096


class KmemCache:
    def __init__(self, name, size, align, pages):
        if size < 1 or align < 1:  # BUG: an align that is no power of two passes
            raise ValueError("bad size or align")
        self.pages = pages
        self.objsize = (size + align - 1) // align * align
        self.order = 0
        while PAGE_SIZE << self.order < self.objsize:
            self.order += 1
        self.num = (PAGE_SIZE << self.order) // self.objsize
        self.slabs = {}  # first pfn -> [first free object address or None, objects in use]
        self.next_free = {}  # free object -> the next free object of its slab (or None)
        self.live = {}  # live object -> first pfn of its slab
        self.dead = False

    def _check(self):
        if self.dead:
            raise ValueError("cache destroyed")

    def _grow(self):
        pfn = self.pages.alloc_pages(self.order)
        if pfn is None:
            return None
        base = pfn * PAGE_SIZE
        objs = [base + i * self.objsize for i in range(self.num)]
        for a, b in zip(objs, objs[1:] + [None]):
            self.next_free[a] = b
        self.slabs[pfn] = [objs[0], 0]
        return pfn

    def alloc(self):
        self._check()
        pfn = next((p for p in reversed(self.slabs) if self.slabs[p][0] is not None), None)
        if pfn is None:
            pfn = self._grow()
            if pfn is None:
                return None
        slab = self.slabs[pfn]
        addr = slab[0]
        slab[0] = self.next_free.pop(addr)
        slab[1] += 1
        self.live[addr] = pfn
        return addr

    def free(self, addr):
        self._check()
        pfn = self.live.pop(addr, None)
        if pfn is None:
            raise ValueError(f"free({addr}): not a live object")
        slab = self.slabs[pfn]
        self.next_free[addr] = slab[0]
        slab[0] = addr
        slab[1] -= 1

    def _release(self, pfn):
        addr = self.slabs.pop(pfn)[0]
        while addr is not None:
            addr = self.next_free.pop(addr)
        self.pages.free_pages(pfn, self.order)

    def shrink(self):
        self._check()
        empty = [p for p, (_, inuse) in self.slabs.items() if inuse == 0]
        for pfn in empty:
            self._release(pfn)
        return len(empty) << self.order

    def destroy(self):
        self._check()
        if self.live:
            raise ValueError("objects still live")
        self.shrink()
        self.dead = True

    def slabinfo(self):
        self._check()
        active = sum(1 for _, inuse in self.slabs.values() if inuse)
        return {"active_objs": len(self.live), "num_objs": len(self.slabs) * self.num,
                "objsize": self.objsize, "objperslab": self.num,
                "pagesperslab": 1 << self.order, "active_slabs": active,
                "num_slabs": len(self.slabs)}
