"""The reference slab allocator: Linux's SLAB (mm/slab.c, 2.6) for one node.

`KmemCache` implements the contract's `KmemCache` (docs/contract.md) and
follows mm/slab.c name by name, so it can be read next to the kernel:

    KmemCache(...)       kmem_cache_create: objsize = ALIGN(size, align);
                         management off the slab when objsize >= PAGE_SIZE/8
                         (CFLGS_OFF_SLAB), calculate_slab_order picks gfporder
                         and num, the left-over bytes give `colour` offsets of
                         `colour_off` each; enable_cpucache sets the per-CPU
                         array_cache's limit and batchcount
    alloc()              ____cache_alloc: pop the per-CPU array_cache (LIFO);
                         when empty, cache_alloc_refill moves up to batchcount
                         objects from slabs_partial, then slabs_free, and calls
                         cache_grow (pages from `pages.alloc_pages(gfporder)`)
                         when both are empty
    free(addr)           __cache_free: push on the array_cache; when it is full
                         cache_flusharray gives the oldest batchcount objects
                         back to their slabs (free_block), which destroys a slab
                         that becomes free while free_objects > free_limit
    shrink()             kmem_cache_shrink: drain_cpu_caches, then
                         drain_freelist: every slab on slabs_free goes back
    destroy()            kmem_cache_destroy: refused while objects are live
    slabinfo()           one /proc/slabinfo row (s_show), as the contract
                         counts it; `proc_slabinfo()` renders the text line

A slab (`Slab`, struct slab) is one block of 2**gfporder pages from `pages`:
`s_mem` is the address of object 0, after the slab's colour offset and, when
management is on the slab, after struct slab and its kmem_bufctl_t array;
object i is at s_mem + i * objsize, and the free objects form the chain
free -> bufctl[free] -> ... -> BUFCTL_END. Every page of a slab maps back to it
(page->lru.prev, virt_to_slab).

What the contract fixes and Linux does otherwise (the contract wins):
- objsize is size rounded up to align (Linux first rounds to a word, too);
- free() of an address that is not a live object raises ValueError (Linux
  without CONFIG_DEBUG_SLAB corrupts its lists);
- destroy() while objects are live raises and changes nothing (Linux would
  first give back the free slabs);
- slabinfo's active_objs and active_slabs count live objects only (Linux
  also counts the objects sitting in array caches, which are allocated to
  their slab but free to the user);
- a cache whose objects fit in no slab of order <= KMALLOC_MAX_ORDER is
  refused with ValueError (Linux's kmem_cache_create fails too).

Debugging (`debug=True`) is done as SLUB does it (mm/slub.c, SLAB_RED_ZONE |
SLAB_POISON): each slot holds the object, then a red zone of at least one
word up to the slot's end, 0xcc (SLUB_RED_ACTIVE) while the object is live,
0xbb (SLUB_RED_INACTIVE) while it is free; a free object's bytes are 0x6b
(POISON_FREE) ending in 0xa5 (POISON_END). `write(addr, length)` is a user
store into slab memory, so a spec can see what an overrun or a use after free
leaves behind (`debug_broken`).

Off-slab management (struct slab and its bufctl array) lives in the model,
not in a kmalloc cache as in Linux: it takes no pages from `pages`.

Left out, because one node with its own CPU caches has no use for them: the
shared array cache, alien caches, NUMA, the cache_reap timer, SLAB_DESTROY_BY_RCU.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from mmcheck.model.linux import PAGE_SIZE
from mmcheck.model.vocabulary import Operation, Record, Snapshot, StateVar, Vocabulary

__all__ = [
    "VOCABULARY",
    "KmemCache",
    "Obj",
    "PageEvent",
    "SlabInfo",
    "SlabRec",
    "cache_estimate",
    "calculate_slab_order",
    "make_snapshot",
]

BYTES_PER_WORD = 8
CACHE_LINE_SIZE = 64  # cache_line_size() on x86_64
SIZEOF_STRUCT_SLAB = 48  # list_head, colouroff, s_mem, inuse, free, nodeid: x86_64, padded
SIZEOF_BUFCTL = 4  # kmem_bufctl_t is an unsigned int
BUFCTL_END = 0xFFFFFFFF
SLAB_LIMIT = BUFCTL_END - 3
KMALLOC_MAX_ORDER = 10  # MAX_ORDER - 1: the largest block the page allocator gives
BREAK_GFP_ORDER_HI = 1  # slab_break_gfp_order on a machine with more than 32 MiB
BATCHREFILL_LIMIT = 16
POISON_FREE = 0x6B
POISON_END = 0xA5
SLUB_RED_INACTIVE = 0xBB
SLUB_RED_ACTIVE = 0xCC


def ALIGN(x: int, a: int) -> int:  # noqa: N802 - the kernel's macro
    """x rounded up to a multiple of a (a power of two)."""
    return (x + a - 1) & ~(a - 1)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class PageProvider(Protocol):
    """The contract's `pages`: where a cache takes its slabs from."""

    def alloc_pages(self, order: int) -> int | None: ...

    def free_pages(self, pfn: int, order: int) -> None: ...


