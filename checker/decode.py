"""Numbers as a kernel hacker reads them: one place that knows what each one means.

A trace step, a state line or an explanation holds bare ints; what they mean
depends on where they sit: `mmap(4194304, 4096, 3, 34)` is
`mmap(0x400000, 0x1000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS)`. The
meaning of an argument comes from its parameter's name in the subsystem's
vocabulary (`addr`, `length`, `prot`, `flags`, ...), so every driver's step and
state rendering and every explanation decode the same number the same way:

    address   addr, va, start, end, hint, a result of mmap/translate   0x400000
    length    length                                                     0x1000
    prot      prot                                   PROT_READ|PROT_WRITE, PROT_NONE
    mapflags  flags of mmap (vma, fault)             MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED
    pteflags  flags of a page-table entry            _PAGE_PRESENT|_PAGE_RW|_PAGE_USER
    errno     errno                                  EEXIST
    pfcode    the x86 page-fault error code          PF_PROT|PF_WRITE|PF_USER (0x7)
    sicode    si_code of a SIGSEGV                   SEGV_MAPERR
    selector  an x86 segment selector                0x7b (index 15, TI 0, RPL 3)
    sreg      an x86 segment register number         DS
    pfn, order, pid, value, bool: as they are (decimal; pfn in hex where it is an x86 one)

Where a subsystem means something else by a name (pagetable's `flags` are
entry bits, its `pfn` an x86 frame number), its declaration says so (`kinds`,
checker/subsystems/registry.py); its `addresses` flag says its numbers are
virtual addresses and byte lengths, shown in hex from a page up.

Unknown bits are never dropped: they are shown in hex after the names
(`PROT_READ|0x80`).
"""

from __future__ import annotations

import errno as errnos
from collections.abc import Sequence
from typing import Any

from mmcheck.model import linux

PAGE = linux.PAGE_SIZE

_PROT = ((linux.PROT_READ, "PROT_READ"), (linux.PROT_WRITE, "PROT_WRITE"),
         (linux.PROT_EXEC, "PROT_EXEC"))
