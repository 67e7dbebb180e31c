"""The checker's side of the sandbox: `Submission` and what its calls return.

    with Submission.open("student.py", timeout_per_call=0.5) as sub:
        sub.classes()                     # {"BuddyAllocator": ("alloc", "free", ...)}
        buddy = sub.new("BuddyAllocator", 64)
        sub.call(buddy, "alloc", 3)       # Outcome(RETURNED, value=0)
        sub.call_many([(buddy, "alloc", (0,)), (buddy, "free", (0, 0))])

A worker process per submission holds the submission's objects; the checker
holds `Handle`s (plain ids) and gets an `Outcome` per call. Misbehaviour of the
submission is an Outcome (RAISED, VIOLATION, TIMEOUT, CRASHED), never an
exception in the checker; exceptions here mean the checker itself did something
wrong (`UsageError`), used a dead worker (`WorkerDead`) or the submission did
not load (`LoadError`). See `__init__.py` for what the sandbox does not protect.
"""

from __future__ import annotations

import contextlib
import enum
import marshal
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mmcheck.checker.sandbox.protocol import (
    EXIT_CHANNEL_LOST,
    EXIT_INTERNAL,
    HEADER,
    MAX_FRAME,
    OP_BATCH,
    OP_CALL,
    OP_CB_RAISE,
    OP_CB_RETURN,
    OP_DROP,
    OP_HELLO,
    OP_NEW,
    OP_RESET,
    R_CALLBACK,
    R_EXIT,
    R_LOAD_ERROR,
    R_RAISE,
    R_READY,
    R_RETURN,
    R_USAGE,
    R_VIOLATION,
    SCALARS,
    encode,
    node_budget,
    plain_problem,
)

CONTRACT_CLASSES = ("BuddyAllocator", "KmemCache", "AddressSpace", "PageTable", "Kernel")
WORKER_MODULE = "mmcheck.checker.sandbox.worker"
MODULE_NAME = "_mmcheck_submission"
PAGE_ALLOCATOR_METHODS = ("alloc_pages", "free_pages")


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
    not define, a handle from before a `restart()`/`reset()` that was never
    recreated, arguments that are not plain data. Fix the calling code."""


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

    `mro` lists the class names of the exception's MRO (so a student's
    `class PageFault(MyError)` is `is_a("PageFault")`); `errno`, `code`,
    `address` are the integer attributes of that name (None when absent or not
    an int); `where` is "file.py:LINE in function" of the raising frame."""

    type: str
    message: str
    mro: tuple[str, ...]
    errno: int | None = None
    code: int | None = None
    address: int | None = None
    where: str = ""

    def is_a(self, name: str) -> bool:
        return name in self.mro

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


@dataclass(frozen=True)
class Limits:
    """Resource limits of a worker (None: leave the inherited limit)."""

    memory_mb: int | None = 1024   # RLIMIT_AS
    cpu_s: int | None = 3600       # RLIMIT_CPU over the worker's whole life (SIGKILL)
    open_files: int | None = 64    # RLIMIT_NOFILE
    file_size_mb: int | None = 16  # RLIMIT_FSIZE (SIGXFSZ past it)
    max_reply_bytes: int = 16 << 20

    def rlimits(self) -> dict[str, int | None]:
        mb = 1 << 20
        return {
            "as": None if self.memory_mb is None else self.memory_mb * mb,
            "cpu": self.cpu_s,
            "nofile": self.open_files,
            "fsize": None if self.file_size_mb is None else self.file_size_mb * mb,
            "core": 0,
        }


# -- loaders (the seam for C submissions) ----------------------------------------


class Loader(Protocol):
    """How a kind of submission becomes something a worker can load.

    `prepare` runs in the parent before the worker starts and returns the path
    the worker-side loader `name` (worker.LOADERS) receives; it raises LoadError
    ("missing", "syntax"...) for what it can tell without running anything. A C
    loader would compile the .c files against the contract header there (into a
    cache directory of its own) and return the shared library's path."""

    name: str

    def accepts(self, path: Path) -> bool: ...

    def prepare(self, path: Path) -> str: ...


