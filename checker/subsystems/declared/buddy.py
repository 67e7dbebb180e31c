"""The buddy page allocator (model/buddy.py, checker/subsystems/buddy.py)."""

from __future__ import annotations

from collections.abc import Mapping

from mmcheck.checker.subsystems.registry import Domain, Op, Subsystem, register


def top_order(setup: Mapping[str, int]) -> int:
    """The largest order a block of this memory can have."""
    return min(setup["max_order"] - 1, max(setup["npages"].bit_length() - 1, 0))


def _orders(setup: Mapping[str, int]) -> range:
    return range(0, top_order(setup) + 1)


def _bad_orders(setup: Mapping[str, int]) -> tuple[int, ...]:
    return (setup["max_order"], -1, setup["max_order"] + 5)


def _pfns(setup: Mapping[str, int]) -> range:
    return range(0, max(setup["npages"], 1))


def _bad_pfns(setup: Mapping[str, int]) -> tuple[int, ...]:
    return (setup["npages"], -1, setup["npages"] + 64)


ORDER = Domain(_orders, _bad_orders, doc="0 .. the top order; max_order and past it, -1")

DECLARATION = register(Subsystem(
    name="buddy",
    rank=10,
    contract_class="BuddyAllocator",
    model="mmcheck.model.buddy",
    driver="mmcheck.checker.subsystems.buddy",
    operations=(
        Op("alloc", (("order", ORDER),)),
        Op("free", (
            ("pfn", Domain(_pfns, _bad_pfns, returned_by="alloc",
                           doc="a pfn alloc returned; never returned, past npages, -1")),
            ("order", Domain(_orders, _bad_orders,
                             doc="the order it was allocated with; off by one")),
        )),
    ),
    correct="examples/buddy/correct/first_fit.py",
    buggy="examples/buddy/buggy/double_alloc.py",
    clauses="BUDDY",
    results=(("alloc", "pfn"),),
    symbolic=True,
    doc="The Linux buddy page allocator of one zone",
))
