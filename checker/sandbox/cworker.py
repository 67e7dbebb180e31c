"""The worker side of C submissions: a shared library as the contract's classes.

`load_c(path, module)` (worker.LOADERS["c"]) opens the library that
cloader.CLoader built, with ctypes, and returns Python classes with the
contract's names and methods made from the symbols it exports:
`BuddyAllocator` from buddy_init/alloc/free (include/mmcheck/buddy.h),
`KmemCache` from kmem_cache_create/alloc/free/shrink/destroy/slabinfo
(include/mmcheck/slab.h). Each method maps the C convention back to the
Python contract: -1 from an alloc is None, any other negative errno is
ValueError. The worker imports this module before it confines itself (the
private root holds no mmcheck), so it imports nothing of the checker.
"""

from __future__ import annotations

import os
from typing import Any

EINVAL = 22


def load_c(path: str, module_name: str) -> dict[str, type]:
    """The contract classes the shared library at `path` implements (worker side)."""
    import ctypes

    lib = ctypes.CDLL(path)
    classes: dict[str, type] = {}
    if all(hasattr(lib, f"buddy_{f}") for f in ("init", "alloc", "free")):
        classes["BuddyAllocator"] = _buddy_class(ctypes, lib)
    if all(hasattr(lib, f"kmem_cache_{f}") for f in
           ("create", "alloc", "free", "shrink", "destroy", "slabinfo")):
        classes["KmemCache"] = _slab_class(ctypes, lib)
    if not classes:
        raise ImportError(f"{os.path.basename(path)} defines neither buddy_init/buddy_alloc/"
                          "buddy_free nor the kmem_cache_* functions of "
                          "include/mmcheck/slab.h")
    return classes


def _uint(value: Any, what: str, bits: int = 64) -> int:
    """An int for an unsigned C parameter; negatives wrap as C would convert them."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, not {value!r}")
    return value & ((1 << bits) - 1)


def _buddy_class(ctypes: Any, lib: Any) -> type:
    lib.buddy_init.argtypes = [ctypes.c_ulong, ctypes.c_uint]
    lib.buddy_init.restype = None
    lib.buddy_alloc.argtypes = [ctypes.c_uint]
    lib.buddy_alloc.restype = ctypes.c_long
    lib.buddy_free.argtypes = [ctypes.c_ulong, ctypes.c_uint]
    lib.buddy_free.restype = ctypes.c_int

    class BuddyAllocator:
        """buddy.h as the contract's BuddyAllocator (one allocator per process)."""

        def __init__(self, npages: int, max_order: int = 11) -> None:
            if not isinstance(npages, int) or not isinstance(max_order, int) \
                    or npages < 1 or max_order < 1:
                raise ValueError(f"BuddyAllocator({npages!r}, {max_order!r}): no allocator")
            lib.buddy_init(npages, _uint(max_order, "max_order", 32))
            self.npages, self.max_order = npages, min(max_order, 64)

        def alloc(self, order: int) -> int | None:
            r = lib.buddy_alloc(_uint(order, "order", 32))
            if r == -1:
                return None
            if r < 0:
                raise ValueError(f"buddy_alloc({order}) returned {r}")
            return r

        def free(self, pfn: int, order: int) -> None:
            r = lib.buddy_free(_uint(pfn, "pfn"), _uint(order, "order", 32))
            if r != 0:
                raise ValueError(f"buddy_free({pfn}, {order}) returned {r}")

    if hasattr(lib, "buddy_free_area"):  # optional: the free lists, when it shows them
        lib.buddy_free_area.argtypes = [ctypes.c_uint, ctypes.POINTER(ctypes.c_ulong),
                                        ctypes.c_ulong]
        lib.buddy_free_area.restype = ctypes.c_long

        def free_area(self: Any) -> list[list[int]]:
            return [_free_list(ctypes, lib, order, self.npages)
                    for order in range(self.max_order)]

        BuddyAllocator.free_area = free_area  # type: ignore[attr-defined]
    return BuddyAllocator


