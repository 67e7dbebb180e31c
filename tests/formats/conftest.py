"""One report per subsystem's buggy example, made once per session for every format test.

Each example replays a counterexample trace it was once convicted by
(tests/formats/traces/SUBSYSTEM.json, saved by `mmcheck check --impl EXAMPLE`),
so the reports are the same on every machine and take a second in all. The
replay writes its traces (and their ITF files) under a temporary directory;
it runs from the repository root so that paths read `spec/lib/...`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mmcheck.checker.cli import replay_file
from mmcheck.checker.report import Report

ROOT = Path(__file__).resolve().parents[2]
TRACES = Path(__file__).resolve().parent / "traces"
BUGGY = {
    "buddy": "examples/buddy/buggy/no_coalesce.py",
    "vma": "examples/vma/buggy/no_merge.py",
    "pagetable": "examples/pagetable/buggy/no_tlb_flush.py",
    "fault": "examples/fault/buggy/cow_never_copies.py",
    "slab": "examples/slab/buggy/past_end_colour.py",
    "kmalloc": "examples/kmalloc/buggy/class_too_small.py",
    "zone": "examples/zone/buggy/wrong_fallback.py",
    "machine": "examples/machine/buggy/vfree_keeps_mark.py",
    "vmalloc": "examples/vmalloc/buggy/no_tlb_flush.py",
    "segment": "examples/segment/buggy/rpl_ignored.py",
}


@pytest.fixture(scope="session")
def buggy_reports() -> dict[str, Report]:
    """subsystem -> the report of its buggy example (each has one counterexample)."""
    old = Path.cwd()
    os.chdir(ROOT)
    try:
        reports = {s: replay_file(str(TRACES / f"{s}.json"), [], impl)[0]
                   for s, impl in BUGGY.items()}
    finally:
        os.chdir(old)
    for subsystem, r in reports.items():
        assert r.counterexamples, f"{BUGGY[subsystem]} no longer breaks its saved trace"
    return reports