class PythonLoader:
    """A `.py` file, or a package directory with an `__init__.py`."""

    name = "python"

    def accepts(self, path: Path) -> bool:
        return path.suffix == ".py" or path.is_dir()

    def prepare(self, path: Path) -> str:
        if path.is_dir() and not (path / "__init__.py").is_file():
            raise LoadError("missing", f"{path} is a directory without __init__.py")
        if not path.exists():
            raise LoadError("missing", f"{path} does not exist")
        return str(path.resolve())


LOADERS: tuple[Loader, ...] = (PythonLoader(),)


def loader_for(path: Path) -> Loader:
    for loader in LOADERS:
        if loader.accepts(path):
            return loader
    raise LoadError("unsupported", f"{path}: no loader for this kind of submission "
                                   "(Python: a .py file or a package directory)")


# -- the worker process ----------------------------------------------------------


class _TimedOut(Exception):
    pass


class _Died(Exception):
    pass


class _Corrupt(Exception):
    """The reply stream is not made of valid frames (the submission wrote into it?)."""


class _Tail:
    """The last `cap` bytes of a stream and how many there were in all."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > self.cap:
            del self.data[:-self.cap]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def _describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        hint = {signal.SIGXCPU: " (CPU time limit)", signal.SIGXFSZ: " (file size limit)"}
        return f"worker killed by {name}{hint.get(-rc, '')}"
    if rc == EXIT_CHANNEL_LOST:
        return f"worker exited with status {rc}: it lost its channel (a closed fd 3/4?)"
    if rc == EXIT_INTERNAL:
        return f"worker exited with status {rc}: internal error (out of memory?)"
    return f"worker exited with status {rc}"


def _worker_argv(python: str) -> list[str]:
    # -s: no user site; -B: no __pycache__ in the student's folder; -u: unbuffered
    # stdout/stderr, so what was printed before a crash is in the pipe; -P (3.11+):
    # do not put the working directory first on sys.path.
    flags = ["-s", "-B", "-u"] + (["-P"] if sys.version_info >= (3, 11) else [])
    return [python, *flags, "-m", WORKER_MODULE]


def _worker_env(home: str) -> dict[str, str]:
    # A scrubbed environment: nothing of the checker's leaks in. PYTHONHASHSEED=0
    # makes set/dict-of-str iteration order in the submission the same on every
    # run, which is what lets a replay after restart() reproduce a counterexample.
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONIOENCODING": "utf-8:backslashreplace",
    }


class _Worker:
    """One worker process: spawn, frame I/O with deadlines, output capture, kill."""

    def __init__(self, python: str, tail_bytes: int) -> None:
        self.tmpdir = tempfile.mkdtemp(prefix="mmcheck-sandbox-")
        req_r, self.wfd = os.pipe()
        self.rfd, resp_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [*_worker_argv(python), str(req_r), str(resp_w)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(req_r, resp_w), cwd=self.tmpdir, env=_worker_env(self.tmpdir),
                start_new_session=True)  # own session and process group: killpg takes all
        except BaseException:
            for fd in (req_r, resp_w, self.wfd, self.rfd):
                os.close(fd)
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            raise
        os.close(req_r)
        os.close(resp_w)
        self.returncode: int | None = None
        self.buf = bytearray()
        self.eof = False
        self.stdout = _Tail(tail_bytes)
        self.stderr = _Tail(tail_bytes)
        self.out = {self.proc.stdout.fileno(): self.stdout,  # type: ignore[union-attr]
                    self.proc.stderr.fileno(): self.stderr}  # type: ignore[union-attr]
        self.poller = select.poll()
        for fd in (self.rfd, *self.out):
            os.set_blocking(fd, False)
            self.poller.register(fd, select.POLLIN)
        os.set_blocking(self.wfd, False)

    # -- I/O -----------------------------------------------------------------

    def send(self, data: bytes, deadline: float) -> None:
        """Write a whole request; the worker reads whole requests before it runs
        anything, so a big batch cannot deadlock against its replies."""
        view = memoryview(data)
        while True:
            try:
                n = os.write(self.wfd, view)
            except BlockingIOError:
                n = 0
            except (BrokenPipeError, OSError):
                raise _Died from None
            view = view[n:]
            if not view:
                return
            self._wait(deadline, select.POLLOUT)

    def _wait(self, deadline: float, want_out: int = 0) -> None:
        """Sleep until a pipe is ready; drain output; read replies into buf."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _TimedOut
        if want_out:
            self.poller.register(self.wfd, select.POLLOUT)
        try:
            events = self.poller.poll(math.ceil(remaining * 1000))
        finally:
            if want_out:
                self.poller.unregister(self.wfd)
        for fd, _ in events:
            if fd == self.rfd:
                self._read_replies()
            elif fd in self.out:
                self._drain(fd)

    def _read_replies(self) -> None:
        while True:
            try:
                chunk = os.read(self.rfd, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                self.eof = True
                self.poller.unregister(self.rfd)
                return
            self.buf += chunk
            if len(chunk) < 1 << 16:
                return

    def _drain(self, fd: int) -> None:
        tail = self.out[fd]
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                with contextlib.suppress(KeyError):
                    self.poller.unregister(fd)
                return
            tail.add(chunk)

    def drain_output(self) -> None:
        for fd in self.out:
            self._drain(fd)

    def next_frame(self, deadline: float) -> tuple:
        """The next reply frame, checked to be plain data with an int tag."""
        buf = self.buf
        while True:
            if len(buf) >= 4:
                n = HEADER.unpack_from(buf)[0]
                if n > MAX_FRAME:
                    raise _Corrupt(f"a frame header announces {n} bytes")
                end = 4 + n
                if len(buf) >= end:
                    payload = bytes(buf[4:end])
                    del buf[:end]
                    return _check_frame(payload)
            if self.eof:
                raise _Died
            self._wait(deadline)

    # -- end of life -----------------------------------------------------------

    def _exited(self, grace: float) -> bool:
        """Wait up to `grace` s for the worker to exit, WITHOUT reaping it: while it
        is a zombie its pid (= its process group id) cannot be reused, so the
        killpg that follows cannot hit a stranger."""
        end = time.monotonic() + grace
        while True:
            try:
                info = os.waitid(os.P_PID, self.proc.pid,
                                 os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return True
            if info is not None or time.monotonic() >= end:
                return info is not None
            time.sleep(0.0005)

    def kill(self, grace: float = 0.0) -> int:
        """Kill the worker's whole process group (after `grace` s for it to exit
        by itself, to learn its own status), reap it, keep its last output."""
        if self.returncode is not None:
            return self.returncode
        if grace:
            self._exited(grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.returncode = self.proc.wait()
        self.drain_output()  # non-blocking: a grandchild may still hold the pipes
        for fd in (self.rfd, self.wfd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.proc.stdout.close()  # type: ignore[union-attr]
        self.proc.stderr.close()  # type: ignore[union-attr]
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        return self.returncode


def _check_frame(payload: bytes) -> tuple:
    try:
        frame = marshal.loads(payload)
    except (ValueError, EOFError, TypeError) as e:
        raise _Corrupt(f"undecodable reply ({e})") from None
    if type(frame) is tuple and len(frame) == 2 and type(frame[1]) in SCALARS:
        pass  # the common (R_RETURN, scalar) reply: nothing more to check
    elif type(frame) is not tuple or not frame:
        raise _Corrupt("a reply that is not a tuple")
    else:
        problem = plain_problem(frame, node_budget(len(payload)))
        if problem is not None:
            raise _Corrupt(f"a reply holding {problem}")
    if type(frame[0]) is not int:
        raise _Corrupt("a reply without an integer tag")
    return frame


def _shape(frame: tuple, *types: type | tuple[type, ...]) -> bool:
    """Whether frame's items have these types (no bools where ints are expected)."""
    return len(frame) == len(types) and all(
        type(v) is not bool and isinstance(v, t) for v, t in zip(frame, types, strict=True))


# Where a call happened, rendered only when a report needs it: a ready text, or
# (Handle or class name, method or None for a constructor, args, kwargs).
Site = str | tuple


def _site_text(site: Site) -> str:
    return site if isinstance(site, str) else _render_call(*site)


def _render_call(handle: Handle | str, method: str | None, args: Sequence,
                 kwargs: dict | None = None) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in (kwargs or {}).items()]
    text = ", ".join(parts)
    if len(text) > 200:
        text = text[:197] + "..."
    name = handle.class_name if isinstance(handle, Handle) else handle
    return f"{name}.{method}({text})" if method else f"{name}({text})"


# -- the public object -------------------------------------------------------------


class Submission:
    """A submission loaded in a worker process. Create with `Submission.open`."""

    def __init__(self, path: Path, loader: Loader, *, timeout_per_call: float,
                 load_timeout: float, limits: Limits, output_tail_bytes: int,
                 python: str) -> None:
        self.path = path
        self.loader = loader
        self.timeout_per_call = timeout_per_call
        self.load_timeout = load_timeout
        self.limits = limits
        self.output_tail_bytes = output_tail_bytes
        self.python = python
        self._remotes: dict[int, Remote] = {}
        self._worker: _Worker | None = None
        self._finalizer: weakref.finalize | None = None
        self._dead = "not started"
        self._next_handle = 1
        self._classes: dict[str, tuple[str, ...]] = {}

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, timeout_per_call: float = 1.0,
             load_timeout: float = 10.0, memory_limit_mb: int | None = 1024,
             cpu_limit_s: int | None = 3600, max_open_files: int | None = 64,
             max_file_size_mb: int | None = 16, max_reply_bytes: int = 16 << 20,
             output_tail_bytes: int = 4096, loader: Loader | None = None,
             python: str = sys.executable) -> Submission:
        """Start a worker and load the submission at `path` in it. Raises LoadError.
        Use as a context manager (`with Submission.open(p) as sub:`) or close()."""
        p = Path(path)
        limits = Limits(memory_limit_mb, cpu_limit_s, max_open_files, max_file_size_mb,
                        max_reply_bytes)
        sub = cls(p, loader or loader_for(p), timeout_per_call=timeout_per_call,
                  load_timeout=load_timeout, limits=limits,
                  output_tail_bytes=output_tail_bytes, python=python)
        sub._start()
        return sub

    def __enter__(self) -> Submission:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self._worker.proc.pid}" if self.alive else self._dead
        return f"<Submission {self.path} ({state})>"

    # -- life cycle ------------------------------------------------------------

    def _start(self) -> None:
        target = self.loader.prepare(self.path)
        worker = _Worker(self.python, self.output_tail_bytes)
        self._worker = worker
        self._finalizer = weakref.finalize(self, worker.kill)
        self._next_handle = 1
        config = {"loader": self.loader.name, "path": target, "module": MODULE_NAME,
                  "limits": self.limits.rlimits(),
                  "max_reply": self.limits.max_reply_bytes}
        deadline = time.monotonic() + self.load_timeout
        try:
            worker.send(encode((OP_HELLO, config)), deadline)
            frame = worker.next_frame(deadline)
            if frame[0] == R_READY and isinstance(frame[1], dict):
                self._classes = {str(k): tuple(map(str, v)) for k, v in frame[1].items()}
                self._dead = ""
                return
            if frame[0] == R_LOAD_ERROR and _shape(
                    frame, int, str, str, (str, type(None)), (int, type(None)), str):
                _, kind, message, filename, lineno, text = frame
                raise self._load_error(kind, message, filename=filename, lineno=lineno,
                                       traceback=text)
            raise _Corrupt("an unexpected first reply")
        except LoadError:
            raise
        except _TimedOut:
            raise self._load_error(
                "timeout", f"loading took longer than {self.load_timeout:g} s") from None
        except _Died:
            rc = worker.kill(grace=1.0)
            raise self._load_error("crash", f"{_describe_exit(rc)} while loading") from None
        except _Corrupt as e:
            raise self._load_error("crash", f"protocol error while loading: {e}") from None
        except BaseException:
            self._kill("load interrupted")
            raise

    def _load_error(self, kind: str, message: str, **kw: Any) -> LoadError:
        worker = self._worker
        assert worker is not None
        worker.kill(grace=0.2 if kind != "timeout" else 0.0)
        self._dead = f"the submission did not load: {message}"
        return LoadError(kind, message, stdout=worker.stdout.text(),
                         stderr=worker.stderr.text(), **kw)

    def _kill(self, why: str, grace: float = 0.0) -> int:
        worker = self._worker
        assert worker is not None
        self._dead = why
        return worker.kill(grace)

    def restart(self) -> None:
        """Kill the worker if alive and load the submission in a fresh one. Handles
        start again at 1, remotes stay registered (their parent-side targets keep
        their state: give a replay fresh ones). Output tails start empty."""
        self.close()
        self._start()

    def close(self) -> None:
        """Kill the worker and its process group; idempotent."""
        if self._worker is not None and self._worker.returncode is None:
            self._kill("closed")
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    @property
    def alive(self) -> bool:
        return self._worker is not None and not self._dead

    @property
    def pid(self) -> int | None:
        return self._worker.proc.pid if self._worker is not None else None

    # -- what the submission offers ------------------------------------------

    def classes(self) -> dict[str, tuple[str, ...]]:
        """The contract classes the submission defines (in contract order), each
        with its public method names (sorted). `list(sub.classes())` is the names."""
        return {name: self._classes[name] for name in CONTRACT_CLASSES if name in self._classes}

    def all_classes(self) -> dict[str, tuple[str, ...]]:
        """Every class `new` accepts: the contract's plus those the submission defines."""
        return dict(self._classes)

    def methods(self, class_name: str) -> tuple[str, ...]:
        return self._classes.get(class_name, ())

    # -- output ----------------------------------------------------------------

    def _tail(self, which: str) -> _Tail | None:
        worker = self._worker
        if worker is None:
            return None
        if worker.returncode is None:
            worker.drain_output()
        return worker.stdout if which == "out" else worker.stderr

    @property
    def stdout(self) -> str:
        """The last `output_tail_bytes` the submission wrote to stdout."""
        tail = self._tail("out")
        return tail.text() if tail else ""

    @property
    def stderr(self) -> str:
        tail = self._tail("err")
        return tail.text() if tail else ""

    @property
    def output_bytes(self) -> tuple[int, int]:
        """(stdout, stderr) bytes written in all by the current worker."""
        out, err = self._tail("out"), self._tail("err")
        return (out.total if out else 0, err.total if err else 0)

    # -- parent-side objects ---------------------------------------------------

    def export(self, target: object, methods: Iterable[str] = PAGE_ALLOCATOR_METHODS,
               name: str = "pages") -> Remote:
        """Register `target` so it can be passed to `new`/`call`: the submission gets
        a proxy whose `methods` call `target` here (a round trip each; the time spent
        here does not count against the call's timeout). Every such call is
        recorded in the Outcome's `callbacks`. Arguments and results must be plain
        data; an exception of `target` is raised in the submission as the built-in
        class of the same name (else RuntimeError)."""
        methods = tuple(methods)
        for m in methods:
            if m.startswith("_") or not callable(getattr(target, m, None)):
                raise UsageError(f"export: {type(target).__name__} has no method {m!r}")
        remote = Remote(len(self._remotes) + 1, name, methods, target)
        self._remotes[remote.id] = remote
        return remote

    def _serve_callback(self, frame: tuple, log: list[Callback]) -> None:
        worker = self._worker
        assert worker is not None
        remote = self._remotes.get(frame[1]) if len(frame) == 4 else None
        if remote is None or frame[2] not in remote.methods or type(frame[3]) is not tuple:
            raise _Corrupt("a callback to an unknown object or method")
        _, _, method, args = frame
        try:
            value = getattr(remote.target, method)(*args)
            problem = plain_problem(value)
            if problem is not None:
                raise TypeError(f"the checker's {remote.name}.{method} returned {problem}")
        except Exception as e:
            log.append(Callback(remote.name, method, args, error=f"{type(e).__name__}: {e}"))
            reply = (OP_CB_RAISE, type(e).__name__, str(e))
        else:
            log.append(Callback(remote.name, method, args, value))
            reply = (OP_CB_RETURN, value)
        worker.send(encode(reply), time.monotonic() + self.timeout_per_call)

    # -- calls -----------------------------------------------------------------

    def _live(self) -> _Worker:
        if self._dead:
            raise WorkerDead(f"the worker is not running: {self._dead}; restart() it")
        assert self._worker is not None
        return self._worker

    def _request(self, op: int, hid: int, name: str, args: Sequence,
                 kwargs: dict | None) -> tuple:
        """A request tuple; Remote arguments become refs (see protocol.py)."""
        args = tuple(args)
        refs = []
        for i, a in enumerate(args):
            if type(a) is Remote:
                refs.append((i, a.id, a.name, a.methods))
        for k, a in (kwargs or {}).items():
            if type(a) is Remote:
                refs.append((k, a.id, a.name, a.methods))
        if refs:
            args = tuple(None if type(a) is Remote else a for a in args)
            kwargs = {k: (None if type(a) is Remote else a) for k, a in kwargs.items()} \
                if kwargs else None
        problem = plain_problem((args, kwargs))
        if problem is not None:
            raise UsageError(f"{name}: arguments must be plain data or Remote, got {problem}")
        return (op, hid, name, args, kwargs or None, tuple(refs) or None)

    def _outcome(self, frame: tuple, log: list[Callback], site: Site) -> Outcome:
        tag = frame[0]
        callbacks = tuple(log)
        if tag == R_RETURN and len(frame) == 2:
            return Outcome(Status.RETURNED, frame[1], callbacks=callbacks)
        if tag == R_RAISE and _shape(frame, int, str, str, tuple, *[(int, type(None))] * 3,
                                     str) and all(type(n) is str for n in frame[3]):
            _, type_, message, mro, errno, code, address, where = frame
            exc = ExcInfo(type_, message, mro, errno, code, address, where)
            return Outcome(Status.RAISED, exc=exc, callbacks=callbacks)
        if tag == R_VIOLATION and _shape(frame, int, str):
            detail = f"{_site_text(site)} {frame[1]}"
            return Outcome(Status.VIOLATION, detail=detail, callbacks=callbacks)
        if tag == R_EXIT and _shape(frame, int, str):
            detail = f"{frame[1]} in {_site_text(site)}"
            self._kill(detail, grace=1.0)
            return self._crash_outcome(detail, callbacks)
        if tag == R_USAGE and _shape(frame, int, str):
            raise UsageError(f"{_site_text(site)}: {frame[1]}")
        raise _Corrupt(f"an unexpected reply (tag {tag!r})")

    def _crash_outcome(self, detail: str, callbacks: tuple[Callback, ...] = (),
                       status: Status = Status.CRASHED) -> Outcome:
        worker = self._worker
        assert worker is not None
        self._dead = detail
        return Outcome(status, detail=detail, callbacks=callbacks, stderr=worker.stderr.text())

    def _await(self, site: Site) -> Outcome:
        """The Outcome of the call the worker is running now (serving its callbacks).
        The per-call deadline excludes the time spent in the checker's callbacks."""
        worker = self._worker
        assert worker is not None
        log: list[Callback] = []
        deadline = time.monotonic() + self.timeout_per_call
        try:
            while True:
                frame = worker.next_frame(deadline)
                if frame[0] != R_CALLBACK:
                    return self._outcome(frame, log, site)
                started = time.monotonic()
                self._serve_callback(frame, log)
                deadline += time.monotonic() - started
        except _TimedOut:
            self._kill("timeout")
            detail = f"timeout after {self.timeout_per_call:g} s in {_site_text(site)}"
            return self._crash_outcome(detail, tuple(log), Status.TIMEOUT)
        except _Died:
            rc = self._kill("died", grace=1.0)
            return self._crash_outcome(f"{_describe_exit(rc)} in {_site_text(site)}", tuple(log))
        except _Corrupt as e:
            self._kill("corrupt")
            return self._crash_outcome(f"protocol error in {_site_text(site)}: {e}", tuple(log))

    def _roundtrip(self, data: bytes, site: Site) -> Outcome:
        """Send one request and await its one reply."""
        worker = self._live()
        try:
            worker.send(data, time.monotonic() + self.timeout_per_call)
        except _Died:
            rc = self._kill("died", grace=1.0)
            return self._crash_outcome(f"{_describe_exit(rc)} before {_site_text(site)}")
        except _TimedOut:
            self._kill("timeout")
            return self._crash_outcome(
                f"timeout after {self.timeout_per_call:g} s sending {_site_text(site)}",
                status=Status.TIMEOUT)
        return self._await(site)

    def _guarded(self, fn: Any, *args: Any) -> Any:
        """Run a protocol exchange; if it is interrupted (KeyboardInterrupt, a bug
        here) the stream is out of step, so the worker is killed."""
        try:
            return fn(*args)
        except (UsageError, WorkerDead):
            raise
        except BaseException:
            if self._worker is not None and not self._dead:
                self._kill("interrupted in the middle of a call")
            raise

    def new(self, class_name: str, *args: Any, **kwargs: Any) -> Handle:
        """Construct `class_name(*args, **kwargs)` in the worker. Raises
        ConstructorFailed (with the Outcome) if it raised or crashed, UsageError
        if the submission has no such class."""
        if class_name not in self._classes:
            raise UsageError(f"the submission defines no class {class_name!r} "
                             f"(it has {', '.join(self._classes) or 'none'})")
        handle = Handle(self._next_handle, class_name)
        data = encode(self._request(OP_NEW, handle.id, class_name, args, kwargs))
        outcome = self._guarded(self._roundtrip, data, (class_name, None, args, kwargs))
        if not outcome.returned:
            raise ConstructorFailed(class_name, outcome)
        self._next_handle += 1
        return handle

    def call(self, handle: Handle, method: str, *args: Any, **kwargs: Any) -> Outcome:
        """Call `method` on the object behind `handle`; never raises for anything the
        submission does (see Outcome)."""
        try:
            data = encode((OP_CALL, handle.id, method, args, kwargs or None, None))
        except ValueError:  # Remote arguments, or not plain data: the slow path
            data = encode(self._request(OP_CALL, handle.id, method, args, kwargs))
        return self._guarded(self._roundtrip, data, (handle, method, args, kwargs))

    def call_many(self, calls: Iterable[tuple]) -> list[Outcome]:
        """Run `(handle, method, args)` or `(handle, method, args, kwargs)` items in
        one round trip. Returns one Outcome per item, stopping after the first that
        crashed (TIMEOUT/CRASHED): a shorter list means its last item crashed.
        Exceptions and violations do not stop the batch. Each item has its own
        `timeout_per_call`, counted from the reply to the item before it."""
        items = [(c[0], c[1], tuple(c[2]), c[3] if len(c) > 3 else None) for c in calls]
        if not items:
            return []
        try:
            data = encode((OP_BATCH, [(OP_CALL, h.id, m, a, k or None, None)
                                      for h, m, a, k in items]))
        except ValueError:
            data = encode((OP_BATCH, [self._request(OP_CALL, h.id, m, a, k)
                                      for h, m, a, k in items]))
        return self._guarded(self._batch, data, items)

    def _batch(self, data: bytes, items: list[Site]) -> list[Outcome]:
        first = self._roundtrip(data, items[0])
        results = [first]
        if first.crashed:
            return results
        for site in items[1:]:
            outcome = self._await(site)
            results.append(outcome)
            if outcome.crashed:
                break
        return results

    def drop(self, handle: Handle) -> Outcome:
        """Forget the object behind `handle` in the worker (its __del__ may run)."""
        return self._guarded(self._roundtrip, encode((OP_DROP, handle.id)),
                             f"drop({handle!r})")

    def reset(self) -> Outcome:
        """Forget every object (module-level state of the submission stays); handles
        start again at 1. Cheaper than restart(), but only restart() gives a replay
        the same starting point."""
        outcome = self._guarded(self._roundtrip, encode((OP_RESET,)), "reset()")
        if outcome.returned:
            self._next_handle = 1
        return outcome
