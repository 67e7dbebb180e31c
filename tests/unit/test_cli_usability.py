"""The command line as people expect it (issue 11): help, every option explained,
README examples that run, `vocab`, JSON errors, and what `replay` tells a student."""

from __future__ import annotations

import argparse
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mmcheck.checker import cli
from mmcheck.checker.subsystems import registry

ROOT = Path(__file__).resolve().parents[2]
Run = Callable[..., Any]
BAD_SPEC = 'spec buddy "x"\n\ninvariant a "d":\n    forall b in fre: b.order < 3\n'


def _trace(path: Path, steps: list[dict[str, Any]], **extra: Any) -> Path:
    trace = {"format": 1, "subsystem": "buddy", "setup": {"npages": 8, "max_order": 4},
             "steps": steps}
    path.write_text(json.dumps({"trace": trace, **extra}))
    return path


def _step(op: str, args: list[int], result: Any = None, raised: str | None = None) -> dict:
    return {"op": op, "args": args, "result": result, "raised": raised}


def test_bare_mmcheck_prints_help_and_exits_2(mmcheck: Run) -> None:
    result = mmcheck()
    assert result.code == 2
    assert result.out.startswith("usage: mmcheck") and "check" in result.out
    assert "exit codes" in result.out


def _actions(parser: argparse.ArgumentParser, where: str = "mmcheck"):  # noqa: ANN202
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{where} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield where, action


def test_every_option_and_argument_has_help_text() -> None:
    missing = [f"{where} {a.dest}" for where, a in _actions(cli._parser())
               if not (a.help and a.help.strip())]
    assert missing == []
    sub = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert all(c.help for c in sub._choices_actions)  # every command too


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split("  #")[0].split(" > ")[0].strip()  # no comment, no redirection
            if line.startswith(("mmcheck ", ".venv/bin/mmcheck ")):
                commands.append(line)
    return commands


def test_readme_commands_parse_and_name_files_that_exist() -> None:
    commands = _readme_commands()
    assert len(commands) >= 5
    parser = cli._parser()
    for command in commands:
        argv = shlex.split(command)[1:]
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:  # argparse refused it
            pytest.fail(f"README: `{command}` does not parse ({exit_})")
        for path in [*getattr(args, "specs", []), getattr(args, "impl", None) or ""]:
            if path and path != "student.py":  # the README's stand-in for the reader's file
                assert (ROOT / path).exists(), f"README: `{command}` names {path}"


@pytest.mark.parametrize("subsystem", sorted(registry.names()))
def test_vocab_lists_every_name_with_how_a_submission_shows_it(
        mmcheck: Run, subsystem: str) -> None:
    result = mmcheck("vocab", subsystem)
    assert result.code == 0, result.err
    vocab = registry.vocabulary(subsystem)
    for var in vocab.state:
        block = result.out[result.out.index(f"  {var.name}: {var.type}\n"):]
        block = block[: block.index("submission:") + 200]
        assert "submission:" in block.split("\n  ")[0] + block, var.name
    for op in vocab.operations:
        assert f"  {op.name}(" in result.out
    for rec in vocab.records:
        assert f"  {rec.name}{{" in result.out


def test_vocab_says_which_names_a_submission_cannot_expose(mmcheck: Run) -> None:
    """The same names checker/observable.py treats as n/a (the drivers' hidden_names)."""
    out = mmcheck("vocab", "pagetable").out
    tlb = out[out.index("  tlb: list[TlbEntry]"):]
    assert "submission: NOT shown" in tlb[:300]
    fault = mmcheck("vocab", "fault").out
    pages = fault[fault.index("  pages: list[PageInfo]"):]
    assert "submission: NOT shown" in pages[:300]
    frames = fault[fault.index("  frames: list[Frame]"):]
    assert "submission: shown: its frame()" in frames[:300]
    buddy = mmcheck("vocab", "buddy").out
    free_area = buddy[buddy.index("  free_area: list[Block]"):]
    assert "shown only by a submission with the optional methods" in free_area[:300]


def test_a_spec_error_under_format_json_is_a_json_object(mmcheck: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.mm"
    bad.write_text(BAD_SPEC)
    result = mmcheck("check", str(bad), "--format", "json")
    assert result.code == 2
    doc = json.loads(result.out)
    assert doc["exit_code"] == 2 and doc["error"]["kind"] == "spec"
    assert doc["error"]["file"] == str(bad) and doc["error"]["line"] == 4
    assert "fre" in doc["error"]["message"]
    usage = mmcheck("check", "--impl", str(tmp_path / "nope.py"), "--format", "json")
    assert usage.code == 2 and json.loads(usage.out)["error"]["kind"] == "usage"


def test_replay_shows_what_the_submission_printed_at_each_step(
        mmcheck: Run, tmp_path: Path) -> None:
    trace = _trace(tmp_path / "t.json", [_step("alloc", [0], 0), _step("free", [0, 0])])
    impl = "tests/fixtures/submissions/buddy_prints.py"
    result = mmcheck("replay", str(trace), "--impl", impl)
    assert result.code == 0, result.out + result.err
    assert "printed, step by step" in result.out
    assert re.search(r"0  alloc\(0\)\n\s+stdout: alloc\(0\) gives pfn 0", result.out), result.out
    assert re.search(r"1  free\(0, 0\)\n\s+stderr: freeing 0", result.out), result.out
    doc = mmcheck("replay", str(trace), "--impl", impl, "--format", "json").json()
    (report,) = doc["reports"]
    assert [o["step"] for o in report["step_output"]] == [0, 1]


def test_replay_says_where_a_trace_no_longer_applies(mmcheck: Run, tmp_path: Path) -> None:
    """first_fit hands out pfn 0 where the trace says 4: after step 0 the trace says
    nothing about it, so a clean run is inconclusive (exit 3), not OK."""
    trace = _trace(tmp_path / "t.json", [_step("alloc", [0], 4), _step("free", [4, 0])])
    result = mmcheck("replay", str(trace), "--impl", "examples/buddy/correct/first_fit.py")
    assert result.code == 3, result.out + result.err
    assert "no longer applies" in result.out
    assert "step 0: alloc(0) -> 0 now, the trace says -> 4" in result.out


def test_replay_uses_the_specs_the_trace_was_recorded_with(mmcheck: Run, tmp_path: Path) -> None:
    spec = tmp_path / "only_small.mm"
    spec.write_text('spec buddy "t"\n\ninvariant tiny "no block above order 1":\n'
                    "    forall b in free: b.order < 2\n")
    trace = _trace(tmp_path / "t.json", [], specs=[str(spec)], property="tiny")
    result = mmcheck("replay", str(trace), "--format", "json")
    assert result.code == 1, result.out + result.err  # 8 free pages: one block of order 3
    (report,) = result.json()["reports"]
    assert report["specs"] == [str(spec)]
    assert report["counterexamples"][0]["property"] == "tiny"
    gone = _trace(tmp_path / "g.json", [], specs=[str(tmp_path / "gone.mm")])
    missing = mmcheck("replay", str(gone))
    assert missing.code == 2 and "gone.mm" in missing.err
