"""An address space as a row of areas in address order, each with its range, its
prot (rwx) and whether it is shared or private, and the gaps between them drawn
as breaks labelled with their size (so a gap of one page and one of terabytes
both stay visible). Areas the violation mentions are outlined in red."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmcheck.checker.decode import errno_text
from mmcheck.checker.formats.svg import Focus, rect, svg, text
from mmcheck.model.linux import MAP_SHARED, PAGE_SIZE

WIDTH = 760
BOX_H = 46


def perms(prot: int, flags: int) -> str:
    """/proc/PID/maps' permission column: rwx and p (private) or s (shared)."""
    return ("r" if prot & 1 else "-") + ("w" if prot & 2 else "-") + (
        "x" if prot & 4 else "-") + ("s" if flags & MAP_SHARED else "p")


def size_text(nbytes: int) -> str:
    pages = nbytes // PAGE_SIZE
    if pages < 4096:
        return f"{pages} page{'s' if pages != 1 else ''}"
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20)):
        if nbytes >= 1 << shift:
            return f"{nbytes / (1 << shift):.1f} {unit}"
    return f"{pages} pages"


def render_svg(state: Mapping[str, Any], focus: Focus) -> str:
    vmas = sorted(state["vmas"], key=lambda v: (v.start, v.end))
    low, high = int(state["mmap_min_addr"]), int(state["task_size"])
    body = [text(10, 14, f"mmap_min_addr {low:#x} .. task_size {high:#x}; "
                         f"{len(vmas)} area(s); errno {errno_text(state['errno'])}",
                 class_="caption")]
    marked = focus.numbers("start", "end", "addr")
    items = _row(vmas, low, high)
    widths = [_width(kind, a, b) for kind, a, b, _ in items]
    scale = min(1.0, (WIDTH - 20) / max(sum(widths), 1))
    x, y = 10.0, 24.0
    for (kind, a, b, v), w in zip(items, widths):
        w *= scale
        if kind == "gap":
            body.append(rect(x, y + 14, w, BOX_H - 28, "#f4f4f4",
                             title=f"gap {a:#x}-{b:#x} ({size_text(b - a)})",
                             stroke="#bbb", stroke_dasharray="3 2", class_="gap"))
            body.append(text(x + w / 2, y + BOX_H + 12, size_text(b - a), text_anchor="middle",
                             class_="gaplabel"))
        else:
            hl = a in marked or b in marked
            shared = bool(v.flags & MAP_SHARED)
            fill = "#f2c572" if shared else "#8fc1e3"
            if v.prot == 0:
                fill = "#d0d0d0"
            body.append(rect(x, y, w, BOX_H, fill,
                             title=f"{a:#x}-{b:#x} {perms(v.prot, v.flags)} ({size_text(b - a)})",
                             stroke="#d00" if hl else "#333", stroke_width=3 if hl else 0.7,
                             id=f"hl-area-{a:x}" if hl else None,
                             class_=f"area {'shared' if shared else 'private'}"))
            body.append(text(x + 3, y + 14, perms(v.prot, v.flags), class_="label"))
            body.append(text(x + 3, y + 28, f"{a:#x}", class_="addr"))
            body.append(text(x + 3, y + 41, f"-{b:#x}", class_="addr"))
        x += w
    if not vmas:
        body.append(text(10, y + 30, "(nothing mapped)", class_="label"))
    return svg(WIDTH, y + BOX_H + 20, body, class_="picture vma")


def _row(vmas: list[Any], low: int, high: int) -> list[tuple[str, int, int, Any]]:
    """Areas and the gaps between them (and before the first, after the last)."""
    items: list[tuple[str, int, int, Any]] = []
    at = low
    for v in vmas:
        if v.start > at:
            items.append(("gap", at, v.start, None))
        items.append(("area", v.start, v.end, v))
        at = max(at, v.end)
    if at < high:
        items.append(("gap", at, high, None))
    return items


def _width(kind: str, a: int, b: int) -> float:
    if kind == "gap":
        return 46.0
    return 78.0 + min(max(b - a, 0) // PAGE_SIZE, 16) * 4.0
