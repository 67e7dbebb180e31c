"""The zoned page allocator (ZoneAllocator) as the engines see it: setups, steps, systems.

Setups are small nodes shaped as x86 shapes them (DMA and NORMAL; DMA, NORMAL
and HIGHMEM as on i386; DMA, DMA32 and NORMAL as on x86-64; a MOVABLE zone),
with zone boundaries that are not aligned to the largest block (so a buddy
that merges across a boundary shows), min_free_kbytes from none to a quarter
of memory (so watermarks bite early), and one node large enough for
lowmem_reserve to be nonzero. Steps: allocations with every zone modifier
combination, runs that drain the preferred zone to its watermarks (and the
fallback zones after it), frees, and the contract's error paths.

What a spec sees of a submission: the blocks it returned and did not get
back; the zones' free lists are the reference's, which follows its choices
(docs/contract.md [ZONE-CHOICE]).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from mmcheck.checker import coverage
from mmcheck.checker.explain import fields_in
from mmcheck.checker.formats.pictures.zone import render_svg  # noqa: F401 (HTML picture)
from mmcheck.checker.subsystems._vm import call_op, construct, pick, plain_int
from mmcheck.checker.subsystems.declared.zone import (
    BAD_GFPS,
    DECLARATION,
    GFPS,
    ZONE_KEYS,
    zone_sizes,
)
from mmcheck.checker.systems import ModelSystem, Problem, SandboxedSystem
from mmcheck.checker.trace import Step
from mmcheck.model.buddy import IllegalChoice
from mmcheck.model.zone import VOCABULARY, ZONE_NAMES, ZoneAllocator, make_snapshot

SUBMISSION_VIEW = {
    "npages": "its constructor's `zones`",
    "max_order": "its constructor's argument",
    "zones": "the reference's zones (its constructor's arguments), following its choices",
    "free": "the reference's free lists, following its choices",
    "allocated": "the blocks its alloc returned and free has not taken back",
    "lowmem_reserve": "the reference's, from its constructor's arguments",
}

# (dma, dma32, normal, highmem, movable): the simplest first.
LAYOUTS = (
    (16, 0, 48, 0, 0),     # DMA + NORMAL
    (6, 0, 26, 0, 0),      # boundaries inside blocks
    (8, 0, 24, 12, 0),     # i386: DMA, NORMAL, HIGHMEM
    (4, 12, 20, 0, 0),     # x86-64: DMA, DMA32, NORMAL
    (6, 0, 20, 10, 4),     # a MOVABLE zone above HIGHMEM
    (0, 0, 40, 0, 0),      # one zone
    (32, 0, 512, 0, 0),    # large enough for a nonzero lowmem_reserve
)
MIN_FREE_KBYTES = (16, 0, 64, 128)
MAX_ORDERS = (4, 3, 11)


def hidden_names(sub: Any) -> frozenset[str]:
    """A ZoneAllocator submission shows every name (the zones' are the reference's)."""
    return frozenset()


def setups(max_pages: int = 5000) -> st.SearchStrategy[dict[str, int]]:
    """A layout, min_free_kbytes and MAX_ORDER, as one pick of each."""
    layouts = [lay for lay in LAYOUTS if sum(lay) <= max(max_pages, 64)]
    return st.tuples(st.sampled_from(layouts), st.sampled_from(MIN_FREE_KBYTES),
                     st.sampled_from(MAX_ORDERS)).map(
        lambda t: {**dict(zip(ZONE_KEYS, t[0], strict=True)), "min_free_kbytes": t[1],
                   "max_order": t[2]})


class View:
    """What the step generator knows: the setup and the blocks it saw handed out."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.setup = dict(setup)
        self.npages = sum(zone_sizes(setup))
        self.max_order = setup["max_order"]
        self.allocated: dict[int, int] = {}
        self.freed: list[tuple[int, int]] = []

    def record(self, step: Step) -> None:
        if step.raised is not None:
            return
        if step.op == "alloc" and plain_int(step.result):
            self.allocated[step.result] = step.args[0]
        elif step.op == "free" and self.allocated.get(step.args[0]) == step.args[1]:
            del self.allocated[step.args[0]]
            self.freed = (self.freed + [step.args])[-8:]


