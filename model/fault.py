"""The reference page-fault handling: processes, demand paging and copy-on-write.

`Kernel` implements the contract's Kernel (docs/contract.md) on top of the
address space (model/vma.py, one `AddressSpace` per process), the MMU
(model/mmu.py, one 4-level `PageTable` per process, so present user PTEs are
real entries) and the buddy allocator (model/buddy.py, all physical memory:
data pages, page-table pages and the zero page). It follows mm/memory.c:

    read/write      the CPU's translate; on #PF, do_user_addr_fault:
                    find_vma, access_error (x86), then handle_pte_fault
    pte none        private: do_anonymous_page (read: the shared zero page,
                    read-only and never counted; write: a zeroed page);
                    shared: do_read_fault (with do_fault_around) or
                    do_shared_fault on the area's shmem object
    write, RO pte   do_wp_page: reuse the page when it is exclusive
                    (PageAnonExclusive, or refcount 1: wp_can_reuse_anon_folio),
                    otherwise wp_page_copy (a zero page is replaced by a
                    zeroed page, not copied)
    fork            dup_mmap + copy_page_range: private areas that have an
                    anon_vma copy their PTEs, write-protecting writable ones
                    and clearing PageAnonExclusive; shared areas copy nothing
                    (vma_needs_copy) and fault their pages in again later
    munmap, exit    zap_pte_range: drop _mapcount and _refcount, free a page
                    whose refcount reaches 0; page tables are given back
    mprotect        change_protection: PTEs take the new protection
                    (pte_modify); a private PTE becomes writable only if its
                    page is PageAnonExclusive (can_change_pte_writable), so a
                    COW-shared page or the zero page never does

The address space tells the Kernel what it changed through its hooks:
`on_unmap` zaps exactly the ranges munmap, MAP_FIXED and exit remove, and
`on_protect` runs change_protection on exactly the ranges mprotect changed,
so Linux's partial effects (mprotect stopping at a hole) reach the PTEs too.
A shared area's pages live in the page cache of its `vm_file` (one shmem file
per MAP_SHARED mmap, shared by fork and split), at `vm_pgoff` plus the page's
offset in the area; the file is truncated when no area of any process maps
it any more (the last fput).

What the live kernel of the test machine showed, and the model follows
(probed with a C program: si_code, the error code in the signal frame,
/proc/self/pagemap and getrusage minor faults):

- x86 reads of a PROT_WRITE-only area succeed (PROT_WRITE implies readable);
  a PROT_EXEC-only area gets the execute-only protection key on a CPU with
  PKU (this one has it), so a read or write there is SIGSEGV with
  SEGV_PKUERR, present page or not. `Kernel(npages, pku=False)` models a CPU
  without PKU, where such a read succeeds.
- MAP_SHARED|MAP_ANONYMOUS is shmem: a read fault allocates a page (no zero
  page) and maps it writable at once if the area is writable (no
  write-notify for shmem); a read fault also maps the neighbours already in
  the shmem object (fault-around: the 16-page aligned window, clipped to the
  area and the page table), so after fork the child's first read of one
  shared page shows the others present too.
- A private area whose only faults were reads has no anon_vma, so fork does
  not copy its zero-page PTEs; after any write fault it does, zero-page PTEs
  included.
- After fork and the child's exit, the parent's page is mapped once but not
  PageAnonExclusive: mprotect(R) then mprotect(RW) leaves its PTE read-only
  and the next write faults (and reuses the page). Without a fork, the same
  mprotect pair makes it writable directly.
- A non-canonical address is #GP, not #PF: SIGSEGV with si_code SI_KERNEL
  and error code 0. An address at or above TASK_SIZE_MAX always reports P in
  its error code (sanitize_error_code).

`struct page` fields: `_refcount` is the count of references (one per
mapping of an anon page, plus one from the page cache for a shmem page, one
for a page-table page, one that pins the zero page); `_mapcount` is kept here
as the number of PTEs that map the page (Linux stores that minus one). The
zero page's PTEs are "special" (vm_normal_page is NULL): they change neither
count, as in Linux.

Memory that runs out in a fault raises MemoryError (Linux would invoke the
OOM killer) and leaves the state as it was; a fork that runs out raises
OSError(ENOMEM), as fork(2) does, after undoing the child (the parent's PTEs
stay write-protected, as Linux leaves them).
"""

from __future__ import annotations

import errno
import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from mmcheck.model.buddy import BuddyAllocator
from mmcheck.model.linux import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_RW,
    _PAGE_USER,
    MAP_SHARED,
    PAGE_SHIFT,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    X86_PF_PROT,
    X86_PF_USER,
    X86_PF_WRITE,
)
from mmcheck.model.mmu import _PAGE_PROTNONE, _PAGE_SPECIAL, PageFault, PageTable, pte_modify
from mmcheck.model.vma import VM_PKEY_MASK, VM_WIPEONFORK, AddressSpace, ShmemFile, VmArea
from mmcheck.model.vocabulary import Operation, Record, Snapshot, StateVar, Vocabulary

