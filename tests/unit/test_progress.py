"""Progress: the engines report through a callback, the displays decide what to show."""

from __future__ import annotations

import io
from pathlib import Path

from mmcheck.checker.cli import check_reference
from mmcheck.checker.options import Options
from mmcheck.checker.progress import BarProgress, LineProgress, ProgressEvent, display

ROOT = Path(__file__).resolve().parents[2]


def _event(elapsed: float, done: bool = False, traces: int = 3) -> ProgressEvent:
    return ProgressEvent("hypothesis", "t.py", "buddy", traces, 40, 2, 5, 0, elapsed, 10.0, done)


def test_lines_start_after_a_second_then_every_few_seconds() -> None:
    out = io.StringIO()
    lines = LineProgress(out, every=5.0)
    for t in (0.2, 0.9, 1.1, 2.0, 5.0, 6.2, 7.0):
        lines(_event(t))
    lines(_event(7.5, done=True, traces=9))
    got = out.getvalue().splitlines()
    assert len(got) == 3, got  # at 1.1, at 6.2, and the final one
    assert got[0] == ("mmcheck: hypothesis on buddy t.py: 3 traces, 40 steps, 2/5 properties "
                      "exercised, 0 violation(s); 9 s left")
    assert got[-1].startswith("mmcheck: hypothesis on buddy t.py: 9 traces") and "done" in got[-1]


def test_a_run_shorter_than_a_second_shows_nothing() -> None:
    out = io.StringIO()
    lines = LineProgress(out)
    lines(_event(0.5, done=True))
    assert out.getvalue() == ""
    bar = BarProgress()
    bar(_event(0.5))
    bar(_event(0.8, done=True))
    assert bar.progress is None  # never started


def test_which_display() -> None:
    assert display("auto", "json", True) is None  # nothing but JSON on a json run
    assert display("auto", "text", False) is None  # --no-timing: golden files
    assert display("none", "text", True) is None
    assert isinstance(display("auto", "text", True), LineProgress)  # pytest's stdout: no tty
    assert isinstance(display("bar", "html", True), BarProgress)


def test_the_engine_reports_through_the_callback(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    events: list[ProgressEvent] = []
    options = Options(traces=10, save_dir=None, progress=events.append)
    (report,) = check_reference(["spec/lib/buddy.mm"], options)
    assert events and events[-1].done and events[-1].engine == "hypothesis"
    assert [e.traces for e in events] == sorted(e.traces for e in events)
    last = events[-1]
    (run,) = report.runs
    assert (last.traces, last.steps) == (run.stats.traces, run.stats.steps)
    assert last.properties == len(report.properties)
    assert last.exercised == sum(1 for st in report.stats.properties.values() if st.live)
