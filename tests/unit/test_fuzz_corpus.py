"""A small, fixed sample of bench/fuzz.py: generated specs and command lines.

The full run (`python -m bench fuzz`, 10,000 specs and 1,000 command lines) is a
benchmark, with its figures in docs/benchmarks.md; this runs the same fuzzers on
a deterministic few dozen cases, so that a change that makes mmcheck print a
traceback, hang, or leave an error unlocated fails here first.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `bench` from the checkout

from bench import fuzz  # noqa: E402

SEED = 6


@pytest.fixture(scope="module")
def states() -> fuzz.States:
    return fuzz.States()


def test_every_terminal_of_the_grammar_can_be_generated() -> None:
    gen = fuzz.GrammarGen(random.Random(SEED))
    written = " ".join(gen.derive("_item", 6) for _ in range(100))
    assert {"forall", "let", "..", "->", "if"} <= set(written.split())


def test_generated_and_mutated_specs_end_in_a_result_or_a_located_error(states) -> None:
    summary = fuzz.Summary(SEED)
    for i, case in enumerate(fuzz.spec_cases(SEED, 80)):
        summary.record(case, fuzz.run_spec_case(case, states, limit=60, z3=i % 40 == 1))
    assert summary.failures == []
    # The sample exercises every generator and both outcomes.
    assert {k.split("/")[1] for k in summary.cases} == {"grammar", "mutation", "deep"}
    assert summary.statuses["spec/ok"] >= 5 and summary.statuses["spec/error"] >= 50


def test_a_crash_or_a_hang_is_caught_and_reported(states, monkeypatch) -> None:
    """The fuzzer itself: an unlocated error is a crash, a loop past the limit a hang."""
    case = fuzz.Case("spec", "test", "spec buddy\ninvariant x: true\n")

    def unlocated(text: str, states: fuzz.States, z3: bool) -> int:
        raise AssertionError("error outside the file")

    monkeypatch.setattr(fuzz, "check_spec", unlocated)
    assert fuzz.run_spec_case(case, states, limit=5, z3=False).status == "crash"

    def loop(text: str, states: fuzz.States, z3: bool) -> int:
        while True:
            pass

    monkeypatch.setattr(fuzz, "check_spec", loop)
    assert fuzz.run_spec_case(case, states, limit=0.2, z3=False).status == "hang"  # CPU seconds


def test_command_lines_exit_0_to_3_without_a_traceback(tmp_path: Path) -> None:
    gen = fuzz.ArgvGen(random.Random(SEED), tmp_path)
    cases = [fuzz.Case("argv", "argv", gen.argv()) for _ in range(8)]
    failures = [
        (case.payload, out.detail)
        for case in cases
        if (out := fuzz.run_argv_case(case, 120, fuzz.REPO)).status in ("crash", "hang")
    ]
    assert failures == []


@pytest.mark.parametrize(
    ("text", "code", "why"),
    [
        ("Traceback (most recent call last):\n  ...", 2, "traceback"),
        ("mmcheck: internal error: this is a bug", 2, "traceback"),
        ("", 130, "exit code 130"),
        ("error: x\n  --> spec/lib/buddy.mm:9999:1\n", 2, "outside the file"),
    ],
)
def test_the_argv_invariant_catches(text: str, code: int, why: str) -> None:
    assert why in (fuzz.check_argv([], text, code) or "")
