"""The reference address space: one process's VMAs, as mm/mmap.c, mm/vma.c and
mm/mprotect.c of Linux 6.18 keep them for anonymous memory.

`AddressSpace` is the kernel's `mm_struct` reduced to its VMAs, and implements
the `AddressSpace` part of docs/contract.md. Its functions carry the kernel's
names so that it can be read next to the source:

    mmap        ksys_mmap_pgoff -> do_mmap -> __get_unmapped_area -> mmap_region
                (vms_gather_munmap_vmas for MAP_FIXED, vma_merge_new_range)
    munmap      do_vmi_munmap -> do_vmi_align_munmap (vms_gather_munmap_vmas)
    mprotect    do_mprotect_pkey -> mprotect_fixup -> vma_modify_flags
                (vma_merge_existing_range, else split_vma)
    fork        dup_mmap -> anon_vma_fork
    faults      anon_vma_prepare (the fault handler calls it on a write fault)

What decides a merge is more than /proc/<pid>/maps shows, and the model keeps
all of it:

  * vm_flags beyond rwx/s: VM_ACCOUNT (set on a private writable mapping, kept
    by mprotect once the area has an anon_vma, dropped while it has none),
    VM_NORESERVE, VM_WIPEONFORK/VM_DROPPABLE, the execute-only protection key.
  * vm_pgoff: the address >> PAGE_SHIFT for a private area, the offset into its
    shmem file for a shared one (every shared mmap gets a file of its own).
  * anon_vma: an area gets one on its first write fault (reusing a compatible
    neighbour's, see find_mergeable_anon_vma); areas merge only when their
    anon_vmas allow it, and an area whose anon_vma_chain is longer than one (it
    was inherited by fork from a faulted area) never merges with a neighbour
    that has no anon_vma of the same identity.

Errors come as `OSError` with the errno Linux returns, checked in the order
Linux checks them; where Linux leaves partial effects (mprotect meeting a hole
or failing a split), so does the model. Everything a non-fixed mmap places is
placed as Linux places it (top-down from mmap_base, THP alignment of hintless
anonymous mappings whose length is a multiple of 2 MiB, bottom-up fallback).

Not modelled: file mappings, mremap, madvise, mlock, mseal, stacks
(MAP_GROWSDOWN), and the MAP_* bits that only those use (MAP_LOCKED,
MAP_POPULATE, MAP_HUGETLB, ...), which mmap here ignores. The process is taken
to be unprivileged (EPERM below mmap_min_addr) with no rlimits in the way.
docs/linux-semantics.md lists what the live kernel showed and the tests that
pin it.
"""

from __future__ import annotations

import bisect
import errno
import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import NamedTuple

from mmcheck.model.linux import (
    DEFAULT_MAX_MAP_COUNT,
    DEFAULT_MMAP_MIN_ADDR,
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    MAP_TYPE,
    PAGE_SHIFT,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    TASK_SIZE_X86_64,
    page_aligned,
)
from mmcheck.model.vocabulary import Operation, Record, Snapshot, StateVar, Vocabulary

__all__ = [
    "VOCABULARY",
    "AddressSpace",
    "AnonVma",
    "Gap",
    "IllegalPlacement",
    "Listed",
    "ShmemFile",
    "Vma",
    "VmArea",
    "VmAreaInfo",
    "mm_struct",
    "snapshot_from_vmas",
]

# -- numbers the contract does not name (include/uapi/asm-generic/mman*.h) ------------
MAP_DROPPABLE = 0x08
MAP_NORESERVE = 0x4000
PROT_SEM = 0x8
PROT_GROWSDOWN = 0x01000000
PROT_GROWSUP = 0x02000000
ULONG_MASK = (1 << 64) - 1
PMD_SIZE = 2 << 20
OVERCOMMIT_NEVER = 2

# -- vm_flags (include/linux/mm.h) ------------------------------------------------------
VM_READ = 0x1
VM_WRITE = 0x2
VM_EXEC = 0x4
VM_SHARED = 0x8
VM_MAYREAD = 0x10
VM_MAYWRITE = 0x20
VM_MAYEXEC = 0x40
VM_MAYSHARE = 0x80
VM_GROWSDOWN = 0x100
VM_ACCOUNT = 0x100000
VM_NORESERVE = 0x200000
VM_WIPEONFORK = 0x2000000
VM_DONTDUMP = 0x4000000
VM_SOFTDIRTY = 0x8000000
VM_PKEY_BIT0 = 1 << 32  # VM_HIGH_ARCH_0: protection key bit 0 (x86)
VM_PKEY_MASK = 0xF << 32
VM_DROPPABLE = 1 << 40  # a high bit of its own; only its presence matters here
VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC
EXEC_ONLY_PKEY = 1  # execute_only_pkey(): the first key an mm allocates

VM_FLAG_NAMES = (
    (VM_READ, "rd"), (VM_WRITE, "wr"), (VM_EXEC, "ex"), (VM_SHARED, "sh"),
    (VM_MAYREAD, "mr"), (VM_MAYWRITE, "mw"), (VM_MAYEXEC, "me"), (VM_MAYSHARE, "ms"),
    (VM_ACCOUNT, "ac"), (VM_NORESERVE, "nr"), (VM_WIPEONFORK, "wf"), (VM_DONTDUMP, "dd"),
    (VM_SOFTDIRTY, "sd"), (VM_DROPPABLE, "dp"),
)


class IllegalPlacement(ValueError):
    """A place where no correct address space could put a non-fixed mapping:
    raised by `AddressSpace.take_area`. Causes: the hint was free but not used;
    the start is unaligned, outside [mmap_min_addr, task_size) or overlaps an
    area; the mapping was fixed. The message says which. Nothing changes."""


def _oserror(err: int, what: str) -> OSError:
    return OSError(err, f"{errno.errorcode[err]}: {what}")


def _page_align(n: int) -> int:
    """PAGE_ALIGN on an unsigned long: wraps to 0 past the top, as C does."""
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1) & ULONG_MASK


# -- the objects vm_area_struct points to -------------------------------------------------
class AnonVma:
    """struct anon_vma, reduced to what decides merging and reuse.

    `avcs` counts the anon_vma_chain entries linking this anon_vma to a VMA (in
    any process): the interval tree `rb_root` of the kernel. A root anon_vma is
    its own parent and counts itself among its `num_children`.
    """

    _ids = itertools.count(1)

    def __init__(self, parent: AnonVma | None = None) -> None:
        self.id = next(self._ids)
        self.parent = parent if parent is not None else self
        self.root = parent.root if parent is not None else self
        self.num_children = 0
        self.num_active_vmas = 0
        self.avcs = 0

    def __repr__(self) -> str:
        return (f"AnonVma#{self.id}(children={self.num_children}, "
                f"active={self.num_active_vmas}, avcs={self.avcs})")


class ShmemFile:
    """The shmem file shmem_zero_setup() creates for each MAP_SHARED|MAP_ANONYMOUS mmap."""

    _ids = itertools.count(1)

    def __init__(self) -> None:
        self.id = next(self._ids)

    def __repr__(self) -> str:
        return f"ShmemFile#{self.id}"


