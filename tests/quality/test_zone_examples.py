"""Quality: the zone specs convict every buggy ZoneAllocator example and pass the correct ones.

Each buggy example is replayed on the short counterexample its docstring
gives and must break the property named here, at the trace's last step; the
search itself convicts wrong_fallback (the declared buggy example) in the
registration walk. Each correct example (two designs: free lists with the
lowest block, a page bitmap with the highest) runs a short Hypothesis search
and a drain trace that walks a request down the zonelist through both
watermarks; the reference follows their choices.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mmcheck.checker import subsystems
from mmcheck.checker.confirm import replay
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.hypothesis_engine import run_hypothesis
from mmcheck.checker.options import Options
from mmcheck.checker.trace import Step, Trace
from mmcheck.spec.loader import library, load

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "zone"
NODE = {"dma": 16, "dma32": 0, "normal": 48, "highmem": 0, "movable": 0,
        "min_free_kbytes": 128, "max_order": 4}
BUGGY = {
    "buggy/wrong_fallback.py": (NODE, [("alloc", (0, 0))], "alloc_fallback_order"),
    # Normal: min 24, low 30 of 48 pages; the 19th page takes it below low
    "buggy/ignores_low.py": (NODE, [("alloc", (0, 0))] * 19, "alloc_keeps_low_watermark"),
    "buggy/merges_across_zones.py": (
        {**NODE, "dma": 1, "normal": 1, "min_free_kbytes": 0, "max_order": 2},
        [("alloc", (0, 1)), ("free", (0, 0)), ("alloc", (0, 4)), ("alloc", (0, 4))],
        "alloc_allowed_zone"),
}
CORRECT = ("correct/linux_lists.py", "correct/bitmap_scan.py")
# i386-like node: drain NORMAL past low and min, then DMA, then free it all
# Normal (min 12, low 15) gives 9 pages at LOW, DMA (min 4, low 5) 3; then at MIN
# Normal 3 more and DMA 1: 16 pages, then none (HighMem's min is 32 of its 12).
I386 = {"dma": 8, "dma32": 0, "normal": 24, "highmem": 12, "movable": 0,
        "min_free_kbytes": 64, "max_order": 3}


def test_every_example_is_listed() -> None:
    found = {str(p.relative_to(EXAMPLES)) for p in EXAMPLES.rglob("*.py")}
    assert found == {*BUGGY, *CORRECT}


@pytest.fixture(scope="module")
def specs() -> list[CompiledSpec]:
    return [CompiledSpec(load(p)) for p in library("zone")]


@pytest.fixture(scope="module")
def opened(examples: Any) -> Any:
    """rel -> the SubmissionSystem maker of examples/zone/rel (tests/quality/conftest.py)."""
    return lambda rel: examples.system(f"zone/{rel}", "zone")


@pytest.mark.parametrize("rel", sorted(BUGGY))
def test_buggy_example_breaks_on_its_counterexample(rel: str, specs: list[CompiledSpec],
                                                     opened: Any) -> None:
    setup, steps, expected = BUGGY[rel]
    trace = Trace("zone", setup, tuple(Step(op, args) for op, args in steps))
    result = replay(trace, specs, opened(rel))
    assert result.violation is not None, f"{rel}: its counterexample breaks nothing"
    assert result.violation.property == expected
    assert result.violation.step == len(steps) - 1


@pytest.mark.parametrize("rel", CORRECT)
def test_correct_example_passes_a_drain(rel: str, specs: list[CompiledSpec],
                                        opened: Any) -> None:
    steps = [("alloc", (0, 2))] * 30 + [("alloc", (1, 1))] * 3 + [("alloc", (0, 0))] * 8
    trace = Trace("zone", I386, tuple(Step(op, args) for op, args in steps))
    result = replay(trace, specs, opened(rel))
    assert result.violation is None, result.violation
    assert result.steps[15].result is not None and result.steps[16].result is None  # 16 pages


@pytest.mark.parametrize("rel", CORRECT)
def test_correct_example_passes_a_search(rel: str, specs: list[CompiledSpec],
                                         opened: Any) -> None:
    driver = subsystems.driver("zone")
    options = Options(seed=0, budget=120.0, traces=5, max_counterexamples=1)
    result = run_hypothesis(specs, driver, opened(rel), options)
    assert not result.found, [(f.violation.property, f.trace) for f in result.found]
    assert result.stats.steps > 200
