"""The command line: exit codes, error messages, the JSON report, the sandbox boundary.

Exit codes (checker/outcome.py; tests/unit/test_outcomes.py pins when each is
given): 0 every property held, 1 a violation was found, 2 a usage, spec or
submission error, 3 inconclusive. Every error a user can cause (a bad spec, a bad submission, a
bad option) is one clear message on stderr, never a Python traceback. Most
tests call `mmcheck.checker.cli.main` in-process (the `mmcheck` fixture); a few
run the installed console script to prove the entry point works.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mmcheck.checker.sandbox.client import Submission

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "submissions"
SCRIPT = Path(sys.executable).parent / "mmcheck"
DOUBLE_ALLOC = "examples/buddy/buggy/double_alloc.py"  # stops at its first refinement in ~1 s

GOOD_SPEC = ('spec buddy "tiny"\n\ninvariant small "orders are small":\n'
             '    forall b in free: b.order < max_order\n')
SYNTAX_ERROR = 'spec buddy "x"\n\ninvariant a "d":\n    forall b in free: b.order <\n'
TYPE_ERROR = 'spec buddy "x"\n\ninvariant a "d":\n    forall b in fre: b.order < 3\n'

Run = Callable[..., Any]


def assert_clean_error(result: Any, *needles: str) -> None:
    """Exit 2, one message on stderr naming what went wrong, no traceback, nothing on stdout."""
    assert result.code == 2, (result.code, result.out, result.err)
    assert "Traceback" not in result.err and "Traceback" not in result.out
    assert result.out == ""
    for needle in needles:
        assert needle in result.err, f"{needle!r} not in {result.err!r}"


# ---------------------------------------------------------------- no arguments, specs


def test_check_with_small_budget_flags_holds(mmcheck: Run) -> None:
    """Every library spec whose subsystem has an engine driver, one report each. Five
    traces leave a few slab/kmalloc properties VACUOUS: allowed here, the point is
    that nothing is violated and every subsystem reports."""
    result = mmcheck("check", "--traces", "5", "--allow-vacuous", "--save", "",
                     "--format", "json")
    assert result.code == 0, result.err
    data = result.json()
    reports = {r["subsystem"]: r for r in data["reports"]}
    assert len(reports) == len(data["reports"]) and "buddy" in reports
    for name, report in reports.items():
        assert report["target"] == "the reference model" and report["counterexamples"] == []
        assert report["specs"] == [f"spec/lib/{name}.mm"]
        assert report["exit_code"] == 0
    props = {p["property"] for p in reports["buddy"]["properties"]}
    assert {"no_overlap", "coalesced"} <= props


def test_specs_lists_the_library(mmcheck: Run) -> None:
    result = mmcheck("specs")
    assert result.code == 0
    assert "buddy.mm" in result.out and "coalesced" in result.out


@pytest.mark.parametrize("text,where,message", [
    (SYNTAX_ERROR, ":4:32", "syntax error"),
    (TYPE_ERROR, ":4:17", "unknown name 'fre'"),
])
def test_a_bad_spec_is_reported_with_its_caret(
        mmcheck: Run, tmp_path: Path, text: str, where: str, message: str) -> None:
    spec = tmp_path / "bad.mm"
    spec.write_text(text)
    result = mmcheck("check", str(spec), "--traces", "5", "--save", "")
    assert_clean_error(result, f"{spec}{where}", message, "hint:")
    assert re.search(r"^\s*\|\s*\^+\s*$", result.err, re.MULTILINE), result.err  # the caret line


def test_a_missing_spec_file(mmcheck: Run, tmp_path: Path) -> None:
    missing = tmp_path / "nope.mm"
    result = mmcheck("check", str(missing), "--traces", "5", "--save", "")
    assert_clean_error(result, str(missing), "cannot read the spec file")


def test_a_named_spec_is_checked_instead_of_the_library(mmcheck: Run, tmp_path: Path) -> None:
    spec = tmp_path / "tiny.mm"
    spec.write_text(GOOD_SPEC)
    result = mmcheck("check", str(spec), "--traces", "5", "--save", "", "--format", "json")
    assert result.code == 0, result.err
    (report,) = result.json()["reports"]
    assert report["specs"] == [str(spec)]
    assert [p["property"] for p in report["properties"]] == ["small"]


# ---------------------------------------------------------------- options


@pytest.mark.parametrize("args,needle", [
    (["--budget", "0"], "--budget must be positive"),
    (["--budget", "-3"], "--budget must be positive"),
    (["--depth", "0"], "--depth must be at least 1"),
])
def test_bad_option_values(mmcheck: Run, args: list[str], needle: str) -> None:
    assert_clean_error(mmcheck("check", "--save", "", *args), needle)


def test_an_unknown_engine_is_a_usage_error(mmcheck: Run) -> None:
    result = mmcheck("check", "--engine", "coq")
    assert result.code == 2 and "invalid choice" in result.err and "Traceback" not in result.err


# ---------------------------------------------------------------- --impl errors


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_impl_missing_path(mmcheck: Run, tmp_path: Path) -> None:
    missing = tmp_path / "nothing.py"
    assert_clean_error(mmcheck("check", "--impl", str(missing), "--save", ""),
                       str(missing), "no such file")


def test_impl_with_a_syntax_error(mmcheck: Run, tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.py", "class BuddyAllocator:\n    def alloc(self, order)\n")
    assert_clean_error(mmcheck("check", "--impl", str(path), "--save", ""),
                       "did not load", "SyntaxError", "line 2")


def test_impl_that_raises_at_import(mmcheck: Run) -> None:
    path = FIXTURES / "import_error.py"
    assert_clean_error(mmcheck("check", "--impl", str(path), "--save", ""),
                       "did not load", "RuntimeError: broken at import")


@pytest.mark.parametrize("fixture,needle", [
    ("import_exit.py", "exited with status 5"),
    ("import_sysexit.py", "SystemExit: no thanks"),
])
def test_impl_that_leaves_at_import(mmcheck: Run, fixture: str, needle: str) -> None:
    assert_clean_error(mmcheck("check", "--impl", str(FIXTURES / fixture), "--save", ""),
                       "did not load", needle)


def test_impl_without_a_contract_class(mmcheck: Run, tmp_path: Path) -> None:
    path = _write(tmp_path, "other.py", "class Something:\n    pass\n")
    assert_clean_error(mmcheck("check", "--impl", str(path), "--save", ""),
                       "none of the contract classes", "BuddyAllocator")


def test_impl_that_hangs_at_import(mmcheck: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """The load timeout (10 s by default) ends it; cut to 2 s here."""
    real = Submission.open.__func__  # type: ignore[attr-defined]

    def quick(cls: type, path: Any, **kwargs: Any) -> Any:
        return real(cls, path, **{**kwargs, "load_timeout": 2.0})

    monkeypatch.setattr(Submission, "open", classmethod(quick))
    assert_clean_error(mmcheck("check", "--impl", str(FIXTURES / "import_hang.py"), "--save", ""),
                       "did not load", "longer than 2 s")


@pytest.mark.parametrize("fixture,detail", [
    ("buddy_segfault_midrun.py", "SIGSEGV"),
    ("buddy_exit_midrun.py", "exited with status 3"),
])
def test_a_submission_that_dies_mid_run_is_a_violation(
        mmcheck: Run, fixture: str, detail: str) -> None:
    result = mmcheck("check", "--impl", str(FIXTURES / fixture), "--traces", "25", "--save", "",
                     "--format", "json")
    assert result.code == 1, result.err
    (report,) = result.json()["reports"]
    crashes = [c for c in report["counterexamples"] if c["kind"] == "crash"]
    assert crashes, report["counterexamples"]
    c = crashes[0]
    assert c["confirmed"] and detail in c["description"]
    steps = c["trace"]["steps"]
    assert c["step"] == len(steps) - 1 and steps[-1]["raised"] == "crash"
    assert [s["op"] for s in steps].count("alloc") == 3  # it dies in its third alloc()
    (run,) = report["engines"]
    assert "stopped at the first crash problem" in run["details"]


# ---------------------------------------------------------------- the sandbox boundary


def test_the_checker_never_imports_the_submission(mmcheck: Run) -> None:
    path = FIXTURES / "buddy_bitmap.py"
    before = set(sys.modules)
    result = mmcheck("check", "--impl", str(path), "--traces", "5", "--save", "")
    assert result.code == 0, result.out + result.err
    assert "MMCHECK_BUDDY_BITMAP_IMPORTED" not in os.environ
    loaded = [name for name, mod in sys.modules.items()
              if Path(getattr(mod, "__file__", None) or "/").resolve() == path.resolve()]
    assert loaded == []
    assert not any("buddy_bitmap" in name for name in set(sys.modules) - before)


# ---------------------------------------------------------------- the JSON report


def _documented_fields() -> dict[str, set[str]]:
    """docs/json-format.md: section key -> the field names in its table."""
    fields: dict[str, set[str]] = {}
    current = None
    for line in (ROOT / "docs" / "json-format.md").read_text().splitlines():
        heading = re.match(r"^## .*\(`(\w+)`\)$", line)
        if heading:
            current = fields.setdefault(heading.group(1), set())
        row = re.match(r"^\| `(\w+)` \|", line)
        if row and current is not None:
            current.add(row.group(1))
    return fields


@pytest.fixture(scope="module")
def buggy_json(mmcheck: Run, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    save = tmp_path_factory.mktemp("saved")
    result = mmcheck("check", "--impl", DOUBLE_ALLOC, "--traces", "50", "--save", str(save),
                     "--format", "json")
    return result, save


def test_json_report_has_exactly_the_documented_fields(buggy_json: tuple[Any, Path]) -> None:
    result, save = buggy_json
    assert result.code == 1
    data = result.json()  # valid JSON, nothing else on stdout
    doc = _documented_fields()
    assert set(doc) == {"top", "report", "engine", "counterexample", "trace", "step",
                        "property_row", "saved", "coverage", "step_output"}
    assert set(data) == doc["top"]
    (report,) = data["reports"]
    assert set(report) == doc["report"]
    assert set(report["coverage"]) == doc["coverage"]
    assert all(set(e) == doc["engine"] for e in report["engines"])
    assert report["counterexamples"]
    for c in report["counterexamples"]:
        assert set(c) == doc["counterexample"]
        assert set(c["trace"]) == doc["trace"]
        assert all(set(s) == doc["step"] for s in c["trace"]["steps"])
    assert report["properties"] and all(set(p) == doc["property_row"] for p in report["properties"])
    saved = sorted(p for p in save.rglob("*.json") if not p.name.endswith(".itf.json"))
    assert len(saved) == len(report["counterexamples"])
    assert all(p.with_suffix(".itf.json").exists() for p in saved)  # docs/outputs.md (ITF)
    assert all(set(json.loads(p.read_text())) == doc["saved"] for p in saved)


def test_json_report_values(buggy_json: tuple[Any, Path]) -> None:
    result, save = buggy_json
    data = result.json()
    assert data["format"] == 1 and data["exit_code"] == 1
    (report,) = data["reports"]
    assert report["target"] == DOUBLE_ALLOC and report["exit_code"] == 1
    (run,) = report["engines"]
    assert run["engine"] == "hypothesis" and run["verdict"] == "violated" and run["seed"] == 0
    assert run["traces"] > 0 and run["steps"] == sum(report["operations"].values())
    violated = {p["property"] for p in report["properties"] if p["violated"]}
    spec_cx = {c["property"] for c in report["counterexamples"]
               if c["kind"] in ("invariant", "action")}
    assert violated == spec_cx and violated
    for c in report["counterexamples"]:
        assert c["kind"] in ("crash", "timeout", "protocol", "refinement", "action", "invariant",
                             "eval-error")
        assert c["replay"].startswith(f"mmcheck replay {save}")
        assert c["replay"].endswith(f"--impl {DOUBLE_ALLOC}")


# ---------------------------------------------------------------- the console script


def _script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_console_script_convicts_a_buggy_example() -> None:
    proc = _script("check", "--impl", DOUBLE_ALLOC, "--traces", "50", "--save", "",
                   "--format", "json")
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["exit_code"] == 1


def test_console_script_reports_a_spec_error_without_traceback(tmp_path: Path) -> None:
    spec = _write(tmp_path, "bad.mm", SYNTAX_ERROR)
    proc = _script("check", str(spec))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{spec}:4:32" in proc.stderr and "^" in proc.stderr


def test_console_script_version() -> None:
    proc = _script("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("mmcheck ")
