"""Processes with demand paging and copy-on-write fork (model/fault.py,
checker/subsystems/fault.py). Steps work on a few processes in a window of 16 pages."""

from __future__ import annotations

from mmcheck.checker.subsystems.declared.vma import (
    PAGES,
    PRIV,
    PROTS,
    SHARED,
    WINDOW,
    P,
    window,
)
from mmcheck.checker.subsystems.registry import Domain, Op, Subsystem, register
from mmcheck.model.linux import (
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    PROT_READ,
    PROT_WRITE,
)

# The same window of pages as the vma subsystem's, fewer pages per call.
COUNTS = (1, 2, 3)
RW = PROT_READ | PROT_WRITE
OFFSETS = (0, 1, 100, P - 1)
VALUES = (7, 9, 1, 255, 0)
MAX_PROCS = 4
DEAD_PID = 99
__all__ = ["COUNTS", "DEAD_PID", "DECLARATION", "MAX_PROCS", "OFFSETS", "PAGES", "PRIV", "PROTS",
           "RW", "SHARED", "VALUES", "WINDOW", "P", "window"]


PID = Domain((), (DEAD_PID,), returned_by="spawn", doc="a live pid (spawn's or fork's); a dead one")
ADDR = Domain(tuple(window(p) for p in PAGES), (window(0) + 8,), doc="the window; unaligned")
LENGTH = Domain(tuple(n * P for n in COUNTS), (0,), doc="1 to 3 pages; 0")
PROT = Domain((RW, *PROTS), (0x10,), doc="read-write first, every combination; unknown bits")
FLAGS = Domain((PRIV | MAP_FIXED, SHARED | MAP_FIXED, PRIV | MAP_FIXED_NOREPLACE, PRIV, SHARED),
               (MAP_PRIVATE | MAP_FIXED,), doc="anonymous, fixed or not; not anonymous")
VA = Domain(tuple(window(p, o) for p in PAGES for o in OFFSETS), (1 << 47, (1 << 64) - P, 0),
            doc="any byte of the window; non-canonical, unmapped")
VALUE = Domain(VALUES, (256,), doc="a byte; one that is not")

DECLARATION = register(Subsystem(
    name="fault",
    rank=50,
    contract_class="Kernel",
    model="mmcheck.model.fault",
    driver="mmcheck.checker.subsystems.fault",
    operations=(
        Op("spawn"),
        Op("fork", (("pid", PID),)),
        Op("exit", (("pid", PID),)),
        Op("mmap", (("pid", PID), ("addr", ADDR), ("length", LENGTH), ("prot", PROT),
                    ("flags", FLAGS))),
        Op("munmap", (("pid", PID), ("addr", ADDR), ("length", LENGTH))),
        Op("mprotect", (("pid", PID), ("addr", ADDR), ("length", LENGTH), ("prot", PROT))),
        Op("read", (("pid", PID), ("va", VA))),
        Op("write", (("pid", PID), ("va", VA), ("value", VALUE))),
    ),
    correct="examples/fault/correct/cow_kernel.py",
    buggy="examples/fault/buggy/cow_never_copies.py",
    clauses="KERNEL",
    addresses=True,
    kinds=(("flags", "mapflags"),),
    results=(("spawn", "pid"), ("fork", "pid"), ("mmap", "addr")),
    fixed_setup=("npages",),
    symbolic=True,
    doc="Processes with demand paging and copy-on-write fork",
))
