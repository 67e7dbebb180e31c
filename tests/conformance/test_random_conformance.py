"""The model against the live kernel on random operation sequences (fixed seeds).

Every step must agree: results and errnos, SIGSEGV or the byte read, and the
areas inside the window with their VmFlags. Thousands of steps in all, with
forks, faults, splits, three-way merges, holes and NOREPLACE collisions.
"""

from __future__ import annotations

from collections import Counter

import pytest
from mmcheck.checker.live.conform import OpGenerator, run_conformance, sequence_ops
from mmcheck.checker.live.ops import Fork, Mmap, Mprotect, Munmap, Read, Write
from mmcheck.checker.live.oracle import exec_only_read_faults, live_available
from mmcheck.model.fault import Kernel

pytestmark = [pytest.mark.live,
              pytest.mark.skipif(not live_available()[0], reason=live_available()[1])]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_model_agrees_with_the_live_kernel(seed):
    report = run_conformance(seed, 500, seq_len=125, kernel_factory=None)
    assert report.ok, str(report)
    assert report.steps == 500
    # the sequences reached what they are for
    for kind in ("mmap", "mprotect", "munmap", "fork", "SIGSEGV", "ENOMEM", "EEXIST"):
        assert report.outcomes[kind] > 0, (kind, report.outcomes)


def test_kernel_model_frames_agree_with_the_live_kernel():
    report = run_conformance(11, 300, seq_len=100)  # with the reference Kernel by default
    assert report.ok, str(report)
    assert report.kernel_model and "page facts from a Kernel model" in str(report)
    pku = exec_only_read_faults()
    small = run_conformance(12, 100, seq_len=100,
                            kernel_factory=lambda: Kernel(2048, pku=pku, map_droppable=True))
    assert small.ok, str(small)


def test_sequences_are_reproducible_and_varied():
    a = sequence_ops(7, 3, 300)
    assert a == sequence_ops(7, 3, 300)
    assert a != sequence_ops(7, 4, 300)
    kinds = Counter(type(op) for op in a)
    assert all(kinds[t] for t in (Mmap, Munmap, Mprotect, Read, Write, Fork))
    assert kinds[Fork] <= 4  # MAX_FORKS: each fork keeps a process alive to the end
    assert all(0 <= op.page < 32 for op in a if isinstance(op, (Read, Write)))


def test_generator_can_leave_out_accesses_and_forks():
    import random

    ops = OpGenerator(random.Random(1), 32, 4096, accesses=False, forks=False).sequence(500)
    assert not any(isinstance(op, (Read, Write, Fork)) for op in ops)