def draw_steps(data: st.DataObject, view: View) -> list[tuple[str, tuple[int, ...]]]:
    """The next operation(s): a kind, then one pick (see _vm.pick)."""
    orders = list(range(min(view.max_order, 4)))
    kinds = ["alloc", "drain", "free", "free_all", "bad"]
    if not view.allocated:
        kinds = [k for k in kinds if k not in ("free", "free_all")]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    if kind == "alloc":
        order, gfp = pick(data, "order, gfp", orders, GFPS)
        return [("alloc", (order, gfp))]
    if kind == "drain":
        order, gfp, count = pick(data, "order, gfp, count", orders[:2], GFPS, (8, 24, 40))
        return [("alloc", (order, gfp))] * count
    if kind == "free":
        (pfn,) = pick(data, "pfn", sorted(view.allocated))
        return [("free", (pfn, view.allocated[pfn]))]
    if kind == "free_all":
        blocks = data.draw(st.permutations(sorted(view.allocated.items())), label="blocks")
        return [("free", b) for b in blocks]
    how, gfp, delta = pick(data, "bad, gfp, delta",
                           ("gfp", "order", "double", "wrong_order", "never"), BAD_GFPS, (1, 2))
    if how == "gfp":
        return [("alloc", (0, gfp))]
    if how == "order":
        return [("alloc", (view.max_order if delta == 1 else -1, 0))]
    if how == "double" and view.freed:
        return [("free", view.freed[-1])]
    if how == "wrong_order" and view.allocated:
        pfn, order = next(iter(view.allocated.items()))
        return [("free", (pfn, order + delta))]
    return [("free", (view.npages if delta == 1 else -1, 0))]


# ---------------------------------------------------------------- systems


def _reference(setup: Mapping[str, int]) -> ZoneAllocator:
    return ZoneAllocator(zone_sizes(setup), setup["min_free_kbytes"], setup["max_order"])


