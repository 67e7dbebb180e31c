"""The live-kernel oracle: run address-space operations for real and record what happens.

`run_live(ops, window_pages)` forks a child that reserves a window of address
space for itself, runs the operations inside it with the real mmap, munmap and
mprotect, and after each step records the result or errno and the areas that
/proc/self/maps shows inside the window; after a read or a write it also
records what /proc/self/pagemap says of the page (present, exclusively mapped,
shmem, the pfn) and how many minor faults the access took (getrusage).

The window. The child maps `1 + window_pages + 1 + DECOY_PAGES` pages PROT_NONE,
turns the first and the (window_pages+2)-th page into one-page MAP_SHARED
guards, and unmaps the window and the decoy above it:

    [guard][ window: window_pages, unmapped ][guard][ decoy: unmapped ]

The guards are shmem mappings, which never merge with anything, so an area at
the window's edge never merges with memory outside it. The decoy is a free gap
higher than any gap in the window: mmap's top-down search (a hint that is not
free, or no hint) takes the highest gap that fits, so it never lands in the
window while the decoy has room, and Python's own allocations (which have no
hint either) land there too. A successful mmap outside the window is unmapped
again at once and recorded as `outside`.

Confinement. Before each step the child checks that the operation either stays
inside the window or must fail before it touches anything (an unaligned address,
a zero length, a range past TASK_SIZE, a MAP_FIXED below mmap_min_addr); if not
it stops with an error, so a bad operation list can never unmap the
interpreter's memory. The child drops CAP_SYS_RAWIO, so that a MAP_FIXED below
mmap_min_addr fails with EPERM as it does for any unprivileged process (run as
root it would map page 1); with `drop_all_caps` it drops every capability, and
pfns become invisible as for any unprivileged process.

Accesses. A CPU access the VMA's protection denies would kill the child with
SIGSEGV. The child decides from the areas it last recorded, with x86's rules
(`access_error`: a write needs VM_WRITE, a read any of VM_READ, VM_WRITE,
VM_EXEC, except an execute-only area when memory protection keys are in use:
see `exec_only_read_faults`). An access the rules allow is made by the CPU
(ctypes load or store), so it faults as a real program's would. An access the
rules deny is confirmed instead with process_vm_readv/writev on the child's own
memory, which checks the VMA's flags before faulting anything in and so answers
EFAULT without side effects; the step then records SIGSEGV. If the rules were
wrong and the CPU access faults after all, the child dies and the run says so.

The child dies with its parent (PR_SET_PDEATHSIG), and `run_live` kills it when
`timeout` passes.
"""

from __future__ import annotations

import errno
import faulthandler
import functools
import json
import os
import platform
import select
import signal
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field

from mmcheck.checker.live import libc
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
from mmcheck.model.linux import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
    TASK_SIZE_X86_64,
    page_align_up,
)

DECOY_PAGES = 16384  # 64 MiB of free address space above the window
CAP_SYS_RAWIO = 17
PM_PRESENT = 1 << 63
PM_FILE = 1 << 61
PM_MMAP_EXCLUSIVE = 1 << 56
PM_PFN_MASK = (1 << 55) - 1
VMFLAGS_KEPT = frozenset({"ac", "nr", "wf"})
ULONG = (1 << 64) - 1


class LiveError(RuntimeError):
    """The live run could not complete: the child died, timed out, or refused an op.

    The message says which step and why; `records` holds the steps completed.
    """

    def __init__(self, message: str, records: list[StepRecord]) -> None:
        super().__init__(message)
        self.records = records


@dataclass
class LiveRun:
    """The records of one live run plus what the child learnt about the machine.

    Iterating, indexing and len() go to `records`.
    """

    records: list[StepRecord]
    base: int
    window_pages: int
    pfn_visible: bool
    zero_pfn: int | None
    mmap_min_addr: int
    max_map_count: int
    exec_only_read_faults: bool
    extra: dict = field(default_factory=dict)

    def __iter__(self):
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]


