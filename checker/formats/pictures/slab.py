"""A slab cache as rows of slabs: each slab a bar of its bytes, the colouring (and
on-slab management) offset first, then its object slots, live objects grey,
free ones white, those sitting in a per-CPU array cache hatched blue; the list
each slab is on (partial, full, free) beside it. Objects off the grid of slots
(past the slab's end, misaligned) and live objects in no slab are drawn in red.
Objects the violation mentions are outlined in red (id `hl-obj-ADDR`).

`slab_rows` is the layout both pictures read: the text one (`render_text`,
the slab driver's render_state) and the SVG one (`render_svg`, HTML reports).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmcheck.checker.explain import fields_in
from mmcheck.checker.formats.svg import Focus, rect, svg, text

WIDTH = 760
ROW = 22
X0 = 150  # the slabs' names are left of the bars
OVERHANG = 60  # room right of a slab for an object past its end
SLABS_SHOWN = 12
LISTS = {0: "partial", 1: "full", 2: "free"}  # Mgmt.on_list, as kmem_list3 names them
MARK = {"live": "A", "cached": "c", "free": "."}  # the text picture's slot letters


@dataclass(frozen=True)
class SlabRow:
    """One slab as the pictures draw it: its bytes, the offset before its first slot
    (colouring, on-slab management), its list and each slot's state."""

    pfn: int
    order: int
    start: int
    end: int
    s_mem: int
    on_list: str
    slots: tuple[tuple[int, str], ...]  # (address, live | cached | free)
    strays: tuple[int, ...]  # live objects of this slab off the grid of slots


def objects_per_slab(state: Mapping[str, Any]) -> int:
    """num (the reference's kmem_cache) or, on a submission, slabinfo's objperslab."""
    return int(state.get("num") or state["info"].objperslab or 0)


def slab_rows(state: Mapping[str, Any]) -> list[SlabRow]:
    """Every slab held, in pfn order, with its slots' states and its list."""
    objsize = max(int(state["objsize"]), 1)
    num = objects_per_slab(state)
    live = {o.addr for o in state["objects"]}
    cached = {c.addr for c in state.get("cached", ())}
    lists = {m.pfn: LISTS.get(m.on_list, "?") for m in state.get("mgmt", ())}
    rows = []
    for s in sorted(state["slabs"]):
        grid = [s.s_mem + i * objsize for i in range(num)] if num else []
        slots = tuple((a, "live" if a in live else "cached" if a in cached else "free")
                      for a in grid)
        mine = {o.addr for o in state["objects"] if o.slab == s.pfn}
        rows.append(SlabRow(s.pfn, s.order, s.start, s.end, s.s_mem,
                            lists.get(s.pfn, _list_of(s.inuse, num)), slots,
                            tuple(sorted(mine - set(grid)))))
    return rows


def _list_of(inuse: int, num: int) -> str:
    """The list a slab with `inuse` live objects of `num` belongs on."""
    return "free" if inuse == 0 else "full" if num and inuse >= num else "partial"


def caption(state: Mapping[str, Any]) -> str:
    """The cache's parameters and its slabinfo row, in one line."""
    i = state["info"]
    return (f"size {state['size']}, align {state['align']}, objsize {state['objsize']}"
            f"{' (destroyed)' if state['destroyed'] else ''}; slabinfo: {i.active_objs}/"
            f"{i.num_objs} objects, {i.objperslab} per slab of {i.pagesperslab} page(s), "
            f"{i.active_slabs}/{i.num_slabs} slabs")


def render_text(state: Mapping[str, Any], marked: frozenset[int] | set[int],
                limit: int = SLABS_SHOWN) -> list[str]:
    """Each slab as one row of slot letters (A live, c in an array cache, . free; !
    an object the violation names), with its list and colouring offset."""
    rows = slab_rows(state)
    objsize = int(state["objsize"])
    lines = [f"slabs ({len(rows)}): A live  c in a per-CPU array cache  . free  "
             "! named by the violation"] if rows else ["no slabs held"]
    for r in rows[:limit]:
        cells = "".join("!" if a in marked else MARK[what] for a, what in r.slots)
        past = sum(a + objsize > r.end for a, _ in r.slots)
        lines.append(f"  pfn {r.pfn} o{r.order} {r.on_list:<7} colour+mgmt "
                     f"{r.s_mem - r.start:>5} |{cells[:64]}{'...' if len(cells) > 64 else ''}|"
                     + (f"  {past} slot(s) past the slab's end" if past else ""))
        for a in r.strays[:4]:
            where = "past the slab's end" if a + objsize > r.end else "off the grid of slots"
            lines.append(f"      live object {a:#x} {where}{'  <-' if a in marked else ''}")
    if len(rows) > limit:
        lines.append(f"  ... {len(rows) - limit} more slabs")
    return lines


