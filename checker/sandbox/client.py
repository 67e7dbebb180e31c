"""The checker's side of the sandbox: `Submission`, its `Limits` and `Loader`s.

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
not load (`LoadError`). Those types live in outcome.py, the worker process and
its frame I/O in process.py, the wire format in protocol.py. See `__init__.py`
for what the sandbox does not protect against.

Not thread-safe: one thread drives a Submission (several Submissions may run
side by side, each with its own worker).
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mmcheck.checker.sandbox import confine
from mmcheck.checker.sandbox.cloader import CLoader
from mmcheck.checker.sandbox.outcome import (
    Callback,
    ConstructorFailed,
    ExcInfo,
    Handle,
    LoadError,
    Outcome,
    Remote,
    Status,
    UsageError,
    WorkerDead,
)
from mmcheck.checker.sandbox.process import (
    Corrupt,
    Died,
    Tail,
    TimedOut,
    WorkerProcess,
    describe_death,
)
from mmcheck.checker.sandbox.protocol import (
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
    clean,
    encode,
    plain_problem,
)
from mmcheck.checker.subsystems.registry import contract_classes

MODULE_NAME = "_mmcheck_submission"
PAGE_ALLOCATOR_METHODS = ("alloc_pages", "free_pages")


@dataclass(frozen=True)
class Limits:
    """Resource limits of a worker (None: leave the inherited limit)."""

    memory_mb: int | None = 1024   # RLIMIT_AS
    cpu_s: int | None = 3600       # RLIMIT_CPU over the worker's whole life (SIGXCPU)
    open_files: int | None = 64    # RLIMIT_NOFILE
    file_size_mb: int | None = 16  # RLIMIT_FSIZE (a write past it fails with EFBIG)
    max_reply_bytes: int = 16 << 20
    processes: int | None = 32     # RLIMIT_NPROC (only where it counts the sandbox alone)
    confine: bool = True           # namespaces, private root, seccomp (confine.py)

    def rlimits(self) -> dict[str, int | None]:
        mb = 1 << 20
        return {
            "as": None if self.memory_mb is None else self.memory_mb * mb,
            "cpu": self.cpu_s,
            "nofile": self.open_files,
            "fsize": None if self.file_size_mb is None else self.file_size_mb * mb,
            "core": 0,
            "nproc": self.processes,
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

    def messages(self, target: str) -> str:
        """What building `target` (prepare's answer) printed: a C compiler's warnings."""
        ...


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

    def messages(self, target: str) -> str:
        return ""  # nothing is built


KNOWN_LOADERS: tuple[Loader, ...] = (CLoader(), PythonLoader())  # tried in order by loader_for


def loader_for(path: Path) -> Loader:
    for loader in KNOWN_LOADERS:
        if loader.accepts(path):
            return loader
    raise LoadError("unsupported", f"{path}: no loader for this kind of submission "
                                   "(Python: a .py file or a package directory; C: a .c file)")


def _valid_ready(frame: tuple) -> bool:
    """(R_READY, {class name: [method name, ...]}, [layer, ...])"""
    return len(frame) == 3 and type(frame[2]) is list and all(
        type(x) is str for x in frame[2]) and type(frame[1]) is dict and all(
        type(k) is str and type(v) in (list, tuple) and all(type(m) is str for m in v)
        for k, v in frame[1].items())


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
        self._worker: WorkerProcess | None = None
        self._finalizer: weakref.finalize | None = None
        self._dead = "not started"
        self._next_handle = 1
        self._handles: set[int] = set()
        self._classes: dict[str, tuple[str, ...]] = {}
        self._staged = ("", "")
        self.layers: tuple[str, ...] = ()  # the isolation layers in force (confine.py)
        self.build_messages = ""  # what building it printed (a C compiler's warnings)

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
        self.build_messages = self.loader.messages(target)
        # A reply may exceed max_reply_bytes only by its frame's own few bytes.
        max_frame = max(self.limits.max_reply_bytes, 1 << 20) + (1 << 16)
        worker = WorkerProcess(self.python, self.output_tail_bytes, max_frame)
        self._worker = worker
        self._finalizer = weakref.finalize(self, worker.kill)
        self._next_handle = 1
        self._handles.clear()
        plan = None
        if self.limits.confine:
            try:
                plan = confine.plan_for(worker.tmpdir, target)
            except (OSError, ValueError) as e:
                worker.kill()
                raise LoadError("missing", f"cannot stage the submission: {e}") from None
            self._staged = (plan["staged"], target)
        config = {"loader": self.loader.name, "path": target, "module": MODULE_NAME,
                  "limits": self.limits.rlimits(), "confine": plan,
                  "max_reply": self.limits.max_reply_bytes,
                  "contract_classes": list(contract_classes())}
        deadline = time.monotonic() + self.load_timeout
        try:
            worker.send(encode((OP_HELLO, config)), deadline)
            frame = worker.next_frame(deadline)
            if frame[0] == R_READY and _valid_ready(frame):
                self._classes = {k: tuple(v) for k, v in frame[1].items()}
                self.layers = tuple(clean(x, 200) for x in frame[2])
                self._dead = ""
                return
            if frame[0] == R_LOAD_ERROR and _shape(
                    frame, int, str, str, (str, type(None)), (int, type(None)), str):
                _, kind, message, filename, lineno, text = frame
                raise self._load_error(kind, self._unstage(message), grace=0.5,
                                       filename=filename and self._unstage(filename),
                                       lineno=lineno, traceback=self._unstage(text))
            raise Corrupt("an unexpected first reply")
        except LoadError:
            raise
        except TimedOut:
            raise self._load_error(
                "timeout", f"loading took longer than {self.load_timeout:g} s") from None
        except Died:
            worker.kill(grace=0.5)
            raise self._load_error("crash", f"{describe_death(worker)} while loading") from None
        except Corrupt as e:
            raise self._load_error("crash", f"protocol error while loading: {e}") from None
        except BaseException:
            self._kill("load interrupted")
            raise

    def _load_error(self, kind: str, message: str, grace: float = 0.0,
                    **kw: Any) -> LoadError:
        """Kill the worker (after `grace` s for it to exit by itself) and say why."""
        worker = self._worker
        assert worker is not None
        worker.kill(grace)
        message = clean(message)
        self._dead = f"the submission did not load: {message}"
        return LoadError(kind, message, stdout=clean(worker.stdout.text(), 0),
                         stderr=clean(worker.stderr.text(), 0), **kw)

    def _unstage(self, text: str) -> str:
        """Paths of the staged copy, as the student knows them (their own path)."""
        staged, original = self._staged
        return clean(text.replace(staged, original), 20000) if staged else clean(text, 20000)

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
        return {name: self._classes[name] for name in contract_classes()
                if name in self._classes}

    def all_classes(self) -> dict[str, tuple[str, ...]]:
        """Every class `new` accepts: the contract's plus those the submission defines."""
        return dict(self._classes)

    def methods(self, class_name: str) -> tuple[str, ...]:
        return self._classes.get(class_name, ())

    # -- output ----------------------------------------------------------------

    def _tail(self, which: str) -> Tail | None:
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
        if not _shape(frame, int, int, str, tuple):
            raise Corrupt("a malformed callback")
        remote = self._remotes.get(frame[1])
        if remote is None or frame[2] not in remote.methods:
            raise Corrupt("a callback to an unknown object or method")
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

    def _live(self) -> WorkerProcess:
        if self._dead:
            raise WorkerDead(f"the worker is not running: {self._dead}; restart() it")
        assert self._worker is not None
        return self._worker

    @staticmethod
    def _request(op: int, hid: int, name: str, args: Sequence, kwargs: dict | None) -> tuple:
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
        return (op, hid, name, args, kwargs or None, tuple(refs) or None)

    @staticmethod
    def _encode(req: tuple, what: str) -> bytes:
        try:
            return encode(req)
        except ValueError:
            raise UsageError(f"{what}: arguments must be Remote or what marshal encodes "
                             f"(plain data, bytes, sets), not {plain_problem(req)}") from None

    def _outcome(self, frame: tuple, log: list[Callback], site: Site) -> Outcome:
        tag = frame[0]
        callbacks = tuple(log)
        if tag == R_RETURN and len(frame) == 2:
            return Outcome(Status.RETURNED, frame[1], callbacks=callbacks)
        if tag == R_RAISE and _shape(frame, int, str, str, tuple, *[(int, type(None))] * 3,
                                     str) and all(type(n) is str for n in frame[3]):
            _, type_, message, mro, errno, code, address, where = frame
            errno, code, address = (x if x is None or abs(x) < 1 << 64 else None
                                    for x in (errno, code, address))
            exc = ExcInfo(clean(type_, 200), clean(message), tuple(clean(n, 200) for n in mro[:64]),
                          errno, code, address, clean(where, 300))
            return Outcome(Status.RAISED, exc=exc, callbacks=callbacks)
        if tag == R_VIOLATION and _shape(frame, int, str):
            detail = f"{_site_text(site)} {clean(frame[1], 500)}"
            return Outcome(Status.VIOLATION, detail=detail, callbacks=callbacks)
        if tag == R_EXIT and _shape(frame, int, str):
            detail = f"{clean(frame[1], 300)} in {_site_text(site)}"
            self._kill(detail, grace=0.5)
            return self._crash_outcome(detail, callbacks)
        if tag == R_USAGE and _shape(frame, int, str):
            # The parent checks classes and handles before sending, so a worker
            # that says otherwise is broken or forged: not the checker's mistake.
            raise Corrupt(f"the worker refused the request: {frame[1]}")
        raise Corrupt(f"an unexpected reply (tag {tag!r})")

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
        except TimedOut:
            self._kill("timeout")
            detail = f"timeout after {self.timeout_per_call:g} s in {_site_text(site)}"
            return self._crash_outcome(detail, tuple(log), Status.TIMEOUT)
        except Died:
            self._kill("died", grace=0.5)
            detail = f"{describe_death(worker)} in {_site_text(site)}"
            return self._crash_outcome(detail, tuple(log))
        except Corrupt as e:
            self._kill("corrupt")
            return self._crash_outcome(f"protocol error in {_site_text(site)}: {e}", tuple(log))

    def _roundtrip(self, data: bytes, site: Site) -> Outcome:
        """Send one request and await its one reply."""
        worker = self._live()
        try:
            worker.send(data, time.monotonic() + self.timeout_per_call)
        except Died:
            self._kill("died", grace=0.5)
            return self._crash_outcome(f"{describe_death(worker)} before {_site_text(site)}")
        except TimedOut:
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
        data = self._encode(self._request(OP_NEW, handle.id, class_name, args, kwargs),
                            class_name)
        outcome = self._guarded(self._roundtrip, data, (class_name, None, args, kwargs))
        if not outcome.returned:
            raise ConstructorFailed(class_name, outcome)
        self._next_handle += 1
        self._handles.add(handle.id)
        return handle

    def _check_handle(self, handle: Handle) -> None:
        if handle.id not in self._handles:
            raise UsageError(f"{handle!r} is not a live object (dropped, or from before a "
                             "restart()/reset() and not made again)")

    def call(self, handle: Handle, method: str, *args: Any, **kwargs: Any) -> Outcome:
        """Call `method` on the object behind `handle`; never raises for anything the
        submission does (see Outcome)."""
        if handle.id not in self._handles:
            self._check_handle(handle)
        try:
            data = encode((OP_CALL, handle.id, method, args, kwargs or None, None))
        except ValueError:  # Remote arguments, or not plain data: the slow path
            data = self._encode(self._request(OP_CALL, handle.id, method, args, kwargs), method)
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
        for handle, _, _, _ in items:
            self._check_handle(handle)
        try:
            data = encode((OP_BATCH, [(OP_CALL, h.id, m, a, k or None, None)
                                      for h, m, a, k in items]))
        except ValueError:  # Remote arguments somewhere: splice pre-encoded items
            data = self._encode((OP_BATCH, [self._request(OP_CALL, h.id, m, a, k)
                                            for h, m, a, k in items]), "call_many")
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
        self._check_handle(handle)
        self._handles.discard(handle.id)
        return self._guarded(self._roundtrip, encode((OP_DROP, handle.id)),
                             f"drop({handle!r})")

    def reset(self) -> Outcome:
        """Forget every object (module-level state of the submission stays); handles
        start again at 1. Cheaper than restart(), but only restart() gives a replay
        the same starting point."""
        outcome = self._guarded(self._roundtrip, encode((OP_RESET,)), "reset()")
        self._handles.clear()
        if outcome.returned:
            self._next_handle = 1
        return outcome
