"""checker/forked.py: tasks in fresh forks, and the Z3 induction step that uses it
gives the same answers however many run at once."""

from __future__ import annotations

import os
import signal

import pytest
from mmcheck.checker.forked import Failed, run_forked
from mmcheck.checker.options import Options
from mmcheck.checker.subsystems import buddy as driver
from mmcheck.checker.z3_engine import bounded_check, fresh_context
from mmcheck.spec.loader import load


def _boom() -> int:
    raise ValueError("no such block")


def _die() -> int:
    os.kill(os.getpid(), signal.SIGKILL)
    return 0


def test_results_come_back_in_order_from_any_number_of_children() -> None:
    tasks = [lambda i=i: (i, os.getpid()) for i in range(7)]
    for jobs in (1, 3):
        got = run_forked(tasks, jobs=jobs)
        assert [i for i, _ in got] == list(range(7))
        assert os.getpid() not in {pid for _, pid in got}  # each ran in a child


def test_a_child_that_raises_or_dies_gives_failed_not_a_result() -> None:
    got = run_forked([_boom, _die, lambda: "x" * 200_000], jobs=2)
    assert got[0] == Failed("ValueError: no such block")
    assert isinstance(got[1], Failed) and "signal 9" in got[1].error
    assert got[2] == "x" * 200_000  # larger than a pipe's buffer


def test_a_stop_leaves_unfinished_tasks_without_an_answer() -> None:
    got = run_forked([lambda: 1, lambda: 2], jobs=1, stop=lambda: True)
    assert got == [None, None]


@pytest.mark.parametrize("pages", [6, 12])
def test_induction_answers_do_not_depend_on_the_number_of_children(
        pages: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every obligation runs in a fork of the same parent: the statuses, lemma lists
    and counterexamples to induction are the same with 1 or 2 at once."""
    checked = [load("spec/lib/buddy.mm")]
    said = []
    for jobs in ("1", "2"):
        monkeypatch.setenv("MMCHECK_JOBS", jobs)
        fresh_context()  # as every `mmcheck check` starts: term ids steer the solver
        system, setup, universe, bound = driver.symbolic_system(pages, "no_coalesce")
        result = bounded_check(checked, system, setup, Options(depth=2, budget=120.0),
                               universe, bound)
        said.append((result.verdict, result.status, result.induction_note))
    assert said[0] == said[1]
    assert "coalesced" in said[0][1] and said[0][1]["coalesced"].startswith("violated")


def test_an_obligation_that_raises_is_an_error_not_an_unknown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug of mmcheck's own in a forked obligation stops the run as an engine
    error (the CLI says "a bug in mmcheck", exit 2); it is never read as a proof,
    nor as the solver giving up."""
    import mmcheck.checker.z3_engine as engine

    def broken(self: object, name: str, lemmas: object) -> None:
        raise KeyError(name)

    monkeypatch.setattr(engine._Obligation, "ask", broken)
    system, setup, universe, bound = driver.symbolic_system(4)
    with pytest.raises(RuntimeError, match="KeyError"):
        bounded_check([load("spec/lib/buddy.mm")], system, setup,
                      Options(depth=1, budget=60.0), universe, bound)


def test_tasks_start_in_the_order_asked_and_answer_in_theirs() -> None:
    import time as clock
    got = run_forked([lambda i=i: (i, clock.monotonic()) for i in range(4)], jobs=1,
                     start=[2, 0, 3, 1])
    assert [i for i, _ in got] == [0, 1, 2, 3]
    started = sorted(range(4), key=lambda i: got[i][1])
    assert started == [2, 0, 3, 1]
    with pytest.raises(ValueError):
        run_forked([lambda: 1, lambda: 2], start=[0, 0])
