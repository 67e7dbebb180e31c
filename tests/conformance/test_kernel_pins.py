"""Behaviours of the live kernel that surprised us, each pinned: the live run and the
model must agree step by step, and the outcome must be the one written down in
docs/linux-semantics.md (which names these tests)."""

from __future__ import annotations

import errno
import os
import signal

import pytest
from mmcheck.checker.live.conform import compare_live
from mmcheck.checker.live.ops import (
    MAP_DROPPABLE,
    Fork,
    Mmap,
    Mprotect,
    Munmap,
    Op,
    Read,
    Write,
)
from mmcheck.checker.live.oracle import LiveRun, exec_only_read_faults, live_available
from mmcheck.model.fault import Kernel
from mmcheck.model.linux import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
    TASK_SIZE_X86_64,
)
from mmcheck.model.vma import AddressSpace

pytestmark = [pytest.mark.live,
              pytest.mark.skipif(not live_available()[0], reason=live_available()[1])]

P = PAGE_SIZE
R, W, X = PROT_READ, PROT_WRITE, PROT_EXEC
RW = R | W
PRIV = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED
SHARED = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED
DROP = MAP_DROPPABLE | MAP_ANONYMOUS | MAP_FIXED
TS = TASK_SIZE_X86_64


def kernel_model() -> Kernel:
    return Kernel(2048, pku=exec_only_read_faults(), map_droppable=True)  # Linux 6.11+


def agree(ops: list[Op], pages: bool = False) -> LiveRun:
    """Run ops live and on the model (with the Kernel model for page facts)."""
    live, _, div = compare_live(ops, 16, kernel_factory=kernel_model if pages else None)
    assert div is None, str(div)
    return live


def areas(live: LiveRun, step: int = -1) -> list[str]:
    return [str(a) for a in live[step].maps]


# -- hidden flags and anon_vma decide merges -----------------------------------------------
def test_account_flag_blocks_merge_after_fault():
    live = agree([Mmap(0, 2 * P, RW, PRIV), Write(0, 1), Mprotect(0, 2 * P, R),
                  Mmap(2, P, R, PRIV)])
    assert areas(live) == ["w+0..w+2 r--p [ac]", "w+2..w+3 r--p"]


def test_unfaulted_mprotect_drops_account():
    live = agree([Mmap(0, P, RW, PRIV), Mprotect(0, P, R), Mmap(1, P, R, PRIV)])
    assert areas(live) == ["w+0..w+2 r--p"]


def test_faulted_area_takes_in_an_unfaulted_neighbour():
    live = agree([Mmap(0, 2 * P, RW, PRIV), Write(0, 1), Mmap(2, 2 * P, RW, PRIV),
                  Mmap(6, P, R, PRIV), Mmap(5, P, RW, PRIV), Write(5, 1),
                  Mprotect(6, P, RW)])
    assert areas(live) == ["w+0..w+4 rw-p [ac]", "w+5..w+7 rw-p [ac]"]


def test_separately_faulted_areas_never_merge():
    live = agree([Mmap(0, P, RW, PRIV), Write(0, 1), Mmap(2, P, RW, PRIV), Write(2, 1),
                  Mmap(1, P, RW, PRIV)])
    assert areas(live) == ["w+0..w+2 rw-p [ac]", "w+2..w+3 rw-p [ac]"]


def test_neighbours_faulted_while_adjacent_share_an_anon_vma():
    for first, second in ((1, 0), (0, 1)):
        live = agree([Mmap(0, 2 * P, RW, PRIV), Mprotect(1, P, RW | X), Write(first, 1),
                      Write(second, 1), Mprotect(1, P, RW)])
        assert areas(live) == ["w+0..w+2 rw-p [ac]"]


# -- fork ------------------------------------------------------------------------------------
def test_fork_child_refuses_merge_with_inherited_faulted_area():
    setup = [Mmap(0, 2 * P, RW, PRIV), Write(0, 1), Mmap(4, P, RW, PRIV)]
    child = agree(setup + [Fork("child"), Mmap(2, P, RW, PRIV), Mmap(5, P, RW, PRIV)])
    assert areas(child) == ["w+0..w+2 rw-p [ac]", "w+2..w+3 rw-p [ac]",
                            "w+4..w+6 rw-p [ac]"]
    parent = agree(setup + [Fork("parent"), Mmap(2, P, RW, PRIV)])
    assert areas(parent) == ["w+0..w+3 rw-p [ac]", "w+4..w+5 rw-p [ac]"]


def test_fork_child_remerges_its_own_split():
    live = agree([Mmap(0, 2 * P, RW, PRIV), Write(0, 1), Fork("child"),
                  Mprotect(0, P, R), Mprotect(0, P, RW)])
    assert areas(live) == ["w+0..w+2 rw-p [ac]"]


def test_fork_child_cannot_remerge_a_split_made_before_fork():
    live = agree([Mmap(0, 2 * P, RW, PRIV), Write(0, 1), Mprotect(1, P, R), Fork("child"),
                  Mprotect(1, P, RW)])
    assert areas(live) == ["w+0..w+1 rw-p [ac]", "w+1..w+2 rw-p [ac]"]