class ReferenceSystem(ModelSystem):
    """The reference model itself; on replay it makes the trace's choice of block."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.model = _reference(setup)

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        if op == "alloc" and expect is not None and plain_int(expect.result):
            try:
                self.model.take_block(expect.result, args[0])
            except (IllegalChoice, ValueError) as why:
                return Step(op, args, None, None), Problem(
                    "refinement", f"the trace's choice alloc{args} -> {expect.result} is "
                                  "not legal here", (str(why),))
            return Step(op, args, expect.result, None), None
        try:
            return Step(op, args, getattr(self.model, op)(*args), None), None
        except ValueError:
            return Step(op, args, None, "ValueError"), None


class SubmissionSystem(SandboxedSystem):
    """A submission in its sandbox, the reference following its choices of block.

    A block that lies in no single zone is recorded as returned but not taken
    from the reference (the spec's blocks_in_one_zone says what is wrong); any
    other block the reference cannot hand out is a refinement problem."""

    def __init__(self, sub: Any, setup: Mapping[str, int]) -> None:
        self.sub = sub
        self.reference = _reference(setup)
        self.allocated: dict[int, int] = {}
        self.handle = construct(sub, DECLARATION, zone_sizes(setup), setup["min_free_kbytes"],
                                setup["max_order"])

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        got = call_op(self.sub, self.handle, VOCABULARY, op, args)
        if got.problem is not None or got.step.raised is not None:
            return got.step, got.problem
        return got.step, self._follow(got.step)

    def _follow(self, step: Step) -> Problem | None:
        if step.op == "alloc":
            if step.result is None:
                return None  # judged by alloc_none_only_when_no_zone_can
            pfn, order = step.result, step.args[0]
            self.allocated[pfn] = order
            node = self.reference.node
            zone = node.zone_of(pfn)
            if zone is None or pfn + (1 << order) > zone.zone_end_pfn:
                return None  # judged by blocks_in_one_zone
            try:
                self.reference.take_block(pfn, order)
            except (IllegalChoice, ValueError) as why:
                return Problem("refinement", f"alloc{step.args} returned {pfn}, which no "
                                             "correct allocator could", (str(why),))
            return None
        pfn, order = step.args
        if self.allocated.get(pfn) == order:
            del self.allocated[pfn]
            try:
                self.reference.free(pfn, order)
            except ValueError:
                pass  # a block the reference never took (in no single zone)
        return None  # free_exact judges a free of a block not allocated

    def snapshot(self) -> Mapping[str, Any]:
        return make_snapshot(self.reference.node, self.allocated)


# ---------------------------------------------------------------- pictures


def render_state(state: Mapping[str, Any], named: Sequence[Any] = (),
                 limit: int = 12) -> list[str]:
    """Each zone with its watermarks and free pages, then its blocks by pfn; an arrow at
    each block whose pfn the explanation names."""
    highlight = fields_in(named, "pfn")
    lines = [f"npages={state['npages']} max_order={state['max_order']}"]
    blocks = sorted([(b.pfn, b.order, "free") for b in state["free"]]
                    + [(b.pfn, b.order, "allocated") for b in state["allocated"]])
    for z in sorted(state["zones"]):
        lines.append(f"zone {ZONE_NAMES[z.idx]:<8} pfns {z.start}..{z.end - 1}: free {z.free} "
                     f"(min {z.min}, low {z.low}, high {z.high}), managed {z.managed}")
        inside = [b for b in blocks if z.start <= b[0] < z.end]
        for pfn, order, kind in inside[:limit]:
            end = pfn + (1 << order)
            note = "  <- crosses the zone's end" if end > z.end else ""
            if not note and highlight and pfn in highlight:
                note = "  <-"
            lines.append(f"  {pfn:>6} .. {end:<6} {kind:<9} order {order}{note}")
        if len(inside) > limit:
            lines.append(f"  ... {len(inside) - limit} more blocks")
    return lines


# ---------------------------------------------------------------- contract coverage

# The classes the contract (docs/contract.md, ZoneAllocator) names.
COVERAGE = (
    "operation: alloc", "operation: free",
    "outcome: alloc -> returned", "outcome: alloc -> none", "outcome: alloc -> ValueError",
    "outcome: free -> none", "outcome: free -> ValueError",
    *(f"boundary: alloc gfp {gfp:#x}" for gfp in GFPS),
    "boundary: alloc gfp with two zone modifiers or unknown bits",
    "boundary: alloc order out of range",
    "boundary: alloc leaves its zone below the low watermark",
    "boundary: free of an allocated block", "boundary: free with the wrong order",
    "boundary: free of a block not allocated", "boundary: free pfn outside the node",
    "boundary: one zone", "boundary: several zones", "boundary: min_free_kbytes 0",
)


def classify_setup(setup: Mapping[str, int]) -> list[str]:
    """One zone or several; no min_free_kbytes (watermarks at 0)."""
    zones = sum(1 for n in zone_sizes(setup) if n)
    out = ["boundary: one zone" if zones == 1 else "boundary: several zones"]
    if setup["min_free_kbytes"] == 0:
        out.append("boundary: min_free_kbytes 0")
    return out


def classify_step(step: Step, old: Mapping[str, Any], new: Mapping[str, Any],
                  setup: Mapping[str, int]) -> list[str]:
    """The outcome; alloc's zone modifiers and order, the watermark it leaves its zone
    at; what a free frees."""
    out = [coverage.outcome(step)]
    if step.op == "alloc":
        order, gfp = step.args
        out.append(f"boundary: alloc gfp {gfp:#x}" if gfp in GFPS else
                   "boundary: alloc gfp with two zone modifiers or unknown bits")
        if not 0 <= order < setup["max_order"]:
            out.append("boundary: alloc order out of range")
        taken = next((b for b in new["allocated"] if b.pfn == step.result), None)
        zone = next((z for z in new["zones"] if taken and z.idx == taken.zone), None)
        if zone is not None and zone.free < zone.low:
            out.append("boundary: alloc leaves its zone below the low watermark")
        return out
    pfn, order = step.args
    allocated = {b.pfn: b.order for b in old["allocated"]}
    out.append("boundary: " + (
        "free pfn outside the node" if not 0 <= pfn < old["npages"] else
        "free of an allocated block" if allocated.get(pfn) == order else
        "free with the wrong order" if pfn in allocated else "free of a block not allocated"))
    return out


# ---------------------------------------------------------------- symbolic


def symbolic_setup(npages: int) -> dict[str, int]:
    """The node the Z3 encoding checks at `npages` pages (at least 2): DMA and NORMAL
    with the boundary inside a block (an eighth of memory is DMA), MAX_ORDER such
    that a block spans a quarter of memory at most, and min_free_kbytes of half the
    pages, so that the LOW and MIN watermarks bite within a few allocations (at 16
    pages NORMAL's min, low and high are 7, 8 and 10 of its 14 pages)."""
    npages = max(npages, 2)
    dma = max(1, npages // 8)
    sizes = (dma, 0, npages - dma, 0, 0)
    max_order = max(2, min(npages.bit_length() - 2, 11))
    return {**dict(zip(ZONE_KEYS, sizes, strict=True)), "min_free_kbytes": npages * 2,
            "max_order": max_order}


def symbolic_system(npages: int, mutation: str | None = None):  # noqa: ANN201
    """The Z3 encoding (checker/symbolic/zone.py) of the node `symbolic_setup(npages)`.
    Returns (system, setup, integer universe, exponent bound)."""
    from mmcheck.checker.symbolic.zone import SymbolicZone

    setup = symbolic_setup(npages)
    system = SymbolicZone(zone_sizes(setup), setup["min_free_kbytes"], setup["max_order"],
                          mutation)
    return system, setup, range(0, system.npages + 1), setup["max_order"] + 1
