"""Progress of a run, for a person waiting on it: events from the engines, displays here.

The engines know nothing of displays: they call a `ProgressSink` (any callable
taking a `ProgressEvent`): Hypothesis as traces start (at most twice a second)
and after each chunk of traces; Z3 as it clears each depth of its bounded run
(`detail`); every engine once more when it is done. The CLI picks the display:

- `bar` (stdout is a terminal): a rich progress display on stderr, one line per
  engine and target: traces and steps so far, properties exercised, violations,
  time left; it appears only once a run has lasted a second, and is removed
  when the run ends;
- `lines` (stdout is a file or a pipe): a plain line on stderr at most every
  few seconds per engine, for CI logs;
- nothing under `--format json`, `--no-timing` or `--progress none`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

SHOW_AFTER_S = 1.0
LINE_EVERY_S = 5.0


@dataclass(frozen=True)
class ProgressEvent:
    """Where one engine's search of one target stands."""

    engine: str
    target: str
    subsystem: str
    traces: int
    steps: int
    exercised: int  # properties with at least one non-vacuous evaluation
    properties: int
    violations: int
    elapsed: float
    budget: float  # seconds the engine may run; 0 when unknown
    done: bool = False
    detail: str = ""  # instead of the trace counts: e.g. Z3's "depth 3 cleared"

    def text(self) -> str:
        left = max(self.budget - self.elapsed, 0.0)
        when = "done" if self.done else (f"{left:.0f} s left" if self.budget else "")
        if self.detail:
            return f"{self.engine} on {self.subsystem} {self.target}: {self.detail}; {when}" \
                .rstrip("; ")
        return (f"{self.engine} on {self.subsystem} {self.target}: {self.traces:,} traces, "
                f"{self.steps:,} steps, {self.exercised}/{self.properties} properties "
                f"exercised, {self.violations} violation(s); {when}").rstrip("; ")


ProgressSink = Callable[[ProgressEvent], None]


class LineProgress:
    """Plain lines on a stream (stderr), at most one per engine every LINE_EVERY_S."""

    def __init__(self, stream: TextIO | None = None, every: float = LINE_EVERY_S) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.every = every
        self.last: dict[tuple[str, str], float] = {}  # when each engine's last line went out

    def __call__(self, e: ProgressEvent) -> None:
        key = (e.engine, e.target)
        if e.elapsed < SHOW_AFTER_S:
            return
        last = self.last.get(key)
        if not e.done and last is not None and e.elapsed - last < self.every:
            return
        self.last[key] = e.elapsed
        self.stream.write(f"mmcheck: {e.text()}\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class BarProgress:
    """A rich live display on stderr; started at the first event after SHOW_AFTER_S."""

    def __init__(self) -> None:
        self.progress: Any = None
        self.tasks: dict[tuple[str, str], Any] = {}

    def __call__(self, e: ProgressEvent) -> None:
        if self.progress is None:
            if e.elapsed < SHOW_AFTER_S or e.done:
                return
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn

            self.progress = Progress(
                TextColumn("{task.description}"), BarColumn(),
                TextColumn("{task.fields[status]}"),
                console=Console(stderr=True), transient=True,
            )
            self.progress.start()
        key = (e.engine, e.target)
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(
                f"{e.engine} {e.subsystem}", total=e.budget or None, status="")
        status = (f"{e.traces:,} traces, {e.steps:,} steps, {e.exercised}/{e.properties} "
                  f"exercised, {e.violations} violation(s), "
                  f"{max(e.budget - e.elapsed, 0):.0f} s left")
        self.progress.update(self.tasks[key], completed=min(e.elapsed, e.budget or e.elapsed),
                             status=status)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None


def display(mode: str, fmt: str, timing: bool) -> LineProgress | BarProgress | None:
    """The display for `--progress MODE` (auto: bar on a terminal, lines otherwise)."""
    if mode == "none" or fmt == "json" or not timing:
        return None
    if mode == "auto":
        mode = "bar" if sys.stdout.isatty() and sys.stderr.isatty() else "lines"
    return BarProgress() if mode == "bar" else LineProgress()
