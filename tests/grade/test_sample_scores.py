"""The scores of the sample assignment (examples/assignment, its default effort)
and of a submission whose bug comes up on nearly every trace
(examples/buddy/buggy/double_alloc.py): each lost item for its own reason, every
other item graded on the steps before the bug. One batch grades the eight sample
submissions (six in Python, two in C) once for the module (two workers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmcheck.checker.grade import batch
from mmcheck.checker.grade.assignment import load
from mmcheck.checker.grade.score import Grade, grade

ROOT = Path(__file__).resolve().parents[2]
ASSIGNMENT = ROOT / "examples" / "assignment" / "assignment.toml"
PER_PROPERTY = Path(__file__).resolve().parent / "fixtures" / "buddy_per_property.toml"

# score, and the items lost (examples/assignment/README.md says why)
EXPECTED = {
    "correct": (100, set()),
    "upper_half": (100, set()),
    "c_correct": (100, set()),  # C submissions, graded as the Python ones
    "c_no_merge": (75, {"coalescing", "hidden: an empty allocator is fully merged",
                        "only legal choices (refinement)"}),
    "no_merge": (75, {"coalescing", "hidden: an empty allocator is fully merged",
                      "only legal choices (refinement)"}),
    "no_order_check": (70, {"no overlap, full cover", "allocation: fails only when full",
                            "robustness: bad orders and bad frees raise ValueError",
                            "hidden: an empty allocator is fully merged",
                            "only legal choices (refinement)"}),
    "slow_big_orders": (90, {"no crashes or hangs"}),
    "trusting_free": (90, {"robustness: bad orders and bad frees raise ValueError"}),
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Grade]:
    out = tmp_path_factory.mktemp("sample")
    jobs = batch.discover([ROOT / "examples" / "assignment" / "submissions"])
    return {g.student: g for g in batch.run_batch(ASSIGNMENT, jobs, out, workers=2)}


def test_the_sample_submissions_get_the_scores_the_readme_gives(sample) -> None:  # noqa: ANN001
    assert set(sample) == set(EXPECTED)
    for student, (score, lost) in EXPECTED.items():
        g = sample[student]
        assert (g.score, g.max_score, g.error) == (score, 100, ""), student
        assert {i.name for i in g.items if i.score < i.max_score} == lost, student
        assert not [i for i in g.items if i.status == "not established"], student


def test_pages_lost_by_a_refused_alloc_cost_the_items_they_break(sample) -> None:  # noqa: ANN001
    """no_order_check's alloc(-1) takes a block and raises: half of two items,
    and the hidden one, whose allocator is no longer fully merged when empty."""
    items = {i.name: i for i in sample["no_order_check"].items}
    assert items["no overlap, full cover"].status == "partial"
    hidden = items["hidden: an empty allocator is fully merged"]
    assert hidden.summary.startswith("empty_is_maximal") and \
        any("alloc(-1)" in line for line in hidden.details)


def test_one_bug_on_nearly_every_trace_hides_no_other_item() -> None:
    """double_alloc hands out an exact-fit block without taking it off its free
    list: the allocator that fails nearly every trace at a refinement problem
    still gets the items that held on the steps before it (each such trace
    checked up to that step), and loses exactly the items that bug breaks, each
    on a minimal trace whose first step is that alloc."""
    g = grade(load(PER_PROPERTY), ROOT / "examples" / "buddy" / "buggy" / "double_alloc.py")
    lost = {i.name: i for i in g.items if i.score < i.max_score}
    assert set(lost) == {"no_overlap", "refcount_on_allocated_heads", "alloc_accounting",
                         "free_lists_match_pages", "free_pages_counter", "refinement"}
    assert g.score == 12 and g.max_score == 18
    for item in lost.values():  # the block is allocated and still free: npages=1
        assert item.status == "failed" and item.summary.startswith(item.name)
        assert any("npages=1, max_order=1" in x for x in item.details), item.name
        assert any(x.split() == ["0", "alloc(0)", "->", "0"] or
                   x.split() == ["0", "alloc(0)", "->", "0", "<-", "here"]
                   for x in item.details), item.name
    for item in g.items:
        if item.name not in lost:  # checked, on the steps before the bug
            assert item.status == "passed" and item.cut > 0 and item.traces >= 15, item.name


def test_items_a_submission_cannot_show_earn_nothing(tmp_path: Path) -> None:
    """The sample's correct allocator without free_area() (optional in the
    contract, required by the lab's handout): every item whose properties read the
    free lists is not established, with the reason, and is not credited from the
    checker's own view of those lists; the items on what alloc and free return
    are graded as before. (Before the fix it scored 100, and no_merge without
    free_area() passed coalescing.)"""
    source = (ROOT / "examples" / "assignment" / "submissions" / "correct.py").read_text()
    path = tmp_path / "no_free_area.py"
    path.write_text(source[:source.index("    def free_area")].rstrip() + "\n")
    g = grade(load(ASSIGNMENT), path)
    items = {i.name: i for i in g.items}
    unseen = {"block shape: orders and alignment", "no overlap, full cover", "coalescing",
              "accounting of free pages", "course: a free leaves room for the same order",
              "hidden: an empty allocator is fully merged"}
    for name in unseen:
        assert (items[name].score, items[name].status) == (0, "not established"), name
        assert items[name].summary.startswith("not observable on this submission"), name
        assert "which this submission does not show" in items[name].summary, name
    assert "coalesced reads free," in items["coalescing"].summary
    for name in set(items) - unseen:
        assert items[name].status == "passed", name
    assert g.score == 40


def test_a_partial_item_keeps_the_share_it_showed(tmp_path: Path) -> None:
    """A partial item with one property the submission shows (alloc_takes_free_block
    reads only what alloc returns) and one it cannot (coalesced reads the free
    lists): half the points, "partial", and the unobservable one named."""
    source = (ROOT / "examples" / "assignment" / "submissions" / "correct.py").read_text()
    path = tmp_path / "no_free_area.py"
    path.write_text(source[:source.index("    def free_area")].rstrip() + "\n")
    rubric = tmp_path / "mixed.toml"
    rubric.write_text(
        "[assignment]\nsubsystem = 'buddy'\nspecs = ['std:buddy.mm']\n"
        "ignore_problems = ['crash', 'timeout', 'protocol', 'refinement']\n"
        "[effort]\ntraces = 10\nsteps = 10\nseed = 0\nmax_pages = 64\n"
        "[[item]]\nname = 'mixed'\nproperties = ['alloc_takes_free_block', 'coalesced']\n"
        "points = 10\npartial = true\n")
    (item,) = grade(load(rubric), path).items
    assert (item.score, item.status) == (5, "partial")
    assert "not observable on this submission: coalesced reads free," in item.summary
