"""The virtual-memory spec library (vma, pagetable, fault) and its drivers.

- the three spec files load and name the properties the library promises;
- on the reference models, short derandomized runs of each driver's step
  generator exercise every property non-vacuously and break none, and a
  seeded engine run through `check` reports the same;
- what the models gained for the checker: AddressSpace.take_area (follow a
  submission's placement), errno and `listed` in the vma vocabulary,
  Kernel.mmap_placed, and `frames`, `memory`, `used_pages`, `boot_free_pages`
  in the fault vocabulary;
- the drivers' own machinery: one-draw picks, fault codes taken code first, a
  divergence held back one step, pids renamed.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mmcheck.checker import subsystems
from mmcheck.checker.evaluate import CompiledSpec
from mmcheck.checker.monitor import Monitor
from mmcheck.checker.options import Options
from mmcheck.checker.run import check
from mmcheck.checker.subsystems._vm import Converted, Divergence, pick
from mmcheck.checker.trace import RunStats, Step
from mmcheck.model.fault import Byte, Frame, Kernel, Segfault
from mmcheck.model.linux import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
)
from mmcheck.model.vma import AddressSpace, IllegalPlacement, Listed, snapshot_from_vmas
from mmcheck.spec.loader import library, load

P = PAGE_SIZE
RW = 3
PRIV = MAP_PRIVATE | MAP_ANONYMOUS
SHARED = MAP_SHARED | MAP_ANONYMOUS
W = 0x400000

SUBSYSTEMS = ("vma", "pagetable", "fault")
PROMISED = {
    "vma": {"well_formed", "inside_task", "no_overlap", "sorted", "merged",
            "gaps_are_the_holes", "map_count_counts_areas", "munmap_unmaps_the_range",
            "mprotect_changes_exactly_the_range", "fixed_replaces_what_overlapped",
            "noreplace_fails_on_overlap", "mmap_errors_change_nothing"},
    "pagetable": {"tables_point_down", "one_parent_per_table", "table_pages_counted",
                  "tlb_not_stale", "translate_faults_as_the_walk_says",
                  "translate_agrees_with_the_walk"},
    "fault": {"ptes_inside_allowing_areas", "private_writable_mapped_once",
              "mapcount_counts_ptes", "refcount_covers_mapcount", "free_pages_unmapped",
              "zero_page_never_writable", "writes_stay_private", "read_sees_memory",
              "rss_counts_ptes", "all_free_again_after_exit"},
}


def spec_of(subsystem: str) -> CompiledSpec:
    (path,) = library(subsystem)
    return CompiledSpec(load(path))


# ---- the spec files -------------------------------------------------------------------


@pytest.mark.parametrize("subsystem", SUBSYSTEMS)
def test_spec_loads_with_the_promised_properties(subsystem: str) -> None:
    (path,) = library(subsystem)
    assert Path(path).name == f"{subsystem}.mm"
    checked = load(path)
    assert checked.subsystem == subsystem
    names = {p.name for p in checked.spec.properties}
    assert PROMISED[subsystem] <= names
    assert all(p.doc for p in checked.spec.properties)
    assert subsystems.driver(subsystem).name == subsystem


# ---- every property exercised on the reference ----------------------------------------


def exercise(subsystem: str, traces: int, rules: int) -> RunStats:
    """Run the driver's steps on the reference, checking the spec after each one."""
    driver = subsystems.driver(subsystem)
    spec = spec_of(subsystem)
    stats = RunStats()

    @settings(max_examples=traces, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data: st.DataObject) -> None:
        setup = data.draw(driver.setups())
        view, system = driver.View(setup), driver.ReferenceSystem(setup)
        monitor = Monitor([spec], stats)
        state = system.snapshot()
        assert monitor.initial(state) is None
        stats.traces += 1
        index = 0
        for _ in range(rules):
            for op, args in driver.draw_steps(data, view):
                step, problem = system.apply(op, args)
                assert problem is None, problem
                view.record(step)
                new = system.snapshot()
                violation = monitor.step(index, step, state, new)
                assert violation is None, (violation, step)
                state, index = new, index + 1

    run()
    return stats