def test_wipeonfork_child_keeps_unmerged_twins():
    live = agree([Mmap(0, P, RW, DROP), Write(0, 7), Mmap(2, P, RW, DROP), Write(2, 7),
                  Mmap(1, P, RW, DROP), Fork("child"), Read(0)])
    assert areas(live, -2) == ["w+0..w+2 rw-p [nr wf]", "w+2..w+3 rw-p [nr wf]"]
    assert live[-1].result == 0  # wiped: the parent's 7 is not inherited


def _kernel_at_least(major: int, minor: int) -> bool:
    try:
        got = tuple(int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return got >= (major, minor)


@pytest.mark.skipif(not _kernel_at_least(6, 11), reason="MAP_DROPPABLE needs Linux 6.11+")
def test_map_droppable_is_einval_in_the_contract_only():
    # docs/linux-semantics.md, "Where the contract differs from Linux": Linux (and the
    # model built as the oracle builds it, map_droppable=True) maps it; the contract's
    # AddressSpace, the default model, refuses it with EINVAL ([AS-MMAP-TYPE]).
    live = agree([Mmap(0, P, RW, DROP)])
    assert outcomes(live) == ["ok"] and areas(live) == ["w+0..w+1 rw-p [nr wf]"]
    contract = AddressSpace()
    with pytest.raises(OSError) as err:
        contract.mmap(0x400000, P, RW, DROP)
    assert err.value.errno == errno.EINVAL and contract.vmas() == []


# -- protection bits ---------------------------------------------------------------------------
@pytest.mark.skipif(not exec_only_read_faults(), reason="no execute-only protection key")
def test_exec_only_key_depends_on_the_exact_prot():
    live = agree([Mmap(0, P, X, PRIV), Read(0), Mmap(1, P, X | 0x80, PRIV), Read(1),
                  Mprotect(0, P, X | 0x8), Read(0)])
    assert live[1].signal == signal.SIGSEGV
    assert areas(live, 2) == ["w+0..w+1 --xp [pk]", "w+1..w+2 --xp"]
    assert live[3].result == 0 and live[5].result == 0
    assert areas(live) == ["w+0..w+2 --xp"]


def test_mmap_ignores_unknown_prot_bits_and_write_only_reads():
    live = agree([Mmap(0, P, R | 0x80, PRIV), Mmap(1, P, R, PRIV), Mmap(2, P, W, PRIV),
                  Read(2)])
    assert areas(live) == ["w+0..w+2 r--p", "w+2..w+3 -w-p [ac]"]
    assert live[-1].result == 0 and live[-1].signal is None


# -- errno order ---------------------------------------------------------------------------------
def outcomes(live: LiveRun) -> list[str]:
    return [errno.errorcode[r.errno] if r.errno else "ok" for r in live]


def test_mmap_errno_order():
    ops = [Mmap(4, P, R, PRIV),
           Mmap(0, 0, R, MAP_PRIVATE),  # EBADF before the zero length
           Mmap(0, 0, R, PRIV),
           Mmap(4, P, R, MAP_ANONYMOUS | MAP_FIXED_NOREPLACE),  # EEXIST before the type
           Mmap(4, P, R, MAP_ANONYMOUS | MAP_FIXED | 0x03),  # MAP_SHARED_VALIDATE: EINVAL
           Mmap(None, 2 * P, R, PRIV, absolute=TS - P + 8),  # past TASK_SIZE before align
           Mmap(0, P, R, PRIV, delta=16),
           Mmap(None, (1 << 64) - 100, R, MAP_PRIVATE | MAP_ANONYMOUS),  # length wraps
           Mmap(None, 1 << 48, R, MAP_PRIVATE | MAP_ANONYMOUS),
           Mmap(2, P, R, MAP_DROPPABLE | MAP_ANONYMOUS | MAP_FIXED)]
    assert outcomes(agree(ops)) == ["ok", "EBADF", "EINVAL", "EEXIST", "EINVAL", "ENOMEM",
                                    "EINVAL", "ENOMEM", "ENOMEM", "ok"]


def test_mmap_fixed_below_mmap_min_addr_is_eperm():
    live = agree([Mmap(None, P, R, PRIV, absolute=0)])
    if live.mmap_min_addr < P:
        pytest.skip("vm.mmap_min_addr is 0 here")
    assert outcomes(live) == ["EPERM"]


def test_mprotect_errno_order():
    gd, gu = 0x01000000, 0x02000000
    ops = [Mmap(0, 2 * P, RW, PRIV),
           Mprotect(0, 0, 0x10),  # zero length returns before the prot check
           Mprotect(0, 0, R, delta=8),  # ... but after the alignment check
           Mprotect(0, (1 << 64) - P, 0x10),  # the wrap before the prot check
           Mprotect(0, P, R | 0x8),  # PROT_SEM is valid and changes nothing
           Mprotect(0, P, R | 0x10),
           Mprotect(4, P, R | gd),  # nothing there
           Mprotect(0, P, R | gd),  # not a stack
           Mprotect(0, P, R | gu),
           Mprotect(0, P, R | gd | gu)]
    live = agree(ops)
    assert outcomes(live) == ["ok", "ok", "EINVAL", "ENOMEM", "ok", "EINVAL", "ENOMEM",
                              "EINVAL", "EINVAL", "EINVAL"]
    assert areas(live) == ["w+0..w+1 r--p", "w+1..w+2 rw-p [ac]"]


def test_munmap_errors():
    ops = [Mmap(0, 2 * P, RW, PRIV), Munmap(0, 0), Munmap(0, P, delta=1),
           Munmap(0, 1 << 47), Munmap(0, P, absolute=TS + P), Munmap(8, P)]
    assert outcomes(agree(ops)) == ["ok", "EINVAL", "EINVAL", "EINVAL", "EINVAL", "ok"]


def test_mprotect_meeting_a_hole_leaves_its_partial_effect():
    live = agree([Mmap(0, 2 * P, R, PRIV), Mmap(3, 2 * P, R, PRIV), Mprotect(0, 5 * P, RW)])
    assert outcomes(live)[-1] == "ENOMEM"
    assert areas(live) == ["w+0..w+2 rw-p [ac]", "w+3..w+5 r--p"]


def test_hint_is_rounded_down_and_a_busy_hint_goes_elsewhere():
    hint = MAP_PRIVATE | MAP_ANONYMOUS
    live = agree([Mmap(2, P, R, hint, delta=0x123), Mmap(2, P, R, hint),
                  Mmap(None, P, R, hint, absolute=P // 2)])
    assert live[0].result == 2 * P
    assert live[1].outside and live[2].outside


def test_hintless_2mib_mappings_are_pmd_aligned():
    from mmcheck.checker.live import libc
    from mmcheck.model.vma import PMD_SIZE, AddressSpace

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            addrs = [libc.mmap(0, PMD_SIZE * k, RW, MAP_PRIVATE | MAP_ANONYMOUS)
                     for k in (1, 2, 1)]
            os.write(w, " ".join(map(str, addrs)).encode())
        finally:
            os._exit(0)
    os.close(w)
    live = [int(a) % PMD_SIZE for a in os.read(r, 200).split()]
    os.close(r)
    os.waitpid(pid, 0)
    mm = AddressSpace(mmap_base=0x7F0000003000)
    model = [mm.mmap(0, PMD_SIZE * k, RW, MAP_PRIVATE | MAP_ANONYMOUS) % PMD_SIZE
             for k in (1, 2, 1)]
    assert live == model == [0, 0, 0]


# -- page-level facts ----------------------------------------------------------------------------
def facts(live: LiveRun, step: int) -> dict:
    page = live[step].page
    assert page is not None
    d = {"present": page.present, "exclusive": page.exclusive, "minflt": page.minflt,
         "changed": page.frame_changed}
    if live.pfn_visible:
        d["zero"] = page.zero_page
    return d


def test_read_maps_the_zero_page_and_write_replaces_it():
    live = agree([Mmap(0, P, RW, PRIV), Read(0), Write(0, 9), Write(0, 10), Read(0)],
                 pages=True)
    z = {"zero": True} if live.pfn_visible else {}
    assert facts(live, 1) == {"present": True, "exclusive": False, "minflt": 1,
                              "changed": None, **z}
    changed = True if live.pfn_visible else None
    assert facts(live, 2) == {"present": True, "exclusive": True, "minflt": 1,
                              "changed": changed, **({"zero": False} if z else {})}
    assert facts(live, 3)["minflt"] == 0 and live[4].result == 10


def test_first_write_after_fork_copies_and_later_ones_do_not():
    live = agree([Mmap(0, P, RW, PRIV), Write(0, 5), Fork("child"), Read(0), Write(0, 6),
                  Write(0, 7)], pages=True)
    visible = live.pfn_visible
    assert live[3].result == 5
    assert facts(live, 3)["minflt"] == 0 and facts(live, 3)["exclusive"] is False
    assert facts(live, 4)["minflt"] == 1 and facts(live, 4)["exclusive"] is True
    assert facts(live, 4)["changed"] is (True if visible else None)
    assert facts(live, 5)["minflt"] == 0


@pytest.mark.parametrize("follow", ["child", "parent"])
def test_last_sharer_reuses_its_page(follow):
    live = agree([Mmap(0, P, RW, PRIV), Write(0, 5), Read(0), Fork(follow, "exit"),
                  Write(0, 6)], pages=True)
    assert facts(live, 4)["minflt"] == 1  # still a write-protect fault ...
    assert facts(live, 4)["changed"] is (False if live.pfn_visible else None)  # ... no copy


def test_shared_pages_are_faulted_in_again_after_fork():
    live = agree([Mmap(0, P, RW, SHARED), Write(0, 5), Fork("child"), Read(0)],
                 pages=True)
    assert live[-1].result == 5
    assert facts(live, 3)["minflt"] == 1 and live[-1].page.shmem is True
