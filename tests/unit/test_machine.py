"""The machine (model/machine.py): every allocator on one mem_map, one owner per page frame."""

from __future__ import annotations

import pytest
from mmcheck.model.machine import Machine, OwnedPages
from mmcheck.model.page import BadPage, PG_reserved

PAGE = 4096


def owners(m: Machine) -> list[list[str]]:
    return [m.owners(pfn) for pfn in range(m.node.node_spanned_pages)]


def test_boot_reserves_the_kernel_and_mem_map() -> None:
    m = Machine((16, 0, 48))
    # kernel image 0..1, mem_map (64 struct pages of 64 bytes: one page) at 2
    assert [o for o in owners(m)[:3]] == [["reserved"]] * 3
    assert m.mem_map(0)[0].struct_page(0).refcount == 1  # init_page_count
    # two page-table pages (kernel pgd, user pgd); the rest is free
    assert sum(o == ["pagetable"] for o in owners(m)) == 2
    assert all(len(o) == 1 for o in owners(m))


def test_each_owner_marks_its_pages_and_gives_them_back() -> None:
    m = Machine((16, 0, 48))
    before = owners(m)
    obj = m.slab_alloc()
    area = m.vmalloc(3 * PAGE)
    pfn = m.map_user(0x08048000)
    assert obj is not None and area is not None and pfn is not None
    now = owners(m)
    assert now[obj // PAGE] == ["slab"] and now[pfn] == ["user"]
    assert [now[p] for p in m.vm.find_vm_area(area).pages] == [["vmalloc"]] * 3
    assert all(len(o) == 1 for o in now)
    page = m.mem_map(pfn)[0].struct_page(pfn - m.node.zone_of(pfn).base)
    assert (page.refcount, page.mapcount, page.lru, page.mapping.anon) == (1, 1, True, True)
    m.slab_free(obj)
    assert m.slab_shrink() == 1
    m.vfree(area)
    m.unmap_user(0x08048000)
    after = owners(m)
    # the user page table's table page went back with its last PTE; the kernel's stays
    assert sum(o == ["pagetable"] for o in after) == sum(o == ["pagetable"] for o in before) + 1
    assert sum(o == ["buddy"] for o in after) == sum(o == ["buddy"] for o in before) - 1


def test_a_page_freed_while_marked_is_a_bad_page() -> None:
    m = Machine((16, 0, 48))
    pages = OwnedPages(m, None, 0)
    pfn = pages.alloc_pages(0)
    assert pfn is not None
    m.set_page_owner(pfn, "slab")  # marked, then freed without clearing: as a bug would
    with pytest.raises(BadPage) as bad:
        pages.free_pages(pfn, 0)
    assert bad.value.reasons == ["PAGE_FLAGS_CHECK_AT_FREE flag(s) set"]
    assert m.owners(pfn) == ["slab"]  # refused: nothing went back to the buddy allocator


def test_running_out_leaves_every_page_one_owner() -> None:
    m = Machine((8, 0, 24))
    while m.vmalloc(PAGE) is not None:
        pass
    assert m.map_user(0x1000) is None and m.slab_alloc() is None
    assert all(len(o) == 1 and o != ["buddy"] for o in owners(m))


def test_snapshot_and_picture() -> None:
    m = Machine((16, 0, 48))
    m.map_user(0x40000000)
    state = m.snapshot()
    assert len(state["pages"]) == 64
    (pte,) = state["user_ptes"]
    assert state["pages"][pte.pfn].mapcount == 1
    assert {f.pfn for f in state["table_pages"]} == \
        {p.pfn for p in state["pages"] if p.table}
    picture = "\n".join(m.picture())
    assert "zone DMA" in picture and "zone Normal" in picture and "vmalloc" in picture
    assert "RRR" in picture and "U" in picture


def test_reserved_pages_never_reach_the_buddy() -> None:
    m = Machine((16, 0, 48))
    mm, i = m.mem_map(1)
    assert mm.TestPageFlag(i, PG_reserved)
    with pytest.raises(ValueError):
        m.node.free_pages(1, 0)


def test_report_picture_shows_layout_zones_and_owners() -> None:
    from mmcheck.checker.subsystems.machine import render_state

    m = Machine((16, 0, 48))
    m.vmalloc(PAGE)
    m.map_user(0)
    lines = render_state(m.snapshot(), named=[m.snapshot()["pages"][0]])
    text = "\n".join(lines)
    assert lines[0].startswith("kernel layout (i386") and "vmalloc 0x" in lines[0]
    assert "zone DMA      pfns 0..15" in text and "zone Normal   pfns 16..63" in text
    row = next(line for line in lines if line.startswith("      0 "))
    assert row.split()[1].startswith("RRR") and {"T", "V", "U"} <= set(row)
    assert "<- pfn 0: " in text and "user page 0x0 -> pfn" in text
