"""Golden files: the exact report text (and one JSON report) for fixed runs.

Each case runs `mmcheck check --impl EXAMPLE --seed 0 --traces N --no-timing
--save ''` from the repository root and compares stdout with
`tests/golden/<case>.txt`; a difference fails with a unified diff.

Regenerate after an intended change of the report (or of the spec library,
whose line numbers the reports quote) with

    MMCHECK_UPDATE_GOLDEN=1 .venv/bin/pytest tests/golden

and read the diff (`git diff tests/golden`) before committing it.

Nothing is normalised: the budget is work (traces from a fixed seed), so every
run of a case does the same work and prints the same bytes on any machine. The
buggy examples stop at their first refinement problem; the correct one runs its
25 traces and every property's status (ok, not VACUOUS) must match.

The JSON golden is compared field by field, ignoring `elapsed_s` and
`seconds`, the fields the text leaves out with --no-timing.
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
UPDATE = os.environ.get("MMCHECK_UPDATE_GOLDEN") == "1"
FIXED = ("--seed", "0", "--save", "")

# case -> arguments after `mmcheck check`
TEXT_CASES: dict[str, tuple[str, ...]] = {
    "buddy_double_alloc": ("--impl", "examples/buddy/buggy/double_alloc.py", *FIXED),
    "buddy_lost_upper_half": ("--impl", "examples/buddy/buggy/lost_upper_half.py", *FIXED),
    "buddy_silent_double_free": ("--impl", "examples/buddy/buggy/silent_double_free.py", *FIXED),
    "buddy_first_fit": ("--impl", "examples/buddy/correct/first_fit.py", "--seed", "0",
                        "--traces", "25", "--save", ""),
}
JSON_CASE = ("buddy_double_alloc", ("--impl", "examples/buddy/buggy/double_alloc.py", *FIXED))
IGNORED_FIELDS = {"elapsed_s", "seconds"}


def compare_text(name: str, got: str) -> None:
    path = HERE / f"{name}.txt"
    if UPDATE:
        path.write_text(got)
        pytest.skip(f"wrote {path.name}")
    assert path.exists(), f"no golden file {path.name}: run with MMCHECK_UPDATE_GOLDEN=1"
    want = path.read_text()
    if got != want:
        diff = "".join(difflib.unified_diff(
            want.splitlines(keepends=True), got.splitlines(keepends=True),
            fromfile=f"tests/golden/{path.name}", tofile="mmcheck output"))
        pytest.fail(f"the report differs from {path.name} (MMCHECK_UPDATE_GOLDEN=1 to accept):\n"
                    + diff, pytrace=False)


def json_differences(want: Any, got: Any, where: str = "$") -> list[str]:
    """Every place where `got` differs from `want`, as JSON paths."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for key in sorted(set(want) | set(got), key=str):
            if key in IGNORED_FIELDS:
                continue
            if key not in got:
                out.append(f"{where}.{key}: missing")
            elif key not in want:
                out.append(f"{where}.{key}: not in the golden file")
            else:
                out.extend(json_differences(want[key], got[key], f"{where}.{key}"))
        return out
    if isinstance(want, list) and isinstance(got, list):
        out = [f"{where}: {len(got)} items, the golden file has {len(want)}"] \
            if len(want) != len(got) else []
        for i, (w, g) in enumerate(zip(want, got)):
            out.extend(json_differences(w, g, f"{where}[{i}]"))
        return out
    if want != got or type(want) is not type(got):
        return [f"{where}: {got!r}, the golden file has {want!r}"]
    return []


class _Console:
    """`mmcheck ARGS` as its own process, from the repository root. Each case gets a
    fresh interpreter: Hypothesis draws on constants of the modules already imported,
    so in-process runs after other tests could draw other traces than `mmcheck` does."""

    def __init__(self, *args: str) -> None:
        proc = subprocess.run([str(Path(sys.executable).parent / "mmcheck"), *args],
                              cwd=HERE.parents[1], capture_output=True, text=True,
                              timeout=600, check=False)
        self.code, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.mark.parametrize("name", sorted(TEXT_CASES))
def test_text_report(name: str) -> None:
    args = TEXT_CASES[name]
    result = _Console("check", *args, "--no-timing")
    assert result.err == ""
    expected_code = 0 if "/correct/" in args[1] else 1
    assert result.code == expected_code
    compare_text(name, result.out)


def test_json_report() -> None:
    name, args = JSON_CASE
    result = _Console("check", *args, "--format", "json")
    assert result.code == 1 and result.err == ""
    got = result.json()
    path = HERE / f"{name}.json"
    if UPDATE:
        path.write_text(json.dumps(got, indent=2) + "\n")
        pytest.skip(f"wrote {path.name}")
    assert path.exists(), f"no golden file {path.name}: run with MMCHECK_UPDATE_GOLDEN=1"
    differences = json_differences(json.loads(path.read_text()), got)
    assert not differences, (f"the JSON report differs from {path.name} "
                             "(MMCHECK_UPDATE_GOLDEN=1 to accept):\n  " + "\n  ".join(differences))


def test_the_comparisons_catch_a_change() -> None:
    """The checks above can fail: a changed count, field or line is reported."""
    assert json_differences({"a": [1, {"elapsed_s": 1.0, "b": 2}]},
                            {"a": [1, {"elapsed_s": 9.0, "b": 3}]}) == [
        "$.a[1].b: 3, the golden file has 2"]
    assert json_differences({"a": 1}, {"a": 1, "c": 2}) == ["$.c: not in the golden file"]
    assert json_differences({"a": 1}, {"a": True}) != []
