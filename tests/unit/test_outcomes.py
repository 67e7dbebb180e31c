"""Verdicts mean what they say: exit 0 only when every property was checked and held.

Each observation of issue 6 about a verdict that passed unchecked is pinned
here: Z3 without an encoding, an engine exception, `--max-pages` below the
generator's bands, an all-VACUOUS spec, a `bool` field as a premise, a
property that is slow to evaluate under `--budget`, Ctrl-C and SIGTERM. The
outcome precedence of checker/outcome.py is tested on hand-made reports. Work
budgets are tiny (a few traces) so the file stays fast.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mmcheck.checker import subsystems
from mmcheck.checker.outcome import ExitCode, Status, combine, judge, report_code
from mmcheck.checker.report import Counterexample, EngineRun, Report
from mmcheck.checker.trace import PropertyStats, RunStats, Trace, Violation

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).parent / "mmcheck"
Run = Callable[..., Any]

VACUOUS_SPEC = """spec buddy "nothing is ever tested"

invariant never "a quantifier over nothing":
    forall b in free: b.order < 0 -> b.order > 100

action never_too "a premise that never holds"
after alloc(order) returns r:
    order < 0 and order > 0 -> r == none
"""

SLOW_SPEC = """spec buddy "a property that is slow to evaluate"

invariant quick "orders are small":
    forall b in free: b.order < max_order

invariant slow "quadratic over a big range":
    forall a in 0 .. 100000: forall c in 0 .. 100000: a + c >= 0
"""

FALSE_SPEC = """spec buddy "broken at once"

invariant impossible "memory has no pages":
    npages < 0

invariant fine "orders are small":
    forall b in free: b.order < max_order
"""

BOOL_FIELD_SPEC = """spec fault "a bool field as the premise"

invariant shared_ones "shared mappings are consistent":
    forall m in mappings: m.shared -> m.writable or not m.writable
