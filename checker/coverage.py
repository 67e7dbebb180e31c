"""Which parts of the contract a run exercised: operations, error clauses, boundaries.

After every step the engine asks `classify` which classes the step falls in,
from the step itself and the state just before it; a run's `Coverage` counts
them. Three kinds of class, named as a reader of docs/contract.md would:

    operation   every operation of the contract class that ran ("mmap")
    outcome     how it ended, one class per clause of the contract that says
                what it returns or raises ("mmap -> EEXIST", "alloc -> none")
    boundary    where its arguments (and the setup) sit relative to the edges
                the contract names ("length: page + 1", "addr: at an area's end",
                "order: above log2(npages)")

`REQUIRED[subsystem]` lists the classes the contract names; the report shows
how often each was hit and which were never hit (`missing`). A test asserts
that a default run of every subsystem hits all of them.
"""

from __future__ import annotations

import errno as errnos
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mmcheck.checker.trace import Step
from mmcheck.model import linux

P = linux.PAGE_SIZE
State = Mapping[str, Any]


@dataclass
class Coverage:
    """How often each class was hit in a run (RunStats.coverage, counted by the engine)."""

    hits: Mapping[str, int] = field(default_factory=dict)

    def missing(self, subsystem: str) -> list[str]:
        return [n for n in REQUIRED.get(subsystem, ()) if not self.hits.get(n)]

    def to_json(self, subsystem: str) -> dict[str, Any]:
        def part(prefix: str) -> dict[str, int]:
            return {n[len(prefix):]: k for n, k in sorted(self.hits.items())
                    if n.startswith(prefix)}

        required = REQUIRED.get(subsystem, ())
        return {
            "operations": part("operation: "),
            "outcomes": part("outcome: "),
            "boundaries": part("boundary: "),
            "required": len(required),
            "hit": sum(1 for n in required if self.hits.get(n)),
            "missing": self.missing(subsystem),
        }

    def summary(self, subsystem: str) -> list[str]:
        """The text report's lines: the figure, then what was never hit."""
        required = REQUIRED.get(subsystem, ())
        if not required:
            return []
        missing = self.missing(subsystem)
        out = [f"contract coverage: {len(required) - len(missing)}/{len(required)} classes "
               "(operations, error clauses, boundaries) hit"]
        if missing:
            out.append("  never hit: " + "; ".join(missing))
        return out


def classify(subsystem: str, step: Step, old: State, new: State,
             setup: Mapping[str, int]) -> list[str]:
    """The classes `step` (run from state `old` to state `new`) falls in."""
    fn = _CLASSIFIERS.get(subsystem)
    names = [f"operation: {step.op}"]
    if fn is not None:
        names += fn(step, old, new, setup)
    return names


def classify_setup(subsystem: str, setup: Mapping[str, int]) -> list[str]:
    fn = _SETUPS.get(subsystem)
    return fn(setup) if fn is not None else []


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _outcome(step: Step, errno: int | None = None) -> str:
    if step.raised is None:
        if step.result is None:
            return f"outcome: {step.op} -> none"
        return f"outcome: {step.op} -> returned"
    if errno:
        return f"outcome: {step.op} -> {errnos.errorcode.get(errno, errno)}"
    return f"outcome: {step.op} -> {step.raised}"


# ---------------------------------------------------------------- buddy


def _buddy_setup(setup: Mapping[str, int]) -> list[str]:
    n = setup["npages"]
    out = ["boundary: npages 1" if n == 1 else
           "boundary: npages a power of two" if n & (n - 1) == 0 else
           "boundary: npages not a power of two"]
    if n > 1024:
        out.append("boundary: npages above 1024")
    if setup["max_order"] < 11:
        out.append("boundary: max_order below 11")
    return out


def _buddy(step: Step, old: State, new: State, setup: Mapping[str, int]) -> list[str]:
    npages, max_order = setup["npages"], setup["max_order"]
    out = [_outcome(step)]
    order = step.args[-1]
    if step.op == "alloc":
        if 0 <= order < max_order:
            out.append(f"boundary: alloc order {order}")
            if 1 << order > npages:
                out.append("boundary: alloc order above log2(npages)")
            if order == max_order - 1:
                out.append("boundary: alloc order max_order-1")
        else:
            out.append("boundary: alloc order out of range")
        return out
    pfn = step.args[0]
    allocated = {b.pfn: b.order for b in old["allocated"]}
    if not 0 <= pfn < npages:
        out.append("boundary: free pfn outside memory")
    elif allocated.get(pfn) == order:
        out.append("boundary: free of an allocated block")
    elif pfn in allocated:
        out.append("boundary: free with the wrong order")
    elif any(b.pfn == pfn for b in old["free"]):
        out.append("boundary: free of a free block (double free)")
    else:
        out.append("boundary: free of a pfn never returned")
    return out


