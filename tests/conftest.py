"""Shared test helpers: run the `mmcheck` command line in-process.

The `mmcheck` fixture is a function: `mmcheck("check", "--impl", PATH, ...)` calls
`mmcheck.checker.cli.main` the way the console script does, from the repository
root (so paths in reports read `spec/lib/buddy.mm` and `examples/...` whatever
directory pytest was started from), and returns a `CliResult` with the exit
code and what it printed. It is session-scoped and needs no capsys, so a
module-scoped fixture can run one slow check once and test several things about it.

`make test` runs the suite on several processes (pytest-xdist, `--dist loadgroup`);
`pytest_collection_modifyitems` keeps the tests that share a module- or
session-scoped fixture in one process, so that its slow run happens once.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mmcheck.checker.cli import main

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class CliResult:
    """What one `mmcheck` invocation returned and printed."""

    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        """stdout parsed as JSON (for `--format json` runs)."""
        return json.loads(self.out)


def run_mmcheck(*args: str, cwd: Path = ROOT) -> CliResult:
    """Run `mmcheck ARGS...` in this process from `cwd`; its exit code and output.

    argparse's own usage errors end in SystemExit, which is turned into the exit
    code the console script would give.
    """
    out, err = io.StringIO(), io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os.chdir(old)
    return CliResult(code, out.getvalue(), err.getvalue())


def shared_group(item: pytest.Item) -> str | None:
    """The xdist group of a test: where the widest module- or session-scoped fixture
    it uses is defined (a test module, or a sub-folder's conftest), when a tests/
    file below this one defines it; None for a test that shares nothing slow (any
    process may run it). pytest's own fixtures and the cheap `mmcheck` runner
    (this conftest, base id "tests") do not count."""
    infos = getattr(item, "_fixtureinfo", None)
    group, wide = None, 0
    for defs in (infos.name2fixturedefs.values() if infos is not None else ()):
        fixturedef = defs[-1]
        scope = {"module": 1, "package": 2, "session": 2}.get(fixturedef.scope, 0)
        if scope > wide and fixturedef.baseid.startswith("tests/"):
            group, wide = fixturedef.baseid, scope
    return group


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test that shares a slow fixture with its xdist group (see shared_group)."""
    for item in items:
        group = shared_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def mmcheck() -> Callable[..., CliResult]:
    """The in-process `mmcheck` runner (see `run_mmcheck`)."""
    return run_mmcheck


@pytest.fixture(autouse=True)
def _fresh_z3_context() -> None:
    """Each test starts with a fresh z3 context: z3's answers depend on the terms a
    process created before (their ids steer the solver), so without this a Z3 test
    could pass alone and fail after others."""
    from mmcheck.checker.z3_engine import fresh_context

    fresh_context()
