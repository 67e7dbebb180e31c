"""Issue 6, "no tracebacks, ever": each case that once ended in "internal error".

Deep nesting works (up to spec/limits.py's MAX_DEPTH levels, in every pass: parser,
type checker, evaluator, explanation, Z3); past the limits a spec gets a located
error with a hint; huge numbers are errors, not crashes; a closed pipe ends quietly.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.explain import explain_invariant, lines
from mmcheck.model.buddy import BuddyAllocator
from mmcheck.spec.errors import SpecSyntaxError
from mmcheck.spec.limits import MAX_DEPTH, MAX_EXPANDED
from mmcheck.spec.loader import check_text

HEADER = "spec buddy\n"
STATE = BuddyAllocator(16, 4).snapshot()
SCRIPT = Path(sys.executable).parent / "mmcheck"


def holds(body: str, defs: str = "") -> bool:
    """Check `invariant x: body` and evaluate it on a 16-page allocator."""
    checked = check_text(f"{HEADER}{defs}invariant x: {body}\n", "deep.mm")
    verdict = CompiledSpec(checked).check_invariant("x", STATE)
    assert verdict.error is None, verdict.error
    return verdict.holds


def chain(n: int, fmt: str) -> str:
    return "".join(fmt.format(i=i) for i in range(n))


DEEP = {
    # the cases ...
    "500 chained +": ("npages == " + " + ".join(["1"] * 500) + " - 484", True),
    "500 nested not": ("not " * 500 + "npages == 16", True),
    "1,000 chained let": (chain(1000, "let a{i} = {i} in ") + "a999 == 999", True),
    "400 atoms joined by and": (" and ".join(["npages > 0"] * 400), True),
    # ... and the other recursive shapes, near the limit
    "1,900 chained or": (" or ".join(["npages < 0"] * 1900) + " or npages == 16", True),
    "1,900 implications": (" -> ".join(["npages > 0"] * 1900), True),
    "1,900 parentheses": ("(" * 1900 + "npages == 16" + ")" * 1900, True),
    "900 nested if": ("if true then " * 900 + "false" + " else true" * 900, False),
    "900 nested forall": (chain(900, "forall b{i} in 0 .. 1: ") + "b0 < 1", True),
    "1,900 unary minus": ("npages == " + "- " * 1900 + "npages", True),
}


@pytest.mark.parametrize("case", DEEP)
def test_deep_nesting_works(case: str) -> None:
    body, expected = DEEP[case]
    assert holds(body) is expected


def test_a_chain_of_200_defs_works() -> None:
    defs = "def d0 = npages\n" + "".join(f"def d{i} = d{i - 1} + 1\n" for i in range(1, 200))
    assert holds("d199 == 215", defs)


def test_a_deep_violation_is_explained() -> None:
    checked = check_text(HEADER + "invariant x: " + " and ".join(["npages > 0"] * 400)
                         + " and npages > 99\n", "deep.mm")
    compiled = CompiledSpec(checked)
    assert not compiled.check_invariant("x", STATE).holds
    why = explain_invariant(compiled, "x", STATE)
    assert "npages > 99" in "\n".join(lines(why))


def assert_error(text: str, message: str, line: int, column: int, hint: str) -> None:
    with pytest.raises(SpecSyntaxError) as caught:
        check_text(text, "big.mm")
    err = caught.value
    assert message in err.message and hint in (err.hint or "")
    assert (err.line, err.column) == (line, column)
    rendered = err.render().split("\n")
    assert rendered[1] == f"  --> big.mm:{line}:{column}" and "^" in rendered[4]


def test_past_the_depth_limit_is_a_located_error() -> None:
    text = HEADER + "invariant deep: " + "not " * (MAX_DEPTH + 50) + "true\n"
    # The caret is under the first `not` past the limit.
    column = len("invariant deep: ") + 4 * MAX_DEPTH + 1
    assert_error(text, f"'deep' is nested {MAX_DEPTH + 51} levels deep", 2, column, "quantifier")


def test_any_nesting_parses_without_recursion() -> None:
    """10,000 levels (five times MAX_DEPTH): Lark's LALR loop and the tree-to-AST
    pass use no recursion."""
    assert holds("(" * 10_000 + "npages == 16" + ")" * 10_000)
    with pytest.raises(SpecSyntaxError, match="nested 10001 levels deep"):
        check_text(HEADER + "invariant x: " + "not " * 10_000 + "true\n", "nots.mm")


def test_defs_that_double_at_each_link_are_an_error_not_a_hang() -> None:
    defs = "def d0 = npages\n" + "".join(f"def d{i} = d{i - 1} + d{i - 1}\n" for i in range(1, 60))
    text = HEADER + defs + "invariant x: d59 > 0\n"
    # d(i) has 2**(i+2) - 3 nodes expanded: d16 is the first past MAX_EXPANDED.
    link = next(i for i in range(60) if 2 ** (i + 2) - 3 > MAX_EXPANDED)
    assert_error(text, f"'d{link}' expands to more than", link + 2, 1, "doubles")


@pytest.mark.parametrize("literal", ["9" * 4400, "0x" + "f" * 5000, "1" * 3800])
def test_a_huge_literal_is_a_located_error(literal: str) -> None:
    text = HEADER + f"invariant x: npages < {literal}\n"
    assert_error(text, "digits, more than mmcheck's numbers can hold", 2, 23, "at most 12,288 bits")


def test_the_largest_literal_works() -> None:
    assert holds("npages < " + "9" * 3600)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("len(0 .. 2 ** 64) == 2 ** 64", True),
        ("len(2 ** 64 .. 0) == 0", True),
        ("count(x in 0 .. 2 ** 70) == 2 ** 70", True),
        ("disjoint(0 .. 2 ** 64, 2 ** 64 .. 2 ** 65)", True),
        ("contains(0 .. 2 ** 64, 5 .. 2 ** 63)", True),
    ],
)
def test_intervals_past_sys_maxsize(body: str, expected: bool) -> None:
    assert holds(body) is expected


@pytest.mark.parametrize(
    "body",
    [
        "1000 ** 4096 > 0",
        "(2 ** 4096) ** 4096 > 0",
        chain(20, "let a{i} = 2 ** 4000 in ") + "a0 * a1 * a2 * a3 * a4 > 0",
        "1 << 4096 << 4096 << 4096 << 4096 > 0",
    ],
)
def test_values_too_large_to_print_are_evaluation_errors(body: str) -> None:
    checked = check_text(f"{HEADER}invariant x: {body}\n", "big.mm")
    verdict = CompiledSpec(checked).check_invariant("x", STATE)
    assert not verdict.holds and "more than 12,288 bits" in (verdict.error or "")


def test_a_closed_pipe_ends_quietly() -> None:
    """`mmcheck specs | head -1`: no BrokenPipeError, no traceback, exit 0."""
    proc = subprocess.run(
        f"'{SCRIPT}' specs | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and len(proc.stdout.splitlines()) == 1


RAISING_CONSTRUCTOR = (
    "class BuddyAllocator:\n"
    "    def __init__(self, npages, max_order=11):\n"
    "        raise RuntimeError('boom')\n"
    "    def alloc(self, order):\n"
    "        return None\n"
    "    def free(self, pfn, order):\n"
    "        pass\n"
)


def test_a_buddy_submission_whose_constructor_raises(mmcheck, tmp_path: Path) -> None:
    impl = tmp_path / "ctor.py"
    impl.write_text(RAISING_CONSTRUCTOR, encoding="utf-8")
    result = mmcheck("check", "--impl", str(impl), "--budget", "5", "--save", "")
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err and "internal error" not in result.err
    assert "BuddyAllocator(" in result.err and "raised RuntimeError: boom" in result.err


def test_replaying_a_buddy_trace_against_a_vma_submission(mmcheck, tmp_path: Path) -> None:
    saved = mmcheck("check", "spec/lib/buddy.mm", "--impl", "examples/buddy/buggy/double_alloc.py",
                    "--budget", "10", "--save", str(tmp_path))
    assert saved.code == 1, saved.out + saved.err
    trace = next(p for p in tmp_path.rglob("*.json") if not p.name.endswith(".itf.json"))
    result = mmcheck("replay", str(trace), "--impl", "examples/vma/correct/sorted_list.py")
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err and "internal error" not in result.err
    assert "a trace of the buddy subsystem" in result.err and "implements vma" in result.err


def test_a_submission_name_too_long_for_the_file_system(mmcheck) -> None:
    """Found by `python -m bench fuzz` (argv): ENAMETOOLONG was an internal error."""
    result = mmcheck("check", "--impl", "x" * 300, "--budget", "1")
    assert result.code == 2, result.out + result.err
    assert "File name too long" in result.err and "Traceback" not in result.err


@pytest.mark.parametrize("budget", ["nan", "inf", "1e300", "-1"])
def test_a_budget_no_timer_can_hold(mmcheck, budget: str) -> None:
    """Found by `python -m bench fuzz` (argv): `--budget nan` passed the `<= 0` test
    and setitimer raised (an internal error); a huge one overflows time_t."""
    result = mmcheck("check", "spec/lib/buddy.mm", "--budget", budget, "--save", "")
    assert result.code == 2, result.out + result.err
    assert "--budget must be positive" in result.err and "Traceback" not in result.err
