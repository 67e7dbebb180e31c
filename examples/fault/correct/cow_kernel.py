"""Demand paging and copy-on-write fork as a student writes them (xv6 lazy + cow labs).

What it shows: a correct Kernel for the contract. Each process keeps its areas
in a sorted list and its page table as a dict from page address to
[pfn, writable]; page-table pages are still taken from physical memory, one
per 4-level table in use (pgd, pud, pmd, pte), so free_pages() counts them.

- A read of a fresh private page maps the shared zero page read-only; a write
  takes a zeroed page. fork() shares private pages read-only and counts the
  references; a write to a shared page copies it unless this process holds
  the only reference, in which case it just becomes writable again.
- MAP_SHARED|MAP_ANONYMOUS memory lives in a shared object that both sides of
  a fork keep using; fork() does not copy those PTEs, the child faults them in.
- SIGSEGV is decided from the areas: nothing mapped there, a write to an area
  without PROT_WRITE, a read of a PROT_NONE area, and (x86 with protection
  keys) any data access to a PROT_EXEC-only area.

Legal differences from Linux, which a checker must follow rather than flag:
fork() copies the PTEs of every private area, zero-page ones included (Linux
skips areas that never had a write fault), and a shared read maps only the
page read (Linux also maps up to 15 neighbours already present). Both change
which pages frame() shows and how many page-table pages are held, never what
read() returns.
"""

import errno

PAGE = 4096
PROT_READ, PROT_WRITE, PROT_EXEC, PROT_SEM = 1, 2, 4, 8
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MAP_FIXED_NOREPLACE = 0x100000
TASK_SIZE = (1 << 47) - PAGE
MMAP_MIN_ADDR = 0x10000
MMAP_BASE = 0x7F00_0000_0000
SEGV_MAPERR, SEGV_ACCERR, SEGV_PKUERR, SI_KERNEL = 1, 2, 4, 0x80

try:
    Segfault  # noqa: B018 - the checker may inject its own class
except NameError:
    class Segfault(Exception):
        def __init__(self, code, address=None):  # code first, as the contract's
            super().__init__(f"segfault at {address:#x} (code {code})")
            self.code = code
            self.address = address


def page_up(n):
    return (n + PAGE - 1) // PAGE * PAGE


class Shared:
    """The memory behind one MAP_SHARED mmap: page index -> pfn."""

    def __init__(self):
        self.pages = {}
        self.users = 0  # areas that map it


class Area:
    def __init__(self, start, end, prot, shared, obj=None, first=0):
        self.start, self.end, self.prot = start, end, prot
        self.shared = shared
        self.obj = obj  # a Shared, for shared areas
        self.first = first  # index in obj of the page at start

    def cut(self, start, end):
        """The part of this area inside [start, end)."""
        first = self.first + (start - self.start) // PAGE
        return Area(start, end, self.prot, self.shared, self.obj, first)


class Proc:
    def __init__(self, pid):
        self.pid = pid
        self.areas = []
        self.ptes = {}  # page address -> [pfn, writable]
        self.tables = {}  # (level, prefix) -> PTEs below that table