_MAP = ((linux.MAP_ANONYMOUS, "MAP_ANONYMOUS"), (linux.MAP_FIXED, "MAP_FIXED"),
        (linux.MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"))
_MAP_TYPES = {linux.MAP_SHARED: "MAP_SHARED", linux.MAP_PRIVATE: "MAP_PRIVATE",
              0x03: "MAP_SHARED_VALIDATE", 0x08: "MAP_DROPPABLE"}
_PTE = ((linux._PAGE_PRESENT, "_PAGE_PRESENT"), (linux._PAGE_RW, "_PAGE_RW"),
        (linux._PAGE_USER, "_PAGE_USER"), (linux._PAGE_PWT, "_PAGE_PWT"),
        (linux._PAGE_PCD, "_PAGE_PCD"), (linux._PAGE_ACCESSED, "_PAGE_ACCESSED"),
        (linux._PAGE_DIRTY, "_PAGE_DIRTY"), (linux._PAGE_PSE, "_PAGE_PSE"),
        (linux._PAGE_GLOBAL, "_PAGE_GLOBAL"), (linux._PAGE_NX, "_PAGE_NX"))
_PF = ((linux.X86_PF_PROT, "PF_PROT"), (linux.X86_PF_WRITE, "PF_WRITE"),
       (linux.X86_PF_USER, "PF_USER"), (linux.X86_PF_RSVD, "PF_RSVD"),
       (linux.X86_PF_INSTR, "PF_INSTR"))
_SI_CODES = {1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 4: "SEGV_PKUERR", 0x80: "SI_KERNEL"}
# x86's segment register numbers (the Sreg field of an instruction, model/segment.py).
_SREGS = ("ES", "CS", "SS", "DS", "FS", "GS")

# Parameter (or state) name -> kind, unless the subsystem's declaration says otherwise.
_KINDS = {
    "addr": "address", "va": "address", "start": "address", "end": "address",
    "hint": "address", "lo": "address", "hi": "address", "task_size": "address",
    "mmap_min_addr": "address", "length": "length", "len": "length", "prot": "prot",
    "errno": "errno", "code": "pfcode", "error_code": "pfcode", "si_code": "sicode",
    "write": "bool", "user": "bool", "exec": "bool",
}


def _bits(value: int, names: Sequence[tuple[int, str]]) -> list[str]:
    return [name for bit, name in names if value & bit]


def _rest(value: int, names: Sequence[tuple[int, str]]) -> int:
    known = 0
    for bit, _ in names:
        known |= bit
    return value & ~known


def _join(parts: list[str], rest: int, none: str) -> str:
    if rest:
        parts = parts + [f"{rest:#x}"]
    return "|".join(parts) or none


def prot_text(prot: int) -> str:
    """PROT_READ|PROT_WRITE; PROT_NONE for 0."""
    if prot < 0:
        return str(prot)
    return _join(_bits(prot, _PROT), _rest(prot, _PROT), "PROT_NONE")


def map_flags_text(flags: int) -> str:
    """MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED: the map type (low four bits) first."""
    if flags < 0:
        return str(flags)
    kind = flags & linux.MAP_TYPE
    parts = [_MAP_TYPES.get(kind, f"{kind:#x}")] if kind else []
    return _join(parts + _bits(flags, _MAP), _rest(flags & ~linux.MAP_TYPE, _MAP), "0")


def pte_flags_text(flags: int) -> str:
    """_PAGE_PRESENT|_PAGE_RW|_PAGE_USER; bits no x86 entry names stay in hex."""
    if flags < 0:
        return str(flags)
    return _join(_bits(flags, _PTE), _rest(flags, _PTE), "0")


def pf_code_text(code: int) -> str:
    """The x86 page-fault error code by bit, with the number: PF_PROT|PF_WRITE (0x3)."""
    if code < 0:
        return str(code)
    names = _join(_bits(code, _PF), _rest(code, _PF), "")
    return f"{names} ({code:#x})" if names else "0 (not present, read, kernel)"


def errno_text(err: int) -> str:
    """ENOMEM, not 12; 0 stays 0 (no error yet)."""
    return errnos.errorcode.get(err, str(err)) if err else "0"


def si_code_text(code: int) -> str:
    return _SI_CODES.get(code, str(code))


def selector_text(sel: int) -> str:
    """0x7b (index 15, TI 0, RPL 3): a 16-bit selector's descriptor index, table
    indicator (0 the GDT, 1 the LDT) and requested privilege level."""
    if not 0 <= sel < 1 << 16:
        return f"{sel:#x}" if sel >= 0 else str(sel)
    return f"{sel:#x} (index {sel >> 3}, TI {sel >> 2 & 1}, RPL {sel & 3})"


def sreg_text(n: int) -> str:
    """DS: a segment register by its name, the number as it is past GS."""
    return _SREGS[n] if 0 <= n < len(_SREGS) else str(n)


def address_text(value: int) -> str:
    return f"{value:#x}" if value >= 0 else str(value)


def length_text(value: int) -> str:
    return f"{value:#x}" if value >= PAGE or (value > 0 and value % 0x100 == 0) else str(value)


def kind_of(subsystem: str, op: str, name: str) -> str:
    """What the parameter (or state name) `name` of `op` holds in `subsystem`."""
    decl = _declaration(subsystem)
    declared = decl.kind(name) if decl is not None else None
    if declared is not None:
        return declared
    kind = _KINDS.get(name, "int")
    if kind in ("address", "length") and not addresses(subsystem):
        return "int"
    return kind


def _declaration(subsystem: str) -> Any:
    """The subsystem's registration, or None for a name no declaration has."""
    from mmcheck.checker.subsystems import registry

    return registry.get(subsystem)


def addresses(subsystem: str) -> bool:
    """Whether the subsystem's numbers are virtual addresses and byte lengths."""
    decl = _declaration(subsystem)
    return decl is not None and decl.addresses


_TEXT = {
    "address": address_text, "length": length_text, "prot": prot_text,
    "mapflags": map_flags_text, "pteflags": pte_flags_text, "errno": errno_text,
    "pfcode": pf_code_text, "sicode": si_code_text, "selector": selector_text,
    "sreg": sreg_text,
}


def value_text(kind: str, value: object) -> str:
    """A value of `kind` as the kernel's headers would spell it."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "none" if value is None else str(value)
    fn = _TEXT.get(kind)
    return fn(value) if fn is not None else str(value)


def number_text(subsystem: str, value: int) -> str:
    """A number whose meaning is unknown: hex from a page up in the VM subsystems."""
    if value >= PAGE and addresses(subsystem):
        return f"{value:#x}"
    return str(value)


def params(subsystem: str, op: str) -> tuple[str, ...]:
    """The parameter names of `op` as the subsystem's vocabulary declares them."""
    from mmcheck.checker.subsystems import registry

    vocab = registry.vocabulary(subsystem)
    operation = vocab.operation(op) if vocab is not None else None
    return tuple(name for name, _ in operation.params) if operation is not None else ()


def call_text(subsystem: str, op: str, args: Sequence[int]) -> str:
    """mmap(0x400000, 0x1000, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED)."""
    names = params(subsystem, op)
    shown = []
    for i, a in enumerate(args):
        kind = kind_of(subsystem, op, names[i]) if i < len(names) else "int"
        shown.append(value_text(kind, a) if kind != "int" else number_text(subsystem, a))
    return f"{op}({', '.join(shown)})"


def result_text(subsystem: str, op: str, result: object) -> str:
    """What an operation returned: an mmap's or translate's address in hex; a result
    the declaration names (`results`) as its parameter's kind spells it."""
    if isinstance(result, bool) or not isinstance(result, int):
        return "none" if result is None else str(result)
    decl = _declaration(subsystem)
    param = decl.result_param(op) if decl is not None else None
    kind = kind_of(subsystem, op, param) if param else "int"
    return value_text(kind, result) if kind != "int" else number_text(subsystem, result)


def setup_text(subsystem: str, setup: dict[str, int] | object) -> str:
    """The constructor's arguments: task_size=0x7ffffffff000, mmap_min_addr=0x10000."""
    items = dict(setup).items()  # type: ignore[call-overload]
    return ", ".join(f"{k}={value_text(kind_of(subsystem, '', k), v)}"
                     if kind_of(subsystem, "", k) != "int" else f"{k}={v}" for k, v in items)