# ---------------------------------------------------------------- sizing


def slab_mgmt_size(nr_objs: int, align: int) -> int:
    """slab_mgmt_size: struct slab and its kmem_bufctl_t array, aligned."""
    return ALIGN(SIZEOF_STRUCT_SLAB + nr_objs * SIZEOF_BUFCTL, align)


def cache_estimate(gfporder: int, objsize: int, align: int, off_slab: bool) -> tuple[int, int]:
    """cache_estimate: (num, left_over) for a slab of 2**gfporder pages.

    Off the slab, every byte holds objects; on it, struct slab and one bufctl
    per object come first, aligned to `align`.
    """
    slab_size = PAGE_SIZE << gfporder
    if off_slab:
        nr_objs = min(slab_size // objsize, SLAB_LIMIT)
        mgmt_size = 0
    else:
        nr_objs = (slab_size - SIZEOF_STRUCT_SLAB) // (objsize + SIZEOF_BUFCTL)
        if nr_objs > 0 and slab_mgmt_size(nr_objs, align) + nr_objs * objsize > slab_size:
            nr_objs -= 1
        nr_objs = max(min(nr_objs, SLAB_LIMIT), 0)
        mgmt_size = slab_mgmt_size(nr_objs, align)
    return nr_objs, slab_size - nr_objs * objsize - mgmt_size


def calculate_slab_order(objsize: int, align: int, off_slab: bool,
                         break_order: int = BREAK_GFP_ORDER_HI) -> tuple[int, int, int]:
    """calculate_slab_order: (gfporder, num, left_over); num 0 if nothing fits.

    The smallest order that holds an object, raised while a slab wastes more
    than an eighth of itself and the order is below slab_break_gfp_order; off
    the slab, no larger than its bufctl array can index from one object.
    """
    found = (0, 0, 0)
    for gfporder in range(KMALLOC_MAX_ORDER + 1):
        num, remainder = cache_estimate(gfporder, objsize, align, off_slab)
        if not num:
            continue
        if off_slab:
            offslab_limit = (objsize - SIZEOF_STRUCT_SLAB) // SIZEOF_BUFCTL
            if num > offslab_limit and found[1]:  # Linux breaks even with nothing found
                break                               # and fails; the contract allows no failure
        found = (gfporder, num, remainder)
        if gfporder >= break_order:
            break
        if remainder * 8 <= (PAGE_SIZE << gfporder):
            break
    return found


def enable_cpucache_limit(objsize: int) -> int:
    """enable_cpucache: the array_cache limit by object size (batchcount is half)."""
    if objsize > 131072:
        return 1
    if objsize > PAGE_SIZE:
        return 8
    if objsize > 1024:
        return 24
    if objsize > 256:
        return 54
    return 120


# ---------------------------------------------------------------- structures


@dataclass
class Slab:
    """struct slab: one block of 2**order pages holding `num` objects from s_mem on."""

    pfn: int
    order: int
    colouroff: int  # bytes from the first page to s_mem
    s_mem: int
    bufctl: list[int]  # kmem_bufctl_t chain: bufctl[i] = the free object after i
    inuse: int = 0
    free: int = 0  # index of the first free object, BUFCTL_END when none
    mem: bytearray | None = None  # the slab's bytes, kept only by debug caches

    @property
    def start(self) -> int:
        return self.pfn * PAGE_SIZE

    @property
    def end(self) -> int:
        return (self.pfn + (1 << self.order)) * PAGE_SIZE


@dataclass
class ArrayCache:
    """struct array_cache: a per-CPU LIFO stack of free objects (entry[avail-1] on top)."""

    limit: int
    batchcount: int
    touched: bool = False
    entry: list[int] = field(default_factory=list)

    @property
    def avail(self) -> int:
        return len(self.entry)


class KmemList3:
    """struct kmem_list3: the node's slab lists, each an ordered set of first pfns
    (first entry = list head), and free_objects on the partial and free slabs."""

    def __init__(self, free_limit: int) -> None:
        self.slabs_partial: OrderedDict[int, None] = OrderedDict()
        self.slabs_full: OrderedDict[int, None] = OrderedDict()
        self.slabs_free: OrderedDict[int, None] = OrderedDict()
        self.free_objects = 0
        self.free_limit = free_limit
        self.free_touched = False

    def lists(self) -> tuple[tuple[str, OrderedDict[int, None]], ...]:
        return (("partial", self.slabs_partial), ("full", self.slabs_full),
                ("free", self.slabs_free))

    def list_del(self, pfn: int) -> None:
        for _, lst in self.lists():
            if lst.pop(pfn, 0) is None:
                return

    @staticmethod
    def list_add(lst: OrderedDict[int, None], pfn: int, tail: bool = False) -> None:
        lst[pfn] = None
        if not tail:
            lst.move_to_end(pfn, last=False)


# ---------------------------------------------------------------- vocabulary


class SlabRec(NamedTuple):
    """A slab as specs see it: the block [start, end) of pages it is, and its objects."""

    pfn: int
    order: int
    start: int
    end: int
    s_mem: int
    inuse: int


class Obj(NamedTuple):
    """A live object: [addr, addr + objsize) in the slab whose first pfn is `slab`;
    `next` is the lowest live object address above addr (-1 if none)."""

    addr: int
    slab: int
    next: int


class SlabInfo(NamedTuple):
    """One /proc/slabinfo row, as the cache's slabinfo() reports it."""

    active_objs: int
    num_objs: int
    objsize: int
    objperslab: int
    pagesperslab: int
    active_slabs: int
    num_slabs: int


class PageEvent(NamedTuple):
    """A request to `pages` made during the last step: op 0 = alloc_pages, 1 = free_pages;
    pfn -1 when alloc_pages gave nothing; ok false when free_pages refused it."""

    op: int
    pfn: int
    order: int
    ok: bool


class MgmtRec(NamedTuple):
    """White box: struct slab of the reference, with the list it is on (0 partial,
    1 full, 2 free), its first free index, the length of its free chain, and how
    many of its objects the live set and the array caches hold."""

    pfn: int
    s_mem: int
    colouroff: int
    inuse: int
    num: int
    free: int
    chain: int
    on_list: int
    live_objs: int
    cached_objs: int


class CachedObj(NamedTuple):
    """White box: an object in a per-CPU array cache, entry `pos` of CPU `cpu`;
    `live` if the user also holds it (it must not)."""

    addr: int
    slab: int
    cpu: int
    pos: int
    live: bool


class DebugObj(NamedTuple):
    """Debug caches: an object slot's bytes. `poison_bad` counts bytes of a free
    object that differ from 0x6b..0x6b 0xa5; `redzone_bad` counts red-zone bytes
    that differ from 0xcc (live) or 0xbb (free)."""

    addr: int
    live: bool
    poison_bad: int
    redzone_bad: int


ON_LIST = {"partial": 0, "full": 1, "free": 2}

# What the checker's audit of `pages` shows, in the slab and kmalloc vocabularies alike.
PAGE_EVENT = Record(
    "PageEvent", (("op", "int"), ("pfn", "int"), ("order", "int"), ("ok", "bool")),
    doc="A call to `pages` during the last step: op 0 alloc_pages (pfn -1: refused), "
        "op 1 free_pages (ok false: refused, the block was not held).")
PAGE_AUDIT = (
    StateVar("page_events", "list[PageEvent]",
             doc="The calls to `pages` the last step made, in order."),
    StateVar("bad_page_frees", "int",
             doc="free_pages calls so far that `pages` refused (a block not held)."),
)


def snapshot_of(values: dict[str, object]) -> Snapshot:
    """A Snapshot of values computed already."""
    return Snapshot({k: (lambda v=v: v) for k, v in values.items()})

VOCABULARY = Vocabulary(
    subsystem="slab",
    doc="One SLAB cache (kmem_cache) of objects of `size` bytes aligned to `align`, "
        "taking its slabs from a buddy page allocator of `npages` pages.",
    records=(
        Record("Slab", (("pfn", "int"), ("order", "int"), ("start", "int"), ("end", "int"),
                        ("s_mem", "int"), ("inuse", "int")),
               doc="A block of 2**order pages the cache holds from `pages`, as one slab: "
                   "bytes start..end; s_mem the address of its first object slot (on a "
                   "submission: the lowest slot its objects imply); inuse its live objects."),
        Record("Obj", (("addr", "int"), ("slab", "int"), ("next", "int")),
               doc="A live object (returned by alloc, not freed): bytes addr..addr+objsize, "
                   "in the held slab whose first pfn is `slab` (-1 if none holds it); next "
                   "is the lowest live object address above addr (-1 if none)."),
        Record("SlabInfo", (("active_objs", "int"), ("num_objs", "int"), ("objsize", "int"),
                            ("objperslab", "int"), ("pagesperslab", "int"),
                            ("active_slabs", "int"), ("num_slabs", "int")),
               doc="The /proc/slabinfo row the cache reports (slabinfo())."),
        PAGE_EVENT,
        Record("Mgmt", (("pfn", "int"), ("s_mem", "int"), ("colouroff", "int"),
                        ("inuse", "int"), ("num", "int"), ("free", "int"), ("chain", "int"),
                        ("on_list", "int"), ("live_objs", "int"), ("cached_objs", "int")),
               doc="White box (reference only): struct slab, the list it is on (0 partial, "
                   "1 full, 2 free), its free index and free-chain length, and how many "
                   "of its objects are live and how many sit in array caches."),
        Record("CachedObj", (("addr", "int"), ("slab", "int"), ("cpu", "int"), ("pos", "int"),
                             ("live", "bool")),
               doc="White box (reference only): an object in a per-CPU array_cache "
                   "(live: the user holds it too)."),
        Record("DebugObj", (("addr", "int"), ("live", "bool"), ("poison_bad", "int"),
                            ("redzone_bad", "int")),
               doc="Debug caches (reference only): bytes of an object slot that break "
                   "the poison (free objects) or red-zone pattern."),
    ),
    state=(
        StateVar("size", "int", doc="The object size the cache was created with."),
        StateVar("align", "int", doc="The alignment the cache was created with."),
        StateVar("objsize", "int", doc="size rounded up to align: the contract's objsize."),
        StateVar("npages", "int", doc="Pages the page allocator `pages` manages."),
        StateVar("destroyed", "bool", doc="destroy() succeeded."),
        StateVar("slabs", "set[Slab]", doc="The blocks the cache holds from `pages` now "
                                           "(the checker's audit of alloc_pages/free_pages)."),
        StateVar("objects", "set[Obj]", doc="The live objects: returned by alloc, not freed."),
        StateVar("info", "SlabInfo", doc="What slabinfo() reported after the last step "
                                         "(all zero after destroy)."),
        *PAGE_AUDIT,
        StateVar("mgmt", "set[Mgmt]", doc="White box: the reference's struct slabs "
                                          "(empty on a submission)."),
        StateVar("num", "int", doc="White box: kmem_cache num, objects per slab (0 on a "
                                   "submission)."),
        StateVar("gfporder", "int", doc="White box: kmem_cache gfporder (0 on a submission)."),
        StateVar("colour", "int", doc="White box: colours (0 on a submission)."),
        StateVar("colour_off", "int", doc="White box: bytes per colour (0 on a submission)."),
        StateVar("slab_size", "int", doc="White box: bytes of management on each slab "
                                         "(0 when off the slab, and on a submission)."),
        StateVar("free_objects", "int", doc="White box: kmem_list3 free_objects."),
        StateVar("nr_partial", "int", doc="White box: length of slabs_partial."),
        StateVar("array_limit", "int", doc="White box: array_cache limit."),
        StateVar("cached", "set[CachedObj]", doc="White box: the objects in array caches."),
        StateVar("debug", "bool", doc="White box: the reference cache keeps red zones and "
                                      "poison (SLUB debug); false on a submission."),
        StateVar("debug_broken", "set[DebugObj]",
                 doc="Debug caches only: the object slots whose poison or red zone is "
                     "broken."),
    ),
    operations=(
        Operation("alloc", (), returns="int?", raises=("ValueError",),
                  doc="The address of a free object, now live; none only when `pages` "
                      "refused a page."),
        Operation("free", (("addr", "int"),), returns="none", raises=("ValueError",),
                  doc="Give back a live object; ValueError for any other address."),
        Operation("shrink", (), returns="int", raises=("ValueError",),
                  doc="Give every completely free slab back to `pages`; how many pages."),
        Operation("destroy", (), returns="none", raises=("ValueError",),
                  doc="Give every page back; ValueError while objects are live."),
        Operation("write", (("addr", "int"), ("length", "int")), returns="none",
                  raises=("ValueError",),
                  doc="Debug caches of the reference only: the user stores `length` "
                      "zero bytes at addr (slab memory only)."),
    ),
)


def make_snapshot(*, size: int, align: int, objsize: int, npages: int, destroyed: bool,
                  held: dict[int, int], live: dict[int, int], s_mem: dict[int, int],
                  info: SlabInfo, page_events: Sequence[PageEvent], bad_page_frees: int,
                  white: dict[str, object] | None = None) -> Snapshot:
    """The vocabulary from plain data, for the reference and a submission alike.

    `held` maps first pfn -> order of each block held from `pages`; `live` maps
    each live object's address -> the first pfn of the held block holding it
    (-1 if none); `s_mem` the first slot address of each held block. `white`
    fills the white-box names (left empty/zero for a submission).
    """
    inuse: dict[int, int] = {}
    for slab in live.values():
        inuse[slab] = inuse.get(slab, 0) + 1
    slabs = frozenset(
        SlabRec(pfn, order, pfn * PAGE_SIZE, (pfn + (1 << order)) * PAGE_SIZE,
                s_mem.get(pfn, pfn * PAGE_SIZE), inuse.get(pfn, 0))
        for pfn, order in held.items())
    order = sorted(live)
    above = dict(zip(order, [*order[1:], -1]))  # noqa: B905 - one longer when empty
    objects = frozenset(Obj(addr, slab, above[addr]) for addr, slab in live.items())
    w: dict[str, object] = {"mgmt": frozenset(), "num": 0, "gfporder": 0, "colour": 0,
                            "colour_off": 0, "slab_size": 0, "free_objects": 0, "nr_partial": 0,
                            "array_limit": 0, "cached": frozenset(),
                            "debug": False, "debug_broken": frozenset()}
    w.update(white or {})
    values: dict[str, object] = {
        "size": size, "align": align, "objsize": objsize, "npages": npages,
        "destroyed": destroyed, "slabs": slabs, "objects": objects, "info": info,
        "page_events": list(page_events), "bad_page_frees": bad_page_frees, **w}
    return snapshot_of(values)


def holding_slab(held: dict[int, int], addr: int) -> int:
    """The first pfn of the held block that holds byte `addr`, or -1."""
    pfn = addr // PAGE_SIZE
    for order in range(KMALLOC_MAX_ORDER + 1):
        head = pfn >> order << order
        if held.get(head) == order:
            return head
    return next((p for p, o in held.items() if p <= pfn < p + (1 << o)), -1)


ZERO_INFO = SlabInfo(0, 0, 0, 0, 0, 0, 0)


# ---------------------------------------------------------------- the cache


class KmemCache:
    """struct kmem_cache: one cache of `size`-byte objects aligned to `align`."""

    def __init__(self, name: str, size: int, align: int, pages: PageProvider, *,
                 debug: bool = False, ncpus: int = 1,
                 break_order: int = BREAK_GFP_ORDER_HI) -> None:
        if not _is_int(size) or size < 1:
            raise ValueError(f"kmem_cache_create({name!r}): size {size!r} is not >= 1")
        if not _is_int(align) or align < 1 or align & (align - 1):
            raise ValueError(f"kmem_cache_create({name!r}): align {align!r} is not a "
                             f"power of two")
        self.name = name
        self.size = size
        self.align = align
        self.pages = pages
        self.debug = debug
        self._poison = bytes((POISON_FREE,)) * (size - 1) + bytes((POISON_END,))
        slot = ALIGN(ALIGN(size, BYTES_PER_WORD) + BYTES_PER_WORD, align) if debug else size
        self.objsize = ALIGN(slot, align)  # buffer_size
        off_slab = self.objsize >= PAGE_SIZE >> 3
        self.gfporder, self.num, left_over = calculate_slab_order(
            self.objsize, align, off_slab, break_order)
        if not self.num:
            raise ValueError(f"kmem_cache_create({name!r}): an object of {self.objsize} bytes "
                             f"fits in no slab of order <= {KMALLOC_MAX_ORDER}")
        slab_size = slab_mgmt_size(self.num, align)
        if off_slab and left_over >= slab_size:
            off_slab, left_over = False, left_over - slab_size
        self.off_slab = off_slab
        self.slab_size = 0 if off_slab else slab_size
        self.colour_off = max(CACHE_LINE_SIZE, align)
        self.colour = left_over // self.colour_off
        self.colour_next = 0
        limit = enable_cpucache_limit(self.objsize)
        self.array = [ArrayCache(limit, (limit + 1) // 2) for _ in range(ncpus)]
        self.cpu = 0  # smp_processor_id() of the running task
        self.l3 = KmemList3((1 + ncpus) * self.array[0].batchcount + self.num)
        self.slabs: dict[int, Slab] = {}  # first pfn -> slab
        self.page_slab: dict[int, Slab] = {}  # every pfn of a slab -> it (virt_to_slab)
        self.live: set[int] = set()
        self.pages_freed = 0  # pages given back to `pages` so far
        self.destroyed = False

    def __repr__(self) -> str:
        return (f"KmemCache({self.name!r}, objsize={self.objsize}, num={self.num}, "
                f"gfporder={self.gfporder}, slabs={len(self.slabs)}, live={len(self.live)})")

    def _check_alive(self, op: str) -> None:
        if self.destroyed:
            raise ValueError(f"{op}: cache {self.name!r} was destroyed")

    # ---- growing and destroying slabs ---------------------------------------------

    def _cache_grow(self) -> bool:
        """cache_grow: one new slab from `pages`, on slabs_free; False if pages refused.

        The slab takes the next colour (colour_next, wrapping at colour), its
        management (on the slab) after the colour, and its bufctl chain links
        every object in order: 0 -> 1 -> ... -> num-1 -> BUFCTL_END.
        """
        offset = self.colour_next * self.colour_off
        self.colour_next += 1
        if self.colour_next >= self.colour:
            self.colour_next = 0
        pfn = self.pages.alloc_pages(self.gfporder)  # kmem_getpages
        if pfn is None:
            return False
        colouroff = offset + self.slab_size  # alloc_slabmgmt
        start = pfn * PAGE_SIZE
        slab = Slab(pfn, self.gfporder, colouroff, start + colouroff,
                    [*range(1, self.num), BUFCTL_END])  # cache_init_objs
        if self.debug:
            slab.mem = bytearray(PAGE_SIZE << self.gfporder)
            for i in range(self.num):
                self._init_object(slab, slab.s_mem + i * self.objsize, active=False)
        self.slabs[pfn] = slab
        for p in range(pfn, pfn + (1 << self.gfporder)):  # slab_map_pages
            self.page_slab[p] = slab
        self.l3.list_add(self.l3.slabs_free, pfn, tail=True)
        self.l3.free_objects += self.num
        return True

    def _slab_destroy(self, slab: Slab) -> None:
        """slab_destroy: unlink the slab and give its pages back (kmem_freepages)."""
        self.l3.list_del(slab.pfn)
        del self.slabs[slab.pfn]
        for p in range(slab.pfn, slab.pfn + (1 << slab.order)):
            del self.page_slab[p]
        self.pages.free_pages(slab.pfn, slab.order)
        self.pages_freed += 1 << slab.order

    # ---- objects in a slab ----------------------------------------------------------

    def _slab_get_obj(self, slab: Slab) -> int:
        """slab_get_obj: take the head of the slab's free chain."""
        objp = slab.s_mem + slab.free * self.objsize  # index_to_obj
        slab.inuse += 1
        slab.free = slab.bufctl[slab.free]
        return objp

    def _slab_put_obj(self, slab: Slab, objp: int) -> None:
        """slab_put_obj: push the object on the head of the slab's free chain."""
        objnr = (objp - slab.s_mem) // self.objsize  # obj_to_index
        slab.bufctl[objnr] = slab.free
        slab.free = objnr
        slab.inuse -= 1

    def _virt_to_slab(self, objp: int) -> Slab | None:
        return self.page_slab.get(objp // PAGE_SIZE)

    # ---- alloc ----------------------------------------------------------------------

    def alloc(self) -> int | None:
        """kmem_cache_alloc: a free object's address, now live; None when `pages` refused."""
        self._check_alive("alloc")
        ac = self.array[self.cpu]
        if ac.entry:  # ____cache_alloc
            ac.touched = True
            objp = ac.entry.pop()
        else:
            objp = self._cache_alloc_refill(ac)
            if objp is None:
                return None
        self.live.add(objp)
        if self.debug:
            self._check_and_init(objp, active=True)
        return objp

    def _cache_alloc_refill(self, ac: ArrayCache) -> int | None:
        """cache_alloc_refill: up to batchcount objects from partial then free slabs
        into the array cache; cache_grow when there are none; pop the top."""
        while True:
            batchcount = ac.batchcount
            if not ac.touched and batchcount > BATCHREFILL_LIMIT:
                batchcount = BATCHREFILL_LIMIT
            l3 = self.l3
            while batchcount > 0:
                lst = l3.slabs_partial
                if not lst:
                    l3.free_touched = True
                    lst = l3.slabs_free
                    if not lst:
                        break  # must_grow
                slab = self.slabs[next(iter(lst))]
                while slab.inuse < self.num and batchcount > 0:
                    ac.entry.append(self._slab_get_obj(slab))
                    batchcount -= 1
                l3.list_del(slab.pfn)
                l3.list_add(l3.slabs_full if slab.free == BUFCTL_END else l3.slabs_partial,
                            slab.pfn)
            l3.free_objects -= ac.avail
            if ac.entry:
                break
            if not self._cache_grow():
                return None
        ac.touched = True
        return ac.entry.pop()

    # ---- free -----------------------------------------------------------------------

    def free(self, addr: int) -> None:
        """kmem_cache_free: the live object at addr goes on the array cache.

        ValueError, with nothing changed, for an address that is not a live
        object of this cache: not in any slab, not at an object boundary
        (check_valid_pointer), or free already (a double free).
        """
        self._check_alive("free")
        slab = self._virt_to_slab(addr) if _is_int(addr) else None
        if slab is None:
            raise ValueError(f"free({addr!r}): not an address in a slab of cache {self.name!r}")
        offset = addr - slab.s_mem
        if offset < 0 or offset % self.objsize or offset // self.objsize >= self.num:
            raise ValueError(f"free({addr:#x}): not the start of an object of the slab at "
                             f"pfn {slab.pfn} (objects at {slab.s_mem:#x} + "
                             f"k * {self.objsize}, k < {self.num})")
        if addr not in self.live:
            raise ValueError(f"free({addr:#x}): object already free (a double free)")
        if self.debug:
            self._check_and_init(addr, active=False)
        self.live.discard(addr)
        ac = self.array[self.cpu]
        if ac.avail >= ac.limit:  # __cache_free
            self._cache_flusharray(ac)
        ac.entry.append(addr)

    def _cache_flusharray(self, ac: ArrayCache) -> None:
        """cache_flusharray: the oldest batchcount entries go back to their slabs."""
        batchcount = min(ac.batchcount, ac.avail)
        self._free_block(ac.entry[:batchcount])
        del ac.entry[:batchcount]

    def _free_block(self, objpp: list[int]) -> None:
        """free_block: each object back on its slab's chain, the slab on the right list;
        a slab that becomes free is destroyed while free_objects > free_limit."""
        l3 = self.l3
        for objp in objpp:
            slab = self._virt_to_slab(objp)
            assert slab is not None, f"free_block: {objp:#x} is in no slab"
            l3.list_del(slab.pfn)
            self._slab_put_obj(slab, objp)
            l3.free_objects += 1
            if slab.inuse == 0:
                if l3.free_objects > l3.free_limit:
                    l3.free_objects -= self.num
                    self._slab_destroy(slab)
                else:
                    l3.list_add(l3.slabs_free, slab.pfn)
            else:
                l3.list_add(l3.slabs_partial, slab.pfn, tail=True)

    # ---- shrink and destroy ---------------------------------------------------------

    def _drain_cpu_caches(self) -> None:
        """drain_cpu_caches: every array cache's objects back to their slabs."""
        for ac in self.array:
            self._free_block(ac.entry)
            ac.entry.clear()

    def _drain_freelist(self) -> None:
        """drain_freelist: destroy every slab on slabs_free."""
        while self.l3.slabs_free:
            slab = self.slabs[next(reversed(self.l3.slabs_free))]  # from the tail
            self.l3.free_objects -= self.num
            self._slab_destroy(slab)

    def shrink(self) -> int:
        """kmem_cache_shrink: every completely free slab back to `pages`; how many pages,
        counting those free_block gave back while the array caches drained."""
        self._check_alive("shrink")
        before = self.pages_freed
        self._drain_cpu_caches()
        self._drain_freelist()
        return self.pages_freed - before

    def destroy(self) -> None:
        """kmem_cache_destroy: every page back; ValueError (nothing changed) while
        objects are live; every later call raises ValueError."""
        self._check_alive("destroy")
        if self.live:
            raise ValueError(f"kmem_cache_destroy({self.name!r}): {len(self.live)} object(s) "
                             f"still live, e.g. {min(self.live):#x}")
        self.shrink()
        assert not self.slabs, "kmem_cache_destroy: slabs left with no live object"
        self.destroyed = True

    # ---- /proc/slabinfo ---------------------------------------------------------------

    def slabinfo(self) -> dict[str, int]:
        """The /proc/slabinfo row (s_show) with the contract's counts."""
        self._check_alive("slabinfo")
        active: set[int] = set()
        for addr in self.live:
            slab = self._virt_to_slab(addr)
            assert slab is not None
            active.add(slab.pfn)
        return {"active_objs": len(self.live), "num_objs": len(self.slabs) * self.num,
                "objsize": self.objsize, "objperslab": self.num,
                "pagesperslab": 1 << self.gfporder, "active_slabs": len(active),
                "num_slabs": len(self.slabs)}

    def proc_slabinfo(self) -> str:
        """The line /proc/slabinfo (version 2.1) shows for this cache."""
        i = self.slabinfo()
        ac = self.array[0]
        return (f"{self.name:<17} {i['active_objs']:6d} {i['num_objs']:6d} {i['objsize']:6d} "
                f"{i['objperslab']:4d} {i['pagesperslab']:4d} : tunables {ac.limit:4d} "
                f"{ac.batchcount:4d} {0:4d} : slabdata {i['active_slabs']:6d} "
                f"{i['num_slabs']:6d} {0:6d}\n")

    # ---- debug: red zones and poison (SLUB's layout) -------------------------------

    def _init_object(self, slab: Slab, objp: int, active: bool) -> None:
        """init_object: poison a free object, and paint its red zone 0xcc or 0xbb."""
        assert slab.mem is not None
        off = objp - slab.start
        if not active:
            slab.mem[off:off + self.size - 1] = bytes((POISON_FREE,)) * (self.size - 1)
            slab.mem[off + self.size - 1] = POISON_END
        red = SLUB_RED_ACTIVE if active else SLUB_RED_INACTIVE
        slab.mem[off + self.size:off + self.objsize] = bytes((red,)) * (self.objsize - self.size)

    def _check_and_init(self, objp: int, active: bool) -> None:
        """Repaint the red zone for the new state (the bytes a user broke stay broken
        until then, so a spec sees them at the step after the store)."""
        slab = self._virt_to_slab(objp)
        assert slab is not None
        self._init_object(slab, objp, active)

    def debug_state(self, objp: int) -> tuple[int, int]:
        """(poison_bad, redzone_bad) of the slot at objp (see DebugObj)."""
        slab = self._virt_to_slab(objp)
        assert slab is not None and slab.mem is not None
        off = objp - slab.start
        live = objp in self.live
        body = slab.mem[off:off + self.size]
        poison_bad = 0
        if not live and body != self._poison:
            poison_bad = sum(1 for a, b in zip(body, self._poison, strict=True) if a != b)
        red = SLUB_RED_ACTIVE if live else SLUB_RED_INACTIVE
        zone = slab.mem[off + self.size:off + self.objsize]
        redzone_bad = 0 if zone.count(red) == len(zone) else \
            sum(1 for b in zone if b != red)
        return poison_bad, redzone_bad

    def write(self, addr: int, length: int) -> None:
        """A user store of `length` zero bytes at addr (debug caches only).

        Nothing stops it crossing into a red zone or landing on a free object:
        that is what poisoning and red zones are there to show. ValueError for
        bytes outside the slabs (a page fault in the kernel) or a cache without
        debugging.
        """
        self._check_alive("write")
        if not self.debug:
            raise ValueError("write: only a debug cache keeps the bytes of its objects")
        slab = self._virt_to_slab(addr) if _is_int(addr) else None
        if slab is None or not _is_int(length) or length < 0 or addr + length > slab.end:
            raise ValueError(f"write({addr!r}, {length!r}): not inside one slab")
        assert slab.mem is not None
        off = addr - slab.start
        slab.mem[off:off + length] = bytes(length)

    # ---- reading the state ----------------------------------------------------------

    def holds(self) -> dict[int, int]:
        """first pfn -> order of every slab."""
        return {pfn: s.order for pfn, s in self.slabs.items()}

    def white_box(self) -> dict[str, object]:
        """The white-box names of the vocabulary."""
        on = {pfn: ON_LIST[name] for name, lst in self.l3.lists() for pfn in lst}
        cached = frozenset(
            CachedObj(addr, self.page_slab[addr // PAGE_SIZE].pfn, cpu, pos, addr in self.live)
            for cpu, ac in enumerate(self.array) for pos, addr in enumerate(ac.entry))
        in_slab = {"live": dict.fromkeys(self.slabs, 0), "cached": dict.fromkeys(self.slabs, 0)}
        for addr in self.live:
            in_slab["live"][self.page_slab[addr // PAGE_SIZE].pfn] += 1
        for c in cached:
            in_slab["cached"][c.slab] += 1
        mgmt = frozenset(
            MgmtRec(s.pfn, s.s_mem, s.colouroff, s.inuse, self.num, s.free,
                    self._chain_length(s), on.get(s.pfn, -1), in_slab["live"][s.pfn],
                    in_slab["cached"][s.pfn])
            for s in self.slabs.values())
        broken = []
        if self.debug:
            for s in self.slabs.values():
                for a in range(s.s_mem, s.s_mem + self.num * self.objsize, self.objsize):
                    bad = self.debug_state(a)
                    if bad != (0, 0):
                        broken.append(DebugObj(a, a in self.live, *bad))
        return {"mgmt": mgmt, "num": self.num, "gfporder": self.gfporder,
                "colour": self.colour, "colour_off": self.colour_off,
                "slab_size": self.slab_size,
                "free_objects": self.l3.free_objects, "nr_partial": len(self.l3.slabs_partial),
                "array_limit": self.array[0].limit, "cached": cached,
                "debug": self.debug, "debug_broken": frozenset(broken)}

    def _chain_length(self, slab: Slab) -> int:
        """Objects on the free chain, following bufctl (stops at num + 1: a loop)."""
        n, i = 0, slab.free
        while i != BUFCTL_END and n <= self.num:
            n += 1
            i = slab.bufctl[i] if 0 <= i < self.num else BUFCTL_END
        return n

    def info(self) -> SlabInfo:
        return ZERO_INFO if self.destroyed else SlabInfo(**self.slabinfo())

    def snapshot(self, page_events: Sequence[PageEvent] = (), bad_page_frees: int = 0,
                 npages: int = 0, held: dict[int, int] | None = None) -> Snapshot:
        """The vocabulary's state now. The page events, refused frees and the blocks
        held come from the caller's audit of `pages` (held defaults to the slabs)."""
        held = self.holds() if held is None else held
        live = {a: self.page_slab[a // PAGE_SIZE].pfn for a in self.live}
        return make_snapshot(size=self.size, align=self.align, objsize=self.objsize,
                             npages=npages, destroyed=self.destroyed, held=held, live=live,
                             s_mem={p: s.s_mem for p, s in self.slabs.items()},
                             info=self.info(), page_events=list(page_events),
                             bad_page_frees=bad_page_frees, white=self.white_box())