__all__ = [
    "SEGV_ACCERR",
    "SEGV_MAPERR",
    "SEGV_PKUERR",
    "SI_KERNEL",
    "VOCABULARY",
    "Byte",
    "Frame",
    "Kernel",
    "Mapping",
    "PageInfo",
    "Proc",
    "ProcVma",
    "Rss",
    "Segfault",
    "TlbEntry",
    "vm_get_page_prot",
]

# si_code of a SIGSEGV (include/uapi/asm-generic/siginfo.h)
SEGV_MAPERR = 1  # no area at the address
SEGV_ACCERR = 2  # the area forbids the access
SEGV_PKUERR = 4  # a protection key forbids it
SI_KERNEL = 0x80  # sent by the kernel for a #GP (a non-canonical address)
X86_PF_PK = 1 << 5
TASK_SIZE_MAX = (1 << 47) - PAGE_SIZE
FAULT_AROUND_PAGES = 16  # fault_around_bytes = 64 KiB
PTRS_PER_PTE = 512

# protection_map[] of arch/x86/mm/pgprot.c, in PTE bits
PAGE_NONE = _PAGE_PROTNONE | _PAGE_ACCESSED
PAGE_SHARED = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX
PAGE_SHARED_EXEC = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED
PAGE_COPY = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED | _PAGE_NX
PAGE_COPY_EXEC = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED
PAGE_READONLY = PAGE_COPY
PAGE_READONLY_EXEC = PAGE_COPY_EXEC


class Segfault(Exception):
    """SIGSEGV, code first as the contract's Segfault(code, va): `code` (si_code:
    SEGV_MAPERR outside every area, SEGV_ACCERR against its protection,
    SEGV_PKUERR against a protection key, SI_KERNEL for a non-canonical
    address), `address` (si_addr) and `error_code` (the x86 page-fault error
    code the signal frame carries; 0 for a #GP)."""

    def __init__(self, code: int, address: int, error_code: int = 0) -> None:
        self.address = address
        self.code = code
        self.error_code = error_code
        name = {SEGV_MAPERR: "SEGV_MAPERR", SEGV_ACCERR: "SEGV_ACCERR",
                SEGV_PKUERR: "SEGV_PKUERR", SI_KERNEL: "SI_KERNEL"}.get(code, str(code))
        super().__init__(f"SIGSEGV at {address:#x} ({name}, error code {error_code:#x})")


def vm_get_page_prot(prot: int, shared: bool) -> int:
    """The PTE bits an area of `prot` gives its pages (vm_page_prot, x86).

    Private writable areas get PAGE_COPY: read-only until a write fault
    decides between reuse and copy. PROT_WRITE alone is readable on x86.
    """
    if not prot & (PROT_READ | PROT_WRITE | PROT_EXEC):
        return PAGE_NONE
    if shared and prot & PROT_WRITE:
        return PAGE_SHARED_EXEC if prot & PROT_EXEC else PAGE_SHARED
    return PAGE_COPY_EXEC if prot & PROT_EXEC else PAGE_COPY


@dataclass
class Task:
    """A process: its mm (areas), its page tables and its RSS counters."""

    pid: int
    mm: AddressSpace
    pgd: PageTable
    rss_anon: int = 0  # MM_ANONPAGES
    rss_shmem: int = 0  # MM_SHMEMPAGES


