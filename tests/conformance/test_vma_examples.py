"""The example address spaces (examples/vma): the correct one agrees with the
reference model, each buggy one is caught, and each docstring's counterexample
is what the submission really does. In-process: these files are ours."""

from __future__ import annotations

import errno
import importlib.util
from pathlib import Path

import pytest
from mmcheck.checker.live.conform import check_contract_impl
from mmcheck.model.linux import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    PROT_READ,
    PROT_WRITE,
)
from mmcheck.model.vma import AddressSpace

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "vma"
P = 4096
W = 0x7F0000000000
RW = PROT_READ | PROT_WRITE
FIXED = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED


def load(rel: str):
    path = EXAMPLES / rel
    assert "mmcheck" not in path.read_text(), f"{rel} must be self-contained"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.AddressSpace


def test_correct_example_agrees_with_the_model():
    impl = load("correct/sorted_list.py")
    for seed in range(3):
        div = check_contract_impl(impl, seed, 1000)
        assert div is None, str(div)


@pytest.mark.parametrize("name", ["inclusive_end", "no_merge", "mprotect_whole_area",
                                  "fixed_overlaps"])
def test_buggy_examples_are_caught(name):
    div = check_contract_impl(load(f"buggy/{name}.py"), 0, 1000)
    assert div is not None
    assert "submission" in str(div) and div.index < 200


def both(rel: str, steps) -> tuple[object, object]:
    """Run `steps(mm)` on the example and the model; (example result, model result)."""
    out = []
    for mm in (load(rel)(), AddressSpace()):
        try:
            out.append(steps(mm))
        except OSError as e:
            out.append(errno.errorcode[e.errno])
    return out[0], out[1]


def test_inclusive_end_counterexample():
    def steps(mm):
        mm.mmap(W, P, RW, FIXED)
        mm.mmap(W + P, P, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE)
        return mm.vmas()
    bug, ref = both("buggy/inclusive_end.py", steps)
    assert bug == "EEXIST" and ref == [(W, W + 2 * P, RW, MAP_PRIVATE)]


def test_no_merge_counterexample():
    def steps(mm):
        mm.mmap(W, P, RW, FIXED)
        mm.mmap(W + P, P, RW, FIXED)
        return mm.vmas()
    bug, ref = both("buggy/no_merge.py", steps)
    assert len(bug) == 2 and ref == [(W, W + 2 * P, RW, MAP_PRIVATE)]


def test_mprotect_whole_area_counterexample():
    def steps(mm):
        mm.mmap(W, 4 * P, RW, FIXED)
        mm.mprotect(W + P, P, PROT_READ)
        return [v[2] for v in mm.vmas()]
    bug, ref = both("buggy/mprotect_whole_area.py", steps)
    assert bug == [PROT_READ] and ref == [RW, PROT_READ, RW]


def test_fixed_overlaps_counterexample():
    def steps(mm):
        mm.mmap(W, 4 * P, RW, FIXED)
        mm.mmap(W + P, P, PROT_READ, FIXED)
        return mm.vmas()
    bug, ref = both("buggy/fixed_overlaps.py", steps)
    assert any(a[1] > b[0] for a, b in zip(bug, bug[1:], strict=False))
    assert [(s - W) // P for s, _, _, _ in ref] == [0, 1, 2]


# ---- the examples written to the contract's letter (docs/contract.md) ----------------
PRIV = MAP_PRIVATE | MAP_ANONYMOUS
TS = (1 << 47) - P


def test_bottom_up_agrees_with_the_model_on_contract_only_operations():
    impl = load("correct/bottom_up.py")
    for seed in range(2):
        div = check_contract_impl(impl, seed, 600)
        assert div is None, str(div)


def test_bottom_up_takes_the_other_choices():
    # [AS-MMAP-PLACE-CHOICE]: the lowest free range; [AS-MPROTECT-ZERO-CHOICE]: EINVAL.
    mm = load("correct/bottom_up.py")()
    assert mm.mmap(0, P, RW, PRIV) == 0x10000
    with pytest.raises(OSError) as err:
        mm.mprotect(0x10000, 0, 0x10)
    assert err.value.errno == errno.EINVAL and mm.vmas() == [(0x10000, 0x11000, RW, MAP_PRIVATE)]
    assert AddressSpace().mprotect(W, 0, 0x10) is None  # Linux's choice


@pytest.mark.parametrize(("name", "steps", "bug", "ref"), [
    ("length_rounded_down", lambda mm: mm.vmas()[0][1] - mm.vmas()[0][0]
     if mm.mmap(W, 3 * P - 100, RW, FIXED) == W else None, 2 * P, 3 * P),
    ("einval_before_enomem", lambda mm: mm.mmap(TS - P + 8, 2 * P, RW, FIXED), "EINVAL",
     "ENOMEM"),
    ("accepts_droppable", lambda mm: mm.mmap(W, P, RW, 0x08 | MAP_ANONYMOUS | MAP_FIXED), W,
     "EINVAL"),
    ("find_vma_containing", lambda mm: (mm.mmap(W + P, P, RW, FIXED), mm.find_vma(W))[1], None,
     (W + P, W + 2 * P, RW, MAP_PRIVATE)),
    ("munmap_zero_length", lambda mm: mm.munmap(W, 0), None, "EINVAL"),
    ("hint_ignored", lambda mm: mm.mmap(W, P, RW, PRIV) == W, False, True),
])
def test_contract_letter_counterexamples(name, steps, bug, ref):
    assert both(f"buggy/{name}.py", steps) == (bug, ref)


def test_mprotect_all_or_nothing_counterexample():
    def steps(mm):
        mm.mmap(W, 2 * P, RW, FIXED)
        mm.mmap(W + 3 * P, P, RW, FIXED)
        try:
            mm.mprotect(W, 4 * P, PROT_READ)
        except OSError as e:
            assert e.errno == errno.ENOMEM
        return mm.vmas()
    bug, ref = both("buggy/mprotect_all_or_nothing.py", steps)
    assert bug[0] == (W, W + 2 * P, RW, MAP_PRIVATE)
    assert ref[0] == (W, W + 2 * P, PROT_READ, MAP_PRIVATE)
