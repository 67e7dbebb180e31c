"""Operations on an address-space window, what each step observed, and comparison.

Both sides of a conformance run speak this vocabulary: the live oracle
(`oracle.run_live`) runs the operations for real in a forked child, the model
runner (`modelrun.run_model`) runs them on the reference `AddressSpace`, and
`first_divergence` holds the two lists of `StepRecord`s against each other.

Addresses are window-relative: `page` counts pages from the window's first page,
so that both sides agree wherever the window landed. An operation may instead
name an `absolute` address (an error probe such as a MAP_FIXED below
mmap_min_addr); the oracle runs those only when the kernel must refuse them.
"""

from __future__ import annotations

import signal
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

from mmcheck.model.linux import (
    MAP_ANONYMOUS,
    MAP_FIXED,
    MAP_FIXED_NOREPLACE,
    MAP_PRIVATE,
    MAP_SHARED,
    PAGE_SIZE,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
)

MAP_NORESERVE = 0x4000
MAP_DROPPABLE = 0x08

_FLAG_NAMES = (
    (MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"), (MAP_FIXED, "MAP_FIXED"),
    (MAP_ANONYMOUS, "MAP_ANONYMOUS"), (MAP_NORESERVE, "MAP_NORESERVE"),
)
_TYPE_NAMES = {MAP_SHARED: "MAP_SHARED", MAP_PRIVATE: "MAP_PRIVATE",
               MAP_DROPPABLE: "MAP_DROPPABLE", 0: "0"}


def prot_str(prot: int) -> str:
    """PROT_READ|PROT_WRITE, or PROT_NONE, or a hex value for unknown bits."""
    names = [n for bit, n in ((PROT_READ, "PROT_READ"), (PROT_WRITE, "PROT_WRITE"),
                              (PROT_EXEC, "PROT_EXEC")) if prot & bit]
    rest = prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)
    if rest:
        names.append(hex(rest))
    return "|".join(names) or "PROT_NONE"


def flags_str(flags: int) -> str:
    """MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED and so on."""
    kind = flags & 0x0F
    names = [_TYPE_NAMES.get(kind, hex(kind))]
    names += [n for bit, n in _FLAG_NAMES if flags & bit == bit]
    known = 0x0F | MAP_FIXED | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE
    if flags & ~known:
        names.append(hex(flags & ~known))
    return "|".join(names)


def _where(page: int | None, delta: int, absolute: int | None) -> str:
    if absolute is not None:
        return hex(absolute)
    if page is None:
        return "NULL"
    return f"w+{page}" + (f"{delta:+#x}" if delta else "")


@dataclass(frozen=True)
class Mmap:
    """mmap(addr, length, prot, flags, -1, 0); addr is window page `page` (None: NULL)."""

    kind: ClassVar[str] = "mmap"
    page: int | None
    length: int
    prot: int
    flags: int
    delta: int = 0
    absolute: int | None = None

    def __str__(self) -> str:
        return (f"mmap({_where(self.page, self.delta, self.absolute)}, {_len(self.length)}, "
                f"{prot_str(self.prot)}, {flags_str(self.flags)})")


@dataclass(frozen=True)
class Munmap:
    """munmap(addr, length)."""

    kind: ClassVar[str] = "munmap"
    page: int
    length: int
    delta: int = 0
    absolute: int | None = None

    def __str__(self) -> str:
        return f"munmap({_where(self.page, self.delta, self.absolute)}, {_len(self.length)})"


@dataclass(frozen=True)
class Mprotect:
    """mprotect(addr, length, prot)."""

    kind: ClassVar[str] = "mprotect"
    page: int
    length: int
    prot: int
    delta: int = 0
    absolute: int | None = None

    def __str__(self) -> str:
        return (f"mprotect({_where(self.page, self.delta, self.absolute)}, "
                f"{_len(self.length)}, {prot_str(self.prot)})")