# ---------------------------------------------------------------- vma


def _length_class(length: int, task_size: int) -> str:
    if length <= 0:
        return "zero"
    if length > task_size:
        return "above task_size"
    if length < P:
        return "sub-page"
    if length == P:
        return "one page"
    if length == P + 1 or (length % P and length > P):
        return "page + 1 (unaligned, several pages)"
    return "several pages"


def _addr_classes(addr: int, areas: list[tuple[int, int]], low: int, top: int) -> list[str]:
    out = []
    if addr % P:
        out.append("unaligned")
    if addr >= 1 << 47:
        out.append("non-canonical or above TASK_SIZE_MAX")
    elif addr >= top:
        out.append("at or above task_size")
    elif addr == top - P:
        out.append("the last page below task_size")
    if addr == 0:
        out.append("zero")
    elif addr < low:
        out.append("below mmap_min_addr")
    elif addr == low:
        out.append("at mmap_min_addr")
    page = addr - addr % P
    if any(s == page for s, _ in areas):
        out.append("at an area's start")
    elif any(e == page for _, e in areas):
        out.append("at an area's end")
    elif any(s < page < e for s, e in areas):
        out.append("inside an area")
    elif low <= addr < top:
        out.append("in a gap")
    return out


def _vm_args(prefix: str, op: str, args: tuple[int, ...], areas: list[tuple[int, int]],
             low: int, top: int) -> list[str]:
    """addr, length[, prot[, flags]] of an AddressSpace call (vma, or fault after the pid)."""
    addr, length = args[0], args[1]
    out = [f"boundary: {prefix}addr {c}" for c in _addr_classes(addr, areas, low, top)]
    out.append(f"boundary: {prefix}length {_length_class(length, top)}")
    if length > 0 and addr % P == 0:
        end = addr + length + (-length) % P
        covered = [a for a in areas if a[0] < end and a[1] > addr]
        if len(covered) > 1:
            out.append(f"boundary: {prefix}range over several areas")
        if covered and (covered[0][0] > addr or covered[-1][1] < end or any(
                a[1] < b[0] for a, b in zip(covered, covered[1:], strict=False))):
            out.append(f"boundary: {prefix}range over a hole and an area")
    if op in ("mmap", "mprotect"):
        prot = args[2]
        out.append(f"boundary: {prefix}prot {prot if 0 <= prot < 8 else 'unknown bits'}")
    if op == "mmap":
        out.append(f"boundary: {prefix}flags {_flags_class(args[3])}")
    return out


def _flags_class(flags: int) -> str:
    kind = flags & linux.MAP_TYPE
    name = {linux.MAP_PRIVATE: "private", linux.MAP_SHARED: "shared"}.get(kind)
    if name is None:
        return "no map type" if kind == 0 else f"map type {kind:#x}"
    if not flags & linux.MAP_ANONYMOUS:
        return "not anonymous"
    if flags & linux.MAP_FIXED_NOREPLACE:
        return f"{name} MAP_FIXED_NOREPLACE"
    if flags & linux.MAP_FIXED:
        return f"{name} MAP_FIXED"
    return f"{name} with a hint"


def _vma_setup(setup: Mapping[str, int]) -> list[str]:
    big = setup["task_size"] == linux.TASK_SIZE_X86_64
    return [f"boundary: task_size {'x86-64' if big else 'small'}"]


def _vma(step: Step, old: State, new: State, setup: Mapping[str, int]) -> list[str]:
    areas = [(v.start, v.end) for v in old["vmas"]]
    low, top = setup["mmap_min_addr"], setup["task_size"]
    out = [_outcome(step, new["errno"] if step.raised == "OSError" else None)]
    if step.op == "find_vma":
        (addr,) = step.args
        out += [f"boundary: find_vma addr {c}" for c in _addr_classes(addr, areas, low, top)]
        if areas and addr >= areas[-1][1]:
            out.append("boundary: find_vma above every area")
        return out
    return out + _vm_args("", step.op, step.args, areas, low, top)


# ---------------------------------------------------------------- pagetable


def _pt_setup(setup: Mapping[str, int]) -> list[str]:
    out = [f"boundary: {setup['levels']}-level paging"]
    if setup["npages"] < 16:
        out.append("boundary: few table pages")
    return out


