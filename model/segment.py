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

from mmcheck.model.mmu import PageFault, PageTable
from mmcheck.model.vocabulary import Operation, Record, Snapshot, StateVar, Vocabulary

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
    "segment_snapshot",
    "SegmentUnit",
    "SREG_NAMES",
    "TRAP_CLASS",
    "VOCABULARY",
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



# ---------------------------------------------------------------- the contract's SegmentUnit

# Segment registers by their Sreg number in an instruction (SDM vol. 2, 2.1.5):
# what the contract's `sreg` argument is.
ES, CS, SS, DS, FS, GS = range(6)
SREG_NAMES = ("es", "cs", "ss", "ds", "fs", "gs")
# The #GP, #NP, #SS vectors, and the exception class the contract names for each.
TRAP_CLASS = {"#GP": "GeneralProtection", "#NP": "SegmentNotPresent", "#SS": "StackFault"}


class SegmentUnit:
    """The contract's segment translator (docs/contract.md [SEG-INIT]): a `Cpu` over
    `gdt` at `cpl`, addressed by Sreg numbers, paging through `mmu`.

    Faults are the model's `SegmentFault` (its `trap` names the contract's class,
    TRAP_CLASS); ValueError for an sreg an operation does not take."""

    def __init__(self, gdt: list[int], cpl: int, mmu: PageTable) -> None:
        self.cpu = Cpu(gdt, cpl=cpl)
        self.mmu = mmu
        self.descriptors = decode_gdt(self.cpu.gdt)  # the GDT never changes here
        self.last: list[Translation] = []  # the last linear or translate that succeeded

    # load_segment: `mov selector, sreg` for ES, DS, FS or GS (Cpu.load_segment).
    def load_segment(self, sreg: int, selector: int) -> None:
        if sreg not in (ES, DS, FS, GS):
            raise ValueError(f"load_segment: sreg {sreg!r} is not ES, DS, FS or GS")
        self.cpu.load_segment(SREG_NAMES[sreg], selector)

    # load_ss: `mov selector, ss` (Cpu.load_ss).
    def load_ss(self, selector: int) -> None:
        self.cpu.load_ss(selector)

    # far_jump: `ljmp selector:offset` (Cpu.far_jump).
    def far_jump(self, selector: int, offset: int) -> None:
        self.cpu.far_jump(selector, offset)

    # far_call: `lcall selector:offset`: the same checks on the target (Cpu.far_call).
    def far_call(self, selector: int, offset: int) -> None:
        self.cpu.far_call(selector, offset)

    # linear: the linear address of `size` bytes at sreg:offset (Cpu.linear_address).
    # ValueError for an sreg that is no register, offset < 0 or size < 1, first.
    def linear(self, sreg: int, offset: int, size: int, write: bool) -> int:
        _check_use(sreg, offset, size)
        linear = self.cpu.linear_address(_sreg_name(sreg), offset, size, write=write)
        self.last = [Translation(sreg, offset, linear, -1)]
        return linear

    # translate: sreg:offset -> linear -> physical through the MMU (Cpu.translate);
    # None when paging faults (the MMU's business, [PT-TRANSLATE]), a
    # SegmentFault when segmentation does.
    def translate(self, sreg: int, offset: int, write: bool) -> int | None:
        _check_use(sreg, offset, 1)
        linear = self.cpu.linear_address(_sreg_name(sreg), offset, write=write)
        try:
            phys = self.mmu.translate(linear, write, self.cpu.cpl == USER_RPL, sreg == CS)
        except PageFault:
            phys = None
        self.last = [Translation(sreg, offset, linear, -1 if phys is None else phys)]
        return phys

    # selector: the visible part of segment register `sreg`.
    def selector(self, sreg: int) -> int:
        return self.cpu.seg[_sreg_name(sreg)].selector

    def snapshot(self) -> Snapshot:
        """The vocabulary's state now; later operations do not change it."""
        return segment_snapshot(self.cpu.cpl, self.descriptors,
                                [self.selector(s) for s in range(len(SREG_NAMES))], self.mmu,
                                list(self.last))


# _check_use: ValueError unless `sreg` names a register, offset >= 0 and size >= 1.
def _check_use(sreg: object, offset: object, size: object) -> None:
    _sreg_name(sreg)
    if not isinstance(offset, int) or not isinstance(size, int) or offset < 0 or size < 1:
        raise ValueError(f"offset {offset!r} and size {size!r} must be >= 0 and >= 1")


# _sreg_name: the register name of Sreg number `sreg`; ValueError if it is none.
def _sreg_name(sreg: object) -> str:
    if not isinstance(sreg, int) or isinstance(sreg, bool) or not 0 <= sreg < len(SREG_NAMES):
        raise ValueError(f"sreg {sreg!r} is not 0..5 (ES, CS, SS, DS, FS, GS)")
    return SREG_NAMES[sreg]