@dataclass(frozen=True)
class Read:
    """A one-byte load by the CPU at window page `page`, byte `offset`."""

    kind: ClassVar[str] = "read"
    page: int
    offset: int = 0

    def __str__(self) -> str:
        return f"read(w+{self.page}+{self.offset:#x})"


@dataclass(frozen=True)
class Write:
    """A one-byte store by the CPU at window page `page`, byte `offset`."""

    kind: ClassVar[str] = "write"
    page: int
    value: int
    offset: int = 0

    def __str__(self) -> str:
        return f"write(w+{self.page}+{self.offset:#x}, {self.value:#x})"


@dataclass(frozen=True)
class Fork:
    """fork(); the run goes on in `follow` ("child" or "parent").

    The other process either stays alive, idle, until the run ends (`other` =
    "wait"), or leaves at once (`other` = "exit"). A parent that leaves unmaps the
    window instead of exiting (its child would otherwise lose it as parent and be
    reparented); for the window that is what exit_mmap does.
    """

    kind: ClassVar[str] = "fork"
    follow: str = "child"
    other: str = "wait"

    def __str__(self) -> str:
        return f"fork(follow={self.follow}, other={self.other})"


Op = Mmap | Munmap | Mprotect | Read | Write | Fork
OP_TYPES: dict[str, type] = {t.kind: t for t in (Mmap, Munmap, Mprotect, Read, Write, Fork)}


def _len(n: int) -> str:
    if n >= 0 and n % PAGE_SIZE == 0:
        return f"{n // PAGE_SIZE}p"
    return hex(n)


def op_to_json(op: Op) -> dict:
    return {"kind": op.kind, **asdict(op)}


def op_from_json(d: dict) -> Op:
    d = dict(d)
    return OP_TYPES[d.pop("kind")](**d)


@dataclass(frozen=True)
class Area:
    """One line of /proc/<pid>/maps inside the window, in window pages.

    `vmflags` is the subset of smaps' VmFlags that decides merges but does not
    show in maps ("ac" VM_ACCOUNT, "nr" VM_NORESERVE, "wf" VM_WIPEONFORK, and
    "pk" for a nonzero ProtectionKey), when the side recorded it; None otherwise.
    """

    start: int
    end: int
    prot: int
    shared: bool
    vmflags: frozenset[str] | None = None

    def __str__(self) -> str:
        perms = "".join(c if self.prot & b else "-"
                        for c, b in (("r", PROT_READ), ("w", PROT_WRITE), ("x", PROT_EXEC)))
        extra = f" [{' '.join(sorted(self.vmflags))}]" if self.vmflags else ""
        return f"w+{self.start}..w+{self.end} {perms}{'s' if self.shared else 'p'}{extra}"


@dataclass(frozen=True)
class PageFacts:
    """What /proc/<pid>/pagemap and getrusage said after an access.

    None means "not known on this side" and is skipped by the comparison: a pfn
    an unprivileged process cannot see, a fact the model does not produce.
    `frame_changed` compares with the frame this process last saw at this page,
    and is None when the page was unmapped or replaced since (a new allocation
    may or may not reuse a just-freed frame, on Linux as in a model).
    """

    present: bool | None = None
    exclusive: bool | None = None
    shmem: bool | None = None
    pfn: int | None = None
    zero_page: bool | None = None
    frame_changed: bool | None = None
    minflt: int | None = None


_PAGE_COMPARED = ("present", "exclusive", "shmem", "zero_page", "frame_changed", "minflt")


