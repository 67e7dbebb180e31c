"""Processes and the page frames they map: a column per process listing its areas
(range and rwxp) and its mapped pages as frame() shows them (address; rw or ro
where the reference's PTE for that page maps the same frame, `?` where it does
not), and a column of the frames in use with their refcount and mapcount; a
line joins each mapped page to its frame. A frame that several processes map (shared
after fork, the zero page, shmem) is drawn orange; frames and pages the
violation mentions are outlined in red."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmcheck.checker.formats.pictures.vma import perms
from mmcheck.checker.formats.svg import Focus, line, rect, svg, text

WIDTH = 760
ROW = 18
TOP = 50
LIMIT = 16


def render_svg(state: Mapping[str, Any], focus: Focus) -> str:
    procs = sorted(p.pid for p in state["procs"])
    frames_shown = sorted(state["frames"], key=lambda f: (f.pid, f.va))
    writable = {(m.pid, m.va, m.pfn): m.writable for m in state["mappings"]}
    users: dict[int, set[int]] = {}
    for f in frames_shown:
        users.setdefault(f.pfn, set()).add(f.pid)
    pages = {p.pfn: p for p in state["used_pages"]}
    frames = sorted(users)[:LIMIT * 2]
    body = [text(10, 14, f"{len(procs)} process(es); {state['free_pages']} free page(s) of "
                         f"{state['npages']}; zero page pfn {state['zero_pfn']}", class_="caption")]
    marked_pfns, marked_vas = focus.numbers("pfn"), focus.numbers("va")
    fx = WIDTH - 190
    frame_y = {pfn: TOP + i * ROW for i, pfn in enumerate(frames)}
    for pfn, y in frame_y.items():
        info = pages.get(pfn)
        shared = len(users[pfn]) > 1 or pfn == state["zero_pfn"]
        hl = pfn in marked_pfns
        counts = f"ref {info.refcount} map {info.mapcount}" if info is not None else ""
        body.append(rect(fx, y - 12, 180, ROW - 3, "#f6b26b" if shared else "#cfe2f3",
                         title=f"pfn {pfn}: mapped by pid(s) {sorted(users[pfn])} {counts}",
                         stroke="#d00" if hl else "#555", stroke_width=3 if hl else 0.6,
                         id=f"hl-frame-{pfn}" if hl else None,
                         class_="frame shared" if shared else "frame"))
        body.append(text(fx + 4, y, f"pfn {pfn} {counts}", class_="label"))
    body.append(text(fx, TOP - 16, "frames in use", class_="lane"))
    width = (fx - 40) / max(len(procs), 1)
    bottom = TOP + len(frames) * ROW
    for col, pid in enumerate(procs):
        x = 10 + col * width
        y = float(TOP)
        body.append(text(x, TOP - 16, f"pid {pid}", class_="lane"))
        for v in [v for v in state["vmas"] if v.pid == pid][:LIMIT]:
            body.append(text(x, y, f"{v.start:#x}-{v.end:#x} {perms(v.prot, v.flags)}",
                             class_="addr"))
            y += ROW - 4
        for m in [f for f in frames_shown if f.pid == pid][:LIMIT]:
            hl = m.va in marked_vas or m.pfn in marked_pfns
            rw = writable.get((m.pid, m.va, m.pfn))
            mode = "?" if rw is None else "rw" if rw else "ro"
            body.append(rect(x, y - 11, width - 16, ROW - 4, "#d9ead3" if rw else "#eee",
                             title=f"pid {pid} va {m.va:#x} -> pfn {m.pfn} ({mode})",
                             stroke="#d00" if hl else "#777", stroke_width=2.5 if hl else 0.5,
                             class_="page"))
            body.append(text(x + 3, y, f"{m.va:#x} {mode}", class_="label"))
            if m.pfn in frame_y:
                body.append(line(x + width - 16, y - 4, fx, frame_y[m.pfn] - 4,
                                 "#d00" if hl else "#888", stroke_width=1, class_="maps"))
            y += ROW
        bottom = max(bottom, y)
    if not procs:
        body.append(text(10, TOP, "(no process)", class_="label"))
    return svg(WIDTH, bottom + 10, body, class_="picture fault")
