"""Processes with demand paging and copy-on-write fork (Kernel) as the engines see them.

Steps work on a few processes (at most four alive) in a window of 16 pages:
copy-on-write scenarios (map, write, fork, then reads and writes on both sides
of the fork, in the child and in the parent), reads of pages never written
(the zero page), mprotect over COW-shared pages, MAP_SHARED memory written on
one side of a fork and read on the other, fork chains, exits, MAP_FIXED over
pages in use, munmap, non-fixed mappings, and the error paths (a dead pid, a
value that is no byte, non-canonical addresses, every protection against
reads and writes). Memory is large enough never to run out: which pages a
correct Kernel has mapped legally differs from Linux, so running out cannot be
judged.

What a spec sees of a submission (see spec/lib/fault.mm): `free_pages` and
`boot_free_pages` from its free_pages(), `frames` from its frame() at every
page the trace read or wrote, for every live process; everything else from
the reference Kernel following the same steps. The reference adopts the
submission's pids (a renaming: the trace and the snapshot use the
submission's) and places each non-fixed mmap where the submission placed it
(Kernel.mmap_placed); it compares results, errnos, values read and SIGSEGVs
(with si_code), and a difference the spec does not flag is reported one step
later (see _vm.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from mmcheck.checker import coverage, decode
from mmcheck.checker.formats.pictures.fault import render_svg  # noqa: F401 (HTML picture)
from mmcheck.checker.subsystems import edges
from mmcheck.checker.subsystems._vm import (
    Converted,
    Divergence,
    construct,
    convert,
    pick,
    plain_int,
    raises_of,
    returns_of,
)
from mmcheck.checker.subsystems.declared.fault import (
    COUNTS,
    DEAD_PID,
    DECLARATION,
    MAX_PROCS,
    OFFSETS,
    PAGES,
    PRIV,
    PROTS,
    RW,
    SHARED,
    VALUES,
    P,
)
from mmcheck.checker.subsystems.declared.fault import window as _w
from mmcheck.checker.subsystems.vma import zero_length_choice
from mmcheck.checker.systems import ModelSystem, Problem, SandboxedSystem
from mmcheck.checker.trace import Step
from mmcheck.model import linux
from mmcheck.model.fault import VOCABULARY, Frame, Kernel, Segfault
from mmcheck.model.linux import (
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    PROT_READ,
    TASK_SIZE_X86_64,
)
from mmcheck.model.vma import IllegalPlacement
from mmcheck.model.vocabulary import Snapshot

# Where a submission's value of each state name comes from (`mmcheck vocab fault`); a
# name not listed is the reference model's, which follows the submission's steps.
# Whether a submission shows a name at all is hidden_names() (checker/observable.py).
SUBMISSION_VIEW = {
    "npages": "its constructor's argument",
    "free_pages": "its free_pages()",
    "boot_free_pages": "its free_pages() when it was made",
    "frames": "its frame() at every page the trace read or wrote",
}
ALLOWED = raises_of(VOCABULARY)
RETURNS = returns_of(VOCABULARY)
MAX_TOUCHED = 24  # pages whose frames a submission is asked for


def setups(max_pages: int = 5000) -> st.SearchStrategy[dict[str, int]]:
    """Memory sizes far above what a trace can use (see the module docstring)."""
    return st.fixed_dictionaries({"npages": st.sampled_from([256, 384])})


class View:
    """What the step generator knows: the live pids, the last fork, where pages were
    written, where non-fixed mmaps landed."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.pids: list[int] = []
        self.fork: tuple[int, int] | None = None  # (parent, child) of the last fork
        self.written: list[int] = []  # addresses written lately, by anyone
        self.placed: list[tuple[int, int]] = []  # (pid, start) of non-fixed mappings
        self.shadows: dict[int, edges.Shadow] = {}  # each process's areas, as last seen

    def areas(self, pid: int) -> list[tuple[int, int]]:
        shadow = self.shadows.get(pid)
        return shadow.areas() if shadow is not None else []

    def record(self, step: Step) -> None:
        if step.raised is not None:
            return
        op, args = step.op, step.args
        if op in ("mmap", "munmap", "mprotect") and args[0] in self.shadows:
            self.shadows[args[0]].record(op, args[1:], step.result, None)
        elif op in ("spawn", "fork") and plain_int(step.result):
            parent = self.shadows.get(args[0]) if op == "fork" else None
            self.shadows[step.result] = (copy.deepcopy(parent) if parent is not None
                                         else edges.Shadow(TASK_SIZE_X86_64, 0x10000))
        if op in ("spawn", "fork") and plain_int(step.result) and step.result not in self.pids:
            self.pids.append(step.result)
            if op == "fork":
                self.fork = (args[0], step.result)
        elif op == "exit" and args[0] in self.pids:
            self.pids.remove(args[0])
            if self.fork is not None and args[0] in self.fork:
                self.fork = None
            self.placed = [(p, a) for p, a in self.placed if p != args[0]]
        elif op == "write":
            self.written = ([a for a in self.written if a != args[1]] + [args[1]])[-6:]
        elif op == "mmap" and plain_int(step.result) and not args[4] & (MAP_FIXED
                                                                         | MAP_FIXED_NOREPLACE):
            self.placed = (self.placed + [(args[0], step.result)])[-4:]


