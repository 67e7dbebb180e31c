"""Quality: the vmalloc and segment specs convict every buggy example and pass the correct ones.

Each buggy example is replayed on the short counterexample its docstring
gives, in its sandbox, and must break one of the properties listed here at
the trace's last step. The correct examples the registration walk does not
already run (it searches each subsystem's declared pair) run a few traces.
The full sweep with the default budget is in docs/benchmarks.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mmcheck.checker import subsystems
from mmcheck.checker.confirm import replay
from mmcheck.checker.hypothesis_engine import run_hypothesis
from mmcheck.checker.options import Options
from mmcheck.checker.trace import Step, Trace

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PAGE = 4096
VMALLOC_START = 0xC4800000  # i386 with 64 MiB: high_memory 0xC4000000 + 8 MiB
VM = {"ram_mib": 64, "npages": 64, "window": 0}
Steps = list[tuple[str, tuple[int, ...]]]
BUGGY: dict[str, tuple[str, dict[str, int], Steps, set[str]]] = {
    "vmalloc/buggy/no_guard_page.py": ("vmalloc", VM, [("vmalloc", (PAGE,))],
                                       {"guard_pages_unmapped", "areas_inside_the_range",
                                        "vmalloc_makes_an_area"}),
    "vmalloc/buggy/no_tlb_flush.py": ("vmalloc", VM, [("vmalloc", (PAGE,)),
                                                      ("vfree", (VMALLOC_START,))],
                                      {"tlb_not_stale"}),
    "vmalloc/buggy/leaks_on_failure.py": ("vmalloc", VM, [("vmalloc", (1 << 20,))],
                                          {"vmalloc_none_changes_nothing",
                                           "pages_mapped_exactly_once"}),
}
USER, KERNEL = {"user": 1}, {"user": 0}
DS = 3
BUGGY.update({
    "segment/buggy/rpl_ignored.py": ("segment", KERNEL, [("load_segment", (DS, 0x6B))],
                                     {"load_segment_checks"}),
    "segment/buggy/limit_in_bytes.py": ("segment", USER, [("linear", (DS, 0x08048568, 1, 0))],
                                        {"linear_checks"}),
})
CORRECT = {
    "vmalloc/correct/first_fit.py": "vmalloc",
    "vmalloc/correct/top_down.py": "vmalloc",
    "segment/correct/descriptor_cache.py": "segment",
    "segment/correct/reread_gdt.py": "segment",
}
# first_fit.py and descriptor_cache.py: the registration walk
PASSED = ("vmalloc/correct/top_down.py", "segment/correct/reread_gdt.py")
PASS_TRACES = 3


def test_every_example_is_listed() -> None:
    found = {str(p.relative_to(EXAMPLES)) for sub in ("vmalloc", "segment")
             for p in (EXAMPLES / sub).rglob("*.py")}
    assert found == set(BUGGY) | set(CORRECT)






@pytest.mark.parametrize("rel", sorted(BUGGY))
def test_buggy_example_breaks_on_its_counterexample(rel: str,
                                                     examples: Any) -> None:
    subsystem, setup, steps, expected = BUGGY[rel]
    make = examples.system(rel, subsystem)
    trace = Trace(subsystem, setup, tuple(Step(op, args) for op, args in steps))
    result = replay(trace, examples.specs(subsystem), make)
    assert result.violation is not None, f"{rel}: its counterexample breaks nothing"
    assert examples.name(result.violation) in expected
    assert result.violation.step == len(steps) - 1


@pytest.mark.parametrize("rel", sorted(BUGGY))
def test_the_correct_examples_pass_the_same_trace(rel: str,
                                                  examples: Any) -> None:
    """The counterexample is the bug's, not the trace's: a correct example passes it."""
    subsystem, setup, steps, _ = BUGGY[rel]
    good = next(k for k, v in CORRECT.items() if v == subsystem)
    make = examples.system(good, subsystem)
    trace = Trace(subsystem, setup, tuple(Step(op, args) for op, args in steps))
    assert replay(trace, examples.specs(subsystem), make).violation is None


@pytest.mark.parametrize("rel", PASSED)
def test_correct_example_passes(rel: str, examples: Any) -> None:
    subsystem = CORRECT[rel]
    driver = subsystems.driver(subsystem)
    make = examples.system(rel, subsystem)
    options = Options(seed=0, budget=120.0, traces=PASS_TRACES, max_counterexamples=1)
    result = run_hypothesis(examples.specs(subsystem), driver, make, options)
    assert not result.found, [(f.violation.property, f.trace) for f in result.found]
    assert result.stats.steps > 50


def test_pictures_of_the_vm_struct_list_and_of_a_translation(
        examples: Any) -> None:
    """The report's text pictures: the areas with their frames and guard pages, and the
    documents' worked example drawn from selector to physical address."""
    driver = subsystems.driver("vmalloc")
    system = examples.system("vmalloc/correct/first_fit.py", "vmalloc")(VM)
    for size in (2 * PAGE, PAGE):
        system.apply("vmalloc", (size,))
    lines = driver.render_state(system.snapshot())
    assert lines[0].startswith("direct map [0xc0000000, 0xc4000000)")
    assert lines[1] == "vmlist (2 area(s)):"
    assert lines[2].startswith(f"  {VMALLOC_START:#010x}  [0x")
    assert "[G]  size 3 page(s)" in lines[2]
    driver = subsystems.driver("segment")
    system = examples.system("segment/correct/descriptor_cache.py", "segment")(USER)
    step, problem = system.apply("translate", (DS, 0x08048568, 0))
    assert problem is None and step.result == 0x1F2E3568
    lines = driver.render_state(system.snapshot())
    assert "  ds = 0x007b (index 15, TI 0, RPL 3): GDT[15] base 0x0 limit 0xffffffff DPL 3 data" \
        in lines
    assert lines[-3:] == ["last translation: ds(0x7b):0x8048568",
                          "  -> linear 0x08048568 = PGD 32 | PT 72 | offset 0x568",
                          "  -> physical 0x1f2e3568"]