def read_sysctl(name: str, default: int) -> int:
    """An integer from /proc/sys/vm/<name>, or `default` where it cannot be read."""
    try:
        with open(f"/proc/sys/vm/{name}") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def live_available() -> tuple[bool, str]:
    """Whether this machine can run the oracle, and why not if it cannot."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False, f"needs Linux on x86-64, not {sys.platform}/{platform.machine()}"
    for path in ("/proc/self/smaps", "/proc/self/pagemap"):
        if not os.access(path, os.R_OK):
            return False, f"cannot read {path}"
    return True, ""


@functools.cache
def exec_only_read_faults() -> bool:
    """Whether a CPU read of a PROT_EXEC-only page raises SIGSEGV on this machine.

    x86 page tables cannot express execute-only, so without protection keys the
    read succeeds; with them (CPU flag ospke) mmap(PROT_EXEC) gets the
    execute-only pkey and the read faults. Measured once, in a throwaway child.
    """
    pid = os.fork()
    if pid == 0:
        try:
            faulthandler.disable()  # the SIGSEGV is expected: no traceback on stderr
            libc.set_pdeathsig(signal.SIGKILL)
            addr = libc.mmap(0, PAGE_SIZE, PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS)
            libc.read_byte(addr)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSEGV


def run_live(ops: list[Op], window_pages: int = 256, *, vmflags: bool = True,
             timeout: float = 60.0, drop_all_caps: bool = False) -> LiveRun:
    """Run `ops` in a forked child inside a window of `window_pages` pages.

    Returns one `StepRecord` per op (maps inside the window after the step; page
    facts after reads and writes). `vmflags` also records smaps' VmFlags of each
    area (slower: smaps walks the page tables). Raises `LiveError` if the child
    refuses an op that could leave the window, dies, or runs past `timeout`.
    """
    exec_only = exec_only_read_faults()
    rfd, wfd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child never returns
        os.close(rfd)
        status = 1
        try:
            libc.set_pdeathsig(signal.SIGKILL)
            if os.getppid() == parent:
                _Child(ops, window_pages, wfd, vmflags, drop_all_caps, exec_only).main()
                status = 0
        except BaseException:
            _emit(wfd, {"error": traceback.format_exc()})
        finally:
            os._exit(status)
    os.close(wfd)
    try:
        return _collect(rfd, pid, ops, window_pages, timeout, exec_only)
    finally:
        os.close(rfd)
        _reap(pid)


def _reap(pid: int) -> None:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _collect(rfd: int, pid: int, ops: list[Op], window_pages: int, timeout: float,
             exec_only: bool) -> LiveRun:
    deadline = time.monotonic() + timeout
    header: dict = {}
    records: list[StepRecord] = []
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            raise LiveError(f"live run timed out after {timeout}s at step {len(records)}",
                            records)
        ready, _, _ = select.select([rfd], [], [], left)
        if not ready:
            continue
        chunk = os.read(rfd, 1 << 16)
        if not chunk:
            raise LiveError(f"live child ended without finishing (after step "
                            f"{len(records) - 1})", records)
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            msg = json.loads(line)
            if "error" in msg:
                raise LiveError(f"live child failed at step {len(records)}:\n{msg['error']}",
                                records)
            if "died" in msg:
                sig = signal.Signals(msg["died"]).name
                raise LiveError(f"live child (fork generation {msg['gen']}) was killed by "
                                f"{sig} at step {len(records)}: {ops[len(records)]}", records)
            if "header" in msg:
                header = msg["header"]
            elif "done" in msg:
                return LiveRun(records, header["base"], window_pages, header["pfn_visible"],
                               header["zero_pfn"], header["mmap_min_addr"],
                               header["max_map_count"], exec_only)
            else:
                records.append(StepRecord.from_json(msg))


def _emit(fd: int, msg: dict) -> None:
    data = (json.dumps(msg) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def reserve_window(npages: int, decoy_pages: int = DECOY_PAGES) -> int:
    """Lay out [guard][window][guard][decoy] (see the module doc); the window's start."""
    total = (npages + 2 + decoy_pages) * PAGE_SIZE
    low = libc.mmap(0, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | 0x4000)
    guard = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED
    libc.mmap(low, PAGE_SIZE, PROT_NONE, guard)
    libc.mmap(low + (npages + 1) * PAGE_SIZE, PAGE_SIZE, PROT_NONE, guard)
    libc.munmap(low + PAGE_SIZE, npages * PAGE_SIZE)
    libc.munmap(low + (npages + 2) * PAGE_SIZE, decoy_pages * PAGE_SIZE)
    return low + PAGE_SIZE


def drop_capabilities(keep_admin: bool) -> None:
    """Give up CAP_SYS_RAWIO (all capabilities unless `keep_admin`) in this process.

    Kept, CAP_SYS_ADMIN lets pagemap show pfns; CAP_SYS_RAWIO is what would let a
    MAP_FIXED below mmap_min_addr succeed.
    """
    if not keep_admin:
        libc.drop_capabilities()
        return
    with open("/proc/self/status") as f:
        eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    if eff & (1 << CAP_SYS_RAWIO):
        libc.set_capabilities(eff & ~(1 << CAP_SYS_RAWIO))


