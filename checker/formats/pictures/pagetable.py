"""The walk of one address through the page-table levels: for each level, the
table page, the index the address selects, and the bits of the entry there
(P RW U PWT PCD A D PS G NX, set bits filled) with the pfn it points to; then
the TLB's entry for the page, if any. The address is the one of the step the
violation broke (its first argument: map, unmap and translate all take it).
A submission exposes only its leaf entries (`entries` is empty): the walk then
shows the indices and the leaf entry as walk() reports it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmcheck.checker.decode import pte_flags_text
from mmcheck.checker.formats.svg import Focus, rect, svg, text
from mmcheck.model import linux
from mmcheck.model.mmu import MODES

WIDTH = 760
ROW = 40
BITS = (
    ("P", linux._PAGE_PRESENT), ("RW", linux._PAGE_RW), ("U", linux._PAGE_USER),
    ("PWT", linux._PAGE_PWT), ("PCD", linux._PAGE_PCD), ("A", linux._PAGE_ACCESSED),
    ("D", linux._PAGE_DIRTY), ("PS", linux._PAGE_PSE), ("G", linux._PAGE_GLOBAL),
    ("NX", linux._PAGE_NX),
)


def render_svg(state: Mapping[str, Any], focus: Focus) -> str:
    levels = int(state["levels"])
    mode = MODES[levels]
    va = focus.step.args[0] if focus.step is not None and focus.step.args else None
    body = [text(10, 14, f"{levels}-level paging, {state['table_pages']} table page(s); "
                         + (f"walk of {va:#x}" if va is not None else "no address to walk"),
                 class_="caption")]
    y = 24.0
    if va is not None:
        entries = {(e.table, e.index): e for e in state["entries"]}
        table: int | None = int(state["root"])
        for depth, name in enumerate(mode.names):
            index = (va >> mode.shifts[depth]) & ((1 << mode.bits[depth]) - 1)
            entry = entries.get((table, index)) if table is not None else None
            body.extend(_level_row(y, name, table, index, entry, bool(entries)))
            table = entry.pfn if entry is not None and not entry.leaf else None
            y += ROW
        leaf = next((p for p in state["ptes"] if p.va == va & ~0xFFF), None)
        body.append(text(10, y + 12, "leaf (walk): " + (
            f"pfn {leaf.pfn:#x}, " + pte_flags_text(leaf.flags) if leaf is not None else "none"),
            class_="label", id="walk-leaf"))
        tlb = next((t for t in state["tlb"] if t.va == va & ~0xFFF), None)
        if tlb is not None:
            cached = f"pfn {tlb.pfn:#x}, " + pte_flags_text(tlb.flags)
        else:
            cached = "no entry" if entries else "(not exposed by a submission)"
        body.append(text(10, y + 28, "TLB: " + cached, class_="label", id="walk-tlb"))
        y += 36
    return svg(WIDTH, y + 8, body, class_="picture pagetable")


def _level_row(y: float, name: str, table: int | None, index: int, entry: Any,
               known: bool) -> list[str]:
    where = f"table pfn {table:#x}" if table is not None else "no table"
    out = [text(10, y + 14, f"{name.upper()}", class_="level"),
           text(10, y + 28, f"[{index}] {where}", class_="addr")]
    x = 170.0
    flags = entry.flags if entry is not None else 0
    for label, bit in BITS:
        on = bool(flags & bit)
        out.append(rect(x, y + 4, 34, 22, "#6aa84f" if on else "#f4f4f4",
                        title=f"{label} {'set' if on else 'clear'}", stroke="#555",
                        stroke_width=0.6, class_=f"bit {'on' if on else 'off'}"))
        out.append(text(x + 17, y + 19, label, text_anchor="middle", class_="bitname"))
        x += 36
    if entry is not None:
        what = "page" if entry.leaf else "next table"
        out.append(text(x + 6, y + 19, f"-> {what} pfn {entry.pfn:#x}", class_="label"))
    else:
        out.append(text(x + 6, y + 19, "not present" if known else "(not exposed)",
                        class_="label"))
    return out
