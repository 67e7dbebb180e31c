"""kmalloc as its size classes: one row per size class in use (and its DMA twin),
each block the allocator holds for that class drawn as a bar of its bytes with
the live allocations in it; a row of large allocations (above the largest class,
a block of 2**k pages each); blocks that hold no live allocation; live
allocations in no held block in red. Allocations the violation mentions are
outlined in red (id `hl-obj-ADDR`).

`class_rows` is the layout both pictures read: the text one (`render_text`, the
kmalloc driver's render_state) and the SVG one (`render_svg`, HTML reports).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mmcheck.checker.formats.svg import Focus, rect, svg, text

WIDTH = 760
ROW = 22
X0 = 110
BLOCKS_SHOWN = 6  # per row


@dataclass(frozen=True)
class ClassRow:
    """One row of the picture: a size class (or the large allocations), the blocks
    held for it and the live allocations in each."""

    label: str
    blocks: tuple[tuple[Any, tuple[Any, ...]], ...]  # (Held, its live KObjs)


def class_rows(state: Mapping[str, Any]) -> list[ClassRow]:
    """Size classes in use, smallest first (DMA after its twin), then the large
    allocations, blocks shared by several classes (a bug), blocks holding nothing live."""
    limit = int(state["max_cache_size"])
    held = {h.pfn: h for h in state["held"]}
    inside: dict[int, list[Any]] = {}
    for o in state["objects"]:
        inside.setdefault(o.block, []).append(o)
    classes: dict[tuple[int, bool], list[int]] = {}
    other: dict[str, list[tuple[Any, tuple[Any, ...]]]] = {"large": [], "mixed": [],
                                                          "no live": []}
    for pfn in sorted(held):
        objs = tuple(sorted(inside.get(pfn, [])))
        kinds = {(o.usable, o.dma) for o in objs}
        if not objs:
            other["no live"].append((held[pfn], ()))
        elif any(o.size > limit for o in objs):
            other["large"].append((held[pfn], objs))
        elif len(kinds) > 1:  # one slab shared by two classes, or DMA and not
            other["mixed"].append((held[pfn], objs))
        else:
            classes.setdefault(kinds.pop(), []).append(pfn)
    rows = [ClassRow(f"{usable}{' DMA' if dma else ''}",
                     tuple((held[p], tuple(sorted(inside[p]))) for p in pfns))
            for (usable, dma), pfns in sorted(classes.items())]
    return rows + [ClassRow(label, tuple(blocks)) for label, blocks in other.items() if blocks]


def render_text(state: Mapping[str, Any], marked: frozenset[int] | set[int]) -> list[str]:
    """One line per size class in use (its blocks, the live allocations in each and how
    many the violation names), the large ones, the empty blocks."""
    rows = class_rows(state)
    lines = ["size classes in use (the blocks held for each):"
             if rows else "no blocks held"]
    for r in rows:
        shown = []
        for h, objs in r.blocks[:BLOCKS_SHOWN]:
            named = sum(o.addr in marked for o in objs)
            shown.append(f"pfn {h.pfn} o{h.order}: {len(objs)} live"
                         + (f" ({named} named <-)" if named else ""))
        more = f", ... {len(r.blocks) - BLOCKS_SHOWN} more" if len(r.blocks) > BLOCKS_SHOWN else ""
        lines.append(f"  {r.label:>9}: " + ", ".join(shown) + more)
    return lines


def render_svg(state: Mapping[str, Any], focus: Focus) -> str:
    """The picture of the module docstring."""
    marked = focus.numbers("addr") | focus.argument("kmalloc", "addr")
    objs = state["objects"]
    body = [text(10, 14, f"{len(objs)} live allocation(s), {len(state['held'])} block(s) "
                         f"held from {state['npages']} page(s)", class_="caption")]
    y = 26
    for r in class_rows(state):
        body += _row(r, marked, y)
        y += ROW + 6
    lost = sorted(o.addr for o in objs if o.block == -1)
    if lost:
        body.append(text(10, y + 12, "live allocations in no held block: " + ", ".join(
            f"{a:#x}" for a in lost[:6]), class_="lost", fill="#d00"))
        y += 18
    return svg(WIDTH, y + 6, body, class_="picture kmalloc")


def _row(r: ClassRow, marked: frozenset[int], y: float) -> list[str]:
    """A size class: its label, then each of its blocks as a bar with its allocations."""
    out = [text(10, y + 15, r.label, class_="lane")]
    width = (WIDTH - X0 - 10) / BLOCKS_SHOWN
    for i, (h, objs) in enumerate(r.blocks[:BLOCKS_SHOWN]):
        x = X0 + i * width
        span = max(h.end - h.start, 1)
        scale = (width - 6) / span
        out.append(rect(x, y, width - 6, ROW, "#fafafa", stroke="#333", stroke_width=0.5,
                        title=f"block pfn {h.pfn}, order {h.order}: {h.start:#x}..{h.end:#x}",
                        class_="block"))
        for o in objs:
            hl = o.addr in marked
            out.append(rect(x + (o.addr - h.start) * scale, y + 2,
                            max(min(o.usable, h.end - o.addr), 1) * scale, ROW - 4, "#9aa0a6",
                            title=f"{o.addr:#x}: kmalloc({o.size}{', GFP_DMA' if o.dma else ''})"
                                  f", ksize {o.usable}", stroke="#d00" if hl else "#555",
                            stroke_width=3 if hl else 0.4, id=f"hl-obj-{o.addr:x}" if hl else None,
                            class_="allocation"))
    if len(r.blocks) > BLOCKS_SHOWN:
        out.append(text(WIDTH - 60, y + 15, f"+{len(r.blocks) - BLOCKS_SHOWN} more", class_="lane"))
    return out
