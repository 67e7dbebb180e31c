"""Confinement of a sandbox worker, built from what a stock Linux kernel has.

The worker calls `enter(plan)` after it has read its configuration and BEFORE
it loads any submission code. Layers, each applied when the machine allows it
(`enter` returns the names of those in force; the report prints them):

  pid-ns      a new PID namespace: the submission is process 1 of its own
              tree, cannot see or signal the checker, and every process it
              starts (double-forked daemons too) dies with it
  net-ns      a new network namespace: no interface but a down loopback
  mount-ns    a private root: a tmpfs holding read-only binds of the system
              library folders (Python's standard library, no site-packages),
              of the submission itself, a few /dev nodes, /proc of its own PID
              namespace, and a size-limited writable /tmp; the checker, the
              specs, hidden tests and other submissions are not there at all
  ipc-ns, uts-ns
  user        run as `nobody` when the checker is root (setresuid), else in a
              user namespace of its own (user-ns), with no capabilities left
  no-new-privs, seccomp (libseccomp through `pyseccomp`: the syscalls the
              namespaces leave open: ptrace, mount, unshare, setns, bpf,
              keyctl, io_uring, perf_event_open, inet/netlink/packet sockets...)

Rlimits (memory, CPU, files, file size, process count) are set by the worker
itself (worker.apply_limits). How it works: the worker unshares the namespaces
(through the C library: Python 3.11 has no os.unshare) and forks; the child is
process 1 of the new PID namespace and serves the checker; the parent only
waits for it and exits the same way, so the checker sees one process, and
killing it (SIGKILL, the checker's only signal) kills the child through
PR_SET_PDEATHSIG, and with it the whole namespace.

Set MMCHECK_SANDBOX=plain to run with none of the namespace layers (rlimits
and seccomp stay), e.g. to compare.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
import select
import signal
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACES = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38

# statvfs f_flag bits that a remount inside a user namespace must keep (locked).
_KEPT_FLAGS = ((1, MS_RDONLY), (2, MS_NOSUID), (4, MS_NODEV), (8, MS_NOEXEC),
               (1024, MS_NOATIME), (2048, MS_NODIRATIME), (4096, MS_RELATIME))

SYSCALLS = {  # the two the C library has no wrapper for
    "x86_64": {"pivot_root": 155, "capset": 126},
    "aarch64": {"pivot_root": 41, "capset": 91},
}
NOBODY = 65534
DEV_NODES = ("null", "zero", "full", "random", "urandom")


class Unavailable(Exception):
    """A layer the machine does not allow (said in the report, not an error)."""


_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def unshare(flags: int) -> None:
    """os.unshare where Python has it (3.12), the C library's otherwise."""
    if hasattr(os, "unshare"):
        os.unshare(flags)
    else:
        _check(libc().unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int,
          data: str | None = None) -> None:
    enc = [None if s is None else os.fsencode(s) for s in (source, target, fstype, data)]
    _check(libc().mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]),
           f"mount {target}")


def _syscall(name: str, *args: object) -> None:
    number = SYSCALLS.get(platform.machine(), {}).get(name)
    if number is None:
        raise Unavailable(f"no {name} syscall number for {platform.machine()}")
    _check(libc().syscall(number, *args), name)


def _bind_ro(source: str, target: str) -> None:
    """Bind `source` read-only at `target` (recursive: a user namespace may not
    split a locked mount tree), keeping the flags the kernel locks."""
    mount(source, target, None, MS_BIND | MS_REC)
    kept = 0
    with contextlib.suppress(OSError):
        f_flag = os.statvfs(target).f_flag
        kept = sum(ms for st, ms in _KEPT_FLAGS if f_flag & st)
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | kept)


