"""Shared test helpers: run the `mmcheck` command line in-process.

The `mmcheck` fixture is a function: `mmcheck("check", "--impl", PATH, ...)` calls
`mmcheck.checker.cli.main` the way the console script does, from the repository
root (so paths in reports read `spec/lib/buddy.mm` and `examples/...` whatever
directory pytest was started from), and returns a `CliResult` with the exit
code and what it printed. It is session-scoped and needs no capsys, so a
module-scoped fixture can run one slow check once and test several things about it.

`make test` runs the suite on several processes (pytest-xdist, `--dist loadgroup`);
`pytest_collection_modifyitems` keeps the tests that share a module- or
session-scoped fixture in one process, so that its slow run happens once, and
hands out the files of the longest tests first.
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


# The files of the suite's longest tests and shared fixtures (`--durations`, session 6:
# 15 to 80 s each on 2 busy cores). xdist hands out work in collection order, so these
# go first: a long test started last would leave the other process idle at the end.
HEAVY_FIRST = (
    "tests/grade/test_sample_scores.py",
    "tests/unit/test_registration.py",
    "tests/quality/",
    "tests/unit/test_outcomes.py",
    "tests/unit/test_symbolic_",
    "tests/unit/test_z3_engine.py",
    "tests/unit/test_coverage.py",
    "tests/unit/test_cli.py",
    "tests/grade/",
    "tests/unit/test_bench_z3_encodings.py",
    "tests/unit/test_fuzz_corpus.py",
)


def heavy_rank(item: pytest.Item) -> int:
    """Where a test's file stands in HEAVY_FIRST (its length for any other file): the
    key of a stable sort that keeps the collection order within each rank."""
    return next((i for i, prefix in enumerate(HEAVY_FIRST) if item.nodeid.startswith(prefix)),
                len(HEAVY_FIRST))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test that shares a slow fixture with its xdist group (see shared_group),
    and put the files of the longest tests first (see HEAVY_FIRST)."""
    for item in items:
        group = shared_group(item)
        if group is not None:
            in_xdist_group(item, group, config)
    items.sort(key=heavy_rank)


def in_xdist_group(item: pytest.Item, group: str, config: pytest.Config) -> None:
    """Put `item` in xdist group `group`: its marker, and under `--dist loadgroup` the
    `@group` suffix of its node id, by which xdist sends a group to one process. xdist
    (3.8) adds that suffix to `item._nodeid`, which pytest 9.2 no longer reads (the id
    is `item._id`): without this, every test was its own unit and a module fixture ran
    once per process that drew one of its tests (test_sample_scores' 80 s twice)."""
    item.add_marker(pytest.mark.xdist_group(group))
    if not getattr(config.option, "loadgroup", False) or not hasattr(item, "_id"):
        return  # no xdist grouping asked for, or a pytest whose id xdist's suffix reaches
    suffix = f"@{group}"
    if not item.nodeid.endswith(suffix):
        item._id = type(item._id).parse(item.nodeid + suffix)


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
