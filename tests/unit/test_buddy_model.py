"""The reference buddy allocator (model/buddy.py) against an obviously-correct oracle.

The oracle knows only which pages are allocated, block by block. From that it
computes from scratch what a maximally coalescing buddy allocator must show:
the free blocks are exactly the maximal aligned all-free runs of 2**k pages,
k <= max_order - 1, inside [0, npages). Every step of many seeded random
traces (alloc, free, take_block, wrong calls) is checked against it, along
with the page state, the counters, the snapshot and the alloc policy
(__rmqueue_smallest: the head of the smallest order that has a free block).
"""

from __future__ import annotations

import random
from itertools import accumulate

import pytest
from mmcheck.model.buddy import (
    VOCABULARY,
    Block,
    BuddyAllocator,
    IllegalChoice,
    Page,
    snapshot_from_free_area,
)


class Oracle:
    """Allocated blocks and a per-page owner list; free blocks computed from scratch."""

    def __init__(self, npages: int, max_order: int) -> None:
        self.npages = npages
        self.max_order = max_order
        self.owner: list[int | None] = [None] * npages  # head pfn of the owning block
        self.blocks: dict[int, int] = {}

    def is_free_run(self, pfn: int, order: int) -> bool:
        end = pfn + (1 << order)
        return 0 <= pfn and end <= self.npages and all(
            self.owner[p] is None for p in range(pfn, end))

    def allocate(self, pfn: int, order: int) -> None:
        assert self.is_free_run(pfn, order)
        assert pfn % (1 << order) == 0
        self.blocks[pfn] = order
        for p in range(pfn, pfn + (1 << order)):
            self.owner[p] = pfn

    def release(self, pfn: int) -> int:
        order = self.blocks.pop(pfn)
        for p in range(pfn, pfn + (1 << order)):
            self.owner[p] = None
        return order

    def free_blocks(self) -> set[tuple[int, int]]:
        """Maximal coalescing from scratch: the largest aligned all-free blocks."""
        used = list(accumulate((o is not None for o in self.owner), initial=0))
        found: set[tuple[int, int]] = set()

        def visit(pfn: int, order: int) -> None:
            end = pfn + (1 << order)
            if pfn >= self.npages:
                return
            if end <= self.npages and used[end] == used[pfn]:
                found.add((pfn, order))
            elif order > 0:
                visit(pfn, order - 1)
                visit(pfn + (1 << (order - 1)), order - 1)

        top = self.max_order - 1
        for start in range(0, self.npages, 1 << top):
            visit(start, top)
        return found

    def any_aligned_free_run(self, order: int) -> bool:
        return any(self.is_free_run(p, order) for p in range(0, self.npages, 1 << order))

    def free_count(self) -> int:
        return sum(o is None for o in self.owner)


def check_state(model: BuddyAllocator, oracle: Oracle, full_pages: bool) -> None:
    """Everything the model shows agrees with the oracle."""
    lists = model.free_area()
    assert len(lists) == model.max_order
    entries = [(pfn, order) for order, area in enumerate(lists) for pfn in area]
    expected = oracle.free_blocks()
    assert len(entries) == len(set(entries)), "a block is on the free lists twice"
    assert set(entries) == expected
    assert [model.nr_free(o) for o in range(model.max_order)] == [len(a) for a in lists]
    assert model.free_pages == oracle.free_count()
    assert dict(model.allocated) == oracle.blocks
    # struct page: PageBuddy + private on free heads only, refcount on allocated heads.
    assert model.mem_map.buddy_orders() == dict(sorted(expected))
    assert model.mem_map.refcounts() == {pfn: 1 for pfn in sorted(oracle.blocks)}
    assert sum(model.mem_map.private) == sum(order for _, order in expected)
    snap = model.snapshot()
    assert set(snap) == {s.name for s in VOCABULARY.state}
    assert snap["npages"] == model.npages and snap["max_order"] == model.max_order
    assert snap["free"] == {Block(p, o) for p, o in expected}
    assert snap["allocated"] == {Block(p, o) for p, o in oracle.blocks.items()}
    assert list(snap["free_area"]) == [Block(p, o) for p, o in entries]
    assert snap["free_pages"] == oracle.free_count()
    if full_pages:
        heads = dict(expected)
        want = [Page(p, p in heads, heads.get(p, 0), int(p in oracle.blocks))
                for p in range(model.npages)]
        assert snap["pages"] == want
        assert [model.page(p) for p in range(model.npages)] == want


