"""The reference address space (model/vma.py) on its own: splits, merges, holes,
errno order, max_map_count, placement, anon_vma and fork, maps rendering."""

from __future__ import annotations

import errno
import random

import pytest
from mmcheck.model.linux import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_NONE,
    PROT_READ,
    PROT_WRITE,
)
from mmcheck.model.vma import (
    MAP_DROPPABLE,
    MAP_NORESERVE,
    PMD_SIZE,
    VM_ACCOUNT,
    VM_NORESERVE,
    VM_WIPEONFORK,
    VOCABULARY,
    AddressSpace,
    Gap,
    Vma,
    gaps_between,
    snapshot_from_vmas,
)

P = PAGE_SIZE
B = 0x7F0000000000  # where the tests put things
PRIV = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED
SHARED = MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED
R, W, X = PROT_READ, PROT_WRITE, PROT_EXEC
RW = R | W


def pages(mm: AddressSpace) -> list[tuple[int, int, int, int]]:
    """The areas in pages from B, with prot and MAP_SHARED/MAP_PRIVATE."""
    return [((s - B) // P, (e - B) // P, prot, fl) for s, e, prot, fl in mm.vmas()]


def at(page: int) -> int:
    return B + page * P


def m(mm: AddressSpace, page: int, n: int, prot: int = RW, flags: int = PRIV) -> int:
    return mm.mmap(at(page), n * P, prot, flags)


def err(call, *args) -> int:
    with pytest.raises(OSError) as info:
        call(*args)
    return info.value.errno


def area(mm: AddressSpace, page: int):
    vma = mm.vma_lookup(at(page))
    assert vma is not None
    return vma


# -- contract basics ---------------------------------------------------------------------
def test_fixed_mmap_returns_its_address_and_shows_in_vmas():
    mm = AddressSpace()
    assert m(mm, 0, 2, R) == at(0)
    assert mm.vmas() == [(at(0), at(2), R, MAP_PRIVATE)]
    mm.check_mm()


def test_length_is_rounded_up_to_pages():
    mm = AddressSpace()
    mm.mmap(at(0), P + 1, R, PRIV)
    assert pages(mm) == [(0, 2, R, MAP_PRIVATE)]


def test_find_vma_is_the_first_area_ending_above():
    mm = AddressSpace()
    m(mm, 2, 2, R)
    m(mm, 6, 1, RW)
    assert mm.find_vma(at(0)) == (at(2), at(4), R, MAP_PRIVATE)  # below: the next one
    assert mm.find_vma(at(3) + 5) == (at(2), at(4), R, MAP_PRIVATE)
    assert mm.find_vma(at(4)) == (at(6), at(7), RW, MAP_PRIVATE)  # vm_end is exclusive
    assert mm.find_vma(at(7)) is None
    assert mm.vma_lookup(at(5)) is None


# -- splits ------------------------------------------------------------------------------
def test_mprotect_in_the_middle_splits_in_three():
    mm = AddressSpace()
    m(mm, 0, 6, RW)
    mm.mprotect(at(2), 2 * P, R)
    assert pages(mm) == [(0, 2, RW, 2), (2, 4, R, 2), (4, 6, RW, 2)]
    assert mm.map_count == 3
    # a private area's pgoff stays its address in pages
    assert [v.vm_pgoff for v in mm] == [at(i) // P for i in (0, 2, 4)]
    mm.check_mm()


def test_munmap_in_the_middle_leaves_two():
    mm = AddressSpace()
    m(mm, 0, 6, RW)
    mm.munmap(at(2), 2 * P)
    assert pages(mm) == [(0, 2, RW, 2), (4, 6, RW, 2)]
    mm.munmap(at(0), 6 * P)
    assert mm.vmas() == [] and mm.map_count == 0


def test_shared_split_parts_keep_file_offsets():
    mm = AddressSpace()
    m(mm, 0, 4, RW, SHARED)
    mm.mprotect(at(1), P, R)
    files = {v.vm_file for v in mm}
    assert len(files) == 1 and None not in files
    assert [v.vm_pgoff for v in mm] == [0, 1, 2]


# -- merges ------------------------------------------------------------------------------
def test_adjacent_private_mappings_merge_left_right_and_both_ways():
    mm = AddressSpace()
    m(mm, 0, 2)
    m(mm, 2, 1)  # merges with prev
    m(mm, 5, 1)
    m(mm, 4, 1)  # merges with next
    assert pages(mm) == [(0, 3, RW, 2), (4, 6, RW, 2)]
    m(mm, 3, 1)  # fills the hole: a three-way merge
    assert pages(mm) == [(0, 6, RW, 2)] and mm.map_count == 1
    mm.check_mm()


def test_different_protections_or_types_do_not_merge():
    mm = AddressSpace()
    m(mm, 0, 1, R)
    m(mm, 1, 1, RW)
    m(mm, 2, 1, RW, SHARED)
    m(mm, 3, 1, RW, SHARED)  # two shmem files: never one area
    assert len(mm.vmas()) == 4


def test_mprotect_back_merges_three_ways():
    mm = AddressSpace()
    m(mm, 0, 6, R)
    mm.mprotect(at(2), 2 * P, RW)
    mm.mprotect(at(2), 2 * P, R)
    assert pages(mm) == [(0, 6, R, 2)]
    mm.check_mm()


def test_mprotect_of_an_edge_moves_the_boundary_without_a_split():
    mm = AddressSpace()
    m(mm, 0, 2, R)
    m(mm, 2, 4, RW)
    before = mm.map_count
    mm.mprotect(at(2), P, R)  # prev grows, the area shrinks
    assert pages(mm) == [(0, 3, R, 2), (3, 6, RW, 2)] and mm.map_count == before
    mm.mprotect(at(2), P, RW)  # and back: next grows down
    assert pages(mm) == [(0, 2, R, 2), (2, 6, RW, 2)]


def test_shared_area_remerges_after_split_and_restore():
    mm = AddressSpace()
    m(mm, 0, 4, RW, SHARED)
    mm.mprotect(at(1), 2 * P, R)
    mm.mprotect(at(1), 2 * P, RW)
    assert pages(mm) == [(0, 4, RW, MAP_SHARED)]


def test_account_flag_follows_write_until_faulted():
    mm = AddressSpace()
    m(mm, 0, 1, RW)
    assert area(mm, 0).vm_flags & VM_ACCOUNT
    mm.mprotect(at(0), P, R)  # never written: uncharged
    assert not area(mm, 0).vm_flags & VM_ACCOUNT
    m(mm, 1, 1, R)
    assert pages(mm) == [(0, 2, R, 2)]
    mm.mprotect(at(0), 2 * P, RW)
    mm.anon_vma_prepare(at(0))
    mm.mprotect(at(0), 2 * P, R)  # written: stays charged
    assert area(mm, 0).vm_flags & VM_ACCOUNT
    m(mm, 2, 1, R)  # a fresh read-only area has no VM_ACCOUNT: no merge
    assert pages(mm) == [(0, 2, R, 2), (2, 3, R, 2)]


def test_noreserve_mappings_are_never_charged():
    mm = AddressSpace()
    m(mm, 0, 1, RW, PRIV | MAP_NORESERVE)
    v = area(mm, 0)
    assert v.vm_flags & VM_NORESERVE and not v.vm_flags & VM_ACCOUNT
    m(mm, 1, 1, RW)
    assert len(mm.vmas()) == 2
    mm2 = AddressSpace(overcommit_memory=2)  # OVERCOMMIT_NEVER ignores MAP_NORESERVE
    m(mm2, 0, 1, RW, PRIV | MAP_NORESERVE)
    assert not area(mm2, 0).vm_flags & VM_NORESERVE


# -- anon_vma ----------------------------------------------------------------------------
def test_unfaulted_neighbour_joins_a_faulted_area():
    mm = AddressSpace()
    m(mm, 0, 2)
    anon = mm.anon_vma_prepare(at(0))
    m(mm, 2, 2)
    assert pages(mm) == [(0, 4, RW, 2)] and area(mm, 3).anon_vma is anon


def test_separately_faulted_areas_never_merge():
    mm = AddressSpace()
    m(mm, 0, 1)
    m(mm, 2, 1)
    mm.anon_vma_prepare(at(0))
    mm.anon_vma_prepare(at(2))
    m(mm, 1, 1)  # both sides fit, but prev's and next's anon_vmas differ
    assert pages(mm) == [(0, 2, RW, 2), (2, 3, RW, 2)]


def test_adjacent_faults_share_an_anon_vma():
    mm = AddressSpace()
    m(mm, 0, 2)
    mm.mprotect(at(1), P, RW | X)
    a = mm.anon_vma_prepare(at(1))
    b = mm.anon_vma_prepare(at(0))  # find_mergeable_anon_vma: next's, flags differ in rwx
    assert a is b
    mm.mprotect(at(1), P, RW)
    assert pages(mm) == [(0, 2, RW, 2)]


def test_shared_areas_get_no_anon_vma():
    mm = AddressSpace()
    m(mm, 0, 1, RW, SHARED)
    assert mm.anon_vma_prepare(at(0)) is None
    with pytest.raises(ValueError):
        mm.anon_vma_prepare(at(5))


def test_unfaulted_sides_join_a_faulted_middle():
    mm = AddressSpace()
    m(mm, 0, 3, R)
    mm.mprotect(at(1), P, RW)
    anon = mm.anon_vma_prepare(at(1))
    mm.mprotect(at(0), P, RW)  # joins the faulted area on its right
    mm.mprotect(at(2), P, RW)  # and on its left
    assert pages(mm) == [(0, 3, RW, 2)] and area(mm, 0).anon_vma is anon


def test_faulted_middle_joins_unfaulted_sides():
    mm = AddressSpace()
    m(mm, 0, 3, RW)
    mm.mprotect(at(1), P, R)
    mm.mprotect(at(1), P, RW)
    mm.anon_vma_prepare(at(0))  # the whole area
    mm.mprotect(at(1), P, R)  # split: all three parts share the anon_vma
    mm.munmap(at(0), P)
    mm.munmap(at(2), P)
    m(mm, 0, 1, RW)  # fresh, unfaulted neighbours
    m(mm, 2, 1, RW)
    assert len(mm.vmas()) == 3
    mm.mprotect(at(1), P, RW)  # the faulted middle takes both in (case 1, twice)
    assert pages(mm) == [(0, 3, RW, 2)] and area(mm, 2).anon_vma is not None


# -- fork --------------------------------------------------------------------------------
def test_fork_child_refuses_to_merge_with_an_inherited_faulted_area():
    parent = AddressSpace()
    m(parent, 0, 2)
    parent.anon_vma_prepare(at(0))
    child = parent.fork()
    m(child, 2, 1)
    assert pages(child) == [(0, 2, RW, 2), (2, 3, RW, 2)]
    m(parent, 2, 1)
    assert pages(parent) == [(0, 3, RW, 2)]
    # its own split of the inherited area merges back (same anon_vma)
    child.mprotect(at(0), P, R)
    child.mprotect(at(0), P, RW)
    assert pages(child)[0] == (0, 2, RW, 2)


def test_fork_child_cannot_remerge_a_split_made_before_fork():
    parent = AddressSpace()
    m(parent, 0, 2)
    parent.anon_vma_prepare(at(0))
    parent.mprotect(at(1), P, R)
    child = parent.fork()
    child.mprotect(at(1), P, RW)  # each half got an anon_vma of its own in the child
    assert pages(child) == [(0, 1, RW, 2), (1, 2, RW, 2)]
    parent.mprotect(at(1), P, RW)
    assert pages(parent) == [(0, 2, RW, 2)]


def test_fork_of_unfaulted_areas_merges_as_before():
    parent = AddressSpace()
    m(parent, 0, 2)
    child = parent.fork()
    m(child, 2, 1)
    assert pages(child) == [(0, 3, RW, 2)]
    assert child.map_count == 1 and parent.map_count == 1


def test_wipeonfork_child_keeps_unmergeable_twins():
    parent = AddressSpace(map_droppable=True)  # Linux 6.11+, not the contract
    m(parent, 0, 1, RW, PRIV & ~MAP_PRIVATE | MAP_DROPPABLE)
    m(parent, 2, 1, RW, PRIV & ~MAP_PRIVATE | MAP_DROPPABLE)
    parent.anon_vma_prepare(at(0))
    parent.anon_vma_prepare(at(2))
    m(parent, 1, 1, RW, PRIV & ~MAP_PRIVATE | MAP_DROPPABLE)
    assert pages(parent) == [(0, 2, RW, 2), (2, 3, RW, 2)]
    child = parent.fork()
    assert all(v.anon_vma is None and v.vm_flags & VM_WIPEONFORK for v in child)
    assert pages(child) == [(0, 2, RW, 2), (2, 3, RW, 2)]  # equal flags, yet two areas


def test_anon_vma_reuse_after_ancestors_leave():
    a = AddressSpace()
    m(a, 0, 1)
    root = a.anon_vma_prepare(at(0))
    b = a.fork()
    mid = area(b, 0).anon_vma
    c = b.fork()
    assert area(c, 0).anon_vma not in (root, mid)
    b.exit_mmap()  # mid: no area uses it any more, and it has one child (c's)
    d = c.fork()
    assert area(d, 0).anon_vma is mid  # anon_vma_clone reuses it
    assert len(area(d, 0).anon_vma_chain) == 3
    assert root.num_children == 2  # itself and mid: the root is never reused


def test_exit_mmap_unlinks_everything():
    a = AddressSpace()
    m(a, 0, 1)
    root = a.anon_vma_prepare(at(0))
    b = a.fork()
    b.exit_mmap()
    a.exit_mmap()
    assert root.avcs == 0 and root.num_active_vmas == 0 and root.num_children == 0
    assert a.vmas() == [] and a.map_count == 0


# -- holes -------------------------------------------------------------------------------
def test_mprotect_meeting_a_hole_has_changed_what_came_before():
    mm = AddressSpace()
    m(mm, 0, 2, R)
    m(mm, 3, 2, R)
    assert err(mm.mprotect, at(0), 5 * P, RW) == errno.ENOMEM
    assert pages(mm) == [(0, 2, RW, 2), (3, 5, R, 2)]


def test_mprotect_starting_in_a_hole_changes_nothing():
    mm = AddressSpace()
    m(mm, 1, 2, R)
    assert err(mm.mprotect, at(0), 3 * P, RW) == errno.ENOMEM
    assert pages(mm) == [(1, 3, R, 2)]


def test_munmap_of_nothing_is_fine():
    mm = AddressSpace()
    mm.munmap(at(0), 4 * P)
    assert mm.vmas() == []


# -- errno order -------------------------------------------------------------------------
TS = (1 << 47) - P


@pytest.mark.parametrize("args, expected", [
    ((at(0), 0, R, MAP_PRIVATE), errno.EBADF),  # no MAP_ANONYMOUS comes first
    ((at(0), 0, R, PRIV), errno.EINVAL),  # zero length
    ((at(0), (1 << 64) - 10, R, MAP_PRIVATE | MAP_ANONYMOUS), errno.ENOMEM),  # wraps
    ((at(0), 1 << 48, R, MAP_PRIVATE | MAP_ANONYMOUS), errno.ENOMEM),  # above TASK_SIZE
    ((TS - P, 2 * P, R, PRIV), errno.ENOMEM),  # past TASK_SIZE before ...
    ((TS - P + 1, 2 * P, R, PRIV), errno.ENOMEM),  # ... the alignment check
    ((at(0) + 1, P, R, PRIV), errno.EINVAL),  # unaligned fixed address
    ((0, P, R, PRIV), errno.EPERM),  # below mmap_min_addr
    ((0x1000, P, R, PRIV | 0x0F), errno.EPERM),  # placement before the map type
    ((at(0), P, R, MAP_ANONYMOUS | MAP_FIXED), errno.EINVAL),  # no type
    ((at(0), P, R, 0x03 | MAP_ANONYMOUS | MAP_FIXED), errno.EINVAL),  # SHARED_VALIDATE
    ((at(8), P, R, MAP_ANONYMOUS | MAP_FIXED_NOREPLACE), errno.EEXIST),  # before the type
    ((at(8) + 8, P, R, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE), errno.EINVAL),
])
def test_mmap_errors_in_linux_order(args, expected):
    mm = AddressSpace()
    m(mm, 8, 1, R)
    assert err(mm.mmap, *args) == expected
    assert pages(mm) == [(8, 9, R, 2)]  # and nothing changed


@pytest.mark.parametrize("args, expected", [
    ((at(0) + 8, P, R), errno.EINVAL),
    ((at(0) + 8, 0, R), errno.EINVAL),  # alignment before the zero length
    ((at(0), (1 << 64) - 2 * P, 0x10), errno.ENOMEM),  # the wrap before the prot bits
    ((at(0), P, R | 0x10), errno.EINVAL),
    ((at(0), P, 0x01000000 | 0x02000000), errno.EINVAL),  # both grows bits
    ((at(0), P, R | 0x01000000), errno.EINVAL),  # PROT_GROWSDOWN on a plain area
    ((at(4), P, R | 0x01000000), errno.ENOMEM),  # ... or nothing there
    ((at(0), P, R | 0x02000000), errno.EINVAL),  # PROT_GROWSUP: x86 has none
    ((at(4), P, R), errno.ENOMEM),
])
def test_mprotect_errors_in_linux_order(args, expected):
    mm = AddressSpace()
    m(mm, 0, 2, RW)
    assert err(mm.mprotect, *args) == expected
    assert pages(mm) == [(0, 2, RW, 2)]


def test_mprotect_quirks_that_succeed():
    mm = AddressSpace()
    m(mm, 0, 2, RW)
    mm.mprotect(at(0), 0, 0x10)  # zero length returns before the prot check
    mm.mprotect(at(0), P, R | 0x8)  # PROT_SEM is a valid bit, with no effect
    assert pages(mm) == [(0, 1, R, 2), (1, 2, RW, 2)]


def test_prot_sem_as_the_contract_and_x86_linux_say():
    # docs/contract.md [AS-MMAP], [AS-MPROTECT-ERRNO]; docs/linux-semantics.md: PROT_SEM
    # (0x8) is accepted by mmap (ignored, as every bit above PROT_EXEC) and by
    # mprotect (a valid bit with no effect, where 0x10 is EINVAL).
    mm = AddressSpace()
    m(mm, 0, 1, R | 0x8)
    m(mm, 1, 1, R)
    m(mm, 3, 1, 0x8)
    assert pages(mm) == [(0, 2, R, 2), (3, 4, 0, 2)]
    mm.mprotect(at(3), P, RW | 0x8)
    assert pages(mm)[-1] == (3, 4, RW, 2)
    assert err(mm.mprotect, at(3), P, R | 0x10) == errno.EINVAL


@pytest.mark.parametrize("args", [(at(0) + 1, P), (at(0), 0), (TS + P, P), (at(0), 1 << 47)])
def test_munmap_errors(args):
    mm = AddressSpace()
    m(mm, 0, 2)
    assert err(mm.munmap, *args) == errno.EINVAL
    assert pages(mm) == [(0, 2, RW, 2)]


def test_mmap_ignores_unknown_prot_bits_and_accepts_droppable_as_linux():
    mm = AddressSpace(map_droppable=True)
    m(mm, 0, 1, R | 0x80)
    m(mm, 1, 1, R)
    assert pages(mm) == [(0, 2, R, 2)]
    m(mm, 4, 1, RW, MAP_DROPPABLE | MAP_ANONYMOUS | MAP_FIXED)
    assert pages(mm)[-1] == (4, 5, RW, MAP_PRIVATE)


def test_contract_address_space_refuses_droppable():
    # docs/contract.md [AS-MMAP-TYPE]: the contract's AddressSpace says EINVAL for
    # MAP_DROPPABLE, where Linux 6.11+ (map_droppable=True above) accepts it.
    mm = AddressSpace()
    with pytest.raises(OSError) as err:
        mm.mmap(at(4), PAGE_SIZE, RW, MAP_DROPPABLE | MAP_ANONYMOUS | MAP_FIXED)
    assert err.value.errno == errno.EINVAL and mm.errno == errno.EINVAL and mm.vmas() == []


def test_exec_only_key():
    mm = AddressSpace(exec_only_pkey=True)
    m(mm, 0, 1, X)
    m(mm, 1, 1, X | 0x80)  # prot != PROT_EXEC exactly: no key, no merge
    assert len(mm.vmas()) == 2
    assert not mm.access_permitted(at(0), write=False)
    assert mm.access_permitted(at(1), write=False)
    mm.mprotect(at(0), P, X | 0x8)  # leaving execute-only drops the key
    assert mm.access_permitted(at(0), write=False)
    assert pages(mm) == [(0, 2, X, 2)]
    plain = AddressSpace()
    m(plain, 0, 1, X)
    assert plain.access_permitted(at(0), write=False)


def test_access_permitted_follows_x86():
    mm = AddressSpace()
    m(mm, 0, 1, W)
    m(mm, 1, 1, PROT_NONE)
    m(mm, 2, 1, R)
    assert mm.access_permitted(at(0), write=False)  # write implies read
    assert not mm.access_permitted(at(1), write=False)
    assert not mm.access_permitted(at(2), write=True)
    assert mm.access_permitted(at(2), write=False, exec_=False)
    assert not mm.access_permitted(at(2), write=False, exec_=True)
    assert not mm.access_permitted(at(3), write=False)


# -- max_map_count -----------------------------------------------------------------------
def filled(count: int, top: int) -> AddressSpace:
    """An address space with `count` areas (pages 20, 22, ...) and A = [0, 8)."""
    mm = AddressSpace(max_map_count=top)
    m(mm, 0, 8, PROT_NONE)
    for i in range(count - 1):
        m(mm, 20 + 2 * i, 1, PROT_NONE)
    assert mm.map_count == count
    return mm


def test_split_refused_at_max_map_count_after_the_first_split():
    mm = filled(9, 10)
    assert err(mm.mprotect, at(2), 2 * P, R) == errno.ENOMEM
    assert pages(mm)[:2] == [(0, 2, 0, 2), (2, 8, 0, 2)]  # the first split stayed
    assert mm.map_count == 10
    assert err(mm.mprotect, at(2), 2 * P, R) == errno.ENOMEM
    mm.mprotect(at(2), 6 * P, R)  # no split needed
    mm.mprotect(at(2), 6 * P, PROT_NONE)  # merges: one area fewer
    assert mm.map_count == 9


def test_munmap_needing_a_new_area_refused_at_max():
    mm = filled(10, 10)
    assert err(mm.munmap, at(3), P) == errno.ENOMEM
    mm.munmap(at(0), P)  # an edge: the split is not counted
    assert mm.map_count == 10
    assert err(mm.mmap, at(3), P, R, PRIV) == errno.ENOMEM  # MAP_FIXED inside A


def test_mmap_refused_only_above_max():
    mm = filled(10, 10)
    m(mm, 10, 1, R)
    assert mm.map_count == 11
    assert err(mm.mmap, at(12), P, R, PRIV) == errno.ENOMEM
    assert err(mm.mmap, at(10), P, R, PRIV) == errno.ENOMEM  # even replacing


# -- placement ---------------------------------------------------------------------------
def test_placement_is_top_down_from_mmap_base():
    mm = AddressSpace(mmap_base=at(100))
    a = mm.mmap(0, 2 * P, R, MAP_PRIVATE | MAP_ANONYMOUS)
    b = mm.mmap(0, P, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    assert (a, b) == (at(98), at(97))
    assert mm.get_unmapped_area(0, P, MAP_PRIVATE | MAP_ANONYMOUS) == at(96)
    assert err(mm.get_unmapped_area, 0, P, MAP_FIXED) == errno.EPERM


def test_hint_used_when_free_rounded_down_and_raised_to_min():
    mm = AddressSpace(mmap_base=at(100))
    assert mm.mmap(at(10) + 123, P, R, MAP_PRIVATE | MAP_ANONYMOUS) == at(10)
    assert mm.mmap(at(10), P, R, MAP_PRIVATE | MAP_ANONYMOUS) == at(99)  # busy: top-down
    assert mm.mmap(0x1000, P, R, MAP_PRIVATE | MAP_ANONYMOUS) == 0x10000


def test_hintless_multiple_of_2mib_is_pmd_aligned():
    mm = AddressSpace(mmap_base=B + 3 * P)
    s = mm.mmap(0, PMD_SIZE, RW, MAP_SHARED | MAP_ANONYMOUS)  # shmem: no alignment
    assert s == B + 3 * P - PMD_SIZE
    a = mm.mmap(0, PMD_SIZE, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    assert a == B - 2 * PMD_SIZE  # padded by 2 MiB below s, then aligned
    h = mm.mmap(B - 2 * PMD_SIZE - 4 * PMD_SIZE + P, PMD_SIZE, RW,
                MAP_PRIVATE | MAP_ANONYMOUS)
    assert h == B - 6 * PMD_SIZE + P  # a hint turns the alignment off


def test_full_space_falls_back_bottom_up_then_enomem():
    top = 64 << 20
    mm = AddressSpace(task_size=top, mmap_min_addr=P)
    assert mm.mmap_base == top
    got = []
    while True:
        try:
            got.append(mm.mmap(0, 8 << 20, R, MAP_PRIVATE | MAP_ANONYMOUS))
        except OSError as e:
            assert e.errno == errno.ENOMEM
            break
    assert got == [(56 - 8 * i) << 20 for i in range(7)]  # [4K, 8M) is a page short
    mm2 = AddressSpace(task_size=top, mmap_min_addr=P, mmap_base=16 << 20)
    assert mm2.mmap(0, (15 << 20) + P, R, MAP_PRIVATE | MAP_ANONYMOUS) == (1 << 20) - P
    # nothing below mmap_base fits 1 MiB any more: bottom-up from TASK_UNMAPPED_BASE
    assert mm2.mmap(0, 1 << 20, R, MAP_PRIVATE | MAP_ANONYMOUS) == mm2.mmap_legacy_base


# -- rendering and vocabulary --------------------------------------------------------------
def test_maps_lines_look_like_proc():
    mm = AddressSpace()
    m(mm, 0, 1, RW)
    m(mm, 1, 2, R, SHARED)
    lines = mm.maps().splitlines()
    assert lines[0] == f"{at(0):08x}-{at(1):08x} rw-p 00000000 00:00 0 "
    assert lines[1].startswith(f"{at(1):08x}-{at(3):08x} r--s 00000000 00:01 ")
    assert lines[1].endswith("/dev/zero (deleted)") and lines[1].index("/dev") == 73


def test_snapshot_names_match_the_vocabulary():
    mm = AddressSpace(task_size=1 << 30, mmap_min_addr=P)
    mm.mmap(8 * P, P, R, PRIV)
    snap = mm.snapshot()
    assert set(snap) == {s.name for s in VOCABULARY.state}
    assert snap["vmas"] == [Vma(8 * P, 9 * P, R, MAP_PRIVATE)]
    assert snap["gaps"] == [Gap(P, 8 * P), Gap(9 * P, 1 << 30)]
    assert snap["map_count"] == 1
    mm.munmap(8 * P, P)
    assert snap["map_count"] == 1  # a snapshot does not move
    sub = snapshot_from_vmas([(8 * P, 9 * P, R, MAP_PRIVATE)], task_size=1 << 30,
                             mmap_min_addr=P)
    assert set(sub) == set(snap) and sub["gaps"] == snap["gaps"]
    assert VOCABULARY.operation("mmap").returns == "int"
    assert VOCABULARY.record("Vma").fields == (("start", "int"), ("end", "int"),
                                               ("prot", "int"), ("flags", "int"))


def test_gaps_between_clips_to_bounds():
    assert gaps_between([(0, 10, 0, 0), (20, 30, 0, 0)], 5, 25) == [Gap(10, 20)]
    assert gaps_between([], 5, 25) == [Gap(5, 25)]


# -- random operations keep the structure sound ------------------------------------------
def maximally_merged(mm: AddressSpace) -> bool:
    """With no fault and no fork, no two neighbours could have been one area."""
    vmas = list(mm)
    for a, b in zip(vmas, vmas[1:], strict=False):
        if a.vm_end == b.vm_start and a.vm_flags == b.vm_flags and a.vm_file is b.vm_file \
                and b.vm_pgoff == a.vm_pgoff + a.pages():
            return False
    return True


@pytest.mark.parametrize("seed", range(6))
def test_random_operations_keep_mm_valid(seed):
    rng = random.Random(seed)
    mm = AddressSpace(max_map_count=40)
    faulted = False
    for _ in range(600):
        p, n = rng.randrange(30), rng.randint(1, 5)
        prot = rng.randrange(8)
        kind = rng.random()
        try:
            if kind < 0.4:
                flags = rng.choice((PRIV, PRIV, SHARED, PRIV | MAP_NORESERVE))
                mm.mmap(at(p), n * P, prot, flags)
            elif kind < 0.6:
                mm.munmap(at(p), n * P)
            elif kind < 0.9 or seed % 2 == 0:
                mm.mprotect(at(p), n * P, prot)
            elif mm.vma_lookup(at(p)) is not None:
                mm.anon_vma_prepare(at(p))
                faulted = True
        except OSError as e:
            assert e.errno in (errno.ENOMEM, errno.EEXIST)
        mm.check_mm()
        assert mm.map_count <= mm.max_map_count + 1
        if not faulted:
            assert maximally_merged(mm)
