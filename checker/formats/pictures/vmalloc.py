"""The vm_struct list as a strip of pages from VMALLOC_START: each area's pages
(green when mapped, with the frame in the tooltip; white when not), its guard
page (grey, red when something maps it), the free gaps between areas, and a
red mark under every page whose TLB entry no PTE backs any more. Areas the
violation names (by `addr`) are outlined in red (id `hl-...`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmcheck.checker.formats.svg import Focus, rect, svg, text

WIDTH = 760
X0 = 10.0
CELL = 14.0
ROW = 24.0
PAGE = 4096


def render_svg(state: Mapping[str, Any], focus: Focus) -> str:
    """The picture of the module docstring (at most 50 pages from VMALLOC_START)."""
    start = int(state["vmalloc_start"])
    ptes = {p.va: p.pfn for p in state["ptes"]}
    stale = {t.va for t in state["tlb"] if ptes.get(t.va) != t.pfn}
    named = focus.numbers("addr") | focus.argument("vmalloc", "addr")
    areas = sorted(state["areas"])
    body = [text(X0, 14, f"vmalloc [{start:#x}, {int(state['vmalloc_end']):#x}): "
                         f"{len(areas)} area(s), direct map ends at "
                         f"{int(state['high_memory']):#x}", class_="caption")]
    y = 24.0
    per_row = int((WIDTH - 2 * X0) // CELL)
    shown = 50
    for i in range(shown):
        va = start + i * PAGE
        area = next((a for a in areas if a.addr <= va < a.addr + a.size), None)
        x, row = X0 + (i % per_row) * CELL, y + (i // per_row) * ROW
        if area is None:
            fill, what = "#ffffff", "free"
        elif va == area.addr + area.size - PAGE:
            fill, what = ("#e06666", "guard page, MAPPED") if va in ptes else ("#cccccc",
                                                                                "guard page")
        else:
            fill, what = ("#6aa84f", f"pfn {ptes[va]:#x}") if va in ptes else ("#ffffff",
                                                                               "not mapped")
        hl = area is not None and area.addr in named
        body.append(rect(x, row, CELL - 2, CELL, fill, title=f"{va:#x}: {what}",
                         stroke="#d00" if hl else "#555", stroke_width=1.5 if hl else 0.5,
                         id=f"hl-{va:x}" if hl else None, class_="page"))
        if va in stale:
            body.append(rect(x, row + CELL + 1, CELL - 2, 3, "#d00",
                             title=f"stale TLB entry for {va:#x}", class_="stale-tlb"))
    height = y + ((shown - 1) // per_row + 1) * ROW + 8
    return svg(WIDTH, height, body, class_="picture vmalloc")
