"""One process's address space (model/vma.py, checker/subsystems/vma.py).

Steps work in a window of WINDOW_PAGES pages at WINDOW, where fixed mappings
collide, split and merge; the domains below are the driver's own constants.
"""

from __future__ import annotations

from collections.abc import Mapping

from mmcheck.checker.subsystems.registry import Domain, Op, Subsystem, register
from mmcheck.model.linux import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
)

P = PAGE_SIZE
WINDOW = 0x400000  # above every mmap_min_addr a setup uses, far below TASK_SIZE
WINDOW_PAGES = 16
PRIV = MAP_PRIVATE | MAP_ANONYMOUS
SHARED = MAP_SHARED | MAP_ANONYMOUS
PAGES = tuple(range(WINDOW_PAGES))
COUNTS = (1, 2, 3, 4)
PROTS = tuple(range(8))
TYPES = (PRIV, SHARED)
FIXES = (MAP_FIXED, MAP_FIXED_NOREPLACE)


def window(page: int, offset: int = 0) -> int:
    """The address of a page of the window (and a byte in it)."""
    return WINDOW + page * P + offset


def _bad_addrs(setup: Mapping[str, int]) -> tuple[int, ...]:
    """Unaligned, below mmap_min_addr, the last page below TASK_SIZE (too long past it)."""
    return (WINDOW + 8, setup["mmap_min_addr"] - P, setup["task_size"] - P)


def _bad_lengths(setup: Mapping[str, int]) -> tuple[int, ...]:
    return (0, setup["task_size"] + P)


FIND_AT = tuple(dict.fromkeys(max(0, window(p) + o) for p in (*PAGES, WINDOW_PAGES + 4)
                              for o in (0, 1, P - 1, -1)))
ADDR = Domain(tuple(window(p) for p in PAGES), _bad_addrs, doc="the window's pages")
LENGTH = Domain(tuple(n * P for n in COUNTS), _bad_lengths, doc="1 to 4 pages; 0, too long")
PROT = Domain(PROTS, (0x80 | 3, 0x10), doc="every PROT_* combination; unknown bits")
FLAGS = Domain(tuple(t | f for f in FIXES for t in TYPES) + TYPES,
               (MAP_ANONYMOUS | MAP_FIXED, MAP_ANONYMOUS | 3 | MAP_FIXED, MAP_PRIVATE | MAP_FIXED),
               doc="private/shared anonymous, fixed or not; no type, type 3, not anonymous")

DECLARATION = register(Subsystem(
    name="vma",
    rank=30,
    contract_class="AddressSpace",
    model="mmcheck.model.vma",
    driver="mmcheck.checker.subsystems.vma",
    operations=(
        Op("mmap", (("addr", ADDR), ("length", LENGTH), ("prot", PROT), ("flags", FLAGS))),
        Op("munmap", (("addr", ADDR), ("length", LENGTH))),
        Op("mprotect", (("addr", ADDR), ("length", LENGTH), ("prot", PROT))),
        Op("find_vma", (("addr", Domain(FIND_AT, doc="at, just past and just below the "
                                                     "window's pages, and above it")),)),
    ),
    correct="examples/vma/correct/sorted_list.py",
    buggy="examples/vma/buggy/inclusive_end.py",
    clauses="AS",
    addresses=True,
    kinds=(("flags", "mapflags"),),
    results=(("mmap", "addr"),),
    fixed_setup=("task_size", "mmap_min_addr"),
    symbolic=True,
    # the window's pages: the whole spec is proved at 4 (and 3) within the default
    # budget, 23 of 26 properties at 8 (docs/benchmarks.md); traces at 8 find no_merge
    symbolic_pages=(4, 8),
    doc="One process's anonymous mappings (mm_struct's VMAs)",
))
