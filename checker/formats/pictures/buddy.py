"""The buddy allocator as a bar of pages: free blocks coloured by order, allocated
blocks grey, pages in no block white with a red edge; blocks the violation
mentions are outlined in red (id `hl-...`). Free and allocated blocks are drawn
in two lanes, so an overlap between them shows as one above the other."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmcheck.checker.formats.svg import Focus, order_colour, rect, svg, text

WIDTH = 760
LANE = 26
X0 = 80  # the lanes' names are left of the bar


def render_svg(state: Mapping[str, Any], focus: Focus) -> str:
    """The bar of pages of the module docstring."""
    npages = max(int(state["npages"]), 1)
    body = [text(10, 14, f"{npages} page(s), max_order {state['max_order']}, "
                         f"{state['free_pages']} free", class_="caption")]
    lanes, height = block_lanes(state, focus.numbers("pfn"), 24)
    return svg(WIDTH, height, body + lanes, class_="picture buddy")


def block_lanes(state: Mapping[str, Any], marked: frozenset[int], y0: float
                ) -> tuple[list[str], float]:
    """The free and allocated lanes, the pages in no block and the pfn axis of a state
    with npages, free and allocated blocks (pfn, order); the picture's height below."""
    npages = max(int(state["npages"]), 1)
    scale = (WIDTH - X0 - 10) / npages
    free = sorted((b.pfn, b.order) for b in state["free"])
    allocated = sorted((b.pfn, b.order) for b in state["allocated"])
    body: list[str] = []
    covered = [False] * min(npages, 1 << 16)
    for lane, (label, blocks, kind) in enumerate(
        (("free", free, "free"), ("allocated", allocated, "allocated"))
    ):
        y = y0 + lane * (LANE + 8)
        body.append(text(10, y + 17, label, class_="lane"))
        for pfn, order in blocks:
            size = 1 << order
            for p in range(max(pfn, 0), min(pfn + size, len(covered))):
                covered[p] = True
            x = X0 + pfn * scale
            hl = pfn in marked
            fill = order_colour(order) if kind == "free" else "#9aa0a6"
            body.append(rect(
                x, y, size * scale, LANE, fill,
                title=f"{kind} block: pfn {pfn}, order {order} (pages {pfn}..{pfn + size - 1})",
                stroke="#d00" if hl else "#333", stroke_width=3 if hl else 0.5,
                id=f"hl-{kind}-{pfn}" if hl else None, class_=f"block {kind} order-{order}",
            ))
            if size * scale > 34:
                body.append(text(x + 3, y + 17, f"{pfn}:o{order}", class_="label"))
    lost_y = y0 + 2 * (LANE + 8)
    body.append(text(10, lost_y + 8, "no block", class_="lane"))
    for pfn, hit in enumerate(covered[:npages]):
        if not hit:
            body.append(rect(X0 + pfn * scale, lost_y, scale, 8, "#fff",
                             title=f"page {pfn} is in no block", stroke="#d00",
                             stroke_width=1, class_="lost"))
    body.append(_axis(npages, scale, lost_y + 22))
    return body, lost_y + 30


def _axis(npages: int, scale: float, y: float) -> str:
    step = max(1, 1 << max(0, (npages // 8).bit_length() - 1))
    marks = [text(X0 + p * scale, y, str(p), class_="tick") for p in range(0, npages + 1, step)]
    return "".join(marks)
