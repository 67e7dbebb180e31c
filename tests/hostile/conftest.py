"""The hostile-submission suite says, at the end of the run, which isolation
layers were in force on this machine: a layer that was not means the tests
that need it were skipped, and the summary says so loudly."""

from __future__ import annotations

from typing import Any

import pytest

RECORD = pytest.StashKey[dict[str, Any]]()


def _record(config: pytest.Config) -> dict[str, Any]:
    if RECORD not in config.stash:
        config.stash[RECORD] = {"layers": None, "skipped": []}
    return config.stash[RECORD]


@pytest.fixture
def isolation(request: pytest.FixtureRequest) -> dict[str, Any]:
    """{"layers": the layers of the first sandbox opened, "skipped": [why, ...]}"""
    return _record(request.config)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    record = _record(config)
    if record["layers"] is None:
        return
    tr = terminalreporter
    tr.section("sandbox isolation layers")
    for layer in record["layers"]:
        if layer.startswith("-"):
            tr.write_line(f"  NOT IN FORCE: {layer[1:]}", red=True, bold=True)
        else:
            tr.write_line(f"  in force: {layer}")
    for line in record["skipped"]:
        tr.write_line(f"  SKIPPED (layer missing): {line}", yellow=True, bold=True)
