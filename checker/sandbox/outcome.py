"""What the sandbox's calls return, and its own errors.

A submission's misbehaviour is an `Outcome` (RAISED, VIOLATION, TIMEOUT,
CRASHED), never an exception in the checker; the exceptions here mean the
checker itself did something wrong (`UsageError`), used a dead worker
(`WorkerDead`) or the submission did not load (`LoadError`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

# -- errors --------------------------------------------------------------------


class SandboxError(Exception):
    """Base of the sandbox's own errors (a submission's misbehaviour is an Outcome)."""


class LoadError(SandboxError):
    """The submission did not load, so there is nothing to check.

    `kind` says why: "missing" (no such file, or a directory without
    __init__.py), "unsupported" (no loader for that kind of file), "syntax"
    (a SyntaxError: `filename`, `lineno`, and `traceback` shows the caret),
    "exception" (raised while the module ran: `traceback` is the submission's
    part of the traceback), "exit" (sys.exit at import), "crash" (the worker
    died while loading: `message` says how, `stderr` holds its last words),
    "timeout" (the module ran longer than `load_timeout`). Fix: the student's
    code; report `str(error)` and `traceback`.
    """

    def __init__(self, kind: str, message: str, *, filename: str | None = None,
                 lineno: int | None = None, traceback: str = "", stdout: str = "",
                 stderr: str = "") -> None:
        where = f" ({filename}, line {lineno})" if filename and lineno else ""
        super().__init__(f"{message}{where}")
        self.kind = kind
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.traceback = traceback
        self.stdout = stdout
        self.stderr = stderr


class WorkerDead(SandboxError):
    """A call on a Submission whose worker crashed, timed out or was closed. The
    message repeats why. Fix: `restart()` it (and replay what you need), or stop."""


class UsageError(SandboxError):
    """The checker asked for something impossible: a class the submission does
    not define, a dropped handle or one from before a `restart()`/`reset()` that
    was never made again, arguments marshal cannot encode. Detected in the
    checker's process before anything is sent. Fix the calling code."""


class ConstructorFailed(SandboxError):
    """`new()` did not produce an object: `outcome` says whether the constructor
    raised (a possibly legitimate answer, e.g. ValueError) or crashed the worker."""

    def __init__(self, class_name: str, outcome: Outcome) -> None:
        super().__init__(f"{class_name}(...): {outcome.describe()}")
        self.outcome = outcome


# -- results -------------------------------------------------------------------


class Status(enum.Enum):
    """What happened to one call. TIMEOUT and CRASHED leave no worker behind."""

    RETURNED = "returned"    # value holds plain data
    RAISED = "raised"        # exc describes the submission's exception; worker fine
    VIOLATION = "violation"  # returned something that is not plain data; worker fine
    TIMEOUT = "timeout"      # ran past timeout_per_call; the worker was killed
    CRASHED = "crashed"      # the worker died (signal, exit, lost or corrupt channel)


@dataclass(frozen=True, slots=True)
class ExcInfo:
    """An exception raised by the submission, by class name and attributes.

    `mro_names` lists the class names of the exception's MRO (so a student's
    `class PageFault(MyError)` is `is_a("PageFault")`); `errno`, `code`,
    `address` are the integer attributes of that name (None when absent or not
    an int); `where` is "file.py:LINE in function" of the raising frame."""

    type: str
    message: str
    mro_names: tuple[str, ...]  # not `mro`: a dataclass would take type.mro as its default
    errno: int | None = None
    code: int | None = None
    address: int | None = None
    where: str = ""

    def is_a(self, name: str) -> bool:
        return name in self.mro_names

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


@dataclass(frozen=True, slots=True)
class Callback:
    """One call the submission made to a parent-side object (`Remote`) during a
    call: `value` is what it returned, `error` ("ValueError: ...") what it raised."""

    remote: str
    method: str
    args: tuple
    value: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one call. `detail` explains VIOLATION/TIMEOUT/CRASHED, e.g.
    "timeout after 0.5 s in BuddyAllocator.alloc(3)"; `stderr` holds the
    worker's last stderr for TIMEOUT/CRASHED (a segfault's Python stack)."""

    status: Status
    value: Any = None
    exc: ExcInfo | None = None
    detail: str = ""
    callbacks: tuple[Callback, ...] = ()
    stderr: str = ""

    @property
    def returned(self) -> bool:
        return self.status is Status.RETURNED

    @property
    def raised(self) -> bool:
        return self.status is Status.RAISED

    @property
    def crashed(self) -> bool:
        """True when the worker is gone (TIMEOUT or CRASHED): restart() before going on."""
        return self.status is Status.TIMEOUT or self.status is Status.CRASHED

    def describe(self) -> str:
        if self.status is Status.RETURNED:
            return f"returned {self.value!r}"
        if self.status is Status.RAISED:
            return f"raised {self.exc}"
        return self.detail


@dataclass(frozen=True, slots=True)
class Handle:
    """An object living in the worker. Ids count up from 1 in the order of
    `new()` calls and start again at 1 after `restart()`/`reset()`, so replaying
    the same calls gives the same handles."""

    id: int
    class_name: str

    def __repr__(self) -> str:
        return f"{self.class_name}#{self.id}"


@dataclass(frozen=True, eq=False)
class Remote:
    """A parent-side object exported to the submission (see `Submission.export`)."""

    id: int
    name: str
    methods: tuple[str, ...]
    target: object = field(repr=False)
