"""The few system calls the live oracle makes, through ctypes on the C library.

Every call returns the kernel's answer as a value: an address or 0 on success, or
raises `OSError` with the errno, exactly as the system call set it. Nothing here
forks or touches memory on its own; `oracle.py` decides what is safe to call.
"""

from __future__ import annotations

import ctypes
import os

MAP_FAILED = ctypes.c_void_p(-1).value
PR_SET_PDEATHSIG = 1
SYS_CAPSET = 126  # x86-64
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
RUSAGE_SELF = 0

_libc = ctypes.CDLL(None, use_errno=True)  # the C library is already loaded

_mmap = _libc.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                  ctypes.c_int, ctypes.c_long]
_munmap = _libc.munmap
_munmap.restype = ctypes.c_int
_munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_mprotect = _libc.mprotect
_mprotect.restype = ctypes.c_int
_mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_prctl = _libc.prctl
_prctl.restype = ctypes.c_int
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                   ctypes.c_ulong]
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class Rusage(ctypes.Structure):
    """struct rusage; only ru_minflt and ru_majflt are read."""

    _fields_ = [("ru_utime", _Timeval), ("ru_stime", _Timeval)] + [
        (name, ctypes.c_long) for name in (
            "ru_maxrss", "ru_ixrss", "ru_idrss", "ru_isrss", "ru_minflt", "ru_majflt",
            "ru_nswap", "ru_inblock", "ru_oublock", "ru_msgsnd", "ru_msgrcv",
            "ru_nsignals", "ru_nvcsw", "ru_nivcsw")]


_getrusage = _libc.getrusage
_getrusage.restype = ctypes.c_int
_getrusage.argtypes = [ctypes.c_int, ctypes.POINTER(Rusage)]


def _raise_errno() -> None:
    err = ctypes.get_errno()
    raise OSError(err, os.strerror(err))


def mmap(addr: int, length: int, prot: int, flags: int, fd: int = -1) -> int:
    """mmap(2) with offset 0: the mapped address, or OSError."""
    # c_size_t/c_int wrap out-of-range Python ints the way C would truncate them.
    ret = _mmap(ctypes.c_void_p(addr or None), ctypes.c_size_t(length),
                ctypes.c_int(prot).value, ctypes.c_int(flags).value, fd, 0)
    if ret == MAP_FAILED:
        _raise_errno()
    return ret or 0  # ctypes gives None for address 0


def munmap(addr: int, length: int) -> None:
    """munmap(2), or OSError."""
    if _munmap(ctypes.c_void_p(addr or None), ctypes.c_size_t(length)) != 0:
        _raise_errno()


def mprotect(addr: int, length: int, prot: int) -> None:
    """mprotect(2), or OSError."""
    if _mprotect(ctypes.c_void_p(addr or None), ctypes.c_size_t(length),
                 ctypes.c_int(prot).value) != 0:
        _raise_errno()


def set_pdeathsig(sig: int) -> None:
    """prctl(PR_SET_PDEATHSIG): receive `sig` when the parent thread dies."""
    if _prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        _raise_errno()


def drop_capabilities() -> None:
    """capset(2) with empty effective, permitted and inheritable sets.

    The child then behaves as an unprivileged test process: a MAP_FIXED below
    mmap_min_addr fails with EPERM instead of mapping page 1 (CAP_SYS_RAWIO).
    """
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # two struct __user_cap_data_struct, all zero
    if _syscall(ctypes.c_long(SYS_CAPSET), header, data) != 0:
        _raise_errno()


def set_capabilities(mask: int) -> None:
    """capset(2): effective and permitted sets become `mask`, inheritable empty."""
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    lo, hi = mask & 0xFFFFFFFF, mask >> 32
    data = (ctypes.c_uint32 * 6)(lo, lo, 0, hi, hi, 0)
    if _syscall(ctypes.c_long(SYS_CAPSET), header, data) != 0:
        _raise_errno()


def getrusage_into(buf: Rusage) -> None:
    """getrusage(RUSAGE_SELF) into a preallocated struct (no Python allocation)."""
    _getrusage(RUSAGE_SELF, ctypes.byref(buf))


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_process_vm_readv = _libc.process_vm_readv
_process_vm_readv.restype = ctypes.c_ssize_t
_process_vm_writev = _libc.process_vm_writev
_process_vm_writev.restype = ctypes.c_ssize_t
for _f in (_process_vm_readv, _process_vm_writev):
    _f.argtypes = [ctypes.c_int, ctypes.POINTER(_Iovec), ctypes.c_ulong,
                   ctypes.POINTER(_Iovec), ctypes.c_ulong, ctypes.c_ulong]
_probe_buf = ctypes.create_string_buffer(1)


def vm_access(addr: int, write: bool) -> int:
    """Try a one-byte process_vm_readv/writev of our own `addr`: 0 or the errno.

    The kernel checks the VMA's flags (VM_READ for a read, VM_WRITE for a write,
    no FOLL_FORCE) before it faults anything in, so a refused access leaves no
    trace; a SIGSEGV-free way to confirm that an access is denied.
    """
    local = _Iovec(ctypes.addressof(_probe_buf), 1)
    remote = _Iovec(addr, 1)
    call = _process_vm_writev if write else _process_vm_readv
    if call(os.getpid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) == 1:
        return 0
    return ctypes.get_errno()


def read_byte(addr: int) -> int:
    """One byte loaded by the CPU from `addr` (faults as a real program would)."""
    return ctypes.c_ubyte.from_address(addr).value


def write_byte(addr: int, value: int) -> None:
    """One byte stored by the CPU to `addr`."""
    ctypes.c_ubyte.from_address(addr).value = value & 0xFF
