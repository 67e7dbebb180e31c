"""vm.max_map_count at its edge: one scenario, run on the live kernel and on the model.

The scenario fills an address-space window with isolated one-page areas until
map_count sits exactly where a rule is decided (max_map_count - 1, max, max + 1)
and records what each operation then does: its errno, how map_count moved, and
the areas of a small test region. It is written once against a tiny system-call
interface (`Sys`), so the live run (in a forked child, where map_count is
counted from /proc/self/maps) and the model run (with a small max_map_count, the
rules being relative to it) execute the very same steps.

The live child reads /proc/self/maps into a buffer allocated once, before it
counts: a fresh multi-megabyte string would itself be an mmap, and so a VMA,
while it is counted.
"""

from __future__ import annotations

import errno as errno_mod
import json
import os
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from mmcheck.checker.live import libc
from mmcheck.model.linux import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    PAGE_SIZE,
    PROT_NONE,
    PROT_READ,
)
from mmcheck.model.vma import AddressSpace

P = PAGE_SIZE
FIXED = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED
NOREPLACE = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE
TEST_PAGES = 20  # the test region; fillers start above it


@dataclass
class Sys:
    """What the scenario may call: the three system calls and two counters."""

    mmap: Callable[[int, int, int, int], int]
    munmap: Callable[[int, int], None]
    mprotect: Callable[[int, int, int], None]
    map_count: Callable[[], int]
    areas: Callable[[], list[tuple[int, int, int]]]  # (start page, end page, prot) in region
    max_map_count: int
    base: int


def _attempt(call: Callable[[], object]) -> str:
    try:
        call()
    except OSError as e:
        return errno_mod.errorcode[e.errno]
    return "ok"


def scenario(sys: Sys) -> dict[str, list]:
    """Run the map_count edge cases; {case: [outcome, map_count delta, areas]}.

    Test region: A = pages [0, 8) and B = [10, 14), PROT_NONE, private.
    Fillers: one-page areas at pages 20, 22, 24, ... (never adjacent, never merged).
    """
    base, top = sys.base, sys.max_map_count
    sys.mmap(base, 8 * P, PROT_NONE, FIXED)
    sys.mmap(base + 10 * P, 4 * P, PROT_NONE, FIXED)
    # Preallocated: a growing list would itself map memory (new areas) while we count.
    fillers = [0] * (top + 64)
    nfill = 0

    def add_filler() -> None:
        nonlocal nfill
        page = TEST_PAGES + 2 * nfill
        # NOREPLACE: a filler never lands on anything (EEXIST instead)
        sys.mmap(base + page * P, P, PROT_NONE, NOREPLACE)
        fillers[nfill] = page
        nfill += 1

    def fill_to(target: int) -> None:
        nonlocal nfill
        count = sys.map_count()
        for _ in range(target - count - 32):  # in bulk, short of the target ...
            add_filler()
        while (count := sys.map_count()) != target:  # ... then one by one, recounting
            if count < target:
                add_filler()
            else:
                nfill -= 1
                sys.munmap(base + fillers[nfill] * P, P)

    out: dict[str, list] = {}

    def case(name: str, at: int, call: Callable[[], object]) -> None:
        fill_to(at)
        before = sys.map_count()
        outcome = _attempt(call)
        out[name] = [outcome, sys.map_count() - before, sys.areas()]

    # mprotect inside A needs two splits: the first passes, the second is refused.
    case("mprotect_two_splits_at_max-1", top - 1,
         lambda: sys.mprotect(base + 2 * P, 2 * P, PROT_READ))
    # At the limit a split is refused outright...
    case("mprotect_one_split_at_max", top,
         lambda: sys.mprotect(base + 2 * P, 2 * P, PROT_READ))
    # ... but a change that needs no split, or merges, goes through.
    case("mprotect_whole_area_at_max", top,
         lambda: sys.mprotect(base + 2 * P, 6 * P, PROT_READ))
    case("mprotect_merging_at_max", top,
         lambda: sys.mprotect(base + 2 * P, 6 * P, PROT_NONE))
    # munmap: the middle of an area needs a net new area; an edge does not.
    case("munmap_middle_at_max", top, lambda: sys.munmap(base + 11 * P, P))
    case("munmap_edge_at_max", top, lambda: sys.munmap(base + 10 * P, P))
    # do_mmap refuses only when map_count is already above the limit.
    case("mmap_at_max", top, lambda: sys.mmap(base + 16 * P, P, PROT_READ, FIXED))
    case("mmap_above_max", top + 1, lambda: sys.mmap(base + 18 * P, P, PROT_READ, FIXED))
    case("mmap_replacing_above_max", top + 1,
         lambda: sys.mmap(base + 16 * P, P, PROT_NONE, FIXED))
    case("munmap_whole_area_above_max", top + 1, lambda: sys.munmap(base + 16 * P, P))
    return out