"""


def _spec(tmp_path: Path, text: str, name: str = "t.mm") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _only(result: Any) -> dict[str, Any]:
    data = result.json()
    assert data["exit_code"] == result.code
    (report,) = data["reports"]
    return report


def _rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["property"]: p for p in report["properties"]}


# ------------------------------------------------------------ the precedence


def _report(*runs: EngineRun, props: tuple[str, ...] = ("p",)) -> Report:
    r = Report("the reference model", "buddy", ["x.mm"], properties=[("x.mm", n, 1) for n in props])
    r.kinds = {n: "invariant" for n in props}
    r.runs = list(runs)
    return r


def _stats(checks: int, live: int, traces: int = 1) -> RunStats:
    s = RunStats(traces=traces)
    s.properties["p"] = PropertyStats(checks, live)
    return s


def test_combine_follows_the_documented_precedence() -> None:
    V, E, INC, OK = ExitCode.VIOLATION, ExitCode.ERROR, ExitCode.INCONCLUSIVE, ExitCode.OK
    assert combine([OK, INC, E, V]) is V
    assert combine([OK, INC, E]) is E
    assert combine([OK, INC]) is INC
    assert combine([OK, OK]) is OK
    assert combine([]) is INC  # nothing checked is not a pass
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3]


def test_a_property_holds_only_with_non_vacuous_evidence_of_a_finished_run() -> None:
    held = _report(EngineRun("hypothesis", "holds", "", stats=_stats(5, 2)))
    assert judge(held)[0].status is Status.HELD and report_code(held) is ExitCode.OK
    vacuous = _report(EngineRun("hypothesis", "holds", "", stats=_stats(5, 0)))
    assert judge(vacuous)[0].status is Status.VACUOUS
    assert report_code(vacuous) is ExitCode.INCONCLUSIVE
    vacuous.allow_vacuous = True
    assert report_code(vacuous) is ExitCode.OK
    never = _report(EngineRun("hypothesis", "holds", "", stats=_stats(0, 0, traces=0)))
    (po,) = judge(never)
    assert po.status is Status.INCONCLUSIVE and "zero traces" in po.why[0]
    cut = _report(EngineRun("hypothesis", "budget", "", stats=_stats(5, 5)))
    assert judge(cut)[0].status is Status.INCONCLUSIVE
    assert report_code(cut) is ExitCode.INCONCLUSIVE  # less work than asked is never OK


def test_z3_without_an_encoding_or_unknown_does_not_count() -> None:
    skipped = _report(EngineRun("z3", "skipped", "no symbolic encoding of vma yet"))
    (po,) = judge(skipped)
    assert po.status is Status.INCONCLUSIVE and po.why == ["z3: no symbolic encoding of vma yet"]
    both = _report(
        EngineRun("hypothesis", "holds", "", stats=_stats(3, 3)),
        EngineRun("z3", "skipped", "no symbolic encoding of vma yet"),
    )
    assert judge(both)[0].status is Status.HELD and report_code(both) is ExitCode.OK
    proved = EngineRun("z3", "proved", "", property_status={"p": "proved (1-induction)"})
    assert report_code(_report(proved)) is ExitCode.OK
    unknown = EngineRun("z3", "unknown", "", property_status={"p": "unknown"})
    assert report_code(_report(unknown)) is ExitCode.INCONCLUSIVE
    # An action cleared only to depth 0 never saw a step.
    shallow = _report(EngineRun("z3", "bounded", "", property_status={"p": "holds to depth 0"}))
    shallow.kinds = {"p": "action"}
    assert judge(shallow)[0].status is Status.INCONCLUSIVE


def test_a_violation_beats_an_error_and_an_error_beats_inconclusive() -> None:
    failed = EngineRun("hypothesis", "error", "ValueError: boom")
    r = _report(failed)
    assert report_code(r) is ExitCode.ERROR
    v = Violation("invariant", "p", "", 0, ())
    r.counterexamples.append(Counterexample("z3", v, Trace("buddy", {}), [], True, ""))
    assert report_code(r) is ExitCode.VIOLATION
    assert judge(r)[0].status is Status.VIOLATED


def test_not_observable_properties_do_not_count_either_way() -> None:
    r = _report(EngineRun("hypothesis", "holds", "", stats=_stats(4, 0)))
    r.not_observable = {"p": "white-box: a submission does not show its tables"}
    assert judge(r)[0].status is Status.NOT_OBSERVABLE
    # ... but a run in which nothing at all was observable checked nothing: no pass.
    assert report_code(r) is ExitCode.INCONCLUSIVE
    stats = _stats(4, 0)
    stats.properties["q"] = PropertyStats(4, 3)
    both = _report(EngineRun("hypothesis", "holds", "", stats=stats), props=("p", "q"))
    both.not_observable = {"p": "white-box"}
    assert [o.status for o in judge(both)] == [Status.NOT_OBSERVABLE, Status.HELD]
    assert report_code(both) is ExitCode.OK


# ------------------------------------------------------------ through the CLI


def test_z3_on_a_subsystem_without_encoding_is_inconclusive(
        mmcheck: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    # zone's driver with its symbolic_system taken away: a subsystem without encoding
    from mmcheck.checker.subsystems import registry

    real = registry._driver
    monkeypatch.setattr(registry, "_driver", lambda d: dataclasses.replace(
        real(d), symbolic_system=None) if d.name == "zone" else real(d))
    result = mmcheck("check", "spec/lib/zone.mm", "--engine", "z3", "--save", "",
                     "--format", "json")
    assert result.code == ExitCode.INCONCLUSIVE, result.out + result.err
    rows = _rows(_only(result))
    assert rows and all(p["outcome"] == "inconclusive" for p in rows.values())
    assert all("no symbolic encoding" in " ".join(p["why"]) for p in rows.values())
    text = mmcheck("check", "spec/lib/zone.mm", "--engine", "z3", "--save", "")
    assert "result: INCONCLUSIVE" in text.out and "result: OK" not in text.out


def test_z3_proves_the_whole_vma_spec_at_its_registered_window(mmcheck: Run) -> None:
    """The default size of a symbolic run is the subsystem's (symbolic_pages): vma's
    window of 4 pages, where every property of the library spec is proved."""
    result = mmcheck("check", "spec/lib/vma.mm", "--engine", "z3", "--save", "",
                     "--format", "json")
    assert result.code == ExitCode.OK, result.out + result.err
    report = _only(result)
    rows = _rows(report)
    assert len(rows) == 26 and all(p["outcome"] == "held" and p["z3"].startswith("proved")
                                   for p in rows.values())
    (z3run,) = report["engines"]
    assert z3run["verdict"] == "proved"
    assert "task_size=0x404000" in z3run["summary"]  # 0x400000 + 4 pages: the window


def test_an_all_vacuous_spec_exits_3_unless_allowed(mmcheck: Run, tmp_path: Path) -> None:
    spec = _spec(tmp_path, VACUOUS_SPEC)
    result = mmcheck("check", spec, "--traces", "3", "--save", "", "--format", "json")
    assert result.code == ExitCode.INCONCLUSIVE
    rows = _rows(_only(result))
    assert {p["outcome"] for p in rows.values()} == {"vacuous"}
    assert all(p["why"] and "vacuous" in p["why"][0] for p in rows.values())
    allowed = mmcheck("check", spec, "--traces", "3", "--save", "", "--allow-vacuous")
    assert allowed.code == ExitCode.OK and "VACUOUS" in allowed.out
    assert re.search(r"^  VACUOUS +never .* line 3 +\d+\.\d\d s$", allowed.out, re.MULTILINE)


def test_a_bool_field_as_a_premise_is_not_vacuous_when_true(mmcheck: Run, tmp_path: Path) -> None:
    spec = _spec(tmp_path, BOOL_FIELD_SPEC)
    result = mmcheck("check", spec, "--traces", "10", "--save", "", "--format", "json")
    row = _rows(_only(result))["shared_ones"]
    assert row["non_vacuous"] > 0 and row["outcome"] == "held", row
    assert result.code == ExitCode.OK


def test_an_engine_exception_is_an_error_never_a_pass(
        mmcheck: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    real = subsystems.driver

    def broken(data: Any, view: Any) -> Any:
        raise ValueError("the generator broke")

    def driver(name: str) -> Any:
        found = real(name)
        return None if found is None else dataclasses.replace(found, draw_steps=broken)

    monkeypatch.setattr(subsystems, "driver", driver)
    result = mmcheck("check", "spec/lib/buddy.mm", "--traces", "3", "--save", "",
                     "--format", "json")
    assert result.code == ExitCode.ERROR, result.out
    (run,) = _only(result)["engines"]
    assert run["verdict"] == "error" and "the generator broke" in run["summary"]
    assert "Traceback" not in result.out + result.err


@pytest.mark.parametrize("max_pages", ["1", "3", "64"])
def test_small_max_pages_runs_traces(mmcheck: Run, max_pages: str) -> None:
    result = mmcheck("check", "spec/lib/buddy.mm", "--max-pages", max_pages, "--traces", "5",
                     "--save", "", "--format", "json")
    report = _only(result)
    (run,) = report["engines"]
    assert run["verdict"] == "holds" and run["traces"] >= 5, run
    assert result.code in (ExitCode.OK, ExitCode.INCONCLUSIVE)


@settings(max_examples=200, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_max_pages_caps_every_memory_size(data: st.DataObject) -> None:
    for name in ("buddy", "pagetable"):
        driver = subsystems.driver(name)
        cap = data.draw(st.sampled_from([1, 3, 64, 100, 1024, 2000]))
        setup = data.draw(driver.setups(cap))
        assert 1 <= setup["npages"] <= cap


def test_budget_cuts_a_slow_evaluation_and_says_so(mmcheck: Run, tmp_path: Path) -> None:
    spec = _spec(tmp_path, SLOW_SPEC)
    start = time.monotonic()
    result = mmcheck("check", spec, "--budget", "1", "--save", "", "--format", "json")
    assert time.monotonic() - start < 60  # cut, not 10^10 evaluations
    assert result.code == ExitCode.INCONCLUSIVE
    report = _only(result)
    (run,) = report["engines"]
    assert run["verdict"] == "budget"
    slow = _rows(report)["slow"]
    assert slow["outcome"] == "inconclusive" and "cut at the time limit" in " ".join(slow["why"])
    assert slow["seconds"] > 0


def _console(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(SCRIPT), *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_whole_library_run_inconclusive(sig: int) -> None:
    """Stopped in the first subsystem: the rest are reported as not run, exit 3."""
    proc = _console("check", "--traces", "100000", "--save", "", "--format", "json")
    time.sleep(3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.INCONCLUSIVE, err
    data = json.loads(out)
    verdicts = [run["verdict"] for r in data["reports"] for run in r["engines"]]
    assert verdicts and set(verdicts) == {"interrupted"}
    assert len(data["reports"]) >= 2  # the subsystems after it say they were not run
    assert "not run" in data["reports"][-1]["engines"][0]["summary"]


def test_an_interrupt_after_a_violation_exits_1_and_saves_it(tmp_path: Path) -> None:
    spec = _spec(tmp_path, FALSE_SPEC)
    save = tmp_path / "saved"
    proc = _console("check", spec, "--traces", "100000", "--save", str(save))
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == ExitCode.VIOLATION, out + err
    assert "Counterexample 1: impossible" in out and "interrupted" in out
    assert "reproduced" in out  # confirmed within the grace a stop leaves
    assert list(save.rglob("impossible.json"))


ACTIONS_SPEC = """spec buddy "action properties only"

