"""The address space (AddressSpace, mm_struct's VMAs) as the engines see it.

Steps work in a window of 16 pages where fixed mappings collide, split and
merge, plus non-fixed mappings wherever the object puts them: single mmap,
munmap and mprotect calls with every protection, and bursts that reach what a
student would not think to try: a three-way merge, a split and its undoing, an
mprotect meeting a hole (ENOMEM with the areas before it changed), MAP_FIXED
over several areas, MAP_FIXED_NOREPLACE next to an area and over it, free and
busy hints, and the error paths in Linux's order (EBADF, EINVAL, ENOMEM,
EPERM, EEXIST). Setups vary TASK_SIZE (so that "past TASK_SIZE" is near) and
mmap_min_addr.

What a spec sees of a submission: everything comes from its own `vmas()` (the
areas, their order, map_count as their number), the constructor's arguments,
and errno as its last OSError set it (see model/vma.py `snapshot_from_vmas`).
The reference model follows along, taking the place the submission chose for
each non-fixed mmap (AddressSpace.take_area), and compares results, errnos and
vmas(); a difference the spec does not flag is reported one step later (see
_vm.py).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from mmcheck.checker import coverage, decode
from mmcheck.checker.explain import fields_in
from mmcheck.checker.formats.pictures.vma import render_svg  # noqa: F401 (HTML picture)
from mmcheck.checker.subsystems import edges
from mmcheck.checker.subsystems._vm import (
    Converted,
    Divergence,
    construct,
    convert,
    outcome_text,
    pick,
    plain_int,
    raises_of,
    returns_of,
)
from mmcheck.checker.subsystems.declared.vma import (
    COUNTS,
    DECLARATION,
    FIXES,
    PAGES,
    PRIV,
    PROTS,
    TYPES,
    WINDOW_PAGES,
    P,
)
from mmcheck.checker.subsystems.declared.vma import window as _w
from mmcheck.checker.systems import ModelSystem, Problem, SandboxedSystem
from mmcheck.checker.trace import Step
from mmcheck.model import linux
from mmcheck.model.linux import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    TASK_SIZE_X86_64,
)
from mmcheck.model.vma import VOCABULARY, AddressSpace, IllegalPlacement, snapshot_from_vmas

# Where a submission's value of each state name comes from (`mmcheck vocab vma`); a
# name not listed is the reference model's, which follows the submission's steps.
# Whether a submission shows a name at all is hidden_names() (checker/observable.py).
SUBMISSION_VIEW = {
    "vmas": "its vmas()",
    "listed": "its vmas(), in the order it lists them",
    "gaps": "computed from its vmas()",
    "map_count": "the number of areas its vmas() lists",
    "areas": "start, end and prot (as vm_flags) from vmas(); pgoff, file, anon_vma and "
             "chain are 0 (a submission has no such state)",
    "errno": "the errno of its last OSError",
    "task_size": "its constructor's argument",
    "mmap_min_addr": "its constructor's argument",
    "max_map_count": "the default (65530), whatever the submission enforces",
    "mmap_base": "computed from task_size as Linux does without randomisation",
}
RETURNS = returns_of(VOCABULARY)
ALLOWED = raises_of(VOCABULARY)


def setups(max_pages: int = 5000) -> st.SearchStrategy[dict[str, int]]:
    """x86-64's TASK_SIZE first; small ones put "past TASK_SIZE" within reach."""
    return st.fixed_dictionaries({
        "task_size": st.sampled_from([TASK_SIZE_X86_64, 1 << 26, 1 << 30]),
        "mmap_min_addr": st.sampled_from([0x10000, 0x1000, 0x100000]),
    })