@pytest.mark.parametrize(("subsystem", "traces", "rules"),
                         [("vma", 8, 30), ("pagetable", 8, 30), ("fault", 6, 40)])
def test_every_property_is_exercised_on_the_reference(subsystem: str, traces: int,
                                                      rules: int) -> None:
    stats = exercise(subsystem, traces, rules)
    spec = spec_of(subsystem)
    vacuous = [p.name for p in spec.spec.properties
               if stats.properties.get(p.name) is None or stats.properties[p.name].live == 0]
    assert vacuous == []
    assert set(stats.ops) == set(subsystems.driver(subsystem).decl.operation_names)


@pytest.mark.parametrize("subsystem", SUBSYSTEMS)
def test_a_seeded_engine_run_holds_on_the_reference(subsystem: str) -> None:
    driver = subsystems.driver(subsystem)
    report = check([load(library(subsystem)[0])], subsystem, driver.ReferenceSystem,
                   "the reference model", Options(seed=0, traces=5, save_dir=None), False)
    assert report.counterexamples == []
    assert report.exit_code == 0
    assert report.stats.steps > 20
    # Invariants are checked after every step (which operations ran depends on time).
    invariants = {i.name for i in load(library(subsystem)[0]).spec.invariants}
    assert all(report.stats.properties[name].checks > 0 for name in invariants)


# ---- what the models gained ------------------------------------------------------------


def test_take_area_follows_a_legal_placement_and_merges() -> None:
    mm = AddressSpace()
    mm.mmap(W, P, RW, PRIV | MAP_FIXED)
    assert mm.take_area(W + P, 0, P, RW, PRIV) == W + P  # hintless: any free place
    assert mm.vmas() == [(W, W + 2 * P, RW, MAP_PRIVATE)]  # and it merges as mmap would
    assert mm.take_area(W + 8 * P, W + 8 * P, P, RW, SHARED) == W + 8 * P


@pytest.mark.parametrize(("start", "hint", "flags", "why"), [
    (W + 5 * P, W + 3 * P, PRIV, "hint"),  # the hint was free
    (W, 0, PRIV, "overlaps"),  # over a mapping
    (W + 5 * P + 8, 0, PRIV, "aligned"),
    (0x1000, 0, PRIV, "inside"),  # below mmap_min_addr
    ((1 << 47) - P, 0, PRIV, "inside"),  # past TASK_SIZE
    (W + 5 * P, 0, PRIV | MAP_FIXED, "FIXED"),  # a fixed mapping has no choice
    (W + 5 * P, 0, PRIV | MAP_FIXED_NOREPLACE, "FIXED"),
])
def test_take_area_refuses_what_no_correct_mm_could_choose(start: int, hint: int, flags: int,
                                                           why: str) -> None:
    mm = AddressSpace()
    mm.mmap(W, 2 * P, RW, PRIV | MAP_FIXED)
    before = mm.vmas()
    with pytest.raises(IllegalPlacement, match=why):
        mm.take_area(start, hint, 2 * P, RW, flags)
    assert mm.vmas() == before


def test_take_area_fails_as_mmap_does() -> None:
    mm = AddressSpace()
    with pytest.raises(OSError) as err:
        mm.take_area(W, 0, 0, RW, PRIV)
    assert err.value.errno == errno.EINVAL and mm.errno == errno.EINVAL


def test_errno_is_what_the_last_failed_call_set() -> None:
    mm = AddressSpace()
    assert mm.snapshot()["errno"] == 0
    mm.mmap(W, P, RW, PRIV | MAP_FIXED)
    with pytest.raises(OSError):
        mm.mmap(W, P, RW, PRIV | MAP_FIXED_NOREPLACE)
    assert mm.snapshot()["errno"] == errno.EEXIST
    mm.munmap(W, P)  # a success leaves errno as it was
    assert mm.errno == errno.EEXIST
    with pytest.raises(OSError):
        mm.mprotect(W + 1, P, RW)
    assert mm.snapshot()["errno"] == errno.EINVAL


