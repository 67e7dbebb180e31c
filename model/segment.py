"""x86 segmentation as Linux i386 sets it up: GDT descriptors, selectors, privilege checks.

The source documents (the address-translation notes) quote Linux's
`GDT_ENTRY(flags, base, limit)` macro, the per-CPU `gdt_page` with the four
flat segments, and the selectors `start_thread` loads:

    __KERNEL_CS = 12*8     = 0x60    { 0x0000ffff, 0x00cf9a00 }  DPL 0, code, readable
    __KERNEL_DS = 13*8     = 0x68    { 0x0000ffff, 0x00cf9200 }  DPL 0, data, writable
    __USER_CS   = 14*8 + 3 = 0x73    { 0x0000ffff, 0x00cffa00 }  DPL 3, code, readable
    __USER_DS   = 15*8 + 3 = 0x7b    { 0x0000ffff, 0x00cff200 }  DPL 3, data, writable

Every one has base 0, limit 0xfffff, G=1 (4 KiB units, so 4 GiB), D/B=1,
P=1: the flat model, in which a logical address's offset *is* the linear
address and paging (model/mmu.py, 2-level on i386) does the real work.

The 8-byte descriptor, as `GDT_ENTRY` packs it (Intel SDM vol. 3, 3.4.5):

    bits  0..15  limit 15..0        bits 40..43 type   44 S   45..46 DPL   47 P
    bits 16..39  base 23..0         bits 48..51 limit 19..16
    bits 56..63  base 31..24        bits 52 AVL  53 L  54 D/B  55 G

A selector is index << 3 | TI << 2 | RPL. The checks follow the SDM
(5.5-5.8): loading DS/ES/FS/GS needs a data or readable code segment with
max(CPL, RPL) <= DPL (conforming code is exempt); loading SS needs a
writable data segment with RPL == CPL == DPL; a far JMP/CALL straight to a
non-conforming code segment needs RPL <= CPL and DPL == CPL (to conforming
code, DPL <= CPL). A violation raises `SegmentFault` with the trap the CPU
raises (#GP, #NP for a not-present segment, #SS for the stack) and the
selector as error code. Call gates, task gates, LDTs and 64-bit mode are
not modelled; a selector with TI=1 faults as the LDT is empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from mmcheck.model.mmu import PageTable

__all__ = [
    "__KERNEL_CS",
    "__KERNEL_DS",
    "__USER_CS",
    "__USER_DS",
    "flat_selectors",
    "GDT_ENTRIES",
    "GDT_ENTRY",
    "GDT_ENTRY_DEFAULT_USER_CS",
    "GDT_ENTRY_DEFAULT_USER_DS",
    "GDT_ENTRY_KERNEL_CS",
    "GDT_ENTRY_KERNEL_DS",
    "KERNEL_RPL",
    "USER_RPL",
    "Cpu",
    "Selector",
    "SegmentFault",
    "desc_struct",
    "boot_gdt",
    "get_desc_base",
    "get_desc_limit",
    "linux_gdt",
    "segment_limit",
]

GDT_ENTRIES = 32
GDT_ENTRY_BOOT_CS = 2
GDT_ENTRY_BOOT_DS = GDT_ENTRY_BOOT_CS + 1
GDT_ENTRY_BOOT_TSS = GDT_ENTRY_BOOT_CS + 2
GDT_ENTRY_KERNEL_BASE = 12
GDT_ENTRY_KERNEL_CS = GDT_ENTRY_KERNEL_BASE + 0
GDT_ENTRY_KERNEL_DS = GDT_ENTRY_KERNEL_BASE + 1
GDT_ENTRY_DEFAULT_USER_CS = 14
GDT_ENTRY_DEFAULT_USER_DS = 15

SEGMENT_RPL_MASK = 0x3
SEGMENT_TI_MASK = 0x4
KERNEL_RPL = 0
USER_RPL = 3

__KERNEL_CS = GDT_ENTRY_KERNEL_CS * 8
__KERNEL_DS = GDT_ENTRY_KERNEL_DS * 8
__USER_CS = GDT_ENTRY_DEFAULT_USER_CS * 8 + USER_RPL
__USER_DS = GDT_ENTRY_DEFAULT_USER_DS * 8 + USER_RPL

# Type field of a code/data descriptor (S=1): bit 3 code, then C/E, R/W, A.
_TYPE_CODE = 0x8
_TYPE_CONFORMING = 0x4  # code: conforming
_TYPE_EXPAND_DOWN = 0x4  # data: expand-down
_TYPE_READABLE = 0x2  # code: readable
_TYPE_WRITABLE = 0x2  # data: writable
_TYPE_ACCESSED = 0x1


class SegmentFault(Exception):
    """The CPU refused a segment load or access: `trap` ("#GP", "#NP", "#SS"), `error_code`.

    The error code is the offending selector (its index, TI, and EXT=0) for a
    load, or 0 for a limit or rights violation on use, as the CPU reports it.
    """

    def __init__(self, trap: str, error_code: int, reason: str) -> None:
        self.trap = trap
        self.error_code = error_code
        self.reason = reason
        super().__init__(f"{trap}({error_code:#x}): {reason}")


# GDT_ENTRY: Linux's constructor of a descriptor from `flags` (access byte in
# bits 0..7, AVL/L/D/B/G in bits 12..15), a 32-bit `base` and a 20-bit `limit`.
def GDT_ENTRY(flags: int, base: int, limit: int) -> int:
    return (((base & 0xFF000000) << (56 - 24)) | ((flags & 0x0000F0FF) << 40)
            | ((limit & 0x000F0000) << (48 - 16)) | ((base & 0x00FFFFFF) << 16)
            | (limit & 0x0000FFFF))


@dataclass(frozen=True)
class desc_struct:  # noqa: N801 - Linux's name
    """A code/data/system segment descriptor, field by field (struct desc_struct)."""

    base: int
    limit: int  # 20 bits, in bytes (G=0) or 4 KiB units (G=1)
    type: int
    s: int  # 1 = code or data, 0 = system (TSS, LDT, gates)
    dpl: int
    p: int
    avl: int
    l: int  # noqa: E741 - the SDM's name of the 64-bit code bit
    d: int  # D/B
    g: int

    # from_u64: decode the 8 bytes of a descriptor; inverse of `to_u64`.
    @classmethod
    def from_u64(cls, raw: int) -> desc_struct:
        if not isinstance(raw, int) or not 0 <= raw < 1 << 64:
            raise ValueError(f"desc_struct: {raw!r} is not a 64-bit descriptor")
        bit = lambda n: (raw >> n) & 1  # noqa: E731
        return cls(get_desc_base(raw), get_desc_limit(raw), (raw >> 40) & 0xF, bit(44),
                   (raw >> 45) & 3, bit(47), bit(52), bit(53), bit(54), bit(55))

    # to_u64: pack the fields as GDT_ENTRY does. ValueError if a field overflows.
    def to_u64(self) -> int:
        widths = {"base": 32, "limit": 20, "type": 4, "s": 1, "dpl": 2, "p": 1, "avl": 1,
                  "l": 1, "d": 1, "g": 1}
        for name, width in widths.items():
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value < 1 << width:
                raise ValueError(f"desc_struct: {name}={value!r} does not fit {width} bits")
        flags = (self.type | self.s << 4 | self.dpl << 5 | self.p << 7 | self.avl << 12
                 | self.l << 13 | self.d << 14 | self.g << 15)
        return GDT_ENTRY(flags, self.base, self.limit)

    @property
    def is_code(self) -> bool:
        return bool(self.s and self.type & _TYPE_CODE)

    @property
    def is_data(self) -> bool:
        return bool(self.s and not self.type & _TYPE_CODE)


# get_desc_base: the 32-bit base address scattered over bits 16..39 and 56..63.
def get_desc_base(raw: int) -> int:
    return ((raw >> 16) & 0xFFFFFF) | ((raw >> 56) & 0xFF) << 24


# get_desc_limit: the raw 20-bit limit field (bits 0..15 and 48..51), G not applied.
def get_desc_limit(raw: int) -> int:
    return (raw & 0xFFFF) | ((raw >> 48) & 0xF) << 16


# segment_limit: the last valid offset of an expand-up segment, in bytes:
# the limit itself when G=0, (limit << 12) | 0xfff when G=1 (4 KiB units).
def segment_limit(desc: desc_struct) -> int:
    return (desc.limit << 12) | 0xFFF if desc.g else desc.limit


class Selector(NamedTuple):
    """A segment selector: `index` into the GDT (TI=0) or LDT (TI=1), requested `rpl`."""

    index: int
    ti: int
    rpl: int

    # from_value: split a 16-bit selector value. ValueError if it is not one.
    @classmethod
    def from_value(cls, value: int) -> Selector:
        if not isinstance(value, int) or not 0 <= value < 1 << 16:
            raise ValueError(f"Selector: {value!r} is not a 16-bit selector")
        return cls(value >> 3, (value & SEGMENT_TI_MASK) >> 2, value & SEGMENT_RPL_MASK)

    @property
    def value(self) -> int:
        return self.index << 3 | self.ti << 2 | self.rpl


# linux_gdt: the i386 per-CPU GDT's code/data entries as arch/x86/kernel/cpu/common.c
# initialises gdt_page (the documents' four values); every other entry null.
def linux_gdt() -> list[int]:
    gdt = [0] * GDT_ENTRIES
    gdt[GDT_ENTRY_KERNEL_CS] = 0x00CF9A000000FFFF
    gdt[GDT_ENTRY_KERNEL_DS] = 0x00CF92000000FFFF
    gdt[GDT_ENTRY_DEFAULT_USER_CS] = 0x00CFFA000000FFFF
    gdt[GDT_ENTRY_DEFAULT_USER_DS] = 0x00CFF2000000FFFF
    return gdt


# boot_gdt: the GDT arch/x86/boot/pm.c setup_gdt() loads before protected mode.
def boot_gdt() -> list[int]:
    gdt = [0] * (GDT_ENTRY_BOOT_TSS + 1)
    gdt[GDT_ENTRY_BOOT_CS] = GDT_ENTRY(0xC09B, 0, 0xFFFFF)  # code, read/execute, 4 GiB
    gdt[GDT_ENTRY_BOOT_DS] = GDT_ENTRY(0xC093, 0, 0xFFFFF)  # data, read/write, 4 GiB
    gdt[GDT_ENTRY_BOOT_TSS] = GDT_ENTRY(0x0089, 4096, 103)  # 32-bit TSS, 104 bytes
    return gdt


# flat_selectors: the (CS, DS) selectors Linux runs `cpl` with: __USER_CS and
# __USER_DS (start_thread) for 3, __KERNEL_CS and __KERNEL_DS for 0. (Outside
# any class: Python would mangle the kernel's double-underscore names there.)
def flat_selectors(cpl: int) -> tuple[int, int]:
    return (__USER_CS, __USER_DS) if cpl == USER_RPL else (__KERNEL_CS, __KERNEL_DS)


@dataclass(frozen=True)
class _Loaded:
    """A segment register: the visible selector and the descriptor cached at load."""

    selector: int
    desc: desc_struct | None  # None: a null selector (DS/ES/FS/GS only)


class Cpu:
    """One i386 CPU's segment registers over a GDT, with paging through a PageTable.

    Starts as `start_thread` leaves a user task: CPL 3, CS = __USER_CS, SS =
    DS = ES = __USER_DS (pass `cpl=0` for the kernel's __KERNEL_CS/__KERNEL_DS).
    """

    def __init__(self, gdt: list[int] | None = None, *, cpl: int = USER_RPL) -> None:
        self.gdt = linux_gdt() if gdt is None else list(gdt)
        if cpl not in (KERNEL_RPL, USER_RPL):
            raise ValueError(f"Cpu: cpl must be 0 or 3 as Linux uses them, not {cpl!r}")
        cs, ds = flat_selectors(cpl)
        self.cpl = cpl
        self.seg: dict[str, _Loaded] = {"cs": _Loaded(cs, self._descriptor(cs))}
        for reg in ("ss", "ds", "es", "fs", "gs"):
            self.seg[reg] = _Loaded(ds, self._descriptor(ds))

    # _descriptor: the descriptor `selector` names. #GP(selector) if it is
    # beyond the GDT or in the (empty) LDT; None for a null selector.
    def _descriptor(self, selector: int) -> desc_struct | None:
        sel = Selector.from_value(selector)
        if sel.ti == 0 and sel.index == 0:
            return None
        if sel.ti or sel.index >= len(self.gdt):
            raise SegmentFault("#GP", selector & ~SEGMENT_RPL_MASK,
                               f"selector {selector:#x} is outside the descriptor table")
        return desc_struct.from_u64(self.gdt[sel.index])

    # load_segment: `mov selector, reg` for reg in ds/es/fs/gs. Null loads (and
    # faults on use); otherwise data or readable code, max(CPL, RPL) <= DPL
    # unless conforming code, present; #GP/#NP(selector) otherwise.
    def load_segment(self, reg: str, selector: int) -> None:
        if reg not in ("ds", "es", "fs", "gs"):
            raise ValueError(f"load_segment: {reg!r} is not ds, es, fs or gs")
        desc = self._descriptor(selector)
        if desc is not None:
            err = selector & ~SEGMENT_RPL_MASK
            rpl = selector & SEGMENT_RPL_MASK
            if not (desc.is_data or desc.is_code and desc.type & _TYPE_READABLE):
                raise SegmentFault("#GP", err, f"{reg}: not a data or readable code segment")
            conforming = desc.is_code and desc.type & _TYPE_CONFORMING
            if not conforming and max(self.cpl, rpl) > desc.dpl:
                raise SegmentFault("#GP", err, f"{reg}: max(CPL {self.cpl}, RPL {rpl}) > "
                                               f"DPL {desc.dpl}")
            if not desc.p:
                raise SegmentFault("#NP", err, f"{reg}: segment not present")
        self.seg[reg] = _Loaded(selector, desc)

    # load_ss: `mov selector, ss`. Needs a non-null writable data segment with
    # RPL == CPL and DPL == CPL (#GP(selector) otherwise), present (#SS).
    def load_ss(self, selector: int) -> None:
        desc = self._descriptor(selector)
        if desc is None:
            raise SegmentFault("#GP", 0, "ss: null selector")
        err = selector & ~SEGMENT_RPL_MASK
        rpl = selector & SEGMENT_RPL_MASK
        if rpl != self.cpl:
            raise SegmentFault("#GP", err, f"ss: RPL {rpl} != CPL {self.cpl}")
        if not (desc.is_data and desc.type & _TYPE_WRITABLE):
            raise SegmentFault("#GP", err, "ss: not a writable data segment")
        if desc.dpl != self.cpl:
            raise SegmentFault("#GP", err, f"ss: DPL {desc.dpl} != CPL {self.cpl}")
        if not desc.p:
            raise SegmentFault("#SS", err, "ss: segment not present")
        self.seg["ss"] = _Loaded(selector, desc)

    # far_jump: `ljmp selector:offset` (and the target check of `lcall`)
    # straight to a code segment: non-conforming needs RPL <= CPL and DPL ==
    # CPL, conforming DPL <= CPL; present; offset within the limit. CPL does
    # not change; CS's RPL becomes CPL. #GP/#NP otherwise.
    def far_jump(self, selector: int, offset: int) -> None:
        desc = self._descriptor(selector)
        if desc is None:
            raise SegmentFault("#GP", 0, "far jump: null selector")
        err = selector & ~SEGMENT_RPL_MASK
        rpl = selector & SEGMENT_RPL_MASK
        if not desc.is_code:
            raise SegmentFault("#GP", err, "far jump: not a code segment (gates not modelled)")
        if desc.type & _TYPE_CONFORMING:
            if desc.dpl > self.cpl:
                raise SegmentFault("#GP", err, f"far jump: conforming DPL {desc.dpl} > "
                                               f"CPL {self.cpl}")
        elif rpl > self.cpl or desc.dpl != self.cpl:
            raise SegmentFault("#GP", err, f"far jump: non-conforming needs RPL {rpl} <= CPL "
                                           f"{self.cpl} and DPL {desc.dpl} == CPL")
        if not desc.p:
            raise SegmentFault("#NP", err, "far jump: segment not present")
        _check_limit("cs", desc, offset, 1)
        self.seg["cs"] = _Loaded(err | self.cpl, desc)

    far_call = far_jump  # the same checks for a direct call; the return frame is not modelled

    # linear_address: the linear address of `size` bytes at `offset` in
    # segment `reg`, after the type and limit checks the CPU makes on use:
    # #GP(0) (#SS(0) for ss) for a null segment, a write to code or read-only
    # data, a read of execute-only code, or an offset outside the limit.
    def linear_address(self, reg: str, offset: int, size: int = 1, *,
                       write: bool = False) -> int:
        if reg not in self.seg:
            raise ValueError(f"linear_address: no segment register {reg!r}")
        trap = "#SS" if reg == "ss" else "#GP"
        desc = self.seg[reg].desc
        if desc is None:
            raise SegmentFault(trap, 0, f"{reg}: null segment used")
        if write and (desc.is_code or not desc.type & _TYPE_WRITABLE):
            raise SegmentFault(trap, 0, f"{reg}: segment is not writable")
        if not write and reg != "cs" and desc.is_code and not desc.type & _TYPE_READABLE:
            raise SegmentFault(trap, 0, f"{reg}: execute-only code segment read")
        _check_limit(reg, desc, offset, size)
        return (desc.base + offset) & 0xFFFFFFFF

    # translate: logical address reg:offset -> linear -> physical, the last
    # step through `page_table` (PageTable.translate: PageFault on a miss or
    # a rights violation; user = CPL 3; an access through cs is a fetch).
    def translate(self, reg: str, offset: int, page_table: PageTable, *,
                  write: bool = False) -> int:
        linear = self.linear_address(reg, offset, write=write)
        return page_table.translate(linear, write, self.cpl == USER_RPL, reg == "cs")


# _check_limit: #GP(0) (#SS(0) for ss) unless offset..offset+size-1 lies within
# the segment: [0, limit] expand-up; (limit, 0xffff or 0xffffffff per D/B] expand-down.
def _check_limit(reg: str, desc: desc_struct, offset: int, size: int) -> None:
    if not isinstance(offset, int) or offset < 0 or size < 1:
        raise ValueError(f"{reg}: offset {offset!r} and size {size!r} must be >= 0 and >= 1")
    last = offset + size - 1
    limit = segment_limit(desc)
    if desc.is_data and desc.type & _TYPE_EXPAND_DOWN:
        upper = 0xFFFFFFFF if desc.d else 0xFFFF
        inside = limit < offset and last <= upper
    else:
        inside = last <= limit
    if not inside:
        raise SegmentFault("#SS" if reg == "ss" else "#GP", 0,
                           f"{reg}: offset {offset:#x}+{size} outside limit {limit:#x}")