Ops = list[tuple[str, tuple[int, ...]]]


def draw_steps(data: st.DataObject, view: View) -> Ops:
    """The next operation(s): a kind, then one pick of its parameters (two draws per
    step, so that Hypothesis can delete steps when it shrinks: see _vm.pick). The
    copy-on-write scenarios come first: they are what this subsystem is about."""
    if not view.pids:
        return [("spawn", ())]
    kinds = ["cow", "exit_all", "sides", "touch", "map", "protect", "unmap", "fork", "exit",
             "spawn", "shared", "hint", "placed", "error", "edge", "edge"]
    if view.fork is None:
        kinds.remove("sides")
    if len(view.pids) >= MAX_PROCS:
        kinds = [k for k in kinds if k not in ("cow", "fork", "spawn", "shared")]
    if not view.placed:
        kinds.remove("placed")
    kind = data.draw(st.sampled_from(kinds), label="kind")
    pids = view.pids
    if kind == "edge":
        return edges.fault_steps(data, pids, DEAD_PID, view.areas(pids[0]), _w(0))
    if kind == "cow":
        # A private page written and one only read (the zero page), shared
        # copy-on-write with a child, then read (no copy) and written (a copy)
        # by the parent.
        pid, page, offset, value = pick(data, "pid, page, offset, value", pids, PAGES[:-1],
                                        OFFSETS, VALUES)
        return [("mmap", (pid, _w(page), 2 * P, RW, PRIV | MAP_FIXED)),
                ("write", (pid, _w(page, offset), value)), ("read", (pid, _w(page + 1, offset))),
                ("fork", (pid,)), ("read", (pid, _w(page, offset))),
                ("write", (pid, _w(page, offset), value + 1 & 0xFF))]
    if kind == "exit_all":
        # Every process exits: nothing may be left behind.
        (order,) = pick(data, "order", (1, -1))
        return [("exit", (pid,)) for pid in pids[::order]]
    if kind == "touch":
        op, pid, page, offset, value = pick(data, "op, pid, page, offset, value",
                                            ("read", "write"), pids, PAGES, OFFSETS, VALUES)
        return [_access(op, pid, _w(page, offset), value)]
    if kind == "sides":
        # Both sides of the last fork touch what was written before it, or anywhere.
        assert view.fork is not None
        where = tuple(view.written) or (_w(0),)
        ops, side, va, value = pick(data, "ops, side, va, value",
                                    (("write", "read"), ("read",), ("write",), ("read", "write")),
                                    (1, 0), where, VALUES)
        first, other = view.fork[side], view.fork[1 - side]
        return [_access(ops[0], first, va, value)] + [
            _access(op, other, va, value) for op in ops[1:]]
    if kind == "map":
        fix, kind_, n, prot, pid, page = pick(data, "fixed, type, pages, prot, pid, page",
                                              (MAP_FIXED, MAP_FIXED_NOREPLACE), (PRIV, SHARED),
                                              COUNTS, PROTS, pids, PAGES)
        return [("mmap", (pid, _w(page), n * P, prot, kind_ | fix))]
    if kind == "protect":
        # Often over pages shared copy-on-write: read-only, then writable again.
        prot, n, pid, page = pick(data, "prot, pages, pid, page", (PROT_READ, RW) + PROTS,
                                  COUNTS, pids, PAGES)
        return [("mprotect", (pid, _w(page), n * P, prot))]
    if kind == "unmap":
        n, pid, page = pick(data, "pages, pid, page", COUNTS, pids, PAGES)
        return [("munmap", (pid, _w(page), n * P))]
    if kind == "fork":
        (pid,) = pick(data, "pid", pids)
        return [("fork", (pid,))]
    if kind == "exit":
        (pid,) = pick(data, "pid", pids)
        return [("exit", (pid,))]
    if kind == "spawn":
        return [("spawn", ())]
    if kind == "shared":
        # Shared memory written by the parent is seen by the child, and back.
        pid, page, offset, value = pick(data, "pid, page, offset, value", pids, PAGES, OFFSETS,
                                        VALUES)
        return [("mmap", (pid, _w(page), 2 * P, RW, SHARED | MAP_FIXED)),
                ("write", (pid, _w(page, offset), value)), ("fork", (pid,))]
    if kind == "hint":
        kind_, prot, pid, hint = pick(data, "type, prot, pid, hint", (PRIV, SHARED), (RW,) + PROTS,
                                      pids, (0, _w(3), _w(8) + 5))
        return [("mmap", (pid, hint, 2 * P, prot, kind_))]
    if kind == "placed":
        op, (pid, start), offset, value = pick(data, "op, area, offset, value",
                                               ("write", "read", "munmap"), view.placed, OFFSETS,
                                               VALUES)
        if op == "munmap":
            return [("munmap", (pid, start, P))]
        return [_access(op, pid, start + offset, value)]
    (step,) = pick(data, "error", _error_steps(tuple(pids)))
    return [step]