def _mountpoint(path: str, like: str) -> None:
    """An empty file or folder at `path` to bind `like` onto."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.isdir(like):
        os.makedirs(path, exist_ok=True)
    elif not os.path.exists(path):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


# -- the private root -----------------------------------------------------------


def _build_root(root: str, plan: dict) -> dict[str, str]:
    """A tmpfs at `root`, populated; returns where each submission bind ended up."""
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for path in plan["system"]:
        inside = root + path
        if os.path.islink(path):
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            os.symlink(os.readlink(path), inside)
        elif os.path.isdir(path) and not os.path.exists(inside):
            _mountpoint(inside, path)
            _bind_ro(path, inside)
    for path in plan["hide"]:  # site-packages under a system folder: empty
        with contextlib.suppress(OSError):
            mount("tmpfs", root + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, "size=4k")
    os.makedirs(root + "/dev", exist_ok=True)
    for name in DEV_NODES:
        with contextlib.suppress(OSError):
            _mountpoint(f"{root}/dev/{name}", f"/dev/{name}")
            mount(f"/dev/{name}", f"{root}/dev/{name}", None, MS_BIND)
    os.makedirs(root + "/tmp", exist_ok=True)
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
          f"size={plan['scratch_mb']}m,mode=1777")
    placed = {}
    for source, wanted in plan["binds"]:
        placed[wanted] = where = _place(root, source, wanted)
        _bind_ro(source, root + where)
    return placed


def _place(root: str, source: str, wanted: str) -> str:
    """Where a submission goes: its own path when that can be made (the reports
    then name the student's file), else /submission/NAME."""
    try:
        _mountpoint(root + wanted, source)
        return wanted
    except OSError:
        where = "/submission/" + os.path.basename(wanted.rstrip("/"))
        _mountpoint(root + where, source)
        return where


def _pivot(root: str, with_proc: bool) -> list[str]:
    layers = []
    if with_proc:
        os.makedirs(root + "/proc", exist_ok=True)
        try:
            mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
            layers.append("own-proc")
        except OSError:
            os.rmdir(root + "/proc")
    os.chdir(root)
    _syscall("pivot_root", b".", b".")
    _check(libc().umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return layers


# -- privileges -------------------------------------------------------------------


def _drop_to_nobody() -> None:
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)  # from root to not-root: capabilities cleared


def _drop_capabilities() -> None:
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this thread
    data = (ctypes.c_uint32 * 6)()
    _syscall("capset", header, data)


def _world_readable(path: str) -> bool:
    """Whether any user may reach and read `path` (every folder on the way o+x)."""
    import stat

    real = os.path.realpath(path)
    parts = [real] + [os.path.dirname(real)]
    while parts[-1] != "/":
        parts.append(os.path.dirname(parts[-1]))
    try:
        return all(os.stat(p).st_mode & stat.S_IXOTH for p in parts) and bool(
            os.stat(real).st_mode & stat.S_IROTH)
    except OSError:
        return False


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _map_self(uid: int, gid: int) -> None:
    """In a fresh user namespace: map our own ids (the only mapping allowed unprivileged)."""
    with contextlib.suppress(FileNotFoundError):
        _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1\n")
    _write("/proc/self/gid_map", f"{gid} {gid} 1\n")


# -- seccomp ----------------------------------------------------------------------

DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "mount", "umount2",
    "pivot_root", "chroot", "unshare", "setns", "keyctl", "add_key", "request_key", "bpf",
    "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "syslog", "open_by_handle_at", "name_to_handle_at", "quotactl", "lookup_dcookie",
    "vhangup", "iopl", "ioperm", "fanotify_init", "mknod", "mknodat", "open_tree",
    "move_mount", "fsopen", "fsmount", "fspick", "mount_setattr", "personality",
)
DENIED_SOCKET_FAMILIES = (2, 10, 16, 17)  # AF_INET, AF_INET6, AF_NETLINK, AF_PACKET


def _seccomp_module() -> object:
    """pyseccomp, imported while the checker's packages are still in view."""
    try:
        import pyseccomp
    except (ImportError, OSError) as e:  # pyseccomp missing, or no libseccomp.so.2
        return Unavailable(f"seccomp: {e}")
    return pyseccomp


def _seccomp(sc: Any) -> None:
    """Refuse (EPERM) what the namespaces leave open; clone3 says ENOSYS so that
    the C library falls back to clone, whose namespace flags can be inspected."""
    if isinstance(sc, Unavailable):
        raise sc
    try:
        f = sc.SyscallFilter(sc.ALLOW)
        deny = sc.ERRNO(errno.EPERM)
        for name in DENIED:
            with contextlib.suppress(Exception):  # a syscall this architecture lacks
                f.add_rule(deny, name)
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        for flag in (CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC,
                     CLONE_NEWUTS, CLONE_NEWCGROUP):
            f.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        for family in DENIED_SOCKET_FAMILIES:
            f.add_rule(sc.ERRNO(errno.EACCES), "socket", sc.Arg(0, sc.EQ, family))
        f.load()
    except (OSError, RuntimeError, ValueError) as e:
        raise Unavailable(f"seccomp: {e}") from None


