"""Stopping a whole run from outside: Ctrl-C, SIGTERM and the wall-clock limit.

A run is bounded by WORK (traces, steps, depth, solver rlimit); `--budget`
seconds is only an outer safety limit. Both kinds of stop end up here:

- the first SIGINT or SIGTERM, or the time limit, sets `reason`; every engine
  polls `requested()` between steps (so a submission is never cut in the middle
  of a call) and the CLI skips what is left, then prints and saves what was
  found. A second SIGINT/SIGTERM raises KeyboardInterrupt at once;
- a property evaluation running when the stop comes is cut there: the signal
  handler raises `EvaluationCut` inside `evaluating()` (main thread only; other
  threads still see `requested()` turn true at the deadline).

`watch(budget)` arms all of it for one run and restores the previous handlers.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

INTERRUPTED = "interrupted"  # SIGINT or SIGTERM
OUT_OF_TIME = "budget"  # the --budget wall-clock limit
CONFIRM_GRACE = 5.0  # seconds to confirm each counterexample found before a stop (grace)


class EvaluationCut(Exception):
    """A property evaluation stopped by an interrupt or the time limit: it proved nothing."""


class _State:
    reason: str | None = None
    deadline: float = float("inf")
    depth: int = 0  # nesting of evaluating()
    signals: int = 0


_state = _State()


def requested() -> bool:
    """Whether the run must stop now (interrupt, or the time limit reached)."""
    if _state.reason is None and time.monotonic() >= _state.deadline:
        _state.reason = OUT_OF_TIME
    return _state.reason is not None


def reason() -> str | None:
    """INTERRUPTED, OUT_OF_TIME, or None while the run may go on."""
    requested()
    return _state.reason


def remaining() -> float:
    """Seconds left before the time limit (inf without one, 0 once stopped)."""
    if requested():
        return 0.0
    return max(_state.deadline - time.monotonic(), 0.0)


@contextlib.contextmanager
def evaluating() -> Iterator[None]:
    """Around one property evaluation: a stop that comes meanwhile cuts it."""
    if requested():
        raise EvaluationCut(_state.reason)
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _state.signals += 1
    if _state.signals > 1:
        raise KeyboardInterrupt  # the user insists: stop whatever runs now
    _state.reason = INTERRUPTED
    if _state.depth:
        raise EvaluationCut(INTERRUPTED)


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    if _state.reason is None:
        _state.reason = OUT_OF_TIME
    if _state.depth:
        raise EvaluationCut(_state.reason)


def _quiet_stops(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    """sys.unraisablehook that drops a stop raised inside a finaliser. The handlers
    above raise where the main thread is; when that is a generator being closed
    (a quantifier's bindings when all() stops early) or a __del__, Python cannot
    propagate it and would print it as "Exception ignored in ..." with a traceback.
    Nothing is lost: the stop is in _state.reason, and the engines see requested()
    at their next poll (the evaluation that was running ends normally)."""

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, (EvaluationCut, KeyboardInterrupt)):
            return
        previous(unraisable)

    return hook


@contextlib.contextmanager
def watch(budget: float | None) -> Iterator[None]:
    """Arm the stop machinery for one run of at most `budget` seconds (None: no limit)."""
    global _state
    saved_state = _state
    _state = _State()
    saved_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_stops(saved_hook)
    if budget is not None:
        _state.deadline = time.monotonic() + budget
    main = threading.current_thread() is threading.main_thread()
    saved: dict[int, object] = {}
    if main:
        for sig, handler in (
            (signal.SIGINT, _on_signal),
            (signal.SIGTERM, _on_signal),
            (signal.SIGALRM, _on_alarm),
        ):
            saved[sig] = signal.signal(sig, handler)
        if budget is not None:
            signal.setitimer(signal.ITIMER_REAL, max(budget, 0.001))
    try:
        yield
    finally:
        if main:
            signal.setitimer(signal.ITIMER_REAL, 0)
            for sig, handler in saved.items():
                signal.signal(sig, handler)  # type: ignore[arg-type]
        sys.unraisablehook = saved_hook
        _state = saved_state


@contextlib.contextmanager
def grace(seconds: float) -> Iterator[None]:
    """After a stop: `seconds` more to confirm what was found (a new signal ends it)."""
    was, deadline = _state.reason, _state.deadline
    if was is None:
        yield
        return
    _state.reason, _state.deadline = None, time.monotonic() + seconds
    main = threading.current_thread() is threading.main_thread()
    if main:
        signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        if main:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if _state.reason != INTERRUPTED:
            _state.reason = was
        _state.deadline = deadline
