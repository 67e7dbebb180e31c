"""One worker process seen from the checker: spawn it, exchange frames with
deadlines, capture its output, kill its process group.

Nothing that arrives from the worker is trusted: every frame is decoded and
checked here (`check_frame`) before the client looks at it, reads are bounded
so that a flooding worker costs bounded memory and cannot keep the caller from
its deadline, and how the worker ended is turned into words for reports.
"""

from __future__ import annotations

import contextlib
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

from mmcheck.checker.sandbox.protocol import (
    EXIT_CHANNEL_LOST,
    EXIT_INTERNAL,
    HEADER,
    SCALARS,
    clean,
    huge_int,
    node_budget,
    plain_problem,
)

WORKER_MODULE = "mmcheck.checker.sandbox.worker"

class TimedOut(Exception):
    """The deadline passed before the worker answered."""


class Died(Exception):
    """The reply pipe reached end of file: the worker is gone or closed it."""


class Corrupt(Exception):
    """The reply stream is not made of valid frames (the submission wrote into it?)."""


class Tail:
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
        return clean(self.data.decode("utf-8", "replace"), 0)


def describe_death(worker: WorkerProcess) -> str:
    """Why the reply pipe ended, once the worker has been reaped."""
    rc = worker.returncode
    assert rc is not None
    if not worker.exited_by_itself:
        return "worker closed its reply channel (fd closed?) and did not exit"
    if rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        hint = {signal.SIGXCPU: " (CPU time limit)", signal.SIGXFSZ: " (file size limit)"}
        return f"worker killed by {name}{hint.get(-rc, '')}"
    if rc == EXIT_CHANNEL_LOST:
        return f"worker exited with status {rc}: it lost its channel (descriptors closed?)"
    if rc == EXIT_INTERNAL:
        return f"worker exited with status {rc}: internal error (out of memory?)"
    return f"worker exited with status {rc}"


def worker_argv(python: str, module: str = WORKER_MODULE) -> list[str]:
    """The command line of a sandbox process: `python -m module` with the flags below."""
    # -s: no user site; -B: no __pycache__ in the student's folder; -u: unbuffered
    # stdout/stderr, so what was printed before a crash is in the pipe; -P (3.11+):
    # do not put the working directory first on sys.path.
    flags = ["-s", "-B", "-u"] + (["-P"] if sys.version_info >= (3, 11) else [])
    return [python, *flags, "-m", module]


def worker_env(home: str) -> dict[str, str]:
    """The whole environment of a sandbox process whose home is `home`."""
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


class WorkerProcess:
    """One worker process: spawn, frame I/O with deadlines, output capture, kill."""

    def __init__(self, python: str, tail_bytes: int, max_frame: int) -> None:
        self.max_frame = max_frame
        self.tmpdir = tempfile.mkdtemp(prefix="mmcheck-sandbox-")
        req_r, self.wfd = os.pipe()
        self.rfd, resp_w = os.pipe()
        try:
            self.proc = subprocess.Popen(
                [*worker_argv(python), str(req_r), str(resp_w)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=(req_r, resp_w), cwd=self.tmpdir, env=worker_env(self.tmpdir),
                start_new_session=True)  # own session and process group: killpg takes all
        except BaseException:
            for fd in (req_r, resp_w, self.wfd, self.rfd):
                os.close(fd)
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            raise
        os.close(req_r)
        os.close(resp_w)
        self.returncode: int | None = None
        self.exited_by_itself = False
        self.buf = bytearray()
        self.eof = False
        self.stdout = Tail(tail_bytes)
        self.stderr = Tail(tail_bytes)
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
            except OSError:  # EPIPE: the worker is gone
                raise Died from None
            view = view[n:]
            if not view:
                return
            self._wait(deadline, select.POLLOUT)

    def _wait(self, deadline: float, want_out: int = 0) -> None:
        """Sleep until a pipe is ready; drain output; read replies into buf."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimedOut
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
        # Never buffer more than the frame being assembled can need: a worker
        # that floods the pipe costs bounded memory (and then a protocol error).
        while len(self.buf) <= self.max_frame + HEADER.size:
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
        """Read what a stdout/stderr pipe holds, at most 1 MiB a time, so that a
        submission printing without end cannot keep us from our deadline."""
        tail = self.out[fd]
        for _ in range(16):
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
                if n > self.max_frame:
                    raise Corrupt(f"a frame header announces {n} bytes")
                end = 4 + n
                if len(buf) >= end:
                    payload = bytes(buf[4:end])
                    del buf[:end]
                    return check_frame(payload)
            if self.eof:
                raise Died
            self._wait(deadline)

    # -- end of life -----------------------------------------------------------

    def _exited(self, grace: float) -> bool:
        """Wait up to `grace` s for the worker to exit, WITHOUT reaping it: while it
        is a zombie its pid (= its process group id) cannot be reused, so the
        killpg that follows cannot hit a stranger."""
        end = time.monotonic() + grace
        while True:  # a pidfd would avoid polling, but needs Linux 5.3 and Python 3.9
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
        by itself, to learn its own status), reap it, keep its last output.
        Idempotent, and whatever goes wrong on the way, the pipes are closed and
        the temporary directory removed."""
        if self.returncode is not None:
            return self.returncode
        try:
            self.exited_by_itself = self._exited(grace)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.returncode = self.proc.wait()
            try:
                self.drain_output()  # non-blocking: a grandchild may still hold the pipes
            finally:
                self._release()
        return self.returncode

    def _release(self) -> None:
        for fd in (self.rfd, self.wfd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.proc.stdout.close()  # type: ignore[union-attr]
        self.proc.stderr.close()  # type: ignore[union-attr]
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def check_frame(payload: bytes) -> tuple:
    try:
        frame = marshal.loads(payload)
    except (ValueError, EOFError, TypeError, MemoryError) as e:
        # MemoryError: marshal preallocates the lengths a frame declares
        raise Corrupt(f"undecodable reply ({type(e).__name__}: {e})") from None
    if type(frame) is tuple and len(frame) == 2 and type(frame[1]) in SCALARS:
        if huge_int(frame[1]):  # the worker turns these into violations: forged
            raise Corrupt(f"a reply holding {huge_int(frame[1])}")
    elif type(frame) is not tuple or not frame:
        raise Corrupt("a reply that is not a tuple")
    else:
        problem = plain_problem(frame, node_budget(len(payload)))
        if problem is not None:
            raise Corrupt(f"a reply holding {problem}")
    if type(frame[0]) is not int:
        raise Corrupt("a reply without an integer tag")
    return frame