def _free_list(ctypes: Any, lib: Any, order: int, npages: int) -> list[int]:
    """buddy_free_area(order) as a list: asked once more, with room for all of them,
    when the first buffer was too small; a count no memory of npages pages holds, or
    one that grows between the two calls, is a lie."""
    room = 64
    for _ in range(2):
        buf = (ctypes.c_ulong * room)()
        n = lib.buddy_free_area(order, buf, room)
        if n < 0 or n > npages:
            break
        if n <= room:
            return list(buf[:n])
        room = n
    raise ValueError(f"buddy_free_area({order}) returned {n}")


def _slab_class(ctypes: Any, lib: Any) -> type:
    fields = ("active_objs", "num_objs", "objsize", "objperslab", "pagesperslab",
              "active_slabs", "num_slabs")

    class SlabInfo(ctypes.Structure):
        _fields_ = [(f, ctypes.c_ulong) for f in fields]

    alloc_pages_t = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_uint)
    free_pages_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_ulong, ctypes.c_uint)
    lib.kmem_cache_create.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_ulong,
                                      alloc_pages_t, free_pages_t]
    lib.kmem_cache_create.restype = ctypes.c_void_p
    for name, restype, extra in (("alloc", ctypes.c_long, []),
                                 ("free", ctypes.c_int, [ctypes.c_ulong]),
                                 ("shrink", ctypes.c_long, []),
                                 ("destroy", ctypes.c_int, []),
                                 ("slabinfo", ctypes.c_int, [ctypes.POINTER(SlabInfo)])):
        fn = getattr(lib, f"kmem_cache_{name}")
        fn.argtypes = [ctypes.c_void_p, *extra]
        fn.restype = restype

    class KmemCache:
        """slab.h as the contract's KmemCache."""

        def __init__(self, name: str, size: int, align: int, pages: Any) -> None:
            def alloc_pages(order: int) -> int:
                try:
                    pfn = pages.alloc_pages(order)
                except Exception:  # noqa: BLE001 - C cannot receive an exception
                    return -EINVAL
                return -1 if pfn is None else pfn

            def free_pages(pfn: int, order: int) -> int:
                try:
                    pages.free_pages(pfn, order)
                except Exception:  # noqa: BLE001 - refused: the audit recorded why
                    return -EINVAL
                return 0

            # Kept referenced for the cache's life: C holds the function pointers.
            self._callbacks = (alloc_pages_t(alloc_pages), free_pages_t(free_pages))
            self._cache = lib.kmem_cache_create(
                str(name).encode(), _uint(size, "size"), _uint(align, "align"),
                *self._callbacks)
            if not self._cache:
                raise ValueError(f"kmem_cache_create({name!r}, {size!r}, {align!r}) "
                                 "returned NULL")

        def _live(self, op: str) -> int:
            if not self._cache:
                raise ValueError(f"{op}: the cache was destroyed")
            return self._cache

        def alloc(self) -> int | None:
            r = lib.kmem_cache_alloc(self._live("alloc"))
            if r == -1:
                return None
            if r < 0:
                raise ValueError(f"kmem_cache_alloc returned {r}")
            return r

        def free(self, addr: int) -> None:
            r = lib.kmem_cache_free(self._live("free"), _uint(addr, "addr"))
            if r != 0:
                raise ValueError(f"kmem_cache_free({addr}) returned {r}")

        def shrink(self) -> int:
            r = lib.kmem_cache_shrink(self._live("shrink"))
            if r < 0:
                raise ValueError(f"kmem_cache_shrink returned {r}")
            return r

        def destroy(self) -> None:
            r = lib.kmem_cache_destroy(self._live("destroy"))
            if r != 0:
                raise ValueError(f"kmem_cache_destroy returned {r}")
            self._cache = None

        def slabinfo(self) -> dict[str, int]:
            info = SlabInfo()
            r = lib.kmem_cache_slabinfo(self._live("slabinfo"), ctypes.byref(info))
            if r != 0:
                raise ValueError(f"kmem_cache_slabinfo returned {r}")
            return {f: getattr(info, f) for f in fields}

    return KmemCache
