"""A machine whose unmap_user frees the page but forgets its _mapcount.

Bug ([MACHINE-USER], REF-1/REF-2): zap_pte_range must drop the page's
_mapcount (page_remove_rmap) before the last put_page frees it. This one
frees the page with _mapcount still 1: a free page that claims to be mapped,
the state free_pages_check() reports as "nonzero mapcount".

Expected: one_owner (the page is free and mapped user memory at once) and
free_means_unreferenced are violated right after the unmap: setup npages=8,
reserved=1: map_user(0), unmap_user(0).
"""

PG_SLAB, PG_BUDDY, PG_TABLE, PG_RESERVED, PG_VMALLOC = 1 << 7, 1 << 10, 1 << 26, 1 << 32, 1 << 41
PAGE = 4096
VMALLOC_START = 0xF0000000


class Machine:
    def __init__(self, npages, reserved):
        if not 1 <= reserved < npages:
            raise ValueError("bad sizes")
        self.flags = [PG_RESERVED] * reserved + [PG_BUDDY] * (npages - reserved)
        self.refs = [1] * reserved + [0] * (npages - reserved)
        self.maps = [0] * npages
        self.slabs = {}  # pfn -> free offsets
        self.live = set()
        self.user = {}  # va -> pfn
        self.user_tables = {}  # va >> 22 -> [table pfn, mapped count]
        self.kernel_tables = {}  # va >> 22 -> table pfn
        self.areas = {}  # addr -> pfns
        self.next_va = VMALLOC_START
        self.pgd = self.take(PG_TABLE)
        self.kernel_pgd = self.take(PG_TABLE)

    def pages(self):
        return [(f, r, m) for f, r, m in zip(self.flags, self.refs, self.maps)]

    def free_count(self):
        return sum(1 for f in self.flags if f & PG_BUDDY)

    def take(self, owner):
        for pfn, f in enumerate(self.flags):
            if f & PG_BUDDY:
                self.flags[pfn], self.refs[pfn] = owner, 1
                return pfn
        return None

    def give(self, pfn):
        self.flags[pfn], self.refs[pfn], self.maps[pfn] = PG_BUDDY, 0, 0

    def slab_alloc(self):
        pfn = next((p for p, free in self.slabs.items() if free), None)
        if pfn is None:
            pfn = self.take(PG_SLAB)
            if pfn is None:
                return None
            self.slabs[pfn] = list(range(0, PAGE, 256))
        addr = pfn * PAGE + self.slabs[pfn].pop(0)
        self.live.add(addr)
        return addr

    def slab_free(self, addr):
        if addr not in self.live:
            raise ValueError("not a live object")
        self.live.remove(addr)
        self.slabs[addr // PAGE].append(addr % PAGE)

    def slab_shrink(self):
        empty = [p for p, free in self.slabs.items() if len(free) == PAGE // 256]
        for pfn in empty:
            del self.slabs[pfn]
            self.give(pfn)
        return len(empty)

    def vmalloc(self, size):
        if size < 0:
            raise ValueError("negative size")
        n = -(-size // PAGE)
        if n == 0:
            return None
        addr = self.next_va
        new_tables = {va >> 22 for va in range(addr, addr + n * PAGE, PAGE)} \
            - set(self.kernel_tables)
        if self.free_count() < n + len(new_tables):
            return None
        for index in new_tables:
            self.kernel_tables[index] = self.take(PG_TABLE)
        self.areas[addr] = [self.take(PG_VMALLOC) for _ in range(n)]
        self.next_va += (n + 1) * PAGE  # and a guard page
        return addr

    def vfree(self, addr):
        if addr == 0:
            return
        if addr not in self.areas:
            raise ValueError("not a vmalloc area")
        for pfn in self.areas.pop(addr):
            self.give(pfn)

    def map_user(self, va):
        if va % PAGE or not 0 <= va < 0xC0000000 or va in self.user:
            raise ValueError("not a free user page")
        table = self.user_tables.get(va >> 22)
        if self.free_count() < (1 if table else 2):
            return None
        if table is None:
            table = self.user_tables[va >> 22] = [self.take(PG_TABLE), 0]
        pfn = self.take(0)
        self.maps[pfn] = 1
        table[1] += 1
        self.user[va] = pfn
        return pfn

    def unmap_user(self, va):
        if va not in self.user:
            raise ValueError("nothing mapped there")
        pfn = self.user.pop(va)
        self.flags[pfn], self.refs[pfn] = PG_BUDDY, 0  # _mapcount left as it was
        table = self.user_tables[va >> 22]
        table[1] -= 1
        if table[1] == 0:
            self.give(table[0])
            del self.user_tables[va >> 22]
