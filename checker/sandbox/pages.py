"""An audited page allocator to hand to a submission's `KmemCache` or `PageTable`.

The contract's `pages` argument offers `alloc_pages(order) -> int | None` and
`free_pages(pfn, order) -> None`. `AuditedPages` lives in the checker's process
(exported with `Submission.export`), takes blocks from a backing allocator such
as the reference `BuddyAllocator`, and records what the submission holds, so a
checker can ask after any call: are the object addresses inside pages the cache
holds? did `shrink()` give back what it said? did `destroy()` give back
everything? Misuse (freeing a block it does not hold, or with the wrong order)
is refused with ValueError, which the submission sees raised from `free_pages`,
and is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn, Protocol

from mmcheck.model.linux import PAGE_SIZE


class PageSource(Protocol):
    """What AuditedPages takes blocks from (the reference BuddyAllocator fits)."""

    def alloc(self, order: int) -> int | None: ...

    def free(self, pfn: int, order: int) -> None: ...


@dataclass(frozen=True)
class PageEvent:
    """One request of the submission: `pfn` is the block given (alloc; None when
    none was) or returned (free); `error` says why a request was refused."""

    op: str  # "alloc" or "free"
    order: int
    pfn: int | None
    error: str | None = None


class AuditedPages:
    """alloc_pages/free_pages over `backing`, with an audit of every request.

    `held` maps the first pfn of each block the submission holds now to its
    order; `events` lists every request in order. Set `refuse = True` to make
    `alloc_pages` answer None (out of memory) without asking `backing`."""

    def __init__(self, backing: PageSource) -> None:
        self.backing = backing
        self.held: dict[int, int] = {}
        self.events: list[PageEvent] = []
        self.refuse = False

    def alloc_pages(self, order: int) -> int | None:
        if type(order) is not int or order < 0:
            self._refused("alloc", order, None, f"alloc_pages({order!r}): bad order")
        pfn = None if self.refuse else self.backing.alloc(order)
        if pfn is not None:
            self.held[pfn] = order
        self.events.append(PageEvent("alloc", order, pfn))
        return pfn

    def free_pages(self, pfn: int, order: int) -> None:
        if type(pfn) is not int or type(order) is not int or self.held.get(pfn) != order:
            have = self.held.get(pfn) if type(pfn) is int else None
            why = "it was never given out or is already free" if have is None \
                else f"it was given out with order {have}"
            self._refused("free", order, pfn,
                          f"free_pages({pfn!r}, {order!r}): not a block the caller holds ({why})")
        del self.held[pfn]
        self.backing.free(pfn, order)
        self.events.append(PageEvent("free", order, pfn))

    def _refused(self, op: str, order: object, pfn: object, message: str) -> NoReturn:
        self.events.append(PageEvent(op, order, pfn, message))  # type: ignore[arg-type]
        raise ValueError(message)

    # -- audit -------------------------------------------------------------

    def pages_held(self) -> int:
        """Pages the submission holds now."""
        return sum(1 << order for order in self.held.values())

    def holds_address(self, addr: int, size: int = 1) -> bool:
        """Whether bytes [addr, addr + size) lie inside one block the submission holds."""
        for pfn, order in self.held.items():
            start = pfn * PAGE_SIZE
            if start <= addr and addr + size <= start + (PAGE_SIZE << order):
                return True
        return False

    def refused(self) -> list[PageEvent]:
        """The requests that were refused (a wrong or double free_pages)."""
        return [e for e in self.events if e.error is not None]