class Kernel:
    def __init__(self, npages):
        self.free = list(range(npages - 1, -1, -1))
        self.refs = {}
        self.data = {}
        self.procs = {}
        self.next_pid = 1
        self.table_pfn = {}  # (level, prefix, pid) -> the page of that table
        self.zero = self.free.pop()

    # ---- physical pages ----

    def alloc(self):
        if not self.free:
            raise MemoryError("out of memory")
        pfn = self.free.pop()
        self.refs[pfn] = 1
        return pfn

    def put(self, pfn):
        self.refs[pfn] -= 1
        if self.refs[pfn] == 0:
            del self.refs[pfn]
            self.data.pop(pfn, None)
            self.free.append(pfn)

    def free_pages(self):
        return len(self.free)

    # ---- page tables ----

    def map_pte(self, proc, va, pfn, writable):
        """Install a PTE, taking a page for every table it needs; all or nothing."""
        made = []
        for level, shift in ((1, 21), (2, 30), (3, 39)):
            key = (level, va >> shift)
            if key not in proc.tables:
                if not self.free:
                    for k in made:
                        del proc.tables[k]
                        self.free.append(self.table_pfn.pop(k + (proc.pid,)))
                    raise MemoryError("out of memory for page tables")
                self.table_pfn[key + (proc.pid,)] = self.free.pop()
                proc.tables[key] = 0
                made.append(key)
        for level, shift in ((1, 21), (2, 30), (3, 39)):
            proc.tables[(level, va >> shift)] += 1
        proc.ptes[va] = [pfn, writable]

    def unmap_pte(self, proc, va):
        pfn = proc.ptes.pop(va)[0]
        for level, shift in ((1, 21), (2, 30), (3, 39)):
            key = (level, va >> shift)
            proc.tables[key] -= 1
            if proc.tables[key] == 0:
                del proc.tables[key]
                self.free.append(self.table_pfn.pop(key + (proc.pid,)))
        if pfn != self.zero:
            self.put(pfn)

    # ---- processes ----

    def proc(self, pid):
        if pid not in self.procs:
            raise ValueError(f"no process {pid}")
        return self.procs[pid]

    def spawn(self):
        if not self.free:
            raise OSError(errno.ENOMEM, "no page for a page directory")
        proc = Proc(self.next_pid)
        self.next_pid += 1
        proc.pgd = self.free.pop()
        self.procs[proc.pid] = proc
        return proc.pid

    def fork(self, pid):
        parent = self.proc(pid)
        child = self.procs[self.spawn()]
        for area in parent.areas:
            child.areas.append(area.cut(area.start, area.end))
            if area.shared:
                area.obj.users += 1
        try:
            for va in sorted(parent.ptes):
                pfn, writable = parent.ptes[va]
                if self.find(parent, va).shared:
                    continue  # the child faults shared pages in again
                self.map_pte(child, va, pfn, False)
                parent.ptes[va][1] = False
                if pfn != self.zero:
                    self.refs[pfn] += 1
        except MemoryError:
            self.exit(child.pid)
            raise OSError(errno.ENOMEM, "fork: out of memory") from None
        return child.pid

    def exit(self, pid):
        proc = self.proc(pid)
        self.remove(proc, 0, TASK_SIZE)
        self.free.append(proc.pgd)
        del self.procs[pid]

    # ---- areas ----

    def find(self, proc, va):
        for area in proc.areas:
            if area.start <= va < area.end:
                return area
        return None

    def remove(self, proc, start, end):
        """Unmap [start, end): split the areas at the edges, drop the pages."""
        kept = []
        for area in proc.areas:
            if area.end <= start or area.start >= end:
                kept.append(area)
                continue
            pieces = []
            if area.start < start:
                pieces.append(area.cut(area.start, start))
            if area.end > end:
                pieces.append(area.cut(end, area.end))
            kept.extend(pieces)
            if area.shared:
                area.obj.users += len(pieces) - 1
                if area.obj.users == 0:
                    for pfn in area.obj.pages.values():
                        self.put(pfn)
        for va in [va for va in proc.ptes if start <= va < end]:
            self.unmap_pte(proc, va)
        proc.areas = sorted(kept, key=lambda a: a.start)

    def overlaps(self, proc, start, end):
        return any(a.start < end and start < a.end for a in proc.areas)

    def mmap(self, pid, addr, length, prot, flags):
        proc = self.proc(pid)
        if not flags & MAP_ANONYMOUS:
            raise OSError(errno.EBADF, "no file")
        if length <= 0:
            raise OSError(errno.EINVAL, "zero length")
        length = page_up(length)
        if length > TASK_SIZE:
            raise OSError(errno.ENOMEM, "too long")
        if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
            if addr > TASK_SIZE - length:
                raise OSError(errno.ENOMEM, "past the end of the address space")
            if addr % PAGE:
                raise OSError(errno.EINVAL, "unaligned")
            if addr < MMAP_MIN_ADDR:
                raise OSError(errno.EPERM, "below mmap_min_addr")
            if flags & MAP_FIXED_NOREPLACE and self.overlaps(proc, addr, addr + length):
                raise OSError(errno.EEXIST, "already mapped")
            start = addr
        else:
            start = self.place(proc, addr, length)
        if flags & 0x0F not in (MAP_SHARED, MAP_PRIVATE):
            raise OSError(errno.EINVAL, "neither private nor shared")
        self.remove(proc, start, start + length)
        shared = flags & 0x0F == MAP_SHARED
        area = Area(start, start + length, prot, shared, Shared() if shared else None)
        if shared:
            area.obj.users = 1
        proc.areas = sorted(proc.areas + [area], key=lambda a: a.start)
        return start

    def place(self, proc, hint, length):
        """The hint if it is free, else the highest free gap below MMAP_BASE."""
        if hint:
            hint = max(hint - hint % PAGE, MMAP_MIN_ADDR)
            if hint + length <= TASK_SIZE and not self.overlaps(proc, hint, hint + length):
                return hint
        top = MMAP_BASE
        for area in sorted(proc.areas, key=lambda a: a.start, reverse=True):
            if area.start >= top:
                continue
            if area.end <= top - length:
                break  # the gap between this area and top is big enough
            top = area.start
        if top - length < MMAP_MIN_ADDR:
            raise OSError(errno.ENOMEM, "no room")
        return top - length

    def munmap(self, pid, addr, length):
        proc = self.proc(pid)
        if addr % PAGE or addr > TASK_SIZE or length > TASK_SIZE - addr or length <= 0:
            raise OSError(errno.EINVAL, "bad range")
        self.remove(proc, addr, addr + page_up(length))

    def mprotect(self, pid, addr, length, prot):
        proc = self.proc(pid)
        if addr % PAGE:
            raise OSError(errno.EINVAL, "unaligned")
        if length == 0:
            return
        end = addr + page_up(length)
        if end <= addr:
            raise OSError(errno.ENOMEM, "wraps")
        if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM):
            raise OSError(errno.EINVAL, "bad prot")  # PROT_SEM is allowed, changes nothing
        at = addr
        for area in sorted(proc.areas, key=lambda a: a.start):
            if area.end <= at or area.start >= end:
                continue
            if area.start > at:
                break  # a hole: stop here, what came before stays changed
            self.protect(proc, area, max(area.start, addr), min(area.end, end), prot)
            at = min(area.end, end)
        if at < end:
            raise OSError(errno.ENOMEM, "part of the range is not mapped")

    def protect(self, proc, area, start, end, prot):
        pieces = [area.cut(area.start, start), area.cut(start, end), area.cut(end, area.end)]
        pieces = [p for p in pieces if p.start < p.end]
        for p in pieces:
            if p.start == start:
                p.prot = prot
        if area.shared:
            area.obj.users += len(pieces) - 1
        proc.areas = sorted([a for a in proc.areas if a is not area] + pieces,
                            key=lambda a: a.start)
        for va in [va for va in proc.ptes if start <= va < end]:
            pfn = proc.ptes[va][0]
            exclusive = pfn != self.zero and self.refs[pfn] == 1
            proc.ptes[va][1] = bool(prot & PROT_WRITE) and (area.shared or exclusive)

    # ---- faults ----

    def check(self, proc, va, write):
        if type(va) is not int or va < 0 or va >= 1 << 64:
            raise ValueError("bad address")
        if va >> 47 not in (0, (1 << 17) - 1):
            raise Segfault(SI_KERNEL, va)
        area = self.find(proc, va)
        if area is None:
            raise Segfault(SEGV_MAPERR, va)
        if area.prot == PROT_EXEC:
            raise Segfault(SEGV_PKUERR, va)  # execute-only protection key
        if write and not area.prot & PROT_WRITE:
            raise Segfault(SEGV_ACCERR, va)
        if not area.prot & (PROT_READ | PROT_WRITE | PROT_EXEC):
            raise Segfault(SEGV_ACCERR, va)
        return area

    def fault(self, proc, area, page, write):
        """Make the PTE of `page` allow this access."""
        pte = proc.ptes.get(page)
        if pte is None and area.shared:
            index = area.first + (page - area.start) // PAGE
            pfn = area.obj.pages.get(index)
            new = pfn is None
            if new:
                pfn = self.alloc()
                area.obj.pages[index] = pfn
            try:
                self.map_pte(proc, page, pfn, bool(area.prot & PROT_WRITE))
            except MemoryError:
                if new:
                    del area.obj.pages[index]
                    self.put(pfn)
                raise
            self.refs[pfn] += 1
        elif pte is None and not write:
            self.map_pte(proc, page, self.zero, False)
        elif pte is None:
            pfn = self.alloc()
            try:
                self.map_pte(proc, page, pfn, True)
            except MemoryError:
                self.put(pfn)
                raise
        elif write and not pte[1]:
            self.cow(proc, pte)

    def cow(self, proc, pte):
        old = pte[0]
        if old != self.zero and self.refs[old] == 1:
            pte[1] = True  # the last user keeps the page
            return
        new = self.alloc()
        if old in self.data:
            self.data[new] = bytearray(self.data[old])
        pte[0], pte[1] = new, True
        if old != self.zero:
            self.put(old)

    def read(self, pid, va):
        proc = self.proc(pid)
        area = self.check(proc, va, False)
        page = va - va % PAGE
        self.fault(proc, area, page, False)
        pfn = proc.ptes[page][0]
        return self.data[pfn][va % PAGE] if pfn in self.data else 0

    def write(self, pid, va, value):
        proc = self.proc(pid)
        if type(value) is not int or not 0 <= value <= 255:
            raise ValueError("not a byte")
        area = self.check(proc, va, True)
        page = va - va % PAGE
        self.fault(proc, area, page, True)
        pfn = proc.ptes[page][0]
        if pfn not in self.data:
            self.data[pfn] = bytearray(PAGE)
        self.data[pfn][va % PAGE] = value

    def frame(self, pid, va):
        proc = self.proc(pid)
        pte = proc.ptes.get(va - va % PAGE)
        return None if pte is None else pte[0]
