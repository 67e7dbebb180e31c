"""Zones, nodes and memblock boot (model/zone.py, model/memblock.py) against hand-worked figures."""

from __future__ import annotations

import pytest
from mmcheck.model.memblock import Memblock, free_pages_memory
from mmcheck.model.page import PG_highmem, PG_reserved
from mmcheck.model.zone import (
    ZONE_DMA,
    ZONE_HIGHMEM,
    ZONE_MOVABLE,
    ZONE_NORMAL,
    PgData,
    gfp_zone,
    zone_sizes_i386,
    zone_sizes_x86_64,
)


def test_x86_zone_sizes() -> None:
    assert zone_sizes_i386(262144) == [4096, 0, 225280, 32768]  # 1 GiB: 896 MiB low
    assert zone_sizes_i386(65536) == [4096, 0, 61440, 0]
    assert zone_sizes_x86_64(2 * 1048576) == [4096, 1048576 - 4096, 1048576]


def test_free_pages_memory_largest_aligned_chunks() -> None:
    assert list(free_pages_memory(1, 20, 4)) == [(1, 0), (2, 1), (4, 2), (8, 3), (16, 2)]
    assert list(free_pages_memory(0, 40, 4)) == [(0, 3), (8, 3), (16, 3), (24, 3), (32, 3)]


def test_memblock_free_ranges_skip_reserved() -> None:
    mb = Memblock()
    mb.memblock_add(0, 64 << 12)
    mb.memblock_reserve(0, 1)  # one byte reserves the whole page
    mb.memblock_reserve(10 << 12, 3 << 12)
    mb.memblock_reserve(12 << 12, 4 << 12)  # overlapping ranges merge
    assert mb.reserved == [(0, 1), (10, 16)]
    assert mb.free_ranges() == [(1, 10), (16, 64)]


def test_boot_reserved_pages_stay_out_of_the_buddy() -> None:
    node = PgData([16, 0, 48], 64, 4, reserved=[(0, 1), (20, 22)])
    dma, normal = node.node_zones[ZONE_DMA], node.node_zones[ZONE_NORMAL]
    assert dma.free_blocks() == [(1, 0), (2, 1), (4, 2), (8, 3)]
    assert normal.free_blocks() == [(16, 2), (22, 1), (24, 3), (32, 3), (40, 3), (48, 3),
                                    (56, 3)]
    assert dma.managed_pages == 15 and normal.managed_pages == 46
    assert node.pfn_to_page(0).flags >> PG_reserved & 1
    assert not node.pfn_to_page(1).flags >> PG_reserved & 1


def test_watermarks_as_linux_computes_them() -> None:
    node = PgData(zone_sizes_i386(262144))  # 1 GiB i386, nothing reserved
    dma, normal, high = (node.node_zones[i] for i in (ZONE_DMA, ZONE_NORMAL, ZONE_HIGHMEM))
    # min_free_kbytes = isqrt(16 * 4 * (4096 + 225280)) = 3831; pages_min = 957
    assert node.min_free_kbytes == 3831
    share_dma, share_normal = 957 * 4096 // 229376, 957 * 225280 // 229376
    assert dma.watermark == [share_dma, share_dma + share_dma // 4, share_dma + share_dma // 2]
    assert normal.watermark[0] == share_normal
    assert high.watermark[0] == 32  # 32768 // 1024, clamped to [32, 128]
    assert high.watermark[1] == 32 + (957 * 32768 // 229376 >> 2)
    assert dma.lowmem_reserve[ZONE_NORMAL] == 225280 // 256
    assert dma.lowmem_reserve[ZONE_HIGHMEM] == (225280 + 32768) // 256
    assert normal.lowmem_reserve[ZONE_HIGHMEM] == 32768 // 32
    assert node.pfn_to_page(229376).flags >> PG_highmem & 1


def test_gfp_zone_table() -> None:
    assert [gfp_zone(g) for g in (0, 1, 2, 4, 8, 9, 10, 12)] == \
        [ZONE_NORMAL, ZONE_DMA, ZONE_HIGHMEM, 1, ZONE_NORMAL, ZONE_DMA, ZONE_MOVABLE, 1]
    for bad in (3, 5, 6, 7, 16, -1):
        with pytest.raises(ValueError):
            gfp_zone(bad)


def test_fallback_goes_down_the_zonelist() -> None:
    node = PgData([16, 0, 16], 8, 3)  # min_free_kbytes 8: 2 pages, 1 per zone
    normal = node.node_zones[ZONE_NORMAL]
    assert [z.idx for z in node.zonelist(0)] == [ZONE_NORMAL, ZONE_DMA]
    assert [z.idx for z in node.zonelist(1)] == [ZONE_DMA]
    got = [node.alloc_pages(0) for _ in range(16)]
    assert all(normal.zone_spans_pfn(p) for p in got[:15])  # until low (1) is reached
    assert not normal.zone_spans_pfn(got[15])  # then DMA, still above its low mark


def test_zone_watermark_ok_counts_only_large_enough_blocks() -> None:
    node = PgData([0, 0, 8], 0, 4)
    zone = node.node_zones[ZONE_NORMAL]
    for pfn in (1, 3, 5, 7):  # four free single pages, no free pair
        zone.take_block(pfn, 0)
    assert zone.free_pages == 4
    assert zone.zone_watermark_ok(0, 0, ZONE_NORMAL)
    assert not zone.zone_watermark_ok(1, 0, ZONE_NORMAL)
    assert node.alloc_pages(1) is None and node.alloc_pages(0) is not None


def test_no_merge_across_zones() -> None:
    node = PgData([4, 0, 4], 0, 4)  # one 8-page block would cover both zones
    assert node.alloc_pages(3, 0) is None
    dma = node.alloc_pages(2, 1)
    normal = node.alloc_pages(2, 0)
    assert (dma, normal) == (0, 4)
    node.free_pages(0, 2)
    node.free_pages(4, 2)
    assert [z.free_blocks() for z in node.populated_zones()] == [[(0, 2)], [(4, 2)]]
    with pytest.raises(ValueError):
        node.free_pages(4, 2)


def test_proc_views() -> None:
    node = PgData([16, 0, 16], 8, 3)
    assert node.buddyinfo() == ["Node 0, zone      DMA      0      0      4",
                                "Node 0, zone   Normal      0      0      4"]
    info = node.zoneinfo()
    assert "  pages free     16" in info and "  start_pfn:           16" in info
    assert any("Movable" in line for line in node.pagetypeinfo())