class View:
    """What the step generator knows: the setup, and where non-fixed mmaps landed."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.task_size = setup["task_size"]
        self.mmap_min_addr = setup["mmap_min_addr"]
        self.placed: list[tuple[int, int]] = []  # (start, pages) of non-fixed mappings
        self.shadow = edges.Shadow(self.task_size, self.mmap_min_addr)

    def record(self, step: Step) -> None:
        self.shadow.record(step.op, step.args, step.result, step.raised)
        if step.op == "mmap" and step.raised is None and plain_int(step.result):
            flags = step.args[3]
            if not flags & (MAP_FIXED | MAP_FIXED_NOREPLACE):
                pages = max(1, -(-step.args[1] // P))
                self.placed = (self.placed + [(step.result, pages)])[-6:]


Ops = list[tuple[str, tuple[int, ...]]]


def draw_steps(data: st.DataObject, view: View) -> Ops:
    """The next operation(s): a kind, then one pick of its parameters (two draws per
    step, so that Hypothesis can delete steps when it shrinks: see _vm.pick). The
    first choices are the simplest."""
    # Bursts first: each reaches a classic mistake in a few steps (an off-by-one
    # overlap test, a missing merge or split, MAP_FIXED leaving what it covers),
    # and shrinking moves towards the first kinds.
    # The error paths hold ~80 calls (each errno and its precedence, docs/contract.md
    # [AS-MMAP-ERRNO]): "error" is listed three times to be drawn often enough.
    kinds = ["noreplace", "three_way", "split_restore", "fixed_over", "hole", "map", "protect",
             "unmap", "hint", "placed", "error", "find", "error", "error", "edge", "edge"]
    if not view.placed:
        kinds.remove("placed")
    kind = data.draw(st.sampled_from(kinds), label="kind")
    if kind == "edge":
        return edges.vma_steps(data, view.shadow.areas(), view.mmap_min_addr, view.task_size,
                               _w(0), DECLARATION.operation_names)
    if kind == "map":
        fix, kind_, n, prot, page = pick(data, "fixed, type, pages, prot, page", FIXES, TYPES,
                                         COUNTS, PROTS, PAGES)
        return [("mmap", (_w(page), n * P, prot, kind_ | fix))]
    if kind == "protect":
        n, prot, page = pick(data, "pages, prot, page", COUNTS, PROTS, PAGES)
        return [("mprotect", (_w(page), n * P, prot))]
    if kind == "unmap":
        n, page = pick(data, "pages, page", COUNTS, PAGES)
        return [("munmap", (_w(page), n * P))]
    if kind == "three_way":
        # Both neighbours first, then the middle that joins them into one area.
        prot, page = pick(data, "prot, page", PROTS, PAGES[:-2])
        return [("mmap", (_w(page), P, prot, PRIV | MAP_FIXED)),
                ("mmap", (_w(page + 2), P, prot, PRIV | MAP_FIXED)),
                ("mmap", (_w(page + 1), P, prot, PRIV | MAP_FIXED))]
    if kind == "split_restore":
        prot, other, page = pick(data, "prot, other, page", PROTS, PROTS, PAGES[:-3])
        return [("mmap", (_w(page), 4 * P, prot, PRIV | MAP_FIXED)),
                ("mprotect", (_w(page + 1), 2 * P, other)),
                ("mprotect", (_w(page + 1), P, prot)),
                ("mprotect", (_w(page + 2), P, prot))]
    if kind == "hole":
        # mprotect across a hole: ENOMEM, with the areas below the hole changed.
        prot, new, page = pick(data, "prot, new, page", PROTS, PROTS, PAGES[:-3])
        return [("mmap", (_w(page), 2 * P, prot, PRIV | MAP_FIXED)),
                ("munmap", (_w(page + 2), P)),
                ("mmap", (_w(page + 3), P, prot, PRIV | MAP_FIXED)),
                ("mprotect", (_w(page), 4 * P, new))]
    if kind == "fixed_over":
        # Three areas of two protections, then one MAP_FIXED over all of them.
        a, b, prot, kind_, page = pick(data, "a, b, prot, type, page", PROTS, PROTS, PROTS,
                                       TYPES, PAGES[:-2])
        return [("mmap", (_w(page + i), P, (a, b, a)[i], PRIV | MAP_FIXED)) for i in range(3)] + [
            ("mmap", (_w(page), 3 * P, prot, kind_ | MAP_FIXED))]
    if kind == "noreplace":
        # Right next to an area (must succeed), then over its last page (EEXIST).
        n, prot, page = pick(data, "pages, prot, page", COUNTS, PROTS, PAGES[:-5])
        return [("mmap", (_w(page), n * P, prot, PRIV | MAP_FIXED)),
                ("mmap", (_w(page + n), P, prot, PRIV | MAP_FIXED_NOREPLACE)),
                ("mmap", (_w(page + n - 1), 2 * P, prot, PRIV | MAP_FIXED_NOREPLACE))]
    if kind == "hint":
        hints = (*(_w(p) for p in PAGES), 0, _w(3) + 123, P)
        lengths = (P, 2 * P, 3 * P - 100, 2 << 20)
        kind_, length, prot, hint = pick(data, "type, length, prot, hint", TYPES, lengths,
                                         PROTS, hints)
        return [("mmap", (hint, length, prot, kind_))]
    if kind == "find":
        # find_vma at, just past and just below page boundaries of the window, and
        # below and above it (docs/contract.md [AS-FIND-VMA]).
        offset, page = pick(data, "offset, page", (0, 1, P - 1, -1), (*PAGES, WINDOW_PAGES + 4))
        return [("find_vma", (max(0, _w(page) + offset),))]
    if kind == "placed":
        area, offset, prot, op = pick(data, "area, offset, prot, op", view.placed, range(4),
                                      PROTS, ("mprotect", "munmap"))
        at = area[0] + min(offset, area[1] - 1) * P
        return [("mprotect", (at, P, prot))] if op == "mprotect" else [("munmap", (at, P))]
    (step,) = pick(data, "error", _error_steps(view.task_size, view.mmap_min_addr))
    return [step]


@functools.lru_cache(maxsize=16)
def _error_steps(top: int, low: int) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Calls on the contract's error paths (and just past them), for one setup."""
    out: list[tuple[str, tuple[int, ...]]] = []
    for page, prot in itertools.product((0, 5), (3, 1)):
        w = _w(page)
        out += [
            ("mmap", (w, 0, prot, PRIV | MAP_FIXED)),  # EINVAL: zero length
            ("mmap", (w + 8, P, prot, PRIV | MAP_FIXED)),  # EINVAL: unaligned fixed
            ("mmap", (low - P, P, prot, PRIV | MAP_FIXED)),  # EPERM: below mmap_min_addr
            ("mmap", (top - P, 2 * P, prot, PRIV | MAP_FIXED)),  # ENOMEM: past TASK_SIZE
            ("mmap", (top - P, P, prot, PRIV | MAP_FIXED)),  # the last page: fine
            ("mmap", (w, P, prot, MAP_ANONYMOUS | MAP_FIXED)),  # EINVAL: no map type
            ("mmap", (w, P, prot, MAP_ANONYMOUS | 3 | MAP_FIXED)),  # EINVAL: type 3
            ("mmap", (w, P, prot, MAP_ANONYMOUS | 8 | MAP_FIXED)),  # EINVAL: MAP_DROPPABLE
            ("mmap", (top - P + 8, 2 * P, prot, PRIV | MAP_FIXED)),  # ENOMEM before EINVAL
            ("mmap", (w, P, prot, MAP_PRIVATE | MAP_FIXED)),  # EBADF: no MAP_ANONYMOUS
            ("mmap", (0, top + P, prot, PRIV)),  # ENOMEM: longer than TASK_SIZE
            ("mmap", (w, 2 * P, prot | 0x80, PRIV | MAP_FIXED)),  # an unknown prot bit
            ("munmap", (w + 8, P)),  # EINVAL: unaligned
            ("munmap", (w, 0)),  # EINVAL: zero length
            ("munmap", (top - P, 2 * P)),  # EINVAL: past TASK_SIZE
            ("mprotect", (w + 8, P, prot)),  # EINVAL: unaligned
            ("mprotect", (w, P, 0x10)),  # EINVAL (or ENOMEM): unknown prot bit
            ("mprotect", (w, 0, 0x10)),  # zero length: fine, prot unchecked
            ("mprotect", (top - P, 2 * P, prot)),  # ENOMEM: past TASK_SIZE
        ]
    return tuple(out)


