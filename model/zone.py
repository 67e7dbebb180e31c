"""Zones and nodes: the buddy allocator per zone, watermarks and the zonelist fallback.

Linux splits each node's memory (`pg_data_t`) into zones by what devices
and the kernel can address (include/linux/mmzone.h `enum zone_type`):

    ZONE_DMA      [0, 16 MiB): ISA DMA (i386 and x86-64)
    ZONE_DMA32    [16 MiB, 4 GiB): 32-bit DMA (x86-64 only)
    ZONE_NORMAL   i386: [16 MiB, max_low_pfn) (896 MiB, the direct map's reach);
                  x86-64: [4 GiB, end of RAM)
    ZONE_HIGHMEM  i386: [max_low_pfn, end of RAM), no permanent kernel mapping
    ZONE_MOVABLE  carved from the top of the highest zone by kernelcore= /
                  movablecore=; only movable allocations land there

Each zone has its own buddy allocator (`free_area[MAX_ORDER]`, here
model/buddy.py over the zone's pfns, so that a block never merges with a
buddy in another zone: `page_is_buddy`'s same-zone test), its watermarks
(`__setup_per_zone_wmarks`, 2.6.32 .. 4.5: min is the zone's share of
min_free_kbytes, low = min + share/4, high = min + share/2; high memory's
min is managed/1024 clamped to [32, 128]), and `lowmem_reserve[]`
(`setup_per_zone_lowmem_reserve`: what a request that could have used a
higher zone must leave in this one).

An allocation (`__alloc_pages_nodemask`) turns its gfp mask into the highest
zone it may use (`gfp_zone`), then walks the node's zonelist from that zone
down (`build_zonelists`: highest zone first, each populated zone once) and
takes from the first zone that passes `zone_watermark_ok` at the LOW mark
(`get_page_from_freelist`, ALLOC_WMARK_LOW); if none does, the slow path
walks it again at the MIN mark (`__alloc_pages_slowpath` after waking kswapd);
then it fails (the model has no reclaim, compaction or OOM killer).

A zone's first pfn need not be aligned to the largest block: its buddy
allocator then starts at the aligned pfn below, with the pages below the zone
never handed over (they belong to the zone beneath), so blocks stay aligned
to their size in machine pfns, as Linux's are.

Left out: per-CPU page lists, migrate-type fallback and pageblock stealing
(every pageblock stays MIGRATE_MOVABLE, as memmap_init_zone sets it; views
list free blocks by their pageblock's type), NUMA distances (one node),
reclaim and compaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from math import isqrt
from typing import NamedTuple

from mmcheck.model.buddy import BuddyAllocator, IllegalChoice, Page
from mmcheck.model.linux import DEFAULT_MAX_ORDER, PAGE_SHIFT
from mmcheck.model.memblock import Memblock, free_pages_memory
from mmcheck.model.page import MemMap, PG_highmem, PG_reserved, StructPage
from mmcheck.model.vocabulary import Operation, Record, Snapshot, StateVar, Vocabulary

__all__ = [
    "GFP_ZONEMASK", "MAX_NR_ZONES", "VOCABULARY", "ZONE_NAMES", "PgData", "Zone",
    "ZoneAllocator", "gfp_zone",
    "zone_sizes_i386", "zone_sizes_x86_64",
]

ZONE_DMA, ZONE_DMA32, ZONE_NORMAL, ZONE_HIGHMEM, ZONE_MOVABLE = range(5)
MAX_NR_ZONES = 5
ZONE_NAMES = ("DMA", "DMA32", "Normal", "HighMem", "Movable")  # as /proc/zoneinfo names them

__GFP_DMA = 0x01
__GFP_HIGHMEM = 0x02
__GFP_DMA32 = 0x04
__GFP_MOVABLE = 0x08
GFP_ZONEMASK = __GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE

# GFP_ZONE_TABLE: the zone modifiers a request may carry, and its highest zone.
# Any other combination (two zone bits) is GFP_ZONE_BAD: a kernel BUG.
_GFP_ZONE_TABLE = {
    0: ZONE_NORMAL,
    __GFP_DMA: ZONE_DMA,
    __GFP_HIGHMEM: ZONE_HIGHMEM,
    __GFP_DMA32: ZONE_DMA32,
    __GFP_MOVABLE: ZONE_NORMAL,
    __GFP_MOVABLE | __GFP_DMA: ZONE_DMA,
    __GFP_MOVABLE | __GFP_HIGHMEM: ZONE_MOVABLE,
    __GFP_MOVABLE | __GFP_DMA32: ZONE_DMA32,
}

# sysctl_lowmem_reserve_ratio, by the zone that is protected.
LOWMEM_RESERVE_RATIO = (256, 256, 32, 32, 32)
SWAP_CLUSTER_MAX = 32
MIGRATE_MOVABLE = 1
MIGRATE_TYPES = ("Unmovable", "Movable", "Reclaimable")

MiB_PAGES = (1 << 20) >> PAGE_SHIFT


def gfp_zone(gfp: int) -> int:
    """gfp_zone: the highest zone a request with mask `gfp` may use.
    ValueError for a combination GFP_ZONE_BAD names, or bits other than the zone
    modifiers."""
    zone = _GFP_ZONE_TABLE.get(gfp) if isinstance(gfp, int) and not isinstance(gfp, bool) \
        else None
    if zone is None:
        raise ValueError(f"gfp {gfp!r}: not one of the zone modifier combinations "
                         f"{sorted(_GFP_ZONE_TABLE)} (GFP_ZONE_BAD)")
    return zone


def is_highmem_idx(idx: int) -> bool:
    """is_highmem_idx: ZONE_HIGHMEM (ZONE_MOVABLE counts as low memory here: x86-64)."""
    return idx == ZONE_HIGHMEM


def zone_sizes_i386(ram_pages: int, max_low_pfn: int = 896 * MiB_PAGES) -> list[int]:
    """zone_sizes_init on i386: pages of DMA, DMA32 (none), NORMAL, HIGHMEM."""
    dma = min(ram_pages, 16 * MiB_PAGES)
    normal = min(ram_pages, max_low_pfn) - dma
    return [dma, 0, normal, ram_pages - dma - normal]


def zone_sizes_x86_64(ram_pages: int) -> list[int]:
    """zone_sizes_init on x86-64: pages of DMA, DMA32, NORMAL (no HIGHMEM)."""
    dma = min(ram_pages, 16 * MiB_PAGES)
    dma32 = min(ram_pages, 4096 * MiB_PAGES) - dma
    return [dma, dma32, ram_pages - dma - dma32]


class Zone:
    """`struct zone`: [zone_start_pfn, zone_end_pfn) with its own buddy allocator."""

    def __init__(self, idx: int, start_pfn: int, spanned: int, max_order: int) -> None:
        self.idx = idx
        self.name = ZONE_NAMES[idx]
        self.zone_start_pfn = start_pfn
        self.spanned_pages = spanned
        self.present_pages = spanned
        self.managed_pages = 0
        self.max_order = max_order
        # The buddy allocator counts pfns from `base`, the aligned pfn at or below
        # the zone's start; pfns in [base, start) are never handed over.
        self.base = start_pfn >> (max_order - 1) << (max_order - 1)
        self.buddy = BuddyAllocator.reserved(start_pfn + spanned - self.base, max_order)
        self.watermark = [0, 0, 0]  # WMARK_MIN, WMARK_LOW, WMARK_HIGH
        self.lowmem_reserve = [0] * MAX_NR_ZONES
        self.pageblock_order = min(9, max_order - 1)
        self.pageblock_migratetype = [MIGRATE_MOVABLE] * (
            (spanned >> self.pageblock_order) + 1)

    def __repr__(self) -> str:
        return (f"Zone({self.name}, pfns {self.zone_start_pfn}..{self.zone_end_pfn - 1}, "
                f"free {self.free_pages})")

    @property
    def zone_end_pfn(self) -> int:
        return self.zone_start_pfn + self.spanned_pages

    @property
    def mem_map(self) -> MemMap:
        """This zone's section of mem_map (index = pfn - base)."""
        return self.buddy.mem_map

    @property
    def free_pages(self) -> int:
        """zone_page_state(zone, NR_FREE_PAGES)."""
        return self.buddy.free_pages

    def zone_spans_pfn(self, pfn: int) -> bool:
        """zone_spans_pfn: whether `pfn` lies in [zone_start_pfn, zone_end_pfn)."""
        return self.zone_start_pfn <= pfn < self.zone_end_pfn

    def nr_free(self, order: int) -> int:
        """free_area[order].nr_free."""
        return self.buddy.nr_free(order)

    def zone_watermark_ok(self, order: int, mark: int, classzone_idx: int) -> bool:
        """__zone_watermark_ok (2.6.32 .. 4.3): after taking 2**order pages, more than
        mark + lowmem_reserve[classzone_idx] stay free, and at each order o below
        `order` more than mark >> (o + 1) stay free in blocks larger than o."""
        free_pages = self.free_pages - (1 << order) + 1
        if free_pages <= mark + self.lowmem_reserve[classzone_idx]:
            return False
        for o in range(order):
            free_pages -= self.nr_free(o) << o
            mark >>= 1
            if free_pages <= mark:
                return False
        return True

    def rmqueue(self, order: int) -> int | None:
        """rmqueue: a block of 2**order pages from this zone's free lists (machine pfn)."""
        pfn = self.buddy.alloc(order)
        return None if pfn is None else pfn + self.base

    def take_block(self, pfn: int, order: int) -> None:
        """Follow a submission's choice: the block at machine pfn `pfn` becomes allocated
        (model/buddy.py `take_block`; IllegalChoice if it cannot)."""
        self.buddy.take_block(pfn - self.base, order)

    def free_one_page(self, pfn: int, order: int) -> None:
        """free_one_page: give back an allocated block (machine pfn); ValueError if not one."""
        self.buddy.free(pfn - self.base, order)

    def free_pages_core(self, pfn: int, order: int) -> None:
        """__free_pages_core at boot: a reserved block (machine pfn) becomes free and managed."""
        mm, first = self.mem_map, pfn - self.base
        for p in range(first, first + (1 << order)):
            mm.ClearPageFlag(p, PG_reserved)
        mm.refcount[first:first + (1 << order)] = bytes(1 << order)  # set_page_count(p, 0)
        self.buddy.free_pages_core(first, order)
        self.managed_pages += 1 << order

    def free_blocks(self) -> list[tuple[int, int]]:
        """Every free block (machine pfn, order), lowest pfn first."""
        return sorted((pfn + self.base, order) for order, area in
                      enumerate(self.buddy.free_area()) for pfn in area)

    def allocated_blocks(self) -> dict[int, int]:
        """{machine pfn: order} of every block handed out and not given back."""
        return {pfn + self.base: order for pfn, order in self.buddy.allocated.items()}

    def struct_page(self, pfn: int) -> StructPage:
        """pfn_to_page for a pfn of this zone (pfn is the machine pfn)."""
        page = self.mem_map.struct_page(pfn - self.base)
        return page._replace(pfn=pfn)

    def buddy_page(self, pfn: int) -> Page:
        """The buddy vocabulary's Page of machine pfn `pfn`."""
        return self.buddy.page(pfn - self.base)._replace(pfn=pfn)