@dataclass(eq=False)
class VmArea:
    """struct vm_area_struct: [vm_start, vm_end), vm_flags, vm_pgoff, vm_file, anon_vma.

    `anon_vma_chain` lists the anon_vmas this area is linked to, newest first,
    as the kernel's list is; its length is what vma_had_uncowed_parents() tests.
    """

    vm_start: int
    vm_end: int
    vm_flags: int
    vm_pgoff: int
    vm_file: ShmemFile | None = None
    anon_vma: AnonVma | None = None
    anon_vma_chain: list[AnonVma] = field(default_factory=list)

    @property
    def prot(self) -> int:
        return self.vm_flags & VM_ACCESS_FLAGS

    @property
    def shared(self) -> bool:
        return bool(self.vm_flags & VM_SHARED)

    def pages(self) -> int:
        return (self.vm_end - self.vm_start) >> PAGE_SHIFT

    def contract_tuple(self) -> tuple[int, int, int, int]:
        return (self.vm_start, self.vm_end, self.prot,
                MAP_SHARED if self.shared else MAP_PRIVATE)

    def __repr__(self) -> str:
        flags = " ".join(n for bit, n in VM_FLAG_NAMES if self.vm_flags & bit)
        return (f"VmArea({self.vm_start:#x}-{self.vm_end:#x} [{flags}] pgoff={self.vm_pgoff:#x}"
                f" file={self.vm_file} anon_vma={self.anon_vma and self.anon_vma.id}"
                f" chain={len(self.anon_vma_chain)})")


def vma_is_anonymous(vma: VmArea) -> bool:
    """No vm_ops: a private anonymous area (a shared one is shmem-backed)."""
    return vma.vm_file is None


def vma_had_uncowed_parents(vma: VmArea | None) -> bool:
    """The area has an anon_vma and was linked to its parent's by fork."""
    return vma is not None and vma.anon_vma is not None and len(vma.anon_vma_chain) != 1


def anon_vma_compatible(a: VmArea, b: VmArea) -> bool:
    """a directly below b, same file, flags equal but for rwx, offsets contiguous."""
    return (a.vm_end == b.vm_start and a.vm_file is b.vm_file
            and not (a.vm_flags ^ b.vm_flags) & ~(VM_ACCESS_FLAGS | VM_SOFTDIRTY)
            and b.vm_pgoff == a.vm_pgoff + ((b.vm_start - a.vm_start) >> PAGE_SHIFT))


def anon_vma_chain_link(vma: VmArea, anon_vma: AnonVma) -> None:
    vma.anon_vma_chain.insert(0, anon_vma)  # list_add: at the head
    anon_vma.avcs += 1


def anon_vma_clone(dst: VmArea, src: VmArea) -> None:
    """Link dst to every anon_vma src is linked to; in fork, maybe reuse one.

    Walking src's chain oldest first and adding each link at the head leaves
    dst's chain in src's order, newest first.

    An ancestor anon_vma that no VMA uses any more and that has fewer than two
    children is reused (walking from the oldest); the root never is.
    """
    for anon_vma in reversed(src.anon_vma_chain):
        anon_vma_chain_link(dst, anon_vma)
        if (dst.anon_vma is None and src.anon_vma is not None
                and anon_vma.num_children < 2 and anon_vma.num_active_vmas == 0):
            dst.anon_vma = anon_vma
    if dst.anon_vma is not None:
        dst.anon_vma.num_active_vmas += 1


def unlink_anon_vmas(vma: VmArea) -> None:
    """Drop every link of `vma`; an anon_vma left with none leaves its parent."""
    for anon_vma in vma.anon_vma_chain:
        anon_vma.avcs -= 1
        if anon_vma.avcs == 0:
            anon_vma.parent.num_children -= 1
    if vma.anon_vma is not None:
        vma.anon_vma.num_active_vmas -= 1
        vma.anon_vma = None
    vma.anon_vma_chain = []


def dup_anon_vma(dst: VmArea, src: VmArea) -> None:
    """A merge expands dst over src's pages: dst needs src's anon_vma if it has none."""
    if src.anon_vma is not None and dst.anon_vma is None:
        dst.anon_vma = src.anon_vma
        anon_vma_clone(dst, src)


def anon_vma_fork(vma: VmArea, pvma: VmArea) -> None:
    """The child's copy of pvma: linked to pvma's anon_vmas plus one of its own."""
    vma.anon_vma = None
    vma.anon_vma_chain = []
    if pvma.anon_vma is None:
        return
    anon_vma_clone(vma, pvma)
    if vma.anon_vma is not None:
        return  # an ancestor's anon_vma was reused
    anon_vma = AnonVma(parent=pvma.anon_vma)
    anon_vma.num_active_vmas += 1
    vma.anon_vma = anon_vma
    anon_vma_chain_link(vma, anon_vma)
    anon_vma.parent.num_children += 1


# -- the vocabulary -------------------------------------------------------------------
class Vma(NamedTuple):
    """An area as the contract shows it: (start, end, prot, MAP_SHARED or MAP_PRIVATE)."""

    start: int
    end: int
    prot: int
    flags: int


class Gap(NamedTuple):
    """A free range [start, end) of [mmap_min_addr, task_size)."""

    start: int
    end: int


class Listed(NamedTuple):
    """Entry `index` (0 first) of vmas() as the object lists it: [start, end)."""

    index: int
    start: int
    end: int


class VmAreaInfo(NamedTuple):
    """Everything of a vm_area_struct that decides merges (0 where there is none)."""

    start: int
    end: int
    vm_flags: int
    pgoff: int
    file: int
    anon_vma: int
    chain: int


