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

Each subsystem's driver classifies its own steps (its `classify_step` and
`classify_setup` hooks, checker/subsystems/registry.py) and lists the classes
the contract names (its `COVERAGE`); this module counts them and holds what
several drivers share (outcomes, the classes of an AddressSpace call's
arguments). The report shows how often each class was hit and which were
never hit (`missing`). A test asserts that a default run of every subsystem
hits all of them.
"""

from __future__ import annotations

import errno as errnos
from collections.abc import Mapping
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
        return [n for n in required(subsystem) if not self.hits.get(n)]

    def to_json(self, subsystem: str) -> dict[str, Any]:
        def part(prefix: str) -> dict[str, int]:
            return {n[len(prefix):]: k for n, k in sorted(self.hits.items())
                    if n.startswith(prefix)}

        named = required(subsystem)
        return {
            "operations": part("operation: "),
            "outcomes": part("outcome: "),
            "boundaries": part("boundary: "),
            "required": len(named),
            "hit": sum(1 for n in named if self.hits.get(n)),
            "missing": self.missing(subsystem),
        }

    def summary(self, subsystem: str) -> list[str]:
        """The text report's lines: the figure, then what was never hit."""
        named = required(subsystem)
        if not named:
            return []
        missing = self.missing(subsystem)
        out = [f"contract coverage: {len(named) - len(missing)}/{len(named)} classes "
               "(operations, error clauses, boundaries) hit"]
        if missing:
            out.append("  never hit: " + "; ".join(missing))
        return out


def required(subsystem: str) -> tuple[str, ...]:
    """The classes the contract names for `subsystem` (its driver's COVERAGE)."""
    from mmcheck.checker import subsystems

    driver = subsystems.driver(subsystem)
    return driver.coverage if driver is not None else ()


def classify(subsystem: str, step: Step, old: State, new: State,
             setup: Mapping[str, int]) -> list[str]:
    """The classes `step` (run from state `old` to state `new`) falls in."""
    from mmcheck.checker import subsystems

    driver = subsystems.driver(subsystem)
    names = [f"operation: {step.op}"]
    if driver is not None:
        names += driver.classify_step(step, old, new, setup)
    return names


def classify_setup(subsystem: str, setup: Mapping[str, int]) -> list[str]:
    """The classes the constructor's arguments fall in."""
    from mmcheck.checker import subsystems

    driver = subsystems.driver(subsystem)
    if driver is None or driver.classify_setup is None:
        return []
    return driver.classify_setup(setup)


def prot_class(prot: int) -> str:
    """0..7, PROT_SEM (0x8, with any of those), or unknown bits."""
    if 0 <= prot < 8:
        return str(prot)
    return "with PROT_SEM" if 0 <= prot < 16 else "unknown bits"


def outcome(step: Step, errno: int | None = None) -> str:
    """How a step ended: "outcome: OP -> returned", "-> none", "-> EXCEPTION", "-> ERRNO"."""
    if step.raised is None:
        if step.result is None:
            return f"outcome: {step.op} -> none"
        return f"outcome: {step.op} -> returned"
    if errno:
        return f"outcome: {step.op} -> {errnos.errorcode.get(errno, errno)}"
    return f"outcome: {step.op} -> {step.raised}"


# ---------------------------------------------------------------- AddressSpace calls


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


def addr_classes(addr: int, areas: list[tuple[int, int]], low: int, top: int) -> list[str]:
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


def vm_args(prefix: str, op: str, args: tuple[int, ...], areas: list[tuple[int, int]],
             low: int, top: int) -> list[str]:
    """addr, length[, prot[, flags]] of an AddressSpace call (vma, or fault after the pid)."""
    addr, length = args[0], args[1]
    out = [f"boundary: {prefix}addr {c}" for c in addr_classes(addr, areas, low, top)]
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
        out.append(f"boundary: {prefix}prot {prot_class(prot)}")
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


VM_ADDR = ("unaligned", "at or above task_size", "the last page below task_size",
            "below mmap_min_addr", "at an area's start", "at an area's end",
            "inside an area", "in a gap")
LENGTHS = ("zero", "sub-page", "one page", "page + 1 (unaligned, several pages)",
            "several pages", "above task_size")
FLAGS = ("private MAP_FIXED", "shared MAP_FIXED", "private MAP_FIXED_NOREPLACE",
          "shared MAP_FIXED_NOREPLACE", "private with a hint", "shared with a hint",
          "no map type", "map type 0x3", "map type 0x8", "not anonymous")