# ---------------------------------------------------------------- systems


def _fixed(flags: int) -> bool:
    return bool(flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))


class ReferenceSystem(ModelSystem):
    """The reference AddressSpace: its steps are right by definition of the model."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.model = AddressSpace(setup["task_size"], setup["mmap_min_addr"])

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        """Run one step; with `expect` (a step of a trace), land a non-fixed mmap where
        the trace says it landed."""
        placed = (op == "mmap" and expect is not None and expect.raised is None
                  and plain_int(expect.result) and not _fixed(args[3]))
        try:
            if placed:
                result = self.model.take_area(expect.result, *args)  # type: ignore[union-attr]
            else:
                result = _start(op, getattr(self.model, op)(*args))
        except IllegalPlacement as why:
            return Step(op, args, None, None), Problem(
                "refinement", f"the trace's choice mmap -> {expect.result:#x} is not legal here",  # type: ignore[union-attr]
                (str(why),))
        except OSError:
            return Step(op, args, None, "OSError"), None
        return Step(op, args, result, None), None


def hidden_names(sub: Any) -> frozenset[str]:
    """What no AddressSpace submission shows: vm_area_struct beyond vmas() (pgoff,
    file, anon_vma)."""
    return frozenset({"areas"})


class SubmissionSystem(SandboxedSystem):
    """A submission's AddressSpace in its sandbox, with the reference following it."""

    def __init__(self, sub: Any, setup: Mapping[str, int]) -> None:
        self.sub = sub
        self.setup = dict(setup)
        self.reference = AddressSpace(setup["task_size"], setup["mmap_min_addr"])
        self.divergence = Divergence()
        self.errno = 0
        self.vmas: list[tuple[int, int, int, int]] = []
        self.broken: Problem | None = None
        self.handle = None
        self.handle = construct(sub, DECLARATION, setup["task_size"], setup["mmap_min_addr"])
        shown = self._vmas(sub.call(self.handle, "vmas"))
        if isinstance(shown, Problem):
            self.broken = shown
        else:
            self.vmas = shown

    def _vmas(self, out: Any) -> list[tuple[int, int, int, int]] | Problem:
        """vmas()'s answer as a list of 4-tuples of ints, or the protocol problem."""
        if not out.returned:
            return Problem("protocol", f"vmas() {out.describe()}", ())
        value = out.value
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (list, tuple)) and len(v) == 4 and all(plain_int(x) for x in v)
                for v in value):
            return Problem("protocol", f"vmas() returned {value!r:.200}",
                           ("the contract says: a list of (start, end, prot, flags) tuples",))
        return [tuple(v) for v in value]  # type: ignore[misc]

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        if self.broken is not None:
            return Step(op, args, None, "crash"), self.broken
        held_back = self.divergence.due()
        outs = self.sub.call_many([(self.handle, op, args), (self.handle, "vmas", ())])
        found = op == "find_vma" and outs[0].returned
        got = convert(op, args, outs[0], ALLOWED[op], "int?" if found else RETURNS[op]) \
            if not found else None
        if got is not None and got.problem is not None:
            return got.step, got.problem
        shown = self._vmas(outs[1]) if len(outs) > 1 else Problem("crash", "vmas() crashed", ())
        if isinstance(shown, Problem):
            return (got.step if got else Step(op, args, None, "protocol")), shown
        if got is None:
            got = _found(args, outs[0].value, shown)
            if got.problem is not None:
                return got.step, got.problem
        self.vmas = shown
        if got.step.raised is not None:
            self.errno = got.errno if got.errno is not None else 0
        if held_back is not None:
            return got.step, held_back
        self._follow(got)
        return got.step, None

    def _follow(self, got: Converted) -> None:
        """The reference takes the same step (in the same place); note any difference."""
        step, ref = got.step, self.reference
        op, args = step.op, step.args
        ref_errno: int | None = None
        try:
            if op == "mmap" and step.raised is None and not _fixed(args[3]):
                result = ref.take_area(step.result, *args)
            else:
                result = _start(op, getattr(ref, op)(*args))
        except IllegalPlacement as why:
            self.divergence.note(step, f"returned {step.result:#x}, a place no correct "
                                       "address space could choose", (str(why),))
            return
        except OSError as err:
            result, ref_errno = None, err.errno
        mine = outcome_text(step, got.errno if step.raised else None)
        theirs = (f"raised OSError({decode.errno_text(ref_errno)})" if ref_errno is not None
                  else outcome_text(Step(op, args, result, None)))
        if zero_length_choice(step, got.errno) and result is None and ref_errno is None:
            theirs = mine  # EINVAL where Linux returns 0: a legal choice, nothing changed
        if mine != theirs:
            self.divergence.note(step, f"{mine}; Linux {theirs}", _maps_lines(ref.vmas()))
            return
        if list(self.vmas) != ref.vmas():
            self.divergence.note(step, "left areas Linux would not", (
                "the submission's vmas():", *_maps_lines(self.vmas),
                "Linux's (the reference model, following every earlier step):",
                *_maps_lines(ref.vmas())))

    def snapshot(self) -> Mapping[str, Any]:
        return snapshot_from_vmas(self.vmas, task_size=self.setup["task_size"],
                                  mmap_min_addr=self.setup["mmap_min_addr"], errno=self.errno)



