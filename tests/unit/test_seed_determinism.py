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

import mmcheck.checker.hypothesis_engine  # noqa: F401 - turns the pool off
import pytest

# Integers a buddy setup could use as memory sizes if they were in the pool, and that
# no module of mmcheck's own is likely to hold already (the pool is a set).
NOISE = tuple(range(701, 800, 2)) + tuple(range(3001, 3400, 2))


def test_hypothesis_collects_no_constants_from_local_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the engine loaded, the pool stays empty however many local modules with
    integer literals are imported. (A search run before and after such an import
    is no test: a memory size is drawn once per trace, so 25 traces rarely meet the
    pool, and that version passed with the pool on.)"""
    from hypothesis.internal.conjecture import providers

    module = tmp_path / "mm_more_local_constants.py"
    module.write_text(f"MORE = {NOISE!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("mm_more_local_constants")
    assert not providers._get_local_constants().integers
