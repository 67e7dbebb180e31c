"""The reference SLAB cache and kmalloc (model/slab.py, model/kmalloc.py) against oracles.

The oracle for sizing is brute force: the largest number of objects whose
management and bytes fit a slab. The oracle for behaviour knows only the
set of live addresses: every step of seeded random traces is checked against
what the contract says (a new object, aligned, inside a block the cache holds
from `pages`, at s_mem + k * objsize; refusals exactly for non-live addresses;
shrink gives back exactly the blocks without a live object) and against the
white-box accounting (free chains, lists, array caches, free_objects).
"""

from __future__ import annotations

import random

import pytest
from mmcheck.checker.sandbox.pages import AuditedPages
from mmcheck.model.buddy import BuddyAllocator
from mmcheck.model.kmalloc import (
    CACHE_SIZES,
    GFP_DMA,
    KMALLOC_MAX_SIZE,
    ZERO_SIZE_PTR,
    Kmalloc,
    get_order,
)
from mmcheck.model.linux import PAGE_SIZE
from mmcheck.model.slab import (
    BUFCTL_END,
    SIZEOF_BUFCTL,
    SIZEOF_STRUCT_SLAB,
    KmemCache,
    cache_estimate,
    calculate_slab_order,
)


def pages(npages: int = 256, reserve_zero: bool = False) -> AuditedPages:
    """An audited buddy allocator; with reserve_zero, pfn 0 is never given (address 0
    is NULL to kmalloc, and x86 never gives page 0 to the buddy allocator)."""
    buddy = BuddyAllocator(npages)
    if reserve_zero:
        buddy.take_block(0, 0)
    return AuditedPages(buddy)