def test_listed_keeps_the_order_vmas_gives() -> None:
    mm = AddressSpace()
    mm.mmap(W + 4 * P, P, 1, PRIV | MAP_FIXED)
    mm.mmap(W, P, RW, PRIV | MAP_FIXED)
    assert mm.snapshot()["listed"] == [Listed(0, W, W + P), Listed(1, W + 4 * P, W + 5 * P)]
    unsorted = [(W + 4 * P, W + 5 * P, 1, MAP_PRIVATE), (W, W + P, RW, MAP_PRIVATE)]
    snap = snapshot_from_vmas(unsorted, task_size=1 << 30, mmap_min_addr=P, errno=12)
    assert snap["listed"] == [Listed(0, W + 4 * P, W + 5 * P), Listed(1, W, W + P)]
    assert snap["errno"] == 12


def test_kernel_memory_keeps_fork_isolation_and_shared_pages() -> None:
    k = Kernel(128)
    parent = k.spawn()
    k.mmap(parent, W, 2 * P, RW, PRIV | MAP_FIXED)
    k.mmap(parent, W + 8 * P, P, RW, SHARED | MAP_FIXED)
    k.write(parent, W + 5, 7)
    k.write(parent, W + 8 * P, 1)
    child = k.fork(parent)
    k.write(child, W + 5, 9)  # copy-on-write: the parent keeps 7
    memory = set(k.snapshot()["memory"])
    assert {Byte(parent, W + 5, 7), Byte(child, W + 5, 9)} <= memory
    # The child never touched the shared page: its memory shows it all the same.
    assert k.frame(child, W + 8 * P) is None
    assert Byte(child, W + 8 * P, 1) in memory
    k.write(parent, W + 8 * P, 2)
    assert Byte(child, W + 8 * P, 2) in set(k.snapshot()["memory"])


def test_kernel_frames_used_pages_and_boot_free_pages() -> None:
    k = Kernel(64)
    snap = k.snapshot()
    assert snap["boot_free_pages"] == 63 == k.free_pages()
    assert [p.pfn for p in snap["used_pages"]] == [k.zero_pfn]
    pid = k.spawn()
    k.mmap(pid, W, 2 * P, RW, PRIV | MAP_FIXED)
    k.write(pid, W, 1)
    k.read(pid, W + P)
    snap = k.snapshot()
    assert set(snap["frames"]) == {Frame(pid, W, k.frame(pid, W)), Frame(pid, W + P, k.zero_pfn)}
    assert {p.pfn for p in snap["used_pages"]} == {p.pfn for p in snap["pages"] if not p.free}
    k.exit(pid)
    assert k.snapshot()["boot_free_pages"] == k.free_pages()


def test_mmap_placed_follows_the_choice_in_a_process() -> None:
    k = Kernel(64)
    pid = k.spawn()
    assert k.mmap_placed(pid, W, 0, P, RW, PRIV) == W
    assert [(v.start, v.end) for v in k.snapshot()["vmas"]] == [(W, W + P)]
    with pytest.raises(IllegalPlacement):
        k.mmap_placed(pid, W, 0, P, RW, PRIV)


# ---- the drivers' machinery -------------------------------------------------------------


def test_pick_draws_one_integer_and_starts_with_the_first_choices() -> None:
    class Data:
        def __init__(self, value: int) -> None:
            self.value, self.draws = value, 0

        def draw(self, strategy: object, label: str = "") -> int:
            self.draws += 1
            return self.value

    assert pick(Data(0), "x", "ab", (1, 2, 3)) == ("a", 1)
    assert pick(Data(5), "x", "ab", (1, 2, 3)) == ("b", 3)
    data = Data(4)
    assert pick(data, "x", "ab", (1, 2, 3), [9]) == ("b", 2, 9) and data.draws == 1


def test_injected_fault_classes_take_the_code_first() -> None:
    # docs/contract.md [GEN-FAULT-CLASSES]: PageFault(code) or PageFault(code, va).
    from mmcheck.checker.sandbox.faults import PageFault, Segfault

    assert PageFault(4).code == 4 and PageFault(4).address is None
    fault = PageFault(5, 0x5000)
    assert (fault.code, fault.address) == (5, 0x5000)
    assert Segfault(2, 0x7000).code == 2
    # The driver reads the code as given, never guessing an order.
    step = Step("translate", (0x5000, 0, 1, 0), None, "PageFault")
    assert Converted(step, code=0x5000, address=4).code == 0x5000


