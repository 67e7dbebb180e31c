"""The kernel's virtual address layout on x86: the direct map, high memory, vmalloc.

The source documents (docs/contract.md cites them; the i386 notes quote
arch/x86/include/asm/page.h) describe the i386 3G/1G split: user space is
`[0, PAGE_OFFSET)`, PAGE_OFFSET is 0xC0000000 (CONFIG_PAGE_OFFSET, other
VMSPLIT choices move it), and the kernel's last gigabyte starts with the
*direct map* of low memory, where

    __pa(x) = x - PAGE_OFFSET        __va(p) = p + PAGE_OFFSET

(`virt_to_phys`/`phys_to_virt` are the same conversions). i386 layout, low
to high (arch/x86/include/asm/pgtable_32_areas.h, page_32_types.h):

    [0, PAGE_OFFSET)                      user space
    [PAGE_OFFSET, high_memory)            direct map of low memory, at most
                                          MAXMEM = 4 GiB - PAGE_OFFSET - 128 MiB
                                          (__VMALLOC_RESERVE): 896 MiB for 3G/1G
    [high_memory, VMALLOC_START)          VMALLOC_OFFSET, an 8 MiB unmapped gap
                                          that catches overruns off the direct map
    [VMALLOC_START, VMALLOC_END)          vmalloc areas
    [VMALLOC_END, PKMAP_BASE)             two guard pages (and PMD alignment slack)
    [PKMAP_BASE, +LAST_PKMAP pages)       kmap's persistent mappings of high memory
    [FIXADDR_START, FIXADDR_TOP)          fixmap (the documents' "128k reserved
                                          for special page mappings")

Physical memory above MAXMEM is high memory: it has no direct-map address,
so `__va` of it is refused here (the kernel reaches it through kmap).
Simplifications, stated: the fixmap size is a parameter (Linux's depends on
the configuration; 128 KiB by default as in the documents), FIXADDR_TOP is
the classic fixed 0xfffff000, and the cpu_entry_area/LDT slots newer kernels
put between PKMAP_BASE and the fixmap are not modelled. MAXMEM is the
classic definition from PAGE_OFFSET and the reserve; newer kernels derive it
from VMALLOC_END, which gives a few MiB less.

x86-64 (Documentation/arch/x86/x86_64/mm.rst, no KASLR, i.e. without
CONFIG_RANDOMIZE_MEMORY): the direct map of all physical memory starts at
`page_offset_base` 0xffff888000000000 (4-level, 64 TiB) or 0xff11000000000000
(5-level, 32 PiB), vmalloc at `vmalloc_base` 0xffffc90000000000 (32 TiB) or
0xffa0000000000000 (12.5 PiB). There is no high memory. Linux's x86-64 `__pa`
also accepts the kernel image mapping at __START_KERNEL_map; this model's
conversions accept the direct map only.

Every range here is half-open, `[start, end)`. Linux's x86-64 VMALLOC_END is
the *last* byte (start + size - 1); `vmalloc_end` here is one past it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmcheck.model.linux import PAGE_SHIFT, PAGE_SIZE

__all__ = [
    "__pa",
    "__va",
    "FIXADDR_TOP_32",
    "LAST_PKMAP",
    "MiB",
    "PAGE_OFFSET_32",
    "VMALLOC_OFFSET",
    "VMALLOC_RESERVE_32",
    "KernelLayout",
    "Region",
    "i386_layout",
    "phys_to_virt",
    "virt_addr_valid",
    "virt_to_phys",
    "x86_64_layout",
]

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40

PAGE_OFFSET_32 = 0xC0000000  # CONFIG_PAGE_OFFSET default: the 3G/1G split
VMALLOC_OFFSET = 8 * MiB  # the gap between the direct map and VMALLOC_START
VMALLOC_RESERVE_32 = 128 * MiB  # __VMALLOC_RESERVE: the kernel's last 128 MiB are not direct-mapped
FIXADDR_TOP_32 = 0xFFFFF000  # __FIXADDR_TOP: the top page is left unmapped
LAST_PKMAP = 1024  # kmap slots, one page table's worth without PAE
PMD_SIZE_32 = 4 * MiB  # 2-level paging: a pgd entry covers 4 MiB (PGDIR_SHIFT 22)

# x86-64 without KASLR: (page_offset_base, direct-map size, vmalloc_base, vmalloc size)
_X86_64 = {
    4: (0xFFFF888000000000, 64 * TiB, 0xFFFFC90000000000, 32 * TiB),
    5: (0xFF11000000000000, 32 * 1024 * TiB, 0xFFA0000000000000, 12800 * TiB),
}


@dataclass(frozen=True)
class Region:
    """One named range `[start, end)` of kernel virtual addresses."""

    name: str
    start: int
    end: int

    def __contains__(self, va: object) -> bool:
        return isinstance(va, int) and self.start <= va < self.end


@dataclass(frozen=True)
class KernelLayout:
    """Where things are in one kernel's virtual address space (see the module docstring).

    `page_offset` is PAGE_OFFSET (i386) or page_offset_base (x86-64);
    `high_memory` is the first virtual address past the direct map, so the
    direct map is `[page_offset, high_memory)` and the physical memory it
    covers is `[0, high_memory - page_offset)`. `ram` is the physical memory
    size; whatever lies above the direct map's reach is high memory.
    """

    arch: str
    ram: int
    page_offset: int
    high_memory: int
    vmalloc_start: int
    vmalloc_end: int
    pkmap_base: int | None  # i386 with CONFIG_HIGHMEM only
    fixaddr_start: int | None  # i386 only
    fixaddr_top: int | None  # i386 only

    @property
    def max_low_pfn(self) -> int:
        """One past the last pfn the direct map covers (Linux's max_low_pfn)."""
        return (self.high_memory - self.page_offset) >> PAGE_SHIFT

    @property
    def max_pfn(self) -> int:
        """One past the last pfn of physical memory."""
        return self.ram >> PAGE_SHIFT

    def direct_map(self) -> Region:
        """The direct map, `[PAGE_OFFSET, high_memory)`."""
        return Region("direct map", self.page_offset, self.high_memory)

    def regions(self) -> list[Region]:
        """The kernel's areas from low to high addresses, gaps included, for pictures."""
        out = [self.direct_map(),
               Region("vmalloc gap", self.high_memory, self.vmalloc_start),
               Region("vmalloc", self.vmalloc_start, self.vmalloc_end)]
        if self.pkmap_base is not None:
            out.append(Region("vmalloc guard", self.vmalloc_end, self.pkmap_base))
            out.append(Region("pkmap", self.pkmap_base, self.pkmap_base + LAST_PKMAP * PAGE_SIZE))
        if self.fixaddr_start is not None and self.fixaddr_top is not None:
            if self.pkmap_base is None:
                out.append(Region("vmalloc guard", self.vmalloc_end, self.fixaddr_start))
            out.append(Region("fixmap", self.fixaddr_start, self.fixaddr_top))
        return out

    def PageHighMem(self, pfn: int) -> bool:
        """Whether page frame `pfn` is high memory: RAM the direct map does not reach."""
        return self.max_low_pfn <= pfn < self.max_pfn


def _check_ram(who: str, ram: object) -> int:
    """`ram` if it is a positive whole number of pages; ValueError otherwise."""
    if not isinstance(ram, int) or isinstance(ram, bool) or ram <= 0 or ram % PAGE_SIZE:
        raise ValueError(f"{who}: ram must be a positive multiple of {PAGE_SIZE} bytes, "
                         f"not {ram!r}")
    return ram


# i386_layout: the layout of an i386 kernel with `ram` bytes of physical memory.
# Contract: `page_offset` is one of the VMSPLIT choices' kind (a multiple of
# 4 MiB below 4 GiB - 128 MiB - 8 MiB); lowmem is min(ram, MAXMEM) with MAXMEM =
# 4 GiB - PAGE_OFFSET - __VMALLOC_RESERVE; VMALLOC_START = high_memory +
# VMALLOC_OFFSET; with `highmem` (CONFIG_HIGHMEM) the pkmap area sits
# PMD-aligned below the fixmap and VMALLOC_END is two pages below PKMAP_BASE,
# without it two pages below the fixmap. ValueError for an impossible request.
def i386_layout(ram: int, *, page_offset: int = PAGE_OFFSET_32, highmem: bool = True,
                fixmap_size: int = 128 * KiB) -> KernelLayout:
    _check_ram("i386_layout", ram)
    if (not isinstance(page_offset, int) or page_offset % PMD_SIZE_32
            or not 0 < page_offset < (1 << 32) - VMALLOC_RESERVE_32 - VMALLOC_OFFSET):
        raise ValueError(f"i386_layout: page_offset {page_offset!r} is not a 4 MiB-aligned "
                         f"split leaving room for the vmalloc reserve")
    if fixmap_size <= 0 or fixmap_size % PAGE_SIZE or fixmap_size > 4 * MiB:
        raise ValueError(f"i386_layout: fixmap_size {fixmap_size!r} must be 1..1024 pages")
    maxmem = (1 << 32) - page_offset - VMALLOC_RESERVE_32
    lowmem = min(ram, maxmem)
    if lowmem < ram and not highmem:
        ram = lowmem  # without CONFIG_HIGHMEM the memory above MAXMEM is not used
    high_memory = page_offset + lowmem
    fixaddr_start = FIXADDR_TOP_32 - fixmap_size
    pkmap_base = ((fixaddr_start - PAGE_SIZE * (LAST_PKMAP + 1)) & ~(PMD_SIZE_32 - 1)
                  if highmem else None)
    vmalloc_end = (pkmap_base if pkmap_base is not None else fixaddr_start) - 2 * PAGE_SIZE
    return KernelLayout("i386", ram, page_offset, high_memory, high_memory + VMALLOC_OFFSET,
                        vmalloc_end, pkmap_base, fixaddr_start, FIXADDR_TOP_32)


# x86_64_layout: the layout of an x86-64 kernel with `ram` bytes and 4- or
# 5-level paging, without KASLR. Contract: the direct map covers all of `ram`
# from page_offset_base (ValueError if `ram` exceeds what the direct map can
# hold); vmalloc is [vmalloc_base, vmalloc_base + VMALLOC_SIZE); no high memory.
def x86_64_layout(ram: int, *, levels: int = 4) -> KernelLayout:
    _check_ram("x86_64_layout", ram)
    if levels not in _X86_64:
        raise ValueError(f"x86_64_layout: levels must be 4 or 5, not {levels!r}")
    page_offset_base, direct_size, vmalloc_base, vmalloc_size = _X86_64[levels]
    if ram > direct_size:
        raise ValueError(f"x86_64_layout: {ram:#x} bytes of RAM exceed the {levels}-level "
                         f"direct map ({direct_size:#x} bytes)")
    return KernelLayout("x86_64", ram, page_offset_base, page_offset_base + ram, vmalloc_base,
                        vmalloc_base + vmalloc_size, None, None, None)


# virt_addr_valid: whether `x` is a direct-map address, i.e. one `__pa` accepts.
def virt_addr_valid(x: object, layout: KernelLayout) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x in layout.direct_map()


# __pa: the physical address of direct-map address `x` (x - PAGE_OFFSET).
# Contract: `x` is in [PAGE_OFFSET, high_memory); ValueError otherwise (user
# addresses, the vmalloc gap, vmalloc, pkmap, fixmap: those have no linear
# relation to a physical address; CONFIG_DEBUG_VIRTUAL's __phys_addr BUGs).
def __pa(x: int, layout: KernelLayout) -> int:
    if not virt_addr_valid(x, layout):
        raise ValueError(f"__pa: {x!r} is not in the direct map "
                         f"[{layout.page_offset:#x}, {layout.high_memory:#x}); "
                         f"walk the kernel page table for vmalloc/kmap addresses")
    return x - layout.page_offset


# __va: the direct-map address of physical address `p` (p + PAGE_OFFSET).
# Contract: `p` is in [0, high_memory - PAGE_OFFSET): low memory. ValueError
# otherwise (negative, beyond RAM, or high memory, which needs kmap).
def __va(p: int, layout: KernelLayout) -> int:
    lowmem = layout.high_memory - layout.page_offset
    if not isinstance(p, int) or isinstance(p, bool) or not 0 <= p < lowmem:
        what = ("high memory (use kmap)" if isinstance(p, int) and lowmem <= p < layout.ram
                else "not low memory")
        raise ValueError(f"__va: {p!r} is {what}; the direct map covers physical "
                         f"[0, {lowmem:#x})")
    return p + layout.page_offset


# virt_to_phys: the exported form of __pa, with the same contract.
def virt_to_phys(address: int, layout: KernelLayout) -> int:
    return __pa(address, layout)


# phys_to_virt: the exported form of __va, with the same contract.
def phys_to_virt(address: int, layout: KernelLayout) -> int:
    return __va(address, layout)
