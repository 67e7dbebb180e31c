"""The kernel address layout (model/layout.py): i386 3G/1G, x86-64, __pa/__va on the direct map."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmcheck.model.layout import (
    FIXADDR_TOP_32,
    LAST_PKMAP,
    PAGE_OFFSET_32,
    VMALLOC_OFFSET,
    MiB,
    __pa,
    __va,
    i386_layout,
    phys_to_virt,
    virt_addr_valid,
    virt_to_phys,
    x86_64_layout,
)
from mmcheck.model.linux import PAGE_SIZE

GiB = 1 << 30
SMALL = i386_layout(64 * MiB)  # the documents' machine: 64 MiB of RAM
BIG = i386_layout(2 * GiB)  # more RAM than the direct map reaches: high memory
X64 = x86_64_layout(16 * GiB)
LAYOUTS = [SMALL, BIG, X64, i386_layout(2 * GiB, highmem=False), x86_64_layout(GiB, levels=5),
           i386_layout(GiB, page_offset=0x80000000)]


def test_i386_split_and_seed_machine() -> None:
    # The documents: user space is 0..3G, 3G..3G+64M maps the 64 MiB of RAM,
    # vmalloc_start lies 8 MiB further on, vmalloc_end near 4G.
    assert SMALL.page_offset == PAGE_OFFSET_32 == 0xC0000000
    assert SMALL.direct_map().start == 0xC0000000
    assert SMALL.high_memory == 0xC0000000 + 64 * MiB
    assert SMALL.vmalloc_start == SMALL.high_memory + VMALLOC_OFFSET == 0xC4800000
    assert SMALL.vmalloc_end == 0xFF7FE000  # two pages below PKMAP_BASE
    assert SMALL.pkmap_base == 0xFF800000
    assert SMALL.fixaddr_start == FIXADDR_TOP_32 - 128 * 1024
    assert SMALL.max_low_pfn == SMALL.max_pfn == 64 * MiB // PAGE_SIZE
    assert not SMALL.PageHighMem(SMALL.max_low_pfn - 1)


def test_i386_lowmem_stops_at_896_mib() -> None:
    assert BIG.high_memory - BIG.page_offset == 896 * MiB
    assert BIG.high_memory == 0xF8000000
    assert BIG.max_low_pfn == 896 * MiB // PAGE_SIZE
    assert BIG.PageHighMem(BIG.max_low_pfn) and BIG.PageHighMem(BIG.max_pfn - 1)
    assert not BIG.PageHighMem(BIG.max_low_pfn - 1) and not BIG.PageHighMem(BIG.max_pfn)
    # Without CONFIG_HIGHMEM the memory above 896 MiB is simply not used.
    nohigh = i386_layout(2 * GiB, highmem=False)
    assert nohigh.ram == 896 * MiB and nohigh.pkmap_base is None
    assert nohigh.vmalloc_end == nohigh.fixaddr_start - 2 * PAGE_SIZE


def test_x86_64_direct_map_and_vmalloc() -> None:
    assert X64.page_offset == 0xFFFF888000000000
    assert X64.high_memory == 0xFFFF888000000000 + 16 * GiB
    assert X64.vmalloc_start == 0xFFFFC90000000000
    assert X64.vmalloc_end - 1 == 0xFFFFE8FFFFFFFFFF  # Linux's (inclusive) VMALLOC_END
    assert x86_64_layout(GiB, levels=5).page_offset == 0xFF11000000000000
    assert not any(X64.PageHighMem(pfn) for pfn in (0, X64.max_pfn - 1))
    with pytest.raises(ValueError, match="exceed"):
        x86_64_layout(65 << 40)


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: f"{lay.arch}-{lay.ram:#x}")
def test_regions_are_ordered_disjoint_with_the_vmalloc_gap(layout) -> None:
    regions = layout.regions()
    for low, high in zip(regions, regions[1:]):
        assert low.start < low.end <= high.start, (low, high)
    gap = regions[1]
    assert gap.name == "vmalloc gap"
    if layout.arch == "i386":
        assert gap.end - gap.start == VMALLOC_OFFSET
    else:  # x86-64: the rest of the 64 TiB (or 32 PiB) direct-map slot and a hole
        assert gap.end - gap.start > VMALLOC_OFFSET
    vmalloc = regions[2]
    assert vmalloc.start not in layout.direct_map() and vmalloc.end - 1 not in layout.direct_map()
    if layout.pkmap_base is not None:
        pkmap = next(r for r in regions if r.name == "pkmap")
        assert pkmap.end - pkmap.start == LAST_PKMAP * PAGE_SIZE
        assert pkmap.start - vmalloc.end >= 2 * PAGE_SIZE


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: f"{lay.arch}-{lay.ram:#x}")
def test_pa_va_boundaries(layout) -> None:
    start, end = layout.page_offset, layout.high_memory
    assert __pa(start, layout) == 0 and __va(0, layout) == start
    assert __pa(end - 1, layout) == end - 1 - start
    assert virt_to_phys(start + PAGE_SIZE, layout) == PAGE_SIZE
    assert phys_to_virt(PAGE_SIZE, layout) == start + PAGE_SIZE
    for outside in (start - 1, end, layout.vmalloc_start, layout.vmalloc_end - 1, 0):
        assert not virt_addr_valid(outside, layout)
        with pytest.raises(ValueError, match="__pa: .* not in the direct map"):
            __pa(outside, layout)
        with pytest.raises(ValueError, match="__pa"):
            virt_to_phys(outside, layout)
    for phys in (-1, end - start):
        with pytest.raises(ValueError, match="__va: "):
            __va(phys, layout)


def test_va_of_high_memory_says_kmap() -> None:
    with pytest.raises(ValueError, match="high memory"):
        __va(896 * MiB, BIG)
    with pytest.raises(ValueError, match="not low memory"):
        __va(2 * GiB, BIG)
    with pytest.raises(ValueError, match="__pa"):
        __pa(True, SMALL)


def test_impossible_layouts_are_refused() -> None:
    for bad in (0, -PAGE_SIZE, 100, 1.5):
        with pytest.raises(ValueError, match="ram must be"):
            i386_layout(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="page_offset"):
        i386_layout(GiB, page_offset=0xC0001000)
    with pytest.raises(ValueError, match="levels"):
        x86_64_layout(GiB, levels=3)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.sampled_from(LAYOUTS), st.data())
def test_pa_of_va_is_identity_on_the_direct_map(layout, data) -> None:
    lowmem = layout.high_memory - layout.page_offset
    p = data.draw(st.integers(0, lowmem - 1))
    assert __pa(__va(p, layout), layout) == p
    x = data.draw(st.integers(layout.page_offset, layout.high_memory - 1))
    assert __va(__pa(x, layout), layout) == x
    assert virt_addr_valid(x, layout)
