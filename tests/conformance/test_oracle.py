"""The live oracle itself: confinement, outside placements, hidden pfns, errors,
records and their comparison."""

from __future__ import annotations

import errno
import signal

import pytest
from mmcheck.checker.live.mapcount import live_scenario, model_scenario
from mmcheck.checker.live.modelrun import ModelSetup, run_model
from mmcheck.checker.live.ops import (
    Area,
    Fork,
    Mmap,
    Mprotect,
    Munmap,
    PageFacts,
    Read,
    StepRecord,
    Write,
    first_divergence,
    op_from_json,
    op_to_json,
)
from mmcheck.checker.live.oracle import LiveError, live_available, parse_maps, run_live
from mmcheck.model.linux import MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE_SIZE

pytestmark = [pytest.mark.live,
              pytest.mark.skipif(not live_available()[0], reason=live_available()[1])]

P = PAGE_SIZE
PRIV = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED


@pytest.mark.parametrize("op", [
    Munmap(0, 20 * P),  # runs past the window's end
    Mprotect(10, 7 * P, 1),
    Mmap(15, 2 * P, 3, PRIV),
    Mmap(None, P, 3, PRIV, absolute=0x10000000),  # a fixed mapping outside
    Write(16, 1),
])
def test_ops_that_could_leave_the_window_are_refused(op):
    with pytest.raises(LiveError, match="refused"):
        run_live([Mmap(0, P, 3, PRIV), op], 16)


def test_window_records_and_outside_placements():
    ops = [Mmap(0, 4 * P, 3, PRIV), Mmap(0, P, 1, MAP_PRIVATE | MAP_ANONYMOUS),
           Munmap(1, P), Read(9), Write(3, 0x41), Read(3)]
    live = run_live(ops, 16)
    assert len(live) == len(ops) and live.base % P == 0
    assert live[0].result == 0 and live[0].maps == (Area(0, 4, 3, False, frozenset({"ac"})),)
    assert live[1].outside and live[1].result is None
    assert [(a.start, a.end) for a in live[2].maps] == [(0, 1), (2, 4)]
    assert live[3].signal == signal.SIGSEGV and live[3].page is None
    assert live[5].result == 0x41 and live[5].page.present


def test_without_capabilities_pfns_are_not_visible():
    live = run_live([Mmap(0, P, 3, PRIV), Write(0, 1), Write(0, 2)], 8, drop_all_caps=True)
    assert not live.pfn_visible and live.zero_pfn is None
    page = live[2].page
    assert page.pfn is None and page.frame_changed is None and page.zero_page is None
    assert page.present and page.exclusive


def test_timeout_kills_the_child():
    with pytest.raises(LiveError, match="timed out"):
        run_live([Mmap(0, P, 3, PRIV)] * 2000, 8, timeout=0.05)


def test_fork_generations_are_recorded():
    live = run_live([Fork("child"), Fork("parent"), Fork("child", "exit"), Read(0)], 8)
    assert [r.gen for r in live] == [1, 1, 2, 2]
    assert live[-1].signal == signal.SIGSEGV


def test_model_records_have_the_same_shape():
    ops = [Mmap(0, 2 * P, 3, PRIV), Mprotect(1, P, 1), Read(1), Write(1, 5), Munmap(0, P)]
    model = run_model(ops, ModelSetup(0x7F0000000000, 8))
    assert [r.outcome() for r in model] == ["returned 0x0", "ok", "returned 0x0",
                                            "SIGSEGV", "ok"]
    assert [str(a) for a in model[-1].maps] == ["w+1..w+2 r--p"]


def test_first_divergence_explains_itself():
    ops = [Mmap(0, P, 3, PRIV), Mmap(1, P, 3, PRIV)]
    left = [StepRecord(0, result=0, maps=(Area(0, 1, 3, False),)),
            StepRecord(1, result=P, maps=(Area(0, 2, 3, False),))]
    right = [left[0], StepRecord(1, result=P, maps=(Area(0, 1, 3, False),
                                                    Area(1, 2, 3, False)))]
    div = first_divergence(ops, left, right)
    assert div is not None and div.index == 1
    text = str(div)
    assert "first divergence at step 1: areas in the window" in text
    assert "w+0..w+2 rw-p" in text and "w+0..w+1 rw-p; w+1..w+2 rw-p" in text
    assert "mmap(w+1, 1p, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED|MAP_ANONYMOUS)" in text
    assert first_divergence(ops, left, left) is None
    # page facts are compared only where both sides know them
    a = StepRecord(0, page=PageFacts(present=True, minflt=1))
    b = StepRecord(0, page=PageFacts(present=True, minflt=None))
    assert first_divergence(ops[:1], [a], [b]) is None
    c = StepRecord(0, errno=errno.EEXIST)
    assert first_divergence(ops[:1], [a], [c]).what == "outcome"


def test_records_and_ops_survive_json():
    rec = StepRecord(3, result=5, maps=(Area(0, 2, 1, True, frozenset({"nr"})),),
                     page=PageFacts(present=True, pfn=7), gen=2)
    assert StepRecord.from_json(rec.to_json()) == rec
    for op in (Mmap(None, P, 1, 0x22, absolute=5), Fork("parent", "exit"), Read(3, 7)):
        assert op_from_json(op_to_json(op)) == op


def test_parse_maps_keeps_the_window_and_its_flags():
    base = 0x7F0000010000
    text = (f"{base - P:x}-{base:x} ---s 00000000 00:01 5 /dev/zero (deleted)\n"
            f"{base:x}-{base + 2 * P:x} rw-p 00000000 00:00 0 \n"
            "Size: 8 kB\nProtectionKey:         1\nVmFlags: rd wr mr mw me ac sd\n"
            f"{base + 3 * P:x}-{base + 4 * P:x} r--s 00000000 00:01 6 /dev/zero (deleted)\n"
            "VmFlags: rd sh mr mw me ms nr\n")
    assert parse_maps(text, base, 8, True) == (Area(0, 2, 3, False, frozenset({"ac", "pk"})),
                                               Area(3, 4, 1, True, frozenset({"nr"})))
    with pytest.raises(RuntimeError, match="straddles"):
        parse_maps(text, base + P, 8, False)


def test_max_map_count_edges_agree():
    live, model = live_scenario(), model_scenario()
    assert live == model
    assert live["mprotect_two_splits_at_max-1"][:2] == ["ENOMEM", 1]  # first split stays
    assert live["mprotect_one_split_at_max"][:2] == ["ENOMEM", 0]
    assert live["mprotect_merging_at_max"][:2] == ["ok", -1]
    assert live["munmap_middle_at_max"][0] == "ENOMEM"
    assert live["munmap_edge_at_max"][:2] == ["ok", 0]
    assert live["mmap_at_max"][:2] == ["ok", 1]  # do_mmap checks map_count > max
    assert live["mmap_above_max"][0] == live["mmap_replacing_above_max"][0] == "ENOMEM"
