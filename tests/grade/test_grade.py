"""`mmcheck grade`: assignment files, independent verdicts per rubric item,
determinism under load, batch outputs (Gradescope, CSV, JSON, feedback) and
resuming. The assignment is tests/grade/fixtures/tiny.toml (little effort);
the submissions are those of examples/assignment/submissions/."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mmcheck.checker.grade import batch, feedback
from mmcheck.checker.grade.assignment import AssignmentError, load
from mmcheck.checker.grade.score import grade

HERE = Path(__file__).resolve().parent
TINY = HERE / "fixtures" / "tiny.toml"
SUBS = HERE.parents[1] / "examples" / "assignment" / "submissions"


def _scores(g) -> dict[str, float]:  # noqa: ANN001
    return {i.name: i.score for i in g.items}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """correct, no_merge and trusting_free graded once as a batch (2 workers)."""
    root = tmp_path_factory.mktemp("grade")
    subs = root / "subs"
    subs.mkdir()
    for name in ("correct", "no_merge", "trusting_free"):
        (subs / f"{name}.py").write_bytes((SUBS / f"{name}.py").read_bytes())
    out = root / "out"
    jobs = batch.discover([subs])
    grades = batch.run_batch(TINY, jobs, out, workers=2)
    return out, grades


def test_each_bug_costs_only_its_own_item(graded) -> None:  # noqa: ANN001
    _, grades = graded
    by = {g.student: _scores(g) for g in grades}
    assert by["correct"] == {"coalescing": 4, "shape": 2, "robustness": 2,
                             "no crashes or hangs": 1, "refinement": 1}
    # no_merge: coalescing, and refinement (alloc returns none while an aligned
    # run of free pages exists, against the contract); trusting_free accepts
    # double frees: robustness only, and its free lists are still tested (and
    # right) for the other items
    assert by["no_merge"] == {**by["correct"], "coalescing": 0, "refinement": 0}
    assert by["trusting_free"] == {**by["correct"], "robustness": 0}
    tf = next(g for g in grades if g.student == "trusting_free")
    shape = next(i for i in tf.items if i.name == "shape")
    # bad frees were answered as the contract answers them (never sent), not ignored
    assert shape.screened > 0 and shape.traces >= 5


def test_batch_outputs(graded) -> None:  # noqa: ANN001
    out, grades = graded
    results = json.loads((out / "no_merge" / "results.json").read_text())
    assert results["score"] == 5 and len(results["tests"]) == 5
    lost = next(t for t in results["tests"] if t["name"] == "coalescing")
    assert set(lost) >= {"name", "score", "max_score", "status", "output", "visibility"}
    assert lost["status"] == "failed" and "coalesced" in lost["output"]
    assert "mmcheck replay coalescing.json --impl no_merge.py" in lost["output"]
    trace = json.loads((out / "no_merge" / "coalescing.json").read_text())
    assert trace["property"] == "coalesced" and trace["trace"]["steps"]
    page = (out / "no_merge" / "feedback.html").read_text()
    assert "<script" not in page and "http" not in page.split("</head>")[1]
    assert "state" in (out / "no_merge" / "feedback.md").read_text()  # the picture of memory
    csv_lines = (out / "scores.csv").read_text().splitlines()
    assert csv_lines[0].startswith("student,score,max_score,error,coalescing")
    rows = json.loads((out / "scores.json").read_text())
    assert [r["student"] for r in rows] == ["correct", "no_merge", "trusting_free"]
    assert feedback.prairielearn(grades[1])["score"] == pytest.approx(0.5)


def test_a_rerun_grades_nothing_again(graded) -> None:  # noqa: ANN001
    out, grades = graded
    before = (out / "correct" / "grade.json").stat().st_mtime_ns
    again = batch.run_batch(TINY, batch.discover([out.parent / "subs"]), out, workers=1)
    assert [g.to_json() for g in again] == [g.to_json() for g in grades]
    assert (out / "correct" / "grade.json").stat().st_mtime_ns == before


def test_same_score_and_feedback_under_load(graded) -> None:  # noqa: ANN001
    """Effort is work (traces), not time: a CPU hog changes nothing."""
    _, grades = graded
    first = next(g for g in grades if g.student == "no_merge")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        again = grade(load(TINY), SUBS / "no_merge.py", "no_merge")
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    a, b = first.to_json(), again.to_json()
    for g in (a, b):  # where the files were written is not part of the verdict
        g.pop("submission")
        for item in g["items"]:
            item["replay"] = item["trace_file"] = ""
    assert a == b


def test_a_submission_that_does_not_load_scores_zero_everywhere(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nsys.exit(0)\n")
    g = grade(load(TINY), bad)
    assert g.score == 0 and "did not load" in g.error
    assert all(i.status == "not established" for i in g.items)


@pytest.mark.parametrize(("text", "message"), [
    ("[assignment]\nsubsystem = 'buddy'\nspecs = ['std:buddy.mm']\n"
     "[[item]]\nname = 'a'\nproperties = ['coalesced']\npoints = 1\n",
     "no item grades the problem kind(s) crash, timeout, protocol, refinement"),
    ("[assignment]\nsubsystem = 'buddy'\nspecs = ['std:buddy.mm']\n"
     "[[item]]\nname = 'a'\nproblems = ['crash', 'timeout', 'protocol', 'refinement']\n"
     "points = 'ten'\n", "points must be float, not str"),
    ("[assignment]\nsubsystem = 'buddy'\nspecs = ['std:buddy.mm']\n[effort]\ntrace = 3\n",
     "[effort] has no field 'trace'"),
    ("[assignment\n", "not valid TOML"),
    ("[assignment]\nsubsystem = 'buddy'\nspecs = ['nope.mm']\n", "nope.mm does not exist"),
])
def test_assignment_errors_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "a.toml"
    f.write_text(text)
    with pytest.raises(AssignmentError, match=None) as err:
        load(f)
    assert message in str(err.value)


def test_cli_unknown_property_is_a_usage_error(mmcheck, tmp_path: Path) -> None:  # noqa: ANN001
    f = tmp_path / "a.toml"
    f.write_text("[assignment]\nsubsystem = 'buddy'\nspecs = ['std:buddy.mm']\n"
                 "[[item]]\nname = 'x'\nproperties = ['coalesed']\npoints = 1\n"
                 "[[item]]\nname = 'p'\nproblems = ['crash', 'timeout', 'protocol', "
                 "'refinement']\npoints = 1\n")
    result = mmcheck("grade", str(f), str(SUBS / "correct.py"), "--out", str(tmp_path / "o"))
    assert result.code == 2 and "names coalesed, which no spec" in result.err


def test_output_folder_that_is_a_symlink_is_refused(mmcheck, tmp_path: Path) -> None:  # noqa: ANN001
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "out").symlink_to(target)
    result = mmcheck("grade", str(TINY), str(SUBS / "correct.py"), "--out",
                     str(tmp_path / "out"))
    assert result.code == 2 and "symlink" in result.err
    assert list(target.iterdir()) == []


def test_writes_replace_a_planted_symlink_instead_of_following_it(tmp_path: Path) -> None:
    from mmcheck.checker.grade.store import write_atomic

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "grade.json").symlink_to(victim)
    write_atomic(tmp_path / "out", "grade.json", {"score": 1})
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "out" / "grade.json").is_symlink()


def test_running_out_of_wall_clock_is_incomplete_not_a_lower_score(tmp_path: Path) -> None:
    import dataclasses

    a = load(TINY)
    rushed = dataclasses.replace(a, limits=dataclasses.replace(a.limits,
                                                               submission_seconds=0.0))
    g = grade(rushed, SUBS / "correct.py")
    assert g.error.startswith("incomplete") and g.score == 0
    assert all(i.status == "not established" for i in g.items)


@pytest.mark.parametrize(("name", "total"), [("upper_half", 10), ("no_merge", 5)])
def test_one_shared_search_gives_what_one_search_per_item_gives(
        monkeypatch: pytest.MonkeyPatch, name: str, total: int) -> None:
    """The items the shared search decides (score._all_at_once) get the verdict,
    counts and words their own searches give; a buggy submission too. An item it
    finds lost gets the same score and status on the same property or kind of
    problem (its trace is the shared search's, minimised, not its own search's
    shrunk one, and its counts are the shared search's)."""
    from mmcheck.checker.grade import score

    fast = grade(load(TINY), SUBS / f"{name}.py").to_json()
    monkeypatch.setattr(score, "_all_at_once", lambda *a: None)
    slow = grade(load(TINY), SUBS / f"{name}.py").to_json()
    for g in (fast, slow):  # refused calls: only an item's own search screens them
        for item in g["items"]:
            item.pop("screened")
            if item["status"] != "passed":
                item.update(summary=item["summary"].split(":")[0], details=[], traces=0, cut=0,
                            dropped=0, replay="", trace_file="")
    assert fast == slow and fast["score"] == total


def test_a_failed_restart_leaves_the_grade_incomplete(monkeypatch: pytest.MonkeyPatch) -> None:
    """A submission that loaded once and then cannot be restarted (a load timeout
    on an overloaded machine) is not the student's fault: incomplete, redone. The
    items the shared search decided keep their verdict; those that needed a search
    of their own (a fresh process) are incomplete, never failed."""
    from mmcheck.checker.grade.score import INCOMPLETE
    from mmcheck.checker.sandbox import LoadError, Submission

    def refuse(self: Submission) -> None:
        raise LoadError("timeout", "loading took longer than 30 s")

    monkeypatch.setattr(Submission, "restart", refuse)
    g = grade(load(TINY), SUBS / "no_merge.py")
    assert g.error.startswith("incomplete")
    by = {i.name: i for i in g.items}
    assert by["coalescing"].status == "not established" and \
        by["coalescing"].summary == INCOMPLETE  # no_merge fails it when it can be restarted
    assert all(i.status == "passed" or i.summary == INCOMPLETE for i in g.items)


def test_a_problem_in_a_partial_robustness_item_voids_it(tmp_path: Path) -> None:
    f = tmp_path / "a.toml"
    f.write_text(TINY.read_text().replace(
        'properties = ["free_returns_what_alloc_took"]',
        'properties = ["free_returns_what_alloc_took", "alloc_checks_order"]\npartial = true'))
    g = grade(load(f), SUBS / "trusting_free.py")
    robust = next(i for i in g.items if i.name == "robustness")
    assert robust.score == 0 and "refinement" in robust.summary


def test_a_c_submission_is_graded_with_its_compiler_warnings_in_the_feedback(
        tmp_path: Path) -> None:
    src = tmp_path / "buddy.c"
    src.write_text((HERE.parents[1] / "examples" / "buddy" / "correct" / "buddy.c").read_text()
                   + "\nint warn_me(int x) { if (x = 3) return 1; return 0; }\n")
    g = grade(load(TINY), src)
    assert g.score == 10 and not g.error
    assert f"{src}:" in g.compiler and "-Wparentheses" in g.compiler
    page = feedback.markdown(g)
    assert "## What the C compiler said" in page and "-Wparentheses" in page
    assert "What the C compiler said" in feedback.html_page(g)