@dataclass(frozen=True)
class StepRecord:
    """The outcome of one operation and the window's areas right after it.

    `result`: for mmap, the returned address as a window offset in bytes (None if
    `outside` the window: the area was unmapped again at once); for read, the
    byte. `errno`: the error number of a failed call. `signal`: the signal an
    access raised (SIGSEGV), the access itself being skipped. `gen`: how many
    forks deep the process that ran the step is.
    """

    index: int
    result: int | None = None
    outside: bool = False
    errno: int | None = None
    signal: int | None = None
    maps: tuple[Area, ...] = ()
    page: PageFacts | None = None
    gen: int = 0

    def to_json(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["maps"] = [[a.start, a.end, a.prot, a.shared,
                      sorted(a.vmflags) if a.vmflags is not None else None] for a in self.maps]
        d["page"] = asdict(self.page) if self.page else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> StepRecord:
        d = dict(d)
        d["maps"] = tuple(Area(s, e, p, sh, frozenset(vf) if vf is not None else None)
                          for s, e, p, sh, vf in d["maps"])
        d["page"] = PageFacts(**d["page"]) if d["page"] else None
        return cls(**d)

    def outcome(self) -> str:
        """The call's outcome in words: 'returned w+3', 'EEXIST', 'SIGSEGV', 'read 0x2a'."""
        import errno as errno_mod

        if self.errno is not None:
            return errno_mod.errorcode.get(self.errno, str(self.errno))
        if self.signal is not None:
            return signal.Signals(self.signal).name
        if self.outside:
            return "returned an address outside the window"
        if self.result is None:
            return "ok"
        return f"returned {self.result:#x}"


@dataclass(frozen=True)
class Divergence:
    """The first step at which two runs disagree, and on what."""

    index: int
    what: str
    left: object
    right: object
    ops: tuple[Op, ...]
    left_record: StepRecord
    right_record: StepRecord
    left_name: str = "live"
    right_name: str = "model"
    notes: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        lines = [f"first divergence at step {self.index}: {self.what}",
                 f"  {self.left_name}: {self.left}", f"  {self.right_name}: {self.right}",
                 "", "steps so far (outcome on both sides):"]
        start = max(0, self.index - 12)
        if start:
            lines.append(f"  ... {start} earlier steps")
        for i in range(start, self.index + 1):
            lines.append(f"  {i:4d}  {self.ops[i]}")
        lines.append(f"        {self.left_name}: {self.left_record.outcome()}; "
                     f"{self.right_name}: {self.right_record.outcome()}")
        for name, rec in ((self.left_name, self.left_record),
                          (self.right_name, self.right_record)):
            lines.append(f"window after step {self.index} ({name}):")
            lines += [f"  {a}" for a in rec.maps] or ["  (empty)"]
        lines += list(self.notes)
        return "\n".join(lines)


def _maps_key(maps: tuple[Area, ...], with_flags: bool) -> tuple:
    return tuple((a.start, a.end, a.prot, a.shared) + ((a.vmflags,) if with_flags else ())
                 for a in maps)


def compare_step(a: StepRecord, b: StepRecord) -> tuple[str, object, object] | None:
    """What two records of the same step disagree on first, or None."""
    if (a.errno, a.signal) != (b.errno, b.signal):
        return "outcome", a.outcome(), b.outcome()
    if (a.result, a.outside) != (b.result, b.outside):
        return "result", a.outcome(), b.outcome()
    with_flags = all(x.vmflags is not None for x in a.maps + b.maps)
    if _maps_key(a.maps, with_flags) != _maps_key(b.maps, with_flags):
        return ("areas in the window" + (" (with VmFlags)" if with_flags else ""),
                "; ".join(map(str, a.maps)) or "(empty)",
                "; ".join(map(str, b.maps)) or "(empty)")
    if a.page is not None and b.page is not None:
        for name in _PAGE_COMPARED:
            x, y = getattr(a.page, name), getattr(b.page, name)
            if x is not None and y is not None and x != y:
                return f"page fact '{name}'", x, y
    return None


def first_divergence(ops: list[Op], left: list[StepRecord], right: list[StepRecord],
                     left_name: str = "live", right_name: str = "model") -> Divergence | None:
    """The first step where `left` and `right` disagree (records of the same `ops`)."""
    for i, (a, b) in enumerate(zip(left, right, strict=False)):
        diff = compare_step(a, b)
        if diff is not None:
            return Divergence(i, diff[0], diff[1], diff[2], tuple(ops), a, b,
                              left_name, right_name)
    return None