VOCABULARY = Vocabulary(
    subsystem="vma",
    doc="One process's anonymous mappings (mm_struct): VMAs kept sorted, split and "
        "merged as Linux does, and the free gaps between them.",
    records=(
        Record("Vma", (("start", "int"), ("end", "int"), ("prot", "int"), ("flags", "int")),
               doc="An area as /proc/<pid>/maps shows it: [start, end), PROT_* bits, "
                   "MAP_SHARED or MAP_PRIVATE."),
        Record("Gap", (("start", "int"), ("end", "int")),
               doc="A maximal free range [start, end) inside [mmap_min_addr, task_size)."),
        Record("Listed", (("index", "int"), ("start", "int"), ("end", "int")),
               doc="Entry `index` (0 first) of vmas() in the order it lists them: what "
                   "'sorted by start' is about."),
        Record("VmArea", (("start", "int"), ("end", "int"), ("vm_flags", "int"),
                          ("pgoff", "int"), ("file", "int"), ("anon_vma", "int"),
                          ("chain", "int")),
               doc="The whole vm_area_struct: vm_flags (VM_ACCOUNT, VM_NORESERVE... too), "
                   "vm_pgoff, the shmem file id (0: none), the anon_vma id (0: none) and "
                   "the length of its anon_vma_chain."),
    ),
    state=(
        StateVar("vmas", "list[Vma]", doc="Every area, sorted by start."),
        StateVar("listed", "list[Listed]", doc="vmas() with each entry's position."),
        StateVar("areas", "list[VmArea]", doc="Every area with its hidden state, sorted."),
        StateVar("gaps", "list[Gap]",
                 doc="The free ranges of [mmap_min_addr, task_size), sorted."),
        StateVar("map_count", "int", doc="mm->map_count: the number of areas."),
        StateVar("task_size", "int", doc="TASK_SIZE: addresses are below it."),
        StateVar("mmap_min_addr", "int", doc="vm.mmap_min_addr: nothing is mapped below it."),
        StateVar("max_map_count", "int", doc="vm.max_map_count."),
        StateVar("mmap_base", "int", doc="Where top-down placement starts."),
        StateVar("errno", "int",
                 doc="The thread's errno: what the last failed mmap, munmap or mprotect "
                     "set it to (0 before any failed); a call that succeeds leaves it."),
    ),
    operations=(
        Operation("mmap", (("addr", "int"), ("length", "int"), ("prot", "int"),
                           ("flags", "int")), returns="int", raises=("OSError",),
                  doc="mmap(addr, length, prot, flags, -1, 0): the start of the new area."),
        Operation("munmap", (("addr", "int"), ("length", "int")), returns="none",
                  raises=("OSError",), doc="munmap(addr, length)."),
        Operation("mprotect", (("addr", "int"), ("length", "int"), ("prot", "int")),
                  returns="none", raises=("OSError",), doc="mprotect(addr, length, prot)."),
        Operation("find_vma", (("addr", "int"),), returns="int?", raises=(),
                  doc="find_vma(addr): the start of the first area whose end is above "
                      "addr, none if there is none (the checker holds the rest of the "
                      "tuple find_vma returns against vmas())."),
    ),
)


def gaps_between(vmas: list[Vma] | list[tuple[int, int, int, int]], low: int,
                 high: int) -> list[Gap]:
    """The free ranges of [low, high) around `vmas` (sorted, disjoint)."""
    gaps: list[Gap] = []
    cursor = low
    for start, end, *_ in vmas:
        if start > cursor:
            gaps.append(Gap(cursor, min(start, high)))
        cursor = max(cursor, end)
        if cursor >= high:
            break
    if cursor < high:
        gaps.append(Gap(cursor, high))
    return [g for g in gaps if g.start < g.end]


def snapshot_from_vmas(vmas: list[tuple[int, int, int, int]], *, task_size: int,
                       mmap_min_addr: int, max_map_count: int = DEFAULT_MAX_MAP_COUNT,
                       mmap_base: int | None = None, errno: int = 0) -> Snapshot:
    """The vocabulary of a submission, from its `vmas()` and its constructor's arguments.

    `areas` has no hidden state to show: each area appears with its prot as
    vm_flags and zeros elsewhere. `map_count` is the number of areas listed;
    `listed` keeps vmas()'s own order (`gaps` are computed from the areas
    sorted); `errno` is what the caller saw the last failed call set.
    """
    listed = [Vma(*v) for v in vmas]
    base = mmap_base if mmap_base is not None else _default_mmap_base(task_size)
    return Snapshot({
        "vmas": lambda: listed,
        "areas": lambda: [VmAreaInfo(v.start, v.end, v.prot, 0, 0, 0, 0) for v in listed],
        "gaps": lambda: gaps_between(sorted(listed), mmap_min_addr, task_size),
        "map_count": lambda: len(listed),
        "task_size": lambda: task_size,
        "mmap_min_addr": lambda: mmap_min_addr,
        "max_map_count": lambda: max_map_count,
        "mmap_base": lambda: base,
        "listed": lambda: [Listed(i, v.start, v.end) for i, v in enumerate(listed)],
        "errno": lambda: errno,
    })


def _default_mmap_base(task_size: int) -> int:
    # mmap_base(): TASK_SIZE less the stack gap, at least 128 MiB without
    # randomisation; a small model address space starts at its top instead.
    gap = 128 << 20
    return task_size - gap if task_size >= 2 * gap else task_size


# -- the address space ----------------------------------------------------------------
Listener = Callable[["AddressSpace", VmArea, int, int], None]


