"""Independent tasks, each in a fresh fork of this process, a few at a time.

The Z3 engine splits an induction step into obligations that share nothing but
the formulas already built, and asks those of one operation in one task. Each
task runs in a child forked from the parent as it is when `run_forked` is
called: every task starts from the same z3 state (term ids steer the solver), so
its answers do not depend on how many run at once or in which order. That is
what keeps "same seed and effort, same answer" true on a machine with more
cores: a run on one core forks the same children, one after another.

A task returns something picklable; a task that raises gives `Failed(repr)`.
Where the platform cannot fork, the tasks run here, one after another (the
answers are the same up to the solver's choices among equally good ones).
"""

from __future__ import annotations

import os
import pickle
import selectors
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Failed:
    """What a task raised, as text (the child's exception cannot cross the pipe)."""

    error: str


def workers() -> int:
    """How many children run at once: the CPUs this process may use
    (MMCHECK_JOBS overrides; 1 runs the children one after another)."""
    env = os.environ.get("MMCHECK_JOBS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_forked(tasks: Sequence[Callable[[], Any]], jobs: int | None = None,
               stop: Callable[[], bool] = lambda: False,
               start: Sequence[int] | None = None) -> list[Any]:
    """Each task's result, in order, each computed in its own child (at most `jobs`
    children at once), started in the order of the indexes `start` (default: as
    listed; put the longest first). `stop` is polled while children run: when it
    turns true the running children are killed and every task not finished gives
    None."""
    if not hasattr(os, "fork"):
        return [_call(t) for t in tasks]
    jobs = workers() if jobs is None else max(1, jobs)
    results: list[Any] = [None] * len(tasks)
    running: dict[int, tuple[int, int, bytearray]] = {}  # fd -> (task, pid, bytes so far)
    sel = selectors.DefaultSelector()
    order = list(range(len(tasks))) if start is None else list(start)
    if sorted(order) != list(range(len(tasks))):
        raise ValueError(f"run_forked: start must order every task once, got {order}")
    todo = 0
    try:
        while todo < len(tasks) or running:
            while todo < len(tasks) and len(running) < jobs and not stop():
                fd, pid = _spawn(tasks[order[todo]])
                running[fd] = (order[todo], pid, bytearray())
                sel.register(fd, selectors.EVENT_READ)
                todo += 1
            if stop():
                break
            for key, _ in sel.select(timeout=0.2):
                index, pid, buf = running[key.fd]
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    buf += chunk
                    continue
                sel.unregister(key.fd)
                os.close(key.fd)
                del running[key.fd]
                _, status = os.waitpid(pid, 0)
                results[index] = _unpack(bytes(buf), status)
    finally:
        for fd, (_, pid, _) in running.items():
            _kill(pid)
            sel.unregister(fd)
            os.close(fd)
        sel.close()
    return results


def _spawn(task: Callable[[], Any]) -> tuple[int, int]:
    """Fork a child that runs `task` and writes its pickled result to a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(r)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
            signal.signal(sig, signal.SIG_DFL)  # the parent handles stops; a child just dies
        code = 0
        try:
            payload = pickle.dumps(_call(task))
            with os.fdopen(w, "wb") as out:
                out.write(payload)
        except BaseException:  # noqa: BLE001 - nothing may escape a forked child
            code = 1
        os._exit(code)
    os.close(w)
    return r, pid


def _call(task: Callable[[], Any]) -> Any:
    try:
        return task()
    except Exception as e:  # noqa: BLE001 - reported to the parent as a result
        return Failed(f"{type(e).__name__}: {e}")


def _unpack(data: bytes, status: int) -> Any:
    """A child's result from its pipe, or Failed when it died without one."""
    if data:
        try:
            return pickle.loads(data)
        except Exception as e:  # noqa: BLE001 - a truncated result
            return Failed(f"unreadable result from a forked child: {e}")
    if os.WIFSIGNALED(status):
        return Failed(f"a forked child died of signal {os.WTERMSIG(status)}")
    return Failed(f"a forked child exited with status {os.WEXITSTATUS(status)}")


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