def has_cap_sys_rawio() -> bool:
    with open("/proc/self/status") as f:
        eff = next(int(line.split()[1], 16) for line in f if line.startswith("CapEff:"))
    return bool(eff & (1 << CAP_SYS_RAWIO))


class _Child:
    """The forked process that runs the operations (and its forked descendants)."""

    def __init__(self, ops: list[Op], window_pages: int, out: int, vmflags: bool,
                 drop_all_caps: bool, exec_only: bool) -> None:
        self.ops = ops
        self.npages = window_pages
        self.out = out
        self.vmflags = vmflags
        self.exec_only = exec_only
        self.drop_all_caps = drop_all_caps
        self.gen = 0
        self.maps: tuple[Area, ...] = ()
        self.last_pfn: dict[int, int | None] = {}  # page -> frame this process last saw
        self.r1 = libc.Rusage()
        self.r2 = libc.Rusage()
        self.mmap_min_addr = read_sysctl("mmap_min_addr", 4096)
        self.task_size = TASK_SIZE_X86_64

    # -- setup ------------------------------------------------------------------------
    def main(self) -> None:
        # pagemap shows pfns to openers with CAP_SYS_ADMIN: open it before dropping
        # capabilities, unless all are to go (then pfns are hidden, as unprivileged).
        if self.drop_all_caps:
            drop_capabilities(keep_admin=False)
        self.pagemap = os.open("/proc/self/pagemap", os.O_RDONLY)
        drop_capabilities(keep_admin=not self.drop_all_caps)
        self.rawio = has_cap_sys_rawio()
        self.reserve_window()
        self.setup_scratch()
        _emit(self.out, {"header": {
            "base": self.base, "pfn_visible": self.pfn_visible, "zero_pfn": self.zero_pfn,
            "mmap_min_addr": self.mmap_min_addr,
            "max_map_count": read_sysctl("max_map_count", 65530)}})
        for i, op in enumerate(self.ops):
            why = self.unconfined(op)
            if why:
                raise ValueError(f"step {i}: {op} refused: {why}")
            rec = self.step(i, op)
            _emit(self.out, rec.to_json())
        _emit(self.out, {"done": True})

    def reserve_window(self) -> None:
        self.base = reserve_window(self.npages)
        self.end = self.base + self.npages * PAGE_SIZE

    def setup_scratch(self) -> None:
        # Page 0: written, used to warm up the code path of a measured store.
        # Page 1: read only, so it maps the zero page, whose pfn we learn here.
        self.scratch = libc.mmap(0, 2 * PAGE_SIZE, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS)
        libc.write_byte(self.scratch, 1)
        libc.read_byte(self.scratch + PAGE_SIZE)
        written = self.pagemap_entry(self.scratch)
        self.pfn_visible = bool(written & PM_PFN_MASK)
        zero = self.pagemap_entry(self.scratch + PAGE_SIZE) & PM_PFN_MASK
        self.zero_pfn = zero if self.pfn_visible else None

    # -- confinement ------------------------------------------------------------------
    def in_window(self, addr: int, length: int) -> bool:
        return self.base <= addr and addr + page_align_up(length) <= self.end

    def address(self, op: Mmap | Munmap | Mprotect) -> int:
        if op.absolute is not None:
            return op.absolute
        if op.page is None:
            return 0
        return self.base + op.page * PAGE_SIZE + op.delta

    def unconfined(self, op: Op) -> str | None:
        """Why `op` might touch memory outside the window, or None if it cannot."""
        if isinstance(op, Fork):
            return None if op.follow in ("child", "parent") and op.other in ("wait", "exit") \
                else "fork: follow must be child/parent, other wait/exit"
        if isinstance(op, (Read, Write)):
            ok = 0 <= op.page < self.npages and 0 <= op.offset < PAGE_SIZE
            return None if ok else "access outside the window"
        addr, length = self.address(op), op.length
        if not 0 <= addr <= ULONG or not 0 <= length <= ULONG:
            return "address or length does not fit an unsigned long"
        if self.in_window(addr, length) and length > 0:
            return None
        fails = addr % PAGE_SIZE != 0 or length == 0
        if isinstance(op, Mmap):
            if not op.flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
                return None  # a hint: anything placed outside the window is unmapped again
            fails = fails or not op.flags & MAP_ANONYMOUS or length > self.task_size \
                or addr > self.task_size - page_align_up(length)
            below = addr + page_align_up(length) <= self.mmap_min_addr and not self.rawio
            return None if fails or below else "MAP_FIXED range leaves the window"
        if isinstance(op, Munmap):
            fails = fails or addr > self.task_size or length > self.task_size - addr
            return None if fails else "munmap range leaves the window"
        end = (addr + page_align_up(length)) & ULONG
        grows = op.prot & 0x03000000
        fails = fails or end <= addr or grows == 0x03000000 \
            or op.prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | 0x8 | 0x03000000)
        nothing_there = end <= self.mmap_min_addr or addr >= self.task_size
        return None if fails or nothing_there else "mprotect range leaves the window"

    # -- steps ------------------------------------------------------------------------
    def step(self, i: int, op: Op) -> StepRecord:
        if isinstance(op, Fork):
            self.fork(op)
            return self.record(i)
        if isinstance(op, (Read, Write)):
            return self.access(i, op)
        addr = self.address(op)
        try:
            if isinstance(op, Mmap):
                got = libc.mmap(addr, op.length, op.prot, op.flags)
            elif isinstance(op, Munmap):
                libc.munmap(addr, op.length)
                got = None
            else:
                libc.mprotect(addr, op.length, op.prot)
                got = None
        except OSError as e:
            return self.record(i, errno=e.errno)
        if isinstance(op, Mmap):
            return self.placed(i, got, op.length)
        if isinstance(op, Munmap):
            self.forget(addr, op.length)
        return self.record(i)

    def placed(self, i: int, got: int, length: int) -> StepRecord:
        if self.in_window(got, length):
            self.forget(got, length)
            return self.record(i, result=got - self.base)
        if self.base - PAGE_SIZE < got + page_align_up(length) and got < self.end + PAGE_SIZE:
            raise RuntimeError(f"mmap returned {got:#x}, overlapping the window's edge")
        libc.munmap(got, length)
        return self.record(i, outside=True)

    def forget(self, addr: int, length: int) -> None:
        """Frames seen in [addr, addr+length) are gone: the next one is no 'change'."""
        first = (addr - self.base) // PAGE_SIZE
        for page in range(first, first + page_align_up(length) // PAGE_SIZE):
            self.last_pfn.pop(page, None)

    def fork(self, op: Fork) -> None:
        me = os.getpid()
        pid = os.fork()
        if pid == 0:
            libc.set_pdeathsig(signal.SIGKILL)
            if os.getppid() != me:
                os._exit(1)
            self.gen += 1
            # /proc/self/pagemap opened before the fork is the parent's pagemap.
            self.pagemap = os.open("/proc/self/pagemap", os.O_RDONLY)
            if op.follow == "child":
                return
            if op.other == "exit":
                os._exit(0)
            while True:  # idle until the parent (and with it the run) ends
                signal.pause()
        if op.follow == "parent":
            if op.other == "exit":
                os.waitpid(pid, 0)
            return
        if op.other == "exit":
            libc.munmap(self.base, self.npages * PAGE_SIZE)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            _emit(self.out, {"died": os.WTERMSIG(status), "gen": self.gen + 1})
        os._exit(0)

    def access(self, i: int, op: Read | Write) -> StepRecord:
        addr = self.base + op.page * PAGE_SIZE + op.offset
        write = isinstance(op, Write)
        if not self.allowed(op.page, write):
            err = libc.vm_access(addr, write)
            if err != errno.EFAULT:
                raise RuntimeError(f"{op}: the areas say SIGSEGV but process_vm_"
                                   f"{'writev' if write else 'readv'} answered "
                                   f"{errno.errorcode.get(err, err) if err else 'success'}")
            return self.record(i, access=True, signal=signal.SIGSEGV)
        value, minflt = self.measured(addr, op)
        return self.record(i, access=True, result=value,
                           page=self.page_facts(op.page, minflt))

    def allowed(self, page: int, write: bool) -> bool:
        """x86 access_error() on the areas last recorded."""
        area = next((a for a in self.maps if a.start <= page < a.end), None)
        if area is None:
            return False
        if write:
            return bool(area.prot & PROT_WRITE)
        if area.prot == PROT_EXEC and self.exec_only:
            # Only an area with the execute-only key refuses reads; mmap gives it
            # that key for prot == PROT_EXEC exactly, so ask smaps which it has.
            flags = area.vmflags
            if flags is None:
                with open("/proc/self/smaps") as f:
                    smaps = parse_maps(f.read(), self.base, self.npages, True)
                flags = next(a.vmflags for a in smaps if a.start <= page < a.end)
            return "pk" not in flags
        return bool(area.prot & (PROT_READ | PROT_WRITE | PROT_EXEC))

    def measured(self, addr: int, op: Read | Write) -> tuple[int | None, int]:
        """Do the access between two getrusage calls; (byte read, minor faults)."""
        r1, r2 = self.r1, self.r2
        if isinstance(op, Write):
            value = op.value
            for _ in range(2):  # warm up: the same path on a page that does not fault
                libc.getrusage_into(r1)
                libc.write_byte(self.scratch, value)
                libc.getrusage_into(r2)
            libc.getrusage_into(r1)
            libc.write_byte(addr, value)
            libc.getrusage_into(r2)
            return None, r2.ru_minflt - r1.ru_minflt
        for _ in range(2):
            libc.getrusage_into(r1)
            libc.read_byte(self.scratch)
            libc.getrusage_into(r2)
        libc.getrusage_into(r1)
        got = libc.read_byte(addr)
        libc.getrusage_into(r2)
        return got, r2.ru_minflt - r1.ru_minflt

    def pagemap_entry(self, addr: int) -> int:
        return struct.unpack("<Q", os.pread(self.pagemap, 8, addr // PAGE_SIZE * 8))[0]

    def page_facts(self, page: int, minflt: int) -> PageFacts:
        entry = self.pagemap_entry(self.base + page * PAGE_SIZE)
        present = bool(entry & PM_PRESENT)
        pfn = entry & PM_PFN_MASK if present and self.pfn_visible else None
        last = self.last_pfn.get(page)
        changed = None if pfn is None or last is None else pfn != last
        self.last_pfn[page] = pfn
        return PageFacts(present=present, exclusive=bool(entry & PM_MMAP_EXCLUSIVE),
                         shmem=bool(entry & PM_FILE), pfn=pfn,
                         zero_page=None if pfn is None else pfn == self.zero_pfn,
                         frame_changed=changed, minflt=minflt)

    # -- maps -------------------------------------------------------------------------
    def record(self, i: int, access: bool = False, **kw) -> StepRecord:
        self.maps = self.window_maps(access)
        return StepRecord(index=i, maps=self.maps, gen=self.gen, **kw)

    def window_maps(self, access: bool = False) -> tuple[Area, ...]:
        """The window's areas now. After an access, maps first (smaps walks every
        page table and costs ten times more): if it shows the areas unchanged,
        their VmFlags are the ones last read (a fault changes no vm_flags)."""
        if access and self.vmflags:
            with open("/proc/self/maps") as f:
                plain = parse_maps(f.read(), self.base, self.npages, False)
            def key(areas: tuple[Area, ...]) -> list[tuple]:
                return [(a.start, a.end, a.prot, a.shared) for a in areas]
            if key(plain) == key(self.maps):
                return self.maps
        with open("/proc/self/smaps" if self.vmflags else "/proc/self/maps") as f:
            text = f.read()
        return parse_maps(text, self.base, self.npages, self.vmflags)


def parse_maps(text: str, base: int, npages: int, vmflags: bool) -> tuple[Area, ...]:
    """The areas of a maps (or smaps) text that lie in [base, base + npages pages).

    With `vmflags` (an smaps text), each area keeps the VmFlags in VMFLAGS_KEPT,
    plus "pk" when its ProtectionKey line is not 0 (the execute-only key).

    Raises RuntimeError for an area that straddles the window's edge: the guards
    should make that impossible.
    """
    end = base + npages * PAGE_SIZE
    areas: list[Area] = []
    current: list | None = None
    for line in text.splitlines():
        head = line.split(None, 5)
        if len(head) >= 5 and "-" in head[0] and ":" in head[3]:
            lo, hi = (int(x, 16) for x in head[0].split("-"))
            current = None
            if hi <= base or lo >= end:
                continue
            if lo < base or hi > end:
                raise RuntimeError(f"area {head[0]} straddles the window's edge")
            perms = head[1]
            prot = (PROT_READ if perms[0] == "r" else 0) | \
                (PROT_WRITE if perms[1] == "w" else 0) | (PROT_EXEC if perms[2] == "x" else 0)
            current = [(lo - base) // PAGE_SIZE, (hi - base) // PAGE_SIZE, prot,
                       perms[3] == "s", None]
            areas.append(current)
        elif current is not None and head and head[0] == "VmFlags:":
            current[4] = (current[4] or frozenset()) | (frozenset(line.split()[1:])
                                                        & VMFLAGS_KEPT)
        elif current is not None and head and head[0] == "ProtectionKey:" \
                and int(head[1]) != 0:
            current[4] = (current[4] or frozenset()) | {"pk"}
    return tuple(Area(s, e, p, sh, (vf or frozenset()) if vmflags else None)
                 for s, e, p, sh, vf in areas)