def _va_classes(va: int, levels: int) -> list[str]:
    from mmcheck.checker.subsystems.pagetable import translatable

    out = []
    if va % P:
        out.append("unaligned")
    if not translatable(levels, va - va % P):
        out.append("not translatable (non-canonical or too high)")
    elif va >= 1 << 63:
        out.append("upper half")
    return out


def _pagetable(step: Step, old: State, new: State, setup: Mapping[str, int]) -> list[str]:
    levels = setup["levels"]
    out = [_outcome(step)]
    va = step.args[0]
    out += [f"boundary: {step.op} va {c}" for c in _va_classes(va, levels)]
    page = va - va % P
    pte = next((p for p in old["ptes"] if p.va == page), None)
    if step.op == "map":
        pfn, flags = step.args[1], step.args[2]
        limit = 1 << (20 if levels == 2 else 40)
        out.append("boundary: map pfn " + ("too big for an entry" if pfn >= limit else
                                            "the largest an entry holds" if pfn == limit - 1
                                            else "zero" if pfn == 0 else "ordinary"))
        nx = flags & linux._PAGE_NX
        if flags & ~0xFFF & ~linux._PAGE_NX:
            out.append("boundary: map flags beyond bits 0-11")
        elif nx:
            out.append("boundary: map flags with NX" + (" in 2-level mode" if levels == 2 else ""))
        if pte is not None and pte.present:
            out.append("boundary: map over a mapped page")
    elif step.op == "translate":
        write, user, exec_ = step.args[1:4]
        out.append(f"boundary: translate access write={write} user={user} exec={exec_}")
        if step.raised == "PageFault":
            out.append("outcome: translate -> PageFault " + (
                "(protection)" if pte is not None and pte.present else "(not present)"))
    elif step.op == "unmap" and pte is None and step.raised is None:
        out.append("boundary: unmap of a page never mapped")
    return out


# ---------------------------------------------------------------- fault


def _fault(step: Step, old: State, new: State, setup: Mapping[str, int]) -> list[str]:
    out = [_outcome(step)]
    if step.op == "spawn":
        return out
    pid = step.args[0]
    alive = {p.pid for p in old["procs"]}
    if pid not in alive:
        out.append(f"boundary: {step.op} of a dead pid")
        return out
    areas = sorted((v.start, v.end) for v in old["vmas"] if v.pid == pid)
    if step.op in ("mmap", "munmap", "mprotect"):
        return out + _vm_args(f"{step.op} ", step.op, step.args[1:], areas, 0x10000,
                              linux.TASK_SIZE_X86_64)
    if step.op in ("read", "write"):
        va = step.args[1]
        page = va - va % P
        area = next((v for v in old["vmas"] if v.pid == pid and v.start <= page < v.end), None)
        if va >= 1 << 47:
            out.append(f"boundary: {step.op} of a non-canonical address")
        elif area is None:
            out.append(f"boundary: {step.op} outside every area")
        else:
            shared = area.flags & linux.MAP_SHARED
            mapped = [m for m in old["mappings"] if m.pid == pid and m.va == page]
            others = mapped and any(m.pfn == mapped[0].pfn and m.pid != pid
                                    for m in old["mappings"])
            what = ("never touched" if not mapped else
                    "shared copy-on-write" if others and not shared else
                    "in shared memory" if shared else "private")
            out.append(f"boundary: {step.op} of a page {what}")
            need = linux.PROT_WRITE if step.op == "write" else linux.PROT_READ
            if not area.prot & need:
                out.append(f"boundary: {step.op} against the area's protection")
        if step.op == "write" and not 0 <= step.args[2] < 256:
            out.append("boundary: write of a value that is no byte")
    return out


_CLASSIFIERS: dict[str, Callable[[Step, State, State, Mapping[str, int]], list[str]]] = {
    "buddy": _buddy, "vma": _vma, "pagetable": _pagetable, "fault": _fault,
}
_SETUPS: dict[str, Callable[[Mapping[str, int]], list[str]]] = {
    "buddy": _buddy_setup, "vma": _vma_setup, "pagetable": _pt_setup,
}

_VM_ADDR = ("unaligned", "at or above task_size", "the last page below task_size",
            "below mmap_min_addr", "at an area's start", "at an area's end",
            "inside an area", "in a gap")
_LENGTHS = ("zero", "sub-page", "one page", "page + 1 (unaligned, several pages)",
            "several pages", "above task_size")