def brute_num(order: int, objsize: int, align: int, off_slab: bool) -> int:
    """The most objects a slab of 2**order pages holds, by trying every count."""
    total = PAGE_SIZE << order
    best = 0
    for n in range(1, total // objsize + 1):
        mgmt = 0 if off_slab else -(-(SIZEOF_STRUCT_SLAB + n * SIZEOF_BUFCTL) // align) * align
        if mgmt + n * objsize <= total:
            best = n
    return best


@pytest.mark.parametrize("objsize", [8, 32, 104, 256, 520, 1000, 3000, 4096, 9000])
@pytest.mark.parametrize("align", [8, 64, 128])
def test_cache_estimate_is_the_most_that_fits(objsize: int, align: int) -> None:
    objsize = -(-objsize // align) * align
    for order in range(4):
        for off_slab in (False, True):
            num, left = cache_estimate(order, objsize, align, off_slab)
            assert num == brute_num(order, objsize, align, off_slab)
            mgmt = 0 if off_slab else -(-(SIZEOF_STRUCT_SLAB + num * SIZEOF_BUFCTL)
                                        // align) * align
            assert left == (PAGE_SIZE << order) - num * objsize - mgmt >= 0


def test_calculate_slab_order_stops_at_little_waste_or_the_break_order() -> None:
    assert calculate_slab_order(32, 8, False)[:2] == (0, brute_num(0, 32, 8, False))
    # 3000-byte objects waste 1096 of 4096 bytes at order 0 (> 1/8): order 1 holds 2.
    assert calculate_slab_order(3000, 8, False)[:2] == (1, 2)
    # 70000 bytes fit first at order 5.
    assert calculate_slab_order(70000, 8, True)[:2] == (5, 1)


def live_slot(cache: KmemCache, addr: int) -> tuple[int, int]:
    """(slab pfn, index) of a live object, checked against its slab."""
    slab = cache.page_slab[addr // PAGE_SIZE]
    offset = addr - slab.s_mem
    assert offset >= 0 and offset % cache.objsize == 0
    assert offset // cache.objsize < cache.num
    assert addr + cache.objsize <= slab.end
    return slab.pfn, offset // cache.objsize


def check_white_box(cache: KmemCache, live: set[int], audit: AuditedPages) -> None:
    """Chains, lists, array caches and counters against the live set."""
    assert cache.holds() == audit.held
    cached = [a for ac in cache.array for a in ac.entry]
    assert not set(cached) & live and len(set(cached)) == len(cached)
    lists = {name: set(lst) for name, lst in cache.l3.lists()}
    free_objects = 0
    for pfn, slab in cache.slabs.items():
        mine = [a for a in live | set(cached) if cache.page_slab[a // PAGE_SIZE] is slab]
        assert slab.inuse == len(mine) <= cache.num
        chain, i = [], slab.free
        while i != BUFCTL_END:
            chain.append(i)
            i = slab.bufctl[i]
        used = {live_slot(cache, a)[1] for a in mine}
        assert set(chain) == set(range(cache.num)) - used and len(chain) == len(set(chain))
        want = "free" if not slab.inuse else "full" if slab.inuse == cache.num else "partial"
        assert [n for n, members in lists.items() if pfn in members] == [want]
        free_objects += cache.num - slab.inuse
    assert cache.l3.free_objects == free_objects


@pytest.mark.parametrize("seed", range(12))
def test_random_traces_against_the_live_set(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.choice([1, 13, 32, 100, 250, 512, 1000, 3000, 5000])
    align = rng.choice([1, 8, 64, 4096])
    audit = pages(rng.choice([2, 8, 64]))
    cache = KmemCache("t", size, align, audit)
    assert cache.objsize == -(-size // align) * align
    live: set[int] = set()
    for _ in range(400):
        op = rng.choice(["alloc"] * 4 + ["free"] * 3 + ["bad", "shrink"])
        if op == "alloc":
            before = len(audit.events)
            addr = cache.alloc()
            if addr is None:  # only when pages refused
                assert any(e.op == "alloc" and e.pfn is None for e in audit.events[before:])
                continue
            assert addr not in live and addr % align == 0
            live_slot(cache, addr)
            live.add(addr)
        elif op == "free" and live:
            addr = rng.choice(sorted(live))
            cache.free(addr)
            live.remove(addr)
        elif op == "bad" and live:
            addr = rng.choice(sorted(live))
            if cache.objsize > 1:  # a pointer inside the object
                with pytest.raises(ValueError):
                    cache.free(addr + cache.objsize // 2)
            cache.free(addr)
            live.remove(addr)
            with pytest.raises(ValueError):
                cache.free(addr)  # a double free
        elif op == "shrink":
            held = dict(audit.held)
            holding = {cache.page_slab[a // PAGE_SIZE].pfn for a in live}
            given = cache.shrink()
            assert set(audit.held) == holding
            assert given == sum(1 << o for p, o in held.items() if p not in holding)
        check_white_box(cache, live, audit)
        info = cache.slabinfo()
        assert info["active_objs"] == len(live)
        assert info["num_objs"] == info["num_slabs"] * info["objperslab"]
        assert info["num_slabs"] == len(audit.held)
    with pytest.raises(ValueError):
        if live:
            cache.destroy()
        else:
            raise ValueError
    for addr in live:
        cache.free(addr)
    cache.destroy()
    assert audit.held == {} and not audit.refused()
    for call in (cache.alloc, cache.shrink, cache.destroy, cache.slabinfo):
        with pytest.raises(ValueError):
            call()


def test_array_cache_is_lifo_and_flushes_batchcount() -> None:
    audit = pages()
    cache = KmemCache("t", 64, 8, audit)
    a = cache.alloc()
    cache.free(a)
    assert cache.alloc() == a  # the hot object comes back first
    ac = cache.array[0]
    objs = [cache.alloc() for _ in range(ac.limit + 1)]
    avail = ac.avail  # what the last refill left
    for o in objs:
        oldest = ac.entry[:ac.batchcount]
        cache.free(o)
        if avail >= ac.limit:  # a full array: the oldest batchcount went to their slabs
            avail -= ac.batchcount
            assert not set(oldest) & set(ac.entry)
        avail += 1
        assert ac.avail == avail and ac.entry[-1] == o


def test_shrink_counts_slabs_freed_while_draining() -> None:
    """Draining the array cache can free slabs (free_objects > free_limit): shrink()
    says so too."""
    audit = pages()
    cache = KmemCache("t", 5000, 8, audit)  # one object per order-1 slab
    objs = [cache.alloc() for _ in range(40)]
    for o in objs[10:]:
        cache.free(o)
    held = sum(1 << o for o in audit.held.values())
    assert cache.shrink() == held - 10 * 2 and len(audit.held) == 10


def test_colour_offsets_cycle() -> None:
    audit = pages()
    cache = KmemCache("t", 200, 64, audit)  # objsize 256: 15 per slab, 2 colours
    assert (cache.colour, cache.colour_off) == (2, 64)
    for _ in range(cache.num * 3):
        cache.alloc()
    offsets = [s.colouroff - cache.slab_size for s in cache.slabs.values()]
    assert offsets == [0, 64, 0]


def test_big_alignment_and_off_slab_management() -> None:
    audit = pages()
    cache = KmemCache("t", 100, 8192, audit)
    assert (cache.objsize, cache.gfporder, cache.num, cache.off_slab) == (8192, 1, 1, True)
    a, b = cache.alloc(), cache.alloc()
    assert a % 8192 == 0 and b % 8192 == 0 and a != b


def test_constructor_refusals() -> None:
    for size, align in [(0, 8), (-1, 8), (8, 3), (8, 0), (PAGE_SIZE << 11, 8)]:
        with pytest.raises(ValueError):
            KmemCache("t", size, align, pages())


def test_proc_slabinfo_line() -> None:
    cache = KmemCache("size-32", 32, 8, pages())
    cache.alloc()
    fields = cache.proc_slabinfo().split()
    assert fields[:6] == ["size-32", "1", str(cache.num), "32", str(cache.num), "1"]
    assert fields[6:8] == [":", "tunables"] and fields[11:13] == [":", "slabdata"]


def test_debug_poison_and_red_zone() -> None:
    cache = KmemCache("t", 20, 8, pages(), debug=True)
    assert cache.objsize == 32  # 20 -> 24, plus a word of red zone
    a = cache.alloc()
    assert cache.debug_state(a) == (0, 0)
    cache.write(a, 20)
    assert cache.debug_state(a) == (0, 0)  # inside the object
    cache.write(a, 21)
    assert cache.debug_state(a) == (0, 1)  # one byte into the red zone
    b = cache.alloc()
    cache.free(b)
    slab = cache.page_slab[b // PAGE_SIZE]
    off = b - slab.start
    assert slab.mem is not None
    assert bytes(slab.mem[off:off + 20]) == b"\x6b" * 19 + b"\xa5"
    assert bytes(slab.mem[off + 20:off + 32]) == b"\xbb" * 12
    cache.write(b, 4)  # a use after free
    assert cache.debug_state(b) == (4, 0)


# ---------------------------------------------------------------- kmalloc


def test_kmalloc_size_classes_and_dma() -> None:
    audit = pages(1024, reserve_zero=True)
    km = Kmalloc(audit)
    for size in (1, 32, 33, 100, 129, 4000, 4097, 131072):
        addr = km.kmalloc(size)
        want = next(c for c in CACHE_SIZES if c >= size)
        assert addr is not None and km.ksize(addr) == want and addr % 8 == 0
    a, d = km.kmalloc(64), km.kmalloc(64, GFP_DMA)
    assert a is not None and d is not None
    assert km.owner[a] is not km.owner[d] and km.owner[d].name == "size-64(DMA)"
    assert a // PAGE_SIZE != d // PAGE_SIZE


def test_kmalloc_large_goes_to_pages() -> None:
    audit = pages(1024, reserve_zero=True)
    km = Kmalloc(audit)
    addr = km.kmalloc(200_000)
    assert addr is not None and addr % PAGE_SIZE == 0
    assert audit.held[addr // PAGE_SIZE] == get_order(200_000) == 6
    assert km.ksize(addr) == PAGE_SIZE << 6
    km.kfree(addr)
    assert addr // PAGE_SIZE not in audit.held
    assert km.kmalloc(KMALLOC_MAX_SIZE + 1) is None
    assert km.kmalloc(KMALLOC_MAX_SIZE) is None  # pfn 0 is taken: no free order-10 block
    assert km.kmalloc(0) == ZERO_SIZE_PTR and km.ksize(ZERO_SIZE_PTR) == 0


def test_kfree_refusals() -> None:
    km = Kmalloc(pages(reserve_zero=True))
    a = km.kmalloc(40)
    assert a is not None
    km.kfree(0)
    km.kfree(ZERO_SIZE_PTR)
    for bad in (a + 8, a + 4096, 12345):
        with pytest.raises(ValueError):
            km.kfree(bad)
    km.kfree(a)
    with pytest.raises(ValueError):
        km.kfree(a)
    with pytest.raises(ValueError):
        km.ksize(a)
    with pytest.raises(ValueError):
        km.kmalloc(-1)
