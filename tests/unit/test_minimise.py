"""The trace minimiser (checker/minimise.py): fewer steps, simpler arguments, same property.

A synthetic replay stands for the system, so each test says exactly which
traces break the property: the minimiser must find the smallest of them,
never return one that does not break it, stay within its replay budget, and
give the same answer every time.
"""

from __future__ import annotations

from mmcheck.checker.minimise import Replayed, minimise
from mmcheck.checker.trace import Step, Trace, Violation

KEY = ("invariant", "bad")
P = 4096


def _violation(step: int) -> Violation:
    return Violation("invariant", "bad", "", step, ())


def _replay_until(broken):  # noqa: ANN001, ANN202
    """A replay that stops at the first prefix for which `broken(prefix)` holds."""
    calls = []

    def attempt(t: Trace) -> Replayed:
        calls.append(t)
        for i in range(len(t.steps)):
            if broken(t.steps[: i + 1]):
                return Replayed(_violation(i), t.steps[: i + 1])
        return Replayed(None, t.steps)

    return attempt, calls


def _mmap_then_overlap(prefix) -> bool:  # noqa: ANN001
    """Broken when a MAP_FIXED_NOREPLACE mmap meets the start of an earlier mapping."""
    last = prefix[-1]
    return last.op == "mmap" and last.args[3] & 0x100000 and any(
        s.op == "mmap" and s.args[0] == last.args[0] for s in prefix[:-1])


def _trace(*steps: Step) -> Trace:
    return Trace("vma", {"task_size": 1 << 47, "mmap_min_addr": 0x10000}, steps)


NOISE = [Step("munmap", (0x400000 + i * P, P)) for i in range(9)]
LONG = _trace(*NOISE[:4], Step("mmap", (0x500000, 3 * P, 7, 0x32)), *NOISE[4:],
              Step("mprotect", (0x500000, P, 1)),
              Step("mmap", (0x500000, 2 * P + 5, 3, 0x100022)))


def _run(trace: Trace, broken, budget: int = 400):  # noqa: ANN001, ANN202
    attempt, calls = _replay_until(broken)
    first = attempt(trace)
    assert first.violation is not None
    return minimise(trace, KEY, attempt, first, budget), calls


def test_noise_is_deleted_and_arguments_simplified() -> None:
    m, _ = _run(LONG, _mmap_then_overlap)
    assert [s.op for s in m.trace.steps] == ["mmap", "mmap"]
    first, last = m.trace.steps
    # one page, PROT_NONE, MAP_FIXED gone; the map type and MAP_ANONYMOUS stay
    assert first.args == (0x500000, P, 0, 0x22)
    assert last.args == (0x500000, P, 0, 0x100022)  # the flag the property is about stays
    assert m.steps_before == len(LONG.steps) and m.replays <= 400


def test_the_result_always_breaks_the_same_property() -> None:
    m, _ = _run(LONG, _mmap_then_overlap)
    attempt, _ = _replay_until(_mmap_then_overlap)
    again = attempt(m.trace)
    assert again.violation is not None and again.violation.key == KEY
    assert again.violation.step == len(m.trace.steps) - 1


def test_the_budget_bounds_the_replays() -> None:
    m, calls = _run(LONG, _mmap_then_overlap, budget=5)
    assert len(calls) - 1 <= 5 and m.replays <= 5
    assert len(m.trace.steps) <= len(LONG.steps)


def test_same_trace_same_answer() -> None:
    a, _ = _run(LONG, _mmap_then_overlap)
    b, _ = _run(LONG, _mmap_then_overlap)
    assert a.trace == b.trace and a.replays == b.replays


def test_a_value_used_twice_moves_everywhere_at_once() -> None:
    # Broken when an order-3 block is freed with the pfn alloc returned: the pfn
    # recorded in the free must follow what the replay's alloc returned.
    def broken(prefix) -> bool:  # noqa: ANN001
        allocs = {s.result for s in prefix if s.op == "alloc"}
        last = prefix[-1]
        return last.op == "free" and last.args[0] in allocs and last.args[1] >= 1

    def attempt(t: Trace) -> Replayed:
        steps, nxt = [], 0
        for s in t.steps:
            if s.op == "alloc":
                s = Step("alloc", s.args, nxt)
                nxt += 1 << s.args[0]
            steps.append(s)
            if broken(steps):
                return Replayed(_violation(len(steps) - 1), tuple(steps))
        return Replayed(None, tuple(steps))

    t = Trace("buddy", {"npages": 64, "max_order": 11},
              (Step("alloc", (2,), 0), Step("alloc", (3,), 4), Step("free", (4, 3))))
    m = minimise(t, KEY, attempt, attempt(t))
    assert [s.op for s in m.trace.steps] == ["alloc", "free"]
    assert m.trace.steps[1].args == (0, 1) and m.trace.steps[0].args == (0,)
    assert m.trace.setup["npages"] < 64


def test_renaming_a_result_keeps_a_constructor_steps_arguments() -> None:
    """A replay that returns another pfn renames it in the later steps that take a
    pfn, and leaves a constructor step (whose parameters decode does not name)
    whole: it lost both its arguments once, and the replay of the candidate raised."""
    from mmcheck.checker.minimise import _renamed

    t = Trace("buddy", {"npages": 8, "max_order": 3},
              (Step("alloc", (0,), 1), Step("BuddyAllocator", (0, 3)), Step("free", (1, 0))))
    got = (Step("alloc", (0,), 0),)
    assert [s.args for s in _renamed(t, got).steps] == [(0,), (0, 3), (0, 0)]
