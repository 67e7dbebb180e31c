"""Same seed and work, same traces: whatever else the process has imported.

Hypothesis draws, now and then, an integer found in the source of any module it takes
for the user's own (anything imported from outside site-packages). Left on, the traces
of a seed would change with where mmcheck is installed and with which subsystems'
modules were loaded first, and a `reproduce:` line would not reproduce elsewhere.
checker/hypothesis_engine.py turns that pool off; this pins it.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from mmcheck.checker import subsystems
from mmcheck.checker.hypothesis_engine import run_hypothesis
from mmcheck.checker.options import Options

# Integers a buddy setup could use as memory sizes if they were in the pool, and that
# no module of mmcheck's own is likely to hold already (the pool is a set).
NOISE = tuple(range(701, 800, 2)) + tuple(range(3001, 3400, 2))


def _search() -> tuple[object, ...]:
    driver = subsystems.driver("buddy")
    assert driver is not None
    result = run_hypothesis([], driver, driver.ReferenceSystem, Options(seed=3, traces=25))
    stats = result.stats
    return stats.traces, stats.steps, dict(stats.ops), dict(stats.coverage)


def test_traces_do_not_depend_on_the_modules_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _search()
    module = tmp_path / "mm_local_constants.py"
    module.write_text(f"NOISE = {NOISE!r}\n")  # literals: what Hypothesis would collect
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("mm_local_constants")
    assert _search() == before


def test_hypothesis_collects_no_constants_from_local_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mechanism itself: with the engine loaded, the pool stays empty however many
    local modules with integer literals are imported (a memory size is drawn once per
    trace, so the search above alone would rarely meet the pool)."""
    from hypothesis.internal.conjecture import providers

    module = tmp_path / "mm_more_local_constants.py"
    module.write_text(f"MORE = {NOISE!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("mm_more_local_constants")
    assert not providers._get_local_constants().integers
