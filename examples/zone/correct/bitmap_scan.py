"""A correct zoned allocator with no free lists at all: one flag per page.

What it shows ([ZONE-CHOICE]): the contract fixes which ZONE serves a request
(the zonelist, the watermarks, lowmem_reserve), not which block inside it.
This one keeps a bytearray of free pages per zone, hands out the HIGHEST
aligned free run of the zone, and counts free blocks per order, as the
watermark check needs them, by cutting the zone's free pages into maximal
aligned blocks on demand (what a buddy allocator's lists would hold).

Bug: none.

Expected: no counterexample; every spec holds and every check passes.
"""

GFP_ZONE = {0: 2, 1: 0, 2: 3, 4: 1, 8: 2, 9: 0, 10: 4, 12: 1}
RATIO = (256, 256, 32, 32, 32)


class ZoneAllocator:
    def __init__(self, zones, min_free_kbytes, max_order=11):
        if len(zones) > 5 or any(s < 0 for s in zones) or sum(zones) < 1 \
                or min_free_kbytes < 0 or not 1 <= max_order <= 63:
            raise ValueError("bad arguments")
        self.max_order = max_order
        self.bounds = []  # (zone index, start, end) of the populated zones
        start = 0
        for idx, size in enumerate(zones):
            if size:
                self.bounds.append((idx, start, start + size))
            start += size
        self.free_map = bytearray(b"\1" * start)
        self.in_use = {}
        size = {idx: end - start for idx, start, end in self.bounds}
        lowmem = sum(n for idx, n in size.items() if idx != 3)
        self.marks, self.reserve = {}, {}
        for idx, n in size.items():
            share = (min_free_kbytes // 4) * n // lowmem if lowmem else 0
            base = min(128, max(32, n // 1024)) if idx == 3 else share
            self.marks[idx] = (base, base + share // 4, base + share // 2)
            self.reserve[idx] = [sum(m for j, m in size.items() if idx < j <= c) // RATIO[idx]
                                 for c in range(5)]

    def blocks(self, start, end):
        """The zone's free pages cut into maximal aligned blocks: {order: count}."""
        counts = [0] * self.max_order
        pfn = start
        while pfn < end:
            if not self.free_map[pfn]:
                pfn += 1
                continue
            order = self.max_order - 1
            while pfn % (1 << order) or pfn + (1 << order) > end \
                    or not all(self.free_map[pfn:pfn + (1 << order)]):
                order -= 1
            counts[order] += 1
            pfn += 1 << order
        return counts

    def ok(self, zone, order, mark, high):
        idx, start, end = zone
        counts = self.blocks(start, end)
        free = sum(c << o for o, c in enumerate(counts)) - (1 << order) + 1
        if free <= mark + self.reserve[idx][high]:
            return False
        for o in range(order):
            free -= counts[o] << o
            mark >>= 1
            if free <= mark:
                return False
        return True

    def alloc(self, order, gfp):
        if gfp not in GFP_ZONE or not 0 <= order < self.max_order:
            raise ValueError("bad order or gfp")
        high = GFP_ZONE[gfp]
        zonelist = [z for z in reversed(self.bounds) if z[0] <= high]
        for which in (1, 0):
            for zone in zonelist:
                if self.ok(zone, order, self.marks[zone[0]][which], high):
                    return self.take(zone, order)
        return None

    def take(self, zone, order):
        _, start, end = zone
        size = 1 << order
        pfn = (end - size) // size * size
        while pfn >= start:
            if all(self.free_map[pfn:pfn + size]):
                self.free_map[pfn:pfn + size] = bytes(size)
                self.in_use[pfn] = order
                return pfn
            pfn -= size
        return None  # unreachable: the watermark check found a block of this order

    def free(self, pfn, order):
        if self.in_use.get(pfn) != order:
            raise ValueError("not an allocated block of that order")
        del self.in_use[pfn]
        self.free_map[pfn:pfn + (1 << order)] = b"\1" * (1 << order)