def render_svg(state: Mapping[str, Any], focus: Focus) -> str:
    """The picture of the module docstring."""
    marked = focus.numbers("addr") | focus.argument("slab", "addr")
    rows = slab_rows(state)
    objsize = max(int(state["objsize"]), 1)
    body = [text(10, 14, caption(state), class_="caption")]
    y = 26
    for r in rows[:SLABS_SHOWN]:
        body += _slab_row(r, objsize, marked, y)
        y += ROW + 6
    if len(rows) > SLABS_SHOWN:
        body.append(text(10, y + 12, f"... {len(rows) - SLABS_SHOWN} more slabs", class_="lane"))
        y += 18
    lost = sorted(o.addr for o in state["objects"] if o.slab == -1)
    if lost:
        body.append(text(10, y + 12, "live objects in no slab: " + ", ".join(
            f"{a:#x}" for a in lost[:6]), class_="lost", fill="#d00"))
        y += 18
    if not rows:
        body.append(text(10, y + 12, "no slabs held", class_="lane"))
        y += 18
    body += _legend(y + 4)
    return svg(WIDTH, y + 24, body, class_="picture slab")


def _legend(y: float) -> list[str]:
    """What the fills mean."""
    out, x = [], 10.0
    for fill, what in (("#9aa0a6", "live"), ("#a9c8f0", "in a per-CPU array cache"),
                       ("#fff", "free"), ("#e8d9a8", "colouring + management"),
                       ("#f4a0a0", "off the grid of slots")):
        out += [rect(x, y, 12, 12, fill, stroke="#555", stroke_width=0.4, class_="legend"),
                text(x + 16, y + 10, what, class_="legend")]
        x += 30 + 6.5 * len(what)
    return out


def _slab_row(r: SlabRow, objsize: int, marked: frozenset[int], y: float) -> list[str]:
    """One slab: its name and list, the offset, its slots and stray objects."""
    span = max(r.end - r.start, 1)
    scale = (WIDTH - X0 - OVERHANG) / span
    out = [text(10, y + 15, f"pfn {r.pfn} o{r.order} {r.on_list}", class_="lane"),
           rect(X0, y, span * scale, ROW, "#fafafa", title=f"slab pfn {r.pfn}, order {r.order}:"
                f" {r.start:#x}..{r.end:#x}, on slabs_{r.on_list}", stroke="#333",
                stroke_width=0.5, class_=f"slab {r.on_list}")]
    if r.s_mem > r.start:
        out.append(rect(X0, y, (r.s_mem - r.start) * scale, ROW, "#e8d9a8",
                        title=f"colouring and management: {r.s_mem - r.start} bytes before the "
                              f"first object at {r.s_mem:#x}", class_="colour"))
    fills = {"live": "#9aa0a6", "cached": "#a9c8f0", "free": "#fff"}
    for a, what in r.slots:
        out.append(_object(a, objsize, what, fills[what], r, scale, marked, y))
    for a in r.strays:
        out.append(_object(a, objsize, "stray", "#f4a0a0", r, scale, marked, y))
    return out


def _object(a: int, size: int, what: str, fill: str, r: SlabRow, scale: float,
            marked: frozenset[int], y: float) -> str:
    """One object slot as a rectangle, outlined in red when the violation names it; the
    bytes past the slab's end (at most OVERHANG pixels of them) in red beyond it."""
    hl = a in marked
    past = max(a + size - r.end, 0)
    where = f" ({past} byte(s) past the slab's end)" if past else ""
    x = X0 + (a - r.start) * scale
    inside = max(min(size, r.end - a), 1) * scale
    out = rect(x, y + 2, inside, ROW - 4, fill, title=f"object {a:#x}..{a + size:#x}: "
               f"{what}{where}", stroke="#d00" if hl else "#555", stroke_width=3 if hl else 0.4,
               id=f"hl-obj-{a:x}" if hl else None, class_=f"object {what}")
    if past:
        out += rect(x + inside, y + 2, max(min(past * scale, OVERHANG - 10), 8), ROW - 4, "#f4a0a0",
                    title=f"{past} byte(s) of object {a:#x} past the slab's end {r.end:#x}",
                    stroke="#d00", stroke_width=1, class_="past-end")
    return out



def addresses_named(values: Sequence[Any]) -> frozenset[int]:
    """The `addr` of every record among `values`, as an explanation binds them."""
    return fields_in(values, "addr")
