"""An AddressSpace that ignores the hint of a non-fixed mmap.

What it shows: [AS-MMAP-HINT]. Where a non-fixed mapping goes is mostly the
implementation's choice ([AS-MMAP-PLACE-CHOICE]), but not when the hint is
free: then the mapping goes exactly there (rounded down to a page, raised to
mmap_min_addr), as on Linux.

Bug: the hint is never used; every non-fixed mapping goes top-down.

Expected counterexample (one step): mmap(addr, 4096, prot, MAP_PRIVATE |
MAP_ANONYMOUS) with a free, aligned hint returns another address:
hint_used_when_free.
"""

import errno

PAGE = 4096
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_FIXED_NOREPLACE = 0x100000
PROT_MASK = 0x7


def fail(code, why):
    return OSError(code, why)


def round_up(n):
    return (n + PAGE - 1) // PAGE * PAGE


class AddressSpace:
    def __init__(self, task_size=(1 << 47) - 4096, mmap_min_addr=0x10000):
        self.task_size = task_size
        self.mmap_min_addr = mmap_min_addr
        self.mmap_base = task_size - (128 << 20) if task_size >= (256 << 20) else task_size
        self.areas = []  # sorted [start, end, prot, flags, file, offset]
        self.next_file = 1

    # ---- helpers ----
    def overlapping(self, start, end):
        return [a for a in self.areas if a[0] < end and start < a[1]]

    def split_at(self, addr):
        for i, a in enumerate(self.areas):
            if a[0] < addr < a[1]:
                upper = [addr, a[1], a[2], a[3], a[4], a[5] + (addr - a[0]) // PAGE]
                a[1] = addr
                self.areas.insert(i + 1, upper)
                return

    def mergeable(self, a, b):
        return (a[1] == b[0] and a[2] == b[2] and a[3] == b[3] and a[4] == b[4]
                and (a[4] is None or b[5] == a[5] + (a[1] - a[0]) // PAGE))

    def merge_around(self, lo, hi):
        """Merge every pair of neighbours touching [lo, hi]."""
        i = 0
        while i + 1 < len(self.areas):
            a, b = self.areas[i], self.areas[i + 1]
            if lo <= b[0] <= hi and self.mergeable(a, b):
                a[1] = b[1]
                del self.areas[i + 1]
            else:
                i += 1

    def remove(self, start, end):
        self.split_at(start)
        self.split_at(end)
        self.areas = [a for a in self.areas if not (start <= a[0] and a[1] <= end)]

    def free(self, start, end):
        return not self.overlapping(start, end)

    def area_at(self, addr):
        for a in self.areas:
            if a[0] <= addr < a[1]:
                return a
        return None

    def place(self, length):
        top = self.mmap_base
        # walk the gaps from the top of [mmap_min_addr, mmap_base)
        edges = [[self.mmap_min_addr, self.mmap_min_addr]] + \
            [a for a in self.areas if a[1] > self.mmap_min_addr] + [[top, top]]
        for i in range(len(edges) - 2, -1, -1):
            gap_lo = max(edges[i][1], self.mmap_min_addr)
            gap_hi = min(edges[i + 1][0], top)
            if gap_hi - gap_lo >= length:
                return gap_hi - length
        raise fail(errno.ENOMEM, "no room")

    # ---- the contract ----
    def mmap(self, addr, length, prot, flags):
        if not flags & MAP_ANONYMOUS:
            raise fail(errno.EBADF, "no file")
        if length == 0:
            raise fail(errno.EINVAL, "zero length")
        fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)
        length = round_up(length)
        if length > self.task_size:
            raise fail(errno.ENOMEM, "too long")
        if fixed:
            if addr > self.task_size - length:
                raise fail(errno.ENOMEM, "past TASK_SIZE")
            if addr % PAGE:
                raise fail(errno.EINVAL, "unaligned")
            if addr < self.mmap_min_addr:
                raise fail(errno.EPERM, "below mmap_min_addr")
        else:
            addr -= addr % PAGE
            if addr and addr < self.mmap_min_addr:
                addr = round_up(self.mmap_min_addr)
            addr = self.place(length)  # BUG: the free hint is not used
        if flags & MAP_FIXED_NOREPLACE and not self.free(addr, addr + length):
            raise fail(errno.EEXIST, "something is mapped there")
        kind = flags & 0x0F
        if kind not in (MAP_SHARED, MAP_PRIVATE):
            raise fail(errno.EINVAL, "bad map type")
        self.remove(addr, addr + length)
        file = None
        if kind == MAP_SHARED:
            file, self.next_file = self.next_file, self.next_file + 1
        self.areas.append([addr, addr + length, prot & PROT_MASK, kind, file, 0])
        self.areas.sort()
        if kind == MAP_PRIVATE:
            self.merge_around(addr, addr + length)
        return addr

    def munmap(self, addr, length):
        if addr % PAGE or addr > self.task_size or length > self.task_size - addr:
            raise fail(errno.EINVAL, "bad range")
        if length == 0:
            raise fail(errno.EINVAL, "zero length")
        self.remove(addr, addr + round_up(length))

    def mprotect(self, addr, length, prot):
        if addr % PAGE:
            raise fail(errno.EINVAL, "unaligned")
        if length == 0:
            return
        end = addr + round_up(length)
        if prot & ~PROT_MASK:
            raise fail(errno.EINVAL, "unknown prot bits")
        cursor = addr
        while cursor < end:  # like Linux: area by area, up to the first hole
            a = self.area_at(cursor)
            if a is None:
                self.merge_around(addr, cursor)
                raise fail(errno.ENOMEM, "not mapped")
            hi = min(a[1], end)
            if a[2] != prot:
                self.split_at(cursor)
                self.split_at(hi)
                self.area_at(cursor)[2] = prot
            cursor = hi
        self.merge_around(addr, end)

    def vmas(self):
        return [(a[0], a[1], a[2], a[3]) for a in self.areas]

    def find_vma(self, addr):
        for a in self.areas:
            if a[1] > addr:
                return (a[0], a[1], a[2], a[3])
        return None
