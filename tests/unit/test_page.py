"""struct page / mem_map (model/page.py): flags, counts, rmap, LRU, free_pages_check."""

from __future__ import annotations

import pytest
from mmcheck.model.buddy import BuddyAllocator
from mmcheck.model.layout import i386_layout, x86_64_layout
from mmcheck.model.page import (
    BadPage,
    MemMap,
    PageMapping,
    PG_anon,
    PG_buddy,
    PG_lru,
    PG_reserved,
    PG_slab,
    page_address,
)

ANON = PageMapping(True, "mm1")


def test_buddy_pages_show_PG_buddy_in_flags() -> None:
    buddy = BuddyAllocator(8, 3)  # two free blocks of order 2: heads 0 and 4
    mm = buddy.mem_map
    assert mm.TestPageFlag(0, PG_buddy) and mm.TestPageFlag(4, PG_buddy)
    assert not mm.TestPageFlag(1, PG_buddy)
    pfn = buddy.alloc(0)
    page = mm.struct_page(pfn)
    assert not page.flags >> PG_buddy & 1 and page.refcount == 1 and page.private == 0


def test_flags_set_and_clear() -> None:
    mm = MemMap(4)
    mm.SetPageFlag(2, PG_slab)
    assert mm.TestPageFlag(2, PG_slab) and not mm.TestPageFlag(1, PG_slab)
    mm.ClearPageFlag(2, PG_slab)
    assert mm.page_flags(2) == 0


def test_refcount_never_wraps() -> None:
    mm = MemMap(1)
    for _ in range(255):
        mm.get_page(0)
    with pytest.raises(OverflowError):
        mm.get_page(0)
    assert mm.refcounts() == {0: 255}


def test_put_page_testzero_and_underflow() -> None:
    mm = MemMap(2)
    mm.get_page(1)
    mm.get_page(1)
    assert mm.put_page_testzero(1) is False
    assert mm.put_page_testzero(1) is True
    with pytest.raises(ValueError):
        mm.put_page_testzero(1)


def test_rmap_counts_ptes_and_keeps_mapping_until_last() -> None:
    mm = MemMap(2)
    mm.page_add_rmap(0, ANON)
    mm.page_add_rmap(0, ANON)
    assert mm.struct_page(0).mapcount == 2 and mm.TestPageFlag(0, PG_anon)
    mm.page_remove_rmap(0)
    assert mm.struct_page(0).mapping == ANON
    mm.page_remove_rmap(0)
    page = mm.struct_page(0)
    assert page.mapping is None and page.mapcount == 0 and not mm.TestPageFlag(0, PG_anon)
    with pytest.raises(ValueError):
        mm.page_remove_rmap(0)


def test_lru_list_order_and_flag() -> None:
    mm = MemMap(4)
    for pfn in (3, 1, 2):
        mm.lru_cache_add(pfn)
    assert list(mm.lru) == [3, 1, 2] and mm.TestPageFlag(1, PG_lru)
    mm.del_page_from_lru_list(1)
    assert list(mm.lru) == [3, 2] and not mm.struct_page(1).lru


@pytest.mark.parametrize(("setup", "reason"), [
    (lambda mm: mm.page_add_rmap(1, ANON), "nonzero mapcount"),
    (lambda mm: mm.get_page(1), "nonzero _refcount"),
    (lambda mm: mm.SetPageFlag(1, PG_reserved), "PAGE_FLAGS_CHECK_AT_FREE flag(s) set"),
    (lambda mm: mm.SetPageFlag(1, PG_slab), "PAGE_FLAGS_CHECK_AT_FREE flag(s) set"),
])
def test_free_pages_check_reasons(setup, reason) -> None:
    mm = MemMap(2)
    setup(mm)
    assert reason in mm.free_pages_check(1)
    assert mm.free_pages_check(0) == []
    with pytest.raises(BadPage) as bad:
        mm.free_pages_prepare(0, 1)
    assert bad.value.pfn == 1 and reason in bad.value.reasons


def test_mapping_without_mapcount_is_a_reason_of_its_own() -> None:
    mm = MemMap(1)
    mm.mapping[0] = PageMapping(False, "file")
    assert mm.free_pages_check(0) == ["non-NULL mapping"]


def test_page_address_direct_map_only() -> None:
    layout = i386_layout(1 << 30)  # 1 GiB: 896 MiB direct-mapped, the rest high memory
    assert page_address(0, layout) == 0xC0000000
    assert page_address(0x100, layout) == 0xC0100000
    assert page_address(layout.max_low_pfn, layout) is None
    assert page_address(layout.max_pfn, layout) is None
    big = x86_64_layout(8 << 30)
    assert page_address(0x200000 - 1, big) == big.page_offset + ((0x200000 - 1) << 12)


def test_struct_page_outside_is_index_error() -> None:
    with pytest.raises(IndexError):
        MemMap(3).struct_page(3)


def test_reserved_zone_frees_only_reserved_blocks() -> None:
    zone = BuddyAllocator.reserved(16, 4)
    assert zone.free_pages == 0 and zone.alloc(0) is None
    zone.free_pages_core(8, 3)
    zone.free_pages_core(1, 0)
    zone.free_pages_core(0, 0)  # merges with 1, not with 2..3 (still reserved)
    assert zone.free_area() == [[], [0], [], [8]] and zone.free_pages == 10
    for bad in ((8, 0), (9, 0), (0, 1), (3, 1), (16, 0), (0, 2)):
        with pytest.raises(ValueError):
            zone.free_pages_core(*bad)
    with pytest.raises(ValueError):
        zone.free(2, 0)  # reserved: never allocated
