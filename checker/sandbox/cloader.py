"""C submissions: built with the system C compiler, driven through ctypes in the worker.

The parent side (`CLoader`, registered in client.KNOWN_LOADERS) compiles the
submission before the worker starts:

    cc -shared -fPIC -O1 -std=gnu11 -I <include> -o <cache>/<hash>.so FILES

against the contract headers include/mmcheck/buddy.h and slab.h (the package
`mmcheck.include`, installed with mmcheck: <include> is its folder), into a cache
directory keyed by the sources, the headers beside them, their folder and the
command (a second run of the same file does not compile again). The compiler
runs confined as a worker is (checker/sandbox/ccrun.py: namespaces, no network,
seccomp, rlimits, a private read-only root holding a staged copy of the
sources and the contract headers, a scratch /tmp): a hostile source cannot
#include, or make the compiler read, anything else of the machine. A compile
error is a LoadError("compile") whose message is the compiler's own output,
so the CLI reports it as a submission error (exit 2) with the file:line:col and
caret the compiler printed; the warnings of a build that succeeded are kept
beside the library (`warnings_of`, Submission.build_messages) for the
student's feedback.

The worker side (checker/sandbox/cworker.py, worker.LOADERS["c"], imported
before the worker confines itself) opens the library with ctypes and returns
Python classes with the contract's names and methods, made from
the symbols it exports: `BuddyAllocator` from buddy_init/alloc/free,
`KmemCache` from kmem_cache_create/alloc/free/shrink/destroy/slabinfo. Each
method maps the C convention back to the Python contract: -1 from an alloc is
None, any other negative errno is ValueError. A C fault (a segfault, an abort)
kills the worker, which the parent reports as a crash, as for Python.

The C code runs in the same confined worker process as a Python submission
would (see sandbox/__init__.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mmcheck.checker.sandbox.outcome import LoadError

from mmcheck import include

INCLUDE = include.DIRECTORY
CFLAGS = ("-shared", "-fPIC", "-O1", "-g", "-std=gnu11", "-Wall", "-Wno-unused")
COMPILE_TIMEOUT = 60.0
# rlimits of the confined compiler (worker.apply_limits): memory, CPU, files, processes
COMPILE_LIMITS = {"as": 2048 << 20, "cpu": 120, "nofile": 256, "fsize": 64 << 20,
                  "core": 0, "nproc": 64}
MAX_MESSAGE_LINES = 40


def _sources(path: Path) -> list[Path]:
    """The .c files of a submission: the file itself, or every .c of a directory."""
    if path.is_dir():
        return sorted(path.glob("*.c"))
    return [path]


def _compiler() -> str:
    for name in (os.environ.get("CC", ""), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    raise LoadError("unsupported", "no C compiler found (cc, gcc or clang on PATH, or $CC): "
                                   "it is needed to build a C submission")


def compile_library(path: Path) -> Path:
    """Build the shared library of the C submission at `path`, with the compiler
    confined as a worker is (`ccrun`); its path. The compiler's warnings are kept
    beside it (`warnings_of`).

    LoadError("missing") without sources, ("compile") with the compiler's
    message when they do not build, ("timeout") when the compiler hangs,
    ("sandbox") when it cannot be confined."""
    sources = _sources(path)
    if not sources or not all(s.is_file() for s in sources):
        raise LoadError("missing", f"{path}: no C source files")
    cc = os.path.realpath(shutil.which(_compiler()) or _compiler())
    key = hashlib.sha256()
    # the folder too: the warnings kept with the library name the student's files
    for part in (cc, *CFLAGS, str(INCLUDE), str(sources[0].parent.resolve())):
        key.update(part.encode() + b"\0")
    for header in include.headers():
        key.update(header.read_bytes())
    for src in _staged_files(sources):
        key.update(src.name.encode() + b"\0" + src.read_bytes())
    cache = Path(tempfile.gettempdir()) / f"mmcheck-c-{os.getuid()}"
    cache.mkdir(mode=0o700, exist_ok=True)
    out = cache / f"{key.hexdigest()[:24]}.so"
    if out.is_file():
        return out
    answer = _build_confined(cc, sources)
    messages = _shown(answer.get("messages", ""), answer.get("src", ""), sources[0].parent)
    if answer.get("timeout"):
        raise LoadError("timeout", f"{path}: the C compiler ran longer than "
                                   f"{COMPILE_TIMEOUT:g} s")
    if "error" in answer:
        raise LoadError("sandbox", f"{path}: {answer['error']}")
    if answer["rc"] != 0:
        raise LoadError("compile", f"{path} did not compile ({cc} {sources[-1]}):\n"
                        + messages)
    tmp = cache / f"{out.stem}.{os.getpid()}.tmp"
    tmp.write_text(messages)
    os.replace(tmp, out.with_suffix(".log"))
    tmp.write_bytes(base64.b64decode(answer["library"]))
    os.replace(tmp, out)  # last: a library in the cache always has its log
    return out


def warnings_of(library: str | Path) -> str:
    """What the compiler said while building `library` (its warnings; "" if none)."""
    try:
        return Path(library).with_suffix(".log").read_text()
    except OSError:
        return ""


def _staged_files(sources: list[Path]) -> list[Path]:
    """The files the compiler sees: the sources and the headers beside them."""
    folder = sources[0].parent
    return sorted({*sources, *(h for h in folder.glob("*.h") if h.is_file())})


def _build_confined(cc: str, sources: list[Path]) -> dict:
    """Run ccrun on a staged copy of the sources and the contract headers; its answer."""
    from mmcheck.checker.sandbox import confine
    from mmcheck.checker.sandbox.process import worker_argv, worker_env

    tmpdir = tempfile.mkdtemp(prefix="mmcheck-cc-")
    try:
        job_dir = os.path.join(tmpdir, "job")
        os.mkdir(job_dir)
        for f in _staged_files(sources):
            shutil.copyfile(f, os.path.join(job_dir, f.name))
        shutil.copytree(INCLUDE, os.path.join(job_dir, "include"))
        try:
            plan = confine.plan_for(tmpdir, job_dir, scratch_mb=64)
        except (OSError, ValueError) as e:
            raise LoadError("missing", f"cannot stage the C sources: {e}") from None
        cmd = [cc, *CFLAGS, "-I", "{src}/include", *(f"{{src}}/{s.name}" for s in sources)]
        job = {"plan": plan, "cmd": cmd, "timeout": COMPILE_TIMEOUT, "limits": COMPILE_LIMITS}
        argv = worker_argv(sys.executable, f"{__package__}.ccrun")
        try:
            proc = subprocess.run(argv, input=json.dumps(job), capture_output=True, text=True,
                                  timeout=COMPILE_TIMEOUT + 30, check=False, cwd=tmpdir,
                                  env=worker_env(tmpdir), start_new_session=True)
        except subprocess.TimeoutExpired:
            return {"timeout": True}
        try:
            return json.loads(proc.stdout)
        except ValueError:
            return {"error": "the confined compiler ended without an answer "
                             f"(exit {proc.returncode}): {proc.stderr.strip()[-500:]}"}
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _shown(messages: str, src: str, folder: Path) -> str:
    """The compiler's messages as the student reads them: paths of their own
    folder and of the contract headers, not of the staged copy; at most
    MAX_MESSAGE_LINES lines."""
    if src:
        messages = messages.replace(f"{src}/include/", f"{INCLUDE}/")
        messages = messages.replace(f"{src}/", f"{folder}/")
    lines = messages.strip().splitlines()
    shown = lines[:MAX_MESSAGE_LINES] + (
        [f"... {len(lines) - MAX_MESSAGE_LINES} more lines"]
        if len(lines) > MAX_MESSAGE_LINES else [])
    return "\n".join(shown)


class CLoader:
    """A `.c` file, or a directory of `.c` files without an __init__.py."""

    name = "c"

    def accepts(self, path: Path) -> bool:
        if path.is_dir():
            return not (path / "__init__.py").exists() and any(path.glob("*.c"))
        return path.suffix == ".c"

    def prepare(self, path: Path) -> str:
        if not path.exists():
            raise LoadError("missing", f"{path} does not exist")
        return str(compile_library(path))

    def messages(self, target: str) -> str:
        return warnings_of(target)
