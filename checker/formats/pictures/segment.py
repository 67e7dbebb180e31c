"""The segment registers as the CPU holds them, one row each (selector split into
index, TI and RPL; the descriptor's base, limit in bytes and DPL), then the last
translation as the documents draw it: offset + base -> linear address, split
into PGD index, PT index and offset, -> physical address. The register the
failing step used is outlined in red."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmcheck.checker.formats.svg import Focus, rect, svg, text
from mmcheck.model.segment import SREG_NAMES

WIDTH = 760
ROW = 20.0


def render_svg(state: Mapping[str, Any], focus: Focus) -> str:
    """The picture of the module docstring."""
    gdt = {d.index: d for d in state["gdt"]}
    used = focus.argument("segment", "sreg")
    body = [text(10, 14, f"CPL {state['cpl']}: segment registers", class_="caption")]
    y = 22.0
    for seg in state["segs"]:
        d = gdt.get(seg.selector >> 3) if not seg.selector & 4 else None
        hl = seg.sreg in used
        body.append(rect(10, y, 40, ROW - 4, "#e3eefc", stroke="#d00" if hl else "#555",
                         stroke_width=1.5 if hl else 0.5, class_="sreg"))
        body.append(text(16, y + 12, SREG_NAMES[seg.sreg].upper(), class_="label"))
        desc = ("null" if seg.selector >> 2 == 0 else "no descriptor" if d is None else
                f"GDT[{d.index}] base {d.base:#x} limit "
                f"{d.limit_bytes:#x} DPL {d.dpl}")
        body.append(text(60, y + 12, f"{seg.selector:#06x} = index {seg.selector >> 3} | "
                                     f"TI {seg.selector >> 2 & 1} | RPL {seg.selector & 3}"
                                     f"  ->  {desc}", class_="addr"))
        y += ROW
    for t in list(state["last"])[:1]:
        y += 6
        parts = [(f"{SREG_NAMES[t.sreg] if 0 <= t.sreg < 6 else t.sreg}:{t.offset:#x}", 150),
                 (f"linear {t.linear:#010x}", 150), (f"PGD {t.linear >> 22}", 70),
                 (f"PT {t.linear >> 12 & 0x3FF}", 70), (f"+{t.linear & 0xFFF:#x}", 70),
                 (f"phys {t.phys:#x}" if t.phys >= 0 else "no physical address", 170)]
        x = 10.0
        for label, w in parts:
            body.append(rect(x, y, w - 8, ROW, "#f4f4f4", stroke="#555", stroke_width=0.5,
                             class_="step"))
            body.append(text(x + 4, y + 14, label, class_="label"))
            x += w
        y += ROW + 4
    return svg(WIDTH, y + 6, body, class_="picture segment")
