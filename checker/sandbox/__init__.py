"""Running a submission in a separate process and calling into it (the checker
never imports submission code).

    from mmcheck.checker.sandbox import Submission, AuditedPages

    with Submission.open("student.py", timeout_per_call=0.5) as sub:
        sub.classes()                          # contract classes -> method names
        pages = AuditedPages(BuddyAllocator(256))
        cache = sub.new("KmemCache", "kmalloc-64", 64, 8, sub.export(pages))
        out = sub.call(cache, "alloc")         # Outcome: value, or exc, or crash
        out.callbacks                          # the pages it took during that call
        sub.call_many([(cache, "alloc", ()), (cache, "shrink", ())])

How it works: `Submission.open` starts `python -m mmcheck.checker.sandbox.worker`
in its own session (process group), with a scrubbed environment, an empty
temporary directory as cwd, PYTHONHASHSEED=0 (so replays are deterministic) and
lowered RLIMIT_AS/CPU/NOFILE/FSIZE and RLIMIT_CORE=0. Requests and replies
travel on a dedicated pipe pair passed with `pass_fds` (never stdin/stdout),
framed as length-prefixed `marshal` dumps of plain data; the parent never
unpickles anything and checks every reply before use (protocol.py). The
submission's stdout and stderr go to two other pipes that the parent drains
while it waits, keeping the last few KiB of each for reports.

Objects passed INTO the submission (the `pages` allocator of KmemCache and
PageTable) are parent-side objects: `Submission.export(obj)` gives a `Remote`;
the submission receives a proxy whose `alloc_pages`/`free_pages` make a
round trip to `obj` in the checker's process, and each such call is recorded in
the Outcome's `callbacks`. This was chosen over running a reference allocator
inside the worker because the record of what the submission took and gave back
is then kept where the submission cannot alter it, the checker can hand in any
allocator (the reference BuddyAllocator, one that fails on demand, the model
it steps in lock-step) and audit it directly, and slab/page-table code asks
for pages rarely, so the extra round trips cost little. `AuditedPages` is the
ready-made audited page allocator.

Isolation (confine.py; `Submission.layers` says which layers were in force):
the worker gets its own PID, network, mount, IPC and UTS namespaces, a private
read-only root (the system libraries, its own staged copy of the submission,
a small writable /tmp; the checker, specs, hidden tests and other submissions
are not in it), runs as `nobody` (checker run as root) or in a user namespace
of its own, without capabilities, with no_new_privs, a seccomp filter and
rlimits (address space, CPU, files, file size, processes). Every process it
starts dies with it. Where the machine refuses namespaces (some containers),
the worker runs with the layers it could get and says which are missing.

What it still does NOT protect against:
- Kernel bugs (the submission shares the host kernel), and CPU/memory
  starvation of the machine beyond the rlimits (no cgroups: RLIMIT_AS bounds
  each process, times RLIMIT_NPROC processes at most).
- Within its own process it can do anything: patch the worker's code, forge
  replies, run threads that write into the reply pipe. The parent survives all
  of that (a bad frame is a reported crash), but the VALUES a hostile worker
  returns are only as honest as the submission.
- `marshal` is not documented as hardened against crafted input. The parent
  bounds frame sizes and the walk over each reply, and a frame it cannot
  decode is a reported crash; but marshal preallocates the lengths a frame
  declares, so a crafted 5-byte frame can cost the checker seconds of CPU.
Run untrusted code from strangers inside a container or VM as well.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The exports load lazily: the worker process imports this package too (it runs
# `-m mmcheck.checker.sandbox.worker`) and must start fast and lean, without the
# parent-side machinery (subprocess, dataclasses, the model).
_EXPORTS = {
    "Limits": "client", "Loader": "client",
    "PythonLoader": "client", "Submission": "client",
    "Callback": "outcome", "ConstructorFailed": "outcome", "ExcInfo": "outcome",
    "Handle": "outcome", "LoadError": "outcome", "Outcome": "outcome", "Remote": "outcome",
    "SandboxError": "outcome", "Status": "outcome", "UsageError": "outcome",
    "WorkerDead": "outcome",
    "AuditedPages": "pages", "PageEvent": "pages",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from mmcheck.checker.sandbox.client import (  # noqa: F401
        Limits,
        Loader,
        PythonLoader,
        Submission,
    )
    from mmcheck.checker.sandbox.outcome import (  # noqa: F401
        Callback,
        ConstructorFailed,
        ExcInfo,
        Handle,
        LoadError,
        Outcome,
        Remote,
        SandboxError,
        Status,
        UsageError,
        WorkerDead,
    )
    from mmcheck.checker.sandbox.pages import AuditedPages, PageEvent  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