class AddressSpace:
    """mm_struct: the VMAs of one process, sorted by vm_start.

    Contract: `AddressSpace(task_size, mmap_min_addr)`, `mmap`, `munmap`,
    `mprotect`, `vmas`, `find_vma` (see docs/contract.md). Beyond it:

      max_map_count     vm.max_map_count (ENOMEM when a split would pass it)
      mmap_base         top of the top-down search (default: 128 MiB below TASK_SIZE)
      exec_only_pkey    mmap/mprotect(PROT_EXEC) gets x86's execute-only
                        protection key, as on CPUs with PKU (reads then fault)
      overcommit_memory vm.overcommit_memory (2 makes MAP_NORESERVE ineffective)
      map_droppable     accept MAP_DROPPABLE (0x08) as Linux 6.11+ does; off by
                        default, since the contract says EINVAL for it
                        (docs/contract.md [AS-MMAP-TYPE]); the live oracle turns
                        it on (docs/linux-semantics.md)

    For the fault handler: `anon_vma_prepare(addr)`, `fork()`, `exit_mmap()`,
    `vma_lookup(addr)`, `access_permitted(addr, write)`, and two hooks called
    with (mm, vma, start, end): `on_unmap` before the pages of [start, end) of
    vma are zapped (munmap, MAP_FIXED over them, exit), `on_protect` after
    mprotect changed the protection of [start, end) to vma's.

    For the checker: `errno` (what the last failed contract call set, as the
    libc wrapper sets it) and `take_area(start, ...)`, an mmap placed where a
    submission placed it.
    """

    def __init__(self, task_size: int = TASK_SIZE_X86_64,
                 mmap_min_addr: int = DEFAULT_MMAP_MIN_ADDR, *,
                 max_map_count: int = DEFAULT_MAX_MAP_COUNT, mmap_base: int | None = None,
                 exec_only_pkey: bool = False, overcommit_memory: int = 0,
                 map_droppable: bool = False) -> None:
        if not (page_aligned(task_size) and task_size > 0):
            raise ValueError(f"task_size must be a positive multiple of {PAGE_SIZE}")
        if not 0 <= mmap_min_addr < task_size:
            raise ValueError("mmap_min_addr must lie in [0, task_size)")
        self.task_size = task_size
        self.mmap_min_addr = mmap_min_addr
        self.max_map_count = max_map_count
        self.mmap_base = mmap_base if mmap_base is not None else _default_mmap_base(task_size)
        self.mmap_legacy_base = _page_align(task_size // 3)  # TASK_UNMAPPED_BASE
        self.exec_only_pkey = exec_only_pkey
        self.overcommit_memory = overcommit_memory
        self.map_droppable = map_droppable
        self._vmas: list[VmArea] = []
        self._starts: list[int] = []
        self.map_count = 0
        self.errno = 0  # the thread's errno, as the contract's calls leave it
        self._chosen: int | None = None  # take_area's placement, while it runs
        self.on_unmap: Listener | None = None
        self.on_protect: Listener | None = None

    def __repr__(self) -> str:
        return f"AddressSpace({self.map_count} areas: {self._vmas})"

    # -- the maple tree, as a sorted list ---------------------------------------------
    def _index_of(self, vma: VmArea) -> int:
        i = bisect.bisect_left(self._starts, vma.vm_start)
        assert self._vmas[i] is vma, "vma not in this mm"
        return i

    def _insert(self, vma: VmArea) -> None:
        i = bisect.bisect_left(self._starts, vma.vm_start)
        self._vmas.insert(i, vma)
        self._starts.insert(i, vma.vm_start)

    def _remove(self, vma: VmArea) -> None:
        i = self._index_of(vma)
        del self._vmas[i]
        del self._starts[i]

    def _set_range(self, vma: VmArea, start: int, end: int, pgoff: int) -> None:
        """vma_set_range: move vma's bounds (its neighbours stay sorted around it)."""
        i = self._index_of(vma)
        vma.vm_start, vma.vm_end, vma.vm_pgoff = start, end, pgoff
        self._starts[i] = start

    def find_vma_struct(self, addr: int) -> VmArea | None:
        """find_vma(): the first area whose vm_end is above addr."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0 and self._vmas[i].vm_end > addr:
            return self._vmas[i]
        return self._vmas[i + 1] if i + 1 < len(self._vmas) else None

    def vma_lookup(self, addr: int) -> VmArea | None:
        """The area that contains addr, or None."""
        vma = self.find_vma_struct(addr)
        return vma if vma is not None and vma.vm_start <= addr else None

    def find_vma_intersection(self, start: int, end: int) -> VmArea | None:
        """The first area that overlaps [start, end)."""
        vma = self.find_vma_struct(start)
        return vma if vma is not None and vma.vm_start < end else None

    def vma_prev(self, vma: VmArea) -> VmArea | None:
        i = self._index_of(vma)
        return self._vmas[i - 1] if i > 0 else None

    def vma_next(self, vma: VmArea) -> VmArea | None:
        i = self._index_of(vma) + 1
        return self._vmas[i] if i < len(self._vmas) else None

    def __iter__(self) -> Iterator[VmArea]:
        return iter(list(self._vmas))

    # -- contract: what is mapped ----------------------------------------------------
    def vmas(self) -> list[tuple[int, int, int, int]]:
        """(start, end, prot, MAP_SHARED or MAP_PRIVATE) of every area, sorted."""
        return [v.contract_tuple() for v in self._vmas]

    def find_vma(self, addr: int) -> tuple[int, int, int, int] | None:
        """Linux's find_vma: the first area whose end is above addr."""
        vma = self.find_vma_struct(addr)
        return vma.contract_tuple() if vma is not None else None

    def maps(self) -> str:
        """/proc/<pid>/maps: one line per area, as show_map_vma() prints them."""
        lines = []
        for v in self._vmas:
            perms = "".join(c if v.vm_flags & b else "-"
                            for c, b in (("r", VM_READ), ("w", VM_WRITE), ("x", VM_EXEC)))
            perms += "s" if v.vm_flags & VM_MAYSHARE else "p"
            if v.vm_file is not None:
                head = (f"{v.vm_start:08x}-{v.vm_end:08x} {perms} "
                        f"{v.vm_pgoff << PAGE_SHIFT:08x} 00:01 {v.vm_file.id}")
                lines.append(head.ljust(73) + "/dev/zero (deleted)")
            else:
                lines.append(f"{v.vm_start:08x}-{v.vm_end:08x} {perms} 00000000 00:00 0 ")
        return "".join(line + "\n" for line in lines)

    def snapshot(self) -> Snapshot:
        """The vocabulary's state now; later operations do not change it."""
        listed = [Vma(*v.contract_tuple()) for v in self._vmas]
        areas = [VmAreaInfo(v.vm_start, v.vm_end, v.vm_flags, v.vm_pgoff,
                            v.vm_file.id if v.vm_file else 0,
                            v.anon_vma.id if v.anon_vma else 0, len(v.anon_vma_chain))
                 for v in self._vmas]
        low, high, count = self.mmap_min_addr, self.task_size, self.map_count
        values = {"task_size": self.task_size, "mmap_min_addr": self.mmap_min_addr,
                  "max_map_count": self.max_map_count, "mmap_base": self.mmap_base,
                  "errno": self.errno}
        return Snapshot({
            "vmas": lambda: listed,
            "areas": lambda: areas,
            "gaps": lambda: gaps_between(listed, low, high),
            "map_count": lambda: count,
            "task_size": lambda: values["task_size"],
            "mmap_min_addr": lambda: values["mmap_min_addr"],
            "max_map_count": lambda: values["max_map_count"],
            "mmap_base": lambda: values["mmap_base"],
            "listed": lambda: [Listed(i, v.start, v.end) for i, v in enumerate(listed)],
            "errno": lambda: values["errno"],
        })

    # -- splitting ----------------------------------------------------------------------
    def __split_vma(self, vma: VmArea, addr: int, new_below: bool) -> VmArea:
        """Split vma at addr, bypassing max_map_count; returns the new area.

        new_below: the new area is the part below addr (vma keeps the top);
        otherwise the new area is the part from addr up.
        """
        new = VmArea(vma.vm_start, vma.vm_end, vma.vm_flags, vma.vm_pgoff, vma.vm_file,
                     vma.anon_vma)
        if new_below:
            new.vm_end = addr
            self._set_range(vma, addr, vma.vm_end,
                            vma.vm_pgoff + ((addr - vma.vm_start) >> PAGE_SHIFT))
        else:
            new.vm_start = addr
            new.vm_pgoff += (addr - vma.vm_start) >> PAGE_SHIFT
            vma.vm_end = addr
        anon_vma_clone(new, vma)
        self._insert(new)
        self.map_count += 1
        return new

    def split_vma(self, vma: VmArea, addr: int, new_below: bool) -> VmArea:
        """__split_vma, refused with ENOMEM once map_count reached max_map_count."""
        if self.map_count >= self.max_map_count:
            raise _oserror(errno.ENOMEM, f"split at {addr:#x}: map_count {self.map_count} "
                                         f">= max_map_count {self.max_map_count}")
        return self.__split_vma(vma, addr, new_below)

    # -- merging --------------------------------------------------------------------------
    @staticmethod
    def _is_mergeable_vma(vma: VmArea, flags: int, file: ShmemFile | None) -> bool:
        return not (vma.vm_flags ^ flags) & ~VM_SOFTDIRTY and vma.vm_file is file

    @staticmethod
    def _is_mergeable_anon_vma(tgt: VmArea, src: VmArea | None,
                               src_anon: AnonVma | None) -> bool:
        """879bca0a2c4f: may src's pages (anon_vma src_anon) join tgt's?"""
        if tgt.anon_vma is None and src_anon is not None:
            return not vma_had_uncowed_parents(src)  # tgt will get src's anon_vma
        if tgt.anon_vma is not None and src_anon is None:
            return not vma_had_uncowed_parents(tgt)  # the range will use tgt's
        return src_anon is tgt.anon_vma

    def _can_vma_merge_after(self, prev: VmArea, flags: int, file: ShmemFile | None,
                             src: VmArea | None, anon: AnonVma | None, pgoff: int) -> bool:
        return (self._is_mergeable_vma(prev, flags, file)
                and self._is_mergeable_anon_vma(prev, src, anon)
                and prev.vm_pgoff + prev.pages() == pgoff)

    def _can_vma_merge_before(self, next_: VmArea, flags: int, file: ShmemFile | None,
                              src: VmArea | None, anon: AnonVma | None, pgoff: int,
                              pglen: int) -> bool:
        return (self._is_mergeable_vma(next_, flags, file)
                and self._is_mergeable_anon_vma(next_, src, anon)
                and next_.vm_pgoff == pgoff + pglen)

    @staticmethod
    def _anon_vmas_compatible(prev: VmArea, next_: VmArea) -> bool:
        """Merging both neighbours: their anon_vmas must not differ."""
        return prev.anon_vma is None or next_.anon_vma is None or prev.anon_vma is next_.anon_vma

    def _remove_merged(self, target: VmArea, removed: VmArea) -> None:
        """vma_complete's removal of a merged-away area (anon_vma_merge)."""
        self._remove(removed)
        if removed.anon_vma is not None:
            assert removed.anon_vma is target.anon_vma
        unlink_anon_vmas(removed)
        self.map_count -= 1

    def vma_merge_new_range(self, prev: VmArea | None, next_: VmArea | None, start: int,
                            end: int, flags: int, pgoff: int) -> VmArea | None:
        """Extend prev and/or next over the new range [start, end), or None."""
        pglen = (end - start) >> PAGE_SHIFT
        left = (prev is not None and prev.vm_end == start
                and self._can_vma_merge_after(prev, flags, None, None, None, pgoff))
        right = (next_ is not None and next_.vm_start == end
                 and self._can_vma_merge_before(next_, flags, None, None, None, pgoff, pglen)
                 and (not left or self._anon_vmas_compatible(prev, next_)))
        if left and right:
            dup_anon_vma(prev, next_)
            self._remove_merged(prev, next_)
            prev.vm_end = next_.vm_end
            return prev
        if left:
            prev.vm_end = end
            return prev
        if right:
            self._set_range(next_, start, next_.vm_end, next_.vm_pgoff - pglen)
            return next_
        return None

    def vma_merge_existing_range(self, prev: VmArea | None, middle: VmArea, start: int,
                                 end: int, flags: int) -> VmArea | None:
        """mprotect's merge: [start, end) of middle gets `flags`; join a neighbour?

        prev is middle's predecessor, or middle itself when start is inside it.
        Returns the area that now covers [start, end), or None (no merge).
        """
        left_side, right_side = start == middle.vm_start, end == middle.vm_end
        if not left_side and not right_side:
            return None
        anon, file = middle.anon_vma, middle.vm_file
        pgoff = middle.vm_pgoff + ((start - middle.vm_start) >> PAGE_SHIFT)
        pglen = (end - start) >> PAGE_SHIFT
        left = (left_side and prev is not None and prev is not middle
                and prev.vm_end == start
                and self._can_vma_merge_after(prev, flags, file, middle, anon, pgoff))
        next_ = self.vma_next(middle) if right_side else None
        right = (next_ is not None and next_.vm_start == end
                 and self._can_vma_merge_before(next_, flags, file, middle, anon, pgoff, pglen)
                 and (not left or self._anon_vmas_compatible(prev, next_)))
        if left and right:  # prev extends over middle and next
            dup_anon_vma(prev, next_ if next_.anon_vma is not None else middle)
            self._remove_merged(prev, middle)
            self._remove_merged(prev, next_)
            prev.vm_end = next_.vm_end
            return prev
        if left:  # prev extends over [start, end); middle shrinks or goes
            dup_anon_vma(prev, middle)
            if right_side:
                self._remove_merged(prev, middle)
            else:
                self._set_range(middle, end, middle.vm_end, middle.vm_pgoff + pglen)
            prev.vm_end = end
            return prev
        if right:  # next extends down over [start, end); middle shrinks or goes
            dup_anon_vma(next_, middle)
            if left_side:
                self._remove_merged(next_, middle)
            else:
                middle.vm_end = start
            self._set_range(next_, start, next_.vm_end, next_.vm_pgoff - pglen)
            return next_
        return None

    def vma_modify_flags(self, prev: VmArea | None, vma: VmArea, start: int, end: int,
                         flags: int) -> VmArea:
        """Merge [start, end) of vma with a neighbour, else split it out of vma.

        A failed second split leaves the first one in place, as Linux does.
        """
        merged = self.vma_merge_existing_range(prev, vma, start, end, flags)
        if merged is not None:
            return merged
        if vma.vm_start < start:
            self.split_vma(vma, start, new_below=True)
        if vma.vm_end > end:
            self.split_vma(vma, end, new_below=False)
        return vma

    # -- placement ----------------------------------------------------------------------
    def _gaps(self) -> Iterator[tuple[int, int]]:
        """Every free range, lowest first (the last one is open above)."""
        cursor = 0
        for v in self._vmas:
            if v.vm_start > cursor:
                yield cursor, v.vm_start
            cursor = v.vm_end
        yield cursor, ULONG_MASK + 1

    def vm_unmapped_area(self, length: int, low: int, high: int, topdown: bool) -> int | None:
        """The highest (topdown) or lowest free [addr, addr+length) inside [low, high)."""
        low = max(low, self.mmap_min_addr)  # unmapped_area{,_topdown} raise low_limit
        fits = [(max(s, low), min(e, high)) for s, e in self._gaps()]
        fits = [(s, e) for s, e in fits if e - s >= length]
        if not fits:
            return None
        return fits[-1][1] - length if topdown else fits[0][0]

    def _hint_fits(self, addr: int, length: int) -> bool:
        """mmap_address_hint_valid() and nothing mapped in [addr, addr+length)."""
        if self.task_size - length < addr:
            return False
        vma = self.find_vma_struct(addr)
        return vma is None or addr + length <= vma.vm_start

    def arch_get_unmapped_area_topdown(self, addr: int, length: int, flags: int) -> int:
        if length > self.task_size:
            raise _oserror(errno.ENOMEM, "length above TASK_SIZE")
        if flags & MAP_FIXED:
            return addr
        if addr:
            addr &= ~(PAGE_SIZE - 1)
            if self._hint_fits(addr, length):
                return addr
        found = self.vm_unmapped_area(length, PAGE_SIZE, self.mmap_base, topdown=True)
        if found is not None:
            return found
        # arch_get_unmapped_area(): bottom-up from TASK_UNMAPPED_BASE.
        if addr:
            addr = _page_align(addr)
            if self._hint_fits(addr, length):
                return addr
        found = self.vm_unmapped_area(length, self.mmap_legacy_base, self.task_size,
                                      topdown=False)
        if found is None:
            raise _oserror(errno.ENOMEM, f"no free range of {length:#x} bytes")
        return found

    def thp_get_unmapped_area(self, length: int, flags: int) -> int:
        """__thp_get_unmapped_area: pad by 2 MiB, then align to it."""
        try:
            ret = self.arch_get_unmapped_area_topdown(0, length + PMD_SIZE, flags)
        except OSError:
            return self.arch_get_unmapped_area_topdown(0, length, flags)
        off_sub = -ret & (PMD_SIZE - 1)
        return ret + PMD_SIZE if not off_sub else ret + off_sub

    def __get_unmapped_area(self, addr: int, length: int, flags: int) -> int:
        """Choose (or check) where [addr, addr+length) goes; ENOMEM, EINVAL or EPERM."""
        if length > self.task_size:
            raise _oserror(errno.ENOMEM, "length above TASK_SIZE")
        hint = addr
        if (not flags & MAP_SHARED and not addr and not flags & MAP_FIXED
                and length % PMD_SIZE == 0):
            addr = self.thp_get_unmapped_area(length, flags)
        else:
            addr = self.arch_get_unmapped_area_topdown(addr, length, flags)
        if self._chosen is not None and not flags & MAP_FIXED:
            addr = self._check_placement(self._chosen, hint, addr, length)
        if addr > self.task_size - length:
            raise _oserror(errno.ENOMEM, f"[{addr:#x}, +{length:#x}) ends above TASK_SIZE")
        if addr & (PAGE_SIZE - 1):
            raise _oserror(errno.EINVAL, f"fixed address {addr:#x} is not page-aligned")
        if addr < self.mmap_min_addr:  # security_mmap_addr(), without CAP_SYS_RAWIO
            raise _oserror(errno.EPERM, f"{addr:#x} is below mmap_min_addr "
                                        f"{self.mmap_min_addr:#x}")
        return addr

    def _check_placement(self, start: object, hint: int, linux: int, length: int) -> int:
        """`start` if a correct mm could place a non-fixed mapping of `length` bytes
        there, where Linux chose `linux` for the (rounded) `hint`; IllegalPlacement
        otherwise. The contract leaves the place open except that a free hint is
        used."""
        if not isinstance(start, int) or isinstance(start, bool):
            raise IllegalPlacement(f"{start!r} is not an address")
        if hint and linux == hint and start != hint:
            raise IllegalPlacement(f"the hint {hint:#x} was free for {length:#x} bytes, so "
                                   f"mmap must use it, not {start:#x}")
        if start & (PAGE_SIZE - 1):
            raise IllegalPlacement(f"{start:#x} is not page-aligned")
        if start < self.mmap_min_addr or start > self.task_size - length:
            raise IllegalPlacement(f"[{start:#x}, {start + length:#x}) is not inside "
                                   f"[mmap_min_addr {self.mmap_min_addr:#x}, "
                                   f"task_size {self.task_size:#x})")
        busy = self.find_vma_intersection(start, start + length)
        if busy is not None:
            raise IllegalPlacement(f"[{start:#x}, {start + length:#x}) overlaps the area "
                                   f"[{busy.vm_start:#x}, {busy.vm_end:#x}): a non-fixed "
                                   "mmap never replaces a mapping")
        return start

    def get_unmapped_area(self, addr: int, length: int, flags: int) -> int:
        """Where mmap(addr, length, ..., flags) would put the area; OSError as mmap.

        For MAP_FIXED, the checks of addr alone (ENOMEM, EINVAL, EPERM).
        """
        return self.__get_unmapped_area(addr & ULONG_MASK, _page_align(length), flags)

    # -- munmap -------------------------------------------------------------------------
    def vms_gather_munmap_vmas(self, start: int, end: int) -> tuple[list[VmArea],
                                                                      VmArea | None,
                                                                      VmArea | None]:
        """Split the areas at start and end and detach those in between.

        Returns (detached, prev, next). ENOMEM, before any change, when the range
        lies strictly inside one area and map_count has reached max_map_count.
        """
        vma = self.find_vma_intersection(start, end)
        assert vma is not None
        if start > vma.vm_start:
            if end < vma.vm_end and self.map_count >= self.max_map_count:
                raise _oserror(errno.ENOMEM, f"unmapping inside one area needs a split: "
                                             f"map_count {self.map_count} >= max_map_count "
                                             f"{self.max_map_count}")
            self.__split_vma(vma, start, new_below=True)
        detached: list[VmArea] = []
        while vma is not None and vma.vm_start < end:
            if vma.vm_end > end:
                self.__split_vma(vma, end, new_below=False)
            detached.append(vma)
            vma = self.vma_next(vma)
        prev = self.vma_prev(detached[0])
        next_ = self.vma_next(detached[-1])
        for v in detached:
            self._remove(v)
        return detached, prev, next_

    def vms_complete_munmap_vmas(self, detached: list[VmArea]) -> None:
        """Zap the detached areas' pages and free them."""
        for v in detached:
            if self.on_unmap is not None:
                self.on_unmap(self, v, v.vm_start, v.vm_end)
            unlink_anon_vmas(v)
        self.map_count -= len(detached)

    def do_vmi_munmap(self, start: int, length: int) -> None:
        if start & (PAGE_SIZE - 1) or start > self.task_size or length > self.task_size - start:
            raise _oserror(errno.EINVAL, f"munmap({start:#x}, {length:#x}): bad range")
        end = start + _page_align(length)
        if end == start:
            raise _oserror(errno.EINVAL, "munmap of length 0")
        if self.find_vma_intersection(start, end) is None:
            return
        detached, _, _ = self.vms_gather_munmap_vmas(start, end)
        self.vms_complete_munmap_vmas(detached)

    do_munmap = do_vmi_munmap  # the older name

    def munmap(self, addr: int, length: int) -> None:
        """munmap(2): EINVAL for an unaligned address, zero length, past TASK_SIZE."""
        with self._setting_errno():
            self.do_vmi_munmap(addr & ULONG_MASK, length & ULONG_MASK)

    # -- mmap ---------------------------------------------------------------------------
    def _calc_vm_prot_bits(self, prot: int, pkey: int) -> int:
        flags = prot & VM_ACCESS_FLAGS
        return flags | (pkey << 32 if pkey else 0)

    def do_mmap(self, addr: int, length: int, prot: int, flags: int) -> int:
        """do_mmap() for an anonymous mapping; the start of the new area."""
        if not length:
            raise _oserror(errno.EINVAL, "mmap of length 0")
        if flags & MAP_FIXED_NOREPLACE:
            flags |= MAP_FIXED
        if not flags & MAP_FIXED:
            addr = self.round_hint_to_min(addr)
        length = _page_align(length)
        if not length:
            raise _oserror(errno.ENOMEM, "length rounds up past the top of memory")
        if self.map_count > self.max_map_count:
            raise _oserror(errno.ENOMEM, f"map_count {self.map_count} above max_map_count "
                                         f"{self.max_map_count}")
        addr = self.__get_unmapped_area(addr, length, flags)
        if flags & MAP_FIXED_NOREPLACE and self.find_vma_intersection(addr, addr + length):
            raise _oserror(errno.EEXIST, f"MAP_FIXED_NOREPLACE over a mapping at {addr:#x}")
        pkey = EXEC_ONLY_PKEY if prot == PROT_EXEC and self.exec_only_pkey else 0
        vm_flags = (self._calc_vm_prot_bits(prot, pkey)
                    | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC)
        map_type = flags & MAP_TYPE
        if map_type == MAP_SHARED:
            pgoff = 0
            vm_flags |= VM_SHARED | VM_MAYSHARE
        elif map_type == MAP_PRIVATE or (map_type == MAP_DROPPABLE and self.map_droppable):
            if map_type == MAP_DROPPABLE:
                vm_flags |= VM_DROPPABLE | VM_NORESERVE | VM_WIPEONFORK | VM_DONTDUMP
            pgoff = addr >> PAGE_SHIFT  # set pgoff according to addr for anon_vma
        else:
            raise _oserror(errno.EINVAL, f"map type {map_type:#x} is neither "
                                         "MAP_PRIVATE nor MAP_SHARED")
        if flags & MAP_NORESERVE and self.overcommit_memory != OVERCOMMIT_NEVER:
            vm_flags |= VM_NORESERVE
        return self.mmap_region(addr, length, vm_flags, pgoff)

    def round_hint_to_min(self, hint: int) -> int:
        hint &= ~(PAGE_SIZE - 1)
        if hint and hint < self.mmap_min_addr:
            return _page_align(self.mmap_min_addr)
        return hint

    def mmap_region(self, addr: int, length: int, vm_flags: int, pgoff: int) -> int:
        """Unmap what [addr, addr+length) covers, then merge or insert the new area."""
        end = addr + length
        detached: list[VmArea] = []
        if self.find_vma_intersection(addr, end) is not None:
            detached, prev, next_ = self.vms_gather_munmap_vmas(addr, end)
        else:
            next_ = self.find_vma_struct(addr)
            prev = self.vma_prev(next_) if next_ is not None else (
                self._vmas[-1] if self._vmas else None)
        if (vm_flags & (VM_NORESERVE | VM_SHARED | VM_WRITE)) == VM_WRITE:
            vm_flags |= VM_ACCOUNT  # accountable_mapping()
        # vms_clean_up_area: the old pages go before the new area goes in.
        self.vms_complete_munmap_vmas(detached)
        vma = None
        if not vm_flags & VM_SHARED:  # a new shmem file merges with nothing
            vma = self.vma_merge_new_range(prev, next_, addr, end, vm_flags, pgoff)
        if vma is None:
            vma = VmArea(addr, end, vm_flags, pgoff,
                         ShmemFile() if vm_flags & VM_SHARED else None)
            self._insert(vma)
            self.map_count += 1
        return addr

    def mmap(self, addr: int, length: int, prot: int, flags: int) -> int:
        """mmap(addr, length, prot, flags, -1, 0), as ksys_mmap_pgoff() runs it.

        EBADF without MAP_ANONYMOUS (the descriptor is -1), then do_mmap's checks
        in order: EINVAL zero length, ENOMEM rounding overflow, ENOMEM
        map_count, ENOMEM/EINVAL/EPERM from placement, EEXIST for
        MAP_FIXED_NOREPLACE, EINVAL for a map type other than private or shared
        (MAP_DROPPABLE too, unless `map_droppable`).
        """
        flags &= 0xFFFFFFFF
        with self._setting_errno():
            if not flags & MAP_ANONYMOUS:
                raise _oserror(errno.EBADF, "no MAP_ANONYMOUS, and fd -1 is no file")
            return self.do_mmap(addr & ULONG_MASK, length & ULONG_MASK,
                                _c_int(prot), flags)

    def take_area(self, start: int, addr: int, length: int, prot: int, flags: int) -> int:
        """mmap(addr, length, prot, flags) placed at `start`, where a submission put it.

        Where a non-fixed mapping goes is a legal choice (the contract fixes only
        that a free hint is used); this follows one. Everything else is `mmap`'s:
        the same checks, errnos and merges, and OSError when mmap itself fails.
        IllegalPlacement (a ValueError) when no correct address space could have
        put the area at `start`: a fixed mapping (it has no choice), a free hint
        not taken, or a range that is unaligned, outside [mmap_min_addr,
        task_size) or not free. Nothing changes then.
        """
        if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
            raise IllegalPlacement("a MAP_FIXED or MAP_FIXED_NOREPLACE mapping has no "
                                   "placement to choose")
        self._chosen = start
        try:
            return self.mmap(addr, length, prot, flags)
        finally:
            self._chosen = None

    @contextmanager
    def _setting_errno(self) -> Iterator[None]:
        """A contract call: an OSError it raises sets errno, as the libc wrapper does."""
        try:
            yield
        except OSError as err:
            self.errno = err.errno or 0
            raise

    # -- mprotect -----------------------------------------------------------------------
    def mprotect_fixup(self, vma: VmArea, prev: VmArea | None, start: int, end: int,
                       newflags: int) -> VmArea:
        """Give [start, end) of vma the flags newflags; the area now covering it."""
        oldflags = vma.vm_flags
        if newflags == oldflags:
            return vma
        if newflags & VM_WRITE:
            if not oldflags & (VM_ACCOUNT | VM_WRITE | VM_SHARED | VM_NORESERVE):
                newflags |= VM_ACCOUNT  # a private area turns into data: charge it
        elif oldflags & VM_ACCOUNT and vma_is_anonymous(vma) and vma.anon_vma is None:
            newflags &= ~VM_ACCOUNT  # nothing was ever written: uncharge
        vma = self.vma_modify_flags(prev, vma, start, end, newflags)
        vma.vm_flags = newflags
        if self.on_protect is not None:
            self.on_protect(self, vma, start, end)
        return vma

    def _arch_override_mprotect_pkey(self, vma: VmArea, prot: int) -> int:
        if not self.exec_only_pkey:
            return 0
        if prot == PROT_EXEC:
            return EXEC_ONLY_PKEY
        if self._vma_is_pkey_exec_only(vma):
            return 0  # leaving execute-only: back to the default key
        return (vma.vm_flags & VM_PKEY_MASK) >> 32

    @staticmethod
    def _vma_is_pkey_exec_only(vma: VmArea) -> bool:
        return (vma.vm_flags & VM_ACCESS_FLAGS == VM_EXEC
                and (vma.vm_flags & VM_PKEY_MASK) >> 32 == EXEC_ONLY_PKEY)

    def do_mprotect_pkey(self, start: int, length: int, prot: int) -> None:
        grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP)
        prot &= ~(PROT_GROWSDOWN | PROT_GROWSUP)
        if grows == PROT_GROWSDOWN | PROT_GROWSUP:
            raise _oserror(errno.EINVAL, "PROT_GROWSDOWN and PROT_GROWSUP together")
        if start & (PAGE_SIZE - 1):
            raise _oserror(errno.EINVAL, f"mprotect address {start:#x} is not page-aligned")
        if not length:
            return
        end = (start + _page_align(length)) & ULONG_MASK
        if end <= start:
            raise _oserror(errno.ENOMEM, "mprotect range wraps around")
        if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_SEM):
            raise _oserror(errno.EINVAL, f"unknown prot bits {prot:#x}")
        vma = self.find_vma_intersection(start, end)
        if vma is None:
            raise _oserror(errno.ENOMEM, f"nothing mapped in [{start:#x}, {end:#x})")
        if grows & PROT_GROWSDOWN:
            start = vma.vm_start
            if not vma.vm_flags & VM_GROWSDOWN:
                raise _oserror(errno.EINVAL, "PROT_GROWSDOWN on an area that does not grow")
        else:
            if vma.vm_start > start:
                raise _oserror(errno.ENOMEM, f"{start:#x} is not mapped")
            if grows & PROT_GROWSUP:  # x86 has no VM_GROWSUP
                raise _oserror(errno.EINVAL, "PROT_GROWSUP on an area that does not grow")
        prev = self.vma_prev(vma) if start <= vma.vm_start else vma
        nstart, tmp = start, vma.vm_start
        while vma is not None and vma.vm_start < end:
            if vma.vm_start != tmp:
                raise _oserror(errno.ENOMEM, f"hole at {tmp:#x}: the areas below it changed")
            pkey = self._arch_override_mprotect_pkey(vma, prot)
            newflags = self._calc_vm_prot_bits(prot, pkey) | (
                vma.vm_flags & ~(VM_ACCESS_FLAGS | VM_PKEY_MASK))
            tmp = min(vma.vm_end, end)
            prev = self.mprotect_fixup(vma, prev, nstart, tmp, newflags)
            tmp = nstart = prev.vm_end
            vma = self.vma_next(prev)
        if tmp < end:
            raise _oserror(errno.ENOMEM, f"hole at {tmp:#x}: the areas below it changed")

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        """mprotect(2). EINVAL: unaligned address, unknown prot bits (checked after a
        zero length returns 0 and after ENOMEM for a wrapping range); ENOMEM: part
        of the range unmapped, the areas before the hole already changed."""
        with self._setting_errno():
            self.do_mprotect_pkey(addr & ULONG_MASK, length & ULONG_MASK, _c_int(prot))

    # -- for the fault handler ------------------------------------------------------------
    def access_permitted(self, addr: int, write: bool, exec_: bool = False) -> bool:
        """x86 access_error() negated: may a user access at addr proceed to a fault?

        A write needs VM_WRITE; an instruction fetch VM_EXEC; a read any of
        VM_READ, VM_WRITE, VM_EXEC, except in an area with the execute-only key.
        """
        vma = self.vma_lookup(addr)
        if vma is None:
            return False
        if write:
            return bool(vma.vm_flags & VM_WRITE)
        if exec_:
            return bool(vma.vm_flags & VM_EXEC)
        if vma.vm_flags & VM_PKEY_MASK:
            return False  # PKRU denies data access under the execute-only key
        return bool(vma.vm_flags & VM_ACCESS_FLAGS)

    def find_mergeable_anon_vma(self, vma: VmArea) -> AnonVma | None:
        """A neighbour's anon_vma that vma may share: next first, then prev."""
        next_ = self.vma_next(vma)
        if next_ is not None and anon_vma_compatible(vma, next_) and \
                next_.anon_vma is not None and len(next_.anon_vma_chain) == 1:
            return next_.anon_vma
        prev = self.vma_prev(vma)
        if prev is not None and anon_vma_compatible(prev, vma) and \
                prev.anon_vma is not None and len(prev.anon_vma_chain) == 1:
            return prev.anon_vma
        return None

    def anon_vma_prepare(self, addr: int) -> AnonVma | None:
        """Give the private area containing addr an anon_vma, as its first write fault
        does (do_anonymous_page, wp_page_copy); return it. A shared area has none
        (its pages live in its shmem file): None. ValueError if nothing is mapped."""
        vma = self.vma_lookup(addr)
        if vma is None:
            raise ValueError(f"anon_vma_prepare: {addr:#x} is not mapped")
        if not vma_is_anonymous(vma):
            return None
        if vma.anon_vma is None:
            anon_vma = self.find_mergeable_anon_vma(vma)
            if anon_vma is None:
                anon_vma = AnonVma()
                anon_vma.num_children += 1  # self-parent link of a new root
            vma.anon_vma = anon_vma
            anon_vma_chain_link(vma, anon_vma)
            anon_vma.num_active_vmas += 1
        return vma.anon_vma

    def fork(self) -> AddressSpace:
        """dup_mmap(): the child's address space, area by area.

        VM_WIPEONFORK areas start empty (no anon_vma); others are linked to the
        parent's anon_vmas plus a new one of their own (anon_vma_fork).
        """
        child = AddressSpace(self.task_size, self.mmap_min_addr,
                             max_map_count=self.max_map_count, mmap_base=self.mmap_base,
                             exec_only_pkey=self.exec_only_pkey,
                             overcommit_memory=self.overcommit_memory,
                             map_droppable=self.map_droppable)
        child.mmap_legacy_base = self.mmap_legacy_base
        for mpnt in self._vmas:
            tmp = VmArea(mpnt.vm_start, mpnt.vm_end, mpnt.vm_flags, mpnt.vm_pgoff,
                         mpnt.vm_file)
            if not tmp.vm_flags & VM_WIPEONFORK:
                anon_vma_fork(tmp, mpnt)
            child._vmas.append(tmp)
            child._starts.append(tmp.vm_start)
        child.map_count = self.map_count
        return child

    def exit_mmap(self) -> None:
        """Tear every area down, as process exit does."""
        for v in self._vmas:
            if self.on_unmap is not None:
                self.on_unmap(self, v, v.vm_start, v.vm_end)
            unlink_anon_vmas(v)
        self._vmas.clear()
        self._starts.clear()
        self.map_count = 0

    def check_mm(self) -> None:
        """validate_mm(): sorted, disjoint, aligned, inside bounds, map_count right.

        Raises AssertionError naming the first broken rule; the model's own
        self-check, used by its tests.
        """
        last_end = 0
        for v in self._vmas:
            assert v.vm_start < v.vm_end, f"empty or inverted {v}"
            assert page_aligned(v.vm_start) and page_aligned(v.vm_end), f"unaligned {v}"
            assert v.vm_start >= last_end, f"overlap or disorder at {v}"
            assert v.vm_end <= self.task_size, f"{v} beyond TASK_SIZE"
            assert v.anon_vma is None or v.anon_vma in v.anon_vma_chain, f"chain of {v}"
            last_end = v.vm_end
        assert self._starts == [v.vm_start for v in self._vmas], "index out of date"
        assert self.map_count == len(self._vmas), \
            f"map_count {self.map_count} but {len(self._vmas)} areas"


mm_struct = AddressSpace  # the kernel's name for it


def _c_int(value: int) -> int:
    """A Python int as C's int would hold it (prot is an int in the syscall ABI)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value