# -- entering ---------------------------------------------------------------------


def enter(plan: dict | None, keep_fds: tuple[int, ...]) -> list[str]:
    """Confine this process as `plan` says (see module doc); returns the layers in
    force, and what could not be put in force as `-name (why)` entries. Forks:
    only the confined child returns; the parent waits and mirrors its end."""
    if not plan:
        return ["-all (confinement off)"]
    layers: list[str] = []
    root_user = os.geteuid() == 0
    seccomp = _seccomp_module()
    if not plan["namespaces"]:
        layers.append("-namespaces (MMCHECK_SANDBOX=plain)")
    else:
        try:
            layers += _unshare_and_fork(root_user, keep_fds)
        except (OSError, Unavailable) as e:
            layers.append(f"-namespaces ({e})")
        else:  # from here on, half-confined is not an option: errors end the worker
            plan["placed"] = _build_root(plan["root"], plan)
            layers += _pivot(plan["root"], True) + ["mount-ns"]
            _become_init(keep_fds)
    stdlib = plan["stdlib"]
    if root_user and ("mount-ns" in layers or _world_readable(stdlib)):
        _drop_to_nobody()
        layers.append("user nobody")
    elif root_user:  # root, seen by every process on the machine: never run a submission so
        raise Unavailable(
            "refusing to run a submission as root without a PID namespace: the user nobody "
            f"cannot read Python's standard library at {stdlib}, and the machine gave no "
            "namespaces (MMCHECK_SANDBOX=plain?). Run mmcheck as an unprivileged user, or on "
            "a machine that allows namespaces")
    elif "user-ns" in layers:
        _drop_capabilities()
        layers.append("no-capabilities")
    if "pid-ns" in layers:  # a change of user clears it: set it again
        libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _check(libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    layers.append("no-new-privs")
    try:
        _seccomp(seccomp)
        layers.append("seccomp")
    except Unavailable as e:
        layers.append(f"-seccomp ({e})")
    scratch = "/tmp" if "mount-ns" in layers else plan["scratch"]
    os.chdir(scratch)
    os.environ.update(HOME=scratch, TMPDIR=scratch)
    return [x for x in layers if x]


def _unshare_and_fork(root_user: bool, keep_fds: tuple[int, ...]) -> list[str]:
    """New namespaces (as root directly, else inside a new user namespace), then
    fork: the child, process 1 of the new PID namespace, returns (and forks the
    worker proper later, `_become_init`); this process only waits and mirrors."""
    if root_user:
        unshare(NAMESPACES)
        layers = ["pid-ns", "net-ns", "ipc-ns", "uts-ns"]
    else:
        uid, gid = os.geteuid(), os.getegid()
        unshare(NAMESPACES | CLONE_NEWUSER)
        _map_self(uid, gid)
        layers = ["user-ns", "pid-ns", "net-ns", "ipc-ns", "uts-ns"]
    status_r, status_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(status_w)
        _mirror(pid, status_r, keep_fds)
    os.close(status_r)
    libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    poller = select.poll()
    poller.register(status_w, select.POLLOUT)
    if any(ev & select.POLLERR for _, ev in poller.poll(0)):
        os._exit(70)  # the waiter died before the prctl: nobody would kill us
    _STATUS[0] = status_w
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    return layers


_STATUS = [-1]  # process 1's end of the pipe that tells the waiter how the worker ended


def _become_init(keep_fds: tuple[int, ...]) -> None:
    """Process 1 forks the worker proper and stays behind as the namespace's init:
    it reaps orphans (double-forked daemons end up here) and, when the worker
    ends, tells the waiter how (process 1 cannot die by a signal of its own) and
    exits, which kills everything left in the namespace."""
    pid = os.fork()
    if pid == 0:
        os.close(_STATUS[0])
        libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.setsid()  # kill(0, ...) of the submission reaches only its own tree
        return
    for fd in keep_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    _ignore_signals()
    while True:
        try:
            child, status = os.wait()
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(70)
        if child == pid:
            break
    how = f"S{os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else \
        f"E{os.waitstatus_to_exitcode(status)}"
    with contextlib.suppress(OSError):
        os.write(_STATUS[0], how.encode())
    os._exit(0)


def _ignore_signals() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE, signal.SIGQUIT,
                signal.SIGXCPU, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_IGN)