def test_a_divergence_is_reported_one_step_later_naming_its_step() -> None:
    d = Divergence()
    assert d.due() is None
    d.note(Step("mmap", (W, P, RW, PRIV), W, None), "returned 0x400000; Linux ...", ("why",))
    assert d.diverged
    problem = d.due()
    assert problem is not None and problem.kind == "refinement"
    assert problem.title.startswith("step 0: mmap(0x400000, 0x1000, 3, 34)")


def test_fault_reference_adopts_a_traces_pids() -> None:
    driver = subsystems.driver("fault")
    system = driver.ReferenceSystem({"npages": 128})
    step, problem = system.apply("spawn", (), Step("spawn", (), 41, None))
    assert problem is None and step.result == 41
    system.apply("mmap", (41, W, P, RW, PRIV | MAP_FIXED))
    step, _ = system.apply("write", (41, W, 5))
    assert step.raised is None
    snap = system.snapshot()
    assert [p.pid for p in snap["procs"]] == [41]
    assert Byte(41, W, 5) in snap["memory"] and {f.pid for f in snap["frames"]} == {41}
    step, _ = system.apply("read", (1, W))  # a pid the trace never made
    assert step.raised == "ValueError"
    with pytest.raises(Segfault):
        system.follower.run("read", (41, W + P))


# ---- the reference-side properties can fail: broken models are caught ---------------------


def replay_on(subsystem: str, make: Callable[[dict], Any],
              steps: list[tuple[str, tuple[int, ...]]]) -> str | None:
    """The property a trace breaks on a (broken) reference, or None."""
    from mmcheck.checker.confirm import replay
    from mmcheck.checker.trace import Trace

    setup = {"vma": {"task_size": 1 << 47, "mmap_min_addr": 0x10000},
             "pagetable": {"levels": 4, "npages": 64}, "fault": {"npages": 256}}[subsystem]
    trace = Trace(subsystem, setup, tuple(Step(op, args) for op, args in steps))
    result = replay(trace, [spec_of(subsystem)], make)
    return result.violation.property if result.violation else None


def test_a_missing_tlb_flush_breaks_tlb_1_on_the_reference_mmu() -> None:
    driver = subsystems.driver("pagetable")

    def broken(setup: dict) -> object:
        system = driver.ReferenceSystem(setup)
        system.model.tlb_flush_on_unmap = False
        return system

    steps = [("map", (0x1000, 1, 7)), ("translate", (0x1000, 0, 1, 0)), ("unmap", (0x1000,))]
    assert replay_on("pagetable", driver.ReferenceSystem, steps) is None
    assert replay_on("pagetable", broken, steps) == "tlb_not_stale"


def test_a_cow_that_never_copies_breaks_fault_2_on_the_reference_kernel() -> None:
    driver = subsystems.driver("fault")

    def broken(setup: dict) -> object:
        system = driver.ReferenceSystem(setup)
        kernel = system.follower.kernel
        # do_wp_page that makes the PTE writable in place: Dirty COW.
        kernel._do_wp_page = lambda task, vma, va, pfn, flags: task.pgd.set_pte(
            va, pfn, flags | 0x2 | 0x40)
        return system

    steps = [("spawn", ()), ("mmap", (1, W, P, RW, PRIV | MAP_FIXED)), ("write", (1, W, 7)),
             ("fork", (1,)), ("write", (2, W, 9))]
    assert replay_on("fault", driver.ReferenceSystem, steps) is None
    assert replay_on("fault", broken, steps) in {
        "writes_stay_private", "written_page_is_exclusive", "private_writable_mapped_once"}


