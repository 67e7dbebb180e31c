"""A buggy slab cache: shrink() keeps one completely free slab "for the next alloc".

What it shows: [SLAB-SHRINK]: every completely free slab goes back.

Written as order0_onslab.py, but shrink() gives back every empty slab except
the first, as a cache that keeps a minimum of free slabs would; the contract
says shrink() returns every completely free slab.

Expected counterexample (shrink_gives_back_free_slabs): alloc() -> 0, free(0),
shrink() -> 0 while the empty slab at pfn 0 is still held.
"""

PAGE_SIZE = 4096


class KmemCache:
    def __init__(self, name, size, align, pages):
        if size < 1 or align < 1 or align & (align - 1):
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
        empty = empty[1:]  # BUG: keeps one empty slab "for the next alloc"
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
