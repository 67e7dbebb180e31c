"""Run a list of window operations on the reference model, recording what the live
oracle records, so that the two can be compared step by step.

The model is laid out as the oracle's child lays out the real process: a
one-page MAP_SHARED guard on each side of the window and a free decoy gap above
it, with mmap_base at the decoy's top, so that a non-fixed mmap whose hint is
not free lands outside the window on both sides. Processes are modelled as
`AddressSpace`s (fork is `AddressSpace.fork`, a write fault calls
`anon_vma_prepare`), and memory contents as one byte array per page (private
pages copied at fork, shared ones kept per shmem file and page offset), so that
the bytes read can be compared too.

Page-table facts (present, frame changes) come from a `Kernel` (the contract's
fault-handling class) when one is given: it is driven with the same operations
and asked `frame(pid, va)` after each access. Without one, those facts stay
None and the comparison skips them.
"""

from __future__ import annotations

import copy
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from mmcheck.checker.live.ops import (
    Area,
    Fork,
    Mmap,
    Mprotect,
    Munmap,
    Op,
    PageFacts,
    Read,
    StepRecord,
    Write,
)
from mmcheck.checker.live.oracle import DECOY_PAGES
from mmcheck.model.linux import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_SHARED,
    PAGE_SIZE,
    PROT_NONE,
    TASK_SIZE_X86_64,
    page_align_up,
)
from mmcheck.model.vma import (
    VM_ACCOUNT,
    VM_NORESERVE,
    VM_PKEY_MASK,
    VM_SHARED,
    VM_WIPEONFORK,
    AddressSpace,
    VmArea,
)

_VMFLAG_BITS = ((VM_ACCOUNT, "ac"), (VM_NORESERVE, "nr"), (VM_WIPEONFORK, "wf"),
                (VM_PKEY_MASK, "pk"))


class ModelMismatch(AssertionError):
    """The address space and the Kernel model given with it disagree on a call."""


@dataclass
class _Process:
    mm: AddressSpace
    mem: dict[int, bytearray] = field(default_factory=dict)  # private page -> bytes
    pid: int | None = None  # in the Kernel, when there is one
    last_pfn: dict[int, int | None] = field(default_factory=dict)


@dataclass
class ModelSetup:
    """Where the window is and how the modelled machine is configured."""

    base: int
    window_pages: int
    task_size: int = TASK_SIZE_X86_64
    mmap_min_addr: int = 4096
    max_map_count: int = 65530
    exec_only_pkey: bool = False
    vmflags: bool = True


def run_model(ops: list[Op], setup: ModelSetup,
              kernel_factory: Callable[[], object] | None = None,
              mm_factory: Callable[..., AddressSpace] = AddressSpace) -> list[StepRecord]:
    """The records the reference model produces for `ops` (see `oracle.run_live`)."""
    return _ModelRun(ops, setup, kernel_factory, mm_factory).run()


