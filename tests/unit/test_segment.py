"""x86 segmentation (model/segment.py): GDT_ENTRY, the flat GDT, selectors, checks, translation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mmcheck.model.linux import _PAGE_PRESENT, _PAGE_RW, _PAGE_USER
from mmcheck.model.mmu import PageFault, PageTable
from mmcheck.model.segment import (
    __KERNEL_CS,
    __KERNEL_DS,
    __USER_CS,
    __USER_DS,
    GDT_ENTRY,
    GDT_ENTRY_DEFAULT_USER_CS,
    GDT_ENTRY_DEFAULT_USER_DS,
    GDT_ENTRY_KERNEL_CS,
    GDT_ENTRY_KERNEL_DS,
    Cpu,
    SegmentFault,
    Selector,
    boot_gdt,
    desc_struct,
    linux_gdt,
    segment_limit,
)

FOUR_GIB_LAST = 0xFFFFFFFF


class Pages:
    """Page-table pages from pfn 100 up (the MMU model asks for order 0 only)."""

    def __init__(self) -> None:
        self.next = 100

    def alloc_pages(self, order: int) -> int | None:
        assert order == 0
        self.next += 1
        return self.next

    def free_pages(self, pfn: int, order: int) -> None:
        assert order == 0


def fault(call, *args, **kwargs) -> SegmentFault:
    with pytest.raises(SegmentFault) as info:
        call(*args, **kwargs)
    return info.value


def gdt_with(index: int, raw: int) -> list[int]:
    gdt = linux_gdt()
    gdt[index] = raw
    return gdt


# ---- descriptors ----------------------------------------------------------------

def test_gdt_entry_builds_the_documents_values() -> None:
    # common.c: [GDT_ENTRY_KERNEL_CS] = { { { 0x0000ffff, 0x00cf9a00 } } }, which
    # "in memory is 0x00cf9a000000ffff"; likewise for the three others.
    gdt = linux_gdt()
    for index, flags, high in ((GDT_ENTRY_KERNEL_CS, 0xC09A, 0x00CF9A00),
                               (GDT_ENTRY_KERNEL_DS, 0xC092, 0x00CF9200),
                               (GDT_ENTRY_DEFAULT_USER_CS, 0xC0FA, 0x00CFFA00),
                               (GDT_ENTRY_DEFAULT_USER_DS, 0xC0F2, 0x00CFF200)):
        assert gdt[index] == high << 32 | 0x0000FFFF == GDT_ENTRY(flags, 0, 0xFFFFF)


def test_linux_descriptors_decode_to_the_flat_model() -> None:
    # The documents: base 0, limit 0xFFFFF, G=1 (4 KiB units), D/B=1, P=1, S=1;
    # kernel DPL 0, user DPL 3; code type 1010 (readable), data 0010 (writable).
    expected = {GDT_ENTRY_KERNEL_CS: (0, 0xA), GDT_ENTRY_KERNEL_DS: (0, 0x2),
                GDT_ENTRY_DEFAULT_USER_CS: (3, 0xA), GDT_ENTRY_DEFAULT_USER_DS: (3, 0x2)}
    gdt = linux_gdt()
    for index, raw in enumerate(gdt):
        desc = desc_struct.from_u64(raw)
        if index not in expected:
            assert raw == 0 and not desc.p
            continue
        assert (desc.dpl, desc.type) == expected[index]
        assert (desc.base, desc.limit, desc.g, desc.d, desc.p, desc.s) == (0, 0xFFFFF, 1, 1, 1, 1)
        assert segment_limit(desc) == FOUR_GIB_LAST  # 4 GiB
        assert desc.to_u64() == raw


def test_boot_gdt_tss_is_byte_granular() -> None:
    # setup_gdt(): [GDT_ENTRY_BOOT_TSS] = GDT_ENTRY(0x0089, 4096, 103)
    cs, ds, tss = (desc_struct.from_u64(raw) for raw in boot_gdt()[2:5])
    assert (tss.base, tss.limit, tss.g, tss.s, tss.type, tss.p) == (4096, 103, 0, 0, 9, 1)
    assert segment_limit(tss) == 103
    assert cs.is_code and cs.type == 0xB and ds.is_data and ds.type == 0x3
    assert segment_limit(cs) == segment_limit(ds) == FOUR_GIB_LAST


def test_split_base_and_limit_fields() -> None:
    raw = GDT_ENTRY(0x4092, 0x12345678, 0xABCDE)
    desc = desc_struct.from_u64(raw)
    assert (desc.base, desc.limit, desc.g, desc.d) == (0x12345678, 0xABCDE, 0, 1)
    assert raw >> 56 == 0x12 and (raw >> 16) & 0xFFFFFF == 0x345678
    with pytest.raises(ValueError, match="limit=.* does not fit 20 bits"):
        desc_struct(0, 1 << 20, 2, 1, 0, 1, 0, 0, 1, 1).to_u64()
    with pytest.raises(ValueError, match="64-bit descriptor"):
        desc_struct.from_u64(1 << 64)


@settings(max_examples=200, derandomize=True, deadline=None)
@given(st.integers(0, (1 << 64) - 1))
def test_decode_then_encode_is_identity(raw: int) -> None:
    assert desc_struct.from_u64(raw).to_u64() == raw


@settings(max_examples=100, derandomize=True, deadline=None)
@given(st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 20) - 1), st.integers(0, 0xF0FF))
def test_gdt_entry_fields_come_back(base: int, limit: int, flags: int) -> None:
    desc = desc_struct.from_u64(GDT_ENTRY(flags, base, limit))
    assert (desc.base, desc.limit, desc.type) == (base, limit, flags & 0xF)
    assert (desc.s, desc.dpl, desc.p, desc.g) == ((flags >> 4) & 1, (flags >> 5) & 3,
                                                  (flags >> 7) & 1, (flags >> 15) & 1)


# ---- selectors ------------------------------------------------------------------

def test_linux_selectors() -> None:
    # segment.h and the documents' table: index, TI, RPL.
    assert (__KERNEL_CS, __KERNEL_DS, __USER_CS, __USER_DS) == (0x60, 0x68, 0x73, 0x7B)
    assert Selector.from_value(__KERNEL_CS) == (12, 0, 0)
    assert Selector.from_value(__KERNEL_DS) == (13, 0, 0)
    assert Selector.from_value(__USER_DS) == (15, 0, 3)
    assert Selector.from_value(__USER_CS) == (14, 0, 3)
    assert Selector(15, 0, 3).value == __USER_DS
    assert Selector.from_value(0x7F).ti == 1
    with pytest.raises(ValueError, match="16-bit selector"):
        Selector.from_value(1 << 16)


# ---- privilege checks -------------------------------------------------------------

def test_start_thread_state() -> None:
    cpu = Cpu()
    assert cpu.cpl == 3 and cpu.seg["cs"].selector == __USER_CS
    assert all(cpu.seg[reg].selector == __USER_DS for reg in ("ss", "ds", "es"))
    kernel = Cpu(cpl=0)
    assert kernel.seg["cs"].selector == __KERNEL_CS and kernel.seg["ds"].selector == __KERNEL_DS


def test_data_segment_load_needs_max_cpl_rpl_at_most_dpl() -> None:
    user = Cpu()
    err = fault(user.load_segment, "ds", __KERNEL_DS)
    assert (err.trap, err.error_code) == ("#GP", __KERNEL_DS)
    kernel = Cpu(cpl=0)
    kernel.load_segment("ds", __USER_DS)  # DPL 3 >= max(0, 3)
    kernel.load_segment("es", __KERNEL_DS)
    assert fault(kernel.load_segment, "ds", __KERNEL_DS | 3).trap == "#GP"  # RPL 3 > DPL 0
    user.load_segment("fs", __USER_CS)  # readable code may be loaded into a data register
    assert fault(user.load_segment, "ds", 0x7F).trap == "#GP"  # TI=1: the LDT is empty
    assert fault(user.load_segment, "ds", 32 * 8 | 3).trap == "#GP"  # past the GDT


def test_null_selector_loads_but_faults_on_use() -> None:
    cpu = Cpu()
    cpu.load_segment("gs", 0)
    err = fault(cpu.linear_address, "gs", 0)
    assert (err.trap, err.error_code) == ("#GP", 0)
    assert fault(cpu.load_ss, 0).trap == "#GP"


def test_stack_segment_needs_rpl_cpl_dpl_equal() -> None:
    user, kernel = Cpu(), Cpu(cpl=0)
    user.load_ss(__USER_DS)
    kernel.load_ss(__KERNEL_DS)
    assert "RPL 3 != CPL 0" in fault(kernel.load_ss, __USER_DS).reason
    assert "DPL 3 != CPL 0" in fault(kernel.load_ss, __USER_DS & ~3).reason
    assert "RPL 0 != CPL 3" in fault(user.load_ss, __KERNEL_DS).reason
    assert "DPL 0 != CPL 3" in fault(user.load_ss, __KERNEL_DS | 3).reason
    assert "writable data" in fault(user.load_ss, __USER_CS).reason
    absent = Cpu(gdt_with(GDT_ENTRY_DEFAULT_USER_DS, GDT_ENTRY(0xC072, 0, 0xFFFFF)))
    assert fault(absent.load_ss, __USER_DS).trap == "#SS"
    assert fault(absent.load_segment, "ds", __USER_DS).trap == "#NP"


def test_far_jump_to_nonconforming_code() -> None:
    user, kernel = Cpu(), Cpu(cpl=0)
    assert fault(user.far_jump, __KERNEL_CS, 0).error_code == __KERNEL_CS  # DPL 0 != CPL 3
    assert fault(kernel.far_jump, __USER_CS, 0).trap == "#GP"  # DPL 3 != CPL 0
    assert fault(kernel.far_jump, __KERNEL_CS | 3, 0).trap == "#GP"  # RPL 3 > CPL 0
    assert fault(kernel.far_call, __KERNEL_DS, 0).trap == "#GP"  # not code
    kernel.far_jump(__KERNEL_CS, 0xC0100000)
    user.far_call(__USER_CS & ~3, 0x08048000)  # RPL 0 <= CPL 3: allowed, CS.RPL becomes 3
    assert user.seg["cs"].selector == __USER_CS


def test_far_jump_to_conforming_code_ignores_rpl() -> None:
    gdt = gdt_with(20, GDT_ENTRY(0xC09E, 0, 0xFFFFF))  # conforming, readable, DPL 0
    gdt[21] = GDT_ENTRY(0xC0FE, 0, 0xFFFFF)  # conforming, DPL 3
    Cpu(gdt).far_jump(20 * 8 | 3, 0)  # DPL 0 <= CPL 3
    assert fault(Cpu(gdt, cpl=0).far_jump, 21 * 8, 0).trap == "#GP"  # DPL 3 > CPL 0


# ---- limits and types on use --------------------------------------------------------

def test_limit_in_bytes_when_g_is_0() -> None:
    cpu = Cpu(gdt_with(GDT_ENTRY_DEFAULT_USER_DS, GDT_ENTRY(0x40F2, 0x1000, 0xFFF)))
    cpu.load_segment("ds", __USER_DS)
    assert cpu.linear_address("ds", 0xFFF) == 0x1FFF  # logical -> linear adds the base
    err = fault(cpu.linear_address, "ds", 0xFFF, 2)
    assert (err.trap, err.error_code) == ("#GP", 0)


def test_limit_in_4_kib_units_when_g_is_1() -> None:
    # limit 0 with G=1 is one page: offsets 0..0xFFF (not only offset 0).
    cpu = Cpu(gdt_with(GDT_ENTRY_DEFAULT_USER_DS, GDT_ENTRY(0xC0F2, 0, 0)))
    cpu.load_segment("es", __USER_DS)
    assert cpu.linear_address("es", 0xFFC, 4) == 0xFFC
    assert fault(cpu.linear_address, "es", 0x1000).trap == "#GP"
    cpu.load_ss(__USER_DS)
    assert fault(cpu.linear_address, "ss", 0x1000, write=True).trap == "#SS"


def test_expand_down_stack_segment() -> None:
    cpu = Cpu(gdt_with(GDT_ENTRY_DEFAULT_USER_DS, GDT_ENTRY(0x40F6, 0, 0xFFFF)))
    cpu.load_ss(__USER_DS)
    assert cpu.linear_address("ss", 0x10000, 4, write=True) == 0x10000
    assert cpu.linear_address("ss", FOUR_GIB_LAST - 3, 4, write=True) == FOUR_GIB_LAST - 3
    assert fault(cpu.linear_address, "ss", 0xFFFF, write=True).trap == "#SS"


def test_types_on_use() -> None:
    cpu = Cpu()
    assert "not writable" in fault(cpu.linear_address, "cs", 0, write=True).reason
    readonly = Cpu(gdt_with(GDT_ENTRY_DEFAULT_USER_DS, GDT_ENTRY(0xC0F0, 0, 0xFFFFF)))
    readonly.load_segment("ds", __USER_DS)
    assert readonly.linear_address("ds", 4) == 4
    assert fault(readonly.linear_address, "ds", 4, write=True).trap == "#GP"
    exec_only = Cpu(gdt_with(GDT_ENTRY_DEFAULT_USER_CS, GDT_ENTRY(0xC0F8, 0, 0xFFFFF)))
    assert exec_only.linear_address("cs", 0x100) == 0x100  # a fetch is fine
    assert fault(exec_only.load_segment, "ds", __USER_CS).trap == "#GP"


# ---- logical -> linear -> physical ----------------------------------------------------

def test_worked_example_0x08048568() -> None:
    """The documents' example, in their words (translated):

    "The CPU gives linear address 0x08048568, in binary 0000 1000 0000 0100 1000
    0101 0110 1000. Look up the PGD: 0000 1000 00 is 32 in decimal [...]. Look
    up the PT: 00 0100 1000 is 72 in decimal [...]. The remaining 12 bits 0101
    0110 1000 are the offset [...]. Three memory accesses: PGD[32], PT[72],
    then PT[72] + 0101 0110 1000 gives the physical address."
    """
    entry = 0x08048568
    cpu = Cpu()  # CS = __USER_CS, base 0: the offset is the linear address
    linear = cpu.linear_address("cs", entry)
    assert linear == entry
    pt = PageTable(2, Pages())
    assert (pt.pgd_index(linear), pt.pte_index(linear), linear & 0xFFF) == (32, 72, 0x568)
    assert linear >> 22 == 0b0000100000 and (linear >> 12) & 0x3FF == 0b0001001000
    pt.map(entry & ~0xFFF, 0x1F2E3, _PAGE_PRESENT | _PAGE_USER)
    assert cpu.translate("cs", entry, pt) == 0x1F2E3 << 12 | 0x568
    assert cpu.translate("ds", entry, pt) == 0x1F2E3 << 12 | 0x568
    with pytest.raises(PageFault):  # read-only page: the write faults in paging, not segments
        cpu.translate("ds", entry, pt, write=True)


def test_segment_base_is_added_before_paging() -> None:
    cpu = Cpu(gdt_with(GDT_ENTRY_DEFAULT_USER_DS, GDT_ENTRY(0xC0F2, 0x08000000, 0xFFFFF)))
    cpu.load_segment("ds", __USER_DS)
    pt = PageTable(2, Pages())
    pt.map(0x08048000, 0x500, _PAGE_PRESENT | _PAGE_USER | _PAGE_RW)
    assert cpu.translate("ds", 0x48568, pt, write=True) == 0x500568
    kernel_page = PageTable(2, Pages())
    kernel_page.map(0x08048000, 0x501, _PAGE_PRESENT | _PAGE_RW)  # supervisor-only
    with pytest.raises(PageFault):
        cpu.translate("ds", 0x48568, kernel_page)  # CPL 3 is a user access
    assert Cpu(cpl=0).translate("ds", 0x08048568, kernel_page) == 0x501568


# ---- the contract's SegmentUnit (sreg numbers, paging faults as None) -------------------

def test_segment_unit_worked_example_and_faults() -> None:
    from mmcheck.model.segment import CS, DS, SS, SegmentUnit

    pt = PageTable(2, Pages())
    pt.map(0x08048000, 0x1F2E3, _PAGE_PRESENT | _PAGE_USER)
    unit = SegmentUnit(linux_gdt(), 3, pt)
    assert unit.translate(DS, 0x08048568, False) == 0x1F2E3568
    assert unit.translate(CS, 0x08048568, False) == 0x1F2E3568
    assert unit.translate(DS, 0x08048568, True) is None  # paging refuses: read-only page
    assert unit.snapshot()["last"][0].linear == 0x08048568
    assert unit.selector(SS) == __USER_DS and unit.selector(CS) == __USER_CS
    for bad in ((6, 0, 1), (DS, -1, 1), (DS, 0, 0)):
        with pytest.raises(ValueError):
            unit.linear(*bad, False)
    with pytest.raises(ValueError):
        unit.load_segment(CS, __USER_CS)
    with pytest.raises(SegmentFault) as fault:
        unit.load_segment(DS, __KERNEL_DS | 3)  # RPL 3 asks for a DPL 0 segment
    assert (fault.value.trap, fault.value.error_code) == ("#GP", __KERNEL_DS)