class _PgtablePages:
    """What each PageTable takes its table pages from: the Kernel's buddy allocator."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel

    def alloc_pages(self, order: int) -> int | None:
        return self.kernel._alloc_pgtable(order)

    def free_pages(self, pfn: int, order: int) -> None:
        self.kernel._free_pgtable(pfn, order)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _canonical(va: int) -> bool:
    return (va >> 47) in (0, (1 << 17) - 1)


class Kernel:
    """Processes with anonymous memory over `npages` page frames."""

    def __init__(self, npages: int, *, pku: bool = True, map_droppable: bool = False) -> None:
        self.npages = npages
        self.map_droppable = map_droppable  # MAP_DROPPABLE as Linux 6.11+ (AddressSpace)
        self.pku = pku
        self.buddy = BuddyAllocator(npages)
        self._refcount: dict[int, int] = {}
        self._mapcount: dict[int, int] = {}  # PTEs mapping the page (Linux: _mapcount + 1)
        self._kind: dict[int, str] = {}  # "anon", "shmem", "pgtable" or "zero"
        self._anon_exclusive: set[int] = set()  # PageAnonExclusive
        self._data: dict[int, bytearray] = {}  # contents; a page not here reads as zeros
        self._page_cache: dict[ShmemFile, dict[int, int]] = {}  # shmem: pgoff -> pfn
        self._unmapped_files: set[ShmemFile] = set()  # may have lost their last area
        self._pgtable_pages = _PgtablePages(self)
        self._tasks: dict[int, Task] = {}
        self._next_pid = 1
        zero = self.buddy.alloc(0)
        if zero is None:
            raise ValueError(f"Kernel: {npages} pages leave none for the zero page")
        self.zero_pfn = zero  # empty_zero_page: pinned, never freed, never writable
        self._refcount[zero] = 1
        self._kind[zero] = "zero"
        self.boot_free_pages = self.buddy.free_pages  # MemFree before any process

    def __repr__(self) -> str:
        return (f"Kernel(npages={self.npages}, procs={sorted(self._tasks)}, "
                f"free_pages={self.free_pages()})")

    # ---- struct page ------------------------------------------------------------

    def _alloc_page(self, kind: str) -> int:
        """A zeroed page with one reference (alloc_page(GFP_HIGHUSER|__GFP_ZERO))."""
        pfn = self.buddy.alloc(0)
        if pfn is None:
            raise MemoryError("out of memory: no free page")
        self._refcount[pfn] = 1
        self._kind[pfn] = kind
        return pfn

    def _put_page(self, pfn: int) -> None:
        """Drop one reference; free the page when it was the last (put_page)."""
        count = self._refcount[pfn] - 1
        if count < 0 or pfn == self.zero_pfn and count == 0:
            raise RuntimeError(f"_put_page: pfn {pfn} refcount underflow")
        if count:
            self._refcount[pfn] = count
            return
        if self._mapcount.get(pfn):
            raise RuntimeError(f"_put_page: pfn {pfn} freed while mapped")
        for table in (self._refcount, self._mapcount, self._kind, self._data):
            table.pop(pfn, None)
        self._anon_exclusive.discard(pfn)
        self.buddy.free(pfn, 0)

    def _alloc_pgtable(self, order: int) -> int | None:
        pfn = self.buddy.alloc(order)
        if pfn is not None:
            self._refcount[pfn] = 1
            self._kind[pfn] = "pgtable"
        return pfn

    def _free_pgtable(self, pfn: int, order: int) -> None:
        self._refcount.pop(pfn)
        self._kind.pop(pfn)
        self.buddy.free(pfn, order)

    # ---- processes ----------------------------------------------------------------

    def _task(self, pid: object) -> Task:
        task = self._tasks.get(pid) if _is_int(pid) else None  # type: ignore[arg-type]
        if task is None:
            raise ValueError(f"no process with pid {pid!r}")
        return task

    def _new_task(self, mm: AddressSpace) -> Task:
        """A task around `mm` with a fresh pgd; OSError(ENOMEM) without a page for it."""
        try:
            pgd = PageTable(4, self._pgtable_pages)
        except MemoryError as exc:
            raise OSError(errno.ENOMEM, "Cannot allocate memory: no page for a pgd") from exc
        task = Task(self._next_pid, mm, pgd)
        self._next_pid += 1
        mm.on_unmap = lambda _mm, vma, start, end: self._unmap_vma(task, vma, start, end)
        mm.on_protect = lambda _mm, vma, start, end: self._change_protection(task, vma,
                                                                             start, end)
        self._tasks[task.pid] = task
        return task

    def spawn(self) -> int:
        """A new process with an empty address space; OSError(ENOMEM) without a pgd page."""
        return self._new_task(AddressSpace(exec_only_pkey=self.pku,
                                           map_droppable=self.map_droppable)).pid

    def fork(self, pid: int) -> int:
        """A copy of process `pid` (dup_mmap, copy_page_range); the child's pid.

        OSError(ENOMEM) if page tables run out; the child is undone then.
        """
        parent = self._task(pid)
        child = self._new_task(parent.mm.fork())
        try:
            for vma in parent.mm:
                self._copy_page_range(parent, child, vma)
        except MemoryError as exc:
            self._exit_task(child)
            raise OSError(errno.ENOMEM, "Cannot allocate memory: fork ran out of "
                          "page tables") from exc
        return child.pid

    def _copy_page_range(self, parent: Task, child: Task, vma: VmArea) -> None:
        """Copy one area's PTEs to the child, write-protecting both sides of a COW page.

        vma_needs_copy: only a private area with an anon_vma copies; the rest
        fault in again in the child.
        """
        if vma.shared or vma.anon_vma is None or vma.vm_flags & VM_WIPEONFORK:
            return
        for va, pfn, flags in parent.pgd.walk_range(vma.vm_start, vma.vm_end):
            if pfn == self.zero_pfn:
                child.pgd.install(va, pfn, flags & ~_PAGE_ACCESSED)
                continue
            cow = flags & ~_PAGE_RW
            child.pgd.install(va, pfn, cow & ~_PAGE_ACCESSED)  # pte_mkold
            if flags & _PAGE_RW:
                parent.pgd.set_pte(va, pfn, cow)  # ptep_set_wrprotect + flush
            self._refcount[pfn] += 1
            self._mapcount[pfn] += 1
            self._anon_exclusive.discard(pfn)  # page_try_dup_anon_rmap
            child.rss_anon += 1

    def exit(self, pid: int) -> None:
        """Tear process `pid` down: every page unmapped and every table given back."""
        self._exit_task(self._task(pid))

    def _exit_task(self, task: Task) -> None:
        try:
            task.mm.exit_mmap()
        finally:
            self._release_files()
        if task.rss_anon or task.rss_shmem or task.pgd.walk_range():
            raise RuntimeError(f"exit: bad rss-counter state in pid {task.pid}")
        task.pgd.destroy()
        del self._tasks[task.pid]

    # ---- mmap, munmap, mprotect ---------------------------------------------------

    def mmap(self, pid: int, addr: int, length: int, prot: int, flags: int) -> int:
        """AddressSpace.mmap in process `pid`; what a MAP_FIXED mapping replaces is
        zapped (the on_unmap hook), and a shared mapping gets a new shmem file."""
        task = self._task(pid)
        try:
            return task.mm.mmap(addr, length, prot, flags)
        finally:
            self._release_files()

    def munmap(self, pid: int, addr: int, length: int) -> None:
        """AddressSpace.munmap in process `pid`; the areas it removes are zapped."""
        task = self._task(pid)
        try:
            task.mm.munmap(addr, length)
        finally:
            self._release_files()

    def mprotect(self, pid: int, addr: int, length: int, prot: int) -> None:
        """AddressSpace.mprotect in process `pid`; each range it changes gets
        change_protection (also before a hole that makes it fail, as on Linux)."""
        self._task(pid).mm.mprotect(addr, length, prot)

    def _unmap_vma(self, task: Task, vma: VmArea, start: int, end: int) -> None:
        """on_unmap: zap [start, end) of `vma`, which is going away."""
        self._zap_range(task, start, end)
        if vma.vm_file is not None:
            self._unmapped_files.add(vma.vm_file)

    def _change_protection(self, task: Task, vma: VmArea, start: int, end: int) -> None:
        """on_protect: every PTE of [start, end) takes the protection of `vma`."""
        for va, pfn, flags in task.pgd.walk_range(start, end):
            new = self._change_pte(vma, pfn, flags)
            if new != flags:
                task.pgd.set_pte(va, pfn, new)  # with a TLB flush, as flush_tlb_range

    def _change_pte(self, vma: VmArea, pfn: int, flags: int) -> int:
        """change_pte_range for one PTE: pte_modify to the area's protection, then
        the write upgrade can_change_pte_writable allows (exclusive anon pages)."""
        new = pte_modify(flags, vm_get_page_prot(vma.prot, vma.shared))
        if (not vma.shared and vma.prot & PROT_WRITE and new & _PAGE_PRESENT
                and pfn != self.zero_pfn and pfn in self._anon_exclusive):
            new |= _PAGE_RW
        return new

    # ---- zap and shmem ------------------------------------------------------------------

    def _zap_range(self, task: Task, start: int, end: int) -> None:
        """zap_pte_range over [start, end): unmap each PTE, then drop its counts."""
        for va, pfn, _ in task.pgd.walk_range(start, end):
            task.pgd.unmap(va)
            if pfn == self.zero_pfn:
                continue
            if self._kind[pfn] == "shmem":
                task.rss_shmem -= 1
            else:
                task.rss_anon -= 1
            self._mapcount[pfn] -= 1
            self._put_page(pfn)

    def _release_files(self) -> None:
        """fput of the last area of a shmem file: shmem_evict_inode truncates it."""
        if not self._unmapped_files:
            return
        still = {v.vm_file for t in self._tasks.values() for v in t.mm
                 if v.vm_file is not None}
        for file in self._unmapped_files - still:
            for pfn in self._page_cache.pop(file, {}).values():
                self._put_page(pfn)  # the page cache's reference
        self._unmapped_files.clear()

    # ---- access -----------------------------------------------------------------------

    def read(self, pid: int, va: int) -> int:
        """The byte at `va`, faulting it in; Segfault where Linux sends SIGSEGV."""
        task = self._task(pid)
        phys = self._access(task, va, write=False)
        data = self._data.get(phys >> PAGE_SHIFT)
        return data[phys & (PAGE_SIZE - 1)] if data is not None else 0

    def write(self, pid: int, va: int, value: int) -> None:
        """Store the byte `value` at `va`, faulting (and copying) as needed."""
        task = self._task(pid)
        if not _is_int(value) or not 0 <= value <= 0xFF:
            raise ValueError(f"write: {value!r} is not a byte")
        phys = self._access(task, va, write=True)
        pfn = phys >> PAGE_SHIFT
        if self._kind.get(pfn) not in ("anon", "shmem"):
            raise RuntimeError(f"write: pid {task.pid} reached pfn {pfn} for writing")
        data = self._data.get(pfn)
        if data is None:
            data = self._data[pfn] = bytearray(PAGE_SIZE)
        data[phys & (PAGE_SIZE - 1)] = value

    def _access(self, task: Task, va: int, write: bool) -> int:
        """The physical address of a user access, after at most one handled fault."""
        if not _is_int(va) or not 0 <= va < 1 << 64:
            raise ValueError(f"{va!r} is not a 64-bit address")
        if not _canonical(va):
            raise Segfault(SI_KERNEL, va, 0)  # #GP, not #PF
        self._check_pkey(task, va, write)
        for _ in range(2):
            try:
                return task.pgd.translate(va, write, True)
            except PageFault as fault:
                self._do_user_addr_fault(task, va, fault.code)
        raise RuntimeError(f"_access: pid {task.pid} faults again at {va:#x} after handling")

    def _check_pkey(self, task: Task, va: int, write: bool) -> None:
        """PKRU: the execute-only key denies every data access to its area.

        The CPU checks it after the walk, so a present page faults with P and
        PK; a missing one reaches the handler, which refuses it the same way.
        """
        vma = task.mm.vma_lookup(va)
        if vma is None or not vma.vm_flags & VM_PKEY_MASK:
            return
        code = X86_PF_USER | (X86_PF_WRITE if write else 0)
        if task.pgd.walk(va) is not None:
            code |= X86_PF_PROT | X86_PF_PK
        raise Segfault(SEGV_PKUERR, va, code)

    def _do_user_addr_fault(self, task: Task, va: int, code: int) -> None:
        """The #PF handler: SIGSEGV, or handle_mm_fault so that a retry succeeds."""
        if va >= TASK_SIZE_MAX:
            code |= X86_PF_PROT  # sanitize_error_code: hide the kernel's layout
        vma = task.mm.vma_lookup(va)
        if vma is None:
            raise Segfault(SEGV_MAPERR, va, code)
        if self._access_error(code, vma):
            raise Segfault(SEGV_ACCERR, va, code)
        self._handle_pte_fault(task, vma, va & ~(PAGE_SIZE - 1), bool(code & X86_PF_WRITE))

    @staticmethod
    def _access_error(code: int, vma: VmArea) -> bool:
        """x86 access_error: a write needs VM_WRITE; a read needs an accessible area."""
        if code & X86_PF_WRITE:
            return not vma.prot & PROT_WRITE
        if code & X86_PF_PROT:
            return True  # a read fault on a present page
        return not vma.prot & (PROT_READ | PROT_WRITE | PROT_EXEC)

    def _handle_pte_fault(self, task: Task, vma: VmArea, va: int, write: bool) -> None:
        entry = task.pgd.walk(va)
        if entry is None:
            if not vma.shared:
                self._do_anonymous_page(task, vma, va, write)
            elif write:
                self._do_shared_fault(task, vma, va)
            else:
                self._do_read_fault(task, vma, va)
            return
        pfn, flags = entry
        if not flags & _PAGE_PRESENT:
            raise RuntimeError(f"handle_pte_fault: PROT_NONE pte at {va:#x} in an "
                               f"accessible area of pid {task.pid}")
        if write and not flags & _PAGE_RW:
            self._do_wp_page(task, vma, va, pfn, flags)

    def _do_anonymous_page(self, task: Task, vma: VmArea, va: int, write: bool) -> None:
        """A first touch of a private page: the zero page for a read, a new page for a write."""
        prot = vm_get_page_prot(vma.prot, False)
        if not write:
            task.pgd.install(va, self.zero_pfn, prot | _PAGE_SPECIAL)  # no anon_vma, no counts
            return
        pfn = self._alloc_page("anon")
        try:
            task.pgd.install(va, pfn, prot | _PAGE_RW | _PAGE_DIRTY)
        except MemoryError:
            self._put_page(pfn)
            raise
        self._mapcount[pfn] = 1
        self._anon_exclusive.add(pfn)
        task.rss_anon += 1
        task.mm.anon_vma_prepare(va)

    def _do_wp_page(self, task: Task, vma: VmArea, va: int, pfn: int, flags: int) -> None:
        """A write to a read-only present PTE: reuse the page or copy it."""
        writable = flags | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED
        if vma.shared:
            task.pgd.set_pte(va, pfn, writable)  # wp_page_shared
            return
        if pfn != self.zero_pfn and (pfn in self._anon_exclusive or self._refcount[pfn] == 1):
            self._anon_exclusive.add(pfn)  # wp_can_reuse_anon_folio
            task.pgd.set_pte(va, pfn, writable)  # wp_page_reuse
            return
        new = self._alloc_page("anon")  # wp_page_copy
        if pfn in self._data:
            self._data[new] = bytearray(self._data[pfn])
        prot = vm_get_page_prot(vma.prot, False)
        task.pgd.set_pte(va, new, prot | _PAGE_RW | _PAGE_DIRTY)
        self._mapcount[new] = 1
        self._anon_exclusive.add(new)
        task.mm.anon_vma_prepare(va)
        if pfn == self.zero_pfn:
            task.rss_anon += 1
        else:
            self._mapcount[pfn] -= 1
            self._put_page(pfn)

    def _shmem_page(self, vma: VmArea, va: int) -> tuple[dict[int, int], int]:
        """The page cache of `vma`'s shmem file and the page offset of `va` in it."""
        assert vma.vm_file is not None, "a shared anonymous area has a shmem file"
        cache = self._page_cache.setdefault(vma.vm_file, {})
        return cache, vma.vm_pgoff + ((va - vma.vm_start) >> PAGE_SHIFT)

    def _map_shmem_page(self, task: Task, va: int, cache: dict[int, int], pgoff: int,
                        flags: int) -> None:
        """shmem_get_folio(SGP_CACHE) + finish_fault: find or add the page (a new one
        is zeroed and holds the cache's reference), then map and count it."""
        pfn = cache.get(pgoff)
        new = pfn is None
        if pfn is None:
            pfn = cache[pgoff] = self._alloc_page("shmem")
        try:
            task.pgd.install(va, pfn, flags)
        except MemoryError:
            if new:
                del cache[pgoff]
                self._put_page(pfn)
            raise
        self._refcount[pfn] += 1
        self._mapcount[pfn] = self._mapcount.get(pfn, 0) + 1
        task.rss_shmem += 1

    def _do_shared_fault(self, task: Task, vma: VmArea, va: int) -> None:
        """A write fault on a shared page: map it writable and dirty."""
        cache, pgoff = self._shmem_page(vma, va)
        prot = vm_get_page_prot(vma.prot, True)
        self._map_shmem_page(task, va, cache, pgoff, prot | _PAGE_RW | _PAGE_DIRTY)

    def _do_read_fault(self, task: Task, vma: VmArea, va: int) -> None:
        """A read fault on a shared page: fault-around first, then the page itself."""
        cache, pgoff = self._shmem_page(vma, va)
        prot = vm_get_page_prot(vma.prot, True)
        for addr in self._fault_around_window(vma, va):  # filemap_map_pages
            offset = vma.vm_pgoff + ((addr - vma.vm_start) >> PAGE_SHIFT)
            if offset in cache and task.pgd.walk(addr) is None:
                self._map_shmem_page(task, addr, cache, offset, prot)
        if task.pgd.walk(va) is None:
            self._map_shmem_page(task, va, cache, pgoff, prot)

    @staticmethod
    def _fault_around_window(vma: VmArea, va: int) -> Iterator[int]:
        """do_fault_around's addresses: the aligned 16-page block of PTE slots around
        `va`, clipped to the area and to its page table."""
        pte_off = (va >> PAGE_SHIFT) % PTRS_PER_PTE
        vma_off = (va - vma.vm_start) >> PAGE_SHIFT
        from_pte = max(pte_off - pte_off % FAULT_AROUND_PAGES, pte_off - min(pte_off, vma_off))
        to_pte = min(from_pte + FAULT_AROUND_PAGES, PTRS_PER_PTE,
                     pte_off + vma.pages() - vma_off)
        for slot in range(from_pte, to_pte):
            yield va + (slot - pte_off) * PAGE_SIZE

    # ---- queries ----------------------------------------------------------------------

    def frame(self, pid: int, va: int) -> int | None:
        """The pfn mapped at `va` now (a PROT_NONE page included), or None: pagemap."""
        task = self._task(pid)
        if not _is_int(va) or not 0 <= va < 1 << 64:
            raise ValueError(f"frame: {va!r} is not a 64-bit address")
        if not _canonical(va):
            return None
        entry = task.pgd.walk(va)
        return entry[0] if entry is not None else None

    def free_pages(self) -> int:
        """Pages not in use: the buddy allocator's NR_FREE_PAGES."""
        return self.buddy.free_pages

    def pids(self) -> list[int]:
        """The live processes."""
        return sorted(self._tasks)

    def mmap_placed(self, pid: int, start: int, addr: int, length: int, prot: int,
                    flags: int) -> int:
        """`mmap` in process `pid` with the area placed at `start`, where a
        submission placed it (a checker following its legal choice); see
        AddressSpace.take_area for what makes a place illegal (IllegalPlacement)."""
        task = self._task(pid)
        try:
            return task.mm.take_area(start, addr, length, prot, flags)
        finally:
            self._release_files()

    def snapshot(self) -> Snapshot:
        """The vocabulary's state now; later operations do not change it."""
        procs = sorted(self._tasks.values(), key=lambda t: t.pid)
        vmas = [(t.pid, t.mm.vmas()) for t in procs]
        ptes = [(t.pid, t.pgd.walk_range()) for t in procs]
        tlbs = [(t.pid, t.pgd.tlb.entries()) for t in procs]
        rss = frozenset(Rss(t.pid, t.rss_anon, t.rss_shmem) for t in procs)
        refcount, mapcount = dict(self._refcount), dict(self._mapcount)
        kind, exclusive = dict(self._kind), frozenset(self._anon_exclusive)
        allocated = frozenset(self.buddy.allocated)
        npages, zero, free = self.npages, self.zero_pfn, self.buddy.free_pages
        table_pages = sum(t.pgd.table_pages() for t in procs)
        # What each process's memory holds, copied now (the bytes are read lazily).
        areas = [(t.pid, [(v.vm_start, v.vm_end, v.vm_pgoff, v.vm_file) for v in t.mm])
                 for t in procs]
        data = {pfn: bytes(d) for pfn, d in self._data.items()}
        caches = {f: dict(c) for f, c in self._page_cache.items()}
        boot = self.boot_free_pages

        def page_info(pfn: int) -> PageInfo:
            return PageInfo(pfn, refcount.get(pfn, 0), mapcount.get(pfn, 0),
                            pfn not in allocated, pfn == zero, kind.get(pfn) == "pgtable",
                            kind.get(pfn) == "shmem", kind.get(pfn) == "anon", pfn in exclusive)

        return Snapshot({
            "npages": lambda: npages,
            "zero_pfn": lambda: zero,
            "free_pages": lambda: free,
            "table_pages": lambda: table_pages,
            "procs": lambda: frozenset(Proc(t.pid) for t in procs),
            "vmas": lambda: [ProcVma(pid, *v) for pid, vs in vmas for v in vs],
            "mappings": lambda: _mappings(vmas, ptes),
            "pages": lambda: [page_info(pfn) for pfn in range(npages)],
            "used_pages": lambda: [page_info(pfn) for pfn in sorted(allocated)],
            "tlb": lambda: [TlbEntry(pid, e.va, e.pfn, bool(e.flags & _PAGE_RW))
                            for pid, entries in tlbs for e in entries],
            "rss": lambda: rss,
            "frames": lambda: [Frame(pid, va, pfn) for pid, entries in ptes
                               for va, pfn, _ in entries],
            "memory": lambda: _memory(areas, ptes, data, caches),
            "boot_free_pages": lambda: boot,
        })


