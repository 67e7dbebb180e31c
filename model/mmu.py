"""The reference MMU: x86 page tables with 2, 3, 4 and 5 levels, and a TLB.

`PageTable` implements the contract's page table (docs/contract.md) and is
what `Kernel` (model/fault.py) gives each process. Linux's names throughout:

    mode      levels  index bits (top first)  entries  NX   addresses
    2-level   pgd pte         10 10 (+12)      4 B     no   32-bit
    PAE       pgd pmd pte      2  9  9 (+12)   8 B     yes  32-bit
    4-level   pgd pud pmd pte  9  9  9  9      8 B     yes  canonical 48-bit
    LA57      pgd p4d pud pmd pte (9 x 5)      8 B     yes  canonical 57-bit

A folded level (Linux's p4d in 4-level mode, pud and pmd in 2-level mode) has
index 0 (`pmd_index` of a 2-level table is 0, as with PTRS_PER_PMD = 1).

Entries are stored as the raw x86 values, `pfn << 12 | flags` (NX at bit 63),
one `dict` of index -> entry per table page, so the structure can be checked as
seL4 and CONFIG_PAGE_TABLE_CHECK check it (every table page has exactly one
parent entry; a non-leaf entry points to a table of the next level down). The
snapshot numbers table levels from the bottom: 1 is a page table of PTEs,
`levels` is the pgd.

Non-leaf entries are `_PAGE_TABLE` (present, RW, user, accessed, dirty), as
Linux's pmd_populate etc. make them for a user mm, except PAE's four PDPT
entries, which hold only `_PAGE_PRESENT`: every other bit is reserved there
(arch/x86/include/asm/pgalloc.h, pud_populate) and the CPU neither checks
rights in them nor sets their accessed bit. `set_table_flags` changes the flags
of a non-leaf entry, so that effective rights (PT-2) can be exercised.

`translate` behaves as the CPU: the TLB first (model/tlb.py); on a miss a walk
that faults with P=0 at the first not-present entry; effective rights are the
AND of U and of RW over every level and the OR of NX (CR0.WP=1, so a
supervisor write to a read-only page faults too; SMEP/SMAP are not modelled);
on success the accessed bit of every entry used and, for a write, the dirty
bit of the leaf are set, and the TLB is filled. A TLB hit whose cached rights
forbid the access, or a write hitting an entry cached clean, walks again, as
the CPU does (so the model has no spurious faults; it only ever *over*-permits
through a stale entry, which is the bug class worth catching).

Table-page policy: a table page is taken from `pages` when a `map` needs it
and, by default, given back as soon as an `unmap` leaves it empty (the root,
the pgd, is held until `destroy`). That makes `table_pages()` a function of the
set of mapped addresses (one root plus one page per distinct index prefix),
which a spec can state exactly. Linux is lazier: zap_pte_range leaves empty
tables and only free_pgtables, at munmap and exit, frees those lying wholly in
the unmapped gap. `PageTable(..., free_empty_tables=False)` keeps empty tables
as Linux does and `free_pgtables(start, end)` then reclaims them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from mmcheck.model.linux import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_GLOBAL,
    _PAGE_NX,
    _PAGE_PCD,
    _PAGE_PRESENT,
    _PAGE_PWT,
    _PAGE_RW,
    _PAGE_USER,
    PAGE_SHIFT,
    PAGE_SIZE,
    X86_PF_INSTR,
    X86_PF_PROT,
    X86_PF_USER,
    X86_PF_WRITE,
)
from mmcheck.model.tlb import Tlb, TlbEntry
from mmcheck.model.vocabulary import Operation, Record, Snapshot, StateVar, Vocabulary

__all__ = [
    "MODES",
    "PTE_PFN_MASK",
    "VOCABULARY",
    "PageFault",
    "PageTable",
    "PagingMode",
    "Mapped",
    "Pte",
    "Table",
    "TableEntry",
    "TlbEntry",
]

# Software bits Linux uses in x86 PTEs (arch/x86/include/asm/pgtable_types.h).
_PAGE_SPECIAL = 1 << 9  # _PAGE_BIT_SOFTW1: no struct page behind it (the zero page)
_PAGE_PROTNONE = _PAGE_GLOBAL  # a PROT_NONE PTE: present to Linux, not to the CPU

# Bits 12..51 hold the frame (__PHYSICAL_MASK_SHIFT 52), as PTE_PFN_MASK does.
PTE_PFN_MASK = ((1 << 52) - 1) & ~(PAGE_SIZE - 1)
_PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY
# pte_modify keeps these and takes the rest from the new protection (_PAGE_CHG_MASK).
_PAGE_CHG_MASK = PTE_PFN_MASK | _PAGE_PCD | _PAGE_PWT | _PAGE_SPECIAL | _PAGE_ACCESSED | _PAGE_DIRTY
_LOW_FLAGS = PAGE_SIZE - 1


class PageFault(Exception):
    """The CPU raised #PF: the x86 error `code` (P=1 W=2 U=4 I=16) and `address` (CR2).

    P is set when the walk found every entry present and the rights forbade
    the access; clear when some entry on the way was not present, or when the
    mode cannot translate the address at all (docs/contract.md [PT-TRANSLATE-BAD]).
    Code first, as the contract's PageFault(code, va).
    """

    def __init__(self, code: int, address: int) -> None:
        self.address = address
        self.code = code
        bits = [name for bit, name in ((X86_PF_PROT, "PROT"), (X86_PF_WRITE, "WRITE"),
                                       (X86_PF_USER, "USER"), (X86_PF_INSTR, "INSTR"))
                if code & bit]
        super().__init__(f"page fault at {address:#x}, error code {code:#x} "
                         f"({'|'.join(bits) or 'read, not present, supervisor'})")


@dataclass(frozen=True)
class PagingMode:
    """One x86 paging mode: how a linear address splits and what an entry holds."""

    levels: int
    names: tuple[str, ...]  # Linux's name of each level's table, top (pgd) first
    shifts: tuple[int, ...]  # lowest address bit of each level's index, top first
    bits: tuple[int, ...]  # width of each level's index, top first
    entry_size: int  # bytes per entry
    has_nx: bool  # NX at bit 63 (and the I bit in error codes)
    va_bits: int  # linear-address bits translated
    canonical: bool  # bits above va_bits - 1 must copy bit va_bits - 1
    pfn_bits: int  # frame-number bits an entry holds
    top_rights: bool  # False for PAE: the PDPTEs carry no rights and no accessed bit

    @property
    def flag_mask(self) -> int:
        """The flag bits an entry may hold: the low 12, and NX where it exists."""
        return _LOW_FLAGS | (_PAGE_NX if self.has_nx else 0)


MODES: dict[int, PagingMode] = {
    2: PagingMode(2, ("pgd", "pte"), (22, 12), (10, 10), 4, False, 32, False, 20, True),
    3: PagingMode(3, ("pgd", "pmd", "pte"), (30, 21, 12), (2, 9, 9), 8, True, 32, False, 40,
                  False),
    4: PagingMode(4, ("pgd", "pud", "pmd", "pte"), (39, 30, 21, 12), (9, 9, 9, 9), 8, True, 48,
                  True, 40, True),
    5: PagingMode(5, ("pgd", "p4d", "pud", "pmd", "pte"), (48, 39, 30, 21, 12), (9,) * 5, 8,
                  True, 57, True, 40, True),
}


# The PTE algebra of mm/debug_vm_pgtable.c, on raw entry values.
def pfn_pte(pfn: int, flags: int) -> int:
    return (pfn << PAGE_SHIFT) | flags


def pte_pfn(pte: int) -> int:
    return (pte & PTE_PFN_MASK) >> PAGE_SHIFT


def pte_flags(pte: int) -> int:
    return pte & ~PTE_PFN_MASK


def pte_write(pte: int) -> bool:
    return bool(pte & _PAGE_RW)


def pte_mkwrite(pte: int) -> int:
    return pte | _PAGE_RW


def pte_wrprotect(pte: int) -> int:
    return pte & ~_PAGE_RW


def pte_mkdirty(pte: int) -> int:
    return pte | _PAGE_DIRTY


def pte_mkold(pte: int) -> int:
    return pte & ~_PAGE_ACCESSED


def pte_modify(pte: int, newprot: int) -> int:
    """The entry with the protection `newprot`, keeping frame, accessed and dirty."""
    return (pte & _PAGE_CHG_MASK) | (newprot & ~_PAGE_CHG_MASK)


class Pages(Protocol):
    """Where table pages come from (the contract's `pages`, as for KmemCache)."""

    def alloc_pages(self, order: int) -> int | None: ...

    def free_pages(self, pfn: int, order: int) -> None: ...


class _Table:
    """One table page: its level (1 = PTEs) and its present-or-not entries by index.

    An index absent from `entries` is an empty (pte_none) slot.
    """

    __slots__ = ("level", "entries")

    def __init__(self, level: int) -> None:
        self.level = level
        self.entries: dict[int, int] = {}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class PageTable:
    """One address space's x86 page tables, rooted at the pgd page `self.pgd`."""

    def __init__(self, levels: int, pages: Pages, *, tlb_flush_on_unmap: bool = True,
                 free_empty_tables: bool = True) -> None:
        if levels not in MODES:
            raise ValueError(f"PageTable: levels must be 2, 3, 4 or 5, not {levels!r}")
        self.mode = MODES[levels]
        self.levels = levels
        self.pages = pages
        self.tlb = Tlb()
        # Linux unmaps with zap_pte_range and then flush_tlb_range (tlb_finish_mmu);
        # False gives the buggy kernel whose stale translations TLB-1 must catch.
        self.tlb_flush_on_unmap = tlb_flush_on_unmap
        self.free_empty_tables = free_empty_tables
        self._tables: dict[int, _Table] = {}
        self._ever: set[int] = set()  # every va an entry was installed at (mapped_ever)
        self.pgd = self._alloc_table(levels)  # pgd_alloc

    def __repr__(self) -> str:
        return (f"PageTable(levels={self.levels}, pgd={self.pgd}, "
                f"table_pages={self.table_pages()}, tlb={len(self.tlb)})")

    # ---- addresses ------------------------------------------------------------

    def translatable(self, va: object) -> bool:
        """Whether the mode can translate `va` (what _check_va accepts)."""
        try:
            self._check_va("translate", va)
        except ValueError:
            return False
        return True

    def _check_va(self, op: str, va: object) -> int:
        """`va` if the mode can translate it; ValueError otherwise."""
        mode = self.mode
        if not _is_int(va) or not 0 <= va < 1 << 64:
            raise ValueError(f"{op}: {va!r} is not a 64-bit address")
        if not mode.canonical:
            if va >> mode.va_bits:
                raise ValueError(f"{op}: {va:#x} is above the {mode.va_bits}-bit linear "
                                 f"addresses of {self.levels}-level paging")
        elif (va >> (mode.va_bits - 1)) not in (0, (1 << (65 - mode.va_bits)) - 1):
            raise ValueError(f"{op}: {va:#x} is not canonical in {self.levels}-level "
                             f"paging (bits 63..{mode.va_bits - 1} must be equal)")
        return va

    def _index(self, va: int, depth: int) -> int:
        """The index into the table at `depth` (0 = pgd) that `va` selects."""
        return (va >> self.mode.shifts[depth]) & ((1 << self.mode.bits[depth]) - 1)

    def index(self, va: int, name: str) -> int:
        """The `name` ("pgd", "p4d", "pud", "pmd", "pte") index of `va`; 0 if folded."""
        if name not in ("pgd", "p4d", "pud", "pmd", "pte"):
            raise ValueError(f"index: no page-table level is called {name!r}")
        names = self.mode.names
        return self._index(va, names.index(name)) if name in names else 0

    def pgd_index(self, va: int) -> int:
        return self.index(va, "pgd")

    def p4d_index(self, va: int) -> int:
        return self.index(va, "p4d")

    def pud_index(self, va: int) -> int:
        return self.index(va, "pud")

    def pmd_index(self, va: int) -> int:
        return self.index(va, "pmd")

    def pte_index(self, va: int) -> int:
        return self.index(va, "pte")

    def _canonical(self, linear: int) -> int:
        """The address of a `va_bits`-bit linear index: sign-extended where canonical."""
        mode = self.mode
        if mode.canonical and linear >> (mode.va_bits - 1):
            return linear | ((1 << 64) - (1 << mode.va_bits))
        return linear

    def _linear(self, va: int) -> int:
        """Inverse of `_canonical`, for range bounds: any 0 <= va <= 2**64, clamped."""
        mode = self.mode
        top = 1 << mode.va_bits
        if not mode.canonical:
            return min(va, top)
        half = top >> 1
        if va <= half:
            return va
        if va < (1 << 64) - half:  # inside the non-canonical hole
            return half
        return va - ((1 << 64) - top)

    # ---- table pages ----------------------------------------------------------

    def _alloc_table(self, level: int) -> int:
        """A fresh, empty table page of `level` from `pages`; MemoryError if none."""
        pfn = self.pages.alloc_pages(0)
        if pfn is None:
            raise MemoryError(f"PageTable: no page for a level-{level} table")
        if pfn in self._tables or not 0 <= pfn < 1 << self.mode.pfn_bits:
            raise RuntimeError(f"PageTable: pages returned pfn {pfn!r} for a table")
        self._tables[pfn] = _Table(level)
        return pfn

    def _free_table(self, pfn: int) -> None:
        del self._tables[pfn]
        self.pages.free_pages(pfn, 0)

    def _table_entry(self, depth: int, pfn: int) -> int:
        """The entry that links table `pfn` below depth `depth` (pmd_populate & co)."""
        if depth == 0 and not self.mode.top_rights:
            return pfn_pte(pfn, _PAGE_PRESENT)  # PAE PDPTE: all else is reserved
        return pfn_pte(pfn, _PAGE_TABLE)

    def _path(self, va: int) -> list[tuple[_Table, int]]:
        """(table, index) of every level `va`'s walk reaches, pgd first; the walk
        stops at the first empty slot, so the path is complete iff its last slot
        is the leaf (len == levels) and holds an entry."""
        path: list[tuple[_Table, int]] = []
        table = self._tables[self.pgd]
        for depth in range(self.levels):
            index = self._index(va, depth)
            path.append((table, index))
            entry = table.entries.get(index)
            if entry is None or depth == self.levels - 1:
                break
            table = self._tables[pte_pfn(entry)]
        return path

    def _leaf_slot(self, va: int) -> tuple[_Table, int] | None:
        """(the PTE table, index) holding `va`'s leaf entry, if that entry exists."""
        path = self._path(va)
        table, index = path[-1]
        if len(path) == self.levels and index in table.entries:
            return table, index
        return None

    def _walk_alloc(self, va: int) -> _Table:
        """xv6's walk(alloc=1): the PTE table for `va`, creating missing tables.

        MemoryError if `pages` runs out; the tables created so far are given
        back first, so a failed map leaves no trace.
        """
        created: list[tuple[_Table, int, int]] = []
        table = self._tables[self.pgd]
        try:
            for depth in range(self.levels - 1):
                index = self._index(va, depth)
                entry = table.entries.get(index)
                if entry is None:
                    pfn = self._alloc_table(table.level - 1)
                    table.entries[index] = self._table_entry(depth, pfn)
                    created.append((table, index, pfn))
                    table = self._tables[pfn]
                else:
                    table = self._tables[pte_pfn(entry)]
        except MemoryError:
            for parent, index, pfn in reversed(created):
                del parent.entries[index]
                self._free_table(pfn)
            raise
        return table

    def _free_empty_path(self, path: list[tuple[_Table, int]]) -> None:
        """Give back the tables on `path` that are now empty, bottom up (not the pgd)."""
        for depth in range(len(path) - 1, 0, -1):
            table = path[depth][0]
            if table.entries:
                return
            parent, index = path[depth - 1]
            self._free_table(pte_pfn(parent.entries.pop(index)))

    # ---- the contract -------------------------------------------------------

    def map(self, va: int, pfn: int, flags: int) -> None:
        """mappages for one page: install the leaf entry `pfn | flags | _PAGE_PRESENT`.

        The contract's map ORs in _PAGE_PRESENT (docs/contract.md [PT-MAP]); the
        Kernel model installs entries as Linux's set_pte_at does with `install`.
        """
        if _is_int(flags) and flags >= 0:
            flags |= _PAGE_PRESENT
        self.install(va, pfn, flags)

    def install(self, va: int, pfn: int, flags: int) -> None:
        """set_pte_at for a new entry: install the leaf entry `pfn | flags` at `va`.

        `flags` is stored as given (Linux's set_pte_at adds nothing): an entry
        without _PAGE_PRESENT is installed but not present, as a PROT_NONE PTE
        is, and translate faults on it. ValueError if `va` is unaligned, outside
        what the mode translates or already mapped, if `pfn` does not fit an
        entry (20 bits in 2-level mode, 40 otherwise) or `flags` holds bits
        other than the low 12 (and NX where the mode has it); MemoryError when
        `pages` gives no page for a table (nothing is changed then).
        """
        self._check_va("map", va)
        if va % PAGE_SIZE:
            raise ValueError(f"map: {va:#x} is not page-aligned")
        if not _is_int(pfn) or not 0 <= pfn < 1 << self.mode.pfn_bits:
            raise ValueError(f"map: pfn {pfn!r} does not fit a {self.mode.entry_size}-byte "
                             f"entry ({self.mode.pfn_bits} frame bits)")
        if not _is_int(flags) or flags & ~self.mode.flag_mask or flags < 0:
            raise ValueError(f"map: flags {flags!r} hold bits a {self.levels}-level entry "
                             f"does not have (allowed: {self.mode.flag_mask:#x})")
        if self._leaf_slot(va) is not None:
            raise ValueError(f"map: {va:#x} is already mapped")
        table = self._walk_alloc(va)
        table.entries[self._index(va, self.levels - 1)] = pfn_pte(pfn, flags)
        self._ever.add(va)

    def unmap(self, va: int) -> int | None:
        """Clear `va`'s leaf entry; return the pfn it held, or None if there was none.

        Then, as zap_pte_range + tlb_finish_mmu do, flush the page's TLB entry
        (unless `tlb_flush_on_unmap` is off) and give back the tables left
        empty (unless `free_empty_tables` is off). ValueError for an unaligned
        `va`; None for an aligned one the mode cannot translate, since nothing
        can be mapped there (docs/contract.md [PT-UNMAP-BAD]).
        """
        if not _is_int(va) or va % PAGE_SIZE:
            raise ValueError(f"unmap: {va!r} is not a page-aligned address")
        if not self.translatable(va):
            return None
        path = self._path(va)
        table, index = path[-1]
        if len(path) < self.levels or index not in table.entries:
            return None
        entry = table.entries.pop(index)
        if self.tlb_flush_on_unmap:
            self.tlb.flush_page(va)
        if self.free_empty_tables:
            self._free_empty_path(path)
        return pte_pfn(entry)

    def walk(self, va: int) -> tuple[int, int] | None:
        """(pfn, flags) of the leaf entry for the page holding `va`, or None.

        A software walk: no TLB, no accessed/dirty update, present or not.
        """
        self._check_va("walk", va)
        slot = self._leaf_slot(va)
        if slot is None:
            return None
        entry = slot[0].entries[slot[1]]
        return pte_pfn(entry), pte_flags(entry)

    def translate(self, va: int, write: bool, user: bool, exec: bool = False) -> int:
        """The physical byte address of `va` for this access, as the CPU finds it.

        TLB first, then a walk (see the module docstring). PageFault with the
        x86 error code when the access faults. An address the mode cannot
        translate at all faults too, with P clear (docs/contract.md
        [PT-TRANSLATE-BAD]: the CPU raises #GP for a non-canonical address, the
        contract keeps one exception); ValueError only for a `va` that is not
        an integer.
        """
        if not _is_int(va):
            raise ValueError(f"translate: {va!r} is not an address")
        if not self.translatable(va):
            raise PageFault(self._error_code(write, user, exec), va)
        offset = va & (PAGE_SIZE - 1)
        cached = self.tlb.lookup(va)
        if cached is not None:
            pfn, eff = cached
            if self._permits(eff, write, user, exec) and (not write or eff & _PAGE_DIRTY):
                return pfn * PAGE_SIZE + offset
            self.tlb.flush_page(va)  # the CPU re-walks (a #PF would drop it anyway)
        code = self._error_code(write, user, exec)
        path = self._path(va)
        entries = [table.entries.get(index, 0) for table, index in path]
        present = [entry for entry in entries if entry & _PAGE_PRESENT]
        if len(present) < self.levels:  # the walk met an empty or not-present entry
            raise PageFault(code, va)
        eff = self._effective(present)
        if not self._permits(eff, write, user, exec):
            raise PageFault(code | X86_PF_PROT, va)
        self._mark_accessed(path, write)
        leaf = path[-1][0].entries[path[-1][1]]
        eff |= leaf & _PAGE_DIRTY
        self.tlb.fill(va, pte_pfn(leaf), eff)
        return pte_pfn(leaf) * PAGE_SIZE + offset

    def table_pages(self) -> int:
        """Table pages held now, the pgd included."""
        return len(self._tables)

    # ---- the walk's rights --------------------------------------------------

    def _error_code(self, write: bool, user: bool, exec: bool) -> int:
        """W, U and I (I only where NX exists: no SMEP in the model) for an access."""
        return ((X86_PF_WRITE if write else 0) | (X86_PF_USER if user else 0)
                | (X86_PF_INSTR if exec and self.mode.has_nx else 0))

    def _effective(self, entries: list[int]) -> int:
        """P|A, plus RW and U if set at every level that has rights, NX if set at any."""
        if not self.mode.top_rights:
            entries = entries[1:]
        eff = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_RW | _PAGE_USER
        for entry in entries:
            eff &= ~(_PAGE_RW | _PAGE_USER) | entry
            eff |= entry & _PAGE_NX
        return eff

    def _permits(self, eff: int, write: bool, user: bool, exec: bool) -> bool:
        return ((not user or bool(eff & _PAGE_USER)) and (not write or bool(eff & _PAGE_RW))
                and (not exec or not eff & _PAGE_NX))

    def _mark_accessed(self, path: list[tuple[_Table, int]], write: bool) -> None:
        """Set A in every entry the walk used and, for a write, D in the leaf."""
        for depth, (table, index) in enumerate(path):
            if depth == 0 and not self.mode.top_rights:
                continue
            table.entries[index] |= _PAGE_ACCESSED
        if write:
            table, index = path[-1]
            table.entries[index] |= _PAGE_DIRTY

    # ---- TLB maintenance ----------------------------------------------------

    def flush_tlb_page(self, va: int) -> None:
        """INVLPG `va`'s page."""
        self.tlb.flush_page(va)

    def flush_tlb_range(self, start: int, end: int) -> None:
        """Flush every cached page in [start, end)."""
        for entry in self.tlb.entries():
            if start <= entry.va < end:
                self.tlb.flush_page(entry.va)

    def flush_tlb_all(self) -> None:
        """Flush the whole TLB (a CR3 write)."""
        self.tlb.flush_all()

    # ---- beyond the contract: what the Kernel and the checker use -----------

    def set_pte(self, va: int, pfn: int, flags: int) -> None:
        """Replace the existing leaf entry at `va` and flush its TLB entry.

        ptep_clear_flush + set_pte_at, as do_wp_page and change_protection
        use them. ValueError if `va` holds no entry or the value does not fit.
        """
        self._check_va("set_pte", va)
        slot = self._leaf_slot(va & ~(PAGE_SIZE - 1))
        if slot is None:
            raise ValueError(f"set_pte: {va:#x} is not mapped")
        if not _is_int(pfn) or not 0 <= pfn < 1 << self.mode.pfn_bits:
            raise ValueError(f"set_pte: pfn {pfn!r} does not fit an entry")
        if not _is_int(flags) or flags & ~self.mode.flag_mask or flags < 0:
            raise ValueError(f"set_pte: flags {flags!r} hold bits an entry does not have")
        slot[0].entries[slot[1]] = pfn_pte(pfn, flags)
        self.tlb.flush_page(va)

    def set_table_flags(self, va: int, level: int, flags: int) -> None:
        """Set the flags of the non-leaf entry on `va`'s walk held by the level-`level`
        table (2 .. levels; `levels` is the pgd), keeping the pointer.

        ValueError if there is no such entry, if `level` names the PTE table
        (use set_pte) or PAE's PDPT (its entries carry only _PAGE_PRESENT), or
        if `flags` does not fit. Changing a walk's rights flushes the whole TLB.
        """
        self._check_va("set_table_flags", va)
        if not _is_int(level) or not 2 <= level <= self.levels:
            raise ValueError(f"set_table_flags: level must be 2..{self.levels}, not {level!r}")
        depth = self.levels - level
        if depth == 0 and not self.mode.top_rights:
            raise ValueError("set_table_flags: PAE PDPT entries hold only _PAGE_PRESENT")
        if not _is_int(flags) or flags & ~self.mode.flag_mask or flags < 0:
            raise ValueError(f"set_table_flags: flags {flags!r} do not fit an entry")
        path = self._path(va)
        if len(path) <= depth or path[depth][1] not in path[depth][0].entries:
            raise ValueError(f"set_table_flags: {va:#x} has no level-{level} entry")
        table, index = path[depth]
        table.entries[index] = (table.entries[index] & PTE_PFN_MASK) | flags
        self.tlb.flush_all()

    def walk_range(self, start: int = 0, end: int = 1 << 64) -> list[tuple[int, int, int]]:
        """(va, pfn, flags) of every leaf entry with start <= va < end, by address.

        walk_page_range: only tables that overlap the range are visited, so
        zapping a huge, mostly empty range costs what is mapped in it.
        """
        lo, hi = self._linear(start), self._linear(end)
        return [(self._canonical(linear), pte_pfn(entry), pte_flags(entry))
                for linear, _, _, entry in self._leaves(self.pgd, 0, 0, lo, hi)]

    def _leaves(self, pfn: int, depth: int, base: int, lo: int,
                hi: int) -> Iterator[tuple[int, _Table, int, int]]:
        """(linear va, table, index, entry) of the leaves below table `pfn` in [lo, hi)."""
        table = self._tables[pfn]
        shift = self.mode.shifts[depth]
        for index in sorted(table.entries):
            linear = base | (index << shift)
            if linear + (1 << shift) <= lo or linear >= hi:
                continue
            entry = table.entries[index]
            if depth == self.levels - 1:
                yield linear, table, index, entry
            else:
                yield from self._leaves(pte_pfn(entry), depth + 1, linear, lo, hi)

    def free_pgtables(self, start: int = 0, end: int = 1 << 64) -> int:
        """Give back every empty table (not the pgd) whose span lies in [start, end).

        free_pgd_range over the gap: what Linux does at munmap and exit, and
        what reclaims tables when `free_empty_tables` is off. Returns the pages
        given back.
        """
        before = len(self._tables)
        self._reclaim(self.pgd, 0, 0, self._linear(start), self._linear(end))
        return before - len(self._tables)

    def _reclaim(self, pfn: int, depth: int, base: int, lo: int, hi: int) -> None:
        if depth == self.levels - 1:
            return
        table = self._tables[pfn]
        span = 1 << self.mode.shifts[depth]
        for index in sorted(table.entries):
            linear = base | (index << self.mode.shifts[depth])
            if linear + span <= lo or linear >= hi:
                continue
            child = pte_pfn(table.entries[index])
            self._reclaim(child, depth + 1, linear, lo, hi)
            if not self._tables[child].entries and lo <= linear and linear + span <= hi:
                del table.entries[index]
                self._free_table(child)

    def destroy(self) -> None:
        """Give back every table page, the pgd included (exit_mmap + pgd_free).

        ValueError while any leaf entry remains (check_mm's "Bad rss-counter
        state"): the caller must unmap first. The PageTable is unusable after.
        """
        left = self.walk_range()
        if left:
            raise ValueError(f"destroy: {len(left)} leaf entries still mapped, "
                             f"the first at {left[0][0]:#x}")
        for pfn in list(self._tables):
            self._free_table(pfn)
        self.tlb.flush_all()

    # ---- the checker's view -------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The vocabulary's state now; later operations do not change it."""
        tables = {pfn: (t.level, dict(t.entries)) for pfn, t in self._tables.items()}
        tlb = self.tlb.entries()
        levels, root = self.levels, self.pgd
        ever = [Mapped(va) for va in sorted(self._ever)]
        return Snapshot({
            "mapped_ever": lambda: ever,
            "levels": lambda: levels,
            "root": lambda: root,
            "table_pages": lambda: len(tables),
            "ptes": lambda: self._snapshot_ptes(tables, root),
            "tables": lambda: frozenset(Table(pfn, lv) for pfn, (lv, _) in tables.items()),
            "entries": lambda: [TableEntry(pfn, lv, index, pte_pfn(e), pte_flags(e), lv == 1)
                                for pfn, (lv, ents) in sorted(tables.items())
                                for index, e in sorted(ents.items())],
            "tlb": lambda: tlb,
        })

    def _snapshot_ptes(self, tables: dict[int, tuple[int, dict[int, int]]],
                       root: int) -> list[Pte]:
        """Every leaf of the copied `tables`, with the rights of its whole walk."""
        ptes: list[Pte] = []

        def visit(pfn: int, depth: int, base: int, above: list[int]) -> None:
            level, entries = tables[pfn]
            for index, entry in sorted(entries.items()):
                linear = base | (index << self.mode.shifts[depth])
                walk = [*above, entry]
                if level == 1:
                    eff = self._effective(walk)
                    ptes.append(Pte(self._canonical(linear), pte_pfn(entry), pte_flags(entry),
                                    all(e & _PAGE_PRESENT for e in walk),
                                    bool(eff & _PAGE_USER), bool(eff & _PAGE_RW)))
                elif pte_pfn(entry) in tables:
                    visit(pte_pfn(entry), depth + 1, linear, walk)

        visit(root, 0, 0, [])
        return ptes


class Pte(NamedTuple):
    """A leaf entry: `va` maps to `pfn` with `flags`; present/user/writable are the
    walk's effective values (present at every level, U and RW at every level)."""

    va: int
    pfn: int
    flags: int
    present: bool
    user: bool
    writable: bool


class Mapped(NamedTuple):
    """An address some map() installed an entry at (now or before)."""

    va: int


class Table(NamedTuple):
    """A table page and its level (1 = PTEs, levels = the pgd)."""

    pfn: int
    level: int


class TableEntry(NamedTuple):
    """Entry `index` of table page `table` (of `level`): a frame and flags; `leaf`
    entries (level 1) map data pages, the others point to the next table down."""

    table: int
    level: int
    index: int
    pfn: int
    flags: int
    leaf: bool


VOCABULARY = Vocabulary(
    subsystem="pagetable",
    doc="x86 page tables of one address space (2, 3, 4 or 5 levels) and its TLB.",
    records=(
        Record("Pte", (("va", "int"), ("pfn", "int"), ("flags", "int"), ("present", "bool"),
                       ("user", "bool"), ("writable", "bool")),
               doc="A leaf entry: va maps to pfn with flags; present, user and writable "
                   "hold for the whole walk (P and U and RW at every level)."),
        Record("Mapped", (("va", "int"),),
               doc="An address a map() succeeded at, now or earlier in the trace."),
        Record("Table", (("pfn", "int"), ("level", "int")),
               doc="A page-table page; level 1 holds PTEs, level `levels` is the pgd."),
        Record("TableEntry", (("table", "int"), ("level", "int"), ("index", "int"),
                              ("pfn", "int"), ("flags", "int"), ("leaf", "bool")),
               doc="Entry index of table page `table` (whose level is `level`); a "
                   "non-leaf entry's pfn is a table of level - 1."),
        Record("TlbEntry", (("va", "int"), ("pfn", "int"), ("flags", "int")),
               doc="A cached translation of the page at va, with the walk's effective "
                   "flags (P, A, RW, U, NX, D) when it was filled."),
    ),
    state=(
        StateVar("levels", "int", doc="Paging levels: 2, 3 (PAE), 4 or 5 (LA57)."),
        StateVar("root", "int", doc="The pgd's pfn (what CR3 holds)."),
        StateVar("table_pages", "int", doc="Table pages held, the pgd included."),
        StateVar("ptes", "list[Pte]", doc="Every leaf entry, present or not, by address."),
        StateVar("tables", "set[Table]", doc="Every table page held."),
        StateVar("entries", "list[TableEntry]", doc="Every entry of every table page."),
        StateVar("tlb", "list[TlbEntry]", doc="Every cached translation."),
        StateVar("mapped_ever", "list[Mapped]",
                 doc="Every address a map() has succeeded at so far, by address: what "
                     "table_pages() may not exceed the needs of ([PT-TABLES-BOUNDS])."),
    ),
    operations=(
        Operation("map", (("va", "int"), ("pfn", "int"), ("flags", "int")), "none",
                  ("ValueError", "MemoryError"),
                  doc="Install the leaf entry pfn|flags at the page-aligned va."),
        Operation("unmap", (("va", "int"),), "int?", ("ValueError",),
                  doc="Clear va's leaf entry; the pfn it held, or none."),
        Operation("translate", (("va", "int"), ("write", "bool"), ("user", "bool"),
                                ("exec", "bool")), "int", ("PageFault", "ValueError"),
                  doc="The physical byte address, setting accessed/dirty; PageFault "
                      "with the x86 error code otherwise."),
    ),
)
