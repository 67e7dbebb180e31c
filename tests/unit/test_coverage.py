"""Contract coverage (checker/coverage.py): the generators reach every class the contract names.

A run of the default budget (100 traces, seed 0) drives each subsystem's
reference model through every operation, every error clause and every boundary
class its driver's COVERAGE names (the rarest is hit 4 times). The reference model runs in this
process, with no spec, so only the generator and the classification are
exercised.
"""

from __future__ import annotations

import pytest
from mmcheck.checker import subsystems
from mmcheck.checker.coverage import Coverage, classify, required
from mmcheck.checker.hypothesis_engine import run_hypothesis
from mmcheck.checker.options import Options
from mmcheck.checker.trace import Step

DEFAULT_TRACES = 100  # the default budget of work of `mmcheck check`


@pytest.mark.parametrize("subsystem", subsystems.registry.names())
def test_the_default_budget_covers_the_contract(subsystem: str) -> None:
    driver = subsystems.driver(subsystem)
    assert driver is not None
    result = run_hypothesis([], driver, driver.ReferenceSystem,
                            Options(seed=0, budget=600, traces=DEFAULT_TRACES))
    coverage = Coverage(result.stats.coverage)
    assert coverage.missing(subsystem) == []
    report = coverage.to_json(subsystem)
    assert report["hit"] == report["required"] == len(required(subsystem))
    assert set(report["operations"]) >= {n.split(": ")[1] for n in required(subsystem)
                                         if n.startswith("operation: ")}


def test_vma_classes_of_one_step() -> None:
    from mmcheck.model.vma import AddressSpace

    space = AddressSpace(1 << 30, 0x10000)
    space.mmap(0x400000, 0x2000, 3, 0x32)
    old = space.snapshot()
    step = Step("mmap", (0x402000, 0x1001, 1, 0x100022), None, "OSError")
    names = classify("vma", step, old, {"errno": 17}, {"task_size": 1 << 30,
                                                       "mmap_min_addr": 0x10000})
    assert "outcome: mmap -> EEXIST" in names
    assert "boundary: addr at an area's end" in names
    assert "boundary: length page + 1 (unaligned, several pages)" in names
    assert "boundary: flags private MAP_FIXED_NOREPLACE" in names
    assert "boundary: prot 1" in names


def test_buddy_orders_above_the_memory_are_a_class() -> None:
    from mmcheck.model.buddy import BuddyAllocator

    old = BuddyAllocator(5, 11).snapshot()
    names = classify("buddy", Step("alloc", (10,), None), old, old,
                     {"npages": 5, "max_order": 11})
    assert "boundary: alloc order above log2(npages)" in names
    assert "boundary: alloc order max_order-1" in names and "outcome: alloc -> none" in names
