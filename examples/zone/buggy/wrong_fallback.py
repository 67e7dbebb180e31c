"""A zoned allocator whose zonelist runs the wrong way: DMA first, upwards.

Bug ([ZONE-FALLBACK]): Linux's zonelist starts at the highest zone the gfp
mask allows and falls back DOWNWARDS (HIGHMEM, NORMAL, DMA32, DMA), so the
scarce low zones are used last. This one builds it lowest zone first: an
ordinary GFP_KERNEL request takes ZONE_DMA's pages while ZONE_NORMAL is
plenty free.

Expected: alloc_fallback_order is violated by the first plain alloc(0, 0) on a
node with DMA and NORMAL, e.g. setup dma=16, normal=48: alloc(0, 0) -> 0.
"""

GFP_ZONE = {0: 2, 1: 0, 2: 3, 4: 1, 8: 2, 9: 0, 10: 4, 12: 1}
RATIO = (256, 256, 32, 32, 32)


class Zone:
    def __init__(self, idx, start, end, max_order):
        self.idx, self.start, self.end, self.max_order = idx, start, end, max_order
        self.lists = [set() for _ in range(max_order)]
        self.managed = end - start
        self.free_pages = 0
        pfn = start
        while pfn < end:  # the largest aligned chunks, as memblock_free_all hands them over
            order = max_order - 1
            while pfn % (1 << order) or pfn + (1 << order) > end:
                order -= 1
            self.release(pfn, order)
            pfn += 1 << order

    def release(self, pfn, order):
        self.free_pages += 1 << order
        while order < self.max_order - 1:
            buddy = pfn ^ (1 << order)
            if buddy not in self.lists[order]:  # only this zone's blocks are listed
                break
            self.lists[order].remove(buddy)
            pfn = min(pfn, buddy)
            order += 1
        self.lists[order].add(pfn)

    def take(self, order):
        for o in range(order, self.max_order):
            if self.lists[o]:
                pfn = min(self.lists[o])
                self.lists[o].remove(pfn)
                while o > order:
                    o -= 1
                    self.lists[o].add(pfn + (1 << o))
                self.free_pages -= 1 << order
                return pfn
        return None

    def watermark_ok(self, order, mark, reserve):
        free = self.free_pages - (1 << order) + 1
        if free <= mark + reserve:
            return False
        for o in range(order):
            free -= len(self.lists[o]) << o
            mark >>= 1
            if free <= mark:
                return False
        return True


class ZoneAllocator:
    def __init__(self, zones, min_free_kbytes, max_order=11):
        if len(zones) > 5 or any(s < 0 for s in zones) or sum(zones) < 1:
            raise ValueError("bad zone sizes")
        if min_free_kbytes < 0 or not 1 <= max_order <= 63:
            raise ValueError("bad arguments")
        self.max_order = max_order
        self.zones = []
        start = 0
        for idx, size in enumerate(zones):
            if size:
                self.zones.append(Zone(idx, start, start + size, max_order))
            start += size
        self.in_use = {}
        self.set_watermarks(min_free_kbytes)

    def set_watermarks(self, min_free_kbytes):
        pages_min = min_free_kbytes >> 2
        lowmem = sum(z.managed for z in self.zones if z.idx != 3)
        for z in self.zones:
            tmp = pages_min * z.managed // lowmem if lowmem else 0
            low_min = min(128, max(32, z.managed // 1024)) if z.idx == 3 else tmp
            z.marks = (low_min, low_min + tmp // 4, low_min + tmp // 2)
        for z in self.zones:
            z.reserve = [0] * 5
            for c in range(z.idx + 1, 5):
                above = sum(u.managed for u in self.zones if z.idx < u.idx <= c)
                z.reserve[c] = above // RATIO[z.idx]

    def alloc(self, order, gfp):
        if gfp not in GFP_ZONE or not 0 <= order < self.max_order:
            raise ValueError("bad order or gfp")
        high = GFP_ZONE[gfp]
        zonelist = [z for z in self.zones if z.idx <= high]
        for mark in (1, 0):  # LOW first, then the slow path's MIN
            for z in zonelist:
                if z.watermark_ok(order, z.marks[mark], z.reserve[high]):
                    pfn = z.take(order)
                    self.in_use[pfn] = (order, z)
                    return pfn
        return None

    def free(self, pfn, order):
        if self.in_use.get(pfn, (None,))[0] != order:
            raise ValueError("not an allocated block of that order")
        _, zone = self.in_use.pop(pfn)
        zone.release(pfn, order)
