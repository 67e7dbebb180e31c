"""A translation lookaside buffer for the reference MMU (model/mmu.py).

The TLB caches, per virtual page, the frame and the *effective* rights of the
last successful walk (U and RW only if set at every level, NX if set at any),
as an x86 TLB does. It is filled by `PageTable.translate` and emptied only by
an explicit flush, never by a change to the page table itself: that is the
point of modelling it. A missing flush after an unmap leaves an entry that
still translates to the old frame, which may by then be free (TLB-1,
CVE-2018-18281). The x86 TLB never caches a not-present entry, so mapping a
page that was not mapped needs no flush.

The model is unbounded (no eviction): a stale entry stays until it is
flushed, so a missing flush is always observable, deterministically.
"""

from __future__ import annotations

from typing import NamedTuple

from mmcheck.model.linux import PAGE_SHIFT, PAGE_SIZE


class TlbEntry(NamedTuple):
    """One cached translation: the page at `va` maps to `pfn` with effective `flags`."""

    va: int
    pfn: int
    flags: int


class Tlb:
    """Virtual page number -> (pfn, effective flags), filled on walks, emptied by flushes."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, tuple[int, int]] = {}

    def lookup(self, va: int) -> tuple[int, int] | None:
        """(pfn, flags) cached for the page holding `va`, or None on a miss."""
        return self._entries.get(va >> PAGE_SHIFT)

    def fill(self, va: int, pfn: int, flags: int) -> None:
        """Cache the translation of the page holding `va` (replacing any older one)."""
        self._entries[va >> PAGE_SHIFT] = (pfn, flags)

    def flush_page(self, va: int) -> None:
        """INVLPG: drop the entry of the page holding `va`, if any."""
        self._entries.pop(va >> PAGE_SHIFT, None)

    def flush_all(self) -> None:
        """A CR3 reload: drop every entry."""
        self._entries.clear()

    def entries(self) -> list[TlbEntry]:
        """Every cached translation, by page-aligned `va` (what the snapshot shows).

        `va` is the page's address as the TLB was given it, so a canonical
        upper-half address keeps its sign-extended form.
        """
        return [TlbEntry(vpn * PAGE_SIZE, pfn, flags)
                for vpn, (pfn, flags) in sorted(self._entries.items())]

    def __len__(self) -> int:
        return len(self._entries)