def random_order(rng: random.Random, max_order: int) -> int:
    """Mostly small orders, sometimes any."""
    if rng.random() < 0.2:
        return rng.randrange(max_order)
    return min(int(rng.expovariate(1.0)), max_order - 1)


def step_alloc(model: BuddyAllocator, oracle: Oracle, rng: random.Random) -> None:
    order = random_order(rng, model.max_order)
    before = oracle.free_blocks()
    could = model.can_allocate(order)
    pfn = model.alloc(order)
    assert could == (pfn is not None)
    if pfn is None:
        assert not oracle.any_aligned_free_run(order)
        return
    # __rmqueue_smallest: the head of a free block of the smallest order that has one.
    smallest = min(o for _, o in before if o >= order)
    assert (pfn, smallest) in before
    oracle.allocate(pfn, order)


def step_free(model: BuddyAllocator, oracle: Oracle, rng: random.Random) -> None:
    pfn = rng.choice(sorted(oracle.blocks))
    model.free(pfn, oracle.blocks[pfn])
    oracle.release(pfn)


def step_take_block(model: BuddyAllocator, oracle: Oracle, rng: random.Random) -> None:
    order = random_order(rng, model.max_order)
    if rng.random() < 0.8:
        pfn = rng.randrange(0, max(model.npages, 1), 1 << order)
    else:
        pfn = rng.randrange(-2, model.npages + 2)
    legal = pfn % (1 << order) == 0 and oracle.is_free_run(pfn, order)
    before = model.free_area()
    if legal:
        model.take_block(pfn, order)
        oracle.allocate(pfn, order)
    else:
        with pytest.raises(IllegalChoice):
            model.take_block(pfn, order)
        assert model.free_area() == before


def step_wrong_call(model: BuddyAllocator, oracle: Oracle, rng: random.Random) -> None:
    """A call the contract refuses: ValueError and the state exactly as it was."""
    before = (model.free_area(), dict(model.allocated), model.free_pages)
    kind = rng.randrange(5)
    if kind == 0:
        call = (model.alloc, rng.choice([-1, model.max_order, model.max_order + 3]))
    elif kind == 1 and oracle.blocks:  # wrong order
        pfn = rng.choice(sorted(oracle.blocks))
        wrong = rng.choice([o for o in range(model.max_order) if o != oracle.blocks[pfn]]
                           or [model.max_order])
        call = (model.free, pfn, wrong)
    elif kind == 2 and model.npages:  # a free page: double free or never returned
        free_pfns = [p for p in range(model.npages) if oracle.owner[p] is None]
        if not free_pfns:
            return
        call = (model.free, rng.choice(free_pfns), 0)
    elif kind == 3:  # tail page of an allocated block
        tails = [p for p in range(model.npages)
                 if oracle.owner[p] is not None and oracle.owner[p] != p]
        if not tails:
            return
        pfn = rng.choice(tails)
        call = (model.free, pfn, oracle.blocks[oracle.owner[pfn]])
    else:
        call = (model.free, rng.choice([-1, model.npages, model.npages + 7]), 0)
    with pytest.raises(ValueError):
        call[0](*call[1:])
    assert (model.free_area(), dict(model.allocated), model.free_pages) == before


