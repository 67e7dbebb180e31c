"""The zoned page allocator of one node (model/zone.py, checker/subsystems/zone.py)."""

from __future__ import annotations

from collections.abc import Mapping

from mmcheck.checker.subsystems.registry import Domain, Op, Subsystem, register

ZONE_KEYS = ("dma", "dma32", "normal", "highmem", "movable")
GFPS = (0, 1, 4, 2, 8, 10, 9, 12)  # GFP_ZONE_TABLE's combinations, the plainest first
BAD_GFPS = (3, 5, 6, 7, 16, -1)  # two zone modifiers (GFP_ZONE_BAD), unknown bits


def zone_sizes(setup: Mapping[str, int]) -> list[int]:
    """The constructor's `zones` list: pages of DMA, DMA32, NORMAL, HIGHMEM, MOVABLE."""
    return [setup[k] for k in ZONE_KEYS]


def _orders(setup: Mapping[str, int]) -> range:
    return range(0, setup["max_order"])


def _bad_orders(setup: Mapping[str, int]) -> tuple[int, ...]:
    return (setup["max_order"], -1)


def _pfns(setup: Mapping[str, int]) -> range:
    return range(0, max(sum(zone_sizes(setup)), 1))


def _bad_pfns(setup: Mapping[str, int]) -> tuple[int, ...]:
    return (sum(zone_sizes(setup)), -1)


ORDER = Domain(_orders, _bad_orders, doc="0 .. max_order-1; max_order, -1")

DECLARATION = register(Subsystem(
    name="zone",
    rank=15,
    contract_class="ZoneAllocator",
    model="mmcheck.model.zone",
    driver="mmcheck.checker.subsystems.zone",
    operations=(
        Op("alloc", (("order", ORDER),
                     ("gfp", Domain(GFPS, BAD_GFPS,
                                    doc="a zone modifier combination; two zone bits")))),
        Op("free", (("pfn", Domain(_pfns, _bad_pfns, returned_by="alloc",
                                   doc="a pfn alloc returned; past the node, -1")),
                    ("order", Domain(_orders, _bad_orders,
                                     doc="the order it was allocated with")))),
    ),
    correct="examples/zone/correct/linux_lists.py",
    buggy="examples/zone/buggy/wrong_fallback.py",
    clauses="ZONE",
    symbolic=True,
    symbolic_pages=(16, 16),
    results=(("alloc", "pfn"),),
    doc="Zones of one node: a buddy allocator per zone, watermarks, zonelist fallback",
))