action alloc_never_succeeds "false: alloc always returns none"
after alloc(order) returns r:
    r == none

action alloc_accounting "true: alloc takes its pages"
after alloc(order) returns r:
    r != none -> free_pages == old(free_pages) - 2 ** order
"""


def test_z3_unrolls_steps_for_action_only_specs(mmcheck: Run, tmp_path: Path) -> None:
    """No invariant to check at depth 0 is no reason to stop: the actions speak at depth 1."""
    spec = _spec(tmp_path, ACTIONS_SPEC)
    result = mmcheck("check", spec, "--engine", "z3", "--depth", "2", "--save", "",
                     "--format", "json")
    assert result.code == ExitCode.VIOLATION, result.out
    report = _only(result)
    (cx,) = report["counterexamples"]
    assert cx["property"] == "alloc_never_succeeds" and cx["confirmed"]
    assert len(cx["trace"]["steps"]) == 1
    assert "depth -1" not in result.out


def test_z3_on_a_submission_never_reports_less_than_hypothesis(mmcheck: Run) -> None:
    """merge_past_top needs two free top-order buddies, which the solver's traces of the
    reference encoding never reach; Hypothesis, run alongside, convicts it."""
    result = mmcheck("check", "--impl", "examples/buddy/buggy/merge_past_top.py",
                     "--engine", "z3", "--depth", "1", "--traces", "25", "--save", "",
                     "--format", "json")
    assert result.code == ExitCode.VIOLATION, result.out
    report = _only(result)
    z3run, alongside = report["engines"]
    assert z3run["engine"] == "z3" and z3run["verdict"] == "bounded"
    assert z3run["traces"] > 0  # its replays count as evidence, not "zero traces"
    assert alongside["engine"] == "hypothesis" and alongside["verdict"] == "violated"
    assert "run alongside z3" in alongside["details"][0]
    assert any(c["engine"] == "hypothesis" and c["confirmed"] for c in report["counterexamples"])


def test_z3_work_is_bounded_by_its_rlimit(mmcheck: Run) -> None:
    """A tiny rlimit: the solver gives up (the same way on any machine), never a pass."""
    result = mmcheck("check", "spec/lib/buddy.mm", "--engine", "z3", "--z3-rlimit", "1000",
                     "--save", "", "--format", "json")
    assert result.code == ExitCode.INCONCLUSIVE, result.out
    rows = _rows(_only(result))
    assert any(p["outcome"] == "inconclusive" and "unknown" in p["z3"] for p in rows.values())


def test_the_reproduce_line_reproduces(mmcheck: Run) -> None:
    """double_alloc's second counterexample is found in the second chunk, after the first
    property was reported: its reproduce line reruns that same search."""
    args = ("--impl", "examples/buddy/buggy/double_alloc.py", "--save", "", "--format", "json")
    first = _only(mmcheck("check", *args))
    later = [c for c in first["counterexamples"] if c["seed"] != 0]
    assert later, "the example should need more than one chunk"
    for c in later:
        again = _only(mmcheck(*shlex.split(c["reproduce"])[1:], "--save", "",
                              "--format", "json"))
        same = [x for x in again["counterexamples"] if x["property"] == c["property"]]
        assert same and same[0]["trace"] == c["trace"], c["reproduce"]


def test_a_stop_that_lands_in_a_finaliser_prints_no_traceback(monkeypatch: Any) -> None:
    """The budget's alarm can come while a generator is being closed (a quantifier's
    bindings, dropped when any() stops early): Python cannot raise it there and printed
    "Exception ignored in ..." with a traceback (the argv fuzzer's --budget crash)."""
    from mmcheck.checker import interrupt

    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)

    def bindings() -> Iterator[int]:
        try:
            yield 1
            yield 2
        finally:  # where the alarm comes: as the generator is closed
            interrupt._on_alarm(signal.SIGALRM, None)

    with interrupt.watch(None), interrupt.evaluating():
        assert any(x == 1 for x in bindings())  # stops early: the generator is closed
        assert interrupt.reason() == interrupt.OUT_OF_TIME  # the stop is kept
    assert seen == []
    assert sys.unraisablehook == seen.append  # restored


def test_a_stop_that_lands_in_a_gc_callback_prints_no_traceback(monkeypatch: Any) -> None:
    """As the fuzzer met it: `check spec/lib/fault.mm spec/lib/slab.mm
    spec/lib/pagetable.mm --budget 1.47` (3 runs in 300), the alarm during
    Hypothesis's gc_callback."""
    import gc

    from mmcheck.checker import interrupt

    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)

    def callback(phase: str, info: dict) -> None:
        interrupt._on_alarm(signal.SIGALRM, None)

    gc.callbacks.append(callback)
    try:
        with interrupt.watch(None), interrupt.evaluating():
            gc.collect()
            assert interrupt.requested()
    finally:
        gc.callbacks.remove(callback)
    assert seen == []
