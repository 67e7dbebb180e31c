"""Numbers as a kernel hacker reads them (checker/decode.py)."""

from __future__ import annotations

from mmcheck.checker import decode


def test_protections_and_map_flags_by_name() -> None:
    assert decode.prot_text(0) == "PROT_NONE"
    assert decode.prot_text(3) == "PROT_READ|PROT_WRITE"
    assert decode.prot_text(0x81) == "PROT_READ|0x80"  # unknown bits are kept
    assert decode.map_flags_text(0x22) == "MAP_PRIVATE|MAP_ANONYMOUS"
    assert decode.map_flags_text(0x32) == "MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED"
    assert decode.map_flags_text(0x100021) == "MAP_SHARED|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE"
    assert decode.map_flags_text(0x20) == "MAP_ANONYMOUS"


def test_errno_pte_flags_and_fault_codes() -> None:
    assert decode.errno_text(12) == "ENOMEM" and decode.errno_text(17) == "EEXIST"
    assert decode.errno_text(0) == "0"
    assert decode.pte_flags_text(0x7) == "_PAGE_PRESENT|_PAGE_RW|_PAGE_USER"
    assert decode.pte_flags_text((1 << 63) | 1) == "_PAGE_PRESENT|_PAGE_NX"
    assert decode.pte_flags_text(1 << 52) == "0x10000000000000"
    assert decode.pf_code_text(0x7) == "PF_PROT|PF_WRITE|PF_USER (0x7)"
    assert decode.pf_code_text(0).startswith("0 (not present")
    assert decode.si_code_text(1) == "SEGV_MAPERR"


def test_a_step_decoded_by_its_parameter_names() -> None:
    assert decode.call_text("vma", "mmap", (4194304, 4096, 0, 50)) == (
        "mmap(0x400000, 0x1000, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED)")
    assert decode.call_text("fault", "mprotect", (1, 0x400000, 8192, 1)) == (
        "mprotect(1, 0x400000, 0x2000, PROT_READ)")
    assert decode.call_text("pagetable", "map", (0x400000, 1, 0x7)) == (
        "map(0x400000, 0x1, _PAGE_PRESENT|_PAGE_RW|_PAGE_USER)")
    assert decode.call_text("buddy", "free", (4096, 3)) == "free(4096, 3)"  # pfns stay decimal
    assert decode.setup_text("vma", {"task_size": 1 << 30, "mmap_min_addr": 65536}) == (
        "task_size=0x40000000, mmap_min_addr=0x10000")


def test_the_kinds_a_declaration_may_name_are_those_decode_spells() -> None:
    from mmcheck.checker.subsystems import registry

    assert set(registry.KINDS) == set(decode._TEXT) | {"bool", "int"}
    # kmalloc's `flags` are GFP flags: no declaration says so, so they stay a number
    assert decode.call_text("kmalloc", "kmalloc", (64, 1)) == "kmalloc(64, 1)"
    assert decode.call_text("vma", "mmap", (0x400000, 4096, 3, 0x22)) == (
        "mmap(0x400000, 0x1000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)")


def test_segment_selectors_and_registers_by_their_fields() -> None:
    assert decode.selector_text(0x7B) == "0x7b (index 15, TI 0, RPL 3)"
    assert decode.selector_text(0) == "0x0 (index 0, TI 0, RPL 0)"
    assert decode.selector_text(0x7F) == "0x7f (index 15, TI 1, RPL 3)"  # the LDT
    assert decode.selector_text(1 << 16) == "0x10000"  # not a selector: the number
    assert decode.sreg_text(3) == "DS" and decode.sreg_text(6) == "6"
    assert decode.call_text("segment", "load_segment", (0, 106)) == (
        "load_segment(ES, 0x6a (index 13, TI 0, RPL 2))")
    assert decode.call_text("segment", "far_jump", (0x73, 0x08048568)) == (
        "far_jump(0x73 (index 14, TI 0, RPL 3), 0x8048568)")


def test_slab_addresses_in_hex_as_its_picture_draws_them() -> None:
    assert decode.call_text("slab", "free", (7208,)) == "free(0x1c28)"
    assert decode.result_text("slab", "alloc", 48) == "0x30"
    assert decode.result_text("slab", "shrink", 4096) == "4096"  # pages, not an address
    assert decode.result_text("buddy", "alloc", 4096) == "4096"  # pfns stay decimal