def _start(op: str, result: Any) -> Any:
    """What the spec sees of an operation's result: find_vma's tuple as its start."""
    if op == "find_vma" and result is not None:
        return result[0]
    return result


def _found(args: tuple[int, ...], value: Any, shown: list[tuple[int, int, int, int]]
           ) -> Converted:
    """find_vma's answer as a step (its start), or the protocol problem: it must be
    None or one of the areas vmas() shows, as a (start, end, prot, flags) tuple."""
    if value is None:
        return Converted(Step("find_vma", args, None, None))
    area = tuple(value) if isinstance(value, (list, tuple)) else None
    if area is None or len(area) != 4 or not all(plain_int(x) for x in area) \
            or area not in shown:
        return Converted(Step("find_vma", args, None, "protocol"), Problem(
            "protocol", f"find_vma({args[0]:#x}) returned {value!r:.100}",
            ("docs/contract.md [AS-FIND-VMA]: None, or the (start, end, prot, flags) of an "
             "area vmas() shows",)))
    return Converted(Step("find_vma", args, area[0], None))


def zero_length_choice(step: Step, err: int | None) -> bool:
    """mprotect([pid,] aligned, 0, unknown prot bits) failed with EINVAL: a legal
    choice (docs/contract.md [AS-MPROTECT-ZERO-CHOICE]); Linux returns 0. Shared
    with the fault driver (Kernel.mprotect takes a pid first)."""
    if step.op != "mprotect" or step.raised != "OSError" or err != 22:
        return False
    addr, length, prot = step.args[-3:]
    return addr % P == 0 and length == 0 and not 0 <= prot <= 15