def run_trace(npages: int, max_order: int, seed: int, steps: int) -> None:
    rng = random.Random(seed)
    model = BuddyAllocator(npages, max_order)
    oracle = Oracle(npages, max_order)
    full_pages = npages <= 64
    check_state(model, oracle, full_pages)
    for _ in range(steps):
        r = rng.random()
        if r < 0.42:
            step_alloc(model, oracle, rng)
        elif r < 0.80:
            if oracle.blocks:
                step_free(model, oracle, rng)
        elif r < 0.92:
            step_take_block(model, oracle, rng)
        else:
            step_wrong_call(model, oracle, rng)
        check_state(model, oracle, full_pages)
    # Give everything back: memory is whole again, exactly as at boot.
    for pfn in sorted(oracle.blocks):
        model.free(pfn, oracle.release(pfn))
    check_state(model, oracle, full_pages)
    assert sorted(map(sorted, model.free_area())) == sorted(
        map(sorted, BuddyAllocator(npages, max_order).free_area()))


@pytest.mark.parametrize("npages", range(1, 9))
@pytest.mark.parametrize("max_order", [1, 2, 3, 4])
def test_tiny_memories(npages: int, max_order: int) -> None:
    for seed in range(4):
        run_trace(npages, max_order, seed=npages * 100 + max_order * 10 + seed, steps=60)


@pytest.mark.parametrize(("npages", "max_order", "seed"), [
    (13, 3, 1), (37, 4, 2), (64, 11, 3), (100, 5, 4), (255, 11, 5), (256, 3, 6),
    (1000, 11, 7), (1023, 6, 8), (3000, 11, 9), (4096, 11, 10), (2500, 4, 11),
])
def test_random_traces(npages: int, max_order: int, seed: int) -> None:
    run_trace(npages, max_order, seed, steps=250 if npages < 1000 else 120)


def test_exhaustive_small_traces_keep_every_invariant() -> None:
    """Every alloc/free sequence of length 4 on 6 pages, max_order 3."""
    def explore(model_ops: list[tuple[str, int]], depth: int) -> None:
        model, oracle = BuddyAllocator(6, 3), Oracle(6, 3)
        for op, arg in model_ops:
            if op == "alloc":
                pfn = model.alloc(arg)
                if pfn is not None:
                    oracle.allocate(pfn, arg)
            else:
                held = sorted(oracle.blocks)
                pfn = held[arg]
                model.free(pfn, oracle.release(pfn))
        check_state(model, oracle, full_pages=True)
        if depth == 0:
            return
        for order in range(3):
            explore(model_ops + [("alloc", order)], depth - 1)
        for i in range(len(oracle.blocks)):
            explore(model_ops + [("free", i)], depth - 1)

    explore([], 4)


# ---- boot and list order ------------------------------------------------------------


def memblock_chunks(npages: int, max_order: int) -> list[tuple[int, int]]:
    """__free_pages_memory, written as the kernel writes it."""
    chunks, start = [], 0
    while start < npages:
        order = max_order - 1
        if start:
            order = min(order, (start & -start).bit_length() - 1)  # __ffs(start)
        while start + (1 << order) > npages:
            order -= 1
        chunks.append((start, order))
        start += 1 << order
    return chunks


@pytest.mark.parametrize(("npages", "max_order"), [
    (1, 11), (1, 1), (5, 1), (13, 3), (1000, 11), (2049, 11), (3 * 1024 + 700, 11),
    (4096, 4), (777, 2),
])
def test_boot_frees_memblock_chunks_lowest_first(npages: int, max_order: int) -> None:
    model = BuddyAllocator(npages, max_order)
    want: list[list[int]] = [[] for _ in range(max_order)]
    for start, order in memblock_chunks(npages, max_order):
        want[order].append(start)  # FPI_TO_TAIL, ascending: lowest at the head
    assert model.free_area() == want
    assert model.free_pages == npages
    assert model.allocated == {}


