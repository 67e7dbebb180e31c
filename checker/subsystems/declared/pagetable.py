"""The x86 page table with its TLB (model/mmu.py, checker/subsystems/pagetable.py)."""

from __future__ import annotations

from collections.abc import Mapping

from mmcheck.checker.subsystems.registry import Domain, Op, Subsystem, register
from mmcheck.model.linux import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_RW,
    _PAGE_USER,
    PAGE_SIZE,
)

P = PAGE_SIZE
PR, RW, US = _PAGE_PRESENT, _PAGE_RW, _PAGE_USER
URW = PR | RW | US
BASE = 0x400000
GiB = 1 << 30

PFNS = (1, 2, 3, 0, 0x12345, (1 << 20) - 1, 1 << 20, (1 << 40) - 1, 1 << 40)
FLAGS = (URW, PR | RW, PR | US, PR, URW | _PAGE_ACCESSED | _PAGE_DIRTY, URW | _PAGE_NX,
         PR | US | _PAGE_NX, 0, URW | _PAGE_GLOBAL, 1 << 12, URW | (1 << 52))
# Frame-number bits of an entry (model/mmu.py MODES): 32-bit entries in 2-level mode.
PFN_BITS = {2: 20, 3: 40, 4: 40, 5: 40}


def addresses(levels: int) -> list[int]:
    """Page addresses worth trying in a mode, the simplest first (the last ones are
    outside what the mode translates: non-canonical, or above 4 GiB)."""
    common = [BASE, BASE + P, BASE + 7 * P, BASE + (2 << 20), BASE + GiB, 0x08048000, 0,
              BASE + 1]
    if levels <= 3:
        return common + [0xFFFFF000, 3 * GiB, 1 << 32]
    if levels == 4:
        return common + [1 << 39, 0xFFFF800000000000, 0xFFFFFFFFFFFFF000, 1 << 47,
                         0x0000800000001000, 1 << 48]
    return common + [1 << 48, 0xFF00000000000000, 0xFFFF800000000000, 0xFFFFFFFFFFFFF000,
                     1 << 56, 1 << 47]


# Linear-address bits of each mode (model/mmu.py MODES); 4- and 5-level are canonical.
VA_BITS = {2: 32, 3: 32, 4: 48, 5: 57}


def _translatable(levels: int, va: int) -> bool:
    bits = VA_BITS[levels]
    if levels <= 3:
        return 0 <= va < 1 << bits
    return 0 <= va < 1 << (bits - 1) or (1 << 64) - (1 << (bits - 1)) <= va < 1 << 64


def _vas(setup: Mapping[str, int]) -> list[int]:
    return [va for va in addresses(setup["levels"])
            if va % P == 0 and _translatable(setup["levels"], va)]


def _bad_vas(setup: Mapping[str, int]) -> list[int]:
    return [va for va in addresses(setup["levels"])
            if va % P or not _translatable(setup["levels"], va)]


def _pfns(setup: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(p for p in PFNS if p < 1 << PFN_BITS[setup["levels"]])


def _bad_pfns(setup: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(p for p in PFNS if p >= 1 << PFN_BITS[setup["levels"]])


VA = Domain(_vas, _bad_vas, doc="neighbours, 2 MiB / 1 GiB apart, the upper half; "
                                 "unaligned, non-canonical, above 4 GiB")
BIT = Domain((0, 1))

DECLARATION = register(Subsystem(
    name="pagetable",
    rank=40,
    contract_class="PageTable",
    model="mmcheck.model.mmu",
    driver="mmcheck.checker.subsystems.pagetable",
    operations=(
        Op("map", (("va", VA), ("pfn", Domain(_pfns, _bad_pfns, doc="fits the entry; does not")),
                   ("flags", Domain(FLAGS[:9], FLAGS[9:], doc="P/RW/U/A/D/NX/G; unknown bits")))),
        Op("unmap", (("va", Domain(_vas, _bad_vas, doc="mapped or not")),)),
        Op("translate", (("va", VA), ("write", BIT), ("user", BIT), ("exec", BIT))),
    ),
    correct="examples/pagetable/correct/radix_tables.py",
    buggy="examples/pagetable/buggy/no_tlb_flush.py",
    clauses="PT",
    addresses=True,
    kinds=(("flags", "pteflags"), ("pfn", "address")),
    fixed_setup=("levels",),
    symbolic=True,
    doc="x86 paging in 2-, 3-, 4- and 5-level mode, with a TLB",
))
