"""A buggy slab cache: colouring not limited to the slab's left-over bytes.

What it shows: [SLAB-ALLOC]: objects lie inside pages the cache holds.

Written after mm/slab.c (coloured_orders.py) with one change: the number of
colours is an eighth of the slab divided by the colour step, instead of the
bytes left over after the objects and the management (cache_estimate's
left_over) divided by it. A slab coloured past its left-over bytes pushes
its last objects over the slab's end, into the next block of pages.

Expected counterexample (objects_inside_slabs, SLAB-1): size=1000, align=8:
num is 4 with 48 bytes left, yet 8 colours; eight alloc() calls fill the first
slab (colour 0) and the second (colour 64 bytes), whose fourth object
0x1c28..0x2010 ends past the slab's end 0x2000.
"""

PAGE_SIZE = 4096
MGMT_HEADER = 32  # struct slab
BUFCTL = 4  # one kmem_bufctl_t per object
END = -1
ARRAY_LIMIT = 6


class Slab:
    def __init__(self, pfn, order, s_mem, num):
        self.pfn, self.order, self.s_mem = pfn, order, s_mem
        self.bufctl = list(range(1, num)) + [END]
        self.free = 0
        self.inuse = 0


class KmemCache:
    def __init__(self, name, size, align, pages):
        if size < 1 or align < 1 or align & (align - 1):
            raise ValueError("bad size or align")
        self.pages = pages
        self.align = align
        self.objsize = (size + align - 1) // align * align
        self.order, self.num, left = self._calculate_slab_order()
        self.colour_off = max(64, align)
        # BUG: an eighth of the slab, not the left-over bytes (left // colour_off)
        self.colour = (PAGE_SIZE << self.order) // 8 // self.colour_off
        self.colour_next = 0
        self.slabs = {}
        self.array = []  # the per-CPU cache: free objects, the hottest last
        self.live = set()
        self.dead = False

    def _mgmt(self, num):
        return (MGMT_HEADER + num * BUFCTL + self.align - 1) // self.align * self.align

    def _estimate(self, order):
        total = PAGE_SIZE << order
        num = total // self.objsize
        while num and self._mgmt(num) + num * self.objsize > total:
            num -= 1
        return num, total - num * self.objsize - (self._mgmt(num) if num else 0)

    def _calculate_slab_order(self):
        order = 0
        while True:
            num, left = self._estimate(order)
            if num and (order >= 1 or left * 8 <= PAGE_SIZE << order):
                return order, num, left
            if num and self._estimate(order + 1)[0] == 0:
                return order, num, left
            order += 1

    def _check(self):
        if self.dead:
            raise ValueError("cache destroyed")

    def _slab_of(self, addr):
        for slab in self.slabs.values():
            if slab.pfn * PAGE_SIZE <= addr < (slab.pfn + (1 << slab.order)) * PAGE_SIZE:
                return slab
        return None

    def _cache_grow(self):
        offset = self.colour_next * self.colour_off
        self.colour_next = (self.colour_next + 1) % max(self.colour, 1)
        pfn = self.pages.alloc_pages(self.order)
        if pfn is None:
            return None
        s_mem = pfn * PAGE_SIZE + offset + self._mgmt(self.num)
        slab = self.slabs[pfn] = Slab(pfn, self.order, s_mem, self.num)
        return slab

    def _get_obj(self, slab):
        addr = slab.s_mem + slab.free * self.objsize
        slab.free = slab.bufctl[slab.free]
        slab.inuse += 1
        return addr

    def _put_obj(self, addr):
        slab = self._slab_of(addr)
        i = (addr - slab.s_mem) // self.objsize
        slab.bufctl[i] = slab.free
        slab.free = i
        slab.inuse -= 1

    def alloc(self):
        self._check()
        if self.array:
            addr = self.array.pop()
        else:
            slab = next((s for s in self.slabs.values() if s.free != END), None)
            if slab is None:
                slab = self._cache_grow()
                if slab is None:
                    return None
            addr = self._get_obj(slab)
        self.live.add(addr)
        return addr

    def free(self, addr):
        self._check()
        if addr not in self.live:
            raise ValueError(f"free({addr}): not a live object")
        self.live.remove(addr)
        if len(self.array) >= ARRAY_LIMIT:  # cache_flusharray: the oldest half
            half = ARRAY_LIMIT // 2
            for old in self.array[:half]:
                self._put_obj(old)
            del self.array[:half]
        self.array.append(addr)

    def shrink(self):
        self._check()
        for addr in self.array:
            self._put_obj(addr)
        self.array.clear()
        given = 0
        for pfn in [p for p, s in self.slabs.items() if s.inuse == 0]:
            del self.slabs[pfn]
            self.pages.free_pages(pfn, self.order)
            given += 1 << self.order
        return given

    def destroy(self):
        self._check()
        if self.live:
            raise ValueError("objects still live")
        self.shrink()
        self.dead = True

    def slabinfo(self):
        self._check()
        active = {self._slab_of(a).pfn for a in self.live}
        return {"active_objs": len(self.live), "num_objs": len(self.slabs) * self.num,
                "objsize": self.objsize, "objperslab": self.num,
                "pagesperslab": 1 << self.order, "active_slabs": len(active),
                "num_slabs": len(self.slabs)}