def test_alloc_takes_the_head_and_expand_puts_upper_halves_first() -> None:
    model = BuddyAllocator(16, 3)  # boot: order 2 list [0, 4, 8, 12]
    assert model.free_area() == [[], [], [0, 4, 8, 12]]
    assert model.alloc(0) == 0
    assert model.free_area() == [[1], [2], [4, 8, 12]]
    assert model.alloc(0) == 1
    assert model.alloc(0) == 2
    assert model.free_area() == [[3], [], [4, 8, 12]]
    model.free(1, 0)  # buddy 0 allocated, parent's buddy 2 allocated: to the head
    assert model.free_area() == [[1, 3], [], [4, 8, 12]]
    model.free(0, 0)  # merges with 1 into order 1; its buddy 2 is allocated
    assert model.free_area() == [[3], [0], [4, 8, 12]]
    assert model.alloc(1) == 0  # the head of the smallest order that fits
    model.free(2, 0)  # merges with 3 into (2, 1); buddy 0 is allocated
    model.free(0, 1)  # merges with (2, 1) into (0, 2): top order, no further
    assert model.free_area() == [[], [], [0, 4, 8, 12]]


def test_free_goes_to_the_tail_when_buddy_merge_likely() -> None:
    model = BuddyAllocator(64, 6)
    model.take_block(0, 0)
    model.take_block(1, 0)
    model.take_block(16, 0)  # splits (16, 4): 17 on order 0
    assert model.free_area()[0] == [17]
    model.free(0, 0)
    # 0's buddy 1 is allocated, but its parent's buddy (2, 1) is free: the tail.
    assert model.free_area()[0] == [17, 0]
    model.take_block(0, 0)
    model.take_block(2, 0)  # splits (2, 1): 3 to the head of order 0
    assert model.free_area()[0] == [3, 17]
    model.free(0, 0)  # parent's buddy (2, 1) is no longer free: the head
    assert model.free_area()[0] == [0, 3, 17]


def test_merging_stops_at_the_top_order_and_at_the_end_of_memory() -> None:
    model = BuddyAllocator(12, 3)  # top order 2: [0, 4, 8] never merge
    blocks = [model.alloc(2) for _ in range(3)]
    assert blocks == [0, 4, 8] and model.alloc(0) is None
    for pfn in blocks:
        model.free(pfn, 2)
    assert model.free_area() == [[], [], [8, 4, 0]]
    model = BuddyAllocator(6, 4)  # (4, 1) has its buddy (6, 1) outside memory
    assert model.free_area() == [[], [4], [0], []]
    assert model.alloc(1) == 4
    model.free(4, 1)
    assert model.free_area() == [[], [4], [0], []]


# ---- take_block -----------------------------------------------------------------


def test_take_block_splits_around_the_target() -> None:
    model = BuddyAllocator(16, 5)  # one free block (0, 4)
    model.take_block(6, 1)
    assert model.allocated == {6: 1}
    # break_down_buddy_pages: (8, 3), then (0, 2), then (4, 1), each at the head.
    assert model.free_area() == [[], [4], [0], [8], []]
    assert model.page(6) == Page(6, False, 0, 1)
    assert model.page(4) == Page(4, True, 1, 0)
    model.free(6, 1)
    assert model.free_area() == [[], [], [], [], [0]]


@pytest.mark.parametrize(("pfn", "order", "message"), [
    (4, 3, "pfn 4 order 3 is not aligned to 8 pages"),
    (8, 2, "pages 8..11 are not free: 10 belongs to allocated block 10 (order 0)"),
    (10, 0, "page 10 is not free: 10 belongs to allocated block 10 (order 0)"),
    (14, 2, "pages 14..17 are not all inside 0..15"),
    (-1, 0, "page -1 is not inside 0..15"),
    (0, 5, "order 5 is outside 0..4"),
    (0, 4, "pages 0..15 are not free: 10 belongs to allocated block 10 (order 0)"),
])
def test_take_block_says_why_a_choice_is_illegal(pfn: int, order: int, message: str) -> None:
    model = BuddyAllocator(16, 5)
    model.take_block(10, 0)  # free: (0, 3), (12, 2), (8, 1), (11, 0)
    assert model.free_area() == [[11], [8], [12], [0], []]
    before = (model.free_area(), dict(model.allocated), model.free_pages)
    with pytest.raises(IllegalChoice) as caught:
        model.take_block(pfn, order)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)
    assert (model.free_area(), dict(model.allocated), model.free_pages) == before


