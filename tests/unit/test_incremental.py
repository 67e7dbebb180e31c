"""Incremental checking must give exactly the verdicts of a full re-check.

The concrete evaluator remembers per-element verdicts across steps and, where
the spec allows, re-checks only what a step changed (checker/evaluate.py,
_IncrementalForall). These tests drive the same sequence of states through an
incremental and a non-incremental compilation of the standard buddy spec and
of a few specs written to stress the dependency tracking, and compare every
verdict and every vacuity count. States include corrupted ones (blocks added,
dropped or moved), so failing verdicts and recoveries are compared too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.model.buddy import Block, BuddyAllocator
from mmcheck.spec.loader import check_text, load

STRESS = """spec buddy
def size(b) = 2 ** b.order
invariant buddy_not_free "free blocks whose buddy is free too":
    forall b in free:
        b.order < max_order - 1 -> not (Block{pfn: b.pfn ^ size(b), order: b.order} in free)
invariant listed "every free-list entry is free, and not allocated":
    forall e in free_area: e in free and e not in allocated
invariant small_or_listed "blocks of order 0 are in a list":
    forall b in allocated: b.order > 0 or Block{pfn: b.pfn, order: 0} in allocated
invariant pure "orders in range":
    forall b in free + allocated: b.order < max_order
invariant nested "a nested quantifier (not incremental, must still agree)":
    forall b in free: exists a in free: a.pfn == b.pfn
"""


def _states(seed: int, npages: int, steps: int) -> Iterator[Mapping[str, Any]]:
    """Snapshots of a random trace, some of them corrupted."""
    rng = random.Random(seed)
    model = BuddyAllocator(npages, 6)
    for _ in range(steps):
        if model.allocated and rng.random() < 0.45:
            pfn, order = rng.choice(sorted(model.allocated.items()))
            model.free(pfn, order)
        else:
            model.alloc(rng.randrange(0, 4))
        snap = dict(model.snapshot())
        roll = rng.random()
        if roll < 0.15 and snap["free"]:
            # Drop a free block (lost pages), or add a bogus one (overlap).
            victim = rng.choice(sorted(snap["free"]))
            snap["free"] = snap["free"] - {victim}
        elif roll < 0.3:
            snap["free"] = snap["free"] | {Block(rng.randrange(npages), rng.randrange(4))}
        elif roll < 0.4 and snap["allocated"]:
            b = rng.choice(sorted(snap["allocated"]))
            snap["allocated"] = (snap["allocated"] - {b}) | {Block(b.pfn, b.order + 1)}
        yield snap


@pytest.mark.parametrize("source", ["library", "stress"])
@pytest.mark.parametrize("seed", range(6))
def test_incremental_verdicts_equal_full_verdicts(source: str, seed: int) -> None:
    checked = load("spec/lib/buddy.mm") if source == "library" else check_text(STRESS, "stress.mm")
    fast, slow = CompiledSpec(checked, incremental=True), CompiledSpec(checked, incremental=False)
    failures = 0
    for snap in _states(seed, npages=[16, 64, 200][seed % 3], steps=150):
        for name in fast.invariants:
            a, b = fast.check_invariant(name, snap), slow.check_invariant(name, snap)
            assert (a.holds, a.live, a.error) == (b.holds, b.live, b.error), (name, snap)
            failures += not a.holds
    assert failures > 0  # the corruptions did make properties fail, so failures were compared


def test_incremental_checking_is_really_used() -> None:
    """The stress spec's first three properties take the incremental path (not the loop)."""
    from mmcheck.checker.evaluate import _IncrementalForall

    fast = CompiledSpec(check_text(STRESS, "stress.mm"))
    incremental = [
        name for name, fn in fast.invariants.items()
        if isinstance(getattr(fn, "__self__", None), _IncrementalForall)
        or any(isinstance(getattr(c.cell_contents, "__self__", None), _IncrementalForall)
               for c in (getattr(fn, "__closure__", None) or ()))
    ]
    assert {"buddy_not_free", "listed", "small_or_listed", "pure"} <= set(incremental)
    assert "nested" not in incremental