# ---------------------------------------------------------------- pictures


def _perms(prot: int, flags: int) -> str:
    return ("r" if prot & 1 else "-") + ("w" if prot & 2 else "-") + (
        "x" if prot & 4 else "-") + ("s" if flags == MAP_SHARED else "p")


def _maps_lines(vmas: list[tuple[int, int, int, int]] | list[Any]) -> list[str]:
    if not vmas:
        return ["  (nothing mapped)"]
    return [f"  {v[0]:08x}-{v[1]:08x} {_perms(v[2], v[3])}" for v in vmas]


def render_state(state: Mapping[str, Any], named: Sequence[Any] = (),
                 limit: int = 24) -> list[str]:
    """The areas as /proc/<pid>/maps shows them, with the holes between them."""
    highlight = fields_in(named, "start")
    vmas = list(state["vmas"])
    lines = [f"task_size={state['task_size']:#x} mmap_min_addr={state['mmap_min_addr']:#x} "
             f"map_count={state['map_count']} errno={decode.errno_text(state['errno'])}",
             "maps (as vmas() lists them):"]
    prev_end = None
    for v in vmas[:limit]:
        note = ""
        if prev_end is not None and v.start < prev_end:
            note = "  <- overlaps or is out of order with the area above"
        elif highlight and v.start in highlight:
            note = "  <-"  # an area the explanation names
        pages = (v.end - v.start) // P
        lines.append(f"  {v.start:08x}-{v.end:08x} {_perms(v.prot, v.flags)}"
                     f"  ({pages} page{'s' if pages != 1 else ''}){note}")
        prev_end = v.end
    if len(vmas) > limit:
        lines.append(f"  ... {len(vmas) - limit} more areas")
    if not vmas:
        lines.append("  (nothing mapped)")
    return lines