def model_scenario(max_map_count: int = 64) -> dict[str, list]:
    """The scenario on the reference AddressSpace."""
    mm = AddressSpace(max_map_count=max_map_count)
    base = 0x7F0000000000

    def areas() -> list[tuple[int, int, int]]:
        return [[(s - base) // P, (e - base) // P, prot] for s, e, prot, _ in mm.vmas()
                if base <= s < base + TEST_PAGES * P]

    return scenario(Sys(mm.mmap, mm.munmap, mm.mprotect, lambda: mm.map_count, areas,
                        max_map_count, base))


class _LiveCounter:
    """map_count of this process from /proc/self/maps, read into a fixed buffer."""

    def __init__(self) -> None:
        self.buf = bytearray(64 << 20)
        self.base = 0

    def read(self) -> int:
        fd = os.open("/proc/self/maps", os.O_RDONLY)
        try:
            n = 0
            view = memoryview(self.buf)
            while (got := os.readv(fd, [view[n:]])) > 0:
                n += got
        finally:
            os.close(fd)
        self.n = n
        return n

    def map_count(self) -> int:
        n = self.read()
        lines = self.buf.count(b"\n", 0, n)
        return lines - (1 if self.buf.find(b"[vsyscall]", 0, n) >= 0 else 0)

    def areas(self) -> list[tuple[int, int, int]]:
        # Near the limit there is no room for 65k line strings: look up only the
        # lines that start in the test region (maps is sorted by address).
        n = self.read()
        out = []
        for page in range(TEST_PAGES):
            at = self.buf.find(b"\n%x-" % (self.base + page * P), 0, n)
            if at < 0:
                continue
            line = bytes(self.buf[at + 1:self.buf.find(b"\n", at + 1, n)]).decode()
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            out.append([page, (hi - self.base) // P,
                        PROT_READ if line.split()[1][0] == "r" else PROT_NONE])
        return out


def live_scenario(timeout: float = 120.0) -> dict[str, list]:
    """The scenario in a forked child, at this machine's vm.max_map_count."""
    from mmcheck.checker.live.oracle import read_sysctl

    top = read_sysctl("max_map_count", 65530)
    rfd, wfd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            libc.set_pdeathsig(signal.SIGKILL)
            if os.getppid() == parent:
                msg = {"result": _live_child(top)}
            else:
                msg = {"error": "parent gone"}
        except BaseException:
            msg = {"error": traceback.format_exc()}
        os.write(wfd, json.dumps(msg).encode())
        os._exit(0)
    os.close(wfd)
    chunks = []
    try:
        import select

        while True:
            ready, _, _ = select.select([rfd], [], [], timeout)
            if not ready:
                raise TimeoutError("map_count scenario timed out")
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(rfd)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    msg = json.loads(b"".join(chunks))
    if "error" in msg:
        raise RuntimeError(msg["error"])
    return msg["result"]


def _live_child(top: int) -> dict[str, list]:
    from mmcheck.checker.live.oracle import reserve_window

    pages = TEST_PAGES + 2 * (top + 8) + 8
    counter = _LiveCounter()  # its buffer first: bigger than the decoy, it would land
    base = reserve_window(pages)  # in the window's gap otherwise
    counter.base = base

    def confined(addr: int, length: int) -> None:
        if not (base <= addr and addr + length <= base + pages * P):
            raise ValueError(f"{addr:#x}+{length:#x} leaves the window")

    def mmap(addr: int, length: int, prot: int, flags: int) -> int:
        confined(addr, length)
        return libc.mmap(addr, length, prot, flags)

    def munmap(addr: int, length: int) -> None:
        confined(addr, length)
        libc.munmap(addr, length)

    def mprotect(addr: int, length: int, prot: int) -> None:
        confined(addr, length)
        libc.mprotect(addr, length, prot)

    return scenario(Sys(mmap, munmap, mprotect, counter.map_count, counter.areas, top, base))