# ---- error paths -----------------------------------------------------------------


def test_wrong_frees_are_refused_with_reasons() -> None:
    model = BuddyAllocator(16, 3)
    a = model.alloc(1)
    assert a == 0
    with pytest.raises(ValueError, match=r"allocated with order 1, not 0"):
        model.free(a, 0)
    with pytest.raises(ValueError, match=r"inside allocated block 0 \(order 1\) but is not"):
        model.free(1, 1)
    with pytest.raises(ValueError, match="never returned"):
        model.free(9, 0)
    model.free(a, 1)
    with pytest.raises(ValueError, match="double free"):
        model.free(a, 1)
    with pytest.raises(ValueError, match="outside 0..15"):
        model.free(16, 0)
    with pytest.raises(ValueError, match="outside 0..2"):
        model.free(0, 3)
    assert model.free_area() == BuddyAllocator(16, 3).free_area()


@pytest.mark.parametrize("order", [-1, 11, 12, 1.0, "0", None, True])
def test_alloc_refuses_orders_outside_the_range(order: object) -> None:
    model = BuddyAllocator(64)
    with pytest.raises(ValueError, match="outside 0..10"):
        model.alloc(order)  # type: ignore[arg-type]
    assert model.free_pages == 64 and model.allocated == {}


@pytest.mark.parametrize(("npages", "max_order"), [(-1, 11), (8, 0), (8, 64), (2.0, 3)])
def test_constructor_refuses_bad_arguments(npages: object, max_order: object) -> None:
    with pytest.raises(ValueError):
        BuddyAllocator(npages, max_order)  # type: ignore[arg-type]


def test_alloc_returns_none_only_when_nothing_fits() -> None:
    model = BuddyAllocator(5, 3)  # (0, 2) and (4, 0)
    assert model.alloc(2) == 0
    assert not model.can_allocate(1) and model.alloc(1) is None
    assert model.can_allocate(0) and model.alloc(0) == 4
    assert model.alloc(0) is None and model.free_pages == 0


# ---- buddyinfo and snapshots --------------------------------------------------------


def test_buddyinfo_prints_as_the_kernel_does() -> None:
    assert BuddyAllocator(13, 3).buddyinfo() == "Node 0, zone   Normal      1      0      3 \n"
    # 5000 pages: four order-10 chunks, then 512 + 256 + 128 + 8.
    line = BuddyAllocator(5000).buddyinfo()
    prefix = "Node 0, zone   Normal "
    assert line.startswith(prefix) and line.endswith(" \n")
    columns = line[len(prefix):-1]
    fields = [columns[i:i + 7] for i in range(0, len(columns), 7)]
    assert fields == [f"{n:6d} " for n in (0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 4)]


def test_snapshot_does_not_change_with_later_operations() -> None:
    model = BuddyAllocator(16, 3)
    pfn = model.alloc(0)
    snap = model.snapshot()
    model.free(pfn, 0)
    model.alloc(2)
    assert snap["allocated"] == {Block(0, 0)}
    assert snap["free_pages"] == 15
    assert snap["free"] == {Block(1, 0), Block(2, 1), Block(4, 2), Block(8, 2), Block(12, 2)}
    assert snap["pages"][0] == Page(0, False, 0, 1)  # built after the later operations
    assert snap["pages"][2] == Page(2, True, 1, 0)