# ---------------------------------------------------------------- contract coverage

# The classes the contract (docs/contract.md) names.
COVERAGE = (
    "operation: mmap", "operation: munmap", "operation: mprotect", "operation: find_vma",
    "outcome: find_vma -> returned", "outcome: find_vma -> none",
    "boundary: find_vma above every area", "boundary: find_vma addr in a gap",
    "boundary: find_vma addr inside an area", "boundary: find_vma addr at an area's end",
    "outcome: mmap -> returned", *(f"outcome: mmap -> {e}" for e in (
        "EINVAL", "EBADF", "ENOMEM", "EPERM", "EEXIST")),
    "outcome: munmap -> none", "outcome: munmap -> EINVAL",
    "outcome: mprotect -> none", "outcome: mprotect -> EINVAL", "outcome: mprotect -> ENOMEM",
    *(f"boundary: addr {c}" for c in coverage.VM_ADDR),
    "boundary: addr non-canonical or above TASK_SIZE_MAX",
    *(f"boundary: length {c}" for c in coverage.LENGTHS),
    *(f"boundary: prot {k}" for k in range(8)), "boundary: prot unknown bits",
    "boundary: prot with PROT_SEM",
    *(f"boundary: flags {c}" for c in coverage.FLAGS),
    "boundary: range over several areas", "boundary: range over a hole and an area",
    "boundary: task_size x86-64", "boundary: task_size small",
)


def classify_setup(setup: Mapping[str, int]) -> list[str]:
    """task_size of x86-64, or small."""
    big = setup["task_size"] == linux.TASK_SIZE_X86_64
    return [f"boundary: task_size {'x86-64' if big else 'small'}"]


def classify_step(step: Step, old: Mapping[str, Any], new: Mapping[str, Any],
                  setup: Mapping[str, int]) -> list[str]:
    """The outcome (errno by name), the arguments against the areas and the limits."""
    areas = [(v.start, v.end) for v in old["vmas"]]
    low, top = setup["mmap_min_addr"], setup["task_size"]
    out = [coverage.outcome(step, new["errno"] if step.raised == "OSError" else None)]
    if step.op == "find_vma":
        (addr,) = step.args
        classes = coverage.addr_classes(addr, areas, low, top)
        out += [f"boundary: find_vma addr {c}" for c in classes]
        if areas and addr >= areas[-1][1]:
            out.append("boundary: find_vma above every area")
        return out
    return out + coverage.vm_args("", step.op, step.args, areas, low, top)


def symbolic_system(npages: int, mutation: str | None = None):  # noqa: ANN201
    """The Z3 encoding of an address space whose [mmap_min_addr, task_size) is a
    window of `npages` pages. Returns (system, setup, integer universe, exponent
    bound)."""
    from mmcheck.checker.symbolic.vma import SymbolicAddressSpace

    system = SymbolicAddressSpace(max(npages, 2), mutation=mutation)
    return system, dict(system.setup), range(0, 16), 64
