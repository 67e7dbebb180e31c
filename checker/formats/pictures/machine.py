"""The whole machine's page frames: one cell per pfn, coloured by its owner (free,
slab, page table, user, vmalloc, reserved; grey for none, red for several),
64 to a row, with the live vmalloc areas and user pages listed below. Pages the
violation mentions are outlined in red (ids `hl-pfn-N`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmcheck.checker.formats.svg import Focus, rect, svg, text

OWNER_COLOURS = (("buddy", "free", "#e3eefc"), ("slab", "slab", "#f5d58a"),
                 ("table", "page table", "#9ec9a0"), ("vmalloc", "vmalloc", "#c9b3e6"),
                 ("reserved", "reserved", "#999999"))
CELL, PER_ROW, X0, Y0 = 12, 64, 10, 30


def owners_of(p: Any) -> list[tuple[str, str]]:
    """(name, colour) of each owner the struct page `p` (an MPage) shows."""
    out = [(name, colour) for field, name, colour in OWNER_COLOURS if getattr(p, field)]
    return out + ([("user", "#f4a6a6")] if p.mapcount > 0 else [])


def render_svg(state: Mapping[str, Any], focus: Focus) -> str:
    """The picture of the module docstring."""
    pages = list(state["pages"])
    named = focus.numbers("pfn")
    body = [text(X0, 16, f"{len(pages)} page frame(s): " + ", ".join(
        f"{name}" for _, name, _ in OWNER_COLOURS) + ", user", class_="caption")]
    for p in pages:
        own = owners_of(p)
        colour = own[0][1] if len(own) == 1 else ("#dddddd" if not own else "#d00")
        hl = p.pfn in named
        x, y = X0 + (p.pfn % PER_ROW) * CELL, Y0 + (p.pfn // PER_ROW) * CELL
        body.append(rect(x, y, CELL - 1, CELL - 1, colour, stroke="#d00" if hl else "#333",
                         stroke_width=3 if hl else 0.3, id=f"hl-pfn-{p.pfn}" if hl else None,
                         title=f"pfn {p.pfn}: {' + '.join(n for n, _ in own) or 'no owner'}, "
                               f"_refcount {p.refcount}, _mapcount {p.mapcount}",
                         class_="page"))
    y = Y0 + (len(pages) // PER_ROW + 1) * CELL + 14
    for a in sorted(state["areas"]):
        body.append(text(X0, y, f"vmalloc area {a.addr:#x}: {a.npages} page(s)", class_="label"))
        y += 14
    for e in sorted(state["user_ptes"]):
        body.append(text(X0, y, f"user page {e.va:#x} -> pfn {e.pfn}", class_="label"))
        y += 14
    return svg(X0 * 2 + PER_ROW * CELL, y + 6, body, class_="picture machine")
