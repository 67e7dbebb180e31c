"""The course-platform adapters of examples/assignment: Gradescope's
run_autograder (as a script, in a tree laid out as Gradescope's image has it),
the PrairieLearn grader, the starter code (scores nothing), and the batch on
Dask (a LocalCluster)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mmcheck.checker.grade import batch

HERE = Path(__file__).resolve().parent
TINY = HERE / "fixtures" / "tiny.toml"
EXAMPLE = HERE.parents[1] / "examples" / "assignment"
SUBS = EXAMPLE / "submissions"


def test_gradescope_run_autograder(tmp_path: Path) -> None:
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    shutil.copy(TINY, root / "source" / "assignment.toml")
    shutil.copy(SUBS / "no_merge.py", root / "submission" / "buddy.py")
    env = {**os.environ, "AUTOGRADER": str(root),
           "MMCHECK": str(Path(sys.executable).parent / "mmcheck")}
    subprocess.run(["bash", str(EXAMPLE / "gradescope" / "run_autograder")], env=env,
                   check=True, timeout=300)
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 5  # coalescing and refinement lost
    assert {t["name"]: t["score"] for t in results["tests"]}["coalescing"] == 0
    assert all(t["visibility"] in ("visible", "after_published") for t in results["tests"])


def test_prairielearn_grader(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("pl_grade", EXAMPLE / "prairielearn" /
                                                  "grade.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    module.HERE = tmp_path
    shutil.copy(TINY, tmp_path / "assignment.toml")
    student = tmp_path / "student"
    student.mkdir()
    shutil.copy(SUBS / "trusting_free.py", student / "buddy.py")
    assert module.main(student, tmp_path / "results" / "results.json") == 0
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    assert results["gradable"] and results["score"] == pytest.approx(0.8)


def test_the_starter_code_scores_nothing(tmp_path: Path) -> None:
    from mmcheck.checker.grade.assignment import load
    from mmcheck.checker.grade.score import grade

    g = grade(load(TINY), EXAMPLE / "starter" / "buddy.py")
    assert g.score == 0
    crash = next(i for i in g.items if i.name == "no crashes or hangs")
    assert crash.status == "failed" and "NotImplementedError" in crash.summary
    assert {i.status for i in g.items if i is not crash} == {"not established"}


def test_the_same_batch_on_dask(tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed", reason="DASK NOT INSTALLED: pip install "
                        "mmcheck[cluster] to test the cluster backend")
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("correct", "no_merge"):
        shutil.copy(SUBS / f"{name}.py", subs / f"{name}.py")
    grades = batch.run_batch(TINY, batch.discover([subs]), tmp_path / "out", workers=2,
                             backend="dask")
    assert {g.student: g.score for g in grades} == {"correct": 10, "no_merge": 5}


def test_c_submissions_are_graded_and_compile_errors_reach_the_feedback(tmp_path: Path) -> None:
    if shutil.which("cc") is None:
        pytest.skip("NO C COMPILER: C submissions cannot be graded on this machine")
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(HERE.parents[1] / "examples" / "buddy" / "correct" / "buddy.c", subs / "ok.c")
    (subs / "broken.c").write_text("int broken(void) { return 0 }\n")
    grades = batch.run_batch(TINY, batch.discover([subs]), tmp_path / "out", workers=1)
    assert {g.student: g.score for g in grades} == {"broken": 0, "ok": 10}
    page = (tmp_path / "out" / "broken" / "feedback.md").read_text()
    assert "did not compile" in page and "broken.c:1:" in page and "error" in page
