"""Every example address space, page table and kernel in examples/ is judged right.

Each example runs through the real command line (`mmcheck check --impl PATH
--format json`) with a small time budget: a buggy one must be caught (exit 1)
by a property that names its bug, with a counterexample that a fresh run
reproduces; a correct one must pass (exit 0). The budgets are seconds of
search; each example also pays for starting its sandbox and replaying what it
found.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mmcheck.checker.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BUDGET = "3"

# example -> the properties any of which names its bug (see each README)
BUGGY = {
    "vma/buggy/inclusive_end.py": {"noreplace_fails_on_overlap", "hint_used_when_free"},
    "vma/buggy/no_merge.py": {"merged"},
    "vma/buggy/mprotect_whole_area.py": {"mprotect_changes_exactly_the_range"},
    "vma/buggy/fixed_overlaps.py": {"fixed_replaces_what_overlapped", "no_overlap"},
    "pagetable/buggy/no_tlb_flush.py": {"translate_faults_as_the_walk_says",
                                        "translate_agrees_with_the_walk"},
    "pagetable/buggy/user_bit_not_checked.py": {"translate_faults_as_the_walk_says"},
    "fault/buggy/cow_copies_on_read.py": {"read_keeps_the_frame"},
    "fault/buggy/cow_never_copies.py": {"written_page_is_exclusive", "read_sees_memory"},
    "fault/buggy/missing_refcount_drop.py": {"all_free_again_after_exit"},
}
CORRECT = {
    "vma/correct/sorted_list.py": "vma",
    "pagetable/correct/radix_tables.py": "pagetable",
    "fault/correct/cow_kernel.py": "fault",
}


def check(example: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["check", "--impl", str(EXAMPLES / example), "--budget", BUDGET,
                 "--seed", "0", "--save", "", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    (only,) = report["reports"]
    return code, only


def test_every_example_is_listed() -> None:
    on_disk = {str(p.relative_to(EXAMPLES)) for sub in ("vma", "pagetable", "fault")
               for p in (EXAMPLES / sub).glob("*/*.py")}
    assert on_disk == set(BUGGY) | set(CORRECT)


@pytest.mark.parametrize("example", sorted(BUGGY))
def test_buggy_example_is_caught(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = check(example, capsys)
    assert code == 1
    assert report["subsystem"] == example.split("/")[0]
    found = report["counterexamples"]
    assert found and all(c["confirmed"] for c in found), [(c["property"], c["note"]) for c in found]
    # A property of the spec names the bug (not only the refinement safety net).
    assert {c["property"] for c in found} & BUGGY[example], [c["property"] for c in found]
    first = found[0]
    assert first["kind"] in ("action", "invariant") and first["explanation"]
    assert first["trace"]["steps"] and first["state"]


@pytest.mark.parametrize("example", sorted(CORRECT))
def test_correct_example_passes(example: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = check(example, capsys)
    assert report["counterexamples"] == []
    assert code == 0
    assert report["subsystem"] == CORRECT[example]
    (run,) = report["engines"]
    assert run["verdict"] == "holds" and run["steps"] > 100
    # Most properties were really exercised on the submission (a few speak only of
    # the reference's structure, which a submission does not show).
    live = [p for p in report["properties"] if p["non_vacuous"] > 0]
    assert len(live) >= len(report["properties"]) * 3 // 4