def _access(op: str, pid: int, va: int, value: int) -> tuple[str, tuple[int, ...]]:
    return ("read", (pid, va)) if op == "read" else ("write", (pid, va, value))


def _error_steps(pids: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    pid = pids[0]
    return [
        ("read", (DEAD_PID, _w(0))), ("write", (pid, _w(0), 256)), ("read", (pid, 1 << 47)),
        ("write", (pid, (1 << 64) - P, 1)), ("read", (pid, 0)), ("exit", (DEAD_PID,)),
        ("fork", (DEAD_PID,)), ("mmap", (pid, _w(0), 0, RW, PRIV | MAP_FIXED)),
        ("mmap", (pid, _w(0) + 8, P, RW, PRIV | MAP_FIXED)),
        ("mmap", (pid, _w(0), P, RW, MAP_PRIVATE | MAP_FIXED)),
        ("munmap", (pid, _w(0) + 8, P)), ("mprotect", (pid, _w(0), P, 0x10)),
        ("mprotect", (pid, _w(14), 4 * P, RW)), ("mmap", (DEAD_PID, _w(0), P, RW, PRIV)),
    ]


# ---------------------------------------------------------------- systems


class _Follower:
    """The reference Kernel, with the trace's pids renamed to its own."""

    def __init__(self, npages: int) -> None:
        self.kernel = Kernel(npages)
        self.to_ref: dict[int, int] = {}
        self.to_trace: dict[int, int] = {}

    def ref_pid(self, pid: int) -> int:
        """The reference's pid for a trace pid; one never alive for a pid never seen."""
        if pid in self.to_ref:
            return self.to_ref[pid]
        return -1 - pid if plain_int(pid) and pid >= 0 else pid

    def adopt(self, trace_pid: int, ref_pid: int) -> None:
        old = self.to_trace.pop(ref_pid, None)
        if old is not None:
            self.to_ref.pop(old, None)
        self.to_ref[trace_pid] = ref_pid
        self.to_trace[ref_pid] = trace_pid

    def run(self, op: str, args: tuple[int, ...], placed: int | None = None) -> Any:
        """Run op on the reference (pids renamed); `placed`: where a non-fixed mmap goes."""
        k = self.kernel
        if op == "spawn":
            return k.spawn()
        ref_args = (self.ref_pid(args[0]), *args[1:])
        if op == "mmap" and placed is not None:
            return k.mmap_placed(ref_args[0], placed, *ref_args[1:])
        return getattr(k, op)(*ref_args)

    def snapshot(self, **overrides: Callable[[], object]) -> Mapping[str, Any]:
        """The reference's snapshot with the trace's pids (and `overrides`)."""
        base = self.kernel.snapshot()
        if not overrides and all(a == b for a, b in self.to_ref.items()):
            return base
        rename = self.to_trace.get

        def renamed(name: str) -> Callable[[], object]:
            def get() -> object:
                value = base[name]
                items = [r._replace(pid=rename(r.pid, r.pid)) for r in value]  # type: ignore[attr-defined]
                return frozenset(items) if isinstance(value, frozenset) else items
            return get

        getters: dict[str, Callable[[], object]] = {name: (lambda n=name: base[n])
                                                    for name in base}
        for name in ("procs", "vmas", "mappings", "tlb", "rss", "frames", "memory"):
            getters[name] = renamed(name)
        getters.update(overrides)
        return Snapshot(getters)


def _is_mmap_placed(op: str, args: tuple[int, ...], result: object) -> bool:
    return (op == "mmap" and plain_int(result)
            and not args[4] & (MAP_FIXED | MAP_FIXED_NOREPLACE))


class ReferenceSystem(ModelSystem):
    """The reference Kernel: its steps are right by definition of the model."""

    def __init__(self, setup: Mapping[str, int]) -> None:
        self.follower = _Follower(setup["npages"])

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        """Run one step; with `expect` (a step of a trace), take its pids and its places."""
        placed = (expect.result if expect is not None and expect.raised is None
                  and _is_mmap_placed(op, args, expect.result) else None)
        try:
            result = self.follower.run(op, args, placed)
        except IllegalPlacement as why:
            return Step(op, args, None, None), Problem(
                "refinement", f"the trace's choice mmap -> {placed:#x} is not legal here",
                (str(why),))
        except (Segfault, ValueError, OSError, MemoryError) as err:
            return Step(op, args, None, _name(err)), None
        if op in ("spawn", "fork"):
            trace_pid = expect.result if expect is not None and plain_int(expect.result) else result
            self.follower.adopt(trace_pid, result)
            result = trace_pid
        return Step(op, args, result, None), None

    def snapshot(self) -> Mapping[str, Any]:
        return self.follower.snapshot()


def _name(err: BaseException) -> str:
    for name in ("Segfault", "ValueError", "OSError", "MemoryError"):
        if any(c.__name__ == name for c in type(err).__mro__):
            return name
    return type(err).__name__


def hidden_names(sub: Any) -> frozenset[str]:
    """What no Kernel submission shows: PTEs, struct pages, TLB, RSS counters and
    table pages (the snapshot fills them from the reference following it)."""
    return frozenset({"mappings", "pages", "used_pages", "tlb", "rss", "table_pages"})


class SubmissionSystem(SandboxedSystem):
    """A submission's Kernel in its sandbox, with the reference following it."""

    def __init__(self, sub: Any, setup: Mapping[str, int]) -> None:
        self.sub = sub
        self.follower = _Follower(setup["npages"])
        self.divergence = Divergence()
        self.live: list[int] = []
        self.touched: list[int] = []
        self.frames: list[Frame] = []
        self.free = self.boot = 0
        self.broken: Problem | None = None
        self.handle = None
        self.handle = construct(sub, DECLARATION, setup["npages"])
        out = sub.call(self.handle, "free_pages")
        if not out.returned or not plain_int(out.value):
            self.broken = Problem("protocol", f"free_pages() {out.describe()}", ())
        else:
            self.free = self.boot = out.value

    def apply(self, op: str, args: tuple[int, ...], expect: Step | None = None
              ) -> tuple[Step, Problem | None]:
        if self.broken is not None:
            return Step(op, args, None, "crash"), self.broken
        held_back = self.divergence.due()
        if op in ("read", "write") and plain_int(args[1]) and 0 <= args[1] < 1 << 47:
            va = args[1] - args[1] % P
            if va not in self.touched and len(self.touched) < MAX_TOUCHED:
                self.touched.append(va)
        asked = list(self.live)
        calls = [(self.handle, op, args), (self.handle, "free_pages", ())]
        calls += [(self.handle, "frame", (pid, va)) for pid in asked for va in self.touched]
        outs = self.sub.call_many(calls)
        got = convert(op, args, outs[0], ALLOWED[op], RETURNS[op])
        if got.problem is not None:
            return got.step, got.problem
        problem = self._processes(got.step) or self._observe(outs[1:], asked, got.step)
        if problem is not None:
            return got.step, problem
        if held_back is not None:
            return got.step, held_back
        self._follow(got)
        return got.step, None

    def _processes(self, step: Step) -> Problem | None:
        """Keep the live pids: a new one must be a pid no live process has."""
        if step.raised is not None:
            return None
        if step.op in ("spawn", "fork"):
            if step.result in self.live:
                return Problem("protocol", f"{step.op} returned pid {step.result}, which a live "
                                           "process already has", ())
            self.live.append(step.result)
        elif step.op == "exit" and step.args[0] in self.live:
            self.live.remove(step.args[0])
        return None

    def _observe(self, outs: list[Any], asked: list[int], step: Step) -> Problem | None:
        """free_pages() and frame() at every touched page of every live process."""
        if outs and outs[-1].crashed:
            kind = "timeout" if outs[-1].status.value == "timeout" else "crash"
            return Problem(kind, outs[-1].detail, ())
        new = [pid for pid in self.live if pid not in asked]
        if new:  # a process made by this step: ask about its frames too
            outs = outs + self.sub.call_many([(self.handle, "frame", (pid, va))
                                              for pid in new for va in self.touched])
            if outs[-1].crashed:
                return Problem("crash", outs[-1].detail, ())
        free = outs[0]
        if not free.returned or not plain_int(free.value):
            return Problem("protocol", f"free_pages() {free.describe()}", ())
        self.free = free.value
        frames = []
        queries = [(pid, va) for pid in asked + new for va in self.touched]
        for (pid, va), out in zip(queries, outs[1:], strict=True):
            if pid not in self.live:
                continue  # it exited in this step
            if not out.returned or not (out.value is None or plain_int(out.value)):
                return Problem("protocol", f"frame({pid}, {va:#x}) {out.describe()}",
                               ("frame() of a live process returns a pfn or None",))
            if out.value is not None:
                frames.append(Frame(pid, va, out.value))
        self.frames = frames
        return None

    def _follow(self, got: Converted) -> None:
        """The reference takes the same step; note any difference the contract fixes."""
        step = got.step
        op, args = step.op, step.args
        placed = step.result if step.raised is None and _is_mmap_placed(op, args, step.result) \
            else None
        theirs_code: int | None = None
        try:
            result = self.follower.run(op, args, placed)
            theirs = "returned"
        except IllegalPlacement as why:
            self.divergence.note(step, f"returned {step.result:#x}, a place no correct kernel "
                                       "could choose", (str(why),))
            return
        except (Segfault, ValueError, OSError, MemoryError) as err:
            result, theirs = None, _name(err)
            theirs_code = err.code if isinstance(err, Segfault) else getattr(err, "errno", None)
        if op in ("spawn", "fork") and step.raised is None and theirs == "returned":
            self.follower.adopt(step.result, result)
            result = step.result
        mine = _text(step.raised or "returned", step.result, _code(got, step))
        want = _text(theirs, result, theirs_code)
        if zero_length_choice(step, got.errno) and theirs == "returned":
            want = mine  # EINVAL where Linux returns 0: a legal choice, nothing changed
        if mine != want:
            self.divergence.note(step, f"{mine}; Linux (the reference kernel) {want}", ())

    def snapshot(self) -> Mapping[str, Any]:
        free, boot, frames = self.free, self.boot, list(self.frames)
        return self.follower.snapshot(free_pages=lambda: free, boot_free_pages=lambda: boot,
                                      frames=lambda: frames)



def _code(got: Converted, step: Step) -> int | None:
    if step.raised == "Segfault":
        return got.code
    if step.raised == "OSError":
        return got.errno
    return None


def _text(how: str, result: object, code: int | None) -> str:
    if how == "returned":
        return "returned none" if result is None else f"returned {result:#x}"
    if how == "Segfault" and code is not None:
        return f"raised Segfault({decode.si_code_text(code)})"
    if how == "OSError" and code is not None:
        return f"raised OSError({decode.errno_text(code)})"
    return f"raised {how}"


# ---------------------------------------------------------------- pictures


def _perms(prot: int, flags: int) -> str:
    return ("r" if prot & 1 else "-") + ("w" if prot & 2 else "-") + (
        "x" if prot & 4 else "-") + ("s" if flags & MAP_SHARED else "p")


def render_state(state: Mapping[str, Any], named: Sequence[Any] = (),
                 limit: int = 12) -> list[str]:
    """Each process's areas and the pages frame() shows, and what memory holds."""
    lines = [f"free_pages={state['free_pages']} (before any process: "
             f"{state['boot_free_pages']})"]
    frames, memory = list(state["frames"]), list(state["memory"])
    for proc in sorted(state["procs"]):
        pid = proc.pid
        lines.append(f"pid {pid}:")
        for v in [v for v in state["vmas"] if v.pid == pid][:limit]:
            lines.append(f"  {v.start:08x}-{v.end:08x} {_perms(v.prot, v.flags)}")
        shown = sorted((f.va, f.pfn) for f in frames if f.pid == pid)[:limit]
        if shown:
            lines.append("  frames: " + ", ".join(f"{va:#x}->pfn {pfn}" for va, pfn in shown))
        data = sorted((b.va, b.value) for b in memory if b.pid == pid)[:limit]
        if data:
            lines.append("  memory: " + ", ".join(f"[{va:#x}]={value}" for va, value in data))
    if len(lines) == 1:
        lines.append("(no process)")
    return lines


# ---------------------------------------------------------------- contract coverage

# The classes the contract (docs/contract.md) names.
COVERAGE = (
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
)


def classify_step(step: Step, old: Mapping[str, Any], new: Mapping[str, Any],
                  setup: Mapping[str, int]) -> list[str]:
    """The outcome; the pid alive or dead; an AddressSpace call's arguments; what a
    read or write touches (never touched, copy-on-write, shared, private)."""
    out = [coverage.outcome(step)]
    if step.op == "spawn":
        return out
    pid = step.args[0]
    alive = {p.pid for p in old["procs"]}
    if pid not in alive:
        out.append(f"boundary: {step.op} of a dead pid")
        return out
    areas = sorted((v.start, v.end) for v in old["vmas"] if v.pid == pid)
    if step.op in ("mmap", "munmap", "mprotect"):
        return out + coverage.vm_args(f"{step.op} ", step.op, step.args[1:], areas, 0x10000,
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



# ---------------------------------------------------------------- symbolic


def symbolic_system(npages: int, mutation: str | None = None):  # noqa: ANN201
    """The Z3 encoding of two processes over one one-page slot of the window
    (checker/symbolic/fault.py), with `npages` frames or the fewest its steps can
    use, whichever is more. Returns (system, setup, integer universe, exponent bound)."""
    from mmcheck.checker.symbolic.fault import SymbolicFault, frames_needed

    npages = max(npages, frames_needed(SYMBOLIC_PROCS, SYMBOLIC_SLOTS))
    system = SymbolicFault(npages, SYMBOLIC_PROCS, SYMBOLIC_SLOTS, mutation)
    return system, {"npages": npages}, range(0, npages + 1), 65


SYMBOLIC_PROCS, SYMBOLIC_SLOTS = 2, 1  # proved in seconds (docs/benchmarks.md)