class _ModelRun:
    def __init__(self, ops: list[Op], setup: ModelSetup,
                 kernel_factory: Callable[[], object] | None,
                 mm_factory: Callable[..., AddressSpace]) -> None:
        self.ops = ops
        self.s = setup
        self.base = setup.base
        self.end = setup.base + setup.window_pages * PAGE_SIZE
        self.shm: dict[tuple[int, int], bytearray] = {}
        self.gen = 0
        self.kernel = kernel_factory() if kernel_factory is not None else None
        mm = mm_factory(setup.task_size, setup.mmap_min_addr,
                        max_map_count=setup.max_map_count,
                        mmap_base=self.end + (1 + DECOY_PAGES) * PAGE_SIZE,
                        exec_only_pkey=setup.exec_only_pkey,
                        map_droppable=True)  # the live kernel is 6.11+, the contract is not
        self.cur = self._adopt(_Process(mm))
        if self.kernel is not None:
            self.cur.pid = self.kernel.spawn()
        guard = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED
        for addr in (self.base - PAGE_SIZE, self.end):
            self._syscall("mmap", addr, PAGE_SIZE, PROT_NONE, guard)

    def _adopt(self, proc: _Process) -> _Process:
        proc.mm.on_unmap = lambda mm, vma, start, end: self._zap(proc, vma, start, end)
        return proc

    def _zap(self, proc: _Process, vma: VmArea, start: int, end: int) -> None:
        """Pages of a private area that go away lose their contents."""
        if vma.vm_flags & VM_SHARED:
            return
        for addr in range(start, end, PAGE_SIZE):
            proc.mem.pop(addr, None)

    def run(self) -> list[StepRecord]:
        return [self.step(i, op) for i, op in enumerate(self.ops)]

    # -- system calls -----------------------------------------------------------------
    def _syscall(self, name: str, *args: int) -> int | None:
        """Call `name` on the address space (and the Kernel); the result or OSError.

        The Kernel's mmap result must be the same address where it lies in the
        window; outside it, each model placed the area by its own mmap_base, and
        the Kernel's area is unmapped again here at once.
        """
        err: OSError | None = None
        try:
            got = getattr(self.cur.mm, name)(*args)
        except OSError as e:
            err, got = e, None
        if self.kernel is not None:
            try:
                kgot, kerr = getattr(self.kernel, name)(self.cur.pid, *args), None
            except OSError as e:
                kgot, kerr = None, e.errno
            if name == "mmap" and kgot is not None and not self.inside(kgot, args[1]):
                self.kernel.munmap(self.cur.pid, kgot, args[1])
                kgot = "outside"
            mine = (err.errno if err else None,
                    "outside" if name == "mmap" and got is not None
                    and not self.inside(got, args[1]) else got)
            if (kerr, kgot) != mine:
                raise ModelMismatch(f"{name}{tuple(hex(a) for a in args)}: the AddressSpace "
                                    f"says {mine}, the Kernel model says {(kerr, kgot)}")
        if err is not None:
            raise err
        return got

    def inside(self, addr: int, length: int) -> bool:
        return self.base <= addr and addr + page_align_up(length) <= self.end

    def address(self, op: Mmap | Munmap | Mprotect) -> int:
        if op.absolute is not None:
            return op.absolute
        if op.page is None:
            return 0
        return self.base + op.page * PAGE_SIZE + op.delta

    def step(self, i: int, op: Op) -> StepRecord:
        if isinstance(op, Fork):
            self.fork(op)
            return self.record(i)
        if isinstance(op, (Read, Write)):
            return self.access(i, op)
        addr = self.address(op)
        try:
            if isinstance(op, Mmap):
                got = self._syscall("mmap", addr, op.length, op.prot, op.flags)
            elif isinstance(op, Munmap):
                got = self._syscall("munmap", addr, op.length)
            else:
                got = self._syscall("mprotect", addr, op.length, op.prot)
        except OSError as e:
            return self.record(i, errno=e.errno)
        if isinstance(op, Mmap):
            assert got is not None
            self.forget(got, op.length)
            if self.inside(got, op.length):
                return self.record(i, result=got - self.base)
            self.cur.mm.munmap(got, op.length)  # the Kernel's was unmapped already
            return self.record(i, outside=True)
        if isinstance(op, Munmap):
            self.forget(addr, op.length)
        return self.record(i)

    def forget(self, addr: int, length: int) -> None:
        for a in range(addr, addr + page_align_up(length), PAGE_SIZE):
            self.cur.last_pfn.pop(a, None)

    # -- fork -------------------------------------------------------------------------
    def fork(self, op: Fork) -> None:
        parent = self.cur
        child = self._adopt(_Process(parent.mm.fork(), copy.deepcopy(parent.mem),
                                     last_pfn=dict(parent.last_pfn)))
        for vma in child.mm:
            if vma.vm_flags & VM_WIPEONFORK:  # MAP_DROPPABLE: the child starts empty
                for addr in range(vma.vm_start, vma.vm_end, PAGE_SIZE):
                    child.mem.pop(addr, None)
        if self.kernel is not None:
            child.pid = self.kernel.fork(parent.pid)
        leaving = parent if op.follow == "child" else child
        self.cur = child if op.follow == "child" else parent
        if op.follow == "child":
            self.gen += 1
        if op.other != "exit":
            return
        if leaving is parent:  # the oracle's parent unmaps the window and waits
            leaving.mm.munmap(self.base, self.end - self.base)
            if self.kernel is not None:
                self.kernel.munmap(leaving.pid, self.base, self.end - self.base)
        else:
            leaving.mm.exit_mmap()
            if self.kernel is not None:
                self.kernel.exit(leaving.pid)

    # -- accesses -----------------------------------------------------------------------
    def access(self, i: int, op: Read | Write) -> StepRecord:
        addr = self.base + op.page * PAGE_SIZE + op.offset
        write = isinstance(op, Write)
        if self.kernel is not None:
            return self.kernel_access(i, op, addr, write)
        mm = self.cur.mm
        if not mm.access_permitted(addr, write):
            return self.record(i, signal=signal.SIGSEGV)
        data = self.page_data(addr, create=write)
        if write:
            mm.anon_vma_prepare(addr)
            data[op.offset] = op.value & 0xFF
            return self.record(i)
        return self.record(i, result=data[op.offset] if data is not None else 0)

    def page_data(self, addr: int, create: bool) -> bytearray | None:
        vma = self.cur.mm.vma_lookup(addr)
        assert vma is not None
        page = addr & ~(PAGE_SIZE - 1)
        if vma.vm_file is not None:
            key = (vma.vm_file.id, vma.vm_pgoff + ((page - vma.vm_start) // PAGE_SIZE))
            store: dict = self.shm
        else:
            key, store = page, self.cur.mem
        if create and key not in store:
            store[key] = bytearray(PAGE_SIZE)
        return store.get(key)

    def kernel_access(self, i: int, op: Read | Write, addr: int, write: bool) -> StepRecord:
        """The access as the Kernel model makes it, with frame facts from frame()."""
        k, pid = self.kernel, self.cur.pid
        try:
            if write:
                k.write(pid, addr, op.value)
                value = None
            else:
                value = k.read(pid, addr)
        except Exception as e:  # the contract's Segfault, whatever module defines it
            if type(e).__name__ != "Segfault":
                raise
            return self.record(i, signal=signal.SIGSEGV)
        if write and self.cur.mm.access_permitted(addr, True):
            self.cur.mm.anon_vma_prepare(addr)
        page = addr & ~(PAGE_SIZE - 1)
        pfn = k.frame(pid, page)
        last = self.cur.last_pfn.get(page)
        changed = None if pfn is None or last is None else pfn != last
        self.cur.last_pfn[page] = pfn
        return self.record(i, result=value,
                           page=PageFacts(present=pfn is not None, frame_changed=changed))

    # -- maps ---------------------------------------------------------------------------
    def record(self, i: int, **kw) -> StepRecord:
        areas = []
        for vma in self.cur.mm:
            if vma.vm_end <= self.base or vma.vm_start >= self.end:
                continue
            flags = frozenset(n for bit, n in _VMFLAG_BITS if vma.vm_flags & bit)
            areas.append(Area((vma.vm_start - self.base) // PAGE_SIZE,
                              (vma.vm_end - self.base) // PAGE_SIZE, vma.prot,
                              bool(vma.vm_flags & VM_SHARED),
                              flags if self.s.vmflags else None))
        return StepRecord(index=i, maps=tuple(areas), gen=self.gen, **kw)



class ContractError(RuntimeError):
    """A contract AddressSpace raised something other than OSError, or broke a rule
    of the contract's shape (vmas() not a sorted list of 4-tuples)."""


def run_contract(ops: list[Op], setup: ModelSetup, impl: object) -> list[StepRecord]:
    """The records of a contract `AddressSpace` (only mmap, munmap, mprotect, vmas).

    It gets the same guards as the model; reads, writes and forks are refused
    (ValueError): the contract's AddressSpace has no memory and no processes.
    """
    base, end = setup.base, setup.base + setup.window_pages * PAGE_SIZE
    guard = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED
    for addr in (base - PAGE_SIZE, end):
        impl.mmap(addr, PAGE_SIZE, PROT_NONE, guard)
    records = []
    for i, op in enumerate(ops):
        if not isinstance(op, (Mmap, Munmap, Mprotect)):
            raise ValueError(f"step {i}: {op} is not a contract AddressSpace operation")
        addr = op.absolute if op.absolute is not None else (
            0 if op.page is None else base + op.page * PAGE_SIZE + op.delta)
        kw: dict = {}
        try:
            if isinstance(op, Mmap):
                got = impl.mmap(addr, op.length, op.prot, op.flags)
                if base <= got and got + page_align_up(op.length) <= end:
                    kw["result"] = got - base
                else:
                    impl.munmap(got, op.length)
                    kw["outside"] = True
            elif isinstance(op, Munmap):
                impl.munmap(addr, op.length)
            else:
                impl.mprotect(addr, op.length, op.prot)
        except OSError as e:
            kw = {"errno": e.errno}
        except Exception as e:
            raise ContractError(f"step {i}: {op} raised {type(e).__name__}: {e}") from e
        records.append(StepRecord(index=i, maps=_contract_areas(impl, base, end), **kw))
    return records


def _contract_areas(impl: object, base: int, end: int) -> tuple[Area, ...]:
    areas = []
    for start, stop, prot, flags in impl.vmas():
        if stop <= base or start >= end:
            continue
        areas.append(Area((start - base) // PAGE_SIZE, -(-(stop - base) // PAGE_SIZE),
                          prot, bool(flags & MAP_SHARED)))
    return tuple(areas)