def _memory(areas: list[tuple[int, list[tuple[int, int, int, ShmemFile | None]]]],
            ptes: list[tuple[int, list[tuple[int, int, int]]]], data: dict[int, bytes],
            caches: dict[ShmemFile, dict[int, int]]) -> list[Byte]:
    """Every nonzero byte a read() would return, process by process: the page a PTE
    maps, else (in a shared area) the page of its shmem file, else zero."""
    out: list[Byte] = []

    def emit(pid: int, va: int, pfn: int | None) -> None:
        page = data.get(pfn) if pfn is not None else None
        if page:
            out.extend(Byte(pid, va + m.start(), page[m.start()])
                       for m in re.finditer(rb"[^\x00]", page))

    for (pid, mm), (_, entries) in zip(areas, ptes, strict=True):
        present = {va: pfn for va, pfn, _ in entries}
        for va, pfn in present.items():
            emit(pid, va, pfn)
        for start, end, pgoff, file in mm:
            cache = caches.get(file) if file is not None else None
            for offset, pfn in (cache or {}).items():
                va = start + ((offset - pgoff) << PAGE_SHIFT)
                if start <= va < end and va not in present:
                    emit(pid, va, pfn)
    return out


def _mappings(vmas: list[tuple[int, list[tuple[int, int, int, int]]]],
              ptes: list[tuple[int, list[tuple[int, int, int]]]]) -> list[Mapping]:
    out: list[Mapping] = []
    for (pid, areas), (_, entries) in zip(vmas, ptes, strict=True):
        starts = [v[0] for v in areas]
        for va, pfn, flags in entries:
            i = bisect_right(starts, va) - 1
            shared = i >= 0 and va < areas[i][1] and bool(areas[i][3] & MAP_SHARED)
            out.append(Mapping(pid, va, pfn, bool(flags & _PAGE_RW and flags & _PAGE_PRESENT),
                               bool(flags & _PAGE_PRESENT), shared))
    return out