def test_an_mm_that_never_merges_breaks_vma_4_on_the_reference() -> None:
    driver = subsystems.driver("vma")

    def broken(setup: dict) -> object:
        system = driver.ReferenceSystem(setup)
        system.model.vma_merge_new_range = lambda *args: None
        return system

    steps = [("mmap", (W, P, RW, PRIV | MAP_FIXED)), ("mmap", (W + P, P, RW, PRIV | MAP_FIXED))]
    assert replay_on("vma", driver.ReferenceSystem, steps) is None
    assert replay_on("vma", broken, steps) in {"merged", "merged_as_linux"}


# ---- the contract's freedoms and fixed answers (docs/contract.md) ---------------------

KW = {"task_size": (1 << 47) - P, "mmap_min_addr": 0x10000}


def _action(spec: CompiledSpec, name: str) -> tuple[Any, Any]:
    return next((a, fn) for op in spec.actions.values() for a, fn in op if a.name == name)


def test_zero_length_mprotect_may_fail_with_einval() -> None:
    # [AS-MPROTECT-ZERO-CHOICE]: Linux returns 0, EINVAL passes too; a change does not.
    from mmcheck.checker.subsystems.vma import zero_length_choice

    spec = spec_of("vma")
    act, fn = _action(spec, "mprotect_errno_as_linux")
    before = snapshot_from_vmas([(W, W + P, 3, MAP_PRIVATE)], **KW, errno=0)
    failed = snapshot_from_vmas([(W, W + P, 3, MAP_PRIVATE)], **KW, errno=errno.EINVAL)
    changed = snapshot_from_vmas([(W, W + P, 1, MAP_PRIVATE)], **KW, errno=0)
    check = spec.check_action
    assert check(act, fn, before, before, (W, 0, 0x10), None, None).holds
    assert check(act, fn, before, failed, (W, 0, 0x10), None, "OSError").holds
    assert not check(act, fn, before, changed, (W, 0, 0x10), None, None).holds
    assert not check(act, fn, before, failed, (W, P, 0x10), None, None).holds  # EINVAL due
    assert zero_length_choice(Step("mprotect", (W, 0, 0x10), None, "OSError"), errno.EINVAL)
    assert not zero_length_choice(Step("mprotect", (W, 0, 1), None, "OSError"), errno.EINVAL)


def test_map_droppable_is_einval_for_a_submission() -> None:
    # [AS-MMAP-TYPE]: the contract's EINVAL, where Linux 6.11+ maps it.
    spec = spec_of("vma")
    act, fn = _action(spec, "mmap_errno_as_linux")
    empty = snapshot_from_vmas([], **KW, errno=0)
    mapped = snapshot_from_vmas([(W, W + P, 3, MAP_PRIVATE)], **KW, errno=0)
    args = (W, P, 3, 0x08 | MAP_ANONYMOUS | MAP_FIXED)
    assert not spec.check_action(act, fn, empty, mapped, args, W, None).holds
    failed = snapshot_from_vmas([], **KW, errno=errno.EINVAL)
    assert spec.check_action(act, fn, empty, failed, args, None, "OSError").holds


def test_find_vma_is_the_first_area_ending_above() -> None:
    # [AS-FIND-VMA], on the reference and through the spec.
    mm = AddressSpace()
    mm.mmap(W, P, 3, PRIV | MAP_FIXED)
    mm.mmap(W + 4 * P, 2 * P, 1, PRIV | MAP_FIXED)
    assert mm.find_vma(0) == (W, W + P, 3, MAP_PRIVATE)
    assert mm.find_vma(W + P) == (W + 4 * P, W + 6 * P, 1, MAP_PRIVATE)
    assert mm.find_vma(W + 6 * P) is None
    spec = spec_of("vma")
    act, fn = _action(spec, "find_vma_as_linux")
    state = snapshot_from_vmas(mm.vmas(), **KW, errno=0)
    assert spec.check_action(act, fn, state, state, (W + P,), W + 4 * P, None).holds
    assert not spec.check_action(act, fn, state, state, (W + P,), W, None).holds
    assert not spec.check_action(act, fn, state, state, (W + 6 * P,), W, None).holds
    assert spec.check_action(act, fn, state, state, (W + 6 * P,), None, None).holds