_FLAGS = ("private MAP_FIXED", "shared MAP_FIXED", "private MAP_FIXED_NOREPLACE",
          "shared MAP_FIXED_NOREPLACE", "private with a hint", "shared with a hint",
          "no map type", "map type 0x3", "map type 0x8", "not anonymous")

# The classes the contract (docs/contract.md) names, per subsystem.
REQUIRED: dict[str, tuple[str, ...]] = {
    "buddy": (
        "operation: alloc", "operation: free",
        "outcome: alloc -> returned", "outcome: alloc -> none", "outcome: alloc -> ValueError",
        "outcome: free -> none", "outcome: free -> ValueError",
        *(f"boundary: alloc order {k}" for k in range(11)),
        "boundary: alloc order above log2(npages)", "boundary: alloc order max_order-1",
        "boundary: alloc order out of range",
        "boundary: free of an allocated block", "boundary: free with the wrong order",
        "boundary: free of a free block (double free)", "boundary: free of a pfn never returned",
        "boundary: free pfn outside memory",
        "boundary: npages 1", "boundary: npages a power of two",
        "boundary: npages not a power of two", "boundary: npages above 1024",
        "boundary: max_order below 11",
    ),
    "vma": (
        "operation: mmap", "operation: munmap", "operation: mprotect", "operation: find_vma",
        "outcome: find_vma -> returned", "outcome: find_vma -> none",
        "boundary: find_vma above every area", "boundary: find_vma addr in a gap",
        "boundary: find_vma addr inside an area", "boundary: find_vma addr at an area's end",
        "outcome: mmap -> returned", *(f"outcome: mmap -> {e}" for e in (
            "EINVAL", "EBADF", "ENOMEM", "EPERM", "EEXIST")),
        "outcome: munmap -> none", "outcome: munmap -> EINVAL",
        "outcome: mprotect -> none", "outcome: mprotect -> EINVAL", "outcome: mprotect -> ENOMEM",
        *(f"boundary: addr {c}" for c in _VM_ADDR),
        "boundary: addr non-canonical or above TASK_SIZE_MAX",
        *(f"boundary: length {c}" for c in _LENGTHS),
        *(f"boundary: prot {k}" for k in range(8)), "boundary: prot unknown bits",
        *(f"boundary: flags {c}" for c in _FLAGS),
        "boundary: range over several areas", "boundary: range over a hole and an area",
        "boundary: task_size x86-64", "boundary: task_size small",
    ),
    "pagetable": (
        "operation: map", "operation: unmap", "operation: translate",
        "outcome: map -> none", "outcome: map -> ValueError", "outcome: map -> MemoryError",
        "outcome: unmap -> returned", "outcome: unmap -> none", "outcome: unmap -> ValueError",
        "outcome: translate -> returned", "outcome: translate -> PageFault (not present)",
        "outcome: translate -> PageFault (protection)",
        "boundary: map va unaligned", "boundary: map va upper half",
        *(f"boundary: {op} va not translatable (non-canonical or too high)"
          for op in ("map", "unmap", "translate")),
        "boundary: unmap va unaligned",
        "boundary: map pfn too big for an entry", "boundary: map pfn the largest an entry holds",
        "boundary: map pfn zero", "boundary: map flags beyond bits 0-11",
        "boundary: map flags with NX", "boundary: map flags with NX in 2-level mode",
        "boundary: map over a mapped page", "boundary: unmap of a page never mapped",
        *(f"boundary: translate access write={w} user={u} exec={x}"
          for w in (0, 1) for u in (0, 1) for x in (0, 1)),
        *(f"boundary: {k}-level paging" for k in (2, 3, 4, 5)), "boundary: few table pages",
    ),
    "fault": (
        *(f"operation: {op}" for op in ("spawn", "fork", "exit", "mmap", "munmap",
                                        "mprotect", "read", "write")),
        "outcome: read -> returned", "outcome: read -> Segfault",
        "outcome: write -> none", "outcome: write -> Segfault",
        "outcome: mmap -> returned", "outcome: mmap -> OSError",
        "outcome: fork -> returned", "outcome: exit -> none",
        "boundary: read of a page never touched", "boundary: read of a page shared copy-on-write",
        "boundary: write of a page shared copy-on-write", "boundary: write of a page private",
        "boundary: read of a page in shared memory", "boundary: write of a page in shared memory",
        "boundary: read outside every area", "boundary: write against the area's protection",
        "boundary: read of a non-canonical address", "boundary: write of a value that is no byte",
        "boundary: fork of a dead pid", "boundary: exit of a dead pid",
        "boundary: mprotect range over several areas",
    ),
}
