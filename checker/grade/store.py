"""Writing results without following anything a submission could have planted.

Every file goes through `write_atomic`: the folder is opened once with
O_NOFOLLOW|O_DIRECTORY, the data is written to a fresh temporary name created
with O_EXCL|O_NOFOLLOW inside it, and renamed over the final name. A rename
replaces a symlink at that name instead of writing through it, and a reader
never sees half a file (what makes a batch resumable after a kill).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any


class UnsafeOutput(Exception):
    """The output folder is not a plain folder of ours (a symlink, another owner's)."""


def slug(text: str) -> str:
    """A file name made of `text`: letters, digits, `._-` only, never empty or hidden."""
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_.")
    return s[:80] or "x"


def make_folder(path: Path) -> Path:
    """Create `path` (and parents) as plain folders, or check that it is one: not a
    symlink, owned by us. Returns it."""
    for p in reversed([path, *path.parents]):
        if p.exists() or p.is_symlink():
            continue
        with contextlib.suppress(FileExistsError):
            os.mkdir(p, 0o755)
    st = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path):
        raise UnsafeOutput(f"{path} is not a folder (a symlink?): refusing to write there")
    if st.st_uid != os.geteuid():
        raise UnsafeOutput(f"{path} belongs to another user: refusing to write there")
    return path


def write_atomic(folder: Path, name: str, data: Any) -> Path:
    """Write `data` (str, bytes, or anything json.dumps takes) to folder/name."""
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"not a plain file name: {name!r}")
    if isinstance(data, bytes):
        payload = data
    elif isinstance(data, str):
        payload = data.encode()
    else:
        payload = (json.dumps(data, indent=2, sort_keys=False) + "\n").encode()
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        tmp = f".{name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644,
                     dir_fd=dfd)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
    finally:
        os.close(dfd)
    return folder / name


def read_json(folder: Path, name: str) -> Any | None:
    """folder/name parsed, or None when absent or unreadable (then it is redone)."""
    try:
        dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
        with os.fdopen(fd, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None
    finally:
        os.close(dfd)
