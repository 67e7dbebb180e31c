"""A correct slab cache: the smallest slabs that hold an object, a free list in the objects.

What it shows: [SLAB-CHOICE]: the order, where objects start and which object
alloc returns.

Design: each slab is the smallest block that holds one object (order 0 for
objects up to a page), objects start at the slab's first byte (no colouring),
and the free objects of a slab are chained through their own first word (an
on-slab free list, as SLUB does; the chain lives in `next_free` here because a
Python object has no bytes). alloc() takes from the slab allocated last that
still has a free object, and grows a slab only when none has one.

It differs from the reference (Linux's SLAB: calculate_slab_order, colouring,
per-CPU array caches) in every choice the contract leaves open, and must pass.
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