def test_snapshot_from_free_area_matches_the_models_own() -> None:
    rng = random.Random(5)
    model = BuddyAllocator(300, 6)
    held: dict[int, int] = {}
    for _ in range(80):
        if held and rng.random() < 0.4:
            pfn = rng.choice(sorted(held))
            model.free(pfn, held.pop(pfn))
        else:
            order = rng.randrange(4)
            pfn = model.alloc(order)
            if pfn is not None:
                held[pfn] = order
    ours = model.snapshot()
    theirs = snapshot_from_free_area(300, 6, model.free_area(), held)
    assert set(theirs) == set(ours)
    for name in ("npages", "max_order", "free", "allocated", "free_pages"):
        assert theirs[name] == ours[name], name
    assert list(theirs["free_area"]) == list(ours["free_area"])
    assert list(theirs["pages"]) == list(ours["pages"])


def test_snapshot_from_free_area_shows_a_broken_submission_as_it_is() -> None:
    snap = snapshot_from_free_area(4, 3, [[0, 0], [5], [0]], {2: 0})
    assert snap["free_area"] == [Block(0, 0), Block(0, 0), Block(5, 1), Block(0, 2)]
    assert snap["free"] == {Block(0, 2), Block(5, 1)}  # the later entry for pfn 0 wins
    assert snap["free_pages"] == 1 + 1 + 2 + 4
    assert snap["allocated"] == {Block(2, 0)}
    assert snap["pages"] == [Page(0, True, 2, 0), Page(1, False, 0, 0),
                             Page(2, False, 0, 1), Page(3, False, 0, 0)]
    with pytest.raises(ValueError, match="not a pfn"):
        snapshot_from_free_area(4, 3, [["1"]], {})


def test_vocabulary_names() -> None:
    assert VOCABULARY.subsystem == "buddy"
    assert VOCABULARY.record("Block").fields == (("pfn", "int"), ("order", "int"))
    assert VOCABULARY.record("Page").fields == (
        ("pfn", "int"), ("buddy", "bool"), ("order", "int"), ("refcount", "int"))
    assert Block._fields == ("pfn", "order")
    assert Page._fields == ("pfn", "buddy", "order", "refcount")
    assert {(s.name, s.type) for s in VOCABULARY.state} == {
        ("npages", "int"), ("max_order", "int"), ("free", "set[Block]"),
        ("allocated", "set[Block]"), ("free_area", "list[Block]"), ("free_pages", "int"),
        ("pages", "list[Page]"), ("buddy_pages", "set[Page]"), ("used_pages", "set[Page]")}
    alloc, free = VOCABULARY.operation("alloc"), VOCABULARY.operation("free")
    assert alloc.params == (("order", "int"),) and alloc.returns == "int?"
    assert free.params == (("pfn", "int"), ("order", "int")) and free.returns == "none"
    assert alloc.raises == free.raises == ("ValueError",)
    assert all(x.doc for x in (*VOCABULARY.records, *VOCABULARY.state, alloc, free))


def test_a_million_pages_construct() -> None:
    npages = 1 << 20
    model = BuddyAllocator(npages)
    assert model.free_pages == npages
    assert model.free_area()[10] == list(range(0, npages, 1024))
    assert model.buddyinfo().split()[4:] == ["0"] * 10 + ["1024"]
    assert model.page(1024) == Page(1024, True, 10, 0)
    assert model.page(1025) == Page(1025, False, 0, 0)
    assert model.alloc(0) == 0
    assert model.nr_free(10) == 1023 and model.free_pages == npages - 1
    model.free(0, 0)
    assert model.free_area()[10][0] == 0 and model.nr_free(10) == 1024
    assert len(model.snapshot()["free"]) == 1024


@pytest.mark.parametrize(("npages", "max_order"), [(0, 11), (-1, 11), (4, 0)])
def test_constructor_refuses_what_makes_no_allocator(npages: int, max_order: int) -> None:
    # docs/contract.md [BUDDY-INIT-ARGS]
    with pytest.raises(ValueError):
        BuddyAllocator(npages, max_order)