# ---- the vocabulary ------------------------------------------------------------------

class Proc(NamedTuple):
    """A live process."""

    pid: int


class ProcVma(NamedTuple):
    """An area of process `pid`, as AddressSpace.vmas() gives it."""

    pid: int
    start: int
    end: int
    prot: int
    flags: int


class Mapping(NamedTuple):
    """A user PTE of process `pid` that maps `pfn` (every one Linux counts as
    present: a PROT_NONE one has `present` false); `shared` if its area is."""

    pid: int
    va: int
    pfn: int
    writable: bool
    present: bool
    shared: bool


class PageInfo(NamedTuple):
    """The struct page of `pfn`: _refcount, the number of PTEs mapping it (the zero
    page's are not counted, as in Linux), whether the buddy allocator holds it
    free, and what it is used for."""

    pfn: int
    refcount: int
    mapcount: int
    free: bool
    zero: bool
    pgtable: bool
    shmem: bool
    anon: bool
    exclusive: bool


class TlbEntry(NamedTuple):
    """A cached translation in process `pid`'s TLB."""

    pid: int
    va: int
    pfn: int
    writable: bool


class Frame(NamedTuple):
    """What frame(pid, va) shows: the page at va of process pid is mapped to pfn."""

    pid: int
    va: int
    pfn: int


