"""Shared test helpers: run the `mmcheck` command line in-process.

The `mmcheck` fixture is a function: `mmcheck("check", "--impl", PATH, ...)` calls
`mmcheck.checker.cli.main` the way the console script does, from the repository
root (so paths in reports read `spec/lib/buddy.mm` and `examples/...` whatever
directory pytest was started from), and returns a `CliResult` with the exit
code and what it printed. It is session-scoped and needs no capsys, so a
module-scoped fixture can run one slow check once and test several things about it.
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
