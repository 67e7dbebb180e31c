"""The zones of one node above the buddy picture's lanes: a band per zone over its
pfns (DMA, DMA32, NORMAL, HIGHMEM, MOVABLE) with its free pages against its
watermarks (red when below LOW), then the free blocks coloured by order and the
allocated blocks, as the buddy picture draws them (buddy.py `block_lanes`). A
block that crosses a zone boundary shows over two bands; zones and blocks the
violation mentions are outlined in red (ids `hl-zone-IDX`, `hl-...`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmcheck.checker.formats.pictures.buddy import LANE, WIDTH, X0, block_lanes
from mmcheck.checker.formats.svg import Focus, rect, svg, text
from mmcheck.model.zone import ZONE_NAMES


def render_svg(state: Mapping[str, Any], focus: Focus) -> str:
    """The picture of the module docstring."""
    npages = max(int(state["npages"]), 1)
    scale = (WIDTH - X0 - 10) / npages
    body = [text(10, 14, f"{npages} page(s) in {len(state['zones'])} zone(s), max_order "
                         f"{state['max_order']}", class_="caption"),
            text(10, 24 + 17, "zones", class_="lane")]
    named = focus.numbers("idx")
    for z in sorted(state["zones"]):
        low, hl = z.free < z.low, z.idx in named
        body.append(rect(X0 + z.start * scale, 24, (z.end - z.start) * scale, LANE,
                         "#f6d5d5" if low else "#e3eefc", stroke="#d00" if hl else "#333",
                         stroke_width=3 if hl else 0.5, id=f"hl-zone-{z.idx}" if hl else None,
                         title=f"zone {ZONE_NAMES[z.idx]}: pfns {z.start}..{z.end - 1}, free "
                               f"{z.free} (min {z.min}, low {z.low}, high {z.high})",
                         class_=f"zone{' below-low' if low else ''}"))
        if (z.end - z.start) * scale > 60:
            body.append(text(X0 + z.start * scale + 3, 24 + 17,
                             f"{ZONE_NAMES[z.idx]} {z.free}/{z.low}", class_="label"))
    lanes, height = block_lanes(state, focus.numbers("pfn"), 24 + LANE + 8)
    return svg(WIDTH, height, body + lanes, class_="picture zone")
