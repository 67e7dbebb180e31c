"""The pytest plugin, run as a user runs it: `pytest` in examples/ci (a separate
process, from that directory, with its [tool.mmcheck] table): one test per
property and target, the buggy target's broken property failing with mmcheck's
report, JUnit XML written, and -k, -x, -n (pytest-xdist) doing what they do."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "examples" / "ci"
BUGGY = "../vma/buggy/no_merge.py"


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=CI, capture_output=True, text=True, timeout=300)


def test_spec_files_run_as_tests_in_parallel_with_junit(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    done = _pytest("-n", "2", "--dist", "loadfile", f"--junitxml={junit}")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    expected = {f"{p}[reference]" for p in ("aligned", "no_overlap", "well_formed", "merged",
                                            "contract")}
    expected |= {f"{p}[{BUGGY}]" for p in ("well_formed", "merged", "contract")}
    assert set(cases) == expected
    failed = {n for n, c in cases.items() if c.find("failure") is not None}
    assert f"merged[{BUGGY}]" in failed
    assert not any(n.endswith("[reference]") for n in failed)
    message = cases[f"merged[{BUGGY}]"].find("failure").text
    assert "Counterexample" in message and "a.prot != b.prot is false" in message
    assert f"--impl {BUGGY}" in message  # the command that reproduces it


def test_k_selects_and_x_stops_at_the_first_failure() -> None:
    done = _pytest("-x", "-k", "no_merge")
    assert done.returncode == 1
    assert "stopping after 1 failures" in done.stdout
    assert "1 failed" in done.stdout and "[reference]" not in done.stdout.split("short test")[-1]


def test_without_a_tool_mmcheck_table_spec_files_are_not_collected(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (tmp_path / "x.mm").write_text((CI / "specs" / "buddy_layout.mm").read_text())
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "x.mm"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode in (4, 5), done.stdout  # nothing collected / not a test file
