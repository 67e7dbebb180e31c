"""`mmcheck replay`: saved counterexamples run again, edited ones, broken ones.

A counterexample saved by `mmcheck check --save DIR` replays with the command
the report prints (`replay:`) and breaks the same property again (exit 1); the
same trace without its failing step runs clean (exit 0); a file that is not a
trace is a usage error (exit 2, one line, no traceback); and a trace whose
alloc results are choices no correct allocator could make, replayed on the
reference model (which follows the trace's choices), is a refinement problem.

The two buggy examples used stop at their first refinement problem (double_alloc
in its fourth chunk of 25 traces, so within the 100 asked), and the budget is
work, so their runs (and saved files) are the same every time.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SILENT = "examples/buddy/buggy/silent_double_free.py"  # one counterexample: refinement
DOUBLE = "examples/buddy/buggy/double_alloc.py"  # several counterexamples

Run = Callable[..., Any]


def _checked(mmcheck: Run, save: Path, impl: str) -> dict[str, Any]:
    result = mmcheck("check", "--impl", impl, "--seed", "0", "--traces", "100",
                     "--save", str(save), "--format", "json")
    assert result.code == 1, result.out + result.err
    (report,) = result.json()["reports"]
    assert report["counterexamples"]
    return report


@pytest.fixture(scope="module")
def silent(mmcheck: Run, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _checked(mmcheck, tmp_path_factory.mktemp("silent"), SILENT)


@pytest.fixture(scope="module")
def double(mmcheck: Run, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _checked(mmcheck, tmp_path_factory.mktemp("double"), DOUBLE)


def replay_as_printed(mmcheck: Run, cx: dict[str, Any], *extra: str) -> Any:
    """Run the `replay:` command line of a counterexample, as a user would paste it."""
    parts = shlex.split(cx["replay"])
    assert parts[:2] == ["mmcheck", "replay"], cx["replay"]
    return mmcheck(*parts[1:], *extra)


def saved_file(cx: dict[str, Any]) -> Path:
    return Path(shlex.split(cx["replay"])[2])


def write_trace(path: Path, setup: dict[str, int], steps: list[dict[str, Any]],
                prop: str | None = None) -> Path:
    trace = {"format": 1, "subsystem": "buddy", "setup": setup, "steps": steps}
    data: dict[str, Any] = {"trace": trace}
    if prop is not None:
        data["property"] = prop
    path.write_text(json.dumps(data))
    return path


# ---------------------------------------------------------------- saved counterexamples


def test_saved_file_holds_the_reported_trace(silent: dict[str, Any]) -> None:
    (cx,) = silent["counterexamples"]
    data = json.loads(saved_file(cx).read_text())
    assert data["property"] == cx["property"] == "refinement"
    assert data["trace"] == cx["trace"]


def test_saved_counterexample_replays_to_the_same_property(
        mmcheck: Run, silent: dict[str, Any]) -> None:
    (cx,) = silent["counterexamples"]
    result = replay_as_printed(mmcheck, cx, "--format", "json")
    assert result.code == 1, result.out + result.err
    (report,) = result.json()["reports"]
    assert report["target"] == SILENT
    (again,) = report["counterexamples"]
    assert again["engine"] == "replay" and again["confirmed"]
    assert (again["property"], again["kind"], again["step"]) == (cx["property"], cx["kind"],
                                                                cx["step"])
    assert [(s["op"], s["args"]) for s in again["trace"]["steps"]] == [
        (s["op"], s["args"]) for s in cx["trace"]["steps"]]
    (run,) = report["engines"]
    assert run["engine"] == "replay" and run["verdict"] == "violated"


def test_text_replay_names_the_property(mmcheck: Run, silent: dict[str, Any]) -> None:
    (cx,) = silent["counterexamples"]
    result = replay_as_printed(mmcheck, cx)
    assert result.code == 1
    assert f"the trace reproduces {cx['property']}" in result.out
    assert "reproduced" in result.out and "result: VIOLATED" in result.out


def test_first_of_several_counterexamples_replays(mmcheck: Run, double: dict[str, Any]) -> None:
    assert len(double["counterexamples"]) >= 2  # so that the test below replays a later one
    first = double["counterexamples"][0]
    result = replay_as_printed(mmcheck, first, "--format", "json")
    assert result.code == 1
    (again,) = result.json()["reports"][0]["counterexamples"]
    assert again["property"] == first["property"] and again["confirmed"]


def test_every_saved_counterexample_replays_to_its_own_property(
        mmcheck: Run, double: dict[str, Any]) -> None:
    for cx in double["counterexamples"][1:]:
        result = replay_as_printed(mmcheck, cx, "--format", "json")
        assert result.code == 1
        (again,) = result.json()["reports"][0]["counterexamples"]
        assert again["property"] == cx["property"] and again["confirmed"], (
            cx["property"], again["property"])


def test_the_reproduce_line_of_a_replay_is_a_valid_command(
        mmcheck: Run, silent: dict[str, Any]) -> None:
    (cx,) = silent["counterexamples"]
    (again,) = replay_as_printed(mmcheck, cx, "--format", "json").json()["reports"][0][
        "counterexamples"]
    parts = shlex.split(again["reproduce"])
    assert parts[0] == "mmcheck"
    if parts[1] == "check" and "--engine" in parts:
        assert parts[parts.index("--engine") + 1] in ("hypothesis", "z3", "all")


def test_without_its_failing_step_the_trace_replays_clean(
        mmcheck: Run, double: dict[str, Any], tmp_path: Path) -> None:
    # The minimised refinement counterexample of double_alloc: alloc(0), alloc(0).
    cx = next(c for c in double["counterexamples"] if c["kind"] == "refinement")
    data = json.loads(saved_file(cx).read_text())
    steps = data["trace"]["steps"]
    assert cx["step"] == len(steps) - 1 >= 1  # something is left after the cut
    data["trace"]["steps"] = steps[:cx["step"]]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    result = mmcheck("replay", str(edited), "--impl", DOUBLE, "--format", "json")
    assert result.code == 0, result.out + result.err
    (report,) = result.json()["reports"]
    assert report["counterexamples"] == []
    (run,) = report["engines"]
    assert run["verdict"] == "holds" and run["steps"] == len(steps) - 1
    assert "without a violation" in run["summary"]


def test_a_trace_replays_on_the_reference_model_too(
        mmcheck: Run, silent: dict[str, Any]) -> None:
    """Without --impl the reference model runs it: a submission's bug is not the model's.
    The submission's (wrongly accepted) free is refused by the model with ValueError,
    so the model's run diverges from the trace there: not a violation, but not a
    clean run either (the trace no longer applies): inconclusive, exit 3."""
    (cx,) = silent["counterexamples"]
    result = mmcheck("replay", str(saved_file(cx)), "--format", "json")
    assert result.code == 3, result.out + result.err
    (report,) = result.json()["reports"]
    assert report["target"] == "the reference model" and report["counterexamples"] == []
    (note,) = [n for n in report["notes"] if "no longer applies" in n]
    assert f"step {cx['step']}:" in note and "ValueError" in note, note


# ---------------------------------------------------------------- refinement on the reference


@pytest.mark.parametrize("steps,why", [
    ([{"op": "alloc", "args": [0], "result": 0, "raised": None},
      {"op": "alloc", "args": [0], "result": 0, "raised": None}], "handed out twice"),
    ([{"op": "alloc", "args": [1], "result": 1, "raised": None}], "not aligned"),
    ([{"op": "alloc", "args": [0], "result": 8, "raised": None}], "outside memory"),
])
def test_an_illegal_choice_in_a_trace_is_a_refinement_problem(
        mmcheck: Run, tmp_path: Path, steps: list[dict[str, Any]], why: str) -> None:
    trace = write_trace(tmp_path / "illegal.json", {"npages": 8, "max_order": 4}, steps)
    result = mmcheck("replay", str(trace), "--format", "json")
    assert result.code == 1, (why, result.out, result.err)
    (report,) = result.json()["reports"]
    (cx,) = report["counterexamples"]
    assert cx["kind"] == "refinement" and cx["property"] == "refinement", why
    assert cx["step"] == len(steps) - 1
    assert "not legal" in cx["description"] and cx["explanation"]


def test_a_legal_other_choice_is_followed(mmcheck: Run, tmp_path: Path) -> None:
    """The reference takes the block the trace says (pfn 5, not its own 0): no problem."""
    trace = write_trace(tmp_path / "legal.json", {"npages": 8, "max_order": 4},
                        [{"op": "alloc", "args": [0], "result": 5, "raised": None},
                         {"op": "free", "args": [5, 0], "result": None, "raised": None}])
    result = mmcheck("replay", str(trace), "--format", "json")
    assert result.code == 0, result.out + result.err
    (report,) = result.json()["reports"]
    assert report["counterexamples"] == [] and report["notes"] == []


# ---------------------------------------------------------------- files that are not traces


@pytest.mark.parametrize("name,text", [
    ("not_json.json", "this is not json"),
    ("no_steps.json", json.dumps({"trace": {"format": 1, "subsystem": "buddy",
                                            "setup": {"npages": 8, "max_order": 4}}})),
    ("future.json", json.dumps({"format": 99, "subsystem": "buddy", "setup": {}, "steps": []})),
    ("bad_args.json", json.dumps({"format": 1, "subsystem": "buddy",
                                  "setup": {"npages": 8, "max_order": 4},
                                  "steps": [{"op": "alloc", "args": ["zero"]}]})),
])
def test_a_malformed_trace_file_is_a_usage_error(
        mmcheck: Run, tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    result = mmcheck("replay", str(path))
    assert result.code == 2, (result.out, result.err)
    assert "Traceback" not in result.err and result.out == ""
    assert result.err.startswith(f"mmcheck: error: {path}: not a trace file")
    assert len(result.err.strip().splitlines()) == 1


def test_a_missing_trace_file(mmcheck: Run, tmp_path: Path) -> None:
    result = mmcheck("replay", str(tmp_path / "gone.json"))
    assert result.code == 2 and "Traceback" not in result.err
    assert "gone.json" in result.err and "No such file" in result.err


def test_a_trace_of_a_subsystem_without_driver(mmcheck: Run, tmp_path: Path) -> None:
    path = tmp_path / "nosuch.json"
    path.write_text(json.dumps({"format": 1, "subsystem": "nosuch", "setup": {}, "steps": []}))
    result = mmcheck("replay", str(path))
    assert result.code == 2 and "Traceback" not in result.err
    assert "no driver for the nosuch subsystem" in result.err


@pytest.mark.parametrize("trace", [
    {"format": 1, "subsystem": "buddy", "setup": {"npages": 8, "max_order": 4},
     "steps": [{"op": "explode", "args": [1]}]},
    {"format": 1, "subsystem": "buddy", "setup": {"npages": 8, "max_order": 4},
     "steps": [{"op": "alloc", "args": [0, 1, 2]}]},
    {"format": 1, "subsystem": "buddy", "setup": {"npages": 8}, "steps": []},
    {"format": 1, "subsystem": "buddy", "setup": {"npages": -5, "max_order": 4}, "steps": []},
    [1, 2],
], ids=["unknown_op", "arity", "missing_setup", "bad_setup", "json_list"])
def test_a_trace_that_does_not_fit_the_subsystem_is_a_usage_error(
        mmcheck: Run, tmp_path: Path, trace: Any) -> None:
    path = tmp_path / "misfit.json"
    path.write_text(json.dumps(trace))
    try:
        result = mmcheck("replay", str(path))
    except Exception as err:  # noqa: BLE001 - what the user would see as a traceback
        pytest.fail(f"traceback: {type(err).__name__}: {err}")
    assert result.code == 2 and "Traceback" not in result.err


SHARED = "tests/fixtures/submissions/buddy_shared_state.py"  # correct per instance


def test_confirmed_in_a_fresh_process(silent: dict[str, Any]) -> None:
    """A submission's counterexample is replayed once more in a new worker, as
    `mmcheck replay` runs it, and says so."""
    (cx,) = silent["counterexamples"]
    assert cx["confirmed"] and cx["fresh_process"] is True


def test_state_shared_between_instances_is_reported(
    mmcheck: Run, tmp_path: Path
) -> None:
    """A submission whose instances share class-level state breaks only after an
    earlier instance: the same-process replay reproduces it, a fresh process does
    not, and the report says so (text and JSON) instead of "reproduced"; the
    saved trace indeed runs clean under `mmcheck replay`."""
    result = mmcheck("check", "--impl", SHARED, "--seed", "0", "--traces", "25",
                     "--save", str(tmp_path), "--format", "json")
    assert result.code == 1, result.out + result.err
    (report,) = result.json()["reports"]
    (cx,) = report["counterexamples"]
    assert cx["confirmed"] and cx["fresh_process"] is False
    assert "mmcheck replay" in cx["note"]
    again = replay_as_printed(mmcheck, cx)
    assert again.code == 3 and "no longer applies" in again.out, again.out
    assert "result: INCONCLUSIVE: the trace no longer applies" in again.out
    text = mmcheck("check", "--impl", SHARED, "--seed", "0", "--traces", "25", "--save", "")
    assert "does not reproduce in a fresh process: the submission shares state" in text.out
    assert "reproduced on a fresh instance in the same process" in text.out


# ---------------------------------------------------------------- following a submission's choices


def test_a_replay_can_follow_the_submissions_choices() -> None:
    """Z3's traces hold the reference's choices: alloc(0) returned pfn 0 there, and the
    trace frees pfn 0. highest_first hands out pfn 7 instead (a legal choice), so
    freeing 0 is refused; with rename the free passes back its own 7."""
    from mmcheck.checker.confirm import replay
    from mmcheck.checker.evaluate import CompiledSpec
    from mmcheck.checker.sandbox.client import Submission
    from mmcheck.checker.subsystems import buddy
    from mmcheck.checker.trace import Step, Trace
    from mmcheck.spec.loader import library, load

    trace = Trace("buddy", {"npages": 8, "max_order": 4},
                  (Step("alloc", (0,), 0), Step("free", (0, 0)), Step("alloc", (0,), 0)))
    specs = [CompiledSpec(load(f)) for f in library("buddy")]
    sub = Submission.open(ROOT / "examples" / "buddy" / "correct" / "highest_first.py")
    try:
        def make(setup: Any) -> Any:
            return buddy.SubmissionSystem(sub, setup)

        plain = replay(trace, specs, make)
        followed = replay(trace, specs, make, rename=True)
    finally:
        sub.close()
    assert plain.violation is None and followed.violation is None
    assert [(s.args, s.raised) for s in plain.steps[:2]] == [((0,), None), ((0, 0), "ValueError")]
    assert [(s.args, s.result, s.raised) for s in followed.steps] == [
        ((0,), 7, None), ((7, 0), None, None), ((0,), 7, None)]
