"""C submissions: built with the system C compiler, driven through ctypes in the worker.

The parent side (`CLoader`, registered in client.KNOWN_LOADERS) compiles the
submission before the worker starts:

    cc -shared -fPIC -O1 -std=gnu11 -I <include> -o <cache>/<hash>.so FILES

against the contract headers include/mmcheck/buddy.h and slab.h (the package
`mmcheck.include`, installed with mmcheck: <include> is its folder), into a cache
directory keyed by the sources and the command (a second run of the same
file does not compile again). A compile error is a LoadError("compile") whose
message is the compiler's own output, so the CLI reports it as a submission
error (exit 2) with the file:line:col and caret the compiler printed.

The worker side (checker/sandbox/cworker.py, worker.LOADERS["c"], imported
before the worker confines itself) opens the library with ctypes and returns
Python classes with the contract's names and methods, made from
the symbols it exports: `BuddyAllocator` from buddy_init/alloc/free,
`KmemCache` from kmem_cache_create/alloc/free/shrink/destroy/slabinfo. Each
method maps the C convention back to the Python contract: -1 from an alloc is
None, any other negative errno is ValueError. A C fault (a segfault, an abort)
kills the worker, which the parent reports as a crash, as for Python.

The C code runs in the same confined worker process as a Python submission
would: this module adds no isolation of its own (see sandbox/__init__.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from mmcheck.checker.sandbox.outcome import LoadError

from mmcheck import include

INCLUDE = include.DIRECTORY
CFLAGS = ("-shared", "-fPIC", "-O1", "-g", "-std=gnu11", "-Wall", "-Wno-unused")
COMPILE_TIMEOUT = 60.0
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
    """Build the shared library of the C submission at `path`; its path.

    LoadError("missing") without sources, ("compile") with the compiler's
    message when they do not build, ("timeout") when the compiler hangs."""
    sources = _sources(path)
    if not sources or not all(s.is_file() for s in sources):
        raise LoadError("missing", f"{path}: no C source files")
    cc = _compiler()
    key = hashlib.sha256()
    for part in (cc, *CFLAGS, str(INCLUDE)):
        key.update(part.encode() + b"\0")
    for header in include.headers():
        key.update(header.read_bytes())
    for src in sources:
        key.update(src.name.encode() + b"\0" + src.read_bytes())
    cache = Path(tempfile.gettempdir()) / f"mmcheck-c-{os.getuid()}"
    cache.mkdir(mode=0o700, exist_ok=True)
    out = cache / f"{key.hexdigest()[:24]}.so"
    if out.is_file():
        return out
    tmp = cache / f"{out.stem}.{os.getpid()}.tmp.so"
    cmd = [cc, *CFLAGS, "-I", str(INCLUDE), "-o", str(tmp), *(str(s) for s in sources)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise LoadError("timeout", f"{path}: the C compiler ran longer than "
                                   f"{COMPILE_TIMEOUT:g} s") from None
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        shown = lines[:MAX_MESSAGE_LINES] + (
            [f"... {len(lines) - MAX_MESSAGE_LINES} more lines"]
            if len(lines) > MAX_MESSAGE_LINES else [])
        raise LoadError("compile", f"{path} did not compile ({' '.join(cmd[:1] + cmd[-1:])}):\n"
                        + "\n".join(shown))
    os.replace(tmp, out)
    return out


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