# decode_gdt: every non-null entry of `gdt` as a Descriptor record, by index.
def decode_gdt(gdt: list[int]) -> list[Descriptor]:
    decoded = [(i, desc_struct.from_u64(raw)) for i, raw in enumerate(gdt) if raw]
    return [Descriptor(i, d.base, d.limit, d.type, d.s, d.dpl, d.p, d.g, d.d)
            for i, d in decoded]


def segment_snapshot(cpl: int, descs: list[Descriptor], selectors: list[int],
                     mmu: PageTable, last: list[Translation]) -> Snapshot:
    """The vocabulary's state from the CPL, the decoded GDT (decode_gdt), the six
    selectors, the page table and the last translation (shared by the reference
    and the checker's view of a submission)."""
    segs = [SegReg(s, sel) for s, sel in enumerate(selectors)]
    maps = [Map(va, pfn, flags) for va, pfn, flags in mmu.walk_range(0, 1 << 32)]
    return Snapshot({"cpl": lambda: cpl, "gdt": lambda: descs, "segs": lambda: segs,
                     "maps": lambda: maps, "last": lambda: last})


class Descriptor(NamedTuple):
    """GDT entry `index`, decoded (a null entry is not listed)."""

    index: int
    base: int
    limit: int
    type: int
    s: int
    dpl: int
    p: int
    g: int
    d: int

    @property
    def limit_bytes(self) -> int:
        """The last valid offset of an expand-up segment (segment_limit)."""
        return (self.limit << 12) | 0xFFF if self.g else self.limit


class SegReg(NamedTuple):
    """Segment register `sreg` (ES=0 .. GS=5) holds `selector`."""

    sreg: int
    selector: int


class Translation(NamedTuple):
    """sreg:offset became linear address `linear`, and physical `phys` (-1: not
    translated, or paging faulted)."""

    sreg: int
    offset: int
    linear: int
    phys: int


class Map(NamedTuple):
    """The page table maps the page at linear address `va` to `pfn` with `flags`."""

    va: int
    pfn: int
    flags: int


VOCABULARY = Vocabulary(
    subsystem="segment",
    doc="x86 segmentation as Linux i386 sets it up: the GDT, selectors, DPL/RPL/CPL checks, "
        "logical -> linear -> physical through the MMU.",
    records=(
        Record("Descriptor", (("index", "int"), ("base", "int"), ("limit", "int"),
                              ("type", "int"), ("s", "int"), ("dpl", "int"), ("p", "int"),
                              ("g", "int"), ("d", "int")),
               doc="A non-null GDT entry: base, the raw 20-bit limit (G=1: 4 KiB units), "
                   "type, S (1 = code/data), DPL, P, G, D/B."),
        Record("SegReg", (("sreg", "int"), ("selector", "int")),
               doc="Segment register sreg (ES=0, CS=1, SS=2, DS=3, FS=4, GS=5) holds selector."),
        Record("Map", (("va", "int"), ("pfn", "int"), ("flags", "int")),
               doc="The page table maps the linear page va to frame pfn with flags."),
        Record("Translation", (("sreg", "int"), ("offset", "int"), ("linear", "int"),
                               ("phys", "int")),
               doc="sreg:offset gave linear address linear and physical phys (-1: none)."),
    ),
    state=(
        StateVar("cpl", "int", doc="The current privilege level: 0 (kernel) or 3 (user)."),
        StateVar("gdt", "list[Descriptor]", doc="Every non-null GDT entry, by index."),
        StateVar("segs", "list[SegReg]", doc="The six segment registers' selectors."),
        StateVar("maps", "list[Map]", doc="The page table's leaf entries, by address."),
        StateVar("last", "list[Translation]",
                 doc="The last linear or translate that passed the segment checks (0 or 1)."),
    ),
    operations=(
        Operation("load_segment", (("sreg", "int"), ("selector", "int")), "none",
                  ("GeneralProtection", "SegmentNotPresent", "ValueError"),
                  doc="mov selector to ES, DS, FS or GS."),
        Operation("load_ss", (("selector", "int"),), "none",
                  ("GeneralProtection", "StackFault"), doc="mov selector to SS."),
        Operation("far_jump", (("selector", "int"), ("offset", "int")), "none",
                  ("GeneralProtection", "SegmentNotPresent"),
                  doc="ljmp selector:offset straight to a code segment."),
        Operation("far_call", (("selector", "int"), ("offset", "int")), "none",
                  ("GeneralProtection", "SegmentNotPresent"),
                  doc="lcall selector:offset straight to a code segment."),
        Operation("linear", (("sreg", "int"), ("offset", "int"), ("size", "int"),
                             ("write", "bool")), "int",
                  ("GeneralProtection", "StackFault", "ValueError"),
                  doc="The linear address of size bytes at sreg:offset."),
        Operation("translate", (("sreg", "int"), ("offset", "int"), ("write", "bool")), "int?",
                  ("GeneralProtection", "StackFault", "ValueError"),
                  doc="sreg:offset -> linear -> physical through the MMU; none when "
                      "paging faults."),
    ),
)