class PgData:
    """`pg_data_t` of node 0: its zones, built from their sizes, then booted from memblock.

    `zone_sizes[i]` pages of zone type i, laid out from pfn 0 in zone order (the
    x86 layouts: `zone_sizes_i386`, `zone_sizes_x86_64`); a size of 0 leaves
    the zone unpopulated. `reserved` lists pfn ranges memblock keeps (the kernel
    image, mem_map, ...); the rest is freed to the zones at boot
    (`memblock_free_all`). `min_free_kbytes` None computes it as
    init_per_zone_wmark_min does.
    """

    def __init__(self, zone_sizes: Sequence[int], min_free_kbytes: int | None = None,
                 max_order: int = DEFAULT_MAX_ORDER,
                 reserved: Iterable[tuple[int, int]] = ()) -> None:
        if len(zone_sizes) > MAX_NR_ZONES or any(s < 0 for s in zone_sizes) \
                or sum(zone_sizes) < 1:
            raise ValueError(f"zone sizes {list(zone_sizes)!r}: at most {MAX_NR_ZONES} "
                             "sizes >= 0, not all 0")
        if min_free_kbytes is not None and min_free_kbytes < 0:
            raise ValueError(f"min_free_kbytes must be >= 0, not {min_free_kbytes}")
        self.node_id = 0
        self.max_order = max_order
        self.node_zones: list[Zone | None] = []
        start = 0
        for idx, size in enumerate(zone_sizes):
            self.node_zones.append(Zone(idx, start, size, max_order) if size else None)
            start += size
        self.node_zones += [None] * (MAX_NR_ZONES - len(self.node_zones))
        self.node_spanned_pages = start
        self.memblock = Memblock()
        self.memblock.memblock_add(0, start << PAGE_SHIFT)
        for r_start, r_end in reserved:
            self.memblock.memblock_reserve(r_start << PAGE_SHIFT, (r_end - r_start) << PAGE_SHIFT)
        self.node_zonelists = self.build_zonelists()
        self.memmap_init()
        self.memblock_free_all()
        self.min_free_kbytes = min_free_kbytes if min_free_kbytes is not None \
            else self.init_per_zone_wmark_min()
        self.setup_per_zone_wmarks()
        self.setup_per_zone_lowmem_reserve()

    # ---- boot -------------------------------------------------------------------

    def populated_zones(self) -> list[Zone]:
        """for_each_populated_zone, lowest zone first."""
        return [z for z in self.node_zones if z is not None]

    def build_zonelists(self) -> list[int]:
        """build_zonelists_node: the populated zones, highest first (the fallback order)."""
        return [z.idx for z in reversed(self.populated_zones())]

    def memmap_init(self) -> None:
        """memmap_init_zone: every page reserved with one reference (init_page_count),
        high memory marked PG_highmem."""
        for zone in self.populated_zones():
            mm = zone.mem_map
            first = zone.zone_start_pfn - zone.base
            mm.refcount[first:] = b"\x01" * (mm.npages - first)
            for p in range(first, mm.npages):
                mm.SetPageFlag(p, PG_reserved)
                if is_highmem_idx(zone.idx):
                    mm.SetPageFlag(p, PG_highmem)

    def memblock_free_all(self) -> list[tuple[int, int]]:
        """memblock_free_all: each free range, cut at zone boundaries, handed to its zone
        in the largest aligned power-of-two chunks; returns the chunks, in order."""
        chunks = []
        for start, end in self.memblock.free_ranges():
            for zone in self.populated_zones():
                lo, hi = max(start, zone.zone_start_pfn), min(end, zone.zone_end_pfn)
                for pfn, order in free_pages_memory(lo, hi, self.max_order):
                    zone.free_pages_core(pfn, order)
                    chunks.append((pfn, order))
        return chunks

    def nr_free_buffer_pages(self) -> int:
        """nr_free_buffer_pages: managed pages above the high mark in zones <= ZONE_NORMAL."""
        return sum(max(0, z.managed_pages - z.watermark[2]) for z in self.populated_zones()
                   if z.idx <= ZONE_NORMAL)

    def init_per_zone_wmark_min(self) -> int:
        """init_per_zone_wmark_min: min_free_kbytes = sqrt(lowmem_kbytes * 16),
        clamped to [128, 65536]."""
        lowmem_kbytes = self.nr_free_buffer_pages() * 4
        return min(65536, max(128, isqrt(lowmem_kbytes * 16)))

    def setup_per_zone_wmarks(self) -> None:
        """__setup_per_zone_wmarks (2.6.32 .. 4.5): each zone's min, low and high."""
        pages_min = self.min_free_kbytes >> (PAGE_SHIFT - 10)
        lowmem_pages = sum(z.managed_pages for z in self.populated_zones()
                           if not is_highmem_idx(z.idx))
        for zone in self.populated_zones():
            tmp = pages_min * zone.managed_pages // lowmem_pages if lowmem_pages else 0
            if is_highmem_idx(zone.idx):
                wmin = min(128, max(SWAP_CLUSTER_MAX, zone.managed_pages // 1024))
            else:
                wmin = tmp
            zone.watermark = [wmin, wmin + (tmp >> 2), wmin + (tmp >> 1)]

    def setup_per_zone_lowmem_reserve(self) -> None:
        """setup_per_zone_lowmem_reserve: lowmem_reserve[j] of each zone below j is the
        managed pages of the zones above it, up to j, over its reserve ratio."""
        zones = self.node_zones
        for j in range(MAX_NR_ZONES):
            managed = zones[j].managed_pages if zones[j] else 0
            for idx in range(j - 1, -1, -1):
                lower = zones[idx]
                if lower is None:
                    continue
                lower.lowmem_reserve[j] = managed // LOWMEM_RESERVE_RATIO[idx]
                managed += lower.managed_pages

    # ---- allocation -------------------------------------------------------------

    def zonelist(self, gfp: int) -> list[Zone]:
        """The zones a request with mask `gfp` may use, in fallback order
        (for_each_zone_zonelist up to gfp_zone(gfp))."""
        high = gfp_zone(gfp)
        return [z for z in (self.node_zones[i] for i in self.node_zonelists)
                if z is not None and z.idx <= high]

    def preferred_zone(self, order: int, gfp: int) -> Zone | None:
        """The zone get_page_from_freelist takes from: the first of the zonelist that
        passes the LOW mark, else (the slow path) the first that passes MIN."""
        classzone = gfp_zone(gfp)
        zones = self.zonelist(gfp)
        for wmark in (1, 0):
            for zone in zones:
                if zone.zone_watermark_ok(order, zone.watermark[wmark], classzone):
                    return zone
        return None

    def _check_order(self, order: object) -> None:
        if not isinstance(order, int) or isinstance(order, bool) \
                or not 0 <= order < self.max_order:
            raise ValueError(f"order {order!r} is outside 0..{self.max_order - 1}")

    def alloc_pages(self, order: int, gfp: int = 0) -> int | None:
        """__alloc_pages: the first pfn of a block of 2**order pages from the preferred
        zone, or None. ValueError for a bad order or gfp mask."""
        self._check_order(order)
        zone = self.preferred_zone(order, gfp)
        return None if zone is None else zone.rmqueue(order)

    def zone_of(self, pfn: int) -> Zone | None:
        """page_zone(pfn_to_page(pfn)): the zone spanning machine pfn `pfn`."""
        return next((z for z in self.populated_zones() if z.zone_spans_pfn(pfn)), None)

    def free_pages(self, pfn: int, order: int) -> None:
        """__free_pages: give back a block alloc_pages returned; ValueError otherwise."""
        self._check_order(order)
        zone = self.zone_of(pfn) if isinstance(pfn, int) else None
        if zone is None:
            raise ValueError(f"free_pages({pfn!r}, {order}): no zone spans pfn {pfn!r}")
        zone.free_one_page(pfn, order)

    def pfn_to_page(self, pfn: int) -> StructPage:
        """pfn_to_page: the struct page of machine pfn `pfn`; IndexError outside RAM."""
        zone = self.zone_of(pfn)
        if zone is None:
            raise IndexError(f"pfn {pfn} is in no zone")
        return zone.struct_page(pfn)

    # ---- /proc views ------------------------------------------------------------

    def buddyinfo(self) -> list[str]:
        """/proc/buddyinfo: free blocks per order, one line per populated zone."""
        return [f"Node {self.node_id}, zone {z.name:>8} "
                + " ".join(f"{z.nr_free(o):6d}" for o in range(self.max_order))
                for z in self.populated_zones()]

    def pagetypeinfo(self) -> list[str]:
        """/proc/pagetypeinfo's free blocks per order and migrate type (by pageblock)."""
        lines = []
        for z in self.populated_zones():
            for mt, name in enumerate(MIGRATE_TYPES):
                counts = [0] * self.max_order
                for pfn, order in z.free_blocks():
                    block = (pfn - z.zone_start_pfn) >> z.pageblock_order
                    if z.pageblock_migratetype[block] == mt:
                        counts[order] += 1
                lines.append(f"Node {self.node_id}, zone {z.name:>8}, type {name:>12} "
                             + " ".join(f"{c:6d}" for c in counts))
        return lines

    def zoneinfo(self) -> list[str]:
        """/proc/zoneinfo: free pages, watermarks, sizes and protection of each zone."""
        lines = []
        for z in self.populated_zones():
            lines += [f"Node {self.node_id}, zone {z.name:>8}",
                      f"  pages free     {z.free_pages}",
                      f"        min      {z.watermark[0]}",
                      f"        low      {z.watermark[1]}",
                      f"        high     {z.watermark[2]}",
                      f"        spanned  {z.spanned_pages}",
                      f"        present  {z.present_pages}",
                      f"        managed  {z.managed_pages}",
                      f"        protection: ({', '.join(map(str, z.lowmem_reserve))})",
                      f"  start_pfn:           {z.zone_start_pfn}"]
        return lines


# ---------------------------------------------------------------- the contract class

VOCABULARY = Vocabulary(
    subsystem="zone",
    doc="A zoned page allocator of one node: a buddy allocator per zone, watermarks, "
        "lowmem_reserve and the zonelist fallback (docs/contract.md ZoneAllocator).",
    records=(
        Record("Zone", (("idx", "int"), ("start", "int"), ("end", "int"), ("managed", "int"),
                        ("free", "int"), ("min", "int"), ("low", "int"), ("high", "int")),
               doc="A populated zone: pfns [start, end), NR_FREE_PAGES, watermarks."),
        Record("ZBlock", (("pfn", "int"), ("order", "int"), ("zone", "int")),
               doc="A block of 2**order pages at pfn; zone: the index of the zone "
                   "spanning pfn, -1 if none."),
        Record("Reserve", (("zone", "int"), ("classzone", "int"), ("pages", "int")),
               doc="lowmem_reserve[classzone] of a zone: what a request whose highest "
                   "zone is classzone must leave free in it."),
    ),
    state=(
        StateVar("npages", "int", doc="Pages of the node: pfns 0 .. npages-1."),
        StateVar("max_order", "int", doc="Orders are 0 .. max_order-1."),
        StateVar("zones", "set[Zone]", doc="The populated zones."),
        StateVar("free", "set[ZBlock]",
                 doc="The free blocks of every zone's free lists, maximally merged within "
                     "the zone (the reference's, following the submission's choices)."),
        StateVar("allocated", "set[ZBlock]",
                 doc="Blocks alloc returned and free has not taken back."),
        StateVar("lowmem_reserve", "set[Reserve]",
                 doc="lowmem_reserve of every populated zone, for every class zone."),
    ),
    operations=(
        Operation("alloc", (("order", "int"), ("gfp", "int")), returns="int?",
                  raises=("ValueError",),
                  doc="First pfn of a block of 2**order pages from the first zone of the "
                      "zonelist of gfp that passes its watermark; none if none does."),
        Operation("free", (("pfn", "int"), ("order", "int")), returns="none",
                  raises=("ValueError",),
                  doc="Give back a block alloc(order, ...) returned and still allocated."),
    ),
)


class ZoneAllocator:
    """The reference ZoneAllocator of docs/contract.md: one node booted with every page free.

    `zones[i]` pages of zone type i (DMA, DMA32, NORMAL, HIGHMEM, MOVABLE), laid
    out from pfn 0; watermarks from `min_free_kbytes`."""

    def __init__(self, zones: Sequence[int], min_free_kbytes: int,
                 max_order: int = DEFAULT_MAX_ORDER) -> None:
        if not isinstance(zones, (list, tuple)) or not all(_is_int(s) for s in zones) \
                or not _is_int(min_free_kbytes) or not _is_int(max_order) \
                or not 1 <= max_order <= 63:
            raise ValueError(f"ZoneAllocator({zones!r}, {min_free_kbytes!r}, {max_order!r}): "
                             "zones must be a list of ints, min_free_kbytes an int and "
                             "max_order in 1..63")
        self.node = PgData(list(zones), min_free_kbytes, max_order)
        self.npages = self.node.node_spanned_pages
        self.max_order = max_order

    def alloc(self, order: int, gfp: int) -> int | None:
        """alloc_pages(gfp, order): see `PgData.alloc_pages`."""
        return self.node.alloc_pages(order, gfp)

    def free(self, pfn: int, order: int) -> None:
        """__free_pages(pfn, order): see `PgData.free_pages`."""
        if not _is_int(pfn):
            raise ValueError(f"free({pfn!r}, {order!r}): pfn must be an int")
        self.node.free_pages(pfn, order)

    def take_block(self, pfn: int, order: int) -> None:
        """Follow a submission's alloc choice; ValueError (IllegalChoice) if no correct
        allocator could have returned this block now (outside one zone, not free)."""
        zone = self.node.zone_of(pfn)
        if zone is None or pfn + (1 << order) > zone.zone_end_pfn:
            raise IllegalChoice(f"pages {pfn}..{pfn + (1 << order) - 1} do not lie in one zone")
        zone.take_block(pfn, order)

    def snapshot(self, allocated: Mapping[int, int] | None = None) -> Snapshot:
        """The vocabulary's state; `allocated` (pfn -> order) replaces the model's own
        record when a submission's returns are shown."""
        return make_snapshot(self.node, allocated if allocated is not None else {
            pfn: order for z in self.node.populated_zones()
            for pfn, order in z.allocated_blocks().items()})


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _zone_idx(node: PgData, pfn: int) -> int:
    zone = node.zone_of(pfn)
    return -1 if zone is None else zone.idx


def make_snapshot(node: PgData, allocated: Mapping[int, int]) -> Snapshot:
    """The zone vocabulary of `node`, with `allocated` as the blocks handed out."""
    zones = node.populated_zones()
    zone_recs = frozenset(ZoneRec(z.idx, z.zone_start_pfn, z.zone_end_pfn, z.managed_pages,
                                  z.free_pages, *z.watermark) for z in zones)
    free = frozenset(ZBlock(pfn, order, z.idx) for z in zones for pfn, order in z.free_blocks())
    alloc = frozenset(ZBlock(pfn, order, _zone_idx(node, pfn))
                      for pfn, order in allocated.items())
    reserve = frozenset(Reserve(z.idx, c, z.lowmem_reserve[c]) for z in zones
                        for c in range(MAX_NR_ZONES))
    return Snapshot({
        "npages": lambda: node.node_spanned_pages,
        "max_order": lambda: node.max_order,
        "zones": lambda: zone_recs,
        "free": lambda: free,
        "allocated": lambda: alloc,
        "lowmem_reserve": lambda: reserve,
    })


class ZoneRec(NamedTuple):
    """The vocabulary's Zone record."""

    idx: int
    start: int
    end: int
    managed: int
    free: int
    min: int
    low: int
    high: int


class ZBlock(NamedTuple):
    """The vocabulary's ZBlock record."""

    pfn: int
    order: int
    zone: int


class Reserve(NamedTuple):
    """The vocabulary's Reserve record."""

    zone: int
    classzone: int
    pages: int
