"""The vmalloc model (model/vmalloc.py): vm_struct list, guard pages, kernel page table, TLB."""

from __future__ import annotations

import pytest
from mmcheck.checker.sandbox.pages import AuditedPages
from mmcheck.model.buddy import BuddyAllocator
from mmcheck.model.layout import MiB, __pa, i386_layout
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.model.page import MemMap, PG_vmalloc
from mmcheck.model.vmalloc import (
    PAGE_KERNEL,
    Area,
    KernelPageTable,
    Vmalloc,
    touch,
)

P = PAGE_SIZE
LAYOUT = i386_layout(64 * MiB)


def make(npages: int = 64, window: int = 0, **kw: object) -> tuple[Vmalloc, AuditedPages]:
    buddy = BuddyAllocator(npages)
    pages = AuditedPages(buddy)
    kpt = KernelPageTable(AuditedPages(buddy))
    end = LAYOUT.vmalloc_start + window * P if window else LAYOUT.vmalloc_end
    return Vmalloc(LAYOUT.vmalloc_start, end, pages, kpt, layout=LAYOUT, **kw), pages


def test_areas_first_fit_with_a_guard_page_each() -> None:
    vm, pages = make()
    a = vm.vmalloc(1)
    b = vm.vmalloc(2 * P)
    c = vm.vmalloc(P + 1)
    start = LAYOUT.vmalloc_start
    assert (a, b, c) == (start, start + 2 * P, start + 5 * P)
    assert vm.areas() == [(a, 2 * P), (b, 3 * P), (c, 3 * P)]
    assert pages.pages_held() == 5
    vm.vfree(b)
    assert vm.vmalloc(P) == b  # the first gap that holds a page and its guard
    assert vm.vmalloc(P) == c + 3 * P  # the page left in that gap has no room for a guard


def test_each_page_mapped_once_guard_unmapped_not_in_direct_map() -> None:
    vm, pages = make()
    addr = vm.vmalloc(3 * P)
    assert addr is not None and addr >= LAYOUT.high_memory + 8 * MiB
    ptes = vm.pgtable.walk_range(LAYOUT.vmalloc_start, LAYOUT.vmalloc_end)
    assert [va for va, _, _ in ptes] == [addr, addr + P, addr + 2 * P]
    assert sorted(pfn for _, pfn, _ in ptes) == sorted(pages.held)
    assert all(flags == PAGE_KERNEL for _, _, flags in ptes)
    assert vm.pgtable.walk(addr + 3 * P) is None  # the guard page
    with pytest.raises(ValueError):
        __pa(addr, LAYOUT)  # vmalloc addresses have no linear relation to frames
    snap = vm.snapshot()
    for h in snap["held"]:
        assert __pa(h.alias, LAYOUT) == h.pfn * P


def test_vfree_unmaps_flushes_and_frees() -> None:
    vm, pages = make()
    addr = vm.vmalloc(2 * P)
    assert addr is not None
    assert touch(vm.pgtable, addr, 2 * P) == [] and len(vm.pgtable.tlb) == 2
    vm.vfree(addr)
    assert vm.areas() == [] and pages.pages_held() == 0
    assert vm.pgtable.walk_range() == [] and len(vm.pgtable.tlb) == 0
    assert touch(vm.pgtable, addr, P) == [addr]


def test_vfree_checks_its_address() -> None:
    vm, _ = make()
    addr = vm.vmalloc(P)
    assert addr is not None
    vm.vfree(0)
    for bad in (addr + P, addr + 1, LAYOUT.vmalloc_start + 64 * P):
        with pytest.raises(ValueError):
            vm.vfree(bad)
    assert vm.areas() == [(addr, 2 * P)]
    with pytest.raises(ValueError):
        vm.vmalloc(-1)
    assert vm.vmalloc(0) is None


def test_out_of_pages_or_range_gives_everything_back() -> None:
    vm, pages = make(npages=8)
    taken = pages.pages_held()
    assert vm.vmalloc(64 * P) is None
    assert vm.areas() == [] and pages.pages_held() == taken
    small, _ = make(window=5)
    assert small.vmalloc(4 * P) == LAYOUT.vmalloc_start  # 4 pages + guard fill the window
    assert small.vmalloc(1) is None and len(small.areas()) == 1


class Owners:
    """A PageOwner that sets PG_vmalloc on a mem_map, as model/machine.py does."""

    def __init__(self, npages: int) -> None:
        self.mem_map = MemMap(npages)

    def set_page_owner(self, pfn: int, owner: str | None) -> None:
        if owner == "vmalloc":
            self.mem_map.SetPageFlag(pfn, PG_vmalloc)
        else:
            self.mem_map.ClearPageFlag(pfn, PG_vmalloc)


def test_pg_vmalloc_marked_and_cleared_on_struct_page() -> None:
    owners = Owners(64)
    vm, pages = make(owner=owners)
    addr = vm.vmalloc(3 * P)
    assert addr is not None
    marked = {pfn for pfn in range(64) if owners.mem_map.TestPageFlag(pfn, PG_vmalloc)}
    assert marked == set(pages.held) and len(marked) == 3
    vm.vfree(addr)
    assert not any(owners.mem_map.TestPageFlag(pfn, PG_vmalloc) for pfn in range(64))


def test_without_guard_areas_touch() -> None:
    vm, _ = make(guard=False)
    a, b = vm.vmalloc(P), vm.vmalloc(P)
    assert a is not None and b == a + P
    assert vm.snapshot()["areas"] == [Area(a, P), Area(b, P)]


def test_x86_64_layout_with_a_4_level_kernel_page_table() -> None:
    from mmcheck.model.layout import x86_64_layout

    layout = x86_64_layout(1 << 30)
    buddy = BuddyAllocator(64)
    kpt = KernelPageTable(AuditedPages(buddy), levels=4)
    vm = Vmalloc(layout.vmalloc_start, layout.vmalloc_end, AuditedPages(buddy), kpt,
                 layout=layout)
    addr = vm.vmalloc(2 * P)
    assert addr == 0xFFFFC90000000000  # vmalloc_base, 4-level, no KASLR
    assert [va for va, _, _ in kpt.walk_range(addr, addr + 3 * P)] == [addr, addr + P]
    held = vm.snapshot()["held"]
    assert all(h.alias == layout.page_offset + h.pfn * P for h in held)
    vm.vfree(addr)
    assert kpt.walk_range() == [] and vm.areas() == []