class Byte(NamedTuple):
    """A nonzero byte of process pid's memory: what read(pid, va) returns."""

    pid: int
    va: int
    value: int


class Rss(NamedTuple):
    """Process `pid`'s RSS counters: MM_ANONPAGES and MM_SHMEMPAGES."""

    pid: int
    anon: int
    shmem: int


VOCABULARY = Vocabulary(
    subsystem="fault",
    doc="Processes with anonymous memory: demand paging, copy-on-write fork, shmem, "
        "struct page counts, over one buddy allocator.",
    records=(
        Record("Proc", (("pid", "int"),), doc="A live process."),
        Record("ProcVma", (("pid", "int"), ("start", "int"), ("end", "int"), ("prot", "int"),
                           ("flags", "int")),
               doc="An area [start, end) of process pid; flags keep MAP_SHARED or "
                   "MAP_PRIVATE."),
        Record("Mapping", (("pid", "int"), ("va", "int"), ("pfn", "int"),
                           ("writable", "bool"), ("present", "bool"), ("shared", "bool")),
               doc="A user PTE mapping pfn at va (PROT_NONE ones too, with present "
                   "false); shared if its area is MAP_SHARED."),
        Record("PageInfo", (("pfn", "int"), ("refcount", "int"), ("mapcount", "int"),
                            ("free", "bool"), ("zero", "bool"), ("pgtable", "bool"),
                            ("shmem", "bool"), ("anon", "bool"), ("exclusive", "bool")),
               doc="struct page: _refcount; mapcount = PTEs mapping it (0 for the zero "
                   "page, whose PTEs are special); free in the buddy allocator; its use; "
                   "exclusive = PageAnonExclusive."),
        Record("TlbEntry", (("pid", "int"), ("va", "int"), ("pfn", "int"),
                            ("writable", "bool")),
               doc="A cached translation in process pid's TLB."),
        Record("Rss", (("pid", "int"), ("anon", "int"), ("shmem", "int")),
               doc="MM_ANONPAGES and MM_SHMEMPAGES of process pid."),
        Record("Frame", (("pid", "int"), ("va", "int"), ("pfn", "int")),
               doc="What frame(pid, va) shows: the page at va (page-aligned) maps pfn."),
        Record("Byte", (("pid", "int"), ("va", "int"), ("value", "int")),
               doc="A nonzero byte of process pid's memory at va: what read(pid, va) "
                   "returns (a byte not listed reads 0)."),
    ),
    state=(
        StateVar("npages", "int", doc="Page frames: pfns 0 .. npages-1."),
        StateVar("zero_pfn", "int", doc="The shared zero page."),
        StateVar("free_pages", "int", doc="Pages the buddy allocator holds free."),
        StateVar("table_pages", "int", doc="Page-table pages of all processes."),
        StateVar("procs", "set[Proc]", doc="Live processes."),
        StateVar("vmas", "list[ProcVma]", doc="Every area of every process."),
        StateVar("mappings", "list[Mapping]", doc="Every user PTE of every process."),
        StateVar("pages", "list[PageInfo]", doc="The struct page of every pfn."),
        StateVar("used_pages", "list[PageInfo]",
                 doc="The struct pages of the pfns in use (not free), by pfn: `pages` "
                     "without the free ones, for properties about pages in use."),
        StateVar("tlb", "list[TlbEntry]", doc="Every cached translation of every process."),
        StateVar("rss", "set[Rss]", doc="RSS counters of every process."),
        StateVar("frames", "list[Frame]",
                 doc="What frame() shows: every page mapped in every process, with its pfn "
                     "(a PROT_NONE page too)."),
        StateVar("memory", "list[Byte]",
                 doc="Every nonzero byte of every process's memory, as read() returns it "
                     "(private pages as written or inherited at fork, shared pages "
                     "through their shmem object, mapped now or not)."),
        StateVar("boot_free_pages", "int",
                 doc="free_pages() when the Kernel was made, before any process."),
    ),
    operations=(
        Operation("spawn", (), "int", ("OSError",), doc="A new, empty process."),
        Operation("fork", (("pid", "int"),), "int", ("ValueError", "OSError"),
                  doc="A copy-on-write copy of process pid."),
        Operation("exit", (("pid", "int"),), "none", ("ValueError",),
                  doc="Tear process pid down."),
        Operation("mmap", (("pid", "int"), ("addr", "int"), ("length", "int"),
                           ("prot", "int"), ("flags", "int")), "int",
                  ("ValueError", "OSError"), doc="AddressSpace.mmap in process pid."),
        Operation("munmap", (("pid", "int"), ("addr", "int"), ("length", "int")), "none",
                  ("ValueError", "OSError"), doc="AddressSpace.munmap in process pid."),
        Operation("mprotect", (("pid", "int"), ("addr", "int"), ("length", "int"),
                               ("prot", "int")), "none", ("ValueError", "OSError"),
                  doc="AddressSpace.mprotect in process pid."),
        Operation("read", (("pid", "int"), ("va", "int")), "int",
                  ("Segfault", "ValueError", "MemoryError"),
                  doc="The byte at va, faulting it in."),
        Operation("write", (("pid", "int"), ("va", "int"), ("value", "int")), "none",
                  ("Segfault", "ValueError", "MemoryError"),
                  doc="Store a byte at va, faulting and copying as needed."),
    ),
)