def _mirror(pid: int, status_r: int, keep_fds: tuple[int, ...]) -> None:
    """The waiter: hold nothing the checker waits on, wait for process 1, end as
    the worker did (process 1 says how; without a word, as process 1 did)."""
    for fd in keep_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    _ignore_signals()
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(70)
    os.set_blocking(status_r, False)
    try:
        word = os.read(status_r, 32).decode()
    except (OSError, UnicodeDecodeError):
        word = ""
    if word[:1] == "S" and word[1:].isdigit():
        sig = int(word[1:])
    elif word[:1] == "E" and word[1:].lstrip("-").isdigit():
        os._exit(int(word[1:]) & 0xFF)
    elif os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
    else:
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    with contextlib.suppress(OSError, ValueError):
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(128 + sig)


# -- the checker's side: what to bind ------------------------------------------------

SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin")
MAX_STAGE_BYTES = 64 << 20


def plan_for(tmpdir: str, target: str, scratch_mb: int = 16) -> dict:
    """The plan `enter` carries out for a worker whose private folder is `tmpdir`
    (made by the checker, mode 700): the submission at `target` is copied to
    `tmpdir/stage` (readable by the unprivileged user the worker becomes; a
    snapshot nobody else can change) and bound read-only at its own path."""
    import shutil
    import sysconfig

    os.chmod(tmpdir, 0o711)
    stage = os.path.join(tmpdir, "stage")
    root = os.path.join(tmpdir, "root")
    scratch = os.path.join(tmpdir, "scratch")  # the writable folder without a mount-ns
    os.mkdir(stage, 0o755)
    os.mkdir(root, 0o755)
    os.mkdir(scratch)
    os.chmod(scratch, 0o1777)
    staged = os.path.join(stage, os.path.basename(target.rstrip("/")) or "submission")
    if os.path.isdir(target):
        shutil.copytree(target, staged, symlinks=True)
    else:
        shutil.copyfile(target, staged)
    _open_up(staged)
    system = [d for d in SYSTEM_DIRS if os.path.lexists(d)]
    paths = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix})
    for key in ("stdlib", "platstdlib"):
        if not _under(paths[key], system):
            system.append(paths[key])
    hide = sorted({p for p in (paths["purelib"], paths["platlib"], "/usr/lib/python3/dist-packages",
                               "/usr/local/lib/python3/dist-packages")
                   if os.path.isdir(p) and _under(p, system)})
    return {"root": root, "system": system, "hide": hide, "scratch_mb": scratch_mb,
            "stdlib": paths["stdlib"],
            "binds": [[staged, target]], "staged": staged, "scratch": scratch,
            "namespaces": os.environ.get("MMCHECK_SANDBOX") != "plain"}


def _under(path: str, dirs: list[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == os.path.realpath(d) or real.startswith(os.path.realpath(d) + "/")
               for d in dirs)


def _open_up(path: str) -> None:
    """Folders 755, files 644, at most MAX_STAGE_BYTES in all (symlinks stay links:
    inside the private root they point into it)."""
    if os.path.isdir(path):
        walk = [(folder, dirs, files) for folder, dirs, files in os.walk(path)]
        files = [os.path.join(folder, name) for folder, _, names in walk for name in names]
        for folder, _, _ in walk:
            os.chmod(folder, 0o755)
    else:
        files = [path]
    total = 0
    for full in files:
        if os.path.islink(full):
            continue
        total += os.path.getsize(full)
        if total > MAX_STAGE_BYTES:
            raise ValueError(f"the submission is larger than {MAX_STAGE_BYTES >> 20} MiB")
        os.chmod(full, 0o644)
